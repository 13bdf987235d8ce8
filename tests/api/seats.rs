//! Seats that heal themselves: heartbeat leases computed from `last_seen_at` (no job
//! sweeps them), reclaimed by `activate` under the seat limit, the heartbeat endpoint,
//! offline files that take a seat, entitlements and what happens at expiry.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

/// An app whose abuse limits do not get in the way of many activations of one key.
async fn app() -> TestApp {
    spawn_app_with(lift_limits).await
}

fn lift_limits(s: &mut licensd::config::Settings) {
    s.rate_limit_requests_per_ip = 100_000;
    s.rate_limit_activations_per_key = 100_000;
}

/// A license of a new product with `seats` and a lease of `heartbeat` seconds.
async fn leased_license(app: &TestApp, seats: i64, heartbeat: i64, extra: Value) -> String {
    let slug = format!("app-{}", uuid::Uuid::new_v4().simple());
    let mut product = json!({
        "name": "App", "slug": slug, "max_activations": seats, "heartbeat_seconds": heartbeat
    });
    product
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    app.create_product(product).await;
    app.create_license(&slug, json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Moves a device's last check-in `seconds` into the past (time passing, no job run).
async fn last_seen_ago(app: &TestApp, fingerprint: &str, seconds: i64) {
    let fp = fingerprint.to_owned();
    app.db(move |conn| {
        use diesel::prelude::*;
        use licensd::db::schema::activations::dsl::*;
        let n = diesel::update(activations.filter(fingerprint.eq(fp)))
            .set(last_seen_at.eq(Utc::now() - Duration::seconds(seconds)))
            .execute(conn)
            .unwrap();
        assert_eq!(n, 1);
    })
    .await;
}

async fn last_seen(app: &TestApp, fingerprint: &str) -> DateTime<Utc> {
    let fp = fingerprint.to_owned();
    app.db(move |conn| {
        use diesel::prelude::*;
        use licensd::db::schema::activations::dsl::*;
        activations
            .filter(fingerprint.eq(fp))
            .select(last_seen_at)
            .first(conn)
            .unwrap()
    })
    .await
}

async fn heartbeat(app: &TestApp, key: &str, fingerprint: &str) -> crate::helpers::Reply {
    app.post(
        "/v1/licenses/heartbeat",
        &json!({ "key": key, "fingerprint": fingerprint }),
    )
    .await
}

async fn code_of(app: &TestApp, key: &str, fingerprint: &str) -> Value {
    let reply = app
        .validate(json!({ "key": key, "fingerprint": fingerprint }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_lease_that_ends_frees_its_seat_without_any_job() {
    let app = app().await;
    let key = leased_license(&app, 1, 60, json!({})).await;
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );
    let refused = app.activate(&key, "desktop").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);

    // The laptop was reinstalled and never checked in again.
    last_seen_ago(&app, "laptop", 61).await;
    let answer = code_of(&app, &key, "laptop").await;
    assert_eq!(answer["code"], "LEASE_EXPIRED", "{answer}");
    assert_eq!(answer["valid"], false);
    assert!(
        last_seen(&app, "laptop").await < Utc::now() - Duration::seconds(60),
        "a validate does not revive a dead device"
    );

    let taken = app.activate(&key, "desktop").await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.body);
    assert_eq!(taken.body["license"]["activations_count"], 1);
    assert!(taken.body["activation"]["lease_expires_at"].is_string());
    let answer = code_of(&app, &key, "laptop").await;
    assert_eq!(
        answer["code"], "NOT_ACTIVATED",
        "its seat went to the desktop"
    );
    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    let devices: Vec<&str> = detail["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["desktop"]);
    assert_eq!(detail["activations_count"], 1);
}

#[tokio::test]
async fn without_a_lease_silent_devices_keep_their_seats() {
    let app = app().await;
    let key = app.license_with_seats(1).await;
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );
    last_seen_ago(&app, "laptop", 400 * 86_400).await;
    assert_eq!(code_of(&app, &key, "laptop").await["code"], "VALID");
    assert_eq!(
        app.activate(&key, "desktop").await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn heartbeat_renews_the_lease_and_names_what_is_wrong() {
    let app = app().await;
    let key = leased_license(&app, 2, 60, json!({})).await;
    app.activate(&key, "laptop").await;
    last_seen_ago(&app, "laptop", 50).await;
    let beat = heartbeat(&app, &key, "laptop").await;
    assert_eq!(beat.status, StatusCode::OK, "{}", beat.body);
    assert_eq!(beat.body["alive"], true);
    let ends: DateTime<Utc> = beat.body["activation"]["lease_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ends > Utc::now() + Duration::seconds(55), "{}", beat.body);
    assert!(last_seen(&app, "laptop").await > Utc::now() - Duration::seconds(5));

    // Silent past its lease, but nobody took the seat yet: the heartbeat keeps it.
    last_seen_ago(&app, "laptop", 120).await;
    assert_eq!(heartbeat(&app, &key, "laptop").await.status, StatusCode::OK);
    assert_eq!(code_of(&app, &key, "laptop").await["code"], "VALID");

    let unknown = heartbeat(&app, &key, "phone").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["code"], "NOT_ACTIVATED");
    assert_eq!(unknown.body["alive"], false);
    let bad_key = heartbeat(&app, "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "laptop").await;
    assert_eq!(bad_key.body["code"], "NOT_FOUND");
    let empty = heartbeat(&app, &key, "").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.error_code(), "invalid_field");

    app.admin_patch(
        &format!("/v1/licenses/{key}"),
        &json!({ "status": "suspended" }),
    )
    .await;
    let suspended = heartbeat(&app, &key, "laptop").await;
    assert_eq!(suspended.status, StatusCode::FORBIDDEN);
    assert_eq!(suspended.body["code"], "SUSPENDED");
}

#[tokio::test]
async fn validate_refreshes_the_lease_well_inside_it() {
    let app = app().await;
    // The configured throttle is 300 s; a 40 s lease must be refreshed far more often.
    assert_eq!(app.settings.last_seen_interval_secs, 300);
    let key = leased_license(&app, 1, 40, json!({})).await;
    app.activate(&key, "laptop").await;
    last_seen_ago(&app, "laptop", 15).await;
    assert_eq!(code_of(&app, &key, "laptop").await["code"], "VALID");
    assert!(
        last_seen(&app, "laptop").await > Utc::now() - Duration::seconds(5),
        "a validate 15 s after the last check-in renews a 40 s lease"
    );
    // Within a quarter of the lease, no write.
    last_seen_ago(&app, "laptop", 5).await;
    code_of(&app, &key, "laptop").await;
    assert!(last_seen(&app, "laptop").await < Utc::now() - Duration::seconds(4));
}

/// Stale, live and new devices on one license, activated at once on two server
/// instances sharing the database: the limit holds, dead seats are reclaimed once.
#[tokio::test]
async fn fifty_concurrent_activations_over_dead_and_live_devices_keep_the_limit() {
    let app = app().await;
    let database_url = app.database_url.clone();
    let other = spawn_app_with(move |s| {
        lift_limits(s);
        s.database_url = secrecy::SecretString::from(database_url);
    })
    .await;
    let key = leased_license(&app, 5, 60, json!({})).await;
    for i in 0..5 {
        assert_eq!(
            app.activate(&key, &format!("old-{i}")).await.status,
            StatusCode::CREATED
        );
    }
    for i in 0..3 {
        last_seen_ago(&app, &format!("old-{i}"), 90).await;
    }
    // Two live devices hold two seats; three dead ones hold seats only until reclaimed.
    let attempts = (0..50).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &other };
        let key = key.clone();
        async move {
            // Some of the dead and live devices come back too.
            let fp = match i {
                0 => "old-0".to_owned(),
                1 => "old-3".to_owned(),
                _ => format!("new-{i}"),
            };
            (fp.clone(), instance.activate(&key, &fp).await)
        }
    });
    let replies = futures::future::join_all(attempts).await;
    for (fp, r) in &replies {
        assert!(
            [StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT].contains(&r.status),
            "{fp}: {} {}",
            r.status,
            r.body
        );
    }
    let status_of = |fp: &str| replies.iter().find(|(f, _)| f == fp).unwrap().1.status;
    assert_eq!(
        status_of("old-3"),
        StatusCode::OK,
        "a live device keeps its seat"
    );
    // The dead old-0 either revived its own row before another activation reclaimed
    // it (200), or came back as a new device like the others (201 or 409).
    let revived = usize::from(status_of("old-0") == StatusCode::OK);
    let created = replies
        .iter()
        .filter(|(_, r)| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created + revived,
        3,
        "three dead seats were free, no more: {:?}",
        replies
            .iter()
            .map(|(f, r)| (f, r.status))
            .collect::<Vec<_>>()
    );

    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    let rows = detail["activations"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{detail}");
    assert_eq!(detail["activations_count"], 5);
    assert_eq!(detail["over_limit"], false);
    let fps: Vec<&str> = rows
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    assert!(
        !fps.contains(&"old-1") && !fps.contains(&"old-2"),
        "{fps:?}"
    );
    assert_eq!(
        app.count("activations").await,
        5,
        "no dead row left behind and no seat taken twice"
    );
}

#[tokio::test]
async fn a_seat_downgrade_leaves_every_device_and_refuses_new_ones() {
    let app = app().await;
    let key = app.license_with_seats(3).await;
    for fp in ["a", "b", "c"] {
        app.activate(&key, fp).await;
    }
    let patched = app
        .admin_patch(
            &format!("/v1/licenses/{key}"),
            &json!({ "max_activations": 1 }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["over_limit"], true);
    for fp in ["a", "b", "c"] {
        assert_eq!(code_of(&app, &key, fp).await["code"], "VALID");
    }
    let refused = app.activate(&key, "d").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["code"], "TOO_MANY_ACTIVATIONS");
    // The buyer chooses which devices go.
    app.deactivate(json!({ "key": key, "fingerprint": "a" }))
        .await;
    app.deactivate(json!({ "key": key, "fingerprint": "b" }))
        .await;
    let answer = code_of(&app, &key, "c").await;
    assert_eq!(answer["license"]["over_limit"], false, "{answer}");
    assert_eq!(app.activate(&key, "d").await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_offline_file_without_a_fingerprint_takes_a_seat() {
    let app = app().await;
    let key = app.license_with_seats(1).await;
    app.activate(&key, "laptop").await;
    // Every seat is taken: no file (before the fix, one was issued anyway).
    let refused = app
        .post("/v1/licenses/checkout", &json!({ "key": key }))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["code"], "TOO_MANY_ACTIVATIONS");
    assert_eq!(refused.body["issued"], false);

    app.deactivate(json!({ "key": key, "fingerprint": "laptop" }))
        .await;
    let file = app
        .post("/v1/licenses/checkout", &json!({ "key": key }))
        .await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.body);
    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    assert_eq!(detail["activations_count"], 1, "the file holds the seat");
    assert_eq!(detail["activations"][0]["name"], "offline license file");
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CONFLICT
    );
    // The seat comes back by deactivating the file's activation.
    let id = detail["activations"][0]["id"].as_str().unwrap();
    let freed = app
        .deactivate(json!({ "key": key, "activation_id": id }))
        .await;
    assert_eq!(freed.status, StatusCode::OK);
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn license_files_never_outlive_the_lease_unless_the_product_allows_offline_use() {
    let app = app().await;
    let key = leased_license(&app, 2, 600, json!({})).await;
    app.activate(&key, "laptop").await;
    let file = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key, "fingerprint": "laptop" }),
        )
        .await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.body);
    let ends: DateTime<Utc> = file.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(ends <= Utc::now() + Duration::seconds(601), "{}", file.body);

    let offline = leased_license(&app, 2, 600, json!({ "offline_allowed": true })).await;
    app.activate(&offline, "desktop").await;
    let file = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": offline, "fingerprint": "desktop", "ttl_days": 7 }),
        )
        .await;
    let ends: DateTime<Utc> = file.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(ends > Utc::now() + Duration::days(6), "{}", file.body);

    // A device whose lease ran out gets no file.
    last_seen_ago(&app, "laptop", 700).await;
    let dead = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key, "fingerprint": "laptop" }),
        )
        .await;
    assert_eq!(dead.body["code"], "LEASE_EXPIRED", "{}", dead.body);
}

