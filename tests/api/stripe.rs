//! The Stripe webhook: signed Stripe-shaped events in, licenses and emails out, against
//! a local fake of the Stripe API and a real SMTP server on loopback.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{
    event, line_item, spawn_app_with, spawn_stripe_app, FakeStripe, TestApp, WEBHOOK_SECRET,
};
use crate::smtp_server::SmtpServer;

const PAID_SESSION: &str = "cs_test_a1B2c3D4e5F6g7H8i9J0paid";
const SEPA_SESSION: &str = "cs_test_b1C2d3E4f5G6h7I8j9K0sepa";
const SUB_SESSION: &str = "cs_test_c1D2e3F4g5H6i7J8k9L0subs";
const PAID_PI: &str = "pi_3QfXjzLkdIwHu7ix0PAID";
const SUBSCRIPTION: &str = "sub_1QfZb0LkdIwHu7ixSubscr";

/// A product sold by `price_pro` (3 devices), and the session's line items on two
/// pages: 1 of a price that maps to nothing, then 2 seats of `price_pro` (so only a
/// fetch that follows `has_more` finds them).
async fn sell_two_seats(app: &TestApp, stripe: &FakeStripe, session: &str) {
    app.create_product(json!({
        "name": "App Pro", "slug": "app-pro", "stripe_price_ids": ["price_pro"], "max_activations": 3
    }))
    .await;
    stripe
        .line_items(
            session,
            &[
                line_item("li_1aaa", "price_unmapped", 1),
                line_item("li_2bbb", "price_pro", 2),
            ],
        )
        .await;
}

async fn assert_ok(app: &TestApp, e: &Value) -> Value {
    let reply = app.post_webhook(e).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn with_object(mut e: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut e["data"]["object"]);
    e
}

