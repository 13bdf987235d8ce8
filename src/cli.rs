//! The `licensd` command line: serve, migrate, and the seller's shell operations.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use rand::Rng;
use serde::Serialize;

use crate::config::Settings;
use crate::db;
use crate::error::AppError;
use crate::http::{extract::hash_token, Application};
use crate::licensing::accounts;
use crate::licensing::admin::{self, CreateLicense, CreateProduct};
use crate::licensing::api_keys;
use crate::licensing::history::Actor;
use crate::licensing::signing::{self, Signer};

/// licensd: a self-hosted license key server for software sold through Stripe Checkout.
///
/// Settings come from config/default.toml, the file named by LICENSD_CONFIG, and
/// environment variables (DATABASE_URL, LICENSD_BIND, ...); see the README.
#[derive(Debug, Parser)]
#[command(name = "licensd", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run pending migrations, then serve HTTP (and send queued email) until SIGTERM.
    Serve,
    /// Run pending migrations (creating the database if needed) and exit.
    Migrate,
    /// Manage admin API tokens.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage products (what a license is for).
    #[command(subcommand)]
    Product(ProductCommand),
    /// Create and inspect licenses.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Seller accounts for the dashboard at /admin.
    #[command(subcommand)]
    User(UserCommand),
    /// Helpers for connecting Stripe.
    #[command(subcommand)]
    Stripe(StripeCommand),
    /// The Ed25519 key that signs answers and license files.
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCommand),
    /// Webhooks to your own systems: endpoints, deliveries, redelivery.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Import licenses from another service or a CSV file, keeping their keys.
    ///
    /// Each row becomes a license of --product with its original key string, status,
    /// expiry, seat limit, customer and (where the source has them) activations. Rows are
    /// keyed by the source's id: running the same file again changes nothing. A bad row
    /// is reported with its line and reason and not imported; the others are. No email is
    /// sent unless --send-email. Prints a JSON report; exits 1 if any row was bad.
    /// Column mappings of each preset: docs/importing.md.
    Import(ImportArgs),
    /// Verify an offline license file (as the customer software would), and print its payload.
    ///
    /// Exits 0 when it verifies and has not expired, 1 otherwise.
    Verify {
        /// The license file; `-` reads standard input.
        file: std::path::PathBuf,
        /// The server's public key (base64, as `signing-key show` prints it). Default: this
        /// server's published keys (LICENSD_SIGNING_KEY and the database's key set).
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Add an endpoint. Prints its signing secret once, alone on its line (keep it: it is
    /// never shown again); the endpoint (JSON) goes to stderr.
    Create {
        /// Where events are POSTed, e.g. https://example.com/hooks/licensd.
        #[arg(long)]
        url: String,
        /// Event types to send (repeatable; default: all): license.created,
        /// license.updated, activation.created, activation.deleted, email.failed.
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
    },
    /// List endpoints as JSON (secrets are not shown).
    List,
    /// Give an endpoint a new secret (printed once). Deliveries are signed with the new
    /// and the previous secret until the next rotation.
    RotateSecret { id: uuid::Uuid },
    /// Remove an endpoint and its deliveries.
    Delete { id: uuid::Uuid },
    /// List the latest deliveries (newest first) with their attempts and last error, as JSON.
    Deliveries {
        /// Only this endpoint's (default: every endpoint's).
        #[arg(long)]
        endpoint: Option<uuid::Uuid>,
        /// Only `pending`, `delivered` or `failed` ones.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send a delivery again now (whatever its status).
    Redeliver { id: uuid::Uuid },
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The file to read (CSV, or Keygen's licenses JSON).
    file: std::path::PathBuf,
    /// What produced the file: decides the column names and vocabularies.
    #[arg(long, value_enum, default_value = "csv")]
    from: crate::licensing::import::Preset,
    /// The product (id or slug) the licenses are for.
    #[arg(long)]
    product: String,
    /// Use another column for a field, e.g. --map email=customer_email (repeatable).
    /// Fields: id, key, email, name, status, expires_at, max_activations, activations.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// Keygen only: the machines JSON, imported as activations.
    #[arg(long)]
    machines: Option<std::path::PathBuf>,
    /// Email for rows that have none (e.g. WC Key Manager stock not sold yet).
    #[arg(long)]
    default_email: Option<String>,
    /// Report what would happen, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Queue the license email to each imported buyer (default: no email).
    #[arg(long)]
    send_email: bool,
    /// Rows written per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    batch_size: u32,
}

#[derive(Debug, Subcommand)]
enum StripeCommand {
    /// Sign a Stripe event JSON file as Stripe would, and post it to a running server
    /// (with --url) or print the Stripe-Signature header. For local testing.
    SignEvent {
        /// The event JSON file, e.g. tests/fixtures/stripe/checkout_session_completed.json.
        file: std::path::PathBuf,
        /// Post the signed event here, e.g. http://127.0.0.1:8080/webhooks/stripe.
        #[arg(long)]
        url: Option<String>,
        /// Signing secret (default: the first of LICENSD_STRIPE_WEBHOOK_SECRETS).
        #[arg(long, value_name = "whsec_...")]
        secret: Option<String>,
        /// Unix timestamp to sign with (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum SigningKeyCommand {
    /// Print the current public key (base64, alone on its line); the key id goes to stderr.
    Show,
    /// List every stored key (current, published, retired) as JSON, newest first.
    List,
    /// Generate a new current key. The old one stays published at GET /v1/signing-keys,
    /// so apps in the field keep verifying what it signed, until `retire`. Prints the new
    /// public key; its key id goes to stderr.
    Rotate,
    /// Stop publishing a key: answers and license files it signed no longer verify with
    /// the published set. The current key cannot be retired (rotate first).
    Retire {
        /// The key id (16 hex digits), as `signing-key list` and signatures show it.
        key_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an admin token. It is printed once, alone on its line; only its SHA-256 is stored.
    Create {
        /// A label to recognise the token by, e.g. "laptop" or "ci".
        #[arg(long)]
        name: String,
    },
    /// List admin tokens as JSON: id, name, created, last used and revoked times. The
    /// tokens themselves are never shown (only their hashes are stored).
    List,
    /// Revoke an admin token by its id (from `api-key list`); it is refused from its
    /// next request on. Revoking a revoked token changes nothing.
    Revoke {
        /// The token's id, as `api-key list` shows it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ProductCommand {
    /// Create a product and print it as JSON.
    Create(ProductArgs),
    /// List products as JSON.
    List,
}

#[derive(Debug, Args)]
struct ProductArgs {
    /// Display name, e.g. "My App Pro".
    #[arg(long)]
    name: String,
    /// URL-friendly id (default: made from the name).
    #[arg(long)]
    slug: Option<String>,
    /// A Stripe price id that sells this product; repeat for several.
    #[arg(long = "price", value_name = "PRICE_ID")]
    prices: Vec<String>,
    /// Devices per license (default: unlimited).
    #[arg(long)]
    max_activations: Option<i64>,
    /// Days a license lasts (default: perpetual).
    #[arg(long)]
    duration_days: Option<i64>,
    /// Letters put in front of this product's keys, e.g. MYAPP.
    #[arg(long)]
    key_prefix: Option<String>,
    /// Seconds a device keeps its seat after it last checked in (heartbeat or
    /// validate); a device silent for longer frees its seat for the next activation.
    /// Default: no lease (devices hold seats until deactivated).
    #[arg(long)]
    heartbeat_seconds: Option<i64>,
    /// A feature code this product's licenses carry (validate, activate, license
    /// files); repeat for several.
    #[arg(long = "entitlement", value_name = "CODE")]
    entitlements: Vec<String>,
    /// At expiry: revoke_access (default) refuses; maintain_access keeps access to
    /// the versions released up to the expiry date.
    #[arg(long)]
    expiry_behavior: Option<String>,
    /// Let offline license files outlive the heartbeat lease.
    #[arg(long)]
    offline_allowed: bool,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a dashboard account. Without --password-stdin a strong password is
    /// generated and printed once, alone on its line; only its argon2id hash is stored.
    Create {
        /// The email the seller signs in with.
        #[arg(long)]
        email: String,
        /// Read the password (12 to 1024 characters) from the first line of standard
        /// input instead, e.g. `printf '%s\n' "$PW" | licensd user create --email ... --password-stdin`.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LicenseCommand {
    /// Create a license by hand and print it (with its key) as JSON.
    Create(LicenseArgs),
    /// Show a license, its activations and its buyer, by key or id.
    Show {
        /// The license key (any case, spaces ignored) or the license id.
        key: String,
    },
}

#[derive(Debug, Args)]
struct LicenseArgs {
    /// Product id or slug.
    #[arg(long)]
    product: String,
    /// The buyer's email address.
    #[arg(long)]
    email: String,
    /// The buyer's name.
    #[arg(long)]
    name: Option<String>,
    /// Devices allowed (default: the product's limit).
    #[arg(long)]
    max_activations: Option<i64>,
    /// Expiry as RFC 3339, e.g. 2027-01-31T00:00:00Z (default: from the product's duration).
    #[arg(long)]
    expires_at: Option<DateTime<Utc>>,
    /// Metadata as a JSON object, e.g. '{"plan":"pro"}'.
    #[arg(long, value_parser = parse_json_object)]
    metadata: Option<serde_json::Value>,
    /// Seconds a device keeps its seat after it last checked in, instead of the
    /// product's; 0: no lease for this license.
    #[arg(long)]
    heartbeat_seconds: Option<i64>,
    /// A feature code this license carries instead of the product's list; repeat
    /// for several.
    #[arg(long = "entitlement", value_name = "CODE")]
    entitlements: Vec<String>,
    /// Do not email the key to the buyer.
    #[arg(long)]
    no_email: bool,
}

fn parse_json_object(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err("must be a JSON object, e.g. '{\"plan\":\"pro\"}'".to_owned()),
    }
}

/// An error with its causes, for a person at a terminal.
pub fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl Cli {
    pub fn run(self) -> ExitCode {
        let settings = match Settings::load() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("licensd: {}", report(&e));
                return ExitCode::from(2);
            }
        };
        crate::telemetry::init(&settings.log, settings.log_format);
        match self.command.run(settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("licensd: {}", report(&e));
                ExitCode::FAILURE
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`licensd ... | head`) is not an error worth a panic.
fn print_line(text: &str) -> Result<(), AppError> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(AppError::internal(e)),
        _ => Ok(()),
    }
}

fn print_json(value: &impl Serialize) -> Result<(), AppError> {
    print_line(&serde_json::to_string_pretty(value).map_err(AppError::internal)?)
}

/// `licensd verify`: the same checks the customer software makes, with the client crate.
/// Verifies a license file with any of `public_keys` (base64), picked by the file's key id.
fn verify_file(file: &std::path::Path, public_keys: &[String]) -> Result<(), AppError> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(AppError::internal)?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| AppError::invalid("FILE", format!("cannot be read: {e}")))?
    };
    let keys = public_keys
        .iter()
        .map(|k| licensd_client::PublicKey::from_base64(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::invalid("--public-key", e.to_string()))?;
    let payload = licensd_client::verify_license_file(&keys, &text, Utc::now().timestamp())
        .map_err(|e| AppError::invalid("FILE", format!("does not verify: {e}")))?;
    print_json(&payload)?;
    let until = DateTime::from_timestamp(payload.expires_at, 0)
        .map_or_else(|| payload.expires_at.to_string(), |t| t.to_rfc3339());
    eprintln!(
        "licensd: valid, signed by key {}, until {until}",
        payload.key_id
    );
    Ok(())
}

fn webhook_command(
    conn: &mut diesel::PgConnection,
    command: WebhookCommand,
) -> Result<(), AppError> {
    use crate::licensing::webhook_endpoints::{self as endpoints, DeliveryFilter, NewEndpoint};
    match command {
        WebhookCommand::Create { url, events } => {
            let input = NewEndpoint {
                url,
                event_types: events,
            };
            let created = endpoints::create(conn, &input).map_err(as_flag)?;
            print_line(&created.secret)?;
            eprintln!(
                "{}\nlicensd: this secret is shown once; store it now",
                serde_json::to_string(&created.endpoint).map_err(AppError::internal)?
            );
            Ok(())
        }
        WebhookCommand::List => print_json(&endpoints::list(conn)?),
        WebhookCommand::RotateSecret { id } => {
            let rotated = endpoints::rotate_secret(conn, &id.to_string())?;
            print_line(&rotated.secret)?;
            eprintln!("licensd: deliveries are now signed with this and the previous secret");
            Ok(())
        }
        WebhookCommand::Delete { id } => endpoints::delete(conn, &id.to_string()),
        WebhookCommand::Deliveries {
            endpoint,
            status,
            limit,
        } => {
            let filter = DeliveryFilter {
                status,
                limit: Some(limit.clamp(1, 1000)),
                ..Default::default()
            };
            let found =
                endpoints::deliveries(conn, endpoint.map(|e| e.to_string()).as_deref(), &filter)
                    .map_err(as_flag)?;
            print_json(&found)
        }
        WebhookCommand::Redeliver { id } => endpoints::redeliver(conn, &id.to_string()).map(|_| ()),
    }
}

/// Names a field the domain refused by the flag that carried it (`url` -> `--url`).
fn as_flag(e: AppError) -> AppError {
    match e {
        AppError::InvalidField { field, problem } => {
            let flag = match field.as_ref() {
                "event_types" => "--event".to_owned(),
                other => format!("--{other}"),
            };
            AppError::invalid(flag, problem)
        }
        other => other,
    }
}

fn open(path: &std::path::Path, what: &'static str) -> Result<std::fs::File, AppError> {
    std::fs::File::open(path).map_err(|e| AppError::invalid(what, format!("cannot be read: {e}")))
}

fn import(conn: &mut diesel::PgConnection, args: ImportArgs) -> Result<(), AppError> {
    use std::io::IsTerminal;

    use crate::licensing::import::{self, Options, Preset};
    let opts = Options {
        preset: args.from,
        product: args.product,
        dry_run: args.dry_run,
        send_email: args.send_email,
        default_email: args.default_email,
        batch_size: args.batch_size as usize,
    };
    let file = open(&args.file, "FILE")?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(size)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut writer = import::Writer::new(conn, opts.clone())?;
    let mut on_bad = |bad: &import::BadRow| {
        bar.suspend(|| eprintln!("licensd: line {}: {}", bad.line, bad.reason));
    };
    let mut rows = Vec::new();
    let mut sink = |row| {
        rows.push(row);
        Ok(())
    };
    // Rows reach the writer through `rows` so the reader and writer borrow apart.
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    match args.from {
        Preset::Keygen => {
            let machines = args
                .machines
                .as_deref()
                .map(|p| open(p, "--machines"))
                .transpose()?;
            import::read_keygen(input, machines, &opts, &mut sink)?;
            for row in rows.drain(..) {
                writer.push(row, &mut on_bad)?;
            }
        }
        preset => {
            let columns = preset.columns().with_overrides(&args.map)?;
            let mut pending: Result<(), AppError> = Ok(());
            let mut sink = |row| {
                if pending.is_ok() {
                    pending = writer.push(row, &mut on_bad);
                }
                Ok(())
            };
            import::read_csv(input, &columns, &opts, &mut sink, &mut |bytes| {
                bar.set_position(bytes)
            })?;
            pending?;
        }
    }
    writer.flush(&mut on_bad)?;
    bar.finish_and_clear();
    let report = writer.report;
    print_json(&report)?;
    if report.bad_rows > 0 {
        return Err(AppError::invalid(
            "FILE",
            format!(
                "{} of {} rows were not imported (see the lines above)",
                report.bad_rows, report.rows
            ),
        ));
    }
    Ok(())
}

fn signing_key_command(
    conn: &mut diesel::PgConnection,
    settings: &Settings,
    command: SigningKeyCommand,
) -> Result<(), AppError> {
    match command {
        SigningKeyCommand::Show => {
            let public = Signer::load(conn, settings.signing_key.as_ref())?.public_key();
            print_line(&public.public_key)?;
            eprintln!("licensd: key id {} ({})", public.key_id, public.algorithm);
            Ok(())
        }
        SigningKeyCommand::List => print_json(&signing::list(conn)?),
        SigningKeyCommand::Rotate => {
            let public = signing::rotate(conn)?;
            print_line(&public.public_key)?;
            eprintln!(
                "licensd: key {} is now current; the previous key stays published until retired. \
                 Running servers switch within signing_key_refresh_secs ({} s).",
                public.key_id, settings.signing_key_refresh_secs
            );
            if settings.signing_key.is_some() {
                eprintln!("licensd: LICENSD_SIGNING_KEY is set: servers with it keep signing with that key");
            }
            Ok(())
        }
        SigningKeyCommand::Retire { key_id } => {
            signing::retire(conn, &key_id)?;
            eprintln!("licensd: key {key_id} is retired; what it signed no longer verifies with the published keys");
            Ok(())
        }
    }
}

/// A new admin token: 32 random bytes, hex, behind a recognisable prefix.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("lsd_{}", hex::encode(bytes))
}

/// Serves until SIGTERM (graceful) or SIGINT.
fn serve(settings: Settings) -> Result<(), AppError> {
    let runtime = tokio::runtime::Runtime::new().map_err(AppError::internal)?;
    runtime.block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await.map_err(AppError::internal)
    })
}

