//! The events a seller's webhooks receive, recorded in the transaction of each change
//! through `db::webhooks::announce` (the one recording point of the outbox).

use chrono::Utc;
use diesel::{PgConnection, QueryResult};
use uuid::Uuid;

use super::views::{ActivationView, LicenseView};
use crate::db::models::{Activation, License, Product};
use crate::db::webhooks;

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

/// `activation.created` / `activation.deleted`: the activation with its `license_id`.
pub fn activation(
    conn: &mut PgConnection,
    event: &'static str,
    license_id: Uuid,
    activation: &Activation,
) -> QueryResult<()> {
    let mut object =
        serde_json::to_value(ActivationView::from(activation.clone())).unwrap_or_default();
    if let Some(map) = object.as_object_mut() {
        map.insert("license_id".into(), license_id.to_string().into());
    }
    webhooks::announce(conn, event, Some(license_id), &object)
}
