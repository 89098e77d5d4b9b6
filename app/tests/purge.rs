//! Issue 17, item 5 without a browser: search text is sent as IMAP data,
//! never as syntax (quotes, backslashes, literal markers, CRLF), and a purge
//! in a shadow-mode account moves nothing but is recorded.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{Scanners, WebPostern};
use crate::common::{eventually, unique};
use postern::domain::Mode;
use postern::runtime::{PurgeView, RuntimeError};
use std::time::Duration;

fn message(subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@purge.test>\r\nTo: user@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@purge.test>\r\n\r\nA message about {id}.\r\n"
    )
    .into_bytes()
}

async fn finished(p: &WebPostern, id: i64) -> PurgeView {
    eventually(Duration::from_secs(30), "purge job done", || async {
        p.rt.purge_view(id).await.unwrap().filter(|v| v.job.state == "done")
    })
    .await
}

fn has(ids: &[String], id: &str) -> bool {
    ids.iter().any(|m| m.contains(&format!("<{id}@purge.test>")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_hostile_search_text_is_data_not_imap_syntax() {
    let d = shared();
    let (user, pass) = d.new_user("purgeh");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let tag = unique("h");
    // A subject carrying every character that means something in IMAP.
    let hostile = format!("{tag} \"quoted\" {{5}} back\\slash (ALL) *");
    let (m_hostile, m_plain, m_other) = (unique("hostile"), unique("plain"), unique("other"));
    c.append("INBOX", None, &message(&format!("Re: {hostile}"), &m_hostile)).await;
    c.append("INBOX", None, &message(&format!("{tag} quoted plain"), &m_plain)).await;
    c.append("INBOX", None, &message("Unrelated", &m_other)).await;
    let p = WebPostern::start(vec![account("h", d.imap_port, &user, &pass, &["INBOX"])], Scanners::Local).await;

    // Quotes, a literal marker and a backslash are matched literally: only
    // the message whose subject holds them all.
    let v = p.rt.purge_search("subject", &hostile, "admin:admin").await.unwrap();
    assert_eq!(v.job.matched, 1, "{:?}", v.job.counts);
    assert_eq!(v.job.counts[0]["account"], "h");
    assert_eq!(v.job.counts[0]["matches"], 1);
    // Closing the quote to add a search key of one's own matches nothing;
    // spliced in raw it would have matched every message.
    let v2 = p.rt.purge_search("subject", "x\" OR ALL \"", "admin:admin").await.unwrap();
    assert_eq!(v2.job.matched, 0, "{:?}", v2.job.counts);
    assert!(v2.job.counts[0]["error"].is_null(), "{:?}", v2.job.counts);
    // A line break would end the command and start another: refused before
    // any server sees it, and no job is made.
    for text in [
        format!("{tag}\r\nA1 UID EXPUNGE 1:*"),
        format!("{tag}\n* OK"),
        "{5}\r\nhello".to_string(),
    ] {
        match p.rt.purge_search("subject", &text, "admin:admin").await {
            Err(RuntimeError::Invalid(m)) => assert!(m.contains("line break"), "{m}"),
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }
    assert!(p.rt.purge_search("ALL", "x", "admin:admin").await.is_err(), "unknown criterion");
    assert!(p.rt.purge_search("sha256", "not-a-hash", "admin:admin").await.is_err());
    // The Message-ID search finds the plain one, brackets or not.
    let by_id =
        p.rt.purge_search("message_id", &format!("<{m_plain}@purge.test>"), "admin:admin")
            .await
            .unwrap();
    assert_eq!(by_id.job.matched, 1);

    // Purging the hostile match moves it alone, with an EML copy and audit rows.
    let started = p.rt.purge_start(v.job.id, "admin:admin").await.unwrap();
    assert_ne!(started.job.state, "counted");
    assert!(p.rt.purge_start(v.job.id, "admin:admin").await.is_err(), "a job runs once");
    let done = finished(&p, v.job.id).await;
    assert_eq!(
        (done.job.moved, done.job.failed, done.job.mailboxes_done),
        (1, 0, 1),
        "{:?}",
        done.items
    );
    let copy = done.items[0].eml_path.clone().expect("an EML copy");
    let kept = std::fs::read(&copy).unwrap();
    assert!(
        String::from_utf8_lossy(&kept).contains(&m_hostile),
        "the copy is the purged message"
    );
    let inbox = c.ids("INBOX").await;
    let quarantine = c.ids("Quarantine").await;
    assert!(has(&quarantine, &m_hostile), "{quarantine:?}");
    assert!(has(&inbox, &m_plain) && has(&inbox, &m_other), "{inbox:?}");
    assert!(!has(&inbox, &m_hostile));
    let audit = p.rt.store().audit_rows(Some("h"), Some("purged"), 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, "admin:admin");
    let all = p.rt.store().audit_rows(None, None, 200).await.unwrap();
    for e in ["purge_search", "purge_started", "purge_finished"] {
        assert!(
            all.iter().any(|r| r.event == e && r.detail.contains(&format!("#{}", v.job.id))),
            "{e}"
        );
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_purge_in_shadow_mode_moves_nothing_and_records_it() {
    let d = shared();
    let (user, pass) = d.new_user("purges");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let (hit, miss) = (unique("shadowhit"), unique("shadowmiss"));
    let sender = format!("{}@campaign.test", unique("s"));
    let raw = format!(
        "From: Campaign <{sender}>\r\nTo: user@example.test\r\nSubject: Act now\r\nMessage-ID: <{hit}@purge.test>\r\n\r\nClick.\r\n"
    );
    c.append("INBOX", None, raw.as_bytes()).await;
    c.append("INBOX", None, &message("Hello", &miss)).await;
    let mut a = account("s", d.imap_port, &user, &pass, &["INBOX"]);
    a.mode = Mode::Shadow;
    let p = WebPostern::start(vec![a], Scanners::Local).await;

    let v = p.rt.purge_search("sender", &sender, "analyst:ann").await.unwrap();
    assert_eq!(v.job.matched, 1, "{:?}", v.job.counts);
    assert_eq!(v.job.counts[0]["shadow"], true);
    p.rt.purge_start(v.job.id, "analyst:ann").await.unwrap();
    let done = finished(&p, v.job.id).await;
    assert_eq!((done.job.moved, done.job.observed), (0, 1), "{:?}", done.items);
    assert!(done.items[0].detail.as_deref().unwrap_or("").contains("shadow mode"));
    assert!(done.items[0].eml_path.is_none());
    let inbox = c.ids("INBOX").await;
    assert!(has(&inbox, &hit) && has(&inbox, &miss), "nothing moved: {inbox:?}");
    assert!(!c.exists("Quarantine").await || c.count("Quarantine").await == 0);
    let audit = p.rt.store().audit_rows(Some("s"), Some("purge_observed"), 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, "analyst:ann");
    assert!(audit[0].detail.contains("would have moved"), "{}", audit[0].detail);
    p.stop().await;
}
