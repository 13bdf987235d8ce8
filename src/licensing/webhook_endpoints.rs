//! Managing the seller's webhook endpoints and their deliveries: the rules the admin API
//! and the CLI share (what a valid URL and event type are, what an unknown id answers).
//! A secret is returned once, by [`create`] and [`rotate_secret`], and never after.

use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::webhooks::{self, Delivery, Endpoint, EVENT_TYPES};
use crate::error::AppError;

/// `{url, event_types?}`: where to POST, and which events (none or empty: all).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// An endpoint with its signing secret: the one answer that shows the secret.
#[derive(Debug, Serialize)]
pub struct WithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub secret: String,
}

/// The deliveries to list: of one endpoint or all, of one status or any.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub limit: Option<i64>,
    /// The admin token's query form (`?api_key=`), read by the `Admin` extractor.
    #[serde(default, rename = "api_key")]
    pub _api_key: Option<serde::de::IgnoredAny>,
}

/// An http(s) URL of at most 2000 characters, without white space or control characters.
pub fn parse_url(field: &'static str, input: &str) -> Result<String, AppError> {
    let url = input.trim();
    let scheme_ok = ["http://", "https://"].iter().any(|s| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
            && url.len() > s.len()
    });
    if !scheme_ok || url.len() > 2000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid(
            field,
            "must be an http:// or https:// URL of at most 2000 characters",
        ));
    }
    Ok(url.to_owned())
}

/// Known event types, each once, in the order given.
pub fn parse_event_types(field: &'static str, input: &[String]) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::new();
    for e in input {
        let e = e.trim();
        if !EVENT_TYPES.contains(&e) {
            let shown: String = e.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(AppError::invalid(
                field,
                format!("`{shown}` is not one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    Ok(out)
}

/// An endpoint or delivery id; anything that is not a UUID names no such thing.
pub fn parse_id(input: &str, what: &'static str) -> Result<Uuid, AppError> {
    Uuid::parse_str(input.trim()).map_err(|_| AppError::not_found(what))
}

pub fn create(conn: &mut PgConnection, input: &NewEndpoint) -> Result<WithSecret, AppError> {
    let url = parse_url("url", &input.url)?;
    let event_types = parse_event_types("event_types", &input.event_types)?;
    let secret = crate::webhooks::new_secret();
    let endpoint = webhooks::create_endpoint(conn, &url, &secret, &event_types)?;
    tracing::info!(endpoint = %endpoint.id, "webhook endpoint created");
    Ok(WithSecret { endpoint, secret })
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Endpoint>, AppError> {
    Ok(webhooks::list_endpoints(conn)?)
}

/// A new secret; the previous one keeps signing beside it until the next rotation.
pub fn rotate_secret(conn: &mut PgConnection, id: &str) -> Result<WithSecret, AppError> {
    let id = parse_id(id, "webhook endpoint")?;
    let secret = crate::webhooks::new_secret();
    let endpoint = webhooks::rotate_secret(conn, id, &secret)?
        .ok_or_else(|| AppError::not_found("webhook endpoint"))?;
    tracing::info!(endpoint = %endpoint.id, "webhook endpoint secret rotated");
    Ok(WithSecret { endpoint, secret })
}

/// Removes the endpoint and its deliveries.
pub fn delete(conn: &mut PgConnection, id: &str) -> Result<(), AppError> {
    let id = parse_id(id, "webhook endpoint")?;
    if webhooks::delete_endpoint(conn, id)? == 0 {
        return Err(AppError::not_found("webhook endpoint"));
    }
    tracing::info!(endpoint = %id, "webhook endpoint deleted");
    Ok(())
}

/// The latest deliveries (newest first) of one endpoint (`Some`) or of all.
pub fn deliveries(
    conn: &mut PgConnection,
    endpoint: Option<&str>,
    filter: &DeliveryFilter,
) -> Result<Vec<Delivery>, AppError> {
    let status = filter.status.as_deref().map(str::trim);
    if status.is_some_and(|s| !["pending", "delivered", "failed"].contains(&s)) {
        return Err(AppError::invalid(
            "status",
            "must be pending, delivered or failed",
        ));
    }
    let limit = filter.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid("limit", "must be from 1 to 1000"));
    }
    let endpoint = match endpoint {
        Some(id) => {
            let id = parse_id(id, "webhook endpoint")?;
            webhooks::find_endpoint(conn, id)?
                .ok_or_else(|| AppError::not_found("webhook endpoint"))?;
            Some(id)
        }
        None => None,
    };
    Ok(webhooks::list_deliveries(conn, endpoint, status, limit)?)
}

/// Sends a delivery again now, whatever its status; answers it as it now stands.
pub fn redeliver(conn: &mut PgConnection, id: &str) -> Result<Delivery, AppError> {
    let id = parse_id(id, "webhook delivery")?;
    let delivery =
        webhooks::redeliver(conn, id)?.ok_or_else(|| AppError::not_found("webhook delivery"))?;
    tracing::info!(delivery = %delivery.id, "webhook delivery queued again");
    Ok(delivery)
}
