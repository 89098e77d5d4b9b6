//! Claw-back: a message Postern let through is scanned again (new feed
//! entries, a new IOC, new YARA rules, or a scheduled re-scan). It is found
//! wherever the user has moved it, by UID first and then by Message-ID
//! across every folder, always confirmed by content hash, and moved to
//! quarantine only on positive evidence: a re-check that failed closed
//! because a scanner was down never moves mail the user may be reading.

use super::find_copy;
use super::operator::{keep_copy, locate};
use crate::config::AccountConfig;
use crate::domain::{Decision, Verdict};
use crate::imap::{Conn, ImapError};
use crate::scan::{Decider, ScanRequest};
use crate::store::{Op, OpState, RecheckOutcome};
use std::path::Path;

fn ended(state: OpState, detail: String) -> RecheckOutcome {
    RecheckOutcome {
        state,
        decision: None,
        moved_to: None,
        eml_path: None,
        detail,
    }
}

/// Finds the message: where Postern last saw it, then every other folder.
async fn find(conn: &mut Conn, acct: &AccountConfig, op: &Op) -> Result<Option<(String, u32, Vec<u8>)>, ImapError> {
    let (home, known) = (&op.location.0, op.location.1);
    match conn.select(home).await {
        Ok(sel) => {
            // The arrival UID is only good in the same mailbox generation.
            let uid = known.or((home == &op.key.mailbox && sel.uidvalidity == op.key.uidvalidity).then_some(op.key.uid));
            if let Some((uid, raw)) = locate(conn, home, uid, op).await? {
                return Ok(Some((home.clone(), uid, raw)));
            }
        }
        Err(ImapError::Refused { .. }) => {}
        Err(e) => return Err(e),
    }
    let skip = [home, &acct.quarantine_folder, &acct.hold_folder];
    for folder in conn.list_mailboxes().await? {
        // LIST gives the server's names (`INBOX.Quarantine` under a namespace).
        if skip.iter().any(|s| **s == folder || conn.resolved(s) == folder) {
            continue;
        }
        match find_copy(conn, &folder, op.message_id.as_deref(), &op.sha256).await {
            Ok(Some(uid)) => {
                conn.select(&folder).await?;
                if let Some(f) = conn.fetch_bodies(&[uid]).await?.into_iter().find(|f| f.uid == uid) {
                    return Ok(Some((folder, uid, std::sync::Arc::unwrap_or_clone(f.raw))));
                }
            }
            Ok(None) | Err(ImapError::Refused { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// A critical scanner failed: the verdict says nothing about the content.
fn inconclusive(d: &Decision) -> Option<String> {
    d.reports
        .iter()
        .find(|r| r.critical && r.error.is_some())
        .map(|r| format!("{} failed: {}", r.scanner, r.error.as_deref().unwrap_or("")))
}

/// Re-checks one message. Transport errors are returned (the op stays
/// pending); everything else ends in a [`RecheckOutcome`].
pub async fn recheck(
    conn: &mut Conn,
    acct: &AccountConfig,
    op: &Op,
    decider: &dyn Decider,
    eml_dir: &Path,
) -> Result<RecheckOutcome, ImapError> {
    let Some((folder, uid, raw)) = find(conn, acct, op).await? else {
        return Ok(ended(
            OpState::Gone,
            "not found in any folder (deleted by the user?); nothing touched".into(),
        ));
    };
    let req = ScanRequest {
        account: &acct.name,
        mailbox: &folder,
        raw: &raw,
    };
    let d = match decider.decide(req).await {
        Ok(d) => d,
        Err(e) => return Ok(ended(OpState::Refused, format!("re-scan failed: {e}; left in {folder}"))),
    };
    if let Some(why) = inconclusive(&d) {
        return Ok(RecheckOutcome {
            detail: format!("{why}; not acting on an incomplete re-scan, left in {folder}"),
            ..ended(OpState::Refused, String::new())
        });
    }
    if d.verdict < Verdict::Quarantine {
        return Ok(RecheckOutcome {
            detail: format!("found in {folder} UID {uid}; still {} ({}); nothing moved", d.verdict, d.reason),
            decision: Some(d),
            ..ended(OpState::Done, String::new())
        });
    }
    let why = format!("{} ({})", d.verdict, d.reason);
    let mut out = to_quarantine(conn, acct, op, eml_dir, (folder, uid, raw), &why).await?;
    if out.moved_to.is_some() {
        out.decision = Some(d);
    }
    Ok(out)
}

/// Moves a found message to quarantine, after keeping an EML copy.
async fn to_quarantine(
    conn: &mut Conn,
    acct: &AccountConfig,
    op: &Op,
    eml_dir: &Path,
    (folder, uid, raw): (String, u32, Vec<u8>),
    why: &str,
) -> Result<RecheckOutcome, ImapError> {
    let copy = keep_copy(op, eml_dir, raw).await.map_err(|e| ImapError::Refused {
        command: op.kind.as_str().into(),
        detail: format!("cannot keep an EML copy ({e}); not moved"),
    })?;
    let dest = &acct.quarantine_folder;
    conn.ensure_mailbox(dest).await?;
    conn.select(&folder).await?;
    let moved = conn.move_uid(uid, dest).await?;
    Ok(RecheckOutcome {
        state: OpState::Done,
        detail: format!("found in {folder} UID {uid}, moved to {dest}: {why}"),
        decision: None,
        moved_to: Some((dest.clone(), moved.new_uid)),
        eml_path: Some(copy),
    })
}

/// Quarantines one message on an operator's word (a campaign quarantined
/// everywhere): found wherever the user filed it, like a recheck, always
/// confirmed by content hash, but not re-scanned: the operator decided.
/// Transport errors are returned (the op stays pending).
pub async fn quarantine(conn: &mut Conn, acct: &AccountConfig, op: &Op, eml_dir: &Path) -> Result<RecheckOutcome, ImapError> {
    let Some(found) = find(conn, acct, op).await? else {
        return Ok(ended(
            OpState::Gone,
            "not found in any folder (deleted by the user?); nothing touched".into(),
        ));
    };
    to_quarantine(conn, acct, op, eml_dir, found, "on the operator's word, not re-scanned").await
}
