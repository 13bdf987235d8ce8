//! Abuse limits on the public endpoints: fixed-window counters per client IP (all
//! requests; failed lookups) and per license key (activation attempts).
//!
//! The counters live in this process: with N instances behind a load balancer a client
//! gets up to N times the configured budget. That bounds key guessing well enough
//! (keys carry 125 random bits); a shared store would cost a round trip per request.
//!
//! Memory is bounded whatever clients send: a counter is keyed by a 16-byte hash of
//! its (normalised) subject, never the subject itself, and every counter whose window
//! has ended is swept once per window.

use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{web, HttpRequest, ResponseError};
use sha2::{Digest, Sha256};

use super::State;
use crate::config::Settings;
use crate::error::AppError;
use crate::licensing::LicenseKey;

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Every public request, per client IP.
    Requests,
    /// Lookups that found no license (`NOT_FOUND`), per client IP.
    FailedLookups,
    /// Activation attempts, per license key.
    Activations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: Instant,
    /// Events counted in this window, reservations in flight included.
    count: u32,
    /// Reservations not yet kept or given back (see [`Limiter::reserve_failed_lookup`]).
    in_flight: u32,
}

impl Window {
    fn new(start: Instant) -> Self {
        Window {
            start,
            count: 0,
            in_flight: 0,
        }
    }
}

/// Why a reservation was not made.
enum Refusal {
    /// The budget is spent: retry after this many seconds.
    Spent(u64),
    /// The budget is held by requests still being answered: wait for one to finish.
    Busy,
}

/// The fixed-size name of a counter: a hash of what is counted.
type Subject = [u8; 16];

fn subject(s: &str) -> Subject {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The counter key of a license key: its canonical form when it parses, else the
/// trimmed upper-case text, so every spelling of one key shares one budget.
fn key_subject(key: &str) -> Subject {
    match LicenseKey::parse(key) {
        Some(k) => subject(k.as_str()),
        None => subject(&key.trim().to_ascii_uppercase()),
    }
}

#[derive(Debug)]
struct Counters {
    windows: HashMap<(Bucket, Subject), Window>,
    last_sweep: Instant,
}

/// Fixed-window counters: at most `limit` events per key per `window`.
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    trusted_proxies: Vec<IpNet>,
    counters: Mutex<Counters>,
    /// Woken whenever a reservation is kept or given back.
    settled: tokio::sync::Notify,
}

/// How long a request waits for a client's other requests to free a reservation
/// before it is refused.
const MAX_RESERVATION_WAIT: Duration = Duration::from_secs(10);

/// The longest license key the limits (and the lookups behind them) look at; a longer
/// one is no key of ours and is answered as unknown at once.
pub const MAX_KEY_CHARS: usize = 128;

