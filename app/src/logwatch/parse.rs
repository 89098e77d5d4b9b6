//! Debian Postfix and Dovecot log lines turned into authentication events,
//! and those of Exim, Cyrus IMAP and Courier (`parse/others.rs`).
//!
//! Lines come in four shapes and all four are read:
//! - classic syslog: `Dec  2 04:00:22 mx postfix/smtpd[123]: …`;
//! - RFC 3339 syslog (Debian 12+ rsyslog): `2026-12-02T04:00:22.123+00:00 mx dovecot: …`;
//! - Dovecot's own `log_path` file: `Dec 02 04:00:22 imap-login: Info: …`;
//! - Exim's mainlog: `2026-12-02 04:00:22 …` (local time).
//!
//! The parser looks for the fixed phrases the daemons write and takes the
//! fields around them; anything else is [`Parsed::Unknown`], which callers
//! count and otherwise ignore. Nothing here panics or allocates more than
//! the line it is given.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use std::net::IpAddr;

/// Longest user name kept; longer ones are cut (attackers send anything).
const MAX_USER: usize = 128;

/// Which daemon the attempt was against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Postfix SMTP AUTH (submission, smtps, port 25).
    Smtp,
    /// Dovecot IMAP.
    Imap,
    /// Dovecot POP3.
    Pop3,
    /// Another Dovecot login service (submission, managesieve).
    Other,
}

impl Service {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::Other => "other",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A wrong password or unknown user.
    Failed,
    /// A successful login.
    Succeeded,
    /// A connection that went away around authentication without a
    /// verdict (Postfix `lost connection after AUTH`, Dovecot `Aborted
    /// login` with no attempt): scanners do this, so do flaky clients.
    Probe,
    /// Postfix refused a recipient (`NOQUEUE: reject`).
    Rejected,
}

impl Outcome {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failed => "failed",
            Outcome::Succeeded => "succeeded",
            Outcome::Probe => "probe",
            Outcome::Rejected => "rejected",
        }
    }
}

/// One authentication-related event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// Unix seconds, from the line (or the reading time when the line has none).
    pub at: i64,
    /// The daemon.
    pub service: Service,
    /// What happened.
    pub outcome: Outcome,
    /// The remote address.
    pub ip: IpAddr,
    /// The user name tried, when the line names one.
    pub user: Option<String>,
    /// Attempts the line stands for (Dovecot sums them per connection).
    pub attempts: u32,
}

/// What a line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An event.
    Event(AuthEvent),
    /// A line we know and deliberately skip (e.g. Dovecot's auth process
    /// repeating what the login process reports).
    Known,
    /// Anything else.
    Unknown,
}

/// Parses one line; `now` dates lines without a year and lines without a time.
pub fn parse_line(line: &str, now: DateTime<Utc>) -> Parsed {
    // Most lines of a busy host are delivery chatter that is no event: the
    // time (a date parse in local time) is read only for the events.
    let parsed = postfix(line)
        .or_else(|| dovecot(line))
        .or_else(|| others::exim(line))
        .or_else(|| others::cyrus(line))
        .or_else(|| others::courier(line));
    match parsed.unwrap_or(Parsed::Unknown) {
        Parsed::Event(mut e) => {
            e.at = timestamp(line, now).unwrap_or(now).timestamp();
            Parsed::Event(e)
        }
        other => other,
    }
}

/// The text after `start` up to (not including) the first of `ends`.
fn between<'a>(s: &'a str, start: &str, ends: &[char]) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(rest.find(ends).map_or(rest, |i| &rest[..i]))
}

fn user(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut end = s.len().min(MAX_USER);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_string())
}

/// `host[1.2.3.4]` after `marker` → the address.
fn bracket_ip(s: &str, marker: &str) -> Option<IpAddr> {
    let rest = &s[s.find(marker)? + marker.len()..];
    let open = rest.find('[')?;
    let close = open + rest[open..].find(']')?;
    address(&rest[open + 1..close])
}

