//! Reputation services asked about one message at a time: RDAP for how old
//! its domains are, AbuseIPDB for its sending IP, VirusTotal for its risky
//! attachments. Every answer is cached through [`RepCache`] (the runtime
//! backs it with the store, so quota is not spent again after a restart),
//! and every scanner here fails open: an unreachable service must never
//! hold mail back.

pub mod abuseipdb;
pub mod bootstrap;
pub mod limit;
pub mod rdap;
pub mod virustotal;

#[cfg(test)]
pub(crate) mod testserver;

pub use bootstrap::Bootstrap;

use crate::clock::SharedClock;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A key-value cache with expiry, per service. Lookups that miss, fail or
/// find an expired value all answer `None`; a cache that cannot write
/// simply forgets (the scanner then asks the service again next time).
pub trait RepCache: Send + Sync {
    /// The live value stored for `key` under `service`, if any.
    fn get<'a>(&'a self, service: &'a str, key: &'a str) -> BoxFuture<'a, Option<String>>;
    /// Stores `value` for `ttl`, replacing any earlier value.
    fn put<'a>(&'a self, service: &'a str, key: &'a str, value: String, ttl: std::time::Duration) -> BoxFuture<'a, ()>;
}

/// Entries a [`MemoryCache`] holds before it starts evicting.
pub const MEMORY_CACHE_CAPACITY: usize = 50_000;

/// In-process [`RepCache`], expiring by the injected clock. Used in tests
/// and when no store is configured; bounded so a long run cannot grow it
/// without limit.
#[derive(Debug)]
pub struct MemoryCache {
    clock: SharedClock,
    capacity: usize,
    map: Mutex<HashMap<CacheKey, (String, DateTime<Utc>)>>,
}

/// (service, key).
type CacheKey = (String, String);

impl MemoryCache {
    /// An empty cache holding up to [`MEMORY_CACHE_CAPACITY`] entries.
    pub fn new(clock: SharedClock) -> Self {
        Self::with_capacity(clock, MEMORY_CACHE_CAPACITY)
    }

    /// An empty cache holding up to `capacity` entries (at least one).
    pub fn with_capacity(clock: SharedClock, capacity: usize) -> Self {
        Self {
            clock,
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Entries held, expired ones included until they are next touched.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RepCache for MemoryCache {
    fn get<'a>(&'a self, service: &'a str, key: &'a str) -> BoxFuture<'a, Option<String>> {
        let now = self.clock.now();
        let mut map = lock(&self.map);
        let k = (service.to_string(), key.to_string());
        let found = match map.get(&k) {
            Some((v, expires)) if *expires > now => Some(v.clone()),
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        };
        Box::pin(std::future::ready(found))
    }

    fn put<'a>(&'a self, service: &'a str, key: &'a str, value: String, ttl: std::time::Duration) -> BoxFuture<'a, ()> {
        let now = self.clock.now();
        let expires = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut map = lock(&self.map);
        let k = (service.to_string(), key.to_string());
        if map.len() >= self.capacity && !map.contains_key(&k) {
            map.retain(|_, (_, e)| *e > now);
            // Still full of live entries: drop the one closest to expiry,
            // the least valuable to keep.
            if map.len() >= self.capacity
                && let Some(victim) = map.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone())
            {
                map.remove(&victim);
            }
        }
        map.insert(k, (value, expires));
        Box::pin(std::future::ready(()))
    }
}

/// Locks a mutex, carrying on with the data if a panicking holder poisoned
/// it: every value guarded here stays consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Reads a cached JSON value; one that no longer parses (an older format)
/// counts as a miss.
pub(crate) async fn cache_get_json<T: DeserializeOwned>(cache: &dyn RepCache, service: &str, key: &str) -> Option<T> {
    let raw = cache.get(service, key).await?;
    serde_json::from_str(&raw).ok()
}

/// Stores a value as JSON.
pub(crate) async fn cache_put_json<T: Serialize>(cache: &dyn RepCache, service: &str, key: &str, value: &T, ttl: std::time::Duration) {
    if let Ok(raw) = serde_json::to_string(value) {
        cache.put(service, key, raw, ttl).await;
    }
}

/// Reads a response body, refusing more than `limit` bytes: a service (or
/// something impersonating one) must not make us buffer without bound.
pub(crate) async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if buf.len() + chunk.len() > limit {
            return Err(format!("answer larger than {limit} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Counters shown by `health()`; never reset while the process runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests sent to the service.
    pub lookups: AtomicU64,
    /// Answers served from the cache.
    pub cache_hits: AtomicU64,
    /// Requests that failed.
    pub errors: AtomicU64,
    /// Lookups not made because of a rate limit.
    pub skipped: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} lookups, {} cache hits, {} errors, {} skipped",
            self.lookups.load(Ordering::Relaxed),
            self.cache_hits.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.skipped.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use std::sync::Arc;
    use std::time::Duration;

    fn clock() -> TestClock {
        TestClock::new(DateTime::<Utc>::from_timestamp(1_795_000_000, 0).unwrap())
    }

    #[tokio::test]
    async fn memory_cache_expires_by_the_injected_clock() {
        let c = clock();
        let cache = MemoryCache::new(Arc::new(c.clone()));
        cache.put("svc", "k", "v".into(), Duration::from_secs(3600)).await;
        assert_eq!(cache.get("svc", "k").await.as_deref(), Some("v"));
        assert_eq!(cache.get("other", "k").await, None, "services do not share keys");
        c.advance(chrono::Duration::minutes(59));
        assert_eq!(cache.get("svc", "k").await.as_deref(), Some("v"));
        c.advance(chrono::Duration::minutes(1));
        assert_eq!(cache.get("svc", "k").await, None);
        assert!(cache.is_empty(), "an expired entry is dropped when read");
    }

    #[tokio::test]
    async fn memory_cache_stays_bounded() {
        let c = clock();
        let cache = MemoryCache::with_capacity(Arc::new(c.clone()), 2);
        cache.put("s", "short", "1".into(), Duration::from_secs(60)).await;
        cache.put("s", "long", "2".into(), Duration::from_secs(600)).await;
        cache.put("s", "new", "3".into(), Duration::from_secs(300)).await;
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("s", "short").await, None, "the entry closest to expiry goes first");
        assert_eq!(cache.get("s", "long").await.as_deref(), Some("2"));
        c.advance(chrono::Duration::minutes(6));
        cache.put("s", "later", "4".into(), Duration::from_secs(60)).await;
        assert_eq!(cache.get("s", "long").await.as_deref(), Some("2"), "expired entries made room");
        assert_eq!(cache.get("s", "later").await.as_deref(), Some("4"));
    }
}
