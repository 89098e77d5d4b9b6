//! Dashboard sessions and the login's audit rows: what the web layer's
//! login, logout and session check ask for.

use super::Runtime;
use crate::store::{AuditEntry, SessionRow, StoreError};
use std::time::Duration;

impl Runtime {
    /// The session a token hash names, if any.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        self.store.session(token_hash).await
    }

    /// Opens a session for `user` logged in from `ip`.
    pub async fn open_session(&self, token_hash: &str, csrf: &str, ip: &str, user: &str) -> Result<(), StoreError> {
        self.store.create_session(token_hash, csrf, ip, user).await
    }

    /// Moves a session's idle clock to now (written at most once a second).
    pub async fn touch_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.store.touch_session(token_hash).await.map(|_| ())
    }

    /// Ends one session (logout, expiry).
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.store.delete_session(token_hash).await
    }

    /// Ends every session but `keep` (after a password change); how many ended.
    pub async fn end_other_sessions(&self, keep: &str) -> Result<usize, StoreError> {
        self.store.delete_other_sessions(keep).await
    }

    /// Drops sessions idle longer than `idle` or older than `max`.
    pub async fn prune_sessions(&self, idle: Duration, max: Duration) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let cutoff = |d: Duration| {
            let t = now - chrono::Duration::from_std(d).unwrap_or_default();
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        self.store.prune_sessions(&cutoff(idle), &cutoff(max)).await
    }

    /// Whether any stored dashboard user exists.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        Ok(!self.store.users().await?.is_empty())
    }

    /// Writes a login, failed login or logout row to the audit log.
    pub async fn audit_login(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.store.audit(entry).await
    }
}
