//! The append-only license history: one row per change, never updated or deleted
//! (a trigger refuses both).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::license_history;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = license_history, check_for_backend(diesel::pg::Pg))]
pub struct HistoryRow {
    pub id: i64,
    pub license_id: Uuid,
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = license_history)]
pub struct NewHistoryRow<'a> {
    pub license_id: Uuid,
    pub actor_kind: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
}

pub fn insert(conn: &mut PgConnection, row: &NewHistoryRow<'_>) -> QueryResult<HistoryRow> {
    diesel::insert_into(license_history::table)
        .values(row)
        .returning(HistoryRow::as_returning())
        .get_result(conn)
}

/// A license's history, oldest first (at most `limit` rows, the newest ones).
pub fn list_for(
    conn: &mut PgConnection,
    license_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<HistoryRow>> {
    let mut rows: Vec<HistoryRow> = license_history::table
        .filter(license_history::license_id.eq(license_id))
        .order(license_history::id.desc())
        .limit(limit)
        .select(HistoryRow::as_select())
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// When `actor_kind` last recorded `action` on a license.
pub fn last_at(
    conn: &mut PgConnection,
    license_id: Uuid,
    actor_kind: &str,
    action: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    license_history::table
        .filter(license_history::license_id.eq(license_id))
        .filter(license_history::actor_kind.eq(actor_kind))
        .filter(license_history::action.eq(action))
        .order(license_history::id.desc())
        .select(license_history::at)
        .first(conn)
        .optional()
}
