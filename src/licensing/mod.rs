//! The licensing domain: what a license is, how keys look, and the decisions the
//! public API, the admin API, the CLI and the compatibility adapters share.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod cache;
pub mod check;
pub mod dashboard;
pub mod events;
pub mod history;
pub mod import;
pub mod input;
pub mod key;
pub mod lease;
pub mod portal;
pub mod signing;
pub mod views;
pub mod webhook_endpoints;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::models::License;

pub use key::LicenseKey;

/// A license's effective status. `expired` is never stored: it is reported whenever
/// `expires_at` has passed on a license that is otherwise active. A paused Stripe
/// subscription reads as `suspended`, and one past due beyond its grace as `past_due`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
    Revoked,
    Expired,
    /// A subscription past due (or unpaid) beyond its payment grace.
    #[serde(rename = "past_due")]
    PastDue,
}

impl Status {
    pub fn of(l: &License, now: DateTime<Utc>) -> Status {
        match l.status.as_str() {
            "revoked" => Status::Revoked,
            "suspended" => Status::Suspended,
            _ if l.subscription_status.as_deref() == Some("paused") => Status::Suspended,
            _ if is_past_due(l, now) => Status::PastDue,
            _ if l.expires_at.is_some_and(|t| t <= now) => Status::Expired,
            _ => Status::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
            Status::PastDue => "past_due",
        }
    }
}

/// A subscription Stripe reports `past_due` or `unpaid` whose payment grace is over.
fn is_past_due(l: &License, now: DateTime<Utc>) -> bool {
    matches!(
        l.subscription_status.as_deref(),
        Some("past_due" | "unpaid")
    ) && l.past_due_until.is_some_and(|t| t <= now)
}
