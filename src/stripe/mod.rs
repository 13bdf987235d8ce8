//! What a Stripe event does to licenses.
//!
//! An event is handled in two steps: [`prepare`] fetches what it needs from the Stripe
//! API (line items, a subscription's period) before any transaction is open, so a
//! Stripe outage stores nothing; [`apply`] then records the event id and makes every
//! change it causes (licenses, the outbox row) in one transaction, so each event id
//! takes effect at most once.

pub mod api;
pub mod event;
pub mod reversal;
pub mod signature;
pub mod subscription;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::models::NewLicense;
use crate::db::{self, outbox, products, stripe_events, Pool};
use crate::error::AppError;
use crate::licensing::history::{self, Actor};
use crate::licensing::LicenseKey;
pub use api::{ApiError, LineItem, StripeApi};
use event::{CheckoutSession, Event, Invoice};
pub use subscription::Grace;

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

/// Reads a verified body as an event, keeping the raw JSON to store. NUL characters,
/// which Postgres holds in neither `text` nor `jsonb`, become U+FFFD wherever they are
/// (keys included), so any event Stripe sends can be stored and acted on.
pub fn parse(body: &[u8]) -> Result<(Event, serde_json::Value), AppError> {
    let mut raw: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request("invalid_event", format!("the event is not JSON: {e}"))
    })?;
    replace_nul(&mut raw);
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

/// Replaces every NUL in the strings and keys of `value` with U+FFFD.
fn replace_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    const NUL: char = '\0';
    match value {
        Value::String(s) if s.contains(NUL) => *s = s.replace(NUL, "\u{fffd}"),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains(NUL)) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (k.replace(NUL, "\u{fffd}"), v))
                    .collect();
            }
            map.values_mut().for_each(replace_nul);
        }
        _ => {}
    }
}

/// What [`apply`] needs from the Stripe API, fetched beforehand.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub line_items: Vec<LineItem>,
    /// End of the paid subscription period (unix seconds), for subscription checkouts
    /// and invoices that do not carry it.
    pub period_end: Option<i64>,
    /// The subscription as the API showed it, and when (for `invoice.payment_failed`).
    pub subscription: Option<(serde_json::Value, DateTime<Utc>)>,
    /// For a refund or dispute: the payment, and the subscription it paid for.
    pub reversal: Option<db::reversals::Payment>,
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
                // Only "no such object"; 429, 5xx and network errors are a 503 (retried).
                Err(ApiError::Missing { message }) => {
                    tracing::warn!(subscription = %sub, %message, "the subscription does not exist");
                    None
                }
                other => other?,
            };
        }
    } else if event.event_type == "invoice.payment_failed" {
        prepared.subscription = failed_invoice_subscription(event, api).await?;
    } else if let Some(payment) = reversal::payment_of(event, api).await? {
        prepared.reversal = Some(payment);
    } else if event.event_type == "invoice.paid" {
        if let Some(invoice) = event::object::<Invoice>(event) {
            if let (None, Some(sub)) = (invoice.period_end(), invoice.subscription_id()) {
                prepared.period_end = api.subscription_period_end(sub).await?;
            }
        }
    }
    Ok(prepared)
}

