//! Release and delete of mail the milter put in Postfix's hold queue
//! (issue 19). The dashboard's buttons on a `milter` row come here instead
//! of an account runner: release is `postsuper -H QUEUEID` (Postfix then
//! delivers it as usual, with the verdict headers the milter added), delete
//! is `postsuper -d QUEUEID hold` (only from the hold queue, so a message
//! already released is never deleted by a stale click). Both are audited
//! with the operator's name; the EML copy stays, as for IMAP quarantine.

use super::Runtime;
use super::quarantine::{OpError, OpResult};
use crate::domain::Event;
use crate::store::OpKind;
use std::time::Duration;

/// postsuper finishes in milliseconds; past this something is wrong.
const POSTSUPER_TIMEOUT: Duration = Duration::from_secs(30);

/// A Postfix queue id: hex (short ids) or base-52-ish letters and digits
/// (long ids). Anything else never reaches the command line.
fn valid_queue_id(q: &str) -> bool {
    !q.is_empty() && q.len() <= 32 && q.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether postsuper's report says it released or deleted one message
/// (`postsuper: Released from hold: 1 message`, `postsuper: Deleted: 1 message`).
fn handled(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        ["Released from hold: ", "Deleted: "].iter().any(|p| {
            l.split_once(p)
                .and_then(|(_, n)| n.split_whitespace().next()?.parse::<u32>().ok())
                .is_some_and(|n| n >= 1)
        })
    })
}

impl Runtime {
    /// `postqueue -i QUEUEID`: postsuper -H moves mail to the deferred
    /// queue, which Postfix would otherwise retry only at its next queue
    /// run (minutes). A failure here delays the mail, it does not lose it.
    async fn flush(&self, qid: &str) -> String {
        let cmd = &self.settings.milter.postqueue;
        let Some((program, fixed)) = cmd.split_first() else {
            return "delivery at Postfix's next queue run".into();
        };
        let run = tokio::process::Command::new(program)
            .args(fixed)
            .args(["-i", qid])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(POSTSUPER_TIMEOUT, run).await {
            Ok(Ok(out)) if out.status.success() => "delivery scheduled now (postqueue -i)".into(),
            Ok(Ok(out)) => format!(
                "postqueue -i failed ({}), delivery at Postfix's next queue run",
                String::from_utf8_lossy(&out.stderr).trim().chars().take(200).collect::<String>()
            ),
            Ok(Err(e)) => format!("cannot run postqueue ({e}), delivery at Postfix's next queue run"),
            Err(_) => "postqueue -i timed out, delivery at Postfix's next queue run".into(),
        }
    }

    /// Releases or deletes held in-line mail through postsuper.
    pub(super) async fn milter_op(&self, message: i64, kind: OpKind, actor: &str) -> Result<OpResult, OpError> {
        let held = self.store.milter_held(message).await?.ok_or(OpError::NotFound)?;
        let qid = match (&held.queue_id, held.reply.as_str(), &held.disposition) {
            (Some(q), "hold", None) if valid_queue_id(q) => q.clone(),
            _ => return Err(OpError::NotQuarantined),
        };
        let args: Vec<&str> = match kind {
            OpKind::Release => vec!["-H", &qid],
            OpKind::Delete => vec!["-d", &qid, "hold"],
            OpKind::Recheck | OpKind::Quarantine => return Err(OpError::NotQuarantined),
        };
        let cmd = &self.settings.milter.postsuper;
        let Some((program, fixed)) = cmd.split_first() else {
            return Err(OpError::NotQuarantined);
        };
        let run = tokio::process::Command::new(program)
            .args(fixed)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let shown = format!("{} {}", cmd.join(" "), args.join(" "));
        let (state, detail) = match tokio::time::timeout(POSTSUPER_TIMEOUT, run).await {
            Ok(Ok(out)) if out.status.success() => {
                // postsuper exits 0 also when the id is no longer held; it
                // says how many it handled ("Released from hold: 1 message").
                let said = String::from_utf8_lossy(&out.stderr);
                match (handled(&said), kind) {
                    (true, OpKind::Release) => (
                        "done",
                        format!("released from Postfix's hold queue ({shown}); {}", self.flush(&qid).await),
                    ),
                    (true, _) => ("done", format!("deleted from Postfix's hold queue ({shown})")),
                    (false, _) => ("gone", format!("no longer in Postfix's hold queue ({shown}: {})", said.trim())),
                }
            }
            Ok(Ok(out)) => {
                let err = String::from_utf8_lossy(&out.stderr);
                (
                    "refused",
                    format!(
                        "{shown} failed ({}): {}",
                        out.status,
                        err.trim().chars().take(300).collect::<String>()
                    ),
                )
            }
            Ok(Err(e)) => ("refused", format!("cannot run {shown}: {e}")),
            Err(_) => (
                "refused",
                format!("{shown} did not finish within {} s", POSTSUPER_TIMEOUT.as_secs()),
            ),
        };
        self.store.finish_milter_op(message, kind, actor, state, &detail).await?;
        let _ = self.events.send(Event::Updated { id: message });
        Ok(OpResult {
            op: message,
            state,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postsuper_reports_and_queue_ids() {
        assert!(handled("postsuper: Released from hold: 1 message\n"));
        assert!(handled("postsuper: Deleted: 1 message\n"));
        assert!(!handled("postsuper: Released from hold: 0 messages\n"));
        assert!(!handled("postsuper: Deleted: 0 messages\n"));
        assert!(!handled(""));
        assert!(valid_queue_id("A38D099602B") && valid_queue_id("4QxYz1234Z"));
        assert!(!valid_queue_id("") && !valid_queue_id("A38D; rm -rf /") && !valid_queue_id("-d"));
    }
}
