//! Activate and deactivate: idempotency, the seat limit (also under concurrency),
//! refusals, and freeing seats.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn activate_is_idempotent_per_fingerprint() {
    let app = spawn_app().await;
    let key = app.license_with_seats(2).await;
    let first = app
        .post(
            "/v1/licenses/activate",
            &json!({ "key": key, "fingerprint": "dev-1", "name": "Work laptop" }),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body["activated"], true);
    assert_eq!(first.body["activation"]["name"], "Work laptop");
    assert_eq!(first.body["license"]["activations_count"], 1);

    let again = app.activate(&key, "dev-1").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["activation"]["id"],
        first.body["activation"]["id"]
    );
    assert_eq!(again.body["license"]["activations_count"], 1);
}

#[tokio::test]
async fn too_many_activations_at_the_limit_and_deactivate_frees_a_seat() {
    let app = spawn_app().await;
    let key = app.license_with_seats(2).await;
    assert_eq!(app.activate(&key, "a").await.status, StatusCode::CREATED);
    let b = app.activate(&key, "b").await;
    assert_eq!(b.status, StatusCode::CREATED);
    let c = app.activate(&key, "c").await;
    assert_eq!(c.status, StatusCode::CONFLICT);
    assert_eq!(
        c.body,
        json!({ "activated": false, "code": "TOO_MANY_ACTIVATIONS", "message": c.body["message"] })
    );
    assert!(c.body["message"].as_str().unwrap().len() > 10);

    // By fingerprint.
    let off = app
        .deactivate(json!({ "key": key, "fingerprint": "a" }))
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.body["deactivated"], true);
    assert_eq!(app.activate(&key, "c").await.status, StatusCode::CREATED);

    // By activation id.
    let off = app
        .deactivate(json!({ "key": key, "activation_id": b.body["activation"]["id"] }))
        .await;
    assert_eq!(off.status, StatusCode::OK);
    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(detail.body["activations_count"], 1);
    let fps: Vec<_> = detail.body["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].clone())
        .collect();
    assert_eq!(fps, [json!("c")]);

    // Gone already / never there.
    let again = app
        .deactivate(json!({ "key": key, "fingerprint": "a" }))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.body["code"], "NOT_ACTIVATED");
    let unknown = app
        .deactivate(json!({ "key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "fingerprint": "a" }))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["code"], "NOT_FOUND");
    let neither = app.deactivate(json!({ "key": key })).await;
    assert_eq!(neither.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn twenty_concurrent_activations_on_three_seats_leave_exactly_three() {
    let app = spawn_app().await;
    let key = app.license_with_seats(3).await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        let key = key.clone();
        async move { app.activate(&key, &format!("device-{i}")).await.status }
    });
    let statuses = futures::future::join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (3, 17), "{statuses:?}");

    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(detail.body["activations"].as_array().unwrap().len(), 3);
    assert_eq!(detail.body["activations_count"], 3);
}

#[tokio::test]
async fn unknown_suspended_revoked_and_expired_licenses_are_refused() {
    let app = spawn_app().await;
    let unknown = app.activate("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "dev").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["code"], "NOT_FOUND");
    assert_eq!(unknown.body["activated"], false);

    for (change, code) in [
        (json!({ "status": "suspended" }), "SUSPENDED"),
        (json!({ "status": "revoked" }), "REVOKED"),
        (json!({ "expires_at": "2021-06-01T00:00:00Z" }), "EXPIRED"),
    ] {
        let key = app.license_with_seats(5).await;
        app.admin_patch(&format!("/v1/licenses/{key}"), &change)
            .await;
        let reply = app.activate(&key, "dev").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{change}");
        assert_eq!(reply.body["code"], code);
        let detail = app.admin_get(&format!("/v1/licenses/{key}")).await;
        assert_eq!(
            detail.body["activations_count"], 0,
            "a refusal takes no seat"
        );
    }
}

#[tokio::test]
async fn admin_removes_an_activation() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    let act = app.activate(&key, "old-pc").await.body["activation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/licenses/{key}/activations/{act}");
    let reply = app.admin_delete(&path).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(app.admin_delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.activate(&key, "new-pc").await.status,
        StatusCode::CREATED
    );
}
