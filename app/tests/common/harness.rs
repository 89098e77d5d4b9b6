//! Postern in-process (library API) and as a real child process.

use postern::clock::{SharedClock, SystemClock};
use postern::config::{AccountConfig, ImapTuning, PolicyConfig, StartAt, TlsMode};
use postern::domain::{Mode, Verdict};
use postern::manager::{ManagerHandle, Probe};
use postern::scan::scanners::lists::ListScanner;
use postern::scan::{Decider, InputOptions, Pipeline, Policy};
use postern::store::Store;
use postern::worker::Deps;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const KEY: [u8; 32] = *b"0123456789abcdefghijklmnopqrstuv";

/// Blocks `@evil.test`; everything else passes.
pub fn policy() -> PolicyConfig {
    PolicyConfig {
        allow_senders: vec![],
        block_senders: vec!["@evil.test".into()],
        block_verdict: Some(Verdict::Quarantine),
    }
}

/// The pipeline with only the (local) list scanner: IMAP tests need no Rspamd.
pub fn list_pipeline() -> Pipeline {
    Pipeline::new(
        vec![Arc::new(ListScanner::new(policy()))],
        Policy::default_policy().unwrap(),
        InputOptions::default(),
    )
}

pub fn tuning() -> ImapTuning {
    ImapTuning {
        idle_renew: Duration::from_secs(20),
        command_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(300),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(800),
        fetch_chunk: 4,
        max_message_bytes: 10 * 1024 * 1024,
        action_retry: Duration::from_millis(500),
        action_max_attempts: 10,
        probe_every: Duration::from_secs(20),
        probe_timeout: Duration::from_secs(5),
        action_idle: Duration::from_secs(60),
        stuck_after: Duration::from_secs(3600),
    }
}

pub fn account(name: &str, port: u16, user: &str, pass: &str, folders: &[&str]) -> AccountConfig {
    AccountConfig {
        name: name.into(),
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::Plain,
        tls_skip_verify: false,
        ca_file: None,
        tls_fingerprint: None,
        user: user.into(),
        pass: pass.into(),
        oauth2: None,
        folders: folders.iter().map(|s| s.to_string()).collect(),
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

/// A store at `path` with the tests' key and the system clock.
pub fn store_at(path: &Path) -> Store {
    Store::open(path, &KEY, Arc::new(SystemClock)).unwrap()
}

pub struct Postern {
    pub store: Store,
    pub manager: ManagerHandle,
    pub dir: tempfile::TempDir,
}

impl Postern {
    pub async fn start(accounts: Vec<AccountConfig>, tuning: ImapTuning, probe: Option<Arc<dyn Probe>>) -> Postern {
        Self::start_with(accounts, tuning, probe, Arc::new(list_pipeline())).await
    }

    pub async fn start_with(
        accounts: Vec<AccountConfig>,
        tuning: ImapTuning,
        probe: Option<Arc<dyn Probe>>,
        decider: Arc<dyn Decider>,
    ) -> Postern {
        Self::start_engine(accounts, tuning, probe, decider, Vec::new()).await
    }

    /// Like [`Postern::start_with`], with scheduled re-scans enabled.
    pub async fn start_engine(
        accounts: Vec<AccountConfig>,
        tuning: ImapTuning,
        probe: Option<Arc<dyn Probe>>,
        decider: Arc<dyn Decider>,
        rescan_after: Vec<(String, chrono::Duration)>,
    ) -> Postern {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "postern=debug".into()))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(SystemClock);
        let store = Store::open(&dir.path().join("postern.db"), &KEY, clock.clone()).unwrap();
        store.sync_config_accounts(&accounts).await.unwrap();
        let deps = Arc::new(Deps {
            oauth: Arc::new(postern::oauth::TokenBroker::new(
                store.clone(),
                postern::intel::net::NetPolicy {
                    allow_loopback_for_tests: true,
                },
            )),
            store: store.clone(),
            decider,
            tuning,
            eml_dir: dir.path().join("eml"),
            clock,
            events: tokio::sync::broadcast::channel(64).0,
            rescan_after,
        });
        let manager = ManagerHandle::new(deps, probe);
        for a in store.accounts().await.unwrap() {
            manager.start_account(a).await;
        }
        Postern { store, manager, dir }
    }

    /// Waits until every listener of the account sits in IDLE (or polls).
    pub async fn wait_watching(&self, account: &str) {
        let m = self.manager.clone();
        super::eventually(Duration::from_secs(20), "listeners idling", || {
            let st = m.status();
            async move {
                let l: Vec<_> = st.iter().filter(|s| s.account == account && s.mailbox != "(actions)").collect();
                (!l.is_empty()
                    && l.iter().all(|s| {
                        matches!(
                            s.state,
                            postern::manager::ListenerState::Idling | postern::manager::ListenerState::Polling
                        )
                    }))
                .then_some(())
            }
        })
        .await
    }

    /// Waits until `n` messages of `account` are fully processed.
    pub async fn wait_done(&self, account: &str, n: usize) -> Vec<postern::store::MessageRow> {
        let store = self.store.clone();
        super::eventually(Duration::from_secs(60), &format!("{n} processed messages"), || {
            let store = store.clone();
            async move {
                let rows = store.message_rows(account).await.unwrap();
                let done = rows.iter().filter(|r| r.status != "decided").count();
                (done >= n).then_some(rows)
            }
        })
        .await
    }
}

