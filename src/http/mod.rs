//! Where requests enter: the HTTP server, its routes and the request-level plumbing.
//! Handlers are thin: they read the request, call `licensing`/`stripe`/`email`
//! through `db::run`, and shape the response.

mod admin;
pub mod error;
pub mod extract;
pub mod limits;
pub mod openapi;
mod ops;
mod public;
mod request_log;
pub mod signing;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::ErrorHandlers;
use actix_web::{web, App, HttpServer};
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::error::AppError;
use crate::licensing::signing::Signer;

/// What every handler can reach.
pub struct State {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    /// Wakes the email worker when a transaction has queued an email.
    pub mail_wake: Arc<Notify>,
    /// Signs public answers and license files.
    pub signer: Arc<Signer>,
    /// Abuse-limit counters of this process (see [`limits`]).
    pub limits: Arc<limits::Limiter>,
}

impl State {
    pub fn wake_mailer(&self) {
        self.mail_wake.notify_one();
    }
}

/// Every route the server registers, as (method, path template as in the OpenAPI
/// document). tests/api/openapi.rs checks each is live and documented, and that the
/// document lists nothing else. Add a module's list here when adding its routes.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    [ops::ROUTES, public::ROUTES, admin::ROUTES, openapi::ROUTES].concat()
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    pool: Pool,
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
        let state = web::Data::new(State {
            pool: pool.clone(),
            settings: settings.clone(),
            mail_wake: Arc::new(Notify::new()),
            signer: Arc::new(signer),
            limits: Arc::new(limits::Limiter::new(
                Duration::from_secs(settings.rate_limit_window_secs),
                trusted_proxies,
            )),
        });

        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(state.settings.body_limit_bytes))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| AppError::not_found("resource").into()),
                )
                .wrap(ErrorHandlers::new().default_handler(error::json_error_bodies))
                .wrap(TracingLogger::<request_log::RequestSpan>::new())
                .configure(ops::routes)
                .configure(public::routes)
                .configure(admin::routes)
                .configure(openapi::routes)
        })
        .listen(listener)
        .map_err(AppError::internal)?
        .shutdown_timeout(settings.shutdown_timeout_secs);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server.run();
        tracing::info!(port, "licensd listening");
        Ok(Application { port, server, pool })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
