//! Where a license is decided: validate, activate and deactivate, for the public API
//! and every compatibility adapter. The database enforces the seat limit; this module
//! decides which answer the customer software gets.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::cache::{Device, Entry, LicenseCache, Lookup};
use super::history::{self, Actor};
use super::input::Fingerprint;
use super::key::{LicenseKey, LicenseRef};
use super::lease;
use super::views::{ActivationView, LicenseView};
use super::Status;
use crate::db::models::{Activation, License, NewActivation, Product};
use crate::db::{self, activations, licenses, InlineReads, Pool};
use crate::error::AppError;
use crate::metrics;

/// The answer codes of the public license API, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    NotFound,
    Revoked,
    Suspended,
    PastDue,
    Expired,
    ProductMismatch,
    EmailMismatch,
    NotActivated,
    LeaseExpired,
    TooManyActivations,
    Valid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "NOT_FOUND",
            Code::Revoked => "REVOKED",
            Code::Suspended => "SUSPENDED",
            Code::PastDue => "PAST_DUE",
            Code::Expired => "EXPIRED",
            Code::ProductMismatch => "PRODUCT_MISMATCH",
            Code::EmailMismatch => "EMAIL_MISMATCH",
            Code::NotActivated => "NOT_ACTIVATED",
            Code::LeaseExpired => "LEASE_EXPIRED",
            Code::TooManyActivations => "TOO_MANY_ACTIVATIONS",
            Code::Valid => "VALID",
        }
    }

    /// What the customer software (or its user) should read.
    pub fn message(self) -> &'static str {
        match self {
            Code::NotFound => "No license matches this key. Check it for typos.",
            Code::Revoked => "This license has been revoked.",
            Code::Suspended => "This license is suspended. Contact the seller.",
            Code::PastDue => {
                "The subscription's payment is overdue. Update the payment method to keep using the software."
            }
            Code::Expired => "This license has expired. Renew it to keep using the software.",
            Code::ProductMismatch => "This license is for a different product.",
            Code::EmailMismatch => "This license belongs to a different email address.",
            Code::NotActivated => {
                "This device is not activated for the license. Activate it first."
            }
            Code::LeaseExpired => {
                "This device has not checked in within its lease, so its seat is free. Activate it again."
            }
            Code::TooManyActivations => {
                "The license has reached its activation limit. Deactivate another device first."
            }
            Code::Valid => "The license is valid.",
        }
    }
}

/// What the caller of `validate` asked about.
#[derive(Debug, Clone, Default)]
pub struct ValidateRequest {
    pub key: String,
    pub fingerprint: Option<Fingerprint>,
    /// The device by activation id instead of fingerprint (SellApp's `instance_id`).
    pub activation_id: Option<Uuid>,
    /// Product id or slug the software expects.
    pub product: Option<String>,
    pub email: Option<String>,
}

/// What an activate or deactivate caller expects of the license besides its key
/// (the compatibility APIs send a product id and an email along).
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Product id or slug.
    pub product: Option<String>,
    pub email: Option<String>,
}

/// Whether `want` (a product id or slug, as the caller sent it) names the product.
pub fn product_matches(want: &str, id: Uuid, slug: &str) -> bool {
    let want = want.trim();
    want == id.to_string() || want.eq_ignore_ascii_case(slug)
}

/// PRODUCT_MISMATCH or EMAIL_MISMATCH, in that order, if the caller expects otherwise.
fn expectation_refusal(
    product: Option<&str>,
    email: Option<&str>,
    l: &License,
    p: &Product,
) -> Option<Code> {
    if let Some(want) = product {
        if !product_matches(want, p.id, &p.slug) {
            return Some(Code::ProductMismatch);
        }
    }
    if let Some(email) = email.map(str::trim) {
        if !email.eq_ignore_ascii_case(l.email.trim()) {
            return Some(Code::EmailMismatch);
        }
    }
    None
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub valid: bool,
    pub code: Code,
    pub message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationView>,
    /// Present only when the database was unreachable: the answer comes from this
    /// instance's cache, which may have missed changes made since this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<DateTime<Utc>>,
}

