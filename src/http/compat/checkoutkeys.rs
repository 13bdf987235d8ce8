//! CheckoutKeys: `GET /api/licensekeys/validate`, `GET /api/licensekeys/status`,
//! `POST /api/licensekeys/activateDeactivate`, with the seller's admin token as
//! `x-api-key` or `?api_key=`. Activate/deactivate switch the whole key on or off
//! (our `active` / `suspended`). Bodies are `{"status", "message"}`.

use crate::http::routes::Table;
use crate::route;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use super::form_params;
use crate::db;
use crate::error::AppError;
use crate::http::extract::Admin;
use crate::http::front;
use crate::http::State;
use crate::licensing::admin;
use crate::licensing::check::{self, Code, ValidateRequest};
use crate::licensing::history::Actor;

pub fn routes(t: &mut Table) {
    t.add(route!(License, validate))
        .add(route!(License, status))
        .add(route!(License, activate_deactivate));
}

const INVALID: &str = "Invalid license key or not associated with the connected account.";
const NOT_FOUND: &str = "License key not found for the provided connected account.";

fn reply(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "status": kind, "message": message }))
}

/// `Ok(None)` when the caller is the seller; the refusal otherwise. A database
/// outage stays licensd's 503.
fn refuse_unless_seller(admin: Result<Admin, AppError>) -> Result<Option<HttpResponse>, AppError> {
    match admin {
        Ok(_) => Ok(None),
        Err(AppError::Unauthorized) => Ok(Some(reply(
            StatusCode::UNAUTHORIZED,
            "error",
            "Missing or invalid API key. Send it as the x-api-key header or the api_key query parameter.",
        ))),
        Err(e) => Err(e),
    }
}

fn license_key_param(req: &HttpRequest) -> String {
    form_params(req.query_string().as_bytes())
        .remove("licenseKey")
        .unwrap_or_default()
}

/// The core's verdict on the `licenseKey` query parameter (no `last_seen_at` refresh).
async fn check_key_param(state: &State, req: &HttpRequest) -> Result<check::Checked, AppError> {
    let call = ValidateRequest {
        key: license_key_param(req),
        ..Default::default()
    };
    front::validate(state, req, call).await
}

#[utoipa::path(get, path = "/api/licensekeys/validate", tag = "compat: CheckoutKeys",
    description = "Validate a key (`licenseKey` query); admin token as `x-api-key` or `api_key`. Answers in CheckoutKeys's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{status: \"success\", message}`: the key is valid; signed", body = Object),
        (status = 400, description = "`{status: \"error\", message}`: unknown, expired, suspended or revoked key", body = Object),
        (status = 401, description = "`{status: \"error\", message}`: no admin token", body = Object),
        (status = 503, description = "The database is unavailable", body = crate::http::error::ErrorBody)))]
async fn validate(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = refuse_unless_seller(admin)? {
        return Ok(refusal);
    }
    let checked = check_key_param(&state, &req).await?;
    Ok(match checked.code {
        Code::Valid => reply(StatusCode::OK, "success", "License key is valid."),
        _ => reply(StatusCode::BAD_REQUEST, "error", INVALID),
    })
}

#[utoipa::path(get, path = "/api/licensekeys/status", tag = "compat: CheckoutKeys",
    description = "Status of a key: `active` or `deactivated`. Answers in CheckoutKeys's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{status: \"active\"|\"deactivated\", message}`; signed", body = Object),
        (status = 401, description = "`{status: \"error\", message}`: no admin token", body = Object),
        (status = 404, description = "`{status: \"error\", message}`: unknown key", body = Object),
        (status = 503, description = "The database is unavailable", body = crate::http::error::ErrorBody)))]
async fn status(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = refuse_unless_seller(admin)? {
        return Ok(refusal);
    }
    let checked = check_key_param(&state, &req).await?;
    // The switch the activateDeactivate endpoint flips, not the validity verdict.
    Ok(match checked.found {
        None => reply(StatusCode::NOT_FOUND, "error", NOT_FOUND),
        Some((license, _)) if license.status == "active" => {
            reply(StatusCode::OK, "active", "License key is active.")
        }
        Some(_) => reply(StatusCode::OK, "deactivated", "License key is deactivated."),
    })
}

#[utoipa::path(post, path = "/api/licensekeys/activateDeactivate", tag = "compat: CheckoutKeys",
    description = "Switch a key on or off: `{licenseKey, action}`. Answers in CheckoutKeys's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{status: \"success\", message}`: switched on or off; signed", body = Object),
        (status = 400, description = "`{status: \"error\", message}`: `action` is not activate or deactivate", body = Object),
        (status = 401, description = "`{status: \"error\", message}`: no admin token", body = Object),
        (status = 404, description = "`{status: \"error\", message}`: unknown key", body = Object),
        (status = 500, description = "`{status: \"error\", message: \"Failed to activate/deactivate license key.\"}` (503 when the database is down)", body = Object)))]
async fn activate_deactivate(
    admin: Result<Admin, AppError>,
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = match &admin {
        Ok(Admin(token)) => Actor::ApiToken(token.name.clone()),
        Err(_) => Actor::App,
    };
    if let Some(refusal) = refuse_unless_seller(admin)? {
        return Ok(refusal);
    }
    let fields = read_object(&body);
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let enabled = match text("action").as_str() {
        "activate" => true,
        "deactivate" => false,
        _ => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                "error",
                "Invalid action provided.",
            ))
        }
    };
    let key = text("licenseKey");
    let which = key.clone();
    let outcome = db::run(&state.pool, move |conn| {
        admin::set_license_enabled(conn, &actor, &key, enabled)
    })
    .await;
    state.cache.forget_ref(&which);
    Ok(match outcome {
        Ok(_) if enabled => reply(StatusCode::OK, "success", "License key activated."),
        Ok(_) => reply(StatusCode::OK, "success", "License key deactivated."),
        Err(AppError::NotFound { .. }) => reply(StatusCode::NOT_FOUND, "error", NOT_FOUND),
        // CheckoutKeys' documented failure body; a database outage keeps its 503.
        Err(e) => {
            let status = match e.status_code() {
                s if s.is_server_error() => s,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::error!(error = %e, "checkoutkeys activateDeactivate failed");
            reply(
                status,
                "error",
                "Failed to activate/deactivate license key.",
            )
        }
    })
}

/// The body as a JSON object. CheckoutKeys' own curl sample loses its inner quotes
/// to the shell and sends `{licenseKey: KEY, action: activate}`, so that relaxed
/// form (bare or quoted names and values) is read too.
fn read_object(body: &[u8]) -> Map<String, Value> {
    if let Ok(Value::Object(map)) = serde_json::from_slice(body) {
        return map;
    }
    let text = String::from_utf8_lossy(body);
    let Some(inner) = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
    else {
        return Map::new();
    };
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
    inner
        .split(',')
        .filter_map(|pair| pair.split_once(':'))
        .map(|(k, v)| (unquote(k), Value::String(unquote(v))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_the_shell_mangled_curl_body() {
        let json = read_object(br#"{"licenseKey": "K-1", "action": "activate"}"#);
        assert_eq!(json["licenseKey"], "K-1");
        let relaxed = read_object(b"{licenseKey: ABCDE-FGHJK, action: deactivate}");
        assert_eq!(relaxed["licenseKey"], "ABCDE-FGHJK");
        assert_eq!(relaxed["action"], "deactivate");
        assert!(read_object(b"nonsense").is_empty());
    }
}
