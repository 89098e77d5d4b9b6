//! The running system as operators change it: settings changed in the
//! dashboard (thresholds, endpoints, scanner switches, lists) are stored,
//! then a fresh pipeline is built and swapped in. A setting that cannot
//! build a pipeline is refused before it is stored.
//!
//! The dashboard reaches the system only through [`Runtime`]'s verbs,
//! grouped by topic in this module's files (`queries`, `status`,
//! `sessions`, `accounts`, `lists`, `quarantine`, ...); its parts stay
//! private.

mod account_check;
mod accounts;
pub use accounts::{AccountRemoveError, AccountState};
mod admin_digest;
pub mod attacks;
mod blocklist;
mod bootstrap;
mod campaign_actions;
mod campaigns;
mod counts;
pub use counts::LiveCounts;
mod digest;
mod export;
mod failed;
pub mod incidents;
mod intel;
mod learning;
mod lists;
mod live_settings;
pub use live_settings::{SECRETS, SecretSource, SecretSpec, SecretStatus};
mod background;
mod live;
pub mod logwatch;
mod milter_hold;
mod outbound;
mod owner;
mod progress;
mod purge;
pub use owner::{OwnerRelease, owner_actor, owner_may_release};
pub use progress::BackfillProgress;
mod quarantine;
mod queries;
pub mod records;
mod reports;
mod sessions;
mod stats;
mod status;
pub mod tags;
pub use outbound::{refused_oauth_urls, refused_outbound_urls};
mod maintenance;
mod users;
pub use users::{BUILTIN_ADMIN, Role, check_user_name};

pub use crate::manager::PeekError;
/// What the dashboard shows of each folder's listener.
pub use crate::manager::{ListenerState, ListenerStatus};
pub use account_check::AccountTestError;
pub use background::{BackgroundLive, BackgroundState};
pub use bootstrap::LearningProgress;
pub use digest::LinkError;
pub use export::{ExportError, ExportReport, export_training, training_labels};
pub use intel::{Intel, IntelKeys};
pub use live::fetchable;
pub use maintenance::MaintenanceReport;

pub use campaigns::{CampaignMessage, CampaignView};
pub use purge::{MAX_SEARCH_LEN, PurgeItemRow, PurgeJobRow, PurgeView};
pub use quarantine::{OpError, OpResult};
pub use reports::{AUTO_ACTOR, ReportOutcome};

use crate::clock::SharedClock;
use crate::config::{PolicyConfig, ScanSettings, Settings};
use crate::domain::EventSender;
use crate::manager::ManagerHandle;
use crate::scan::{InputOptions, LiveDecider, Pipeline, Policy, PolicyError, ScanError};
use crate::store::{Store, StoreError};
use crate::worker::Deps;
use std::sync::Arc;

const OVERRIDES_KEY: &str = "overrides";
const ADMIN_HASH_KEY: &str = "admin_password_hash";
/// Scanners an operator may switch off (built-in heuristics always run).
pub const SWITCHABLE: &[&str] = &["rspamd", "clamav", "yara"];

/// Runtime failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// Store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A scanner could not be built with these settings.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The policy file is unusable.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The operator's input is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// Settings the dashboard overrides; `None` keeps the environment's value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// Score at which mail is flagged.
    pub threshold_flag: Option<f64>,
    /// Score at which mail is quarantined.
    pub threshold_quarantine: Option<f64>,
    /// Rspamd normal worker.
    pub rspamd_url: Option<String>,
    /// Rspamd controller (learning).
    pub rspamd_controller_url: Option<String>,
    /// clamd `host:port`.
    pub clamd_addr: Option<String>,
    /// Scanner ids switched off.
    pub disabled: Vec<String>,
    /// Feeds switched on (names from `POSTERN_FEEDS`' list).
    pub feeds: Option<Vec<String>>,
    /// Verdicts sent to ntfy.
    pub ntfy_verdicts: Option<Vec<crate::domain::Verdict>>,
    /// Verdicts sent to the webhook.
    pub webhook_verdicts: Option<Vec<crate::domain::Verdict>>,
    /// Mask From and Subject in notifications.
    pub notify_mask: Option<bool>,
    /// Least minutes between two alerts of one kind.
    pub alert_gap_mins: Option<u32>,
    /// Where ntfy notifications go (a topic URL).
    pub ntfy_url: Option<String>,
    /// Where webhook notifications go.
    pub webhook_url: Option<String>,
    /// Local time digests go out, `HH:MM`.
    pub digest_at: Option<String>,
    /// Days an EML copy of clean mail is kept.
    pub retention_clean_days: Option<u32>,
    /// Days an EML copy of quarantined mail is kept.
    pub retention_quarantine_days: Option<u32>,
    /// Days an EML copy of held mail is kept.
    pub retention_held_days: Option<u32>,
    /// Days held mail stays in the hold folder.
    pub hold_expunge_days: Option<u32>,
}

