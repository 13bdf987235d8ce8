//! What a subscription's life does to its licenses: quantity is seats, the price picks
//! the product, `past_due`/`unpaid` start a payment grace, `paused` suspends,
//! `trialing` ends at the trial end, `cancel_at_period_end` is shown, `canceled` ends.
//!
//! Stripe delivers events in any order. Each license keeps the time of the state it
//! shows (`subscription_state_at`: the event's `created`, or the time of an API read);
//! an older state never overwrites a newer one. Expiry only moves out ("at least until"),
//! except for the states that set it exactly (trialing, canceled), and those block the
//! older extensions that arrive after them, so every delivery order ends in one state.

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use serde_json::Value;

use crate::db::models::{License, Product};
use crate::db::products;
use crate::db::subscriptions::{self, StateChanges, EXACT_EXPIRY_STATES};
use crate::error::AppError;
use crate::licensing::history::{self, Actor};
use crate::stripe::event::Event;

/// The grace periods the seller configured.
#[derive(Debug, Clone, Copy)]
pub struct Grace {
    /// Days a license stays valid past its paid period.
    pub subscription_days: u32,
    /// Days a `past_due` or `unpaid` subscription keeps working, from the payment's due date.
    pub past_due_days: u32,
}

/// A subscription item: its price id and quantity.
pub type Item = (Option<String>, Option<i64>);

/// The parts of a Stripe subscription licensd acts on, read leniently from any API version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub ended_at: Option<i64>,
    pub items: Vec<Item>,
}

fn int(v: &Value, field: &str) -> Option<i64> {
    v.get(field).and_then(Value::as_i64)
}

