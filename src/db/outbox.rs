//! The email outbox: rows written in the same transaction as the change they report,
//! claimed by the email worker with `FOR UPDATE SKIP LOCKED` and a lease.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{License, OutboxEmail, Product};
use super::schema::{email_outbox, licenses, products};

/// The Postgres channel on which a queued email is announced, so the email worker of
/// every instance wakes at once (see `email::worker`).
pub const CHANNEL: &str = "licensd_outbox";

/// Queues the license email listing `license_ids` for `recipient`, and announces it
/// on [`CHANNEL`]. Inside a transaction the announcement goes out only on commit.
pub fn enqueue_license_email(
    conn: &mut PgConnection,
    recipient: &str,
    license_ids: &[Uuid],
) -> QueryResult<Uuid> {
    let ids: Vec<Option<Uuid>> = license_ids.iter().copied().map(Some).collect();
    let id = diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::kind.eq("license_keys"),
            email_outbox::recipient.eq(recipient),
            email_outbox::license_ids.eq(ids),
        ))
        .returning(email_outbox::id)
        .get_result(conn)?;
    diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn)?;
    Ok(id)
}

/// Queues a portal sign-in link for `recipient` (whose licenses are `license_ids`).
pub fn enqueue_portal_link(
    conn: &mut PgConnection,
    recipient: &str,
    license_ids: &[Uuid],
    link_url: &str,
) -> QueryResult<Uuid> {
    let ids: Vec<Option<Uuid>> = license_ids.iter().copied().map(Some).collect();
    let id = diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::kind.eq("portal_link"),
            email_outbox::recipient.eq(recipient),
            email_outbox::license_ids.eq(ids),
            email_outbox::link_url.eq(link_url),
        ))
        .returning(email_outbox::id)
        .get_result(conn)?;
    diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn)?;
    Ok(id)
}

/// Claims up to `limit` due emails for `lease`: pending rows whose time has come, or
/// `sending` rows whose lease ran out (their worker died). Rows another worker holds
/// are skipped, so no two workers, in any process, claim the same row.
pub fn claim_due(
    conn: &mut PgConnection,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> QueryResult<Vec<OutboxEmail>> {
    conn.transaction(|conn| {
        let due = email_outbox::status
            .eq("pending")
            .and(email_outbox::next_attempt_at.le(now))
            .or(email_outbox::status
                .eq("sending")
                .and(email_outbox::locked_until.assume_not_null().lt(now)));
        let ids: Vec<Uuid> = email_outbox::table
            .filter(due)
            .order(email_outbox::next_attempt_at)
            .select(email_outbox::id)
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .for_update()
            .skip_locked()
            .load(conn)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut claimed: Vec<OutboxEmail> =
            diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(ids)))
                .set((
                    email_outbox::status.eq("sending"),
                    email_outbox::locked_until.eq(lease_until),
                    email_outbox::attempts.eq(email_outbox::attempts + 1),
                ))
                .returning(OutboxEmail::as_returning())
                .get_results(conn)?;
        claimed.sort_by_key(|e| e.next_attempt_at);
        Ok(claimed)
    })
}

/// Marks a claimed email sent. `false` if the claim had been lost meanwhile.
pub fn mark_sent(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    let n = diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::status.eq("sending")),
    )
    .set((
        email_outbox::status.eq("sent"),
        email_outbox::sent_at.eq(Utc::now()),
        email_outbox::locked_until.eq(None::<DateTime<Utc>>),
        email_outbox::last_error.eq(None::<String>),
        email_outbox::link_url.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records a failed attempt: back to `pending` until `next_attempt_at`, or `failed`
/// when no more attempts are due.
pub fn mark_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
    next_attempt_at: DateTime<Utc>,
    give_up: bool,
) -> QueryResult<()> {
    diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::status.eq("sending")),
    )
    .set((
        email_outbox::status.eq(if give_up { "failed" } else { "pending" }),
        email_outbox::last_error.eq(error),
        email_outbox::next_attempt_at.eq(next_attempt_at),
        email_outbox::locked_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)?;
    if give_up {
        diesel::update(email_outbox::table.find(id))
            .set(email_outbox::link_url.eq(None::<String>))
            .execute(conn)?;
    }
    Ok(())
}

