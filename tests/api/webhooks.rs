//! Webhooks to the seller: a receiver that is down for a while, then up, gets every
//! event, in order per license, signed so that docs/examples/verify_webhook.py accepts it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    event, line_item, spawn_app, spawn_app_with, spawn_stripe_app, FakeStripe, TestApp,
};

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("LICENSD_LOG", "error")
        .output()
        .unwrap()
}

/// The Rust recipe of docs/webhooks.md, as printed there.
fn verify_webhook(body: &[u8], header: &str, secrets: &[&str], now: i64, tolerance: i64) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;
    let fields: Vec<(&str, &str)> = header
        .split(',')
        .filter_map(|p| p.trim().split_once('='))
        .collect();
    let mut ts = fields.iter().filter(|(k, _)| *k == "t");
    let (Some((_, t)), None) = (ts.next(), ts.next()) else {
        return false;
    };
    let Ok(t) = t.parse::<i64>() else {
        return false;
    };
    if (now - t).abs() > tolerance {
        return false;
    }
    fields.iter().filter(|(k, _)| *k == "v1").any(|(_, v)| {
        let Ok(sig) = hex::decode(v) else {
            return false;
        };
        secrets.iter().any(|s| {
            let mut mac =
                <Hmac<Sha256> as KeyInit>::new_from_slice(s.as_bytes()).expect("any key length");
            mac.update(format!("{t}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&sig).is_ok() // constant time
        })
    })
}

fn recipe_accepts(secret: &str, header: &str, body: &[u8]) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/verify_webhook.py"
        ))
        .args([secret, header])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let out = cli(app, &["webhook", "deliveries", "--limit", "100"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_in_order_per_license() {
    let app = spawn_app_with(|s| {
        s.webhook_poll_ms = 50;
        s.webhook_retry_base_ms = 100;
    })
    .await;
    // The receiver's port, with nothing listening yet: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks/licensd");
    let out = cli(&app, &["webhook", "create", "--url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = cli(&app, &["webhook", "list"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&secret),
        "the secret is shown once"
    );

    // Two licenses, each with a history of changes.
    app.create_product(json!({ "name": "Hooked", "slug": "hooked", "max_activations": 3 }))
        .await;
    let mut keys = Vec::new();
    for email in ["a@example.com", "b@example.com"] {
        let license = app
            .create_license("hooked", json!({ "email": email, "send_email": false }))
            .await;
        keys.push(license["key"].as_str().unwrap().to_owned());
    }
    for key in &keys {
        assert_eq!(app.activate(key, "dev-1").await.status, StatusCode::CREATED);
        assert_eq!(app.activate(key, "dev-2").await.status, StatusCode::CREATED);
        let reply = app
            .deactivate(json!({ "key": key, "fingerprint": "dev-1" }))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let reply = app
            .admin_patch(
                &format!("/v1/licenses/{key}"),
                &json!({ "max_activations": 5 }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let expected = [
        "license.created",
        "activation.created",
        "activation.created",
        "activation.deleted",
        "license.updated",
    ];

    // While the receiver is down: attempts and the last error are visible, nothing lost.
    let mut seen_failures = false;
    for _ in 0..100 {
        let d = deliveries(&app).await;
        assert_eq!(d.len(), 10);
        if d.iter()
            .any(|d| d["attempts"].as_i64() >= Some(2) && d["last_error"].is_string())
        {
            seen_failures = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen_failures,
        "deliveries were retried while the receiver was down"
    );
    assert!(deliveries(&app)
        .await
        .iter()
        .all(|d| d["status"] == "pending"));

    // The receiver comes up on the same port.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let mut done = false;
    for _ in 0..200 {
        if deliveries(&app)
            .await
            .iter()
            .all(|d| d["status"] == "delivered")
        {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        done,
        "every delivery went out: {:?}",
        deliveries(&app).await
    );

    let received = receiver.received_requests().await.unwrap();
    let mut by_license: std::collections::HashMap<String, Vec<(String, String)>> =
        Default::default();
    let mut ids = std::collections::HashSet::new();
    for req in &received {
        let header = req
            .headers
            .get("licensd-webhook-signature")
            .unwrap()
            .to_str()
            .unwrap();
        let kind = recipe_accepts(&secret, header, &req.body)
            .unwrap_or_else(|| panic!("the recipe refused {header}"));
        assert!(recipe_accepts("whsec_wrong", header, &req.body).is_none());
        let now = chrono::Utc::now().timestamp();
        assert!(verify_webhook(&req.body, header, &[&secret], now, 300));
        assert!(!verify_webhook(
            &req.body,
            header,
            &["whsec_wrong"],
            now,
            300
        ));
        let event: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(event["type"], kind.as_str());
        assert!(event["created"].is_string());
        ids.insert(event["id"].as_str().unwrap().to_owned());
        let object = &event["data"]["object"];
        let license = object["license_id"]
            .as_str()
            .or(object["id"].as_str())
            .unwrap()
            .to_owned();
        let id = event["id"].as_str().unwrap().to_owned();
        by_license.entry(license).or_default().push((id, kind));
    }
    assert_eq!(
        ids.len(),
        10,
        "each event delivered (at least once), each with its own id"
    );
    assert_eq!(by_license.len(), 2);
    for (license, kinds) in by_license {
        // At least once: a repeat is allowed, but never out of order.
        let mut deduped = kinds.clone();
        deduped.dedup_by(|a, b| a.0 == b.0);
        let deduped: Vec<&str> = deduped.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(deduped, expected, "license {license}: {kinds:?}");
    }

    // Redelivery on demand.
    let first = deliveries(&app).await.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cli(&app, &["webhook", "redeliver", &first]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..100 {
        if receiver.received_requests().await.unwrap().len() > received.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = receiver.received_requests().await.unwrap();
    assert_eq!(again.len(), received.len() + 1);
    let event: Value = serde_json::from_slice(&again.last().unwrap().body).unwrap();
    assert_eq!(event["type"], "license.created");
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_previous_one_and_bad_input_is_refused() {
    let app = spawn_app_with(|s| s.webhook_poll_ms = 50).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let out = cli(
        &app,
        &[
            "webhook",
            "create",
            "--url",
            &receiver.uri(),
            "--event",
            "license.created",
        ],
    );
    let old = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let id = cli(&app, &["webhook", "list"]);
    let id: Value = serde_json::from_slice(&id.stdout).unwrap();
    let id = id[0]["id"].as_str().unwrap().to_owned();
    let out = cli(&app, &["webhook", "rotate-secret", &id]);
    let new = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_ne!(old, new);

    app.create_product(json!({ "name": "Hooked", "slug": "hooked" }))
        .await;
    let license = app
        .create_license(
            "hooked",
            json!({ "email": "c@example.com", "send_email": false }),
        )
        .await;
    // Not subscribed to license.updated: only the creation goes out.
    app.admin_patch(
        &format!("/v1/licenses/{}", license["id"].as_str().unwrap()),
        &json!({ "status": "suspended" }),
    )
    .await;
    for _ in 0..100 {
        if !receiver.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = receiver.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let header = received[0]
        .headers
        .get("licensd-webhook-signature")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(header.matches("v1=").count(), 2);
    assert!(recipe_accepts(&new, header, &received[0].body).is_some());
    assert!(recipe_accepts(&old, header, &received[0].body).is_some());

    for args in [
        vec!["webhook", "create", "--url", "ftp://example.com"],
        vec![
            "webhook",
            "create",
            "--url",
            "https://example.com",
            "--event",
            "license.exploded",
        ],
        vec![
            "webhook",
            "redeliver",
            "00000000-0000-0000-0000-000000000000",
        ],
        vec![
            "webhook",
            "deliveries",
            "--endpoint",
            "00000000-0000-0000-0000-000000000000",
        ],
        vec!["webhook", "deliveries", "--status", "lost"],
    ] {
        let out = cli(&app, &args);
        assert!(!out.status.success(), "{args:?}");
    }
    // One endpoint's deliveries: the one event it took.
    let out = cli(&app, &["webhook", "deliveries", "--endpoint", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["endpoint_id"], id.as_str());
    assert_eq!(listed[0]["event_type"], "license.created");
    assert_eq!(app.count("webhook_endpoints").await, 1);
}

/// Waits until `receiver` holds more than `seen` requests, and returns them all.
async fn more_than(receiver: &MockServer, seen: usize) -> Vec<wiremock::Request> {
    for _ in 0..100 {
        let got = receiver.received_requests().await.unwrap();
        if got.len() > seen {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery after {seen} requests");
}

fn signature_of(req: &wiremock::Request) -> &str {
    req.headers
        .get("licensd-webhook-signature")
        .unwrap()
        .to_str()
        .unwrap()
}

/// Whether the recipe of docs/webhooks.md (Rust) accepts the request under `secret` alone.
fn verifies(req: &wiremock::Request, secret: &str) -> bool {
    let now = chrono::Utc::now().timestamp();
    verify_webhook(&req.body, signature_of(req), &[secret], now, 300)
}

#[tokio::test]
async fn endpoints_managed_through_the_admin_api_deliver_verified_events() {
    let app = spawn_app_with(|s| s.webhook_poll_ms = 50).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let url = format!("{}/hooks/licensd", receiver.uri());

    let created = app
        .admin_post(
            "/v1/webhook-endpoints",
            &json!({ "url": url, "event_types": ["license.created", "license.updated"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["url"], url);
    assert_eq!(
        created.body["event_types"],
        json!(["license.created", "license.updated"])
    );

    // The list (also with the token in the query) never shows the secret.
    let listed = app
        .get(&format!(
            "/v1/webhook-endpoints?api_key={}",
            app.admin_token
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["data"][0]["id"], id.as_str());
    assert!(listed.body["data"][0].get("secret").is_none());
    assert!(!listed.body.to_string().contains(&secret));

    // A license change reaches the receiver, and the documented recipes verify it.
    app.create_product(json!({ "name": "Hooked", "slug": "hooked" }))
        .await;
    let license = app
        .create_license(
            "hooked",
            json!({ "email": "api@example.com", "send_email": false }),
        )
        .await;
    let received = more_than(&receiver, 0).await;
    assert_eq!(received.len(), 1);
    let event: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(event["type"], "license.created");
    assert_eq!(event["data"]["object"]["id"], license["id"]);
    assert!(verifies(&received[0], &secret));
    assert!(!verifies(&received[0], "whsec_wrong"));
    assert_eq!(
        recipe_accepts(&secret, signature_of(&received[0]), &received[0].body).as_deref(),
        Some("license.created")
    );

    // Its delivery: status, attempts, no error; no secret in the answer.
    let path = format!("/v1/webhook-endpoints/{id}/deliveries");
    let mut delivery = Value::Null;
    for _ in 0..100 {
        let list = app.admin_get(&path).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert!(!list.body.to_string().contains(&secret));
        delivery = list.body["data"][0].clone();
        if delivery["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_error"], Value::Null);
    assert_eq!(delivery["event_id"], event["id"]);

    // Redelivery on demand sends the same event again.
    let again = app
        .admin_post(
            &format!(
                "/v1/webhook-deliveries/{}/redeliver",
                delivery["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(again.body["status"], "pending");
    let received = more_than(&receiver, 1).await;
    assert_eq!(received.len(), 2);
    let repeat: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(repeat["id"], event["id"]);
    assert!(verifies(&received[1], &secret));

    // A rotation: the new secret is shown once, and both sign during the overlap.
    let rotated = app
        .admin_post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != secret);
    assert!(!rotated.body.to_string().contains(&secret));
    let listed = app
        .admin_get("/v1/webhook-endpoints")
        .await
        .body
        .to_string();
    assert!(!listed.contains(&secret) && !listed.contains(&new));
    let reply = app
        .admin_patch(
            &format!("/v1/licenses/{}", license["id"].as_str().unwrap()),
            &json!({ "max_activations": 7 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let received = more_than(&receiver, 2).await;
    let updated = &received[2];
    assert_eq!(signature_of(updated).matches("v1=").count(), 2);
    assert!(verifies(updated, &new), "the new secret verifies");
    assert!(verifies(updated, &secret), "the old secret still verifies");
    assert!(recipe_accepts(&new, signature_of(updated), &updated.body).is_some());
    assert!(recipe_accepts(&secret, signature_of(updated), &updated.body).is_some());
    let event: Value = serde_json::from_slice(&updated.body).unwrap();
    assert_eq!(event["type"], "license.updated");
    assert_eq!(event["data"]["object"]["max_activations"], 7);

    // Deleted: gone from the list with its deliveries, and no longer sent to.
    let gone = app
        .admin_delete(&format!("/v1/webhook-endpoints/{id}"))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    assert_eq!(
        app.admin_get("/v1/webhook-endpoints").await.body["data"],
        json!([])
    );
    assert_eq!(app.admin_get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("webhook_deliveries").await, 0);
    app.create_license(
        "hooked",
        json!({ "email": "later@example.com", "send_email": false }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn the_webhook_admin_api_refuses_bad_input_and_changes_nothing() {
    let app = spawn_app().await;
    let unknown = "00000000-0000-0000-0000-000000000000";

    // Without a token: 401 on every route, before anything is read.
    let paths = [
        ("GET", "/v1/webhook-endpoints".to_owned()),
        ("POST", "/v1/webhook-endpoints".to_owned()),
        ("DELETE", format!("/v1/webhook-endpoints/{unknown}")),
        (
            "POST",
            format!("/v1/webhook-endpoints/{unknown}/rotate-secret"),
        ),
        ("GET", format!("/v1/webhook-endpoints/{unknown}/deliveries")),
        (
            "POST",
            format!("/v1/webhook-deliveries/{unknown}/redeliver"),
        ),
    ];
    for (verb, path) in &paths {
        let req = app
            .client
            .request(verb.parse().unwrap(), app.url(path))
            .json(&json!({ "url": "https://example.com/hook" }));
        let reply = app.send(req).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{verb} {path}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "unauthorized", "{verb} {path}");
        let reply = app
            .send(
                app.client
                    .request(verb.parse().unwrap(), app.url(path))
                    .bearer_auth("not-a-token")
                    .json(&json!({ "url": "https://example.com/hook" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{verb} {path}");
    }

    // Bad endpoints: 422 naming the field.
    for (body, field) in [
        (json!({ "url": "ftp://example.com/hook" }), "url"),
        (json!({ "url": "" }), "url"),
        (json!({ "url": "https://" }), "url"),
        (json!({ "url": "https://exa mple.com/" }), "url"),
        (json!({ "url": "example.com/hook" }), "url"),
        (json!({ "url": "https://example.com/\u{0}hook" }), "url"),
        (
            json!({ "url": "https://example.com/hook", "event_types": ["license.exploded"] }),
            "event_types",
        ),
        (
            json!({ "url": "https://example.com/hook", "event_types": ["license.created\u{0}"] }),
            "event_types[0]",
        ),
    ] {
        let reply = app.admin_post("/v1/webhook-endpoints", &body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("`{field}`")),
            "{body}: {message}"
        );
    }
    let reply = app
        .admin_post(
            "/v1/webhook-endpoints",
            &json!({ "url": "https://example.com/hook", "event_types": ["license.exploded"] }),
        )
        .await;
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("license.exploded"));
    let reply = app.admin_post("/v1/webhook-endpoints", &json!({})).await;
    assert!(reply.status.is_client_error(), "{}", reply.body);

    // Unknown ids: 404 naming what is missing.
    for (verb, path, what) in [
        (
            "DELETE",
            format!("/v1/webhook-endpoints/{unknown}"),
            "webhook endpoint",
        ),
        (
            "DELETE",
            "/v1/webhook-endpoints/nope".to_owned(),
            "webhook endpoint",
        ),
        (
            "POST",
            format!("/v1/webhook-endpoints/{unknown}/rotate-secret"),
            "webhook endpoint",
        ),
        (
            "GET",
            format!("/v1/webhook-endpoints/{unknown}/deliveries"),
            "webhook endpoint",
        ),
        (
            "POST",
            format!("/v1/webhook-deliveries/{unknown}/redeliver"),
            "webhook delivery",
        ),
        (
            "POST",
            "/v1/webhook-deliveries/42/redeliver".to_owned(),
            "webhook delivery",
        ),
    ] {
        let reply = app
            .send(
                app.client
                    .request(verb.parse().unwrap(), app.url(&path))
                    .bearer_auth(&app.admin_token),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{verb} {path}");
        assert_eq!(
            reply.body["error"]["message"],
            format!("{what} not found"),
            "{verb} {path}"
        );
    }
    // A NUL in a path id.
    let reply = app.admin_delete("/v1/webhook-endpoints/%00").await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );

    // Bad delivery filters, on an endpoint that exists.
    let made = app
        .admin_post(
            "/v1/webhook-endpoints",
            &json!({ "url": "https://example.com/hook" }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["event_types"], json!([]));
    let id = made.body["id"].as_str().unwrap();
    for (query, field) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
    ] {
        let reply = app
            .admin_get(&format!("/v1/webhook-endpoints/{id}/deliveries?{query}"))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("`{field}`")),
            "{query}: {message}"
        );
    }

    // Nothing but the one good endpoint was made, and its secret was never changed.
    assert_eq!(app.count("webhook_endpoints").await, 1);
    assert_eq!(
        app.count("webhook_endpoints WHERE previous_secret IS NOT NULL")
            .await,
        0
    );
}

/// Stripe lifecycle changes go through the one recording point: a refund writes its
/// history entry and announces `license.updated` in the same transaction (before the
/// single recording point, the refund reached the history but no webhook).
#[tokio::test]
async fn a_stripe_refund_is_in_the_history_and_announced_as_license_updated() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let out = cli(&app, &["webhook", "create", "--url", &receiver.uri()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let refund_id = refund["id"].as_str().unwrap();
    let entry = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor"]["name"] == refund_id)
        .cloned()
        .expect("the refund's history entry");
    assert_eq!(entry["action"], "updated");
    assert_eq!(entry["after"], json!({ "status": "revoked" }));

    let mut events: Vec<Value> = Vec::new();
    for _ in 0..300 {
        events = receiver
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["license.created", "license.updated"]);
    let updated = &events[1]["data"]["object"];
    assert_eq!(updated["key"], key.as_str());
    assert_eq!(updated["status"], "revoked");
}