impl Limiter {
    pub fn new(window: Duration, trusted_proxies: Vec<IpNet>) -> Self {
        Limiter {
            window: window.max(Duration::from_secs(1)),
            trusted_proxies,
            counters: Mutex::new(Counters {
                windows: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            settled: tokio::sync::Notify::new(),
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one event (when `count` is true) and says whether the key is over `limit`:
    /// `Err(seconds until the window ends)` when it is. A refused event is not counted.
    pub fn hit(&self, bucket: Bucket, key: &str, limit: u32, count: bool) -> Result<(), u64> {
        self.hit_at(bucket, subject(key), limit, count, Instant::now())
            .map(|_| ())
    }

    /// As [`Limiter::hit`]; `Ok` carries the start of the window that was counted in.
    fn hit_at(
        &self,
        bucket: Bucket,
        key: Subject,
        limit: u32,
        count: bool,
        now: Instant,
    ) -> Result<Instant, u64> {
        let mut counters = self.counters();
        let window = self.window;
        if now.duration_since(counters.last_sweep) >= window {
            counters
                .windows
                .retain(|_, w| w.in_flight > 0 || now.duration_since(w.start) < window);
            counters.last_sweep = now;
        }
        if !count && !counters.windows.contains_key(&(bucket, key)) {
            return Ok(now);
        }
        let w = counters
            .windows
            .entry((bucket, key))
            .or_insert(Window::new(now));
        if now.duration_since(w.start) >= window {
            *w = Window::new(now);
        }
        // Reservations still in flight are the front door's to settle (it waits on them).
        if w.count.saturating_sub(w.in_flight) >= limit {
            let left = window.saturating_sub(now.duration_since(w.start));
            return Err(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        }
        if count {
            w.count += 1;
        }
        Ok(w.start)
    }

    /// Reserves one event of `key`'s budget: counted at once, and still in flight until
    /// [`Limiter::settle`].
    fn try_reserve_at(&self, key: Subject, limit: u32, now: Instant) -> Result<Instant, Refusal> {
        let mut counters = self.counters();
        let window = self.window;
        let w = counters
            .windows
            .entry((Bucket::FailedLookups, key))
            .or_insert(Window::new(now));
        if now.duration_since(w.start) >= window {
            *w = Window::new(now);
        }
        if w.count >= limit {
            if w.in_flight > 0 {
                return Err(Refusal::Busy);
            }
            let left = window.saturating_sub(now.duration_since(w.start));
            return Err(Refusal::Spent(
                left.as_secs() + u64::from(left.subsec_nanos() > 0),
            ));
        }
        w.count += 1;
        w.in_flight += 1;
        Ok(w.start)
    }

    /// Ends a reservation made in the window that started at `start`: it stays counted
    /// when `kept`, else it is given back.
    fn settle(&self, key: Subject, start: Instant, kept: bool) {
        {
            let mut counters = self.counters();
            if let Some(w) = counters.windows.get_mut(&(Bucket::FailedLookups, key)) {
                if w.start == start && w.in_flight > 0 {
                    w.in_flight -= 1;
                    if !kept {
                        w.count = w.count.saturating_sub(1);
                    }
                }
            }
        }
        self.settled.notify_waiters();
    }

    /// How many counters are held (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.counters().windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client IP of a request, honouring `trusted_proxies` (see [`client_ip`]).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_ip(req, &self.trusted_proxies)
    }

    /// The activation attempt budget of one license key (any spelling of it).
    pub fn activation_attempt(&self, settings: &Settings, key: &str) -> Result<(), AppError> {
        self.hit_at(
            Bucket::Activations,
            key_subject(key),
            settings.rate_limit_activations_per_key,
            true,
            Instant::now(),
        )
        .map(|_| ())
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })
    }

    /// Takes one failed lookup of the client's budget *before* the lookup is answered,
    /// so simultaneous guesses cannot outrun the count. The reservation is given back
    /// when it is dropped, unless [`Reservation::keep`] says the key was unknown. While
    /// the client's other requests hold the rest of the budget, this waits for them
    /// (up to 10 s) rather than refuse: a burst of good requests is slowed, not refused.
    pub async fn reserve_failed_lookup(
        self: &Arc<Self>,
        settings: &Settings,
        ip: Option<IpAddr>,
    ) -> Result<Reservation, AppError> {
        let key = subject(&ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()));
        let limit = settings.rate_limit_failed_lookups_per_ip;
        let deadline = tokio::time::Instant::now() + MAX_RESERVATION_WAIT;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.try_reserve_at(key, limit, Instant::now()) {
                Ok(start) => {
                    return Ok(Reservation {
                        limiter: self.clone(),
                        key,
                        start,
                        kept: false,
                    })
                }
                Err(Refusal::Spent(retry_after_secs)) => {
                    return Err(AppError::RateLimited { retry_after_secs })
                }
                Err(Refusal::Busy) => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return Err(AppError::RateLimited {
                            retry_after_secs: 1,
                        });
                    }
                }
            }
        }
    }
}

/// One failed lookup held against a client's budget while its request is answered.
#[derive(Debug)]
pub struct Reservation {
    limiter: Arc<Limiter>,
    key: Subject,
    start: Instant,
    kept: bool,
}

impl Reservation {
    /// The lookup failed: the reservation stays counted.
    pub fn keep(mut self) {
        self.kept = true;
        drop(self);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.limiter.settle(self.key, self.start, self.kept);
    }
}

/// The client's IP: the socket peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.iter().any(|n| n.contains(peer)) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.iter().any(|n| n.contains(*ip)))
            .unwrap_or(peer),
    )
}

/// An IP address or CIDR block (`10.0.0.0/8`, `::1`), for `trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        let (net, ip, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        if shift >= 128 {
            return true;
        }
        (net >> shift) == (ip >> shift)
    }
}

/// Middleware for the public license endpoints: refuses with 429 once a client IP has
/// used its request budget or its failed-lookup budget in the current window. Failed
/// lookups themselves are reserved by the front door (`http::front`) before answering.
///
/// Wrap any public route group with it: `web::scope("/api").wrap(PublicLimits)`.
#[derive(Debug, Clone, Copy)]
pub struct PublicLimits;

impl<S, B> Transform<S, ServiceRequest> for PublicLimits
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = PublicLimitsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(PublicLimitsService {
            service: Rc::new(service),
        }))
    }
}

