//! Admin API tokens as the seller manages them (CLI `licensd api-key ...` and
//! `/v1/api-keys`): listed by name and dates, revoked by id. A token itself is shown
//! once, at creation, and never again: only its SHA-256 is stored.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::Serialize;
use uuid::Uuid;

use crate::db::{self, models::ApiKey};
use crate::error::AppError;

/// What a listing shows of a token: never the token or its hash.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<ApiKeyView>, AppError> {
    Ok(db::api_keys::list(conn)?
        .into_iter()
        .map(ApiKeyView::from)
        .collect())
}

/// Revokes the token with this id at once: its next request is refused. Revoking
/// twice is fine and keeps the first time.
pub fn revoke(conn: &mut PgConnection, id: &str) -> Result<ApiKeyView, AppError> {
    let id = Uuid::parse_str(id.trim()).map_err(|_| AppError::not_found("api key"))?;
    db::api_keys::revoke(conn, id)?
        .map(ApiKeyView::from)
        .ok_or_else(|| AppError::not_found("api key"))
}
