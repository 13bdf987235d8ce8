//! Where a license is decided: validate, activate and deactivate, for the public API
//! and every compatibility adapter. The database enforces the seat limit; this module
//! decides which answer the customer software gets.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::input::Fingerprint;
use super::key::LicenseKey;
use super::views::{ActivationView, LicenseView};
use super::Status;
use crate::db::models::{Activation, License, NewActivation, Product};
use crate::db::{activations, licenses};

/// The answer codes of the public license API, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    NotFound,
    Revoked,
    Suspended,
    Expired,
    ProductMismatch,
    EmailMismatch,
    NotActivated,
    TooManyActivations,
    Valid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "NOT_FOUND",
            Code::Revoked => "REVOKED",
            Code::Suspended => "SUSPENDED",
            Code::Expired => "EXPIRED",
            Code::ProductMismatch => "PRODUCT_MISMATCH",
            Code::EmailMismatch => "EMAIL_MISMATCH",
            Code::NotActivated => "NOT_ACTIVATED",
            Code::TooManyActivations => "TOO_MANY_ACTIVATIONS",
            Code::Valid => "VALID",
        }
    }

    /// What the customer software (or its user) should read.
    pub fn message(self) -> &'static str {
        match self {
            Code::NotFound => "No license matches this key. Check it for typos.",
            Code::Revoked => "This license has been revoked.",
            Code::Suspended => "This license is suspended. Contact the seller.",
            Code::Expired => "This license has expired. Renew it to keep using the software.",
            Code::ProductMismatch => "This license is for a different product.",
            Code::EmailMismatch => "This license belongs to a different email address.",
            Code::NotActivated => {
                "This device is not activated for the license. Activate it first."
            }
            Code::TooManyActivations => {
                "The license has reached its activation limit. Deactivate another device first."
            }
            Code::Valid => "The license is valid.",
        }
    }
}

/// What the caller of `validate` asked about.
#[derive(Debug, Clone, Default)]
pub struct ValidateRequest {
    pub key: String,
    pub fingerprint: Option<Fingerprint>,
    /// Product id or slug the software expects.
    pub product: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub valid: bool,
    pub code: Code,
    pub message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationView>,
}

impl Validation {
    fn of(code: Code, license: Option<LicenseView>, activation: Option<ActivationView>) -> Self {
        Validation {
            valid: code == Code::Valid,
            code,
            message: code.message(),
            license,
            activation,
        }
    }
}

/// The status refusal of a license, if any: REVOKED, SUSPENDED, EXPIRED in that order.
pub fn status_refusal(l: &License, now: DateTime<Utc>) -> Option<Code> {
    match Status::of(l, now) {
        Status::Revoked => Some(Code::Revoked),
        Status::Suspended => Some(Code::Suspended),
        Status::Expired => Some(Code::Expired),
        Status::Active => None,
    }
}

/// The validate decision, from the stored rows alone (pure, so every order is testable).
pub fn decide(
    req: &ValidateRequest,
    l: &License,
    p: &Product,
    activation: Option<&Activation>,
    now: DateTime<Utc>,
) -> Code {
    if let Some(code) = status_refusal(l, now) {
        return code;
    }
    if let Some(want) = req.product.as_deref().map(str::trim) {
        let matches = want == p.id.to_string() || want.eq_ignore_ascii_case(&p.slug);
        if !matches {
            return Code::ProductMismatch;
        }
    }
    if let Some(email) = req.email.as_deref().map(str::trim) {
        if !email.eq_ignore_ascii_case(l.email.trim()) {
            return Code::EmailMismatch;
        }
    }
    if req.fingerprint.is_some() && activation.is_none() {
        return Code::NotActivated;
    }
    Code::Valid
}

/// Answers a validate call with one indexed read; a known device's `last_seen_at` is
/// refreshed at most once per `last_seen_interval`.
pub fn validate(
    conn: &mut PgConnection,
    req: &ValidateRequest,
    last_seen_interval: Duration,
) -> QueryResult<Validation> {
    let now = Utc::now();
    let Some(key) = LicenseKey::parse(&req.key) else {
        return Ok(Validation::of(Code::NotFound, None, None));
    };
    let fingerprint = req.fingerprint.as_ref().map(Fingerprint::as_str);
    let Some((license, product, activation)) =
        licenses::find_for_check(conn, key.as_str(), fingerprint)?
    else {
        return Ok(Validation::of(Code::NotFound, None, None));
    };
    let code = decide(req, &license, &product, activation.as_ref(), now);
    if let Some(a) = &activation {
        activations::touch_if_stale(conn, a, last_seen_interval)?;
    }
    Ok(Validation::of(
        code,
        Some(LicenseView::public(license, &product, now)),
        activation.map(ActivationView::from),
    ))
}

/// The result of an activate call.
#[derive(Debug, Clone)]
pub enum Activated {
    /// A new seat was taken (201).
    New {
        activation: Activation,
        license: LicenseView,
    },
    /// The fingerprint was already activated (200).
    Existing {
        activation: Activation,
        license: LicenseView,
    },
    /// Refused: NOT_FOUND, REVOKED, SUSPENDED, EXPIRED or TOO_MANY_ACTIVATIONS.
    Refused(Code),
}

#[derive(Debug, Clone)]
pub struct ActivateRequest {
    pub key: String,
    pub fingerprint: Fingerprint,
    pub name: Option<String>,
    pub ip: Option<String>,
}

