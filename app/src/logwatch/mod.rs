//! Log watch: the mail server's own authentication log (Postfix SASL,
//! Dovecot IMAP/POP3 logins) read as it grows, turned into events,
//! windows and alerts, and attackers turned into indicators that the
//! threat scanner matches against mail.
//!
//! Like `intel`, nothing here touches the store, IMAP or the web layer:
//! `runtime::logwatch` reads files through [`tail`], feeds lines to an
//! [`Engine`] and stores what comes out (events, alerts, indicators and
//! the file offset in one transaction).

pub mod detect;
pub mod enrich;
pub mod journal;
pub mod parse;
pub mod rules;
pub mod tail;

use crate::domain::NewIndicator;
use chrono::{DateTime, Utc};
use detect::{Alert, AlertKind, Detector};
use parse::{AuthEvent, Parsed};
use rules::Rules;

/// The IOC source log watch writes; the threat scanner gives hits on it
/// their own tag.
pub const IOC_SOURCE: &str = "logwatch";

/// Why log watch could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogwatchError {
    /// A rules file that does not validate.
    #[error("log watch rules {path}: {detail}")]
    Rules {
        /// File.
        path: String,
        /// Every problem.
        detail: String,
    },
    /// A MaxMind database that cannot be opened.
    #[error("MaxMind database {path}: {detail}")]
    Geo {
        /// File.
        path: String,
        /// Reader's error.
        detail: String,
    },
    /// Reading a log.
    #[error("log {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Counts over an engine's life.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Lines read.
    pub lines: u64,
    /// Lines that were events.
    pub events: u64,
    /// Lines known and skipped.
    pub known: u64,
    /// Lines no parser recognised.
    pub unknown: u64,
    /// Alerts raised.
    pub alerts: u64,
}

/// What one batch of lines produced.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Every event, in line order.
    pub events: Vec<AuthEvent>,
    /// Alerts those events completed.
    pub alerts: Vec<Alert>,
}

/// Parser plus detector.
#[derive(Debug)]
pub struct Engine {
    detector: Detector,
    /// Counts so far.
    pub stats: Stats,
}

impl Engine {
    /// An engine with `rules`.
    pub fn new(rules: Rules) -> Engine {
        Engine {
            detector: Detector::new(rules),
            stats: Stats::default(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        self.detector.rules()
    }

    /// The detector (for bounds and status).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Replays stored events into the windows (after a restart), raising nothing.
    pub fn warm(&mut self, events: &[AuthEvent]) {
        for e in events {
            let _ = self.detector.observe(e);
        }
    }

    /// Parses `lines` (read at `now`) and runs them through the windows.
    pub fn ingest<S: AsRef<str>>(&mut self, lines: &[S], now: DateTime<Utc>) -> Ingested {
        let mut out = Ingested::default();
        for l in lines {
            self.stats.lines += 1;
            match parse::parse_line(l.as_ref(), now) {
                Parsed::Event(e) => {
                    self.stats.events += 1;
                    let alerts = self.detector.observe(&e);
                    self.stats.alerts += alerts.len() as u64;
                    out.alerts.extend(alerts);
                    out.events.push(e);
                }
                Parsed::Known => self.stats.known += 1,
                Parsed::Unknown => self.stats.unknown += 1,
            }
        }
        out
    }
}

/// The indicators an alert names: each attacking address (and the network
/// for a network alert), with the confidence the rules give that kind and
/// an expiry counted from the alert.
pub fn indicators(a: &Alert, rules: &Rules) -> Vec<NewIndicator> {
    let i = &rules.ioc;
    let (confidence, severity) = match a.kind {
        AlertKind::BruteForce => (i.confidence_brute_force, "high"),
        AlertKind::NetworkBruteForce => (i.confidence_network, "medium"),
        AlertKind::SprayUsers | AlertKind::SprayIps => (i.confidence_spray, "high"),
        AlertKind::Probing => (i.confidence_probing, "low"),
        AlertKind::Rejects => (i.confidence_rejects, "low"),
        AlertKind::CompromiseSuspicion => (i.confidence_compromise, "critical"),
    };
    let expires = DateTime::<Utc>::from_timestamp(a.at + i64::from(i.expiry_hours) * 3600, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let note = Some(describe(a));
    let one = |kind: &str, value: String| NewIndicator {
        kind: kind.into(),
        value,
        source: IOC_SOURCE.into(),
        confidence,
        severity: severity.into(),
        expires_at: expires.clone(),
        false_positive: false,
        note: note.clone(),
    };
    let mut out: Vec<NewIndicator> = a.ips.iter().map(|ip| one("ip", ip.to_string())).collect();
    if let Some(n) = a.network {
        out.push(one("cidr", n.to_string()));
    }
    out
}

/// One line for the operator.
pub fn describe(a: &Alert) -> String {
    let who = match (&a.network, a.ips.as_slice()) {
        (Some(n), _) => format!("network {n}"),
        (None, [one]) => one.to_string(),
        (None, many) => format!("{} addresses", many.len()),
    };
    let user = a.user.as_deref().map(|u| format!(" user {u:?}")).unwrap_or_default();
    match a.kind {
        AlertKind::BruteForce => format!("brute force from {who}{user}: {} failed logins", a.count),
        AlertKind::NetworkBruteForce => format!("brute force from {who}: {} failed logins", a.count),
        AlertKind::SprayUsers => format!("password spraying from {who}: {} user names tried", a.count),
        AlertKind::SprayIps => format!("{who} guessing{user}: {} addresses", a.count),
        AlertKind::Probing => format!("probing from {who}: {} connections dropped around AUTH", a.count),
        AlertKind::Rejects => format!("{who}: {} rejected recipients", a.count),
        AlertKind::CompromiseSuspicion => format!("compromise suspicion: {who}{user} logged in after {} failures", a.count),
    }
}
