//! The `licensd` binary as a seller uses it from a shell, against a test database.

use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

fn licensd(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_licensd"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("LICENSD_LOG", "warn")
        .env_remove("LICENSD_CONFIG")
        .output()
        .expect("licensd runs")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[tokio::test]
async fn api_key_create_prints_a_token_the_api_accepts_and_stores_only_its_hash() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let out =
        tokio::task::spawn_blocking(move || licensd(&url, &["api-key", "create", "--name", "ci"]))
            .await
            .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on its line: {stdout:?}");
    let token = lines[0];

    let reply = app
        .send(app.client.get(app.url("/v1/products")).bearer_auth(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let token_owned = token.to_owned();
    let stored_plain: i64 = app
        .db(move |conn| {
            use diesel::prelude::*;
            use licensd::db::schema::api_keys::dsl::*;
            api_keys
                .filter(name.eq("ci"))
                .filter(token_sha256.eq(token_owned.as_bytes()))
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored_plain, 0, "the token itself is not stored");
}

#[tokio::test]
async fn product_and_license_commands_match_the_admin_api() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let (product, license) = tokio::task::spawn_blocking(move || {
        let product = stdout_json(&licensd(
            &url,
            &[
                "product",
                "create",
                "--name",
                "Desk App",
                "--max-activations",
                "2",
                "--key-prefix",
                "desk",
                "--price",
                "price_9",
                "--heartbeat-seconds",
                "600",
                "--entitlement",
                "export",
                "--expiry-behavior",
                "maintain_access",
            ],
        ));
        let license = stdout_json(&licensd(
            &url,
            &[
                "license",
                "create",
                "--product",
                "desk-app",
                "--email",
                "ada@example.com",
                "--metadata",
                r#"{"plan":"pro"}"#,
                "--entitlement",
                "sync",
                "--no-email",
            ],
        ));
        (product, license)
    })
    .await
    .unwrap();
    assert_eq!(product["slug"], "desk-app");
    assert_eq!(product["stripe_price_ids"], json!(["price_9"]));
    assert_eq!(product["heartbeat_seconds"], 600);
    assert_eq!(product["entitlements"], json!(["export"]));
    assert_eq!(product["expiry_behavior"], "maintain_access");
    assert_eq!(license["entitlements"], json!(["sync"]));
    assert_eq!(license["heartbeat_seconds"], 600);
    let key = license["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("DESK-"));
    assert_eq!(license["max_activations"], 2);
    assert_eq!(license["metadata"], json!({ "plan": "pro" }));

    assert_eq!(app.activate(&key, "pc").await.status, StatusCode::CREATED);
    let url = app.database_url.clone();
    let lower = key.to_lowercase();
    let shown = tokio::task::spawn_blocking(move || {
        stdout_json(&licensd(&url, &["license", "show", &lower]))
    })
    .await
    .unwrap();
    assert_eq!(shown["key"], key.as_str());
    assert_eq!(shown["activations"][0]["fingerprint"], "pc");

    let url = app.database_url.clone();
    let missing = tokio::task::spawn_blocking(move || {
        licensd(&url, &["license", "show", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"])
    })
    .await
    .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("license not found"));
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["api-key", "create", "--help"],
        vec!["product", "create", "--help"],
        vec!["license", "create", "--help"],
        vec!["license", "show", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_licensd"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: licensd"),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn serve_answers_and_stops_cleanly_on_sigterm() {
    let app = spawn_app().await; // only for its database
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("LICENSD_BIND", format!("127.0.0.1:{port}"))
        .env("LICENSD_WORKERS", "1")
        .env("LICENSD_LOG", "warn")
        .env_remove("LICENSD_CONFIG")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(res) = app.client.get(&url).send().await {
            ready = res.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "licensd serve answered /readyz");

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
