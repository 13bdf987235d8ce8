//! WC Key Manager's licensing API on the root path: `GET|POST /?wckm-api=ACTION`
//! with `key`, `label` (the device fingerprint; `instance` is read too), and the
//! optional `product_id` and `email`, in the query or a form body. ACTION is
//! `validate_key`, `activate_key` or `deactivate_key`. Answers are 200 with
//! `{"success": true, ...}` or `{"success": false, "error", "message"}`; a success
//! carries a `checksum` (see [`checksum`]). `/` without `wckm-api` stays a 404.

use crate::http::routes::Table;
use crate::route;
use std::collections::{BTreeMap, HashMap};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::Sha256;

use super::form_params;
use crate::db::activations::Selector;
use crate::db::models::License;
use crate::error::AppError;
use crate::http::front;
use crate::http::State;
use crate::licensing::check::{ActivateOutcome, Code, DeactivateOutcome, Expect, ValidateRequest};
use crate::licensing::input::Fingerprint;
use crate::licensing::LicenseKey;

pub fn routes(t: &mut Table) {
    t.add(route!(License, api));
}

fn failure(error: &str, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "success": false, "error": error, "message": message }))
}

fn invalid_key() -> HttpResponse {
    failure("invalid_key", "Invalid key, please provide a valid key.")
}

/// A refusal of the core, in WC Key Manager's error codes.
fn refusal(code: Code) -> HttpResponse {
    match code {
        Code::Revoked => failure("invalid_key", "This key has been revoked."),
        Code::Suspended => failure(
            "invalid_key",
            "This key is suspended, please contact the seller.",
        ),
        Code::Expired => failure("expired", "The key has expired, please renew it."),
        Code::ProductMismatch => failure(
            "invalid_product",
            "Invalid product, the key does not belong to this product.",
        ),
        Code::EmailMismatch => failure(
            "invalid_email",
            "Invalid email, the key does not belong to this email address.",
        ),
        Code::TooManyActivations => failure(
            "activation_limit_reached",
            "Activation limit reached, please deactivate the key on another device first.",
        ),
        Code::NotActivated | Code::LeaseExpired => {
            failure("inactive_label", "This label is not activated for the key.")
        }
        Code::PastDue => failure(
            "invalid_key",
            "This key's subscription payment is overdue, please update the payment method.",
        ),
        Code::NotFound | Code::Valid => invalid_key(),
    }
}

/// The request's parameters: the query, then a form body over it (PHP's `$_REQUEST`).
fn params(req: &HttpRequest, body: &[u8]) -> HashMap<String, String> {
    let mut params = form_params(req.query_string().as_bytes());
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(form_params(body));
    }
    params
}

#[utoipa::path(method(get, post), path = "/", tag = "compat: WC Key Manager",
    description = "`?wckm-api=validate_key|activate_key|deactivate_key&key=&label=&product_id=&email=`. Answers in WC Key Manager's shapes; see docs/compatibility.md.",
    responses(
        (status = 200, description = "`{success: true, ..., checksum}` or `{success: false, error, message}` (WordPress style: failures are 200 too); signed", body = Object),
        (status = 400, description = "`{success: false, error: \"invalid_action\"}`: unknown `wckm-api` value", body = Object),
        (status = 404, description = "No `wckm-api` parameter: `/` is no route of licensd's own", body = crate::http::error::ErrorBody)))]
