//! make bench: log-watch ingest rate (issue 20): lines per second on one
//! core through the same path the running gateway takes (the file tailer,
//! the Postfix/Dovecot parsers and the detection windows) over a synthetic
//! mail.log, 1 GiB by default (`BENCH_LOG_BYTES`), with its peak memory.
//! The file is written once, in chunks, so the bench itself holds no more
//! than a chunk; memory must stay flat whatever the file size.
//!
//! Line variety follows a busy Debian mail host: mostly Postfix delivery
//! chatter (connect, cleanup, qmgr, smtp/lmtp status, disconnect), Dovecot
//! logins and sessions, and a minority of auth failures, AUTH drops and
//! NOQUEUE rejects from a rotating set of attacker addresses.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use postern::logwatch::rules::Rules;
use postern::logwatch::{Engine, tail};
use std::io::Write;
use std::time::Instant;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Line `i` of the synthetic log (the first three formats are real lines
/// from the test stack's Postfix 3.7 and Dovecot 2.3 with fields varied).
fn line(i: u64, out: &mut String) {
    use std::fmt::Write as _;
    let (h, m, s) = ((i / 3600) % 24, (i / 60) % 60, i % 60);
    let ts = format!("Dec  2 {h:02}:{m:02}:{s:02} mx");
    let q = format!("{:011X}", i.wrapping_mul(2_654_435_761) & 0xFFF_FFFF_FFFF);
    let atk = format!("203.0.{}.{}", (i / 7) % 64, i % 251);
    let user = format!("user{}", i % 5000);
    let _ = match i % 20 {
        0 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: connect from mail{}.example.net[198.51.100.{}]",
            i % 30000,
            i % 900,
            i % 250
        ),
        1 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: {q}: client=mail{}.example.net[198.51.100.{}]",
            i % 30000,
            i % 900,
            i % 250
        ),
        2 => writeln!(
            out,
            "{ts} postfix/cleanup[{}]: {q}: message-id=<{i}.{}@example.net>",
            i % 30000,
            i % 77
        ),
        3 => writeln!(
            out,
            "{ts} postfix/qmgr[1021]: {q}: from=<news{}@example.net>, size={}, nrcpt=1 (queue active)",
            i % 50,
            2000 + i % 90000
        ),
        4 => writeln!(
            out,
            "{ts} postfix/lmtp[{}]: {q}: to=<{user}@example.org>, relay=127.0.0.1[127.0.0.1]:24, delay=0.12, delays=0.05/0.01/0.02/0.04, dsn=2.0.0, status=sent (250 2.0.0 <{user}@example.org> Saved)",
            i % 30000
        ),
        5 => writeln!(out, "{ts} postfix/qmgr[1021]: {q}: removed"),
        6 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: disconnect from mail{}.example.net[198.51.100.{}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
            i % 30000,
            i % 900,
            i % 250
        ),
        7 => writeln!(
            out,
            "{ts} postfix/smtp[{}]: {q}: to=<x{i}@remote.example>, relay=mx.remote.example[192.0.2.{}]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued)",
            i % 30000,
            i % 250
        ),
        8 => writeln!(
            out,
            "{ts} dovecot: imap-login: Login: user=<{user}@example.org>, method=PLAIN, rip=192.0.2.{}, lip=192.0.2.1, mpid={}, TLS, session=<abcd{i}>",
            i % 250,
            i % 30000
        ),
        9 => writeln!(
            out,
            "{ts} dovecot: imap({user}@example.org)<{}><abcd{i}>: Disconnected: Logged out in=120 out=2210 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0",
            i % 30000
        ),
        10 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: warning: unknown[{atk}]: SASL LOGIN authentication failed: (reason unavailable), sasl_username={user}",
            i % 30000
        ),
        11 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: lost connection after AUTH from unknown[{atk}]",
            i % 30000
        ),
        12 => writeln!(
            out,
            "{ts} dovecot: imap-login: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip={atk}, lip=192.0.2.1, TLS, session=<ef{i}>"
        ),
        13 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: NOQUEUE: reject: RCPT from unknown[{atk}]: 554 5.7.1 <x{i}@elsewhere.example>: Relay access denied; from=<spam@bad.example> to=<x{i}@elsewhere.example> proto=ESMTP helo=<WIN-{}>",
            i % 30000,
            i % 999
        ),
        14 => writeln!(out, "{ts} dovecot: auth: passwd-file({user},{atk},<ef{i}>): Password mismatch"),
        15 => writeln!(
            out,
            "{ts} postfix/anvil[1030]: statistics: max connection rate 3/60s for (smtp:198.51.100.{}) at Dec  2 {h:02}:{m:02}:{s:02}",
            i % 250
        ),
        16 => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: {q}: client=laptop{}.example.org[192.0.2.{}], sasl_method=PLAIN, sasl_username={user}@example.org",
            i % 30000,
            i % 40,
            i % 250
        ),
        17 => writeln!(
            out,
            "{ts} dovecot: lmtp({user}@example.org)<{}><Xy{i}>: msgid=<{i}@example.net>: saved mail to INBOX",
            i % 30000
        ),
        18 => writeln!(out, "{ts} opendkim[811]: {q}: DKIM-Signature field added (s=mail, d=example.org)"),
        _ => writeln!(
            out,
            "{ts} postfix/smtpd[{}]: lost connection after CONNECT from unknown[198.51.100.{}]",
            i % 30000,
            i % 250
        ),
    };
}

