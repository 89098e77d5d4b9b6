//! Dashboard users: name, role and bcrypt hash (sealed with the store key).
//! The environment's admin is not a row here; the runtime adds it.

use super::audit::{self, AuditEntry};
use super::{Result, Store, StoreError};
use rusqlite::{OptionalExtension, params};

/// One dashboard user, without the hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// `admin`, `analyst` or `viewer`.
    pub role: String,
    /// When added (RFC 3339).
    pub created_at: String,
    /// When the role or password last changed.
    pub updated_at: String,
}

fn entry(actor: &str, event: &str, detail: String) -> AuditEntry {
    AuditEntry {
        actor: actor.into(),
        event: event.into(),
        detail,
        ..Default::default()
    }
}

fn aad(name: &str) -> String {
    format!("user:{name}")
}

impl Store {
    /// Adds a user; `false` when the name is taken. The hash is sealed and
    /// never logged.
    pub async fn add_user(&self, name: &str, role: &str, hash: &str, actor: &str) -> Result<bool> {
        let (n, r, h, a) = (name.to_string(), role.to_string(), hash.to_string(), actor.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let sealed = ctx.secrets.seal(&h, &aad(&n));
            let added = tx.execute(
                "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT(name) DO NOTHING",
                params![n, r, sealed, ctx.now],
            )? == 1;
            if added {
                audit::insert(&tx, &ctx.now, &entry(&a, "user_added", format!("{n} as {r}")))?;
            }
            tx.commit()?;
            Ok(added)
        })
        .await
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>> {
        self.call(|db, _| {
            let mut q = db.prepare("SELECT name, role, created_at, updated_at FROM users ORDER BY name")?;
            let rows = q.query_map([], |r| {
                Ok(UserRow {
                    name: r.get(0)?,
                    role: r.get(1)?,
                    created_at: r.get(2)?,
                    updated_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// A user's role and bcrypt hash, if the user exists.
    pub async fn user_credentials(&self, name: &str) -> Result<Option<(String, String)>> {
        let n = name.to_string();
        self.call(move |db, ctx| {
            let row: Option<(String, String)> = db
                .query_row("SELECT role, password_hash FROM users WHERE name = ?1", params![n], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            row.map(|(role, sealed)| Ok((role, ctx.secrets.open(&sealed, &aad(&n)).map_err(StoreError::from)?)))
                .transpose()
        })
        .await
    }

    /// Replaces a user's hash and ends all of their sessions but `keep` (a
    /// session token hash: the one that made the change); `false` when there
    /// is no such user.
    pub async fn set_user_password(&self, name: &str, hash: &str, actor: &str, keep: Option<&str>) -> Result<bool> {
        self.change_user(name, Some(hash), actor, keep).await
    }

    /// Removes a user and ends their sessions; `false` when there is none.
    pub async fn remove_user(&self, name: &str, actor: &str) -> Result<bool> {
        self.change_user(name, None, actor, None).await
    }

    async fn change_user(&self, name: &str, hash: Option<&str>, actor: &str, keep: Option<&str>) -> Result<bool> {
        let (n, h, a, k) = (
            name.to_string(),
            hash.map(str::to_string),
            actor.to_string(),
            keep.map(str::to_string),
        );
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let (changed, event) = match &h {
                Some(h) => {
                    let sealed = ctx.secrets.seal(h, &aad(&n));
                    let n = tx.execute(
                        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE name = ?1",
                        params![n, sealed, ctx.now],
                    )?;
                    (n == 1, "user_password_changed")
                }
                None => (tx.execute("DELETE FROM users WHERE name = ?1", params![n])? == 1, "user_removed"),
            };
            if changed {
                // Whoever held the old password must not stay logged in.
                let ended = tx.execute("DELETE FROM sessions WHERE user_name = ?1 AND token_hash IS NOT ?2", params![n, k])?;
                audit::insert(&tx, &ctx.now, &entry(&a, event, format!("{n}; {ended} session(s) ended")))?;
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::{SharedClock, TestClock};
    use crate::store::Store;
    use std::sync::Arc;

    fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(TestClock::new(
            chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().into(),
        ));
        (Store::open(&dir.path().join("p.db"), &[3u8; 32], clock).unwrap(), dir)
    }

    #[tokio::test]
    async fn users_round_trip_and_changes_end_their_sessions() {
        let (s, _d) = store();
        assert!(s.add_user("alice", "analyst", "$2b$hash", "cli:root").await.unwrap());
        assert!(
            !s.add_user("alice", "viewer", "$2b$other", "cli:root").await.unwrap(),
            "names are unique"
        );
        assert_eq!(
            s.user_credentials("alice").await.unwrap(),
            Some(("analyst".into(), "$2b$hash".into()))
        );
        assert!(
            s.add_user("bob", "root", "$2b$x", "cli:root").await.is_err(),
            "unknown roles are refused"
        );
        s.create_session("t1", "c1", "127.0.0.1", "alice").await.unwrap();
        s.create_session("t2", "c2", "127.0.0.1", "alice").await.unwrap();
        s.create_session("t3", "c3", "127.0.0.1", "admin").await.unwrap();
        let row = s.session("t1").await.unwrap().unwrap();
        assert_eq!((row.user.as_str(), row.role.as_deref()), ("alice", Some("analyst")));
        assert_eq!(
            s.session("t3").await.unwrap().unwrap().role,
            None,
            "the environment's admin has no row"
        );
        // A password change ends only that user's other sessions.
        assert_eq!(s.delete_other_sessions("t1").await.unwrap(), 1);
        assert!(s.session("t3").await.unwrap().is_some());
        assert!(s.set_user_password("alice", "$2b$new", "cli:root", None).await.unwrap());
        assert!(s.session("t1").await.unwrap().is_none(), "a new password ends every session");
        assert_eq!(s.user_credentials("alice").await.unwrap().unwrap().1, "$2b$new");
        assert!(s.remove_user("alice", "cli:root").await.unwrap());
        assert!(!s.remove_user("alice", "cli:root").await.unwrap());
        assert_eq!(s.user_credentials("alice").await.unwrap(), None);
        let events: Vec<String> = s.audit_rows(None, None, 10).await.unwrap().into_iter().map(|r| r.event).collect();
        assert!(
            events.contains(&"user_added".into()) && events.contains(&"user_removed".into()),
            "{events:?}"
        );
    }
}
