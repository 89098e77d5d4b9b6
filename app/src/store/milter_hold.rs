//! Held in-line mail (issue 19): what the dashboard's release and delete of
//! a milter row need (its queue id, reply, and whether it was already
//! handled), and the record of the outcome. The queue itself is Postfix's;
//! `runtime` runs postsuper.

use super::audit::{self, AuditEntry};
use super::{MILTER_ACCOUNT, OpKind, Result, Store};
use crate::domain::MessageKey;
use rusqlite::{OptionalExtension, params};

/// A milter row as release and delete see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilterHeld {
    /// Postfix queue id.
    pub queue_id: Option<String>,
    /// The reply given (only `hold` can be released or deleted).
    pub reply: String,
    /// released | deleted | gone, once handled.
    pub disposition: Option<String>,
    /// Where the row's key points (for the audit row).
    pub key: MessageKey,
}

impl Store {
    /// The milter decision behind a message row; `None` for other rows.
    pub async fn milter_held(&self, message: i64) -> Result<Option<MilterHeld>> {
        self.call(move |c, _| {
            Ok(c.query_row(
                "SELECT d.queue_id, d.reply, m.disposition, m.mailbox, m.uidvalidity, m.uid
                 FROM milter_decisions d JOIN messages m ON m.id = d.message
                 WHERE d.message = ?1 AND m.account = ?2",
                params![message, MILTER_ACCOUNT],
                |r| {
                    Ok(MilterHeld {
                        queue_id: r.get(0)?,
                        reply: r.get(1)?,
                        disposition: r.get(2)?,
                        key: MessageKey {
                            account: MILTER_ACCOUNT.into(),
                            mailbox: r.get(3)?,
                            uidvalidity: r.get(4)?,
                            uid: r.get(5)?,
                        },
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Records the outcome of postsuper on held mail (`state`: done, gone
    /// or refused): done leaves the quarantine list as released or deleted,
    /// gone (no longer held: handled outside Postern) as gone; every
    /// outcome is an audit row (`release_done`, `delete_gone`, …) naming the actor.
    pub async fn finish_milter_op(&self, message: i64, kind: OpKind, actor: &str, state: &str, detail: &str) -> Result<()> {
        let (actor, detail, state) = (actor.to_string(), detail.to_string(), state.to_string());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let key: MessageKey = tx.query_row(
                "SELECT mailbox, uidvalidity, uid FROM messages WHERE id = ?1",
                params![message],
                |r| {
                    Ok(MessageKey {
                        account: MILTER_ACCOUNT.into(),
                        mailbox: r.get(0)?,
                        uidvalidity: r.get(1)?,
                        uid: r.get(2)?,
                    })
                },
            )?;
            let disposition = match (state.as_str(), kind) {
                ("done", OpKind::Release) => Some("released"),
                ("done", _) => Some("deleted"),
                ("gone", _) => Some("gone"),
                _ => None,
            };
            if let Some(disposition) = disposition {
                tx.execute(
                    "UPDATE messages SET quarantined = 0, disposition = ?2, updated_at = ?3 WHERE id = ?1",
                    params![message, disposition, ctx.now],
                )?;
            }
            let event = format!("{}_{state}", kind.as_str());
            let mut e = AuditEntry::message(&key, Some(message), &event, detail);
            e.actor = actor;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
