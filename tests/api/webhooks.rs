//! Webhooks to the seller: a receiver that is down for a while, then up, gets every
//! event, in order per license, signed so that docs/examples/verify_webhook.py accepts it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{event, line_item, spawn_app_with, spawn_stripe_app, FakeStripe, TestApp};

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
    ] {
        let out = cli(&app, &args);
        assert!(!out.status.success(), "{args:?}");
    }
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
