//! Core engine behaviour against the shared Dovecot: IDLE delivery, races
//! around SELECT and IDLE, flag preservation, two accounts and folders.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, tuning};
use crate::common::stack::shared;
use crate::common::{eventually, mail, unique};
use futures::future::BoxFuture;
use postern::manager::{Probe, ProbePoint};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_processes_mail_delivered_while_idling() {
    let d = shared();
    let (user, pass) = d.new_user("idle");
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("friend@good.test", "hello", &unique("h"))).await;
    c.append("INBOX", None, &mail("bad@evil.test", "invoice", &unique("e"))).await;
    let rows = p.wait_done("a", 2).await;
    assert_eq!(rows.len(), 2);
    eventually(T, "evil mail in Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1 && c.count("INBOX").await == 1).then_some(())
    })
    .await;
    let moved = p
        .store
        .message_rows("a")
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.verdict.as_deref() == Some("quarantine"))
        .unwrap();
    assert_eq!(moved.status, "done");
    assert_eq!(moved.location_mailbox.as_deref(), Some("Quarantine"));
    assert!(moved.location_uid.is_some(), "new UID recorded from COPYUID");
    let eml = moved.eml_path.expect("EML stored for a moved message");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&eml).unwrap().permissions().mode() & 0o777, 0o600);
    p.manager.shutdown().await;
}

/// Delivers one message the first time each probe point is reached.
struct Deliver {
    port: u16,
    user: String,
    pass: String,
    after_select: AtomicBool,
    before_idle: AtomicBool,
}

