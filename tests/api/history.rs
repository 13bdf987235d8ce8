//! The license history (`GET /v1/licenses/{id|key}/history`) and the key holder's
//! device list (`POST /v1/licenses/activations`).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event, line_item, spawn_app, spawn_stripe_app, FakeStripe};

/// (action, actor kind, actor name) of each entry, leaving out the email worker's
/// (it sends in the background, so its entries land at any point).
fn entries(body: &Value) -> Vec<(String, String, String)> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["kind"] != "system")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"]["kind"].as_str().unwrap().to_owned(),
                e["actor"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_change_is_recorded_with_who_made_it_and_before_and_after() {
    let app = spawn_app().await;
    let key = app.license_with_seats(2).await;
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );
    // An activation of a device already there changes nothing and records nothing.
    assert_eq!(app.activate(&key, "laptop").await.status, StatusCode::OK);
    let reply = app
        .deactivate(json!({ "key": key, "fingerprint": "laptop" }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let path = format!("/v1/licenses/{key}");
    let patch = json!({ "status": "suspended", "max_activations": 5 });
    assert_eq!(app.admin_patch(&path, &patch).await.status, StatusCode::OK);
    // The same PATCH again changes nothing: no entry.
    assert_eq!(app.admin_patch(&path, &patch).await.status, StatusCode::OK);
    let resend = app
        .admin_post(&format!("{path}/resend-email"), &json!({}))
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED);

    let history = app.admin_get(&format!("{path}/history")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let test = "test".to_owned();
    assert_eq!(
        entries(&history.body),
        vec![
            ("created".into(), "api_token".into(), test.clone()),
            (
                "device_activated".into(),
                "app".into(),
                "license API".into()
            ),
            (
                "device_deactivated".into(),
                "app".into(),
                "license API".into()
            ),
            ("updated".into(), "api_token".into(), test.clone()),
            ("email_queued".into(), "api_token".into(), test),
        ]
    );
    let data = history.body["data"].as_array().unwrap();
    assert_eq!(data[1]["after"]["device"]["fingerprint"], "laptop");
    assert_eq!(data[1]["before"]["activations_count"], 0);
    assert_eq!(data[1]["after"]["activations_count"], 1);
    assert_eq!(data[2]["after"]["activations_count"], 0);
    assert_eq!(
        data[3]["before"],
        json!({ "status": "active", "max_activations": 2 })
    );
    assert_eq!(
        data[3]["after"],
        json!({ "status": "suspended", "max_activations": 5 })
    );

    // By id too, and 404 / 401 as elsewhere.
    let id = app.admin_get(&path).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_id = app.admin_get(&format!("/v1/licenses/{id}/history")).await;
    assert_eq!(entries(&by_id.body), entries(&history.body));
    let missing = app.admin_get("/v1/licenses/NOPE-NOPE/history").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = app.get(&format!("{path}/history")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_history_cannot_be_rewritten() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    let refused = app
        .db(|conn| {
            use diesel::connection::SimpleConnection;
            let update = conn.batch_execute("UPDATE license_history SET actor = 'someone else'");
            let delete = conn.batch_execute("DELETE FROM license_history");
            (update.is_err(), delete.is_err())
        })
        .await;
    assert_eq!(refused, (true, true));
    let history = app.admin_get(&format!("/v1/licenses/{key}/history")).await;
    assert_eq!(entries(&history.body).len(), 1);
}

#[tokio::test]
async fn stripe_events_are_named_in_the_history_of_what_they_change() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    app.create_product(json!({ "name": "Pro", "slug": "pro", "stripe_price_ids": ["price_pro"] }))
        .await;
    let checkout = event("checkout_session_completed");
    let session = checkout["data"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe
        .line_items(&session, &[line_item("li_1", "price_pro", 1)])
        .await;
    assert_eq!(app.post_webhook(&checkout).await.status, StatusCode::OK);
    let refund = event("charge_refunded");
    assert_eq!(app.post_webhook(&refund).await.status, StatusCode::OK);
    let key = app.keys_of_session(&session).await.remove(0);

    let history = app.admin_get(&format!("/v1/licenses/{key}/history")).await;
    let checkout_id = checkout["id"].as_str().unwrap().to_owned();
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    assert_eq!(
        entries(&history.body),
        vec![
            ("created".into(), "stripe".into(), checkout_id.clone()),
            ("email_queued".into(), "stripe".into(), checkout_id),
            ("updated".into(), "stripe".into(), refund_id),
        ]
    );
    let revoked = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "updated")
        .unwrap();
    assert_eq!(revoked["before"], json!({ "status": "active" }));
    assert_eq!(revoked["after"], json!({ "status": "revoked" }));

    // The email worker records the delivery too.
    let mut sent = None;
    for _ in 0..100 {
        let history = app.admin_get(&format!("/v1/licenses/{key}/history")).await;
        sent = history.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "email_sent")
            .cloned();
        if sent.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = sent.expect("an email_sent entry");
    assert_eq!(
        sent["actor"],
        json!({ "kind": "system", "name": "licensd" })
    );
}

#[tokio::test]
async fn an_app_lists_the_devices_of_its_key_in_a_signed_answer() {
    let app = spawn_app().await;
    let key = app.license_with_seats(3).await;
    for fp in ["laptop", "desktop"] {
        assert_eq!(app.activate(&key, fp).await.status, StatusCode::CREATED);
    }
    let reply = app
        .post_exact(
            "/v1/licenses/activations",
            &json!({ "key": key.to_lowercase(), "nonce": "n-1" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let exchange = licensd_client::Exchange {
        method: "POST",
        path: "/v1/licenses/activations",
        request_body: &reply.request,
        status: 200,
        body: &reply.bytes,
        signature_header: reply.signature(),
    };
    let now = chrono::Utc::now().timestamp();
    licensd_client::verify_response(&app.public_key().await, &exchange, now, 60)
        .expect("the answer verifies with the server's public key");
    let body = reply.json();
    assert_eq!(body["license"]["key"], key.as_str());
    let devices = body["activations"].as_array().unwrap();
    let fingerprints: Vec<&str> = devices
        .iter()
        .map(|d| d["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints, ["laptop", "desktop"]);
    assert!(devices[0]["last_seen_at"].is_string());
    assert!(
        devices[0].get("ip").is_none(),
        "no IP address to the key holder"
    );

    let unknown = app
        .post("/v1/licenses/activations", &json!({ "key": "AAAAA-BBBBB" }))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["code"], "NOT_FOUND");
    let empty = app
        .post("/v1/licenses/activations", &json!({ "key": " " }))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = app.post("/v1/licenses/activations", &json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
}