/// An address written bare, in IPv6 form for IPv4 (`::ffff:192.0.2.4`) or
/// with Postfix's and Exim's `IPv6:` prefix.
fn address(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.strip_prefix("IPv6:")
        .unwrap_or(s)
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

fn postfix(line: &str) -> Option<Parsed> {
    if !line.contains(" postfix/") {
        return None;
    }
    let ev = |outcome, ip, user: Option<String>| {
        Some(Parsed::Event(AuthEvent {
            at: 0,
            service: Service::Smtp,
            outcome,
            ip,
            user,
            attempts: 1,
        }))
    };
    if let Some(i) = line.find(" authentication failed") {
        // `warning: host[ip]: SASL LOGIN authentication failed: <reason>[, sasl_username=u]`
        let head = &line[..i];
        if head.contains(": SASL ") {
            let ip = bracket_ip(head, "warning: ")?;
            let u = between(&line[i..], "sasl_username=", &[',', ' ']).and_then(user);
            return ev(Outcome::Failed, ip, u);
        }
    }
    if line.contains("lost connection after AUTH from ") {
        return ev(Outcome::Probe, bracket_ip(line, "lost connection after AUTH from ")?, None);
    }
    if line.contains("NOQUEUE: reject: ") {
        let ip = bracket_ip(line, " from ")?;
        let to = between(line, " to=<", &['>']).and_then(user);
        return ev(Outcome::Rejected, ip, to);
    }
    if line.contains(", sasl_username=") && line.contains(": client=") {
        // `QUEUEID: client=host[ip], sasl_method=PLAIN, sasl_username=u`
        let ip = bracket_ip(line, ": client=")?;
        return ev(Outcome::Succeeded, ip, between(line, "sasl_username=", &[',', ' ']).and_then(user));
    }
    Some(Parsed::Unknown)
}

fn login_service(line: &str) -> Option<(Service, &str)> {
    for (name, s) in [
        ("imap-login: ", Service::Imap),
        ("pop3-login: ", Service::Pop3),
        ("submission-login: ", Service::Other),
        ("managesieve-login: ", Service::Other),
    ] {
        if let Some(i) = line.find(name) {
            return Some((s, &line[i + name.len()..]));
        }
    }
    None
}

fn dovecot(line: &str) -> Option<Parsed> {
    let Some((service, msg)) = login_service(line) else {
        // The auth process says `passwd-file(user,ip,<session>): Password
        // mismatch` for the same attempt the login process reports.
        // Mail processes (`imap(user)<pid><session>: …`) log sessions, not logins.
        let known = [" auth: ", " imap(", " pop3(", " lmtp(", " submission("]
            .iter()
            .any(|m| line.contains(m));
        return known.then_some(Parsed::Known);
    };
    let ip: Option<IpAddr> = between(msg, "rip=", &[',', ' ']).and_then(|s| s.parse().ok());
    let u = between(msg, "user=<", &['>']).and_then(user);
    let ev = |outcome, attempts| {
        Some(Parsed::Event(AuthEvent {
            at: 0,
            service,
            outcome,
            ip: ip?,
            user: u.clone(),
            attempts,
        }))
    };
    if msg.contains("Login: user=<") {
        return ev(Outcome::Succeeded, 1).or(Some(Parsed::Known));
    }
    // 2.2: `Disconnected (auth failed, 3 attempts in 12 secs)`, 2.3:
    // `Disconnected: Aborted login by logging out (auth failed, 1 attempts
    // in 2 secs)`, `Aborted login (auth failed, …)`, 2.4: `Login aborted: …
    // (auth failed, …)`.
    if let Some(n) = between(msg, "(auth failed, ", &[' ']) {
        let attempts = n.parse::<u32>().unwrap_or(1).clamp(1, 1000);
        return ev(Outcome::Failed, attempts).or(Some(Parsed::Known));
    }
    if msg.contains("Aborted login") || msg.contains("Login aborted") {
        // Aborted before any attempt: a probe when it names an address.
        return ev(Outcome::Probe, 1).or(Some(Parsed::Known));
    }
    Some(Parsed::Known)
}

/// The line's time: RFC 3339 first token, Exim's `YYYY-MM-DD hh:mm:ss` in
/// local time, or a classic `Mmm dd hh:mm:ss` prefix in local time, dated
/// in the year that puts it not after `now`.
fn timestamp(line: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let first = line.split(' ').next()?;
    if first.len() >= 19 && first.as_bytes().get(4) == Some(&b'-') {
        return DateTime::parse_from_rfc3339(first).ok().map(|t| t.with_timezone(&Utc));
    }
    if first.len() == 10 && first.as_bytes().get(4) == Some(&b'-') {
        return NaiveDateTime::parse_from_str(line.get(..19)?, "%Y-%m-%d %H:%M:%S")
            .ok()
            .and_then(|n| chrono::Local.from_local_datetime(&n).earliest())
            .map(|t| t.with_timezone(&Utc));
    }
    let head = line.get(..15)?;
    let year = now.with_timezone(&chrono::Local).year();
    let local = |y: i32| {
        NaiveDateTime::parse_from_str(&format!("{y} {head}"), "%Y %b %e %H:%M:%S")
            .ok()
            .and_then(|n| chrono::Local.from_local_datetime(&n).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    let t = local(year)?;
    // Lines from late December read in January belong to last year.
    if t > now + chrono::Duration::days(1) {
        local(year - 1)
    } else {
        Some(t)
    }
}

mod others;
#[cfg(test)]
mod tests;
