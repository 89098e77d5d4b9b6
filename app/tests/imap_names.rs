//! Issue 15, defects 2, 4 and 5: folder names as real servers want them.
//! The personal namespace `INBOX.` (Cyrus and Courier defaults, set here
//! per user on the shared Dovecot), names with spaces, quotes and
//! backslashes, and non-ASCII names in modified UTF-7.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, tuning};
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{eventually, mail, unique};
use postern::imap::{Conn, encode_mutf7};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_default_folders_are_created_under_the_inbox_namespace() {
    let d = shared();
    let (user, pass) = d.new_user_inbox_namespace("ns");
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "invoice", &unique("ns"))).await;
    p.wait_done("a", 1).await;
    eventually(T, "evil mail in INBOX.Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("INBOX.Quarantine").await == 1).then_some(())
    })
    .await;
    assert!(c.exists("INBOX.Postern-Held").await, "hold folder created under the namespace");
    assert!(!c.exists("Postern-Held").await);
    let st = p.manager.status().into_iter().find(|s| s.mailbox == "(actions)").unwrap();
    assert_eq!(st.folder_problem, None, "{st:?}");
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_a_folder_that_cannot_be_created_shows_on_health_dashboard_and_check() {
    let d = shared();
    let (user, pass) = d.new_user_inbox_namespace("nsbad");
    let mut a = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    // Dovecot refuses '/' in a name when the delimiter is '.'.
    a.hold_folder = "Held/Mail".into();
    let checks = postern::imap::check_folders(&a, T).await.unwrap();
    assert_eq!(
        checks[0].outcome,
        Ok(("INBOX".to_string(), false)),
        "the watched folder: {checks:?}"
    );
    assert!(checks[0].watched);
    assert_eq!(checks[1].outcome, Ok(("INBOX.Quarantine".to_string(), false)), "{checks:?}");
    let why = checks[2].outcome.clone().unwrap_err();
    assert!(why.contains("\"Held/Mail\" cannot be created") && why.contains("INBOX."), "{why}");
    let p = WebPostern::start(vec![a], Scanners::Local).await;
    let admin = Admin::login(&p.base).await;
    let health = eventually(T, "folder problem on /health", || async {
        let (code, h) = admin.get("/health").await;
        (code == 503 && h.to_string().contains("cannot be created")).then_some(h)
    })
    .await;
    assert!(health.to_string().contains("Held/Mail"), "{health}");
    let (_, html) = admin.page("/").await;
    assert!(html.contains("cannot be created"), "dashboard banner missing");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_folder_names_with_spaces_quotes_and_backslashes_work() {
    let d = shared();
    let (user, pass) = d.new_user("quote");
    let watched = r#"My Mail "inbox" \ 2"#;
    let quarantine = r#"Spam "held" \ here"#;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create(watched).await;
    let mut a = account("a", d.imap_port, &user, &pass, &[watched]);
    a.quarantine_folder = quarantine.into();
    let p = Postern::start(vec![a], tuning(), None).await;
    p.wait_watching("a").await;
    c.append(watched, None, &mail("bad@evil.test", "invoice", &unique("q"))).await;
    p.wait_done("a", 1).await;
    eventually(T, "evil mail in the quoted quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count(quarantine).await == 1).then_some(())
    })
    .await;
    let row = p.store.message_rows("a").await.unwrap().pop().unwrap();
    assert_eq!(row.location_mailbox.as_deref(), Some(quarantine));
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_non_ascii_folders_travel_as_modified_utf7() {
    let d = shared();
    let (user, pass) = d.new_user("utf7");
    let (watched, quarantine) = ("Entwürfe", "Spam – Quarantäne");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create(&encode_mutf7(watched)).await;
    let mut a = account("a", d.imap_port, &user, &pass, &[watched]);
    a.quarantine_folder = quarantine.into();
    let p = Postern::start(vec![a.clone()], tuning(), None).await;
    p.wait_watching("a").await;
    c.append(&encode_mutf7(watched), None, &mail("bad@evil.test", "invoice", &unique("u")))
        .await;
    p.wait_done("a", 1).await;
    eventually(T, "evil mail in the non-ASCII quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Spam &IBM- Quarant&AOQ-ne").await == 1).then_some(())
    })
    .await;
    let row = p.store.message_rows("a").await.unwrap().pop().unwrap();
    assert_eq!(row.mailbox, watched, "stored and shown decoded");
    assert_eq!(row.location_mailbox.as_deref(), Some(quarantine));
    let mut conn = Conn::connect(&a, T).await.unwrap();
    let names = conn.list_mailboxes().await.unwrap();
    assert!(
        names.iter().any(|n| n == watched) && names.iter().any(|n| n == quarantine),
        "{names:?}"
    );
    conn.logout().await;
    p.manager.shutdown().await;
}

/// `check-config` finds watched folders where the service would (under
/// the personal namespace too) and names a missing one with the folders
/// the server has; in shadow mode it creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_finds_watched_folders_and_names_a_missing_one() {
    let d = shared();
    let (user, pass) = d.new_user_inbox_namespace("nswatch");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create("INBOX.Work").await;
    let mut a = account("a", d.imap_port, &user, &pass, &["INBOX", "Work", "Wrok"]);
    a.mode = postern::domain::Mode::Shadow;
    a.quarantine_folder = "NeverMade".into();
    let checks = postern::imap::check_folders(&a, T).await.unwrap();
    assert_eq!(checks.len(), 3, "shadow mode checks only the watched folders: {checks:?}");
    assert!(checks.iter().all(|c| c.watched));
    assert_eq!(checks[1].outcome, Ok(("INBOX.Work".to_string(), false)));
    let why = checks[2].outcome.clone().unwrap_err();
    assert!(why.contains("\"Wrok\" does not exist") && why.contains("\"INBOX.Work\""), "{why}");
    assert!(
        !c.exists("INBOX.NeverMade").await && !c.exists("NeverMade").await,
        "nothing created in shadow mode"
    );
}
