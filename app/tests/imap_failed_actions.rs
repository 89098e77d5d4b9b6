//! Issue 15, defect 3, against the real Dovecot: an action the server keeps
//! refusing ends `failed` instead of retrying for ever, and the operator
//! answers it from the dashboard.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{audit_rows_at_least, eventually, mail, unique};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The quarantine folder exists only as a `\Noselect` parent,
/// so Dovecot answers every MOVE with `NO [TRYCREATE]`. Each action ends
/// `failed` after `POSTERN_ACTION_MAX_ATTEMPTS` with an audit row, and the
/// operator answers from the message drawer: dismiss (the message stays),
/// retry after the user deleted it (gone, although the folder is still
/// unusable: gone is checked first), retry after fixing the folder (moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_refused_actions_end_failed_and_the_operator_dismisses_or_retries() {
    let d = shared();
    let (user, pass) = d.new_user("capped");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create("Held/Sub").await;
    let mut acct = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    acct.quarantine_folder = "Held".into();
    let p = WebPostern::start_with(vec![acct], Scanners::Local, |s| s.imap.action_max_attempts = 3).await;
    p.wait_idling().await;
    let ids: Vec<String> = ["dismiss", "gone", "retry"].iter().map(|k| unique(k)).collect();
    for id in &ids {
        c.append("INBOX", None, &mail("bad@evil.test", "refused", id)).await;
    }
    let failed = eventually(T, "three failed actions", || async {
        let a = p.rt.store().audit_rows(Some("a"), Some("action_failed"), 10).await.unwrap();
        (a.len() == 3).then_some(a)
    })
    .await;
    assert!(
        failed
            .iter()
            .all(|r| r.detail.contains("after 3 attempts") && r.detail.contains("UID MOVE")),
        "{failed:?}"
    );
    let rows = p.rt.store().message_rows("a").await.unwrap();
    assert!(rows.iter().all(|r| r.status == "failed"), "{rows:?}");
    let row = |id: &str| {
        rows.iter()
            .find(|r| r.message_id.as_deref().is_some_and(|m| m.starts_with(id)))
            .unwrap()
            .id
    };
    let (dismiss, gone, retry) = (row(&ids[0]), row(&ids[1]), row(&ids[2]));
    assert_eq!(p.rt.store().pending_work().await.unwrap().0, 0, "nothing retries any more");

    let admin = Admin::login(&p.base).await;
    let drawer = reqwest::Client::new()
        .get(format!("{}/messages/{dismiss}/drawer", p.base))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(drawer.contains("data-action=\"retry-action\"") && drawer.contains("data-action=\"dismiss-action\""));

    let (code, body) = admin.post(&format!("/api/messages/{dismiss}/dismiss-action")).await;
    assert_eq!((code, body["state"].as_str()), (200, Some("dismissed")), "{body}");
    let (code, _) = admin.post(&format!("/api/messages/{dismiss}/dismiss-action")).await;
    assert_eq!(code, 409, "dismissed once only");

    c.move_message("INBOX", &ids[1], "Trash").await;
    let (code, body) = admin.post(&format!("/api/messages/{gone}/retry-action")).await;
    assert_eq!((code, body["state"].as_str()), (200, Some("pending")), "{body}");
    let skipped = eventually(T, "the deleted message's action ends gone", || async {
        let a = p.rt.store().audit_rows(Some("a"), Some("action_skipped_gone"), 10).await.unwrap();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(skipped.len(), 1, "{skipped:?}");

    c.create("Held").await;
    let (code, _) = admin.post(&format!("/api/messages/{retry}/retry-action")).await;
    assert_eq!(code, 200);
    eventually(T, "the retried message moved", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        c.ids("Held").await.iter().any(|m| m.contains(&ids[2])).then_some(())
    })
    .await;
    let inbox = c.ids("INBOX").await;
    assert!(inbox.iter().any(|m| m.contains(&ids[0])), "the dismissed message stays: {inbox:?}");
    audit_rows_at_least(p.rt.store(), "a", "action_done", 1).await;
    let audit = p.rt.store().audit_rows(Some("a"), None, 100).await.unwrap();
    for event in ["action_dismissed", "action_retry", "action_done"] {
        assert!(audit.iter().any(|r| r.event == event), "{event} missing: {audit:?}");
    }
    p.stop().await;
}
