//! From verdict to IMAP action, and the idempotent execution of one intent.
//!
//! Execution re-checks the world before touching it: the mailbox must still
//! have the UIDVALIDITY the decision was made under, and the message at the
//! UID must be the one decided, by SHA-256 of its content (the same check
//! operator actions make, [`confirm_at`]). A server that handed over the
//! wrong body for a UID therefore never gets the wrong message moved: a
//! mismatch is recorded and left for the operator (issue 18, item 7). If the
//! UID is gone, a previous attempt may already have moved it (crash after
//! MOVE, before the store recorded it), so the destination is searched by
//! Message-ID and content hash.

use crate::config::AccountConfig;
use crate::domain::{Action, Mode, Verdict};
use crate::failpoint;
use crate::imap::{Conn, ImapError};
use crate::store::{Intent, IntentState};
use sha2::{Digest, Sha256};

mod ops;
mod recheck;
pub use ops::{OpOutcome, execute_op};
pub use recheck::recheck;

/// Keyword added next to `\Flagged` so users and filters can tell who flagged.
pub const FLAG_KEYWORD: &str = "$PosternFlagged";

/// What to do about a verdict. Shadow mode and observe-only scans never act.
pub fn plan(verdict: Verdict, account: &AccountConfig, observe_only: bool) -> Option<Action> {
    if observe_only || account.mode == Mode::Shadow {
        return None;
    }
    match verdict {
        Verdict::Pass => None,
        Verdict::Flag => Some(Action::Flag {
            keyword: FLAG_KEYWORD.into(),
        }),
        Verdict::Quarantine => Some(Action::Quarantine {
            folder: account.quarantine_folder.clone(),
        }),
        // "Delete" never expunges: the message is held, with its EML stored.
        Verdict::Delete => Some(Action::Hold {
            folder: account.hold_folder.clone(),
        }),
    }
}

/// Result of executing one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Final state.
    pub state: IntentState,
    /// Where the message is now, when it moved.
    pub location: Option<(String, Option<u32>)>,
    /// For the audit log.
    pub detail: String,
}

/// Executes one intent on `conn`. Transport errors are returned (the intent
/// stays pending); every decided outcome comes back as [`Executed`].
pub async fn execute(conn: &mut Conn, intent: &Intent) -> Result<Executed, ImapError> {
    let key = &intent.key;
    let sel = match conn.select(&key.mailbox).await {
        Ok(s) => s,
        Err(ImapError::Refused { detail, .. }) => {
            return Ok(Executed {
                state: IntentState::Gone,
                location: None,
                detail: format!("mailbox {} is gone: {detail}", key.mailbox),
            });
        }
        Err(e) => return Err(e),
    };
    if sel.uidvalidity != key.uidvalidity {
        return Ok(Executed {
            state: IntentState::Stale,
            location: None,
            detail: format!(
                "UIDVALIDITY is now {} (decision was under {}); UID {} not touched",
                sel.uidvalidity, key.uidvalidity, key.uid
            ),
        });
    }
    let present = match confirm_at(conn, key.uid, &intent.sha256).await? {
        AtUid::Same(_) => true,
        AtUid::Absent => false,
        AtUid::Different(found) => {
            return Ok(Executed {
                state: IntentState::Mismatch,
                location: None,
                detail: format!(
                    "UID {} in {} holds different content (SHA-256 {found}, decided on {}); not touched, left for the operator",
                    key.uid, key.mailbox, intent.sha256
                ),
            });
        }
    };
    match &intent.action {
        Action::Flag { keyword } => {
            if !present {
                return Ok(gone(intent));
            }
            let allow_keyword = sel.permanent_flags.iter().any(|f| f == "\\*" || f.eq_ignore_ascii_case(keyword));
            let mut flags = vec!["\\Flagged"];
            if allow_keyword {
                flags.push(keyword);
            }
            conn.add_flags(key.uid, &flags).await?;
            Ok(Executed {
                state: IntentState::Done,
                location: None,
                detail: format!("added {}", flags.join(" ")),
            })
        }
        Action::Quarantine { folder } | Action::Hold { folder } => {
            conn.ensure_mailbox(folder).await?;
            if present {
                let moved = match conn.move_uid(key.uid, folder).await {
                    Ok(m) => m,
                    Err(ImapError::Unsupported(what)) => {
                        return Ok(Executed {
                            state: IntentState::Refused,
                            location: None,
                            detail: format!("server lacks {what}; message left untouched in {}", key.mailbox),
                        });
                    }
                    Err(e) => return Err(e),
                };
                failpoint::hit(failpoint::AFTER_MOVE).await;
                let how = if moved.fallback { "COPY+UID EXPUNGE" } else { "MOVE" };
                return Ok(Executed {
                    state: IntentState::Done,
                    location: Some((folder.clone(), moved.new_uid)),
                    detail: format!(
                        "moved to {folder} via {how} (new UID {})",
                        moved.new_uid.map_or("unknown".into(), |u| u.to_string())
                    ),
                });
            }
            if let Some(uid) = find_copy(conn, folder, intent.message_id.as_deref(), &intent.sha256).await? {
                return Ok(Executed {
                    state: IntentState::Done,
                    location: Some((folder.clone(), Some(uid))),
                    detail: format!("already in {folder} as UID {uid} (earlier attempt completed)"),
                });
            }
            Ok(gone(intent))
        }
    }
}

