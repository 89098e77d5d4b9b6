//! Operator actions on quarantined mail. Like intents, each one re-checks
//! the world first: the message must still be where Postern left it, with
//! the same content hash, or nothing is touched.

use super::{AtUid, confirm_at, find_copy};
use crate::imap::{Conn, ImapError};
use crate::store::{Op, OpKind, OpState, eml};
use std::path::Path;

/// How an op ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpOutcome {
    /// Final state.
    pub state: OpState,
    /// Where a released message landed.
    pub location: Option<(String, Option<u32>)>,
    /// The EML copy, when one had to be written just now.
    pub eml_path: Option<String>,
    /// For the audit log and the operator.
    pub detail: String,
}

fn outcome(state: OpState, detail: String) -> OpOutcome {
    OpOutcome {
        state,
        location: None,
        eml_path: None,
        detail,
    }
}

/// Executes one op on `conn`. Transport errors are returned (the op stays
/// pending); every decided outcome comes back as [`OpOutcome`].
pub async fn execute_op(conn: &mut Conn, op: &Op, eml_dir: &Path) -> Result<OpOutcome, ImapError> {
    if matches!(op.kind, OpKind::Recheck | OpKind::Quarantine) {
        // Rechecks need the decider; the runner sends them (and operator
        // quarantines, which search like them) to `recheck`.
        return Ok(outcome(OpState::Refused, "a recheck is not an operator action".into()));
    }
    let (folder, known_uid) = (&op.location.0, op.location.1);
    match conn.select(folder).await {
        Ok(_) => {}
        Err(ImapError::Refused { detail, .. }) => {
            return Ok(outcome(OpState::Gone, format!("folder {folder} is gone: {detail}")));
        }
        Err(e) => return Err(e),
    }
    let Some((uid, raw)) = locate(conn, folder, known_uid, op).await? else {
        // A release whose connection ended after its move (GNU imap4d
        // answers EXPUNGE with a line no parser takes): it is back already.
        if op.kind == OpKind::Release
            && let Some(back) = super::find_copy(conn, &op.key.mailbox, op.message_id.as_deref(), &op.sha256).await?
        {
            return Ok(OpOutcome {
                state: OpState::Done,
                location: Some((op.key.mailbox.clone(), Some(back))),
                eml_path: None,
                detail: format!(
                    "already back in {} as UID {back} (an earlier attempt moved it from {folder})",
                    op.key.mailbox
                ),
            });
        }
        return Ok(outcome(
            OpState::Gone,
            format!("not found in {folder} (moved or deleted outside Postern); nothing touched"),
        ));
    };
    match op.kind {
        OpKind::Release => {
            let dest = &op.key.mailbox;
            conn.ensure_mailbox(dest).await?;
            conn.select(folder).await?;
            let moved = conn.move_uid(uid, dest).await?;
            let new_uid = moved.new_uid.map_or("unknown".into(), |u| u.to_string());
            Ok(OpOutcome {
                state: OpState::Done,
                location: Some((dest.clone(), moved.new_uid)),
                eml_path: None,
                detail: format!("moved from {folder} UID {uid} back to {dest} (new UID {new_uid})"),
            })
        }
        OpKind::Recheck | OpKind::Quarantine => Ok(outcome(OpState::Refused, "a recheck is not an operator action".into())),
        OpKind::Delete => {
            let copy = keep_copy(op, eml_dir, raw).await.map_err(|e| ImapError::Refused {
                command: "delete".into(),
                detail: format!("no stored copy and cannot write one ({e}); not deleted"),
            })?;
            conn.expunge_uid(uid).await?;
            Ok(OpOutcome {
                eml_path: Some(copy.clone()),
                ..outcome(OpState::Done, format!("expunged UID {uid} from {folder}; EML copy kept at {copy}"))
            })
        }
    }
}

/// Finds the op's message in the selected folder: first at its recorded UID,
/// then by Message-ID; either way the content hash must match.
pub(super) async fn locate(conn: &mut Conn, folder: &str, known_uid: Option<u32>, op: &Op) -> Result<Option<(u32, Vec<u8>)>, ImapError> {
    if let Some(uid) = known_uid
        && let AtUid::Same(raw) = confirm_at(conn, uid, &op.sha256).await?
    {
        return Ok(Some((uid, raw)));
    }
    let Some(uid) = find_copy(conn, folder, op.message_id.as_deref(), &op.sha256).await? else {
        return Ok(None);
    };
    conn.select(folder).await?;
    let raw = conn
        .fetch_bodies(&[uid])
        .await?
        .into_iter()
        .find(|f| f.uid == uid)
        .map(|f| std::sync::Arc::unwrap_or_clone(f.raw));
    Ok(raw.map(|r| (uid, r)))
}

/// A message is never deleted without a stored copy: reuse the one taken at
/// quarantine time, or write one now from the bytes just verified.
pub(super) async fn keep_copy(op: &Op, eml_dir: &Path, raw: Vec<u8>) -> std::io::Result<String> {
    if let Some(p) = op.eml_path.as_deref()
        && tokio::fs::metadata(p).await.is_ok_and(|m| m.len() > 0)
    {
        return Ok(p.to_string());
    }
    let (dir, account, sha) = (eml_dir.to_path_buf(), op.key.account.clone(), op.sha256.clone());
    let path = tokio::task::spawn_blocking(move || eml::store(&dir, &account, &sha, &raw))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    Ok(path.to_string_lossy().into_owned())
}