/// An email to `recipient` listing exactly this license that has not gone out yet
/// (queued, between retries, or being sent): a resend joins it instead of queueing
/// another. One waiting for a retry is made due at once.
pub fn hurry_pending(
    conn: &mut PgConnection,
    license_id: Uuid,
    recipient: &str,
) -> QueryResult<Option<Uuid>> {
    let found: Option<Uuid> = email_outbox::table
        .filter(email_outbox::license_ids.eq(vec![Some(license_id)]))
        .filter(email_outbox::recipient.eq(recipient))
        .filter(email_outbox::status.eq_any(["pending", "sending"]))
        .order(email_outbox::created_at.desc())
        .select(email_outbox::id)
        .first(conn)
        .optional()?;
    if let Some(id) = found {
        diesel::update(
            email_outbox::table
                .find(id)
                .filter(email_outbox::status.eq("pending")),
        )
        .set(email_outbox::next_attempt_at.eq(now))
        .execute(conn)?;
        diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn)?;
    }
    Ok(found)
}

/// The emails listing this license queued since `since`: how many, and the oldest's time.
pub fn queued_since(
    conn: &mut PgConnection,
    license_id: Uuid,
    since: DateTime<Utc>,
) -> QueryResult<(i64, Option<DateTime<Utc>>)> {
    email_outbox::table
        .filter(email_outbox::license_ids.contains(vec![Some(license_id)]))
        .filter(email_outbox::created_at.gt(since))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(email_outbox::created_at),
        ))
        .first(conn)
}

/// The most recent email that lists this license.
pub fn latest_for_license(
    conn: &mut PgConnection,
    license_id: Uuid,
) -> QueryResult<Option<OutboxEmail>> {
    email_outbox::table
        .filter(email_outbox::license_ids.contains(vec![Some(license_id)]))
        .filter(email_outbox::kind.eq("license_keys"))
        .order((email_outbox::created_at.desc(), email_outbox::id.desc()))
        .select(OutboxEmail::as_select())
        .first(conn)
        .optional()
}

/// The licenses an email lists, with their products, in minting order.
pub fn licenses_of(
    conn: &mut PgConnection,
    email: &OutboxEmail,
) -> QueryResult<Vec<(License, Product)>> {
    let ids: Vec<Uuid> = email.license_ids.iter().flatten().copied().collect();
    licenses::table
        .inner_join(products::table)
        .filter(licenses::id.eq_any(ids))
        .order((
            licenses::created_at,
            licenses::stripe_line_item_id,
            licenses::stripe_line_item_seq,
            licenses::id,
        ))
        .select((License::as_select(), Product::as_select()))
        .load(conn)
}

/// The newest emails in one status (`pending` or `failed`), for the dashboard.
pub fn in_status(
    conn: &mut PgConnection,
    status: &str,
    limit: i64,
) -> QueryResult<Vec<OutboxEmail>> {
    email_outbox::table
        .filter(email_outbox::status.eq(status))
        .order(email_outbox::created_at.desc())
        .limit(limit)
        .select(OutboxEmail::as_select())
        .load(conn)
}

/// How many emails are pending (or sending) and failed.
pub fn counts(conn: &mut PgConnection) -> QueryResult<(i64, i64)> {
    let pending = email_outbox::table
        .filter(email_outbox::status.eq_any(["pending", "sending"]))
        .count()
        .get_result(conn)?;
    let failed = email_outbox::table
        .filter(email_outbox::status.eq("failed"))
        .count()
        .get_result(conn)?;
    Ok((pending, failed))
}

/// Puts a failed email back in the queue, due now; `None` unless it was failed.
pub fn retry(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<OutboxEmail>> {
    let row = diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::status.eq("failed")),
    )
    .set((
        email_outbox::status.eq("pending"),
        email_outbox::attempts.eq(0),
        email_outbox::next_attempt_at.eq(Utc::now()),
    ))
    .returning(OutboxEmail::as_returning())
    .get_result(conn)
    .optional()?;
    if row.is_some() {
        diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn)?;
    }
    Ok(row)
}
