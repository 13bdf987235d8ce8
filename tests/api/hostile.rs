//! Hostile input (issue 9): each test reproduces an attack or an unlucky order of
//! events that broke licensd, and asserts what a user sees once it cannot.
//! docs/testing.md ("Hostile input") lists them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{event, line_item, spawn_app_with, spawn_stripe_app, FakeStripe, TestApp};
use crate::smtp_server::SmtpServer;

const PAID_SESSION: &str = "cs_test_a1B2c3D4e5F6g7H8i9J0paid";
const SUB_SESSION: &str = "cs_test_c1D2e3F4g5H6i7J8k9L0subs";
const SUBSCRIPTION: &str = "sub_1QfZb0LkdIwHu7ixSubscr";

fn with_object(mut e: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut e["data"]["object"]);
    e
}

async fn ok(app: &TestApp, e: &Value) -> Value {
    let reply = app.post_webhook(e).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// One seat of `price_pro` sold in `session`.
async fn sell_one(app: &TestApp, stripe: &FakeStripe, session: &str, price: &str) {
    app.create_product(json!({ "name": "App", "stripe_price_ids": [price], "max_activations": 3 }))
        .await;
    stripe
        .line_items(session, &[line_item("li_1", price, 1)])
        .await;
}

// --- The webhook ----------------------------------------------------------------------

#[tokio::test]
async fn a_signature_header_with_a_hundred_v1_is_refused_cheaply_and_healthz_answers() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    let body = format!(
        r#"{{"id":"evt_x","type":"x","pad":"{}"}}"#,
        "a".repeat(1024 * 1024 - 64)
    );
    let now = chrono::Utc::now().timestamp();
    let header = format!(
        "t={now},{}",
        vec![format!("v1={}", "ab".repeat(32)); 100].join(",")
    );
    let hostile = (0..4).map(|_| {
        let req = app
            .client
            .post(app.url("/webhooks/stripe"))
            .header("stripe-signature", &header)
            .body(body.clone());
        tokio::spawn(req.send())
    });
    let hostile: Vec<_> = hostile.collect();
    // /healthz is asked while the hostile requests are in flight; the client timeout
    // only keeps a broken server from hanging the suite.
    let health = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("/healthz answers while hostile webhooks are in flight");
    assert_eq!(health.status(), StatusCode::OK);
    for res in hostile {
        let res = res.await.unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 8 v1"),
            "the header is refused for its size, before any HMAC: {body}"
        );
    }
    assert_eq!(app.count("stripe_events").await, 0);
}

#[tokio::test]
async fn a_nul_byte_anywhere_in_an_event_is_stored_and_the_license_minted() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_one(&app, &stripe, PAID_SESSION, "price_pro").await;
    let e = with_object(event("checkout_session_completed"), |o| {
        o["customer_details"]["name"] = json!("Ada\u{0}Lovelace");
        o["metadata"] = json!({ "note\u{0}": "x\u{0}y", "list": ["\u{0}"] });
    });
    let body = ok(&app, &e).await;
    assert!(
        body["outcome"].as_str().unwrap().starts_with("minted 1"),
        "{body}"
    );
    let key = app.keys_of_session(PAID_SESSION).await.remove(0);
    let license = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    assert_eq!(license["customer_name"], "Ada\u{fffd}Lovelace");
    assert_eq!(app.count("stripe_events").await, 1);
    // A second delivery is a duplicate, not another 500.
    let again = app.post_webhook(&e).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

// --- Refunds, disputes and subscriptions -----------------------------------------------

#[tokio::test]
async fn a_refund_that_arrives_before_its_checkout_revokes_the_license_at_mint() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_one(&app, &stripe, PAID_SESSION, "price_pro").await;

    let refund = ok(&app, &event("charge_refunded")).await;
    assert_eq!(refund["outcome"], "revoked 0 license(s): fully refunded");
    let minted = ok(&app, &event("checkout_session_completed")).await;
    assert!(
        minted["outcome"]
            .as_str()
            .unwrap()
            .contains("revoked at once"),
        "{minted}"
    );
    let key = app.keys_of_session(PAID_SESSION).await.remove(0);
    assert_eq!(app.validate_code(&key).await, "REVOKED");
    assert_eq!(
        app.count("email_outbox").await,
        0,
        "a refunded key is not sent"
    );
}

