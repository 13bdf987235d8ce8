//! Browser tests: the dashboard and the portal in a real headless Chromium, driven
//! over WebDriver (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them).
//! They also take the screenshots the README shows (see `screenshot`).
//!
//! Without a `chromedriver` on PATH (or `CHROMEDRIVER`), each test says so and fails,
//! unless `LICENSD_SKIP_BROWSER_TESTS=1` is set.

#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)] // shared with the API tests, which use all of it
#[path = "../api/smtp_server.rs"]
mod smtp_server;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use helpers::{spawn_app_with, TestApp};
use smtp_server::SmtpServer;

const PASSWORD: &str = "correct horse battery staple";

/// A chromedriver of this test, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
    profile: helpers::tempdir::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> Option<Driver> {
    if std::env::var_os("LICENSD_SKIP_BROWSER_TESTS").is_some() {
        return None;
    }
    let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port();
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {program} ({e}): install Debian's chromium and chromium-driver, or set LICENSD_SKIP_BROWSER_TESTS=1")
        });
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(Driver {
        child,
        port,
        profile: helpers::tempdir::TempDir::new(),
    })
}

/// A fresh headless Chromium window of `width` × `height`.
async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars",
                format!("--user-data-dir={}", driver.profile.path().join(format!("p{width}")).display()),
                format!("--window-size={width},{height}"),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

async fn seller_app(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_poll_ms = 100;
    })
    .await;
    app.db(|conn| {
        licensd::licensing::accounts::create_user(conn, "seller@example.com", PASSWORD).unwrap()
    })
    .await;
    app
}

async fn validate(app: &TestApp, key: &str, fingerprint: &str) -> String {
    let reply = app
        .validate(json!({ "key": key, "fingerprint": fingerprint }))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body["code"].as_str().unwrap().to_owned()
}