impl Validation {
    fn of(code: Code, license: Option<LicenseView>, activation: Option<ActivationView>) -> Self {
        Validation {
            valid: code == Code::Valid,
            code,
            message: code.message(),
            license,
            activation,
            stale_since: None,
        }
    }
}

/// The status refusal of a license, if any: REVOKED, SUSPENDED, PAST_DUE, EXPIRED in
/// that order.
pub fn status_refusal(l: &License, now: DateTime<Utc>) -> Option<Code> {
    match Status::of(l, now) {
        Status::Revoked => Some(Code::Revoked),
        Status::Suspended => Some(Code::Suspended),
        Status::PastDue => Some(Code::PastDue),
        Status::Expired => Some(Code::Expired),
        Status::Active => None,
    }
}

/// Whether an expired license of this product keeps access to the versions released
/// up to its expiry (`maintain_access`).
pub fn maintains_access(p: &Product) -> bool {
    p.expiry_behavior == "maintain_access"
}

/// The refusal of a device operation (activate, heartbeat, license file): as
/// [`status_refusal`], except that an expired `maintain_access` license still takes
/// devices (they run the versions it covers).
pub fn device_refusal(l: &License, p: &Product, now: DateTime<Utc>) -> Option<Code> {
    match status_refusal(l, now) {
        Some(Code::Expired) if maintains_access(p) => None,
        other => other,
    }
}

/// The validate decision, from the stored rows alone (pure, so every order is testable).
pub fn decide(
    req: &ValidateRequest,
    l: &License,
    p: &Product,
    activation: Option<&Activation>,
    now: DateTime<Utc>,
) -> Code {
    if let Some(code) = status_refusal(l, now) {
        return code;
    }
    if let Some(code) = expectation_refusal(req.product.as_deref(), req.email.as_deref(), l, p) {
        return code;
    }
    let asks_for_device = req.fingerprint.is_some() || req.activation_id.is_some();
    match activation {
        None if asks_for_device => Code::NotActivated,
        Some(a) if !lease::is_alive(l, p, a.last_seen_at, now) => Code::LeaseExpired,
        _ => Code::Valid,
    }
}

/// A validate decision with the rows it was made from, for callers (the
/// compatibility adapters) that shape their own answer.
#[derive(Debug, Clone)]
pub struct Checked {
    pub code: Code,
    /// Absent only when the code is NOT_FOUND.
    pub found: Option<(License, Product)>,
    pub activation: Option<Activation>,
    pub now: DateTime<Utc>,
    /// Set when answered from the cache while the database was unreachable: the
    /// instant since which the cached rows may be out of date.
    pub stale_since: Option<DateTime<Utc>>,
}

/// The validate decision with one indexed read; a known device's `last_seen_at` is
/// refreshed at most once per `last_seen_interval`.
pub fn check(
    conn: &mut PgConnection,
    req: &ValidateRequest,
    last_seen_interval: Duration,
) -> QueryResult<Checked> {
    let now = Utc::now();
    let not_found = Checked {
        now,
        ..Checked::not_found()
    };
    let Some(key) = LicenseKey::lookup(&req.key) else {
        return Ok(not_found);
    };
    let fingerprint = req.fingerprint.as_ref().map(Fingerprint::as_str);
    let Some((license, product, activation)) =
        licenses::find_for_check(conn, key.as_str(), fingerprint, req.activation_id)?
    else {
        return Ok(not_found);
    };
    let code = decide(req, &license, &product, activation.as_ref(), now);
    // A device whose lease ran out is not revived by a validate: it activates again.
    if let Some(a) = activation.as_ref().filter(|_| code != Code::LeaseExpired) {
        let interval = lease::refresh_interval(&license, &product, last_seen_interval);
        activations::touch_if_stale(conn, a, interval)?;
    }
    Ok(Checked {
        code,
        found: Some((license, product)),
        activation,
        now,
        stale_since: None,
    })
}

/// Answers a validate call of the public API (see [`check`]).
pub fn validate(
    conn: &mut PgConnection,
    req: &ValidateRequest,
    last_seen_interval: Duration,
) -> QueryResult<Validation> {
    Ok(check(conn, req, last_seen_interval)?.into())
}

