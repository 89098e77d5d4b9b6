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

use crate::config::{AccountConfig, DEFAULT_FLAG_KEYWORD, JunkFolder};
use crate::domain::{Action, Mode, Verdict};
use crate::failpoint;
use crate::imap::{Conn, ImapError};
use crate::store::{Intent, IntentState};
use sha2::{Digest, Sha256};

mod operator;
mod recheck;
pub use operator::{OpOutcome, execute_op};
pub use recheck::{quarantine, recheck};

/// Marker added with the flag verdict's keyword so users and filters can
/// tell who marked the message.
pub const FLAG_KEYWORD: &str = "$PosternFlagged";

/// The registered keyword for spam (RFC 5788 registry): set on every junk
/// verdict, so a client filtering on keywords agrees with the folder.
pub const JUNK_KEYWORD: &str = "$Junk";

/// Where the junk verdict moves mail: the configured folder, none when
/// `junk_folder: off`, else `discovered` (the server's `\Junk` folder, found
/// by the account's listener when it connects).
pub fn junk_destination(account: &AccountConfig, discovered: Option<&str>) -> Option<String> {
    match &account.junk_folder {
        JunkFolder::Off => None,
        JunkFolder::Folder(f) => Some(f.clone()),
        JunkFolder::Auto => discovered.map(str::to_string),
    }
}

