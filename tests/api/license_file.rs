//! Offline license files: issued for a good key, verified with only the public key,
//! refused for a bad one, worthless once expired or changed.

use chrono::{DateTime, Duration, Utc};
use licensd_client::{verify_license_file, Error};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

fn at(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_license_file_verifies_offline_and_is_bound_to_the_device() {
    let app = spawn_app().await;
    let pk = app.public_key().await;
    let key = app.license_with_seats(2).await;
    assert_eq!(
        app.activate(&key, "laptop").await.status,
        StatusCode::CREATED
    );

    let reply = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key.to_lowercase(), "fingerprint": "laptop" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let file = reply.body["license_file"].as_str().unwrap();
    assert!(file.starts_with("-----BEGIN LICENSD LICENSE FILE-----\n"));
    let expires = at(&reply.body["expires_at"]);
    let days = (expires - Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&days), "default 30 days, got {days}");

    let now = Utc::now().timestamp();
    let payload = verify_license_file(&pk, file, now).unwrap();
    assert_eq!(payload.license["key"], key);
    assert_eq!(payload.license["status"], "active");
    assert_eq!(payload.fingerprint(), Some("laptop"));
    assert_eq!(payload.expires_at, expires.timestamp());
    assert_eq!(payload.key_id, pk.key_id());

    // Expired: the moment the validity ends, and after.
    assert!(matches!(
        verify_license_file(&pk, file, payload.expires_at),
        Err(Error::Expired { .. })
    ));
    // Tampered: one character of the payload changed.
    let lines: Vec<&str> = file.lines().collect();
    let mut changed = lines[1].as_bytes().to_vec();
    changed[20] = if changed[20] == b'x' { b'y' } else { b'x' };
    let tampered = file.replacen(lines[1], std::str::from_utf8(&changed).unwrap(), 1);
    assert!(verify_license_file(&pk, &tampered, now).is_err());
    // A payload swapped in from elsewhere (e.g. a later expiry) does not carry the signature.
    let forged = file.replacen(lines[1], &lines[1].chars().rev().collect::<String>(), 1);
    assert!(verify_license_file(&pk, &forged, now).is_err());
}

#[tokio::test]
async fn the_cli_verifies_a_license_file() {
    let app = spawn_app().await;
    let pk = app.public_key().await;
    let key = app.license_with_seats(1).await;
    let reply = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key, "ttl_days": 1 }),
        )
        .await;
    let file = reply.body["license_file"].as_str().unwrap().to_owned();
    let dir = crate::helpers::tempdir::TempDir::new();
    let good = dir.path().join("good.lic");
    std::fs::write(&good, &file).unwrap();
    let bad = dir.path().join("bad.lic");
    std::fs::write(&bad, file.replacen('A', "B", 1).replacen('Q', "R", 1)).unwrap();
    let run = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
            .arg("verify")
            .arg(path)
            .args(["--public-key", &pk.to_base64()])
            .env("LICENSD_LOG", "error")
            .output()
            .unwrap()
    };
    let out = run(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["license"]["key"], key);
    let out = run(&bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
}

#[tokio::test]
async fn the_file_never_outlives_the_license_and_ttl_is_bounded() {
    let app = spawn_app().await;
    let slug = format!("app-{}", uuid::Uuid::new_v4().simple());
    app.create_product(json!({ "name": "App", "slug": slug }))
        .await;
    let ends = Utc::now() + Duration::days(5);
    let license = app
        .create_license(&slug, json!({ "expires_at": ends.to_rfc3339() }))
        .await;
    let key = license["key"].as_str().unwrap();
    let reply = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key, "ttl_days": 60 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(at(&reply.body["expires_at"]).timestamp(), ends.timestamp());

    let max = app.settings.license_file_max_ttl_days;
    for ttl in [json!(0), json!(max + 1), json!(-3)] {
        let reply = app
            .post(
                "/v1/licenses/checkout",
                &json!({ "key": key, "ttl_days": ttl }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{ttl}");
        assert!(reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ttl_days"));
    }
}

#[tokio::test]
async fn no_file_for_a_key_that_is_unknown_revoked_suspended_expired_or_not_activated() {
    let app = spawn_app().await;
    let refused = |status: StatusCode, code: &'static str| (status, code);
    let unknown = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA" }),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str().unwrap()),
        refused(StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    assert_eq!(unknown.body["issued"], false);

    let key = app.license_with_seats(1).await;
    let reply = app
        .post(
            "/v1/licenses/checkout",
            &json!({ "key": key, "fingerprint": "never-activated" }),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str().unwrap()),
        refused(StatusCode::NOT_FOUND, "NOT_ACTIVATED")
    );

    for (change, code) in [
        (json!({ "status": "suspended" }), "SUSPENDED"),
        (json!({ "status": "revoked" }), "REVOKED"),
        (
            json!({ "status": "active", "expires_at": (Utc::now() - Duration::days(1)).to_rfc3339() }),
            "EXPIRED",
        ),
    ] {
        let patched = app
            .admin_patch(&format!("/v1/licenses/{key}"), &change)
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        let reply = app
            .post("/v1/licenses/checkout", &json!({ "key": key }))
            .await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str().unwrap()),
            refused(StatusCode::FORBIDDEN, code)
        );
        assert!(reply.body.get("license_file").is_none());
    }
}
