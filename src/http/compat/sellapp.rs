//! SellApp's license API v2, as its official SDK (PyPI `sellapp-sdk`) calls it:
//! validate, activate and deactivate an instance (the key is the credential), and the
//! seller's license-key routes (admin token as bearer): list, get and update keys, and
//! list their instances. Shapes follow SellApp's Laravel API and the types the SDK
//! declares: `{"data": ...}`, integer ids, booleans, times as
//! `2025-04-22T20:08:39.000000Z`, validation errors as 422
//! `{"message", "errors": {field: [..]}}`, other errors as `{"message"}`.

// A refusal here is the dialect's own answer, built once per request and returned at once.
#![allow(clippy::result_large_err)]

use crate::http::routes::Table;
use crate::licensing::history::Actor;
use crate::route;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{form_params, numeric_id};
use crate::db;
use crate::db::activations::Selector;
use crate::db::models::{Activation, License, Product};
use crate::error::AppError;
use crate::http::extract::Admin;
use crate::http::front;
use crate::http::State;
use crate::licensing::admin::{self, ListLicenses, UpdateLicense, MAX_PER_PAGE};
use crate::licensing::check::{ActivateOutcome, Code, DeactivateOutcome, Expect, ValidateRequest};
use crate::licensing::input::Fingerprint;
use crate::licensing::views::LicenseView;
use crate::licensing::Status;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::openapi::{RefOr, Response};

pub fn routes(t: &mut Table) {
    t.add(route!(License, validate))
        .add(route!(License, activate))
        .add(route!(License, deactivate))
        .add(route!(License, list))
        .add(route!(License, list_old_path))
        .add(route!(License, get_key))
        .add(route!(License, update_key))
        .add(route!(License, key_instances))
        .add(route!(License, key_instance))
        .add(route!(License, all_instances));
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

/// A stable SellApp integer for a Stripe id (or any text): its SHA-256's first 48 bits.
/// One way only: these ids identify, they are not looked up.
fn number_of(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    digest[..6]
        .iter()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// SellApp's license key object, in the types its SDK declares.
fn license_key(l: &LicenseView) -> Value {
    let stripe = l.stripe.as_ref();
    let order = stripe.and_then(|s| s.checkout_session.clone().or(s.payment_intent.clone()));
    let customer = stripe
        .and_then(|s| s.customer.clone())
        .unwrap_or_else(|| l.email.trim().to_lowercase());
    // `active` is the seller's switch; an expired key is still switched on.
    let switched_on = matches!(l.status, Status::Active | Status::Expired);
    let status = match l.status {
        Status::Active => "ACTIVE",
        Status::Expired => "EXPIRED",
        Status::Suspended | Status::Revoked | Status::PastDue => "INACTIVE",
    };
    json!({
        "id": numeric_id(l.id),
        "key": l.key,
        // An integer in the SDK: 0 stands for unlimited.
        "limit": l.max_activations.unwrap_or(0),
        "active": u8::from(switched_on),
        "status": status,
        "expires_at": l.expires_at.map(laravel_time),
        "is_expired": l.status == Status::Expired,
        "store_id": STORE_ID,
        "order_id": order.as_deref().map(number_of),
        "invoice_id": null,
        "product_id": numeric_id(l.product.id),
        // One variant per product.
        "variant_id": numeric_id(l.product.id),
        "customer_id": number_of(&customer),
        "subscription_id": stripe.and_then(|s| s.subscription.as_deref()).map(number_of),
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
    responses(
        (status = 200, description = "`{data: {valid, license_key, instance}, message?}` for a known key; signed", body = Object),
        (status = 404, description = "`{message: \"License key not found.\"}`", body = Object),
        (status = 422, description = "Laravel's `{message, errors}`: `license_key` missing", body = Object)))]
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
    if checked.code == Code::NotFound {
        return Ok(key_not_found());
    }
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
            Code::Expired => "License key has expired.",
            Code::NotActivated | Code::LeaseExpired => "License key instance not found.",
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
    responses(
        (status = 201, description = "`{data: instance}`: a new instance; signed", body = Object),
        (status = 200, description = "`{data: instance}`: that instance name was already active", body = Object),
        (status = 403, description = "`{message}`: expired or not active", body = Object),
        (status = 404, description = "`{message: \"License key not found.\"}`", body = Object),
        (status = 409, description = "`{message}`: activation limit reached", body = Object),
        (status = 422, description = "Laravel's `{message, errors}`: a field missing or too long", body = Object)))]
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
        ActivateOutcome::Refused(Code::NotFound) => key_not_found(),
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

/// The refusal unless the caller holds an admin token (Laravel's 401); a database
/// outage stays licensd's 503.
fn unless_seller(admin: Result<Admin, AppError>) -> Result<Option<HttpResponse>, AppError> {
    Ok(seller(admin)?.err())
}

/// The seller's token as the actor of a change (named in the license history), or
/// SellApp's refusal.
fn seller(admin: Result<Admin, AppError>) -> Result<Result<Actor, HttpResponse>, AppError> {
    match admin {
        Ok(Admin(token)) => Ok(Ok(Actor::ApiToken(token.name))),
        Err(AppError::Unauthorized) => {
            Ok(Err(message(StatusCode::UNAUTHORIZED, "Unauthenticated.")))
        }
        Err(e) => Err(e),
    }
}

/// `limit` (default 15, at most 200) and `page` (default 1) of a list, or the 422.
fn paging(req: &HttpRequest) -> Result<(i64, i64), HttpResponse> {
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
    match (
        number("limit", 15, MAX_PER_PAGE),
        number("page", 1, admin::MAX_PAGE),
    ) {
        (Ok(limit), Ok(page)) => Ok((limit, page)),
        (limit, page) => Err(validation_failed(
            [limit.err(), page.err()].into_iter().flatten().collect(),
        )),
    }
}

/// A Laravel page: `data`, `links` and `meta` (which the SDK follows to the next page).
fn laravel_page(
    state: &State,
    req: &HttpRequest,
    data: Vec<Value>,
    total: i64,
    (limit, page): (i64, i64),
) -> HttpResponse {
    let last_page = ((total + limit - 1) / limit).max(1);
    let count = i64::try_from(data.len()).unwrap_or(i64::MAX);
    let (from, to) = if count == 0 {
        (None, None)
    } else {
        let from = (page - 1) * limit + 1;
        (Some(from), Some(from + count - 1))
    };
    let path = format!(
        "{}{}",
        state.settings.public_url.trim_end_matches('/'),
        req.path()
    );
    let link = |p: i64| format!("{path}?limit={limit}&page={p}");
    HttpResponse::Ok().json(json!({
        "data": data,
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
            "total": total,
        },
    }))
}

