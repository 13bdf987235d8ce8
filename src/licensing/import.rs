//! `licensd import`: licenses moved over from another service, keeping the key strings
//! already in buyers' hands. Rows are read one at a time (memory stays flat in the
//! file's size) and written in batches, each batch in one transaction; a row is written
//! whole (license and activations) or not at all. Rows are keyed by the source's own id,
//! so running the same file again changes nothing. See docs/importing.md.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::input::Email;
use super::key::LicenseKey;
use crate::db::imports::{self, NewImportedLicense};
use crate::db::models::{NewActivation, Product};
use crate::db::{outbox, products};
use crate::error::AppError;

/// Where the file comes from: decides the column names and value vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Any CSV: licensd's column names, or yours with `--map field=column`.
    Csv,
    /// Lemon Squeezy's license keys (the license-key object's attributes as columns).
    Lemonsqueezy,
    /// Keygen's licenses (JSON:API list, `include=user`), machines with `--machines`.
    Keygen,
    /// Keymint's keys (the get-key answer's fields as columns).
    Keymint,
    /// SellApp's licenses (the v2 license object's fields as columns).
    Sellapp,
    /// CheckoutKeys's license keys.
    Checkoutkeys,
    /// WC Key Manager's key import/export CSV.
    Wckm,
}

impl Preset {
    /// The `import_source` stored with each license (with the source's id, the re-run key).
    pub fn source_name(self) -> &'static str {
        match self {
            Preset::Csv => "csv",
            Preset::Lemonsqueezy => "lemonsqueezy",
            Preset::Keygen => "keygen",
            Preset::Keymint => "keymint",
            Preset::Sellapp => "sellapp",
            Preset::Checkoutkeys => "checkoutkeys",
            Preset::Wckm => "wckm",
        }
    }

    /// The CSV column of each licensd field (`None`: the source has no such column).
    /// With no `id` column the key itself is the source's id.
    pub fn columns(self) -> Columns {
        let c = |id, key, email, name, status, expires, max, acts| Columns {
            id,
            key,
            email,
            name,
            status,
            expires_at: expires,
            max_activations: max,
            activations: acts,
            validity_days: None,
        };
        let s = |v: &'static str| Some(v.to_owned());
        match self {
            Preset::Csv | Preset::Keygen => c(
                s("id"),
                "key".into(),
                s("email"),
                s("name"),
                s("status"),
                s("expires_at"),
                s("max_activations"),
                s("activations"),
            ),
            Preset::Lemonsqueezy => c(
                s("id"),
                "key".into(),
                s("user_email"),
                s("user_name"),
                s("status"),
                s("expires_at"),
                s("activation_limit"),
                None,
            ),
            Preset::Keymint => c(
                s("id"),
                "key".into(),
                s("customer_email"),
                s("customer_name"),
                s("active"),
                s("expiration_date"),
                s("usage_limit"),
                s("devices"),
            ),
            Preset::Sellapp => c(
                s("id"),
                "key".into(),
                s("customer_email"),
                None,
                s("active"),
                s("expires_at"),
                s("limit"),
                None,
            ),
            Preset::Checkoutkeys => c(
                s("id"),
                "licenseKey".into(),
                s("email"),
                s("name"),
                s("status"),
                s("expiresAt"),
                s("maxActivations"),
                None,
            ),
            Preset::Wckm => Columns {
                validity_days: s("validity_for"),
                ..c(
                    None,
                    "key".into(),
                    s("customer_email"),
                    None,
                    s("status"),
                    s("expires_at"),
                    s("activation_limit"),
                    None,
                )
            },
        }
    }
}

/// Which CSV column holds each licensd field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub id: Option<String>,
    pub key: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub expires_at: Option<String>,
    pub max_activations: Option<String>,
    /// Device fingerprints separated by `|`.
    pub activations: Option<String>,
    /// Days from the import the license stays valid (WC Key Manager's `validity_for`),
    /// used when the expiry column is empty.
    pub validity_days: Option<String>,
}

