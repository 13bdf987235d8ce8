//! The validate cache: the rows validate decides from (license, product, and the
//! activation of each device asked about), kept in process so a repeated validate does
//! not ask Postgres.
//!
//! - **Bounded**: entries are counted in estimated bytes against a budget (MiB in the
//!   settings); past it the least recently used licenses go first (CLOCK).
//! - **Exact across instances**: triggers notify channel [`CHANNEL`] from the same
//!   transaction as every change to a license, an activation or a product (migration
//!   `2026-11-25-000600_cache_invalidation`), and [`spawn_listener`] drops the entry. A
//!   fill that raced with a change is not stored (generation tickets). While the `LISTEN`
//!   connection is down nothing is served as fresh: validate reads through.
//! - **Time is never cached**: expiry and `last_seen_at` are compared with the clock when
//!   the answer is made (`check::decide`), from the stored timestamps.
//! - **Through an outage**: when the database is unreachable, an entry is served for at
//!   most `max_stale` after the cache stopped being exact, marked with that instant.
//! - **Writes stay in Postgres**: `last_seen_at` refreshes due from cached answers are
//!   collected ([`LicenseCache::touch_later`]) and written in one statement per interval
//!   by [`flush_touches`], and once more on shutdown; a failed flush keeps them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::models::{Activation, License, Product};
use crate::db::{self, activations, Pool};
use crate::error::AppError;

/// The channel the invalidation triggers notify.
pub const CHANNEL: &str = "licensd_cache";

/// Bytes counted for an entry besides its rows: map slots, the key held three times
/// (map, id index, eviction queue), the `Arc` and allocator rounding (16 bytes of header
/// on each of an entry's ~20 allocations). Calibrated on a full cache (BENCHMARKS.md): at
/// 256, a 64 MiB budget held ~70 MiB of heap; at 400 the heap stays within the budget.
const ENTRY_OVERHEAD: usize = 400;
/// Devices remembered per license; further ones are read through (a client inventing
/// fingerprints cannot grow one entry without bound).
const MAX_DEVICES: usize = 32;
/// How long after a failed read the database is taken to be down (cached keys are then
/// answered without waiting for the pool's timeout); the next read after it probes again.
const DB_DOWN_HOLD: Duration = Duration::seconds(1);

/// The device a validate names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Device {
    Fingerprint(String),
    Id(Uuid),
}

/// The rows of one license, as validate needs them.
#[derive(Debug)]
pub struct Entry {
    pub license: License,
    pub product: Product,
    /// The devices asked about so far, with their activation (`None`: not activated).
    devices: Vec<(Device, Option<Activation>)>,
    bytes: usize,
    /// The listener connection it was filled under: exact only while that one lasts.
    epoch: u64,
    filled_at: DateTime<Utc>,
}

impl Entry {
    /// The activation of `device`: `Some(None)` when it is known not to be activated,
    /// `None` when this entry has not been asked about it.
    pub fn device(&self, device: Option<&Device>) -> Option<Option<&Activation>> {
        let Some(device) = device else {
            return Some(None);
        };
        self.devices
            .iter()
            .find(|(d, _)| d == device)
            .map(|(_, a)| a.as_ref())
    }
}

/// What [`LicenseCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    /// Exact: the cache is listening, so no change since the fill has been missed.
    Fresh(Arc<Entry>),
    /// Held, but possibly out of date since the instant given (the listener is down).
    Stale(Arc<Entry>, DateTime<Utc>),
    Miss,
}

/// Taken before a database read; a fill under a ticket older than the last
/// invalidation is dropped, since the read may predate the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

struct Slot {
    entry: Arc<Entry>,
    seq: u64,
    referenced: bool,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Arc<str>, Slot>,
    key_of: HashMap<Uuid, Arc<str>>,
    /// The CLOCK hand's queue: (key, seq); stale pairs (seq no longer in the map) are skipped.
    clock: VecDeque<(Arc<str>, u64)>,
    used: usize,
    next_seq: u64,
}

