//! The request log: one line per request with its id, method, route, status and
//! latency as fields of their own (in JSON, top-level keys a log pipeline filters on).
//! It names the route pattern, never the raw path or query, because those can carry
//! license keys and `?api_key=` tokens. Each request also gets a span carrying the
//! same id, so lines logged while serving it can be tied to it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RequestSpan;

/// When the request started, kept in its extensions for the latency.
struct Started(Instant);

fn request_id(req: &impl HttpMessage) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default()
}

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        req.extensions_mut().insert(Started(Instant::now()));
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::info_span!(
            "request",
            method = %req.method(),
            route = %route,
            request_id = %request_id(req),
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let res = match outcome {
            Ok(res) => res,
            Err(e) => {
                let status = e.as_response_error().status_code().as_u16();
                tracing::warn!(parent: &span, status, error = %e, "request");
                return;
            }
        };
        let req = res.request();
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let latency_ms = req
            .extensions()
            .get::<Started>()
            .map_or(0.0, |s| s.0.elapsed().as_secs_f64() * 1000.0);
        let error = res.response().error().map(ToString::to_string);
        tracing::info!(
            parent: &span,
            method = %req.method(),
            route = %route,
            status = res.status().as_u16(),
            request_id = %request_id(req),
            latency_ms,
            error,
            "request"
        );
    }
}