/// `GET /api/v2/license-keys?limit=&page=` (admin token; also `/api/v2/licenses`):
/// one page of license keys, newest first.
#[utoipa::path(get, path = "/api/v2/license-keys", tag = "compat: SellApp",
    description = "List license keys (`limit`, `page`), admin bearer token. Answers in SellApp's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "Laravel page of license keys (`data`, `links`, `meta`)", body = Object),
        (status = 401, description = "`{message: \"Unauthenticated.\"}`", body = Object),
        PageRefusal))]
async fn list(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    let (limit, page) = match paging(&req) {
        Ok(p) => p,
        Err(refusal) => return Ok(refusal),
    };
    let filter = ListLicenses {
        page: Some(page),
        per_page: Some(limit),
        ..Default::default()
    };
    let found = db::run(&state.pool, move |conn| admin::list_licenses(conn, &filter)).await?;
    let data = found.data.iter().map(license_key).collect();
    Ok(laravel_page(&state, &req, data, found.total, (limit, page)))
}

/// The license a `{id}` path segment names: SellApp's integer id (see
/// `compat::numeric_id`), or licensd's own UUID or key.
fn find_key(conn: &mut diesel::PgConnection, id: &str) -> Result<(License, Product), AppError> {
    match id.trim().parse::<u64>() {
        Ok(n) => admin::find_license_by_number(conn, n),
        Err(_) => admin::find_license(conn, id),
    }
}

fn key_not_found() -> HttpResponse {
    message(StatusCode::NOT_FOUND, "License key not found.")
}

fn instance_not_found() -> HttpResponse {
    message(StatusCode::NOT_FOUND, "License key instance not found.")
}

/// A seller's answer, or SellApp's 404 when the key it names is unknown.
fn or_key_not_found(answer: Result<HttpResponse, AppError>) -> Result<HttpResponse, AppError> {
    match answer {
        Err(AppError::NotFound { .. }) => Ok(key_not_found()),
        answer => answer,
    }
}

/// The refusals of a seller route on one key: no admin token, no such key.
struct KeyRefusals;

impl utoipa::IntoResponses for KeyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        super::object_answers(&[("401", "No admin token"), ("404", "No such license key")])
    }
}

/// The refusal of a list's `limit` or `page` (see [`paging`]).
struct PageRefusal;

