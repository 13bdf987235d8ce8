//! `GET /metrics`: Prometheus text with request, validation, outbox and pool series,
//! labelled by route pattern, never by a raw path holding a license key.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

/// The value of the first series line starting with `series` (name plus labels).
fn value_of(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn exposition_counts_requests_validations_outbox_and_pool() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    // One email waiting since two minutes ago, not due for an hour (so no worker sends it).
    app.db(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "INSERT INTO email_outbox (kind, recipient, license_ids, created_at, next_attempt_at)
             SELECT 'license_keys', 'buyer@example.com', ARRAY[id], now() - interval '120 seconds',
                    now() + interval '1 hour' FROM licenses",
        )
        .execute(conn)
        .unwrap();
    })
    .await;

    assert_eq!(
        app.validate(json!({ "key": key })).await.status,
        StatusCode::OK
    );
    app.validate(json!({ "key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE" }))
        .await;
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.activate(&key, "desktop").await.status,
        StatusCode::CONFLICT
    );
    let shown = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    app.get("/no/such/path").await;

    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.unwrap();

    // The registry is process-wide (other tests add to it), so counters are at least ours.
    let at_least = |series: &str, want: f64| {
        let got = value_of(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(got >= want, "{series} = {got}, want >= {want}");
    };
    at_least(
        r#"licensd_http_requests_total{method="POST",route="/v1/licenses/validate",status="200"}"#,
        2.0,
    );
    at_least(
        r#"licensd_http_requests_total{method="POST",route="/v1/licenses/activate",status="409"}"#,
        1.0,
    );
    at_least(
        r#"licensd_http_requests_total{method="GET",route="/v1/licenses/{license}",status="200"}"#,
        1.0,
    );
    at_least(
        r#"licensd_http_requests_total{method="GET",route="unmatched",status="404"}"#,
        1.0,
    );
    at_least(
        r#"licensd_http_request_duration_seconds_count{method="POST",route="/v1/licenses/validate"}"#,
        2.0,
    );
    at_least(r#"licensd_validations_total{code="VALID"}"#, 1.0);
    at_least(r#"licensd_validations_total{code="NOT_FOUND"}"#, 1.0);
    at_least(r#"licensd_activations_total{outcome="NEW"}"#, 1.0);
    at_least(
        r#"licensd_activations_total{outcome="TOO_MANY_ACTIVATIONS"}"#,
        1.0,
    );
    at_least("licensd_db_pool_wait_seconds_count", 4.0);

    // Gauges are this app's own, read at scrape time.
    assert_eq!(value_of(&text, "licensd_database_up"), Some(1.0));
    assert_eq!(value_of(&text, "licensd_email_outbox_depth"), Some(1.0));
    let age = value_of(&text, "licensd_email_outbox_oldest_age_seconds").unwrap();
    assert!((120.0..3600.0).contains(&age), "oldest age {age}");
    assert_eq!(
        value_of(&text, "licensd_db_pool_max_connections"),
        Some(f64::from(app.settings.db_pool_size))
    );
    let in_use = value_of(&text, "licensd_db_pool_in_use_connections").unwrap();
    let total = value_of(&text, "licensd_db_pool_connections").unwrap();
    assert!(
        in_use >= 0.0 && total >= 1.0,
        "in use {in_use}, total {total}"
    );

    // Keys never become labels.
    assert!(
        !text.contains(&key),
        "a license key leaked into the metrics"
    );
    assert!(!text.contains("/no/such/path"));
}

#[tokio::test]
async fn webhook_and_email_failure_counters_are_exposed() {
    let app = spawn_app().await;
    licensd::metrics::record_webhook("checkout.session.completed", "processed");
    licensd::metrics::record_email_send_failure();
    let text = app.get("/metrics").await.body;
    let text = text.as_str().unwrap();
    assert!(
        value_of(
            text,
            r#"licensd_webhooks_total{event_type="checkout.session.completed",outcome="processed"}"#
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(value_of(text, "licensd_email_send_failures_total").is_some_and(|v| v >= 1.0));
}

#[tokio::test]
async fn webhooks_are_counted_by_type_and_outcome_kind() {
    use crate::helpers::{spawn_stripe_app, FakeStripe};
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    // The registry is per process: a type no other test sends keeps the counts exact.
    let kind = format!("test.metrics_{}", uuid::Uuid::new_v4().simple());
    let event =
        serde_json::json!({ "id": format!("evt_{kind}"), "type": kind, "data": { "object": {} } });
    assert_eq!(
        app.post_webhook(&event).await.status,
        reqwest::StatusCode::OK
    );
    assert_eq!(
        app.post_webhook(&event).await.status,
        reqwest::StatusCode::OK
    );
    let text = app.get("/metrics").await.body.as_str().unwrap().to_owned();
    for outcome in ["processed", "duplicate"] {
        let line =
            format!("licensd_webhooks_total{{event_type=\"{kind}\",outcome=\"{outcome}\"}} 1");
        assert!(text.contains(&line), "missing {line}");
    }
}

#[tokio::test]
async fn exposition_shows_what_the_validate_cache_holds_against_its_budget() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    let budget = f64::from(app.settings.cache_budget_mib) * 1024.0 * 1024.0;
    let scrape = || async {
        let res = app.client.get(app.url("/metrics")).send().await.unwrap();
        res.text().await.unwrap()
    };
    let empty = scrape().await;
    assert_eq!(
        value_of(&empty, "licensd_validate_cache_budget_bytes"),
        Some(budget)
    );
    assert_eq!(value_of(&empty, "licensd_validate_cache_bytes"), Some(0.0));
    // A validate fills the cache (the license's own creation may still be announced
    // and drop the first entry: validate again until it stays).
    let mut held = 0.0;
    for _ in 0..40 {
        assert_eq!(
            app.validate(json!({ "key": key })).await.status,
            StatusCode::OK
        );
        held = value_of(&scrape().await, "licensd_validate_cache_bytes").unwrap();
        if held > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(held > 0.0 && held < budget, "cache holds {held} bytes");
}