/// The issue-9 race: an activate and a deactivate of the same device at once must
/// give correct answers, never NOT_FOUND for a key that exists.
#[tokio::test]
async fn activate_racing_deactivate_of_the_same_device_never_answers_not_found() {
    let app = app().await;
    let key = app.license_with_seats(5).await;
    for round in 0..60 {
        app.activate(&key, "laptop").await;
        let activates = (0..8).map(|_| app.activate(&key, "laptop"));
        let deactivates =
            (0..8).map(|_| app.deactivate(json!({ "key": key, "fingerprint": "laptop" })));
        let (activated, deactivated) = tokio::join!(
            futures::future::join_all(activates),
            futures::future::join_all(deactivates),
        );
        for r in activated {
            assert!(
                [StatusCode::OK, StatusCode::CREATED].contains(&r.status),
                "round {round}: activate answered {} {}",
                r.status,
                r.body
            );
        }
        for r in deactivated {
            assert!(
                r.status == StatusCode::OK || r.body["code"] == "NOT_ACTIVATED",
                "round {round}: deactivate answered {} {}",
                r.status,
                r.body
            );
        }
    }
}

#[tokio::test]
async fn entitlements_come_from_the_product_unless_the_license_overrides_them() {
    let app = app().await;
    let product = app
        .create_product(json!({
            "name": "Editor", "slug": "editor", "max_activations": 2,
            "entitlements": ["export-pdf", "sync", "sync"], "heartbeat_seconds": 3600,
            "expiry_behavior": "maintain_access", "offline_allowed": true
        }))
        .await;
    assert_eq!(product["entitlements"], json!(["export-pdf", "sync"]));
    assert_eq!(product["heartbeat_seconds"], 3600);
    assert_eq!(product["expiry_behavior"], "maintain_access");
    assert_eq!(product["offline_allowed"], true);
    let plain = app.create_license("editor", json!({})).await;
    assert_eq!(plain["entitlements"], json!(["export-pdf", "sync"]));
    let custom = app
        .create_license(
            "editor",
            json!({ "entitlements": ["sync"], "heartbeat_seconds": 0 }),
        )
        .await;
    assert_eq!(custom["heartbeat_seconds"], Value::Null);
    let key = custom["key"].as_str().unwrap();
    let validated = app.validate(json!({ "key": key })).await.body;
    assert_eq!(validated["license"]["entitlements"], json!(["sync"]));
    let activated = app.activate(key, "laptop").await.body;
    assert_eq!(activated["license"]["entitlements"], json!(["sync"]));
    let file = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key, "fingerprint": "laptop" }),
        )
        .await;
    let text = file.body["license_file"].as_str().unwrap();
    let public = app.public_key().await;
    let payload = licensd_client::verify_license_file(&public, text, Utc::now().timestamp())
        .expect("a valid file");
    assert_eq!(payload.license["entitlements"], json!(["sync"]));

    // Back to the product's list, and a PATCH of the product's.
    let reset = app
        .admin_patch(
            &format!("/v1/licenses/{key}"),
            &json!({ "entitlements": null }),
        )
        .await;
    assert_eq!(reset.body["entitlements"], json!(["export-pdf", "sync"]));
    let patched = app
        .admin_patch(
            "/v1/products/editor",
            &json!({ "entitlements": ["beta"], "heartbeat_seconds": null, "offline_allowed": false }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["entitlements"], json!(["beta"]));
    assert_eq!(patched.body["heartbeat_seconds"], Value::Null);
    let shown = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    assert_eq!(shown["entitlements"], json!(["beta"]));
}

