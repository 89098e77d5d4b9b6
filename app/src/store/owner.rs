//! End-user quarantine (issue 22, item 2): one-time sign-in links for
//! mailbox owners, their sessions, and the release requests an owner files
//! for mail they may not release alone.

use super::{Result, Store, audit};
use crate::store::AuditEntry;
use rusqlite::{OptionalExtension, params};

/// A stored sign-in link (the nonce itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerLink {
    /// The account it opens.
    pub account: String,
    /// Where it was sent.
    pub recipient: String,
    /// Stored-time string.
    pub expires_at: String,
    /// When it was used, if it was.
    pub used_at: Option<String>,
}

/// An owner's session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSessionRow {
    /// The one account it may see.
    pub account: String,
    /// CSRF token of the session.
    pub csrf: String,
    /// Created (stored-time string).
    pub created_at: String,
    /// Last request (stored-time string).
    pub last_seen: String,
}

/// A release waiting for (or past) an analyst's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReleaseRequest {
    /// Row id.
    pub id: i64,
    /// Message row id.
    pub message: i64,
    /// Account of the message.
    pub account: String,
    /// `owner:<account>`.
    pub requested_by: String,
    /// pending | approved | denied.
    pub state: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When it was filed.
    pub created_at: String,
    /// The message's subject, for the list.
    pub subject: Option<String>,
    /// The message's sender.
    pub from: Option<String>,
    /// The message's tags.
    pub tags: Option<String>,
}

impl Store {
    /// Stores a sign-in link under the SHA-256 of its nonce.
    pub async fn add_owner_link(&self, nonce_hash: &str, link: OwnerLink) -> Result<()> {
        let n = nonce_hash.to_string();
        self.call(move |db, ctx| {
            db.execute(
                "INSERT INTO owner_links (nonce_hash, account, recipient, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![n, link.account, link.recipient, link.expires_at, ctx.now],
            )?;
            Ok(())
        })
        .await
    }

    /// The sign-in link stored under `nonce_hash`, used or not.
    pub async fn owner_link(&self, nonce_hash: &str) -> Result<Option<OwnerLink>> {
        let n = nonce_hash.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT account, recipient, expires_at, used_at FROM owner_links WHERE nonce_hash = ?1",
                    params![n],
                    |r| {
                        Ok(OwnerLink {
                            account: r.get(0)?,
                            recipient: r.get(1)?,
                            expires_at: r.get(2)?,
                            used_at: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Marks an unused, unexpired link used, atomically: of two concurrent
    /// clicks exactly one gets `true`. Expired links are swept on the way.
    pub async fn claim_owner_link(&self, nonce_hash: &str) -> Result<bool> {
        let n = nonce_hash.to_string();
        self.call(move |db, ctx| {
            let won = db.execute(
                "UPDATE owner_links SET used_at = ?2 WHERE nonce_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![n, ctx.now],
            )? == 1;
            db.execute("DELETE FROM owner_links WHERE expires_at < ?1", params![ctx.now])?;
            Ok(won)
        })
        .await
    }

    /// Opens an owner session and audits the sign-in in one transaction.
    pub async fn create_owner_session(&self, token_hash: &str, csrf: &str, account: &str, via: &str, audit_row: AuditEntry) -> Result<()> {
        let (t, c, a, v) = (token_hash.to_string(), csrf.to_string(), account.to_string(), via.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            tx.execute(
                "INSERT INTO owner_sessions (token_hash, account, csrf, via, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![t, a, c, v, ctx.now],
            )?;
            audit::insert(&tx, &ctx.now, &audit_row)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The owner session for a token hash, if any.
    pub async fn owner_session(&self, token_hash: &str) -> Result<Option<OwnerSessionRow>> {
        let t = token_hash.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT account, csrf, created_at, last_seen FROM owner_sessions WHERE token_hash = ?1",
                    params![t],
                    |r| {
                        Ok(OwnerSessionRow {
                            account: r.get(0)?,
                            csrf: r.get(1)?,
                            created_at: r.get(2)?,
                            last_seen: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Marks an owner session as used now.
    pub async fn touch_owner_session(&self, token_hash: &str) -> Result<()> {
        let t = token_hash.to_string();
        self.call(move |db, ctx| {
            db.execute(
                "UPDATE owner_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                params![t, ctx.now],
            )?;
            Ok(())
        })
        .await
    }

    /// Ends an owner session; also drops those idle since `idle_cutoff` or
    /// older than `max_cutoff`, so the table stays small without a timer.
    pub async fn delete_owner_session(&self, token_hash: &str, idle_cutoff: &str, max_cutoff: &str) -> Result<()> {
        let (t, i, m) = (token_hash.to_string(), idle_cutoff.to_string(), max_cutoff.to_string());
        self.call(move |db, _| {
            db.execute(
                "DELETE FROM owner_sessions WHERE token_hash = ?1 OR last_seen < ?2 OR created_at < ?3",
                params![t, i, m],
            )?;
            Ok(())
        })
        .await
    }

    /// Files a release request and audits it in one transaction; `None`
    /// when one is already open for the message.
    pub async fn add_release_request(&self, message: i64, account: &str, actor: &str, audit_row: AuditEntry) -> Result<Option<i64>> {
        let (a, who) = (account.to_string(), actor.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let n = tx.execute(
                "INSERT INTO release_requests (message, account, requested_by, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![message, a, who, ctx.now],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let id = tx.last_insert_rowid();
            audit::insert(&tx, &ctx.now, &audit_row)?;
            tx.commit()?;
            Ok(Some(id))
        })
        .await
    }

    /// Release requests, newest first: only open ones when `pending_only`,
    /// only one account's when `account` is set.
    pub async fn release_requests(&self, account: Option<&str>, pending_only: bool, limit: u32) -> Result<Vec<ReleaseRequest>> {
        let a = account.map(str::to_string);
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT r.id, r.message, r.account, r.requested_by, r.state, r.decided_by, r.created_at, m.subject, m.from_addr, m.tags
                 FROM release_requests r JOIN messages m ON m.id = r.message
                 WHERE (?1 IS NULL OR r.account = ?1) AND (?2 = 0 OR r.state = 'pending')
                 ORDER BY r.id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![a, pending_only, limit], |r| {
                Ok(ReleaseRequest {
                    id: r.get(0)?,
                    message: r.get(1)?,
                    account: r.get(2)?,
                    requested_by: r.get(3)?,
                    state: r.get(4)?,
                    decided_by: r.get(5)?,
                    created_at: r.get(6)?,
                    subject: r.get(7)?,
                    from: r.get(8)?,
                    tags: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Closes an open request as `approved` or `denied`; returns its
    /// message id, or `None` when there is no open request with that id.
    pub async fn decide_release_request(&self, id: i64, approve: bool, actor: &str, audit_row: AuditEntry) -> Result<Option<i64>> {
        let who = actor.to_string();
        let state = if approve { "approved" } else { "denied" };
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let msg: Option<i64> = tx
                .query_row(
                    "UPDATE release_requests SET state = ?2, decided_by = ?3, decided_at = ?4
                     WHERE id = ?1 AND state = 'pending' RETURNING message",
                    params![id, state, who, ctx.now],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(m) = msg {
                let mut e = audit_row;
                e.message = Some(m);
                audit::insert(&tx, &ctx.now, &e)?;
            }
            tx.commit()?;
            Ok(msg)
        })
        .await
    }
}