#[tokio::test]
async fn a_dispute_before_its_checkout_suspends_and_its_outcome_wins_over_a_late_open() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_one(&app, &stripe, PAID_SESSION, "price_pro").await;

    // Closed as lost first, then the (older) "created" arrives late: still lost.
    let lost = with_object(event("charge_dispute_closed"), |o| {
        o["status"] = json!("lost")
    });
    ok(&app, &lost).await;
    ok(&app, &event("charge_dispute_created")).await;
    ok(&app, &event("checkout_session_completed")).await;
    let key = app.keys_of_session(PAID_SESSION).await.remove(0);
    assert_eq!(app.validate_code(&key).await, "REVOKED");
}

#[tokio::test]
async fn an_open_dispute_before_its_checkout_suspends_the_license_at_mint() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_one(&app, &stripe, PAID_SESSION, "price_pro").await;
    ok(&app, &event("charge_dispute_created")).await;
    ok(&app, &event("checkout_session_completed")).await;
    let key = app.keys_of_session(PAID_SESSION).await.remove(0);
    assert_eq!(app.validate_code(&key).await, "SUSPENDED");
    // Won later: back to valid.
    ok(&app, &event("charge_dispute_closed")).await;
    assert_eq!(app.validate_code(&key).await, "VALID");
}

#[tokio::test]
async fn a_rate_limited_or_failing_subscription_read_is_a_503_and_the_retry_mints_with_the_period()
{
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    app.create_product(
        json!({ "name": "Monthly", "stripe_price_ids": ["price_monthly"], "duration_days": 365 }),
    )
    .await;
    stripe
        .line_items(SUB_SESSION, &[line_item("li_sub", "price_monthly", 1)])
        .await;
    let e = event("checkout_session_completed_subscription");
    for (status, body) in [
        (
            429,
            json!({ "error": { "type": "invalid_request_error", "code": "rate_limit",
                                 "message": "Too many requests made to the API too quickly" } }),
        ),
        (
            500,
            json!({ "error": { "type": "api_error", "message": "An unknown error occurred" } }),
        ),
        (502, json!({})),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/subscriptions/{SUBSCRIPTION}")))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&stripe.server)
            .await;
        let reply = app.post_webhook(&e).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{status}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "stripe_unavailable");
        assert_eq!(
            app.count("stripe_events").await,
            0,
            "not recorded, so Stripe's retry counts"
        );
        assert_eq!(app.count("licenses").await, 0);
    }
    let period_end = chrono::Utc::now().timestamp() + 30 * 86_400;
    stripe.subscription(SUBSCRIPTION, period_end).await;
    ok(&app, &e).await;
    let key = app.keys_of_session(SUB_SESSION).await.remove(0);
    let license = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    let expires: chrono::DateTime<chrono::Utc> =
        license["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires.timestamp() - period_end) as f64 / 86_400.0;
    assert!(
        (2.9..=3.1).contains(&days),
        "period end plus grace, not the product's 365 days: {license}"
    );
}

/// Serves `GET /v1/invoices/{id}` for an invoice of `subscription`, shaped as the
/// current API version publishes it (`parent.subscription_details`).
async fn invoice_of_subscription(stripe: &FakeStripe, invoice: &str, subscription: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/invoices/{invoice}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": invoice, "object": "invoice", "status": "paid", "billing_reason": "subscription_create",
            "customer": "cus_RBaNkExAmPlE", "currency": "usd", "amount_paid": 900,
            "parent": { "type": "subscription_details", "quote_details": null,
                        "subscription_details": { "metadata": {}, "subscription": subscription } },
            "lines": { "object": "list", "data": [], "has_more": false,
                       "url": format!("/v1/invoices/{invoice}/lines") }
        })))
        .mount(&stripe.server)
        .await;
}

async fn mint_subscription(app: &TestApp, stripe: &FakeStripe) -> String {
    app.create_product(json!({ "name": "Monthly", "stripe_price_ids": ["price_monthly"] }))
        .await;
    stripe
        .line_items(SUB_SESSION, &[line_item("li_sub", "price_monthly", 1)])
        .await;
    stripe
        .subscription(SUBSCRIPTION, chrono::Utc::now().timestamp() + 30 * 86_400)
        .await;
    ok(app, &event("checkout_session_completed_subscription")).await;
    app.keys_of_session(SUB_SESSION).await.remove(0)
}

