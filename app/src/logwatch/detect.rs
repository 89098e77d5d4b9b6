//! Sliding windows over authentication events: brute force per IP, per
//! network (/24, /64) and per user name, password spraying in both
//! directions, probing, rejected recipients, and a success after failures.
//!
//! Memory is bounded: every window keeps at most [`PER_KEY`] entries, and
//! no more than `max_tracked` keys per kind are followed at once (expired
//! keys are swept first; past the bound new keys are counted, not kept).

use super::parse::{AuthEvent, Outcome};
use super::rules::Rules;
use ipnet::IpNet;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

/// Entries kept per key; past it the oldest go (counts stay correct up
/// to this many attempts, which is far above any threshold).
const PER_KEY: usize = 1024;
/// Attacker addresses listed in one many-IPs-one-user alert.
const MAX_LISTED: usize = 64;
/// Observations between sweeps of expired keys.
const SWEEP_EVERY: u64 = 4096;

/// What was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// Many failures from one IP.
    BruteForce,
    /// Many failures from one /24 (IPv4) or /64 (IPv6).
    NetworkBruteForce,
    /// One IP trying many user names (password spraying).
    SprayUsers,
    /// Many IPs trying one user name (distributed guessing).
    SprayIps,
    /// Connections dropped around AUTH, again and again.
    Probing,
    /// Many rejected recipients from one IP.
    Rejects,
    /// A successful login after failures: the password may be known.
    CompromiseSuspicion,
}

impl AlertKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BruteForce => "brute_force",
            AlertKind::NetworkBruteForce => "network_brute_force",
            AlertKind::SprayUsers => "spray_users",
            AlertKind::SprayIps => "spray_ips",
            AlertKind::Probing => "probing",
            AlertKind::Rejects => "rejects",
            AlertKind::CompromiseSuspicion => "compromise_suspicion",
        }
    }
}

/// One detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What.
    pub kind: AlertKind,
    /// When (the event that crossed the threshold).
    pub at: i64,
    /// The network, for network alerts.
    pub network: Option<IpNet>,
    /// The user name, for per-user alerts and compromise suspicions.
    pub user: Option<String>,
    /// Attempts, users or addresses counted in the window.
    pub count: u32,
    /// The attacking addresses (one, or the spraying set, bounded).
    pub ips: Vec<IpAddr>,
}

#[derive(Debug)]
struct Window<T> {
    keys: HashMap<T, VecDeque<(i64, u32, u64)>>,
}

impl<T: Hash + Eq + Clone> Window<T> {
    fn new() -> Self {
        Self { keys: HashMap::new() }
    }

    /// Adds `(at, weight, tag)` under `key`; returns the live entries, or
    /// `None` when the key is new and the bound is reached.
    fn push(&mut self, key: &T, at: i64, weight: u32, tag: u64, horizon: i64, cap: usize) -> Option<&VecDeque<(i64, u32, u64)>> {
        if !self.keys.contains_key(key) && self.keys.len() >= cap {
            return None;
        }
        let q = self.keys.entry(key.clone()).or_default();
        q.push_back((at, weight, tag));
        while q.front().is_some_and(|e| e.0 < horizon) || q.len() > PER_KEY {
            q.pop_front();
        }
        Some(q)
    }

    fn get(&self, key: &T, horizon: i64) -> impl Iterator<Item = &(i64, u32, u64)> {
        self.keys.get(key).into_iter().flatten().filter(move |e| e.0 >= horizon)
    }

    fn sweep(&mut self, horizon: i64) {
        self.keys.retain(|_, q| q.back().is_some_and(|e| e.0 >= horizon));
    }
}

fn total(q: &VecDeque<(i64, u32, u64)>) -> u32 {
    q.iter().map(|e| e.1).fold(0u32, u32::saturating_add)
}

fn distinct(q: &VecDeque<(i64, u32, u64)>) -> u32 {
    q.iter().map(|e| e.2).filter(|t| *t != 0).collect::<HashSet<_>>().len() as u32
}

fn tag_of<T: Hash + ?Sized>(v: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    // Never 0: 0 marks "no user" in a window entry.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(v).max(1)
}

/// The detector. Feed it events in (roughly) time order.
#[derive(Debug)]
pub struct Detector {
    rules: Rules,
    ip_fail: Window<IpAddr>,
    net_fail: Window<IpNet>,
    user_fail: Window<String>,
    ip_probe: Window<IpAddr>,
    ip_reject: Window<IpAddr>,
    /// (kind, key) → the time until which it is not raised again.
    quiet: HashMap<(AlertKind, u64), i64>,
    ips_by_tag: HashMap<u64, IpAddr>,
    seen: u64,
    latest: i64,
    /// Keys not followed because a bound was reached.
    pub untracked: u64,
}

impl Detector {
    /// A detector with `rules`.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            ip_fail: Window::new(),
            net_fail: Window::new(),
            user_fail: Window::new(),
            ip_probe: Window::new(),
            ip_reject: Window::new(),
            quiet: HashMap::new(),
            ips_by_tag: HashMap::new(),
            seen: 0,
            latest: i64::MIN,
            untracked: 0,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    fn raise(&mut self, out: &mut Vec<Alert>, key: u64, a: Alert) {
        let k = (a.kind, key);
        if self.quiet.get(&k).is_some_and(|until| a.at < *until) {
            return;
        }
        self.quiet.insert(k, a.at + self.rules.window_secs());
        out.push(a);
    }

