//! Request extractors: JSON bodies whose errors name the field, and the admin token.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::State;
use crate::db::{self, models::ApiKey};
use crate::error::AppError;

/// A JSON body. Syntax errors are 400 `invalid_json`, a body that is not an object 400
/// `invalid_body`; a missing, unknown or mistyped field is 422 `invalid_field` naming
/// the field; past the size limit, 413. The
/// content type is not checked, so `curl -d '{...}'` works.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let bytes = body.await.map_err(|e| body_error(&req, &e))?;
            parse_json(&bytes).map(Json)
        })
    }
}

/// Why a request body could not be read, as the client is told: too large (413), too
/// slow (408, see `connections::BodyDeadline`), or otherwise unreadable (400).
pub fn body_error(req: &HttpRequest, e: &actix_web::Error) -> AppError {
    let settings = req.app_data::<web::Data<State>>().map(|s| &s.settings);
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => AppError::PayloadTooLarge {
            limit: settings.map_or(64 * 1024, |s| s.body_limit_bytes),
        },
        Some(e) if super::connections::is_timeout(e) => AppError::RequestTimeout {
            secs: settings.map_or(0, |s| s.body_timeout_secs),
        },
        _ => AppError::bad_request("invalid_body", "the request body could not be read"),
    }
}

/// Reads JSON with the error conventions of [`Json`]. A NUL character anywhere (which
/// Postgres cannot store) is a 422 naming the field that holds it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Some(field) = nul_field(&value, String::new()) {
            return Err(AppError::invalid(field, NUL_PROBLEM));
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return AppError::bad_request(
                "invalid_json",
                "the request body is empty; send a JSON object",
            );
        }
        if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return AppError::bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {syntax}"),
            );
        }
        let path = e.path().to_string();
        let message = strip_position(&e.into_inner().to_string());
        if path != "." {
            return AppError::invalid(path, message);
        }
        // At the top level serde names a missing field only in its message: `missing field `key``.
        match message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            Some(field) => AppError::invalid(field.to_owned(), "is required"),
            None => AppError::bad_request(
                "invalid_body",
                format!("the request body must be a JSON object: {message}"),
            ),
        }
    })
}

/// The problem named when an input holds a NUL character.
pub const NUL_PROBLEM: &str = "must not contain NUL (\\u0000) characters";

/// The path (`metadata.note`, `stripe_price_ids[1]`) of the first string or key that
/// holds a NUL character, if any.
fn nul_field(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let here = || {
        if at.is_empty() {
            ".".to_owned()
        } else {
            at.clone()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.replace('\0', "\\u0000")
            } else {
                format!("{at}.{}", k.replace('\0', "\\u0000"))
            };
            if k.contains('\0') {
                Some(path)
            } else {
                nul_field(v, path)
            }
        }),
        _ => None,
    }
}

/// serde_json appends " at line 1 column 12" to data errors; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query strings: a malformed one is a 400 that says why.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    AppError::bad_request(
        "invalid_query",
        format!("the query string is invalid: {err}"),
    )
    .into()
}

/// The admin caller: a valid, unrevoked token from `Authorization: Bearer`,
/// `x-api-key`, or the `api_key` query parameter.
#[derive(Debug, Clone)]
pub struct Admin(pub ApiKey);

/// The token as the request carries it, if it carries one.
pub fn admin_token(req: &HttpRequest) -> Option<String> {
    let headers = req.headers();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = v.trim().splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim().to_owned());
            }
        }
    }
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        if !v.trim().is_empty() {
            return Some(v.trim().to_owned());
        }
    }
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The API key of the request's admin token, looked up in the database.
async fn authenticate(req: &HttpRequest) -> Result<ApiKey, AppError> {
    let token = admin_token(req);
    let state = req.app_data::<web::Data<State>>().cloned();
    let (Some(token), Some(state)) = (token, state) else {
        return Err(AppError::Unauthorized);
    };
    let hash = hash_token(&token);
    let key = db::run(&state.pool, move |conn| {
        Ok(db::api_keys::authenticate(conn, &hash)?)
    })
    .await?;
    key.ok_or(AppError::Unauthorized)
}

/// The middleware of every admin route (see `routes::Table::configure`): the token is
/// checked before any extractor reads the body, so a bad token is 401 whatever the
/// body, never a 400 about a body nobody was allowed to send.
///
/// A refusal is answered here as a response (not an `Err`), so the request log, the
/// metrics and the error-body middleware see it like any other answer.
pub async fn require_admin<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match authenticate(req.request()).await {
        Ok(key) => {
            req.extensions_mut().insert(Admin(key));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Behind `require_admin`: already checked. Elsewhere (the vendors' seller
        // calls, which answer in their own dialect), checked now.
        if let Some(admin) = req.extensions().get::<Admin>().cloned() {
            return Box::pin(std::future::ready(Ok(admin)));
        }
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(Admin) })
    }
}
