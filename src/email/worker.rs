//! The email worker: claims due outbox rows (`FOR UPDATE SKIP LOCKED`, with a lease so
//! a crashed worker's row is retried), renders and sends them, and records the result.
//! Failures back off exponentially. It wakes when a request queued an email, and
//! polls for rows other instances queued and for retries that fell due.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{build_message, LicenseEmail, Mailer, Templates};
use crate::db::{self, models::OutboxEmail, outbox, Pool};

/// How long a claim holds a row; longer than any send can take ([`super::SMTP_TIMEOUT`]),
/// so a row is only re-claimed when its worker is gone.
const LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What the worker needs, taken from the settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub mail_from: String,
    pub public_url: String,
    pub poll: Duration,
    pub retry_base: Duration,
    /// After this many failed attempts an email is marked `failed` (0: never).
    pub max_attempts: u32,
}

/// The running worker; [`Worker::stop`] lets a send in progress finish.
pub struct Worker {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Worker {
    pub fn spawn(
        pool: Pool,
        mailer: Mailer,
        templates: Templates,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(run(pool, mailer, templates, config, wake, stopped));
        Worker { stop, handle }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// The wait before attempt `attempts + 1`: base × 2^(attempts − 1), capped.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

async fn run(
    pool: Pool,
    mailer: Mailer,
    templates: Templates,
    config: WorkerConfig,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    tracing::info!(mailer = ?mailer, "email worker started");
    loop {
        // Send everything that is due, one row at a time.
        loop {
            if *stopped.borrow() {
                return;
            }
            let claimed = db::run(&pool, |conn| {
                Ok(outbox::claim_next(conn, Utc::now() + LEASE)?)
            })
            .await;
            match claimed {
                Ok(Some(email)) => deliver(&pool, &mailer, &templates, &config, email).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "email worker cannot reach the database");
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(config.poll) => {}
            _ = stopped.changed() => return,
        }
    }
}

async fn deliver(
    pool: &Pool,
    mailer: &Mailer,
    templates: &Templates,
    config: &WorkerConfig,
    email: OutboxEmail,
) {
    let id = email.id;
    let attempts = u32::try_from(email.attempts).unwrap_or(u32::MAX);
    let result = send(pool, mailer, templates, config, &email).await;
    let recorded = match result {
        Ok(()) => {
            tracing::info!(email_id = %id, attempts, "license email sent");
            db::run(pool, move |conn| {
                if !outbox::mark_sent(conn, id)? {
                    tracing::warn!(email_id = %id, "email sent after its claim expired");
                }
                Ok(())
            })
            .await
        }
        Err(Failure { error, permanent }) => {
            crate::metrics::record_email_send_failure();
            let give_up = permanent || (config.max_attempts > 0 && attempts >= config.max_attempts);
            let wait = backoff(config.retry_base, attempts);
            tracing::warn!(email_id = %id, attempts, give_up, retry_in_ms = wait.as_millis() as u64, %error, "license email not sent");
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(LEASE);
            let error = error.chars().take(1000).collect::<String>();
            db::run(pool, move |conn| {
                Ok(outbox::mark_failed(conn, id, &error, next, give_up)?)
            })
            .await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the row is claimed again.
        tracing::error!(email_id = %id, error = %e, "cannot record the email's result");
    }
}

/// Why a send failed; a permanent failure (a bad address, a template that cannot
/// render) is not retried, since retrying cannot help.
struct Failure {
    error: String,
    permanent: bool,
}

impl Failure {
    fn retry(e: impl ToString) -> Self {
        Failure {
            error: e.to_string(),
            permanent: false,
        }
    }

    fn permanent(e: impl ToString) -> Self {
        Failure {
            error: e.to_string(),
            permanent: true,
        }
    }
}

async fn send(
    pool: &Pool,
    mailer: &Mailer,
    templates: &Templates,
    config: &WorkerConfig,
    email: &OutboxEmail,
) -> Result<(), Failure> {
    let row = email.clone();
    let rows = db::run(pool, move |conn| Ok(outbox::licenses_of(conn, &row)?))
        .await
        .map_err(Failure::retry)?;
    if rows.is_empty() {
        return Err(Failure::permanent(
            "the licenses of this email no longer exist",
        ));
    }
    let ctx = LicenseEmail::new(&email.recipient, &rows, &config.public_url);
    let rendered = templates.render(&ctx).map_err(Failure::permanent)?;
    let message = build_message(email.id, &config.mail_from, &email.recipient, rendered)
        .map_err(Failure::permanent)?;
    mailer.send(message).await.map_err(Failure::retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
        assert_eq!(backoff(base, u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(base, 0), Duration::from_secs(30));
    }
}