#[tokio::test]
async fn a_full_refund_of_a_subscription_invoice_revokes_that_subscriptions_licenses() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    let key = mint_subscription(&app, &stripe).await;
    // Current API versions: the charge names no invoice; its payment intent's
    // invoice payment does.
    Mock::given(method("GET"))
        .and(path("/v1/invoice_payments"))
        .and(query_param("payment[payment_intent]", "pi_3SubInvoicePaid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "url": "/v1/invoice_payments",
            "data": [{ "id": "inpay_1", "object": "invoice_payment", "amount_paid": 900,
                       "amount_requested": 900, "created": 1_764_000_000, "currency": "usd",
                       "invoice": "in_1QfZb0LkdIwHu7ixFirstInv", "is_default": true, "livemode": false,
                       "payment": { "type": "payment_intent", "payment_intent": "pi_3SubInvoicePaid" },
                       "status": "paid",
                       "status_transitions": { "canceled_at": null, "paid_at": 1_764_000_000 } }]
        })))
        .mount(&stripe.server)
        .await;
    invoice_of_subscription(&stripe, "in_1QfZb0LkdIwHu7ixFirstInv", SUBSCRIPTION).await;
    let refund = with_object(event("charge_refunded"), |o| {
        o["id"] = json!("ch_3SubInvoiceCharge");
        o["payment_intent"] = json!("pi_3SubInvoicePaid");
    });
    let body = ok(&app, &refund).await;
    assert_eq!(body["outcome"], "revoked 1 license(s): fully refunded");
    assert_eq!(app.validate_code(&key).await, "REVOKED");
}

#[tokio::test]
async fn a_lost_dispute_of_a_subscription_charge_revokes_via_charge_and_invoice() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    let key = mint_subscription(&app, &stripe).await;
    // An older dispute names only its charge; the charge (older API) names its invoice,
    // and the invoice (older API) its subscription.
    Mock::given(method("GET"))
        .and(path("/v1/charges/ch_3SubRenewalCharge"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "ch_3SubRenewalCharge", "object": "charge", "amount": 900, "paid": true,
            "payment_intent": null, "invoice": "in_1QgAa0LkdIwHu7ixRenewal", "refunded": false,
            "status": "succeeded", "customer": "cus_RBaNkExAmPlE"
        })))
        .mount(&stripe.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1QgAa0LkdIwHu7ixRenewal"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "in_1QgAa0LkdIwHu7ixRenewal", "object": "invoice", "status": "paid",
            "subscription": SUBSCRIPTION, "customer": "cus_RBaNkExAmPlE"
        })))
        .mount(&stripe.server)
        .await;
    let dispute = |status: &str| {
        let status = status.to_owned();
        with_object(event("charge_dispute_closed"), move |o| {
            o["id"] = json!("dp_SubRenewal");
            o["payment_intent"] = Value::Null;
            o["charge"] = json!("ch_3SubRenewalCharge");
            o["status"] = json!(status);
        })
    };
    let created = with_object(event("charge_dispute_created"), |o| {
        o["id"] = json!("dp_SubRenewal");
        o["payment_intent"] = Value::Null;
        o["charge"] = json!("ch_3SubRenewalCharge");
    });
    assert_eq!(
        ok(&app, &created).await["outcome"],
        "suspended 1 license(s): disputed"
    );
    assert_eq!(app.validate_code(&key).await, "SUSPENDED");
    assert_eq!(
        ok(&app, &dispute("lost")).await["outcome"],
        "revoked 1 license(s): dispute lost"
    );
    assert_eq!(app.validate_code(&key).await, "REVOKED");
}

#[tokio::test]
async fn a_refund_of_a_one_time_payment_still_revokes_only_its_own_licenses() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    let sub_key = mint_subscription(&app, &stripe).await;
    sell_one(&app, &stripe, PAID_SESSION, "price_pro").await;
    ok(&app, &event("checkout_session_completed")).await;
    let key = app.keys_of_session(PAID_SESSION).await.remove(0);
    ok(&app, &event("charge_refunded")).await;
    assert_eq!(app.validate_code(&key).await, "REVOKED");
    assert_eq!(app.validate_code(&sub_key).await, "VALID");
}

