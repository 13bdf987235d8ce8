//! Abuse limits on the public endpoints: fixed-window counters per client IP (all
//! requests; failed lookups) and per license key (activation attempts).
//!
//! The counters live in this process: with N instances behind a load balancer a client
//! gets up to N times the configured budget. That bounds key guessing well enough
//! (keys carry 125 random bits); a shared store would cost a round trip per request.

use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::State;
use crate::config::Settings;
use crate::error::AppError;

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

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Fixed-window counters: at most `limit` events per key per `window`.
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    trusted_proxies: Vec<IpNet>,
    counters: Mutex<HashMap<(Bucket, String), Window>>,
}

/// Sweep expired windows once the map holds this many entries.
const SWEEP_AT: usize = 50_000;

impl Limiter {
    pub fn new(window: Duration, trusted_proxies: Vec<IpNet>) -> Self {
        Limiter {
            window: window.max(Duration::from_secs(1)),
            trusted_proxies,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event (when `count` is true) and says whether the key is over `limit`:
    /// `Err(seconds until the window ends)` when it is. A refused event is not counted.
    pub fn hit(&self, bucket: Bucket, key: &str, limit: u32, count: bool) -> Result<(), u64> {
        self.hit_at(bucket, key, limit, count, Instant::now())
    }

    fn hit_at(
        &self,
        bucket: Bucket,
        key: &str,
        limit: u32,
        count: bool,
        now: Instant,
    ) -> Result<(), u64> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if counters.len() >= SWEEP_AT {
            let window = self.window;
            counters.retain(|_, w| now.duration_since(w.start) < window);
        }
        if !count && !counters.contains_key(&(bucket, key.to_owned())) {
            return Ok(());
        }
        let w = counters.entry((bucket, key.to_owned())).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(w.start) >= self.window {
            *w = Window {
                start: now,
                count: 0,
            };
        }
        if w.count >= limit {
            let left = self.window.saturating_sub(now.duration_since(w.start));
            return Err(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        }
        if count {
            w.count += 1;
        }
        Ok(())
    }

    /// The client IP of a request, honouring `trusted_proxies` (see [`client_ip`]).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_ip(req, &self.trusted_proxies)
    }

    /// The activation attempt budget of one key (normalised by the caller).
    pub fn activation_attempt(&self, settings: &Settings, key: &str) -> Result<(), AppError> {
        self.hit(
            Bucket::Activations,
            key,
            settings.rate_limit_activations_per_key,
            true,
        )
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })
    }
}

/// Marks a response as a failed lookup (`NOT_FOUND`), so [`PublicLimits`] counts it.
/// Every public handler that can answer NOT_FOUND for an unknown key calls this.
#[derive(Debug, Clone, Copy)]
pub struct FailedLookup;

pub fn mark_failed_lookup(res: &mut HttpResponse) {
    res.extensions_mut().insert(FailedLookup);
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
/// used its request budget or its failed-lookup budget in the current window, and
/// counts responses marked with [`FailedLookup`].
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
            if res.response().extensions().get::<FailedLookup>().is_some() {
                // Counted after the fact; the next request sees the limit.
                let _ = limits.hit(
                    Bucket::FailedLookups,
                    &ip,
                    s.rate_limit_failed_lookups_per_ip,
                    true,
                );
            }
            Ok(res.map_into_boxed_body())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_window_allows_the_limit_then_refuses_until_it_ends() {
        let limiter = Limiter::new(Duration::from_secs(10), vec![]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.hit_at(Bucket::Requests, "a", 3, true, t0), Ok(()));
        }
        assert_eq!(limiter.hit_at(Bucket::Requests, "a", 3, true, t0), Err(10));
        let t4 = t0 + Duration::from_millis(4500);
        assert_eq!(limiter.hit_at(Bucket::Requests, "a", 3, true, t4), Err(6));
        // Other keys and buckets are counted apart.
        assert_eq!(limiter.hit_at(Bucket::Requests, "b", 3, true, t4), Ok(()));
        assert_eq!(
            limiter.hit_at(Bucket::FailedLookups, "a", 3, true, t4),
            Ok(())
        );
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(limiter.hit_at(Bucket::Requests, "a", 3, true, t10), Ok(()));
    }

    #[test]
    fn checking_without_counting_does_not_use_the_budget() {
        let limiter = Limiter::new(Duration::from_secs(10), vec![]);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.hit_at(Bucket::Requests, "a", 1, false, t0), Ok(()));
        }
        assert_eq!(limiter.hit_at(Bucket::Requests, "a", 1, true, t0), Ok(()));
        assert!(limiter.hit_at(Bucket::Requests, "a", 1, false, t0).is_err());
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