async fn api(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let params = params(&req, &body);
    let Some(action) = params.get("wckm-api").cloned() else {
        // Not a licensing call: the root path is no route of licensd's own.
        return Ok(HttpResponse::NotFound().finish());
    };
    let text = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(key) = text("key") else {
        return Ok(invalid_key());
    };
    // The documents name the device `label` (validate, deactivate) and `instance` (activate).
    let (label_param, label) = match (params.get("label"), params.get("instance")) {
        (Some(l), _) => ("label", Some(l)),
        (None, Some(i)) => ("instance", Some(i)),
        (None, None) => ("label", None),
    };
    let label = match label.map(|l| Fingerprint::parse("label", l)).transpose() {
        Ok(label) => label,
        Err(_) => {
            return Ok(failure(
                "missing_label",
                "Invalid label, please provide a valid label.",
            ))
        }
    };
    let expect = Expect {
        product: text("product_id"),
        email: text("email"),
    };
    let secret = state
        .settings
        .compat_wckm_checksum_secret
        .as_ref()
        .map(|s| s.expose_secret().as_bytes().to_vec())
        .unwrap_or_default();
    let missing_label = || {
        failure(
            "missing_label",
            "Label is required, please provide a label.",
        )
    };

    match action.as_str() {
        "validate_key" => {
            let call = ValidateRequest {
                key,
                fingerprint: label.clone(),
                activation_id: None,
                product: expect.product,
                email: expect.email,
            };
            let checked = front::validate(&state, &req, call).await?;
            let Some((license, _)) = checked.found else {
                return Ok(invalid_key());
            };
            if !matches!(checked.code, Code::Valid | Code::NotActivated) {
                return Ok(refusal(checked.code));
            }
            let mut extra = Vec::new();
            if let Some(label) = &label {
                let status = if checked.activation.is_some() {
                    "active"
                } else {
                    "inactive"
                };
                extra.push((label_param, json!(label.as_str())));
                extra.push(("label_status", json!(status)));
            }
            Ok(success("Key is valid.", &license, extra, &secret))
        }
        "activate_key" => {
            let Some(label) = label else {
                return Ok(missing_label());
            };
            let call = front::Activate {
                key,
                fingerprint: label.clone(),
                name: None,
                expect,
            };
            let outcome = front::activate(&state, &req, call).await?;
            Ok(match outcome {
                ActivateOutcome::Done { new, license, .. } => {
                    let message = if new {
                        "Key activated successfully."
                    } else {
                        "Key is already activated for this label."
                    };
                    let extra = vec![(label_param, json!(label.as_str()))];
                    success(message, &license, extra, &secret)
                }
                ActivateOutcome::Refused(code) => refusal(code),
            })
        }
        "deactivate_key" => {
            let Some(label) = label else {
                return Ok(missing_label());
            };
            let call = front::Deactivate {
                key,
                which: Some(Selector::Fingerprint(label.as_str().to_owned())),
                expect,
            };
            let outcome = front::deactivate(&state, &req, call).await?;
            Ok(match outcome {
                DeactivateOutcome::Done { license, .. } => {
                    let extra = vec![(label_param, json!(label.as_str()))];
                    success("Key deactivated successfully.", &license, extra, &secret)
                }
                DeactivateOutcome::Refused(code) => refusal(code),
            })
        }
        _ => Ok(HttpResponse::BadRequest().json(json!({
            "success": false,
            "error": "invalid_action",
            "message": "Unknown wckm-api action; use validate_key, activate_key or deactivate_key.",
        }))),
    }
}

/// A success body: the license's activation counts, expiry, order and buyer, the
/// `extra` fields, and the checksum over all of them.
fn success(message: &str, l: &License, extra: Vec<(&str, Value)>, secret: &[u8]) -> HttpResponse {
    let remaining = match l.max_activations {
        None => json!("unlimited"),
        Some(max) => json!((max - l.activations_count).max(0)),
    };
    let order_id = l
        .stripe_checkout_session_id
        .as_ref()
        .or(l.stripe_payment_intent_id.as_ref());
    let mut fields: BTreeMap<String, Value> = BTreeMap::from([
        ("success".into(), json!(true)),
        ("message".into(), json!(message)),
        // 0 means unlimited in WC Key Manager.
        (
            "activation_limit".into(),
            json!(l.max_activations.unwrap_or(0)),
        ),
        ("activation_count".into(), json!(l.activations_count)),
        ("activation_remaining".into(), remaining),
        (
            "expires".into(),
            json!(l.expires_at.map_or("never".to_owned(), |t| t
                .format("%Y-%m-%d %H:%M:%S")
                .to_string())),
        ),
        ("order_id".into(), json!(order_id)),
        (
            "customer_name".into(),
            json!(l.customer_name.as_deref().unwrap_or_default()),
        ),
        ("customer_email".into(), json!(l.email)),
    ]);
    fields.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let sum = checksum(secret, &l.key, &fields);
    fields.insert("checksum".into(), json!(sum));
    HttpResponse::Ok().json(fields)
}

/// `checksum`: the first 32 hex digits of HMAC-SHA256 under
/// `compat_wckm_checksum_secret`, over the canonical license key, a newline, and the
/// response's other fields as compact JSON with keys sorted. Equal answers for the
/// same license state give equal checksums; only a holder of the secret can make one.
pub fn checksum(secret: &[u8], key: &str, fields: &BTreeMap<String, Value>) -> String {
    let canonical_key = LicenseKey::parse(key).map_or_else(|| key.to_owned(), |k| k.into_string());
    let body = serde_json::to_string(fields).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(canonical_key.as_bytes());
    mac.update(b"\n");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..16])
}
