//! Bad input gets a JSON error that names the problem, and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for body in ["{\"key\":", "not json", "[1,2", ""] {
        let reply = app.post_raw("/v1/licenses/activate", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.error_code(), "invalid_json");
    }
    let reply = app
        .send(
            app.client
                .post(app.url("/v1/licenses"))
                .bearer_auth(&app.admin_token)
                .body("{oops"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_json");
}

#[tokio::test]
async fn oversized_bodies_are_413_and_change_nothing() {
    let app = spawn_app().await;
    let big = json!({ "name": "x".repeat(100 * 1024) });
    let reply = app.admin_post("/v1/products", &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");
    assert_eq!(app.admin_get("/v1/products").await.body["data"], json!([]));
    let reply = app
        .post_raw(
            "/v1/licenses/validate",
            format!("{{\"key\":\"{}\"}}", "A".repeat(70 * 1024)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let app = spawn_app().await;
    let reply = app.get("/v2/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let reply = app
        .send(
            app.client
                .delete(app.url("/v1/products"))
                .bearer_auth(&app.admin_token),
        )
        .await;
    assert!(reply.status.is_client_error());
    assert!(reply.body["error"]["code"].is_string(), "{:?}", reply.body);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.clone()),
        (StatusCode::OK, json!({ "status": "ok" }))
    );
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.clone()),
        (StatusCode::OK, json!({ "status": "ready" }))
    );
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    let name = app.db_name.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut admin =
            diesel::PgConnection::establish("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    })
    .await
    .unwrap();
    let mut last = None;
    for _ in 0..3 {
        let reply = app.get("/readyz").await;
        last = Some(reply.status);
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.error_code(), "database_unavailable");
            break;
        }
    }
    assert_eq!(last, Some(StatusCode::SERVICE_UNAVAILABLE));
    let reply = app
        .validate(json!({ "key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE" }))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        !reply.body.to_string().contains("postgres"),
        "no internals leak: {}",
        reply.body
    );
}
