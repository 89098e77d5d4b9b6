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