impl Overrides {
    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let bad = |m: String| Err(RuntimeError::Invalid(m));
        for (name, v) in [("flag", self.threshold_flag), ("quarantine", self.threshold_quarantine)] {
            if let Some(v) = v
                && !(v.is_finite() && (0.0..=1000.0).contains(&v))
            {
                return bad(format!("the {name} threshold must be a number between 0 and 1000"));
            }
        }
        if let (Some(f), Some(q)) = (self.threshold_flag, self.threshold_quarantine)
            && f > q
        {
            return bad(format!("the flag threshold ({f}) must not exceed the quarantine threshold ({q})"));
        }
        for (name, v) in [
            ("Rspamd URL", &self.rspamd_url),
            ("Rspamd controller URL", &self.rspamd_controller_url),
        ] {
            if let Some(u) = v {
                let ok = url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    return bad(format!("{name} {u:?} is not an http(s) URL"));
                }
            }
        }
        if let Some(a) = &self.clamd_addr
            && a.rsplit_once(':')
                .and_then(|(h, p)| (!h.is_empty()).then_some(p))
                .and_then(|p| p.parse::<u16>().ok())
                .is_none()
        {
            return bad(format!("clamd address {a:?} is not host:port"));
        }
        if let Some(d) = self.disabled.iter().find(|d| !SWITCHABLE.contains(&d.as_str())) {
            return bad(format!("unknown scanner {d:?}"));
        }
        live_settings::validate(self)
    }
}

/// The running system as one closed application layer: the dashboard
/// gets operations ("verbs", grouped by topic in this module's files), not
/// the parts behind them. The parts stay private; the accessors below are
/// for the binary's setup and for tests only (tests/layering.rs keeps the
/// web layer off them).
#[derive(Clone)]
pub struct Runtime {
    /// Settings from the environment.
    settings: Arc<Settings>,
    /// Allow/block lists from config.yaml (dashboard lists add to them).
    file_lists: PolicyConfig,
    /// Persistence.
    store: Store,
    /// The pipeline new scans use.
    live: Arc<LiveDecider>,
    /// Accounts.
    manager: ManagerHandle,
    /// Live updates.
    events: EventSender,
    /// Time.
    clock: SharedClock,
    /// Feeds, IOC index and reputation services.
    intel: Arc<Intel>,
    /// Notifications, digests and maintenance state.
    background: Arc<BackgroundState>,
}

/// The runtime's parts, for the binary's setup and for tests. The web
/// layer must not use them: it calls verbs (see tests/layering.rs).
#[doc(hidden)]
impl Runtime {
    /// Persistence (setup and tests only; the web layer must not use it).
    pub fn store(&self) -> &Store {
        &self.store
    }
    /// Settings from the environment (setup and tests only).
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }
    /// Lists from config.yaml (setup and tests only).
    pub fn file_lists(&self) -> &PolicyConfig {
        &self.file_lists
    }
    /// The pipeline switch (setup and tests only).
    pub fn live(&self) -> &Arc<LiveDecider> {
        &self.live
    }
    /// The account manager (setup and tests only).
    pub fn manager(&self) -> &ManagerHandle {
        &self.manager
    }
    /// The event bus (setup and tests only).
    pub fn events(&self) -> &EventSender {
        &self.events
    }
    /// The clock (setup and tests only).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
    /// Feeds and reputation services (setup and tests only).
    pub fn intel(&self) -> &Arc<Intel> {
        &self.intel
    }
    /// Notification and maintenance state (setup and tests only).
    pub fn background(&self) -> &Arc<BackgroundState> {
        &self.background
    }
}

async fn stored_overrides(store: &Store) -> Result<Overrides, RuntimeError> {
    Ok(match store.setting(OVERRIDES_KEY).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        None => Overrides::default(),
    })
}

