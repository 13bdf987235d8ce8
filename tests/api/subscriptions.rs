//! A subscription's whole life as Stripe runs it: quantity is seats, a price change
//! moves the license to another product, past-due grace, pause and resume, trials,
//! cancel at period end, and the same end state whatever order the events arrive in.
//! Events are the Stripe-shaped fixtures in tests/fixtures/stripe/, signed as Stripe
//! signs them; the Stripe API is a local fake serving the subscription.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event, line_item, spawn_stripe_app, FakeStripe, TestApp};

const DAY: i64 = 86_400;

/// Two products: Monthly (2 devices per seat) and Pro (5 devices per seat).
async fn products(app: &TestApp) {
    app.create_product(json!({
        "name": "App Monthly", "slug": "monthly", "stripe_price_ids": ["price_monthly"],
        "max_activations": 2
    }))
    .await;
    app.create_product(json!({
        "name": "App Pro", "slug": "pro", "stripe_price_ids": ["price_pro"], "max_activations": 5
    }))
    .await;
}

/// A subscription object, Stripe-shaped (from the fixture), in the given state.
fn subscription(sub: &str, status: &str, price: &str, quantity: i64, period: (i64, i64)) -> Value {
    let mut o = crate::helpers::fixture("customer_subscription_updated")["data"]["object"].clone();
    o["id"] = json!(sub);
    o["status"] = json!(status);
    let item = &mut o["items"]["data"][0];
    item["subscription"] = json!(sub);
    item["price"]["id"] = json!(price);
    item["quantity"] = json!(quantity);
    item["current_period_start"] = json!(period.0);
    item["current_period_end"] = json!(period.1);
    o
}

/// A `customer.subscription.*` event carrying `object`, created at `created`.
fn sub_event(kind: &str, created: i64, object: Value) -> Value {
    let mut e = event("customer_subscription_updated");
    e["type"] = json!(kind);
    e["created"] = json!(created);
    e["data"]["object"] = object;
    e
}

/// An `invoice.paid` or `invoice.payment_failed` of `sub` for the period ending `end`.
fn invoice_event(fixture: &str, sub: &str, created: i64, period: (i64, i64)) -> Value {
    let mut e = event(fixture);
    e["created"] = json!(created);
    let o = &mut e["data"]["object"];
    o["parent"]["subscription_details"]["subscription"] = json!(sub);
    o["lines"]["data"][0]["period"] = json!({ "start": period.0, "end": period.1 });
    e
}

/// Serves `object` as the subscription at `GET /v1/subscriptions/{id}` (what the API
/// shows now), and mints its license from a checkout of `quantity` x `price`.
async fn subscribe(
    app: &TestApp,
    stripe: &FakeStripe,
    object: &Value,
    price: &str,
    quantity: u64,
) -> String {
    let checkout = stripe_knows(stripe, object, price, quantity).await;
    deliver(app, &checkout).await;
    key_of(app, object["id"].as_str().unwrap()).await
}

async fn key_of(app: &TestApp, sub: &str) -> String {
    let keys = app.keys_of_session(&format!("cs_test_{sub}")).await;
    assert_eq!(keys.len(), 1, "one license per subscription line item");
    keys[0].clone()
}

/// Serves `object` as the subscription and a checkout session of `quantity` x `price`
/// for it; returns that session's `checkout.session.completed` event.
async fn stripe_knows(stripe: &FakeStripe, object: &Value, price: &str, quantity: u64) -> Value {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let sub = object["id"].as_str().unwrap();
    let session = format!("cs_test_{sub}");
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{sub}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(object))
        .mount(&stripe.server)
        .await;
    stripe
        .line_items(
            &session,
            &[line_item(&format!("li_{sub}"), price, quantity)],
        )
        .await;
    let mut checkout = event("checkout_session_completed_subscription");
    checkout["data"]["object"]["id"] = json!(session);
    checkout["data"]["object"]["subscription"] = json!(sub);
    checkout
}

