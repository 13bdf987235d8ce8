//! Keymint: `POST /get-key`, `/activate-key`, `/deactivate-key` with
//! `{productId, licenseKey, ...}` bodies. `productId` is our product id or slug and
//! must be the license's. Successes carry `code: 0`; errors are
//! `{"message", "code": 1}` (2 when the license's state refuses the operation).
//! `get-key` returns the buyer's data and so takes the admin token as
//! `Authorization: Bearer`; activate and deactivate are called by the customer
//! software, where the license key is the credential.

use crate::http::routes::Table;
use crate::route;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::db;
use crate::db::activations::Selector;
use crate::db::models::License;
use crate::error::AppError;
use crate::http::extract::Admin;
use crate::http::front;
use crate::http::State;
use crate::licensing::admin;
use crate::licensing::check::{self, ActivateOutcome, Code, DeactivateOutcome, Expect};
use crate::licensing::history::Actor;
use crate::licensing::input::{optional_name, Fingerprint};
use crate::licensing::views::LicenseDetail;
use crate::licensing::Status;

pub fn routes(t: &mut Table) {
    t.add(route!(License, get_key))
        .add(route!(License, activate_key))
        .add(route!(License, deactivate_key));
}

pub(super) fn error(status: StatusCode, message: &str) -> HttpResponse {
    let code = if status == StatusCode::FORBIDDEN {
        2
    } else {
        1
    };
    HttpResponse::build(status).json(json!({ "message": message, "code": code }))
}

pub(super) fn missing_params() -> HttpResponse {
    error(StatusCode::BAD_REQUEST, "Missing required params")
}

/// Keymint's documented failure body; a database outage keeps its 503.
pub(super) fn server_error(e: &AppError) -> HttpResponse {
    tracing::error!(error = %e, "keymint request failed");
    let status = match e.status_code() {
        s if s.is_server_error() => s,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, "Server error")
}

/// A front-door refusal (429) stays licensd's, with its `Retry-After`; any other
/// failure is Keymint's "Server error".
pub(super) fn keymint_error(e: AppError) -> Result<HttpResponse, AppError> {
    match e {
        AppError::RateLimited { .. } => Err(e),
        e => Ok(server_error(&e)),
    }
}

