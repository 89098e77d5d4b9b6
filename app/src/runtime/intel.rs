//! Threat intelligence at run time: the feeds, the operator's IOCs and the
//! reputation services are assembled once (their caches and rate limits
//! must outlive pipeline rebuilds), the index is rebuilt and swapped when
//! either source changes, and every change triggers claw-back: mail
//! delivered in the last `POSTERN_CLAWBACK_HOURS` is re-checked.

use super::{Runtime, RuntimeError};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::intel::feeds::{self, FeedManager};
use crate::intel::index::{Builder, Index, IocEntry, Severity, Source};
use crate::intel::net::{NetPolicy, SafeClient};
use crate::intel::rep::{RepCache, abuseipdb, rdap, virustotal};
use crate::intel::scanner::{SharedIndex, ThreatScanner};
use crate::intel::unshorten::{UnshortenOptions, Unshortener};
use crate::intel::{FeedEntry, Kind};
use crate::scan::Scanner;
use crate::scan::scanners::Disabled;
use crate::store::{IndicatorRow, Store};
use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often due re-scans, IOC changes and YARA rule changes are looked for.
const TICK: Duration = Duration::from_secs(30);

/// The reputation cache in SQLite, with expiry by the injected clock.
struct StoreCache {
    store: Store,
    clock: SharedClock,
}

impl RepCache for StoreCache {
    fn get<'a>(&'a self, service: &'a str, key: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let now = self.clock.now().timestamp();
            self.store
                .rep_get(service, key, now)
                .await
                .inspect_err(|e| tracing::warn!(service, error = %e, "reputation cache read failed"))
                .ok()
                .flatten()
        })
    }

    fn put<'a>(&'a self, service: &'a str, key: &'a str, value: String, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let until = self.clock.now().timestamp() + ttl.as_secs() as i64;
            if let Err(e) = self.store.rep_put(service, key, &value, until).await {
                tracing::warn!(service, error = %e, "reputation cache write failed");
            }
        })
    }
}

#[derive(Default)]
struct Watermarks {
    iocs: Option<(i64, Option<String>)>,
    yara: Option<u64>,
}

/// The keys and feed choice in force: the dashboard's where it set one,
/// else the environment's (issue 22: they change without a restart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntelKeys {
    /// Enabled feeds with an optional URL override.
    pub feeds: Vec<(String, Option<String>)>,
    /// PhishTank application key.
    pub phishtank: Option<String>,
    /// abuse.ch Auth-Key.
    pub abusech: Option<String>,
    /// AbuseIPDB key.
    pub abuseipdb: Option<String>,
    /// VirusTotal key.
    pub virustotal: Option<String>,
}

/// The parts that depend on keys, swapped whole when a key changes.
#[derive(Default)]
struct Keyed {
    feeds: Option<Arc<FeedManager>>,
    reputation: Vec<Arc<dyn Scanner>>,
    disabled: Vec<Disabled>,
    keys: IntelKeys,
}

/// Feeds, index, unshortener and reputation services. The index, the
/// unshortener and RDAP are built once (their caches and rate limits must
/// outlive pipeline rebuilds); feeds and reputation scanners are rebuilt
/// when their keys change in the dashboard.
pub struct Intel {
    /// The index the threat scanner reads.
    pub index: SharedIndex,
    rdap: Option<Arc<rdap::RdapScanner>>,
    scanners: Vec<Arc<dyn Scanner>>,
    disabled: Vec<Disabled>,
    keyed: ArcSwap<Keyed>,
    client: SafeClient,
    cache: Arc<dyn RepCache>,
    clock: SharedClock,
    cache_dir: std::path::PathBuf,
    abuseipdb_url: String,
    virustotal_url: String,
    marks: Mutex<Watermarks>,
}

