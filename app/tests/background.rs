//! The background duties end to end on an injected clock: the maintenance run against
//! the real Dovecot (held mail expunged from the hold folder only after its
//! retention, with the copy kept; copies pruned by class; backups rotated;
//! orphans swept), an integrity failure reported and alerted, and the
//! quarantine digest: sent over SMTP to a local sink, its release link
//! followed back into INBOX, a reused or expired link refused. Notifications
//! go to a local HTTP receiver.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::receiver::Receiver;
use crate::common::smtp_sink::SmtpSink;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern, between, cookie_of};
use crate::common::{audit_rows_at_least, eventually, mail, unique};
use postern::clock::{Clock, SharedClock, SystemClock, TestClock};
use postern::config::DigestFrequency;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const PUBLIC: &str = "https://postern.example.test";

fn eicar_mail(id: &str) -> Vec<u8> {
    use base64::Engine;
    // Assembled from two halves so this source file is not itself a test virus.
    let eicar = [&b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-"[..], b"TEST-FILE!$H+H*"].concat();
    let b64 = base64::engine::general_purpose::STANDARD.encode(eicar);
    format!(
        "From: Sender <sender@example.net>\r\nTo: user@example.org\r\nSubject: invoice attached\r\nMessage-ID: <{id}@t>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n\
         Content-Type: application/octet-stream; name=\"eicar.com\"\r\nContent-Disposition: attachment; filename=\"eicar.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// The shipped policy with a lower delete threshold, so one AV hit (strong
/// evidence) is enough to hold a message.
fn policy_with_low_delete(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/policy.toml")).unwrap();
    let p = dir.join("policy.toml");
    std::fs::write(&p, shipped.replace("delete = 40.0", "delete = 20.0")).unwrap();
    p
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_expunges_held_mail_after_retention_and_keeps_backups_rotated() {
    let d = shared();
    let (user, pass) = d.new_user("mt");
    let clock = TestClock::new(SystemClock.now());
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let scratch = tempfile::tempdir().unwrap();
    let policy = policy_with_low_delete(scratch.path());
    let p = WebPostern::start_clocked(
        vec![account("a", d.imap_port, &user, &pass, &["INBOX"])],
        Scanners::Stack,
        shared_clock,
        |s| {
            s.scan.policy_path = Some(policy);
            s.background.maintenance.backup_keep = 2;
            s.background.maintenance.hold_expunge_days = 30;
            s.background.maintenance.held_days = 90;
        },
    )
    .await;
    p.wait_idling().await;
    let admin = Admin::login(&p.base).await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &eicar_mail(&unique("held"))).await;
    let held = eventually(WAIT, "EICAR mail held", || async {
        let m = admin.get("/api/messages?limit=10").await.1["items"][0].clone();
        (m["verdict"] == "delete" && m["quarantined"] == true).then_some(m)
    })
    .await;
    let id = held["id"].as_i64().unwrap();
    let eml =
        p.rt.store()
            .message_detail(id)
            .await
            .unwrap()
            .unwrap()
            .eml_path
            .expect("held mail has a copy");
    assert!(std::path::Path::new(&eml).is_file());
    assert_eq!(c.count("Postern-Held").await, 1);

    // A stray file nobody refers to (say, left by a crash mid-write).
    let stray = p.rt.settings().eml_dir.join("a").join("0000stray.eml");
    std::fs::write(&stray, b"orphan").unwrap();

    // Day 0: nothing is old enough; a backup is taken.
    let r = p.rt.run_maintenance().await.unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.hold_expunges_queued, r.eml_pruned), (0, (0, 0, 0)));
    assert_eq!((r.backups, r.orphans_removed), (1, 0), "the stray is inside the grace period");
    assert!(std::path::Path::new(r.backup.as_deref().unwrap()).is_file());

    // Day 31: past the hold-folder retention: expunged in Dovecot, copy kept.
    clock.advance(days(31));
    let r = p.rt.run_maintenance().await.unwrap();
    assert_eq!(r.hold_expunges_queued, 1, "{r:?}");
    assert_eq!(r.orphans_removed, 1);
    assert!(!stray.exists());
    eventually(WAIT, "held mail expunged from the hold folder", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Postern-Held").await == 0).then_some(())
    })
    .await;
    assert_eq!(c.count("INBOX").await, 0, "nothing went anywhere else");
    assert!(std::path::Path::new(&eml).is_file(), "the EML copy outlives the mailbox copy");
    // (The admin's session expired with the clock jump; read the store.)
    // The expunge's row is written after the server answered.
    audit_rows_at_least(p.rt.store(), "a", "delete_done", 1).await;
    let audit = p.rt.store().audit_rows(Some("a"), None, 50).await.unwrap();
    let text = format!("{audit:?}");
    assert!(text.contains("postern:maintenance"), "{text}");
    assert!(text.contains("expunged UID"), "the expunge has its own audit row: {text}");

    // Two more daily runs: backups rotate down to POSTERN_BACKUP_KEEP.
    for _ in 0..2 {
        clock.advance(days(1));
        let r = p.rt.run_maintenance().await.unwrap();
        assert_eq!(r.backups, 2, "{r:?}");
    }
    let kept = std::fs::read_dir(&p.rt.settings().background.maintenance.backup_dir)
        .unwrap()
        .count();
    assert_eq!(kept, 2);

    // Day 92: past the held-copy retention: the copy goes, the row stays.
    clock.advance(days(60));
    let r = p.rt.run_maintenance().await.unwrap();
    assert_eq!(r.eml_pruned, (0, 0, 1), "{r:?}");
    assert!(!std::path::Path::new(&eml).exists());
    assert!(p.rt.store().message_detail(id).await.unwrap().unwrap().eml_path.is_none());

    // The schedule: not due again until the next 03:00 local after the last run.
    let runs = || async { p.rt.store().audit_rows(None, Some("maintenance"), 50).await.unwrap().len() };
    let before = runs().await;
    p.rt.ops_tick().await.unwrap();
    clock.advance(chrono::Duration::hours(25));
    p.rt.ops_tick().await.unwrap();
    p.rt.ops_tick().await.unwrap();
    let after = runs().await;
    assert_eq!(after, before + 1, "exactly one scheduled run in 25 hours");
    let metrics = reqwest::get(format!("{}/metrics", p.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("postern_maintenance_ok 1"), "{metrics}");
    assert!(metrics.contains("postern_backups 2"), "{metrics}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrity_failure_is_reported_alerted_and_keeps_old_backups() {
    let hook = Receiver::start().await;
    let url = format!("{}/hook", hook.base);
    let p = WebPostern::start_with(vec![], Scanners::Local, |s| {
        s.intel.allow_loopback_for_tests = true;
        s.background.notify.webhook_url = Some(url);
    })
    .await;
    let good = p.rt.run_maintenance().await.unwrap();
    assert!(good.ok() && good.backups == 1, "{good:?}");

    // Damage an index behind Postern's back, as a bad disk would.
    let db = rusqlite::Connection::open(&p.rt.settings().db_path).unwrap();
    db.execute_batch("CREATE TABLE scratch(a INTEGER); CREATE INDEX scratch_a ON scratch(a); INSERT INTO scratch VALUES (1),(2),(3);")
        .unwrap();
    let v: i64 = db.query_row("PRAGMA schema_version", [], |r| r.get(0)).unwrap();
    db.execute_batch(&format!(
        "PRAGMA writable_schema=ON; UPDATE sqlite_schema SET sql='CREATE INDEX scratch_a ON scratch(a DESC)' WHERE name='scratch_a'; PRAGMA schema_version={};",
        v + 1
    ))
    .unwrap();
    drop(db);

    let bad = p.rt.run_maintenance().await.unwrap();
    assert!(!bad.ok());
    assert!(bad.integrity.iter().any(|l| l.contains("missing from index scratch_a")), "{bad:?}");
    assert!(bad.backup.is_none(), "no backup of a damaged database");
    let backups = std::fs::read_dir(&p.rt.settings().background.maintenance.backup_dir)
        .unwrap()
        .count();
    assert_eq!(backups, 1, "the last good backup is not rotated away");
    let audit = p.rt.store().audit_rows(None, Some("maintenance"), 1).await.unwrap();
    assert!(
        audit[0].detail.starts_with("FAILED") && audit[0].detail.contains("scratch_a"),
        "{audit:?}"
    );
    let alert = eventually(WAIT, "maintenance alert", || async {
        hook.all()
            .into_iter()
            .find(|r| r.header("x-postern-event").as_deref() == Some("maintenance"))
    })
    .await;
    assert!(alert.json()["message"].as_str().unwrap().contains("scratch_a"));
    let metrics = reqwest::get(format!("{}/metrics", p.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("postern_maintenance_ok 0"), "{metrics}");
    let health = Admin::login(&p.base).await.get("/health").await.1.to_string();
    assert!(health.contains("found problems") && health.contains("scratch_a"), "{health}");

    // A restart remembers the failed run: /health and /metrics do not reset to "fine".
    let clock: SharedClock = Arc::new(SystemClock);
    let s = p.rt.settings().clone();
    let store = postern::store::Store::open(&s.db_path, &s.db_key, clock.clone()).unwrap();
    let restarted = postern::runtime::Runtime::assemble(s, p.rt.file_lists().clone(), store, clock)
        .await
        .unwrap();
    let last = restarted.last_maintenance().expect("the report survives a restart");
    assert!(!last.ok() && last.integrity.iter().any(|l| l.contains("scratch_a")), "{last:?}");
    p.stop().await;
}

/// GET the confirmation page, then POST its form: what a user's click does.
async fn follow(base_url: &str, link: &str) -> (u16, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(link).send().await.unwrap();
    if page.status() != 200 {
        let code = page.status().as_u16();
        return (code, page.text().await.unwrap());
    }
    let cookie = cookie_of(&page, "postern_digest");
    let html = page.text().await.unwrap();
    let csrf = between(&html, "name=\"_csrf\" value=\"").to_string();
    let action = format!("{base_url}{}", between(&html, "<form method=\"post\" action=\""));
    let r = http
        .post(action)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={csrf}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_links_release_once_and_expire() {
    let d = shared();
    let (user, pass) = d.new_user("dg");
    let sink = SmtpSink::start().await;
    let hook = Receiver::start().await;
    let clock = TestClock::new(SystemClock.now());
    let mut acct = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    acct.digest = DigestFrequency::Daily;
    acct.digest_to = Some("owner@example.test".into());
    let (smtp, hook_url) = (format!("smtp://127.0.0.1:{}", sink.port), format!("{}/hook", hook.base));
    let p = WebPostern::start_clocked(vec![acct], Scanners::Local, Arc::new(clock.clone()), |s| {
        s.intel.allow_loopback_for_tests = true;
        s.background.digest.smtp_url = Some(smtp);
        s.background.digest.from = Some("postern@example.test".into());
        s.background.digest.public_url = Some(PUBLIC.into());
        s.background.notify.webhook_url = Some(hook_url);
        s.background.notify.webhook_secret = Some("hook secret".into());
        s.background.notify.mask = true;
    })
    .await;
    // The digest names the public URL (a reverse proxy's); here that is us.
    let public = p.base.clone();
    p.rt.ops_tick().await.unwrap(); // anchors the digest schedule
    p.wait_idling().await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let subjects = [unique("wanted invoice"), unique("unwanted offer")];
    for s in &subjects {
        c.append("INBOX", None, &mail("billing@evil.test", s, &unique("q"))).await;
    }
    eventually(WAIT, "both quarantined", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 2).then_some(())
    })
    .await;

    // The webhook heard about both, signed, with sender and subject masked.
    let notes = eventually(WAIT, "two verdict notices", || async {
        let v: Vec<_> = hook
            .all()
            .into_iter()
            .filter(|r| r.header("x-postern-event").as_deref() == Some("verdict"))
            .collect();
        (v.len() == 2).then_some(v)
    })
    .await;
    for n in &notes {
        let body = String::from_utf8_lossy(&n.body);
        assert_eq!(
            n.header("x-postern-signature").unwrap(),
            postern::notify::signature("hook secret", &n.body)
        );
        assert!(
            !body.contains("billing@") && !subjects.iter().any(|s| body.contains(s.as_str())),
            "{body}"
        );
        assert_eq!(n.json()["from"], "***@evil.test");
        assert_eq!(n.json()["verdict"], "quarantine");
    }

    // The digest lists what is recorded as quarantined, and that record is
    // written after the move the mailbox already shows.
    audit_rows_at_least(p.rt.store(), "a", "action_done", 2).await;
    // The next 08:00 local: the digest goes out, once.
    clock.advance(chrono::Duration::hours(24));
    p.rt.ops_tick().await.unwrap();
    p.rt.ops_tick().await.unwrap();
    let sent = sink.all();
    assert_eq!(sent.len(), 1, "one digest");
    assert_eq!(sent[0].to, vec!["owner@example.test".to_string()]);
    let parsed = mail_parser::MessageParser::default().parse(sent[0].data.as_bytes()).unwrap();
    let text = parsed.body_text(0).unwrap().to_string();
    for s in &subjects {
        assert!(text.contains(s.as_str()), "{text}");
    }
    let links: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.starts_with("http") && w.contains("/digest/"))
        .map(|w| w.replace(PUBLIC, &public))
        .collect();
    assert_eq!(links.len(), 4, "release and delete per message: {text}");
    // Items are newest first: [release, delete] for subjects[1], then subjects[0].
    let (release_wanted, delete_unwanted) = (&links[2], &links[1]);

    // A prefetching filter's GET changes nothing.
    let peek = reqwest::get(release_wanted.as_str()).await.unwrap();
    assert_eq!(peek.status(), 200);
    assert_eq!(c.count("Quarantine").await, 2);

    let (code, body) = follow(&public, release_wanted).await;
    assert_eq!(code, 200, "{body}");
    let inbox = eventually(WAIT, "released into INBOX", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        let ids = c.ids("INBOX").await;
        (ids.len() == 1).then_some(ids)
    })
    .await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(c.count("Quarantine").await, 1);

    // Reused: refused, nothing moves.
    let (code, body) = follow(&public, release_wanted).await;
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("already been used"), "{body}");

    // Expired: the other message's delete link after 73 hours.
    clock.advance(chrono::Duration::hours(73));
    let (code, body) = follow(&public, delete_unwanted).await;
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("expired"), "{body}");
    assert_eq!(c.count("Quarantine").await, 1, "the expired link touched nothing");

    // A forged token is not a link at all.
    let forged = format!("{}/digest/AAAAAAAAAAAAAAAAAAAAAAAA.AAAA", public);
    assert_eq!(reqwest::get(forged).await.unwrap().status(), 404);
    let audit = admin_audit(&p).await;
    assert!(
        audit.contains("digest_sent") && audit.contains("digest:owner@example.test"),
        "{audit}"
    );
    p.stop().await;
}

async fn admin_audit(p: &WebPostern) -> String {
    let admin = Admin::login(&p.base).await;
    admin.get("/api/audit?limit=100").await.1.to_string()
}
