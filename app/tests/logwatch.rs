//! Log watch against the real test Dovecot: failed and successful IMAP
//! logins make Dovecot write its real log lines, log watch reads them from
//! Dovecot's log file, the sprayer becomes a `logwatch` indicator that tags
//! mail from that address, and a restart (a new watcher on the same store,
//! as after a kill: each batch and its offset are one transaction) neither
//! re-reads nor skips a line.

use crate::common::stack::{Dovecot, parse_env};
use crate::common::unique;
use futures::future::join_all;
use postern::clock::{SharedClock, SystemClock};
use postern::config::LogwatchSettings;
use postern::intel::Kind;
use postern::intel::index::{Builder, IocEntry, Severity, Source};
use postern::intel::scanner::{TAG_AUTH_ATTACKER, ThreatScanner};
use postern::logwatch::parse::{AuthEvent, Outcome};
use postern::logwatch::rules::{DEFAULT, Rules};
use postern::runtime::logwatch::LogWatcher;
use postern::scan::{ScanInput, Scanner};
use postern::store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One IMAP LOGIN then LOGOUT (Dovecot logs the attempt on disconnect).
async fn login(port: u16, user: &str, pass: &str) -> bool {
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    w.write_all(format!("a LOGIN \"{user}\" \"{pass}\"\r\n").as_bytes()).await.unwrap();
    let ok = loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap() == 0 {
            break false;
        }
        if line.starts_with("a ") {
            break line.starts_with("a OK");
        }
    };
    w.write_all(b"b LOGOUT\r\n").await.unwrap();
    while r.read_line(&mut line).await.unwrap_or(0) > 0 {
        line.clear();
    }
    ok
}