async fn deliver(app: &TestApp, e: &Value) -> Value {
    let reply = app.post_webhook(e).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn license(app: &TestApp, key: &str) -> Value {
    app.admin_get(&format!("/v1/licenses/{key}")).await.body
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn quantity_is_seats_and_a_downgrade_keeps_every_device_but_refuses_new_ones() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    let now = Utc::now().timestamp();
    let period = (now - DAY, now + 29 * DAY);
    let sub = subscription("sub_seats", "active", "price_monthly", 3, period);
    let key = subscribe(&app, &stripe, &sub, "price_monthly", 3).await;
    assert_eq!(
        license(&app, &key).await["max_activations"],
        6,
        "3 seats x 2 devices"
    );
    for i in 0..6 {
        assert_eq!(
            app.activate(&key, &format!("dev-{i}")).await.status,
            StatusCode::CREATED
        );
    }
    // Down to one seat: every device stays, the license says it is over its limit.
    let down = subscription("sub_seats", "active", "price_monthly", 1, period);
    let outcome = deliver(&app, &sub_event("customer.subscription.updated", now, down)).await;
    assert!(
        outcome["outcome"]
            .as_str()
            .unwrap()
            .contains("1 license(s) updated"),
        "{outcome}"
    );
    let l = license(&app, &key).await;
    assert_eq!(l["max_activations"], 2);
    assert_eq!(l["over_limit"], true);
    assert_eq!(l["activations"].as_array().unwrap().len(), 6);
    for i in 0..6 {
        let v = app
            .validate(json!({ "key": key, "fingerprint": format!("dev-{i}") }))
            .await;
        assert_eq!(v.body["code"], "VALID");
    }
    let refused = app.activate(&key, "dev-new").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    // Back up to four seats: room again.
    let up = subscription("sub_seats", "active", "price_monthly", 4, period);
    deliver(
        &app,
        &sub_event("customer.subscription.updated", now + 1, up),
    )
    .await;
    assert_eq!(license(&app, &key).await["over_limit"], false);
    assert_eq!(
        app.activate(&key, "dev-new").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_price_change_moves_the_license_to_that_product_keeping_key_and_devices() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    let now = Utc::now().timestamp();
    let period = (now - DAY, now + 29 * DAY);
    let sub = subscription("sub_upgrade", "active", "price_monthly", 1, period);
    let key = subscribe(&app, &stripe, &sub, "price_monthly", 1).await;
    app.activate(&key, "laptop").await;
    let upgraded = subscription("sub_upgrade", "active", "price_pro", 1, period);
    deliver(
        &app,
        &sub_event("customer.subscription.updated", now, upgraded),
    )
    .await;
    let l = license(&app, &key).await;
    assert_eq!(l["product"]["slug"], "pro");
    assert_eq!(l["key"], key.as_str());
    assert_eq!(l["max_activations"], 5);
    assert_eq!(l["activations"][0]["fingerprint"], "laptop");
    let v = app
        .validate(json!({ "key": key, "fingerprint": "laptop", "product": "pro" }))
        .await;
    assert_eq!(v.body["code"], "VALID");
}

#[tokio::test]
async fn past_due_keeps_working_through_the_grace_then_validate_says_past_due() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    assert_eq!(app.settings.past_due_grace_days, 7);
    let now = Utc::now().timestamp();
    // The API shows the subscription past due since a day ago.
    let due_recently = subscription(
        "sub_due",
        "past_due",
        "price_monthly",
        1,
        (now - DAY, now + 29 * DAY),
    );
    let key = subscribe(&app, &stripe, &due_recently, "price_monthly", 1).await;
    let failed = invoice_event(
        "invoice_payment_failed",
        "sub_due",
        now,
        (now - DAY, now + 29 * DAY),
    );
    deliver(&app, &failed).await;
    let l = license(&app, &key).await;
    assert_eq!(l["subscription"]["status"], "past_due");
    assert_eq!(
        time(&l["subscription"]["past_due_until"]).timestamp(),
        now - DAY + 7 * DAY
    );
    assert_eq!(app.validate_code(&key).await, "VALID", "within the grace");

    // Eight days unpaid: past the grace.
    let overdue = subscription(
        "sub_due",
        "unpaid",
        "price_monthly",
        1,
        (now - 8 * DAY, now + 22 * DAY),
    );
    deliver(
        &app,
        &sub_event("customer.subscription.updated", now + 10, overdue),
    )
    .await;
    let answer = app.validate(json!({ "key": key })).await.body;
    assert_eq!(answer["code"], "PAST_DUE", "{answer}");
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["license"]["status"], "past_due");
    assert_eq!(app.activate(&key, "laptop").await.body["code"], "PAST_DUE");

    // Paid at last.
    let paid = subscription(
        "sub_due",
        "active",
        "price_monthly",
        1,
        (now - 8 * DAY, now + 22 * DAY),
    );
    deliver(
        &app,
        &sub_event("customer.subscription.updated", now + 20, paid),
    )
    .await;
    assert_eq!(app.validate_code(&key).await, "VALID");
    assert!(license(&app, &key).await["subscription"]
        .get("past_due_until")
        .is_none());
}