fn main() {
    let target: u64 = std::env::var("BENCH_LOG_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let rules_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/logwatch.toml");
    let rules = Rules::parse(&std::fs::read_to_string(&rules_path).unwrap_or_default()).unwrap_or_else(|e| {
        eprintln!("{}: {e}", rules_path.display());
        std::process::exit(1)
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    // An empty file read once gives the cursor at its start.
    std::fs::write(&path, b"").unwrap();
    let mut cursor = tail::read(&path, None, 1).unwrap().cursor.unwrap();

    let t = Instant::now();
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let (mut written, mut n, mut chunk) = (0u64, 0u64, String::new());
    while written < target {
        chunk.clear();
        while chunk.len() < 1 << 20 {
            line(n, &mut chunk);
            n += 1;
        }
        f.write_all(chunk.as_bytes()).unwrap();
        written += chunk.len() as u64;
    }
    f.flush().unwrap();
    drop(f);
    eprintln!("wrote {n} lines, {written} bytes in {:.1} s", t.elapsed().as_secs_f64());

    let rss_before = status_kib("VmRSS:");
    let mut engine = Engine::new(rules);
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T23:59:59Z").unwrap().to_utc();
    let t = Instant::now();
    let mut lines = 0u64;
    loop {
        // The gateway's own read bound per round (runtime::logwatch).
        let b = tail::read(&path, Some(&cursor), 4 << 20).unwrap();
        if b.lines.is_empty() && !b.more {
            break;
        }
        lines += b.lines.len() as u64;
        let _ = engine.ingest(&b.lines, now);
        if let Some(c) = b.cursor {
            cursor = c;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = lines as f64 / secs;
    let peak = status_kib("VmHWM:");
    let st = engine.stats.clone();
    println!(
        "log ingest: {lines} lines ({:.0} MiB) in {secs:.1} s = {rate:.0} lines/s on one core; RSS {:.0} MiB before, peak {:.0} MiB; {} events, {} known, {} unknown, {} alerts, {} keys tracked",
        written as f64 / 1048576.0,
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        st.events,
        st.known,
        st.unknown,
        st.alerts,
        engine.detector().tracked()
    );
    assert_eq!(lines, n, "every line written is read once");
    assert_eq!(st.lines, n);
    let out = serde_json::json!({
        "bench": "log_ingest", "bytes": written, "lines": lines, "seconds": secs, "lines_per_s": rate,
        "rss_before_mib": rss_before as f64 / 1024.0, "rss_peak_mib": peak as f64 / 1024.0,
        "events": st.events, "known": st.known, "unknown": st.unknown, "alerts": st.alerts,
        "goal_lines_per_s": 500_000,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/logingest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap_or_default())
        .unwrap_or_else(|e| eprintln!("cannot write {}: {e}", path.display()));
    eprintln!("wrote {}", path.display());
}
