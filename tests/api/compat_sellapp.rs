//! SellApp compatibility: its curl samples for validate and activate, the documented
//! `data.license_key` / `data.instance` shapes, and the paginated list.

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp};

/// `curl -X POST "https://sell.app/api/v2/licenses/..." -H "Content-Type: application/json" -d '...'`
async fn curl(app: &TestApp, path: &str, data: &str) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .header("Content-Type", "application/json")
            .body(data.to_owned()),
    )
    .await
}

/// `2025-04-22T20:08:39.000000Z`
fn is_laravel_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 27
        && s.ends_with('Z')
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
        && s.as_bytes()[19] == b'.'
}

/// The first 12 hex digits of a UUID as a number: how our UUIDs fill numeric ids.
fn number_of(uuid: &Value) -> u64 {
    let hex: String = uuid.as_str().unwrap().replace('-', "");
    u64::from_str_radix(&hex[..12], 16).unwrap()
}

/// The integer SellApp's SDK is sent for a Stripe id: its SHA-256's first 48 bits.
fn stripe_number(id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    u64::from_str_radix(&hex::encode(&digest[..6]), 16).unwrap()
}

async fn four_seat_license(app: &TestApp) -> Value {
    let product = app
        .create_product(json!({ "name": "Tool", "slug": "tool", "max_activations": 4 }))
        .await;
    let license = app
        .create_license(
            "tool",
            json!({ "email": "zezima@osrs.com", "expires_at": "2035-05-22T20:08:39Z" }),
        )
        .await;
    let key = license["key"].as_str().unwrap().to_owned();
    let sql = format!(
        "UPDATE licenses SET source = 'stripe', stripe_checkout_session_id = 'cs_test_1',
         stripe_line_item_id = 'li_1', stripe_line_item_seq = 0, stripe_customer_id = 'cus_1'
         WHERE key = '{key}'"
    );
    app.db(move |conn| conn.batch_execute(&sql).unwrap()).await;
    json!({ "key": key, "id": license["id"], "product_id": product["id"] })
}

#[tokio::test]
async fn the_validate_sample_with_a_placeholder_key_is_not_valid() {
    let app = spawn_app().await;
    let reply = curl(
        &app,
        "/api/v2/licenses/validate",
        r#"{ "license_key": "string" }"#,
    )
    .await;
    // An error response, as the SDK expects: it cannot parse `license_key: null`.
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, json!({ "message": "License key not found." }));
}