#[tokio::test]
async fn paused_suspends_and_resumed_reinstates() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    let now = Utc::now().timestamp();
    let period = (now - DAY, now + 29 * DAY);
    let sub = subscription("sub_pause", "active", "price_monthly", 1, period);
    let key = subscribe(&app, &stripe, &sub, "price_monthly", 1).await;
    let paused = subscription("sub_pause", "paused", "price_monthly", 1, period);
    deliver(
        &app,
        &sub_event("customer.subscription.paused", now, paused),
    )
    .await;
    assert_eq!(app.validate_code(&key).await, "SUSPENDED");
    assert_eq!(license(&app, &key).await["status"], "suspended");
    let resumed = subscription("sub_pause", "active", "price_monthly", 1, period);
    deliver(
        &app,
        &sub_event("customer.subscription.resumed", now + 5, resumed),
    )
    .await;
    assert_eq!(app.validate_code(&key).await, "VALID");
    // A seller's own suspension is not lifted by a resume.
    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "suspended" }),
    )
    .await;
    let again = subscription("sub_pause", "active", "price_monthly", 1, period);
    deliver(
        &app,
        &sub_event("customer.subscription.resumed", now + 9, again),
    )
    .await;
    assert_eq!(app.validate_code(&key).await, "SUSPENDED");
}

#[tokio::test]
async fn a_trial_expires_at_its_end_unless_paid() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    let now = Utc::now().timestamp();
    let trial_end = now - 3600;
    let mut trial = subscription(
        "sub_trial",
        "trialing",
        "price_monthly",
        1,
        (now - 14 * DAY, trial_end),
    );
    trial["trial_end"] = json!(trial_end);
    let key = subscribe(&app, &stripe, &trial, "price_monthly", 1).await;
    deliver(
        &app,
        &sub_event("customer.subscription.created", now - 14 * DAY, trial),
    )
    .await;
    assert_eq!(
        time(&license(&app, &key).await["expires_at"]).timestamp(),
        trial_end
    );
    assert_eq!(
        app.validate_code(&key).await,
        "EXPIRED",
        "the trial ended unpaid"
    );

    // The first invoice is paid: the license runs for the paid period.
    let period = (trial_end, trial_end + 30 * DAY);
    deliver(
        &app,
        &invoice_event("invoice_paid", "sub_trial", now, period),
    )
    .await;
    let active = subscription("sub_trial", "active", "price_monthly", 1, period);
    deliver(
        &app,
        &sub_event("customer.subscription.updated", now, active),
    )
    .await;
    assert_eq!(app.validate_code(&key).await, "VALID");
    assert_eq!(
        time(&license(&app, &key).await["expires_at"]).timestamp(),
        period.1 + 3 * DAY
    );
}

#[tokio::test]
async fn cancel_at_period_end_is_shown_and_the_license_ends_at_the_period_end() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    let now = Utc::now().timestamp();
    let period = (now - 29 * DAY, now + DAY);
    let sub = subscription("sub_cancel", "active", "price_monthly", 1, period);
    let key = subscribe(&app, &stripe, &sub, "price_monthly", 1).await;
    let mut cancelling = subscription("sub_cancel", "active", "price_monthly", 1, period);
    cancelling["cancel_at_period_end"] = json!(true);
    cancelling["cancel_at"] = json!(period.1);
    deliver(
        &app,
        &sub_event("customer.subscription.updated", now, cancelling),
    )
    .await;
    let l = license(&app, &key).await;
    assert_eq!(l["subscription"]["cancel_at_period_end"], true);
    assert_eq!(time(&l["expires_at"]).timestamp(), period.1 + 3 * DAY);
    let public = app.validate(json!({ "key": key })).await.body;
    assert_eq!(
        public["license"]["subscription"]["cancel_at_period_end"],
        true
    );

    // At the period end Stripe deletes it: the license ends then, not when delivered.
    let mut ended = subscription("sub_cancel", "canceled", "price_monthly", 1, period);
    ended["ended_at"] = json!(period.1 - 2 * DAY);
    deliver(
        &app,
        &sub_event("customer.subscription.deleted", now + 10, ended),
    )
    .await;
    assert_eq!(
        time(&license(&app, &key).await["expires_at"]).timestamp(),
        period.1 - 2 * DAY
    );
    assert_eq!(app.validate_code(&key).await, "EXPIRED");
}

/// A tiny deterministic shuffle (no extra crate): Fisher-Yates over an LCG.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    for i in (1..v.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
    v
}