#[tokio::test]
async fn bad_seat_settings_are_422s_naming_the_field_and_change_nothing() {
    let app = app().await;
    for (body, field) in [
        (
            json!({ "name": "A", "heartbeat_seconds": 5 }),
            "heartbeat_seconds",
        ),
        (
            json!({ "name": "A", "heartbeat_seconds": 0 }),
            "heartbeat_seconds",
        ),
        (
            json!({ "name": "A", "entitlements": ["no spaces"] }),
            "entitlements",
        ),
        (json!({ "name": "A", "entitlements": [""] }), "entitlements"),
        (
            json!({ "name": "A", "expiry_behavior": "forever" }),
            "expiry_behavior",
        ),
    ] {
        let r = app.admin_post("/v1/products", &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            r.body
        );
    }
    assert_eq!(app.count("products").await, 0);
    let key = app.license_with_seats(1).await;
    let r = app
        .admin_patch(
            &format!("/v1/licenses/{key}"),
            &json!({ "heartbeat_seconds": -1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn at_expiry_maintain_access_keeps_the_paid_versions_and_revoke_access_refuses() {
    let app = app().await;
    let expired = (Utc::now() - Duration::days(2)).to_rfc3339();
    for behaviour in ["maintain_access", "revoke_access"] {
        let slug = behaviour.replace('_', "-");
        app.create_product(json!({
            "name": behaviour, "slug": slug, "max_activations": 2, "expiry_behavior": behaviour
        }))
        .await;
        let key = app
            .create_license(&slug, json!({ "expires_at": expired }))
            .await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let answer = app.validate(json!({ "key": key })).await.body;
        assert_eq!(answer["code"], "EXPIRED");
        assert_eq!(answer["valid"], false);
        let activated = app.activate(&key, "new-laptop").await;
        if behaviour == "maintain_access" {
            let until: DateTime<Utc> = answer["license"]["maintain_access_until"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let expired_at: DateTime<Utc> = expired.parse().unwrap();
            assert_eq!(until.timestamp(), expired_at.timestamp());
            assert_eq!(activated.status, StatusCode::CREATED, "{}", activated.body);
        } else {
            assert!(answer["license"].get("maintain_access_until").is_none());
            assert_eq!(activated.status, StatusCode::FORBIDDEN);
            assert_eq!(activated.body["code"], "EXPIRED");
        }
    }
}
