//! How an `AppError` becomes a response: status, JSON body, and a log line for 5xx.

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::AppError;

/// `{"error": {"code", "message"}}`: every error of the API (as documented; the body
/// itself is built by [`error_body`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case, e.g. `invalid_field`, `rate_limited`.
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// `{"error": {"code": ..., "message": ...}}`: the one error body of the API.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } | AppError::InvalidSignature(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::RateLimited { .. } | AppError::LimitReached { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::StripeNotConfigured
            | AppError::StripeUnavailable(_)
            | AppError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            // The cause chain goes to the log, never to the client.
            let mut chain = String::new();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(code = self.code(), "{self}{chain}");
        }
        let mut response = HttpResponse::build(status);
        if let AppError::RequestTimeout { .. } = self {
            response.force_close();
        }
        if let AppError::RateLimited { retry_after_secs }
        | AppError::LimitReached {
            retry_after_secs, ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        response.json(error_body(self.code(), &self.to_string()))
    }
}

/// Gives every error response that is not already JSON (unknown route, wrong method,
/// errors raised inside actix) the API's JSON error body.
pub fn json_error_bodies<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // JSON errors and the dashboard's and portal's own HTML error pages pass as they are.
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (
            "not_found",
            "no such route; see GET /openapi.json for the API".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "request body is too large".to_owned())
        }
        s if s.is_client_error() => (
            "bad_request",
            s.canonical_reason().unwrap_or("bad request").to_lowercase(),
        ),
        _ => ("internal_error", "internal error".to_owned()),
    };
    let (req, _) = res.into_parts();
    let body = HttpResponse::build(status).json(error_body(code, &message));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, body).map_into_right_body(),
    ))
}