pub struct PublicLimitsService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for PublicLimitsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
                return service.call(req).await.map(|r| r.map_into_boxed_body());
            };
            let s = &state.settings;
            let limits = &state.limits;
            let ip = limits
                .client_ip(req.request())
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            let refused = limits
                .hit(
                    Bucket::FailedLookups,
                    &ip,
                    s.rate_limit_failed_lookups_per_ip,
                    false,
                )
                .and_then(|()| {
                    limits.hit(Bucket::Requests, &ip, s.rate_limit_requests_per_ip, true)
                });
            if let Err(retry_after_secs) = refused {
                tracing::warn!(client_ip = %ip, "rate limited");
                let res = AppError::RateLimited { retry_after_secs }.error_response();
                return Ok(req.into_response(res));
            }
            let res = service.call(req).await?;
            Ok(res.map_into_boxed_body())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hit(
        l: &Limiter,
        b: Bucket,
        key: &str,
        limit: u32,
        count: bool,
        now: Instant,
    ) -> Result<(), u64> {
        l.hit_at(b, subject(key), limit, count, now).map(|_| ())
    }

    #[test]
    fn a_window_allows_the_limit_then_refuses_until_it_ends() {
        let limiter = Limiter::new(Duration::from_secs(10), vec![]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(hit(&limiter, Bucket::Requests, "a", 3, true, t0), Ok(()));
        }
        assert_eq!(hit(&limiter, Bucket::Requests, "a", 3, true, t0), Err(10));
        let t4 = t0 + Duration::from_millis(4500);
        assert_eq!(hit(&limiter, Bucket::Requests, "a", 3, true, t4), Err(6));
        // Other keys and buckets are counted apart.
        assert_eq!(hit(&limiter, Bucket::Requests, "b", 3, true, t4), Ok(()));
        assert_eq!(
            hit(&limiter, Bucket::FailedLookups, "a", 3, true, t4),
            Ok(())
        );
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(hit(&limiter, Bucket::Requests, "a", 3, true, t10), Ok(()));
    }

    #[test]
    fn checking_without_counting_does_not_use_the_budget() {
        let limiter = Limiter::new(Duration::from_secs(10), vec![]);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(hit(&limiter, Bucket::Requests, "a", 1, false, t0), Ok(()));
        }
        assert_eq!(hit(&limiter, Bucket::Requests, "a", 1, true, t0), Ok(()));
        assert!(hit(&limiter, Bucket::Requests, "a", 1, false, t0).is_err());
    }

    #[test]
    fn memory_is_bounded_by_entry_size_and_swept_once_a_window() {
        let limiter = Limiter::new(Duration::from_secs(10), vec![]);
        let t0 = Instant::now();
        // 2,000 attacker-sized keys (60 KB each) hold 2,000 fixed-size counters: the
        // keys themselves are never kept.
        for i in 0..2_000 {
            let huge = format!("{i}{}", "x".repeat(60_000));
            let _ = limiter.hit_at(Bucket::Activations, key_subject(&huge), 5, true, t0);
        }
        assert_eq!(limiter.len(), 2_000);
        let entry = std::mem::size_of::<((Bucket, Subject), Window)>();
        assert!(entry <= 48, "{entry} bytes per counter");
        // Within the window nothing is swept; once it has passed, the next hit sweeps.
        let _ = hit(
            &limiter,
            Bucket::Requests,
            "ip",
            5,
            true,
            t0 + Duration::from_secs(9),
        );
        assert_eq!(limiter.len(), 2_001);
        let _ = hit(
            &limiter,
            Bucket::Requests,
            "ip2",
            5,
            true,
            t0 + Duration::from_secs(20),
        );
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn every_spelling_of_a_key_shares_one_counter() {
        let key = LicenseKey::generate(None).into_string();
        let spelled = format!("  {}  ", key.to_ascii_lowercase());
        assert_eq!(key_subject(&key), key_subject(&spelled));
        assert_ne!(key_subject(&key), key_subject("other"));
    }

    #[tokio::test]
    async fn a_reservation_is_given_back_unless_kept() {
        let limiter = Arc::new(Limiter::new(Duration::from_secs(60), vec![]));
        let mut settings = Settings::defaults().unwrap();
        settings.rate_limit_failed_lookups_per_ip = 2;
        let ip = Some("192.0.2.1".parse().unwrap());
        // Found keys give their reservation back: any number of them.
        for _ in 0..10 {
            drop(limiter.reserve_failed_lookup(&settings, ip).await.unwrap());
        }
        // Two held at once use the budget; a third waits for one of them.
        let a = limiter.reserve_failed_lookup(&settings, ip).await.unwrap();
        let b = limiter.reserve_failed_lookup(&settings, ip).await.unwrap();
        let third = tokio::spawn({
            let limiter = limiter.clone();
            let settings = settings.clone();
            async move {
                limiter
                    .reserve_failed_lookup(&settings, ip)
                    .await
                    .map(Reservation::keep)
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "the third reservation did not wait");
        a.keep();
        drop(b);
        third.await.unwrap().unwrap();
        // Two kept: the budget is spent, and the next is refused at once.
        let refused = limiter.reserve_failed_lookup(&settings, ip).await;
        assert!(
            matches!(refused, Err(AppError::RateLimited { retry_after_secs }) if retry_after_secs > 1)
        );
    }

    #[test]
    fn cidr_blocks() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(IpNet::parse("::1")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "x", "::/129", "1.2.3.4/"] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn ip_net_parsing_never_panics(s in "\\PC{0,50}") {
            if let Some(net) = IpNet::parse(&s) {
                let _ = net.contains("127.0.0.1".parse().unwrap());
            }
        }

        #[test]
        fn an_ip_is_in_its_own_block_at_every_prefix(a in any::<u32>(), p in 0u8..=32) {
            let ip = std::net::Ipv4Addr::from(a);
            let net = IpNet::parse(&format!("{ip}/{p}")).unwrap();
            prop_assert!(net.contains(IpAddr::V4(ip)));
        }
    }
}