impl Checked {
    /// The answer for a key that names no license.
    pub fn not_found() -> Self {
        Checked {
            code: Code::NotFound,
            found: None,
            activation: None,
            now: Utc::now(),
            stale_since: None,
        }
    }
}

impl Device {
    fn of(req: &ValidateRequest) -> Option<Device> {
        match (&req.fingerprint, req.activation_id) {
            (Some(f), _) => Some(Device::Fingerprint(f.as_str().to_owned())),
            (None, Some(id)) => Some(Device::Id(id)),
            (None, None) => None,
        }
    }
}

/// The validate decision from the cache when it holds the license (and the device),
/// otherwise from one read that then fills it. While the database is unreachable, a
/// cached license is answered for up to the configured staleness, marked `stale_since`.
pub async fn check_cached(
    pool: &Pool,
    reads: &InlineReads,
    cache: &LicenseCache,
    req: ValidateRequest,
    last_seen_interval: Duration,
) -> Result<Checked, AppError> {
    let now = Utc::now();
    let Some(key) = LicenseKey::lookup(&req.key).filter(|_| cache.enabled()) else {
        return reads
            .read(pool, move |conn| Ok(check(conn, &req, last_seen_interval)?))
            .await;
    };
    let device = Device::of(&req);
    match cache.lookup(key.as_str(), device.as_ref(), now) {
        Lookup::Fresh(entry) => {
            metrics::record_validate_cache("hit");
            let answer = from_cache(cache, &req, &entry, last_seen_interval, now, None);
            return Ok(answer);
        }
        Lookup::Stale(entry, since) if cache.db_seems_down(now) => {
            metrics::record_validate_cache("stale");
            let answer = from_cache(cache, &req, &entry, last_seen_interval, now, Some(since));
            return Ok(answer);
        }
        _ => {}
    }
    let ticket = cache.ticket();
    let read = {
        let req = req.clone();
        let miss = move |conn: &mut PgConnection| Ok(check(conn, &req, last_seen_interval)?);
        // While the database seems down, a miss waits on the blocking pool (which times
        // out), never on an HTTP worker.
        if cache.db_seems_down(now) {
            db::run(pool, miss).await
        } else {
            reads.read(pool, miss).await
        }
    };
    match read {
        Ok(checked) => {
            metrics::record_validate_cache("miss");
            cache.mark_db_up();
            if let Some((license, product)) = &checked.found {
                let activation = checked.activation.as_ref();
                cache.insert(ticket, key.as_str(), license, product, device, activation);
            }
            Ok(checked)
        }
        Err(AppError::DatabaseUnavailable(e)) => {
            cache.mark_db_down(now);
            let Some((entry, since)) = cache.lookup_for_outage(key.as_str(), device.as_ref(), now)
            else {
                return Err(AppError::DatabaseUnavailable(e));
            };
            metrics::record_validate_cache("stale");
            let answer = from_cache(cache, &req, &entry, last_seen_interval, now, Some(since));
            Ok(answer)
        }
        Err(e) => Err(e),
    }
}

/// A decision from cached rows, made with the clock of now; a due `last_seen_at`
/// refresh is queued for the cache's next batched write.
fn from_cache(
    cache: &LicenseCache,
    req: &ValidateRequest,
    entry: &Entry,
    last_seen_interval: Duration,
    now: DateTime<Utc>,
    stale_since: Option<DateTime<Utc>>,
) -> Checked {
    let device = Device::of(req);
    let activation = entry.device(device.as_ref()).flatten().cloned();
    let code = decide(
        req,
        &entry.license,
        &entry.product,
        activation.as_ref(),
        now,
    );
    // As `check`: a device whose lease ran out is not revived; a live one is refreshed
    // as often as its lease asks (the write waits for the next batch, at most a flush
    // interval, and records the instant of this validate, not of the write).
    if let Some(a) = activation.as_ref().filter(|_| code != Code::LeaseExpired) {
        let interval = lease::refresh_interval(&entry.license, &entry.product, last_seen_interval);
        if now - a.last_seen_at >= interval {
            cache.touch_later(a.id, now, interval);
        }
    }
    Checked {
        code,
        found: Some((entry.license.clone(), entry.product.clone())),
        activation,
        now,
        stale_since,
    }
}

