//! Storage: the schema, row models and queries, as sync functions over `&mut PgConnection`.
//!
//! Async code reaches the database only through [`run`]. Nothing here knows about HTTP.

pub mod activations;
pub mod api_keys;
pub mod history;
pub mod imports;
pub mod licenses;
pub mod models;
pub mod outbox;
pub mod products;
pub mod reversals;
pub mod schema;
pub mod signing_keys;
pub mod stats;
pub mod stripe_events;
pub mod subscriptions;
pub mod web;
pub mod webhooks;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool as R2d2Pool, PooledConnection};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};

use crate::error::AppError;

pub type Pool = R2d2Pool<ConnectionManager<PgConnection>>;
pub type Conn = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Arbitrary constant: the advisory lock that serialises migrations across instances.
const MIGRATION_LOCK_ID: i64 = 0x6c69_6365_6e73_6400;

/// Runs `f` with a pooled connection on the blocking thread pool, inside the caller's
/// tracing span. Pool timeouts and broken connections become 503, everything else
/// keeps its `AppError` meaning. A multi-step write is one `conn.transaction` inside `f`.
pub async fn run<F, T>(pool: &Pool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let asked = std::time::Instant::now();
        let conn = pool.get();
        crate::metrics::record_pool_wait(asked.elapsed());
        let mut conn = conn?;
        f(&mut conn)
    })
    .await
    .map_err(AppError::internal)?
}

/// Builds the pool. Connections are not pinged on checkout (that would double the
/// round trips of every request); r2d2 still discards a connection diesel saw break.
pub fn pool(
    database_url: &SecretString,
    max_size: u32,
    timeout: Duration,
) -> Result<Pool, AppError> {
    let manager = ConnectionManager::<PgConnection>::new(database_url.expose_secret());
    R2d2Pool::builder()
        .max_size(max_size)
        .min_idle(Some(max_size.min(4)))
        .connection_timeout(timeout)
        .test_on_check_out(false)
        .build(manager)
        .map_err(AppError::from)
}

/// Creates the database named in `database_url` if it does not exist yet.
pub fn create_database_if_missing(database_url: &SecretString) -> Result<(), AppError> {
    let mut url = url::Url::parse(database_url.expose_secret())
        .map_err(|_| AppError::invalid("DATABASE_URL", "is not a valid postgres:// URL"))?;
    let name = url.path().trim_start_matches('/').to_owned();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::invalid(
            "DATABASE_URL",
            "must name a database made of letters, digits, '_' or '-'",
        ));
    }
    if PgConnection::establish(url.as_str()).is_ok() {
        return Ok(());
    }
    url.set_path("/postgres");
    let mut admin = PgConnection::establish(url.as_str())
        .map_err(|e| AppError::DatabaseUnavailable(Box::new(e)))?;
    match admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")) {
        Ok(()) => {
            tracing::info!(database = %name, "created database");
            Ok(())
        }
        // Another instance created it first.
        Err(e) if e.to_string().contains("already exists") => Ok(()),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) => Err(AppError::internal(e)),
    }
}

/// Applies pending migrations, holding an advisory lock so concurrent instances take turns.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, AppError> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(AppError::Internal);
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))?;
    applied
}

/// Creates the database if needed, migrates it and returns a pool: what `serve` and
/// `migrate` both start with.
pub fn prepare(
    database_url: &SecretString,
    max_size: u32,
    timeout: Duration,
) -> Result<Pool, AppError> {
    create_database_if_missing(database_url)?;
    let pool = pool(database_url, max_size, timeout)?;
    let mut conn = pool.get()?;
    let applied = run_migrations(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    Ok(pool)
}
