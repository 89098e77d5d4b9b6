//! Milter decisions (in-line mode, issue 19): recorded like IMAP ones, with
//! the SMTP envelope beside them, and found again when the delivered copy
//! reaches a watched mailbox.

use super::messages::insert_message;
use super::{AuditEntry, MessageMeta, NewMessage, Result, Store, StoreError, audit};
use crate::domain::{Decision, MessageKey, Verdict};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

/// The `messages.account` of milter decisions: the dashboard shows them
/// beside the IMAP accounts' under this name.
pub const MILTER_ACCOUNT: &str = "milter";
/// Their `messages.mailbox`.
const MILTER_MAILBOX: &str = "SMTP";

/// One milter decision and the SMTP transaction it ended.
#[derive(Debug, Clone, Default)]
pub struct MilterRecord {
    /// Postfix queue id (`{i}` macro), when known.
    pub queue_id: Option<String>,
    /// Connecting client IP.
    pub client_ip: Option<String>,
    /// HELO name.
    pub helo: Option<String>,
    /// MAIL FROM.
    pub mail_from: Option<String>,
    /// RCPT TO.
    pub rcpt: Vec<String>,
    /// What the message is (Message-ID, size, From, Subject; `sha256` is
    /// the whole message as received).
    pub meta: MessageMeta,
    /// [`body_sha256`] of the body.
    pub body_sha256: String,
    /// The reply given: reject, tempfail, hold, headers or accept.
    pub reply: &'static str,
    /// Where the copy of held mail was kept (the EML store), for the
    /// dashboard's preview, rescan and learning.
    pub eml_path: Option<String>,
}

/// What the milter decided on a message that has now reached a mailbox.
#[derive(Debug, Clone, PartialEq)]
pub struct MilterEarlier {
    /// Its `messages` row.
    pub message: i64,
    /// Postfix queue id.
    pub queue_id: Option<String>,
    /// The reply the milter gave.
    pub reply: String,
    /// The decision, as recorded (reports are not kept).
    pub decision: Decision,
}

