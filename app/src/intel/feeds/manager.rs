//! Keeps every feed's last good entries, refreshes them, and says what each
//! refresh changed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::cache::{self, Loaded, Meta};
use super::fetch::{self, Fetched, Validators};
use super::{FeedSpec, display_url, formats};
use crate::clock::SharedClock;
use crate::intel::net::SafeClient;
use crate::intel::{FeedEntry, IntelError};

/// The most body a feed download may have (512 MiB): the full lists are tens
/// of MiB, and a hostile or broken server must not exhaust memory.
pub const DEFAULT_BODY_LIMIT: usize = 512 * 1024 * 1024;

/// One feed as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedStatus {
    /// Feed name.
    pub name: String,
    /// Download URL with keys and credentials masked.
    pub url: String,
    /// Entries currently served.
    pub entries: usize,
    /// Last successful refresh (a 304 counts).
    #[serde(serialize_with = "opt_time")]
    pub last_refresh: Option<DateTime<Utc>>,
    /// Last refresh attempt, successful or not.
    #[serde(serialize_with = "opt_time")]
    pub last_attempt: Option<DateTime<Utc>>,
    /// Why the last attempt (or loading the cache) failed; `None` after a success.
    pub last_error: Option<String>,
}

fn opt_time<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&cache::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// What one feed's refresh changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedChange {
    /// Feed name.
    pub name: String,
    /// Entries that were not in the previous good set: what mail already
    /// delivered is re-checked against.
    pub added: Vec<FeedEntry>,
    /// How many previous entries are gone.
    pub removed: usize,
    /// Why the refresh failed (the previous entries are still served).
    pub error: Option<String>,
    /// The server said the cached copy is current.
    pub not_modified: bool,
}

/// The outcome of refreshing every feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// One per feed, in configuration order.
    pub changes: Vec<FeedChange>,
}

/// Holds the feeds' entries and refreshes them.
#[derive(Debug)]
pub struct FeedManager {
    feeds: Vec<Feed>,
    client: SafeClient,
    cache_dir: PathBuf,
    clock: SharedClock,
    body_limit: usize,
}