#[tokio::test]
async fn a_paid_checkout_mints_a_license_per_seat_and_emails_both_keys_once() {
    let (stripe, smtp) = (FakeStripe::start().await, SmtpServer::start().await);
    let app = spawn_stripe_app(&stripe, Some(&smtp)).await;
    sell_two_seats(&app, &stripe, PAID_SESSION).await;

    let body = assert_ok(&app, &event("checkout_session_completed")).await;
    assert_eq!(body["duplicate"], false);
    assert!(
        body["outcome"].as_str().unwrap().starts_with("minted 2"),
        "{body}"
    );

    let keys = app.keys_of_session(PAID_SESSION).await;
    assert_eq!(
        keys.len(),
        2,
        "quantity 2 of the mapped price; the unmapped one is skipped"
    );
    let license = app
        .admin_get(&format!("/v1/licenses/{}", keys[0]))
        .await
        .body;
    assert_eq!(license["email"], "buyer@example.com");
    assert_eq!(license["customer_name"], "Ada Lovelace");
    assert_eq!(license["max_activations"], 3);
    assert_eq!(license["source"], "stripe");
    assert_eq!(license["stripe"]["checkout_session"], PAID_SESSION);
    assert_eq!(license["stripe"]["payment_intent"], PAID_PI);
    assert_eq!(license["stripe"]["customer"], "cus_RBaNkExAmPlE");
    assert_eq!(app.validate_code(&keys[1]).await, "VALID");

    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "one email for the checkout");
    let m = &mail[0];
    assert_eq!(m.to, ["buyer@example.com"]);
    assert_eq!(m.from, "licenses@localhost");
    for key in &keys {
        assert!(m.data.contains(key.as_str()), "the email lists {key}");
    }
    assert!(m.data.contains("App Pro"), "the email names the product");
    assert!(m.data.contains("multipart/alternative"));
    assert!(m.data.contains("text/plain") && m.data.contains("text/html"));

    let status = app
        .wait_for_email_status(&keys[0], |s| s["status"] == "sent")
        .await;
    assert_eq!(status["status"], "sent", "{status}");
    assert_eq!(status["attempts"], 1);
    assert!(status["sent_at"].is_string());
    let outbox_id = status["id"].as_str().unwrap().replace('-', "");
    assert!(
        m.data.contains(&format!("<{outbox_id}@localhost>")),
        "Message-ID derives from the outbox id"
    );
    assert_eq!(app.count("email_outbox").await, 1);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn the_same_event_ten_times_at_once_mints_once_and_emails_once() {
    let (stripe, smtp) = (FakeStripe::start().await, SmtpServer::start().await);
    let app = spawn_stripe_app(&stripe, Some(&smtp)).await;
    sell_two_seats(&app, &stripe, PAID_SESSION).await;

    let e = event("checkout_session_completed");
    let replies = futures::future::join_all((0..10).map(|_| app.post_webhook(&e))).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let fresh = replies
        .iter()
        .filter(|r| r.body["duplicate"] == false)
        .count();
    assert_eq!(fresh, 1, "exactly one delivery did the work");

    assert_eq!(app.keys_of_session(PAID_SESSION).await.len(), 2);
    assert_eq!(app.count("stripe_events").await, 1);
    assert_eq!(app.count("email_outbox").await, 1);
    let key = &app.keys_of_session(PAID_SESSION).await[0];
    app.wait_for_email_status(key, |s| s["status"] == "sent")
        .await;
    assert_eq!(smtp.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn an_unpaid_session_waits_and_mints_once_whichever_events_come_in_any_order() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_two_seats(&app, &stripe, SEPA_SESSION).await;

    // completed (unpaid) first: nothing yet.
    let body = assert_ok(&app, &event("checkout_session_completed_unpaid")).await;
    assert!(
        body["outcome"]
            .as_str()
            .unwrap()
            .starts_with("awaiting payment"),
        "{body}"
    );
    assert_eq!(app.count("licenses").await, 0);
    // Then the payment succeeds: minted.
    assert_ok(&app, &event("checkout_session_async_payment_succeeded")).await;
    assert_eq!(app.keys_of_session(SEPA_SESSION).await.len(), 2);
    // Stripe redelivers, or another event of the session arrives: nothing more.
    let again = assert_ok(&app, &event("checkout_session_async_payment_succeeded")).await;
    assert!(
        again["outcome"]
            .as_str()
            .unwrap()
            .contains("2 already minted"),
        "{again}"
    );
    assert_eq!(app.count("licenses").await, 2);
    assert_eq!(app.count("email_outbox").await, 1);

    // The reverse order, on a second app: succeeded first, then completed (unpaid),
    // then a completed that says paid and the succeeded event again, all at once.
    let app = spawn_stripe_app(&stripe, None).await;
    app.create_product(json!({ "name": "App Pro", "stripe_price_ids": ["price_pro"] }))
        .await;
    assert_ok(&app, &event("checkout_session_async_payment_succeeded")).await;
    assert_ok(&app, &event("checkout_session_completed_unpaid")).await;
    let paid = with_object(event("checkout_session_completed_unpaid"), |o| {
        o["payment_status"] = json!("paid")
    });
    let succeeded = event("checkout_session_async_payment_succeeded");
    let (a, b) = tokio::join!(app.post_webhook(&paid), app.post_webhook(&succeeded));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(app.keys_of_session(SEPA_SESSION).await.len(), 2);
    assert_eq!(app.count("email_outbox").await, 1);
    assert_eq!(app.count("stripe_events").await, 4);
}

#[tokio::test]
async fn completed_and_succeeded_racing_for_a_fresh_session_mint_it_once() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_two_seats(&app, &stripe, SEPA_SESSION).await;
    let paid = with_object(event("checkout_session_completed_unpaid"), |o| {
        o["payment_status"] = json!("paid")
    });
    let events: Vec<Value> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                event("checkout_session_async_payment_succeeded")
            } else {
                let mut e = paid.clone();
                e["id"] = json!(format!("evt_paid_{i}"));
                e
            }
        })
        .collect();
    let replies = futures::future::join_all(events.iter().map(|e| app.post_webhook(e))).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(app.keys_of_session(SEPA_SESSION).await.len(), 2);
    assert_eq!(app.count("email_outbox").await, 1);
    assert_eq!(app.count("stripe_events").await, 6);
}

