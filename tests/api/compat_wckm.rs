//! WC Key Manager compatibility: `/?wckm-api=...` as its documentation calls it (GET
//! and POST), each documented field and error, and the checksum's definition.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_app, spawn_app_with, Reply, TestApp};

const SECRET: &str = "test-checksum-secret";

async fn wckm_app() -> TestApp {
    spawn_app_with(|s| s.compat_wckm_checksum_secret = Some(SecretString::from(SECRET))).await
}

/// A license as the documentation's example: unlimited, perpetual, order 139 (here
/// its Stripe checkout session), bought by Antoinette Mraz.
async fn example_license(app: &TestApp) -> String {
    app.create_product(json!({ "name": "Plugin", "slug": "plugin" }))
        .await;
    let key = app
        .create_license(
            "plugin",
            json!({ "email": "antoinette@example.com", "name": "Antoinette Mraz" }),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let sql = format!(
        "UPDATE licenses SET stripe_checkout_session_id = 'cs_test_139', stripe_line_item_id = 'li_1', stripe_line_item_seq = 0, stripe_payment_intent_id = 'pi_139', stripe_customer_id = 'cus_139', source = 'stripe' WHERE key = '{key}'"
    );
    app.db(move |conn| conn.batch_execute(&sql).unwrap()).await;
    key
}

/// `GET https://example.com?wckm-api=ACTION&...`
async fn call(app: &TestApp, query: &str) -> Reply {
    app.get(&format!("/?{query}")).await
}

/// The documented checksum: HMAC-SHA256 under the secret over the canonical key, a
/// newline and the other fields as compact JSON with sorted keys; first 32 hex digits.
fn expected_checksum(key: &str, body: &Value) -> String {
    let fields: BTreeMap<String, Value> = body
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "checksum")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(key.as_bytes());
    mac.update(b"\n");
    mac.update(serde_json::to_string(&fields).unwrap().as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

fn assert_error(reply: &Reply, error: &str, message: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "success": false, "error": error, "message": message })
    );
}

