//! Prometheus metrics: the process-wide counters and histograms, and the functions
//! every layer calls to record into them.
//!
//! One registry per process, because Prometheus scrapes a process: the request
//! middleware, the validate handler, the Stripe webhook and the email worker all record
//! here without threading a handle through every call. Gauges read from the database
//! or the pool (outbox depth, pool usage) are computed per scrape in `http::metrics`.
//! Labels are bounded: route patterns (never raw paths, which carry license keys),
//! answer codes, Stripe event types and outcomes.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// Latency buckets (seconds) from 250 µs to 5 s: the validate path lives in the low
/// milliseconds, the webhook (which calls Stripe) in the hundreds.
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Metrics {
    pub registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    validations: IntCounterVec,
    activations: IntCounterVec,
    webhooks: IntCounterVec,
    email_send_failures: IntCounter,
    pool_wait: prometheus::Histogram,
    validate_cache: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "licensd_http_requests_total",
                "HTTP requests answered, by method, route pattern and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "licensd_http_request_duration_seconds",
                "Time from request received to response ready, by method and route pattern.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("valid metric");
        let validations = IntCounterVec::new(
            Opts::new(
                "licensd_validations_total",
                "Validate answers, by code (VALID, NOT_FOUND, EXPIRED, ...).",
            ),
            &["code"],
        )
        .expect("valid metric");
        let activations = IntCounterVec::new(
            Opts::new(
                "licensd_activations_total",
                "Activate answers, by outcome (NEW, EXISTING, or the refusal code).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "licensd_webhooks_total",
                "Stripe webhook events, by event type and outcome.",
            ),
            &["event_type", "outcome"],
        )
        .expect("valid metric");
        let email_send_failures = IntCounter::new(
            "licensd_email_send_failures_total",
            "Failed attempts to send an outbox email (each is retried with backoff).",
        )
        .expect("valid metric");
        let pool_wait = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "licensd_db_pool_wait_seconds",
                "Time a request waited for a pooled database connection.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let validate_cache = IntCounterVec::new(
            Opts::new(
                "licensd_validate_cache_total",
                "Validate lookups by where the answer came from: hit (the cache), miss (Postgres, then cached), stale (the cache while Postgres was unreachable).",
            ),
            &["result"],
        )
        .expect("valid metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(validations.clone()),
            Box::new(activations.clone()),
            Box::new(webhooks.clone()),
            Box::new(email_send_failures.clone()),
            Box::new(pool_wait.clone()),
            Box::new(validate_cache.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            validations,
            activations,
            webhooks,
            email_send_failures,
            pool_wait,
            validate_cache,
        }
    }
}

/// One answered HTTP request. `route` must be a route pattern, never a raw path;
/// `status` is the three-digit code (`StatusCode::as_str`).
pub fn record_request(method: &str, route: &str, status: &str, elapsed: Duration) {
    let m = get();
    m.http_requests
        .with_label_values(&[method, route, status])
        .inc();
    m.http_duration
        .with_label_values(&[method, route])
        .observe(elapsed.as_secs_f64());
}

/// One validate answer, by its code (`VALID`, `NOT_FOUND`, ...).
pub fn record_validation(code: &str) {
    get().validations.with_label_values(&[code]).inc();
}

/// One activate answer: `NEW`, `EXISTING`, or the refusal code.
pub fn record_activation(outcome: &str) {
    get().activations.with_label_values(&[outcome]).inc();
}

/// One Stripe webhook event handled: its `type` and what became of it (e.g.
/// `processed`, `duplicate`, `ignored`, `invalid_signature`, `error`).
pub fn record_webhook(event_type: &str, outcome: &str) {
    get()
        .webhooks
        .with_label_values(&[event_type, outcome])
        .inc();
}

/// One failed attempt to send an outbox email.
pub fn record_email_send_failure() {
    get().email_send_failures.inc();
}

/// Time spent waiting for a pooled connection.
pub fn record_pool_wait(waited: Duration) {
    get().pool_wait.observe(waited.as_secs_f64());
}

/// Where a validate answer came from: `hit`, `miss` or `stale`.
pub fn record_validate_cache(result: &'static str) {
    get().validate_cache.with_label_values(&[result]).inc();
}
