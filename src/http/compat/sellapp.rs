//! SellApp's license API (`/api/v2/licenses...`): validate a key and instance,
//! activate (create an instance), and list keys (admin token as bearer). Shapes
//! follow SellApp's Laravel API: `{"data": ...}`, times as
//! `2025-04-22T20:08:39.000000Z`, validation errors as 422
//! `{"message", "errors": {field: [..]}}`, other errors as `{"message"}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{form_params, numeric_id};
use crate::db;
use crate::db::models::Activation;
use crate::error::AppError;
use crate::http::extract::Admin;
use crate::http::front::{self, license_route};
use crate::http::State;
use crate::licensing::admin::{self, ListLicenses, MAX_PER_PAGE};
use crate::licensing::check::{ActivateOutcome, Code, Expect, ValidateRequest};
use crate::licensing::input::Fingerprint;
use crate::licensing::views::LicenseView;
use crate::licensing::Status;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(license_route("/api/v2/licenses", [web::get().to(list)]));
    cfg.service(license_route(
        "/api/v2/licenses/validate",
        [web::post().to(validate)],
    ));
    cfg.service(license_route(
        "/api/v2/licenses/activate",
        [web::post().to(activate)],
    ));
}

/// licensd is one store.
const STORE_ID: u64 = 1;

fn laravel_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn message(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "message": text }))
}

/// Laravel's 422: the first message (with a count of the others) and all of them by field.
fn validation_failed(errors: Vec<(&str, String)>) -> HttpResponse {
    let mut first = errors.first().map(|(_, m)| m.clone()).unwrap_or_default();
    if errors.len() > 1 {
        let more = errors.len() - 1;
        let noun = if more == 1 { "error" } else { "errors" };
        first = format!("{first} (and {more} more {noun})");
    }
    let by_field: Map<String, Value> = errors
        .into_iter()
        .map(|(field, m)| (field.to_owned(), json!([m])))
        .collect();
    HttpResponse::UnprocessableEntity().json(json!({ "message": first, "errors": by_field }))
}

/// A JSON body's object; anything else reads as empty, so it fails validation (422).
fn body_object(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A required string field: its trimmed value, or Laravel's message for it.
fn required(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<String, (&'static str, String)> {
    let label = name.replace('_', " ");
    match fields.get(name) {
        None | Some(Value::Null) => Err((name, format!("The {label} field is required."))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err((name, format!("The {label} field is required.")))
        }
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(_) => Err((name, format!("The {label} field must be a string."))),
    }
}

/// SellApp's license key object.
fn license_key(l: &LicenseView) -> Value {
    let stripe = l.stripe.as_ref();
    let order = stripe.and_then(|s| s.checkout_session.clone().or(s.payment_intent.clone()));
    // `active` is the seller's switch; an expired key is still switched on.
    let switched_on = matches!(l.status, Status::Active | Status::Expired);
    let status = match l.status {
        Status::Active => "ACTIVE",
        Status::Expired => "EXPIRED",
        Status::Suspended | Status::Revoked => "INACTIVE",
    };
    json!({
        "id": numeric_id(l.id),
        "key": l.key,
        "limit": l.max_activations,
        "active": u8::from(switched_on),
        "status": status,
        "expires_at": l.expires_at.map(laravel_time),
        "is_expired": u8::from(l.status == Status::Expired),
        "store_id": STORE_ID,
        "order_id": order,
        "invoice_id": null,
        "product_id": numeric_id(l.product.id),
        // One variant per product.
        "variant_id": numeric_id(l.product.id),
        "customer_id": stripe.and_then(|s| s.customer.clone()),
        "subscription_id": stripe.and_then(|s| s.subscription.clone()),
        "created_at": laravel_time(l.created_at),
        "updated_at": laravel_time(l.updated_at),
        "instances_count": l.activations_count,
    })
}

/// SellApp's license key instance object: one activation.
fn instance(a: &Activation) -> Value {
    json!({
        "id": a.id,
        "license_key_id": numeric_id(a.license_id),
        "name": a.fingerprint,
        "store_id": STORE_ID,
        "created_at": laravel_time(a.created_at),
        "updated_at": laravel_time(a.last_seen_at),
    })
}

/// `POST /api/v2/licenses/validate {license_key, instance_id?}`: 200 with
/// `data.valid`, and a `message` saying why when it is false.
#[utoipa::path(post, path = "/api/v2/licenses/validate", tag = "compat: SellApp",
    description = "Validate `{license_key, instance_id?}`. Answers in SellApp's shapes; see docs/compatibility.md.",
    responses((status = 200, description = "SellApp-shaped answer; public answers are signed", body = Object)))]