/// SHA-256 of a message body with every CR removed and trailing newlines
/// dropped: the milter sees the body in CRLF form, a mailbox may store it
/// with LF, and the MTA and delivery agent add headers, so the body is
/// what both sides agree on.
pub fn body_sha256(body: &[u8]) -> String {
    let mut h = Sha256::new();
    let mut end = body.len();
    while end > 0 && matches!(body[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    for chunk in body[..end].split(|&b| b == b'\r') {
        h.update(chunk);
    }
    hex::encode(h.finalize())
}

/// The body of a raw message: what follows the first empty line.
pub fn body_of(raw: &[u8]) -> &[u8] {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => &raw[a.min(b)..],
        (Some(a), None) | (None, Some(a)) => &raw[a..],
        (None, None) => &[],
    }
}

impl Store {
    /// Records a milter decision: a `milter_decisions` row with the
    /// envelope, a `messages` row for the dashboard and an audit entry, in
    /// one transaction. Returns the `messages` row id.
    pub async fn record_milter(&self, r: &MilterRecord, d: &Decision) -> Result<i64> {
        // Set before the row exists: a lookup racing the insert then looks
        // (and finds nothing yet) rather than skipping a row it should see.
        self.milter_seen.store(true, std::sync::atomic::Ordering::SeqCst);
        let (r, d) = (r.clone(), d.clone());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let rcpt = serde_json::to_string(&r.rcpt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO milter_decisions (ts, queue_id, client_ip, helo, mail_from, rcpt_json, message_id,
                   body_sha256, verdict, reply)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    ctx.now,
                    r.queue_id,
                    r.client_ip,
                    r.helo,
                    r.mail_from,
                    rcpt,
                    r.meta.message_id,
                    r.body_sha256,
                    d.verdict.as_str(),
                    r.reply
                ],
            )?;
            let row = tx.last_insert_rowid();
            let key = MessageKey {
                account: MILTER_ACCOUNT.into(),
                mailbox: MILTER_MAILBOX.into(),
                uidvalidity: 0,
                uid: u32::try_from(row).map_err(|_| StoreError::Corrupt(format!("milter row {row}")))?,
            };
            let m = NewMessage { key, meta: r.meta.clone() };
            let id = insert_message(&tx, &ctx.now, &m, "done", Some(&d), false, r.eml_path.as_deref())?;
            if r.reply == "hold" {
                // In Postfix's hold queue: listed with the quarantine, where
                // the dashboard releases (postsuper -H) or deletes it.
                tx.execute("UPDATE messages SET quarantined = 1 WHERE id = ?1", params![id])?;
            }
            super::intel::record_evidence(&tx, &ctx.now, id, &d)?;
            tx.execute("UPDATE milter_decisions SET message=?1 WHERE id=?2", params![id, row])?;
            let detail = format!(
                "queue id {}, client {} (HELO {}), MAIL FROM <{}>, RCPT TO {}: verdict {} ({}); reply {}",
                r.queue_id.as_deref().unwrap_or("-"),
                r.client_ip.as_deref().unwrap_or("-"),
                r.helo.as_deref().unwrap_or("-"),
                r.mail_from.as_deref().unwrap_or(""),
                r.rcpt.iter().map(|a| format!("<{a}>")).collect::<Vec<_>>().join(" "),
                d.verdict,
                d.reason,
                r.reply
            );
            audit::insert(&tx, &ctx.now, &AuditEntry::message(&m.key, Some(id), "milter", detail))?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Whether the milter may have decided a message in this database; when
    /// not, [`Store::find_milter_decision`] cannot find anything and callers
    /// skip hashing the body for it.
    pub fn milter_may_know(&self) -> bool {
        self.milter_seen.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The milter's decision on a message that was let through (accepted,
    /// possibly with headers, or held and then released by the operator),
    /// matched by body hash and, when both have one, Message-ID.
    pub async fn find_milter_decision(&self, message_id: Option<&str>, body_sha256: &str) -> Result<Option<MilterEarlier>> {
        let (mid, sha) = (message_id.map(str::to_string), body_sha256.to_string());
        self.call(move |c, _| {
            let row = c
                .query_row(
                    "SELECT d.message, d.queue_id, d.reply, m.verdict, m.tags, m.reason, m.score
                       FROM milter_decisions d JOIN messages m ON m.id = d.message
                      WHERE d.body_sha256 = ?1 AND d.reply IN ('accept', 'headers', 'hold')
                        AND (d.message_id IS NULL OR ?2 IS NULL OR d.message_id = ?2)
                      ORDER BY d.id DESC LIMIT 1",
                    params![sha, mid],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<f64>>(6)?,
                        ))
                    },
                )
                .optional()?;
            Ok(row.map(|(message, queue_id, reply, verdict, tags, reason, score)| MilterEarlier {
                message,
                queue_id,
                reply,
                decision: Decision {
                    verdict: verdict.as_deref().and_then(Verdict::parse).unwrap_or_default(),
                    tags: tags
                        .unwrap_or_default()
                        .split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect(),
                    reason: reason.unwrap_or_default(),
                    score: score.unwrap_or_default(),
                    ..Default::default()
                },
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_hash_ignores_line_endings_and_added_headers() {
        let smtp = b"Received: by mx\r\nX-Postern-Verdict: pass\r\nSubject: a\r\n\r\nline 1\r\nline 2\r\n";
        let stored = b"Return-Path: <a@a.test>\nDelivered-To: bob\nSubject: a\n\nline 1\nline 2\n";
        assert_eq!(body_sha256(body_of(smtp)), body_sha256(body_of(stored)));
        assert_ne!(body_sha256(b"line 1\r\n"), body_sha256(b"line 2\r\n"));
        assert_eq!(body_of(b"no body at all"), b"");
    }

    #[tokio::test]
    async fn a_recorded_decision_is_found_by_body_and_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), &[7; 32], std::sync::Arc::new(crate::clock::SystemClock)).unwrap();
        let body = body_sha256(b"hello\r\n");
        let rec = MilterRecord {
            queue_id: Some("4ABC".into()),
            client_ip: Some("192.0.2.1".into()),
            rcpt: vec!["bob@example.test".into()],
            meta: MessageMeta {
                message_id: Some("<m1@t>".into()),
                sha256: "x".into(),
                ..Default::default()
            },
            body_sha256: body.clone(),
            reply: "headers",
            ..Default::default()
        };
        let d = Decision {
            verdict: Verdict::Junk,
            tags: vec!["RSPAMD_REJECT".into()],
            reason: "spam".into(),
            score: 12.0,
            ..Default::default()
        };
        let id = store.record_milter(&rec, &d).await.unwrap();
        let found = store.find_milter_decision(Some("<m1@t>"), &body).await.unwrap().unwrap();
        assert_eq!((found.message, found.reply.as_str()), (id, "headers"));
        assert_eq!(found.decision.verdict, Verdict::Junk);
        assert_eq!(found.decision.tags, vec!["RSPAMD_REJECT"]);
        assert!(store.find_milter_decision(Some("<other@t>"), &body).await.unwrap().is_none());
        assert!(
            store
                .find_milter_decision(Some("<m1@t>"), &body_sha256(b"x"))
                .await
                .unwrap()
                .is_none()
        );
        // A rejected message never reaches a mailbox: it is not matched.
        let rejected = MilterRecord {
            body_sha256: body_sha256(b"bad\r\n"),
            reply: "reject",
            ..rec
        };
        store.record_milter(&rejected, &d).await.unwrap();
        assert!(store.find_milter_decision(None, &rejected.body_sha256).await.unwrap().is_none());
    }
}
