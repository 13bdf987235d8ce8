//! Keymint's current API, as its official Python SDK (PyPI `keymint` 2.x) calls it:
//! `POST /key/activate`, `POST /key/deactivate` (the key is the credential), and the
//! seller's `GET /key?productId=` (key in `x-license-key`), `POST /key`,
//! `PATCH /key`, `DELETE /key`, `POST /key/block`, `POST /key/unblock` (admin token
//! as `Authorization: Bearer`). Fields are camelCase; errors are `{"message", "code"}`
//! as in the older API (`keymint.rs`, whose helpers this file shares).

// A refusal here is the dialect's own answer, built once per request and returned at once.
#![allow(clippy::result_large_err)]

use crate::http::routes::Table;
use crate::route;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::keymint::{
    self, customer, detail_of, error, fields, invalid_key, missing_params, product_and_key,
    product_as_named, seller, server_error, text, time, unless_seller,
};
use crate::db;
use crate::error::AppError;
use crate::http::extract::Admin;
use crate::http::State;
use crate::licensing::admin::{self, CreateLicense, UpdateLicense};
use crate::licensing::history::Actor;
use crate::licensing::views::{LicenseDetail, LicenseView};
use diesel::PgConnection;
use std::collections::BTreeMap;
use utoipa::openapi::{RefOr, Response};

pub fn routes(t: &mut Table) {
    t.add(route!(License, get_key))
        .add(route!(License, create_key))
        .add(route!(License, update_key))
        .add(route!(License, delete_key))
        .add(route!(License, activate))
        .add(route!(License, deactivate))
        .add(route!(License, block))
        .add(route!(License, unblock));
}

/// `POST /key/activate {productId, licenseKey, hostId?, deviceTag?}`. Without a
/// `hostId` a new device id is made up, as Keymint does: each such call takes a seat.
#[utoipa::path(post, path = "/key/activate", tag = "compat: Keymint",
    description = "Activate a device: `{productId, licenseKey, hostId?, deviceTag?}`. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{code: 0, message, licenseeName, licenseeEmail, expirationDate, ...}`; signed", body = Object),
        (status = 400, description = "`{message, code: 1}`: missing or invalid field", body = Object),
        (status = 403, description = "`{message, code: 2}`: expired, blocked, not active, or activation limit reached", body = Object),
        (status = 404, description = "`{message: \"Invalid license key\", code: 1}`", body = Object),
        (status = 429, description = "Rate limited", body = crate::http::error::ErrorBody),
    ))]
async fn activate(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let fields = fields(&body);
    let host = text(&fields, "hostId").unwrap_or_else(|| Uuid::new_v4().to_string());
    keymint::activate(&state, &req, &fields, host, |license| {
        json!({
            "code": 0,
            "message": "License valid",
            "licenseeName": license.customer_name,
            "licenseeEmail": license.email,
            "metadata": license.metadata,
            "versionId": null,
            "version": null,
            "allowedHosts": null,
            "expirationDate": license.expires_at.map(time),
        })
    })
    .await
}

/// `POST /key/deactivate {productId, licenseKey, hostId?}`: that device, or all.
#[utoipa::path(post, path = "/key/deactivate", tag = "compat: Keymint",
    description = "Deactivate one device (`hostId`) or all. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{message, code: 0, devicesRemoved}`; signed", body = Object),
        (status = 400, description = "`{message, code: 1}`: missing field", body = Object),
        (status = 404, description = "Unknown key, or a `hostId` that is not activated", body = Object),
        (status = 429, description = "Rate limited", body = crate::http::error::ErrorBody),
    ))]
async fn deactivate(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    keymint::deactivate(
        &state,
        &req,
        &fields(&body),
        |message, removed| json!({ "message": message, "code": 0, "devicesRemoved": removed }),
    )
    .await
}

/// `GET /key?productId=` with the key in `x-license-key` (admin token).
#[utoipa::path(get, path = "/key", tag = "compat: Keymint",
    description = "A license with its devices and customer; `productId` query, key in the `x-license-key` header. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{code: 0, data: {license, customer}}` (camelCase)", body = Object),
        (status = 400, description = "Missing `productId` or `x-license-key`", body = Object),
        (status = 401, description = "No admin token", body = Object),
        (status = 404, description = "Unknown key or another product's", body = Object),
    ))]
