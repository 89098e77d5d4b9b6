//! Quarantine digests: which mail a digest lists, and its one-click links.

use super::views::{SUMMARY_COLS, summary};
use super::{MessageSummary, Result, Store};
use rusqlite::{OptionalExtension, params};

/// A link as stored (the nonce itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLink {
    /// Message row id.
    pub message: i64,
    /// Content hash the link was issued for.
    pub sha256: String,
    /// `release` or `delete`.
    pub action: String,
    /// Who the digest went to.
    pub recipient: String,
    /// Stored-time string.
    pub expires_at: String,
    /// When it was used, if it was.
    pub used_at: Option<String>,
}

impl Store {
    /// Mail of `account` put in quarantine (not hold) since `since` and still
    /// there, newest first.
    pub async fn digest_items(&self, account: &str, since: &str, limit: u32) -> Result<Vec<(MessageSummary, String)>> {
        let (a, s) = (account.to_string(), since.to_string());
        self.call(move |db, _| {
            let sql = format!(
                "SELECT {SUMMARY_COLS}, sha256 FROM messages
                 WHERE account = ?1 AND quarantined = 1 AND verdict = 'quarantine' AND first_seen >= ?2
                 ORDER BY id DESC LIMIT ?3"
            );
            let mut st = db.prepare(&sql)?;
            let rows = st.query_map(params![a, s, limit], |r| Ok((summary(r)?, r.get("sha256")?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Stores a link under the SHA-256 of its nonce.
    pub async fn add_digest_link(&self, nonce_hash: &str, link: DigestLink) -> Result<()> {
        let n = nonce_hash.to_string();
        self.call(move |db, ctx| {
            db.execute(
                "INSERT INTO digest_links (nonce_hash, message, sha256, action, recipient, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![n, link.message, link.sha256, link.action, link.recipient, link.expires_at, ctx.now],
            )?;
            Ok(())
        })
        .await
    }

    /// The link stored under `nonce_hash`, used or not.
    pub async fn digest_link(&self, nonce_hash: &str) -> Result<Option<DigestLink>> {
        let n = nonce_hash.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT message, sha256, action, recipient, expires_at, used_at FROM digest_links WHERE nonce_hash = ?1",
                    params![n],
                    |r| {
                        Ok(DigestLink {
                            message: r.get(0)?,
                            sha256: r.get(1)?,
                            action: r.get(2)?,
                            recipient: r.get(3)?,
                            expires_at: r.get(4)?,
                            used_at: r.get(5)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Marks an unused, unexpired link used, atomically: of two concurrent
    /// clicks exactly one gets `true`.
    pub async fn claim_digest_link(&self, nonce_hash: &str) -> Result<bool> {
        let n = nonce_hash.to_string();
        self.call(move |db, ctx| {
            Ok(db.execute(
                "UPDATE digest_links SET used_at = ?2 WHERE nonce_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![n, ctx.now],
            )? == 1)
        })
        .await
    }

    /// Drops links that expired before `cutoff`; returns how many.
    pub async fn sweep_digest_links(&self, cutoff: &str) -> Result<usize> {
        let c = cutoff.to_string();
        self.call(move |db, _| Ok(db.execute("DELETE FROM digest_links WHERE expires_at < ?1", params![c])?))
            .await
    }
}

impl Store {
    /// The content hash recorded for a message.
    pub async fn message_sha(&self, id: i64) -> Result<Option<String>> {
        self.call(move |db, _| {
            Ok(db
                .query_row("SELECT sha256 FROM messages WHERE id = ?1", params![id], |r| r.get(0))
                .optional()?)
        })
        .await
    }
}
