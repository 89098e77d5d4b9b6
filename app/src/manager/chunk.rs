//! One fetched chunk of a folder, processed so that no server reply can
//! lose a message (issue 18, items 2 and 6):
//! - a UID counts as fetched only when a body came back for that UID; two
//!   bodies for one UID, or none, are not "the right number of bodies";
//! - a body the server announces over the size limit is refused unread by
//!   the connection's literal guard; the UID is then found by fetching the
//!   chunk one UID at a time on fresh connections and recorded as oversize;
//! - before the caller moves the cursor past the chunk, every UID of it must
//!   have a durable row.

use super::listener::{Listener, ListenerError};
use crate::domain::MessageKey;
use crate::imap::{Conn, Fetched, ImapError, Selected};
use crate::worker::{Context, Processed};
use tracing::{info, warn};

/// Bodies of one FETCH, one per UID, and the UIDs whose literal was refused
/// (already recorded as oversize).
#[derive(Debug, Default)]
struct Batch {
    bodies: Vec<Fetched>,
    refused: Vec<u32>,
}

impl Listener {
    fn key(&self, sel: &Selected, uid: u32) -> MessageKey {
        MessageKey {
            account: self.acct.name.clone(),
            mailbox: self.mailbox.clone(),
            uidvalidity: sel.uidvalidity,
            uid,
        }
    }

    /// Fetches, decides and records every UID of `chunk`. On success every
    /// UID of the chunk has a durable row, so the cursor may pass it.
    pub(super) async fn process_chunk(&self, conn: &mut Conn, sel: &Selected, chunk: &[u32], cx: Context<'_>) -> Result<(), ListenerError> {
        let limit = self.engine.tuning.max_message_bytes;
        let mut sizes = conn.fetch_sizes(chunk).await?;
        sizes.retain(|(u, _)| chunk.contains(u));
        sizes.sort_unstable();
        sizes.dedup_by_key(|(u, _)| *u);
        // Like the bodies below: a size FETCH cut short can end without an
        // error, and a UID missing here would be skipped when the cursor
        // moves past the chunk. Retry instead; a UID expunged meanwhile is
        // simply absent from the next UID SEARCH.
        if sizes.len() != chunk.len() {
            return Err(ImapError::Protocol(format!("FETCH RFC822.SIZE returned {} of {} messages", sizes.len(), chunk.len())).into());
        }
        let (small, big): (Vec<_>, Vec<_>) = sizes.iter().copied().partition(|(_, s)| *s <= limit);
        for (uid, size) in big {
            self.engine.record_oversize(self.key(sel, uid), size).await?;
        }
        // UIDs recorded on an earlier pass (a replay after a reconnect, or a
        // refused literal) are not fetched again.
        let mut wanted = Vec::new();
        for (uid, _) in small {
            if self.engine.store.message_status(&self.key(sel, uid)).await?.is_none() {
                wanted.push(uid);
            }
        }
        if !wanted.is_empty() {
            let bodies = self.fetch_complete(conn, sel, &wanted, &sizes).await?;
            self.decide(sel, &bodies, cx).await?;
        }
        self.confirm_recorded(sel, chunk).await
    }

    /// A body for every UID of `wanted` (or a refusal recorded for it). A
    /// server that answers some UID twice and another not at all is asked
    /// once more for the missing ones; still missing is an error, and the
    /// chunk is retried after a reconnect.
    async fn fetch_complete(
        &self,
        conn: &mut Conn,
        sel: &Selected,
        wanted: &[u32],
        sizes: &[(u32, u32)],
    ) -> Result<Vec<Fetched>, ListenerError> {
        let mut batch = self.fetch_guarded(conn, sel, wanted, sizes).await?;
        let absent = missing(wanted, &batch);
        if !absent.is_empty() {
            warn!(?absent, "FETCH left UIDs out; asking for them again");
            let more = self.fetch_guarded(conn, sel, &absent, sizes).await?;
            batch.bodies.extend(more.bodies);
            batch.refused.extend(more.refused);
            let still = missing_after_merge(wanted, &mut batch)?;
            if !still.is_empty() {
                return Err(ImapError::Protocol(format!("FETCH never returned UID(s) {still:?}; not moving past them")).into());
            }
        }
        Ok(batch.bodies)
    }

