//! The public license API the customer software calls. The key is the credential.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::Json;
use super::front::{self, license_route};
use super::State;
use crate::db::activations::Selector;
use crate::error::AppError;
use crate::licensing::check::{Activated, Code, Deactivated, Expect, ValidateRequest, Validation};
use crate::licensing::input::{optional_name, Fingerprint};
use crate::licensing::signing::CheckoutRequest;
use crate::licensing::views::ActivationView;

/// The routes of this module, for the OpenAPI check (see `http::routes`).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/licenses/validate"),
    ("POST", "/v1/licenses/activate"),
    ("POST", "/v1/licenses/deactivate"),
    ("POST", "/v1/licenses/checkout"),
    ("POST", "/v1/licenses/activations"),
    ("GET", "/v1/signing-key"),
];

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(validate, activate, deactivate, checkout, activations, signing_key))]
pub struct Api;

/// Registered before the admin routes, so `/v1/licenses/{license}` does not claim these
/// paths. Each is a license route of the front door (signed and abuse-limited).
pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, route) in [
        ("/v1/licenses/validate", web::post().to(validate)),
        ("/v1/licenses/activate", web::post().to(activate)),
        ("/v1/licenses/deactivate", web::post().to(deactivate)),
        ("/v1/licenses/checkout", web::post().to(checkout)),
        ("/v1/licenses/activations", web::post().to(activations)),
    ] {
        cfg.service(license_route(path, [route]));
    }
    cfg.route("/v1/signing-key", web::get().to(signing_key));
}

fn required_key(key: &str) -> Result<String, AppError> {
    if key.trim().is_empty() {
        return Err(AppError::invalid("key", "must not be empty"));
    }
    Ok(key.to_owned())
}

/// `POST /v1/licenses/validate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ValidateBody {
    /// The license key (any case; surrounding white space is ignored).
    pub key: String,
    /// The device or instance id; when given, the answer says whether it is activated.
    pub fingerprint: Option<String>,
    /// Product id or slug the software expects.
    pub product: Option<String>,
    /// The buyer's email, compared without case.
    pub email: Option<String>,
    /// Up to 128 visible characters, echoed into the signed answer.
    #[allow(dead_code)] // read (and checked) by the signing middleware; here for the document
    pub nonce: Option<String>,
}

#[utoipa::path(post, path = "/v1/licenses/validate", tag = "public",
    request_body = ValidateBody,
    responses(
        (status = 200, description = "The answer `{valid, code, message, license?, activation?, nonce?}`; signed (`Licensd-Signature`)", body = Object),
        (status = 400, description = "Malformed JSON", body = super::openapi::ErrorBody),
        (status = 422, description = "A field is invalid", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (see `Retry-After`)", body = super::openapi::ErrorBody),
    ))]
async fn validate(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<ValidateBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let req = ValidateRequest {
        key: required_key(&body.key)?,
        fingerprint: body
            .fingerprint
            .as_deref()
            .map(|f| Fingerprint::parse("fingerprint", f))
            .transpose()?,
        activation_id: None,
        product: body.product,
        email: body.email,
    };
    let answer = Validation::from(front::validate(&state, &http, req).await?);
    Ok(HttpResponse::Ok().json(&answer))
}

/// `POST /v1/licenses/activate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ActivateBody {
    pub key: String,
    /// The device or instance id (1 to 255 characters).
    pub fingerprint: String,
    /// A name for the device, shown to the seller.
    pub name: Option<String>,
    /// Up to 128 visible characters, echoed into the signed answer.
    #[allow(dead_code)] // read (and checked) by the signing middleware; here for the document
    pub nonce: Option<String>,
}

/// A refusal body: `{activated|deactivated: false, code, message}`.
fn refusal(flag: &str, code: Code) -> HttpResponse {
    let status = match code {
        Code::NotFound | Code::NotActivated => StatusCode::NOT_FOUND,
        Code::TooManyActivations => StatusCode::CONFLICT,
        _ => StatusCode::FORBIDDEN,
    };
    HttpResponse::build(status)
        .json(json!({ flag: false, "code": code, "message": code.message() }))
}

#[utoipa::path(post, path = "/v1/licenses/activate", tag = "public",
    request_body = ActivateBody,
    responses(
        (status = 201, description = "Activated: `{activated: true, activation, license}`; signed", body = Object),
        (status = 200, description = "Already activated: the existing activation; signed", body = Object),
        (status = 403, description = "`{activated: false, code}`: REVOKED, SUSPENDED or EXPIRED", body = Object),
        (status = 404, description = "`{activated: false, code: NOT_FOUND}`", body = Object),
        (status = 409, description = "`{activated: false, code: TOO_MANY_ACTIVATIONS}`", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::openapi::ErrorBody), (status = 422, description = "A field is invalid", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (per client IP, and per key for activations)", body = super::openapi::ErrorBody),
    ))]
async fn activate(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<ActivateBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let req = front::Activate {
        key: required_key(&body.key)?,
        fingerprint: Fingerprint::parse("fingerprint", &body.fingerprint)?,
        name: optional_name("name", body.name.as_deref(), 255)?,
        expect: Expect::default(),
    };
    let outcome = Activated::from(front::activate(&state, &http, req).await?);
    Ok(match outcome {
        Activated::New {
            activation,
            license,
        } => HttpResponse::Created().json(json!({
            "activated": true, "activation": ActivationView::from(activation), "license": license,
        })),
        Activated::Existing {
            activation,
            license,
        } => HttpResponse::Ok().json(json!({
            "activated": true, "activation": ActivationView::from(activation), "license": license,
        })),
        Activated::Refused(code) => refusal("activated", code),
    })
}