impl utoipa::IntoResponses for PageRefusal {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        super::object_answers(&[("422", "`limit` or `page` out of range")])
    }
}

/// `GET /api/v2/license-keys/{id}` (admin token): one license key.
#[utoipa::path(get, path = "/api/v2/license-keys/{id}", tag = "compat: SellApp",
    description = "One license key by its integer id. Answers in SellApp's shapes; see docs/compatibility.md.",
    params(("id" = String, Path, description = "SellApp integer id (or licensd's UUID or key)")),
    responses((status = 200, description = "`{data: license key}`", body = Object),
        KeyRefusals))]
async fn get_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    let id = id.into_inner();
    let found = db::run(&state.pool, move |conn| find_key(conn, &id)).await;
    or_key_not_found(found.map(|(l, p)| {
        HttpResponse::Ok().json(json!({
            "data": license_key(&LicenseView::admin(l, &p, Utc::now())),
        }))
    }))
}

/// What `PATCH /api/v2/license-keys/{id}` may change, read from the body.
fn update_of(fields: &Map<String, Value>) -> Result<(UpdateLicense, Option<bool>), HttpResponse> {
    let mut update = UpdateLicense::default();
    let mut errors = Vec::new();
    match fields.get("limit") {
        None => {}
        Some(Value::Null) => update.max_activations = Some(None),
        Some(v) => match v.as_i64() {
            Some(n) => update.max_activations = Some(Some(n)),
            None => errors.push(("limit", "The limit field must be an integer.".to_owned())),
        },
    }
    match fields.get("expires_at") {
        None => {}
        Some(Value::Null) => update.expires_at = Some(None),
        Some(v) => match v
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        {
            Some(t) => update.expires_at = Some(Some(t.with_timezone(&Utc))),
            None => errors.push((
                "expires_at",
                "The expires at field must be a valid date.".to_owned(),
            )),
        },
    }
    let active = match fields.get("active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push((
                "active",
                "The active field must be true or false.".to_owned(),
            ));
            None
        }
    };
    if errors.is_empty() {
        Ok((update, active))
    } else {
        Err(validation_failed(errors))
    }
}

/// `PATCH /api/v2/license-keys/{id} {limit?, expires_at?, active?}` (admin token).
#[utoipa::path(patch, path = "/api/v2/license-keys/{id}", tag = "compat: SellApp",
    description = "Change a key's limit (`null`: unlimited), expiry (`null`: never) or `active` switch. Answers in SellApp's shapes; see docs/compatibility.md.",
    params(("id" = String, Path, description = "SellApp integer id (or licensd's UUID or key)")),
    responses((status = 200, description = "`{data: license key}` as changed", body = Object),
        KeyRefusals,
        (status = 422, description = "A field is invalid", body = Object)))]
async fn update_key(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = match seller(admin)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(refusal),
    };
    let (update, active) = match update_of(&body_object(&body)) {
        Ok(u) => u,
        Err(refusal) => return Ok(refusal),
    };
    let id = id.into_inner();
    let changed = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let (license, _) = find_key(conn, &id)?;
            let id = license.id.to_string();
            if let Some(enabled) = active {
                admin::set_license_enabled(conn, &actor, &id, enabled)?;
            }
            admin::update_license(conn, &actor, &id, &update)
        })
    })
    .await;
    match changed {
        Err(AppError::InvalidField { field, problem }) => {
            // licensd names its own field (`max_activations`); SellApp calls it `limit`.
            let name = if field == "max_activations" {
                "limit"
            } else {
                "expires_at"
            };
            Ok(validation_failed(vec![(
                name,
                format!("The {name} field {problem}."),
            )]))
        }
        changed => or_key_not_found(
            changed.map(|view| HttpResponse::Ok().json(json!({ "data": license_key(&view) }))),
        ),
    }
}

/// A page of instances, of one license key or of all.
async fn instances_page(
    state: &State,
    req: &HttpRequest,
    license: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (limit, page) = match paging(req) {
        Ok(p) => p,
        Err(refusal) => return Ok(refusal),
    };
    let found = db::run(&state.pool, move |conn| {
        let license = match license {
            Some(id) => Some(find_key(conn, &id)?.0.id),
            None => None,
        };
        admin::list_activations(conn, license, page, limit)
    })
    .await;
    or_key_not_found(found.map(|(rows, total)| {
        let data = rows.iter().map(instance).collect();
        laravel_page(state, req, data, total, (limit, page))
    }))
}

