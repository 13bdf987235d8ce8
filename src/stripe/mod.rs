//! What a Stripe event does to licenses.
//!
//! An event is handled in two steps: [`prepare`] fetches what it needs from the Stripe
//! API (line items, a subscription's period) before any transaction is open, so a
//! Stripe outage stores nothing; [`apply`] then records the event id and makes every
//! change it causes (licenses, the outbox row) in one transaction, so each event id
//! takes effect at most once.

pub mod api;
pub mod event;
pub mod signature;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::models::NewLicense;
use crate::db::{self, outbox, products, stripe_events, Pool};
use crate::error::AppError;
use crate::licensing::history::{self, Actor};
use crate::licensing::LicenseKey;
pub use api::{ApiError, LineItem, StripeApi};
use event::{Charge, CheckoutSession, Dispute, Event, Invoice, Subscription};

/// Most licenses one line item mints (a typo'd quantity should not mint millions).
pub const MAX_QUANTITY: u64 = 1_000;

/// What the webhook reports back, and what it stored as the event's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub outcome: String,
    /// The event id had been processed before; nothing was done this time.
    pub duplicate: bool,
    /// An email was queued: the mailer should wake.
    pub email_queued: bool,
}

/// Reads a verified body as an event, keeping the raw JSON to store.
pub fn parse(body: &[u8]) -> Result<(Event, serde_json::Value), AppError> {
    let raw: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request("invalid_event", format!("the event is not JSON: {e}"))
    })?;
    let event: Event = serde_json::from_value(raw.clone()).map_err(|e| {
        AppError::bad_request(
            "invalid_event",
            format!("the event lacks an `id` or `type`: {e}"),
        )
    })?;
    if event.id.is_empty() {
        return Err(AppError::bad_request(
            "invalid_event",
            "the event id is empty",
        ));
    }
    Ok((event, raw))
}

/// What [`apply`] needs from the Stripe API, fetched beforehand.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub line_items: Vec<LineItem>,
    /// End of the paid subscription period (unix seconds), for subscription checkouts
    /// and invoices that do not carry it.
    pub period_end: Option<i64>,
}

/// Does this event mint, and from which session?
fn session_to_mint(event: &Event) -> Option<CheckoutSession> {
    let session: CheckoutSession = event::object(event)?;
    let mints = match event.event_type.as_str() {
        "checkout.session.completed" => session.is_paid(),
        "checkout.session.async_payment_succeeded" => true,
        _ => false,
    };
    (mints && session.id.is_some()).then_some(session)
}

/// Fetches what the event needs from the Stripe API. Called before any transaction.
pub async fn prepare(event: &Event, api: &StripeApi) -> Result<Prepared, ApiError> {
    let mut prepared = Prepared::default();
    if let Some(session) = session_to_mint(event) {
        let id = session.id.as_deref().unwrap_or_default();
        prepared.line_items = api.line_items(id).await?;
        if let Some(sub) = session.subscription.as_deref() {
            prepared.period_end = match api.subscription_period_end(sub).await {
                // A subscription Stripe will not show (deleted meanwhile, say) must not
                // hold up the keys: mint with the product's duration instead.
                Err(ApiError::Refused { status, message }) => {
                    tracing::warn!(subscription = %sub, status, %message, "cannot read the subscription");
                    None
                }
                other => other?,
            };
        }
    } else if event.event_type == "invoice.paid" {
        if let Some(invoice) = event::object::<Invoice>(event) {
            if let (None, Some(sub)) = (invoice.period_end(), invoice.subscription_id()) {
                prepared.period_end = api.subscription_period_end(sub).await?;
            }
        }
    }
    Ok(prepared)
}

/// Handles a verified event end to end: skips ids already processed (without calling
/// Stripe), fetches what is needed, then applies it in one transaction.
pub async fn process(
    pool: &Pool,
    api: &StripeApi,
    grace_days: u32,
    event: Event,
    raw: serde_json::Value,
) -> Result<Handled, AppError> {
    let id = event.id.clone();
    if db::run(pool, move |conn| Ok(stripe_events::is_recorded(conn, &id)?)).await? {
        return Ok(Handled {
            outcome: "duplicate".into(),
            duplicate: true,
            email_queued: false,
        });
    }
    let prepared = prepare(&event, api)
        .await
        .map_err(|e| AppError::StripeUnavailable(Box::new(e)))?;
    db::run(pool, move |conn| {
        apply(conn, &event, &raw, &prepared, grace_days, Utc::now())
    })
    .await
}