    /// Takes one event; returns what it completes.
    pub fn observe(&mut self, e: &AuthEvent) -> Vec<Alert> {
        let mut out = Vec::new();
        if self.rules.ignored(e.ip) {
            return out;
        }
        self.seen += 1;
        self.latest = self.latest.max(e.at);
        let horizon = self.latest - self.rules.window_secs();
        if self.seen.is_multiple_of(SWEEP_EVERY) {
            self.sweep(horizon);
        }
        let cap = self.rules.max_tracked;
        let t = &self.rules.thresholds;
        let (ip_t, net_t, user_t, spray_u, spray_i, probe_t, reject_t, succ_t) = (
            t.ip_failures,
            t.network_failures,
            t.user_failures,
            t.spray_users_per_ip,
            t.spray_ips_per_user,
            t.probes_per_ip,
            t.rejects_per_ip,
            t.success_after_failures,
        );
        let one = |kind, count, user: Option<String>, network| Alert {
            kind,
            at: e.at,
            network,
            user,
            count,
            ips: vec![e.ip],
        };
        let user_tag = e.user.as_deref().map_or(0, tag_of);
        let ip_tag = tag_of(&e.ip);
        match e.outcome {
            Outcome::Failed => {
                if self.ips_by_tag.len() < cap {
                    self.ips_by_tag.insert(ip_tag, e.ip);
                }
                let w = e.attempts;
                let q = self.ip_fail.push(&e.ip, e.at, w, user_tag, horizon, cap);
                let (n, users) = q.map_or((0, 0), |q| (total(q), distinct(q)));
                if q.is_none() {
                    self.untracked += 1;
                }
                if n >= ip_t {
                    self.raise(&mut out, ip_tag, one(AlertKind::BruteForce, n, None, None));
                }
                if users >= spray_u {
                    self.raise(&mut out, ip_tag, one(AlertKind::SprayUsers, users, None, None));
                }
                let net = self.rules.network_of(e.ip);
                if let Some(q) = self.net_fail.push(&net, e.at, w, ip_tag, horizon, cap) {
                    let (n, ips, tags) = (total(q), distinct(q), q.iter().map(|x| x.2).collect::<Vec<_>>());
                    // A network alert says more than its one member: only
                    // when more than one address took part.
                    if n >= net_t && ips > 1 {
                        let ips = self.addresses(tags.into_iter());
                        self.raise(
                            &mut out,
                            tag_of(&net),
                            Alert {
                                ips,
                                ..one(AlertKind::NetworkBruteForce, n, None, Some(net))
                            },
                        );
                    }
                }
                if let Some(u) = &e.user
                    && let Some(q) = self.user_fail.push(u, e.at, w, ip_tag, horizon, cap)
                {
                    let (n, ips, tags) = (total(q), distinct(q), q.iter().map(|x| x.2).collect::<Vec<_>>());
                    let list = self.addresses(tags.into_iter());
                    if ips >= spray_i {
                        let a = Alert {
                            ips: list.clone(),
                            ..one(AlertKind::SprayIps, ips, Some(u.clone()), None)
                        };
                        self.raise(&mut out, user_tag, a);
                    } else if n >= user_t {
                        let a = Alert {
                            ips: list,
                            ..one(AlertKind::BruteForce, n, Some(u.clone()), None)
                        };
                        self.raise(&mut out, user_tag ^ 1, a);
                    }
                }
            }
            Outcome::Succeeded => {
                let from_ip: u32 = self.ip_fail.get(&e.ip, horizon).map(|x| x.1).sum();
                let on_user: u32 = match &e.user {
                    Some(u) => self.user_fail.get(u, horizon).map(|x| x.1).sum(),
                    None => 0,
                };
                let n = from_ip.max(on_user);
                if n >= succ_t {
                    let a = one(AlertKind::CompromiseSuspicion, n, e.user.clone(), None);
                    self.raise(&mut out, ip_tag ^ user_tag, a);
                }
            }
            Outcome::Probe => {
                if let Some(q) = self.ip_probe.push(&e.ip, e.at, 1, 0, horizon, cap) {
                    let n = total(q);
                    if n >= probe_t {
                        self.raise(&mut out, ip_tag, one(AlertKind::Probing, n, None, None));
                    }
                }
            }
            Outcome::Rejected => {
                if let Some(q) = self.ip_reject.push(&e.ip, e.at, 1, 0, horizon, cap) {
                    let n = total(q);
                    if n >= reject_t {
                        self.raise(&mut out, ip_tag, one(AlertKind::Rejects, n, None, None));
                    }
                }
            }
        }
        out
    }

    fn addresses(&self, tags: impl Iterator<Item = u64>) -> Vec<IpAddr> {
        let mut seen = HashSet::new();
        tags.filter(|t| seen.insert(*t))
            .filter_map(|t| self.ips_by_tag.get(&t).copied())
            .take(MAX_LISTED)
            .collect()
    }

    fn sweep(&mut self, horizon: i64) {
        self.ip_fail.sweep(horizon);
        self.net_fail.sweep(horizon);
        self.user_fail.sweep(horizon);
        self.ip_probe.sweep(horizon);
        self.ip_reject.sweep(horizon);
        self.quiet.retain(|_, until| *until > horizon);
        let live: HashSet<u64> = self.ip_fail.keys.keys().map(tag_of).collect();
        self.ips_by_tag.retain(|t, _| live.contains(t));
    }

    /// Keys followed now, all windows together (for bounded-memory tests and status).
    pub fn tracked(&self) -> usize {
        self.ip_fail.keys.len()
            + self.net_fail.keys.len()
            + self.user_fail.keys.len()
            + self.ip_probe.keys.len()
            + self.ip_reject.keys.len()
    }
}

#[cfg(test)]
mod tests;