/// `POST /v1/licenses/deactivate`: `fingerprint` or `activation_id` names the activation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeactivateBody {
    /// The license key (or the license id).
    pub key: String,
    pub fingerprint: Option<String>,
    pub activation_id: Option<String>,
    /// Up to 128 visible characters, echoed into the signed answer.
    #[allow(dead_code)] // read (and checked) by the signing middleware; here for the document
    pub nonce: Option<String>,
}

#[utoipa::path(post, path = "/v1/licenses/deactivate", tag = "public",
    request_body = DeactivateBody,
    responses(
        (status = 200, description = "`{deactivated: true, activation_id}`; signed", body = Object),
        (status = 404, description = "`{deactivated: false, code}`: NOT_FOUND or NOT_ACTIVATED", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::openapi::ErrorBody), (status = 422, description = "A field is invalid", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited", body = super::openapi::ErrorBody),
    ))]
async fn deactivate(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<DeactivateBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let key = required_key(&body.key)?;
    let which = match (body.fingerprint.as_deref(), body.activation_id.as_deref()) {
        (Some(f), _) => {
            Selector::Fingerprint(Fingerprint::parse("fingerprint", f)?.as_str().to_owned())
        }
        (None, Some(id)) => Selector::Id(Uuid::parse_str(id.trim()).map_err(|_| {
            AppError::invalid("activation_id", "must be an activation id (a UUID)")
        })?),
        (None, None) => {
            return Err(AppError::invalid(
                "fingerprint",
                "or `activation_id` is required",
            ))
        }
    };
    let req = front::Deactivate {
        key,
        which: Some(which),
        expect: Expect::default(),
    };
    let outcome = Deactivated::from(front::deactivate(&state, &http, req).await?);
    Ok(match outcome {
        Deactivated::Done(id) => {
            HttpResponse::Ok().json(json!({ "deactivated": true, "activation_id": id }))
        }
        Deactivated::Refused(code) => refusal("deactivated", code),
    })
}

/// `POST /v1/licenses/checkout`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckoutBody {
    pub key: String,
    /// Bind the file to this activated device; NOT_ACTIVATED if it is not activated.
    pub fingerprint: Option<String>,
    /// Days the file stays valid (default and maximum are configured); never past the
    /// license's own expiry.
    pub ttl_days: Option<i64>,
    /// Up to 128 visible characters, echoed into the signed answer.
    #[allow(dead_code)] // read (and checked) by the signing middleware; here for the document
    pub nonce: Option<String>,
}

#[utoipa::path(post, path = "/v1/licenses/checkout", tag = "public",
    request_body = CheckoutBody,
    responses(
        (status = 200, description = "`{license_file, key_id, issued_at, expires_at}`: an offline license file (armoured text); signed", body = Object),
        (status = 403, description = "`{issued: false, code}`: REVOKED, SUSPENDED or EXPIRED", body = Object),
        (status = 404, description = "`{issued: false, code}`: NOT_FOUND or NOT_ACTIVATED", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::openapi::ErrorBody), (status = 422, description = "A field is invalid (e.g. `ttl_days` out of range)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited", body = super::openapi::ErrorBody),
    ))]
async fn checkout(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<CheckoutBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let max = i64::from(state.settings.license_file_max_ttl_days);
    let ttl_days = body
        .ttl_days
        .unwrap_or_else(|| i64::from(state.settings.license_file_ttl_days).min(max));
    if !(1..=max).contains(&ttl_days) {
        return Err(AppError::invalid(
            "ttl_days",
            format!("must be a whole number of days from 1 to {max}"),
        ));
    }
    let req = CheckoutRequest {
        key: required_key(&body.key)?,
        fingerprint: body
            .fingerprint
            .as_deref()
            .map(|f| Fingerprint::parse("fingerprint", f))
            .transpose()?,
        ttl: Duration::days(ttl_days),
    };
    Ok(match front::checkout(&state, &http, req).await? {
        Ok(file) => HttpResponse::Ok().json(file),
        Err(code) => refusal("issued", code),
    })
}

/// `POST /v1/licenses/activations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ActivationsBody {
    /// The license key (any case).
    pub key: String,
    /// Up to 128 visible characters, echoed into the signed answer.
    #[allow(dead_code)] // read (and checked) by the signing middleware; here for the document
    pub nonce: Option<String>,
}

#[utoipa::path(post, path = "/v1/licenses/activations", tag = "public",
    request_body = ActivationsBody,
    responses(
        (status = 200, description = "`{license, activations: [{id, name, fingerprint, created_at, last_seen_at}]}`: the devices using the key, so an app can offer to free one (with `/v1/licenses/deactivate`); signed", body = Object),
        (status = 404, description = "`{found: false, code: NOT_FOUND}`", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::openapi::ErrorBody), (status = 422, description = "A field is invalid", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited", body = super::openapi::ErrorBody),
    ))]
async fn activations(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<ActivationsBody>,
) -> Result<HttpResponse, AppError> {
    let key = required_key(&body.0.key)?;
    Ok(match front::devices(&state, &http, key).await? {
        Some(devices) => HttpResponse::Ok().json(devices),
        None => refusal("found", Code::NotFound),
    })
}

#[utoipa::path(get, path = "/v1/signing-key", tag = "public",
    responses(
        (status = 200, description = "`{key_id, algorithm: \"ed25519\", public_key}`: the key that signs answers and license files (public key: 32 bytes, base64)", body = Object),
    ))]
async fn signing_key(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.signer.public_key())
}
