//! Milter connection slots in use. indymilter takes a slot before it
//! accepts, so an MTA connection past `max_connections` waits unanswered in
//! the listen backlog until Postfix's `milter_connect_timeout` gives up and
//! applies `milter_default_action`: the mail goes through unscanned, or is
//! deferred, and nothing in Postern's log says so (the miltertest probe of
//! stop 34). Counting accepted connections here makes a full house visible.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Least time between two "every slot in use" warnings: an MTA at its
/// process limit fills the last slot again and again, and one line a
/// minute (with the count) says as much as a line each time.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Connections open against the limit.
#[derive(Debug)]
pub struct Slots {
    open: AtomicUsize,
    max: usize,
    /// Times a connection took the last free slot.
    full: AtomicU64,
    /// When the last warning was logged, and `full` then.
    warned: Mutex<Option<(Instant, u64)>>,
}

impl Slots {
    /// Slots for at most `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
            full: AtomicU64::new(0),
            warned: Mutex::new(None),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Times every slot was taken.
    pub fn times_full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    fn taken(self: &Arc<Self>) -> Release {
        let now_open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        if now_open >= self.max {
            let times = self.full.fetch_add(1, Ordering::Relaxed) + 1;
            self.warn(times);
        }
        Release(self.clone())
    }

    fn warn(&self, times: u64) {
        let now = Instant::now();
        // A poisoned lock only means another thread panicked mid-warning;
        // the timestamp inside is still usable.
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        let since = match *warned {
            Some((at, _)) if now.duration_since(at) < WARN_EVERY => return,
            Some((_, then)) => times - then,
            None => times,
        };
        *warned = Some((now, times));
        tracing::warn!(
            max_connections = self.max,
            times_full = since,
            "milter: every connection slot is in use; the MTA's next connection waits unanswered and, after its \
             milter_connect_timeout, gets milter_default_action (mail unscanned or deferred). Raise \
             POSTERN_MILTER_MAX_CONNECTIONS above the MTA's process limit"
        );
    }
}

/// Gives the slot back when the connection is dropped.
#[derive(Debug)]
struct Release(Arc<Slots>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A listener whose connections are counted in [`Slots`].
pub struct Counted<L> {
    inner: L,
    slots: Arc<Slots>,
}

impl<L> Counted<L> {
    /// Counts `inner`'s connections in `slots`.
    pub fn new(inner: L, slots: Arc<Slots>) -> Self {
        Self { inner, slots }
    }
}

impl<L: indymilter::Listener> indymilter::Listener for Counted<L> {
    type Io = Held<L::Io>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        self.inner.poll_accept(cx).map_ok(|io| Held {
            io,
            _slot: self.slots.taken(),
        })
    }
}

/// A connection holding its slot.
pub struct Held<S> {
    io: S,
    _slot: Release,
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indymilter::Listener;
    use tokio::net::{TcpListener, TcpStream};

    #[tokio::test]
    async fn the_last_free_slot_is_counted_and_given_back() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let slots = Slots::new(2);
        let mut counted = Counted::new(l, slots.clone());
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let first = counted.accept().await.unwrap();
        assert_eq!((slots.open(), slots.times_full()), (1, 0));
        let second = counted.accept().await.unwrap();
        assert_eq!((slots.open(), slots.times_full()), (2, 1));
        drop(first);
        assert_eq!(slots.open(), 1);
        let _c3 = TcpStream::connect(addr).await.unwrap();
        let third = counted.accept().await.unwrap();
        assert_eq!((slots.open(), slots.times_full()), (2, 2));
        drop((second, third));
        assert_eq!(slots.open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_house_is_warned_about_once_a_minute_with_the_count() {
        let slots = Slots::new(1);
        let release = slots.taken();
        let first = *slots.warned.lock().unwrap();
        drop(release);
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(slots.taken());
        // Within the minute: counted, not logged again.
        assert_eq!(*slots.warned.lock().unwrap(), first);
        assert_eq!(slots.times_full(), 2);
        tokio::time::advance(WARN_EVERY).await;
        drop(slots.taken());
        let (at, times) = slots.warned.lock().unwrap().unwrap();
        assert_eq!(times, 3);
        assert!(at > first.unwrap().0);
    }
}