/// The public API's answer to a check.
impl From<Checked> for Validation {
    fn from(c: Checked) -> Self {
        let (license, activation) = match c.found {
            Some((license, product)) => {
                let activation = c
                    .activation
                    .map(|a| ActivationView::leased(a, &license, &product));
                (
                    Some(LicenseView::public(license, &product, c.now)),
                    activation,
                )
            }
            None => (None, None),
        };
        Validation {
            stale_since: c.stale_since,
            ..Validation::of(c.code, license, activation)
        }
    }
}

/// The result of a heartbeat.
// Built once per request and matched at once: boxing the views would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Heartbeat {
    /// The lease was renewed from now.
    Alive {
        activation: ActivationView,
        license: LicenseView,
    },
    /// NOT_FOUND, REVOKED, SUSPENDED, PAST_DUE, EXPIRED or NOT_ACTIVATED.
    Refused(Code),
}

/// Renews the lease of an activated device (`POST /v1/licenses/heartbeat`). A device
/// whose lease ran out but whose seat no activation has reclaimed yet is renewed too:
/// it still holds that seat. Once reclaimed, the answer is NOT_ACTIVATED.
pub fn heartbeat(
    conn: &mut PgConnection,
    key: &str,
    fingerprint: &Fingerprint,
) -> QueryResult<Heartbeat> {
    let now = Utc::now();
    let Some(key) = LicenseKey::lookup(key) else {
        return Ok(Heartbeat::Refused(Code::NotFound));
    };
    let Some((license, product, _)) = licenses::find_for_check(conn, key.as_str(), None, None)?
    else {
        return Ok(Heartbeat::Refused(Code::NotFound));
    };
    if let Some(code) = device_refusal(&license, &product, now) {
        return Ok(Heartbeat::Refused(code));
    }
    let Some(activation) = activations::touch(conn, license.id, fingerprint.as_str())? else {
        return Ok(Heartbeat::Refused(Code::NotActivated));
    };
    Ok(Heartbeat::Alive {
        activation: ActivationView::leased(activation, &license, &product),
        license: LicenseView::public(license, &product, now),
    })
}

/// The result of an activate call.
#[derive(Debug, Clone)]
pub enum Activated {
    /// A new seat was taken (201).
    New {
        activation: ActivationView,
        license: LicenseView,
    },
    /// The fingerprint was already activated (200).
    Existing {
        activation: ActivationView,
        license: LicenseView,
    },
    /// Refused: NOT_FOUND, REVOKED, SUSPENDED, EXPIRED or TOO_MANY_ACTIVATIONS.
    Refused(Code),
}

#[derive(Debug, Clone)]
pub struct ActivateRequest {
    pub key: String,
    pub fingerprint: Fingerprint,
    pub name: Option<String>,
    pub ip: Option<String>,
}

/// Rolls the transaction back with a refusal, or fails it with a database error.
enum Abort {
    Refused(Code),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

/// Activates a device for the public API (see [`activate_with`]).
pub fn activate(conn: &mut PgConnection, req: &ActivateRequest) -> QueryResult<Activated> {
    Ok(activate_with(conn, req, &Expect::default())?.into())
}

/// The public API's view of an activation.
impl From<ActivateOutcome> for Activated {
    fn from(outcome: ActivateOutcome) -> Self {
        match outcome {
            ActivateOutcome::Done {
                new,
                activation,
                license,
                product,
            } => {
                let activation = ActivationView::leased(activation, &license, &product);
                let license = LicenseView::public(license, &product, Utc::now());
                if new {
                    Activated::New {
                        activation,
                        license,
                    }
                } else {
                    Activated::Existing {
                        activation,
                        license,
                    }
                }
            }
            ActivateOutcome::Refused(code) => Activated::Refused(code),
        }
    }
}

/// An activation with the rows it touched, for callers that shape their own answer.
// Built once per request and matched at once: boxing the rows would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ActivateOutcome {
    Done {
        /// A new seat was taken (false: the fingerprint was already activated).
        new: bool,
        activation: Activation,
        /// The license as it is after the activation.
        license: License,
        product: Product,
    },
    /// NOT_FOUND, REVOKED, SUSPENDED, EXPIRED, PRODUCT_MISMATCH, EMAIL_MISMATCH or
    /// TOO_MANY_ACTIVATIONS.
    Refused(Code),
}

