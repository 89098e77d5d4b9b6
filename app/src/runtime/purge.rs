//! Search and purge (issue 17, item 5): an operator searches every watched
//! mailbox by sender, subject, Message-ID, URL or attachment hash, sees a
//! dry-run count per mailbox, then moves the matches to quarantine. The
//! search runs on IMAP (each account through its own login path); the moves
//! run on each account's runner, so they are audited per message, keep an
//! EML copy first, and honour shadow mode (nothing moves, it is recorded).

use super::{Runtime, RuntimeError};
use crate::manager::{Candidate, Criterion, SearchError};
use crate::store::{PurgeHit, PurgeRefusal};
pub use crate::store::{PurgeItemRow, PurgeJobRow};

/// The longest search text accepted.
pub const MAX_SEARCH_LEN: usize = 512;
/// Jobs listed on the page.
const RECENT_JOBS: u32 = 20;

/// A job with its matching messages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PurgeView {
    /// The job and its progress.
    #[serde(flatten)]
    pub job: PurgeJobRow,
    /// Its matching messages and what became of each.
    pub items: Vec<PurgeItemRow>,
}

/// The operator's text, checked and normalised for its criterion.
fn normalise(criterion: Criterion, value: &str) -> Result<String, RuntimeError> {
    let bad = |m: &str| Err(RuntimeError::Invalid(m.to_string()));
    // IMAP strings cannot carry these in any form; refusing here means a
    // hostile value never reaches a server at all.
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return bad("the search text contains a line break or NUL, which IMAP cannot carry; nothing was searched");
    }
    let v = value.trim();
    if v.is_empty() {
        return bad("enter something to search for");
    }
    if v.len() > MAX_SEARCH_LEN {
        return bad("the search text is too long (at most 512 bytes)");
    }
    Ok(match criterion {
        Criterion::MessageId => v.trim_start_matches('<').trim_end_matches('>').to_string(),
        Criterion::Sha256 => {
            let h = v.to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("an attachment hash is 64 hexadecimal characters (SHA-256)");
            }
            h
        }
        _ => v.to_string(),
    })
}

impl Runtime {
    /// Searches every running account's watched folders: the dry run. The
    /// job records the count per mailbox and every match; nothing moves.
    pub async fn purge_search(&self, criterion: &str, value: &str, actor: &str) -> Result<PurgeView, RuntimeError> {
        let c = Criterion::parse(criterion).ok_or_else(|| RuntimeError::Invalid(format!("unknown search criterion {criterion:?}")))?;
        let value = normalise(c, value)?;
        let candidates: Vec<(String, String, u32, u32)> = match c {
            Criterion::Url => self.store.purge_candidates("url", &value, true).await?,
            Criterion::Sha256 => self.store.purge_candidates("sha256", &value, false).await?,
            _ => Vec::new(),
        };
        let shadow = self.shadow_accounts().await?;
        let (mut counts, mut hits) = (Vec::new(), Vec::new());
        for account in self.manager.accounts() {
            let mine: Vec<Candidate> = candidates
                .iter()
                .filter(|k| k.0 == account)
                .map(|k| (k.1.clone(), k.2, k.3))
                .collect();
            let in_shadow = shadow.contains(&account);
            match self.manager.search(&account, c, &value, &mine).await {
                Ok(folders) => {
                    for f in folders {
                        counts.push(serde_json::json!({
                            "account": account, "mailbox": f.mailbox, "matches": f.uids.len(),
                            "shadow": in_shadow, "error": f.error,
                        }));
                        if let Some(v) = f.uidvalidity {
                            hits.extend(f.uids.iter().map(|u| PurgeHit {
                                account: account.clone(),
                                mailbox: f.mailbox.clone(),
                                uidvalidity: v,
                                uid: *u,
                            }));
                        }
                    }
                }
                Err(SearchError::Argument(a)) => return Err(RuntimeError::Invalid(format!("cannot search for that text: {a}"))),
                Err(e) => counts.push(serde_json::json!({
                    "account": account, "mailbox": null, "matches": 0, "shadow": in_shadow, "error": e.to_string(),
                })),
            }
        }
        let id = self
            .store
            .create_purge_job(c.as_str(), &value, actor, serde_json::Value::Array(counts), hits)
            .await?;
        self.purge_view(id)
            .await?
            .ok_or_else(|| RuntimeError::Invalid(format!("purge job #{id} vanished")))
    }

    /// Moves a dry run's matches to quarantine: each account's runner does
    /// its own, audited per message. Returns at once; progress is on the job.
    pub async fn purge_start(&self, id: i64, actor: &str) -> Result<PurgeView, RuntimeError> {
        match self.store.start_purge(id, actor).await? {
            Ok(accounts) => {
                for a in accounts {
                    // An account that is not running keeps its items pending
                    // until it starts, like any other queued action.
                    self.manager.nudge(&a);
                }
            }
            Err(PurgeRefusal::NoJob) => return Err(RuntimeError::Invalid(format!("no purge job #{id}"))),
            Err(PurgeRefusal::Started) => return Err(RuntimeError::Invalid(format!("purge job #{id} has already been started"))),
        }
        self.purge_view(id)
            .await?
            .ok_or_else(|| RuntimeError::Invalid(format!("no purge job #{id}")))
    }

    /// One job with its matches.
    pub async fn purge_view(&self, id: i64) -> Result<Option<PurgeView>, RuntimeError> {
        let Some(job) = self.store.purge_job(id).await? else {
            return Ok(None);
        };
        let items = self.store.purge_items(id).await?;
        Ok(Some(PurgeView { job, items }))
    }

    /// One job's progress only (the live view polls this).
    pub async fn purge_progress(&self, id: i64) -> Result<Option<PurgeJobRow>, RuntimeError> {
        Ok(self.store.purge_job(id).await?)
    }

    /// The newest jobs.
    pub async fn purge_jobs(&self) -> Result<Vec<PurgeJobRow>, RuntimeError> {
        Ok(self.store.purge_jobs(RECENT_JOBS).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_checked_before_any_server_sees_it() {
        for hostile in ["x\r\nA1 LOGOUT", "x\nUID EXPUNGE 1:*", "a\0b"] {
            assert!(normalise(Criterion::Subject, hostile).is_err(), "{hostile:?}");
        }
        assert!(normalise(Criterion::Sender, "   ").is_err());
        assert!(normalise(Criterion::Sender, &"a".repeat(MAX_SEARCH_LEN + 1)).is_err());
        // Quotes and literal syntax are text: they are quoted on the wire.
        assert_eq!(normalise(Criterion::Subject, " \"x\" {5} ").unwrap(), "\"x\" {5}");
        assert_eq!(normalise(Criterion::MessageId, "<a@b>").unwrap(), "a@b");
        assert!(normalise(Criterion::Sha256, "abc").is_err());
        assert_eq!(normalise(Criterion::Sha256, &"AB".repeat(32)).unwrap(), "ab".repeat(32));
    }
}