#[tokio::test]
async fn bad_stale_or_missing_signatures_are_refused_and_nothing_is_stored() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_two_seats(&app, &stripe, PAID_SESSION).await;
    let body = event("checkout_session_completed").to_string();
    let now = Utc::now().timestamp();
    let sign = |secret: &str, t: i64| licensd::stripe::signature::sign(secret, t, body.as_bytes());

    let cases = [
        ("wrong secret", Some(sign("whsec_wrong", now))),
        ("stale", Some(sign(WEBHOOK_SECRET, now - 301))),
        ("from the future", Some(sign(WEBHOOK_SECRET, now + 400))),
        ("missing", None),
        ("malformed", Some("t=abc,v1=zz".to_owned())),
        (
            "v0 only",
            Some(sign(WEBHOOK_SECRET, now).replace("v1=", "v0=")),
        ),
    ];
    for (what, header) in cases {
        let reply = app.post_webhook_raw(&body, header.as_deref()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "invalid_signature", "{what}");
    }
    // A body changed after signing.
    let tampered = body.replace("buyer@example.com", "thief@example.com");
    let reply = app
        .post_webhook_raw(&tampered, Some(&sign(WEBHOOK_SECRET, now)))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.count("stripe_events").await, 0);
    assert_eq!(app.count("licenses").await, 0);
    assert_eq!(app.count("email_outbox").await, 0);
    assert_eq!(
        stripe.server.received_requests().await.unwrap().len(),
        0,
        "Stripe is not called for a refused event"
    );

    // The genuine one passes.
    let reply = app
        .post_webhook_raw(&body, Some(&sign(WEBHOOK_SECRET, now)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn every_configured_secret_is_accepted_while_rotating() {
    let stripe = FakeStripe::start().await;
    let base = stripe.url();
    let app = spawn_app_with(move |s| {
        s.stripe_webhook_secrets = vec![
            SecretString::from("whsec_old"),
            SecretString::from("whsec_new"),
        ];
        s.stripe_api_key = Some(SecretString::from("sk_test_fake"));
        s.stripe_api_base = base;
    })
    .await;
    let now = Utc::now().timestamp();
    for (i, secret) in ["whsec_old", "whsec_new"].into_iter().enumerate() {
        let body = json!({ "id": format!("evt_rot_{i}"), "object": "event",
                           "type": "customer.created", "data": { "object": {} } })
        .to_string();
        let sig = licensd::stripe::signature::sign(secret, now, body.as_bytes());
        let reply = app.post_webhook_raw(&body, Some(&sig)).await;
        assert_eq!(reply.status, StatusCode::OK, "{secret}: {}", reply.body);
    }
    // Two signatures in one header (Stripe sends both during its own rolling).
    let body = json!({ "id": "evt_rot_2", "type": "customer.created", "data": {} }).to_string();
    let old = licensd::stripe::signature::sign("whsec_retired", now, body.as_bytes());
    let new = licensd::stripe::signature::sign("whsec_new", now, body.as_bytes());
    let header = format!("{old},v1={}", new.split_once("v1=").unwrap().1);
    let reply = app.post_webhook_raw(&body, Some(&header)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.count("stripe_events").await, 3);
}

#[tokio::test]
async fn without_secrets_the_webhook_is_not_configured() {
    let app = crate::helpers::spawn_app().await;
    let reply = app.post_webhook_raw("{}", Some("t=1,v1=00")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "stripe_not_configured");
}

#[tokio::test]
async fn when_the_stripe_api_fails_nothing_is_stored_and_the_redelivery_mints() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    app.create_product(json!({ "name": "App Pro", "stripe_price_ids": ["price_pro"] }))
        .await;
    stripe.fail().await;
    let e = event("checkout_session_completed");
    let reply = app.post_webhook(&e).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.error_code(), "stripe_unavailable");
    assert_eq!(app.count("stripe_events").await, 0);
    assert_eq!(app.count("licenses").await, 0);
    assert_eq!(app.count("email_outbox").await, 0);

    stripe.recover().await;
    stripe
        .line_items(PAID_SESSION, &[line_item("li_1aaa", "price_pro", 1)])
        .await;
    assert_ok(&app, &e).await;
    assert_eq!(app.keys_of_session(PAID_SESSION).await.len(), 1);
    assert_eq!(app.count("email_outbox").await, 1);

    // Unreachable (nothing listening) is the same 503.
    let app = spawn_app_with(|s| {
        s.stripe_webhook_secrets = vec![SecretString::from(WEBHOOK_SECRET)];
        s.stripe_api_key = Some(SecretString::from("sk_test_fake"));
        s.stripe_api_base = "http://127.0.0.1:9".into();
    })
    .await;
    let reply = app.post_webhook(&event("checkout_session_completed")).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.error_code(), "stripe_unavailable");
    assert_eq!(app.count("stripe_events").await, 0);
}