/// What a license shows that its subscription decides.
async fn end_state(app: &TestApp, key: &str) -> Value {
    let l = license(app, key).await;
    json!({
        "product": l["product"]["slug"], "status": l["status"], "expires_at": l["expires_at"],
        "max_activations": l["max_activations"], "subscription": l["subscription"],
        "code": app.validate_code(key).await,
    })
}

/// The events of one subscription's life, `created` in order, for subscription `sub`;
/// `canceled` ends it, otherwise it ends upgraded and cancelling at the period end.
/// `read_api`: a failed invoice among them makes licensd read the subscription.
fn life(sub: &str, t0: i64, canceled: bool, read_api: bool) -> (Vec<Value>, Value) {
    let trial_end = t0 + 7 * DAY;
    let p1 = (trial_end, trial_end + 30 * DAY);
    let p2 = (p1.1, p1.1 + 30 * DAY);
    let mut trial = subscription(sub, "trialing", "price_monthly", 1, (t0, trial_end));
    trial["trial_end"] = json!(trial_end);
    let mut last = if canceled {
        let mut o = subscription(sub, "canceled", "price_monthly", 3, p2);
        o["ended_at"] = json!(p1.1 + 10 * DAY);
        o
    } else {
        let mut o = subscription(sub, "active", "price_pro", 2, p2);
        o["cancel_at_period_end"] = json!(true);
        o
    };
    last["trial_end"] = json!(trial_end);
    let last_kind = if canceled {
        "customer.subscription.deleted"
    } else {
        "customer.subscription.updated"
    };
    let mut events = vec![
        sub_event("customer.subscription.created", t0, trial),
        invoice_event("invoice_paid", sub, t0, (t0, trial_end)),
        sub_event(
            "customer.subscription.updated",
            trial_end,
            subscription(sub, "active", "price_monthly", 3, p1),
        ),
        invoice_event("invoice_paid", sub, trial_end, p1),
        sub_event(
            "customer.subscription.updated",
            p1.1,
            subscription(sub, "past_due", "price_monthly", 3, p2),
        ),
        invoice_event("invoice_payment_failed", sub, p1.1, p2),
        invoice_event("invoice_paid", sub, p1.1 + 2 * DAY, p2),
        sub_event(last_kind, p1.1 + 10 * DAY, last.clone()),
    ];
    if !read_api {
        events.retain(|e| e["type"] != "invoice.payment_failed");
    }
    (events, last)
}

#[tokio::test]
async fn shuffled_deliveries_of_a_subscription_life_end_in_the_same_state() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    products(&app).await;
    // A subscription that started 50 days ago: its events lie in the past, as delivered late.
    let t0 = Utc::now().timestamp() - 50 * DAY;
    for (canceled, read_api) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut states = Vec::new();
        for order in 0..6u64 {
            let sub = format!("sub_life_{canceled}_{read_api}_{order}");
            let (events, latest) = life(&sub, t0, canceled, read_api);
            // The API shows the subscription as it is now: its latest state. The checkout
            // is one more event in the shuffle: subscription events may come before it.
            let mut events = events;
            events.insert(0, stripe_knows(&stripe, &latest, "price_monthly", 1).await);
            let deliveries = match order {
                0 => events.clone(),
                1 => events.iter().rev().cloned().collect(),
                seed => shuffled(&events, seed),
            };
            for e in &deliveries {
                deliver(&app, e).await;
            }
            let key = key_of(&app, &sub).await;
            // Stripe redelivers some events: nothing changes.
            deliver(&app, &deliveries[0]).await;
            states.push(end_state(&app, &key).await);
        }
        for (i, s) in states.iter().enumerate() {
            assert_eq!(
                s, &states[0],
                "order {i} ended elsewhere (canceled: {canceled}, read_api: {read_api})"
            );
        }
        let s = &states[0];
        if canceled {
            assert_eq!(s["code"], "EXPIRED", "{s}");
            assert_eq!(s["subscription"]["status"], "canceled");
            assert_eq!(time(&s["expires_at"]).timestamp(), t0 + 47 * DAY);
        } else {
            assert_eq!(s["code"], "VALID", "{s}");
            assert_eq!(s["product"], "pro");
            assert_eq!(s["max_activations"], 10, "2 seats x 5 devices");
            assert_eq!(s["subscription"]["cancel_at_period_end"], true);
            assert_eq!(time(&s["expires_at"]).timestamp(), t0 + 67 * DAY + 3 * DAY);
        }
    }
}