/// Activates a device. The seat is taken by a conditional UPDATE in the same
/// transaction as the activation row, so the limit holds under any concurrency and
/// across instances; seats of devices whose lease ran out are reclaimed in that same
/// transaction, before the limit is checked. A refused activation leaves nothing
/// behind. `expect` refuses a license of another product or buyer before any seat is
/// taken.
pub fn activate_with(
    conn: &mut PgConnection,
    req: &ActivateRequest,
    expect: &Expect,
) -> QueryResult<ActivateOutcome> {
    activate_as(conn, &Actor::App, req, expect)
}

/// [`activate_with`] on behalf of `actor`, who is named in the license history.
pub fn activate_as(
    conn: &mut PgConnection,
    actor: &Actor,
    req: &ActivateRequest,
    expect: &Expect,
) -> QueryResult<ActivateOutcome> {
    let now = Utc::now();
    let Some(key) = LicenseKey::lookup(&req.key) else {
        return Ok(ActivateOutcome::Refused(Code::NotFound));
    };
    let result = conn.transaction::<_, Abort, _>(|conn| {
        let (license, product) =
            licenses::find(conn, key.as_str())?.ok_or(Abort::Refused(Code::NotFound))?;
        if let Some(code) = device_refusal(&license, &product, now) {
            return Err(Abort::Refused(code));
        }
        if let Some(code) = expectation_refusal(
            expect.product.as_deref(),
            expect.email.as_deref(),
            &license,
            &product,
        ) {
            return Err(Abort::Refused(code));
        }
        let reclaimed = reclaim_dead_seats(conn, &license, &product, req, now)?;
        let license = License {
            activations_count: license.activations_count - reclaimed,
            ..license
        };
        let (new, activation) = take_or_find_seat(conn, &license, req)?;
        if new {
            history::record(
                conn,
                actor,
                license.id,
                "device_activated",
                Some(json!({ "activations_count": license.activations_count })),
                Some(json!({
                    "activations_count": license.activations_count + 1,
                    "device": history::device(&activation),
                })),
            )?;
        }
        let license = License {
            activations_count: license.activations_count + i32::from(new),
            ..license
        };
        Ok(ActivateOutcome::Done {
            new,
            activation,
            license,
            product,
        })
    });
    match result {
        Ok(done) => Ok(done),
        Err(Abort::Refused(code)) => Ok(ActivateOutcome::Refused(code)),
        Err(Abort::Db(e)) => Err(e),
    }
}

/// The devices of a license, for `POST /v1/licenses/activations`: the key holder's
/// software shows them so its user can free one without a web visit.
#[derive(Debug, Clone, Serialize)]
pub struct Devices {
    pub license: LicenseView,
    pub activations: Vec<DeviceView>,
}

/// A device as the key holder sees it (no IP address).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    pub id: Uuid,
    pub name: Option<String>,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Lists the devices activated on the license with this key (`None`: no such key).
pub fn devices(conn: &mut PgConnection, key: &str) -> QueryResult<Option<Devices>> {
    let Some(key) = LicenseKey::lookup(key) else {
        return Ok(None);
    };
    let Some((license, product)) = licenses::find(conn, key.as_str())? else {
        return Ok(None);
    };
    let activations = activations::list_for(conn, license.id)?
        .into_iter()
        .map(|a| DeviceView {
            id: a.id,
            name: a.name,
            fingerprint: a.fingerprint,
            created_at: a.created_at,
            last_seen_at: a.last_seen_at,
        })
        .collect();
    Ok(Some(Devices {
        license: LicenseView::public(license, &product, Utc::now()),
        activations,
    }))
}

