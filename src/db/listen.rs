//! A `LISTEN` connection kept alive on a thread of its own: connect, `LISTEN`, read the
//! notifications every tick, prove the connection with a query every ping, and on any
//! failure reconnect with a doubling backoff, until stopped. The email worker (new
//! outbox rows) and the validate cache (changed licenses) each run one.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

/// How often a listener looks, proves and retries.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between two reads of the connection for notifications. diesel has no blocking
    /// wait for them, so it looks often; a look is a non-blocking socket read.
    pub tick: Duration,
    /// Between two `SELECT 1`s, so a connection that died silently is replaced.
    pub ping: Duration,
    /// The first wait before reconnecting; it doubles up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
}

/// What a listener does with what it hears.
pub trait Listener {
    /// The `LISTEN` took effect (at start and after each reconnect).
    fn listening(&self);
    /// Notifications arrived since the last tick, with their payloads.
    fn notified(&self, payloads: &[String]);
    /// The connection failed (`Some(error)`, reconnecting in `retry`) or the listener
    /// was stopped (`None`).
    fn lost(&self, error: Option<&str>, retry: Duration);
}

/// Listens on `channel` until `stopped` turns true (see the module docs).
pub fn run(
    url: &SecretString,
    channel: &str,
    timing: Timing,
    stopped: &watch::Receiver<bool>,
    listener: &impl Listener,
) {
    let mut retry = timing.first_retry;
    loop {
        let error = match listen_on(url, channel, timing, stopped, listener, &mut retry) {
            Ok(()) => return listener.lost(None, retry),
            Err(e) => e,
        };
        listener.lost(Some(&error), retry);
        let until = Instant::now() + retry;
        while Instant::now() < until {
            if *stopped.borrow() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        retry = (retry * 2).min(timing.max_retry);
    }
}

/// Listens until stopped (`Ok`) or until the connection fails.
fn listen_on(
    url: &SecretString,
    channel: &str,
    timing: Timing,
    stopped: &watch::Receiver<bool>,
    listener: &impl Listener,
    retry: &mut Duration,
) -> Result<(), String> {
    // The error names the problem, never the URL.
    let mut conn = PgConnection::establish(url.expose_secret()).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {channel}"))
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    *retry = timing.first_retry;
    tracing::debug!(channel, "listening");
    listener.listening();
    let mut pinged = Instant::now();
    loop {
        if *stopped.borrow() {
            return Ok(());
        }
        let payloads = conn
            .notifications_iter()
            .map(|n| n.map(|n| n.payload).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if !payloads.is_empty() {
            listener.notified(&payloads);
        }
        if pinged.elapsed() >= timing.ping {
            diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .map_err(|e| e.to_string())?;
            pinged = Instant::now();
        }
        std::thread::sleep(timing.tick);
    }
}
