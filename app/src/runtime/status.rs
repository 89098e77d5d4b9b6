//! What the running system reports about itself: time, the database, the
//! pipeline in force, feeds, listeners, notification counters and the live
//! event stream. Health, metrics and the pages read these instead of the
//! runtime's parts.

use super::{BackgroundLive, ListenerStatus, Runtime};
use crate::config::Settings;
use crate::domain::Event;
use crate::intel::feeds::FeedStatus;
use crate::notify::Notifier;
use crate::scan::{InputOptions, Pipeline};
use crate::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Runtime {
    /// The injected clock's time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Whether the database answers.
    pub async fn database_ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The pipeline new scans use (its scanners, policy and probes).
    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.live.current()
    }

    /// How parsing treats authentication results and relays: the options
    /// of the pipeline in force, so a preview parses as scans do.
    pub fn input_options(&self) -> InputOptions {
        self.live.current().input_options().clone()
    }

    /// Each threat feed's last refresh and size.
    pub fn feed_status(&self) -> Vec<FeedStatus> {
        self.intel.feed_status()
    }

    /// Entries in the threat lookup index (feeds and IOCs).
    pub fn threat_index_len(&self) -> usize {
        self.intel.index.load().len()
    }

    /// Every folder listener's state.
    pub fn listeners(&self) -> Vec<ListenerStatus> {
        self.manager.status()
    }

    /// Accounts with listeners started.
    pub fn running_accounts(&self) -> Vec<String> {
        self.manager.accounts()
    }

    /// Notification channels and rules in force now.
    pub fn background_live(&self) -> Arc<BackgroundLive> {
        self.background.current()
    }

    /// The notifier in force (for its counters), if a channel is configured.
    pub fn notifier(&self) -> Option<Arc<Notifier>> {
        self.background.notifier()
    }

    /// Quarantine digests sent since start.
    pub fn digests_sent(&self) -> u64 {
        self.background.digests_sent.load(Ordering::Relaxed)
    }

    /// Live updates from now on (the dashboard's event stream).
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The environment's settings, read-only: what the dashboard's
    /// overrides are compared with and where config.yaml lives.
    pub fn environment(&self) -> &Settings {
        &self.settings
    }
}