/// Postern as a child process (`postern run`), for crash tests.
pub struct Child {
    pub child: std::process::Child,
}

pub fn write_config(dir: &Path, port: u16, user: &str, pass: &str, folders: &[&str]) -> PathBuf {
    let path = dir.join("config.yaml");
    let folders = folders.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ");
    std::fs::write(
        &path,
        format!(
            "accounts:\n  - name: main\n    host: 127.0.0.1\n    port: {port}\n    tls: plain\n    user: {user}\n    pass: \"{pass}\"\n    folders: [{folders}]\npolicy:\n  block_senders: [\"@evil.test\"]\n"
        ),
    )
    .unwrap();
    path
}

impl Child {
    pub fn spawn(dir: &Path, failpoint: Option<&str>) -> Child {
        Self::spawn_with(dir, failpoint, &[])
    }

    /// Like `spawn`, with extra environment variables.
    pub fn spawn_with(dir: &Path, failpoint: Option<&str>, extra: &[(&str, &str)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("postern.log"))
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postern"));
        cmd.arg("run")
            .env_clear()
            .env("POSTERN_CONFIG", dir.join("config.yaml"))
            .env("POSTERN_DATA_DIR", dir)
            .env("POSTERN_DB_ENCRYPTION_KEY", base64_key())
            .env("POSTERN_IMAP_BACKOFF_MIN_MS", "50")
            .env("POSTERN_IMAP_BACKOFF_MAX_SECS", "1")
            .env("POSTERN_IMAP_TIMEOUT_SECS", "5")
            .env("POSTERN_ACTION_RETRY_SECS", "1")
            .env("POSTERN_LISTEN", "127.0.0.1:0")
            .env("POSTERN_LOG", "postern=debug")
            // Tests stay on loopback: no shortened-link lookups.
            .env("POSTERN_UNSHORTEN", "false")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(f) = failpoint {
            cmd.env("POSTERN_TEST_FAILPOINT", f);
        }
        cmd.envs(extra.iter().copied());
        Child {
            child: cmd.spawn().unwrap(),
        }
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(KEY)
}

/// One text column of each row, read-only, for assertion messages.
pub fn query_texts(db: &Path, sql: &str) -> Vec<String> {
    let Ok(c) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let _ = c.busy_timeout(Duration::from_secs(5));
    let Ok(mut st) = c.prepare(sql) else { return Vec::new() };
    st.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Opens the child's database read-only for assertions.
pub fn query_i64(db: &Path, sql: &str) -> i64 {
    // The child may not have created the file yet: that reads as "not yet".
    let Ok(c) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return -1;
    };
    let _ = c.busy_timeout(Duration::from_secs(5));
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}
