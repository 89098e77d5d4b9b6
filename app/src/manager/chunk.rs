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
use super::window::{BOUNDS, Window};
use crate::domain::MessageKey;
use crate::imap::{Conn, Fetched, ImapError, Selected};
use crate::scan::ScanError;
use crate::worker::{Context, Processed, Scanned, WorkerError};
use std::collections::VecDeque;
use tracing::{info, warn};

/// Which cursor a span moves as its chunks complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Span {
    /// New mail: the folder's `last_uid`.
    CatchUp,
    /// Observe-only backfill: `backfill_done_uid`, and the progress the
    /// dashboard shows, per chunk so it moves while a long span runs.
    /// `beyond` counts the backfill's UIDs after this span.
    Backfill { beyond: u64 },
}

/// The newest open chunk has all its bodies in the window: it is complete
/// once the window has handed out everything before `end`.
fn seal(open: &mut VecDeque<(u64, Vec<u32>)>, end: u64) {
    if let Some(last) = open.back_mut() {
        last.0 = end;
    }
}

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

    /// Fetches, decides and records every UID of `uids` (ascending) through
    /// the backlog [`Window`]: fetched in chunks of `fetch_chunk`, scanned
    /// [`BOUNDS`]`.scans` at a time with a new scan starting as any
    /// finishes, recorded in UID order. Once every UID of a chunk has a
    /// durable row, `span` moves its cursor past the chunk; on an error the
    /// cursor stays after the last complete chunk.
    pub(super) async fn process_span(
        &self,
        conn: &mut Conn,
        sel: &Selected,
        uids: &[u32],
        cx: Context<'_>,
        span: Span,
    ) -> Result<(), ListenerError> {
        let mut w: Window<'_, Result<(Fetched, MessageKey, Scanned), ScanError>> = Window::new(BOUNDS);
        // Chunks fetched, waiting for their last body to be recorded: the
        // window sequence number after that body, and the chunk's UIDs.
        let mut open: VecDeque<(u64, Vec<u32>)> = VecDeque::new();
        let mut chunks = uids.chunks(self.deps.tuning.fetch_chunk.max(1) as usize);
        // The current chunk's bodies still to fetch, with their sizes.
        let mut todo: VecDeque<(u32, u32)> = VecDeque::new();
        let mut sizes: Vec<(u32, u32)> = Vec::new();
        let mut acted = false;
        // UIDs of this span whose chunk has been passed (backfill progress).
        let mut passed_uids = 0u64;
        loop {
            // Record whatever is next in UID order, then close every chunk
            // whose bodies are all recorded.
            while let Some(ready) = w.pop_ready() {
                let (msg, key, scanned) = ready.map_err(WorkerError::Scan)?;
                let r = self.deps.process_scanned(&self.acct, key, &msg, cx, Some(scanned)).await?;
                if let Processed::Decided { intent, .. } = r {
                    acted |= intent.is_some();
                    self.status.update(|s| s.processed += 1);
                }
            }
            while open.front().is_some_and(|(end, _)| *end <= w.done_seq()) {
                if let Some((_, chunk)) = open.pop_front() {
                    self.confirm_recorded(sel, &chunk).await?;
                    passed_uids += chunk.len() as u64;
                    let left = (uids.len() as u64).saturating_sub(passed_uids);
                    self.passed(sel, &chunk, span, left).await?;
                }
            }
            if acted {
                self.actions.notify_one();
                acted = false;
            }
            // Refill: fetch as many of the current chunk's bodies as the
            // window has room for; plan the next chunk when it is done.
            if todo.is_empty()
                && let Some(chunk) = chunks.next()
            {
                let (wanted, all) = self.plan(conn, sel, chunk).await?;
                todo = wanted.into();
                sizes = all;
                open.push_back((u64::MAX, chunk.to_vec()));
                if todo.is_empty() {
                    seal(&mut open, w.next_seq());
                }
                continue;
            }
            let n = w.room_for(todo.iter().map(|(_, s)| *s as usize));
            if n > 0 {
                let batch: Vec<u32> = todo.drain(..n).map(|(u, _)| u).collect();
                for msg in self.fetch_complete(conn, sel, &batch, &sizes).await? {
                    let size = msg.raw.len();
                    let key = self.key(sel, msg.uid);
                    let deps = self.deps.clone();
                    // Each scan is a task of its own, so it goes on while
                    // this loop records, fetches or waits on the server
                    // (issue 21: as a future polled only in `wait_any`, a
                    // scan stood still during every durable write).
                    let task = tokio::spawn(async move {
                        let scanned = deps.prescan_one(&key, &msg).await;
                        (msg, key, scanned)
                    });
                    w.push(size, async move {
                        task.await
                            .map_err(|e| ScanError::scanner("pipeline", format!("the scan task ended: {e}")))
                    });
                }
                if todo.is_empty() {
                    seal(&mut open, w.next_seq());
                }
                continue;
            }
            if !w.wait_any().await && w.held() == 0 && todo.is_empty() && open.is_empty() {
                let (peak_bytes, peak_scans) = w.peaks();
                tracing::debug!(uids = uids.len(), peak_bytes, peak_scans, "span recorded");
                return Ok(());
            }
        }
    }

    /// A chunk's sizes, with the oversize UIDs recorded, and the UIDs still
    /// to fetch (no row yet) with their sizes, ascending.
    async fn plan(&self, conn: &mut Conn, sel: &Selected, chunk: &[u32]) -> Result<(Vec<(u32, u32)>, Vec<(u32, u32)>), ListenerError> {
        let limit = self.deps.tuning.max_message_bytes;
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
        // UIDs recorded on an earlier pass (a replay after a reconnect, or a
        // refused literal) are not fetched again: one query per chunk.
        let recorded = self
            .deps
            .store
            .recorded_uids(&self.acct.name, &self.mailbox, sel.uidvalidity, chunk)
            .await?;
        let mut wanted = Vec::new();
        for &(uid, size) in &sizes {
            if recorded.binary_search(&uid).is_ok() {
                continue;
            }
            if size > limit {
                // Recorded without moving the cursor: older UIDs may still be
                // in the window.
                self.deps.record_oversize(self.key(sel, uid), size).await?;
            } else {
                wanted.push((uid, size));
            }
        }
        Ok((wanted, sizes))
    }

    /// Moves the cursor of `span` past a chunk whose UIDs all have rows;
    /// `left` UIDs of the span come after it.
    async fn passed(&self, sel: &Selected, chunk: &[u32], span: Span, left: u64) -> Result<(), ListenerError> {
        let Some(&last) = chunk.last() else { return Ok(()) };
        let store = &self.deps.store;
        match span {
            Span::CatchUp => {
                store
                    .advance_cursor(&self.acct.name, &self.mailbox, sel.uidvalidity, last, sel.highest_modseq)
                    .await?
            }
            Span::Backfill { beyond } => {
                store
                    .set_backfill_done(&self.acct.name, &self.mailbox, sel.uidvalidity, last)
                    .await?;
                store
                    .record_backfill_chunk(&self.acct.name, &self.mailbox, chunk.len() as u64, left + beyond)
                    .await?
            }
        }
        Ok(())
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
                    self.deps.record_refused_literal(self.key(sel, uid), declared, r.announced).await?;
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

    /// The cursor may only pass UIDs that were each recorded: checked
    /// against the store itself, whatever the FETCH looked like.
    async fn confirm_recorded(&self, sel: &Selected, chunk: &[u32]) -> Result<(), ListenerError> {
        let recorded = self
            .deps
            .store
            .recorded_uids(&self.acct.name, &self.mailbox, sel.uidvalidity, chunk)
            .await?;
        let unrecorded: Vec<u32> = chunk.iter().copied().filter(|u| recorded.binary_search(u).is_err()).collect();
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