/// What to do about a verdict. Shadow mode and observe-only scans never act.
/// `junk` is the account's discovered `\Junk` folder, if any.
pub fn plan(verdict: Verdict, account: &AccountConfig, observe_only: bool, junk: Option<&str>) -> Option<Action> {
    if observe_only || account.mode == Mode::Shadow {
        return None;
    }
    match verdict {
        Verdict::Pass => None,
        Verdict::Flag => Some(Action::Flag {
            keyword: account.flag_keyword.as_deref().unwrap_or(DEFAULT_FLAG_KEYWORD).into(),
        }),
        Verdict::Junk => Some(Action::Junk {
            folder: junk_destination(account, junk),
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

/// The action as it should run now: a move goes to the account's current
/// quarantine or hold folder, not the one configured when it was decided,
/// so a folder renamed in the configuration does not keep a pending action
/// failing (issue 15, defect 3).
pub fn retarget(action: &Action, account: &AccountConfig) -> Action {
    match action {
        Action::Quarantine { .. } => Action::Quarantine {
            folder: account.quarantine_folder.clone(),
        },
        Action::Hold { .. } => Action::Hold {
            folder: account.hold_folder.clone(),
        },
        other => other.clone(),
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
        let mut detail = format!(
            "UIDVALIDITY is now {} (decision was under {}); UID {} not touched",
            sel.uidvalidity, key.uidvalidity, key.uid
        );
        // An attempt cut off after its move, before the UIDVALIDITY changed
        // (GNU imap4d renumbers a folder when another client is active):
        // the trail must not say the message was never touched. It stays
        // stale, so the re-sync still scans whatever is left in the folder.
        if let Some(folder) = intent.action.destination()
            && let Some(uid) = find_copy(conn, folder, intent.message_id.as_deref(), &intent.sha256).await?
        {
            detail = format!(
                "UIDVALIDITY is now {} (decision was under {}); not touched now, but a copy is already in {folder} \
                 as UID {uid} (an earlier attempt moved it)",
                sel.uidvalidity, key.uidvalidity
            );
        }
        return Ok(Executed {
            state: IntentState::Stale,
            location: None,
            detail,
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
            // Never `\Flagged`: clients show it as "important" (issue 14).
            Ok(mark(conn, &sel, key.uid, &[keyword, FLAG_KEYWORD]).await?)
        }
        Action::Junk { folder: None } => {
            if !present {
                return Ok(gone(intent));
            }
            let mut done = mark(conn, &sel, key.uid, &[JUNK_KEYWORD]).await?;
            done.detail.push_str("; no Junk folder for this account, left in place");
            Ok(done)
        }
        Action::Quarantine { folder } | Action::Hold { folder } | Action::Junk { folder: Some(folder) } => {
            // Gone is checked before the folder: a destination that cannot
            // be created must not keep an action on a vanished message
            // retrying (issue 15, defect 3).
            if present {
                conn.ensure_mailbox(folder).await?;
                // The keyword first, so it travels with the message.
                if matches!(intent.action, Action::Junk { .. }) {
                    mark(conn, &sel, key.uid, &[JUNK_KEYWORD]).await?;
                }
                if !conn.has("MOVE")
                    && let Some(done) = finish_copied_move(conn, intent, folder).await?
                {
                    return Ok(done);
                }
                let moved = conn.move_uid(key.uid, folder).await?;
                failpoint::hit(failpoint::AFTER_MOVE).await;
                let how = moved.how.as_str();
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

/// A COPY-based move cut off between its COPY and its EXPUNGE (a lost
/// connection, a crash) left the message in both folders; copying again
/// would leave two in the destination. When the destination already holds
/// it, only the source is removed. `None`: no earlier copy, move as usual.
async fn finish_copied_move(conn: &mut Conn, intent: &Intent, folder: &str) -> Result<Option<Executed>, ImapError> {
    let key = &intent.key;
    let (copy, sel) = earlier_copy(conn, &key.mailbox, folder, intent.message_id.as_deref(), &intent.sha256).await?;
    let Some(copy) = copy else { return Ok(None) };
    if sel.uidvalidity != key.uidvalidity {
        return Ok(Some(Executed {
            state: IntentState::Stale,
            location: None,
            detail: format!(
                "a copy is already in {folder} as UID {copy}; {} changed UIDVALIDITY meanwhile, so UID {} was not removed",
                key.mailbox, key.uid
            ),
        }));
    }
    conn.expunge_uid(key.uid).await?;
    failpoint::hit(failpoint::AFTER_MOVE).await;
    Ok(Some(Executed {
        state: IntentState::Done,
        location: Some((folder.to_string(), Some(copy))),
        detail: format!(
            "already copied to {folder} as UID {copy} by an earlier attempt; removed UID {} from {}",
            key.uid, key.mailbox
        ),
    }))
}

/// On a server without MOVE: the UID of the message's copy in `dest` left
/// by an earlier attempt, if any, with `source` selected again.
pub(crate) async fn earlier_copy(
    conn: &mut Conn,
    source: &str,
    dest: &str,
    message_id: Option<&str>,
    sha256: &str,
) -> Result<(Option<u32>, crate::imap::Selected), ImapError> {
    let copy = find_copy(conn, dest, message_id, sha256).await?;
    let sel = conn.select(source).await?;
    Ok((copy, sel))
}

/// Whether a folder with these PERMANENTFLAGS keeps `keyword`: listed, or
/// `\\*` (new keywords allowed). A SELECT without PERMANENTFLAGS means every
/// flag can be changed (RFC 3501, 7.1), so the keyword is tried.
pub fn accepts_keyword(permanent_flags: &[String], keyword: &str) -> bool {
    permanent_flags.is_empty() || permanent_flags.iter().any(|f| f == "\\*" || f.eq_ignore_ascii_case(keyword))
}

/// Adds the keywords the mailbox accepts (PERMANENTFLAGS) to `uid`; a
/// server that takes none of them leaves the message untouched.
async fn mark(conn: &mut Conn, sel: &crate::imap::Selected, uid: u32, keywords: &[&str]) -> Result<Executed, ImapError> {
    let mut flags: Vec<&str> = Vec::new();
    for k in keywords {
        if accepts_keyword(&sel.permanent_flags, k) && !flags.iter().any(|f| f.eq_ignore_ascii_case(k)) {
            flags.push(k);
        }
    }
    if flags.is_empty() {
        return Ok(Executed {
            state: IntentState::Done,
            location: None,
            detail: format!("the mailbox accepts none of {} (PERMANENTFLAGS); not marked", keywords.join(" ")),
        });
    }
    conn.add_flags(uid, &flags).await?;
    Ok(Executed {
        state: IntentState::Done,
        location: None,
        detail: format!("added {}", flags.join(" ")),
    })
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
        let got = hex::encode(Sha256::digest(f.raw.as_slice()));
        if got == sha256 {
            return Ok(AtUid::Same(std::sync::Arc::unwrap_or_clone(f.raw)));
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
    match conn.select(folder).await {
        Ok(_) => {}
        // No such folder: no earlier attempt moved anything there.
        Err(ImapError::Refused { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    let candidates = conn.search_header("Message-ID", mid).await?;
    for chunk in candidates.chunks(8) {
        for f in conn.fetch_bodies(chunk).await? {
            if hex::encode(Sha256::digest(f.raw.as_slice())) == sha256 {
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
            oauth2: None,
            folders: vec!["INBOX".into()],
            quarantine_folder: "Q".into(),
            hold_folder: "H".into(),
            mode,
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

    #[test]
    fn plan_table() {
        let e = acct(Mode::Enforce);
        assert_eq!(plan(Verdict::Pass, &e, false, None), None);
        assert_eq!(
            plan(Verdict::Quarantine, &e, false, None),
            Some(Action::Quarantine { folder: "Q".into() })
        );
        assert_eq!(plan(Verdict::Delete, &e, false, None), Some(Action::Hold { folder: "H".into() }));
        assert_eq!(
            plan(Verdict::Flag, &e, false, None),
            Some(Action::Flag {
                keyword: "$Phishing".into()
            })
        );
        assert_eq!(plan(Verdict::Delete, &e, true, None), None, "observe-only never acts");
        assert_eq!(plan(Verdict::Delete, &acct(Mode::Shadow), false, None), None, "shadow never acts");
        for v in Verdict::ALL {
            assert_eq!(plan(v, &acct(Mode::Shadow), false, Some("Junk")), None, "shadow never acts on {v}");
            assert_eq!(plan(v, &e, true, Some("Junk")), None, "observe-only never acts on {v}");
        }
    }

    #[test]
    fn junk_goes_to_the_discovered_folder_unless_configured() {
        let mut a = acct(Mode::Enforce);
        let junk = |a: &AccountConfig, found: Option<&str>| plan(Verdict::Junk, a, false, found);
        assert_eq!(
            junk(&a, Some("Spam")),
            Some(Action::Junk {
                folder: Some("Spam".into())
            })
        );
        assert_eq!(
            junk(&a, None),
            Some(Action::Junk { folder: None }),
            "no \\Junk folder: keyword only"
        );
        a.junk_folder = JunkFolder::Folder("Bulk".into());
        assert_eq!(
            junk(&a, Some("Spam")),
            Some(Action::Junk {
                folder: Some("Bulk".into())
            })
        );
        a.junk_folder = JunkFolder::Off;
        assert_eq!(junk(&a, Some("Spam")), Some(Action::Junk { folder: None }));
        a.flag_keyword = Some("$Suspicious".into());
        assert_eq!(
            plan(Verdict::Flag, &a, false, None),
            Some(Action::Flag {
                keyword: "$Suspicious".into()
            })
        );
    }

    #[test]
    fn issue_15_a_pending_move_follows_the_configured_folder() {
        let a = acct(Mode::Enforce);
        let old = Action::Quarantine {
            folder: "Old Quarantine".into(),
        };
        assert_eq!(retarget(&old, &a), Action::Quarantine { folder: "Q".into() });
        let held = Action::Hold { folder: "Old".into() };
        assert_eq!(retarget(&held, &a), Action::Hold { folder: "H".into() });
        let flag = Action::Flag { keyword: "$K".into() };
        assert_eq!(retarget(&flag, &a), flag);
    }
}
