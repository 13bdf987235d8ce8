//! A hint for sellers behind a load balancer: when a request arrives from a private or
//! loopback address carrying `X-Forwarded-For` while `LICENSD_TRUSTED_PROXIES` is
//! empty, every client is seen as the proxy's one address (and shares its rate
//! limits). That is logged as a warning, once per process.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};

/// Whether the hint applies (no trusted proxies configured) and was given already.
#[derive(Debug)]
pub struct ProxyHint {
    enabled: bool,
    given: AtomicBool,
}

impl ProxyHint {
    pub fn new(trusted_proxies_configured: bool) -> Self {
        ProxyHint {
            enabled: !trusted_proxies_configured,
            given: AtomicBool::new(false),
        }
    }
}

pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(hint) = req.app_data::<web::Data<ProxyHint>>() {
        if hint.enabled && !hint.given.load(Ordering::Relaxed) {
            let peer = req.peer_addr().map(|a| a.ip());
            let forwarded = req.headers().contains_key("x-forwarded-for");
            if let Some(peer) = peer.filter(|ip| forwarded && is_private(*ip)) {
                if !hint.given.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %peer,
                        "a request from the private address {peer} carries X-Forwarded-For, but LICENSD_TRUSTED_PROXIES is not set: \
                         licensd takes {peer} as the client's address, so every client behind this proxy shares one address and its \
                         rate limits (ten bad keys lock everyone out). Set LICENSD_TRUSTED_PROXIES to the proxy's address or network, \
                         e.g. LICENSD_TRUSTED_PROXIES={peer}; see docs/deploying.md. (Logged once.)"
                    );
                }
            }
        }
    }
    next.call(req).await
}

/// Loopback, RFC 1918, carrier-grade NAT, link-local and unique-local addresses: where
/// a load balancer or reverse proxy in front of licensd usually sits.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
