//! The other mail servers Debian ships: Exim (its default MTA), Cyrus IMAP
//! and Courier. Their lines are read the way their fail2ban filters read
//! them, by the fixed phrases each daemon writes:
//! - Exim: `dovecot_plain authenticator failed for (helo) [ip]: 535 …
//!   (set_id=user)`, `<= … H=(helo) [ip] … A=plain:user …` and
//!   `H=… [ip] … rejected RCPT <to>: …`, in its own mainlog
//!   (`2026-12-02 04:00:22 …`) or through syslog;
//! - Cyrus: `imap[pid]: badlogin: host [ip] mech [(user)] [SASL(-13): …]`
//!   and `login: host [ip] user mech User logged in` (3.6's, captured from
//!   the test stack's Cyrus, in the tests);
//! - Courier: `imapd: LOGIN FAILED, [method=M, ]user=u, ip=[::ffff:ip]` and
//!   `LOGIN, user=u, ip=[…]`.

use super::{AuthEvent, Outcome, Parsed, Service, address, between, user};
use std::net::IpAddr;

fn event(service: Service, outcome: Outcome, ip: IpAddr, user: Option<String>) -> Option<Parsed> {
    Some(Parsed::Event(AuthEvent {
        at: 0,
        service,
        outcome,
        ip,
        user,
        attempts: 1,
    }))
}

/// The address in the last `[…]` of `s` that holds one: Exim writes the
/// HELO name first, and it may be an address in brackets too.
fn last_bracket_ip(s: &str) -> Option<IpAddr> {
    let mut found = None;
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        found = address(&after[..close]).or(found);
        rest = &after[close + 1..];
    }
    found
}

/// The remote host part of an Exim line: from `marker` to where the next
/// field starts (` I=[local]`, ` P=`, ` F=`, ` rejected`, `: 535`).
fn exim_host<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let end = [" I=[", " P=", " F=", " rejected ", ": 535", ": 435", " S="]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

pub(super) fn exim(line: &str) -> Option<Parsed> {
    const FAILED: &str = " authenticator failed for ";
    if line.contains(FAILED) {
        let ip = last_bracket_ip(exim_host(line, FAILED)?)?;
        let u = between(line, "(set_id=", &[')']).and_then(user);
        return event(Service::Smtp, Outcome::Failed, ip, u);
    }
    if line.contains(" <= ") && line.contains(" A=") && line.contains(" H=") {
        let ip = last_bracket_ip(exim_host(line, " H=")?)?;
        let u = between(line, " A=", &[' '])
            .and_then(|a| a.split_once(':'))
            .and_then(|(_, u)| user(u));
        return event(Service::Smtp, Outcome::Succeeded, ip, u);
    }
    if line.contains(" rejected RCPT ") && line.contains(" H=") {
        let ip = last_bracket_ip(exim_host(line, " H=")?)?;
        let to = between(line, " rejected RCPT <", &['>']).and_then(user);
        return event(Service::Smtp, Outcome::Rejected, ip, to);
    }
    None
}

/// `imap`, `imaps`, `imapd`, `pop3`, `pop3d-ssl`, `courierpop3login`…
fn service_of(program: &str) -> Service {
    if program.contains("pop3") {
        Service::Pop3
    } else if program.contains("imap") {
        Service::Imap
    } else {
        Service::Other
    }
}

/// The program name written before `at` (`cyrus/imap[5355]`, `imapd-ssl`).
fn program(line: &str, at: usize) -> &str {
    line[..at].rsplit(' ').next().unwrap_or("")
}

pub(super) fn cyrus(line: &str) -> Option<Parsed> {
    let (outcome, start) = if let Some(i) = line.find(": badlogin: ") {
        (Outcome::Failed, i)
    } else if let Some(i) = line.find(": login: ").filter(|_| line.contains(" User logged in")) {
        (Outcome::Succeeded, i)
    } else {
        return None;
    };
    let service = service_of(program(line, start));
    let rest = &line[start..];
    let open = rest.find('[')?;
    let close = open + rest[open..].find(']')?;
    let ip = address(&rest[open + 1..close])?;
    let mut words = rest[close + 1..].split_whitespace();
    let u = match outcome {
        // `[ip] mech user SASL…`, `[ip] mech (user) [SASL…]` (3.6) or
        // `[ip] mech [SASL…]`
        Outcome::Failed => words
            .nth(1)
            .filter(|w| !w.starts_with('[') && !w.starts_with("SASL("))
            .map(|w| w.trim_start_matches('(').trim_end_matches(')'))
            .and_then(user),
        // `[ip] user mech User logged in`
        _ => words.next().and_then(user),
    };
    event(service, outcome, ip, u)
}

pub(super) fn courier(line: &str) -> Option<Parsed> {
    let (outcome, start) = if let Some(i) = line.find(": LOGIN FAILED, ") {
        (Outcome::Failed, i)
    } else if let Some(i) = line.find(": LOGIN, ") {
        (Outcome::Succeeded, i)
    } else {
        return None;
    };
    let service = service_of(program(line, start));
    let rest = &line[start..];
    let ip = between(rest, "ip=[", &[']']).and_then(address)?;
    let u = between(rest, "user=", &[',']).and_then(user);
    event(service, outcome, ip, u)
}