#[tokio::test]
async fn a_full_refund_revokes_and_a_partial_refund_does_not() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_two_seats(&app, &stripe, PAID_SESSION).await;
    assert_ok(&app, &event("checkout_session_completed")).await;
    let keys = app.keys_of_session(PAID_SESSION).await;

    let partial = assert_ok(&app, &event("charge_refunded_partial")).await;
    assert_eq!(partial["outcome"], "ignored: partial refund");
    assert_eq!(app.validate_code(&keys[0]).await, "VALID");

    let full = assert_ok(&app, &event("charge_refunded")).await;
    assert!(
        full["outcome"].as_str().unwrap().starts_with("revoked 2"),
        "{full}"
    );
    for key in &keys {
        assert_eq!(app.validate_code(key).await, "REVOKED");
    }
}

#[tokio::test]
async fn a_dispute_suspends_a_won_one_reinstates_and_a_lost_one_revokes() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    sell_two_seats(&app, &stripe, PAID_SESSION).await;
    assert_ok(&app, &event("checkout_session_completed")).await;
    let key = app.keys_of_session(PAID_SESSION).await.remove(0);

    assert_ok(&app, &event("charge_dispute_created")).await;
    assert_eq!(app.validate_code(&key).await, "SUSPENDED");
    assert_ok(&app, &event("charge_dispute_closed")).await; // won
    assert_eq!(app.validate_code(&key).await, "VALID");

    let warning = with_object(event("charge_dispute_closed"), |o| {
        o["status"] = json!("warning_closed")
    });
    assert_ok(&app, &event("charge_dispute_created")).await;
    assert_eq!(app.validate_code(&key).await, "SUSPENDED");
    assert_ok(&app, &warning).await;
    assert_eq!(app.validate_code(&key).await, "VALID");

    assert_ok(&app, &event("charge_dispute_created")).await;
    let lost = with_object(event("charge_dispute_closed"), |o| {
        o["status"] = json!("lost")
    });
    assert_ok(&app, &lost).await;
    assert_eq!(app.validate_code(&key).await, "REVOKED");
    // A later "won" does not bring back a revoked license.
    assert_ok(&app, &event("charge_dispute_closed")).await;
    assert_eq!(app.validate_code(&key).await, "REVOKED");
}

