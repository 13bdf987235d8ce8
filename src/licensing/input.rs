//! Validated values at the edge: past parsing, code trusts these types.

use crate::error::AppError;

/// The device or instance id the customer software sends: 1 to 255 visible characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn parse(field: &'static str, input: &str) -> Result<Self, AppError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AppError::invalid(field, "must not be empty"));
        }
        if s.chars().count() > 255 {
            return Err(AppError::invalid(field, "must be at most 255 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(AppError::invalid(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Fingerprint(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A buyer's email address: trimmed, with one `@` between non-empty parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, input: &str) -> Result<Self, AppError> {
        let s = input.trim();
        let valid = s.len() <= 320
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if valid {
            Ok(Email(s.to_owned()))
        } else {
            Err(AppError::invalid(
                field,
                "must be an email address such as buyer@example.com",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional short display name (device name, customer name): trimmed, empty means none.
pub fn optional_name(
    field: &'static str,
    input: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, AppError> {
    match input.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.chars().count() > max_chars => Err(AppError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        )),
        Some(s) if s.chars().any(char::is_control) => Err(AppError::invalid(
            field,
            "must not contain control characters",
        )),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// A non-negative activation limit.
pub fn activation_limit(field: &'static str, n: i64) -> Result<i32, AppError> {
    i32::try_from(n).ok().filter(|n| *n >= 0).ok_or_else(|| {
        AppError::invalid(
            field,
            "must be a whole number from 0 up (or null for unlimited)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("email", " a@b.co ").unwrap().as_str(),
            "a@b.co"
        );
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b@c"] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints() {
        assert!(Fingerprint::parse("fingerprint", " ").is_err());
        assert!(Fingerprint::parse("fingerprint", &"x".repeat(256)).is_err());
        assert_eq!(
            Fingerprint::parse("fingerprint", " dev-1 ")
                .unwrap()
                .as_str(),
            "dev-1"
        );
    }
}
