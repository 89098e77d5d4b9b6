//! The manager: one listener task per (account, folder) and one intent
//! runner per account, started, stopped and reloaded at runtime through a
//! cloneable [`ManagerHandle`]. This is where IMAP, the store and the
//! decision engine meet.

mod backoff;
mod bootstrap;
mod chunk;
mod identity;
mod learn;
mod limits;
mod listener;
mod login;
mod peek;
mod report;
mod runner;
mod search;
mod status;
mod window;

pub use backoff::Backoff;
pub use bootstrap::BootstrapError;
pub use peek::PeekError;
pub use search::{Candidate, Criterion, FolderHits, SearchError};
pub use status::{JunkRoute, ListenerState, ListenerStatus};

use crate::config::AccountConfig;
use crate::worker::Deps;
use futures::future::BoxFuture;
use status::StatusCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Points in a listener's cycle where tests can inject behaviour (for
/// example, deliver mail exactly between SELECT and the catch-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbePoint {
    /// Right after SELECT, before the catch-up.
    AfterSelect,
    /// After the catch-up, right before IDLE is sent.
    BeforeIdle,
}

/// Test hook, called at each [`ProbePoint`].
pub trait Probe: Send + Sync {
    /// Called with the listener's account and folder.
    fn hit<'a>(&'a self, point: ProbePoint, account: &'a str, mailbox: &'a str) -> BoxFuture<'a, ()>;
}

struct AccountTasks {
    config: AccountConfig,
    actions: Arc<Notify>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    statuses: Vec<StatusCell>,
}

struct Inner {
    deps: Arc<Deps>,
    probe: Option<Arc<dyn Probe>>,
    accounts: Mutex<BTreeMap<String, AccountTasks>>,
    root: CancellationToken,
}