fn gone(intent: &Intent) -> Executed {
    Executed {
        state: IntentState::Gone,
        location: None,
        detail: format!(
            "UID {} no longer in {}; the user moved or deleted it",
            intent.key.uid, intent.key.mailbox
        ),
    }
}

/// What the selected folder holds at a UID, against the decided content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AtUid {
    /// No message at the UID.
    Absent,
    /// The decided message, with its bytes.
    Same(Vec<u8>),
    /// Another message (its SHA-256).
    Different(String),
}

/// Fetches the message at `uid` in the selected folder and compares its
/// SHA-256 with `sha256`: the one check every action makes before it
/// touches a message.
pub(crate) async fn confirm_at(conn: &mut Conn, uid: u32, sha256: &str) -> Result<AtUid, ImapError> {
    let mut found = None;
    for f in conn.fetch_bodies(&[uid]).await? {
        if f.uid != uid {
            continue;
        }
        let got = hex::encode(Sha256::digest(&f.raw));
        if got == sha256 {
            return Ok(AtUid::Same(f.raw));
        }
        found = Some(got);
    }
    Ok(found.map_or(AtUid::Absent, AtUid::Different))
}

/// Looks for a message in `folder` by Message-ID, confirming by hash.
pub(crate) async fn find_copy(conn: &mut Conn, folder: &str, message_id: Option<&str>, sha256: &str) -> Result<Option<u32>, ImapError> {
    let Some(mid) = message_id else {
        return Ok(None);
    };
    conn.select(folder).await?;
    let candidates = conn.search_header("Message-ID", mid).await?;
    for chunk in candidates.chunks(8) {
        for f in conn.fetch_bodies(chunk).await? {
            if hex::encode(Sha256::digest(&f.raw)) == sha256 {
                return Ok(Some(f.uid));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{StartAt, TlsMode};

    fn acct(mode: Mode) -> AccountConfig {
        AccountConfig {
            name: "a".into(),
            host: "h".into(),
            port: 993,
            tls: TlsMode::Implicit,
            tls_skip_verify: false,
            ca_file: None,
            tls_fingerprint: None,
            user: "u".into(),
            pass: "p".into(),
            folders: vec!["INBOX".into()],
            quarantine_folder: "Q".into(),
            hold_folder: "H".into(),
            mode,
            start_at: StartAt::New,
            digest: Default::default(),
            digest_to: None,
        }
    }

    #[test]
    fn plan_table() {
        let e = acct(Mode::Enforce);
        assert_eq!(plan(Verdict::Pass, &e, false), None);
        assert_eq!(
            plan(Verdict::Quarantine, &e, false),
            Some(Action::Quarantine { folder: "Q".into() })
        );
        assert_eq!(plan(Verdict::Delete, &e, false), Some(Action::Hold { folder: "H".into() }));
        assert!(matches!(plan(Verdict::Flag, &e, false), Some(Action::Flag { .. })));
        assert_eq!(plan(Verdict::Delete, &e, true), None, "observe-only never acts");
        assert_eq!(plan(Verdict::Delete, &acct(Mode::Shadow), false), None, "shadow never acts");
    }
}