impl Intel {
    /// Builds everything the settings and `keys` enable.
    pub fn build(s: &Settings, keys: IntelKeys, store: &Store, clock: &SharedClock) -> Result<Intel, RuntimeError> {
        let i = &s.intel;
        let policy = NetPolicy {
            allow_loopback_for_tests: i.allow_loopback_for_tests,
        };
        if i.allow_loopback_for_tests {
            tracing::warn!("POSTERN_TEST_ONLY_ALLOW_LOOPBACK_FETCH is set: outbound requests may reach 127.0.0.1");
        }
        let client = SafeClient::new(policy, Duration::from_secs(30)).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let index: SharedIndex = Arc::new(ArcSwap::from_pointee(Index::default()));
        let mut disabled: Vec<Disabled> = Vec::new();
        let unshortener = i.unshorten.then(|| {
            let opts = UnshortenOptions {
                max_hops: i.unshorten_max_hops,
                deadline: i.unshorten_timeout,
                per_second: i.unshorten_per_sec,
                extra_domains: i.unshorten_domains.clone(),
                any_domain: false,
            };
            Arc::new(Unshortener::new(client.clone(), opts))
        });
        let threat_timeout = i.unshorten_timeout + Duration::from_secs(5);
        let mut scanners: Vec<Arc<dyn Scanner>> = vec![Arc::new(ThreatScanner::new(
            index.clone(),
            unshortener,
            clock.clone(),
            threat_timeout,
        ))];
        let cache: Arc<dyn RepCache> = Arc::new(StoreCache {
            store: store.clone(),
            clock: clock.clone(),
        });
        let rdap = if i.rdap {
            let r = rdap::RdapScanner::new(client.clone(), cache.clone(), clock.clone())
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?
                .with_new_days(i.new_domain_days);
            let path = i.cache_dir.join("rdap-dns.json");
            // A bootstrap refreshed on an earlier run beats the shipped snapshot.
            if path.is_file()
                && let Err(e) = r.load_bootstrap(&path)
            {
                tracing::warn!(error = %e, path = %path.display(), "cached RDAP bootstrap unusable; using the shipped one");
            }
            let r = Arc::new(r);
            scanners.push(r.clone());
            Some(r)
        } else {
            None
        };
        if rdap.is_none() {
            disabled.push(("rdap".into(), "not enabled (POSTERN_RDAP)".into()));
        }
        let intel = Intel {
            index,
            rdap,
            scanners,
            disabled,
            keyed: ArcSwap::from_pointee(Keyed::default()),
            client,
            cache,
            clock: clock.clone(),
            cache_dir: i.cache_dir.clone(),
            abuseipdb_url: i.abuseipdb_url.clone(),
            virustotal_url: i.virustotal_url.clone(),
            marks: Mutex::new(Watermarks::default()),
        };
        intel.keyed.store(Arc::new(intel.keyed_for(keys)));
        Ok(intel)
    }

    /// Feeds and reputation scanners for `keys`.
    fn keyed_for(&self, keys: IntelKeys) -> Keyed {
        let mut disabled: Vec<Disabled> = Vec::new();
        let specs: Vec<_> = keys
            .feeds
            .iter()
            .filter_map(|(name, url)| feeds::builtin(name, url.as_deref(), keys.phishtank.as_deref(), keys.abusech.as_deref()))
            .collect();
        let feeds = if specs.is_empty() {
            disabled.push(("feeds".into(), "no feeds configured (POSTERN_FEEDS or the settings page)".into()));
            None
        } else {
            Some(Arc::new(FeedManager::new(
                specs,
                self.client.clone(),
                self.cache_dir.join("feeds"),
                self.clock.clone(),
            )))
        };
        let mut reputation: Vec<Arc<dyn Scanner>> = Vec::new();
        match &keys.abuseipdb {
            Some(key) => reputation.push(Arc::new(abuseipdb::AbuseIpdbScanner::new(
                self.client.clone(),
                &self.abuseipdb_url,
                key,
                self.cache.clone(),
                self.clock.clone(),
            ))),
            None => disabled.push(("abuseipdb".into(), "no key (POSTERN_ABUSEIPDB_KEY or the settings page)".into())),
        }
        match &keys.virustotal {
            Some(key) => reputation.push(Arc::new(virustotal::VirusTotalScanner::new(
                self.client.clone(),
                &self.virustotal_url,
                key,
                self.cache.clone(),
                self.clock.clone(),
            ))),
            None => disabled.push(("virustotal".into(), "no key (POSTERN_VIRUSTOTAL_KEY or the settings page)".into())),
        }
        Keyed {
            feeds,
            reputation,
            disabled,
            keys,
        }
    }