/// Rounds until `done` holds for the stored events (Dovecot writes a line
/// when the connection ends, a moment after our LOGOUT).
async fn read_until(w: &mut LogWatcher, store: &Store, done: impl Fn(&[AuthEvent]) -> bool) -> Vec<AuthEvent> {
    for _ in 0..300 {
        w.round().await.unwrap();
        let events = store.logwatch_events_since(0).await.unwrap();
        if done(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("log watch never read the expected lines");
}

fn count(events: &[AuthEvent], user: &str, outcome: Outcome) -> usize {
    events
        .iter()
        .filter(|e| e.user.as_deref() == Some(user) && e.outcome == outcome)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_spray_then_login_is_an_attacker_ioc_that_tags_mail_and_survives_a_restart() {
    // A Dovecot of its own: after failed logins Dovecot delays every login
    // from that address (its auth penalty, up to 15 s), which would stall
    // the other tests' logins to the shared instance from 127.0.0.1.
    let d = Dovecot::private("logwatch", None);
    let log = PathBuf::from(&parse_env(&d.base.join("peers.env"))["DOVECOT_LOG"]);
    let dir = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&dir.path().join("db"), &[9; 32], clock.clone()).unwrap();
    // The stack's clients all come from localhost, which the shipped rules ignore.
    let text = DEFAULT
        .replace("ignore = [\"127.0.0.0/8\", \"::1\"]", "ignore = []")
        .replace("spray_users_per_ip = 5", "spray_users_per_ip = 3")
        .replace("success_after_failures = 5", "success_after_failures = 3");
    let s = LogwatchSettings {
        files: vec![log],
        rules: Rules::parse(&text).unwrap(),
        ..Default::default()
    };
    let mut w = LogWatcher::new(&s, store.clone(), clock.clone()).await.unwrap();
    w.round().await.unwrap();

    let (user, pass) = d.new_user("lwok");
    let sprayed: Vec<String> = (0..3).map(|i| unique(&format!("lwspray{i}x"))).collect();
    let fails = join_all(sprayed.iter().map(|u| login(d.imap_port, u, "wrong-password"))).await;
    assert!(fails.iter().all(|ok| !ok), "wrong passwords are refused");
    assert!(login(d.imap_port, &user, &pass).await);
    let events = read_until(&mut w, &store, |ev| {
        // new_user() logs in once itself; ours is the login after the spray.
        sprayed.iter().all(|u| count(ev, u, Outcome::Failed) == 1) && count(ev, &user, Outcome::Succeeded) == 2
    })
    .await;
    assert!(events.iter().all(|e| e.ip.is_loopback()));
    assert!(w.stats().lines > 0 && w.stats().events > 0);

    let attacks = store.logwatch_attacks(1000).await.unwrap();
    let kinds: Vec<&str> = attacks.iter().map(|a| a.kind.as_str()).collect();
    assert!(kinds.contains(&"spray_users"), "{kinds:?}");
    assert!(
        attacks
            .iter()
            .any(|a| a.kind == "compromise_suspicion" && a.user.as_deref() == Some(&user)),
        "a login after the spray is a compromise suspicion: {attacks:?}"
    );
    let iocs = store.all_indicators().await.unwrap();
    let ioc = iocs
        .iter()
        .find(|i| i.ind.value == "127.0.0.1" && i.ind.source == "logwatch")
        .expect("the sprayer is an indicator");
    assert!(ioc.ind.confidence >= 85 && ioc.ind.expires_at.is_some(), "{ioc:?}");
    assert!(
        attacks.iter().all(|a| a.indicator == Some(ioc.id)),
        "every attack is a sighting of it"
    );

    // Mail whose trusted hop is that address gets the log watch tag.
    let entry = IocEntry {
        id: ioc.id,
        kind: Kind::Ip,
        value: ioc.ind.value.clone(),
        source: Source {
            name: ioc.ind.source.clone(),
            ioc: Some(ioc.id),
            confidence: ioc.ind.confidence,
            severity: Severity::parse(&ioc.ind.severity).unwrap(),
            expires: None,
        },
        false_positive: false,
    };
    let mut b = Builder::new();
    b.iocs(&[entry], clock.now().timestamp());
    let scanner = ThreatScanner::new(
        Arc::new(arc_swap::ArcSwap::from_pointee(b.build())),
        None,
        clock.clone(),
        Duration::from_secs(5),
    );
    let input = ScanInput {
        sender_ip: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    };
    let tags: Vec<String> = scanner.scan(&input).await.unwrap().into_iter().map(|f| f.tag).collect();
    assert_eq!(tags, vec![TAG_AUTH_ATTACKER.to_string()]);

    // Down, lines arrive, up again: the new lines once, the old ones never again.
    drop(w);
    let late = unique("lwlate");
    assert!(!login(d.imap_port, &late, "wrong-password").await);
    let mut w = LogWatcher::new(&s, store.clone(), clock.clone()).await.unwrap();
    let events = read_until(&mut w, &store, |ev| count(ev, &late, Outcome::Failed) >= 1).await;
    assert_eq!(count(&events, &late, Outcome::Failed), 1, "not skipped, not doubled");
    for u in &sprayed {
        assert_eq!(count(&events, u, Outcome::Failed), 1, "{u} read once across the restart");
    }
    assert_eq!(count(&events, &user, Outcome::Succeeded), 2);
}

/// A Dovecot auth-failure line for user `u{n}` (each line its own user).
fn failure_line(n: usize) -> String {
    format!(
        "{} mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<killu{n}>, method=PLAIN, rip=203.0.113.{}, lip=192.0.2.1, TLS, session=<k{n}>\n",
        chrono::Local::now().format("%b %e %H:%M:%S"),
        n % 250
    )
}

fn append(path: &std::path::Path, from: usize, to: usize) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
    let text: String = (from..to).map(failure_line).collect();
    f.write_all(text.as_bytes()).unwrap();
}

// The real binary, killed with SIGKILL while it ingests a growing log, then
// started again after the log was rotated (renamed to mail.log.1, a new
// mail.log) while it was down: every line is stored exactly once, none
// re-read, none skipped (each batch and its offset are one transaction).
#[test]
fn issue_20_sigkill_of_the_real_binary_neither_rereads_nor_skips() {
    use crate::common::harness::{Child, query_i64, write_config};
    const TOTAL: usize = 3000;
    let d = crate::common::stack::shared();
    let (user, pass) = d.new_user("lwkill");
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), d.imap_port, &user, &pass, &["INBOX"]);
    let log = dir.path().join("mail.log");
    std::fs::write(&log, b"").unwrap();
    let db = dir.path().join("postern.db");
    let env = [
        ("POSTERN_LOGWATCH_FILES", log.to_str().unwrap()),
        ("POSTERN_LOGWATCH_POLL_SECS", "1"),
    ];
    let q = |sql: &str| query_i64(&db, sql);
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let child = Child::spawn_with(dir.path(), None, &env);
    // A file is followed from where it ends when first seen: wait for that.
    wait("log watch never read the empty log", &|| {
        q("SELECT COUNT(*) FROM logwatch_offsets") == 1
    });

    // Grow the log in small appends across several rounds; kill -9 as soon
    // as some (not all) lines are stored.
    let mut written = 0;
    while q("SELECT COUNT(*) FROM logwatch_events") < 1 {
        assert!(written < TOTAL / 2, "nothing ingested after {written} lines");
        append(&log, written, written + 50);
        written += 50;
        std::thread::sleep(Duration::from_millis(100));
    }
    append(&log, written, written + 200);
    written += 200;
    child.kill9();
    let stored = q("SELECT COUNT(*) FROM logwatch_events") as usize;
    assert!(stored > 0 && stored <= written, "{stored} of {written}");

    // While it is down: more lines, then logrotate's rename and a new file.
    append(&log, written, written + 300);
    written += 300;
    std::fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    append(&log, written, TOTAL);

    let _child = Child::spawn_with(dir.path(), None, &env);
    wait("not every line arrived after the restart", &|| {
        q("SELECT COUNT(*) FROM logwatch_events") >= TOTAL as i64
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(q("SELECT COUNT(*) FROM logwatch_events"), TOTAL as i64, "re-read lines");
    assert_eq!(
        q("SELECT COUNT(DISTINCT username) FROM logwatch_events WHERE username LIKE 'killu%'"),
        TOTAL as i64,
        "skipped lines"
    );
}