impl Inner {
    /// The running accounts. A panic elsewhere while holding the lock must
    /// not turn "stop account" into a silent no-op or leave a started
    /// account untracked: every change to the map is one insert or remove,
    /// so it is consistent even after a poisoning panic.
    fn map(&self) -> MutexGuard<'_, BTreeMap<String, AccountTasks>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Cloneable control handle for all accounts.
#[derive(Clone)]
pub struct ManagerHandle {
    inner: Arc<Inner>,
}

impl ManagerHandle {
    /// A manager with no accounts yet.
    pub fn new(deps: Arc<Deps>, probe: Option<Arc<dyn Probe>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                deps,
                probe,
                accounts: Mutex::new(BTreeMap::new()),
                root: CancellationToken::new(),
            }),
        }
    }

    /// Starts (or restarts) an account.
    pub async fn start_account(&self, config: AccountConfig) {
        self.stop_account(&config.name).await;
        let deps = self.inner.deps.clone();
        let acct = Arc::new(config.clone());
        let cancel = self.inner.root.child_token();
        let notify = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let mut statuses = Vec::new();
        let rstatus = StatusCell::new(&config.name, "(actions)");
        statuses.push(rstatus.clone());
        let runner = runner::Runner {
            deps: deps.clone(),
            acct: acct.clone(),
            notify: notify.clone(),
            status: rstatus.clone(),
            waiting: Default::default(),
        };
        tasks.push(tokio::spawn(runner.run(cancel.clone())));
        for (i, folder) in config.folders.iter().enumerate() {
            let status = StatusCell::new(&config.name, folder);
            statuses.push(status.clone());
            let l = listener::Listener {
                deps: deps.clone(),
                acct: acct.clone(),
                mailbox: folder.clone(),
                status,
                actions: notify.clone(),
                probe: self.inner.probe.clone(),
                role: listener::Role::Watch,
                prepares: (i == 0).then(|| rstatus.clone()),
            };
            tasks.push(tokio::spawn(l.run(cancel.clone())));
        }
        if config.learn_from_folders {
            let status = StatusCell::new(&config.name, "(Junk, learning)");
            statuses.push(status.clone());
            let w = learn::JunkWatch {
                deps: deps.clone(),
                acct: acct.clone(),
                status,
                actions: notify.clone(),
                probe: self.inner.probe.clone(),
            };
            tasks.push(tokio::spawn(w.run(cancel.clone())));
        }
        if let Some(folder) = &config.report_folder {
            let status = StatusCell::new(&config.name, &format!("{folder} (reports)"));
            statuses.push(status.clone());
            let w = report::ReportWatch {
                deps: deps.clone(),
                acct: acct.clone(),
                folder: folder.clone(),
                status,
                actions: notify.clone(),
                probe: self.inner.probe.clone(),
            };
            tasks.push(tokio::spawn(w.run(cancel.clone())));
        }
        tracing::info!(account = %config.name, folders = ?config.folders, mode = ?config.mode, "account started");
        self.inner.map().insert(
            config.name.clone(),
            AccountTasks {
                config,
                actions: notify,
                cancel,
                tasks,
                statuses,
            },
        );
    }

    /// Stops an account and waits for its tasks. Returns false if unknown.
    pub async fn stop_account(&self, name: &str) -> bool {
        let taken = self.inner.map().remove(name);
        let Some(t) = taken else { return false };
        t.cancel.cancel();
        for h in t.tasks {
            let _ = h.await;
        }
        tracing::info!(account = %name, "account stopped");
        true
    }

    /// Makes the running set match `configs`: new or changed accounts are
    /// (re)started, removed ones stopped, unchanged ones left alone.
    pub async fn reload(&self, configs: Vec<AccountConfig>) {
        let running: BTreeMap<String, AccountConfig> = self.inner.map().iter().map(|(k, v)| (k.clone(), v.config.clone())).collect();
        for name in running.keys() {
            if !configs.iter().any(|c| &c.name == name) {
                self.stop_account(name).await;
            }
        }
        for c in configs {
            if running.get(&c.name) != Some(&c) {
                self.start_account(c).await;
            }
        }
    }

    /// Wakes an account's action runner (after an operator request).
    /// False when the account is not running.
    pub fn nudge(&self, account: &str) -> bool {
        let n = self.inner.map().get(account).map(|t| t.actions.clone());
        n.map(|n| n.notify_one()).is_some()
    }

    /// Searches every watched folder of a running account (issue 17, item
    /// 5) on a short-lived connection through the account's login path;
    /// `candidates` are the local index's hits, confirmed on the server.
    pub async fn search(
        &self,
        account: &str,
        criterion: Criterion,
        value: &str,
        candidates: &[Candidate],
    ) -> Result<Vec<FolderHits>, SearchError> {
        let config = self.inner.map().get(account).map(|t| t.config.clone());
        let acct = config.ok_or_else(|| SearchError::NotRunning(account.to_string()))?;
        let deps = &self.inner.deps;
        let mut conn = login::connect(deps, &acct).await.map_err(|e| SearchError::Login(e.to_string()))?;
        let found = search::search(&mut conn, &acct, criterion, value, candidates).await;
        conn.logout().await;
        found
    }

    /// The engine every account shares.
    pub fn deps(&self) -> &Arc<Deps> {
        &self.inner.deps
    }

    /// Names of running accounts.
    pub fn accounts(&self) -> Vec<String> {
        self.inner.map().keys().cloned().collect()
    }

    /// Status of every listener and runner.
    pub fn status(&self) -> Vec<ListenerStatus> {
        self.inner
            .map()
            .values()
            .flat_map(|a| a.statuses.iter().filter_map(StatusCell::snapshot))
            .collect()
    }

    /// Stops everything and waits.
    pub async fn shutdown(&self) {
        self.inner.root.cancel();
        for name in self.accounts() {
            self.stop_account(&name).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SharedClock, SystemClock};
    use crate::config::{ImapTuning, StartAt, TlsMode};
    use crate::domain::{Decision, Mode};
    use crate::scan::{Decider, ScanError, ScanRequest};

    struct PassAll;
    impl Decider for PassAll {
        fn id(&self) -> &'static str {
            "pass"
        }
        fn decide<'a>(&'a self, _: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>> {
            Box::pin(async { Ok(Decision::default()) })
        }
    }

    fn account(name: &str) -> AccountConfig {
        AccountConfig {
            name: name.into(),
            host: "127.0.0.1".into(),
            // Nothing listens there: the listener just backs off.
            port: 1,
            tls: TlsMode::Plain,
            tls_skip_verify: false,
            ca_file: None,
            tls_fingerprint: None,
            user: "u".into(),
            pass: "p".into(),
            oauth2: None,
            folders: vec!["INBOX".into()],
            quarantine_folder: "Quarantine".into(),
            hold_folder: "Postern-Held".into(),
            mode: Mode::Enforce,
            start_at: StartAt::New,
            digest: Default::default(),
            digest_to: None,
            junk_folder: Default::default(),
            flag_keyword: None,
            learn_from_folders: false,
            learn_bootstrap: None,
            report_folder: None,
        }
    }

    #[tokio::test]
    async fn issue_16_a_poisoned_lock_does_not_silence_start_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(SystemClock);
        let store = crate::store::Store::open(&dir.path().join("p.db"), &[7; 32], clock.clone()).unwrap();
        let deps = Arc::new(Deps {
            oauth: Arc::new(crate::oauth::TokenBroker::new(store.clone(), Default::default())),
            store,
            decider: Arc::new(PassAll),
            tuning: ImapTuning::default(),
            eml_dir: dir.path().join("eml"),
            clock,
            events: tokio::sync::broadcast::channel(4).0,
            rescan_after: Vec::new(),
        });
        let m = ManagerHandle::new(deps, None);
        let inner = m.inner.clone();
        let _ = std::thread::spawn(move || {
            let _held = inner.accounts.lock();
            panic!("poison the account map");
        })
        .join();
        assert!(m.inner.accounts.is_poisoned());
        m.start_account(account("a")).await;
        assert_eq!(m.accounts(), vec!["a".to_string()], "a started account is tracked");
        assert!(m.nudge("a"));
        assert!(m.stop_account("a").await, "stop finds and stops it");
        assert!(m.accounts().is_empty());
    }
}