pub(super) fn invalid_key() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "Invalid license key")
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The body's non-empty string fields; a body that is not a JSON object has none.
pub(super) fn fields(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

pub(super) fn text(fields: &Map<String, Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A refusal of the core, in Keymint's statuses and messages.
pub(super) fn refusal(code: Code) -> HttpResponse {
    match code {
        Code::NotFound | Code::ProductMismatch | Code::EmailMismatch => invalid_key(),
        Code::NotActivated | Code::LeaseExpired => error(StatusCode::NOT_FOUND, "Device not found"),
        Code::PastDue => error(StatusCode::FORBIDDEN, "License payment overdue"),
        Code::Expired => error(StatusCode::FORBIDDEN, "License expired"),
        Code::Suspended => error(StatusCode::FORBIDDEN, "License blocked"),
        Code::Revoked => error(StatusCode::FORBIDDEN, "License not active"),
        Code::TooManyActivations => error(StatusCode::FORBIDDEN, "Activation limit reached"),
        Code::Valid => error(StatusCode::INTERNAL_SERVER_ERROR, "Server error"),
    }
}

/// Keymint's 401 unless the caller holds an admin token.
pub(super) fn unless_seller(
    admin: Result<Admin, AppError>,
) -> Result<Option<HttpResponse>, AppError> {
    Ok(seller(admin)?.err())
}

/// The seller's token as the actor of a change (named in the license history), or
/// Keymint's refusal.
pub(super) fn seller(
    admin: Result<Admin, AppError>,
) -> Result<Result<Actor, HttpResponse>, AppError> {
    match admin {
        Ok(Admin(token)) => Ok(Ok(Actor::ApiToken(token.name))),
        Err(AppError::Unauthorized) => {
            Ok(Err(error(StatusCode::UNAUTHORIZED, "Invalid access token")))
        }
        Err(e) => Err(e),
    }
}

pub(super) fn product_and_key(fields: &Map<String, Value>) -> Option<(String, String)> {
    Some((text(fields, "productId")?, text(fields, "licenseKey")?))
}

/// The license `key` names if it is of `product`; Keymint's answer otherwise.
pub(super) async fn detail_of(
    state: &State,
    product: &str,
    key: String,
) -> Result<LicenseDetail, HttpResponse> {
    match db::run(&state.pool, move |conn| admin::get_license(conn, &key)).await {
        Ok(d) if check::product_matches(product, d.license.product.id, &d.license.product.slug) => {
            Ok(d)
        }
        Ok(_) | Err(AppError::NotFound { .. }) => Err(invalid_key()),
        Err(e) => Err(server_error(&e)),
    }
}

/// The product as the caller named it: its id if that is what it sent, else its slug.
pub(super) fn product_as_named(detail: &LicenseDetail, product: String) -> String {
    let p = &detail.license.product;
    if product == p.id.to_string() {
        product
    } else {
        p.slug.clone()
    }
}

/// The `customer` object of a key's details (the same in both API generations).
pub(super) fn customer(detail: &LicenseDetail) -> Value {
    let l = &detail.license;
    json!({
        "id": l.stripe.as_ref().and_then(|s| s.customer.clone()),
        "name": detail.customer.name,
        "email": detail.customer.email,
        // Whether the seller lets this buyer use the license.
        "active": !matches!(l.status, Status::Suspended | Status::Revoked),
    })
}

/// Activates device `host` on the key `fields` names (`productId`, `licenseKey`,
/// `deviceTag?`) through the front door; `done` renders a success.
pub(super) async fn activate(
    state: &State,
    req: &HttpRequest,
    fields: &Map<String, Value>,
    host: String,
    done: impl FnOnce(&License) -> Value,
) -> Result<HttpResponse, AppError> {
    let Some((product, key)) = product_and_key(fields) else {
        return Ok(missing_params());
    };
    let Ok(fingerprint) = Fingerprint::parse("hostId", &host) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "Invalid hostId: at most 255 characters, no control characters",
        ));
    };
    let Ok(tag) = optional_name("deviceTag", text(fields, "deviceTag").as_deref(), 255) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "Invalid deviceTag: at most 255 characters, no control characters",
        ));
    };
    let call = front::Activate {
        key,
        fingerprint,
        name: tag,
        expect: Expect {
            product: Some(product),
            email: None,
        },
    };
    Ok(match front::activate(state, req, call).await {
        Err(e) => keymint_error(e)?,
        Ok(ActivateOutcome::Done { license, .. }) => HttpResponse::Ok().json(done(&license)),
        Ok(ActivateOutcome::Refused(code)) => refusal(code),
    })
}

/// Deactivates the device `hostId` names, or every one without it, on the key
/// `fields` names; `done` renders a success from its message and the count removed.
pub(super) async fn deactivate(
    state: &State,
    req: &HttpRequest,
    fields: &Map<String, Value>,
    done: impl FnOnce(&str, usize) -> Value,
) -> Result<HttpResponse, AppError> {
    let Some((product, key)) = product_and_key(fields) else {
        return Ok(missing_params());
    };
    let which = text(fields, "hostId").map(Selector::Fingerprint);
    let message = if which.is_some() {
        "Device deactivated"
    } else {
        "All devices deactivated"
    };
    let call = front::Deactivate {
        key,
        which,
        expect: Expect {
            product: Some(product),
            email: None,
        },
    };
    Ok(match front::deactivate(state, req, call).await {
        Err(e) => keymint_error(e)?,
        Ok(DeactivateOutcome::Done { removed, .. }) => {
            HttpResponse::Ok().json(done(message, removed.len()))
        }
        Ok(DeactivateOutcome::Refused(code)) => refusal(code),
    })
}