impl Columns {
    /// Applies `--map field=column` overrides.
    pub fn with_overrides(mut self, overrides: &[String]) -> Result<Self, AppError> {
        for o in overrides {
            let (field, column) = o
                .split_once('=')
                .ok_or_else(|| AppError::invalid("--map", format!("`{o}` is not field=column")))?;
            let name = column.trim().to_owned();
            let column = Some(name.clone());
            match field.trim() {
                "id" => self.id = column,
                "key" => self.key = name,
                "email" => self.email = column,
                "name" => self.name = column,
                "status" => self.status = column,
                "expires_at" => self.expires_at = column,
                "max_activations" => self.max_activations = column,
                "activations" => self.activations = column,
                other => {
                    return Err(AppError::invalid(
                        "--map",
                        format!("unknown field `{other}` (id, key, email, name, status, expires_at, max_activations, activations)"),
                    ))
                }
            }
        }
        Ok(self)
    }
}

/// What the import does besides reading.
#[derive(Debug, Clone)]
pub struct Options {
    pub preset: Preset,
    pub product: String,
    pub dry_run: bool,
    pub send_email: bool,
    /// For sources whose rows may have no buyer email (WC Key Manager's unsold stock).
    pub default_email: Option<String>,
    pub batch_size: usize,
}

/// One license as read from the source, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Line (CSV) or record number (JSON), for reports.
    pub line: u64,
    pub source_id: String,
    pub key: String,
    pub status: &'static str,
    pub email: String,
    pub name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `None`: the product's limit. `Some(None)`: unlimited.
    pub max_activations: Option<Option<i32>>,
    pub activations: Vec<(String, Option<String>)>,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// What an import did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub source: &'static str,
    pub dry_run: bool,
    pub rows: u64,
    pub created: u64,
    /// Already imported by an earlier run: left as they are.
    pub unchanged: u64,
    pub activations_created: u64,
    pub emails_queued: u64,
    pub bad_rows: u64,
    /// The first bad rows (all are printed as they are found).
    pub bad: Vec<BadRow>,
}

const MAX_LISTED_BAD: usize = 1000;

impl Report {
    fn bad(&mut self, line: u64, reason: String, on_bad: &mut dyn FnMut(&BadRow)) {
        let bad = BadRow { line, reason };
        on_bad(&bad);
        self.bad_rows += 1;
        if self.bad.len() < MAX_LISTED_BAD {
            self.bad.push(bad);
        }
    }
}

/// Reads a licensd status from the vocabularies of the sources.
fn status(raw: &str) -> Result<(&'static str, bool), String> {
    let expired = |s| Ok((s, true));
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "active" | "inactive" | "valid" | "enabled" | "available" | "sold" | "delivered"
        | "expiring" | "1" | "true" | "yes" => Ok(("active", false)),
        "expired" => expired("active"),
        "suspended" | "disabled" | "deactivated" | "blocked" | "0" | "false" | "no" => {
            Ok(("suspended", false))
        }
        "revoked" | "banned" | "refunded" | "cancelled" | "canceled" => Ok(("revoked", false)),
        other => Err(format!("unknown status `{other}`")),
    }
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC); empty: none.
fn time(raw: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = raw.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Some(t.and_utc()));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| Some(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()))
        .map_err(|_| format!("`{s}` is not a date (RFC 3339 or YYYY-MM-DD)"))
}

fn seats(raw: &str) -> Result<Option<Option<i32>>, String> {
    let s = raw.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    if s.eq_ignore_ascii_case("unlimited") || s == "-1" {
        return Ok(Some(None));
    }
    s.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| Some(Some(n)))
        .ok_or_else(|| format!("seat limit `{s}` is not a whole number >= 0"))
}

/// The raw fields of one record, before validation.
#[derive(Debug, Default)]
pub struct Raw<'a> {
    pub id: Option<&'a str>,
    pub key: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub status: Option<&'a str>,
    pub expires_at: Option<&'a str>,
    pub max_activations: Option<&'a str>,
    pub validity_days: Option<&'a str>,
    pub activations: Vec<(String, Option<String>)>,
}

