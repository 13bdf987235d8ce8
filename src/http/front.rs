//! The front door of every license client: the native `/v1/licenses/*` API and every
//! vendor dialect (`http::compat`). A dialect parses its request into a [`Call`],
//! hands it to [`serve`], and renders the [`Answer`]; everything between is here,
//! once, for all of them:
//!
//! - the client's address (the socket peer, or `X-Forwarded-For` from a trusted proxy),
//!   stored on the activations it creates;
//! - the abuse limits: a failed lookup is reserved against the client's budget before
//!   the key is looked up (so simultaneous guesses cannot outrun the count), activation
//!   attempts are counted per key, and over-long keys never reach a lookup or a counter;
//! - the call into `licensing`, and the metrics of its answer;
//! - signing and the per-IP request budget, by registering the route with
//!   [`license_route`].
//!
//! A fifth dialect is one file under `compat/` that parses and renders.

use std::net::IpAddr;

use actix_web::dev::HttpServiceFactory;
use actix_web::{web, HttpRequest};
use chrono::Duration;

use super::limits::{PublicLimits, MAX_KEY_CHARS};
use super::signing::Signed;
use super::State;
use crate::db::{self, activations::Selector};
use crate::error::AppError;
use crate::licensing::check::{
    self, ActivateOutcome, ActivateRequest, Checked, Code, DeactivateOutcome, Expect,
    ValidateRequest,
};
use crate::licensing::input::Fingerprint;
use crate::licensing::signing::{self, CheckoutRequest, LicenseFile};
use crate::metrics;

/// A license route: abuse-limited per client IP and answered with a signature, like
/// every route a license client calls.
pub fn license_route(
    path: &str,
    routes: impl IntoIterator<Item = actix_web::Route>,
) -> impl HttpServiceFactory {
    routes
        .into_iter()
        .fold(web::resource(path), |r, route| r.route(route))
        .wrap(PublicLimits)
        .wrap(Signed)
}

/// What a license client asks, whatever dialect it spoke.
#[derive(Debug, Clone)]
pub enum Call {
    /// Is this key (and device) good?
    Validate(ValidateRequest),
    /// Take a seat for this device.
    Activate(Activate),
    /// Free the seat of one device (`which`), or of every device (`None`).
    Deactivate(Deactivate),
    /// Issue an offline license file.
    Checkout(CheckoutRequest),
    /// Which devices use this key?
    Devices(String),
    /// Renew the lease of an activated device.
    Heartbeat(Heartbeat),
}

#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub key: String,
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Clone)]
pub struct Activate {
    pub key: String,
    pub fingerprint: Fingerprint,
    pub name: Option<String>,
    pub expect: Expect,
}

#[derive(Debug, Clone)]
pub struct Deactivate {
    pub key: String,
    pub which: Option<Selector>,
    pub expect: Expect,
}

/// What `licensing` decided, for the dialect to render.
#[derive(Debug, Clone)]
pub enum Answer {
    Checked(Checked),
    Activated(ActivateOutcome),
    Deactivated(DeactivateOutcome),
    Issued(Result<LicenseFile, Code>),
    /// `None`: no license has this key.
    Devices(Option<check::Devices>),
    Heartbeat(check::Heartbeat),
}

impl Call {
    fn key(&self) -> &str {
        match self {
            Call::Validate(r) => &r.key,
            Call::Activate(r) => &r.key,
            Call::Deactivate(r) => &r.key,
            Call::Checkout(r) => &r.key,
            Call::Devices(key) => key,
            Call::Heartbeat(r) => &r.key,
        }
    }

    /// The answer for a key that names no license.
    fn unknown_key(&self) -> Answer {
        match self {
            Call::Validate(_) => Answer::Checked(Checked::not_found()),
            Call::Activate(_) => Answer::Activated(ActivateOutcome::Refused(Code::NotFound)),
            Call::Deactivate(_) => Answer::Deactivated(DeactivateOutcome::Refused(Code::NotFound)),
            Call::Checkout(_) => Answer::Issued(Err(Code::NotFound)),
            Call::Devices(_) => Answer::Devices(None),
            Call::Heartbeat(_) => Answer::Heartbeat(check::Heartbeat::Refused(Code::NotFound)),
        }
    }
}

impl Answer {
    fn is_unknown_key(&self) -> bool {
        match self {
            Answer::Checked(c) => c.code == Code::NotFound,
            Answer::Activated(ActivateOutcome::Refused(code))
            | Answer::Deactivated(DeactivateOutcome::Refused(code))
            | Answer::Issued(Err(code))
            | Answer::Heartbeat(check::Heartbeat::Refused(code)) => *code == Code::NotFound,
            Answer::Devices(found) => found.is_none(),
            _ => false,
        }
    }

    fn record_metrics(&self) {
        match self {
            Answer::Checked(c) => metrics::record_validation(c.code.as_str()),
            Answer::Activated(ActivateOutcome::Done { new: true, .. }) => {
                metrics::record_activation("NEW")
            }
            Answer::Activated(ActivateOutcome::Done { new: false, .. }) => {
                metrics::record_activation("EXISTING")
            }
            Answer::Activated(ActivateOutcome::Refused(code)) => {
                metrics::record_activation(code.as_str())
            }
            Answer::Deactivated(_)
            | Answer::Issued(_)
            | Answer::Heartbeat(_)
            | Answer::Devices(_) => {}
        }
    }
}