/// `POST /get-key {productId, licenseKey}` (admin token): the license, its devices
/// and its buyer.
#[utoipa::path(post, path = "/get-key", tag = "compat: Keymint",
    description = "A license with its devices and customer: `{productId, licenseKey}`. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{code: 0, data: {license, customer}}` (snake_case)", body = Object),
        (status = 400, description = "`{message: \"Missing required params\", code: 1}`", body = Object),
        (status = 401, description = "`{message: \"Invalid access token\", code: 1}`", body = Object),
        (status = 404, description = "`{message: \"Invalid license key\", code: 1}`: unknown key or another product's", body = Object),
        (status = 500, description = "`{message: \"Server error\", code: 1}` (503 when the database is down)", body = Object)))]
async fn get_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    let Some((product, key)) = product_and_key(&fields(&body)) else {
        return Ok(missing_params());
    };
    let detail = match detail_of(&state, &product, key).await {
        Ok(detail) => detail,
        Err(answer) => return Ok(answer),
    };
    let l = &detail.license;
    let devices: Vec<Value> = detail
        .activations
        .iter()
        .map(|a| {
            json!({
                "host_id": a.fingerprint,
                "device_tag": a.name,
                "ip_address": a.ip,
                "activation_time": time(a.created_at),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "code": 0,
        "data": {
            "license": {
                "id": l.id,
                "key": l.key,
                "product_id": product_as_named(&detail, product),
                "usage_limit": l.max_activations,
                "activations": l.activations_count,
                "devices": devices,
                "activated": l.activations_count > 0,
                "expiration_date": l.expires_at.map(time),
            },
            "customer": customer(&detail),
        },
    })))
}

/// `POST /activate-key {productId, licenseKey, hostId, deviceTag?}`: the device
/// takes a seat (or already has one).
#[utoipa::path(post, path = "/activate-key", tag = "compat: Keymint",
    description = "Activate a device: `{productId, licenseKey, hostId, deviceTag?}`. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{code: 0, message: \"License valid\", licensee_name, licensee_email}`; signed", body = Object),
        (status = 400, description = "`{message, code: 1}`: missing or invalid field", body = Object),
        (status = 403, description = "`{message, code: 2}`: expired, blocked, not active, or activation limit reached", body = Object),
        (status = 404, description = "`{message: \"Invalid license key\", code: 1}`", body = Object),
        (status = 500, description = "`{message: \"Server error\", code: 1}` (503 when the database is down)", body = Object)))]
async fn activate_key(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let fields = fields(&body);
    let Some(host) = text(&fields, "hostId") else {
        return Ok(missing_params());
    };
    activate(&state, &req, &fields, host, |license| {
        json!({
            "code": 0,
            "message": "License valid",
            "licensee_name": license.customer_name,
            "licensee_email": license.email,
        })
    })
    .await
}

/// `POST /deactivate-key {productId, licenseKey, hostId?}`: frees that device's
/// seat, or every device's without `hostId`.
#[utoipa::path(post, path = "/deactivate-key", tag = "compat: Keymint",
    description = "Deactivate one device (`hostId`) or all. Answers in Keymint's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{message: \"Device deactivated\"|\"All devices deactivated\", code: 0}`; signed", body = Object),
        (status = 400, description = "`{message: \"Missing required params\", code: 1}`", body = Object),
        (status = 404, description = "`{message, code: 1}`: invalid license key, or device not found", body = Object),
        (status = 500, description = "`{message: \"Server error\", code: 1}` (503 when the database is down)", body = Object)))]
async fn deactivate_key(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    deactivate(
        &state,
        &req,
        &fields(&body),
        |message, _| json!({ "message": message, "code": 0 }),
    )
    .await
}
