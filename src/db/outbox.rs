//! The email outbox: rows written in the same transaction as the change they report,
//! claimed by the email worker with `FOR UPDATE SKIP LOCKED` and a lease.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{License, OutboxEmail, Product};
use super::schema::{email_outbox, licenses, products};

/// Queues the license email listing `license_ids` for `recipient`.
pub fn enqueue_license_email(
    conn: &mut PgConnection,
    recipient: &str,
    license_ids: &[Uuid],
) -> QueryResult<Uuid> {
    let ids: Vec<Option<Uuid>> = license_ids.iter().copied().map(Some).collect();
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::kind.eq("license_keys"),
            email_outbox::recipient.eq(recipient),
            email_outbox::license_ids.eq(ids),
        ))
        .returning(email_outbox::id)
        .get_result(conn)
}

/// Claims the next due email for `lease`: a pending row whose time has come, or a
/// `sending` row whose lease ran out (its worker died). Rows another worker holds
/// are skipped, so no two workers, in any process, claim the same row.
pub fn claim_next(
    conn: &mut PgConnection,
    lease_until: DateTime<Utc>,
) -> QueryResult<Option<OutboxEmail>> {
    conn.transaction(|conn| {
        let due = email_outbox::status
            .eq("pending")
            .and(email_outbox::next_attempt_at.le(now))
            .or(email_outbox::status
                .eq("sending")
                .and(email_outbox::locked_until.assume_not_null().lt(now)));
        let Some(id) = email_outbox::table
            .filter(due)
            .order(email_outbox::next_attempt_at)
            .select(email_outbox::id)
            .for_update()
            .skip_locked()
            .first::<Uuid>(conn)
            .optional()?
        else {
            return Ok(None);
        };
        diesel::update(email_outbox::table.find(id))
            .set((
                email_outbox::status.eq("sending"),
                email_outbox::locked_until.eq(lease_until),
                email_outbox::attempts.eq(email_outbox::attempts + 1),
            ))
            .returning(OutboxEmail::as_returning())
            .get_result(conn)
            .map(Some)
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
    Ok(())
}

/// The most recent email that lists this license.
pub fn latest_for_license(
    conn: &mut PgConnection,
    license_id: Uuid,
) -> QueryResult<Option<OutboxEmail>> {
    email_outbox::table
        .filter(email_outbox::license_ids.contains(vec![Some(license_id)]))
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
