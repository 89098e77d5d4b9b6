//! Campaign-wide actions (issue 17, item 4) besides release: quarantine
//! everywhere and block the senders. Quarantining goes through each
//! account's runner like every claw-back (found wherever the user filed
//! it, confirmed by content hash, an EML copy kept, audited per message);
//! a shadow account's mail is never moved, and says so in the audit log.

use super::{Runtime, RuntimeError};
use crate::store::{AuditEntry, OpState, QuarantineRequest};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long the verb waits for the runners before it answers (the moves
/// that take longer still happen; the campaign view shows them).
const WAIT: Duration = Duration::from_secs(20);
/// Longest sender address put on the block list (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// A sender address fit for the block list: `user@domain.tld`, lower-case.
fn block_pattern(from: &str) -> Option<String> {
    let a = from.trim().to_ascii_lowercase();
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && a.len() <= MAX_ADDRESS
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.contains('@');
    ok.then_some(a)
}

impl Runtime {
    async fn campaign_or_invalid(&self, id: i64) -> Result<super::CampaignView, RuntimeError> {
        self.campaign(id)
            .await?
            .ok_or_else(|| RuntimeError::Invalid(format!("no campaign #{id}")))
    }

    /// Quarantines every member of a campaign that is not in quarantine yet,
    /// in every mailbox. Returns one line per member it concerned.
    pub async fn quarantine_campaign(&self, id: i64, actor: &str) -> Result<Vec<String>, RuntimeError> {
        let c = self.campaign_or_invalid(id).await?;
        let shadow = self.shadow_accounts().await?;
        let reason = format!("campaign #{id} quarantined everywhere by {actor}");
        let mut out = Vec::new();
        let mut queued = Vec::new();
        for m in c.messages.iter().filter(|m| !m.quarantined) {
            let line = if m.account == crate::store::MILTER_ACCOUNT {
                "seen in-line by the milter, not in a mailbox; nothing to move".to_string()
            } else if shadow.contains(&m.account) {
                let why = format!(
                    "{reason}: account {} is in shadow mode, Postern never moves its mail; left in place",
                    m.account
                );
                if let Some(d) = self.store.message_detail(m.id).await? {
                    let key = crate::domain::MessageKey {
                        account: d.summary.account.clone(),
                        mailbox: d.summary.mailbox.clone(),
                        uidvalidity: d.uidvalidity,
                        uid: d.uid,
                    };
                    let mut e = AuditEntry::message(&key, Some(m.id), "operator_quarantine_not_done", why);
                    e.actor = actor.to_string();
                    self.store.audit(e).await?;
                }
                "shadow mode: not moved".to_string()
            } else {
                match self.store.request_quarantine(m.id, &reason, actor).await? {
                    QuarantineRequest::Queued(op) => {
                        queued.push((m.id, m.account.clone(), op));
                        continue;
                    }
                    QuarantineRequest::Missing => "no such message".to_string(),
                    QuarantineRequest::AlreadyQuarantined => "already in quarantine".to_string(),
                    QuarantineRequest::Gone => "deleted or gone from the mailbox; nothing to move".to_string(),
                    QuarantineRequest::Busy => "another action on it is still running; try again".to_string(),
                }
            };
            out.push(format!("#{} ({}): {line}", m.id, m.account));
        }
        let accounts: BTreeSet<&str> = queued.iter().map(|(_, a, _)| a.as_str()).collect();
        let running: BTreeSet<&str> = accounts.into_iter().filter(|a| self.manager.nudge(a)).collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        for (message, account, op) in &queued {
            let line = loop {
                if let Some((state, detail)) = self.store.op_state(*op).await?
                    && state != OpState::Pending
                {
                    break format!("{} {}", state.as_str(), detail.unwrap_or_default());
                }
                if !running.contains(account.as_str()) {
                    break "queued; the account is not running, it will happen when it starts".to_string();
                }
                if tokio::time::Instant::now() >= deadline {
                    break "queued; the account's connection is busy or reconnecting".to_string();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            out.push(format!("#{message} ({account}): {line}"));
        }
        Ok(out)
    }

    /// Puts every sender of a campaign on the block list (the watched
    /// accounts' own addresses excepted: a forwarded copy's From is the
    /// user) and applies it. Returns one line per sender.
    pub async fn block_campaign_senders(&self, id: i64, actor: &str) -> Result<Vec<String>, RuntimeError> {
        let c = self.campaign_or_invalid(id).await?;
        let own: BTreeSet<String> = self
            .store
            .accounts()
            .await?
            .into_iter()
            .flat_map(|a| [Some(a.user), a.digest_to])
            .flatten()
            .map(|u| u.to_ascii_lowercase())
            .collect();
        let reason = format!("sender of campaign #{id}");
        let (mut out, mut added) = (Vec::new(), 0);
        for s in &c.campaign.senders {
            let line = match block_pattern(s) {
                None => format!("{s}: not an address that can be blocked"),
                Some(p) if own.contains(&p) => format!("{p}: a watched account's own address; not blocked"),
                Some(p) => match self.store.add_list_entry("block", &p, &reason, actor).await? {
                    Some(_) => {
                        added += 1;
                        format!("{p}: blocked")
                    }
                    None => format!("{p}: already on the block list"),
                },
            };
            out.push(line);
        }
        if added > 0 {
            self.rebuild().await?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_addresses_go_on_the_block_list() {
        assert_eq!(block_pattern(" Phish@Evil.Example "), Some("phish@evil.example".into()));
        for bad in [
            "",
            "no-address",
            "@evil.example",
            "a@localhost",
            "a b@evil.example",
            "a@.example",
            "a@evil.",
        ] {
            assert_eq!(block_pattern(bad), None, "{bad:?}");
        }
        assert_eq!(block_pattern(&format!("{}@evil.example", "a".repeat(250))), None);
    }
}