/// Records the event and makes every change it causes, in one transaction. An event id
/// seen before changes nothing.
pub fn apply(
    conn: &mut PgConnection,
    event: &Event,
    raw: &serde_json::Value,
    prepared: &Prepared,
    grace_days: u32,
    now: DateTime<Utc>,
) -> Result<Handled, AppError> {
    conn.transaction(|conn| {
        if !stripe_events::insert_new(conn, &event.id, &event.event_type, raw)? {
            return Ok(Handled {
                outcome: "duplicate".into(),
                duplicate: true,
                email_queued: false,
            });
        }
        let (outcome, email_queued) = effect(conn, event, prepared, grace_days, now)?;
        stripe_events::set_outcome(conn, &event.id, &outcome)?;
        tracing::info!(event_id = %event.id, event_type = %event.event_type, %outcome, "stripe event");
        Ok(Handled {
            outcome,
            duplicate: false,
            email_queued,
        })
    })
}

fn effect(
    conn: &mut PgConnection,
    event: &Event,
    prepared: &Prepared,
    grace_days: u32,
    now: DateTime<Utc>,
) -> Result<(String, bool), AppError> {
    let unreadable = || {
        (
            format!("ignored: data.object is not a {}", event.event_type),
            false,
        )
    };
    Ok(match event.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let Some(session) = event::object::<CheckoutSession>(event) else {
                return Ok(unreadable());
            };
            if session_to_mint(event).is_none() {
                let status = session.payment_status.as_deref().unwrap_or("unknown");
                return Ok((format!("awaiting payment (payment_status {status})"), false));
            }
            mint(conn, event, &session, prepared, grace_days, now)?
        }
        "charge.refunded" => {
            let Some(charge) = event::object::<Charge>(event) else {
                return Ok(unreadable());
            };
            match (charge.refunded, charge.payment_intent) {
                (Some(true), Some(pi)) => {
                    let n = set_status(conn, event, &pi, &["active", "suspended"], "revoked")?;
                    (format!("revoked {n} license(s): fully refunded"), false)
                }
                (Some(true), None) => ("ignored: the charge has no payment intent".into(), false),
                _ => ("ignored: partial refund".into(), false),
            }
        }
        "charge.dispute.created" => {
            let Some(pi) = event::object::<Dispute>(event).and_then(|d| d.payment_intent) else {
                return Ok(("ignored: the dispute has no payment intent".into(), false));
            };
            let n = set_status(conn, event, &pi, &["active"], "suspended")?;
            (format!("suspended {n} license(s): disputed"), false)
        }
        "charge.dispute.closed" => {
            let Some(dispute) = event::object::<Dispute>(event) else {
                return Ok(unreadable());
            };
            let Some(pi) = dispute.payment_intent else {
                return Ok(("ignored: the dispute has no payment intent".into(), false));
            };
            match dispute.status.as_deref() {
                Some(status @ ("won" | "warning_closed")) => {
                    let n = set_status(conn, event, &pi, &["suspended"], "active")?;
                    (
                        format!("reinstated {n} license(s): dispute {status}"),
                        false,
                    )
                }
                Some("lost") => {
                    let n = set_status(conn, event, &pi, &["active", "suspended"], "revoked")?;
                    (format!("revoked {n} license(s): dispute lost"), false)
                }
                other => (
                    format!(
                        "ignored: dispute closed with status {}",
                        other.unwrap_or("unknown")
                    ),
                    false,
                ),
            }
        }
        "invoice.paid" => {
            let Some(invoice) = event::object::<Invoice>(event) else {
                return Ok(unreadable());
            };
            let Some(sub) = invoice.subscription_id() else {
                return Ok(("ignored: not a subscription invoice".into(), false));
            };
            let Some(until) = invoice
                .period_end()
                .or(prepared.period_end)
                .and_then(|end| paid_until(end, grace_days))
            else {
                return Ok(("ignored: no period end on the invoice".into(), false));
            };
            let n = extend(conn, event, sub, until)?;
            (
                format!("extended {n} license(s) of {sub} to {}", until.to_rfc3339()),
                false,
            )
        }
        "customer.subscription.deleted" => {
            let Some(sub) = event::object::<Subscription>(event).and_then(|s| s.id) else {
                return Ok(unreadable());
            };
            let n = expire(conn, event, &sub, now)?;
            (format!("expired {n} license(s) of {sub}"), false)
        }
        _ => ("ignored: event type not handled".into(), false),
    })
}

/// Sets the status of the licenses paid by `payment_intent` whose status is one of
/// `from`, recording each change as the event's; returns how many changed.
fn set_status(
    conn: &mut PgConnection,
    event: &Event,
    payment_intent: &str,
    from: &[&str],
    to: &str,
) -> Result<usize, AppError> {
    let actor = Actor::Stripe(event.id.clone());
    let changed = stripe_events::set_status_by_payment_intent(conn, payment_intent, from, to)?;
    for (id, was) in &changed {
        let before = serde_json::json!({ "status": was });
        let after = serde_json::json!({ "status": to });
        history::record(conn, &actor, *id, "updated", Some(before), Some(after))?;
    }
    Ok(changed.len())
}

