//! The dashboard (/admin) and the portal (/portal) through plain HTTP: sessions,
//! CSRF, throttling, escaping, what a buyer's link can reach. The browser tests in
//! tests/browser drive the same pages in a real Chromium.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};
use crate::smtp_server::SmtpServer;

pub const PASSWORD: &str = "correct horse battery staple";

/// A browser without JavaScript: keeps cookies, does not follow redirects.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }

    /// Posts a form with this browser's CSRF token (unless `fields` names one).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            let csrf = self
                .cookies
                .get("licensd_csrf")
                .cloned()
                .unwrap_or_default();
            form.push(("csrf".into(), csrf));
        }
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(&form)
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }

    /// Signs in as the seller made by [`seller_app`].
    pub async fn sign_in(&mut self) {
        self.get("/admin/login").await;
        let page = self
            .post(
                "/admin/login",
                &[("email", "seller@example.com"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/admin");
    }
}

/// An app with a seller account and mail going to `smtp`.
pub async fn seller_app(smtp: Option<&SmtpServer>) -> TestApp {
    let url = smtp.map(SmtpServer::url);
    let app = spawn_app_with(move |s| {
        s.smtp_url = url.map(SecretString::from);
        s.mail_poll_ms = 100;
    })
    .await;
    app.db(|conn| {
        licensd::licensing::accounts::create_user(conn, "seller@example.com", PASSWORD).unwrap()
    })
    .await;
    app
}

/// Decodes the quoted-printable soft breaks and `=3D` of a received email.
pub fn mail_text(data: &str) -> String {
    data.replace("=\r\n", "").replace("=3D", "=")
}

/// The sign-in link's token in a received portal email.
pub fn link_token(data: &str) -> String {
    let text = mail_text(data);
    let at = text.find("/portal/sign-in?token=").expect("a sign-in link") + 22;
    text[at..at + 64].to_owned()
}

/// The validate code for a key and a device.
pub async fn validate_with(app: &TestApp, key: &str, fingerprint: &str) -> String {
    let reply = app
        .validate(json!({ "key": key, "fingerprint": fingerprint }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["code"].as_str().unwrap().to_owned()
}

async fn license_status(app: &TestApp, key: &str) -> String {
    app.admin_get(&format!("/v1/licenses/{key}")).await.body["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn no_dashboard_page_or_action_without_a_session() {
    let app = seller_app(None).await;
    let key = app.license_with_seats(2).await;
    let id = app.admin_get(&format!("/v1/licenses/{key}")).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut anonymous = Browser::new(&app);
    for path in [
        "/admin".to_owned(),
        "/admin/licenses?q=buyer@example.com".into(),
        format!("/admin/licenses/{id}"),
        "/admin/products".into(),
        "/admin/emails".into(),
        "/admin/stripe-events".into(),
        "/admin/tokens".into(),
    ] {
        let page = anonymous.get(&path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/admin/login", "{path}");
        assert!(!page.body.contains(&key));
    }
    anonymous.get("/admin/login").await; // a CSRF cookie, so only the session is missing
    for (path, fields) in [
        (
            format!("/admin/licenses/{id}/status"),
            vec![("status", "revoked")],
        ),
        (
            format!("/admin/licenses/{id}/limits"),
            vec![("max_activations", "9"), ("expires_on", "")],
        ),
        (format!("/admin/licenses/{id}/resend"), vec![]),
        ("/admin/products".into(), vec![("name", "Sneaky")]),
        ("/admin/tokens".into(), vec![("name", "sneaky")]),
    ] {
        let page = anonymous.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/admin/login", "{path}");
    }
    assert_eq!(license_status(&app, &key).await, "active");
    assert_eq!(app.count("api_keys").await, 1);
    assert_eq!(app.count("email_outbox").await, 0);
    assert_eq!(app.count("products").await, 1);

    // A buyer's portal session is no dashboard session.
    let mut buyer = Browser::new(&app);
    let token = app
        .db(|conn| {
            licensd::licensing::accounts::open_buyer_session(
                conn,
                "buyer@example.com",
                chrono::Duration::hours(1),
            )
            .unwrap()
        })
        .await;
    buyer.cookies.insert("licensd_session".into(), token);
    assert_eq!(buyer.get("/admin").await.location(), "/admin/login");
}

#[tokio::test]
async fn no_action_without_the_csrf_token_of_the_browser() {
    let app = seller_app(None).await;
    let key = app.license_with_seats(2).await;
    let mut seller = Browser::new(&app);
    seller.sign_in().await;
    let id = app.admin_get(&format!("/v1/licenses/{key}")).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/licenses/{id}/status");
    for csrf in ["", "0000", &"a".repeat(64)] {
        let page = seller
            .post(&path, &[("status", "revoked"), ("csrf", csrf)])
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "csrf {csrf:?}");
        assert!(page.body.contains("did not come from this site"));
    }
    assert_eq!(license_status(&app, &key).await, "active");

    let page = seller.post(&path, &[("status", "revoked")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(license_status(&app, &key).await, "revoked");
    let history = app.admin_get(&format!("/v1/licenses/{key}/history")).await;
    let last = history.body["data"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["actor"],
        json!({ "kind": "user", "name": "seller@example.com" })
    );
    assert_eq!(last["after"], json!({ "status": "revoked" }));

    // Sign-in and the portal's forms need it too.
    let mut stranger = Browser::new(&app);
    let page = stranger
        .post(
            "/admin/login",
            &[("email", "seller@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(!stranger.cookies.contains_key("licensd_session"));
    let page = stranger
        .post("/portal", &[("email", "buyer@example.com")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.count("email_outbox").await, 0);

    // Signing out ends the session for good.
    seller.post("/admin/logout", &[]).await;
    assert_eq!(seller.get("/admin").await.location(), "/admin/login");
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_and_the_session_cookie_is_httponly() {
    let app = seller_app(None).await;
    let mut b = Browser::new(&app);
    b.get("/admin/login").await;
    for _ in 0..5 {
        let page = b
            .post(
                "/admin/login",
                &[
                    ("email", "seller@example.com"),
                    ("password", "wrong password!!"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains("The email or the password is wrong."));
    }
    let page = b
        .post(
            "/admin/login",
            &[("email", "seller@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!b.cookies.contains_key("licensd_session"));

    // Another seller account from another address is not held up... but this address is.
    let mut fresh = Browser::new(&app);
    fresh.get("/admin/login").await;
    let page = fresh
        .post(
            "/admin/login",
            &[("email", "seller@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);

    let app = seller_app(None).await;
    let mut b = Browser::new(&app);
    b.get("/admin/login").await;
    let page = b
        .post(
            "/admin/login",
            &[("email", "SELLER@example.com"), ("password", PASSWORD)],
        )
        .await;
    let cookie = page
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("licensd_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    let token = b.cookies["licensd_session"].clone();
    let stored = app
        .db(move |conn| {
            use diesel::prelude::*;
            use licensd::db::schema::web_sessions::dsl::*;
            web_sessions
                .select(token_sha256)
                .load::<Vec<u8>>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token.as_bytes(), "only the hash is stored");
}

#[tokio::test]
async fn pages_escape_what_buyers_typed_and_forbid_inline_script() {
    let app = seller_app(None).await;
    let slug = "app";
    app.create_product(json!({ "name": "App <b>", "slug": slug, "max_activations": 2 }))
        .await;
    let license = app
        .create_license(
            slug,
            json!({ "email": "evil@example.com", "name": "<script>alert(1)</script>" }),
        )
        .await;
    let key = license["key"].as_str().unwrap();
    app.post(
        "/v1/licenses/activate",
        &json!({ "key": key, "fingerprint": "fp", "name": "<img src=x onerror=alert(1)>" }),
    )
    .await;
    let mut seller = Browser::new(&app);
    seller.sign_in().await;
    let page = seller
        .get(&format!(
            "/admin/licenses/{}",
            license["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(!page.body.contains("<script>"));
    assert!(!page.body.contains("<img src=x"));
    assert!(page.body.contains("App &lt;b&gt;"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    for path in ["/admin/login", "/portal", "/admin"] {
        let p = seller.get(path).await;
        assert!(p.headers.contains_key("content-security-policy"), "{path}");
        assert!(!p.body.contains("<script"), "{path}");
    }
}

#[tokio::test]
async fn a_seller_finds_by_key_email_or_stripe_id_and_manages_the_license() {
    let app = seller_app(None).await;
    let key = app.license_with_seats(2).await;
    app.activate(&key, "laptop").await;
    let mut seller = Browser::new(&app);
    seller.sign_in().await;
    let part = key[6..11].to_lowercase();
    for q in [part.as_str(), "BUYER@example", key.as_str()] {
        let page = seller
            .get(&format!("/admin/licenses?q={}", urlencoding(q)))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&key), "search {q}");
    }
    let none = seller.get("/admin/licenses?q=cus_nobody").await;
    assert!(!none.body.contains(&key));
    let short = seller.get("/admin/licenses?q=ab").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);

    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    let (id, device) = (
        detail["id"].as_str().unwrap(),
        detail["activations"][0]["id"].as_str().unwrap(),
    );
    let page = seller.get(&format!("/admin/licenses/{id}")).await;
    assert!(page.body.contains("laptop"));
    let freed = seller
        .post(&format!("/admin/licenses/{id}/devices/{device}/free"), &[])
        .await;
    assert_eq!(freed.status, StatusCode::SEE_OTHER);
    assert_eq!(validate_with(&app, &key, "laptop").await, "NOT_ACTIVATED");
    let limits = seller
        .post(
            &format!("/admin/licenses/{id}/limits"),
            &[("max_activations", "7"), ("expires_on", "2031-01-31")],
        )
        .await;
    assert_eq!(limits.status, StatusCode::SEE_OTHER, "{}", limits.body);
    let detail = app.admin_get(&format!("/v1/licenses/{key}")).await.body;
    assert_eq!(detail["max_activations"], 7);
    assert_eq!(detail["expires_at"], "2031-01-31T23:59:59Z");
    let bad = seller
        .post(
            &format!("/admin/licenses/{id}/limits"),
            &[("max_activations", "many"), ("expires_on", "")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("max_activations"));

    // Products, tokens, overview.
    let created = seller
        .post(
            "/admin/products",
            &[
                ("name", "Pro"),
                ("prices", "price_a\nprice_b"),
                ("max_activations", "3"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let products = app.admin_get("/v1/products/pro").await.body;
    assert_eq!(products["stripe_price_ids"], json!(["price_a", "price_b"]));
    // The form sets what the API sets: leases, entitlements, expiry, offline files.
    let form = seller.get("/admin/products/pro").await;
    assert!(form.body.contains(r#"name="heartbeat_seconds""#));
    let id = products["id"].as_str().unwrap().to_owned();
    let saved = seller
        .post(
            &format!("/admin/products/{id}"),
            &[
                ("name", "Pro"),
                ("prices", "price_a"),
                ("heartbeat_seconds", "3600"),
                ("entitlements", "export-pdf\nsync"),
                ("expiry_behavior", "maintain_access"),
                ("offline_allowed", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let pro = app.admin_get("/v1/products/pro").await.body;
    assert_eq!(pro["heartbeat_seconds"], 3600);
    assert_eq!(pro["entitlements"], json!(["export-pdf", "sync"]));
    assert_eq!(pro["expiry_behavior"], "maintain_access");
    assert_eq!(pro["offline_allowed"], true);
    let shown = seller.get(&format!("/admin/products/{id}")).await.body;
    assert!(shown.contains(r#"value="3600""#) && shown.contains("export-pdf\nsync"));
    assert!(shown.contains(r#"<option value="maintain_access" selected>"#));
    // Unticking the box, emptying the lease: back to no lease, no offline files.
    let cleared = seller
        .post(
            &format!("/admin/products/{id}"),
            &[
                ("name", "Pro"),
                ("prices", "price_a"),
                ("heartbeat_seconds", ""),
            ],
        )
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER, "{}", cleared.body);
    let pro = app.admin_get("/v1/products/pro").await.body;
    assert_eq!(
        (
            pro["heartbeat_seconds"].clone(),
            pro["offline_allowed"].clone()
        ),
        (json!(null), json!(false))
    );
    // A lease out of range is a form error naming the field, and changes nothing.
    let bad = seller
        .post(
            &format!("/admin/products/{id}"),
            &[("name", "Pro"), ("heartbeat_seconds", "5")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("heartbeat_seconds"));
    assert_eq!(
        app.admin_get("/v1/products/pro").await.body["stripe_price_ids"],
        json!(["price_a"])
    );
    let tokens = seller.post("/admin/tokens", &[("name", "ci")]).await;
    assert_eq!(tokens.status, StatusCode::OK);
    let at = tokens.body.find("lsd_").unwrap();
    let token = tokens.body[at..at + 68].to_owned();
    let works = app
        .send(app.client.get(app.url("/v1/products")).bearer_auth(&token))
        .await;
    assert_eq!(works.status, StatusCode::OK);
    assert!(
        !seller.get("/admin/tokens").await.body.contains(&token),
        "shown once"
    );
    let overview = seller.get("/admin").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("<svg"));
    assert!(overview.body.contains(r#"<dd id="count-active">1</dd>"#));
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_portal_answers_the_same_for_any_email_and_a_link_works_once() {
    let smtp = SmtpServer::start().await;
    let app = seller_app(Some(&smtp)).await;
    let key = app.license_with_seats(2).await;
    let mut b = Browser::new(&app);
    b.get("/portal").await;
    let known = b.post("/portal", &[("email", "Buyer@Example.com")]).await;
    let unknown = b.post("/portal", &[("email", "nobody@example.com")]).await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert!(known
        .body
        .contains("If we know this email, a sign-in link is on its way"));

    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1, "no email for an unknown address");
    assert_eq!(mail[0].to, ["buyer@example.com"]);
    let token = link_token(&mail[0].data);
    let stored = app
        .db(|conn| {
            use diesel::prelude::*;
            use licensd::db::schema::email_outbox::dsl::*;
            email_outbox
                .select(link_url)
                .load::<Option<String>>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        stored,
        [None],
        "the link is wiped from the outbox once sent"
    );

    // The link page itself uses nothing (a mail scanner may fetch it).
    let landing = b.get(&format!("/portal/sign-in?token={token}")).await;
    assert_eq!(landing.status, StatusCode::OK);
    let signed_in = b.post("/portal/sign-in", &[("token", &token)]).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/portal/licenses");
    let page = b.get("/portal/licenses").await;
    assert!(page.body.contains(&key));

    let mut again = Browser::new(&app);
    again.get("/portal").await;
    let reused = again.post("/portal/sign-in", &[("token", &token)]).await;
    assert_eq!(reused.status, StatusCode::GONE);
    assert!(!again.cookies.contains_key("licensd_portal"));
    assert_eq!(again.get("/portal/licenses").await.location(), "/portal");

    // An expired link is refused too.
    let expired = licensd::licensing::accounts::new_token();
    let hash = licensd::licensing::accounts::hash_token(&expired);
    app.db(move |conn| {
        licensd::db::web::insert_portal_link(
            conn,
            &hash,
            "buyer@example.com",
            chrono::Utc::now() - chrono::Duration::minutes(1),
        )
        .unwrap()
    })
    .await;
    let late = again.post("/portal/sign-in", &[("token", &expired)]).await;
    assert_eq!(late.status, StatusCode::GONE);
}

#[tokio::test]
async fn a_buyer_sees_and_touches_only_their_own_licenses_with_a_cooldown() {
    let app = seller_app(None).await;
    let mine = app.license_with_seats(2).await;
    let theirs_json = app
        .create_license(
            app.admin_get(&format!("/v1/licenses/{mine}")).await.body["product"]["slug"]
                .as_str()
                .unwrap(),
            json!({ "email": "other@example.com" }),
        )
        .await;
    let theirs = theirs_json["key"].as_str().unwrap();
    for (key, fp) in [(mine.as_str(), "a"), (mine.as_str(), "b"), (theirs, "x")] {
        assert_eq!(app.activate(key, fp).await.status, StatusCode::CREATED);
    }
    let session = app
        .db(|conn| {
            licensd::licensing::accounts::open_buyer_session(
                conn,
                "BUYER@example.com",
                chrono::Duration::hours(1),
            )
            .unwrap()
        })
        .await;
    let mut b = Browser::new(&app);
    b.get("/portal").await;
    b.cookies.insert("licensd_portal".into(), session);
    let page = b.get("/portal/licenses").await;
    assert!(page.body.contains(&mine));
    assert!(!page.body.contains(theirs));

    let their_id = theirs_json["id"].as_str().unwrap();
    let their_device = app.admin_get(&format!("/v1/licenses/{theirs}")).await.body["activations"]
        [0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = b
        .post(
            &format!("/portal/licenses/{their_id}/devices/{their_device}/free"),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(validate_with(&app, theirs, "x").await, "VALID");

    let detail = app.admin_get(&format!("/v1/licenses/{mine}")).await.body;
    let id = detail["id"].as_str().unwrap();
    let devices: Vec<String> = detail["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    // Their device id on my license: not found, nothing freed.
    let mixed = b
        .post(
            &format!("/portal/licenses/{id}/devices/{their_device}/free"),
            &[],
        )
        .await;
    assert_eq!(mixed.status, StatusCode::NOT_FOUND);
    let freed = b
        .post(
            &format!("/portal/licenses/{id}/devices/{}/free", devices[0]),
            &[],
        )
        .await;
    assert_eq!(freed.status, StatusCode::SEE_OTHER, "{}", freed.body);
    assert_eq!(validate_with(&app, &mine, "a").await, "NOT_ACTIVATED");
    let cooling = b
        .post(
            &format!("/portal/licenses/{id}/devices/{}/free", devices[1]),
            &[],
        )
        .await;
    assert_eq!(cooling.status, StatusCode::CONFLICT);
    assert!(cooling.body.contains("freed recently"));
    assert_eq!(validate_with(&app, &mine, "b").await, "VALID");
    let history = app.admin_get(&format!("/v1/licenses/{mine}/history")).await;
    let last = history.body["data"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["actor"],
        json!({ "kind": "portal", "name": "BUYER@example.com" })
    );

    let resend = b.post("/portal/resend", &[]).await;
    assert_eq!(resend.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("email_outbox WHERE recipient = 'buyer@example.com'")
            .await,
        1
    );
}

#[tokio::test]
async fn user_create_prints_a_password_once_that_signs_in_and_refuses_a_taken_email() {
    let app = seller_app(None).await;
    let url = app.database_url.clone();
    let run = move |args: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_licensd"))
                .args(args)
                .env("DATABASE_URL", url)
                .env("LICENSD_LOG", "warn")
                .env_remove("LICENSD_CONFIG")
                .output()
                .unwrap()
        })
    };
    let out = run(&["user", "create", "--email", "Owner@Example.com"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the password alone on its line: {stdout:?}");
    let password = lines[0].to_owned();
    assert_eq!(password.len(), 20);

    let mut b = Browser::new(&app);
    b.get("/admin/login").await;
    let page = b
        .post(
            "/admin/login",
            &[("email", "owner@example.com"), ("password", &password)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    let again = run(&["user", "create", "--email", "OWNER@example.com"])
        .await
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let help = run(&["user", "create", "--help"]).await.unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--password-stdin"));
}

/// Under a heartbeat lease the license page shows each device alive or dead; a
/// license without a lease has no lease column.
#[tokio::test]
async fn the_license_page_shows_each_device_alive_or_dead_under_its_lease() {
    let app = seller_app(None).await;
    app.create_product(json!({ "name": "Leased", "slug": "leased", "max_activations": 3, "heartbeat_seconds": 600 }))
        .await;
    let license = app
        .create_license("leased", json!({ "send_email": false }))
        .await;
    let (id, key) = (
        license["id"].as_str().unwrap().to_owned(),
        license["key"].as_str().unwrap().to_owned(),
    );
    for fp in ["fresh-device", "silent-device"] {
        assert_eq!(app.activate(&key, fp).await.status, StatusCode::CREATED);
    }
    app.db(|conn| {
        use diesel::prelude::*;
        use licensd::db::schema::activations::dsl::*;
        let n = diesel::update(activations.filter(fingerprint.eq("silent-device")))
            .set(last_seen_at.eq(chrono::Utc::now() - chrono::Duration::seconds(3600)))
            .execute(conn)
            .unwrap();
        assert_eq!(n, 1);
    })
    .await;
    let mut seller = Browser::new(&app);
    seller.sign_in().await;
    let page = seller.get(&format!("/admin/licenses/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |fp: &str| {
        let start = page.body.find(fp).unwrap_or_else(|| panic!("{fp} listed"));
        let end = page.body[start..].find("</tr>").unwrap() + start;
        page.body[start..end].to_owned()
    };
    assert!(page.body.contains(">Lease</th>"));
    assert!(
        row("fresh-device").contains("alive until"),
        "{}",
        row("fresh-device")
    );
    assert!(
        row("silent-device").contains("dead since"),
        "{}",
        row("silent-device")
    );

    let plain = app.license_with_seats(2).await;
    app.activate(&plain, "laptop").await;
    let detail = app.admin_get(&format!("/v1/licenses/{plain}")).await.body;
    let page = seller
        .get(&format!(
            "/admin/licenses/{}",
            detail["id"].as_str().unwrap()
        ))
        .await;
    assert!(page.body.contains("laptop"));
    assert!(!page.body.contains(">Lease</th>"));
    assert!(!page.body.contains("alive until"));
}
