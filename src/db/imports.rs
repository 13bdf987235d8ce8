//! Batched writes of `licensd import`: one multi-row insert per batch, keyed by the
//! source's own id so a re-run inserts nothing.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::models::NewActivation;
use super::schema::{activations, licenses};

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = licenses)]
pub struct NewImportedLicense {
    pub key: String,
    pub product_id: Uuid,
    pub status: String,
    pub email: String,
    pub customer_name: Option<String>,
    pub max_activations: Option<i32>,
    pub activations_count: i32,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: &'static str,
    pub import_source: &'static str,
    pub import_id: String,
    pub metadata: serde_json::Value,
}

/// Inserts the licenses that are not there yet; returns `(import_id, id)` of those
/// inserted. A row already imported (same source and id) or whose key another license
/// holds is skipped, never half-written.
pub fn insert_licenses(
    conn: &mut PgConnection,
    rows: &[NewImportedLicense],
) -> QueryResult<Vec<(Option<String>, Uuid)>> {
    diesel::insert_into(licenses::table)
        .values(rows)
        .on_conflict_do_nothing()
        .returning((licenses::import_id, licenses::id))
        .get_results(conn)
}

/// Which of `ids` this source has imported already.
pub fn already_imported(
    conn: &mut PgConnection,
    source: &str,
    ids: &[&str],
) -> QueryResult<Vec<Option<String>>> {
    licenses::table
        .filter(licenses::import_source.eq(source))
        .filter(licenses::import_id.eq_any(ids))
        .select(licenses::import_id)
        .load(conn)
}

pub fn insert_activations(
    conn: &mut PgConnection,
    rows: &[NewActivation<'_>],
) -> QueryResult<usize> {
    diesel::insert_into(activations::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
}
