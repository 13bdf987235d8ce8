//! The license history: every change to a license (status, seats, expiry, devices,
//! emails) is recorded through [`record`], in the transaction that makes the change,
//! with who made it and the values before and after.
//!
//! [`record`] is the one recording point of a change: the same call announces it to the
//! seller's webhooks ([`super::events`]), so whatever the history shows was announced,
//! whoever made the change (API, dashboard, portal, app, Stripe, CLI).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::events;
use super::views::ActivationView;
use crate::db::history::{self, HistoryRow, NewHistoryRow};
use crate::db::models::{Activation, License};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A seller signed in to the dashboard (their email).
    User(String),
    /// The admin API, by the name of the token used.
    ApiToken(String),
    /// The buyer in the portal (the email their sign-in link was sent to).
    Portal(String),
    /// The customer software through the public (or a compatible) license API.
    App,
    /// A Stripe webhook event (its id).
    Stripe(String),
    /// The seller's shell (`licensd license ...`).
    Cli,
    /// The server itself (the email worker).
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiToken(_) => "api_token",
            Actor::Portal(_) => "portal",
            Actor::App => "app",
            Actor::Stripe(_) => "stripe",
            Actor::Cli => "cli",
            Actor::System => "system",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Actor::User(s) | Actor::ApiToken(s) | Actor::Portal(s) | Actor::Stripe(s) => s,
            Actor::App => "license API",
            Actor::Cli => "licensd CLI",
            Actor::System => "licensd",
        }
    }
}

/// Records one change of one license. Call it inside the transaction that makes the
/// change, so a change and its record commit or roll back together.
pub fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    license_id: Uuid,
    action: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> QueryResult<HistoryRow> {
    // The column allows 320 characters: a longer name (an odd token label) is cut.
    let name: String = actor.name().chars().take(320).collect();
    let row = history::insert(
        conn,
        &NewHistoryRow {
            license_id,
            actor_kind: actor.kind(),
            actor: if name.is_empty() { "unknown" } else { &name },
            action,
            before: before.as_ref(),
            after: after.as_ref(),
        },
    )?;
    announce(conn, &row)?;
    Ok(row)
}

/// The webhook event of a history entry, written to the outbox in the same transaction:
/// license changes as `license.created`/`license.updated` (the license as it is now),
/// devices as `activation.created`/`activation.deleted`. Email entries are not announced
/// (a failed email has its own `email.failed`, see the email worker).
fn announce(conn: &mut PgConnection, row: &HistoryRow) -> QueryResult<()> {
    let device = |v: &Option<Value>| v.as_ref().and_then(|v| v.get("device")).cloned();
    match row.action.as_str() {
        "created" => events::license_now(conn, "license.created", row.license_id),
        "updated" => events::license_now(conn, "license.updated", row.license_id),
        "device_activated" => match device(&row.after) {
            Some(d) => events::device(conn, "activation.created", row.license_id, d),
            None => Ok(()),
        },
        "device_deactivated" => match device(&row.before) {
            Some(d) => events::device(conn, "activation.deleted", row.license_id, d),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The fields of a license a change can touch, as recorded in the history.
pub fn snapshot(l: &License) -> Value {
    json!({
        "status": l.status,
        "max_activations": l.max_activations,
        "expires_at": l.expires_at,
        "email": l.email,
        "metadata": l.metadata,
        "product_id": l.product_id,
        "subscription_status": l.subscription_status,
        "cancel_at_period_end": l.cancel_at_period_end,
        "past_due_until": l.past_due_until,
    })
}

/// Records the fields that differ between two snapshots of a license as `action`;
/// nothing when nothing changed (a PATCH that sets what is already there).
pub fn record_update(
    conn: &mut PgConnection,
    actor: &Actor,
    before: &License,
    after: &License,
    action: &str,
) -> QueryResult<Option<HistoryRow>> {
    let (Value::Object(old), Value::Object(new)) = (snapshot(before), snapshot(after)) else {
        return Ok(None);
    };
    let mut was = Map::new();
    let mut now = Map::new();
    for (field, value) in new {
        let previous = old.get(&field).cloned().unwrap_or(Value::Null);
        if previous != value {
            was.insert(field.clone(), previous);
            now.insert(field, value);
        }
    }
    if now.is_empty() {
        return Ok(None);
    }
    record(
        conn,
        actor,
        after.id,
        action,
        Some(Value::Object(was)),
        Some(Value::Object(now)),
    )
    .map(Some)
}

/// A device as the history records it (and its webhook event carries it): the admin
/// API's activation.
pub fn device(a: &Activation) -> Value {
    serde_json::to_value(ActivationView::from(a.clone())).unwrap_or_default()
}

/// One history entry as the API and the dashboard show it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub id: i64,
    pub action: String,
    pub actor: ActorView,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorView {
    pub kind: String,
    pub name: String,
}

impl From<HistoryRow> for HistoryView {
    fn from(r: HistoryRow) -> Self {
        HistoryView {
            id: r.id,
            action: r.action,
            actor: ActorView {
                kind: r.actor_kind,
                name: r.actor,
            },
            before: r.before,
            after: r.after,
            at: r.at,
        }
    }
}

/// The newest entries shown for one license.
pub const MAX_ENTRIES: i64 = 1000;

/// A license's history, oldest first.
pub fn of(conn: &mut PgConnection, license_id: Uuid) -> QueryResult<Vec<HistoryView>> {
    Ok(history::list_for(conn, license_id, MAX_ENTRIES)?
        .into_iter()
        .map(HistoryView::from)
        .collect())
}