/// Deletes the license's activations whose lease ran out (other than the device
/// asking) and frees their seats; returns how many. Each row is deleted by one
/// transaction only, so concurrent reclaims never free a seat twice.
fn reclaim_dead_seats(
    conn: &mut PgConnection,
    license: &License,
    product: &Product,
    req: &ActivateRequest,
    now: DateTime<Utc>,
) -> QueryResult<i32> {
    let Some(before) = lease::dead_before(license, product, now) else {
        return Ok(0);
    };
    // Activations of one leased license queue here, so reclaims and revivals of the
    // same rows never lock them in different orders (a deadlock).
    licenses::lock(conn, license.id)?;
    let dead = activations::delete_dead(conn, license.id, before, req.fingerprint.as_str())?;
    let freed = i32::try_from(dead.len()).unwrap_or(i32::MAX);
    if freed > 0 {
        tracing::info!(license = %license.id, freed, "reclaimed the seats of dead devices");
        licenses::release_seats(conn, license.id, freed)?;
    }
    for (i, a) in dead.iter().enumerate() {
        let count = license.activations_count - i as i32;
        history::record(
            conn,
            &Actor::System,
            license.id,
            "device_deactivated",
            Some(json!({ "activations_count": count, "device": history::device(a) })),
            Some(json!({ "activations_count": count - 1, "reason": "lease expired" })),
        )?;
    }
    Ok(freed)
}

/// Inserts the activation and takes its seat (`true`), or finds the fingerprint's
/// existing activation and refreshes it (`false`). A concurrent deactivate of the same
/// device can delete the row between the insert's conflict and the read: then the
/// insert is tried again, so a race never answers a false NOT_FOUND.
fn take_or_find_seat(
    conn: &mut PgConnection,
    license: &License,
    req: &ActivateRequest,
) -> Result<(bool, Activation), Abort> {
    let new = NewActivation {
        license_id: license.id,
        fingerprint: req.fingerprint.as_str(),
        name: req.name.as_deref(),
        ip: req.ip.as_deref(),
    };
    for _ in 0..5 {
        if let Some(activation) = activations::insert_if_new(conn, &new)? {
            if !licenses::try_take_seat(conn, license.id)? {
                return Err(Abort::Refused(Code::TooManyActivations));
            }
            return Ok((true, activation));
        }
        if let Some(activation) = activations::touch(conn, license.id, req.fingerprint.as_str())? {
            return Ok((false, activation));
        }
    }
    // Five deletes in a row between our insert and our read: an abusive client loop.
    Err(Abort::Db(diesel::result::Error::RollbackTransaction))
}

/// The result of a deactivate call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deactivated {
    Done(Uuid),
    /// NOT_FOUND (no such license) or NOT_ACTIVATED (no such activation).
    Refused(Code),
}

/// Removes one activation of the license named by `key_or_id` and frees its seat.
pub fn deactivate(
    conn: &mut PgConnection,
    key_or_id: &str,
    which: &activations::Selector,
) -> QueryResult<Deactivated> {
    deactivate_by(conn, &Actor::App, key_or_id, which)
}

/// [`deactivate`] on behalf of `actor`, who is named in the license history.
pub fn deactivate_by(
    conn: &mut PgConnection,
    actor: &Actor,
    key_or_id: &str,
    which: &activations::Selector,
) -> QueryResult<Deactivated> {
    Ok(deactivate_as(conn, actor, key_or_id, Some(which), &Expect::default())?.into())
}

/// The public API's view of a deactivation of one device.
impl From<DeactivateOutcome> for Deactivated {
    fn from(outcome: DeactivateOutcome) -> Self {
        match outcome {
            DeactivateOutcome::Done { removed, .. } => match removed.first() {
                Some(a) => Deactivated::Done(a.id),
                None => Deactivated::Refused(Code::NotActivated),
            },
            DeactivateOutcome::Refused(code) => Deactivated::Refused(code),
        }
    }
}