/// `GET /api/v2/license-keys/{id}/instances` (admin token).
#[utoipa::path(get, path = "/api/v2/license-keys/{id}/instances", tag = "compat: SellApp",
    description = "One page of a key's instances (`limit`, `page`). Answers in SellApp's shapes; see docs/compatibility.md.",
    params(("id" = String, Path, description = "SellApp integer id (or licensd's UUID or key)")),
    responses((status = 200, description = "Laravel page of instances", body = Object),
        KeyRefusals,
        PageRefusal))]
async fn key_instances(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    instances_page(&state, &req, Some(id.into_inner())).await
}

/// `GET /api/v2/license-key-instances` (admin token): every key's instances.
#[utoipa::path(get, path = "/api/v2/license-key-instances", tag = "compat: SellApp",
    description = "One page of all instances (`limit`, `page`). Answers in SellApp's shapes; see docs/compatibility.md.",
    responses((status = 200, description = "Laravel page of instances", body = Object),
        (status = 401, description = "No admin token", body = Object),
        PageRefusal))]
async fn all_instances(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    instances_page(&state, &req, None).await
}

/// `GET /api/v2/license-keys/{id}/instances/{instance}` (admin token).
#[utoipa::path(get, path = "/api/v2/license-keys/{id}/instances/{instance}", tag = "compat: SellApp",
    description = "One instance of a key. Answers in SellApp's shapes; see docs/compatibility.md.",
    params(("id" = String, Path, description = "SellApp integer id (or licensd's UUID or key)"),
        ("instance" = String, Path, description = "The instance id (a UUID)")),
    responses((status = 200, description = "`{data: instance}`", body = Object),
        (status = 401, description = "No admin token", body = Object),
        (status = 404, description = "No such key or instance", body = Object)))]
async fn key_instance(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = unless_seller(admin)? {
        return Ok(refusal);
    }
    let (id, wanted) = path.into_inner();
    let Ok(wanted) = Uuid::parse_str(wanted.trim()) else {
        return Ok(instance_not_found());
    };
    let found = db::run(&state.pool, move |conn| {
        let (license, _) = find_key(conn, &id)?;
        Ok(crate::db::activations::list_for(conn, license.id)?
            .into_iter()
            .find(|a| a.id == wanted))
    })
    .await;
    or_key_not_found(found.map(|a| match a {
        Some(a) => HttpResponse::Ok().json(json!({ "data": instance(&a) })),
        None => instance_not_found(),
    }))
}

/// `POST /api/v2/licenses/deactivate {license_key, instance_id}`: frees that instance's
/// seat.
#[utoipa::path(post, path = "/api/v2/licenses/deactivate", tag = "compat: SellApp",
    description = "Deactivate one instance: `{license_key, instance_id}`. Answers in SellApp's shapes; see docs/compatibility.md.",
    responses((status = 200, description = "`{data: {deactivated: true, instance_id}}`; signed", body = Object),
        (status = 404, description = "Unknown key or instance: `{message}`", body = Object),
        (status = 422, description = "A field is missing", body = Object),
        (status = 429, description = "Rate limited", body = crate::http::error::ErrorBody)))]
async fn deactivate(
    state: web::Data<State>,
    http: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let fields = body_object(&body);
    let (key, id) = match (
        required(&fields, "license_key"),
        required(&fields, "instance_id"),
    ) {
        (Ok(key), Ok(id)) => (key, id),
        (key, id) => {
            return Ok(validation_failed(
                [key.err(), id.err()].into_iter().flatten().collect(),
            ))
        }
    };
    // An id that is no UUID names no instance: the nil id matches none.
    let id = Uuid::parse_str(&id).unwrap_or(Uuid::nil());
    let call = front::Deactivate {
        key,
        which: Some(Selector::Id(id)),
        expect: Expect::default(),
    };
    Ok(match front::deactivate(&state, &http, call).await? {
        DeactivateOutcome::Done { removed, .. } => HttpResponse::Ok().json(json!({
            "data": { "deactivated": true, "instance_id": removed.first().map_or(id, |a| a.id) },
        })),
        DeactivateOutcome::Refused(Code::NotActivated) => instance_not_found(),
        DeactivateOutcome::Refused(_) => key_not_found(),
    })
}

/// `GET /api/v2/licenses`: the older path of [`list`].
#[utoipa::path(get, path = "/api/v2/licenses", tag = "compat: SellApp",
    description = "List license keys: the same as `GET /api/v2/license-keys`.",
    responses((status = 200, description = "Laravel page of license keys", body = Object),
        (status = 401, description = "No admin token: `{message: \"Unauthenticated.\"}`", body = Object),
        PageRefusal))]
async fn list_old_path(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    list(admin, state, req).await
}
