//! Signed answers: the customer software can check, with only the public key, that an
//! answer came from this server, for this request, and was not changed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use licensd_client::{verify_answer, verify_response, Error, Exchange, PublicKey, Sent};
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, spawn_app_with, RawReply};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn exchange<'a>(path: &'a str, reply: &'a RawReply) -> Exchange<'a> {
    Exchange {
        method: "POST",
        path,
        request_body: &reply.request,
        status: reply.status.as_u16(),
        body: &reply.bytes,
        signature_header: reply.signature(),
    }
}

/// The signing string rebuilt from docs/verifying.md alone, verified with plain ed25519.
fn verify_by_the_docs(public_key_b64: &str, method: &str, path: &str, reply: &RawReply) -> bool {
    let fields: std::collections::HashMap<&str, &str> = reply
        .signature()
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    assert_eq!(fields["alg"], "ed25519");
    assert_eq!(fields["v"], "2");
    let hex = |bytes: &[u8]| -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let message = format!(
        "licensd-response-v2\n{}\n{method}\n{path}\n{}\n{}\n{}",
        fields["ts"],
        hex(&reply.request),
        reply.status.as_u16(),
        hex(&reply.bytes)
    );
    let key: [u8; 32] = B64.decode(public_key_b64).unwrap().try_into().unwrap();
    let key = VerifyingKey::from_bytes(&key).unwrap();
    let sig = Signature::from_slice(&B64.decode(fields["sig"]).unwrap()).unwrap();
    key.verify(message.as_bytes(), &sig).is_ok()
}

#[tokio::test]
async fn a_validate_answer_verifies_with_only_the_public_key_and_echoes_the_nonce() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    let public = app.get("/v1/signing-key").await.body;
    assert_eq!(public["algorithm"], "ed25519");
    let pk = PublicKey::from_base64(public["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(public["key_id"], pk.key_id());

    let path = "/v1/licenses/validate";
    let reply = app
        .post_exact(path, &json!({ "key": key, "nonce": "n-42" }))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["valid"], true);
    assert_eq!(reply.json()["nonce"], "n-42");
    let header = verify_response(&pk, &exchange(path, &reply), now(), 60).unwrap();
    assert_eq!(header.key_id, pk.key_id());
    assert!(verify_by_the_docs(
        public["public_key"].as_str().unwrap(),
        "POST",
        path,
        &reply
    ));

    // One byte of the body changed.
    let mut body = reply.bytes.clone();
    let i = body.iter().position(|b| *b == b'4').unwrap();
    body[i] = b'5';
    let tampered = Exchange {
        body: &body,
        ..exchange(path, &reply)
    };
    assert_eq!(
        verify_response(&pk, &tampered, now(), 60),
        Err(Error::BadSignature)
    );
    // Replayed as the answer to another request (path).
    let other_path = Exchange {
        path: "/v1/licenses/activate",
        ..exchange(path, &reply)
    };
    assert_eq!(
        verify_response(&pk, &other_path, now(), 60),
        Err(Error::BadSignature)
    );
    // The timestamp changed.
    let sig = reply.signature();
    let ts: i64 = sig
        .split(',')
        .find_map(|p| p.strip_prefix("ts="))
        .unwrap()
        .parse()
        .unwrap();
    let moved = sig.replace(&format!("ts={ts}"), &format!("ts={}", ts + 1));
    let retimed = Exchange {
        signature_header: &moved,
        ..exchange(path, &reply)
    };
    assert_eq!(
        verify_response(&pk, &retimed, now(), 60),
        Err(Error::BadSignature)
    );
    // A different server's key.
    let stranger = PublicKey::from_bytes(
        ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            .verifying_key()
            .as_bytes(),
    )
    .unwrap();
    assert!(verify_response(&stranger, &exchange(path, &reply), now(), 60).is_err());
}