    /// Swaps in feeds and reputation scanners for `keys`. Returns the new
    /// feed manager when the feeds changed (it still has to load its cache),
    /// and whether anything changed at all.
    pub(super) fn set_keys(&self, keys: IntelKeys) -> (Option<Arc<FeedManager>>, bool) {
        let old = self.keyed.load();
        if old.keys == keys {
            return (None, false);
        }
        let feeds_changed = old.keys.feeds != keys.feeds || old.keys.phishtank != keys.phishtank || old.keys.abusech != keys.abusech;
        let mut next = self.keyed_for(keys);
        if !feeds_changed {
            // Same feeds: keep the manager and what it downloaded.
            next.feeds = old.feeds.clone();
        }
        let fresh = if feeds_changed { next.feeds.clone() } else { None };
        self.keyed.store(Arc::new(next));
        (fresh, true)
    }

    /// The feed manager in force, if any feed is enabled.
    fn feeds(&self) -> Option<Arc<FeedManager>> {
        self.keyed.load().feeds.clone()
    }

    /// The keys in force.
    pub(super) fn keys(&self) -> IntelKeys {
        self.keyed.load().keys.clone()
    }

    /// The scanners every pipeline gets, and the ones left out.
    pub fn scanners(&self) -> (Vec<Arc<dyn Scanner>>, Vec<Disabled>) {
        let k = self.keyed.load();
        let mut scanners = self.scanners.clone();
        scanners.extend(k.reputation.iter().cloned());
        let mut disabled = self.disabled.clone();
        disabled.extend(k.disabled.iter().cloned());
        (scanners, disabled)
    }

    /// Feed state for health, metrics and the API.
    pub fn feed_status(&self) -> Vec<feeds::FeedStatus> {
        self.feeds().map(|f| f.status()).unwrap_or_default()
    }
}

fn unix(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp())
}

fn ioc_entry(r: &IndicatorRow) -> Option<IocEntry> {
    Some(IocEntry {
        id: r.id,
        kind: Kind::parse(&r.ind.kind)?,
        value: r.ind.value.clone(),
        source: Source {
            name: r.ind.source.clone(),
            ioc: Some(r.id),
            confidence: r.ind.confidence,
            severity: Severity::parse(&r.ind.severity).unwrap_or_default(),
            expires: r.ind.expires_at.as_deref().and_then(unix),
        },
        false_positive: r.ind.false_positive,
    })
}

/// A fingerprint of the YARA rules folder (names, sizes, mtimes).
fn yara_fingerprint(dir: &std::path::Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let m = e.metadata().ok()?;
        (e.file_name(), m.len(), m.modified().ok()).hash(&mut h);
    }
    Some(h.finish())
}

impl Runtime {
    /// Rebuilds the index from the feeds' current data and the stored
    /// IOCs, and swaps it in. Returns the number of entries.
    pub async fn rebuild_index(&self) -> Result<usize, RuntimeError> {
        let iocs: Vec<IocEntry> = self.store.all_indicators().await?.iter().filter_map(ioc_entry).collect();
        let feeds: Vec<(String, Arc<Vec<FeedEntry>>)> = self.intel.feeds().map(|f| f.entries()).unwrap_or_default();
        let now = self.clock.now().timestamp();
        // A million entries take a moment to hash: keep it off the async workers.
        let index = tokio::task::spawn_blocking(move || {
            let mut b = Builder::new();
            for (name, entries) in &feeds {
                b.feed(name, entries);
            }
            b.iocs(&iocs, now);
            b.build()
        })
        .await
        .map_err(|e| RuntimeError::Invalid(format!("index build failed: {e}")))?;
        let n = index.len();
        self.intel.index.store(Arc::new(index));
        tracing::info!(entries = n, "threat index rebuilt");
        Ok(n)
    }

    /// Stores new indicators, swaps in the new index and re-checks recent
    /// mail against them. Returns the ids and the re-checks queued.
    pub async fn add_indicators(&self, items: Vec<crate::domain::NewIndicator>, actor: &str) -> Result<(Vec<i64>, usize), RuntimeError> {
        let ids = self.store.add_indicators(items, actor).await?;
        let queued = self.sync_indicators().await?;
        Ok((ids, queued))
    }

