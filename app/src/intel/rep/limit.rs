//! Keeping within a service's quota: our own sliding-window budget, and
//! the pause a service imposes when it answers 429. Both run on the
//! injected clock so tests can step through them.

use super::lock;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::Mutex;

/// At most `max` requests in any window of `per`, shared by every caller.
/// A request that does not fit is refused, not queued: a message waiting a
/// minute for a hash lookup would hold the whole pipeline.
#[derive(Debug)]
pub struct SlidingWindow {
    max: usize,
    per: chrono::Duration,
    sent: Mutex<VecDeque<DateTime<Utc>>>,
}

impl SlidingWindow {
    /// A window allowing `max` requests per `per`.
    pub fn new(max: usize, per: chrono::Duration) -> Self {
        Self {
            max,
            per,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes one slot at `now` if one is free.
    pub fn try_acquire(&self, now: DateTime<Utc>) -> bool {
        let mut sent = lock(&self.sent);
        self.expire(&mut sent, now);
        if sent.len() >= self.max {
            return false;
        }
        sent.push_back(now);
        true
    }

    /// Slots taken within the window ending at `now`.
    pub fn used(&self, now: DateTime<Utc>) -> usize {
        let mut sent = lock(&self.sent);
        self.expire(&mut sent, now);
        sent.len()
    }

    /// Requests allowed per window.
    pub fn max(&self) -> usize {
        self.max
    }

    fn expire(&self, sent: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
        while sent.front().is_some_and(|t| now - *t >= self.per) {
            sent.pop_front();
        }
    }
}

/// A pause imposed by the service (HTTP 429): no requests until it ends.
#[derive(Debug, Default)]
pub(crate) struct Backoff(Mutex<Option<DateTime<Utc>>>);

/// Longest pause honoured, whatever the service says.
const MAX_PAUSE: chrono::Duration = chrono::Duration::hours(24);

impl Backoff {
    /// The end of the pause, if one is in force at `now`.
    pub(crate) fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        lock(&self.0).filter(|u| *u > now)
    }

    /// Pauses after a 429, reading `Retry-After` (seconds or HTTP-date),
    /// else `X-RateLimit-Reset` (epoch seconds, AbuseIPDB), else `default`.
    pub(crate) fn pause(&self, headers: &reqwest::header::HeaderMap, now: DateTime<Utc>, default: chrono::Duration) -> DateTime<Utc> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let retry_after = header("retry-after").and_then(|v| {
            v.parse::<i64>()
                .ok()
                .map(|secs| now + chrono::Duration::seconds(secs.clamp(0, MAX_PAUSE.num_seconds())))
                .or_else(|| DateTime::parse_from_rfc2822(v).ok().map(|d| d.with_timezone(&Utc)))
        });
        let reset = || {
            header("x-ratelimit-reset")
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(|epoch| DateTime::<Utc>::from_timestamp(epoch, 0))
        };
        let until = retry_after
            .or_else(reset)
            .filter(|u| *u > now)
            .unwrap_or(now + default)
            .min(now + MAX_PAUSE);
        *lock(&self.0) = Some(until);
        until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_795_000_000, 0).unwrap()
    }

    #[test]
    fn window_slides() {
        let w = SlidingWindow::new(2, chrono::Duration::seconds(60));
        let t = t0();
        assert!(w.try_acquire(t));
        assert!(w.try_acquire(t + chrono::Duration::seconds(30)));
        assert!(!w.try_acquire(t + chrono::Duration::seconds(59)));
        assert_eq!(w.used(t + chrono::Duration::seconds(59)), 2);
        assert!(w.try_acquire(t + chrono::Duration::seconds(60)), "the first slot left the window");
        assert!(!w.try_acquire(t + chrono::Duration::seconds(61)));
        assert_eq!(w.used(t + chrono::Duration::seconds(200)), 0);
    }

    #[test]
    fn backoff_reads_the_services_hints() {
        let now = t0();
        let b = Backoff::default();
        assert_eq!(b.until(now), None);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("120"));
        assert_eq!(b.pause(&h, now, chrono::Duration::minutes(5)), now + chrono::Duration::seconds(120));
        assert_eq!(b.until(now), Some(now + chrono::Duration::seconds(120)));
        assert_eq!(b.until(now + chrono::Duration::seconds(120)), None, "the pause has ended");

        let mut h = HeaderMap::new();
        let reset = now + chrono::Duration::hours(3);
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset.timestamp().to_string()).unwrap());
        assert_eq!(b.pause(&h, now, chrono::Duration::minutes(5)), reset);

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("99999999"));
        assert_eq!(b.pause(&h, now, chrono::Duration::minutes(5)), now + MAX_PAUSE, "capped");
        assert_eq!(
            b.pause(&HeaderMap::new(), now, chrono::Duration::minutes(5)),
            now + chrono::Duration::minutes(5)
        );
    }
}