/// Answers a license call: limits, client address, `licensing`, metrics (see the
/// module docs). Errors are the API's own (429 with `Retry-After`, 503, ...).
pub async fn serve(state: &State, http: &HttpRequest, call: Call) -> Result<Answer, AppError> {
    let ip = state.limits.client_ip(http);
    let lookup = state
        .limits
        .reserve_failed_lookup(&state.settings, ip)
        .await?;
    let answer = if call.key().chars().count() > MAX_KEY_CHARS {
        call.unknown_key()
    } else {
        if let Call::Activate(a) = &call {
            state.limits.activation_attempt(&state.settings, &a.key)?;
        }
        decide(state, call, ip).await?
    };
    answer.record_metrics();
    if answer.is_unknown_key() {
        lookup.keep();
    }
    Ok(answer)
}

/// The call into `licensing`: validate through this process's cache, the rest on a
/// pooled connection. A license this process changed is dropped from its cache at once
/// (other instances hear of it by NOTIFY).
async fn decide(state: &State, call: Call, ip: Option<IpAddr>) -> Result<Answer, AppError> {
    let interval = Duration::seconds(state.settings.last_seen_interval_secs.into());
    if let Call::Validate(req) = call {
        let checked =
            check::check_cached(&state.pool, &state.reads, &state.cache, req, interval).await?;
        return Ok(Answer::Checked(checked));
    }
    // Activate, deactivate, heartbeat and checkout (an offline file may take a seat)
    // all may change the license.
    let key = call.key().to_owned();
    let answer = write(state, call, ip, interval).await;
    state.cache.forget_ref(&key);
    answer
}

/// Every call but validate, on a pooled connection.
async fn write(
    state: &State,
    call: Call,
    ip: Option<IpAddr>,
    interval: Duration,
) -> Result<Answer, AppError> {
    let signer = state.signer.get();
    db::run(&state.pool, move |conn| {
        Ok(match call {
            Call::Validate(req) => Answer::Checked(check::check(conn, &req, interval)?),
            Call::Activate(a) => {
                let req = ActivateRequest {
                    key: a.key,
                    fingerprint: a.fingerprint,
                    name: a.name,
                    ip: ip.map(|ip| ip.to_string()),
                };
                Answer::Activated(check::activate_with(conn, &req, &a.expect)?)
            }
            Call::Deactivate(d) => Answer::Deactivated(check::deactivate_with(
                conn,
                &d.key,
                d.which.as_ref(),
                &d.expect,
            )?),
            Call::Checkout(req) => Answer::Issued(signing::checkout(conn, &signer, &req)?),
            Call::Devices(key) => Answer::Devices(check::devices(conn, &key)?),
            Call::Heartbeat(h) => {
                Answer::Heartbeat(check::heartbeat(conn, &h.key, &h.fingerprint)?)
            }
        })
    })
    .await
}

/// [`serve`] for a dialect that asked [`Call::Validate`].
pub async fn validate(
    state: &State,
    http: &HttpRequest,
    req: ValidateRequest,
) -> Result<Checked, AppError> {
    match serve(state, http, Call::Validate(req)).await? {
        Answer::Checked(c) => Ok(c),
        other => Err(mismatch(&other)),
    }
}

/// [`serve`] for a dialect that asked [`Call::Activate`].
pub async fn activate(
    state: &State,
    http: &HttpRequest,
    req: Activate,
) -> Result<ActivateOutcome, AppError> {
    match serve(state, http, Call::Activate(req)).await? {
        Answer::Activated(a) => Ok(a),
        other => Err(mismatch(&other)),
    }
}

/// [`serve`] for a dialect that asked [`Call::Deactivate`].
pub async fn deactivate(
    state: &State,
    http: &HttpRequest,
    req: Deactivate,
) -> Result<DeactivateOutcome, AppError> {
    match serve(state, http, Call::Deactivate(req)).await? {
        Answer::Deactivated(d) => Ok(d),
        other => Err(mismatch(&other)),
    }
}

/// [`serve`] for [`Call::Checkout`].
pub async fn checkout(
    state: &State,
    http: &HttpRequest,
    req: CheckoutRequest,
) -> Result<Result<LicenseFile, Code>, AppError> {
    match serve(state, http, Call::Checkout(req)).await? {
        Answer::Issued(i) => Ok(i),
        other => Err(mismatch(&other)),
    }
}

/// [`serve`] for [`Call::Devices`].
pub async fn devices(
    state: &State,
    http: &HttpRequest,
    key: String,
) -> Result<Option<check::Devices>, AppError> {
    match serve(state, http, Call::Devices(key)).await? {
        Answer::Devices(d) => Ok(d),
        other => Err(mismatch(&other)),
    }
}

/// [`serve`] for [`Call::Heartbeat`].
pub async fn heartbeat(
    state: &State,
    http: &HttpRequest,
    req: Heartbeat,
) -> Result<check::Heartbeat, AppError> {
    match serve(state, http, Call::Heartbeat(req)).await? {
        Answer::Heartbeat(h) => Ok(h),
        other => Err(mismatch(&other)),
    }
}

fn mismatch(_: &Answer) -> AppError {
    AppError::internal("the front door answered another kind of call")
}
