//! The request span: one log line per request with its id, route, status and timing.
//! It names the route pattern, never the raw path or query, because those can carry
//! license keys and `?api_key=` tokens.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::info_span!(
            "request",
            method = %req.method(),
            route = %route,
            request_id = %request_id,
            status = Empty,
            error = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(res) => (
                res.status(),
                res.response().error().map(ToString::to_string),
            ),
            Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
        };
        span.record("status", status.as_u16());
        if let Some(error) = error {
            span.record("error", error);
        }
    }
}
