//! Glue for one message: identify → recognise or decide → keep an EML copy
//! if it will move → record decision and intent atomically.
//!
//! The action itself runs later in the account's intent runner, so the
//! decision is durable before anything touches the mailbox.

use crate::actions;
use crate::clock::SharedClock;
use crate::config::{AccountConfig, ImapTuning};
use crate::domain::{Decision, Event, EventSender, MessageKey, Mode, Verdict};
use crate::imap::Fetched;
use crate::scan::{Dates, Decider, Prepared, ScanError, Stamp};
use crate::store::{MessageMeta, NewMessage, Prior, Store, StoreError, eml};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{Instrument, info, info_span};

/// Tag recorded for mail too large to fetch and scan.
pub const TAG_SIZE_OVER_LIMIT: &str = "SIZE_OVER_LIMIT";

/// The decision recorded for a message over the scan size limit
/// (`POSTERN_MAX_MESSAGE_BYTES`): observed, not scanned. `postern scan`
/// gives the same answer for a file over the limit.
pub fn oversize_decision(size: u64, limit: u32) -> Decision {
    Decision {
        verdict: Verdict::Pass,
        tags: vec![TAG_SIZE_OVER_LIMIT.into()],
        reason: format!("{size} bytes exceeds the {limit}-byte scan limit; not fetched"),
        ..Default::default()
    }
}

/// The dependencies every account's listeners, runner and bootstrap share
/// (store, decider, tuning, clock, bus, OAuth broker), plus the per-message
/// path over them. A bundle handed to each task, not an engine of its own.
pub struct Deps {
    /// Persistence.
    pub store: Store,
    /// Decision maker.
    pub decider: Arc<dyn Decider>,
    /// IMAP tuning.
    pub tuning: ImapTuning,
    /// Where EML copies go.
    pub eml_dir: PathBuf,
    /// Time source.
    pub clock: SharedClock,
    /// Live-update bus (the dashboard subscribes).
    pub events: EventSender,
    /// Re-scan mail left in place this long after delivery (claw-back),
    /// as `(stage name, delay)`.
    pub rescan_after: Vec<(String, chrono::Duration)>,
    /// OAuth2 access tokens for accounts that log in with them.
    pub oauth: Arc<crate::oauth::TokenBroker>,
}

/// Worker failures; the listener retries the message after reconnecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fail-closed scanner could not answer.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// EML copy could not be written; the message is left untouched.
    #[error("cannot store EML copy: {0}")]
    Eml(std::io::Error),
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Already recorded earlier (a replayed FETCH after a reconnect).
    AlreadyRecorded,
    /// Recognised as mail handled before a UIDVALIDITY change.
    Recognised,
    /// Decided; `intent` is set when an action is pending.
    Decided {
        /// The verdict.
        verdict: Verdict,
        /// Pending intent id.
        intent: Option<i64>,
    },
}

/// How a message should be treated besides its content.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Scan and record only (backfill).
    pub observe_only: bool,
    /// When Postern started watching the mailbox (RFC 3339).
    pub watch_since: &'a str,
    /// The account's `\Junk` folder as the server advertises it, if any.
    pub junk: Option<&'a str>,
}

/// Messages of one fetched chunk scanned at once. Scanning waits mostly on
/// Rspamd and clamd, so a few in flight keep them (and the cores) busy;
/// recording stays strictly in UID order.
pub const SCAN_PARALLEL: usize = 4;

/// A message parsed once and, unless the milter or an earlier record
/// already settled it, decided ([`Deps::prescan`]).
#[derive(Debug)]
pub struct Scanned {
    /// The one parse of the message.
    pub prepared: Prepared,
    /// The decision (`None`: not decided here; `process` will decide).
    pub decision: Option<Decision>,
}

impl Deps {
    /// Processes one fetched message exactly once.
    pub async fn process(&self, acct: &AccountConfig, key: MessageKey, msg: &Fetched, cx: Context<'_>) -> Result<Processed, WorkerError> {
        self.process_scanned(acct, key, msg, cx, None).await
    }

    /// Like [`Deps::process`], with the message already parsed (and
    /// perhaps decided) by [`Deps::prescan`] (`None`: parse and decide now).
    pub async fn process_scanned(
        &self,
        acct: &AccountConfig,
        key: MessageKey,
        msg: &Fetched,
        cx: Context<'_>,
        pre: Option<Scanned>,
    ) -> Result<Processed, WorkerError> {
        let span = info_span!("message", account = %key.account, folder = %key.mailbox, uid = key.uid);
        self.process_inner(acct, key, msg, cx, pre).instrument(span).await
    }

