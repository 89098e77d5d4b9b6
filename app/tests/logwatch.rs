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
    login_from("127.0.0.1".parse().unwrap(), port, user, pass).await
}

/// [`login`] from the loopback address `src` (any 127.0.0.x is this host),
/// so Dovecot logs it as that client.
async fn login_from(src: std::net::IpAddr, port: u16, user: &str, pass: &str) -> bool {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::new(src, 0)).unwrap();
    let s = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
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

/// A loopback address of this run's own, so Dovecot's per-address auth
/// penalty and the attack windows see only this test's logins.
fn own_loopback() -> std::net::IpAddr {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    unique("lwip").hash(&mut h);
    std::net::IpAddr::from([127, 0, 0, 2 + (h.finish() % 250) as u8])
}

// Issue 20: an address that sprays the real test-stack Dovecot's IMAP
// logins (read from Dovecot's own log file by the running log watch), then
// sends phishing whose trusted Received hop is that address into a watched
// mailbox, ends up as one incident with both; the attacker is an indicator
// with sightings, the message carries the log-watch tag, the login after
// the spray reaches ntfy and the webhook, and the outputs (blocklist file,
// attacks page and API, CSV exports, admin digest) all name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_an_ip_that_sprays_dovecot_then_sends_phishing_is_one_incident_with_both() {
    use crate::common::client::TestClient;
    use crate::common::harness::account;
    use crate::common::receiver::Receiver;
    use crate::common::smtp_sink::SmtpSink;
    use crate::common::web::{Admin, Scanners, WebPostern};
    use crate::common::{eventually, stack::shared};
    const WAIT: Duration = Duration::from_secs(60);

    let d = shared();
    let log = PathBuf::from(&parse_env(&d.base.join("peers.env"))["DOVECOT_LOG"]);
    let attacker = own_loopback();
    let (user, pass) = d.new_user("lwinc");
    let (victim, victim_pass) = d.new_user("lwvictim");
    let hook = Receiver::start().await;
    let sink = SmtpSink::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let blocklist = scratch.path().join("attackers.txt");
    let rules = DEFAULT
        .replace("ignore = [\"127.0.0.0/8\", \"::1\"]", "ignore = []")
        .replace("spray_users_per_ip = 5", "spray_users_per_ip = 3")
        .replace("success_after_failures = 5", "success_after_failures = 3");
    let (hook_base, smtp, bl) = (hook.base.clone(), format!("smtp://127.0.0.1:{}", sink.port), blocklist.clone());
    let p = WebPostern::start_with(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], Scanners::Local, |s| {
        s.logwatch.files = vec![log];
        s.logwatch.rules = Rules::parse(&rules).unwrap();
        s.logwatch.poll = Duration::from_secs(1);
        s.logwatch.blocklist = Some(bl);
        s.intel.allow_loopback_for_tests = true;
        s.background.notify.ntfy_url = Some(format!("{hook_base}/postern-alerts"));
        s.background.notify.webhook_url = Some(format!("{hook_base}/hook"));
        s.background.digest.smtp_url = Some(smtp);
        s.background.digest.from = Some("postern@example.test".into());
        s.background.digest.public_url = Some("https://postern.example.test".into());
        s.background.digest.admin_to = Some("postmaster@example.test".into());
    })
    .await;
    let since = p.rt.store().now();
    p.rt.spawn_logwatch(p.shutdown.clone()).await.unwrap();
    // Log watch follows the log from its end: wait until it has read it once.
    eventually(WAIT, "the blocklist's first write", || async { blocklist.exists().then_some(()) }).await;
    p.wait_idling().await;

    // The spray: wrong passwords for three users, then a login that works.
    let sprayed: Vec<String> = (0..3).map(|i| unique(&format!("lwincspray{i}x"))).collect();
    for u in &sprayed {
        assert!(!login_from(attacker, d.imap_port, u, "wrong-password").await);
    }
    assert!(login_from(attacker, d.imap_port, &victim, &victim_pass).await);
    let ip = attacker.to_string();
    let ioc = eventually(WAIT, "the sprayer as a log-watch indicator", || async {
        let iocs = p.rt.store().all_indicators().await.unwrap();
        iocs.into_iter()
            .find(|i| i.ind.value == ip && i.ind.source == "logwatch" && i.ind.kind == "ip")
    })
    .await;
    // The login after the spray: a compromise suspicion on both channels.
    let (ntfy, webhook) = eventually(WAIT, "compromise alerts on ntfy and the webhook", || async {
        // The stack's Dovecot log is shared with other tests, whose logins
        // may raise suspicions of their own: look for this attacker's.
        let all = hook.all();
        let ours =
            |r: &&crate::common::receiver::Received| r.json()["message"].as_str().is_some_and(|m| m.contains(&ip) && m.contains(&victim));
        let ntfy = all
            .iter()
            .filter(ours)
            .find(|r| r.json()["topic"] == "postern-alerts" && r.json()["tags"][0] == "key")
            .cloned();
        let webhook = all
            .iter()
            .filter(ours)
            .find(|r| r.header("x-postern-event").as_deref() == Some("compromise_suspicion"))
            .cloned();
        Some((ntfy?, webhook?))
    })
    .await;
    for r in [&ntfy, &webhook] {
        let text = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(text.contains(&ip) && text.contains(&victim), "{text}");
    }
    assert_eq!(ntfy.json()["priority"], 5);
    // The blocklist file follows the attacker set.
    eventually(WAIT, "the attacker in the blocklist", || async {
        let text = std::fs::read_to_string(&blocklist).ok()?;
        text.lines().any(|l| l == ip).then_some(())
    })
    .await;

    // Then phishing from that address reaches the watched INBOX.
    p.rt.sync_indicators().await.unwrap();
    let subject = unique("Your mailbox password expires today");
    let phish = format!(
        "Received: from mail.evil-login.test (mail.evil-login.test [{ip}]) by mx.example.org with ESMTP; Wed, 02 Dec 2026 10:00:00 +0000\r\n\
         From: IT Helpdesk <helpdesk@evil-login.test>\r\nTo: {user}@example.org\r\nSubject: {subject}\r\nMessage-ID: <{}@evil-login.test>\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nConfirm your password at http://evil-login.test/verify today.\r\n",
        unique("ph")
    );
    TestClient::connect(d.imap_port, &user, &pass)
        .await
        .append("INBOX", None, phish.as_bytes())
        .await;
    let m = eventually(WAIT, "the phishing scanned", || async {
        let rows = p.rt.store().list_messages(&Default::default()).await.unwrap();
        rows.into_iter()
            .find(|m| m.subject.as_deref() == Some(subject.as_str()) && m.verdict.is_some())
    })
    .await;
    assert!(
        m.tags.as_deref().unwrap_or("").contains(TAG_AUTH_ATTACKER),
        "the log-watch tag on the message: {m:?}"
    );

    // One incident for the address, with the attack burst and the mail.
    let (inc, items) = eventually(WAIT, "the mail in the incident", || async {
        let mine: Vec<_> =
            p.rt.incidents(None, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|i| i.ip == ip)
                .collect();
        assert!(mine.len() <= 1, "one incident per attacker: {mine:?}");
        let (inc, items) = p.rt.incident(mine.first()?.id).await.unwrap()?;
        items
            .iter()
            .any(|t| t.kind == "mail" && t.target == Some(m.id))
            .then_some((inc, items))
    })
    .await;
    assert!(inc.attacks >= 1 && inc.mails == 1, "{inc:?} {items:?}");
    let attack_items: Vec<_> = items.iter().filter(|t| t.kind == "attack").collect();
    assert!(
        attack_items.iter().any(|t| t.detail.contains("password spraying")),
        "the spray is on the timeline: {items:?}"
    );
    assert!(
        items.iter().any(|t| t.kind == "ioc_hit" && t.detail.contains(&ip)),
        "the indicator's hit on the mail is on the timeline: {items:?}"
    );
    assert!(items.iter().any(|t| t.kind == "mail" && t.link.contains(&ip)), "{items:?}");

    // The indicator, with its sightings: every attack, and the message.
    let sightings = p.rt.store().sightings(ioc.id, 100).await.unwrap();
    assert!(
        sightings.iter().any(|s| s.message == m.id && s.source == "logwatch"),
        "{sightings:?}"
    );
    let attacks = p.rt.store().logwatch_attacks(10_000).await.unwrap();
    let mine: Vec<_> = attacks.iter().filter(|a| a.ip.as_deref() == Some(ip.as_str())).collect();
    assert!(!mine.is_empty() && mine.iter().all(|a| a.indicator == Some(ioc.id)), "{mine:?}");

    // The outputs: page, API, CSV exports (with the page's filters), digest.
    let admin = Admin::login(&p.base).await;
    let (status, page) = admin.page(&format!("/attacks?days=1&ip={ip}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<svg") && page.contains(&ip) && page.contains("id=\"incidents-link\""),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script");
    let (status, api) = admin.get("/api/attacks?days=1").await;
    assert_eq!(status, 200);
    let row = api["attackers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ip"] == ip.as_str())
        .cloned();
    let row = row.unwrap_or_else(|| panic!("{api}"));
    assert_eq!(row["ioc"], "active");
    assert!(
        row["attempts"].as_i64().unwrap() >= 3 && row["users"].as_i64().unwrap() >= 3,
        "{row}"
    );
    let (status, csv) = admin.page(&format!("/export/attempts.csv?days=1&ip={ip}")).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,time,source,service,outcome,ip,user,attempts"), "{csv}");
    assert!(
        lines.len() > 4 && lines[1..].iter().all(|l| l.contains(&ip)),
        "only this address: {csv}"
    );
    assert!(sprayed.iter().all(|u| csv.contains(u.as_str())), "{csv}");
    let (_, csv) = admin.page(&format!("/export/attackers.csv?days=1&ip={ip}")).await;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with(&format!("{ip},")), "{csv}");

    assert!(p.rt.send_admin_digest(&since).await.unwrap());
    let mail = eventually(WAIT, "the admin digest", || async {
        sink.all()
            .into_iter()
            .find(|m| m.to.iter().any(|t| t.contains("postmaster@example.test")))
    })
    .await;
    let body = postern::scan::ScanInput::parse(mail.data.into_bytes(), &Default::default()).text;
    assert!(body.contains("COMPROMISE SUSPICIONS") && body.contains(&ip), "{body}");
    assert!(
        body.contains(&format!("/incidents/{}", inc.id)),
        "the opened incident is linked: {body}"
    );
    p.stop().await;
}