#[tokio::test]
async fn every_public_answer_is_signed_refusals_and_errors_included() {
    let app = spawn_app().await;
    let pk = app.public_key().await;
    let key = app.license_with_seats(1).await;
    let cases = [
        (
            "/v1/licenses/activate",
            json!({ "key": key, "fingerprint": "d1" }),
            201,
        ),
        (
            "/v1/licenses/activate",
            json!({ "key": key, "fingerprint": "d2" }),
            409,
        ),
        (
            "/v1/licenses/activate",
            json!({ "key": "NOPE", "fingerprint": "d1" }),
            404,
        ),
        ("/v1/licenses/validate", json!({ "key": "NOPE" }), 200),
        (
            "/v1/licenses/checkout",
            json!({ "key": key, "fingerprint": "d1" }),
            200,
        ),
        (
            "/v1/licenses/deactivate",
            json!({ "key": key, "fingerprint": "d1" }),
            200,
        ),
        (
            "/v1/licenses/deactivate",
            json!({ "key": key, "fingerprint": "d1" }),
            404,
        ),
        ("/v1/licenses/validate", json!({ "key": 5 }), 422),
        (
            "/v1/licenses/validate",
            json!({ "key": key, "nonce": 5 }),
            422,
        ),
    ];
    for (path, body, status) in cases {
        let reply = app.post_exact(path, &body).await;
        assert_eq!(reply.status.as_u16(), status, "{path} {body}");
        verify_response(&pk, &exchange(path, &reply), now(), 60)
            .unwrap_or_else(|e| panic!("{path} {body}: {e}"));
    }
    let reply = app
        .post_exact("/v1/licenses/validate", &json!({ "key": key, "nonce": 5 }))
        .await;
    assert_eq!(reply.json()["error"]["code"], "invalid_field");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nonce"));
}

