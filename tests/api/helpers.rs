#![allow(dead_code)] // shared helpers: not every test binary build uses every one
//! `spawn_app()`: the real server on port 0 against a fresh Postgres database of its
//! own (copied from a migrated template, dropped afterwards), with typed helpers.

use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use licensd::config::{LogFormat, Settings};
use licensd::db::{self, Pool};
use licensd::Application;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The server this test suite talks to; override with `TEST_DATABASE_SERVER`.
fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The URL of database `db` on that server. Without TLS: the suite's servers keep libpq
/// connections open on background threads (LISTEN, cache, workers) when the test process
/// exits, and OpenSSL's exit-time cleanup under a live TLS connection crashed the process
/// (SIGSEGV after every test had passed). TLS to Postgres is not what these tests test.
fn database_url(db: &str) -> String {
    format!("{}/{db}?sslmode=disable", server_url())
}

fn admin_connection() -> PgConnection {
    let url = database_url("postgres");
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!("cannot reach Postgres at {url} ({e}). Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    })
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// A migrated template database, named after the migrations it holds, built once
/// (under an advisory lock, so parallel test processes share it).
fn template() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut hasher = Sha256::new();
        let mut dirs: Vec<_> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .expect("migrations folder")
                .map(|e| e.unwrap().path())
                .collect();
        dirs.sort();
        for dir in dirs {
            hasher.update(dir.file_name().unwrap().to_string_lossy().as_bytes());
            hasher.update(std::fs::read(dir.join("up.sql")).unwrap_or_default());
        }
        let name = format!("licensd_tmpl_{}", &hex::encode(hasher.finalize())[..16]);
        let mut admin = admin_connection();
        admin
            .batch_execute("SELECT pg_advisory_lock(7355608)")
            .unwrap();
        let exists: bool = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result::<Exists>(&mut admin)
        .unwrap()
        .exists;
        if !exists {
            let building = format!("{name}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
                .unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .unwrap();
            {
                let mut conn = PgConnection::establish(&database_url(&building)).unwrap();
                db::run_migrations(&mut conn).unwrap();
            }
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .unwrap();
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(7355608)")
            .unwrap();
        name
    })
}

fn create_test_database() -> String {
    let name = format!("licensd_test_{}", uuid::Uuid::new_v4().simple());
    let template = template();
    admin_connection()
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .unwrap();
    name
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub database_url: String,
    pub db_name: String,
    pub pool: Pool,
    pub admin_token: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub mail_dir: tempdir::TempDir,
}

/// Test settings: a database of its own, port 0, one worker, quiet unless TEST_LOG=1.
pub fn test_settings() -> Settings {
    let mut settings = Settings::defaults().expect("default config parses");
    settings.bind = "127.0.0.1:0".into();
    settings.workers = 1;
    settings.db_pool_size = 10;
    settings.log_format = LogFormat::Pretty;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after `configure` has adjusted the test settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        licensd::telemetry::init("info,licensd=debug", LogFormat::Pretty);
    }
    let db_name = tokio::task::spawn_blocking(create_test_database)
        .await
        .unwrap();
    let database_url = database_url(&db_name);
    let mail_dir = tempdir::TempDir::new();
    let mut settings = test_settings();
    settings.database_url = SecretString::from(database_url.clone());
    settings.mail_dir = mail_dir.path().to_owned();
    configure(&mut settings);

    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let port = app.port();
    let pool = app.pool().clone();
    tokio::spawn(app.run_until_stopped());

    let admin_token = licensd::cli::new_token();
    let hash = Sha256::digest(admin_token.as_bytes()).to_vec();
    let p = pool.clone();
    tokio::task::spawn_blocking(move || {
        db::api_keys::insert(&mut p.get().unwrap(), "test", &hash).unwrap()
    })
    .await
    .unwrap();

    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        database_url,
        db_name,
        pool,
        admin_token,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        settings,
        mail_dir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let name = self.db_name.clone();
        // Drop blocks, so it runs on a thread of its own, outside the async runtime.
        let _ = std::thread::spawn(move || {
            let _ = admin_connection()
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        })
        .join();
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.body))
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        Reply::from(req.send().await.expect("request sent")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn admin_get(&self, path: &str) -> Reply {
        self.send(
            self.client
                .get(self.url(path))
                .bearer_auth(&self.admin_token),
        )
        .await
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            self.client
                .post(self.url(path))
                .bearer_auth(&self.admin_token)
                .json(body),
        )
        .await
    }

    pub async fn admin_patch(&self, path: &str, body: &Value) -> Reply {
        self.send(
            self.client
                .patch(self.url(path))
                .bearer_auth(&self.admin_token)
                .json(body),
        )
        .await
    }

    pub async fn admin_delete(&self, path: &str) -> Reply {
        self.send(
            self.client
                .delete(self.url(path))
                .bearer_auth(&self.admin_token),
        )
        .await
    }

    /// Creates a product and returns its JSON.
    pub async fn create_product(&self, body: Value) -> Value {
        let reply = self.admin_post("/v1/products", &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// Creates a license (no email) and returns its JSON.
    pub async fn create_license(&self, product: &str, extra: Value) -> Value {
        let mut body =
            json!({ "product": product, "email": "buyer@example.com", "send_email": false });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let reply = self.admin_post("/v1/licenses", &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// A product with `max_activations` seats and one license for it; returns the key.
    pub async fn license_with_seats(&self, seats: i64) -> String {
        let slug = format!("app-{}", uuid::Uuid::new_v4().simple());
        self.create_product(json!({ "name": "App", "slug": slug, "max_activations": seats }))
            .await;
        self.create_license(&slug, json!({})).await["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn validate(&self, body: Value) -> Reply {
        self.post("/v1/licenses/validate", &body).await
    }

    pub async fn activate(&self, key: &str, fingerprint: &str) -> Reply {
        self.post(
            "/v1/licenses/activate",
            &json!({ "key": key, "fingerprint": fingerprint }),
        )
        .await
    }

    pub async fn deactivate(&self, body: Value) -> Reply {
        self.post("/v1/licenses/deactivate", &body).await
    }

    /// Runs a query against this test's database.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut pool.get().unwrap()))
            .await
            .unwrap()
    }
}

/// A folder removed when dropped (std only, no extra crate).
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let path = std::env::temp_dir()
                .join(format!("licensd-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// --- Stripe and email -------------------------------------------------------

/// The webhook signing secret the Stripe test apps are configured with.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

/// A Stripe event fixture from `tests/fixtures/stripe/`, as JSON.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A fixture with a fresh event id (Stripe gives every delivery of an event one id;
/// distinct events have distinct ids).
pub fn event(name: &str) -> Value {
    let mut e = fixture(name);
    e["id"] = json!(format!("evt_{}", uuid::Uuid::new_v4().simple()));
    e
}

/// A line item as `GET /v1/checkout/sessions/{id}/line_items` returns it.
pub fn line_item(id: &str, price: &str, quantity: u64) -> Value {
    json!({
        "id": id,
        "object": "item",
        "adjustable_quantity": null,
        "amount_discount": 0,
        "amount_subtotal": 2500 * quantity,
        "amount_tax": 0,
        "amount_total": 2500 * quantity,
        "currency": "usd",
        "description": "App",
        "discounts": [],
        "metadata": {},
        "price": {
            "id": price,
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "created": 1_700_000_000,
            "currency": "usd",
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": null,
            "metadata": {},
            "nickname": null,
            "product": "prod_RBapp",
            "recurring": null,
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": "one_time",
            "unit_amount": 2500,
            "unit_amount_decimal": "2500"
        },
        "quantity": quantity,
        "taxes": []
    })
}

/// A local fake of the Stripe API (wiremock) serving Stripe-shaped JSON.
pub struct FakeStripe {
    pub server: wiremock::MockServer,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let stripe = FakeStripe {
            server: wiremock::MockServer::start().await,
        };
        stripe.defaults().await;
        stripe
    }

    /// What Stripe answers when a test mounts nothing more specific: a payment intent
    /// that paid no invoice has an empty `invoice_payments` list.
    async fn defaults(&self) {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        Mock::given(method("GET"))
            .and(path("/v1/invoice_payments"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "object": "list", "data": [], "has_more": false, "url": "/v1/invoice_payments"
            })))
            .with_priority(u8::MAX)
            .mount(&self.server)
            .await;
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Serves the session's line items one per page, linked by `starting_after`, so
    /// every fetch must follow `has_more` to see them all.
    pub async fn line_items(&self, session: &str, items: &[Value]) {
        use wiremock::matchers::{method, path, query_param, query_param_is_missing};
        use wiremock::{Mock, ResponseTemplate};
        let url = format!("/v1/checkout/sessions/{session}/line_items");
        for (i, item) in items.iter().enumerate() {
            let page = json!({
                "object": "list",
                "data": [item],
                "has_more": i + 1 < items.len(),
                "url": url,
            });
            let mock = Mock::given(method("GET")).and(path(url.as_str()));
            let mock = if i == 0 {
                mock.and(query_param_is_missing("starting_after"))
            } else {
                mock.and(query_param(
                    "starting_after",
                    items[i - 1]["id"].as_str().unwrap(),
                ))
            };
            mock.respond_with(ResponseTemplate::new(200).set_body_json(page))
                .mount(&self.server)
                .await;
        }
    }

    /// Serves a subscription whose current period ends at `period_end` (on its item,
    /// where current API versions put it).
    pub async fn subscription(&self, id: &str, period_end: i64) {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        let body = json!({
            "id": id, "object": "subscription", "status": "active",
            "items": { "object": "list", "has_more": false, "url": "/v1/subscription_items",
                "data": [{ "id": "si_1", "object": "subscription_item",
                           "current_period_start": period_end - 30 * 86_400,
                           "current_period_end": period_end }] }
        });
        Mock::given(method("GET"))
            .and(path(format!("/v1/subscriptions/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&self.server)
            .await;
    }

    /// `GET /v1/subscriptions/{id}` answers 404, as Stripe does for a deleted one.
    pub async fn no_such_subscription(&self, id: &str) {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        Mock::given(method("GET"))
            .and(path(format!("/v1/subscriptions/{id}")))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "error": { "type": "invalid_request_error", "code": "resource_missing",
                           "param": "id", "message": format!("No such subscription: '{id}'") }
            })))
            .mount(&self.server)
            .await;
    }

    /// Every request fails with a 500 until [`FakeStripe::recover`].
    pub async fn fail(&self) {
        use wiremock::{matchers::any, Mock, ResponseTemplate};
        self.server.reset().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(500).set_body_json(json!({
                "error": { "type": "api_error", "message": "An unknown error occurred" }
            })))
            .mount(&self.server)
            .await;
    }

    pub async fn recover(&self) {
        self.server.reset().await;
        self.defaults().await;
    }
}

/// An app wired to `stripe` (webhook secret, API key, base URL) and, if given, to a
/// test SMTP server; the email worker polls and retries fast.
pub async fn spawn_stripe_app(
    stripe: &FakeStripe,
    smtp: Option<&crate::smtp_server::SmtpServer>,
) -> TestApp {
    let base = stripe.url();
    let smtp_url = smtp.map(|s| s.url());
    spawn_app_with(move |s| {
        s.stripe_webhook_secrets = vec![SecretString::from(WEBHOOK_SECRET)];
        s.stripe_api_key = Some(SecretString::from("sk_test_fake"));
        s.stripe_api_base = base;
        s.smtp_url = smtp_url.map(SecretString::from);
        s.mail_poll_ms = 100;
        s.mail_retry_base_ms = 100;
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TestApp {
    /// Posts `body` to the webhook with the given `Stripe-Signature` header (or none).
    pub async fn post_webhook_raw(&self, body: &str, signature: Option<&str>) -> Reply {
        let mut req = self
            .client
            .post(self.url("/webhooks/stripe"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(sig) = signature {
            req = req.header("stripe-signature", sig);
        }
        self.send(req).await
    }

    /// Posts an event signed now with [`WEBHOOK_SECRET`], as Stripe would.
    pub async fn post_webhook(&self, event: &Value) -> Reply {
        let body = event.to_string();
        let sig = licensd::stripe::signature::sign(
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        self.post_webhook_raw(&body, Some(&sig)).await
    }

    /// `SELECT count(*)` over `table_and_filter`, e.g. `"licenses WHERE source = 'stripe'"`.
    pub async fn count(&self, table_and_filter: &str) -> i64 {
        let sql = format!("SELECT count(*) AS n FROM {table_and_filter}");
        self.db(move |conn| diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n)
            .await
    }

    /// The keys minted from a checkout session, in line item and seat order.
    pub async fn keys_of_session(&self, session: &str) -> Vec<String> {
        let session = session.to_owned();
        self.db(move |conn| {
            use diesel::prelude::*;
            use licensd::db::schema::licenses::dsl::*;
            licenses
                .filter(stripe_checkout_session_id.eq(session))
                .order((stripe_line_item_id, stripe_line_item_seq))
                .select(key)
                .load::<String>(conn)
                .unwrap()
        })
        .await
    }

    /// The `validate` code of a key.
    pub async fn validate_code(&self, key: &str) -> String {
        let reply = self.validate(json!({ "key": key })).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["code"].as_str().unwrap().to_owned()
    }

    /// Polls the admin view of a license until `done(email_status)` or 15 s pass.
    pub async fn wait_for_email_status(&self, key: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let status =
                self.admin_get(&format!("/v1/licenses/{key}")).await.body["email_status"].clone();
            if done(&status) || std::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// A response with its body bytes exactly as sent (for signature checks).
#[derive(Debug)]
pub struct RawReply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
    /// The exact request body that was sent.
    pub request: Vec<u8>,
}

impl RawReply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).expect("a JSON body")
    }

    /// The `Licensd-Signature` header.
    pub fn signature(&self) -> &str {
        self.headers
            .get("licensd-signature")
            .unwrap_or_else(|| panic!("no Licensd-Signature header ({})", self.status))
            .to_str()
            .unwrap()
    }
}

impl TestApp {
    pub async fn post_exact(&self, path: &str, body: &Value) -> RawReply {
        let request = serde_json::to_vec(body).unwrap();
        let res = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(request.clone())
            .send()
            .await
            .expect("request sent");
        RawReply {
            status: res.status(),
            headers: res.headers().clone(),
            bytes: res.bytes().await.unwrap().to_vec(),
            request,
        }
    }

    /// The server's public key, from `GET /v1/signing-key`.
    pub async fn public_key(&self) -> licensd_client::PublicKey {
        let reply = self.get("/v1/signing-key").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        licensd_client::PublicKey::from_base64(reply.body["public_key"].as_str().unwrap()).unwrap()
    }
}