async fn get_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    let query = super::form_params(req.query_string().as_bytes());
    let key = req
        .headers()
        .get("x-license-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let (Some(product), Some(key)) = (query.get("productId").cloned(), key) else {
        return Ok(missing_params());
    };
    let detail = match detail_of(&state, &product, key).await {
        Ok(d) => d,
        Err(answer) => return Ok(answer),
    };
    Ok(HttpResponse::Ok().json(key_details(&detail, product)))
}

/// `{code: 0, data: {license, customer}}` in the SDK's camelCase fields.
fn key_details(detail: &LicenseDetail, product: String) -> Value {
    let l = &detail.license;
    let devices: Vec<Value> = detail
        .activations
        .iter()
        .map(|a| {
            json!({
                "hostId": a.fingerprint,
                "deviceTag": a.name,
                "ipAddress": a.ip,
                "activationTime": time(a.created_at),
            })
        })
        .collect();
    json!({
        "code": 0,
        "data": {
            "license": {
                "id": l.id,
                "key": l.key,
                "productId": product_as_named(detail, product),
                "maxActivations": l.max_activations,
                "activations": l.activations_count,
                "devices": devices,
                "activated": l.activations_count > 0,
                "expirationDate": l.expires_at.map(time),
                "versionId": null,
                "metadata": l.metadata,
                "allowedHosts": null,
                "version": null,
            },
            "customer": customer(detail),
        },
    })
}

/// `maxActivations` (a string of digits in the SDK, a number accepted too).
fn max_activations(fields: &Map<String, Value>) -> Result<Option<i64>, HttpResponse> {
    let bad = || {
        error(
            StatusCode::BAD_REQUEST,
            "Invalid maxActivations: a whole number",
        )
    };
    match fields.get("maxActivations") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// `expiryDate` (ISO 8601), if given.
fn expiry(fields: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, HttpResponse> {
    match fields.get("expiryDate") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
            .map(|t| Some(t.with_timezone(&Utc)))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "Invalid expiryDate: an ISO 8601 date-time",
                )
            }),
    }
}

/// A seller operation's failure in Keymint's shapes: a refused field is 400, an
/// unknown key 404, anything else "Server error".
fn seller_failure(e: AppError) -> HttpResponse {
    match e {
        AppError::InvalidField { field, problem } => error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid {field}: {problem}"),
        ),
        AppError::NotFound { .. } => invalid_key(),
        e => server_error(&e),
    }
}

/// `POST /key {productId, maxActivations?, expiryDate?, newCustomer: {name, email},
/// metadata?}` (admin token): mints a key. The buyer's email is required.
#[utoipa::path(post, path = "/key", tag = "compat: Keymint",
    description = "Create a key: `{productId, maxActivations?, expiryDate?, newCustomer: {name, email}, metadata?}`. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{code: 0, key}`", body = Object),
        (status = 400, description = "Missing or invalid field", body = Object),
        (status = 401, description = "No admin token", body = Object),
    ))]
async fn create_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = match seller(admin)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(refusal),
    };
    let fields = fields(&body);
    let customer = fields.get("newCustomer").and_then(Value::as_object);
    let email = customer.and_then(|c| text(c, "email"));
    let (Some(product), Some(email)) = (text(&fields, "productId"), email) else {
        return Ok(missing_params());
    };
    let (max, expires) = match (max_activations(&fields), expiry(&fields)) {
        (Ok(max), Ok(expires)) => (max, expires),
        (Err(answer), _) | (_, Err(answer)) => return Ok(answer),
    };
    let req = CreateLicense {
        product,
        email,
        name: customer.and_then(|c| text(c, "name")),
        max_activations: max.map(Some),
        expires_at: expires.map(Some),
        metadata: fields.get("metadata").filter(|m| !m.is_null()).cloned(),
        send_email: Some(false),
        ..Default::default()
    };
    Ok(
        match db::run(&state.pool, move |conn| {
            admin::create_license(conn, &actor, &req)
        })
        .await
        {
            Ok(view) => HttpResponse::Ok().json(json!({ "code": 0, "key": view.key })),
            Err(AppError::InvalidField { field, .. }) if field == "product" => invalid_key(),
            Err(e) => seller_failure(e),
        },
    )
}

/// A seller operation on the license with this id.
type Apply =
    Box<dyn FnOnce(&mut PgConnection, &Actor, &str) -> Result<LicenseView, AppError> + Send>;

