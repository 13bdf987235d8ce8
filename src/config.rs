//! Typed settings, loaded once at start-up and passed down (no globals).
//!
//! `config/default.toml` is compiled in as the baseline and documents every setting;
//! the file named by `LICENSD_CONFIG` overrides it; environment variables override both.

use std::path::PathBuf;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// The defaults, with a comment on each setting. Embedded so the binary runs anywhere.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database_url: SecretString,
    pub db_pool_size: u32,
    pub db_timeout_secs: u64,

    pub bind: String,
    pub public_url: String,
    pub body_limit_bytes: usize,
    /// HTTP worker threads; 0: one per CPU core (see [`Settings::http_workers`]).
    pub workers: usize,
    /// Workers that may run a validate miss's read themselves at once; unset: all of
    /// them; 0: every read on the blocking pool (see `db::InlineReads`).
    #[serde(default)]
    pub db_inline_reads: Option<usize>,
    pub shutdown_timeout_secs: u64,
    /// Time a client has to send a request's headers (ms).
    pub client_header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in (s).
    pub body_timeout_secs: u64,
    /// How long an idle keep-alive connection stays open (s; 0: closed after each request).
    pub keep_alive_secs: u64,
    /// Connections one client address may hold open at once (0: no cap).
    pub max_connections_per_ip: usize,

    pub last_seen_interval_secs: u32,
    /// Memory budget of the in-process validate cache, in MiB; 0 turns the cache off.
    pub cache_budget_mib: u32,
    /// Longest a cached answer is served while the database is unreachable, in seconds.
    pub cache_max_stale_secs: u64,
    /// How often `last_seen_at` refreshes from cached validates are written, in ms.
    pub cache_touch_flush_ms: u64,

    /// Drop-in endpoints of other license services (`http::compat`), each switchable.
    pub compat_checkoutkeys: bool,
    pub compat_wckm: bool,
    pub compat_sellapp: bool,
    pub compat_keymint: bool,
    /// Key of the HMAC behind WC Key Manager's `checksum` field.
    #[serde(default, deserialize_with = "optional_secret")]
    pub compat_wckm_checksum_secret: Option<SecretString>,

    #[serde(default, deserialize_with = "comma_separated_secrets")]
    pub stripe_webhook_secrets: Vec<SecretString>,
    #[serde(default, deserialize_with = "optional_secret")]
    pub stripe_api_key: Option<SecretString>,
    pub stripe_api_base: String,
    pub subscription_grace_days: u32,
    /// Days a past-due (or unpaid) subscription keeps working after the payment was due.
    pub past_due_grace_days: u32,

    #[serde(default, deserialize_with = "optional_secret")]
    pub smtp_url: Option<SecretString>,
    /// The longest one email may take over SMTP, connect to final answer (at most 300).
    pub smtp_timeout_secs: u64,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    /// Folder of email template overrides; unset: `templates/` beside the config file.
    #[serde(default)]
    pub mail_templates_dir: Option<PathBuf>,
    pub mail_poll_ms: u64,
    pub mail_retry_base_ms: u64,
    pub mail_max_attempts: u32,
    /// Emails one instance sends at once (SMTP connections are pooled and reused).
    pub mail_concurrency: u32,

    pub log: String,
    pub log_format: LogFormat,

    #[serde(default, deserialize_with = "optional_secret")]
    pub signing_key: Option<SecretString>,
    /// Seconds between re-reads of the stored key set (rotation reaches running instances).
    pub signing_key_refresh_secs: u64,
    /// Webhooks to the seller: poll interval, first retry wait (doubles per failure, at
    /// most 6 h), attempts before giving up, and the request timeout.
    pub webhook_poll_ms: u64,
    pub webhook_retry_base_ms: u64,
    pub webhook_max_attempts: u32,
    pub webhook_timeout_secs: u64,
    pub license_file_ttl_days: u32,
    pub license_file_max_ttl_days: u32,

    pub rate_limit_window_secs: u64,
    pub rate_limit_requests_per_ip: u32,
    pub rate_limit_failed_lookups_per_ip: u32,
    pub rate_limit_activations_per_key: u32,
    #[serde(default, deserialize_with = "comma_separated")]
    pub trusted_proxies: Vec<String>,

    pub session_ttl_hours: u32,
    pub portal_session_ttl_hours: u32,
    pub portal_link_ttl_minutes: u32,
    pub portal_device_cooldown_hours: u32,
    pub login_max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Settings {
    /// Defaults, then `$LICENSD_CONFIG`, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Ok(path) = std::env::var("LICENSD_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("LICENSD_").ignore(&["CONFIG"]));
        Self::extract(figment)
    }

    /// The compiled-in defaults alone: the starting point for tests.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Toml::string(DEFAULT_TOML)))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        figment.extract().map_err(|e| ConfigError(Box::new(e)))
    }

    /// HTTP worker threads: `workers`, or one per CPU core when it is 0. Measured on 2
    /// cores (BENCHMARKS.md, "Threading"): 4 workers answer cache misses ~25% faster (a
    /// worker waits on Postgres during a miss), but a cache hit is all CPU, and with more
    /// workers than cores its p99 grew to 4× its p50 at 64 connections (2.2× with 2).
    /// Hits are what a running server mostly answers.
    pub fn http_workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    /// How many of `workers` may run a read inline at once (see `db::InlineReads`).
    /// Unset: all of them. Keeping some workers back (2 or 3 of 4) was measured: every
    /// read sent to the blocking pool instead brought the tail back.
    pub fn inline_reads(&self, workers: usize) -> usize {
        self.db_inline_reads.unwrap_or(workers).min(workers)
    }

    /// Where email template overrides are looked for.
    pub fn templates_dir(&self) -> PathBuf {
        self.mail_templates_dir
            .clone()
            .unwrap_or_else(|| Self::config_dir().join("templates"))
    }

    /// The folder holding the configuration (and overridable email templates).
    pub fn config_dir() -> PathBuf {
        std::env::var_os("LICENSD_CONFIG")
            .map(PathBuf::from)
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"))
    }
}

