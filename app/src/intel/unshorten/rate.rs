//! The global request rate of the unshortener: one slot every
//! `1 / per_second`, handed out in order of asking.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Evenly spaced slots shared by every caller; tokio time so tests can
/// pause it.
#[derive(Debug)]
pub(super) struct RateLimit {
    /// `None`: unlimited.
    period: Option<Duration>,
    /// The earliest instant the next slot may start.
    next: Mutex<Instant>,
}

impl RateLimit {
    /// `per_second` slots a second; 0 means no limit.
    pub(super) fn new(per_second: u32) -> Self {
        RateLimit {
            period: (per_second > 0).then(|| Duration::from_secs(1) / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for a slot. Returns false at once, taking nothing, when the
    /// slot would start after `until`: a caller that would give up before
    /// its turn must not hold back the callers queued behind it.
    pub(super) async fn acquire(&self, until: Instant) -> bool {
        let Some(period) = self.period else {
            return true;
        };
        let slot = {
            // Nothing can panic while the lock is held; a poisoned lock
            // still holds a valid instant.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(Instant::now());
            if slot > until {
                return false;
            }
            *next = slot + period;
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_rate() {
        let limit = RateLimit::new(2);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        let waits = futures::future::join_all((0..4).map(|_| async {
            assert!(limit.acquire(far).await);
            start.elapsed()
        }))
        .await;
        assert_eq!(waits, [0, 500, 1000, 1500].map(Duration::from_millis));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_past_the_deadline_is_refused_without_waiting_or_taking_it() {
        let limit = RateLimit::new(1);
        let start = Instant::now();
        assert!(limit.acquire(start).await);
        // The next slot is at +1 s; a caller that must be done by +0.5 s
        // learns so at once.
        assert!(!limit.acquire(start + Duration::from_millis(500)).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        // ...and the slot it did not take is still the next one.
        assert!(limit.acquire(start + Duration::from_secs(5)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_unlimited() {
        let limit = RateLimit::new(0);
        let start = Instant::now();
        for _ in 0..100 {
            assert!(limit.acquire(start).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
