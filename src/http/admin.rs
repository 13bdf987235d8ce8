//! The seller's admin API: products and licenses. Every handler takes `Admin` first,
//! so a request without a valid token is refused before its body is read.

use super::routes::Table;
use crate::route;
use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::extract::{Admin, Json};
use super::State;
use crate::db::{self, activations::Selector};
use crate::error::AppError;
use crate::licensing::admin::{
    self, CreateLicense, CreateProduct, ListLicenses, UpdateLicense, UpdateProduct,
};
use crate::licensing::api_keys;
use crate::licensing::check::{self, Deactivated};
use crate::licensing::history::Actor;

pub fn routes(t: &mut Table) {
    t.add(route!(Plain, list_products))
        .add(route!(Plain, create_product))
        .add(route!(Plain, get_product))
        .add(route!(Plain, update_product))
        .add(route!(Plain, list_licenses))
        .add(route!(Plain, create_license))
        .add(route!(Plain, get_license))
        .add(route!(Plain, update_license))
        .add(route!(Plain, resend_email))
        .add(route!(Plain, license_history))
        .add(route!(Plain, delete_activation))
        .add(route!(Plain, list_api_keys))
        .add(route!(Plain, revoke_api_key));
}

#[utoipa::path(post, path = "/v1/products", tag = "admin", security(("admin_token" = [])),
    request_body(content = Object, description = "`{name, slug?, stripe_price_ids?, max_activations?, duration_days?, key_prefix?}`"),
    responses((status = 201, description = "The product", body = Object), (status = 409, description = "Slug or price already used", body = super::error::ErrorBody), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid (the message names it)", body = super::error::ErrorBody)))]
async fn create_product(
    _: Admin,
    state: web::Data<State>,
    body: Json<CreateProduct>,
) -> Result<HttpResponse, AppError> {
    let product = db::run(&state.pool, move |conn| {
        admin::create_product(conn, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(product))
}

#[utoipa::path(get, path = "/v1/products", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "`{data: [product]}`", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody)))]
async fn list_products(_: Admin, state: web::Data<State>) -> Result<HttpResponse, AppError> {
    let products = db::run(&state.pool, admin::list_products).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": products })))
}

#[utoipa::path(get, path = "/v1/products/{product}", tag = "admin", security(("admin_token" = [])), params(("product" = String, Path, description = "Product id or slug")),
    responses((status = 200, description = "The product", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody)))]
async fn get_product(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let product = db::run(&state.pool, move |conn| admin::get_product(conn, &path)).await?;
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(patch, path = "/v1/products/{product}", tag = "admin", security(("admin_token" = [])), params(("product" = String, Path, description = "Product id or slug")),
    request_body(content = Object, description = "Any of `{name, stripe_price_ids, max_activations, duration_days, key_prefix}`"),
    responses((status = 200, description = "The product", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody), (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid (the message names it)", body = super::error::ErrorBody)))]
async fn update_product(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
    body: Json<UpdateProduct>,
) -> Result<HttpResponse, AppError> {
    let product = db::run(&state.pool, move |conn| {
        admin::update_product(conn, &path, &body.0)
    })
    .await?;
    state.cache.clear();
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(post, path = "/v1/licenses", tag = "admin", security(("admin_token" = [])),
    request_body(content = Object, description = "`{product, email, name?, max_activations?, expires_at?, metadata?, send_email?}`"),
    responses((status = 201, description = "The license with its key", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid (the message names it)", body = super::error::ErrorBody)))]
async fn create_license(
    Admin(token): Admin,
    state: web::Data<State>,
    body: Json<CreateLicense>,
) -> Result<HttpResponse, AppError> {
    let actor = Actor::ApiToken(token.name);
    let license = db::run(&state.pool, move |conn| {
        admin::create_license(conn, &actor, &body.0)
    })
    .await?;
    state.wake_mailer();
    Ok(HttpResponse::Created().json(license))
}

#[utoipa::path(get, path = "/v1/licenses", tag = "admin", security(("admin_token" = [])),
    params(("product" = Option<String>, Query, description = "Product id or slug"), ("email" = Option<String>, Query), ("status" = Option<String>, Query, description = "active, suspended, revoked or expired"), ("page" = Option<i64>, Query), ("per_page" = Option<i64>, Query)),
    responses((status = 200, description = "`{data: [license], page, per_page, total}`", body = Object), (status = 400, description = "Malformed query", body = super::error::ErrorBody), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 422, description = "A field is invalid (the message names it)", body = super::error::ErrorBody)))]
async fn list_licenses(
    _: Admin,
    state: web::Data<State>,
    query: web::Query<ListLicenses>,
) -> Result<HttpResponse, AppError> {
    let page = db::run(&state.pool, move |conn| admin::list_licenses(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/v1/licenses/{license}", tag = "admin", security(("admin_token" = [])), params(("license" = String, Path, description = "License id or key")),
    responses((status = 200, description = "The license with `activations` and `customer`", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody)))]
async fn get_license(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let license = db::run(&state.pool, move |conn| admin::get_license(conn, &path)).await?;
    Ok(HttpResponse::Ok().json(license))
}

#[utoipa::path(patch, path = "/v1/licenses/{license}", tag = "admin", security(("admin_token" = [])), params(("license" = String, Path, description = "License id or key")),
    request_body(content = Object, description = "Any of `{status, max_activations, expires_at, metadata}`"),
    responses((status = 200, description = "The license", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody), (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid (the message names it)", body = super::error::ErrorBody)))]
async fn update_license(
    Admin(token): Admin,
    state: web::Data<State>,
    path: web::Path<String>,
    body: Json<UpdateLicense>,
) -> Result<HttpResponse, AppError> {
    let actor = Actor::ApiToken(token.name);
    let which = path.clone();
    let license = db::run(&state.pool, move |conn| {
        admin::update_license(conn, &actor, &path, &body.0)
    })
    .await?;
    // This process's next validate sees the change at once; others by NOTIFY.
    state.cache.forget_ref(&which);
    Ok(HttpResponse::Ok().json(license))
}

#[utoipa::path(post, path = "/v1/licenses/{license}/resend-email", tag = "admin", security(("admin_token" = [])), params(("license" = String, Path, description = "License id or key")),
    responses((status = 202, description = "`{queued: true, email_id, coalesced}`; `coalesced` when the license's email was still pending and the resend joined it", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody), (status = 429, description = "`email_limit`: at most 5 emails per license per hour (Retry-After)", body = super::error::ErrorBody)))]
async fn resend_email(
    Admin(token): Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let actor = Actor::ApiToken(token.name);
    let resent = db::run(&state.pool, move |conn| {
        admin::resend_email(conn, &actor, &path)
    })
    .await?;
    state.wake_mailer();
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "queued": true, "email_id": resent.email_id, "coalesced": resent.coalesced,
    })))
}

#[utoipa::path(get, path = "/v1/licenses/{license}/history", tag = "admin", security(("admin_token" = [])), params(("license" = String, Path, description = "License id or key")),
    responses((status = 200, description = "`{data: [{id, action, actor: {kind, name}, before, after, at}]}`, oldest first: every change to the license and who made it (kind: user, api_token, portal, app, stripe, cli, system)", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody)))]
async fn license_history(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let entries = db::run(&state.pool, move |conn| admin::license_history(conn, &path)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": entries })))
}

#[utoipa::path(delete, path = "/v1/licenses/{license}/activations/{activation}", tag = "admin", security(("admin_token" = [])),
    params(("license" = String, Path, description = "License id or key"), ("activation" = String, Path, description = "Activation id")),
    responses((status = 204, description = "Deactivated"), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody)))]
