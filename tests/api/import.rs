//! `licensd import`: each preset's sample file (tests/fixtures/import/, built from the
//! formats' documentation), re-runs, dry runs, bad rows; imported keys validate and
//! activate, and their devices count.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, tempdir, TestApp};

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/import/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

struct Run {
    ok: bool,
    report: Value,
    stderr: String,
}

fn import(app: &TestApp, args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .arg("import")
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("LICENSD_LOG", "error")
        .env("LICENSD_MAIL_DIR", app.mail_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stderr}"));
    Run {
        ok: out.status.success(),
        report,
        stderr,
    }
}

async fn product(app: &TestApp, seats: i64) {
    app.create_product(json!({ "name": "Moved", "slug": "moved", "max_activations": seats }))
        .await;
}

async fn license(app: &TestApp, key: &str) -> Value {
    let reply = app
        .admin_get(&format!("/v1/licenses/{}", urlencode(key)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{key}: {}", reply.body);
    reply.body
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_csv_keeps_keys_status_expiry_seats_customers_and_devices() {
    let app = spawn_app().await;
    product(&app, 1).await;
    let run = import(&app, &[&fixture("generic.csv"), "--product", "moved"]);
    // Two bad rows: reported with their lines and reasons, and nothing of them written.
    assert!(!run.ok);
    assert!(
        run.stderr.contains("line 4: email `not-an-email`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("line 5: key must be"), "{}", run.stderr);
    assert_eq!(run.report["rows"], 5);
    assert_eq!(run.report["created"], 3);
    assert_eq!(run.report["bad_rows"], 2);
    assert_eq!(run.report["activations_created"], 2);
    assert_eq!(run.report["emails_queued"], 0);
    assert_eq!(app.count("licenses").await, 3);
    assert_eq!(
        app.count("email_outbox").await,
        0,
        "no email without --send-email"
    );

    // The original key string is kept; look-ups ignore case and surrounding space.
    let ann = license(&app, "legacy-key-0001").await;
    assert_eq!(ann["key"], "legacy-key-0001");
    assert_eq!(ann["source"], "import");
    assert_eq!(ann["max_activations"], 3);
    assert_eq!(ann["customer_name"], "Ann Example");
    assert_eq!(ann["activations_count"], 2);
    let reply = app
        .validate(json!({ "key": "  LEGACY-key-0001 ", "fingerprint": "laptop-ann" }))
        .await;
    assert_eq!(reply.body["code"], "VALID", "{}", reply.body);
    // Its imported devices count: one seat is left of three.
    assert_eq!(
        app.activate("legacy-key-0001", "new-1").await.status,
        StatusCode::CREATED
    );
    let full = app.activate("legacy-key-0001", "new-2").await;
    assert_eq!(full.status, StatusCode::CONFLICT);
    assert_eq!(full.body["code"], "TOO_MANY_ACTIVATIONS");

    let bob = license(&app, "legacy-key-0002").await;
    assert_eq!(bob["status"], "suspended");
    assert_eq!(bob["expires_at"], "2031-01-31T00:00:00Z");
    let eve = license(&app, "LEGACY-KEY-0005").await;
    assert_eq!(eve["status"], "expired");
    assert_eq!(eve["max_activations"], Value::Null);
    assert_eq!(app.validate_code("legacy-key-0005").await, "EXPIRED");

    // The same file again changes nothing (the bad rows are still reported).
    let again = import(&app, &[&fixture("generic.csv"), "--product", "moved"]);
    assert_eq!(again.report["created"], 0);
    assert_eq!(again.report["unchanged"], 3);
    assert_eq!(again.report["bad_rows"], 2);
    assert_eq!(app.count("licenses").await, 3);
    assert_eq!(app.count("activations").await, 3);
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing_and_send_email_queues_mail() {
    let app = spawn_app().await;
    product(&app, 2).await;
    let file = fixture("lemonsqueezy.csv");
    let dry = import(
        &app,
        &[
            &file,
            "--from",
            "lemonsqueezy",
            "--product",
            "moved",
            "--dry-run",
        ],
    );
    assert!(dry.ok, "{}", dry.stderr);
    assert_eq!(dry.report["dry_run"], true);
    assert_eq!(dry.report["created"], 3);
    assert_eq!(app.count("licenses").await, 0);

    let run = import(
        &app,
        &[
            &file,
            "--from",
            "lemonsqueezy",
            "--product",
            "moved",
            "--send-email",
        ],
    );
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.report["created"], 3);
    assert_eq!(run.report["emails_queued"], 3);
    assert_eq!(app.count("email_outbox").await, 3);
    let darlene = license(&app, "80E15DB5-C796-436B-850C-8F9C98A48ABE").await;
    assert_eq!(darlene["key"], "80e15db5-c796-436b-850c-8f9c98a48abe");
    assert_eq!(darlene["email"], "darlene@example.com");
    assert_eq!(darlene["max_activations"], 5);
    assert_eq!(
        license(&app, "c2d7f0a1-9e4b-4c5d-8a6f-1b2c3d4e5f60").await["status"],
        "suspended"
    );
    assert_eq!(
        license(&app, "0b8e2b4e-3a8d-4a0e-9a47-4d1c41e3a2f1").await["expires_at"],
        "2030-06-30T00:00:00Z"
    );
    let again = import(
        &app,
        &[
            &file,
            "--from",
            "lemonsqueezy",
            "--product",
            "moved",
            "--send-email",
        ],
    );
    assert_eq!(again.report["unchanged"], 3);
    assert_eq!(again.report["emails_queued"], 0);
    assert_eq!(app.count("email_outbox").await, 3);
}

#[tokio::test]
async fn keygen_licenses_come_with_their_users_and_machines() {
    let app = spawn_app().await;
    product(&app, 1).await;
    let run = import(
        &app,
        &[
            &fixture("keygen-licenses.json"),
            "--from",
            "keygen",
            "--machines",
            &fixture("keygen-machines.json"),
            "--product",
            "moved",
        ],
    );
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.report["created"], 2);
    assert_eq!(run.report["activations_created"], 1);
    let pro = license(&app, "C1B6DE-39A6E3-DE1529-8559A0-4AF593-V3").await;
    assert_eq!(pro["email"], "hal@example.com");
    assert_eq!(pro["customer_name"], "Hal Example");
    assert_eq!(pro["max_activations"], 2);
    assert_eq!(pro["expires_at"], "2031-05-01T00:00:00Z");
    assert_eq!(pro["activations"][0]["name"], "Office Mac");
    let legacy = license(&app, "key/Z2LFc2yU9sB4ZKx8PfRhG3vW").await;
    assert_eq!(legacy["status"], "suspended");
    assert_eq!(legacy["email"], "gil@example.com");
    // The imported machine is a device of the license: validate sees it, and it takes a seat.
    let reply = app
        .validate(json!({ "key": "c1b6de-39a6e3-de1529-8559a0-4af593-v3", "fingerprint": "4d:Eq:UV:D3:XZ:tL:WN:Bz:mA:Eg:E6:Mk:YX:dK:NC" }))
        .await;
    assert_eq!(reply.body["code"], "VALID");
    assert_eq!(
        app.activate("C1B6DE-39A6E3-DE1529-8559A0-4AF593-V3", "second")
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.activate("C1B6DE-39A6E3-DE1529-8559A0-4AF593-V3", "third")
            .await
            .status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn keymint_sellapp_checkoutkeys_and_wckm_files_import() {
    let app = spawn_app().await;
    product(&app, 1).await;
    let cases: [(&str, &str, &[&str], u64); 4] = [
        ("keymint", "keymint.csv", &[], 2),
        ("sellapp", "sellapp.csv", &[], 2),
        ("checkoutkeys", "checkoutkeys.csv", &[], 2),
        (
            "wckm",
            "wckm.csv",
            &["--default-email", "stock@example.com"],
            2,
        ),
    ];
    for (preset, file, extra, created) in cases {
        let file = fixture(file);
        let mut args = vec![file.as_str(), "--from", preset, "--product", "moved"];
        args.extend_from_slice(extra);
        let run = import(&app, &args);
        assert!(run.ok, "{preset}: {}", run.stderr);
        assert_eq!(run.report["created"], created, "{preset}");
    }
    let ida = license(&app, "kmt-3f9a-77qe-1b2c").await;
    assert_eq!(
        (ida["email"].as_str(), ida["max_activations"].as_i64()),
        (Some("ida@example.com"), Some(2))
    );
    assert_eq!(ida["activations_count"], 1);
    assert_eq!(
        license(&app, "KMT-4G0B-88RF-2C3D").await["status"],
        "suspended"
    );
    let kim = license(&app, "SA-1f2e3d4c5b6a").await;
    assert_eq!(kim["expires_at"], "2030-01-01T00:00:00Z");
    assert_eq!(kim["max_activations"], 3);
    assert_eq!(
        license(&app, "SA-6a5b4c3d2e1f").await["status"],
        "suspended"
    );
    assert_eq!(
        license(&app, "CK-9Q8W7E6R5T4Y").await["customer_name"],
        "Max Example"
    );
    assert_eq!(
        license(&app, "CK-1A2S3D4F5G6H").await["status"],
        "suspended"
    );
    let oli = license(&app, "WC-KEY-AAAA-1111").await;
    assert_eq!(oli["email"], "oli@example.com");
    assert_eq!(oli["expires_at"], Value::Null);
    let stock = license(&app, "WC-KEY-BBBB-2222").await;
    assert_eq!(stock["email"], "stock@example.com");
    assert!(
        stock["expires_at"].is_string(),
        "validity_for counts from the import"
    );
    assert_eq!(app.validate_code("wc-key-aaaa-1111").await, "VALID");

    // Without --default-email a key with no buyer is a bad row, and the others still import.
    let app = spawn_app().await;
    product(&app, 1).await;
    let run = import(
        &app,
        &[&fixture("wckm.csv"), "--from", "wckm", "--product", "moved"],
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("line 3: no email"), "{}", run.stderr);
    assert_eq!(run.report["created"], 1);
}

#[tokio::test]
async fn a_key_held_by_another_license_is_a_bad_row_and_a_mapping_renames_columns() {
    let app = spawn_app().await;
    product(&app, 1).await;
    let dir = tempdir::TempDir::new();
    let path = dir.path().join("mapped.csv");
    std::fs::write(
        &path,
        "Serial,Buyer,Ref\nSERIAL-1,pat@example.com,r1\nserial-1,quin@example.com,r2\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let run = import(
        &app,
        &[
            path,
            "--product",
            "moved",
            "--map",
            "key=Serial",
            "--map",
            "email=Buyer",
            "--map",
            "id=Ref",
        ],
    );
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("line 3: key is already held by another license"),
        "{}",
        run.stderr
    );
    assert_eq!(run.report["created"], 1);
    assert_eq!(license(&app, "serial-1").await["email"], "pat@example.com");
    // A mapping to a column the file does not have is refused before anything is read.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .args([
            "import",
            path,
            "--product",
            "moved",
            "--map",
            "key=Serial",
            "--map",
            "id=Nope",
        ])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column `Nope`"));
}
