//! The email outbox: rows written in the same transaction as the change they report.

use diesel::prelude::*;
use uuid::Uuid;

use super::schema::email_outbox;

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
