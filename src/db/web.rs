//! Rows behind the dashboard and the portal: seller accounts, browser sessions,
//! sign-in throttling and portal sign-in links. Tokens are stored as SHA-256 only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{login_attempts, portal_links, users, web_sessions};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts a user; `None` when the email (any case) is taken.
pub fn insert_user(
    conn: &mut PgConnection,
    email: &str,
    password_hash: &str,
) -> QueryResult<Option<User>> {
    diesel::insert_into(users::table)
        .values((
            users::email.eq(email),
            users::password_hash.eq(password_hash),
        ))
        .on_conflict_do_nothing()
        .returning(User::as_returning())
        .get_result(conn)
        .optional()
}

pub fn user_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(lower(users::email).eq(email.to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Who a live session belongs to.
#[derive(Debug, Clone)]
pub enum SessionOwner {
    User(User),
    Buyer(String),
}

pub fn insert_session(
    conn: &mut PgConnection,
    token_sha256: &[u8],
    user_id: Option<Uuid>,
    buyer_email: Option<&str>,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(web_sessions::table)
        .values((
            web_sessions::token_sha256.eq(token_sha256),
            web_sessions::user_id.eq(user_id),
            web_sessions::buyer_email.eq(buyer_email),
            web_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The owner of the unexpired session with this token hash.
pub fn session(conn: &mut PgConnection, token_sha256: &[u8]) -> QueryResult<Option<SessionOwner>> {
    let row: Option<(Option<Uuid>, Option<String>)> = web_sessions::table
        .filter(web_sessions::token_sha256.eq(token_sha256))
        .filter(web_sessions::expires_at.gt(Utc::now()))
        .select((web_sessions::user_id, web_sessions::buyer_email))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((Some(user_id), _)) => users::table
            .find(user_id)
            .select(User::as_select())
            .first(conn)
            .optional()?
            .map(SessionOwner::User),
        Some((None, Some(email))) => Some(SessionOwner::Buyer(email)),
        _ => None,
    })
}

pub fn delete_session(conn: &mut PgConnection, token_sha256: &[u8]) -> QueryResult<()> {
    diesel::delete(web_sessions::table.filter(web_sessions::token_sha256.eq(token_sha256)))
        .execute(conn)?;
    // Expired sessions go at the same time: no separate sweeper to run.
    diesel::delete(web_sessions::table.filter(web_sessions::expires_at.lt(Utc::now())))
        .execute(conn)?;
    Ok(())
}

/// Counts the attempts under `key` since `since`.
pub fn attempts_since(
    conn: &mut PgConnection,
    key: &str,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    login_attempts::table
        .filter(login_attempts::key.eq(key))
        .filter(login_attempts::at.gt(since))
        .count()
        .get_result(conn)
}

pub fn add_attempt(conn: &mut PgConnection, key: &str) -> QueryResult<()> {
    diesel::insert_into(login_attempts::table)
        .values(login_attempts::key.eq(key))
        .execute(conn)?;
    Ok(())
}

/// Forgets old attempts (called now and then by the sign-in path itself).
pub fn prune_attempts(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<()> {
    diesel::delete(login_attempts::table.filter(login_attempts::at.lt(before))).execute(conn)?;
    Ok(())
}

pub fn insert_portal_link(
    conn: &mut PgConnection,
    token_sha256: &[u8],
    email: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(portal_links::table)
        .values((
            portal_links::token_sha256.eq(token_sha256),
            portal_links::email.eq(email),
            portal_links::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks the unused, unexpired link with this token hash used, returning its email.
/// One conditional UPDATE: two clicks racing use it once.
pub fn use_portal_link(
    conn: &mut PgConnection,
    token_sha256: &[u8],
) -> QueryResult<Option<String>> {
    let now = Utc::now();
    diesel::update(
        portal_links::table
            .filter(portal_links::token_sha256.eq(token_sha256))
            .filter(portal_links::used_at.is_null())
            .filter(portal_links::expires_at.gt(now)),
    )
    .set(portal_links::used_at.eq(now))
    .returning(portal_links::email)
    .get_result(conn)
    .optional()
}