impl Probe for Deliver {
    fn hit<'a>(&'a self, point: ProbePoint, _a: &'a str, _m: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let flag = match point {
                ProbePoint::AfterSelect => &self.after_select,
                ProbePoint::BeforeIdle => &self.before_idle,
            };
            if !flag.swap(true, Ordering::SeqCst) {
                let mut c = TestClient::connect(self.port, &self.user, &self.pass).await;
                c.append("INBOX", None, &mail("bad@evil.test", &format!("{point:?}"), &unique("race")))
                    .await;
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_delivered_during_select_or_before_idle_is_not_missed() {
    let d = shared();
    let (user, pass) = d.new_user("race");
    let probe = Arc::new(Deliver {
        port: d.imap_port,
        user: user.clone(),
        pass: pass.clone(),
        after_select: AtomicBool::new(false),
        before_idle: AtomicBool::new(false),
    });
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], tuning(), Some(probe)).await;
    let rows = p.wait_done("a", 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    eventually(T, "both in Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 2).then_some(())
    })
    .await;
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_flags_are_untouched_and_read_mail_is_still_scanned() {
    let d = shared();
    let (user, pass) = d.new_user("flags");
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let (ham, bad) = (unique("ham"), unique("bad"));
    c.append(
        "INBOX",
        Some("(\\Seen \\Answered $Label1)"),
        &mail("friend@good.test", "read already", &ham),
    )
    .await;
    c.append("INBOX", Some("(\\Seen)"), &mail("bad@evil.test", "read phish", &bad))
        .await;
    let before = c.list("INBOX").await;
    assert_eq!(before.len(), 2);
    let rows = p.wait_done("a", 2).await;
    assert_eq!(rows.len(), 2, "a message marked read before Postern saw it is still processed");
    eventually(T, "phish moved", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    let after = c.list("INBOX").await;
    assert_eq!(after, vec![before[0].clone()], "ham flags byte-identical");
    let q = c.list("Quarantine").await;
    assert_eq!(q[0].1, before[1].1, "moved message keeps the user's flags");
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_two_folders_and_quarantine_is_created() {
    let d = shared();
    let (u1, p1) = d.new_user("two");
    let (u2, p2) = d.new_user("two");
    let mut c1 = TestClient::connect(d.imap_port, &u1, &p1).await;
    c1.create("Work").await;
    let mut a1 = account("one", d.imap_port, &u1, &p1, &["INBOX", "Work"]);
    a1.quarantine_folder = "Suspicious".into();
    let mut a2 = account("two", d.imap_port, &u2, &p2, &["INBOX"]);
    a2.quarantine_folder = "Suspicious".into();
    assert!(!c1.exists("Suspicious").await);
    let p = Postern::start(vec![a1, a2], tuning(), None).await;
    p.wait_watching("one").await;
    p.wait_watching("two").await;
    assert!(c1.exists("Suspicious").await, "quarantine folder auto-created");
    let mut c2 = TestClient::connect(d.imap_port, &u2, &p2).await;
    c1.append("INBOX", None, &mail("x@evil.test", "1", &unique("m"))).await;
    c1.append("Work", None, &mail("y@evil.test", "2", &unique("m"))).await;
    c1.append("Work", None, &mail("ok@good.test", "3", &unique("m"))).await;
    c2.append("INBOX", None, &mail("z@evil.test", "4", &unique("m"))).await;
    p.wait_done("one", 3).await;
    p.wait_done("two", 1).await;
    eventually(T, "quarantined in both accounts", || async {
        let mut c1 = TestClient::connect(d.imap_port, &u1, &p1).await;
        let mut c2 = TestClient::connect(d.imap_port, &u2, &p2).await;
        (c1.count("Suspicious").await == 2 && c2.count("Suspicious").await == 1 && c1.count("Work").await == 1).then_some(())
    })
    .await;
    let status = p.manager.status();
    assert_eq!(status.iter().filter(|s| s.mailbox != "(actions)").count(), 3, "{status:?}");
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_scans_history_observe_only_and_new_mail_is_acted_on() {
    let d = shared();
    let (user, pass) = d.new_user("bf");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    for i in 0..5 {
        c.append("INBOX", None, &mail("old@evil.test", &format!("old {i}"), &unique("old")))
            .await;
    }
    let mut a = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    a.start_at = postern::config::StartAt::Backfill { days: 3 };
    let p = Postern::start(vec![a], tuning(), None).await;
    let rows = p.wait_done("a", 5).await;
    assert!(rows.iter().all(|r| r.observe_only), "backfill never acts: {rows:?}");
    p.wait_watching("a").await;
    c.append("INBOX", None, &mail("new@evil.test", "new", &unique("new"))).await;
    p.wait_done("a", 6).await;
    eventually(T, "only the new message quarantined", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1 && c.count("INBOX").await == 5).then_some(())
    })
    .await;
    p.manager.shutdown().await;
}

/// Passes everything until armed, then quarantines everything: the re-scan
/// that would claw a delivered message back.
struct Armed(Arc<AtomicBool>);

impl postern::scan::Decider for Armed {
    fn id(&self) -> &'static str {
        "armed"
    }
    fn decide<'a>(
        &'a self,
        _req: postern::scan::ScanRequest<'a>,
    ) -> BoxFuture<'a, Result<postern::domain::Decision, postern::scan::ScanError>> {
        use postern::domain::{Decision, Verdict};
        let verdict = if self.0.load(Ordering::SeqCst) {
            Verdict::Quarantine
        } else {
            Verdict::Pass
        };
        Box::pin(async move {
            Ok(Decision {
                verdict,
                reason: "test decider".into(),
                ..Default::default()
            })
        })
    }
}

/// Shadow mode never acts (issue 15): scheduled re-scans are enabled and an
/// intel claw-back is requested, the re-scan now says quarantine, and still
/// nothing moves and no folder is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_records_but_never_acts() {
    let d = shared();
    let (user, pass) = d.new_user("shadow");
    let mut a = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    a.mode = postern::domain::Mode::Shadow;
    let armed = Arc::new(AtomicBool::new(false));
    let rescans = vec![("+0m".to_string(), chrono::Duration::zero())];
    let p = Postern::start_engine(vec![a], tuning(), None, Arc::new(Armed(armed.clone())), rescans).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "x", &unique("s"))).await;
    let rows = p.wait_done("a", 1).await;
    assert_eq!(rows[0].verdict.as_deref(), Some("pass"));
    assert_eq!(rows[0].status, "done");
    armed.store(true, Ordering::SeqCst);
    // The scheduled re-scan (due at once) and an intel claw-back, requested
    // through the store call the intel runtime makes.
    let mut ops = p.store.queue_due_rechecks().await.unwrap();
    ops.extend(p.store.request_recheck(rows[0].id, "intel: test IOC", "postern").await.unwrap());
    assert!(!ops.is_empty());
    p.manager.nudge("a");
    for op in ops {
        let (state, detail) = eventually(T, "recheck finished", || async {
            p.store
                .op_state(op)
                .await
                .unwrap()
                .filter(|(s, _)| *s != postern::store::OpState::Pending)
        })
        .await;
        assert_eq!(state, postern::store::OpState::Refused, "{detail:?}");
        assert!(detail.unwrap_or_default().contains("shadow mode"));
    }
    assert_eq!(c.count("INBOX").await, 1);
    assert_eq!(c.count("Quarantine").await, 0, "Dovecot auto-creates Quarantine; it stays empty");
    assert!(!c.exists("Postern-Held").await, "shadow mode creates no folder");
    p.manager.shutdown().await;
}