#[tokio::test]
async fn the_generated_key_is_stored_once_and_shared_by_every_instance() {
    let app = spawn_app().await;
    let first = app.public_key().await;
    // A second instance on the same database signs with the same key.
    let second = licensd::Application::build(app.settings.clone())
        .await
        .unwrap();
    let port = second.port();
    tokio::spawn(second.run_until_stopped());
    let body: serde_json::Value = app
        .client
        .get(format!("http://127.0.0.1:{port}/v1/signing-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["public_key"], first.to_base64());
    let rows: i64 = app
        .db(|conn| {
            use diesel::dsl::count_star;
            use diesel::prelude::*;
            licensd::db::schema::signing_keys::table
                .select(count_star())
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_configured_key_is_used_and_printed_by_the_cli() {
    let seed = [3u8; 32];
    let expected = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let app = spawn_app_with(|s| s.signing_key = Some(B64.encode(seed).into())).await;
    assert_eq!(
        app.public_key().await.to_base64(),
        B64.encode(expected.as_bytes())
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .args(["signing-key", "show"])
        .env("DATABASE_URL", &app.database_url)
        .env("LICENSD_SIGNING_KEY", B64.encode(seed))
        .env("LICENSD_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        B64.encode(expected.as_bytes())
    );
}

/// What the version 1 recipes checked: the signing string without the request.
fn verify_by_the_old_docs(public_key_b64: &str, path: &str, reply: &RawReply) -> bool {
    let fields: std::collections::HashMap<&str, &str> = reply
        .signature()
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    let digest: String = Sha256::digest(&reply.bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let message = format!(
        "licensd-response-v1\n{}\nPOST\n{path}\n{}\n{digest}",
        fields["ts"],
        reply.status.as_u16()
    );
    let key: [u8; 32] = B64.decode(public_key_b64).unwrap().try_into().unwrap();
    let key = VerifyingKey::from_bytes(&key).unwrap();
    let sig = Signature::from_slice(&B64.decode(fields["sig"]).unwrap()).unwrap();
    key.verify(message.as_bytes(), &sig).is_ok()
}

/// Issue 9, "signed answers can be relayed": a proxy receives the app's request for a fake
/// key, asks the server about a real key with the app's own nonce, and hands back the
/// genuine answer. The version 1 signature (method, path, status, body) and the nonce
/// check both passed; the answer now binds the request, so it is refused.
#[tokio::test]
async fn a_genuine_answer_relayed_for_a_fake_key_is_refused() {
    let app = spawn_app().await;
    let pk = app.public_key().await;
    let real = app.license_with_seats(1).await;
    let path = "/v1/licenses/validate";
    let genuine = app
        .post_exact(path, &json!({ "key": real, "nonce": "n-7" }))
        .await;
    assert_eq!(genuine.json()["code"], "VALID");
    let sent_real = Sent {
        key: &real,
        fingerprint: None,
    };
    verify_answer(&pk, &exchange(path, &genuine), &sent_real, now(), 60).unwrap();

    // The app sent this; the proxy answered with `genuine`.
    let fake_request =
        serde_json::to_vec(&json!({ "key": "FAKE0-FAKE0-FAKE0-FAKE0-FAKE0", "nonce": "n-7" }))
            .unwrap();
    let relayed = Exchange {
        request_body: &fake_request,
        ..exchange(path, &genuine)
    };
    assert_eq!(
        genuine.json()["nonce"],
        "n-7",
        "the nonce check alone passes"
    );
    let sent_fake = Sent {
        key: "FAKE0-FAKE0-FAKE0-FAKE0-FAKE0",
        fingerprint: None,
    };
    assert_eq!(
        verify_answer(&pk, &relayed, &sent_fake, now(), 60),
        Err(Error::BadSignature)
    );
    assert_eq!(
        verify_response(&pk, &relayed, now(), 60),
        Err(Error::BadSignature)
    );

    // Same with an activation: the answer names the device it activated.
    let path = "/v1/licenses/activate";
    let activated = app
        .post_exact(path, &json!({ "key": real, "fingerprint": "dev-real" }))
        .await;
    assert_eq!(activated.status, StatusCode::CREATED);
    let sent = Sent {
        key: &real,
        fingerprint: Some("dev-real"),
    };
    verify_answer(&pk, &exchange(path, &activated), &sent, now(), 60).unwrap();
    let other_device =
        serde_json::to_vec(&json!({ "key": real, "fingerprint": "dev-fake" })).unwrap();
    let relayed = Exchange {
        request_body: &other_device,
        ..exchange(path, &activated)
    };
    let sent = Sent {
        key: &real,
        fingerprint: Some("dev-fake"),
    };
    assert_eq!(
        verify_answer(&pk, &relayed, &sent, now(), 60),
        Err(Error::BadSignature)
    );

    // An old client fails safe: no answer of this server passes the version 1 check.
    assert!(!verify_by_the_old_docs(
        &pk.to_base64(),
        "/v1/licenses/validate",
        &genuine
    ));
    assert!(genuine.signature().starts_with("v=2,"));
}

fn licensd_cli(app: &crate::helpers::TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env_remove("LICENSD_SIGNING_KEY")
        .env("LICENSD_LOG", "error")
        .output()
        .unwrap()
}

async fn key_set(app: &crate::helpers::TestApp) -> (licensd_client::KeySet, serde_json::Value) {
    let reply = app.get("/v1/signing-keys").await;
    assert_eq!(reply.status, StatusCode::OK);
    let bytes = serde_json::to_vec(&reply.body).unwrap();
    (
        licensd_client::KeySet::from_json(&bytes).unwrap(),
        reply.body,
    )
}

/// Waits for the server's refresh to publish `n` keys with `current` first.
async fn until_published(app: &crate::helpers::TestApp, n: usize, current: &str) {
    for _ in 0..100 {
        let (set, body) = key_set(app).await;
        if set.keys.len() == n && body["keys"][0]["key_id"] == current {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server never published {n} keys with {current} current");
}

fn key_id_of(reply: &RawReply) -> String {
    licensd_client::SignatureHeader::parse(reply.signature())
        .unwrap()
        .key_id
}

#[tokio::test]
async fn a_rotation_keeps_old_answers_verifying_until_the_old_key_is_retired() {
    let app = spawn_app_with(|s| s.signing_key_refresh_secs = 1).await;
    let key = app.license_with_seats(2).await;
    let path = "/v1/licenses/validate";
    let (set, body) = key_set(&app).await;
    assert_eq!(set.keys.len(), 1);
    assert_eq!(body["keys"][0]["status"], "current");
    let old_id = set.keys[0].key_id().to_owned();
    let before = app.post_exact(path, &json!({ "key": key })).await;
    assert_eq!(key_id_of(&before), old_id);
    let file_before = app
        .post_exact("/v1/licenses/checkout", &json!({ "key": key }))
        .await
        .json()["license_file"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = licensd_cli(&app, &["signing-key", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let new_id = PublicKey::from_base64(&new_public)
        .unwrap()
        .key_id()
        .to_owned();
    assert_ne!(new_id, old_id);
    until_published(&app, 2, &new_id).await;

    // During the rotation: answers signed by the old and the new key both verify.
    let after = app.post_exact(path, &json!({ "key": key })).await;
    assert_eq!(key_id_of(&after), new_id);
    let (set, body) = key_set(&app).await;
    assert_eq!(body["keys"][1]["key_id"], old_id.as_str());
    assert_eq!(body["keys"][1]["status"], "published");
    let sent = Sent {
        key: &key,
        fingerprint: None,
    };
    verify_answer(&set, &exchange(path, &before), &sent, now(), 60).unwrap();
    verify_answer(&set, &exchange(path, &after), &sent, now(), 60).unwrap();
    licensd_client::verify_license_file(&set, &file_before, now()).unwrap();
    let file_after = app
        .post_exact("/v1/licenses/checkout", &json!({ "key": key }))
        .await
        .json()["license_file"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        licensd_client::verify_license_file(&set, &file_after, now())
            .unwrap()
            .key_id,
        new_id
    );
    // The old key alone does not verify the new answers.
    assert!(matches!(
        verify_response(&set.keys[1], &exchange(path, &after), now(), 60),
        Err(Error::WrongKey { .. })
    ));

    // The current key cannot be retired; an unknown id is refused.
    let out = licensd_cli(&app, &["signing-key", "retire", &new_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rotate"));
    let out = licensd_cli(&app, &["signing-key", "retire", "0000000000000000"]);
    assert!(!out.status.success());

    let out = licensd_cli(&app, &["signing-key", "retire", &old_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until_published(&app, 1, &new_id).await;
    let (set, _) = key_set(&app).await;
    assert_eq!(
        verify_answer(&set, &exchange(path, &before), &sent, now(), 60),
        Err(Error::UnknownKey(old_id.clone()))
    );
    assert!(licensd_client::verify_license_file(&set, &file_before, now()).is_err());
    verify_answer(&set, &exchange(path, &after), &sent, now(), 60).unwrap();

    let listed = licensd_cli(&app, &["signing-key", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let statuses: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (new_id, "current".to_owned()),
            (old_id, "retired".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_configured_key_signs_while_stored_keys_stay_published() {
    let seed = [5u8; 32];
    // The database's generated key first, then the configured one takes over.
    let app = spawn_app().await;
    let stored_id = app.public_key().await.key_id().to_owned();
    let settings = {
        let mut s = app.settings.clone();
        s.signing_key = Some(B64.encode(seed).into());
        s
    };
    let second = licensd::Application::build(settings).await.unwrap();
    let port = second.port();
    tokio::spawn(second.run_until_stopped());
    let body: serde_json::Value = app
        .client
        .get(format!("http://127.0.0.1:{port}/v1/signing-keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let configured = PublicKey::from_bytes(
        ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(body["keys"][0]["key_id"], configured.key_id());
    assert_eq!(body["keys"][0]["status"], "current");
    assert_eq!(body["keys"][1]["key_id"], stored_id.as_str());
    assert_eq!(body["keys"][1]["status"], "published");
}
