//! The buyer portal: a single-use sign-in link by email, the buyer's licenses and
//! devices, freeing a device (with a cooldown per license) and re-sending the keys.
//! A buyer session only ever reaches licenses whose email is the session's.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::accounts::{self, hash_token, new_token};
use super::check::{self, Code, Deactivated};
use super::history::{self, Actor};
use super::input::Email;
use super::views::{ActivationView, LicenseView};
use crate::db::activations::{self, Selector};
use crate::db::models::License;
use crate::db::{history as history_rows, licenses, outbox, web};
use crate::error::AppError;

/// Most licenses the portal lists for one email.
pub const MAX_LICENSES: i64 = 200;

/// What a link request needs to know.
pub struct LinkRequest<'a> {
    pub email: &'a str,
    pub client: &'a str,
    pub public_url: &'a str,
    pub ttl: Duration,
    pub max_attempts: u32,
}

/// Sends a sign-in link if the email bought something and has not asked too often.
/// Returns whether an email was queued; the caller must answer the same either way.
pub fn request_link(conn: &mut PgConnection, req: &LinkRequest<'_>) -> Result<bool, AppError> {
    let Ok(email) = Email::parse("email", req.email) else {
        return Ok(false);
    };
    let email_key = format!("portal:{}", email.as_str().to_lowercase());
    let client_key = format!("portal-ip:{}", req.client);
    // A client address may ask for several buyers (an office), so it gets 4× the budget.
    if accounts::throttled(conn, &email_key, req.max_attempts)?
        || accounts::throttled(conn, &client_key, req.max_attempts.saturating_mul(4))?
    {
        return Ok(false);
    }
    conn.transaction(|conn| {
        web::add_attempt(conn, &email_key)?;
        web::add_attempt(conn, &client_key)?;
        let owned = licenses::of_email(conn, email.as_str(), MAX_LICENSES)?;
        if owned.is_empty() {
            return Ok(false);
        }
        let token = new_token();
        web::insert_portal_link(
            conn,
            &hash_token(&token),
            email.as_str(),
            Utc::now() + req.ttl,
        )?;
        let link = format!(
            "{}/portal/sign-in?token={token}",
            req.public_url.trim_end_matches('/')
        );
        let ids: Vec<Uuid> = owned.iter().map(|(l, _)| l.id).collect();
        // To the address the licenses were sold to, as stored.
        outbox::enqueue_portal_link(conn, &owned[0].0.email, &ids, &link)?;
        Ok(true)
    })
}

/// Uses a sign-in link (once) and opens a buyer session: its cookie token, or `None`
/// for a link that is unknown, used or expired.
pub fn use_link(
    conn: &mut PgConnection,
    token: &str,
    session_ttl: Duration,
) -> Result<Option<String>, AppError> {
    conn.transaction(|conn| {
        let Some(email) = web::use_portal_link(conn, &hash_token(token))? else {
            return Ok(None);
        };
        accounts::open_buyer_session(conn, &email, session_ttl).map(Some)
    })
}

/// One of the buyer's licenses, as the portal shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuyerLicense {
    pub license: LicenseView,
    pub devices: Vec<ActivationView>,
    /// While set, the buyer cannot free another device of this license.
    pub cooldown_until: Option<DateTime<Utc>>,
}

/// The buyer's licenses with their devices.
pub fn licenses_of(
    conn: &mut PgConnection,
    email: &str,
    cooldown: Duration,
) -> Result<Vec<BuyerLicense>, AppError> {
    let now = Utc::now();
    licenses::of_email(conn, email, MAX_LICENSES)?
        .into_iter()
        .map(|(l, p)| {
            let devices = activations::list_for(conn, l.id)?
                .into_iter()
                .map(ActivationView::from)
                .collect();
            let cooldown_until = cooldown_until(conn, l.id, cooldown)?.filter(|t| *t > now);
            Ok(BuyerLicense {
                license: LicenseView::public(l, &p, now),
                devices,
                cooldown_until,
            })
        })
        .collect()
}

fn cooldown_until(
    conn: &mut PgConnection,
    license_id: Uuid,
    cooldown: Duration,
) -> Result<Option<DateTime<Utc>>, AppError> {
    if cooldown <= Duration::zero() {
        return Ok(None);
    }
    let last = history_rows::last_at(conn, license_id, "portal", "device_deactivated")?;
    Ok(last.map(|t| t + cooldown))
}

/// The buyer's license with this id; another buyer's is "not found", like a missing one.
fn owned_license(conn: &mut PgConnection, email: &str, id: Uuid) -> Result<License, AppError> {
    licenses::find(conn, &id.to_string())?
        .map(|(l, _)| l)
        .filter(|l| l.email.trim().eq_ignore_ascii_case(email.trim()))
        .ok_or_else(|| AppError::not_found("license"))
}

/// Frees one device of one of the buyer's licenses, unless the license is cooling
/// down from the last device the buyer freed.
pub fn free_device(
    conn: &mut PgConnection,
    email: &str,
    license_id: Uuid,
    activation_id: Uuid,
    cooldown: Duration,
) -> Result<(), AppError> {
    conn.transaction(|conn| {
        let license = owned_license(conn, email, license_id)?;
        // Lock the license so two tabs cannot both pass the cooldown check.
        licenses::lock(conn, license.id)?;
        if let Some(until) = cooldown_until(conn, license.id, cooldown)? {
            if until > Utc::now() {
                return Err(AppError::conflict(
                    "cooldown",
                    format!(
                        "a device of this license was freed recently; try again after {}",
                        until.format("%Y-%m-%d %H:%M UTC")
                    ),
                ));
            }
        }
        let actor = Actor::Portal(email.to_owned());
        let which = Selector::Id(activation_id);
        match check::deactivate_by(conn, &actor, &license.id.to_string(), &which)? {
            Deactivated::Done(_) => Ok(()),
            Deactivated::Refused(Code::NotFound) => Err(AppError::not_found("license")),
            Deactivated::Refused(_) => Err(AppError::not_found("device")),
        }
    })
}

/// Queues one email listing all the buyer's licenses.
pub fn resend_keys(conn: &mut PgConnection, email: &str) -> Result<bool, AppError> {
    conn.transaction(|conn| {
        let owned = licenses::of_email(conn, email, MAX_LICENSES)?;
        if owned.is_empty() {
            return Ok(false);
        }
        let ids: Vec<Uuid> = owned.iter().map(|(l, _)| l.id).collect();
        let email_id = outbox::enqueue_license_email(conn, &owned[0].0.email, &ids)?;
        let actor = Actor::Portal(email.to_owned());
        let after = serde_json::json!({ "email_id": email_id, "to": owned[0].0.email });
        for id in ids {
            history::record(conn, &actor, id, "email_queued", None, Some(after.clone()))?;
        }
        Ok(true)
    })
}
