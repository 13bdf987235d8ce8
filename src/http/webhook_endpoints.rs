//! The admin API for webhooks to the seller: endpoints (their URL, event types and
//! secret) and their deliveries. The same `licensing::webhook_endpoints` functions as
//! `licensd webhook ...`; a secret appears only in the answer that made it.

use actix_web::{web, HttpResponse};

use super::extract::{Admin, Json};
use super::routes::Table;
use super::State;
use crate::db;
use crate::error::AppError;
use crate::licensing::webhook_endpoints::{self as endpoints, DeliveryFilter, NewEndpoint};
use crate::route;

pub fn routes(t: &mut Table) {
    t.add(route!(Plain, list_webhook_endpoints))
        .add(route!(Plain, create_webhook_endpoint))
        .add(route!(Plain, delete_webhook_endpoint))
        .add(route!(Plain, rotate_webhook_secret))
        .add(route!(Plain, list_webhook_deliveries))
        .add(route!(Plain, redeliver_webhook));
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", security(("admin_token" = [])),
    request_body(content = Object, description = "`{url, event_types?}`: an http(s) URL; event types among `license.created`, `license.updated`, `activation.created`, `activation.deleted`, `email.failed` (none or empty: all)"),
    responses((status = 201, description = "`{id, url, event_types, created_at, disabled_at, secret}`: the signing secret, shown in this answer only", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "`url` or `event_types` is invalid (the message names it)", body = super::error::ErrorBody)))]
async fn create_webhook_endpoint(
    _: Admin,
    state: web::Data<State>,
    body: Json<NewEndpoint>,
) -> Result<HttpResponse, AppError> {
    let created = db::run(&state.pool, move |conn| endpoints::create(conn, &body.0)).await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", security(("admin_token" = [])),
    responses((status = 200, description = "`{data: [{id, url, event_types, created_at, disabled_at}]}`; secrets are never shown", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody)))]
async fn list_webhook_endpoints(
    _: Admin,
    state: web::Data<State>,
) -> Result<HttpResponse, AppError> {
    let list = db::run(&state.pool, endpoints::list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": list })))
}

#[utoipa::path(delete, path = "/v1/webhook-endpoints/{endpoint}", tag = "webhooks", security(("admin_token" = [])), params(("endpoint" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted, with its deliveries"), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such webhook endpoint", body = super::error::ErrorBody)))]
async fn delete_webhook_endpoint(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    db::run(&state.pool, move |conn| endpoints::delete(conn, &path)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint}/rotate-secret", tag = "webhooks", security(("admin_token" = [])), params(("endpoint" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint with its new `secret` (shown in this answer only). Deliveries carry a `v1` under the new and one under the previous secret until the next rotation", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such webhook endpoint", body = super::error::ErrorBody)))]
async fn rotate_webhook_secret(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let rotated = db::run(&state.pool, move |conn| {
        endpoints::rotate_secret(conn, &path)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint}/deliveries", tag = "webhooks", security(("admin_token" = [])),
    params(("endpoint" = String, Path, description = "Endpoint id"), ("status" = Option<String>, Query, description = "pending, delivered or failed"), ("limit" = Option<i64>, Query, description = "1 to 1000 (default 50)")),
    responses((status = 200, description = "`{data: [{id, seq, endpoint_id, event_id, event_type, license_id, status, attempts, next_attempt_at, last_error, created_at, delivered_at}]}`, newest first", body = Object), (status = 400, description = "Malformed query", body = super::error::ErrorBody), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such webhook endpoint", body = super::error::ErrorBody), (status = 422, description = "`status` or `limit` is invalid", body = super::error::ErrorBody)))]
async fn list_webhook_deliveries(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
    query: web::Query<DeliveryFilter>,
) -> Result<HttpResponse, AppError> {
    let list = db::run(&state.pool, move |conn| {
        endpoints::deliveries(conn, Some(&path), &query)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": list })))
}

#[utoipa::path(post, path = "/v1/webhook-deliveries/{delivery}/redeliver", tag = "webhooks", security(("admin_token" = [])), params(("delivery" = String, Path, description = "Delivery id")),
    responses((status = 202, description = "The delivery, `pending` again: it is sent now, whatever its status was, keeping its attempts", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such webhook delivery", body = super::error::ErrorBody)))]
async fn redeliver_webhook(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let delivery = db::run(&state.pool, move |conn| endpoints::redeliver(conn, &path)).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}
