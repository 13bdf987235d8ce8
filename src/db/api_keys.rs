//! Admin API tokens, stored as SHA-256 hashes only.

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::models::ApiKey;
use super::schema::api_keys;

pub fn insert(conn: &mut PgConnection, name: &str, token_sha256: &[u8]) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::name.eq(name),
            api_keys::token_sha256.eq(token_sha256),
        ))
        .returning(ApiKey::as_returning())
        .get_result(conn)
}

/// The unrevoked key with this token hash; records its use at most once a minute.
pub fn authenticate(conn: &mut PgConnection, token_sha256: &[u8]) -> QueryResult<Option<ApiKey>> {
    let key = api_keys::table
        .filter(api_keys::token_sha256.eq(token_sha256))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?;
    if let Some(key) = &key {
        let stale_before = Utc::now() - Duration::minutes(1);
        if key.last_used_at.is_none_or(|t| t < stale_before) {
            diesel::update(api_keys::table.find(key.id))
                .set(api_keys::last_used_at.eq(Utc::now()))
                .execute(conn)?;
        }
    }
    Ok(key)
}

/// Every token's record (never the token: only its hash is stored), oldest first.
pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .order((api_keys::created_at, api_keys::id))
        .select(ApiKey::as_select())
        .load(conn)
}

/// Revokes a token; revoking a revoked one changes nothing. `None`: no such key.
pub fn revoke(conn: &mut PgConnection, id: uuid::Uuid) -> QueryResult<Option<ApiKey>> {
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Utc::now()))
    .execute(conn)?;
    api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}
