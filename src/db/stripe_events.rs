//! The idempotency record of Stripe webhooks (one row per event id, ever) and the
//! license changes Stripe events cause.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::on_constraint;

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

#[derive(diesel::QueryableByName)]
struct StoredState {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    object: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    created: i64,
}

/// The subscription object of the newest `customer.subscription.*` event recorded for
/// `subscription`, with the event's `created` (unix seconds).
pub fn latest_subscription_state(
    conn: &mut PgConnection,
    subscription: &str,
) -> QueryResult<Option<(serde_json::Value, i64)>> {
    let row: Option<StoredState> = diesel::sql_query(
        "SELECT payload->'data'->'object' AS object, \
                trunc((payload->>'created')::numeric)::bigint AS created \
         FROM stripe_events \
         WHERE event_type LIKE 'customer.subscription.%' \
           AND jsonb_typeof(payload->'created') = 'number' \
           AND (payload->>'created')::numeric BETWEEN 0 AND 1e12 \
           AND payload->'data'->'object'->>'id' = $1 \
         ORDER BY (payload->>'created')::numeric DESC, received_at DESC \
         LIMIT 1",
    )
    .bind::<diesel::sql_types::Text, _>(subscription)
    .get_result(conn)
    .optional()?;
    Ok(row.map(|r| (r.object, r.created)))
}
