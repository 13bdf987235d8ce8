//! The events a seller's webhooks receive, written to the outbox (`db::webhooks::announce`)
//! in the transaction of each change. License changes reach here only through
//! [`super::history::record`], the one recording point of a change.

use chrono::Utc;
use diesel::{PgConnection, QueryResult};
use uuid::Uuid;

use super::views::LicenseView;
use crate::db::models::{License, Product};
use crate::db::{licenses, webhooks};

/// `license.created` / `license.updated`: the object is the license as the admin API shows it.
pub fn license(
    conn: &mut PgConnection,
    event: &'static str,
    license: &License,
    product: &Product,
) -> QueryResult<()> {
    let view = LicenseView::admin(license.clone(), product, Utc::now());
    let object = serde_json::to_value(view).unwrap_or_default();
    webhooks::announce(conn, event, Some(license.id), &object)
}

/// The license `id` as it is now, announced as `event` (nothing if it is gone).
pub fn license_now(conn: &mut PgConnection, event: &'static str, id: Uuid) -> QueryResult<()> {
    match licenses::find(conn, &id.to_string())? {
        Some((license, product)) => self::license(conn, event, &license, &product),
        None => Ok(()),
    }
}

/// `activation.created` / `activation.deleted`: the activation (as the admin API shows
/// it) with its `license_id`.
pub fn device(
    conn: &mut PgConnection,
    event: &'static str,
    license_id: Uuid,
    mut object: serde_json::Value,
) -> QueryResult<()> {
    if let Some(map) = object.as_object_mut() {
        map.insert("license_id".into(), license_id.to_string().into());
    }
    webhooks::announce(conn, event, Some(license_id), &object)
}
