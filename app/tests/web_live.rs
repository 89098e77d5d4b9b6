//! Issue 22: mail Postern let through keeps no copy, yet the drawer
//! previews, quarantines and learns it by reading it from the real Dovecot
//! on demand: `BODY.PEEK[]` (flags untouched), the recorded UIDVALIDITY and
//! content hash, the EML copy kept before the move, and plain words when
//! the message is no longer where Postern saw it.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{eventually, unique};
use postern::domain::MessageKey;
use sha2::{Digest, Sha256};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn html_mail(subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Colleague <colleague@friends.test>\r\nTo: user@example.test\r\nSubject: {subject}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@live.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p>Lunch at noon on Friday, {id}.</p>\
         <img src=\"https://tracker.example/p.gif\">\r\n"
    )
    .into_bytes()
}

/// The message row of `subject` once it has been scanned and let through.
async fn scanned(admin: &Admin, subject: &str) -> i64 {
    eventually(WAIT, &format!("{subject} scanned"), || async move {
        let (_, v) = admin.get(&format!("/api/messages?q={}", subject.replace(' ', "%20"))).await;
        v["items"]
            .as_array()?
            .iter()
            .find(|m| m["subject"] == subject && m["status"] == "done")
            .and_then(|m| m["id"].as_i64())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_let_through_is_previewed_quarantined_and_learned_from_the_mailbox() {
    let d = shared();
    let (user, pass) = d.new_user("wlive");
    let acct = account("wlive", d.imap_port, &user, &pass, &["INBOX"]);
    let p = WebPostern::start(vec![acct.clone()], Scanners::Stack).await;
    let admin = Admin::login(&p.base).await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create("Archive").await;
    p.wait_idling().await;

    let tag = unique("lv");
    let (keep, take, gone) = (format!("keep {tag}"), format!("take {tag}"), format!("gone {tag}"));
    for (s, id) in [(&keep, "k"), (&take, "t"), (&gone, "g")] {
        c.append("INBOX", None, &html_mail(s, &format!("{id}-{tag}"))).await;
    }
    let (idk, idt, idg) = (
        scanned(&admin, &keep).await,
        scanned(&admin, &take).await,
        scanned(&admin, &gone).await,
    );
    for id in [idk, idt, idg] {
        let m = p.rt.store().message_detail(id).await.unwrap().unwrap();
        assert!(m.eml_path.is_none() && !m.summary.quarantined, "let through, no copy: {m:?}");
    }

    // Preview: read from Dovecot, sanitised as the quarantine preview is.
    let (code, html) = admin.page(&format!("/messages/{idk}/preview")).await;
    assert_eq!(code, 200);
    assert!(html.contains(&format!("Lunch at noon on Friday, k-{tag}")), "{html}");
    assert!(html.contains("1 remote image(s) blocked"), "{html}");
    assert!(!html.contains("tracker.example"), "{html}");
    let (_, drawer) = admin.page(&format!("/messages/{idk}/drawer")).await;
    assert!(
        drawer.contains("data-action=\"quarantine\"") && drawer.contains("no copy kept"),
        "{drawer}"
    );
    // BODY.PEEK: reading it set no flag.
    let inbox = c.list("INBOX").await;
    let (_, flags, _) = inbox
        .iter()
        .find(|(_, _, m)| m.contains(&format!("k-{tag}")))
        .expect("still in INBOX");
    assert!(!flags.iter().any(|f| f == "\\Seen"), "the preview set \\Seen: {flags:?}");

    // Learn as ham, from the mailbox, against the stack's Rspamd.
    let (code, r) = admin.post(&format!("/api/messages/{idk}/learn-ham")).await;
    assert_eq!(code, 200, "{r}");
    let rows = p.rt.store().audit_rows(Some("wlive"), None, 100).await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.message == Some(idk) && (r.event == "learned_ham" || r.event == "learn_skipped") && r.actor.starts_with("admin")),
        "{rows:?}"
    );

    // Quarantine: copy kept first, moved by the runner, audited as the admin.
    let (code, r) = admin.post(&format!("/api/messages/{idt}/quarantine")).await;
    assert_eq!((code, r["state"].as_str()), (200, Some("done")), "{r}");
    let m = p.rt.store().message_detail(idt).await.unwrap().unwrap();
    assert!(m.summary.quarantined, "{m:?}");
    let copy = std::fs::read(m.eml_path.as_deref().expect("EML copy kept")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(copy)), m.sha256);
    assert!(c.ids("Quarantine").await.iter().any(|i| i.contains(&format!("t-{tag}"))));
    assert!(!c.ids("INBOX").await.iter().any(|i| i.contains(&format!("t-{tag}"))));
    let rows =
        p.rt.store()
            .audit_rows(Some("wlive"), Some("quarantine_requested"), 10)
            .await
            .unwrap();
    assert!(
        rows.iter().any(|r| r.message == Some(idt) && r.actor.starts_with("admin")),
        "{rows:?}"
    );
    let (code, r) = admin.post(&format!("/api/messages/{idt}/quarantine")).await;
    assert_eq!(code, 409, "not twice: {r}");
    // The quarantine's own preview uses the copy now.
    let (_, html) = admin.page(&format!("/messages/{idt}/preview")).await;
    assert!(html.contains(&format!("t-{tag}")), "{html}");

    // Moved away by the user: said plainly, nothing touched.
    c.move_message("INBOX", &format!("g-{tag}"), "Archive").await;
    let (_, html) = admin.page(&format!("/messages/{idg}/preview")).await;
    assert!(html.contains("is no longer in INBOX"), "{html}");
    let (code, r) = admin.post(&format!("/api/messages/{idg}/quarantine")).await;
    assert_eq!(code, 409, "{r}");
    assert!(r["error"].as_str().unwrap_or("").contains("no longer in INBOX"), "{r}");
    assert!(c.ids("Archive").await.iter().any(|i| i.contains(&format!("g-{tag}"))));
    assert!(p.rt.store().message_detail(idg).await.unwrap().unwrap().eml_path.is_none());

    // A folder reset (new UIDVALIDITY) is named as such.
    let g = p.rt.store().message_detail(idk).await.unwrap().unwrap();
    let key = MessageKey {
        account: "wlive".into(),
        mailbox: "INBOX".into(),
        uidvalidity: g.uidvalidity + 1,
        uid: g.uid,
    };
    let e = p.rt.manager().peek(&acct, &key).await.unwrap_err().to_string();
    assert!(e.contains("was reset on the server"), "{e}");
    p.stop().await;
}
