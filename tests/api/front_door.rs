//! One front door: every license client, native or dialect, is held to the same abuse
//! limits and records the client's address the same way. One table of dialects drives
//! each check, so a dialect added without the front door fails here.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Reply, TestApp};

const UNKNOWN: &str = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA";
const CLIENT: &str = "203.0.113.7";

/// A dialect's activation request: (app, key, product, device).
type ActivateRequest = fn(&TestApp, &str, &str, &str) -> reqwest::RequestBuilder;

/// How one dialect asks about a key, and how it activates a device.
struct Dialect {
    name: &'static str,
    lookup: fn(&TestApp, &str) -> reqwest::RequestBuilder,
    activate: Option<ActivateRequest>,
}

fn dialects() -> Vec<Dialect> {
    vec![
        Dialect {
            name: "native",
            lookup: |app, key| {
                app.client
                    .post(app.url("/v1/licenses/validate"))
                    .json(&json!({ "key": key }))
            },
            activate: Some(|app, key, _product, device| {
                app.client
                    .post(app.url("/v1/licenses/activate"))
                    .json(&json!({ "key": key, "fingerprint": device }))
            }),
        },
        Dialect {
            name: "checkoutkeys",
            lookup: |app, key| {
                app.client
                    .get(app.url("/api/licensekeys/validate"))
                    .query(&[("licenseKey", key)])
                    .header("x-api-key", &app.admin_token)
            },
            // CheckoutKeys has no devices: its "activate" switches the whole key on.
            activate: None,
        },
        Dialect {
            name: "wckm",
            lookup: |app, key| {
                app.client
                    .get(app.url("/"))
                    .query(&[("wckm-api", "validate_key"), ("key", key)])
            },
            activate: Some(|app, key, _product, device| {
                app.client.post(app.url("/")).form(&[
                    ("wckm-api", "activate_key"),
                    ("key", key),
                    ("label", device),
                ])
            }),
        },
        Dialect {
            name: "sellapp",
            lookup: |app, key| {
                app.client
                    .post(app.url("/api/v2/licenses/validate"))
                    .json(&json!({ "license_key": key }))
            },
            activate: Some(|app, key, _product, device| {
                app.client
                    .post(app.url("/api/v2/licenses/activate"))
                    .json(&json!({ "license_key": key, "instance_name": device }))
            }),
        },
        Dialect {
            name: "keymint (seed)",
            lookup: |app, key| {
                app.client
                    .post(app.url("/activate-key"))
                    .json(&json!({ "productId": "app", "licenseKey": key, "hostId": "h" }))
            },
            activate: Some(|app, key, product, device| {
                app.client
                    .post(app.url("/activate-key"))
                    .json(&json!({ "productId": product, "licenseKey": key, "hostId": device }))
            }),
        },
        Dialect {
            name: "keymint (current)",
            lookup: |app, key| {
                app.client
                    .post(app.url("/key/deactivate"))
                    .json(&json!({ "productId": "app", "licenseKey": key }))
            },
            activate: Some(|app, key, product, device| {
                app.client
                    .post(app.url("/key/activate"))
                    .json(&json!({ "productId": product, "licenseKey": key, "hostId": device }))
            }),
        },
    ]
}

async fn send_from(app: &TestApp, req: reqwest::RequestBuilder, client: &str) -> Reply {
    app.send(req.header("x-forwarded-for", client)).await
}

fn is_rate_limited(reply: &Reply) -> bool {
    reply.status == StatusCode::TOO_MANY_REQUESTS
        && reply.body["error"]["code"] == "rate_limited"
        && reply.headers.contains_key("retry-after")
}

#[tokio::test]
async fn every_dialects_unknown_key_answers_hit_the_key_guessing_limit() {
    let app = spawn_app_with(|s| {
        s.rate_limit_failed_lookups_per_ip = 2;
        s.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let key = app.license_with_seats(100).await;
    for (i, d) in dialects().iter().enumerate() {
        // Each dialect gets a client address of its own behind the proxy.
        let client = format!("198.51.100.{}", i + 1);
        for n in 0..2 {
            let guess = send_from(&app, (d.lookup)(&app, UNKNOWN), &client).await;
            assert!(
                !is_rate_limited(&guess),
                "{}: guess {n} was refused: {}",
                d.name,
                guess.body
            );
        }
        let third = send_from(&app, (d.lookup)(&app, UNKNOWN), &client).await;
        assert!(
            is_rate_limited(&third),
            "{}: the third unknown key was answered: {} {}",
            d.name,
            third.status,
            third.body
        );
        // The limit is the client's, whatever it asks next and in whichever dialect.
        let good = send_from(
            &app,
            app.client
                .post(app.url("/v1/licenses/validate"))
                .json(&json!({ "key": key })),
            &client,
        )
        .await;
        assert!(is_rate_limited(&good), "{}: {}", d.name, good.body);
    }
}

#[tokio::test]
async fn every_dialects_activation_records_the_client_address_behind_a_trusted_proxy() {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    app.create_product(json!({ "name": "App", "slug": "app", "max_activations": 10 }))
        .await;
    let key = app.create_license("app", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for d in dialects() {
        let Some(activate) = d.activate else { continue };
        let device = format!("device-{}", d.name.replace(' ', "-"));
        let reply = send_from(&app, activate(&app, &key, "app", &device), CLIENT).await;
        assert!(reply.status.is_success(), "{}: {}", d.name, reply.body);
        let license = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
        let recorded: Vec<&Value> = license["activations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["fingerprint"] == device.as_str())
            .map(|a| &a["ip"])
            .collect();
        assert_eq!(recorded, [CLIENT], "{}: {license}", d.name);
    }
}

#[tokio::test]
async fn every_dialects_activations_are_limited_per_key() {
    let app = spawn_app_with(|s| s.rate_limit_activations_per_key = 2).await;
    app.create_product(json!({ "name": "App", "slug": "app", "max_activations": 100 }))
        .await;
    for d in dialects() {
        let Some(activate) = d.activate else { continue };
        let key = app.create_license("app", json!({})).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        for n in 0..2 {
            let reply = app
                .send(activate(&app, &key, "app", &format!("d{n}")))
                .await;
            assert!(reply.status.is_success(), "{}: {}", d.name, reply.body);
        }
        let third = app.send(activate(&app, &key, "app", "d3")).await;
        assert!(is_rate_limited(&third), "{}: {}", d.name, third.body);
    }
}

#[tokio::test]
async fn simultaneous_guesses_get_at_most_the_limits_worth_of_answers() {
    let app = spawn_app_with(|s| {
        s.rate_limit_failed_lookups_per_ip = 10;
        s.rate_limit_requests_per_ip = 10_000;
        s.workers = 4;
        s.db_pool_size = 20;
    })
    .await;
    let guesses = (0..80)
        .map(|i| app.validate(json!({ "key": format!("AAAAA-AAAAA-AAAAA-AAAAA-AA{i:03}") })));
    let replies = join_all(guesses).await;
    let answered = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK && r.body["code"] == "NOT_FOUND")
        .count();
    let refused = replies.iter().filter(|r| is_rate_limited(r)).count();
    assert_eq!(answered + refused, 80);
    assert!(answered <= 10, "{answered} of 80 guesses were answered");
}