impl Entries {
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.by_key.remove(key) {
            self.used -= slot.entry.bytes;
            self.key_of.remove(&slot.entry.license.id);
        }
    }

    fn clear(&mut self) {
        // `next_seq` survives so queue pairs from before can never match a new entry.
        *self = Entries {
            next_seq: self.next_seq,
            ..Entries::default()
        };
    }

    /// Evicts until `incoming` more bytes fit in `budget`: a recently used entry gets a
    /// second chance, the others go in queue order.
    fn make_room(&mut self, incoming: usize, budget: usize) {
        while self.used + incoming > budget {
            let Some((key, seq)) = self.clock.pop_front() else {
                return;
            };
            let Some(slot) = self.by_key.get_mut(&key) else {
                continue;
            };
            if slot.seq != seq {
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                self.clock.push_back((key, seq));
            } else {
                self.remove(&key);
            }
        }
    }

    /// Drops queue pairs of removed or replaced entries once they outnumber live ones.
    fn compact_clock(&mut self) {
        if self.clock.len() > 2 * self.by_key.len() + 64 {
            let by_key = &self.by_key;
            self.clock
                .retain(|(k, seq)| by_key.get(k).is_some_and(|s| s.seq == *seq));
        }
    }
}

/// The cache of one process. See the module docs.
pub struct LicenseCache {
    budget: usize,
    max_stale: Duration,
    entries: Mutex<Entries>,
    generation: AtomicU64,
    /// Counts listener connections; entries of an earlier one serve only outages.
    epoch: AtomicU64,
    listening: AtomicBool,
    /// When the cache stopped being exact (µs since the epoch); meaningful while not listening.
    lost_at: AtomicI64,
    /// When a read last failed for an unreachable database (µs since the epoch); 0: none.
    db_down_at: AtomicI64,
    /// Pending refreshes: activation -> (seen at, its refresh interval).
    touches: Mutex<HashMap<Uuid, Touch>>,
}

/// A `last_seen_at` refresh waiting for the batch: the device was seen (alive) at `at`;
/// the row is written only if older than `at - interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Touch {
    pub at: DateTime<Utc>,
    pub interval: Duration,
}

