//! The one error type of the service. `http::error` maps it to a status and a JSON
//! body; the cause chain is logged there and never sent to the client.

use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the body or query could not be read as the endpoint expects.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },

    /// 401: no admin token, or one that is not valid.
    #[error("a valid admin token is required: send it as `Authorization: Bearer TOKEN`, `x-api-key: TOKEN` or `?api_key=TOKEN`")]
    Unauthorized,

    /// 404: the named resource does not exist.
    #[error("{what} not found")]
    NotFound { what: Cow<'static, str> },

    /// 409: the request conflicts with what is stored.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// 408: the request body did not arrive within the body deadline.
    #[error("the request body did not arrive within {secs} s")]
    RequestTimeout { secs: u64 },

    /// 413
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },

    /// 422: a field is present but its value is not acceptable.
    #[error("`{field}` {problem}")]
    InvalidField {
        field: Cow<'static, str>,
        problem: String,
    },

    /// 429
    #[error("too many requests: retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },

    /// 429: a named per-resource limit (e.g. emails per license per hour) is reached.
    #[error("{message}")]
    LimitReached {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },

    /// 400 on the Stripe webhook: the signature did not verify.
    #[error("{0}")]
    InvalidSignature(&'static str),

    /// 503: no webhook secret is configured.
    #[error("the Stripe webhook is not configured: set LICENSD_STRIPE_WEBHOOK_SECRETS")]
    StripeNotConfigured,

    /// 503: the Stripe API could not be reached or failed; Stripe will redeliver.
    #[error(
        "the Stripe API could not be reached; the event was not processed and Stripe will retry it"
    )]
    StripeUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// 503: the database cannot be reached (pool timeout, broken connection).
    #[error("the database is unavailable; try again shortly")]
    DatabaseUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// 500: anything else. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    pub fn not_found(what: impl Into<Cow<'static, str>>) -> Self {
        AppError::NotFound { what: what.into() }
    }

    pub fn invalid(field: impl Into<Cow<'static, str>>, problem: impl Into<String>) -> Self {
        AppError::InvalidField {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(e.into())
    }

    /// The `error.code` sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::LimitReached { code, .. } => code,
            AppError::Unauthorized => "unauthorized",
            AppError::NotFound { .. } => "not_found",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::RequestTimeout { .. } => "request_timeout",
            AppError::InvalidField { .. } => "invalid_field",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::InvalidSignature(_) => "invalid_signature",
            AppError::StripeNotConfigured => "stripe_not_configured",
            AppError::StripeUnavailable(_) => "stripe_unavailable",
            AppError::DatabaseUnavailable(_) => "database_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match e {
            E::NotFound => AppError::not_found("resource"),
            E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) => {
                AppError::DatabaseUnavailable(Box::new(e))
            }
            E::DatabaseError(K::UniqueViolation, ref info) => {
                let message = format!(
                    "conflicts with an existing record ({})",
                    info.constraint_name().unwrap_or("unique")
                );
                AppError::Conflict {
                    code: "conflict",
                    message,
                }
            }
            other => AppError::internal(other),
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        AppError::DatabaseUnavailable(Box::new(e))
    }
}