/// The refusals of a change to one key (block, unblock, delete): Keymint's
/// `{message, code: 1}` bodies.
struct KeyRefusals;

impl utoipa::IntoResponses for KeyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        super::object_answers(&[
            ("400", "Missing field"),
            ("401", "No admin token"),
            ("404", "Unknown key or another product's"),
        ])
    }
}

/// Applies a seller change to the key `fields` names, if the caller is the seller
/// and the key is of that product; `apply` is the change, or the field it refused.
async fn change_key(
    admin: Result<Admin, AppError>,
    state: &State,
    fields: &Map<String, Value>,
    apply: Result<Apply, HttpResponse>,
    done: &str,
) -> Result<HttpResponse, AppError> {
    let actor = match seller(admin)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(refusal),
    };
    let apply = match apply {
        Ok(apply) => apply,
        Err(answer) => return Ok(answer),
    };
    let Some((product, key)) = product_and_key(fields) else {
        return Ok(missing_params());
    };
    let id = match detail_of(state, &product, key).await {
        Ok(d) => d.license.id.to_string(),
        Err(answer) => return Ok(answer),
    };
    Ok(
        match db::run(&state.pool, move |conn| apply(conn, &actor, &id)).await {
            Ok(_) => HttpResponse::Ok().json(json!({ "message": done, "code": 0 })),
            Err(e) => seller_failure(e),
        },
    )
}

/// `PATCH /key {productId, licenseKey, maxActivations?, expiryDate?, metadata?}`.
#[utoipa::path(patch, path = "/key", tag = "compat: Keymint",
    description = "Update a key's `maxActivations`, `expiryDate` or `metadata`. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{message: \"Key updated\", code: 0}`", body = Object),
        (status = 400, description = "Missing or invalid field", body = Object),
        (status = 401, description = "No admin token", body = Object),
        (status = 404, description = "Unknown key or another product's", body = Object),
    ))]
async fn update_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let fields = fields(&body);
    let apply = match (max_activations(&fields), expiry(&fields)) {
        (Ok(max), Ok(expires)) => {
            let update = UpdateLicense {
                max_activations: max.map(Some),
                expires_at: expires.map(Some),
                metadata: fields.get("metadata").filter(|m| !m.is_null()).cloned(),
                ..Default::default()
            };
            let apply: Apply =
                Box::new(move |conn, actor, id| admin::update_license(conn, actor, id, &update));
            Ok(apply)
        }
        (Err(answer), _) | (_, Err(answer)) => Err(answer),
    };
    change_key(admin, &state, &fields, apply, "Key updated").await
}

/// `POST /key/block {productId, licenseKey}`: suspends the license.
#[utoipa::path(post, path = "/key/block", tag = "compat: Keymint",
    description = "Block a key (licensd: suspend). Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{message: \"Key blocked\", code: 0}`", body = Object),
        KeyRefusals,
    ))]
async fn block(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // A revoked key stays revoked: a refund's revocation is not softened.
    let apply: Apply =
        Box::new(|conn, actor, id| admin::set_license_enabled(conn, actor, id, false));
    change_key(admin, &state, &fields(&body), Ok(apply), "Key blocked").await
}

/// `POST /key/unblock {productId, licenseKey}`: makes the license active again.
#[utoipa::path(post, path = "/key/unblock", tag = "compat: Keymint",
    description = "Unblock a key (licensd: status active). Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{message: \"Key unblocked\", code: 0}`", body = Object),
        KeyRefusals,
    ))]
async fn unblock(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let apply: Apply =
        Box::new(|conn, actor, id| admin::set_license_enabled(conn, actor, id, true));
    change_key(admin, &state, &fields(&body), Ok(apply), "Key unblocked").await
}

/// `DELETE /key {productId, licenseKey}`: licensd keeps licenses, so the key is revoked
/// (it stops working for good; the seller still sees it).
#[utoipa::path(delete, path = "/key", tag = "compat: Keymint",
    description = "Delete a key (licensd: revoke; the row is kept). Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{message: \"Key deleted\", code: 0}`", body = Object),
        KeyRefusals,
    ))]
async fn delete_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let apply: Apply = Box::new(|conn, actor, id| {
        let revoke = UpdateLicense {
            status: Some("revoked".to_owned()),
            ..Default::default()
        };
        admin::update_license(conn, actor, id, &revoke)
    });
    change_key(admin, &state, &fields(&body), Ok(apply), "Key deleted").await
}