#[tokio::test]
async fn validate_key_answers_the_documented_example() {
    let app = wckm_app().await;
    let key = example_license(&app).await;

    let reply = call(&app, &format!("wckm-api=validate_key&key={key}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let checksum = reply.body["checksum"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.body,
        json!({
            "success": true,
            "message": "Key is valid.",
            "activation_limit": 0,
            "activation_count": 0,
            "activation_remaining": "unlimited",
            "expires": "never",
            "order_id": "cs_test_139",
            "customer_name": "Antoinette Mraz",
            "customer_email": "antoinette@example.com",
            "checksum": checksum,
        })
    );
    assert_eq!(checksum.len(), 32);
    assert_eq!(checksum, expected_checksum(&key, &reply.body));

    // With a label: its status, and a checksum that covers it.
    let labelled = call(
        &app,
        &format!("wckm-api=validate_key&key={key}&label=Hello"),
    )
    .await;
    let mut want = reply.body.clone();
    want["label"] = json!("Hello");
    want["label_status"] = json!("inactive");
    want["checksum"] = labelled.body["checksum"].clone();
    assert_eq!(labelled.body, want);
    assert_ne!(labelled.body["checksum"], json!(checksum));
    assert_eq!(
        labelled.body["checksum"],
        json!(expected_checksum(&key, &labelled.body))
    );

    // POST with the parameters in a form body, and the optional product_id and email.
    let form = format!(
        "wckm-api=validate_key&key={}&product_id=plugin&email=ANTOINETTE%40example.com",
        key.to_lowercase()
    );
    let posted = app
        .send(
            app.client
                .post(app.url("/"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await;
    assert_eq!(posted.body, reply.body);
}

#[tokio::test]
async fn activate_and_deactivate_key_count_seats_by_label() {
    let app = wckm_app().await;
    let slug = "two-seats";
    app.create_product(json!({ "name": "Two", "slug": slug, "max_activations": 2 }))
        .await;
    let key = app
        .create_license(
            slug,
            json!({ "email": "b@example.com", "expires_at": "2031-02-03T04:05:06Z" }),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let on = call(
        &app,
        &format!("wckm-api=activate_key&key={key}&label=mac os x - chrome"),
    )
    .await;
    let checksum = on.body["checksum"].clone();
    assert_eq!(
        on.body,
        json!({
            "success": true,
            "message": "Key activated successfully.",
            "label": "mac os x - chrome",
            "activation_limit": 2,
            "activation_count": 1,
            "activation_remaining": 1,
            "expires": "2031-02-03 04:05:06",
            "order_id": null,
            "customer_name": "",
            "customer_email": "b@example.com",
            "checksum": checksum,
        })
    );
    assert_eq!(checksum, json!(expected_checksum(&key, &on.body)));

    // Again: no second seat.
    let again = call(
        &app,
        &format!("wckm-api=activate_key&key={key}&label=mac os x - chrome"),
    )
    .await;
    assert_eq!(again.body["success"], true);
    assert_eq!(again.body["activation_count"], 1);
    // The activation document's `instance` parameter names the label too.
    let second = call(
        &app,
        &format!("wckm-api=activate_key&key={key}&instance=win"),
    )
    .await;
    assert_eq!(second.body["instance"], "win");
    assert_eq!(second.body["activation_remaining"], 0);
    let third = call(
        &app,
        &format!("wckm-api=activate_key&key={key}&label=linux"),
    )
    .await;
    assert_error(
        &third,
        "activation_limit_reached",
        "Activation limit reached, please deactivate the key on another device first.",
    );

    let status = call(&app, &format!("wckm-api=validate_key&key={key}&label=win")).await;
    assert_eq!(status.body["label_status"], "active");

    let off = call(
        &app,
        &format!("wckm-api=deactivate_key&key={key}&label=win"),
    )
    .await;
    assert_eq!(off.body["success"], true);
    assert_eq!(off.body["message"], "Key deactivated successfully.");
    assert_eq!(off.body["label"], "win");
    assert_eq!(off.body["activation_count"], 1);
    assert_eq!(off.body["activation_remaining"], 1);
    assert_eq!(
        off.body["checksum"],
        json!(expected_checksum(&key, &off.body))
    );
    let twice = call(
        &app,
        &format!("wckm-api=deactivate_key&key={key}&label=win"),
    )
    .await;
    assert_error(
        &twice,
        "inactive_label",
        "This label is not activated for the key.",
    );
    let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(stored.body["activations_count"], 1);
}

#[tokio::test]
async fn every_documented_error() {
    let app = wckm_app().await;
    let key = example_license(&app).await;
    let invalid = "Invalid key, please provide a valid key.";

    // invalid_key: empty or unknown.
    for query in [
        "wckm-api=validate_key".to_owned(),
        "wckm-api=validate_key&key=".to_owned(),
        "wckm-api=validate_key&key=YOUR_LICENSE".to_owned(),
        "wckm-api=activate_key&key=AAAAA-BBBBB-CCCCC-DDDDD-EEEEE&label=x".to_owned(),
        "wckm-api=deactivate_key&key=AAAAA-BBBBB-CCCCC-DDDDD-EEEEE&label=x".to_owned(),
    ] {
        assert_error(&call(&app, &query).await, "invalid_key", invalid);
    }
    // missing_label: required to activate and deactivate; empty is invalid anywhere.
    for query in [
        format!("wckm-api=activate_key&key={key}"),
        format!("wckm-api=deactivate_key&key={key}"),
    ] {
        assert_error(
            &call(&app, &query).await,
            "missing_label",
            "Label is required, please provide a label.",
        );
    }
    for query in [
        format!("wckm-api=validate_key&key={key}&label="),
        format!("wckm-api=activate_key&key={key}&label=%20"),
    ] {
        assert_error(
            &call(&app, &query).await,
            "missing_label",
            "Invalid label, please provide a valid label.",
        );
    }
    // invalid_product, invalid_email, for every action.
    for action in ["validate_key", "activate_key", "deactivate_key"] {
        let reply = call(
            &app,
            &format!("wckm-api={action}&key={key}&label=x&product_id=139"),
        )
        .await;
        assert_error(
            &reply,
            "invalid_product",
            "Invalid product, the key does not belong to this product.",
        );
        let reply = call(
            &app,
            &format!("wckm-api={action}&key={key}&label=x&email=someone@else.com"),
        )
        .await;
        assert_error(
            &reply,
            "invalid_email",
            "Invalid email, the key does not belong to this email address.",
        );
    }
    // expired
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "expires_at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    for action in ["validate_key", "activate_key"] {
        let reply = call(&app, &format!("wckm-api={action}&key={key}&label=x")).await;
        assert_error(&reply, "expired", "The key has expired, please renew it.");
    }
    // A suspended or revoked key is an invalid key, with the reason.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "expires_at": null, "status": "suspended" }),
    )
    .await;
    let reply = call(&app, &format!("wckm-api=validate_key&key={key}")).await;
    assert_error(
        &reply,
        "invalid_key",
        "This key is suspended, please contact the seller.",
    );
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "revoked" }),
    )
    .await;
    let reply = call(&app, &format!("wckm-api=activate_key&key={key}&label=x")).await;
    assert_error(&reply, "invalid_key", "This key has been revoked.");
    // Nothing was activated by any of it.
    let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(stored.body["activations_count"], 0);

    let unknown = call(&app, &format!("wckm-api=delete_key&key={key}")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"], "invalid_action");
}

#[tokio::test]
async fn the_root_path_without_wckm_api_is_still_a_json_404() {
    let app = spawn_app().await;
    for reply in [
        app.get("/").await,
        app.get("/?key=x").await,
        app.post("/", &json!({})).await,
        app.get("/nothing-here").await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.error_code(), "not_found");
    }
}

#[tokio::test]
async fn disabled_adapters_answer_json_404() {
    let app = spawn_app_with(|s| {
        s.compat_checkoutkeys = false;
        s.compat_wckm = false;
        s.compat_sellapp = false;
        s.compat_keymint = false;
    })
    .await;
    let key = app.license_with_seats(1).await;
    let body =
        json!({ "license_key": key, "licenseKey": key, "productId": "x", "action": "activate" });
    let replies = [
        app.admin_get(&format!("/api/licensekeys/validate?licenseKey={key}"))
            .await,
        app.admin_get(&format!("/api/licensekeys/status?licenseKey={key}"))
            .await,
        app.admin_post("/api/licensekeys/activateDeactivate", &body)
            .await,
        app.get(&format!("/?wckm-api=validate_key&key={key}")).await,
        app.post(
            &format!("/?wckm-api=activate_key&key={key}&label=a"),
            &json!({}),
        )
        .await,
        app.post("/api/v2/licenses/validate", &body).await,
        app.post("/api/v2/licenses/activate", &body).await,
        app.admin_get("/api/v2/licenses").await,
        app.admin_post("/get-key", &body).await,
        app.post("/activate-key", &body).await,
        app.post("/deactivate-key", &body).await,
    ];
    for reply in replies {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(reply.error_code(), "not_found");
    }
    // The core API is unaffected.
    assert_eq!(
        app.validate(json!({ "key": key })).await.body["valid"],
        true
    );
}