    /// Notices IOC changes (from the API or `postern ioc`): rebuilds the
    /// index and claws back mail that matches what is new.
    pub async fn sync_indicators(&self) -> Result<usize, RuntimeError> {
        let fp = self.store.ioc_fingerprint().await?;
        let old = {
            let m = self
                .intel
                .marks
                .lock()
                .map_err(|_| RuntimeError::Invalid("intel state poisoned".into()))?;
            m.iocs.clone()
        };
        if old.as_ref() == Some(&fp) {
            return Ok(0);
        }
        let since = old.and_then(|(_, t)| t);
        let changed: Vec<IocEntry> = self
            .store
            .indicators_updated_since(since)
            .await?
            .iter()
            .filter_map(ioc_entry)
            .collect();
        self.rebuild_index().await?;
        if let Ok(mut m) = self.intel.marks.lock() {
            m.iocs = Some(fp);
        }
        let mut b = Builder::new();
        b.iocs(&changed, self.clock.now().timestamp());
        let delta = b.build();
        if delta.is_empty() {
            return Ok(0);
        }
        self.clawback(&delta, "new indicator").await
    }

    /// Refreshes every feed now; rebuilds the index and claws back on change.
    pub async fn refresh_feeds(&self) -> Result<Value, RuntimeError> {
        let Some(f) = self.intel.feeds() else {
            return Ok(json!({ "feeds": [], "note": "no feeds configured (POSTERN_FEEDS or the settings page)" }));
        };
        let report = f.refresh_all().await;
        let changed = report.changes.iter().any(|c| !c.added.is_empty() || c.removed > 0);
        let mut queued = 0;
        if changed {
            self.rebuild_index().await?;
            let mut b = Builder::new();
            for c in report.changes.iter().filter(|c| !c.added.is_empty()) {
                b.feed(&c.name, &c.added);
            }
            let delta = b.build();
            if !delta.is_empty() {
                queued = self.clawback(&delta, "feed update").await?;
            }
        }
        let changes: Vec<Value> = report
            .changes
            .iter()
            .map(|c| json!({ "name": c.name, "added": c.added.len(), "removed": c.removed, "not_modified": c.not_modified, "error": c.error }))
            .collect();
        Ok(json!({ "changes": changes, "rechecks_queued": queued, "feeds": f.status() }))
    }