/// The subscription of a failed invoice, read from the API (the invoice does not say
/// the subscription's status); `None` when Stripe no longer shows it.
async fn failed_invoice_subscription(
    event: &Event,
    api: &StripeApi,
) -> Result<Option<(serde_json::Value, DateTime<Utc>)>, ApiError> {
    let Some(invoice) = event::object::<Invoice>(event) else {
        return Ok(None);
    };
    let Some(sub) = invoice.subscription_id() else {
        return Ok(None);
    };
    match api.subscription_object(sub).await {
        Ok(value) => Ok(Some((value, Utc::now()))),
        Err(ApiError::Missing { message }) => {
            tracing::warn!(subscription = %sub, %message, "the subscription of a failed invoice no longer exists");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Handles a verified event end to end: skips ids already processed (without calling
/// Stripe), fetches what is needed, then applies it in one transaction.
pub async fn process(
    pool: &Pool,
    api: &StripeApi,
    grace: Grace,
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
        apply(conn, &event, &raw, &prepared, grace, Utc::now())
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
    grace: Grace,
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
        let (outcome, email_queued) = effect(conn, event, prepared, grace, now)?;
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
    grace: Grace,
    now: DateTime<Utc>,
) -> Result<(String, bool), AppError> {
    let grace_days = grace.subscription_days;
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
            mint(conn, event, &session, prepared, grace, now)?
        }
        "charge.refunded" => (
            reversal::refunded(conn, event, prepared.reversal.as_ref())?,
            false,
        ),
        "charge.dispute.created" => (
            reversal::dispute_created(conn, event, prepared.reversal.as_ref())?,
            false,
        ),
        "charge.dispute.closed" => (
            reversal::dispute_closed(conn, event, prepared.reversal.as_ref())?,
            false,
        ),
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
            let paid_at = event_time(event, now);
            let n = subscription::extend_paid(conn, event, sub, until, paid_at)?;
            (
                format!("extended {n} license(s) of {sub} to {}", until.to_rfc3339()),
                false,
            )
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.paused"
        | "customer.subscription.resumed"
        | "customer.subscription.trial_will_end"
        | "customer.subscription.deleted" => subscription_changed(conn, event, grace, now)?,
        "invoice.payment_failed" => payment_failed(conn, event, prepared, grace)?,
        _ => ("ignored: event type not handled".into(), false),
    })
}

/// When Stripe created the event; `now` if it does not say.
fn event_time(event: &Event, now: DateTime<Utc>) -> DateTime<Utc> {
    event
        .created
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .unwrap_or(now)
}

/// `customer.subscription.*`: the event carries the whole subscription, current as of
/// the event's `created`.
fn subscription_changed(
    conn: &mut PgConnection,
    event: &Event,
    grace: Grace,
    now: DateTime<Utc>,
) -> Result<(String, bool), AppError> {
    let Some(state) = subscription::SubscriptionState::read(&event.data.object) else {
        return Ok(("ignored: data.object is not a subscription".into(), false));
    };
    let outcome = subscription::apply_state(conn, event, &state, event_time(event, now), grace)?;
    Ok((outcome, false))
}

/// `invoice.payment_failed`: the subscription as the API showed it while preparing.
fn payment_failed(
    conn: &mut PgConnection,
    event: &Event,
    prepared: &Prepared,
    grace: Grace,
) -> Result<(String, bool), AppError> {
    let Some((value, read_at)) = &prepared.subscription else {
        return Ok((
            "ignored: no subscription to read for this invoice".into(),
            false,
        ));
    };
    let Some(state) = subscription::SubscriptionState::read(value) else {
        return Ok((
            "ignored: the API did not answer a subscription".into(),
            false,
        ));
    };
    Ok((
        subscription::apply_state(conn, event, &state, *read_at, grace)?,
        false,
    ))
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
    grace: Grace,
    now: DateTime<Utc>,
) -> Result<(String, bool), AppError> {
    let grace_days = grace.subscription_days;
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
        // A subscription's quantity is seats on one license (so it can change later);
        // a one-off purchase mints one license per unit.
        let (count, max_activations) = if session.is_subscription() {
            let seats = subscription::seats_for_quantity(product.max_activations, item.quantity);
            (1, seats)
        } else {
            (item.quantity.min(MAX_QUANTITY), product.max_activations)
        };
        for seq in 0..count {
            let new = NewLicense {
                key: LicenseKey::generate(product.key_prefix.as_deref()).into_string(),
                product_id: product.id,
                email: email.to_owned(),
                customer_name: session.buyer_name().map(|n| n.chars().take(200).collect()),
                max_activations,
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
                ..Default::default()
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
    // Subscription events that arrived before the checkout apply now.
    if let (false, Some(sub)) = (minted.is_empty(), session.subscription.as_deref()) {
        subscription::catch_up(conn, event, sub, grace)?;
    }
    // A refund or dispute that Stripe delivered before this checkout applies now.
    let reversed = match minted.is_empty() {
        true => None,
        false => reversal::at_mint(conn, event, session)?,
    };
    // Keys refunded before they were minted are not sent.
    let queued = !minted.is_empty() && reversed != Some(db::reversals::Action::Revoke);
    if queued {
        let email_id = outbox::enqueue_license_email(conn, email, &minted)?;
        let after = serde_json::json!({ "email_id": email_id, "to": email });
        for id in &minted {
            history::record(conn, &actor, *id, "email_queued", None, Some(after.clone()))?;
        }
    }
    let mut outcome = format!("minted {} license(s)", minted.len());
    if let Some(action) = reversed {
        outcome.push_str(reversal::at_mint_note(action));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Any JSON value, strings drawn with NULs and other control characters in them.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[\\x00-\\x1f a-z\\u{fffd}]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[\\x00a-z_]{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }

    proptest! {
        // Bounded, so it runs in every `cargo test` (CI's test command).
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_bytes_parse_or_are_a_400(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Err(e) = parse(&body) {
                prop_assert_eq!(e.code(), "invalid_event");
            }
        }

        #[test]
        fn any_event_shaped_json_parses_without_nul_and_every_object_reads(
            id in "[\\x00a-z_0-9]{1,20}",
            event_type in prop_oneof![
                Just("checkout.session.completed".to_owned()),
                Just("charge.refunded".to_owned()),
                Just("charge.dispute.closed".to_owned()),
                Just("invoice.paid".to_owned()),
                "[\\x00a-z.]{0,20}",
            ],
            object in any_json(),
            extra in any_json(),
        ) {
            let body = json!({ "id": id, "type": event_type, "data": { "object": object }, "extra": extra });
            let (event, raw) = parse(body.to_string().as_bytes()).expect("an event with an id and a type");
            prop_assert!(!has_nul(&raw));
            prop_assert!(!event.id.contains('\0') && !event.event_type.contains('\0'));
            // Reading any object as any event type never panics.
            let _ = session_to_mint(&event);
            let _ = event::object::<event::Charge>(&event);
            let _ = event::object::<event::Dispute>(&event);
            let _ = event::object::<Invoice>(&event).map(|i| i.period_end());
            let _ = event::object::<event::Subscription>(&event).map(|s| s.period_end());
        }
    }
}
