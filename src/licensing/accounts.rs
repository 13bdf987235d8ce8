//! Seller accounts and browser sessions: argon2id passwords, sign-in throttling, and
//! sessions whose tokens are stored as SHA-256 only. The portal's buyers sign in with
//! a single-use link instead of a password (see [`super::portal`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::input::Email;
use crate::db::web::{self, SessionOwner, User};
use crate::error::AppError;

/// How long failed attempts count against an email or a client address.
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;

/// A random token for a cookie or a link: 32 bytes, URL-safe hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A password hashed as an argon2id PHC string (salt and parameters inside).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AppError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(e.to_string()))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A password a seller may choose: 12 to 1024 characters.
pub fn check_password(password: &str) -> Result<(), AppError> {
    let n = password.chars().count();
    if !(12..=1024).contains(&n) {
        return Err(AppError::invalid(
            "password",
            "must be 12 to 1024 characters",
        ));
    }
    Ok(())
}

/// A generated password: 20 characters of a 57-letter alphabet (about 116 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // 228 = 4 × 57: bytes at or above it are skipped, so each letter is equally likely.
    let mut out = String::with_capacity(20);
    let mut rng = rand::rng();
    while out.len() < 20 {
        let mut byte = [0u8; 1];
        rng.fill_bytes(&mut byte);
        if byte[0] < 228 {
            out.push(ALPHABET[usize::from(byte[0]) % ALPHABET.len()] as char);
        }
    }
    out
}

/// Creates a seller account (`licensd user create`).
pub fn create_user(conn: &mut PgConnection, email: &str, password: &str) -> Result<User, AppError> {
    let email = Email::parse("email", email)?;
    check_password(password)?;
    let hash = hash_password(password)?;
    web::insert_user(conn, email.as_str(), &hash)?
        .ok_or_else(|| AppError::conflict("email_taken", "a user with this email already exists"))
}

/// Why a sign-in was refused. Both read the same to the person signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefused {
    BadCredentials,
    Throttled,
}

/// Whether `key` has used up its attempts in the window.
pub fn throttled(conn: &mut PgConnection, key: &str, max: u32) -> QueryResult<bool> {
    let since = Utc::now() - Duration::minutes(THROTTLE_WINDOW_MINUTES);
    Ok(web::attempts_since(conn, key, since)? >= i64::from(max))
}

/// Checks an email and password, throttled per email and per client address. On
/// success returns the user and a new session token (its hash is stored).
pub fn sign_in(
    conn: &mut PgConnection,
    email: &str,
    password: &str,
    client: &str,
    max_attempts: u32,
    ttl: Duration,
) -> Result<Result<(User, String), SignInRefused>, AppError> {
    let email_key = format!("login:{}", email.trim().to_lowercase());
    let client_key = format!("login-ip:{client}");
    if throttled(conn, &email_key, max_attempts)? || throttled(conn, &client_key, max_attempts)? {
        return Ok(Err(SignInRefused::Throttled));
    }
    let user = web::user_by_email(conn, email.trim())?;
    // A missing user still costs one hash, so the answer time does not tell who exists.
    let ok = match &user {
        Some(u) => password_matches(password, &u.password_hash),
        None => {
            let _ = password_matches(password, dummy_hash());
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        web::add_attempt(conn, &email_key)?;
        web::add_attempt(conn, &client_key)?;
        web::prune_attempts(conn, Utc::now() - Duration::days(1))?;
        return Ok(Err(SignInRefused::BadCredentials));
    };
    let token = new_token();
    web::insert_session(
        conn,
        &hash_token(&token),
        Some(user.id),
        None,
        Utc::now() + ttl,
    )?;
    Ok(Ok((user, token)))
}

/// An argon2id hash of a random password, verified against when the email is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// Opens a portal session for a buyer's email; returns the cookie token.
pub fn open_buyer_session(
    conn: &mut PgConnection,
    email: &str,
    ttl: Duration,
) -> Result<String, AppError> {
    let token = new_token();
    web::insert_session(
        conn,
        &hash_token(&token),
        None,
        Some(email),
        Utc::now() + ttl,
    )?;
    Ok(token)
}

/// The owner of a session token, if the session is live.
pub fn session(conn: &mut PgConnection, token: &str) -> Result<Option<SessionOwner>, AppError> {
    Ok(web::session(conn, &hash_token(token))?)
}

pub fn sign_out(conn: &mut PgConnection, token: &str) -> Result<(), AppError> {
    Ok(web::delete_session(conn, &hash_token(token))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterY", &hash));
        assert!(!password_matches("anything", dummy_hash()));
        assert!(!password_matches("anything", "not a hash"));
    }

    #[test]
    fn generated_passwords_are_accepted() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        assert!(check_password(&p).is_ok());
        assert!(check_password("short").is_err());
    }
}