impl SubscriptionState {
    /// Reads a subscription object; `None` without an id or a status.
    pub fn read(v: &Value) -> Option<Self> {
        let id = v.get("id")?.as_str().filter(|s| !s.is_empty())?.to_owned();
        let status = v.get("status")?.as_str()?.chars().take(64).collect();
        let items: Vec<&Value> = v
            .pointer("/items/data")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        // Current API versions put the period on each item, older ones on the subscription.
        let from_items = |f: &str, pick: fn(i64, i64) -> i64| {
            items.iter().filter_map(|i| int(i, f)).reduce(pick)
        };
        Some(SubscriptionState {
            id,
            status,
            cancel_at_period_end: v
                .get("cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            period_start: from_items("current_period_start", i64::min)
                .or_else(|| int(v, "current_period_start")),
            period_end: from_items("current_period_end", i64::max)
                .or_else(|| int(v, "current_period_end")),
            trial_end: int(v, "trial_end"),
            ended_at: int(v, "ended_at").or_else(|| int(v, "canceled_at")),
            items: items
                .iter()
                .map(|i| {
                    let price = i
                        .pointer("/price/id")
                        .or_else(|| i.pointer("/plan/id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    (price, int(i, "quantity"))
                })
                .collect(),
        })
    }

    fn is_past_due(&self) -> bool {
        matches!(self.status.as_str(), "past_due" | "unpaid")
    }
}

fn time(secs: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, 0).single()
}

fn plus_days(t: Option<DateTime<Utc>>, days: u32) -> Option<DateTime<Utc>> {
    t?.checked_add_signed(Duration::days(days.into()))
}

/// Applies the subscription's state, current as of `at`, to each of its licenses.
pub fn apply_state(
    conn: &mut PgConnection,
    event: &Event,
    state: &SubscriptionState,
    at: DateTime<Utc>,
    grace: Grace,
) -> Result<String, AppError> {
    let rows = subscriptions::lock_licenses(conn, &state.id)?;
    let (mut applied, mut stale) = (0, 0);
    for (license, product) in &rows {
        let changes = if license.subscription_state_at.is_none_or(|t| t <= at) {
            applied += 1;
            current_changes(conn, license, product, state, at, grace)?
        } else {
            stale += 1;
            stale_changes(license, state, grace)
        };
        if changes.updated_at.is_some() {
            let after = subscriptions::update(conn, license.id, &changes)?;
            history::record_update(conn, &stripe(event), license, &after, "updated")?;
        }
    }
    let mut outcome = format!(
        "subscription {} {}: {applied} license(s) updated",
        state.id, state.status
    );
    if stale > 0 {
        outcome.push_str(&format!(", {stale} already showing a newer state"));
    }
    Ok(outcome)
}

/// Where the state puts the expiry, and whether exactly (else: at least).
fn expiry_of(
    license: &License,
    state: &SubscriptionState,
    at: DateTime<Utc>,
    grace: Grace,
) -> Option<(DateTime<Utc>, bool)> {
    match state.status.as_str() {
        "canceled" | "incomplete_expired" => {
            Some((state.ended_at.and_then(time).unwrap_or(at), true))
        }
        "trialing" => Some((state.trial_end.or(state.period_end).and_then(time)?, true)),
        "active" => Some((
            plus_days(state.period_end.and_then(time), grace.subscription_days)?,
            false,
        )),
        "past_due" | "unpaid" => Some((past_due_until(state, at, grace)?, false)),
        // paused, incomplete: the expiry stays where the last payment put it.
        _ => license.expires_at.map(|t| (t, false)),
    }
}

/// The end of the payment grace: from the start of the unpaid period.
fn past_due_until(
    state: &SubscriptionState,
    at: DateTime<Utc>,
    grace: Grace,
) -> Option<DateTime<Utc>> {
    let due = state.period_start.and_then(time).unwrap_or(at);
    plus_days(Some(due), grace.past_due_days)
}

fn later(current: Option<DateTime<Utc>>, new: DateTime<Utc>) -> DateTime<Utc> {
    current.map_or(new, |c| c.max(new))
}

/// The changes of a state at least as new as the license's.
fn current_changes(
    conn: &mut PgConnection,
    license: &License,
    product: &Product,
    state: &SubscriptionState,
    at: DateTime<Utc>,
    grace: Grace,
) -> Result<StateChanges, AppError> {
    let expires_at = expiry_of(license, state, at, grace).map(|(t, exact)| {
        if exact {
            t
        } else {
            later(license.expires_at, t)
        }
    });
    let (product_id, max_activations) = seats(conn, license, product, state)?;
    Ok(StateChanges {
        subscription_status: Some(Some(state.status.clone())),
        subscription_state_at: Some(Some(at)),
        cancel_at_period_end: Some(state.cancel_at_period_end),
        past_due_until: Some(
            state
                .is_past_due()
                .then(|| past_due_until(state, at, grace))
                .flatten(),
        ),
        expires_at: expires_at.map(Some),
        product_id,
        max_activations,
        updated_at: Some(Utc::now()),
    })
}

/// An older state than the license shows: only an "at least" expiry, and only if the
/// newer state did not set the expiry exactly.
fn stale_changes(license: &License, state: &SubscriptionState, grace: Grace) -> StateChanges {
    let newer_is_exact = license
        .subscription_status
        .as_deref()
        .is_some_and(|s| EXACT_EXPIRY_STATES.contains(&s));
    let at = license.subscription_state_at.unwrap_or_else(Utc::now);
    let expires_at = match expiry_of(license, state, at, grace) {
        Some((t, false)) if !newer_is_exact => Some(Some(later(license.expires_at, t))),
        _ => None,
    };
    StateChanges {
        expires_at,
        updated_at: expires_at.map(|_| Utc::now()),
        ..Default::default()
    }
}

/// The subscription item this license follows: the only one, or the one whose price
/// sells the license's product.
fn item_of<'a>(
    conn: &mut PgConnection,
    license: &License,
    state: &'a SubscriptionState,
) -> Result<Option<&'a Item>, AppError> {
    if let [only] = state.items.as_slice() {
        return Ok(Some(only));
    }
    for item in &state.items {
        if let Some(price) = &item.0 {
            if products::by_price(conn, price)?.is_some_and(|p| p.id == license.product_id) {
                return Ok(Some(item));
            }
        }
    }
    Ok(None)
}

