//! `POST /v1/licenses/validate`: every code, in its documented order.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_validate_code() {
    let app = spawn_app().await;
    let product = app
        .create_product(json!({ "name": "Editor", "slug": "editor", "max_activations": 2 }))
        .await;
    app.create_product(json!({ "name": "Other", "slug": "other" }))
        .await;
    let key = app
        .create_license("editor", json!({ "email": "Buyer@Example.com" }))
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let cases = [
        (
            json!({ "key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE" }),
            "NOT_FOUND",
            false,
        ),
        (json!({ "key": "not a key at all" }), "NOT_FOUND", false),
        (json!({ "key": key }), "VALID", true),
        (
            json!({ "key": format!("  {}  ", key.to_lowercase()) }),
            "VALID",
            true,
        ),
        (json!({ "key": key, "product": "editor" }), "VALID", true),
        (
            json!({ "key": key, "product": product["id"] }),
            "VALID",
            true,
        ),
        (
            json!({ "key": key, "product": "other" }),
            "PRODUCT_MISMATCH",
            false,
        ),
        (
            json!({ "key": key, "email": "buyer@EXAMPLE.com" }),
            "VALID",
            true,
        ),
        (
            json!({ "key": key, "email": "someone@else.com" }),
            "EMAIL_MISMATCH",
            false,
        ),
        (
            json!({ "key": key, "fingerprint": "laptop" }),
            "NOT_ACTIVATED",
            false,
        ),
    ];
    for (body, code, valid) in cases {
        let reply = app.validate(body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}");
        assert_eq!(reply.body["code"], code, "{body} -> {}", reply.body);
        assert_eq!(reply.body["valid"], valid);
        assert!(reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        if code == "NOT_FOUND" {
            assert!(
                reply.body.get("license").is_none(),
                "NOT_FOUND carries no license"
            );
        } else {
            assert_eq!(reply.body["license"]["key"], key.as_str());
            assert!(
                reply.body["license"].get("stripe").is_none(),
                "public view hides stripe ids"
            );
        }
    }

    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );
    let reply = app
        .validate(json!({ "key": key, "fingerprint": "laptop" }))
        .await;
    assert_eq!(reply.body["code"], "VALID");
    assert_eq!(reply.body["activation"]["fingerprint"], "laptop");

    // Status codes win over the request checks, in the order REVOKED, SUSPENDED, EXPIRED.
    let mismatching =
        json!({ "key": key, "product": "other", "email": "x@y.z", "fingerprint": "unknown" });
    let past = "2020-01-01T00:00:00Z";
    assert_eq!(
        app.admin_patch(
            &format!("/v1/licenses/{key}"),
            &json!({ "expires_at": past })
        )
        .await
        .status,
        StatusCode::OK
    );
    let reply = app.validate(mismatching.clone()).await;
    assert_eq!(reply.body["code"], "EXPIRED");
    assert_eq!(reply.body["license"]["status"], "expired");
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "suspended" }),
    )
    .await;
    assert_eq!(
        app.validate(mismatching.clone()).await.body["code"],
        "SUSPENDED"
    );
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "revoked" }),
    )
    .await;
    assert_eq!(
        app.validate(mismatching.clone()).await.body["code"],
        "REVOKED"
    );

    // Reinstated and extended: valid again.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "active", "expires_at": null }),
    )
    .await;
    assert_eq!(
        app.validate(json!({ "key": key })).await.body["code"],
        "VALID"
    );
}

#[tokio::test]
async fn validate_refreshes_last_seen_at_at_most_once_per_interval() {
    let app = crate::helpers::spawn_app_with(|s| s.last_seen_interval_secs = 0).await;
    let key = app.license_with_seats(1).await;
    let first = app.activate(&key, "dev").await.body["activation"]["last_seen_at"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let later = app
        .validate(json!({ "key": key, "fingerprint": "dev" }))
        .await;
    assert_eq!(later.body["code"], "VALID");
    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await;
    let seen = detail.body["activations"][0]["last_seen_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        seen.as_str() > first.as_str().unwrap(),
        "{seen} should be after {first}"
    );

    // With the default interval, a fresh activation is not written again.
    let quiet = crate::helpers::spawn_app().await;
    let key = quiet.license_with_seats(1).await;
    let at = quiet.activate(&key, "dev").await.body["activation"]["last_seen_at"].clone();
    quiet
        .validate(json!({ "key": key, "fingerprint": "dev" }))
        .await;
    let detail = quiet.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(detail.body["activations"][0]["last_seen_at"], at);
}

#[tokio::test]
async fn validate_rejects_malformed_requests() {
    let app = spawn_app().await;
    let reply = app.validate(json!({})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("key"));
    let reply = app.validate(json!({ "key": "  " })).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = app.validate(json!({ "key": 12 })).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error_code(), "invalid_field");
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("key"));
    let reply = app
        .validate(json!({ "key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "fingerprint": "" }))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("fingerprint"));
}
