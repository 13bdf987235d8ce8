//! Where requests enter: the HTTP server, its routes and the request-level plumbing.
//! Handlers are thin: they read the request, call `licensing`/`stripe`/`email`
//! through `db::run`, and shape the response.

mod admin;
pub mod compat;
mod connections;
pub mod error;
pub mod extract;
pub mod front;
pub mod limits;
mod metrics;
mod nul;
pub mod openapi;
mod ops;
mod proxy_hint;
mod public;
mod request_log;
pub mod routes;
pub mod signing;
mod ui;
mod webhook;
mod webhook_endpoints;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::email::worker::{Worker, WorkerConfig};
use crate::email::{Mailer, Templates};
use crate::error::AppError;
use crate::licensing::cache::{CacheWorker, LicenseCache};
use crate::licensing::signing::{Signer, SignerCell};
use crate::stripe::StripeApi;

/// What every handler can reach.
pub struct State {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    /// Wakes the email worker when a transaction has queued an email.
    pub mail_wake: Arc<Notify>,
    /// The Stripe API client (line items, subscriptions).
    pub stripe_api: StripeApi,
    /// Signs public answers and license files; refreshed when the key set changes.
    pub signer: Arc<SignerCell>,
    /// Abuse-limit counters of this process (see [`limits`]).
    pub limits: Arc<limits::Limiter>,
    /// The validate cache of this process (see [`crate::licensing::cache`]).
    pub cache: Arc<LicenseCache>,
    /// Which short reads may run on the HTTP workers (see [`db::InlineReads`]).
    pub reads: db::InlineReads,
    /// `GET /openapi.json`, rendered once from the route table.
    pub openapi: web::Bytes,
}

impl State {
    pub fn wake_mailer(&self) {
        self.mail_wake.notify_one();
    }
}

/// Every route the server serves with these settings, in registration order: each
/// module adds its own (see [`routes`]).
pub fn route_table(settings: &Settings) -> routes::Table {
    let mut t = routes::Table::default();
    ops::routes(&mut t);
    metrics::routes(&mut t);
    public::routes(&mut t);
    admin::routes(&mut t);
    webhook_endpoints::routes(&mut t);
    webhook::routes(&mut t);
    compat::routes(&mut t, settings);
    openapi::routes(&mut t);
    t
}

/// Re-reads the key set every `signing_key_refresh_secs`, so a rotation or retirement
/// made by `licensd signing-key` (or another instance) reaches this one.
fn spawn_key_refresh(
    pool: &Pool,
    settings: &Arc<Settings>,
    cell: &Arc<SignerCell>,
) -> tokio::task::JoinHandle<()> {
    let (pool, settings, cell) = (pool.clone(), settings.clone(), cell.clone());
    let every = Duration::from_secs(settings.signing_key_refresh_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await; // the first tick is immediate: the key was just loaded
        loop {
            tick.tick().await;
            let s = settings.clone();
            match db::run(&pool, move |conn| {
                Signer::load(conn, s.signing_key.as_ref())
            })
            .await
            {
                Ok(signer) => {
                    if signer.key_id() != cell.get().key_id() {
                        tracing::info!(key_id = signer.key_id(), "signing key changed");
                    }
                    cell.set(signer);
                }
                Err(e) => tracing::warn!(error = %e, "could not refresh the signing keys"),
            }
        }
    })
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    pool: Pool,
    mail_worker: Worker,
    key_refresh: tokio::task::JoinHandle<()>,
    webhook_worker: tokio::task::JoinHandle<()>,
    cache_worker: CacheWorker,
}