#[tokio::test]
async fn activate_creates_an_instance_that_validate_then_matches() {
    let app = spawn_app().await;
    let license = four_seat_license(&app).await;
    let key = license["key"].as_str().unwrap();

    let data = format!(r#"{{ "license_key": "{key}", "instance_name": "zezima@osrs.com" }}"#);
    let created = curl(&app, "/api/v2/licenses/activate", &data).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let instance = created.body["data"].clone();
    let instance_id = instance["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&instance_id).is_ok());
    assert!(is_laravel_time(&instance["created_at"]), "{instance}");
    assert!(is_laravel_time(&instance["updated_at"]), "{instance}");
    assert_eq!(
        instance,
        json!({
            "id": instance_id,
            "license_key_id": number_of(&license["id"]),
            "name": "zezima@osrs.com",
            "store_id": 1,
            "created_at": instance["created_at"],
            "updated_at": instance["updated_at"],
        })
    );

    let data = format!(r#"{{ "license_key": "{key}", "instance_id": "{instance_id}" }}"#);
    let reply = curl(&app, "/api/v2/licenses/validate", &data).await;
    assert_eq!(reply.status, StatusCode::OK);
    let lk = reply.body["data"]["license_key"].clone();
    assert!(is_laravel_time(&lk["created_at"]) && is_laravel_time(&lk["updated_at"]));
    assert_eq!(
        reply.body,
        json!({
            "data": {
                "valid": true,
                "license_key": {
                    "id": number_of(&license["id"]),
                    "key": key,
                    "limit": 4,
                    "active": 1,
                    "status": "ACTIVE",
                    "expires_at": "2035-05-22T20:08:39.000000Z",
                    "is_expired": false,
                    "store_id": 1,
                    "order_id": stripe_number("cs_test_1"),
                    "invoice_id": null,
                    "product_id": number_of(&license["product_id"]),
                    "variant_id": number_of(&license["product_id"]),
                    "customer_id": stripe_number("cus_1"),
                    "subscription_id": null,
                    "created_at": lk["created_at"],
                    "updated_at": lk["updated_at"],
                    "instances_count": 1,
                },
                "instance": instance,
            }
        })
    );

    // The same instance name again is the same instance, not a second seat.
    let data = format!(r#"{{ "license_key": "{key}", "instance_name": "zezima@osrs.com" }}"#);
    let again = curl(&app, "/api/v2/licenses/activate", &data).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["data"]["id"], json!(instance_id));

    // Without an instance the key alone is validated; an unknown instance is not valid.
    let alone = curl(
        &app,
        "/api/v2/licenses/validate",
        &format!(r#"{{ "license_key": "{key}" }}"#),
    )
    .await;
    assert_eq!(alone.body["data"]["valid"], true);
    assert_eq!(alone.body["data"]["instance"], Value::Null);
    assert_eq!(alone.body["data"]["license_key"]["instances_count"], 1);
    for other in ["9ebd3be0-de72-4da7-805e-bc99d1ac1186", "not-a-uuid"] {
        let reply = curl(
            &app,
            "/api/v2/licenses/validate",
            &format!(r#"{{ "license_key": "{key}", "instance_id": "{other}" }}"#),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["data"]["valid"], false);
        assert_eq!(reply.body["data"]["instance"], Value::Null);
        assert_eq!(reply.body["data"]["license_key"]["key"], key);
        assert_eq!(reply.body["message"], "License key instance not found.");
    }
}

#[tokio::test]
async fn activation_fails_as_documented() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    let activate =
        |name: &str| format!(r#"{{ "license_key": "{key}", "instance_name": "{name}" }}"#);

    // Missing fields: Laravel's 422.
    let reply = curl(&app, "/api/v2/licenses/activate", "{}").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.body,
        json!({
            "message": "The license key field is required. (and 1 more error)",
            "errors": {
                "license_key": ["The license key field is required."],
                "instance_name": ["The instance name field is required."],
            }
        })
    );
    let reply = curl(&app, "/api/v2/licenses/validate", "not json").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["message"], "The license key field is required.");

    // The key does not exist.
    let reply = curl(
        &app,
        "/api/v2/licenses/activate",
        r#"{ "license_key": "01965f1d-f038-7116-b57f-9e7ecb4e7b8f", "instance_name": "zezima@osrs.com" }"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, json!({ "message": "License key not found." }));

    // The activation limit has been reached.
    assert_eq!(
        curl(&app, "/api/v2/licenses/activate", &activate("a"))
            .await
            .status,
        StatusCode::CREATED
    );
    let reply = curl(&app, "/api/v2/licenses/activate", &activate("b")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(
        reply.body,
        json!({ "message": "License key has reached its activation limit." })
    );

    // The key has expired.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "expires_at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    let reply = curl(&app, "/api/v2/licenses/activate", &activate("c")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, json!({ "message": "License key has expired." }));
    let reply = curl(
        &app,
        "/api/v2/licenses/validate",
        &format!(r#"{{ "license_key": "{key}" }}"#),
    )
    .await;
    let lk = &reply.body["data"]["license_key"];
    assert_eq!(reply.body["data"]["valid"], false);
    assert_eq!(reply.body["message"], "License key has expired.");
    assert_eq!(
        (
            lk["status"].clone(),
            lk["is_expired"].clone(),
            lk["active"].clone()
        ),
        (json!("EXPIRED"), json!(true), json!(1))
    );

    // The key is inactive.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "expires_at": null, "status": "suspended" }),
    )
    .await;
    let reply = curl(&app, "/api/v2/licenses/activate", &activate("d")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body,
        json!({ "message": "License key is not active." })
    );
    let reply = curl(
        &app,
        "/api/v2/licenses/validate",
        &format!(r#"{{ "license_key": "{key}" }}"#),
    )
    .await;
    let lk = &reply.body["data"]["license_key"];
    assert_eq!(
        (lk["status"].clone(), lk["active"].clone()),
        (json!("INACTIVE"), json!(0))
    );
    assert_eq!(reply.body["message"], "License key is not active.");
    let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(stored.body["activations_count"], 1);
}

#[tokio::test]
async fn list_all_license_keys_paginates_for_the_seller() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "Tool", "slug": "tool" }))
        .await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(app.create_license("tool", json!({})).await["key"].clone());
    }

    let reply = app.get("/api/v2/licenses").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, json!({ "message": "Unauthenticated." }));

    let first = app.admin_get("/api/v2/licenses?limit=2&page=1").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let base = format!("{}/api/v2/licenses", app.settings.public_url);
    let got: Vec<_> = first.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].clone())
        .collect();
    assert_eq!(got, [keys[2].clone(), keys[1].clone()]);
    assert_eq!(first.body["data"][0]["status"], "ACTIVE");
    // An integer in SellApp's SDK: 0 stands for unlimited.
    assert_eq!(first.body["data"][0]["limit"], 0);
    assert_eq!(
        first.body["links"],
        json!({
            "first": format!("{base}?limit=2&page=1"),
            "last": format!("{base}?limit=2&page=2"),
            "prev": null,
            "next": format!("{base}?limit=2&page=2"),
        })
    );
    assert_eq!(
        first.body["meta"],
        json!({ "current_page": 1, "from": 1, "last_page": 2, "path": base, "per_page": 2, "to": 2, "total": 3 })
    );
    let second = app.admin_get("/api/v2/licenses?limit=2&page=2").await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["data"][0]["key"], keys[0]);
    assert_eq!(second.body["meta"]["from"], 3);
    assert_eq!(second.body["links"]["next"], Value::Null);
    // Defaults: 15 a page, page 1.
    let all = app.admin_get("/api/v2/licenses").await;
    assert_eq!(all.body["meta"]["per_page"], 15);
    assert_eq!(all.body["data"].as_array().unwrap().len(), 3);

    let bad = app.admin_get("/api/v2/licenses?limit=abc&page=0").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.body["errors"],
        json!({
            "limit": ["The limit field must be an integer."],
            "page": ["The page field must be between 1 and 1000000."],
        })
    );
}
