//! CheckoutKeys compatibility: the requests of its documentation's curl, JavaScript,
//! Python and Ruby samples, and every documented answer.

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, Reply, TestApp};

async fn get(app: &TestApp, path: &str, api_key: &str) -> Reply {
    app.send(app.client.get(app.url(path)).header("x-api-key", api_key))
        .await
}

/// `curl -X POST -H "Content-Type: application/json" -H "x-api-key: ..." -d "$data"`
/// where the shell has eaten the quotes inside `$data`.
async fn curl_post(app: &TestApp, key: &str, action: &str) -> Reply {
    let data = format!("{{licenseKey: {key}, action: {action}}}");
    app.send(
        app.client
            .post(app.url("/api/licensekeys/activateDeactivate"))
            .header("Content-Type", "application/json")
            .header("x-api-key", &app.admin_token)
            .body(data),
    )
    .await
}

/// The JavaScript sample: `fetch(url, {method: 'POST', headers: {'x-api-key'}, body: JSON.stringify(data)})`,
/// so no JSON content type.
async fn fetch_post(app: &TestApp, key: &str, action: &str) -> Reply {
    app.send(
        app.client
            .post(app.url("/api/licensekeys/activateDeactivate"))
            .header("x-api-key", &app.admin_token)
            .header("Content-Type", "text/plain;charset=UTF-8")
            .body(json!({ "licenseKey": key, "action": action }).to_string()),
    )
    .await
}

/// The Python and Ruby samples: a JSON body with its content type.
async fn json_post(app: &TestApp, key: &str, action: &str) -> Reply {
    app.send(
        app.client
            .post(app.url("/api/licensekeys/activateDeactivate"))
            .header("x-api-key", &app.admin_token)
            .json(&json!({ "licenseKey": key, "action": action })),
    )
    .await
}

async fn status_of(app: &TestApp, key: &str) -> serde_json::Value {
    let path = format!("/api/licensekeys/status?licenseKey={key}");
    get(app, &path, &app.admin_token).await.body["status"].clone()
}

fn assert_body(reply: &Reply, status: StatusCode, kind: &str, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body, json!({ "status": kind, "message": message }));
}

const INVALID: &str = "Invalid license key or not associated with the connected account.";
const NOT_FOUND: &str = "License key not found for the provided connected account.";

#[tokio::test]
async fn validate_and_status_as_the_samples_call_them() {
    let app = spawn_app().await;
    let key = app.license_with_seats(2).await;
    let token = app.admin_token.clone();

    let reply = get(
        &app,
        &format!("/api/licensekeys/validate?licenseKey={key}"),
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::OK, "success", "License key is valid.");
    let reply = get(
        &app,
        &format!("/api/licensekeys/status?licenseKey={key}"),
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::OK, "active", "License key is active.");

    // The samples' placeholder keys are not keys.
    let reply = get(
        &app,
        "/api/licensekeys/validate?licenseKey=LICENSE_KEY_TO_VALIDATE",
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::BAD_REQUEST, "error", INVALID);
    let reply = get(
        &app,
        "/api/licensekeys/status?licenseKey=LICENSE_KEY_TO_CHECK",
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::NOT_FOUND, "error", NOT_FOUND);

    // `api_key` as a query parameter works as well as the header.
    let reply = app
        .get(&format!(
            "/api/licensekeys/validate?licenseKey={key}&api_key={token}"
        ))
        .await;
    assert_body(&reply, StatusCode::OK, "success", "License key is valid.");

    // An expired key is invalid, though its switch is still on.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "expires_at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    let reply = get(
        &app,
        &format!("/api/licensekeys/validate?licenseKey={key}"),
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::BAD_REQUEST, "error", INVALID);
    let reply = get(
        &app,
        &format!("/api/licensekeys/status?licenseKey={key}"),
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::OK, "active", "License key is active.");
}