impl Runtime {
    /// Accounts in shadow mode: every automatic path that would act on mail
    /// (claw-back, maintenance expunge) skips them, and operator requests
    /// are refused (the runner refuses anything that slips through).
    pub(crate) async fn shadow_accounts(&self) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        Ok(self
            .store
            .accounts()
            .await?
            .into_iter()
            .filter(|a| a.mode == crate::domain::Mode::Shadow)
            .map(|a| a.name)
            .collect())
    }

    /// Assembles the running system: the pipeline (environment, file lists,
    /// dashboard settings and lists, built once), the engine, the event bus
    /// and a manager with no accounts started yet.
    pub async fn assemble(
        settings: Arc<Settings>,
        file_lists: PolicyConfig,
        store: Store,
        clock: SharedClock,
    ) -> Result<Runtime, RuntimeError> {
        let o = stored_overrides(&store).await?;
        let keys = live_settings::intel_keys(&settings, &store, &o).await?;
        let intel = Arc::new(Intel::build(&settings, keys, &store, &clock)?);
        // Stored rules that no longer fit a changed environment (retention)
        // must not stop the gateway from starting: the environment's apply.
        let (background_settings, smtp) = match live_settings::background_settings(&settings, &store, &o).await {
            Ok(v) => v,
            Err(RuntimeError::Invalid(why)) => {
                tracing::warn!(%why, "dashboard rules conflict with the environment; using the environment's until fixed on the settings page");
                (settings.background.clone(), None)
            }
            Err(e) => return Err(e),
        };
        let background = Arc::new(BackgroundState::build(&settings, background_settings, smtp, &clock)?);
        let pipeline = pipeline_for(&settings, &file_lists, &store, &intel, &o).await?;
        let live = Arc::new(LiveDecider::new(pipeline));
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let deps = Arc::new(Deps {
            store: store.clone(),
            decider: live.clone(),
            tuning: settings.imap.clone(),
            eml_dir: settings.eml_dir.clone(),
            clock: clock.clone(),
            events: events.clone(),
            rescan_after: rescan_schedule(&settings),
            oauth: Arc::new(crate::oauth::TokenBroker::new(
                store.clone(),
                crate::intel::net::NetPolicy {
                    allow_loopback_for_tests: settings.intel.allow_loopback_for_tests,
                },
            )),
        });
        let rt = Runtime {
            manager: ManagerHandle::new(deps, None),
            settings,
            file_lists,
            store,
            live,
            events,
            clock,
            intel,
            background,
        };
        rt.load_maintenance_report().await?;
        Ok(rt)
    }

    /// Stored overrides (defaults when none).
    pub async fn overrides(&self) -> Result<Overrides, RuntimeError> {
        stored_overrides(&self.store).await
    }

    /// Validates, builds, stores and swaps in new overrides.
    pub async fn set_overrides(&self, o: Overrides, actor: &str) -> Result<(), RuntimeError> {
        o.validate()?;
        // Rules that only make sense together (retention) are checked
        // against the environment's values before anything is stored.
        live_settings::background_settings(&self.settings, &self.store, &o).await?;
        let before = self.effective_scan(&self.overrides().await?).rspamd_controller_url;
        let after = self.effective_scan(&o).rspamd_controller_url;
        let pipeline = self.build(&o).await?;
        let json = serde_json::to_string(&o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store.set_setting(OVERRIDES_KEY, Some(&json), actor).await?;
        self.live.swap(pipeline);
        tracing::info!(?o, "settings changed; pipeline rebuilt");
        // Issue 16: a stored password follows its endpoint, never a new one.
        // Whoever moves the controller elsewhere must enter its password again.
        if !same_origin(before.as_deref(), after.as_deref()) && self.store.has_secret_setting(RSPAMD_PASSWORD_KEY).await? {
            self.store.set_secret_setting(RSPAMD_PASSWORD_KEY, None, actor).await?;
            tracing::warn!("Rspamd controller moved to another origin; its stored password was dropped");
        }
        self.apply_settings().await
    }

    /// Rebuilds the pipeline from the environment, overrides and lists.
    pub async fn rebuild(&self) -> Result<(), RuntimeError> {
        let o = self.overrides().await?;
        self.live.swap(self.build(&o).await?);
        Ok(())
    }

    /// The scanner settings in force for `o`.
    pub fn effective_scan(&self, o: &Overrides) -> ScanSettings {
        effective_scan(&self.settings, o)
    }

    async fn build(&self, o: &Overrides) -> Result<Pipeline, RuntimeError> {
        pipeline_for(&self.settings, &self.file_lists, &self.store, &self.intel, o).await
    }

    /// The Rspamd controller URL in force.
    pub async fn controller_url(&self) -> Result<Option<String>, RuntimeError> {
        Ok(self.effective_scan(&self.overrides().await?).rspamd_controller_url)
    }

    /// The Rspamd controller password: the dashboard's (dropped whenever the
    /// controller moves), else the environment's, but the environment's only
    /// while the controller is still the environment's own origin: a URL
    /// changed in the dashboard must not receive it (issue 16).
    pub async fn rspamd_password(&self) -> Result<Option<String>, RuntimeError> {
        if let Some(p) = self.store.secret_setting(RSPAMD_PASSWORD_KEY).await? {
            return Ok(Some(p));
        }
        let url = self.controller_url().await?;
        let env = &self.settings.scan;
        Ok(env
            .rspamd_password
            .clone()
            .filter(|_| same_origin(url.as_deref(), env.rspamd_controller_url.as_deref())))
    }

    /// The admin's bcrypt hash: one set in the dashboard wins over the environment's.
    pub async fn admin_hash(&self) -> Result<Option<String>, RuntimeError> {
        Ok(self
            .store
            .secret_setting(ADMIN_HASH_KEY)
            .await?
            .or_else(|| self.settings.admin_password_hash.clone()))
    }

    /// Stores a new admin hash (sealed like a secret, so the audit log and a
    /// copy of the database never show it).
    pub async fn set_admin_hash(&self, hash: &str, actor: &str) -> Result<(), RuntimeError> {
        Ok(self.store.set_secret_setting(ADMIN_HASH_KEY, Some(hash), actor).await?)
    }
}