/// `licensd stripe sign-event`: signs the file's bytes exactly as they are.
fn sign_event(
    settings: &Settings,
    file: &std::path::Path,
    url: Option<String>,
    secret: Option<String>,
    timestamp: Option<i64>,
) -> Result<(), AppError> {
    use secrecy::ExposeSecret;
    let body = std::fs::read(file)
        .map_err(|e| AppError::invalid("FILE", format!("cannot be read: {e}")))?;
    let secret = match secret {
        Some(s) => s,
        None => settings
            .stripe_webhook_secrets
            .first()
            .map(|s| s.expose_secret().to_owned())
            .ok_or_else(|| {
                AppError::invalid(
                    "--secret",
                    "is required when LICENSD_STRIPE_WEBHOOK_SECRETS is not set",
                )
            })?,
    };
    let timestamp = timestamp.unwrap_or_else(|| Utc::now().timestamp());
    let header = crate::stripe::signature::sign(&secret, timestamp, &body);
    let Some(url) = url else {
        println!("Stripe-Signature: {header}");
        return Ok(());
    };
    let runtime = tokio::runtime::Runtime::new().map_err(AppError::internal)?;
    runtime.block_on(async move {
        let res = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
            .map_err(|e| AppError::internal(format!("cannot post to {url}: {e}")))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        println!("{status}\n{text}");
        if status.is_success() {
            Ok(())
        } else {
            Err(AppError::internal(format!("the server answered {status}")))
        }
    })
}

