//! The public license API the customer software calls. The key is the credential.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::Json;
use super::State;
use crate::db::{self, activations::Selector};
use crate::error::AppError;
use crate::licensing::check::{
    self, ActivateRequest, Activated, Code, Deactivated, ValidateRequest,
};
use crate::licensing::input::{optional_name, Fingerprint};
use crate::licensing::views::ActivationView;
use crate::metrics;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/licenses/validate", web::post().to(validate))
        .route("/v1/licenses/activate", web::post().to(activate))
        .route("/v1/licenses/deactivate", web::post().to(deactivate));
}

fn required_key(key: &str) -> Result<String, AppError> {
    if key.trim().is_empty() {
        return Err(AppError::invalid("key", "must not be empty"));
    }
    Ok(key.to_owned())
}

#[derive(Debug, Deserialize)]
pub struct ValidateBody {
    pub key: String,
    pub fingerprint: Option<String>,
    pub product: Option<String>,
    pub email: Option<String>,
}

async fn validate(
    state: web::Data<State>,
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
        product: body.product,
        email: body.email,
    };
    let interval = Duration::seconds(state.settings.last_seen_interval_secs.into());
    let answer = db::run(&state.pool, move |conn| {
        Ok(check::validate(conn, &req, interval)?)
    })
    .await?;
    metrics::record_validation(answer.code.as_str());
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize)]
pub struct ActivateBody {
    pub key: String,
    pub fingerprint: String,
    pub name: Option<String>,
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

async fn activate(
    state: web::Data<State>,
    http: HttpRequest,
    body: Json<ActivateBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let req = ActivateRequest {
        key: required_key(&body.key)?,
        fingerprint: Fingerprint::parse("fingerprint", &body.fingerprint)?,
        name: optional_name("name", body.name.as_deref(), 255)?,
        ip: http.peer_addr().map(|a| a.ip().to_string()),
    };
    let outcome = db::run(&state.pool, move |conn| Ok(check::activate(conn, &req)?)).await?;
    metrics::record_activation(match &outcome {
        Activated::New { .. } => "NEW",
        Activated::Existing { .. } => "EXISTING",
        Activated::Refused(code) => code.as_str(),
    });
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

#[derive(Debug, Deserialize)]
pub struct DeactivateBody {
    pub key: String,
    pub fingerprint: Option<String>,
    pub activation_id: Option<String>,
}

async fn deactivate(
    state: web::Data<State>,
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
    let outcome = db::run(&state.pool, move |conn| {
        Ok(check::deactivate(conn, &key, &which)?)
    })
    .await?;
    Ok(match outcome {
        Deactivated::Done(id) => {
            HttpResponse::Ok().json(json!({ "deactivated": true, "activation_id": id }))
        }
        Deactivated::Refused(code) => refusal("deactivated", code),
    })
}
