//! An operator's quarantine of mail Postern let through (issue 22): the
//! copy fetched on demand is kept first, then an intent is written exactly
//! as a scan writes one, so the account's runner moves it with the same
//! checks (UIDVALIDITY, content hash) and the same crash safety.

use super::audit::{self, AuditEntry};
use super::{Result, Store, StoreError};
use crate::domain::{Action, MessageKey};
use rusqlite::{OptionalExtension, params};

/// Why a manual quarantine could not be requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualRefusal {
    /// No such message.
    NoMessage,
    /// Already in quarantine or hold.
    AlreadyQuarantined,
    /// Postern moved it elsewhere, or it has been released or deleted.
    Moved,
    /// An action on it is still pending.
    Busy,
}

impl Store {
    /// Keeps `eml_path` as the message's copy and queues a move to
    /// `action`'s folder, audited as `actor`'s request. The intent row of
    /// an earlier, finished action (a flag) is reused: one row per message.
    pub async fn request_manual_quarantine(
        &self,
        message: i64,
        action: &Action,
        eml_path: &str,
        actor: &str,
    ) -> Result<std::result::Result<i64, ManualRefusal>> {
        let json = serde_json::to_string(action).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (a, path, dest) = (actor.to_string(), eml_path.to_string(), action.destination().map(str::to_string));
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            type Row = (bool, String, Option<String>, MessageKey);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT quarantined, status, location_mailbox, account, mailbox, uidvalidity, uid FROM messages WHERE id = ?1",
                    params![message],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            MessageKey {
                                account: r.get(3)?,
                                mailbox: r.get(4)?,
                                uidvalidity: r.get(5)?,
                                uid: r.get(6)?,
                            },
                        ))
                    },
                )
                .optional()?;
            let Some((quarantined, status, location, key)) = row else {
                return Ok(Err(ManualRefusal::NoMessage));
            };
            if quarantined {
                return Ok(Err(ManualRefusal::AlreadyQuarantined));
            }
            if location.as_deref().is_some_and(|l| l != key.mailbox) {
                return Ok(Err(ManualRefusal::Moved));
            }
            let pending: i64 = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM intents WHERE message = ?1 AND state = 'pending')
                      + (SELECT COUNT(*) FROM ops WHERE message = ?1 AND state = 'pending')",
                params![message],
                |r| r.get(0),
            )?;
            if pending > 0 || status == "decided" {
                return Ok(Err(ManualRefusal::Busy));
            }
            tx.execute(
                "UPDATE messages SET eml_path = COALESCE(eml_path, ?2), status = 'decided', updated_at = ?3 WHERE id = ?1",
                params![message, path, ctx.now],
            )?;
            tx.execute(
                "INSERT INTO intents (message, account, action, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?4)
                 ON CONFLICT (message) DO UPDATE SET action = excluded.action, state = 'pending',
                   attempts = 0, last_error = NULL, updated_at = excluded.updated_at",
                params![message, key.account, json, ctx.now],
            )?;
            let id: i64 = tx.query_row("SELECT id FROM intents WHERE message = ?1", params![message], |r| r.get(0))?;
            let mut e = AuditEntry::message(
                &key,
                Some(message),
                "quarantine_requested",
                format!("moving to {} on request (copy kept)", dest.unwrap_or_default()),
            );
            e.actor = a;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(Ok(id))
        })
        .await
    }

    /// State of an intent (`pending`, `done`, `gone`, ...) and the detail
    /// of the audit row that closed it.
    pub async fn intent_outcome(&self, intent: i64) -> Result<Option<(String, Option<String>)>> {
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT i.state, (SELECT detail FROM audit a WHERE a.message = i.message AND a.event LIKE 'action_%'
                       ORDER BY a.id DESC LIMIT 1) FROM intents i WHERE i.id = ?1",
                    params![intent],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })
        .await
    }
}
