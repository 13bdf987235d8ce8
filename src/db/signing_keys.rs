//! The stored signing keys: a key set with one `current` key (it signs) and `published`
//! keys (they signed earlier answers and still verify) until they are `retired`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::signing_keys;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys, check_for_backend(diesel::pg::Pg))]
pub struct StoredKey {
    pub id: i32,
    pub seed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Every key, newest first (retired ones included).
pub fn all(conn: &mut PgConnection) -> QueryResult<Vec<StoredKey>> {
    signing_keys::table
        .select(StoredKey::as_select())
        .order(signing_keys::id.desc())
        .load(conn)
}

/// Stores `candidate` as the current key unless there is one already. Race-safe across
/// instances: the partial unique index on `status = 'current'` lets one insert win.
pub fn ensure_current(conn: &mut PgConnection, candidate: &[u8; 32]) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::seed.eq(&candidate[..]),
            signing_keys::status.eq("current"),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Makes `seed` the current key; the previous current key stays published.
pub fn rotate(conn: &mut PgConnection, seed: &[u8; 32]) -> QueryResult<()> {
    conn.transaction(|conn| {
        diesel::update(signing_keys::table.filter(signing_keys::status.eq("current")))
            .set(signing_keys::status.eq("published"))
            .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values((
                signing_keys::seed.eq(&seed[..]),
                signing_keys::status.eq("current"),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Retires a published key (never the current one). Returns whether a row changed.
pub fn retire(conn: &mut PgConnection, id: i32) -> QueryResult<bool> {
    let n = diesel::update(
        signing_keys::table
            .find(id)
            .filter(signing_keys::status.eq("published")),
    )
    .set((
        signing_keys::status.eq("retired"),
        signing_keys::retired_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