    /// Start of the claw-back window, `None` when claw-back is off.
    fn clawback_since(&self) -> Option<String> {
        let hours = self.settings.intel.clawback_hours;
        (hours > 0).then(|| (self.clock.now() - chrono::Duration::hours(hours.into())).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// Queues a re-check of every recent message whose observables hit
    /// `delta` (the entries that are new). Returns how many were queued.
    async fn clawback(&self, delta: &Index, why: &str) -> Result<usize, RuntimeError> {
        let Some(since) = self.clawback_since() else { return Ok(0) };
        let now = self.clock.now().timestamp();
        let mut hits: BTreeMap<i64, String> = BTreeMap::new();
        for o in self.store.recent_observables(&since).await? {
            if hits.contains_key(&o.message) {
                continue;
            }
            if let Some(h) = delta.observable(&o.kind, &o.value, now).first() {
                let by = h
                    .source
                    .ioc
                    .map_or_else(|| format!("feed {}", h.source.name), |id| format!("IOC #{id} ({})", h.source.name));
                hits.insert(o.message, format!("{why}: {} {} listed by {by}", h.kind.as_str(), h.value));
            }
        }
        self.request_rechecks(hits, why).await
    }

    /// Re-checks every recent message (new YARA rules can match anything).
    async fn clawback_all(&self, why: &str) -> Result<usize, RuntimeError> {
        let Some(since) = self.clawback_since() else { return Ok(0) };
        let all = self
            .store
            .recent_actionable(&since)
            .await?
            .into_iter()
            .map(|m| (m, why.to_string()));
        self.request_rechecks(all, why).await
    }

    /// Queues `(message, reason)` re-checks and wakes the runners.
    pub(super) async fn request_rechecks(&self, items: impl IntoIterator<Item = (i64, String)>, why: &str) -> Result<usize, RuntimeError> {
        let mut queued = 0;
        let shadow = self.shadow_accounts().await?;
        for (message, reason) in items {
            // Claw-back would move mail; a shadow account's mail never moves.
            let account = self.store.message_summary(message).await?.map(|m| m.account);
            if account.is_some_and(|a| shadow.contains(&a)) {
                continue;
            }
            if self.store.request_recheck(message, &reason, "postern").await?.is_some() {
                queued += 1;
            }
        }
        if queued > 0 {
            tracing::info!(queued, why, "claw-back: re-checking delivered mail");
            self.nudge_all();
        }
        Ok(queued)
    }

    fn nudge_all(&self) {
        for a in self.manager.accounts() {
            self.manager.nudge(&a);
        }
    }

    /// One round of the schedule: due re-scans, IOC changes, YARA changes.
    pub async fn intel_tick(&self) -> Result<(), RuntimeError> {
        if !self.store.queue_due_rechecks().await?.is_empty() {
            self.nudge_all();
        }
        self.sync_indicators().await?;
        if let Some(dir) = &self.settings.scan.yara_dir {
            let fp = yara_fingerprint(dir);
            let prev = self.intel.marks.lock().ok().and_then(|mut m| std::mem::replace(&mut m.yara, fp));
            if prev.is_some() && fp.is_some() && prev != fp {
                // Compile the new rules into the live pipeline first, so the
                // re-checks cannot run against the old ones.
                self.rebuild().await?;
                self.clawback_all("YARA rules changed").await?;
            }
        }
        Ok(())
    }

    /// Fetches IANA's RDAP bootstrap and keeps it for the next start.
    async fn refresh_rdap_bootstrap(&self) {
        let Some(r) = &self.intel.rdap else { return };
        match r.refresh_bootstrap(&self.settings.intel.rdap_bootstrap_url).await {
            Ok(n) => {
                let path = self.settings.intel.cache_dir.join("rdap-dns.json");
                let saved = r.bootstrap().to_json().map_err(|e| e.to_string()).and_then(|json| {
                    std::fs::create_dir_all(&self.settings.intel.cache_dir)
                        .and_then(|()| std::fs::write(&path, json))
                        .map_err(|e| e.to_string())
                });
                if let Err(e) = saved {
                    tracing::warn!(error = %e, "cannot keep the RDAP bootstrap");
                }
                tracing::info!(tlds = n, "RDAP bootstrap refreshed");
            }
            Err(e) => tracing::warn!(error = %e, "RDAP bootstrap refresh failed; keeping the current one"),
        }
    }

    /// Starts the feed refresher and the schedule. Feeds cached on disk are
    /// served at once, so a restart without network still has them.
    pub fn spawn_intel(&self, cancel: CancellationToken) {
        let rt = self.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            if let Some(f) = rt.intel.feeds() {
                let _ = tokio::task::spawn_blocking(move || f.load_cached()).await;
            }
            if let Err(e) = rt.rebuild_index().await {
                tracing::error!(error = %e, "threat index build failed");
            }
            // Feeds may be switched on later in the dashboard: the loop
            // runs regardless and refreshes whatever is in force.
            loop {
                if rt.intel.feeds().is_some()
                    && let Err(e) = rt.refresh_feeds().await
                {
                    tracing::warn!(error = %e, "feed refresh failed");
                }
                tokio::select! {
                    _ = c.cancelled() => break,
                    _ = tokio::time::sleep(rt.settings.intel.feed_refresh) => {}
                }
            }
        });
        if self.intel.rdap.is_some() {
            let (rt, c) = (self.clone(), cancel.clone());
            tokio::spawn(async move {
                loop {
                    rt.refresh_rdap_bootstrap().await;
                    tokio::select! {
                        _ = c.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(7 * 24 * 3600)) => {}
                    }
                }
            });
        }
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = rt.intel_tick().await {
                    tracing::warn!(error = %e, "claw-back schedule failed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        });
    }

    /// Feeds, index and reputation services, for the API and health.
    pub fn intel_status(&self) -> Value {
        json!({
            "indexed": self.intel.index.load().len(),
            "feeds": self.intel.feed_status(),
            "disabled": self.intel.scanners().1.iter().map(|(id, why)| json!({ "id": id, "why": why })).collect::<Vec<_>>(),
            "clawback_hours": self.settings.intel.clawback_hours,
            "rescan_after": self.settings.intel.rescan_after.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        })
    }
}
