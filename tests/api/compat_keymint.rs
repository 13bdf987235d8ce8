//! Keymint compatibility: the documented `POST /get-key` example request and every
//! documented error, plus `/activate-key` and `/deactivate-key` in the same style.

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp};

/// The documentation's example: `Authorization: Bearer ...`, `Content-Type: application/json`.
async fn keymint(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn assert_error(reply: &Reply, status: StatusCode, message: &str, code: u8) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body, json!({ "message": message, "code": code }));
}

/// "your_product_id_123" with a five-seat license for Jane Doe.
async fn example(app: &TestApp) -> String {
    app.create_product(
        json!({ "name": "App", "slug": "your_product_id_123", "max_activations": 5 }),
    )
    .await;
    let key = app
        .create_license(
            "your_product_id_123",
            json!({ "email": "jane.doe@example.com", "name": "Jane Doe", "expires_at": "2034-12-31T23:59:59Z" }),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    key
}

#[tokio::test]
async fn get_key_returns_license_devices_and_customer() {
    let app = spawn_app().await;
    let key = example(&app).await;
    let token = app.admin_token.clone();

    for (host, tag) in [
        (
            "a1:b2:c3:d4:e5:f6-hashed-uuid-or-other-id",
            "Dev Workstation",
        ),
        ("another-unique-device-identifier", "John's Laptop"),
    ] {
        let reply = keymint(
            &app,
            "/activate-key",
            "at_verylongaccesstokenstringgeneratedforyourapplication12345678",
            json!({ "productId": "your_product_id_123", "licenseKey": key, "hostId": host, "deviceTag": tag }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            reply.body,
            json!({
                "code": 0,
                "message": "License valid",
                "licensee_name": "Jane Doe",
                "licensee_email": "jane.doe@example.com",
            })
        );
    }

    let reply = keymint(
        &app,
        "/get-key",
        &token,
        json!({ "productId": "your_product_id_123", "licenseKey": key }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let license = &reply.body["data"]["license"];
    let devices = license["devices"].as_array().unwrap();
    for d in devices {
        let t = d["activation_time"].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    }
    assert_eq!(
        reply.body,
        json!({
            "code": 0,
            "data": {
                "license": {
                    "id": license["id"],
                    "key": key,
                    "product_id": "your_product_id_123",
                    "usage_limit": 5,
                    "activations": 2,
                    "devices": [
                        {
                            "host_id": "a1:b2:c3:d4:e5:f6-hashed-uuid-or-other-id",
                            "device_tag": "Dev Workstation",
                            "ip_address": "127.0.0.1",
                            "activation_time": devices[0]["activation_time"],
                        },
                        {
                            "host_id": "another-unique-device-identifier",
                            "device_tag": "John's Laptop",
                            "ip_address": "127.0.0.1",
                            "activation_time": devices[1]["activation_time"],
                        },
                    ],
                    "activated": true,
                    "expiration_date": "2034-12-31T23:59:59Z",
                },
                "customer": {
                    "id": null,
                    "name": "Jane Doe",
                    "email": "jane.doe@example.com",
                    "active": true,
                },
            },
        })
    );
    let admin = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(license["id"], admin.body["id"]);

    // productId may also be the product's UUID; it is echoed as sent.
    let product_id = admin.body["product"]["id"].clone();
    let by_id = keymint(
        &app,
        "/get-key",
        &token,
        json!({ "productId": product_id, "licenseKey": key }),
    )
    .await;
    assert_eq!(by_id.body["data"]["license"]["product_id"], product_id);
}

#[tokio::test]
async fn get_key_documented_errors() {
    let app = spawn_app().await;
    let key = example(&app).await;
    let token = app.admin_token.clone();

    // 400 Missing required params
    for body in [
        json!({ "productId": "your_product_id_123" }),
        json!({ "licenseKey": key }),
        json!({ "productId": "", "licenseKey": key }),
        json!({ "productId": 123, "licenseKey": key }),
    ] {
        let reply = keymint(&app, "/get-key", &token, body).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "Missing required params",
            1,
        );
    }
    // 401 Invalid access token: the sample's token is not ours; none at all.
    let sample =
        json!({ "productId": "your_product_id_123", "licenseKey": "xxxxx-xxxxx-xxxxx-xxxxx" });
    let reply = keymint(
        &app,
        "/get-key",
        "at_verylongaccesstokenstringgeneratedforyourapplication12345678",
        sample.clone(),
    )
    .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Invalid access token", 1);
    let reply = app.post("/get-key", &sample).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Invalid access token", 1);
    // 404 Invalid license key: the sample's key; a real key under another product.
    let reply = keymint(&app, "/get-key", &token, sample).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Invalid license key", 1);
    app.create_product(json!({ "name": "Other", "slug": "other" }))
        .await;
    let reply = keymint(
        &app,
        "/get-key",
        &token,
        json!({ "productId": "other", "licenseKey": key }),
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Invalid license key", 1);
    // 500 Server error: reading the devices fails.
    app.db(|conn| {
        conn.batch_execute("ALTER TABLE activations RENAME COLUMN ip TO ip_gone")
            .unwrap()
    })
    .await;
    let reply = keymint(
        &app,
        "/get-key",
        &token,
        json!({ "productId": "your_product_id_123", "licenseKey": key }),
    )
    .await;
    assert_error(&reply, StatusCode::INTERNAL_SERVER_ERROR, "Server error", 1);
}

#[tokio::test]
async fn activate_key_refusals() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "One", "slug": "one", "max_activations": 1 }))
        .await;
    let key = app.create_license("one", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let activate = |host: &str| json!({ "productId": "one", "licenseKey": key, "hostId": host });
    let token = "any-token";

    let reply = keymint(
        &app,
        "/activate-key",
        token,
        json!({ "productId": "one", "licenseKey": key }),
    )
    .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "Missing required params",
        1,
    );
    let reply = keymint(
        &app,
        "/activate-key",
        token,
        json!({ "productId": "two", "licenseKey": key, "hostId": "a" }),
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Invalid license key", 1);
    let reply = keymint(
        &app,
        "/activate-key",
        token,
        json!({ "productId": "one", "licenseKey": "xxxxx-xxxxx-xxxxx-xxxxx", "hostId": "a" }),
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Invalid license key", 1);

    assert_eq!(
        keymint(&app, "/activate-key", token, activate("a"))
            .await
            .status,
        StatusCode::OK
    );
    // The same device again is still valid; a second one is over the limit.
    assert_eq!(
        keymint(&app, "/activate-key", token, activate("a"))
            .await
            .body["code"],
        0
    );
    let reply = keymint(&app, "/activate-key", token, activate("b")).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "Activation limit reached", 2);

    for (patch, message) in [
        (
            json!({ "expires_at": "2020-01-01T00:00:00Z" }),
            "License expired",
        ),
        (
            json!({ "expires_at": null, "status": "suspended" }),
            "License blocked",
        ),
        (json!({ "status": "revoked" }), "License not active"),
    ] {
        app.admin_patch(&format!("/v1/licenses/{key}"), &patch)
            .await;
        let reply = keymint(&app, "/activate-key", token, activate("a")).await;
        assert_error(&reply, StatusCode::FORBIDDEN, message, 2);
    }
    let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(stored.body["activations_count"], 1);
}

#[tokio::test]
async fn deactivate_key_one_device_or_all() {
    let app = spawn_app().await;
    let key = example(&app).await;
    let token = app.admin_token.clone();
    for host in ["a", "b", "c"] {
        let body = json!({ "productId": "your_product_id_123", "licenseKey": key, "hostId": host });
        assert_eq!(
            keymint(&app, "/activate-key", &token, body).await.status,
            StatusCode::OK
        );
    }
    let one = json!({ "productId": "your_product_id_123", "licenseKey": key, "hostId": "a" });
    let reply = keymint(&app, "/deactivate-key", &token, one.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({ "message": "Device deactivated", "code": 0 })
    );
    let reply = keymint(&app, "/deactivate-key", &token, one).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Device not found", 1);

    let reply = keymint(
        &app,
        "/deactivate-key",
        &token,
        json!({ "licenseKey": key }),
    )
    .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "Missing required params",
        1,
    );
    let reply = keymint(
        &app,
        "/deactivate-key",
        &token,
        json!({ "productId": "nope", "licenseKey": key }),
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Invalid license key", 1);

    let all = json!({ "productId": "your_product_id_123", "licenseKey": key });
    let reply = keymint(&app, "/deactivate-key", &token, all.clone()).await;
    assert_eq!(
        reply.body,
        json!({ "message": "All devices deactivated", "code": 0 })
    );
    let got = keymint(&app, "/get-key", &token, all).await;
    assert_eq!(got.body["data"]["license"]["activations"], 0);
    assert_eq!(got.body["data"]["license"]["devices"], json!([]));
    assert_eq!(got.body["data"]["license"]["activated"], false);
    let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(stored.body["activations_count"], 0);
}