impl std::fmt::Debug for LicenseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseCache")
            .field("budget", &self.budget)
            .field("used", &self.used_bytes())
            .field("listening", &self.is_listening())
            .finish()
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl LicenseCache {
    /// A cache of `budget_bytes` (0: off, every validate reads through).
    pub fn new(budget_bytes: usize, max_stale: Duration) -> Self {
        LicenseCache {
            budget: budget_bytes,
            max_stale,
            entries: Mutex::new(Entries::default()),
            generation: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            lost_at: AtomicI64::new(0),
            db_down_at: AtomicI64::new(0),
            touches: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The configured budget in bytes (0: off).
    pub fn budget_bytes(&self) -> usize {
        self.budget
    }

    /// Estimated bytes the entries hold now (see `estimate_bytes`).
    pub fn used_bytes(&self) -> usize {
        self.lock().used
    }

    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves nothing half-written worth refusing.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of `key` if it knows `device`.
    pub fn lookup(&self, key: &str, device: Option<&Device>, now: DateTime<Utc>) -> Lookup {
        if !self.enabled() {
            return Lookup::Miss;
        }
        let entry = {
            let mut entries = self.lock();
            let Some(slot) = entries.by_key.get_mut(key) else {
                return Lookup::Miss;
            };
            slot.referenced = true;
            slot.entry.clone()
        };
        if entry.device(device).is_none() {
            return Lookup::Miss;
        }
        let current = entry.epoch == self.epoch.load(Ordering::Acquire);
        if current && self.is_listening() {
            return Lookup::Fresh(entry);
        }
        // Exact until the listener was lost; an entry of an earlier connection, until
        // it was filled at least.
        let since = if current {
            from_micros(self.lost_at.load(Ordering::Acquire))
        } else {
            entry.filled_at
        };
        if now - since <= self.max_stale {
            Lookup::Stale(entry, since)
        } else {
            Lookup::Miss
        }
    }

    /// The entry of `key` for an answer while the database is unreachable, with the
    /// instant from which it may be out of date (now, if the cache is still exact).
    pub fn lookup_for_outage(
        &self,
        key: &str,
        device: Option<&Device>,
        now: DateTime<Utc>,
    ) -> Option<(Arc<Entry>, DateTime<Utc>)> {
        match self.lookup(key, device, now) {
            Lookup::Fresh(entry) => Some((entry, now)),
            Lookup::Stale(entry, since) => Some((entry, since)),
            Lookup::Miss => None,
        }
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Stores what a read under `ticket` found for `key` and `device`, unless the cache
    /// changed since (or is not listening, or the entry alone exceeds the budget).
    pub fn insert(
        &self,
        ticket: Ticket,
        key: &str,
        license: &License,
        product: &Product,
        device: Option<Device>,
        activation: Option<&Activation>,
    ) {
        if !self.enabled() || !self.is_listening() {
            return;
        }
        let mut entries = self.lock();
        // Checked under the lock: invalidations bump the generation under it too.
        if self.ticket() != ticket {
            return;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut devices = match entries.by_key.get(key) {
            Some(slot) if slot.entry.license.id == license.id && slot.entry.epoch == epoch => {
                slot.entry.devices.clone()
            }
            _ => Vec::new(),
        };
        if let Some(device) = device {
            if devices.len() >= MAX_DEVICES && !devices.iter().any(|(d, _)| *d == device) {
                return;
            }
            devices.retain(|(d, _)| *d != device);
            devices.push((device, activation.cloned()));
        }
        let mut entry = Entry {
            license: license.clone(),
            product: product.clone(),
            devices,
            bytes: 0,
            epoch,
            filled_at: Utc::now(),
        };
        entry.bytes = estimate_bytes(&entry);
        if entry.bytes > self.budget {
            return;
        }
        entries.remove(key);
        entries.make_room(entry.bytes, self.budget);
        let key: Arc<str> = Arc::from(key);
        let seq = entries.next_seq;
        entries.next_seq += 1;
        entries.used += entry.bytes;
        entries.key_of.insert(license.id, key.clone());
        entries.clock.push_back((key.clone(), seq));
        entries.by_key.insert(
            key,
            Slot {
                entry: Arc::new(entry),
                seq,
                referenced: false,
            },
        );
        entries.compact_clock();
    }

    fn invalidate(&self, f: impl FnOnce(&mut Entries)) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        f(&mut entries);
    }

    /// Drops the license with this id (a change was committed to it or its activations).
    pub fn forget_license(&self, id: Uuid) {
        self.invalidate(|e| {
            if let Some(key) = e.key_of.get(&id).cloned() {
                e.remove(&key);
            }
        });
    }

    /// Drops the license with this (normalised) key: this process just changed it.
    pub fn forget_key(&self, key: &str) {
        self.invalidate(|e| e.remove(key));
    }

    /// Drops the license named by a key or a license id, as callers write it.
    pub fn forget_ref(&self, key_or_id: &str) {
        match super::key::LicenseRef::parse(key_or_id) {
            Some(super::key::LicenseRef::Id(id)) => self.forget_license(id),
            Some(super::key::LicenseRef::Key(key)) => self.forget_key(key.as_str()),
            None => {}
        }
    }

    /// Drops everything (a product changed, or notifications may have been missed).
    pub fn clear(&self) {
        self.invalidate(Entries::clear);
    }

    /// Applies one notification payload of [`CHANNEL`]: `l:<license id>` or
    /// `p:<product id>`; anything else clears the cache, to be safe.
    pub fn apply_notification(&self, payload: &str) {
        match payload.split_once(':') {
            Some(("l", id)) => match Uuid::parse_str(id) {
                Ok(id) => self.forget_license(id),
                Err(_) => self.clear(),
            },
            // Products change rarely and are shared by many licenses: drop them all.
            _ => self.clear(),
        }
    }

    /// The listener is connected (again): whatever happened while it was not is unknown,
    /// so entries held so far are never served as exact again (only through an outage,
    /// until refilled), and fills from now on are.
    pub fn resume(&self) {
        self.invalidate(|_| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.listening.store(true, Ordering::Release);
        });
        self.db_down_at.store(0, Ordering::Release);
    }

    /// The listener lost its connection at `now`: nothing is exact from then on.
    pub fn suspend(&self, now: DateTime<Utc>) {
        self.invalidate(|_| {
            if self.listening.swap(false, Ordering::AcqRel) {
                self.lost_at.store(micros(now), Ordering::Release);
            }
        });
    }

    pub fn mark_db_down(&self, now: DateTime<Utc>) {
        self.db_down_at.store(micros(now), Ordering::Release);
    }

    pub fn mark_db_up(&self) {
        self.db_down_at.store(0, Ordering::Release);
    }

    /// Whether a read failed for an unreachable database within the last second. Past
    /// that, one caller is told no (and probes the database); the others meanwhile yes.
    pub fn db_seems_down(&self, now: DateTime<Utc>) -> bool {
        let at = self.db_down_at.load(Ordering::Acquire);
        if at == 0 {
            return false;
        }
        if now - from_micros(at) < DB_DOWN_HOLD {
            return true;
        }
        let claimed =
            self.db_down_at
                .compare_exchange(at, micros(now), Ordering::AcqRel, Ordering::Acquire);
        claimed.is_err()
    }

    /// Notes that `activation` was seen alive at `at` and is due a refresh (its
    /// refresh interval: `interval`), for the next [`flush_touches`].
    pub fn touch_later(&self, activation: Uuid, at: DateTime<Utc>, interval: Duration) {
        let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
        let t = touches.entry(activation).or_insert(Touch { at, interval });
        t.at = t.at.max(at);
        t.interval = t.interval.min(interval);
    }

    /// The pending refreshes, emptied.
    pub fn take_touches(&self) -> Vec<(Uuid, Touch)> {
        let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
        touches.drain().collect()
    }

    /// Puts back refreshes a failed flush could not write (the later instant wins).
    pub fn restore_touches(&self, batch: Vec<(Uuid, Touch)>) {
        for (id, t) in batch {
            self.touch_later(id, t.at, t.interval);
        }
    }

    pub fn pending_touches(&self) -> usize {
        self.touches.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::capacity)
}

/// What an entry costs in memory, estimated from its heap parts (strings, JSON, devices).
fn estimate_bytes(e: &Entry) -> usize {
    let l = &e.license;
    let license = l.key.capacity()
        + l.status.capacity()
        + l.email.capacity()
        + l.source.capacity()
        + opt_len(&l.customer_name)
        + opt_len(&l.stripe_checkout_session_id)
        + opt_len(&l.stripe_line_item_id)
        + opt_len(&l.stripe_payment_intent_id)
        + opt_len(&l.stripe_customer_id)
        + opt_len(&l.stripe_subscription_id)
        + l.entitlements.as_ref().map_or(0, |e| {
            e.iter().map(|s| 24 + opt_len(s)).sum::<usize>()
        })
        + opt_len(&l.subscription_status)
        // A parsed JSON value takes a few times its text.
        + 4 * l.metadata.to_string().len();
    let p = &e.product;
    let product = p.slug.capacity()
        + p.name.capacity()
        + opt_len(&p.key_prefix)
        + p.expiry_behavior.capacity()
        + p.entitlements
            .iter()
            .map(|s| 24 + opt_len(s))
            .sum::<usize>();
    let devices: usize = e
        .devices
        .iter()
        .map(|(d, a)| {
            std::mem::size_of::<(Device, Option<Activation>)>()
                + match d {
                    Device::Fingerprint(f) => f.capacity(),
                    Device::Id(_) => 0,
                }
                + a.as_ref().map_or(0, |a| {
                    a.fingerprint.capacity() + opt_len(&a.name) + opt_len(&a.ip)
                })
        })
        .sum();
    std::mem::size_of::<Entry>() + ENTRY_OVERHEAD + 3 * l.key.len() + license + product + devices
}

/// Writes the pending `last_seen_at` refreshes in one statement (a row changes only if
/// not refreshed within its interval meanwhile). On failure they are kept for the next.
pub async fn flush_touches(pool: &Pool, cache: &LicenseCache) -> Result<usize, AppError> {
    let batch = cache.take_touches();
    if batch.is_empty() {
        return Ok(0);
    }
    let n = batch.len();
    let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
    let seen: Vec<DateTime<Utc>> = batch.iter().map(|(_, t)| t.at).collect();
    let intervals: Vec<f64> = batch
        .iter()
        .map(|(_, t)| t.interval.num_milliseconds() as f64 / 1000.0)
        .collect();
    let written = db::run(pool, move |conn| {
        Ok(activations::touch_many(conn, &ids, &seen, &intervals)?)
    })
    .await;
    match written {
        Ok(_) => Ok(n),
        Err(e) => {
            cache.restore_touches(batch);
            Err(e)
        }
    }
}

/// The cache's background work: the listener thread and the batched refresh writer.
pub struct CacheWorker {
    stop: watch::Sender<bool>,
    listener: Option<std::thread::JoinHandle<()>>,
    flusher: tokio::task::JoinHandle<()>,
}

impl CacheWorker {
    /// Starts listening (if the cache is on) and flushing refreshes every `flush_every`.
    pub fn spawn(
        cache: Arc<LicenseCache>,
        pool: Pool,
        listen_url: SecretString,
        flush_every: StdDuration,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let listener = if cache.enabled() {
            Some(spawn_listener(cache.clone(), listen_url, stopped.clone())?)
        } else {
            None
        };
        let flusher = tokio::spawn(flush_loop(cache, pool, flush_every, stopped));
        Ok(CacheWorker {
            stop,
            listener,
            flusher,
        })
    }

    /// Stops listening and writes the refreshes still pending.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.flusher.await;
        if let Some(listener) = self.listener {
            let _ = tokio::task::spawn_blocking(move || listener.join()).await;
        }
    }
}

async fn flush_loop(
    cache: Arc<LicenseCache>,
    pool: Pool,
    every: StdDuration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stopped.changed() => true,
        };
        if let Err(error) = flush_touches(&pool, &cache).await {
            let pending = cache.pending_touches();
            tracing::warn!(%error, pending, "could not write last_seen_at refreshes; kept for the next try");
        }
        if stopping || *stopped.borrow() {
            return;
        }
    }
}

