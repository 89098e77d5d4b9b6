//! The login rate limiter: attempts are reserved *before* bcrypt runs.
//!
//! Issue 16: checking the lockout before bcrypt and recording the failure
//! after it let 150 parallel wrong passwords all be evaluated. Here a
//! [`LoginLimiter::reserve`] counts the attempt under the lock, so at most
//! `max` attempts per client network are ever evaluated in one window, in
//! parallel or not; a successful login gives its reservation back.
//!
//! Three buckets are charged per attempt:
//! * the client network: the address for IPv4, its /64 for IPv6 (one
//!   subscriber usually owns a whole /64, and rotating through it must not
//!   escape the lockout);
//! * a global bucket, so a botnet of many addresses still stops;
//! * a semaphore bounds concurrent bcrypt work, so a flood cannot pin every
//!   core before the buckets fill.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// bcrypt verifications that may run at once (cost 12 takes a core for
/// about a quarter second; two leave the scanner room on small boxes).
pub(crate) const BCRYPT_CONCURRENCY: usize = 2;

/// Entries kept before old ones are swept, so a spray of addresses cannot
/// grow the map without bound.
const MAX_ENTRIES: usize = 10_000;

/// Which bucket an attempt is charged to besides the global one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6Net(u64),
    Global,
}

fn key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V4(v4) => Key::V4(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Key::V4(u32::from(v4)),
            None => Key::V6Net((u128::from(v6) >> 64) as u64),
        },
    }
}

/// Attempts in the current window of one bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u32,
    /// Start of the window, or of the lockout once `count` reached the limit.
    since: DateTime<Utc>,
}

/// Failed logins per client network and in total, with lockout.
pub(crate) struct LoginLimiter {
    max: u32,
    global_max: u32,
    lockout: chrono::Duration,
    map: Mutex<HashMap<Key, Bucket>>,
    bcrypt: tokio::sync::Semaphore,
    evaluations: AtomicU64,
}

/// Why an attempt was refused: minutes until it may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Locked(pub(crate) i64);

impl LoginLimiter {
    /// `max` attempts per network and `global_max` in total per `lockout`.
    pub(crate) fn new(max: u32, global_max: u32, lockout: Duration) -> Self {
        Self {
            max,
            global_max,
            lockout: chrono::Duration::from_std(lockout).unwrap_or(chrono::Duration::minutes(15)),
            map: Mutex::new(HashMap::new()),
            bcrypt: tokio::sync::Semaphore::new(BCRYPT_CONCURRENCY),
            evaluations: AtomicU64::new(0),
        }
    }

    /// A poisoned lock only means another request panicked mid-update; the
    /// counters are still meaningful, and dropping them would silently turn
    /// the lockout off.
    fn map(&self) -> MutexGuard<'_, HashMap<Key, Bucket>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn limit(&self, k: Key) -> u32 {
        if k == Key::Global { self.global_max } else { self.max }
    }

    /// Counts an attempt from `ip` before the password is checked; refuses
    /// it when the client's network or the whole server is locked out.
    pub(crate) fn reserve(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), Locked> {
        let mut m = self.map();
        if m.len() > MAX_ENTRIES {
            let lockout = self.lockout;
            m.retain(|_, b| now - b.since < lockout);
        }
        let keys = [key(ip), Key::Global];
        for k in keys {
            if let Some(b) = m.get(&k) {
                let until = b.since + self.lockout;
                if b.count >= self.limit(k) && now < until {
                    return Err(Locked((until - now).num_minutes() + 1));
                }
            }
        }
        for k in keys {
            let limit = self.limit(k);
            let b = m.entry(k).or_insert(Bucket { count: 0, since: now });
            if now - b.since >= self.lockout {
                *b = Bucket { count: 0, since: now };
            }
            b.count += 1;
            if b.count >= limit {
                // The lockout runs from the attempt that triggered it.
                b.since = now;
            }
        }
        Ok(())
    }

    /// A successful login forgets its network's attempts and gives its
    /// reservation back to the global bucket.
    pub(crate) fn succeeded(&self, ip: IpAddr) {
        let mut m = self.map();
        m.remove(&key(ip));
        if let Some(b) = m.get_mut(&Key::Global) {
            b.count = b.count.saturating_sub(1);
        }
    }

    /// Runs one bcrypt verification, at most [`BCRYPT_CONCURRENCY`] at a
    /// time. Any failure (closed semaphore, panicked task) is a wrong password.
    pub(crate) async fn verify(&self, password: String, hash: String) -> bool {
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false)
    }

    /// How many bcrypt verifications ran (tests assert bounded work with it).
    #[cfg(test)]
    pub(crate) fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn lockout_after_max_attempts_then_expiry() {
        let l = LoginLimiter::new(3, 1000, Duration::from_secs(600));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = t0();
        for _ in 0..3 {
            assert_eq!(l.reserve(ip, t0), Ok(()));
        }
        assert!(l.reserve(ip, t0).is_err());
        assert!(l.reserve(ip, t0 + chrono::Duration::minutes(9)).is_err());
        assert_eq!(l.reserve(ip, t0 + chrono::Duration::minutes(11)), Ok(()));
        assert_eq!(l.reserve("192.0.2.2".parse().unwrap(), t0), Ok(()), "other addresses unaffected");
    }

    #[test]
    fn rotating_through_one_ipv6_64_still_locks() {
        let l = LoginLimiter::new(3, 1000, Duration::from_secs(600));
        let ok = (1..=3)
            .filter(|i| l.reserve(format!("2001:db8:1:2::{i:x}").parse().unwrap(), t0()).is_ok())
            .count();
        assert_eq!(ok, 3);
        assert!(l.reserve("2001:db8:1:2:ffff::9".parse().unwrap(), t0()).is_err(), "same /64");
        assert!(l.reserve("2001:db8:1:3::1".parse().unwrap(), t0()).is_ok(), "another /64");
    }

    #[test]
    fn the_global_limit_stops_many_addresses() {
        let l = LoginLimiter::new(3, 10, Duration::from_secs(600));
        let ok = (1..=50u8)
            .filter(|i| l.reserve(IpAddr::from([198, 51, 100, *i]), t0()).is_ok())
            .count();
        assert_eq!(ok, 10);
    }

    #[test]
    fn success_returns_the_reservation() {
        let l = LoginLimiter::new(2, 1000, Duration::from_secs(600));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(l.reserve(ip, t0()), Ok(()));
            l.succeeded(ip);
        }
    }

    #[test]
    fn a_poisoned_lock_keeps_counting() {
        let l = std::sync::Arc::new(LoginLimiter::new(1, 1000, Duration::from_secs(600)));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(l.reserve(ip, t0()), Ok(()));
        let l2 = l.clone();
        let _ = std::thread::spawn(move || {
            let _g = l2.map.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(l.map.is_poisoned());
        assert!(l.reserve(ip, t0()).is_err(), "still locked after a poisoned lock");
    }
}