#[tokio::test]
async fn every_sample_of_activate_deactivate_switches_the_whole_key() {
    let app = spawn_app().await;
    let key = app.license_with_seats(2).await;
    let token = app.admin_token.clone();

    for (post, label) in [
        (0, "curl (shell-mangled body)"),
        (1, "JavaScript fetch (no JSON content type)"),
        (2, "Python requests / Ruby Net::HTTP"),
    ] {
        let send = |action: &'static str| {
            let (app, key) = (&app, key.clone());
            async move {
                match post {
                    0 => curl_post(app, &key, action).await,
                    1 => fetch_post(app, &key, action).await,
                    _ => json_post(app, &key, action).await,
                }
            }
        };
        let off = send("deactivate").await;
        assert_body(&off, StatusCode::OK, "success", "License key deactivated.");
        assert_eq!(status_of(&app, &key).await, "deactivated", "{label}");
        let reply = get(
            &app,
            &format!("/api/licensekeys/validate?licenseKey={key}"),
            &token,
        )
        .await;
        assert_body(&reply, StatusCode::BAD_REQUEST, "error", INVALID);
        let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
        assert_eq!(stored.body["status"], "suspended");

        let on = send("activate").await;
        assert_body(&on, StatusCode::OK, "success", "License key activated.");
        assert_eq!(status_of(&app, &key).await, "active", "{label}");
        let reply = get(
            &app,
            &format!("/api/licensekeys/validate?licenseKey={key}"),
            &token,
        )
        .await;
        assert_body(&reply, StatusCode::OK, "success", "License key is valid.");
    }
    let reply = get(
        &app,
        &format!("/api/licensekeys/status?licenseKey={}", key.to_lowercase()),
        &token,
    )
    .await;
    assert_body(&reply, StatusCode::OK, "active", "License key is active.");
}

#[tokio::test]
async fn documented_errors() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;

    // 400 Invalid action provided.
    for action in ["toggle", "", "ACTIVATE"] {
        let reply = json_post(&app, &key, action).await;
        assert_body(
            &reply,
            StatusCode::BAD_REQUEST,
            "error",
            "Invalid action provided.",
        );
    }
    // The samples' placeholder key.
    let reply = json_post(&app, "LICENSE_KEY_TO_ACTIVATE_OR_DEACTIVATE", "activate").await;
    assert_body(&reply, StatusCode::NOT_FOUND, "error", NOT_FOUND);

    // 500 Failed to activate/deactivate license key: the update itself fails.
    app.db(|conn| {
        conn.batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
             CREATE TRIGGER refuse BEFORE UPDATE ON licenses FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .unwrap()
    })
    .await;
    let reply = json_post(&app, &key, "deactivate").await;
    assert_body(
        &reply,
        StatusCode::INTERNAL_SERVER_ERROR,
        "error",
        "Failed to activate/deactivate license key.",
    );
    let stored = app.admin_get(&format!("/v1/licenses/{key}")).await;
    assert_eq!(stored.body["status"], "active");
}

#[tokio::test]
async fn the_sellers_api_key_is_required_and_a_revocation_stays() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    let expected = json!({
        "status": "error",
        "message": "Missing or invalid API key. Send it as the x-api-key header or the api_key query parameter.",
    });
    for reply in [
        app.get(&format!("/api/licensekeys/validate?licenseKey={key}"))
            .await,
        get(
            &app,
            &format!("/api/licensekeys/status?licenseKey={key}"),
            "YOUR_API_KEY_HERE",
        )
        .await,
        app.post(
            "/api/licensekeys/activateDeactivate",
            &json!({ "licenseKey": key, "action": "deactivate" }),
        )
        .await,
    ] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, expected);
    }
    assert_eq!(
        app.admin_get(&format!("/v1/licenses/{key}")).await.body["status"],
        "active"
    );

    // Deactivating a revoked key reports success and leaves it revoked.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "revoked" }),
    )
    .await;
    let reply = json_post(&app, &key, "deactivate").await;
    assert_body(
        &reply,
        StatusCode::OK,
        "success",
        "License key deactivated.",
    );
    assert_eq!(
        app.admin_get(&format!("/v1/licenses/{key}")).await.body["status"],
        "revoked"
    );
    let status = get(
        &app,
        &format!("/api/licensekeys/status?licenseKey={key}"),
        &app.admin_token,
    )
    .await;
    assert_body(
        &status,
        StatusCode::OK,
        "deactivated",
        "License key is deactivated.",
    );
}