// --- Email --------------------------------------------------------------------------

async fn smtp_app(
    smtp: &SmtpServer,
    configure: impl FnOnce(&mut licensd::config::Settings),
) -> TestApp {
    let url = smtp.url();
    spawn_app_with(move |s| {
        s.smtp_url = Some(secrecy::SecretString::from(url));
        s.mail_poll_ms = 100;
        s.smtp_timeout_secs = 1;
        configure(s);
    })
    .await
}

async fn license_with_email(app: &TestApp, email: &str) -> String {
    app.create_product(
        json!({ "name": "Editor", "slug": format!("ed-{}", uuid::Uuid::new_v4().simple()) }),
    )
    .await;
    let products = app.admin_get("/v1/products").await.body;
    let slug = products["data"].as_array().unwrap().last().unwrap()["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = app
        .admin_post("/v1/licenses", &json!({ "product": slug, "email": email }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_smtp_server_that_accepts_and_never_answers_fails_the_attempt_and_the_email_is_pending_again(
) {
    let smtp = SmtpServer::start().await;
    smtp.set_silent(usize::MAX);
    // A long retry wait, so the row is seen waiting with its error.
    let app = smtp_app(&smtp, |s| s.mail_retry_base_ms = 600_000).await;
    let key = license_with_email(&app, "ada@example.com").await;
    let status = app
        .wait_for_email_status(&key, |s| s["status"] == "pending" && s["attempts"] == 1)
        .await;
    assert_eq!(
        status["status"], "pending",
        "back to pending, not stuck in sending: {status}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("timed out"),
        "{status}"
    );
    assert!(smtp.silent_connections() >= 1);
}

#[tokio::test]
async fn a_stuck_smtp_send_does_not_hold_up_the_emails_behind_it() {
    let smtp = SmtpServer::start().await;
    // Only the first connection goes silent; one send at a time, so every email
    // queued after the stuck one waits for it unless the stuck one is cut off.
    smtp.set_silent(1);
    let app = smtp_app(&smtp, |s| {
        s.mail_concurrency = 1;
        s.mail_retry_base_ms = 100;
        s.smtp_timeout_secs = 2;
    })
    .await;
    let first = license_with_email(&app, "first@example.com").await;
    let mut rest = Vec::new();
    for i in 0..3 {
        rest.push(license_with_email(&app, &format!("buyer{i}@example.com")).await);
    }
    // The guard only keeps a broken server from hanging the suite.
    let mail = smtp.wait_for(4, Duration::from_secs(60)).await;
    let mut to: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    // (A send cut off by the deadline after the server took DATA may arrive twice: the
    // deadline only has to be shorter than a silent server, not than a slow machine.)
    to.dedup();
    assert_eq!(
        to,
        [
            "buyer0@example.com",
            "buyer1@example.com",
            "buyer2@example.com",
            "first@example.com"
        ]
    );
    assert_eq!(smtp.silent_connections(), 1);
    let status = app
        .wait_for_email_status(&first, |s| s["status"] == "sent")
        .await;
    assert!(
        status["attempts"].as_i64().unwrap() >= 2,
        "the stuck attempt failed and was retried: {status}"
    );
    for key in rest {
        assert_eq!(
            app.wait_for_email_status(&key, |s| s["status"] == "sent")
                .await["status"],
            "sent"
        );
    }
}

#[tokio::test]
async fn twenty_resends_of_an_email_that_has_not_gone_out_queue_one_email() {
    let smtp = SmtpServer::start().await;
    smtp.set_down(true);
    let app = smtp_app(&smtp, |s| s.mail_retry_base_ms = 600_000).await;
    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let key = app.create_license("editor", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("/v1/licenses/{key}/resend-email");
    let empty = json!({});
    let replies = futures::future::join_all((0..20).map(|_| app.admin_post(&url, &empty))).await;
    let mut ids: Vec<&str> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            r.body["email_id"].as_str().unwrap()
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "every resend joined the first email: {ids:?}");
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.body["coalesced"] == true)
            .count(),
        19
    );
    assert_eq!(app.count("email_outbox").await, 1);
}

#[tokio::test]
async fn resends_are_capped_per_license_per_hour_with_a_429_naming_the_limit() {
    // No SMTP: emails are written as .eml files, so each is sent at once.
    let app = spawn_app_with(|s| s.mail_poll_ms = 100).await;
    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let key = app.create_license("editor", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("/v1/licenses/{key}/resend-email");
    for _ in 0..5 {
        let reply = app.admin_post(&url, &json!({})).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert_eq!(reply.body["coalesced"], false);
        app.wait_for_email_status(&key, |s| s["status"] == "sent")
            .await;
    }
    let refused = app.admin_post(&url, &json!({})).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_code(), "email_limit");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("5 emails per license per hour"),
        "{message}"
    );
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(app.count("email_outbox").await, 5);
}

// --- The admin API ------------------------------------------------------------------

/// Every admin route of the OpenAPI document (those secured by `admin_token`), plus
/// the dialects' admin routes, with example path parameters filled in.
async fn admin_routes(app: &TestApp) -> Vec<(String, String)> {
    let doc = app.get("/openapi.json").await.body;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("admin_token").is_some()));
            if secured {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes.push(("POST".into(), "/get-key".into()));
    routes.push(("GET".into(), "/api/v2/licenses".into()));
    routes
}

