//! Activation rows: one per device (fingerprint) per license.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{Activation, NewActivation};
use super::schema::activations;

/// Inserts the activation unless the fingerprint is already activated on the license;
/// `None` means it was (the unique constraint decides, under any concurrency).
pub fn insert_if_new(
    conn: &mut PgConnection,
    new: &NewActivation<'_>,
) -> QueryResult<Option<Activation>> {
    diesel::insert_into(activations::table)
        .values(new)
        .on_conflict((activations::license_id, activations::fingerprint))
        .do_nothing()
        .returning(Activation::as_returning())
        .get_result(conn)
        .optional()
}

pub fn find_by_fingerprint(
    conn: &mut PgConnection,
    license_id: Uuid,
    fingerprint: &str,
) -> QueryResult<Option<Activation>> {
    activations::table
        .filter(activations::license_id.eq(license_id))
        .filter(activations::fingerprint.eq(fingerprint))
        .select(Activation::as_select())
        .first(conn)
        .optional()
}

pub fn list_for(conn: &mut PgConnection, license_id: Uuid) -> QueryResult<Vec<Activation>> {
    activations::table
        .filter(activations::license_id.eq(license_id))
        .order((activations::created_at, activations::id))
        .select(Activation::as_select())
        .load(conn)
}

/// Refreshes the fingerprint's activation now (it is in use), returning it; `None`
/// when there is no such activation (any more).
pub fn touch(
    conn: &mut PgConnection,
    license_id: Uuid,
    fingerprint: &str,
) -> QueryResult<Option<Activation>> {
    diesel::update(
        activations::table
            .filter(activations::license_id.eq(license_id))
            .filter(activations::fingerprint.eq(fingerprint)),
    )
    .set(activations::last_seen_at.eq(Utc::now()))
    .returning(Activation::as_returning())
    .get_result(conn)
    .optional()
}

/// Deletes the license's activations last seen before `before`, except `keep` (the
/// device asking, which is about to be refreshed), returning them.
pub fn delete_dead(
    conn: &mut PgConnection,
    license_id: Uuid,
    before: DateTime<Utc>,
    keep: &str,
) -> QueryResult<Vec<Activation>> {
    diesel::delete(
        activations::table
            .filter(activations::license_id.eq(license_id))
            .filter(activations::last_seen_at.lt(before))
            .filter(activations::fingerprint.ne(keep)),
    )
    .returning(Activation::as_returning())
    .get_results(conn)
}

/// Which activation of a license to remove.
#[derive(Debug, Clone)]
pub enum Selector {
    Fingerprint(String),
    Id(Uuid),
}

pub fn delete(
    conn: &mut PgConnection,
    license_id: Uuid,
    which: &Selector,
) -> QueryResult<Option<Activation>> {
    let scoped = activations::table.filter(activations::license_id.eq(license_id));
    let deleted = match which {
        Selector::Fingerprint(fp) => diesel::delete(scoped.filter(activations::fingerprint.eq(fp)))
            .returning(Activation::as_returning())
            .get_result(conn),
        Selector::Id(id) => diesel::delete(scoped.filter(activations::id.eq(id)))
            .returning(Activation::as_returning())
            .get_result(conn),
    };
    deleted.optional()
}

/// Removes every activation of a license, returning them.
pub fn delete_all(conn: &mut PgConnection, license_id: Uuid) -> QueryResult<Vec<Activation>> {
    diesel::delete(activations::table.filter(activations::license_id.eq(license_id)))
        .returning(Activation::as_returning())
        .get_results(conn)
}

/// Refreshes `last_seen_at` unless it was refreshed within `min_interval`: the
/// throttle that keeps the validate path free of a write per call.
pub fn touch_if_stale(
    conn: &mut PgConnection,
    activation: &Activation,
    min_interval: Duration,
) -> QueryResult<()> {
    let now = Utc::now();
    if now - activation.last_seen_at < min_interval {
        return Ok(());
    }
    diesel::update(activations::table.find(activation.id))
        .filter(activations::last_seen_at.lt(now - min_interval))
        .set(activations::last_seen_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Writes many `last_seen_at` refreshes in one statement (the validate cache's batch):
/// `ids[i]` was seen at `seen[i]`; a row refreshed within `interval_secs[i]` of that is
/// left alone, so a refresh another instance already wrote does not write (or notify)
/// again, and `last_seen_at` never moves back.
pub fn touch_many(
    conn: &mut PgConnection,
    ids: &[Uuid],
    seen: &[chrono::DateTime<Utc>],
    interval_secs: &[f64],
) -> QueryResult<usize> {
    use diesel::sql_types::{Array, Double, Timestamptz};
    diesel::sql_query(
        "UPDATE activations AS a SET last_seen_at = v.t \
         FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[]) AS v(id, t, secs) \
         WHERE a.id = v.id AND a.last_seen_at < v.t - make_interval(secs => v.secs)",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<Array<Timestamptz>, _>(seen)
    .bind::<Array<Double>, _>(interval_secs)
    .execute(conn)
}

/// One page of activations (oldest first), of one license or of all, and the total.
pub fn page(
    conn: &mut PgConnection,
    license_id: Option<Uuid>,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<Activation>, i64)> {
    let scoped = || {
        let q = activations::table.into_boxed();
        match license_id {
            Some(id) => q.filter(activations::license_id.eq(id)),
            None => q,
        }
    };
    let total: i64 = scoped().count().get_result(conn)?;
    let rows = scoped()
        .order((activations::created_at, activations::id))
        .offset((page - 1) * per_page)
        .limit(per_page)
        .select(Activation::as_select())
        .load(conn)?;
    Ok((rows, total))
}