async fn validate(
    state: web::Data<State>,
    http: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let fields = body_object(&body);
    let key = match required(&fields, "license_key") {
        Ok(key) => key,
        Err(e) => return Ok(validation_failed(vec![e])),
    };
    let activation_id = match fields.get("instance_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        // An id that is no UUID names no instance: the nil id matches none.
        Some(v) => Some(
            v.as_str()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .unwrap_or(Uuid::nil()),
        ),
    };
    let call = ValidateRequest {
        key,
        activation_id,
        ..Default::default()
    };
    let checked = front::validate(&state, &http, call).await?;
    let valid = checked.code == Code::Valid;
    let license = checked
        .found
        .map(|(l, p)| license_key(&LicenseView::admin(l, &p, checked.now)));
    let mut answer = json!({
        "data": {
            "valid": valid,
            "license_key": license,
            "instance": checked.activation.as_ref().map(instance),
        }
    });
    if !valid {
        let why = match checked.code {
            Code::NotFound => "License key not found.",
            Code::Expired => "License key has expired.",
            Code::NotActivated => "License key instance not found.",
            _ => "License key is not active.",
        };
        answer["message"] = json!(why);
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// `POST /api/v2/licenses/activate {license_key, instance_name}`: 201 with the new
/// instance; the same instance name again answers 200 with the existing one.
#[utoipa::path(post, path = "/api/v2/licenses/activate", tag = "compat: SellApp",
    description = "Activate `{license_key, instance_name}`: creates the instance. Answers in SellApp's shapes; see docs/compatibility.md.",
    responses((status = 200, description = "SellApp-shaped answer; public answers are signed", body = Object)))]
async fn activate(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let fields = body_object(&body);
    let key = required(&fields, "license_key");
    let name = required(&fields, "instance_name").and_then(|n| {
        Fingerprint::parse("instance_name", &n).map_err(|_| {
            (
                "instance_name",
                "The instance name field must not be longer than 255 characters.".to_owned(),
            )
        })
    });
    let (key, name) = match (key, name) {
        (Ok(key), Ok(name)) => (key, name),
        (key, name) => {
            return Ok(validation_failed(
                [key.err(), name.err()].into_iter().flatten().collect(),
            ))
        }
    };
    let call = front::Activate {
        key,
        fingerprint: name,
        name: None,
        expect: Expect::default(),
    };
    let outcome = front::activate(&state, &req, call).await?;
    Ok(match outcome {
        ActivateOutcome::Done {
            new, activation, ..
        } => {
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            HttpResponse::build(status).json(json!({ "data": instance(&activation) }))
        }
        ActivateOutcome::Refused(Code::NotFound) => {
            message(StatusCode::NOT_FOUND, "License key not found.")
        }
        ActivateOutcome::Refused(Code::Expired) => {
            message(StatusCode::FORBIDDEN, "License key has expired.")
        }
        ActivateOutcome::Refused(Code::TooManyActivations) => message(
            StatusCode::CONFLICT,
            "License key has reached its activation limit.",
        ),
        ActivateOutcome::Refused(_) => message(StatusCode::FORBIDDEN, "License key is not active."),
    })
}

/// `GET /api/v2/licenses?limit=&page=` (admin token): one page of license keys,
/// newest first, with Laravel's `links` and `meta`.
#[utoipa::path(get, path = "/api/v2/licenses", tag = "compat: SellApp",
    description = "List license keys (`limit`, `page`), admin bearer token. Answers in SellApp's shapes; see docs/compatibility.md.",
    responses((status = 200, description = "SellApp-shaped answer; public answers are signed", body = Object)))]
async fn list(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    match admin {
        Ok(_) => {}
        Err(AppError::Unauthorized) => {
            return Ok(message(StatusCode::UNAUTHORIZED, "Unauthenticated."))
        }
        Err(e) => return Err(e),
    }
    let query = form_params(req.query_string().as_bytes());
    let number =
        |name: &'static str, default: i64, max: i64| -> Result<i64, (&'static str, String)> {
            match query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    Ok(_) => Err((
                        name,
                        format!("The {name} field must be between 1 and {max}."),
                    )),
                    Err(_) => Err((name, format!("The {name} field must be an integer."))),
                },
            }
        };
    let (limit, page) = match (
        number("limit", 15, MAX_PER_PAGE),
        number("page", 1, i64::from(i32::MAX)),
    ) {
        (Ok(limit), Ok(page)) => (limit, page),
        (limit, page) => {
            return Ok(validation_failed(
                [limit.err(), page.err()].into_iter().flatten().collect(),
            ))
        }
    };
    let filter = ListLicenses {
        page: Some(page),
        per_page: Some(limit),
        ..Default::default()
    };
    let found = db::run(&state.pool, move |conn| admin::list_licenses(conn, &filter)).await?;
    let last_page = ((found.total + limit - 1) / limit).max(1);
    let count = i64::try_from(found.data.len()).unwrap_or(i64::MAX);
    let (from, to) = if count == 0 {
        (None, None)
    } else {
        let from = (page - 1) * limit + 1;
        (Some(from), Some(from + count - 1))
    };
    let path = format!(
        "{}/api/v2/licenses",
        state.settings.public_url.trim_end_matches('/')
    );
    let link = |p: i64| format!("{path}?limit={limit}&page={p}");
    Ok(HttpResponse::Ok().json(json!({
        "data": found.data.iter().map(license_key).collect::<Vec<_>>(),
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": (page > 1).then(|| link(page - 1)),
            "next": (page < last_page).then(|| link(page + 1)),
        },
        "meta": {
            "current_page": page,
            "from": from,
            "last_page": last_page,
            "path": path,
            "per_page": limit,
            "to": to,
            "total": found.total,
        },
    })))
}

/// The routes of this adapter, for the OpenAPI check (see `http::routes`).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v2/licenses"),
    ("POST", "/api/v2/licenses/validate"),
    ("POST", "/api/v2/licenses/activate"),
];

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, validate, activate))]
pub struct Api;
