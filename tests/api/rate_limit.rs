//! Abuse limits: key guessing and floods get 429 with `Retry-After` and the JSON error
//! body; the limit lifts when the window ends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, Reply};

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_limited(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.error_code(), "rate_limited");
    assert!(retry_after(reply) >= 1);
}

#[tokio::test]
async fn failed_lookups_are_limited_per_ip_and_the_limit_lifts_after_the_window() {
    let app = spawn_app_with(|s| {
        s.rate_limit_failed_lookups_per_ip = 3;
        s.rate_limit_window_secs = 3;
    })
    .await;
    let key = app.license_with_seats(1).await;
    // Good lookups do not count.
    for _ in 0..5 {
        assert_eq!(
            app.validate(json!({ "key": key })).await.body["valid"],
            true
        );
    }
    for i in 0..3 {
        let guess = app
            .validate(json!({ "key": format!("AAAAA-AAAAA-AAAAA-AAAAA-AAAA{i}") }))
            .await;
        assert_eq!(guess.status, StatusCode::OK);
        assert_eq!(guess.body["code"], "NOT_FOUND");
    }
    // The fourth request from this IP is refused, whatever it asks.
    let refused = app.validate(json!({ "key": key })).await;
    assert_limited(&refused);
    assert!(retry_after(&refused) <= 3);
    assert!(refused.headers.contains_key("licensd-signature"));
    assert_limited(&app.activate(&key, "d1").await);
    assert_limited(
        &app.post("/v1/licenses/checkout", &json!({ "key": key }))
            .await,
    );

    tokio::time::sleep(Duration::from_secs(retry_after(&refused))).await;
    let again = app.validate(json!({ "key": key })).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["valid"], true);
}

#[tokio::test]
async fn unknown_keys_on_activate_and_checkout_count_as_failed_lookups() {
    let app = spawn_app_with(|s| s.rate_limit_failed_lookups_per_ip = 2).await;
    let unknown = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA";
    assert_eq!(
        app.activate(unknown, "d").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/v1/licenses/checkout", &json!({ "key": unknown }))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_limited(&app.validate(json!({ "key": unknown })).await);
}

#[tokio::test]
async fn all_requests_are_limited_generously_per_ip() {
    let app = spawn_app_with(|s| s.rate_limit_requests_per_ip = 4).await;
    let key = app.license_with_seats(1).await;
    for _ in 0..4 {
        assert_eq!(
            app.validate(json!({ "key": key })).await.status,
            StatusCode::OK
        );
    }
    assert_limited(&app.validate(json!({ "key": key })).await);
    // The admin API and operations endpoints are not public license endpoints.
    assert_eq!(app.admin_get("/v1/products").await.status, StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn activation_attempts_are_limited_per_key() {
    let app = spawn_app_with(|s| s.rate_limit_activations_per_key = 2).await;
    let key = app.license_with_seats(10).await;
    let other = app.license_with_seats(10).await;
    assert_eq!(app.activate(&key, "d1").await.status, StatusCode::CREATED);
    // The key counts however it is written.
    assert_eq!(
        app.activate(&format!(" {} ", key.to_lowercase()), "d2")
            .await
            .status,
        StatusCode::CREATED
    );
    assert_limited(&app.activate(&key, "d3").await);
    assert_eq!(app.activate(&other, "d1").await.status, StatusCode::CREATED);
    // Validation of the limited key still works.
    assert_eq!(
        app.validate(json!({ "key": key })).await.body["valid"],
        true
    );
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    let trusting = spawn_app_with(|s| {
        s.rate_limit_failed_lookups_per_ip = 1;
        s.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    async fn guess(app: &crate::helpers::TestApp, ip: &str) -> Reply {
        app.send(
            app.client
                .post(app.url("/v1/licenses/validate"))
                .header("x-forwarded-for", format!("198.51.100.99, {ip}"))
                .json(&json!({ "key": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA" })),
        )
        .await
    }
    assert_eq!(guess(&trusting, "203.0.113.1").await.status, StatusCode::OK);
    assert_limited(&guess(&trusting, "203.0.113.1").await);
    // Another client behind the same proxy has its own budget.
    assert_eq!(guess(&trusting, "203.0.113.2").await.status, StatusCode::OK);
    // And the activation records the client's address, not the proxy's.
    let key = trusting.license_with_seats(1).await;
    let reply = trusting
        .send(
            trusting
                .client
                .post(trusting.url("/v1/licenses/activate"))
                .header("x-forwarded-for", "203.0.113.7")
                .json(&json!({ "key": key, "fingerprint": "d1" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["activation"]["ip"], "203.0.113.7");

    // Without a trusted proxy the header is ignored: one socket, one budget.
    let direct = spawn_app_with(|s| s.rate_limit_failed_lookups_per_ip = 1).await;
    assert_eq!(guess(&direct, "203.0.113.1").await.status, StatusCode::OK);
    assert_limited(&guess(&direct, "203.0.113.2").await);
}