async fn expires_at(app: &TestApp, key: &str) -> DateTime<Utc> {
    let license = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    license["expires_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no expiry: {license}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn subscriptions_expire_at_period_end_plus_grace_renew_and_end() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    app.create_product(json!({ "name": "App Monthly", "stripe_price_ids": ["price_monthly"] }))
        .await;
    stripe
        .line_items(SUB_SESSION, &[line_item("li_sub", "price_monthly", 1)])
        .await;
    let now = Utc::now().timestamp();
    let first_end = now + 30 * 86_400;
    stripe.subscription(SUBSCRIPTION, first_end).await;

    assert_ok(&app, &event("checkout_session_completed_subscription")).await;
    let key = app.keys_of_session(SUB_SESSION).await.remove(0);
    let license = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    assert_eq!(license["stripe"]["subscription"], SUBSCRIPTION);
    assert_eq!(
        expires_at(&app, &key).await.timestamp(),
        first_end + 3 * 86_400,
        "period end plus the default 3 days of grace"
    );

    // Renewal (current payload shape: parent.subscription_details.subscription).
    let second_end = first_end + 30 * 86_400;
    let renewal = with_object(event("invoice_paid"), |o| {
        o["lines"]["data"][0]["period"] = json!({ "start": first_end, "end": second_end });
    });
    let body = assert_ok(&app, &renewal).await;
    assert!(
        body["outcome"].as_str().unwrap().starts_with("extended 1"),
        "{body}"
    );
    assert_eq!(
        expires_at(&app, &key).await.timestamp(),
        second_end + 3 * 86_400
    );

    // An older invoice (older payload shape: invoice.subscription) never shortens.
    let old = with_object(event("invoice_paid"), |o| {
        o.as_object_mut().unwrap().remove("parent");
        o["subscription"] = json!(SUBSCRIPTION);
        o["lines"]["data"][0]["period"] = json!({ "start": now, "end": first_end });
    });
    let body = assert_ok(&app, &old).await;
    assert!(
        body["outcome"].as_str().unwrap().starts_with("extended 0"),
        "{body}"
    );
    assert_eq!(
        expires_at(&app, &key).await.timestamp(),
        second_end + 3 * 86_400
    );
    // And the older shape extends too.
    let third_end = second_end + 30 * 86_400;
    let old_renewal = with_object(old, |o| {
        o["lines"]["data"][0]["period"] = json!({ "start": second_end, "end": third_end });
    });
    let mut old_renewal = old_renewal;
    old_renewal["id"] = json!("evt_old_shape_renewal");
    assert_ok(&app, &old_renewal).await;
    assert_eq!(
        expires_at(&app, &key).await.timestamp(),
        third_end + 3 * 86_400
    );
    assert_eq!(app.validate_code(&key).await, "VALID");

    // Cancelled: expired now.
    assert_ok(&app, &event("customer_subscription_deleted")).await;
    assert!(expires_at(&app, &key).await <= Utc::now());
    assert_eq!(app.validate_code(&key).await, "EXPIRED");
}

#[tokio::test]
async fn an_unknown_event_type_is_recorded_and_ignored() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    let e = event("customer_updated");
    let body = assert_ok(&app, &e).await;
    assert_eq!(body["outcome"], "ignored: event type not handled");
    let again = assert_ok(&app, &e).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(app.count("stripe_events").await, 1);
    assert_eq!(
        app.count("stripe_events WHERE outcome = 'ignored: event type not handled'")
            .await,
        1
    );
    assert_eq!(app.count("licenses").await, 0);
    // A made-up type with a made-up object shape is fine too.
    let odd = json!({ "id": "evt_odd", "type": "brand.new.thing", "data": { "object": [1, "x"] } });
    assert_ok(&app, &odd).await;
    // An event that is signed but not an event is a 400, and nothing is stored.
    let reply = app
        .post_webhook_raw(
            "[1]",
            Some(&licensd::stripe::signature::sign(
                WEBHOOK_SECRET,
                Utc::now().timestamp(),
                b"[1]",
            )),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_event");
    assert_eq!(app.count("stripe_events").await, 2);
}
