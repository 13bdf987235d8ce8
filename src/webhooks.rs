//! Webhooks to the seller: signing (the way Stripe signs) and the delivery worker that
//! sends the outbox rows `db::webhooks::announce` wrote, off the request path, with
//! retries and backoff for days. See docs/webhooks.md.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::task::JoinHandle;

use crate::db::{self, webhooks, Pool};

/// The request header carrying the signature: `t={unix seconds},v1={hex}[,v1={hex}]`.
pub const SIGNATURE_HEADER: &str = "Licensd-Webhook-Signature";

/// HMAC-SHA256 of `"{t}.{body}"` under `secret`, lower-case hex.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The header value: one `v1` per secret (the current one first).
pub fn signature_header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut out = format!("t={timestamp}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&signature(s, timestamp, body));
    }
    out
}

/// A new endpoint secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub poll: Duration,
    pub retry_base: Duration,
    pub max_attempts: u32,
    pub timeout: Duration,
}

/// Wait before attempt `attempts + 1`: the base doubling per failure, at most 6 hours.
/// With the defaults (30 s, 20 attempts) a receiver may be down for about three days.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.min(20))
        .min(Duration::from_secs(6 * 3600))
}

/// Runs the delivery loop until aborted.
pub fn spawn(pool: Pool, config: WorkerConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(config.timeout).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook worker cannot start its HTTP client");
                return;
            }
        };
        loop {
            let claimed = db::run(&pool, |conn| {
                Ok(webhooks::claim_due(
                    conn,
                    20,
                    chrono::Duration::seconds(60),
                )?)
            })
            .await;
            match claimed {
                Ok(batch) if !batch.is_empty() => {
                    for (delivery, endpoint) in batch {
                        deliver(&pool, &client, &config, delivery, endpoint).await;
                    }
                }
                Ok(_) => tokio::time::sleep(config.poll).await,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook worker cannot claim deliveries");
                    tokio::time::sleep(config.poll).await;
                }
            }
        }
    })
}

async fn deliver(
    pool: &Pool,
    client: &reqwest::Client,
    config: &WorkerConfig,
    delivery: webhooks::Delivery,
    endpoint: webhooks::Endpoint,
) {
    let body = serde_json::to_vec(&delivery.payload).unwrap_or_default();
    let mut secrets = vec![endpoint.secret.as_str()];
    secrets.extend(endpoint.previous_secret.as_deref());
    let header = signature_header(&secrets, Utc::now().timestamp(), &body);
    let sent = client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, header)
        .body(body)
        .send()
        .await;
    let error = match sent {
        Ok(res) if res.status().is_success() => None,
        Ok(res) => Some(format!("the endpoint answered {}", res.status())),
        // The error names the URL, never a secret.
        Err(e) => Some(format!("cannot reach the endpoint: {e}")),
    };
    let id = delivery.id;
    let recorded = match error {
        None => db::run(pool, move |conn| Ok(webhooks::mark_delivered(conn, id)?)).await,
        Some(error) => {
            let attempts = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
            let give_up = attempts >= config.max_attempts;
            let wait = backoff(config.retry_base, attempts - 1);
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            tracing::info!(delivery_id = %id, attempts, give_up, "webhook delivery failed: {error}");
            let error: String = error.chars().take(1000).collect();
            db::run(pool, move |conn| {
                Ok(webhooks::mark_attempt_failed(
                    conn, id, &error, next, give_up,
                )?)
            })
            .await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(delivery_id = %id, error = %e, "cannot record a webhook delivery's result");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_like_stripe() {
        // "{t}.{body}" under the secret, hex; one v1 per secret.
        let h = signature_header(&["whsec_a", "whsec_b"], 1700000000, b"{}");
        let parts: Vec<&str> = h.split(',').collect();
        assert_eq!(parts[0], "t=1700000000");
        assert_eq!(
            parts[1],
            format!("v1={}", signature("whsec_a", 1700000000, b"{}"))
        );
        assert_eq!(
            parts[2],
            format!("v1={}", signature("whsec_b", 1700000000, b"{}"))
        );
        assert_ne!(parts[1], parts[2]);
        assert_eq!(signature("k", 1, b"x").len(), 64);
    }

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 0), base);
        assert_eq!(backoff(base, 3), Duration::from_secs(240));
        assert_eq!(backoff(base, 19), Duration::from_secs(6 * 3600));
        let total: u64 = (0..19).map(|a| backoff(base, a).as_secs()).sum();
        assert!(total > 2 * 24 * 3600, "retries span days: {total} s");
    }
}