/// Records expiry changes made by an event.
fn record_expiry(
    conn: &mut PgConnection,
    event: &Event,
    changed: &[(Uuid, Option<DateTime<Utc>>)],
    to: DateTime<Utc>,
) -> Result<usize, AppError> {
    let actor = Actor::Stripe(event.id.clone());
    for (id, was) in changed {
        let before = serde_json::json!({ "expires_at": was });
        let after = serde_json::json!({ "expires_at": to });
        history::record(conn, &actor, *id, "updated", Some(before), Some(after))?;
    }
    Ok(changed.len())
}

fn extend(
    conn: &mut PgConnection,
    event: &Event,
    subscription: &str,
    until: DateTime<Utc>,
) -> Result<usize, AppError> {
    let changed = stripe_events::extend_subscription(conn, subscription, until)?;
    record_expiry(conn, event, &changed, until)
}

fn expire(
    conn: &mut PgConnection,
    event: &Event,
    subscription: &str,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let changed = stripe_events::expire_subscription(conn, subscription, now)?;
    record_expiry(conn, event, &changed, now)
}

/// Period end plus the grace days, as a time; `None` for an absurd timestamp.
fn paid_until(period_end: i64, grace_days: u32) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(period_end, 0)
        .single()?
        .checked_add_signed(Duration::days(grace_days.into()))
}

/// Mints `quantity` licenses per mapped line item and queues one email listing them.
/// The unique (session, line item, seq) constraint makes a second mint of the same
/// session a no-op, whichever event triggers it.
fn mint(
    conn: &mut PgConnection,
    event: &Event,
    session: &CheckoutSession,
    prepared: &Prepared,
    grace_days: u32,
    now: DateTime<Utc>,
) -> Result<(String, bool), AppError> {
    let session_id = session.id.clone().unwrap_or_default();
    let Some(email) = session
        .buyer_email()
        .filter(|e| (3..=320).contains(&e.len()))
    else {
        tracing::warn!(session = %session_id, "paid checkout without a usable customer email; nothing minted");
        return Ok(("skipped: the session has no customer email".into(), false));
    };
    let subscription_until = match (session.is_subscription(), prepared.period_end) {
        (true, Some(end)) => paid_until(end, grace_days),
        (true, None) => {
            tracing::warn!(session = %session_id, "subscription checkout without a period end; using the product's duration");
            None
        }
        _ => None,
    };
    let mut items = prepared.line_items.clone();
    // One order for every delivery, so concurrent mints of one session queue on the
    // same first row instead of deadlocking.
    items.sort_by(|a, b| a.id.cmp(&b.id));

    let actor = Actor::Stripe(event.id.clone());
    let mut minted: Vec<Uuid> = Vec::new();
    let mut unmapped = 0usize;
    let mut already = 0usize;
    for item in &items {
        let product = match item.price_id.as_deref() {
            Some(price) => products::by_price(conn, price)?,
            None => None,
        };
        let Some(product) = product else {
            tracing::warn!(session = %session_id, line_item = %item.id, price = ?item.price_id,
                "checkout line item's price is not mapped to any product; no license minted for it");
            unmapped += 1;
            continue;
        };
        let expires_at = subscription_until.or_else(|| {
            product
                .duration_days
                .map(|d| now + Duration::days(d.into()))
        });
        for seq in 0..item.quantity.min(MAX_QUANTITY) {
            let new = NewLicense {
                key: LicenseKey::generate(product.key_prefix.as_deref()).into_string(),
                product_id: product.id,
                email: email.to_owned(),
                customer_name: session.buyer_name().map(|n| n.chars().take(200).collect()),
                max_activations: product.max_activations,
                expires_at,
                source: "stripe".into(),
                stripe_checkout_session_id: Some(session_id.clone()),
                stripe_line_item_id: Some(item.id.clone()),
                // `seq` is below MAX_QUANTITY, so it fits.
                stripe_line_item_seq: Some(seq as i32),
                stripe_payment_intent_id: session.payment_intent.clone(),
                stripe_customer_id: session.customer.clone(),
                stripe_subscription_id: session.subscription.clone(),
                metadata: serde_json::json!({}),
            };
            match stripe_events::insert_minted(conn, &new)? {
                Some(license) => {
                    let snapshot = history::snapshot(&license);
                    history::record(conn, &actor, license.id, "created", None, Some(snapshot))?;
                    minted.push(license.id);
                }
                None => already += 1,
            }
        }
    }
    let queued = !minted.is_empty();
    if queued {
        let email_id = outbox::enqueue_license_email(conn, email, &minted)?;
        let after = serde_json::json!({ "email_id": email_id, "to": email });
        for id in &minted {
            history::record(conn, &actor, *id, "email_queued", None, Some(after.clone()))?;
        }
    }
    let mut outcome = format!("minted {} license(s)", minted.len());
    if already > 0 {
        outcome.push_str(&format!(", {already} already minted"));
    }
    if unmapped > 0 {
        outcome.push_str(&format!(
            ", {unmapped} line item(s) with an unmapped price skipped"
        ));
    }
    Ok((outcome, queued))
}