/// The stored-secret key of the Rspamd controller password.
const RSPAMD_PASSWORD_KEY: &str = "rspamd_password";

/// Whether two endpoint URLs share scheme, host and port (both unset counts
/// as the same; an unparseable URL matches nothing).
fn same_origin(a: Option<&str>, b: Option<&str>) -> bool {
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => origin(a).zip(origin(b)).is_some_and(|(a, b)| a.is_tuple() && a == b),
        _ => false,
    }
}

/// Scheduled re-scans, none when claw-back is off.
fn rescan_schedule(s: &Settings) -> Vec<(String, chrono::Duration)> {
    if s.intel.clawback_hours == 0 {
        return Vec::new();
    }
    s.intel
        .rescan_after
        .iter()
        .filter_map(|(stage, d)| chrono::Duration::from_std(*d).ok().map(|d| (stage.clone(), d)))
        .collect()
}

/// The scanner settings in force: the environment's, with the dashboard's
/// endpoints and scanner switches applied.
fn effective_scan(settings: &Settings, o: &Overrides) -> ScanSettings {
    let mut s = settings.scan.clone();
    if o.rspamd_url.is_some() {
        s.rspamd_url.clone_from(&o.rspamd_url);
    }
    if o.rspamd_controller_url.is_some() {
        s.rspamd_controller_url.clone_from(&o.rspamd_controller_url);
    }
    if o.clamd_addr.is_some() {
        s.clamd_addr.clone_from(&o.clamd_addr);
    }
    for d in &o.disabled {
        match d.as_str() {
            "rspamd" => s.rspamd_url = None,
            "clamav" => s.clamd_addr = None,
            "yara" => s.yara_dir = None,
            _ => {}
        }
    }
    s
}

/// The pipeline for `o`: file lists plus dashboard lists, thresholds applied.
async fn pipeline_for(
    settings: &Settings,
    file_lists: &PolicyConfig,
    store: &Store,
    intel: &Intel,
    o: &Overrides,
) -> Result<Pipeline, RuntimeError> {
    let scan = effective_scan(settings, o);
    let mut lists = file_lists.clone();
    for e in store.list_entries().await? {
        match e.kind.as_str() {
            "allow" => lists.allow_senders.push(e.pattern),
            _ => lists.block_senders.push(e.pattern),
        }
    }
    let mut policy = load_policy(settings)?;
    // config.yaml's policy.block_verdict: what a block-listed sender gets.
    policy.block_verdict = lists.block_verdict;
    if let Some(f) = o.threshold_flag {
        policy.flag = f;
    }
    if let Some(q) = o.threshold_quarantine {
        policy.quarantine = q;
    }
    let (more, off) = intel.scanners();
    Ok(build_pipeline(&scan, &lists, policy)?.with_scanners(more, off))
}

/// The policy table from `POSTERN_POLICY` or the built-in one, with the
/// environment's threshold overrides.
pub fn load_policy(s: &Settings) -> Result<Policy, PolicyError> {
    let mut p = match &s.scan.policy_path {
        Some(path) => Policy::load(path)?,
        None => Policy::default_policy()?,
    };
    if let Some(f) = s.threshold_flag {
        p.flag = f;
    }
    if let Some(q) = s.threshold_quarantine {
        p.quarantine = q;
    }
    Ok(p)
}

/// Builds the enabled scanners into a pipeline.
pub fn build_pipeline(s: &ScanSettings, lists: &PolicyConfig, policy: Policy) -> Result<Pipeline, ScanError> {
    let (scanners, disabled) = crate::scan::scanners::build(s, lists)?;
    let opts = InputOptions {
        authserv_id: s.authserv_id.clone(),
        trusted_hops: s.trusted_hops,
        trusted_relays: s.trusted_relays.clone(),
        pdf_worker: s.pdf_worker.clone(),
        media: Default::default(),
    };
    Ok(Pipeline::new(scanners, policy, opts).with_disabled(disabled))
}