/// Validates one record into a [`Row`], or says why not.
pub fn validate(
    line: u64,
    raw: &Raw<'_>,
    opts: &Options,
    now: DateTime<Utc>,
) -> Result<Row, String> {
    let key = LicenseKey::imported(raw.key)
        .ok_or("key must be 1 to 255 printable characters without spaces")?;
    let source_id = match raw.id.map(str::trim) {
        Some(id) if !id.is_empty() => id.to_owned(),
        Some(_) => return Err("id is empty".into()),
        None => key.clone(),
    };
    if source_id.len() > 255 {
        return Err("id is longer than 255 characters".into());
    }
    let email = match raw.email.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => e,
        None => opts
            .default_email
            .as_deref()
            .ok_or("no email (the column is empty; give --default-email)")?,
    };
    let email = Email::parse("email", email)
        .map_err(|_| format!("email `{email}` is not an email address"))?;
    let (status, expired) = status(raw.status.unwrap_or(""))?;
    let mut expires_at = time(raw.expires_at.unwrap_or(""))?;
    if expires_at.is_none() {
        if let Some(days) = raw
            .validity_days
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "0")
        {
            let days: i64 = days
                .parse()
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .ok_or_else(|| format!("validity `{days}` is not a number of days"))?;
            expires_at = Some(now + Duration::days(days));
        }
    }
    if expired && expires_at.is_none_or(|t| t > now) {
        expires_at = Some(now); // expired at the source: expired here too
    }
    let name = raw.name.map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control)) {
        return Err("name is longer than 200 characters or holds control characters".into());
    }
    for (fp, _) in &raw.activations {
        if fp.chars().count() > 255 || fp.chars().any(char::is_control) {
            return Err(format!(
                "activation fingerprint `{fp}` is not 1 to 255 visible characters"
            ));
        }
    }
    Ok(Row {
        line,
        source_id,
        key,
        status,
        email: email.as_str().to_owned(),
        name: name.map(str::to_owned),
        expires_at,
        max_activations: seats(raw.max_activations.unwrap_or(""))?,
        activations: raw.activations.clone(),
    })
}

/// Fingerprints of a `|`-separated cell, without blanks or repeats.
pub fn split_activations(cell: &str) -> Vec<(String, Option<String>)> {
    let mut seen = std::collections::HashSet::new();
    cell.split('|')
        .map(str::trim)
        .filter(|f| !f.is_empty() && seen.insert(f.to_owned()))
        .map(|f| (f.to_owned(), None))
        .collect()
}

/// Streams a CSV file through [`validate`] into `sink`. `progress` gets the bytes read.
pub fn read_csv(
    input: impl Read,
    columns: &Columns,
    opts: &Options,
    sink: &mut dyn FnMut(Result<Row, BadRow>) -> Result<(), AppError>,
    progress: &mut dyn FnMut(u64),
) -> Result<(), AppError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| AppError::invalid("FILE", format!("no CSV header line: {e}")))?
        .clone();
    let index = |name: &Option<String>| -> Result<Option<usize>, AppError> {
        name.as_ref()
            .map(|n| {
                headers.iter().position(|h| h.trim() == n).ok_or_else(|| {
                    AppError::invalid(
                        "FILE",
                        format!(
                            "has no column `{n}` (header: {})",
                            headers.iter().collect::<Vec<_>>().join(",")
                        ),
                    )
                })
            })
            .transpose()
    };
    let key_col = index(&Some(columns.key.clone()))?.unwrap_or_default();
    // Optional columns may be absent from a file; the key (and an id, if mapped) may not.
    let optional = |name: &Option<String>| {
        name.as_ref()
            .and_then(|n| headers.iter().position(|h| h.trim() == n))
    };
    let id_col = index(&columns.id)?;
    let (email, name, status_col, expires, max, acts, validity) = (
        optional(&columns.email),
        optional(&columns.name),
        optional(&columns.status),
        optional(&columns.expires_at),
        optional(&columns.max_activations),
        optional(&columns.activations),
        optional(&columns.validity_days),
    );
    let now = Utc::now();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                sink(Err(BadRow {
                    line,
                    reason: format!("not a CSV row: {e}"),
                }))?;
                continue;
            }
        }
        let cell = |i: Option<usize>| i.and_then(|i| record.get(i));
        let raw = Raw {
            id: cell(id_col),
            key: record.get(key_col).unwrap_or(""),
            email: cell(email),
            name: cell(name),
            status: cell(status_col),
            expires_at: cell(expires),
            max_activations: cell(max),
            validity_days: cell(validity),
            activations: cell(acts).map(split_activations).unwrap_or_default(),
        };
        sink(validate(line, &raw, opts, now).map_err(|reason| BadRow { line, reason }))?;
        progress(reader.position().byte());
    }
    Ok(())
}

