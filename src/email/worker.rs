//! The email worker: claims due outbox rows (`FOR UPDATE SKIP LOCKED`, with a lease so
//! a crashed worker's row is retried), renders and sends them, up to
//! `mail_concurrency` at once, and records each result on its own. Failures back off
//! exponentially. It wakes when any instance queues an email (Postgres `LISTEN` on
//! [`outbox::CHANNEL`], on a connection of its own), and polls for retries that fell
//! due and for anything a lost notification would have missed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel::{Connection, PgConnection};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use secrecy::SecretString;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{build_message, LicenseEmail, Mailer, Templates};
use crate::db::{self, models::OutboxEmail, outbox, Pool};
use crate::error::AppError;
use crate::licensing::history::{self, Actor};
use serde_json::json;
use uuid::Uuid;

/// How long a claim holds a row; longer than any send can take ([`super::MAX_SMTP_TIMEOUT`]),
/// so a row is only re-claimed when its worker is gone.
const LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The listener's timing (see `db::listen`): the worker also polls, so it can look less
/// often than the validate cache's listener.
const LISTEN_TIMING: db::listen::Timing = db::listen::Timing {
    tick: Duration::from_millis(10),
    ping: Duration::from_secs(30),
    first_retry: Duration::from_secs(1),
    max_retry: Duration::from_secs(30),
};

/// What the worker needs, taken from the settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub mail_from: String,
    pub public_url: String,
    pub poll: Duration,
    pub retry_base: Duration,
    /// After this many failed attempts an email is marked `failed` (0: never).
    pub max_attempts: u32,
    /// Emails sent at the same time (at least 1).
    pub concurrency: usize,
    /// The database to `LISTEN` on for emails other instances queue; none: poll only.
    pub listen_url: Option<SecretString>,
    /// Minutes a portal sign-in link works (said in its email).
    pub portal_link_minutes: u32,
}

/// The running worker; [`Worker::stop`] lets the sends in progress finish.
pub struct Worker {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    listener: Option<std::thread::JoinHandle<()>>,
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
        let listener = config.listen_url.clone().map(|url| {
            let (wake, stopped) = (wake.clone(), stopped.clone());
            std::thread::Builder::new()
                .name("licensd-mail-listen".into())
                .spawn(move || {
                    db::listen::run(&url, outbox::CHANNEL, LISTEN_TIMING, &stopped, &Wake(wake))
                })
                .expect("cannot start the email listener thread")
        });
        let handle = tokio::spawn(run(pool, mailer, templates, config, wake, stopped));
        Worker {
            stop,
            handle,
            listener,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
        if let Some(listener) = self.listener {
            let _ = tokio::task::spawn_blocking(move || listener.join()).await;
        }
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
    tracing::info!(mailer = ?mailer, concurrency = config.concurrency, "email worker started");
    loop {
        send_due(&pool, &mailer, &templates, &config, &stopped).await;
        if *stopped.borrow() {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(config.poll) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Sends everything that is due, `config.concurrency` emails at a time. Whenever sends
/// finish, as many more rows are claimed as there are free places; each email is
/// claimed, sent and recorded on its own, so a slow one holds up no other.
async fn send_due(
    pool: &Pool,
    mailer: &Mailer,
    templates: &Templates,
    config: &WorkerConfig,
    stopped: &watch::Receiver<bool>,
) {
    let concurrency = config.concurrency.max(1);
    let mut sending = FuturesUnordered::new();
    let mut more_due = true;
    loop {
        let free = concurrency - sending.len();
        if more_due && free > 0 && !*stopped.borrow() {
            let claimed = db::run(pool, move |conn| {
                Ok(outbox::claim_due(conn, Utc::now() + LEASE, free)?)
            })
            .await;
            match claimed {
                Ok(emails) => {
                    more_due = emails.len() == free;
                    for email in emails {
                        sending.push(deliver(pool, mailer, templates, config, email));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "email worker cannot reach the database");
                    more_due = false;
                }
            }
        }
        if sending.next().await.is_none() {
            return;
        }
        // Collect every other send that finished too before claiming again.
        while let Some(Some(())) = sending.next().now_or_never() {}
    }
}

/// The listener thread's work: it `LISTEN`s on [`outbox::CHANNEL`] and wakes the worker
/// for each batch of notifications, and once whenever the `LISTEN` takes effect (for what
/// was queued before); while its connection is down the worker still polls.
struct Wake(Arc<Notify>);

impl db::listen::Listener for Wake {
    fn listening(&self) {
        self.0.notify_one();
    }

    fn notified(&self, _: &[String]) {
        self.0.notify_one();
    }

    fn lost(&self, error: Option<&str>, retry: Duration) {
        if let Some(error) = error {
            tracing::warn!(%error, retry_in_ms = retry.as_millis() as u64, "email worker is not listening for queued emails; polling meanwhile");
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
    // A portal sign-in email changes no license: nothing for their history.
    let licenses: Vec<Uuid> = match email.kind.as_str() {
        "license_keys" => email.license_ids.iter().flatten().copied().collect(),
        _ => Vec::new(),
    };
    let to = email.recipient.clone();
    let recorded = match result {
        Ok(()) => {
            tracing::info!(email_id = %id, attempts, "license email sent");
            db::run(pool, move |conn| {
                conn.transaction(|conn| {
                    if !outbox::mark_sent(conn, id)? {
                        tracing::warn!(email_id = %id, "email sent after its claim expired");
                    }
                    record(
                        conn,
                        &licenses,
                        "email_sent",
                        json!({ "email_id": id, "to": to }),
                    )
                })
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
            let (recipient, license_ids) = (email.recipient.clone(), email.license_ids.clone());
            db::run(pool, move |conn| {
                conn.transaction(|conn| {
                    outbox::mark_failed(conn, id, &error, next, give_up)?;
                    if !give_up {
                        return Ok(());
                    }
                    // The seller hears of an email that will not go out.
                    let object = json!({
                        "id": id, "recipient": recipient, "license_ids": license_ids,
                        "attempts": attempts + 1, "last_error": error,
                    });
                    db::webhooks::announce(conn, "email.failed", None, &object)?;
                    let after = json!({ "email_id": id, "to": to, "error": error });
                    record(conn, &licenses, "email_failed", after)
                })
            })
            .await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the row is claimed again.
        tracing::error!(email_id = %id, error = %e, "cannot record the email's result");
    }
}

/// Records an email's outcome in the history of each license it lists.
fn record(
    conn: &mut PgConnection,
    licenses: &[Uuid],
    action: &str,
    after: serde_json::Value,
) -> Result<(), AppError> {
    for license in licenses {
        history::record(
            conn,
            &Actor::System,
            *license,
            action,
            None,
            Some(after.clone()),
        )?;
    }
    Ok(())
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
    let mut ctx = LicenseEmail::new(&email.recipient, &rows, &config.public_url);
    if email.kind == "portal_link" {
        let Some(link) = email.link_url.clone() else {
            return Err(Failure::permanent("the sign-in link is gone"));
        };
        ctx.sign_in_link = Some(link);
        ctx.link_minutes = config.portal_link_minutes;
    }
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
