//! License emails: delivered from the outbox by the in-process worker, retried while
//! the SMTP server is down, never lost and never sent twice.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{event, line_item, spawn_app_with, spawn_stripe_app, FakeStripe, TestApp};
use crate::smtp_server::SmtpServer;

#[tokio::test]
async fn while_smtp_is_down_the_license_exists_and_its_email_is_retried_until_delivered() {
    let (stripe, smtp) = (FakeStripe::start().await, SmtpServer::start().await);
    smtp.set_down(true);
    let app = spawn_stripe_app(&stripe, Some(&smtp)).await;
    app.create_product(json!({ "name": "App Pro", "stripe_price_ids": ["price_pro"] }))
        .await;
    stripe
        .line_items(
            "cs_test_a1B2c3D4e5F6g7H8i9J0paid",
            &[line_item("li_1", "price_pro", 1)],
        )
        .await;
    let reply = app.post_webhook(&event("checkout_session_completed")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let key = app
        .keys_of_session("cs_test_a1B2c3D4e5F6g7H8i9J0paid")
        .await
        .remove(0);
    assert_eq!(app.validate_code(&key).await, "VALID", "the license exists");

    // The worker keeps failing and says so on the admin view.
    let status = app
        .wait_for_email_status(&key, |s| {
            s["attempts"].as_i64() >= Some(2) && s["status"] == "pending"
        })
        .await;
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["attempts"].as_i64().unwrap() >= 2, "{status}");
    assert!(
        status["last_error"].as_str().unwrap().contains("SMTP"),
        "{status}"
    );
    assert!(status["sent_at"].is_null());
    assert!(smtp.refused() >= 2);
    assert!(smtp.messages().is_empty());

    smtp.set_down(false);
    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "delivered once SMTP is back");
    assert!(mail[0].data.contains(&key));
    let status = app
        .wait_for_email_status(&key, |s| s["status"] == "sent")
        .await;
    assert_eq!(status["status"], "sent", "{status}");
    assert!(status["last_error"].is_null());
    assert_eq!(smtp.messages().len(), 1, "and only once");
}

#[tokio::test]
async fn manual_licenses_and_resends_go_out_the_same_way() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_poll_ms = 100;
    })
    .await;
    app.create_product(json!({ "name": "Editor", "slug": "editor", "max_activations": 2 }))
        .await;
    let created = app
        .admin_post(
            "/v1/licenses",
            &json!({ "product": "editor", "email": "ada@example.com", "name": "Ada",
                     "expires_at": "2031-05-06T07:08:00Z" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();

    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, ["ada@example.com"]);
    let text = &mail[0].data;
    assert!(text.contains(&key));
    assert!(text.contains("Editor"));
    assert!(
        text.contains("2031-05-06 07:08 UTC"),
        "the expiry is listed"
    );
    assert!(
        text.contains("Devices:     2"),
        "the activation limit is listed"
    );

    // A resend while the email is still going out joins it; once sent, it queues anew.
    app.wait_for_email_status(&key, |s| s["status"] == "sent")
        .await;
    let resend = app
        .admin_post(&format!("/v1/licenses/{key}/resend-email"), &json!({}))
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED);
    let mail = smtp.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 2);
    assert!(mail[1].data.contains(&key));
    let status = app
        .wait_for_email_status(&key, |s| s["status"] == "sent")
        .await;
    assert_eq!(
        status["id"], resend.body["email_id"],
        "the latest email is shown"
    );

    // No email asked for: none sent, and the view says so.
    let quiet = app.create_license("editor", json!({})).await;
    let view = app
        .admin_get(&format!("/v1/licenses/{}", quiet["key"].as_str().unwrap()))
        .await;
    assert!(view.body["email_status"].is_null(), "{}", view.body);
}

#[tokio::test]
async fn without_smtp_emails_are_written_as_eml_files_from_overridable_templates() {
    let templates = crate::helpers::tempdir::TempDir::new();
    std::fs::write(
        templates.path().join("license_email.subject.txt"),
        "Keys for {{ product_names }} (custom)",
    )
    .unwrap();
    let dir = templates.path().to_owned();
    let app = spawn_app_with(move |s| {
        s.mail_templates_dir = Some(dir);
        s.mail_poll_ms = 100;
    })
    .await;
    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let created = app
        .admin_post(
            "/v1/licenses",
            &json!({ "product": "editor", "email": "ada@example.com" }),
        )
        .await;
    let key = created.body["key"].as_str().unwrap().to_owned();
    let status = app
        .wait_for_email_status(&key, |s| s["status"] == "sent")
        .await;
    assert_eq!(status["status"], "sent", "{status}");
    let files: Vec<_> = std::fs::read_dir(app.mail_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("Subject: Keys for Editor (custom)"), "{eml}");
    assert!(eml.contains(&key), "the built-in body is still used");
    assert!(eml.contains("unlimited"), "no activation limit");
    assert!(eml.contains("never"), "no expiry");
}

#[tokio::test]
async fn two_server_instances_on_one_database_send_each_email_exactly_once() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_poll_ms = 20;
    })
    .await;
    // A second process's worth of server and email worker on the same database.
    let sibling = licensd::Application::build(app.settings.clone())
        .await
        .expect("second instance builds");
    tokio::spawn(sibling.run_until_stopped());

    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let bodies: Vec<_> = (0..20)
        .map(|i| json!({ "product": "editor", "email": format!("buyer{i}@example.com") }))
        .collect();
    let creates = bodies.iter().map(|b| app.admin_post("/v1/licenses", b));
    for reply in futures::future::join_all(creates).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let mail = smtp.wait_for(20, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 20);
    // Every row is sent; nothing more arrives after that.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while app.count("email_outbox WHERE status = 'sent'").await < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "not all emails marked sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut recipients: Vec<String> = smtp.messages().iter().map(|m| m.to[0].clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 20, "each email once, none twice");
    assert_eq!(smtp.messages().len(), 20);
    assert_eq!(app.count("email_outbox WHERE attempts = 1").await, 20);
}

