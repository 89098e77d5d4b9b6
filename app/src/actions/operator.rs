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
        // A release whose connection ended after its move, before the
        // server's reply: it is back already.
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
        return Ok(outcome(OpState::Gone, not_found(op, folder, eml_dir)));
    };
    match op.kind {
        OpKind::Release => {
            let dest = &op.key.mailbox;
            conn.ensure_mailbox(dest).await?;
            conn.select(folder).await?;
            // A release cut off between its COPY and its EXPUNGE: the
            // copy is back already, only the quarantined one goes.
            if !conn.has("MOVE")
                && let (Some(back), _) = super::earlier_copy(conn, folder, dest, op.message_id.as_deref(), &op.sha256).await?
            {
                conn.expunge_uid(uid).await?;
                return Ok(OpOutcome {
                    state: OpState::Done,
                    location: Some((dest.clone(), Some(back))),
                    eml_path: None,
                    detail: format!("already copied back to {dest} as UID {back} by an earlier attempt; removed UID {uid} from {folder}"),
                });
            }
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

/// Why the op's message is not in its folder, as far as Postern can tell.
/// A delete whose earlier attempt was cut off may have been cut off after
/// its EXPUNGE, so "nothing touched" would not be known to be true.
fn not_found(op: &Op, folder: &str, eml_dir: &Path) -> String {
    match (&op.earlier_failure, op.kind) {
        (Some(failure), OpKind::Delete) => {
            let copy = eml::existing(eml_dir, &op.key.account, &op.sha256).map_or("no EML copy is on disk".into(), |p| {
                format!("its EML copy is kept at {}", p.display())
            });
            format!(
                "not found in {folder}: an earlier attempt of this delete did not finish (it failed: {failure}) and may have expunged it; {copy}"
            )
        }
        _ => format!("not found in {folder} (moved or deleted outside Postern); nothing touched"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageKey;

    fn op(kind: OpKind, earlier_failure: Option<&str>) -> Op {
        Op {
            id: 1,
            message: 1,
            key: MessageKey {
                account: "a".into(),
                mailbox: "INBOX".into(),
                uidvalidity: 7,
                uid: 3,
            },
            kind,
            actor: "admin:test".into(),
            location: ("Quarantine".into(), Some(4)),
            message_id: None,
            sha256: "ab".repeat(32),
            eml_path: None,
            reason: None,
            earlier_failure: earlier_failure.map(str::to_string),
        }
    }

    #[test]
    fn a_delete_cut_off_earlier_does_not_claim_nothing_was_touched() {
        let dir = tempfile::tempdir().unwrap();
        let first = op(OpKind::Delete, None);
        assert!(not_found(&first, "Quarantine", dir.path()).ends_with("nothing touched"));
        let release = op(OpKind::Release, Some("connection lost"));
        assert!(not_found(&release, "Quarantine", dir.path()).ends_with("nothing touched"));

        let retried = op(OpKind::Delete, Some("i/o: connection reset"));
        let said = not_found(&retried, "Quarantine", dir.path());
        assert!(!said.contains("nothing touched"), "{said}");
        assert!(
            said.contains("(it failed: i/o: connection reset) and may have expunged it"),
            "{said}"
        );
        assert!(said.ends_with("no EML copy is on disk"), "{said}");

        let copy = eml::store(dir.path(), "a", &retried.sha256, b"Subject: x\r\n\r\nbody").unwrap();
        let said = not_found(&retried, "Quarantine", dir.path());
        assert!(said.ends_with(&format!("its EML copy is kept at {}", copy.display())), "{said}");
    }
}
