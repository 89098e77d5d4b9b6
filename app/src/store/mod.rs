//! SQLite persistence: one connection behind a mutex is the single writer;
//! blocking calls run on tokio's blocking pool.

mod accounts;
mod audit;
mod bootstrap;
mod breakdown;
pub mod crypto;
mod dashboard;
mod digest;
pub mod eml;
mod failed;
mod incidents;
mod intel;
mod labels;
mod learning;
mod logwatch;
mod logwatch_report;
mod maintenance;
mod manual;
mod messages;
mod migrations;
mod milter;
mod milter_hold;
mod oauth;
mod operator;
mod owner;
mod prior;
mod progress;
mod purge;
mod recheck;
mod reports;
mod subjects;
mod sync;
mod top;
mod users;
mod views;

pub use crate::domain::{Intent, Op, OpKind, OpRefusal, OpState};
pub use accounts::AccountSource;
pub use audit::{AuditEntry, AuditRow};
pub use bootstrap::{BootItem, BootOutcome, BootstrapProgress, LessonCounts};
pub use breakdown::Breakdown;
pub use dashboard::{ListEntry, SessionRow};
pub use digest::DigestLink;
pub use incidents::{INCIDENT_STATUSES, IncidentItem, IncidentRow};
pub use intel::{IndicatorRow, RecentObservable, SightingRow};
pub use labels::Labelled;
pub use learning::{Lesson, UserFeedback, user_actor};
pub use logwatch::{AttackRecord, AttackRow, Position};
pub(crate) use logwatch_report::is_live as indicator_is_live;
pub use logwatch_report::{AttackDay, AttackFilter, AttackerRow, AttemptRow, BlockEntry, DayShare, LogwatchSummary, NamedCount};
pub use maintenance::{Pruned, RetentionCutoffs};
pub use manual::ManualRefusal;
pub use messages::{IntentState, MessageMeta, MessageRow, MessageStatus, NewMessage, Recorded};
pub use milter::{MILTER_ACCOUNT, MilterEarlier, MilterRecord, body_of, body_sha256};
pub use milter_hold::MilterHeld;
pub use oauth::OAuthTokens;
pub use owner::{OwnerLink, OwnerSessionRow, ReleaseRequest};
pub use prior::Prior;
pub use progress::BackfillRow;
pub use purge::{PurgeDone, PurgeHit, PurgeItem, PurgeItemRow, PurgeJobRow, PurgeRefusal};
pub use recheck::{QuarantineRequest, RecheckOutcome};
pub use reports::{CampaignRow, NewReport, ReportRow};
pub use sync::MailboxState;
pub use top::TopStats;
pub use users::UserRow;
pub use views::{Count, DayCounts, MessageDetail, MessageFilter, MessageSummary};

use crate::clock::SharedClock;
use crypto::SecretBox;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Filesystem failure (EML files, directories).
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The database was written by a newer Postern.
    #[error("database schema version {found} is newer than this Postern supports ({supported}); upgrade Postern")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Highest version known here.
        supported: i64,
    },
    /// A stored secret could not be decrypted.
    #[error(transparent)]
    Decrypt(#[from] crypto::DecryptError),
    /// Stored JSON did not parse.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The blocking task died.
    #[error("database task failed: {0}")]
    Task(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    secrets: SecretBox,
    clock: SharedClock,
    /// Whether the milter has recorded anything in this database: until it
    /// has, no fetched message can be one it decided, and the per-message
    /// body hash and lookup are skipped (issue 21).
    milter_seen: Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path, key: &[u8; 32], clock: SharedClock) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        // WAL lets readers (dashboard) run beside the writer; busy_timeout
        // rides out a checkpoint instead of failing a write.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 8 MiB of page cache instead of SQLite's 2: a backlog's decision
        // rows pushed the index pages out, and each message then cost about
        // 150 page reads (issue 21).
        conn.pragma_update(None, "cache_size", -8192)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // The database holds sealed credentials and session hashes: if it
        // cannot be made private, refuse to run rather than carry on with a
        // world-readable file (issue 16).
        let mut conn = conn;
        migrations::migrate(&mut conn)?;
        // After the first writes, so the WAL files exist and are covered.
        restrict_permissions(path)?;
        let milter_seen: bool = conn.query_row("SELECT EXISTS(SELECT 1 FROM milter_decisions)", [], |r| r.get(0))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            secrets: SecretBox::new(key),
            clock,
            milter_seen: Arc::new(std::sync::atomic::AtomicBool::new(milter_seen)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection, &Ctx) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        let ctx = Ctx {
            secrets: self.secrets.clone(),
            now: self.now(),
        };
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Task("database mutex poisoned".into()))?;
            f(&mut guard, &ctx)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Current time as stored (RFC 3339, UTC).
    pub fn now(&self) -> String {
        self.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// The injected clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

/// Per-call context handed to store closures.
pub(crate) struct Ctx {
    pub(crate) secrets: SecretBox,
    pub(crate) now: String,
}

/// 0600 on the database and its WAL and shared-memory files (which hold
/// recent pages, secrets included).
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn issue_16_database_and_wal_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let clock: SharedClock = Arc::new(crate::clock::TestClock::new(
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        let _store = Store::open(&path, &[1u8; 32], clock).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let p = format!("{}{suffix}", path.display());
            if let Ok(m) = std::fs::metadata(&p) {
                assert_eq!(m.permissions().mode() & 0o777, 0o600, "{p}");
            }
        }
        assert!(
            std::fs::metadata(format!("{}-wal", path.display())).is_ok(),
            "WAL mode leaves a -wal file"
        );
    }
}
