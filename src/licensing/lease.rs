//! Heartbeat leases, computed, never swept: a device is alive while its `last_seen_at`
//! is within the lease of its license (the license's override, else the product's).
//! Everything here is a pure function of the rows and the time, so validate, activate,
//! the admin views and an in-process cache of those rows reach the same answer.

use chrono::{DateTime, Duration, Utc};

use crate::db::models::{License, Product};

/// The lease of a license's devices, if it has one: the license's own
/// `heartbeat_seconds` (0 = no lease) overrides the product's.
pub fn lease(l: &License, p: &Product) -> Option<Duration> {
    let seconds = match l.heartbeat_seconds {
        Some(0) => None,
        Some(s) => Some(s),
        None => p.heartbeat_seconds,
    };
    seconds
        .filter(|s| *s > 0)
        .map(|s| Duration::seconds(s.into()))
}

/// When a device last seen at `last_seen_at` stops being alive; `None`: never.
pub fn lease_ends(l: &License, p: &Product, last_seen_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    lease(l, p).map(|d| last_seen_at + d)
}

/// Whether a device last seen at `last_seen_at` still holds its seat at `now`.
pub fn is_alive(l: &License, p: &Product, last_seen_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    lease_ends(l, p, last_seen_at).is_none_or(|end| now < end)
}

/// A device's lease as the dashboard shows it: `alive` while its lease (ending at
/// `ends`, see [`lease_ends`]) runs, then `dead`; `None` for a license without a lease.
pub fn state(ends: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<&'static str> {
    ends.map(|end| if now < end { "alive" } else { "dead" })
}

/// Devices before `dead_before` have lost their seat; `None` when the license has no lease.
pub fn dead_before(l: &License, p: &Product, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    lease(l, p).map(|d| now - d)
}

/// How often a device's `last_seen_at` is written: at most every `configured`, and
/// never less often than a quarter of the lease, so a device that checks in keeps
/// its seat with room to spare.
pub fn refresh_interval(l: &License, p: &Product, configured: Duration) -> Duration {
    match lease(l, p) {
        Some(d) => configured.min(d / 4),
        None => configured,
    }
}

/// Devices holding a seat at `now`, from their `last_seen_at` times.
pub fn live_count(
    l: &License,
    p: &Product,
    last_seen: impl IntoIterator<Item = DateTime<Utc>>,
    now: DateTime<Utc>,
) -> usize {
    last_seen
        .into_iter()
        .filter(|t| is_alive(l, p, *t, now))
        .count()
}

/// The entitlements of a license: its own list if set, else its product's.
pub fn entitlements(l: &License, p: &Product) -> Vec<String> {
    l.entitlements
        .as_ref()
        .unwrap_or(&p.entitlements)
        .iter()
        .flatten()
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licensing::check::tests::rows;

    #[test]
    fn license_override_beats_product_and_zero_means_no_lease() {
        let now = Utc::now();
        let (mut l, mut p) = rows("active", None);
        assert_eq!(lease(&l, &p), None);
        assert!(is_alive(&l, &p, now - Duration::days(3650), now));
        p.heartbeat_seconds = Some(60);
        assert_eq!(lease(&l, &p), Some(Duration::seconds(60)));
        assert!(is_alive(&l, &p, now - Duration::seconds(59), now));
        assert!(!is_alive(&l, &p, now - Duration::seconds(60), now));
        l.heartbeat_seconds = Some(0);
        assert_eq!(lease(&l, &p), None);
        l.heartbeat_seconds = Some(600);
        assert!(is_alive(&l, &p, now - Duration::seconds(599), now));
    }

    #[test]
    fn the_refresh_throttle_stays_well_inside_the_lease() {
        let (l, mut p) = rows("active", None);
        let configured = Duration::seconds(300);
        assert_eq!(refresh_interval(&l, &p, configured), configured);
        p.heartbeat_seconds = Some(60);
        assert_eq!(refresh_interval(&l, &p, configured), Duration::seconds(15));
        p.heartbeat_seconds = Some(86_400);
        assert_eq!(refresh_interval(&l, &p, configured), configured);
    }

    #[test]
    fn live_count_leaves_out_dead_devices() {
        let now = Utc::now();
        let (l, mut p) = rows("active", None);
        p.heartbeat_seconds = Some(60);
        let seen = [
            now,
            now - Duration::seconds(30),
            now - Duration::seconds(61),
        ];
        assert_eq!(live_count(&l, &p, seen, now), 2);
    }
}
