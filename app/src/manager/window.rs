//! The backlog window (issue 21, item 1): scans run [`Bounds::scans`] at a
//! time and a new one starts as soon as *any* finishes, not when the oldest
//! does or a chunk ends; results still come out strictly in the order they
//! went in, so decisions are recorded in UID order and the cursor never
//! passes a UID whose decision is not durable. What the window holds
//! (waiting, scanning, or scanned and waiting for an older one) is bounded
//! in messages and in bytes, so a run of large messages cannot fill memory.

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

/// How much the window may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Scans running at once.
    pub scans: usize,
    /// Messages held (queued, scanning, or waiting to be recorded).
    pub messages: usize,
    /// Bytes of the messages held. One message larger than this still goes
    /// through, alone.
    pub bytes: usize,
}

/// The listener's bounds: as many scans as the Rspamd baseline runs at
/// once, and at most 32 MiB of fetched mail held per folder.
pub(crate) const BOUNDS: Bounds = Bounds {
    scans: 8,
    messages: 64,
    bytes: 32 * 1024 * 1024,
};

/// Futures in, results out in the same order, with [`Bounds`].
pub(crate) struct Window<'a, T> {
    bounds: Bounds,
    queued: VecDeque<(u64, BoxFuture<'a, T>)>,
    running: FuturesUnordered<BoxFuture<'a, (u64, T)>>,
    ready: BTreeMap<u64, T>,
    sizes: VecDeque<usize>,
    next_in: u64,
    next_out: u64,
    bytes: usize,
    peak_bytes: usize,
    peak_scans: usize,
}

impl<'a, T: Send + 'a> Window<'a, T> {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Window {
            bounds,
            queued: VecDeque::new(),
            running: FuturesUnordered::new(),
            ready: BTreeMap::new(),
            sizes: VecDeque::new(),
            next_in: 0,
            next_out: 0,
            bytes: 0,
            peak_bytes: 0,
            peak_scans: 0,
        }
    }

    /// Messages held.
    pub(crate) fn held(&self) -> usize {
        (self.next_in - self.next_out) as usize
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Most bytes ever held, and most scans ever run at once.
    pub(crate) fn peaks(&self) -> (usize, usize) {
        (self.peak_bytes, self.peak_scans)
    }

    /// Sequence number the next pushed item gets; results come out in it.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_in
    }

    /// Items handed out so far.
    pub(crate) fn done_seq(&self) -> u64 {
        self.next_out
    }

    /// How many of `sizes` (in order) may enter now. An empty window takes
    /// at least one, however large.
    pub(crate) fn room_for(&self, sizes: impl IntoIterator<Item = usize>) -> usize {
        let (mut n, mut bytes) = (0, self.bytes);
        for s in sizes {
            let empty = self.held() + n == 0;
            if !empty && (self.held() + n >= self.bounds.messages || bytes + s > self.bounds.bytes) {
                break;
            }
            n += 1;
            bytes += s;
        }
        n
    }

    /// Adds an item of `size` bytes; it starts when a scan slot is free.
    /// The caller asks [`Window::room_for`] first.
    pub(crate) fn push(&mut self, size: usize, fut: impl Future<Output = T> + Send + 'a) {
        let seq = self.next_in;
        self.next_in += 1;
        self.bytes += size;
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        self.sizes.push_back(size);
        self.queued.push_back((seq, Box::pin(fut)));
        self.start();
    }

    fn start(&mut self) {
        while self.running.len() < self.bounds.scans
            && let Some((seq, fut)) = self.queued.pop_front()
        {
            self.running.push(Box::pin(async move { (seq, fut.await) }));
        }
        self.peak_scans = self.peak_scans.max(self.running.len());
    }

    /// The oldest item, if its scan has finished; its bytes leave the window.
    pub(crate) fn pop_ready(&mut self) -> Option<T> {
        let v = self.ready.remove(&self.next_out)?;
        self.next_out += 1;
        self.bytes -= self.sizes.pop_front().unwrap_or(0);
        Some(v)
    }

    /// Waits until any running scan finishes (and starts the next queued
    /// one at once). False when nothing is running.
    pub(crate) async fn wait_any(&mut self) -> bool {
        let Some((seq, v)) = self.running.next().await else {
            return false;
        };
        self.ready.insert(seq, v);
        self.start();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    const SMALL: Bounds = Bounds {
        scans: 2,
        messages: 4,
        bytes: 100,
    };

    #[tokio::test]
    async fn a_slow_head_does_not_hold_back_the_next_scans_nor_the_order() {
        let mut w: Window<'_, u32> = Window::new(SMALL);
        let (tx0, rx0) = oneshot::channel::<()>();
        w.push(10, async move {
            let _ = rx0.await;
            0
        });
        for i in 1..4u32 {
            w.push(10, async move { i });
        }
        // Item 0 is stuck; 1 finishes and item 2 starts at once (a refill
        // on any finish), then 2 and 3 finish too: 3 results wait behind 0.
        let mut finished = 0;
        while finished < 3 {
            assert!(w.wait_any().await);
            finished += 1;
            assert!(w.pop_ready().is_none(), "nothing comes out before item 0");
        }
        assert_eq!(w.held(), 4);
        assert_eq!(w.room_for([10]), 0, "the message bound holds");
        tx0.send(()).unwrap();
        assert!(w.wait_any().await);
        let order: Vec<u32> = std::iter::from_fn(|| w.pop_ready()).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
        assert_eq!(w.peaks().1, 2, "never more than two scans at once");
        assert_eq!(w.bytes(), 0);
    }

    #[tokio::test]
    async fn bytes_held_never_pass_the_bound() {
        let mut w: Window<'_, usize> = Window::new(SMALL);
        let sizes = [60usize, 30, 30, 5, 200, 10];
        let mut next = 0;
        let mut out = Vec::new();
        while out.len() < sizes.len() {
            let n = w.room_for(sizes[next..].iter().copied());
            for s in &sizes[next..next + n] {
                let s = *s;
                w.push(s, async move { s });
            }
            next += n;
            assert!(
                w.bytes() <= SMALL.bytes || w.held() == 1,
                "held {} bytes in {} messages",
                w.bytes(),
                w.held()
            );
            w.wait_any().await;
            out.extend(std::iter::from_fn(|| w.pop_ready()));
        }
        assert_eq!(out, sizes.to_vec());
        // The 200-byte message went through alone; otherwise within 100.
        assert_eq!(w.peaks().0, 200);
    }
}
