//! The stored signing key: one row, created by whichever instance starts first.

use diesel::prelude::*;

use super::schema::signing_keys;

/// Returns the stored seed, storing `candidate` first if there is none. Race-safe across
/// instances: the insert does nothing when another instance got there first, and the
/// read returns whichever seed won.
pub fn get_or_create(conn: &mut PgConnection, candidate: &[u8; 32]) -> QueryResult<Vec<u8>> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::id.eq(1i16),
            signing_keys::seed.eq(&candidate[..]),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    signing_keys::table
        .find(1i16)
        .select(signing_keys::seed)
        .first(conn)
}