#[derive(Debug)]
struct Feed {
    spec: FeedSpec,
    stem: String,
    shown_url: String,
    state: Mutex<State>,
    /// A manual refresh racing the scheduled one would diff against the same
    /// previous set and report the same additions twice.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    entries: Arc<Vec<FeedEntry>>,
    /// Set only while `entries` came from the body these validate, so a 304
    /// can never keep data the server did not send.
    meta: Option<Meta>,
    last_refresh: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl Feed {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FeedManager {
    /// A manager for `specs` (a repeated name keeps its first spec). `client`
    /// must already refuse private destinations; caches live in `cache_dir`.
    pub fn new(specs: Vec<FeedSpec>, client: SafeClient, cache_dir: PathBuf, clock: SharedClock) -> Self {
        let mut names = HashSet::new();
        let feeds = specs
            .into_iter()
            .filter(|s| {
                let fresh = names.insert(s.name.clone());
                if !fresh {
                    tracing::warn!(feed = %s.name, "feed configured twice; the first one is used");
                }
                fresh
            })
            .map(|spec| Feed {
                stem: cache::stem(&spec.name),
                shown_url: display_url(&spec),
                spec,
                state: Mutex::new(State::default()),
                refreshing: tokio::sync::Mutex::new(()),
            })
            .collect();
        Self {
            feeds,
            client,
            cache_dir,
            clock,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Caps a download's body at `bytes` instead of `DEFAULT_BODY_LIMIT`.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Start-up: serves every feed's cached copy, so a restart works
    /// offline. A copy that cannot be read is reported in the status.
    pub fn load_cached(&self) {
        for feed in &self.feeds {
            let loaded = cache::load(&self.cache_dir, &feed.stem, &feed.spec);
            let (meta, body, consistent) = match loaded {
                Loaded::Nothing => continue,
                Loaded::Corrupt(why) => {
                    tracing::warn!(feed = %feed.spec.name, %why, "feed cache unusable");
                    feed.state().last_error = Some(format!("cached copy unusable: {why}"));
                    continue;
                }
                Loaded::Found { meta, body, consistent } => (meta, body, consistent),
            };
            match formats::parse(feed.spec.format, &body) {
                Ok(entries) => {
                    let mut st = feed.state();
                    st.entries = Arc::new(entries);
                    st.last_error = None;
                    // Data newer than its metadata (a crash between the two
                    // writes) is good data with unknown validators.
                    if consistent {
                        st.last_refresh = cache::parse_time(&meta.checked_at);
                        st.meta = Some(meta);
                    } else {
                        st.meta = None;
                    }
                }
                Err(e) => {
                    let why = format!("cached copy unusable: {}", renamed(e, &feed.spec.name));
                    tracing::warn!(feed = %feed.spec.name, %why, "feed cache unusable");
                    feed.state().last_error = Some(why);
                }
            }
        }
    }

    /// Refreshes every feed concurrently.
    pub async fn refresh_all(&self) -> RefreshReport {
        let runs = self.feeds.iter().map(|f| self.refresh_feed(f));
        RefreshReport {
            changes: futures::future::join_all(runs).await,
        }
    }

    /// Refreshes one feed; `None` if there is no feed of that name.
    pub async fn refresh(&self, name: &str) -> Option<FeedChange> {
        let feed = self.feeds.iter().find(|f| f.spec.name == name)?;
        Some(self.refresh_feed(feed).await)
    }

    /// Each feed's current good entries.
    pub fn entries(&self) -> Vec<(String, Arc<Vec<FeedEntry>>)> {
        self.feeds
            .iter()
            .map(|f| (f.spec.name.clone(), f.state().entries.clone()))
            .collect()
    }

    /// Each feed's state, for the status page.
    pub fn status(&self) -> Vec<FeedStatus> {
        self.feeds
            .iter()
            .map(|f| {
                let st = f.state();
                FeedStatus {
                    name: f.spec.name.clone(),
                    url: f.shown_url.clone(),
                    entries: st.entries.len(),
                    last_refresh: st.last_refresh,
                    last_attempt: st.last_attempt,
                    last_error: st.last_error.clone(),
                }
            })
            .collect()
    }

    async fn refresh_feed(&self, feed: &Feed) -> FeedChange {
        let _one_at_a_time = feed.refreshing.lock().await;
        let since = {
            let mut st = feed.state();
            st.last_attempt = Some(self.clock.now());
            st.meta.as_ref().map(Meta::validators).filter(|v| !v.is_empty())
        };
        let outcome = match fetch::fetch(&self.client, &feed.spec, since.as_ref(), self.body_limit).await {
            Ok(Fetched::NotModified) => self.not_modified(feed).await,
            Ok(Fetched::Fresh { body, validators }) => self.fresh(feed, body, validators).await,
            Err(e) => Err(e),
        };
        outcome.unwrap_or_else(|e| {
            let why = renamed(e, &feed.spec.name).to_string();
            tracing::warn!(feed = %feed.spec.name, error = %why, "feed refresh failed; last good copy kept");
            feed.state().last_error = Some(why.clone());
            FeedChange {
                name: feed.spec.name.clone(),
                added: Vec::new(),
                removed: 0,
                error: Some(why),
                not_modified: false,
            }
        })
    }

    async fn not_modified(&self, feed: &Feed) -> Result<FeedChange, IntelError> {
        let now = self.clock.now();
        let meta = {
            let mut st = feed.state();
            st.last_refresh = Some(now);
            st.last_error = None;
            st.meta.as_mut().map(|m| {
                m.checked_at = cache::rfc3339(now);
                m.clone()
            })
        };
        if let Some(meta) = meta {
            let (dir, stem) = (self.cache_dir.clone(), feed.stem.clone());
            let stored = tokio::task::spawn_blocking(move || cache::store_meta(&dir, &stem, &meta)).await;
            self.note_cache_write(feed, stored);
        }
        Ok(FeedChange {
            name: feed.spec.name.clone(),
            added: Vec::new(),
            removed: 0,
            error: None,
            not_modified: true,
        })
    }

    async fn fresh(&self, feed: &Feed, body: Vec<u8>, validators: Validators) -> Result<FeedChange, IntelError> {
        let now = self.clock.now();
        let previous = feed.state().entries.clone();
        let format = feed.spec.format;
        let (dir, stem, source) = (self.cache_dir.clone(), feed.stem.clone(), cache::source_id(&feed.spec));
        // Reading and diffing a list of a million entries is CPU work for a
        // blocking thread, not for the runtime.
        let done = tokio::task::spawn_blocking(move || {
            let entries = formats::parse(format, &body)?;
            let (added, removed) = diff(&previous, &entries);
            let meta = Meta {
                source,
                etag: validators.etag,
                last_modified: validators.last_modified,
                fetched_at: cache::rfc3339(now),
                checked_at: cache::rfc3339(now),
                entries: entries.len(),
                data_sha256: cache::sha256(&body),
            };
            let stored = cache::store(&dir, &stem, &body, &meta);
            Ok::<_, IntelError>((entries, added, removed, meta, stored))
        })
        .await
        .map_err(|e| IntelError::Http(format!("reading the download failed: {e}")))?;
        let (entries, added, removed, meta, stored) = done?;
        tracing::info!(feed = %feed.spec.name, entries = entries.len(), added = added.len(), removed, "feed refreshed");
        {
            let mut st = feed.state();
            st.entries = Arc::new(entries);
            st.meta = Some(meta);
            st.last_refresh = Some(now);
            st.last_error = None;
        }
        self.note_cache_write(feed, Ok(stored));
        Ok(FeedChange {
            name: feed.spec.name.clone(),
            added,
            removed,
            error: None,
            not_modified: false,
        })
    }

    /// A cache that cannot be written does not undo a good refresh, but the
    /// operator must see that a restart would lose it.
    fn note_cache_write(&self, feed: &Feed, stored: Result<std::io::Result<()>, tokio::task::JoinError>) {
        let why = match stored {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(feed = %feed.spec.name, %why, "feed cache not written");
        feed.state().last_error = Some(format!("refreshed, but the cache could not be written: {why}"));
    }
}

/// Names the configured feed in a format error instead of the format's feed.
fn renamed(e: IntelError, name: &str) -> IntelError {
    match e {
        IntelError::Format { detail, .. } => IntelError::Format {
            source_name: name.to_string(),
            detail,
        },
        other => other,
    }
}

/// Entries of `new` not in `old`, and how many of `old` are not in `new`.
fn diff(old: &[FeedEntry], new: &[FeedEntry]) -> (Vec<FeedEntry>, usize) {
    let old_set: HashSet<&FeedEntry> = old.iter().collect();
    let new_set: HashSet<&FeedEntry> = new.iter().collect();
    let added = new.iter().filter(|e| !old_set.contains(e)).cloned().collect();
    let removed = old_set.iter().filter(|e| !new_set.contains(*e)).count();
    (added, removed)
}