#[tokio::test]
async fn the_admin_token_in_the_query_is_accepted_on_every_admin_route() {
    let app = crate::helpers::spawn_app().await;
    app.create_product(json!({ "name": "App", "slug": "app", "max_activations": 2 }))
        .await;
    let key = app.create_license("app", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let activation = app.activate(&key, "device-1").await;
    let activation_id = activation.body["activation"]["id"]
        .as_str()
        .or_else(|| activation.body["activation_id"].as_str())
        .unwrap_or_else(|| panic!("{}", activation.body))
        .to_owned();
    let spare = licensd::cli::new_token();
    let hash = licensd::http::extract::hash_token(&spare);
    let spare_id = app
        .db(move |conn| {
            licensd::db::api_keys::insert(conn, "spare", &hash)
                .unwrap()
                .id
        })
        .await;

    let routes = admin_routes(&app).await;
    assert!(routes.len() >= 12, "{routes:?}");
    // Revoking comes last, so nothing after it depends on the key it revokes.
    let mut routes = routes;
    routes.sort_by_key(|(m, p)| (p.starts_with("/v1/api-keys/"), m == "DELETE", p.clone()));
    for (method, template) in routes {
        let path = template
            .replace("{product}", "app")
            .replace("{license}", &key)
            .replace("{activation}", &activation_id)
            .replace("{api_key}", &spare_id.to_string());
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let without = app
            .send(
                app.client
                    .request(method.clone(), app.url(&path))
                    .json(&json!({})),
            )
            .await;
        assert_eq!(
            without.status,
            StatusCode::UNAUTHORIZED,
            "{method} {template}: {}",
            without.body
        );
        let sep = if path.contains('?') { '&' } else { '?' };
        let with = app
            .send(
                app.client
                    .request(
                        method.clone(),
                        app.url(&format!("{path}{sep}api_key={}", app.admin_token)),
                    )
                    .json(&json!({})),
            )
            .await;
        assert_ne!(
            with.status,
            StatusCode::UNAUTHORIZED,
            "{method} {template}: {}",
            with.body
        );
        assert!(
            !with.body.to_string().contains("api_key"),
            "{method} {template} must not refuse the query form: {}",
            with.body
        );
        assert!(
            with.status.as_u16() < 500,
            "{method} {template}: {}",
            with.body
        );
    }
}

#[tokio::test]
async fn a_nul_byte_in_any_admin_input_is_a_422_naming_the_field() {
    let app = crate::helpers::spawn_app().await;
    app.create_product(json!({ "name": "App", "slug": "app" }))
        .await;
    let key = app.create_license("app", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "POST",
            "/v1/products".into(),
            json!({ "name": "A\u{0}B" }),
            "name",
        ),
        (
            "POST",
            "/v1/products".into(),
            json!({ "name": "A", "slug": "a\u{0}" }),
            "slug",
        ),
        (
            "POST",
            "/v1/products".into(),
            json!({ "name": "A", "stripe_price_ids": ["price_ok", "price\u{0}"] }),
            "stripe_price_ids[1]",
        ),
        (
            "PATCH",
            "/v1/products/app".into(),
            json!({ "name": "x\u{0}" }),
            "name",
        ),
        (
            "POST",
            "/v1/licenses".into(),
            json!({ "product": "app", "email": "a@b.example", "metadata": { "k": "v\u{0}" } }),
            "metadata.k",
        ),
        (
            "POST",
            "/v1/licenses".into(),
            json!({ "product": "app", "email": "a\u{0}@b.example" }),
            "email",
        ),
        (
            "POST",
            "/v1/licenses".into(),
            json!({ "product": "app", "email": "a@b.example", "name": "\u{0}" }),
            "name",
        ),
        (
            "PATCH",
            format!("/v1/licenses/{key}"),
            json!({ "metadata": { "k\u{0}": 1 } }),
            "metadata.k\\u0000",
        ),
        (
            "GET",
            "/v1/licenses?email=a%00b".into(),
            json!(null),
            "email",
        ),
        (
            "GET",
            "/v1/licenses?product=app%00".into(),
            json!(null),
            "product",
        ),
        (
            "GET",
            "/v1/licenses?status=active%00".into(),
            json!(null),
            "status",
        ),
        ("GET", "/v1/products/app%00".into(), json!(null), "product"),
        (
            "PATCH",
            "/v1/products/a%00pp".into(),
            json!({ "name": "x" }),
            "product",
        ),
        (
            "GET",
            "/v1/licenses/ABC%00DEF".into(),
            json!(null),
            "license",
        ),
        (
            "POST",
            "/v1/licenses/x%00/resend-email".into(),
            json!({}),
            "license",
        ),
        (
            "DELETE",
            format!("/v1/licenses/{key}/activations/a%00b"),
            json!(null),
            "activation",
        ),
        ("DELETE", "/v1/api-keys/%00".into(), json!(null), "api_key"),
    ];
    for (method, path, body, field) in cases {
        let mut req = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&path),
            )
            .bearer_auth(&app.admin_token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let reply = app.send(req).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "invalid_field");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("`{field}` ")) && message.contains("NUL"),
            "{method} {path}: expected the field `{field}` named: {message}"
        );
    }
    assert_eq!(app.count("products").await, 1, "nothing was created");
    let license = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    assert_eq!(license["metadata"], json!({}), "nothing was changed");
    // The public API too: a fingerprint with a NUL.
    let reply = app
        .post(
            "/v1/licenses/activate",
            &json!({ "key": key, "fingerprint": "f\u{0}" }),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
}

