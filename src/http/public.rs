//! The public license API the customer software calls. The key is the credential.

use super::routes::Table;
use crate::route;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::Json;
use super::front;
use super::State;
use crate::db::activations::Selector;
use crate::error::AppError;
use crate::licensing::check::{
    Activated, Code, Deactivated, Expect, Heartbeat, ValidateRequest, Validation,
};
use crate::licensing::input::{optional_name, Fingerprint};
use crate::licensing::signing::CheckoutRequest;

/// Added before the admin routes, so `/v1/licenses/{license}` does not claim these
/// paths. Each is a license route of the front door (signed and abuse-limited).
pub fn routes(t: &mut Table) {
    t.add(route!(License, validate))
        .add(route!(License, activate))
        .add(route!(License, deactivate))
        .add(route!(License, heartbeat))
        .add(route!(License, checkout))
        .add(route!(License, activations))
        .add(route!(Plain, signing_key))
        .add(route!(Plain, signing_keys));
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
        (status = 200, description = "The answer `{valid, code, message, license?, activation?, nonce?}`; signed (`Licensd-Signature`). Codes in the order checked: NOT_FOUND, REVOKED, SUSPENDED, PAST_DUE, EXPIRED, PRODUCT_MISMATCH, EMAIL_MISMATCH, NOT_ACTIVATED, LEASE_EXPIRED, VALID", body = Object),
        (status = 400, description = "Malformed JSON", body = super::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited (see `Retry-After`)", body = super::error::ErrorBody),
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
        Code::NotFound | Code::NotActivated | Code::LeaseExpired => StatusCode::NOT_FOUND,
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
        (status = 403, description = "`{activated: false, code}`: REVOKED, SUSPENDED, PAST_DUE or EXPIRED (an expired `maintain_access` license still activates)", body = Object),
        (status = 404, description = "`{activated: false, code: NOT_FOUND}`", body = Object),
        (status = 409, description = "`{activated: false, code: TOO_MANY_ACTIVATIONS}`", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited (per client IP, and per key for activations)", body = super::error::ErrorBody),
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
            "activated": true, "activation": activation, "license": license,
        })),
        Activated::Existing {
            activation,
            license,
        } => HttpResponse::Ok().json(json!({
            "activated": true, "activation": activation, "license": license,
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
        (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody),
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

/// `POST /v1/licenses/heartbeat`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HeartbeatBody {
    pub key: String,
    /// The activated device or instance id.
    pub fingerprint: String,
    /// Up to 128 visible characters, echoed into the signed answer.
    #[allow(dead_code)] // read (and checked) by the signing middleware; here for the document
    pub nonce: Option<String>,
}

#[utoipa::path(post, path = "/v1/licenses/heartbeat", tag = "public",
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "`{alive: true, activation, license}`: the lease runs again from now (`activation.lease_expires_at`); signed", body = Object),
        (status = 403, description = "`{alive: false, code}`: REVOKED, SUSPENDED, PAST_DUE or EXPIRED", body = Object),
        (status = 404, description = "`{alive: false, code}`: NOT_FOUND, or NOT_ACTIVATED (never activated, deactivated, or its seat was reclaimed after its lease ran out: activate again)", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody),
    ))]
async fn heartbeat(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<HeartbeatBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let req = front::Heartbeat {
        key: required_key(&body.key)?,
        fingerprint: Fingerprint::parse("fingerprint", &body.fingerprint)?,
    };
    Ok(match front::heartbeat(&state, &http, req).await? {
        Heartbeat::Alive {
            activation,
            license,
        } => HttpResponse::Ok().json(json!({
            "alive": true, "activation": activation, "license": license,
        })),
        Heartbeat::Refused(code) => refusal("alive", code),
    })
}

/// `POST /v1/licenses/checkout`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckoutBody {
    pub key: String,
    /// Bind the file to this activated device; NOT_ACTIVATED if it is not activated.
    /// Without it, the file gets an activation of its own that takes a seat
    /// (TOO_MANY_ACTIVATIONS when every seat is taken).
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
        (status = 403, description = "`{issued: false, code}`: REVOKED, SUSPENDED, PAST_DUE or EXPIRED", body = Object),
        (status = 404, description = "`{issued: false, code}`: NOT_FOUND, NOT_ACTIVATED or LEASE_EXPIRED", body = Object),
        (status = 409, description = "`{issued: false, code: TOO_MANY_ACTIVATIONS}`: no fingerprint given and every seat is taken", body = Object),
        (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid (e.g. `ttl_days` out of range)", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody),
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
        (status = 400, description = "Malformed JSON or body", body = super::error::ErrorBody), (status = 422, description = "A field is invalid", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody),
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
    HttpResponse::Ok().json(state.signer.get().public_key())
}

#[utoipa::path(get, path = "/v1/signing-keys", tag = "public",
    responses(
        (status = 200, description = "`{keys: [{key_id, algorithm, public_key, status}]}`: every key whose signatures still verify (`current` signs new answers; `published` keys signed earlier ones and are kept until retired). Pick the key by the `keyid` of a signature.", body = Object),
    ))]
async fn signing_keys(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.signer.get().key_set())
}