/// Waits (up to 30 s) for the browser to be at `path`: a click's navigation may still
/// be under way when the click returns.
async fn wait_path(c: &Client, path: &str) {
    for _ in 0..300 {
        if c.current_url().await.unwrap().path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never got to {path}");
}

/// Waits (up to 30 s) for the app's validate to answer `want` for the device.
async fn until_code(app: &TestApp, key: &str, fingerprint: &str, want: &str) {
    let mut got = String::new();
    for _ in 0..300 {
        got = validate(app, key, fingerprint).await;
        if got == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("validate of {fingerprint} answered {got}, not {want}");
}

/// Saves a screenshot into target/screenshots/, or with `LICENSD_UPDATE_SCREENSHOTS=1` into
/// docs/screenshots/ (the README shows those: a test run leaves them, and the tree, alone).
async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var("LICENSD_UPDATE_SCREENSHOTS").as_deref() {
        Ok("1") => root.join("docs/screenshots"),
        _ => root.join("target/screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// Waits (up to 30 s, under a loaded machine) for an element of the page.
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

async fn fill(c: &Client, css: &str, text: &str) {
    let field = element(c, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Some history, so the overview's chart has something to show.
async fn sell(app: &TestApp, email: &str, devices: &[&str]) -> String {
    let reply = app
        .admin_post(
            "/v1/licenses",
            &json!({ "product": "editor", "email": email, "send_email": false }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let key = reply.body["key"].as_str().unwrap().to_owned();
    for d in devices {
        let r = app
            .post(
                "/v1/licenses/activate",
                &json!({ "key": key, "fingerprint": d, "name": d }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    key
}

async fn backdate(app: &TestApp) {
    app.db(|conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(
            "UPDATE licenses SET created_at = now() - (random() * 80 || ' days')::interval;
             UPDATE activations SET created_at = now() - (random() * 80 || ' days')::interval;",
        )
        .unwrap()
    })
    .await;
}

#[tokio::test]
async fn a_seller_signs_in_finds_a_license_by_email_frees_a_device_and_revokes_it() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let smtp = SmtpServer::start().await;
    let app = seller_app(&smtp).await;
    app.create_product(json!({ "name": "Editor Pro", "slug": "editor", "max_activations": 3 }))
        .await;
    for i in 0..40 {
        sell(&app, &format!("customer{i}@example.com"), &["desk"]).await;
    }
    backdate(&app).await;
    let key = sell(&app, "ada@example.com", &["ada-laptop", "ada-desktop"]).await;

    let c = browser(&driver, 1280, 900).await;
    c.goto(&app.url("/admin")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/admin/login"));
    fill(&c, "#email", "seller@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form.stack button[type=submit]").await;
    wait_path(&c, "/admin").await;
    element(&c, "svg.chart").await;
    screenshot(&c, "overview.png").await;

    click(&c, "nav a[href='/admin/licenses']").await;
    fill(&c, "#q", "ada@example.com").await;
    click(&c, "form.search button[type=submit]").await;
    for _ in 0..300 {
        let url = c.current_url().await.unwrap();
        if url.query().is_some_and(|q| q.contains("ada%40example.com")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The search found one license: its row links to its page.
    click(&c, "table a[href^='/admin/licenses/']").await;
    assert_eq!(text(&c, "#license-key").await, key);
    screenshot(&c, "license.png").await;

    assert_eq!(validate(&app, &key, "ada-laptop").await, "VALID");
    click(&c, "button[aria-label='Free device ada-laptop']").await;
    until_code(&app, &key, "ada-laptop", "NOT_ACTIVATED").await;
    c.refresh().await.unwrap();
    assert_eq!(validate(&app, &key, "ada-desktop").await, "VALID");

    let revoke = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath("//button[normalize-space()='Revoke']"))
        .await
        .unwrap();
    revoke.click().await.unwrap();
    until_code(&app, &key, "ada-desktop", "REVOKED").await;
    c.refresh().await.unwrap();
    assert_eq!(text(&c, "#license-status").await, "revoked");
    let history = text(&c, "#history").await;
    assert!(history.contains("user: seller@example.com"), "{history}");
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_buyer_signs_in_from_the_emailed_link_and_frees_a_device_the_app_then_sees() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let smtp = SmtpServer::start().await;
    let app = seller_app(&smtp).await;
    app.create_product(json!({ "name": "Editor Pro", "slug": "editor", "max_activations": 2 }))
        .await;
    let key = sell(
        &app,
        "grace@example.com",
        &["grace-old-laptop", "grace-studio"],
    )
    .await;
    sell(&app, "someone-else@example.com", &["elsewhere"]).await;

    // A phone-sized window.
    let c = browser(&driver, 390, 844).await;
    c.goto(&app.url("/portal")).await.unwrap();
    fill(&c, "#email", "grace@example.com").await;
    click(&c, "form.stack button[type=submit]").await;
    assert!(text(&c, "#sent").await.contains("If we know this email"));

    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    let data = mail[0].data.replace("=\r\n", "").replace("=3D", "=");
    let at = data.find("/portal/sign-in?token=").expect("a sign-in link");
    let link = &data[at..at + "/portal/sign-in?token=".len() + 64];
    c.goto(&app.url(link)).await.unwrap();
    click(&c, "#continue").await;
    wait_path(&c, "/portal/licenses").await;
    let page = text(&c, "main").await;
    assert!(page.contains(&key));
    assert!(
        !page.contains("elsewhere"),
        "another buyer's license is not shown"
    );
    screenshot(&c, "portal.png").await;

    assert_eq!(validate(&app, &key, "grace-old-laptop").await, "VALID");
    click(&c, "button[aria-label='Free device grace-old-laptop']").await;
    until_code(&app, &key, "grace-old-laptop", "NOT_ACTIVATED").await;
    c.refresh().await.unwrap();
    assert!(text(&c, "main")
        .await
        .contains("you can free another after"));
    c.close().await.unwrap();
}