/// The product (moved when the item's price now sells another one) and the seats
/// (the product's devices per unit times the quantity) the item gives the license.
/// Fewer seats than devices removes none: the license shows `over_limit` and takes no
/// new device until enough are deactivated.
fn seats(
    conn: &mut PgConnection,
    license: &License,
    product: &Product,
    state: &SubscriptionState,
) -> Result<(Option<uuid::Uuid>, Option<Option<i32>>), AppError> {
    let Some((price, quantity)) = item_of(conn, license, state)? else {
        return Ok((None, None));
    };
    let moved = match price {
        Some(price) => products::by_price(conn, price)?.filter(|p| p.id != license.product_id),
        None => None,
    };
    let target = moved.as_ref().unwrap_or(product);
    let max = match (target.max_activations, quantity) {
        (Some(per_unit), Some(q)) if *q >= 1 => {
            Some(i32::try_from(i64::from(per_unit).saturating_mul(*q)).unwrap_or(i32::MAX))
        }
        (per_unit, _) => per_unit,
    };
    let changes_max = (moved.is_some() || quantity.is_some()).then_some(max);
    Ok((moved.map(|p| p.id), changes_max))
}

/// Applies the newest subscription state already received for `subscription` (events
/// Stripe delivered before the checkout that minted its licenses), so a license ends in
/// the same state whether its checkout came first or last.
pub fn catch_up(
    conn: &mut PgConnection,
    event: &Event,
    subscription: &str,
    grace: Grace,
) -> Result<(), AppError> {
    let Some((payload, created)) =
        crate::db::stripe_events::latest_subscription_state(conn, subscription)?
    else {
        return Ok(());
    };
    let Some(state) = SubscriptionState::read(&payload) else {
        return Ok(());
    };
    let at = time(created).unwrap_or_else(Utc::now);
    let outcome = apply_state(conn, event, &state, at, grace)?;
    tracing::info!(%subscription, %outcome, "applied a subscription state that arrived before its checkout");
    Ok(())
}

/// Seats for a subscription line item at checkout: devices per unit times quantity.
pub fn seats_for_quantity(per_unit: Option<i32>, quantity: u64) -> Option<i32> {
    per_unit.map(|n| {
        i32::try_from(i64::from(n).saturating_mul(i64::try_from(quantity).unwrap_or(i64::MAX)))
            .unwrap_or(i32::MAX)
    })
}

/// An invoice's subscription extends its licenses to `until`, unless a newer state set
/// their expiry exactly (see [`subscriptions::extend_paid`]).
pub fn extend_paid(
    conn: &mut PgConnection,
    event: &Event,
    subscription: &str,
    until: DateTime<Utc>,
    paid_at: DateTime<Utc>,
) -> Result<usize, AppError> {
    let changed = subscriptions::extend_paid(conn, subscription, until, paid_at)?;
    for (before, after) in &changed {
        history::record_update(conn, &stripe(event), before, after, "updated")?;
    }
    Ok(changed.len())
}

/// The event as the actor of the changes it makes.
fn stripe(event: &Event) -> Actor {
    Actor::Stripe(event.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_either_api_version() {
        let new = SubscriptionState::read(&json!({
            "id": "sub_1", "status": "past_due", "cancel_at_period_end": true,
            "items": {"data": [{"current_period_start": 10, "current_period_end": 20,
                                "price": {"id": "price_a"}, "quantity": 3}]}
        }))
        .unwrap();
        assert_eq!(new.period_start, Some(10));
        assert_eq!(new.period_end, Some(20));
        assert_eq!(new.items, vec![(Some("price_a".into()), Some(3))]);
        assert!(new.cancel_at_period_end && new.is_past_due());
        let old = SubscriptionState::read(&json!({
            "id": "sub_1", "status": "active", "current_period_end": 7,
            "items": {"data": [{"plan": {"id": "price_b"}}]}
        }))
        .unwrap();
        assert_eq!(old.period_end, Some(7));
        assert_eq!(old.items, vec![(Some("price_b".into()), None)]);
        assert!(SubscriptionState::read(&json!({"id": "sub_1"})).is_none());
        assert!(SubscriptionState::read(&json!("x")).is_none());
    }

    #[test]
    fn seats_are_devices_per_unit_times_quantity() {
        assert_eq!(seats_for_quantity(Some(2), 5), Some(10));
        assert_eq!(seats_for_quantity(None, 5), None);
        assert_eq!(seats_for_quantity(Some(i32::MAX), 1000), Some(i32::MAX));
    }
}