/// Accepts `"a,b"` (environment form) or `["a", "b"]` (TOML form); blanks are dropped.
fn comma_separated_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    let items = match Form::deserialize(d)? {
        Form::One(s) => s.split(',').map(str::to_owned).collect(),
        Form::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
        .collect())
}

/// Accepts `"a,b"` (environment form) or `["a", "b"]` (TOML form); blanks are dropped.
fn comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(comma_separated_secrets(d)?
        .into_iter()
        .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
        .collect())
}

/// An empty string means "not set", so `LICENSD_SMTP_URL=` can unset a file value.
fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.filter(|s| !s.trim().is_empty()).map(SecretString::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_parse_and_hide_secrets() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert!(s.stripe_webhook_secrets.is_empty());
        assert!(s.smtp_url.is_none());
        assert!(!format!("{s:?}").contains("postgres://"));
    }

    #[test]
    fn compat_switches_default_on_and_read_env_strings() {
        let s = Settings::defaults().unwrap();
        assert!(s.compat_checkoutkeys && s.compat_wckm && s.compat_sellapp && s.compat_keymint);
        assert!(s.compat_wckm_checksum_secret.is_none());
        // As `LICENSD_COMPAT_WCKM=false` arrives (a unique prefix keeps other tests out).
        std::env::set_var("LICENSD_CFGTEST_COMPAT_WCKM", "false");
        let f = Figment::from(Toml::string(DEFAULT_TOML)).merge(Env::prefixed("LICENSD_CFGTEST_"));
        let s = Settings::extract(f).unwrap();
        std::env::remove_var("LICENSD_CFGTEST_COMPAT_WCKM");
        assert!(!s.compat_wckm);
        assert!(s.compat_keymint);
    }

    #[test]
    fn env_style_secret_list_is_split() {
        let f = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(("stripe_webhook_secrets", "whsec_a, whsec_b,"));
        let s = Settings::extract(f).unwrap();
        let got: Vec<_> = s
            .stripe_webhook_secrets
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(got, ["whsec_a", "whsec_b"]);
    }

    #[test]
    fn signing_key_is_hidden_and_proxies_split() {
        let f = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(("signing_key", "c2VjcmV0LXNlZWQtYnl0ZXM="))
            .merge(("trusted_proxies", "10.0.0.0/8, 127.0.0.1"));
        let s = Settings::extract(f).unwrap();
        assert!(s.signing_key.is_some());
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
        assert_eq!(s.trusted_proxies, ["10.0.0.0/8", "127.0.0.1"]);
        let defaults = Settings::defaults().unwrap();
        assert!(defaults.signing_key.is_none());
        assert!(defaults.trusted_proxies.is_empty());
        assert!(defaults.license_file_ttl_days <= defaults.license_file_max_ttl_days);
    }

    #[test]
    fn workers_default_to_one_per_core_and_all_may_read_inline() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let defaults = Settings::defaults().unwrap();
        assert_eq!(defaults.http_workers(), cores);
        assert_eq!(defaults.inline_reads(4), 4);
        let f = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(("workers", 3))
            .merge(("db_inline_reads", 0));
        let s = Settings::extract(f).unwrap();
        assert_eq!((s.http_workers(), s.inline_reads(3)), (3, 0));
        let f = Figment::from(Toml::string(DEFAULT_TOML)).merge(("db_inline_reads", 9));
        assert_eq!(Settings::extract(f).unwrap().inline_reads(4), 4);
    }
}