/// A deactivation with the rows it touched, for callers that shape their own answer.
// Built once per request and matched at once: boxing the rows would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum DeactivateOutcome {
    Done {
        /// The activations removed: one for a selector, every one (maybe none) for all.
        removed: Vec<Activation>,
        /// The license as it is after the deactivation.
        license: License,
        product: Product,
    },
    /// NOT_FOUND, PRODUCT_MISMATCH, EMAIL_MISMATCH, or NOT_ACTIVATED (a selector that
    /// matches no activation).
    Refused(Code),
}

/// Removes the activation `which` selects (every activation when `None`) of the
/// license named by `key_or_id`, and frees the seats, in one transaction. A license
/// of another product or buyer than `expect` names is refused untouched.
pub fn deactivate_with(
    conn: &mut PgConnection,
    key_or_id: &str,
    which: Option<&activations::Selector>,
    expect: &Expect,
) -> QueryResult<DeactivateOutcome> {
    deactivate_as(conn, &Actor::App, key_or_id, which, expect)
}

/// [`deactivate_with`] on behalf of `actor`, who is named in the license history.
pub fn deactivate_as(
    conn: &mut PgConnection,
    actor: &Actor,
    key_or_id: &str,
    which: Option<&activations::Selector>,
    expect: &Expect,
) -> QueryResult<DeactivateOutcome> {
    let Some(lookup) = LicenseRef::parse(key_or_id) else {
        return Ok(DeactivateOutcome::Refused(Code::NotFound));
    };
    conn.transaction(|conn| {
        let Some((license, product)) = licenses::find(conn, &lookup.as_str())? else {
            return Ok(DeactivateOutcome::Refused(Code::NotFound));
        };
        if let Some(code) = expectation_refusal(
            expect.product.as_deref(),
            expect.email.as_deref(),
            &license,
            &product,
        ) {
            return Ok(DeactivateOutcome::Refused(code));
        }
        let removed = match which {
            Some(which) => match activations::delete(conn, license.id, which)? {
                Some(a) => vec![a],
                None => return Ok(DeactivateOutcome::Refused(Code::NotActivated)),
            },
            None => activations::delete_all(conn, license.id)?,
        };
        let freed = i32::try_from(removed.len()).unwrap_or(i32::MAX);
        if freed > 0 {
            licenses::release_seats(conn, license.id, freed)?;
        }
        for (i, a) in removed.iter().enumerate() {
            let count = license.activations_count - i as i32;
            history::record(
                conn,
                actor,
                license.id,
                "device_deactivated",
                Some(json!({ "activations_count": count, "device": history::device(a) })),
                Some(json!({ "activations_count": count - 1 })),
            )?;
        }
        let license = License {
            activations_count: license.activations_count - freed,
            ..license
        };
        Ok(DeactivateOutcome::Done {
            removed,
            license,
            product,
        })
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rows(status: &str, expires_at: Option<DateTime<Utc>>) -> (License, Product) {
        let now = Utc::now();
        let product = Product {
            id: Uuid::new_v4(),
            slug: "app".into(),
            name: "App".into(),
            max_activations: None,
            duration_days: None,
            key_prefix: None,
            created_at: now,
            updated_at: now,
            heartbeat_seconds: None,
            entitlements: vec![],
            expiry_behavior: "revoke_access".into(),
            offline_allowed: false,
        };
        let license = License {
            id: Uuid::new_v4(),
            key: "K".into(),
            product_id: product.id,
            status: status.into(),
            email: "Buyer@Example.com".into(),
            customer_name: None,
            max_activations: None,
            activations_count: 0,
            expires_at,
            source: "manual".into(),
            stripe_checkout_session_id: None,
            stripe_line_item_id: None,
            stripe_line_item_seq: None,
            stripe_payment_intent_id: None,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
            heartbeat_seconds: None,
            entitlements: None,
            subscription_status: None,
            subscription_state_at: None,
            cancel_at_period_end: false,
            past_due_until: None,
        };
        (license, product)
    }

    #[test]
    fn status_codes_come_before_request_checks_and_in_order() {
        let now = Utc::now();
        let past = Some(now - Duration::days(1));
        let mismatching = ValidateRequest {
            product: Some("other".into()),
            email: Some("x@y.z".into()),
            ..Default::default()
        };
        for (status, expires, want) in [
            ("revoked", past, Code::Revoked),
            ("suspended", past, Code::Suspended),
            ("active", past, Code::Expired),
            ("active", None, Code::ProductMismatch),
        ] {
            let (l, p) = rows(status, expires);
            assert_eq!(decide(&mismatching, &l, &p, None, now), want);
        }
    }

    #[test]
    fn subscription_and_lease_codes_sit_in_their_documented_places() {
        let now = Utc::now();
        let past = Some(now - Duration::days(1));
        let device = ValidateRequest {
            fingerprint: Some(Fingerprint::parse("fingerprint", "dev").unwrap()),
            product: Some("other".into()),
            ..Default::default()
        };
        // Paused reads as SUSPENDED, before PAST_DUE.
        let (mut l, p) = rows("active", past);
        l.subscription_status = Some("paused".into());
        assert_eq!(decide(&device, &l, &p, None, now), Code::Suspended);
        // PAST_DUE (grace over) comes before EXPIRED; within the grace it is not reported.
        l.subscription_status = Some("past_due".into());
        l.past_due_until = Some(now - Duration::seconds(1));
        assert_eq!(decide(&device, &l, &p, None, now), Code::PastDue);
        l.past_due_until = Some(now + Duration::days(1));
        assert_eq!(decide(&device, &l, &p, None, now), Code::Expired);
        // LEASE_EXPIRED comes after the request checks and NOT_ACTIVATED, only for a known device.
        let (l, mut p) = rows("active", None);
        p.heartbeat_seconds = Some(60);
        let seen = |secs| Activation {
            id: Uuid::new_v4(),
            license_id: l.id,
            fingerprint: "dev".into(),
            name: None,
            ip: None,
            created_at: now - Duration::days(1),
            last_seen_at: now - Duration::seconds(secs),
        };
        let dead = seen(61);
        assert_eq!(
            decide(&device, &l, &p, Some(&dead), now),
            Code::ProductMismatch
        );
        let device = ValidateRequest {
            product: None,
            ..device
        };
        assert_eq!(decide(&device, &l, &p, None, now), Code::NotActivated);
        assert_eq!(
            decide(&device, &l, &p, Some(&dead), now),
            Code::LeaseExpired
        );
        assert_eq!(decide(&device, &l, &p, Some(&seen(59)), now), Code::Valid);
    }

    #[test]
    fn an_expired_maintain_access_license_still_takes_devices() {
        let now = Utc::now();
        let (l, mut p) = rows("active", Some(now - Duration::days(1)));
        assert_eq!(device_refusal(&l, &p, now), Some(Code::Expired));
        p.expiry_behavior = "maintain_access".into();
        assert_eq!(device_refusal(&l, &p, now), None);
        assert_eq!(status_refusal(&l, now), Some(Code::Expired));
    }

    #[test]
    fn product_email_and_fingerprint_checks() {
        let now = Utc::now();
        let (l, p) = rows("active", Some(now + Duration::days(1)));
        let by_slug = ValidateRequest {
            product: Some("APP".into()),
            email: Some(" buyer@example.COM ".into()),
            ..Default::default()
        };
        assert_eq!(decide(&by_slug, &l, &p, None, now), Code::Valid);
        let by_id = ValidateRequest {
            product: Some(p.id.to_string()),
            email: Some("other@example.com".into()),
            ..Default::default()
        };
        assert_eq!(decide(&by_id, &l, &p, None, now), Code::EmailMismatch);
        let with_device = ValidateRequest {
            fingerprint: Some(Fingerprint::parse("fingerprint", "dev").unwrap()),
            ..Default::default()
        };
        assert_eq!(decide(&with_device, &l, &p, None, now), Code::NotActivated);
        let by_activation_id = ValidateRequest {
            activation_id: Some(Uuid::new_v4()),
            ..Default::default()
        };
        assert_eq!(
            decide(&by_activation_id, &l, &p, None, now),
            Code::NotActivated
        );
    }
}