async fn delete_activation(
    Admin(token): Admin,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (license, activation) = path.into_inner();
    let actor = Actor::ApiToken(token.name);
    let activation = Uuid::parse_str(&activation).map_err(|_| AppError::not_found("activation"))?;
    let which = license.clone();
    let outcome = db::run(&state.pool, move |conn| {
        Ok(check::deactivate_by(
            conn,
            &actor,
            &license,
            &Selector::Id(activation),
        )?)
    })
    .await?;
    state.cache.forget_ref(&which);
    match outcome {
        Deactivated::Done(_) => Ok(HttpResponse::NoContent().finish()),
        Deactivated::Refused(check::Code::NotFound) => Err(AppError::not_found("license")),
        Deactivated::Refused(_) => Err(AppError::not_found("activation")),
    }
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "`{data: [{id, name, created_at, last_used_at, revoked_at}]}`; tokens are never shown", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody)))]
async fn list_api_keys(_: Admin, state: web::Data<State>) -> Result<HttpResponse, AppError> {
    let keys = db::run(&state.pool, api_keys::list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": keys })))
}

#[utoipa::path(delete, path = "/v1/api-keys/{api_key}", tag = "admin", security(("admin_token" = [])), params(("api_key" = String, Path, description = "The token's id (from the list)")),
    responses((status = 200, description = "The revoked key `{id, name, created_at, last_used_at, revoked_at}`; its token is refused from now on", body = Object), (status = 401, description = "Missing or bad admin token", body = super::error::ErrorBody), (status = 404, description = "No such resource", body = super::error::ErrorBody)))]
async fn revoke_api_key(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let revoked = db::run(&state.pool, move |conn| api_keys::revoke(conn, &path)).await?;
    tracing::info!(api_key = %revoked.id, "admin token revoked");
    Ok(HttpResponse::Ok().json(revoked))
}