    /// One UID FETCH of bodies, with a literal refusal narrowed down to the
    /// UID it belongs to: the refused connection is unusable, so each UID is
    /// then fetched alone on a fresh one, and the refused ones recorded.
    async fn fetch_guarded(&self, conn: &mut Conn, sel: &Selected, uids: &[u32], sizes: &[(u32, u32)]) -> Result<Batch, ListenerError> {
        match conn.fetch_bodies(uids).await {
            Ok(bodies) => {
                let mut batch = Batch {
                    bodies,
                    refused: Vec::new(),
                };
                missing_after_merge(uids, &mut batch)?;
                return Ok(batch);
            }
            Err(ImapError::LiteralTooLarge(r)) => warn!(error = %r, uids = uids.len(), "literal refused; fetching one UID at a time"),
            Err(e) => return Err(e.into()),
        }
        let mut batch = Batch::default();
        self.reopen(conn, sel).await?;
        for &uid in uids {
            match conn.fetch_bodies(&[uid]).await {
                Ok(b) => batch.bodies.extend(b),
                Err(ImapError::LiteralTooLarge(r)) => {
                    let declared = sizes.iter().find(|(u, _)| *u == uid).map_or(0, |(_, s)| *s);
                    self.engine
                        .record_refused_literal(self.key(sel, uid), declared, r.announced)
                        .await?;
                    batch.refused.push(uid);
                    self.reopen(conn, sel).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        missing_after_merge(uids, &mut batch)?;
        Ok(batch)
    }

    /// Replaces a connection the guard made unusable. The folder must keep
    /// its UIDVALIDITY, or the UIDs in hand mean nothing.
    pub(super) async fn reopen(&self, conn: &mut Conn, sel: &Selected) -> Result<(), ListenerError> {
        let (fresh, again) = self.open().await?;
        if again.uidvalidity != sel.uidvalidity {
            return Err(ImapError::Protocol(format!(
                "UIDVALIDITY changed from {} to {} while reconnecting",
                sel.uidvalidity, again.uidvalidity
            ))
            .into());
        }
        *conn = fresh;
        Ok(())
    }

    /// Decides and records fetched bodies, in UID order.
    async fn decide(&self, sel: &Selected, bodies: &[Fetched], cx: Context<'_>) -> Result<(), ListenerError> {
        let keys: Vec<MessageKey> = bodies.iter().map(|m| self.key(sel, m.uid)).collect();
        let decisions = self.engine.prescan(&keys, bodies).await;
        let mut acted = false;
        for ((msg, k), pre) in bodies.iter().zip(keys).zip(decisions) {
            let r = self.engine.process_scanned(&self.acct, k, msg, cx, Some(pre)).await?;
            if let Processed::Decided { intent, .. } = r {
                acted |= intent.is_some();
                self.status.update(|s| s.processed += 1);
            }
        }
        if acted {
            self.actions.notify_one();
        }
        Ok(())
    }

    /// The cursor may only pass UIDs that were each recorded: checked
    /// against the store itself, whatever the FETCH looked like.
    async fn confirm_recorded(&self, sel: &Selected, chunk: &[u32]) -> Result<(), ListenerError> {
        let mut unrecorded = Vec::new();
        for &uid in chunk {
            if self.engine.store.message_status(&self.key(sel, uid)).await?.is_none() {
                unrecorded.push(uid);
            }
        }
        if unrecorded.is_empty() {
            return Ok(());
        }
        info!(?unrecorded, "chunk incomplete; the cursor stays");
        Err(ImapError::Protocol(format!("UID(s) {unrecorded:?} have no decision; the cursor stays before them")).into())
    }
}

/// Keeps one body per UID (sorted), refusing two different bodies for one
/// UID, and returns the UIDs of `wanted` with neither a body nor a refusal.
fn missing_after_merge(wanted: &[u32], batch: &mut Batch) -> Result<Vec<u32>, ImapError> {
    batch.bodies.sort_by_key(|f| f.uid);
    let mut kept: Vec<Fetched> = Vec::with_capacity(batch.bodies.len());
    for f in std::mem::take(&mut batch.bodies) {
        match kept.last() {
            Some(prev) if prev.uid == f.uid => {
                if prev.raw != f.raw {
                    return Err(ImapError::Protocol(format!(
                        "FETCH returned two different bodies for UID {}",
                        f.uid
                    )));
                }
            }
            _ => kept.push(f),
        }
    }
    batch.bodies = kept;
    Ok(missing(wanted, batch))
}

fn missing(wanted: &[u32], batch: &Batch) -> Vec<u32> {
    wanted
        .iter()
        .copied()
        .filter(|u| batch.bodies.binary_search_by_key(u, |f| f.uid).is_err() && !batch.refused.contains(u))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(uid: u32, raw: &str) -> Fetched {
        Fetched {
            uid,
            raw: std::sync::Arc::new(raw.as_bytes().to_vec()),
            internal_date: None,
        }
    }

    #[test]
    fn a_duplicated_uid_does_not_stand_in_for_a_missing_one() {
        // Issue 18, item 6: UID 1 twice instead of UIDs 1 and 2.
        let mut b = Batch {
            bodies: vec![f(1, "a"), f(1, "a"), f(3, "c")],
            refused: vec![],
        };
        assert_eq!(missing_after_merge(&[1, 2, 3], &mut b).unwrap(), vec![2]);
        assert_eq!(b.bodies.iter().map(|f| f.uid).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn two_different_bodies_for_one_uid_are_refused() {
        let mut b = Batch {
            bodies: vec![f(1, "a"), f(1, "b")],
            refused: vec![],
        };
        assert!(missing_after_merge(&[1], &mut b).is_err());
    }

    #[test]
    fn a_refused_uid_is_accounted_for() {
        let mut b = Batch {
            bodies: vec![f(1, "a")],
            refused: vec![2],
        };
        assert_eq!(missing_after_merge(&[1, 2], &mut b).unwrap(), Vec::<u32>::new());
    }
}
