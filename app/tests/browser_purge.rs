//! Issue 17, item 5's acceptance in headless Chromium (app/web/e2e/purge.mjs):
//! search every mailbox, see the dry-run count, purge, then the audit rows.
//!
//! Two real Dovecot accounts, each with one message from the campaign's
//! sender and one other. One account's mail was scanned by Postern before
//! (a backfill passed it); the other's never was. Afterwards this test
//! checks Dovecot itself: the matches are in Quarantine, the rest untouched,
//! and an EML copy of each purged message is on disk.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{ADMIN_PASSWORD, Scanners, WebPostern};
use crate::common::{eventually, unique};
use postern::config::StartAt;
use std::path::PathBuf;
use std::time::Duration;

const VIEWER_PASSWORD: &str = "viewer horse battery";

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
}

fn raw(from: &str, subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: user@example.test\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@purge.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Notes on {subject}.\r\n"
    )
    .into_bytes()
}

fn has(ids: &[String], id: &str) -> bool {
    ids.iter().any(|m| m.contains(&format!("<{id}@purge.test>")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_search_and_purge_in_chromium() {
    let playwright = web_dir().join("e2e/node_modules/playwright-core");
    assert!(
        playwright.is_dir(),
        "playwright-core is missing: run `npm ci --prefix app/web/e2e` (make test does it)"
    );
    let d = shared();
    let sender = format!("{}@campaign-purge.test", unique("payroll"));
    let names = ["purge_a", "purge_b"];
    let mut accounts = Vec::new();
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (user, pass) = d.new_user(name);
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        let (hit, miss) = (unique("hit"), unique("miss"));
        c.append("INBOX", None, &raw(&format!("Notes <{sender}>"), "Quarterly notes", &hit))
            .await;
        c.append("INBOX", None, &raw("Colleague <colleague@example.test>", "Lunch?", &miss))
            .await;
        let mut a = account(name, d.imap_port, &user, &pass, &["INBOX"]);
        if i == 0 {
            // Scanned (and passed) before the purge: its store rows follow the move.
            a.start_at = StartAt::Backfill { days: 30 };
        }
        accounts.push(a);
        clients.push(c);
        ids.push((hit, miss));
    }
    let p = WebPostern::start(accounts, Scanners::Local).await;
    let hash = bcrypt::hash(VIEWER_PASSWORD, 4).unwrap();
    assert!(p.rt.store().add_user("vic", "viewer", &hash, "test").await.unwrap());
    eventually(Duration::from_secs(60), "backfill of purge_a", || async {
        let b = p.rt.backfill_progress().await.ok()?;
        b.iter().any(|b| b.account == "purge_a" && b.finished && b.done == 2).then_some(())
    })
    .await;

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts/purge");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(web_dir().join("e2e/purge.mjs"))
        .env("BASE_URL", &p.base)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("VIEWER_PASSWORD", VIEWER_PASSWORD)
        .env("SENDER", &sender)
        .env("ACCOUNTS", names.join(","))
        .env("ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("browser script timed out")
        .expect("running node");
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{log}");
    assert!(
        out.status.success(),
        "purge acceptance failed (screenshots in {}):\n{log}",
        artifacts.display()
    );

    // Dovecot itself: the matches are in Quarantine, the others untouched.
    for (c, (hit, miss)) in clients.iter_mut().zip(&ids) {
        let inbox = c.ids("INBOX").await;
        let quarantine = c.ids("Quarantine").await;
        assert!(has(&quarantine, hit), "{quarantine:?}");
        assert!(!has(&inbox, hit), "{inbox:?}");
        assert!(has(&inbox, miss) && !has(&quarantine, miss), "{inbox:?} / {quarantine:?}");
    }
    // One job, both items moved, an EML copy of each.
    let jobs = p.rt.purge_jobs().await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = p.rt.purge_view(jobs[0].id).await.unwrap().unwrap();
    assert_eq!((job.job.state.as_str(), job.job.moved), ("done", 2));
    for item in &job.items {
        let path = item.eml_path.as_deref().expect("an EML copy");
        let kept = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
        assert!(kept.contains(&sender), "{path}");
    }
    // The scanned one is linked to its store row, which now says quarantined.
    let scanned = job.items.iter().find(|i| i.account == "purge_a").unwrap();
    let id = scanned.message.expect("purge_a's match was scanned by the backfill");
    let row = p.rt.store().message_summary(id).await.unwrap().unwrap();
    assert!(row.quarantined, "{row:?}");
    assert!(job.items.iter().find(|i| i.account == "purge_b").unwrap().message.is_none());
    // Audited per message, with the operator as actor.
    let purged = p.rt.store().audit_rows(None, Some("purged"), 50).await.unwrap();
    for name in names {
        assert!(
            purged
                .iter()
                .any(|r| r.account.as_deref() == Some(name) && r.actor == "admin:admin"),
            "no purged row for {name}: {purged:?}"
        );
    }
    p.stop().await;
}
