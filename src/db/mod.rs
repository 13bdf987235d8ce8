//! Storage: the schema, row models and queries, as sync functions over `&mut PgConnection`.
//!
//! Async code reaches the database only through [`run`]. Nothing here knows about HTTP.

pub mod activations;
pub mod api_keys;
pub mod history;
pub mod imports;
pub mod licenses;
pub mod listen;
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

/// Where short reads for a request run: right on the calling HTTP worker, or on the
/// blocking pool like [`run`].
///
/// A validate miss is one prepared statement of well under a millisecond. Handing it to the
/// blocking pool costs more than the read (thread wake-ups, a pool checkout that may wait)
/// and makes the latency tail; run on the worker it does not (BENCHMARKS.md,
/// "Threading"). But a worker that reads cannot answer anything else meanwhile, so a read
/// runs inline only when a pooled connection is idle this moment (it never waits for one,
/// nor opens one) and fewer than `limit` reads already run inline: a database that stops
/// answering holds at most `limit` workers, the others go on answering from the validate
/// cache. The default limit is every worker (keeping some back measured a worse tail);
/// `LICENSD_DB_INLINE_READS` lowers it for a distant Postgres.
#[derive(Debug)]
pub struct InlineReads {
    limit: usize,
    running: std::sync::atomic::AtomicUsize,
}

impl InlineReads {
    /// `limit` 0: every read goes to the blocking pool.
    pub fn new(limit: usize) -> Self {
        InlineReads {
            limit,
            running: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Runs `f` inline when allowed (see the type's docs), otherwise like [`run`].
    pub async fn read<F, T>(&self, pool: &Pool, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(_slot) = self.slot() {
            if let Some(mut conn) = pool.try_get() {
                crate::metrics::record_pool_wait(Duration::ZERO);
                return f(&mut conn);
            }
        }
        run(pool, f).await
    }

    fn slot(&self) -> Option<InlineSlot<'_>> {
        use std::sync::atomic::Ordering;
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| InlineSlot(&self.running))
    }
}

/// One inline read in progress; given back when dropped (also on a panic).
struct InlineSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InlineSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
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

#[cfg(test)]
mod tests {
    use super::InlineReads;

    #[test]
    fn inline_reads_never_exceed_the_limit_and_give_slots_back() {
        let reads = InlineReads::new(2);
        let a = reads.slot().expect("first slot");
        let b = reads.slot().expect("second slot");
        assert!(
            reads.slot().is_none(),
            "a third read must go to the blocking pool"
        );
        drop(a);
        let c = reads.slot().expect("a slot given back is free again");
        drop((b, c));
        // A panicking read gives its slot back too.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _slot = reads.slot();
            panic!("read failed");
        }));
        assert!(panicked.is_err());
        assert_eq!(reads.running.load(std::sync::atomic::Ordering::Acquire), 0);
        assert!(
            InlineReads::new(0).slot().is_none(),
            "limit 0: never inline"
        );
    }
}
