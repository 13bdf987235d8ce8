//! Read-only figures for monitoring (the metrics endpoint).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable};

#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct OutboxBacklog {
    /// Emails not yet sent (pending, or claimed by a worker and being sent).
    #[diesel(sql_type = BigInt)]
    pub depth: i64,
    /// Seconds since the oldest of them was queued; `None` when there are none.
    #[diesel(sql_type = Nullable<Double>)]
    pub oldest_age_secs: Option<f64>,
}

/// The unsent part of the email outbox (served by the partial `email_outbox_due_idx`).
pub fn outbox_backlog(conn: &mut PgConnection) -> QueryResult<OutboxBacklog> {
    diesel::sql_query(
        "SELECT count(*) AS depth, \
                extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_secs \
         FROM email_outbox WHERE status IN ('pending', 'sending')",
    )
    .get_result(conn)
}
