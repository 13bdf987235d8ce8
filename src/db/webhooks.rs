//! Webhooks to the seller: endpoints, and the outbox of deliveries. [`announce`] is the
//! one recording point: every change that is announced writes its deliveries here, in
//! the transaction of the change.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use serde::Serialize;
use uuid::Uuid;

use super::schema::{webhook_deliveries, webhook_endpoints};

/// The Postgres channel on which a new delivery is announced (wakes every instance).
pub const CHANNEL: &str = "licensd_webhooks";

/// The event types a seller can receive.
pub const EVENT_TYPES: &[&str] = &[
    "license.created",
    "license.updated",
    "activation.created",
    "activation.deleted",
    "email.failed",
];

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    #[serde(skip)]
    pub previous_secret: Option<String>,
    pub event_types: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub id: Uuid,
    pub seq: i64,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub license_id: Option<Uuid>,
    #[serde(skip)]
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(skip)]
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Records one event for every enabled endpoint that takes its type:
/// `{id, type, created, data: {object}}`. Call it inside the change's transaction.
pub fn announce(
    conn: &mut PgConnection,
    event_type: &'static str,
    license_id: Option<Uuid>,
    object: &serde_json::Value,
) -> QueryResult<()> {
    let event_id = Uuid::new_v4();
    let now = Utc::now();
    let payload = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "created": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": { "object": object },
    });
    let n = diesel::sql_query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, license_id, payload, created_at)
         SELECT id, $1, $2, $3, $4, $5 FROM webhook_endpoints
         WHERE disabled_at IS NULL AND (cardinality(event_types) = 0 OR $2 = ANY (event_types))",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Text, _>(event_type)
    .bind::<Nullable<SqlUuid>, _>(license_id)
    .bind::<Jsonb, _>(&payload)
    .bind::<Timestamptz, _>(now)
    .execute(conn)?;
    if n > 0 {
        diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn)?;
    }
    Ok(())
}

pub fn create_endpoint(
    conn: &mut PgConnection,
    url: &str,
    secret: &str,
    event_types: &[String],
) -> QueryResult<Endpoint> {
    diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::url.eq(url),
            webhook_endpoints::secret.eq(secret),
            webhook_endpoints::event_types.eq(event_types),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
}

pub fn list_endpoints(conn: &mut PgConnection) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .select(Endpoint::as_select())
        .order(webhook_endpoints::created_at)
        .load(conn)
}

/// A new secret; the old one keeps signing (alongside) until the next rotation.
pub fn rotate_secret(conn: &mut PgConnection, id: Uuid, secret: &str) -> QueryResult<usize> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::previous_secret.eq(webhook_endpoints::secret.nullable()),
            webhook_endpoints::secret.eq(secret),
        ))
        .execute(conn)
}

pub fn delete_endpoint(conn: &mut PgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(webhook_endpoints::table.find(id)).execute(conn)
}

/// Claims up to `limit` due deliveries for `lease`. A delivery waits while an earlier
/// one of the same license to the same endpoint is still pending, so each license's
/// events arrive in order (as far as a retry allows: a delivery that gave up does not
/// hold back the rest).
pub fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
    lease: chrono::Duration,
) -> QueryResult<Vec<(Delivery, Endpoint)>> {
    conn.transaction(|conn| {
        let ids: Vec<Uuid> = diesel::sql_query(
            "SELECT d.id FROM webhook_deliveries d
             WHERE d.status = 'pending' AND d.next_attempt_at <= now()
               AND (d.locked_until IS NULL OR d.locked_until < now())
               AND (d.license_id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM webhook_deliveries e
                    WHERE e.endpoint_id = d.endpoint_id AND e.license_id = d.license_id
                      AND e.status = 'pending' AND e.seq < d.seq))
             ORDER BY d.seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load::<IdRow>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
            .set(webhook_deliveries::locked_until.eq(Utc::now() + lease))
            .execute(conn)?;
        webhook_deliveries::table
            .inner_join(webhook_endpoints::table)
            .filter(webhook_deliveries::id.eq_any(&ids))
            .order(webhook_deliveries::seq)
            .select((Delivery::as_select(), Endpoint::as_select()))
            .load(conn)
    })
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

pub fn mark_delivered(conn: &mut PgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq("delivered"),
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::delivered_at.eq(diesel::dsl::now),
            webhook_deliveries::locked_until.eq(None::<DateTime<Utc>>),
            webhook_deliveries::last_error.eq(None::<String>),
        ))
        .execute(conn)
}

/// Records a failed attempt: retried at `next`, or given up (`failed`).
pub fn mark_attempt_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
    next: DateTime<Utc>,
    give_up: bool,
) -> QueryResult<usize> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq(if give_up { "failed" } else { "pending" }),
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::locked_until.eq(None::<DateTime<Utc>>),
            webhook_deliveries::last_error.eq(error),
        ))
        .execute(conn)
}

/// Sends a delivery again now (whatever its status), keeping its attempts and history.
pub fn redeliver(conn: &mut PgConnection, id: Uuid) -> QueryResult<usize> {
    let n = diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq("pending"),
            webhook_deliveries::next_attempt_at.eq(diesel::dsl::now),
            webhook_deliveries::locked_until.eq(None::<DateTime<Utc>>),
            webhook_deliveries::delivered_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)?;
    diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn)?;
    Ok(n)
}

/// The latest deliveries, newest first, optionally of one status.
pub fn list_deliveries(
    conn: &mut PgConnection,
    status: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    let mut q = webhook_deliveries::table
        .select(Delivery::as_select())
        .order(webhook_deliveries::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(webhook_deliveries::status.eq(s.to_owned()));
    }
    q.load(conn)
}
