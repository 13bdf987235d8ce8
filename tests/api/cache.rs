//! The validate cache across processes: three `licensd serve` on one database, each
//! answering validate from its own cache, see a change made through another (or
//! straight in SQL) within 100 ms; refreshes queued by cached validates reach the
//! database on shutdown.

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Child;

use crate::helpers::{spawn_app, TestApp};

/// One `licensd serve` on the test database, with `env` on top of quiet defaults.
struct Instance {
    child: Child,
    url: String,
}

async fn serve(app: &TestApp, env: &[(&str, &str)]) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_licensd"));
    cmd.arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("LICENSD_BIND", format!("127.0.0.1:{port}"))
        .env("LICENSD_WORKERS", "1")
        .env("LICENSD_LOG", "warn")
        .env("LICENSD_MAIL_DIR", app.mail_dir.path())
        .env("LICENSD_RATE_LIMIT_REQUESTS_PER_IP", "1000000")
        .env_remove("LICENSD_CONFIG")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(res) = app.client.get(format!("{url}/readyz")).send().await {
            if res.status() == StatusCode::OK {
                return Instance { child, url };
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("licensd serve on port {port} did not become ready");
}

impl Instance {
    async fn validate(&self, app: &TestApp, body: &Value) -> Value {
        let res = app
            .client
            .post(format!("{}/v1/licenses/validate", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// `licensd_validate_cache_total{result}` of this process.
    async fn cache_count(&self, app: &TestApp, result: &str) -> u64 {
        let text = app
            .client
            .get(format!("{}/metrics", self.url))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("licensd_validate_cache_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// Polls validate on `instance` until its code is `want`; the time it took from `since`.
async fn seen_after(
    app: &TestApp,
    instance: &Instance,
    body: &Value,
    want: &str,
    since: Instant,
) -> Duration {
    loop {
        let answer = instance.validate(app, body).await;
        if answer["code"] == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{want} never seen: {answer}"
        );
    }
}

async fn three_warm_instances(app: &TestApp, body: &Value) -> Vec<Instance> {
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(serve(app, &[]).await);
    }
    for i in &instances {
        // Up to a few misses while the listener connects, then hits.
        let t = Instant::now();
        while i.cache_count(app, "hit").await < 3 {
            assert_eq!(i.validate(app, body).await["code"], "VALID");
            assert!(t.elapsed() < Duration::from_secs(10), "never cached");
        }
    }
    instances
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_seen_by_validate_on_the_others_within_100_ms() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "App", "slug": "app" }))
        .await;
    let license = app.create_license("app", json!({})).await;
    let key = license["key"].as_str().unwrap().to_owned();
    let body = json!({ "key": key });
    let instances = three_warm_instances(&app, &body).await;

    // Revoked through the admin API of instance 0.
    let res = app
        .client
        .patch(format!("{}/v1/licenses/{key}", instances[0].url))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "status": "revoked" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let committed = Instant::now();
    let (a, b, c) = tokio::join!(
        seen_after(&app, &instances[0], &body, "REVOKED", committed),
        seen_after(&app, &instances[1], &body, "REVOKED", committed),
        seen_after(&app, &instances[2], &body, "REVOKED", committed),
    );
    for (i, took) in [a, b, c].into_iter().enumerate() {
        assert!(
            took < Duration::from_millis(100),
            "instance {i} saw the revocation after {took:?}"
        );
    }
    let hits_before: u64 = {
        let mut n = 0;
        for i in &instances {
            n += i.cache_count(&app, "hit").await;
        }
        n
    };

    // Any writer is covered, even one going around licensd: status back to active in SQL.
    let url = app.database_url.clone();
    let id = license["id"].as_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        diesel::PgConnection::establish(&url)
            .unwrap()
            .batch_execute(&format!(
                "UPDATE licenses SET status = 'active' WHERE id = '{id}'"
            ))
            .unwrap();
    })
    .await
    .unwrap();
    let committed = Instant::now();
    let (a, b, c) = tokio::join!(
        seen_after(&app, &instances[0], &body, "VALID", committed),
        seen_after(&app, &instances[1], &body, "VALID", committed),
        seen_after(&app, &instances[2], &body, "VALID", committed),
    );
    for (i, took) in [a, b, c].into_iter().enumerate() {
        assert!(
            took < Duration::from_millis(100),
            "instance {i} saw the SQL change after {took:?}"
        );
    }
    // The answers between the changes came from the caches, not from Postgres.
    assert!(hits_before >= 9, "{hits_before} cache hits");
    for i in instances {
        i.stop().await;
    }
}