impl Application {
    /// Prepares the database (create, migrate), binds the listener (port 0 picks one)
    /// and builds the server. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, AppError> {
        let settings = Arc::new(settings);
        let trusted_proxies = settings
            .trusted_proxies
            .iter()
            .map(|s| {
                limits::IpNet::parse(s).ok_or_else(|| {
                    AppError::invalid(
                        "LICENSD_TRUSTED_PROXIES",
                        format!("`{s}` is not an IP address or CIDR block"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (pool, signer) = {
            let s = settings.clone();
            tokio::task::spawn_blocking(move || {
                let pool = db::prepare(
                    &s.database_url,
                    s.db_pool_size,
                    Duration::from_secs(s.db_timeout_secs),
                )?;
                let signer = Signer::load(&mut *pool.get()?, s.signing_key.as_ref())?;
                Ok::<_, AppError>((pool, signer))
            })
            .await
            .map_err(AppError::internal)??
        };
        tracing::info!(key_id = signer.key_id(), "signing key loaded");
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| AppError::internal(format!("cannot listen on {}: {e}", settings.bind)))?;
        let port = listener.local_addr().map_err(AppError::internal)?.port();
        let stripe_api =
            StripeApi::new(settings.stripe_api_key.as_ref(), &settings.stripe_api_base)
                .map_err(|e| AppError::invalid("LICENSD_STRIPE_API_BASE", e.to_string()))?;
        let templates = Templates::load(Some(&settings.templates_dir()))
            .map_err(|e| AppError::invalid("email templates", e.to_string()))?;
        let mailer = Mailer::new(
            settings.smtp_url.as_ref(),
            &settings.mail_dir,
            settings.mail_concurrency,
            Duration::from_secs(settings.smtp_timeout_secs),
        )
        .map_err(|e| AppError::invalid("LICENSD_SMTP_URL", e.to_string()))?;
        let connection_cap = connections::ConnectionCap::new(
            settings.max_connections_per_ip,
            trusted_proxies.clone(),
        );
        let mail_wake = Arc::new(Notify::new());
        let signer = Arc::new(SignerCell::new(signer));
        let key_refresh = spawn_key_refresh(&pool, &settings, &signer);
        let cache = Arc::new(LicenseCache::new(
            settings.cache_budget_mib as usize * 1024 * 1024,
            chrono::Duration::seconds(settings.cache_max_stale_secs.try_into().unwrap_or(i64::MAX)),
        ));
        let cache_worker = CacheWorker::spawn(
            cache.clone(),
            pool.clone(),
            settings.database_url.clone(),
            Duration::from_millis(settings.cache_touch_flush_ms.max(10)),
        )
        .map_err(AppError::internal)?;
        let workers = settings.http_workers();
        let table = Arc::new(route_table(&settings));
        let openapi = serde_json::to_vec(&openapi::document(&table, &settings.public_url))
            .map_err(AppError::internal)?;
        let state = web::Data::new(State {
            pool: pool.clone(),
            settings: settings.clone(),
            mail_wake: mail_wake.clone(),
            stripe_api,
            signer: signer.clone(),
            limits: Arc::new(limits::Limiter::new(
                Duration::from_secs(settings.rate_limit_window_secs),
                trusted_proxies,
            )),
            cache,
            reads: db::InlineReads::new(settings.inline_reads(workers)),
            openapi: openapi.into(),
        });

        let body_deadline = web::Data::new(connections::BodyDeadline(Duration::from_secs(
            settings.body_timeout_secs.max(1),
        )));
        let proxy_hint = web::Data::new(proxy_hint::ProxyHint::new(
            !settings.trusted_proxies.is_empty(),
        ));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(proxy_hint.clone())
                .app_data(body_deadline.clone())
                .app_data(web::PayloadConfig::new(state.settings.body_limit_bytes))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| AppError::not_found("resource").into()),
                )
                .wrap(from_fn(nul::reject))
                .wrap(from_fn(proxy_hint::check))
                .wrap(from_fn(connections::body_deadline))
                .wrap(from_fn(connections::refuse_over_cap))
                .wrap(ErrorHandlers::new().default_handler(error::json_error_bodies))
                .wrap(from_fn(metrics::track))
                .wrap(TracingLogger::<request_log::RequestSpan>::new())
                .configure(|cfg| table.configure(cfg))
                .configure(ui::routes)
        })
        .on_connect(move |conn, data| connection_cap.on_connect(conn, data))
        .client_request_timeout(Duration::from_millis(
            settings.client_header_timeout_ms.max(100),
        ))
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(match settings.keep_alive_secs {
            0 => actix_web::http::KeepAlive::Disabled,
            secs => actix_web::http::KeepAlive::Timeout(Duration::from_secs(secs)),
        })
        .listen(listener)
        .map_err(AppError::internal)?
        .shutdown_timeout(settings.shutdown_timeout_secs);
        // Each worker's blocking pool (writes, admin) at the size of the connection pool:
        // a task beyond it would only wait for a connection, and queued tasks cost less
        // memory than idle threads (actix's default is 512 divided among the workers).
        let blocking = (settings.db_pool_size as usize).max(4);
        let server = server
            .workers(workers)
            .worker_max_blocking_threads(blocking)
            .run();
        tracing::info!(port, workers, "licensd listening");
        let mail_worker = Worker::spawn(
            pool.clone(),
            mailer,
            templates,
            WorkerConfig {
                mail_from: settings.mail_from.clone(),
                public_url: settings.public_url.clone(),
                poll: Duration::from_millis(settings.mail_poll_ms.max(10)),
                retry_base: Duration::from_millis(settings.mail_retry_base_ms.max(10)),
                max_attempts: settings.mail_max_attempts,
                concurrency: settings.mail_concurrency.max(1) as usize,
                listen_url: Some(settings.database_url.clone()),
                portal_link_minutes: settings.portal_link_ttl_minutes,
            },
            mail_wake,
        );
        let webhook_worker = crate::webhooks::spawn(
            pool.clone(),
            crate::webhooks::WorkerConfig {
                poll: Duration::from_millis(settings.webhook_poll_ms.max(10)),
                retry_base: Duration::from_millis(settings.webhook_retry_base_ms.max(10)),
                max_attempts: settings.webhook_max_attempts.max(1),
                timeout: Duration::from_secs(settings.webhook_timeout_secs.max(1)),
            },
        );
        Ok(Application {
            port,
            server,
            pool,
            mail_worker,
            key_refresh,
            webhook_worker,
            cache_worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish and stops the
    /// email worker (an email being sent is finished first).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.key_refresh.abort();
        self.webhook_worker.abort();
        self.mail_worker.stop().await;
        self.cache_worker.stop().await;
        served
    }
}