    /// Scans a chunk's messages concurrently ([`SCAN_PARALLEL`] at a time).
    /// The caller fetched only UIDs with no record. Scanning has no side
    /// effects, so a decision that ends up unused (a replay, a recognised
    /// copy) costs only time; a failed scan is left to `process` to retry.
    pub async fn prescan(&self, keys: &[MessageKey], msgs: &[Fetched]) -> Vec<Scanned> {
        use futures::StreamExt;
        // Boxed so the stream's futures are plainly Send (the borrowed
        // closures otherwise trip the compiler's higher-ranked Send check).
        let jobs: Vec<futures::future::BoxFuture<'_, Scanned>> = keys
            .iter()
            .zip(msgs)
            .map(|(k, m)| -> futures::future::BoxFuture<'_, Scanned> { Box::pin(self.prescan_one(k, m)) })
            .collect();
        futures::stream::iter(jobs).buffered(SCAN_PARALLEL).collect().await
    }

    /// Parses `msg` once and decides on it, unless the milter decided it
    /// in-line already (`process` then takes the milter's decision).
    pub async fn prescan_one(&self, key: &MessageKey, msg: &Fetched) -> Scanned {
        let mut prepared = self.decider.prepare(msg.raw.clone()).await;
        let decision = match self.milter_decision(msg, prepared.envelope.message_id.as_deref()).await {
            Ok(None) => self.decider.decide_prepared(&key.account, &key.mailbox, &prepared).await.ok(),
            _ => None,
        };
        if decision.is_some() {
            // Only the envelope is read from here on. The parse (decoded
            // attachments, HTML and its text) is let go now rather than
            // held while the result waits for older UIDs (issue 21).
            prepared.input = None;
        }
        Scanned { prepared, decision }
    }

    async fn process_inner(
        &self,
        acct: &AccountConfig,
        key: MessageKey,
        msg: &Fetched,
        cx: Context<'_>,
        pre: Option<Scanned>,
    ) -> Result<Processed, WorkerError> {
        let (prepared, pre) = match pre {
            Some(s) => (s.prepared, s.decision),
            None => {
                // Not parsed yet: a replayed FETCH should not cost a parse.
                if self.store.message_status(&key).await?.is_some() {
                    return Ok(Processed::AlreadyRecorded);
                }
                (self.decider.prepare(msg.raw.clone()).await, None)
            }
        };
        let sha256 = hex::encode(Sha256::digest(msg.raw.as_slice()));
        let env = &prepared.envelope;
        let new = NewMessage {
            key: key.clone(),
            meta: MessageMeta {
                message_id: env.message_id.clone(),
                sha256: sha256.clone(),
                size: msg.raw.len() as u64,
                from: env.from.clone(),
                subject: env.subject.clone(),
                internal_date: msg.internal_date.clone(),
            },
        };
        // One trip to the store for everything it may know already; a
        // replayed FETCH after a reconnect finds its row and stops here.
        let prior = self
            .store
            .prior(&key, &sha256, env.message_id.as_deref(), acct.learn_from_folders)
            .await?;
        match prior {
            Prior::New => {}
            Prior::Recorded => return Ok(Processed::AlreadyRecorded),
            Prior::Released(released) => {
                let detail = format!("returned by the operator's release of record #{released}; not scanned again on the same evidence");
                let id = self.store.record_known_as(&new, "released_returned", detail).await?;
                let _ = self.events.send(Event::Scanned { id });
                info!(released, "message released by the operator is back; no action");
                return Ok(Processed::Recognised);
            }
            Prior::Returned(from) => {
                // The user took it back out of Junk or Quarantine: their "not
                // spam" (issue 17). Scanning it again would move it straight back.
                let path = self.keep_copy(&key.account, &sha256, msg.raw.clone()).await?;
                let id = self.store.record_user_returned(&new, &from, path).await?;
                let _ = self.events.send(Event::Scanned { id });
                info!(%from, "the user moved it back; queued to learn as ham, not scanned again");
                return Ok(Processed::Recognised);
            }
            Prior::Handled(earlier) => {
                self.store.record_known(&new, earlier).await?;
                info!(earlier, "recognised message handled before a UIDVALIDITY change");
                return Ok(Processed::Recognised);
            }
        }
        let mut pre = pre;
        // A prescan that decided has asked the milter already (the milter
        // sees a message before the mailbox does, so the answer stands).
        let milter = match pre {
            Some(_) => None,
            None => self.milter_decision(msg, env.message_id.as_deref()).await?,
        };
        if let Some(earlier) = milter {
            let queue = earlier.queue_id.as_deref().unwrap_or("-");
            if earlier.reply == "hold" {
                // Held by the milter, then released from Postfix's hold
                // queue by the operator: that was the decision on it.
                let detail = format!(
                    "released from the MTA's hold queue (milter record #{}, queue id {queue}); no action",
                    earlier.message
                );
                self.store.record_known_as(&new, "milter_released", detail).await?;
                info!(
                    earlier = earlier.message,
                    "message held in-line and released by the operator; no action"
                );
                return Ok(Processed::Recognised);
            }
            info!(
                earlier = earlier.message,
                "message decided in-line by the milter; not scanned again"
            );
            pre = Some(Decision {
                reason: format!(
                    "decided in-line by the milter (record #{}, queue id {queue}): {}",
                    earlier.message, earlier.decision.reason
                ),
                ..earlier.decision
            });
        }
        let predates = predates_watch(msg.internal_date.as_deref(), &prepared.envelope.dates, cx.watch_since);
        let observe_only = cx.observe_only || predates;
        let mut decision = match pre {
            Some(d) => d,
            None => self.decider.decide_prepared(&key.account, &key.mailbox, &prepared).await?,
        };
        drop(prepared);
        if predates && !cx.observe_only {
            decision
                .reason
                .push_str("; arrived before Postern watched this folder, observe-only");
        }
        let action = actions::plan(decision.verdict, acct, observe_only, cx.junk);
        let eml_path = match action.as_ref().and_then(|a| a.destination()) {
            Some(_) => Some(self.keep_copy(&key.account, &sha256, msg.raw.clone()).await?),
            None => None,
        };
        let action_name = action.as_ref().map(|a| a.name());
        let recorded = self
            .store
            .record_decision_owned(new, decision, action, observe_only, eml_path)
            .await?;
        let (id, intent, decision) = (recorded.id, recorded.intent, recorded.decision);
        // A re-scan can end in a claw-back move; shadow accounts never move mail.
        if !observe_only && acct.mode != Mode::Shadow && action_name.is_none() && !self.rescan_after.is_empty() {
            let now = self.clock.now();
            let due = self
                .rescan_after
                .iter()
                .map(|(stage, after)| (stage.clone(), (now + *after).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                .collect();
            self.store.schedule_rechecks(id, due).await?;
        }
        let _ = self.events.send(Event::Scanned { id });
        info!(verdict = %decision.verdict, reason = %decision.reason, action = action_name, "decided");
        Ok(Processed::Decided {
            verdict: decision.verdict,
            intent,
        })
    }

    /// Records a message too large to fetch: observe-only, with an audit row.
    pub async fn record_oversize(&self, key: MessageKey, size: u32) -> Result<(), WorkerError> {
        let limit = self.tuning.max_message_bytes;
        let reason = format!("{size} bytes exceeds the {limit}-byte scan limit; not fetched");
        self.record_unfetched(key, size.into(), reason).await
    }

    /// Records a message whose body the server announced as a literal over
    /// the limit although its RFC822.SIZE was within it (issue 18, item 2):
    /// the literal was refused unread, and the message is recorded exactly
    /// like an oversize one rather than skipped.
    pub async fn record_refused_literal(&self, key: MessageKey, declared: u32, announced: u64) -> Result<(), WorkerError> {
        let limit = self.tuning.max_message_bytes;
        let reason = format!(
            "the server declared {declared} bytes (RFC822.SIZE) but announced a {announced}-byte body, over the {limit}-byte scan limit; refused unread"
        );
        self.record_unfetched(key, announced, reason).await
    }

    async fn record_unfetched(&self, key: MessageKey, size: u64, reason: String) -> Result<(), WorkerError> {
        if self.store.message_status(&key).await?.is_some() {
            return Ok(());
        }
        let limit = self.tuning.max_message_bytes;
        let decision = Decision {
            reason,
            ..oversize_decision(size, limit)
        };
        let new = NewMessage {
            key,
            meta: MessageMeta {
                sha256: format!("unfetched:{size}"),
                size,
                ..Default::default()
            },
        };
        self.store.record_unfetched(new, decision).await?;
        tracing::warn!(size, limit, "message over the scan size limit; recorded without scanning");
        Ok(())
    }

    /// The milter's decision on this message, if it passed through the
    /// in-line mode on its way here (issue 19): same Message-ID, same body.
    /// `message_id` comes from the caller's parse of the message, so this
    /// adds no second parse to the per-message path.
    async fn milter_decision(&self, msg: &Fetched, message_id: Option<&str>) -> Result<Option<crate::store::MilterEarlier>, StoreError> {
        if !self.store.milter_may_know() {
            return Ok(None);
        }
        let body = crate::store::body_sha256(crate::store::body_of(&msg.raw));
        self.store.find_milter_decision(message_id, &body).await
    }

    /// Writes the EML copy from the shared buffer (no copy of the bytes).
    pub(crate) async fn keep_copy(&self, account: &str, sha256: &str, raw: Arc<Vec<u8>>) -> Result<String, WorkerError> {
        let (dir, account, sha) = (self.eml_dir.clone(), account.to_string(), sha256.to_string());
        let path = tokio::task::spawn_blocking(move || eml::store(&dir, &account, &sha, &raw))
            .await
            .map_err(|e| WorkerError::Eml(std::io::Error::other(e.to_string())))?
            .map_err(WorkerError::Eml)?;
        Ok(path.to_string_lossy().into_owned())
    }
}

/// Mail whose INTERNALDATE is more than a day older than the moment Postern
/// started watching was already in the folder (or moved there by the user);
/// it is scanned but never acted on. The day of slack absorbs clock skew and
/// INTERNALDATE's one-second precision.
///
/// Not believed alone, because some servers take INTERNALDATE from the
/// message (GNU imap4d: its X-Envelope-Date, then the topmost Received,
/// then Date), and a phish that could backdate it would be scanned and
/// never acted on. Delivered mail carries the receiving server's own
/// Received stamp on top, which a sender cannot put above: it must be as
/// old. Mail with no Received at all was appended by a client: its
/// INTERNALDATE counts unless it only repeats a date the sender wrote.
fn predates_watch(internal_date: Option<&str>, dates: &Dates, watch_since: &str) -> bool {
    let (Some(d), Ok(w)) = (internal_date, chrono::DateTime::parse_from_rfc3339(watch_since)) else {
        return false;
    };
    let Ok(d) = chrono::DateTime::parse_from_rfc3339(d) else {
        return false;
    };
    let cut = w - chrono::Duration::days(1);
    if d >= cut {
        return false;
    }
    match dates.received {
        Stamp::At(r) => r < cut.timestamp(),
        // A stamp that cannot be read proves nothing: acted on.
        Stamp::Unreadable => false,
        Stamp::Absent => !dates.claimed.contains(&d.timestamp()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predates_needs_a_full_day() {
        let w = "2026-11-22T10:00:00.000Z";
        let none = Dates::default();
        assert!(predates_watch(Some("2026-11-20T10:00:00+00:00"), &none, w));
        assert!(!predates_watch(Some("2026-11-22T09:59:59+00:00"), &none, w));
        assert!(!predates_watch(None, &none, w));
        assert!(!predates_watch(Some("garbage"), &none, w));
    }

    /// A server that builds INTERNALDATE from the message (GNU imap4d)
    /// must not let a backdated header keep a phish from being acted on.
    #[test]
    fn an_internaldate_the_sender_could_write_is_not_arrival() {
        let w = "2026-11-22T10:00:00.000Z";
        let old = "2026-11-20T10:00:00+00:00";
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        let delivered = |received: &str| Dates {
            received: Stamp::At(at(received)),
            claimed: vec![at(old)],
        };
        assert!(
            !predates_watch(Some(old), &delivered("2026-11-22T09:30:00+00:00"), w),
            "received today, whatever it says"
        );
        assert!(
            predates_watch(Some(old), &delivered("2026-11-20T10:00:03+00:00"), w),
            "moved in: received long ago"
        );
        let appended = |claimed: Vec<i64>| Dates {
            received: Stamp::Absent,
            claimed,
        };
        let unreadable = Dates {
            received: Stamp::Unreadable,
            claimed: vec![],
        };
        assert!(!predates_watch(Some(old), &unreadable, w), "a stamp that cannot be read");
        assert!(
            !predates_watch(Some(old), &appended(vec![at(old)]), w),
            "copied from Date or X-Envelope-Date"
        );
        assert!(
            !predates_watch(Some("2026-11-20T11:00:00+01:00"), &appended(vec![at(old)]), w),
            "same instant, other zone"
        );
        assert!(
            predates_watch(Some(old), &appended(vec![at(old) - 3]), w),
            "appended with its own date"
        );
    }
}

#[cfg(test)]
#[path = "worker_issue21_tests.rs"]
mod issue21_tests;