#[tokio::test]
async fn an_activation_on_one_instance_is_seen_by_the_others_and_refreshes_survive_shutdown() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "App", "slug": "app" }))
        .await;
    let key = app.create_license("app", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_device = json!({ "key": key, "fingerprint": "laptop" });
    let instances = three_warm_instances(&app, &json!({ "key": key })).await;
    for i in &instances {
        assert_eq!(
            i.validate(&app, &with_device).await["code"],
            "NOT_ACTIVATED"
        );
    }
    let res = app
        .client
        .post(format!("{}/v1/licenses/activate", instances[2].url))
        .json(&with_device)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let committed = Instant::now();
    for i in &instances {
        let took = seen_after(&app, i, &with_device, "VALID", committed).await;
        assert!(took < Duration::from_millis(100), "seen after {took:?}");
    }
    instances_stop(instances).await;

    // A fourth instance that writes due last_seen_at refreshes (every 2 s per device)
    // only every 10 minutes: they wait in memory, and SIGTERM must write them.
    let lazy = serve(
        &app,
        &[
            ("LICENSD_LAST_SEEN_INTERVAL_SECS", "2"),
            ("LICENSD_CACHE_TOUCH_FLUSH_MS", "600000"),
        ],
    )
    .await;
    let t = Instant::now();
    while lazy.cache_count(&app, "hit").await < 1 {
        assert_eq!(lazy.validate(&app, &with_device).await["code"], "VALID");
        assert!(t.elapsed() < Duration::from_secs(10), "never cached");
    }
    let before = last_seen(&app).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let hits = lazy.cache_count(&app, "hit").await;
    for _ in 0..3 {
        assert_eq!(lazy.validate(&app, &with_device).await["code"], "VALID");
    }
    assert_eq!(lazy.cache_count(&app, "hit").await, hits + 3);
    assert_eq!(last_seen(&app).await, before, "written before the flush");
    lazy.stop().await;
    let after = last_seen(&app).await;
    assert!(after > before, "last_seen_at {before} -> {after}");
}

async fn instances_stop(instances: Vec<Instance>) {
    for i in instances {
        i.stop().await;
    }
}

async fn last_seen(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    use diesel::prelude::*;
    use licensd::db::schema::activations;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        activations::table
            .select(activations::last_seen_at)
            .first(&mut pool.get().unwrap())
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn cached_validates_keep_a_live_lease_alive_across_instances_and_never_revive_a_dead_one() {
    let app = spawn_app().await;
    // A 10 s lease (the shortest allowed): a device refreshes it every 2.5 s.
    app.create_product(json!({ "name": "App", "slug": "app", "heartbeat_seconds": 10 }))
        .await;
    let key = app.create_license("app", json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = json!({ "key": key, "fingerprint": "laptop" });
    let (a, b) = (serve(&app, &[]).await, serve(&app, &[]).await);
    let res = app
        .client
        .post(format!("{}/v1/licenses/activate", a.url))
        .json(&device)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    for i in [&a, &b] {
        assert_eq!(i.validate(&app, &device).await["code"], "VALID");
    }
    // The device validates on A only, for longer than the lease; B still sees it alive,
    // so A's refreshes (answered from A's cache) reached the database and B's cache.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(13) {
        assert_eq!(a.validate(&app, &device).await["code"], "VALID");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(a.cache_count(&app, "hit").await > 10);
    assert_eq!(b.validate(&app, &device).await["code"], "VALID");
    assert!(b.cache_count(&app, "hit").await + b.cache_count(&app, "miss").await >= 2);
    // Silent past its lease: dead on both, from the cached rows and the clock alone, and
    // validating again does not bring it back.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    for i in [&a, &b, &a] {
        assert_eq!(i.validate(&app, &device).await["code"], "LEASE_EXPIRED");
    }
    a.stop().await;
    b.stop().await;
}
