//! The idempotency record of Stripe webhooks (one row per event id, ever) and the
//! license changes Stripe events cause.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::on_constraint;
use uuid::Uuid;

use super::models::{License, NewLicense};
use super::schema::{licenses, stripe_events};

/// Whether the event was already processed (a cheap read before any API call).
pub fn is_recorded(conn: &mut PgConnection, event_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(stripe_events::table.find(event_id))).get_result(conn)
}

/// Records the event if it is new. `false` means another delivery got there first;
/// a concurrent delivery waits on the primary key until the first one commits.
pub fn insert_new(
    conn: &mut PgConnection,
    event_id: &str,
    event_type: &str,
    payload: &serde_json::Value,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(stripe_events::table)
        .values((
            stripe_events::id.eq(event_id),
            stripe_events::event_type.eq(event_type),
            stripe_events::outcome.eq("processing"),
            stripe_events::payload.eq(payload),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

pub fn set_outcome(conn: &mut PgConnection, event_id: &str, outcome: &str) -> QueryResult<()> {
    diesel::update(stripe_events::table.find(event_id))
        .set(stripe_events::outcome.eq(outcome))
        .execute(conn)?;
    Ok(())
}

/// Inserts a license minted from a checkout line item, unless that (session, line
/// item, seq) was minted already: then `None`. The unique constraint decides, so
/// concurrent events for one session mint it once.
pub fn insert_minted(conn: &mut PgConnection, new: &NewLicense) -> QueryResult<Option<License>> {
    diesel::insert_into(licenses::table)
        .values(new)
        .on_conflict(on_constraint("licenses_stripe_line_item_unique"))
        .do_nothing()
        .returning(License::as_returning())
        .get_result(conn)
        .optional()
}

/// Sets `status` on the licenses paid by `payment_intent` whose status is one of `from`;
/// returns each changed license's id and its status before.
pub fn set_status_by_payment_intent(
    conn: &mut PgConnection,
    payment_intent: &str,
    from: &[&str],
    to: &str,
) -> QueryResult<Vec<(Uuid, String)>> {
    let before: Vec<(Uuid, String)> = licenses::table
        .filter(licenses::stripe_payment_intent_id.eq(payment_intent))
        .filter(licenses::status.eq_any(from))
        .select((licenses::id, licenses::status))
        .for_update()
        .load(conn)?;
    let ids: Vec<Uuid> = before.iter().map(|(id, _)| *id).collect();
    diesel::update(licenses::table.filter(licenses::id.eq_any(&ids)))
        .set((licenses::status.eq(to), licenses::updated_at.eq(Utc::now())))
        .execute(conn)?;
    Ok(before)
}

/// Moves the expiry of a subscription's licenses out to `until`, never in: perpetual
/// licenses and later expiries stay as they are. Returns each changed license's id and
/// its expiry before.
pub fn extend_subscription(
    conn: &mut PgConnection,
    subscription: &str,
    until: DateTime<Utc>,
) -> QueryResult<Vec<(Uuid, Option<DateTime<Utc>>)>> {
    let before: Vec<(Uuid, Option<DateTime<Utc>>)> = licenses::table
        .filter(licenses::stripe_subscription_id.eq(subscription))
        .filter(licenses::expires_at.lt(until))
        .select((licenses::id, licenses::expires_at))
        .for_update()
        .load(conn)?;
    set_expiry(conn, &before, until)?;
    Ok(before)
}

/// Ends a subscription's licenses at `now` (those not already expired). Returns each
/// changed license's id and its expiry before.
pub fn expire_subscription(
    conn: &mut PgConnection,
    subscription: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<(Uuid, Option<DateTime<Utc>>)>> {
    let before: Vec<(Uuid, Option<DateTime<Utc>>)> = licenses::table
        .filter(licenses::stripe_subscription_id.eq(subscription))
        .filter(
            licenses::expires_at
                .is_null()
                .or(licenses::expires_at.gt(now)),
        )
        .select((licenses::id, licenses::expires_at))
        .for_update()
        .load(conn)?;
    set_expiry(conn, &before, now)?;
    Ok(before)
}

fn set_expiry(
    conn: &mut PgConnection,
    rows: &[(Uuid, Option<DateTime<Utc>>)],
    to: DateTime<Utc>,
) -> QueryResult<()> {
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    diesel::update(licenses::table.filter(licenses::id.eq_any(&ids)))
        .set((
            licenses::expires_at.eq(to),
            licenses::updated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// An event as the dashboard lists it (without its payload).
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct EventSummary {
    pub id: String,
    pub event_type: String,
    pub received_at: DateTime<Utc>,
    pub outcome: String,
}

/// Events received since `since`, newest first (at most `limit`).
pub fn recent(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<EventSummary>> {
    stripe_events::table
        .filter(stripe_events::received_at.ge(since))
        .order(stripe_events::received_at.desc())
        .limit(limit)
        .select((
            stripe_events::id,
            stripe_events::event_type,
            stripe_events::received_at,
            stripe_events::outcome,
        ))
        .load(conn)
}