/// Rolls the transaction back with a refusal, or fails it with a database error.
enum Abort {
    Refused(Code),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

/// Activates a device. The seat is taken by a conditional UPDATE in the same
/// transaction as the activation row, so the limit holds under any concurrency and
/// across instances; a refused activation leaves nothing behind.
pub fn activate(conn: &mut PgConnection, req: &ActivateRequest) -> QueryResult<Activated> {
    let now = Utc::now();
    let Some(key) = LicenseKey::parse(&req.key) else {
        return Ok(Activated::Refused(Code::NotFound));
    };
    let result = conn.transaction::<_, Abort, _>(|conn| {
        let (license, product) =
            licenses::find(conn, key.as_str())?.ok_or(Abort::Refused(Code::NotFound))?;
        if let Some(code) = status_refusal(&license, now) {
            return Err(Abort::Refused(code));
        }
        let new = NewActivation {
            license_id: license.id,
            fingerprint: req.fingerprint.as_str(),
            name: req.name.as_deref(),
            ip: req.ip.as_deref(),
        };
        match activations::insert_if_new(conn, &new)? {
            Some(activation) => {
                if !licenses::try_take_seat(conn, license.id)? {
                    return Err(Abort::Refused(Code::TooManyActivations));
                }
                let license = License {
                    activations_count: license.activations_count + 1,
                    ..license
                };
                Ok(Activated::New {
                    activation,
                    license: LicenseView::public(license, &product, now),
                })
            }
            None => {
                let activation =
                    activations::find_by_fingerprint(conn, license.id, req.fingerprint.as_str())?
                        .ok_or(diesel::result::Error::NotFound)?;
                activations::touch_if_stale(conn, &activation, Duration::zero())?;
                Ok(Activated::Existing {
                    activation,
                    license: LicenseView::public(license, &product, now),
                })
            }
        }
    });
    match result {
        Ok(done) => Ok(done),
        Err(Abort::Refused(code)) => Ok(Activated::Refused(code)),
        Err(Abort::Db(e)) => Err(e),
    }
}

/// The result of a deactivate call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deactivated {
    Done(Uuid),
    /// NOT_FOUND (no such license) or NOT_ACTIVATED (no such activation).
    Refused(Code),
}

/// Removes one activation of the license named by `key_or_id` and frees its seat.
pub fn deactivate(
    conn: &mut PgConnection,
    key_or_id: &str,
    which: &activations::Selector,
) -> QueryResult<Deactivated> {
    let lookup = match Uuid::parse_str(key_or_id.trim()) {
        Ok(id) => id.to_string(),
        Err(_) => match LicenseKey::parse(key_or_id) {
            Some(key) => key.into_string(),
            None => return Ok(Deactivated::Refused(Code::NotFound)),
        },
    };
    conn.transaction(|conn| {
        let Some((license, _)) = licenses::find(conn, &lookup)? else {
            return Ok(Deactivated::Refused(Code::NotFound));
        };
        match activations::delete(conn, license.id, which)? {
            Some(a) => {
                licenses::release_seat(conn, license.id)?;
                Ok(Deactivated::Done(a.id))
            }
            None => Ok(Deactivated::Refused(Code::NotActivated)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(status: &str, expires_at: Option<DateTime<Utc>>) -> (License, Product) {
        let now = Utc::now();
        let product = Product {
            id: Uuid::new_v4(),
            slug: "app".into(),
            name: "App".into(),
            max_activations: None,
            duration_days: None,
            key_prefix: None,
            created_at: now,
            updated_at: now,
        };
        let license = License {
            id: Uuid::new_v4(),
            key: "K".into(),
            product_id: product.id,
            status: status.into(),
            email: "Buyer@Example.com".into(),
            customer_name: None,
            max_activations: None,
            activations_count: 0,
            expires_at,
            source: "manual".into(),
            stripe_checkout_session_id: None,
            stripe_line_item_id: None,
            stripe_line_item_seq: None,
            stripe_payment_intent_id: None,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        };
        (license, product)
    }

    #[test]
    fn status_codes_come_before_request_checks_and_in_order() {
        let now = Utc::now();
        let past = Some(now - Duration::days(1));
        let mismatching = ValidateRequest {
            product: Some("other".into()),
            email: Some("x@y.z".into()),
            ..Default::default()
        };
        for (status, expires, want) in [
            ("revoked", past, Code::Revoked),
            ("suspended", past, Code::Suspended),
            ("active", past, Code::Expired),
            ("active", None, Code::ProductMismatch),
        ] {
            let (l, p) = rows(status, expires);
            assert_eq!(decide(&mismatching, &l, &p, None, now), want);
        }
    }

    #[test]
    fn product_email_and_fingerprint_checks() {
        let now = Utc::now();
        let (l, p) = rows("active", Some(now + Duration::days(1)));
        let by_slug = ValidateRequest {
            product: Some("APP".into()),
            email: Some(" buyer@example.COM ".into()),
            ..Default::default()
        };
        assert_eq!(decide(&by_slug, &l, &p, None, now), Code::Valid);
        let by_id = ValidateRequest {
            product: Some(p.id.to_string()),
            email: Some("other@example.com".into()),
            ..Default::default()
        };
        assert_eq!(decide(&by_id, &l, &p, None, now), Code::EmailMismatch);
        let with_device = ValidateRequest {
            fingerprint: Some(Fingerprint::parse("fingerprint", "dev").unwrap()),
            ..Default::default()
        };
        assert_eq!(decide(&with_device, &l, &p, None, now), Code::NotActivated);
    }
}
