//! `GET /metrics` (Prometheus text format) and the middleware that counts and times
//! every request by its route pattern.

use super::routes::Table;
use crate::route;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};
use prometheus::{Encoder, Gauge, IntGauge, Registry, TextEncoder};

use super::State;
use crate::db;
use crate::metrics;

pub fn routes(t: &mut Table) {
    t.add(route!(Plain, scrape));
}

/// Counts and times the request under its route pattern (`/v1/licenses/{id}`), never
/// its raw path, which can hold a license key.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.match_pattern();
    let res = next.call(req).await;
    let status = match &res {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    metrics::record_request(
        method,
        route.as_deref().unwrap_or("unmatched"),
        status.as_str(),
        started.elapsed(),
    );
    res
}

/// Standard methods by name; anything else is one label, so clients cannot mint series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The process's counters and histograms, plus gauges read now: pool usage, the
/// validate cache's memory and the email outbox backlog (with `licensd_database_up` 0
/// if the database did not answer).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
async fn scrape(state: web::Data<State>) -> HttpResponse {
    let now = Registry::new();
    let gauge = |name: &str, help: &str, value: i64| {
        let g = IntGauge::new(name, help).expect("valid metric");
        g.set(value);
        now.register(Box::new(g)).expect("unique metric");
    };

    let pool = state.pool.state();
    gauge(
        "licensd_db_pool_max_connections",
        "Configured size of the database pool.",
        state.pool.max_size().into(),
    );
    gauge(
        "licensd_db_pool_connections",
        "Connections the pool holds (idle and in use).",
        pool.connections.into(),
    );
    gauge(
        "licensd_db_pool_idle_connections",
        "Connections idle in the pool.",
        pool.idle_connections.into(),
    );
    gauge(
        "licensd_db_pool_in_use_connections",
        "Connections checked out by requests or workers.",
        i64::from(pool.connections) - i64::from(pool.idle_connections),
    );

    gauge(
        "licensd_validate_cache_bytes",
        "Estimated memory the validate cache holds (at most its LICENSD_CACHE_BUDGET_MIB).",
        i64::try_from(state.cache.used_bytes()).unwrap_or(i64::MAX),
    );
    gauge(
        "licensd_validate_cache_budget_bytes",
        "The validate cache's configured memory budget (0: off).",
        i64::try_from(state.cache.budget_bytes()).unwrap_or(i64::MAX),
    );

    let backlog = db::run(&state.pool, |conn| Ok(db::stats::outbox_backlog(conn)?)).await;
    gauge(
        "licensd_database_up",
        "1 if the database answered this scrape's query, else 0.",
        backlog.is_ok().into(),
    );
    match backlog {
        Ok(b) => {
            gauge(
                "licensd_email_outbox_depth",
                "Emails queued and not yet sent.",
                b.depth,
            );
            let age = Gauge::new(
                "licensd_email_outbox_oldest_age_seconds",
                "Age of the oldest unsent email (0 when none).",
            )
            .expect("valid metric");
            age.set(b.oldest_age_secs.unwrap_or(0.0));
            now.register(Box::new(age)).expect("unique metric");
        }
        Err(e) => tracing::warn!(error = %e, "metrics: outbox backlog not read"),
    }

    let mut families = metrics::get().registry.gather();
    families.extend(now.gather());
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(8 * 1024);
    if let Err(e) = encoder.encode(&families, &mut body) {
        tracing::error!(error = %e, "metrics: encoding failed");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type(encoder.format_type())
        .body(body)
}