/// Keygen's JSON:API documents: `{"data": [...], "included": [...]}`.
#[derive(Debug, Deserialize)]
struct JsonApi {
    data: Vec<Resource>,
    #[serde(default)]
    included: Vec<Resource>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    relationships: serde_json::Map<String, serde_json::Value>,
}

impl Resource {
    fn attr(&self, name: &str) -> Option<String> {
        match self.attributes.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn related(&self, name: &str) -> Option<&str> {
        self.relationships.get(name)?.pointer("/data/id")?.as_str()
    }
}

/// Reads Keygen's licenses (with their users from `included`, or `metadata.email`) and,
/// when given, its machines as activations. Keygen's API pages are JSON documents; their
/// size is bounded by the export, so this reader holds one document at a time.
pub fn read_keygen(
    licenses: impl Read,
    machines: Option<impl Read>,
    opts: &Options,
    sink: &mut dyn FnMut(Result<Row, BadRow>) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let doc: JsonApi = serde_json::from_reader(licenses).map_err(|e| {
        AppError::invalid("FILE", format!("is not a Keygen licenses document: {e}"))
    })?;
    let mut devices: HashMap<String, Vec<(String, Option<String>)>> = HashMap::new();
    if let Some(m) = machines {
        let m: JsonApi = serde_json::from_reader(m).map_err(|e| {
            AppError::invalid(
                "--machines",
                format!("is not a Keygen machines document: {e}"),
            )
        })?;
        for machine in m.data.iter().filter(|r| r.kind == "machines") {
            if let (Some(license), Some(fp)) =
                (machine.related("license"), machine.attr("fingerprint"))
            {
                devices
                    .entry(license.to_owned())
                    .or_default()
                    .push((fp, machine.attr("name")));
            }
        }
    }
    let users: HashMap<&str, &Resource> = doc
        .included
        .iter()
        .filter(|r| r.kind == "users")
        .map(|r| (r.id.as_str(), r))
        .collect();
    let now = Utc::now();
    for (i, license) in doc.data.iter().enumerate() {
        let line = i as u64 + 1;
        let user = license.related("user").and_then(|id| users.get(id));
        let email = user.and_then(|u| u.attr("email")).or_else(|| {
            license
                .attributes
                .get("metadata")
                .and_then(|m| m.get("email"))
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        });
        let name = user
            .map(|u| {
                [u.attr("firstName"), u.attr("lastName")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|n| !n.is_empty())
            .or_else(|| license.attr("name"));
        let suspended = license
            .attributes
            .get("suspended")
            .and_then(|v| v.as_bool())
            == Some(true);
        let status = if suspended {
            Some("suspended".to_owned())
        } else {
            license.attr("status")
        };
        let (key, expiry, max) = (
            license.attr("key"),
            license.attr("expiry"),
            license.attr("maxMachines"),
        );
        let raw = Raw {
            id: Some(&license.id),
            key: key.as_deref().unwrap_or(""),
            email: email.as_deref(),
            name: name.as_deref(),
            status: status.as_deref(),
            expires_at: expiry.as_deref(),
            max_activations: max.as_deref(),
            validity_days: None,
            activations: devices.remove(&license.id).unwrap_or_default(),
        };
        let row = if license.kind != "licenses" {
            Err(format!("record is a `{}`, not a license", license.kind))
        } else {
            validate(line, &raw, opts, now)
        };
        sink(row.map_err(|reason| BadRow { line, reason }))?;
    }
    Ok(())
}

/// Writes validated rows in batches. `flush` once at the end.
pub struct Writer<'c> {
    conn: &'c mut PgConnection,
    opts: Options,
    product: Product,
    batch: Vec<Row>,
    pub report: Report,
}

#[derive(Debug)]
enum Abort {
    DryRun(Report),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

impl<'c> Writer<'c> {
    pub fn new(conn: &'c mut PgConnection, opts: Options) -> Result<Self, AppError> {
        let product = products::find(conn, &opts.product)?.ok_or_else(|| {
            AppError::invalid("--product", format!("no product `{}`", opts.product))
        })?;
        let report = Report {
            source: opts.preset.source_name(),
            dry_run: opts.dry_run,
            ..Report::default()
        };
        Ok(Writer {
            conn,
            opts,
            product,
            batch: Vec::new(),
            report,
        })
    }

    /// Takes one read record; writes a batch when it is full.
    pub fn push(
        &mut self,
        row: Result<Row, BadRow>,
        on_bad: &mut dyn FnMut(&BadRow),
    ) -> Result<(), AppError> {
        self.report.rows += 1;
        match row {
            Ok(row) => self.batch.push(row),
            Err(bad) => self.report.bad(bad.line, bad.reason, on_bad),
        }
        if self.batch.len() >= self.opts.batch_size.max(1) {
            self.flush(on_bad)?;
        }
        Ok(())
    }

    /// Writes the rows read so far, in one transaction (rolled back on a dry run).
    pub fn flush(&mut self, on_bad: &mut dyn FnMut(&BadRow)) -> Result<(), AppError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let (opts, product) = (&self.opts, &self.product);
        let outcome = diesel::Connection::transaction::<_, Abort, _>(self.conn, |conn| {
            let report = write_batch(conn, &batch, opts, product)?;
            if opts.dry_run {
                Err(Abort::DryRun(report))
            } else {
                Ok(report)
            }
        });
        let done = match outcome {
            Ok(r) | Err(Abort::DryRun(r)) => r,
            Err(Abort::Db(e)) => return Err(e.into()),
        };
        self.report.created += done.created;
        self.report.unchanged += done.unchanged;
        self.report.activations_created += done.activations_created;
        self.report.emails_queued += done.emails_queued;
        for bad in done.bad {
            self.report.bad(bad.line, bad.reason, on_bad);
        }
        Ok(())
    }
}

fn write_batch(
    conn: &mut PgConnection,
    batch: &[Row],
    opts: &Options,
    product: &Product,
) -> Result<Report, diesel::result::Error> {
    let source = opts.preset.source_name();
    let new: Vec<NewImportedLicense> = batch
        .iter()
        .map(|r| NewImportedLicense {
            key: r.key.clone(),
            product_id: product.id,
            status: r.status.to_owned(),
            email: r.email.clone(),
            customer_name: r.name.clone(),
            max_activations: r.max_activations.unwrap_or(product.max_activations),
            activations_count: r.activations.len() as i32,
            expires_at: r.expires_at,
            source: "import",
            import_source: source,
            import_id: r.source_id.clone(),
            metadata: serde_json::json!({}),
        })
        .collect();
    let inserted: HashMap<String, Uuid> = imports::insert_licenses(conn, &new)?
        .into_iter()
        .filter_map(|(import_id, id)| Some((import_id?, id)))
        .collect();
    let mut report = Report::default();
    let skipped: Vec<&str> = batch
        .iter()
        .filter(|r| !inserted.contains_key(&r.source_id))
        .map(|r| r.source_id.as_str())
        .collect();
    let earlier: std::collections::HashSet<String> = if skipped.is_empty() {
        Default::default()
    } else {
        imports::already_imported(conn, source, &skipped)?
            .into_iter()
            .flatten()
            .collect()
    };
    let mut activations = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in batch {
        if !seen.insert(row.source_id.as_str()) {
            report.bad.push(BadRow {
                line: row.line,
                reason: format!("id `{}` repeats an earlier row of the file", row.source_id),
            });
            continue;
        }
        match inserted.get(&row.source_id) {
            Some(id) => {
                report.created += 1;
                activations.extend(row.activations.iter().map(|(fp, name)| NewActivation {
                    license_id: *id,
                    fingerprint: fp,
                    name: name.as_deref(),
                    ip: None,
                }));
                if opts.send_email {
                    outbox::enqueue_license_email(conn, &row.email, &[*id])?;
                    report.emails_queued += 1;
                }
            }
            None if earlier.contains(&row.source_id) => report.unchanged += 1,
            None => report.bad.push(BadRow {
                line: row.line,
                reason: "key is already held by another license".into(),
            }),
        }
    }
    for chunk in activations.chunks(10_000) {
        report.activations_created += imports::insert_activations(conn, chunk)? as u64;
    }
    Ok(report)
}