/// `licensd user create`.
fn create_user(
    conn: &mut diesel::PgConnection,
    email: &str,
    password_stdin: bool,
) -> Result<(), AppError> {
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(AppError::internal)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (accounts::generate_password(), true)
    };
    let user = accounts::create_user(conn, email, &password)?;
    eprintln!("licensd: created dashboard user {}", user.email);
    if generated {
        print_line(&password)?;
        eprintln!("licensd: this password is shown once; store it now");
    }
    Ok(())
}

impl Command {
    fn run(self, settings: Settings) -> Result<(), AppError> {
        if let Command::Stripe(StripeCommand::SignEvent {
            file,
            url,
            secret,
            timestamp,
        }) = self
        {
            return sign_event(&settings, &file, url, secret, timestamp);
        }
        if let Command::Serve = self {
            return serve(settings);
        }
        if let Command::Verify {
            file,
            public_key: Some(key),
        } = &self
        {
            return verify_file(file, std::slice::from_ref(key));
        }
        let pool = db::prepare(
            &settings.database_url,
            2,
            Duration::from_secs(settings.db_timeout_secs),
        )?;
        let conn = &mut pool.get()?;
        match self {
            Command::User(UserCommand::Create {
                email,
                password_stdin,
            }) => create_user(conn, &email, password_stdin),
            Command::SigningKey(command) => signing_key_command(conn, &settings, command),
            Command::Import(args) => import(conn, args),
            Command::Webhook(command) => webhook_command(conn, command),
            Command::Verify { file, .. } => {
                let keys = Signer::load(conn, settings.signing_key.as_ref())?.key_set();
                let keys: Vec<String> = keys.keys.into_iter().map(|k| k.key.public_key).collect();
                verify_file(&file, &keys)
            }
            // `serve` and `stripe` returned above.
            Command::Migrate | Command::Serve | Command::Stripe(_) => {
                eprintln!("licensd: database is up to date");
                Ok(())
            }
            Command::ApiKey(ApiKeyCommand::Create { name }) => {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 200 {
                    return Err(AppError::invalid("--name", "must be 1 to 200 characters"));
                }
                let token = new_token();
                db::api_keys::insert(conn, name, &hash_token(&token))?;
                print_line(&token)?;
                eprintln!("licensd: this token is shown once; store it now");
                Ok(())
            }
            Command::ApiKey(ApiKeyCommand::List) => print_json(&api_keys::list(conn)?),
            Command::ApiKey(ApiKeyCommand::Revoke { id }) => {
                let revoked = api_keys::revoke(conn, &id)?;
                print_json(&revoked)?;
                eprintln!(
                    "licensd: api key {} ({}) is revoked",
                    revoked.id, revoked.name
                );
                Ok(())
            }
            Command::Product(ProductCommand::Create(a)) => {
                let req = CreateProduct {
                    name: a.name,
                    slug: a.slug,
                    stripe_price_ids: a.prices,
                    max_activations: a.max_activations,
                    duration_days: a.duration_days,
                    key_prefix: a.key_prefix,
                    heartbeat_seconds: a.heartbeat_seconds,
                    entitlements: a.entitlements,
                    expiry_behavior: a.expiry_behavior,
                    offline_allowed: Some(a.offline_allowed),
                };
                print_json(&admin::create_product(conn, &req)?)
            }
            Command::Product(ProductCommand::List) => print_json(&admin::list_products(conn)?),
            Command::License(LicenseCommand::Create(a)) => {
                let req = CreateLicense {
                    product: a.product,
                    email: a.email,
                    name: a.name,
                    max_activations: a.max_activations.map(Some),
                    expires_at: a.expires_at.map(Some),
                    metadata: a.metadata,
                    send_email: Some(!a.no_email),
                    heartbeat_seconds: a.heartbeat_seconds,
                    entitlements: (!a.entitlements.is_empty()).then_some(a.entitlements),
                };
                print_json(&admin::create_license(conn, &Actor::Cli, &req)?)
            }
            Command::License(LicenseCommand::Show { key }) => {
                print_json(&admin::get_license(conn, &key)?)
            }
        }
    }
}