/// Maps the sender's local part to a verdict: flag@, delete@, anything else passes.
struct ByLocalPart;

impl postern::scan::Decider for ByLocalPart {
    fn id(&self) -> &'static str {
        "by-local-part"
    }
    fn decide<'a>(
        &'a self,
        req: postern::scan::ScanRequest<'a>,
    ) -> BoxFuture<'a, Result<postern::domain::Decision, postern::scan::ScanError>> {
        use postern::domain::{Decision, Verdict};
        Box::pin(async move {
            let from = postern::scan::envelope(req.raw).from.unwrap_or_default();
            let verdict = match from.split('@').next() {
                Some("flag") => Verdict::Flag,
                Some("delete") => Verdict::Delete,
                _ => Verdict::Pass,
            };
            Ok(Decision {
                verdict,
                reason: format!("test decider: {from}"),
                ..Default::default()
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_flag_adds_keywords_never_flagged_and_delete_holds_with_eml() {
    let d = shared();
    let (user, pass) = d.new_user("fd");
    let p = Postern::start_with(
        vec![account("a", d.imap_port, &user, &pass, &["INBOX"])],
        tuning(),
        None,
        Arc::new(ByLocalPart),
    )
    .await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", Some("(\\Seen)"), &mail("flag@x.test", "flag me", &unique("f")))
        .await;
    c.append("INBOX", None, &mail("delete@x.test", "delete me", &unique("d"))).await;
    p.wait_done("a", 2).await;
    let (inbox, held) = eventually(T, "flag and hold applied", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        let inbox = c.list("INBOX").await;
        let held = c.list("Postern-Held").await;
        (held.len() == 1 && inbox.len() == 1 && inbox[0].1.contains(&"$PosternFlagged".to_string())).then_some((inbox, held))
    })
    .await;
    assert_eq!(
        inbox[0].1,
        vec!["$Phishing", "$PosternFlagged", "\\Seen"],
        "keywords only added, \\Seen kept, never \\Flagged (clients show it as important)"
    );
    assert!(held[0].1.is_empty(), "held message keeps its (empty) flags");
    let rows = p.store.message_rows("a").await.unwrap();
    let deleted = rows.iter().find(|r| r.verdict.as_deref() == Some("delete")).unwrap();
    assert_eq!(deleted.location_mailbox.as_deref(), Some("Postern-Held"));
    assert!(
        std::path::Path::new(deleted.eml_path.as_deref().unwrap()).is_file(),
        "a held message always has its EML copy"
    );
    // Nothing was expunged: the hold folder is the "deleted" state.
    assert_eq!(p.store.audit_rows(Some("a"), Some("action_done"), 10).await.unwrap().len(), 2);
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_on_a_message_the_user_already_moved_is_recorded_not_forced() {
    use postern::domain::{Action, MessageKey};
    use postern::store::{Intent, IntentState};
    let d = shared();
    let (user, pass) = d.new_user("gone");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "gone", &unique("g"))).await;
    let uv = c.uidvalidity("INBOX").await;
    c.create("Archive").await;
    // The user files the message away before Postern's action runs.
    let acct = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    let mut conn = postern::imap::Conn::connect(&acct, Duration::from_secs(5)).await.unwrap();
    conn.select("INBOX").await.unwrap();
    conn.move_uid(1, "Archive").await.unwrap();
    let intent = Intent {
        id: 1,
        message: 1,
        key: MessageKey {
            account: "a".into(),
            mailbox: "INBOX".into(),
            uidvalidity: uv,
            uid: 1,
        },
        action: Action::Quarantine {
            folder: "Quarantine".into(),
        },
        message_id: Some("not-the-same@test".into()),
        sha256: "00".into(),
        attempts: 0,
    };
    let done = postern::actions::execute(&mut conn, &intent).await.unwrap();
    assert_eq!(done.state, IntentState::Gone, "{done:?}");
    assert!(done.detail.contains("moved or deleted"), "{done:?}");
    assert_eq!(c.count("Archive").await, 1, "the user's choice stands");
    assert_eq!(c.count("Quarantine").await, 0);
    // Stale UIDVALIDITY: never touched.
    let stale = Intent {
        key: MessageKey {
            uidvalidity: uv.wrapping_add(1),
            ..intent.key.clone()
        },
        ..intent
    };
    assert_eq!(
        postern::actions::execute(&mut conn, &stale).await.unwrap().state,
        IntentState::Stale
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_start_and_stop_at_runtime_and_passwords_are_encrypted_at_rest() {
    let d = shared();
    let (user, pass) = d.new_user("rt");
    let p = Postern::start(vec![], tuning(), None).await;
    assert!(p.manager.status().is_empty());
    let acct = account("rt", d.imap_port, &user, &pass, &["INBOX"]);
    p.store.upsert_account(&acct, "web").await.unwrap();
    p.manager.start_account(acct.clone()).await;
    p.wait_watching("rt").await;
    assert!(p.manager.stop_account("rt").await);
    assert!(p.manager.status().is_empty());
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "while stopped", &unique("rt")))
        .await;
    p.manager.reload(vec![acct]).await;
    p.wait_done("rt", 1).await;
    eventually(T, "processed after restart", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    p.manager.shutdown().await;
    let db = std::fs::read(p.dir.path().join("postern.db")).unwrap();
    let wal = std::fs::read(p.dir.path().join("postern.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(pass.len()).any(|w| w == pass.as_bytes()),
            "IMAP password stored in clear"
        );
    }
    assert_eq!(p.store.accounts().await.unwrap()[0].pass, pass, "and it decrypts back");
}

/// Issue 21: an account with nothing to act on holds one connection (its
/// IDLE); the action connection opens when an intent is pending and closes
/// after `action_idle` of quiet. Two per account hit Dovecot's
/// `process_limit` at 512 of 1,000 accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_nothing_to_act_on_holds_one_connection() {
    use crate::common::proxy::Proxy;
    let d = shared();
    let (user, pass) = d.new_user("lazy");
    let proxy = Proxy::start(d.imap_port).await;
    let mut t = tuning();
    t.action_idle = Duration::from_secs(1);
    let p = Postern::start(vec![account("a", proxy.port, &user, &pass, &["INBOX"])], t, None).await;
    let runner = || p.manager.status().into_iter().find(|s| s.mailbox == "(actions)").unwrap();
    p.wait_watching("a").await;
    // The runner has looked for work at least once (it starts Connecting).
    eventually(T, "runner idle", || async {
        (runner().state == postern::manager::ListenerState::Idling).then_some(())
    })
    .await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("friend@good.test", "hello", &unique("h"))).await;
    p.wait_done("a", 1).await;
    assert_eq!(runner().connects, 0, "{:?}", runner());
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1, "only the listener connected");

    // A pending move opens the action connection, once.
    c.append("INBOX", None, &mail("bad@evil.test", "invoice", &unique("e"))).await;
    p.wait_done("a", 2).await;
    eventually(T, "evil mail in Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    assert_eq!(runner().connects, 1, "{:?}", runner());
    // Quiet for action_idle: back to the one IDLE connection.
    eventually(T, "action connection closed", || async {
        (proxy.open.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);

    // The next action connects again.
    c.append("INBOX", None, &mail("bad@evil.test", "invoice 2", &unique("e"))).await;
    eventually(T, "second evil mail in Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 2).then_some(())
    })
    .await;
    assert_eq!(runner().connects, 2, "{:?}", runner());
    p.manager.shutdown().await;
}