#[tokio::test]
async fn an_email_claimed_by_a_worker_that_died_is_sent_when_its_lease_runs_out() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_poll_ms = 50;
    })
    .await;
    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let license = app.create_license("editor", json!({})).await; // no email queued
    let id = license["id"].as_str().unwrap().to_owned();
    app.db(move |conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "INSERT INTO email_outbox (kind, recipient, license_ids, status, attempts, locked_until)
             VALUES ('license_keys', 'buyer@example.com', ARRAY['{id}'::uuid], 'sending', 1,
                     now() - interval '1 second')"
        ))
        .execute(conn)
        .unwrap()
    })
    .await;
    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].data.contains(license["key"].as_str().unwrap()));
    let status = app
        .wait_for_email_status(license["key"].as_str().unwrap(), |s| s["status"] == "sent")
        .await;
    assert_eq!(status["attempts"], 2, "{status}");
}

#[tokio::test]
async fn an_address_that_can_never_work_is_marked_failed_without_retrying() {
    let stripe = FakeStripe::start().await;
    let app = spawn_stripe_app(&stripe, None).await;
    app.create_product(json!({ "name": "App Pro", "stripe_price_ids": ["price_pro"] }))
        .await;
    let session = "cs_test_a1B2c3D4e5F6g7H8i9J0paid";
    stripe
        .line_items(session, &[line_item("li_1", "price_pro", 1)])
        .await;
    let mut e = event("checkout_session_completed");
    e["data"]["object"]["customer_details"]["email"] = json!("not an address");
    let reply = app.post_webhook(&e).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let key = app.keys_of_session(session).await.remove(0);
    let status = app
        .wait_for_email_status(&key, |s| s["status"] == "failed")
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["attempts"], 1);
    assert!(status["last_error"]
        .as_str()
        .unwrap()
        .contains("invalid address"));
}

/// Queues `recipients` license emails for one license in ONE transaction, as another
/// process would: nothing here wakes a worker in-process.
async fn queue_emails_elsewhere(
    app: &TestApp,
    license: &serde_json::Value,
    recipients: Vec<String>,
) {
    let id: uuid::Uuid = license["id"].as_str().unwrap().parse().unwrap();
    app.db(move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            for r in &recipients {
                licensd::db::outbox::enqueue_license_email(conn, r, &[id])?;
            }
            diesel::QueryResult::Ok(())
        })
        .unwrap()
    })
    .await;
}

async fn wait_until_sent(app: &TestApp, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.count("email_outbox WHERE status = 'sent'").await < n {
        assert!(
            std::time::Instant::now() < deadline,
            "not all emails marked sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_instance_sends_up_to_mail_concurrency_emails_at_once_over_reused_connections() {
    let smtp = SmtpServer::start().await;
    smtp.set_data_delay(Duration::from_millis(100));
    let url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_poll_ms = 60_000;
        s.mail_concurrency = 4;
    })
    .await;
    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let license = app.create_license("editor", json!({})).await;
    let recipients: Vec<String> = (0..30).map(|i| format!("buyer{i}@example.com")).collect();
    queue_emails_elsewhere(&app, &license, recipients).await;

    let mail = smtp.wait_for(30, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 30);
    wait_until_sent(&app, 30).await;
    let mut to: Vec<String> = smtp.messages().iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 30, "each email once, none twice");
    assert!(mail
        .iter()
        .all(|m| m.data.contains(license["key"].as_str().unwrap())));
    assert_eq!(app.count("email_outbox WHERE attempts = 1").await, 30);
    let peak = smtp.peak_concurrent_messages();
    assert!(
        (2..=4).contains(&peak),
        "sent {peak} at once, mail_concurrency is 4"
    );
    let connections = smtp.connections();
    assert!(
        (2..=4).contains(&connections),
        "30 emails over {connections} connections: pooled and reused"
    );
    assert_eq!(smtp.messages().len(), 30, "nothing more arrives");
}

#[tokio::test]
async fn an_email_queued_anywhere_wakes_every_instance_and_is_sent_once_despite_slow_polling() {
    let smtp = SmtpServer::start().await;
    smtp.set_data_delay(Duration::from_millis(20));
    let url = smtp.url();
    // Polling once a minute: only a notification can deliver within the test's waits.
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_poll_ms = 60_000;
        s.mail_concurrency = 8;
    })
    .await;
    let sibling = licensd::Application::build(app.settings.clone())
        .await
        .expect("second instance builds");
    tokio::spawn(sibling.run_until_stopped());
    app.create_product(json!({ "name": "Editor", "slug": "editor" }))
        .await;
    let license = app.create_license("editor", json!({})).await;

    // Round one may be found by a worker's first look; round two, queued once both
    // workers wait, only by LISTEN/NOTIFY.
    for round in 0..2 {
        let recipients: Vec<String> = (0..15)
            .map(|i| format!("buyer{round}-{i}@example.com"))
            .collect();
        queue_emails_elsewhere(&app, &license, recipients).await;
        let want = 15 * (round + 1);
        let mail = smtp.wait_for(want, Duration::from_secs(20)).await;
        assert_eq!(mail.len(), want, "round {round}");
        wait_until_sent(&app, want as i64).await;
    }
    let mut to: Vec<String> = smtp.messages().iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 30, "each email once, none twice");
    assert_eq!(smtp.messages().len(), 30);
    assert_eq!(app.count("email_outbox WHERE attempts = 1").await, 30);
}