fn licensd_cli(database_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("LICENSD_LOG", "warn")
        .env_remove("LICENSD_CONFIG")
        .output()
        .expect("licensd runs")
}

async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let url = app.database_url.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        licensd_cli(&url, &args)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_leaked_admin_token_is_listed_and_revoked_from_the_cli_and_the_api() {
    let app = crate::helpers::spawn_app().await;
    let created = cli(&app, &["api-key", "create", "--name", "leaked"]).await;
    assert!(created.status.success());
    let leaked = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let as_leaked = |path: &str| app.client.get(app.url(path)).bearer_auth(&leaked);
    assert_eq!(
        app.send(as_leaked("/v1/products")).await.status,
        StatusCode::OK
    );

    let listed = cli(&app, &["api-key", "list"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let stdout = String::from_utf8(listed.stdout).unwrap();
    assert!(!stdout.contains(&leaked) && !stdout.contains(&app.admin_token));
    let keys: Value = serde_json::from_str(&stdout).unwrap();
    let entry = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "leaked")
        .unwrap()
        .clone();
    let mut fields: Vec<&String> = entry.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "id", "last_used_at", "name", "revoked_at"]
    );
    assert!(
        entry["last_used_at"].is_string(),
        "its use was recorded: {entry}"
    );

    let revoked = cli(&app, &["api-key", "revoke", entry["id"].as_str().unwrap()]).await;
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let reply = app.send(as_leaked("/v1/products")).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "refused at once: {}",
        reply.body
    );

    // The same through the API, with another token.
    let second = cli(&app, &["api-key", "create", "--name", "ci"]).await;
    let ci = String::from_utf8(second.stdout).unwrap().trim().to_owned();
    let list = app.admin_get("/v1/api-keys").await;
    assert_eq!(list.status, StatusCode::OK);
    let text = list.body.to_string();
    assert!(!text.contains(&ci) && !text.contains(&app.admin_token) && !text.contains("sha256"));
    let ci_id = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = app.admin_delete(&format!("/v1/api-keys/{ci_id}")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(first.body["revoked_at"].is_string());
    let again = app.admin_delete(&format!("/v1/api-keys/{ci_id}")).await;
    assert_eq!(
        again.body["revoked_at"], first.body["revoked_at"],
        "idempotent"
    );
    let reply = app
        .send(app.client.get(app.url("/v1/products")).bearer_auth(&ci))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .admin_delete(&format!("/v1/api-keys/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let help = cli(&app, &["api-key", "revoke", "--help"]).await;
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("Revoke an admin token by its id"), "{help}");
}

// --- Operations ---------------------------------------------------------------------

/// `licensd serve` as a process of its own, with JSON logs, on the test's database.
struct ServeProcess {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    port: u16,
    seen: Vec<Value>,
}

impl ServeProcess {
    async fn start(app: &TestApp, env: &[(&str, &str)]) -> ServeProcess {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_licensd"));
        cmd.arg("serve")
            .env("DATABASE_URL", &app.database_url)
            .env("LICENSD_BIND", "127.0.0.1:0")
            .env("LICENSD_LOG_FORMAT", "json")
            .env("LICENSD_LOG", "info")
            .env("LICENSD_MAIL_DIR", app.mail_dir.path())
            .env_remove("LICENSD_CONFIG")
            .env_remove("LICENSD_TRUSTED_PROXIES")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("licensd starts");
        let lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut serve = ServeProcess {
            child,
            lines,
            port: 0,
            seen: Vec::new(),
        };
        let listening = serve
            .wait_for(|l| l["message"] == "licensd listening")
            .await;
        serve.port = listening["port"].as_u64().unwrap() as u16;
        serve
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Reads log lines (each must be JSON) until one matches; the guard only keeps a
    /// broken server from hanging the suite.
    async fn wait_for(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|l| matches(l)) {
            return found.clone();
        }
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
                .await
                .expect("a log line within the guard")
                .unwrap()
                .expect("licensd is still running");
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("every log line is JSON ({e}): {line}"));
            self.seen.push(value.clone());
            if matches(&value) {
                return value;
            }
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[tokio::test]
async fn json_request_log_lines_carry_route_status_and_request_id_as_fields() {
    let app = crate::helpers::spawn_app().await;
    let mut serve = ServeProcess::start(&app, &[]).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(serve.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let unauthorized = client
        .get(serve.url("/v1/licenses?api_key=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let health = serve
        .wait_for(|l| l["message"] == "request" && l["route"] == "/healthz")
        .await;
    assert_eq!(health["status"], 200, "{health}");
    assert_eq!(health["method"], "GET");
    assert!(
        health["request_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 8),
        "{health}"
    );
    assert!(health["latency_ms"].is_number(), "{health}");
    let refused = serve
        .wait_for(|l| l["message"] == "request" && l["route"] == "/v1/licenses")
        .await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert_ne!(refused["request_id"], health["request_id"]);
    let text: String = serve.seen.iter().map(Value::to_string).collect();
    assert!(
        !text.contains("nope"),
        "the query (and its token) is never logged"
    );
    serve.stop().await;
}

#[tokio::test]
async fn forwarded_requests_from_a_private_address_without_trusted_proxies_log_one_warning() {
    let app = crate::helpers::spawn_app().await;
    let mut serve = ServeProcess::start(&app, &[]).await;
    let client = reqwest::Client::new();
    for ip in ["203.0.113.7", "198.51.100.9", "203.0.113.8"] {
        let res = client
            .get(serve.url("/healthz"))
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // Each request's line is written before its answer, so once /readyz's is read,
    // every line of the requests before it has been too.
    client.get(serve.url("/readyz")).send().await.unwrap();
    serve
        .wait_for(|l| l["message"] == "request" && l["route"] == "/readyz")
        .await;
    let warnings: Vec<&Value> = serve
        .seen
        .iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("X-Forwarded-For")
        })
        .collect();
    assert_eq!(warnings.len(), 1, "logged once: {warnings:?}");
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.contains("LICENSD_TRUSTED_PROXIES") && message.contains("127.0.0.1"),
        "{message}"
    );
    serve.stop().await;

    // With the proxy trusted, nothing to warn about.
    let mut trusted = ServeProcess::start(&app, &[("LICENSD_TRUSTED_PROXIES", "127.0.0.1")]).await;
    client
        .get(trusted.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    client.get(trusted.url("/readyz")).send().await.unwrap();
    trusted
        .wait_for(|l| l["message"] == "request" && l["route"] == "/readyz")
        .await;
    assert!(!trusted.seen.iter().any(|l| l["message"]
        .as_str()
        .unwrap_or("")
        .contains("X-Forwarded-For")));
    trusted.stop().await;
}

// --- Slow clients ---------------------------------------------------------------------

/// Opens a connection from `local` that sends a POST's headers and half its body, then
/// stalls.
async fn stalled_body(port: u16, local: std::net::IpAddr) -> tokio::net::TcpStream {
    stalled_post(port, local, "/v1/licenses/validate").await
}

/// A POST to `path` whose headers promise 1000 bytes of body, of which it sends 9.
async fn stalled_post(port: u16, local: std::net::IpAddr, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(local, 0)).unwrap();
    let mut stream = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    stream
        .write_all(
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"key\": \"")
                .as_bytes(),
        )
        .await
        .unwrap();
    stream
}

/// The status line of whatever the server answers on `stream` (or "closed").
async fn answer(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    // The guard only keeps a broken server from hanging the suite.
    match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => "closed".into(),
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(_) => "no answer".into(),
    }
}

/// Reads whatever is left of the answer until the server closes the connection (true),
/// or the guard runs out (false).
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_stalled_webhook_body_is_answered_408_like_any_other() {
    let app = spawn_app_with(|s| s.body_timeout_secs = 1).await;
    let local = std::net::IpAddr::from([127, 0, 0, 1]);
    for path in ["/webhooks/stripe", "/v1/licenses/validate"] {
        let mut stream = stalled_post(app.port, local, path).await;
        assert_eq!(
            answer(&mut stream).await,
            "HTTP/1.1 408 Request Timeout",
            "{path}"
        );
    }
}

#[tokio::test]
async fn stalled_bodies_are_capped_per_address_and_timed_out_while_healthz_answers() {
    let app = spawn_app_with(|s| {
        s.max_connections_per_ip = 20;
        s.body_timeout_secs = 5;
    })
    .await;
    let attacker: std::net::IpAddr = [127, 0, 0, 1].into();
    let mut stalled = Vec::new();
    for _ in 0..200 {
        stalled.push(stalled_body(app.port, attacker).await);
    }
    // Another client (another loopback address) is served meanwhile.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let health = other.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for stream in &mut stalled {
        *answers.entry(answer(stream).await).or_default() += 1;
    }
    let timed_out = answers.remove("HTTP/1.1 408 Request Timeout").unwrap_or(0);
    let refused = answers
        .remove("HTTP/1.1 429 Too Many Requests")
        .unwrap_or(0);
    assert!(
        answers.is_empty(),
        "every connection is answered 408 or 429: {answers:?}"
    );
    assert_eq!(timed_out + refused, 200);
    // The 20 within the cap wait for their body until the deadline; the rest are refused
    // at once. (A connection opened after one of the first 20 timed out may take its
    // place, on a machine slow enough to need 5 s for 200 connects.)
    assert!(
        (20..=40).contains(&timed_out),
        "{timed_out} timed out, {refused} refused"
    );
    // Every stalled connection was closed by the server.
    for stream in &mut stalled {
        assert!(closed_by_server(stream).await);
    }
    drop(stalled);
    // The address is served again once its connections are gone.
    let again = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}