/// The listener's timing: a 5 ms tick is the floor of how soon a change on another
/// instance is seen; a ping every second notices a dead connection fast.
const LISTEN_TIMING: db::listen::Timing = db::listen::Timing {
    tick: StdDuration::from_millis(5),
    ping: StdDuration::from_secs(1),
    first_retry: StdDuration::from_millis(100),
    max_retry: StdDuration::from_secs(2),
};

/// Starts the thread that keeps `cache` exact: `LISTEN`s on [`CHANNEL`], applies each
/// notification, and suspends the cache while its connection is down (reconnecting).
pub fn spawn_listener(
    cache: Arc<LicenseCache>,
    url: SecretString,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("licensd-cache-listen".into())
        .spawn(move || db::listen::run(&url, CHANNEL, LISTEN_TIMING, &stopped, &*cache))
}

impl db::listen::Listener for LicenseCache {
    fn listening(&self) {
        self.resume();
    }

    fn notified(&self, payloads: &[String]) {
        for payload in payloads {
            self.apply_notification(payload);
        }
    }

    fn lost(&self, error: Option<&str>, retry: StdDuration) {
        self.suspend(Utc::now());
        if let Some(error) = error {
            tracing::warn!(%error, retry_in_ms = retry.as_millis() as u64, "validate cache is not listening for changes; reading through meanwhile");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(key: &str, metadata_bytes: usize) -> (License, Product) {
        let (mut license, product) = crate::licensing::check::tests::rows("active", None);
        license.key = key.into();
        license.metadata = serde_json::json!({ "pad": "x".repeat(metadata_bytes) });
        (license, product)
    }

    fn listening(budget: usize) -> LicenseCache {
        let c = LicenseCache::new(budget, Duration::minutes(10));
        c.resume();
        c
    }

    fn put(c: &LicenseCache, key: &str) -> Uuid {
        let (l, p) = rows(key, 0);
        c.insert(c.ticket(), key, &l, &p, None, None);
        l.id
    }

    fn fresh(c: &LicenseCache, key: &str) -> bool {
        matches!(c.lookup(key, None, Utc::now()), Lookup::Fresh(_))
    }

    #[test]
    fn memory_stays_within_the_budget_and_the_recently_used_stay() {
        let (l, p) = rows("K0", 0);
        let one = {
            let c = listening(1 << 20);
            c.insert(c.ticket(), "K0", &l, &p, None, None);
            c.used_bytes()
        };
        assert!(one > ENTRY_OVERHEAD, "an entry costs {one} bytes");
        let c = listening(10 * one);
        put(&c, "hot");
        for i in 0..1000 {
            put(&c, &format!("K{i}"));
            // Used between inserts, so it keeps its second chance.
            assert!(fresh(&c, "hot"), "evicted at {i}");
            assert!(c.used_bytes() <= 10 * one, "{} > budget", c.used_bytes());
        }
        assert!(c.len() <= 10 && c.len() >= 9, "{} entries", c.len());
        assert!(fresh(&c, "K999"));
        assert!(!fresh(&c, "K0"));
        // The eviction queue does not grow with churn.
        let queued = c.lock().clock.len();
        assert!(queued <= 2 * c.len() + 64, "{queued} queued");
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_stored_and_zero_disables() {
        let c = listening(2048);
        let (l, p) = rows("BIG", 4096);
        c.insert(c.ticket(), "BIG", &l, &p, None, None);
        assert!(c.is_empty());
        let off = listening(0);
        put(&off, "K");
        assert!(!off.enabled() && off.is_empty() && !fresh(&off, "K"));
    }

    #[test]
    fn a_fill_that_raced_with_a_change_is_dropped() {
        let c = listening(1 << 20);
        let (l, p) = rows("K", 0);
        let ticket = c.ticket();
        c.forget_license(Uuid::new_v4()); // any change commits meanwhile
        c.insert(ticket, "K", &l, &p, None, None);
        assert!(!fresh(&c, "K"));
        c.insert(c.ticket(), "K", &l, &p, None, None);
        assert!(fresh(&c, "K"));
        c.apply_notification(&format!("l:{}", l.id));
        assert!(!fresh(&c, "K"));
    }

    #[test]
    fn devices_are_remembered_per_license_including_unactivated_ones() {
        let c = listening(1 << 20);
        let (l, p) = rows("K", 0);
        let dev = |s: &str| Device::Fingerprint(s.into());
        c.insert(c.ticket(), "K", &l, &p, Some(dev("a")), None);
        c.insert(c.ticket(), "K", &l, &p, Some(dev("b")), None);
        let now = Utc::now();
        for d in ["a", "b"] {
            let Lookup::Fresh(e) = c.lookup("K", Some(&dev(d)), now) else {
                panic!("{d} not cached");
            };
            assert!(matches!(e.device(Some(&dev(d))), Some(None)));
        }
        assert!(matches!(c.lookup("K", Some(&dev("c")), now), Lookup::Miss));
        assert!(matches!(c.lookup("K", None, now), Lookup::Fresh(_)));
    }

    #[test]
    fn nothing_is_fresh_without_the_listener_and_stale_answers_expire() {
        let c = LicenseCache::new(1 << 20, Duration::minutes(10));
        put(&c, "K");
        assert!(c.is_empty(), "filled before listening");
        c.resume();
        put(&c, "K");
        let lost = Utc::now();
        c.suspend(lost);
        assert!(
            matches!(c.lookup("K", None, lost), Lookup::Stale(_, t) if (lost - t).num_microseconds() == Some(0))
        );
        assert!(matches!(
            c.lookup("K", None, lost + Duration::minutes(11)),
            Lookup::Miss
        ));
        put(&c, "K2");
        assert!(c.lookup_for_outage("K2", None, lost).is_none());
        c.resume();
        // Held for outages (stale since its fill), never fresh again; a refill is.
        let later = Utc::now() + Duration::minutes(1);
        assert!(matches!(c.lookup("K", None, later), Lookup::Stale(..)));
        put(&c, "K");
        assert!(fresh(&c, "K"));
    }

    #[test]
    fn refreshes_are_batched_one_per_activation_latest_wins_and_survive_a_failed_flush() {
        let c = listening(1 << 20);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Utc::now();
        let (lease, plain) = (Duration::seconds(15), Duration::minutes(5));
        for i in 0..100 {
            c.touch_later(a, t0 + Duration::milliseconds(i), plain);
        }
        c.touch_later(a, t0, lease);
        c.touch_later(b, t0, plain);
        assert_eq!(c.pending_touches(), 2);
        let batch = c.take_touches();
        assert_eq!(c.pending_touches(), 0);
        let touch = |at, interval| Touch { at, interval };
        // The latest sighting, and the shortest interval (a lease asks for more often).
        assert!(batch.contains(&(a, touch(t0 + Duration::milliseconds(99), lease))));
        // A failed write puts them back; a newer sighting meanwhile wins.
        c.touch_later(b, t0 + Duration::seconds(5), plain);
        c.restore_touches(batch);
        let again = c.take_touches();
        assert!(again.contains(&(a, touch(t0 + Duration::milliseconds(99), lease))));
        assert!(again.contains(&(b, touch(t0 + Duration::seconds(5), plain))));
    }
}
