//! The engine's core scenarios, run against each IMAP server Postern is
//! tested with: Dovecot 2.3, Cyrus IMAP 3.6, Courier-IMAP 5.0 (issue 15) and
//! GNU Mailutils imap4d 3.15. One scenario set, one module per server:
//! `cargo test --test it imap_servers::cyrus` runs Cyrus's. Cyrus and
//! Courier use Debian's default namespace, `INBOX.` with `.` as separator;
//! Courier has no MOVE and sends no UIDNEXT on SELECT; imap4d has neither
//! MOVE nor UIDPLUS, keeps no keywords, and reports new mail only in its
//! reply to IDLE's DONE.

use crate::common::client::{TestClient, raw_expunge};
use crate::common::harness::{Postern, account, tuning};
use crate::common::servers::{Peer, Server};
use crate::common::{eventually, mail, pending_action_waits, unique};
use futures::future::BoxFuture;
use postern::config::AccountConfig;
use postern::config::ImapTuning;
use postern::manager::ListenerState;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The test tuning, with the liveness probe every 6 s on imap4d: it pushes
/// nothing during IDLE, so the probe's DONE is what shows new mail there
/// (45 s by default; the other servers push). Not less: imap4d looks at
/// the mailbox every 5 s of an IDLE, and a DONE sooner finds nothing.
fn tuning_for(p: &Peer) -> ImapTuning {
    let mut t = tuning();
    if p.server == Server::Mailutils {
        t.probe_every = Duration::from_secs(6);
    }
    t
}

/// An account on `p` with the quarantine and hold folders named in full
/// under the personal namespace, as a user of that server writes them.
fn acct(p: &Peer, user: &str, pass: &str, folders: &[&str]) -> AccountConfig {
    let mut a = account("a", p.port, user, pass, folders);
    a.quarantine_folder = p.folder("Quarantine");
    a.hold_folder = p.folder("Postern-Held");
    a
}

async fn count(p: &Peer, user: &str, pass: &str, mailbox: &str) -> usize {
    TestClient::connect(p.port, user, pass).await.count(mailbox).await
}

/// Waits until `mailbox` holds `n` messages.
async fn wait_count(p: &Peer, user: &str, pass: &str, mailbox: &str, n: usize) {
    eventually(T, &format!("{n} message(s) in {mailbox}"), || async {
        (count(p, user, pass, mailbox).await == n).then_some(())
    })
    .await;
}

async fn idle_delivery(p: &Peer) {
    let (user, pass) = p.new_user("idle");
    let pt = Postern::start(vec![acct(p, &user, &pass, &["INBOX"])], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    let st = pt.manager.status();
    assert!(
        st.iter().any(|s| s.mailbox == "INBOX" && s.state == ListenerState::Idling),
        "{:?} advertises IDLE and Postern uses it: {st:?}",
        p.server
    );
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.append("INBOX", None, &mail("friend@good.test", "hello", &unique("h"))).await;
    let rows = pt.wait_done("a", 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].verdict.as_deref(), Some("pass"));
    assert_eq!(rows[0].uidvalidity, c.uidvalidity("INBOX").await);
    assert_eq!(c.count("INBOX").await, 1, "a passed message stays where it is");
    pt.manager.shutdown().await;
}

async fn quarantine(p: &Peer) {
    let (user, pass) = p.new_user("quar");
    let a = acct(p, &user, &pass, &["INBOX"]);
    let q = a.quarantine_folder.clone();
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.append("INBOX", None, &mail("friend@good.test", "hello", &unique("h"))).await;
    c.append("INBOX", None, &mail("bad@evil.test", "invoice", &unique("e"))).await;
    c.append("INBOX", None, &mail("bad@evil.test", "invoice again", &unique("e2")))
        .await;
    pt.wait_done("a", 3).await;
    wait_count(p, &user, &pass, &q, 2).await;
    // The source is counted until it settles: a server may show the moved
    // message in the destination a moment before it leaves the source.
    wait_count(p, &user, &pass, "INBOX", 1).await;
    let rows = pt.store.message_rows("a").await.unwrap();
    let moved: Vec<_> = rows.iter().filter(|r| r.verdict.as_deref() == Some("quarantine")).collect();
    assert_eq!(moved.len(), 2, "{rows:?}");
    for m in &moved {
        assert_eq!(m.status, "done");
        assert_eq!(m.location_mailbox.as_deref(), Some(q.as_str()));
        // COPYUID is UIDPLUS's; without it the release finds the copy by
        // its Message-ID and content.
        if p.has_uidplus {
            assert!(m.location_uid.is_some(), "new UID recorded from COPYUID: {m:?}");
        }
    }
    // Every move goes through on its first connection, imap4d's included
    // (its non-standard `* n EXPUNGED` is read as EXPUNGE).
    let audit = pt.store.audit_rows(Some("a"), Some("action_done"), 10).await.unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    let how = match (p.has_move, p.has_uidplus) {
        (true, _) => "MOVE",
        (false, true) => "COPY+UID EXPUNGE",
        (false, false) => "COPY+EXPUNGE",
    };
    for row in &audit {
        assert!(row.detail.contains(how), "{:?} moves with {how}: {audit:?}", p.server);
    }
    let done = |op: i64| {
        let pt = &pt;
        async move {
            eventually(T, "the operator's request recorded as done", || async {
                match pt.store.op_state(op).await.unwrap() {
                    Some((postern::domain::OpState::Done, detail)) => Some(detail.unwrap_or_default()),
                    _ => None,
                }
            })
            .await
        }
    };
    // The operator deletes one: expunged from quarantine, copy kept.
    let op = pt
        .store
        .request_op(moved[0].id, postern::domain::OpKind::Delete, "admin:test")
        .await
        .unwrap()
        .unwrap();
    wait_count(p, &user, &pass, &q, 1).await;
    let detail = done(op).await;
    assert!(detail.contains("expunged UID") && detail.contains("EML copy kept"), "{detail}");
    // And releases the other: back in INBOX.
    let op = pt
        .store
        .request_op(moved[1].id, postern::domain::OpKind::Release, "admin:test")
        .await
        .unwrap()
        .unwrap();
    wait_count(p, &user, &pass, &q, 0).await;
    wait_count(p, &user, &pass, "INBOX", 2).await;
    let detail = done(op).await;
    assert!(detail.contains("back to INBOX"), "{detail}");
    pt.manager.shutdown().await;
}

async fn flags_untouched(p: &Peer) {
    let (user, pass) = p.new_user("flags");
    let a = acct(p, &user, &pass, &["INBOX"]);
    let q = a.quarantine_folder.clone();
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    let (ham, bad) = (unique("ham"), unique("bad"));
    // imap4d keeps no keywords: its user can set only system flags.
    let (ham_flags, ham_kept): (&str, &[&str]) = if p.keeps_keywords {
        ("(\\Seen \\Answered $Label1)", &["$Label1", "\\Answered", "\\Seen"])
    } else {
        ("(\\Seen \\Answered)", &["\\Answered", "\\Seen"])
    };
    c.append("INBOX", Some(ham_flags), &mail("friend@good.test", "read already", &ham))
        .await;
    c.append("INBOX", Some("(\\Seen)"), &mail("bad@evil.test", "read phish", &bad))
        .await;
    // imap4d drops APPEND's flags: the user sets them afterwards, long
    // before Postern's next look (its probe, every 6 s here).
    if p.server == Server::Mailutils {
        c.add_flags("INBOX", &ham, ham_flags).await;
        c.add_flags("INBOX", &bad, "(\\Seen)").await;
    }
    let rows = pt.wait_done("a", 2).await;
    assert_eq!(rows.len(), 2, "a message marked read before Postern saw it is still processed");
    wait_count(p, &user, &pass, &q, 1).await;
    wait_count(p, &user, &pass, "INBOX", 1).await;
    // Compared with the flags appended, not with a listing taken after the
    // APPEND: on Cyrus, Postern can have moved the phish by then.
    let inbox = c.list("INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].2.contains(&ham));
    assert_eq!(inbox[0].1, ham_kept, "ham flags untouched");
    let moved = c.list(&q).await;
    assert!(moved[0].2.contains(&bad));
    assert_eq!(moved[0].1, ["\\Seen"], "the moved message keeps the user's flags, and only those");
    pt.manager.shutdown().await;
}

/// Mail that arrives while Postern is stopped is processed on restart, once;
/// a second restart finds nothing new and repeats nothing.
async fn restart_catch_up(p: &Peer) {
    let (user, pass) = p.new_user("rs");
    let a = acct(p, &user, &pass, &["INBOX"]);
    let q = a.quarantine_folder.clone();
    let pt = Postern::start(vec![a.clone()], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.append("INBOX", None, &mail("friend@good.test", "before", &unique("rs"))).await;
    pt.wait_done("a", 1).await;
    assert!(pt.manager.stop_account("a").await);
    c.append("INBOX", None, &mail("bad@evil.test", "while stopped", &unique("rs")))
        .await;
    c.append("INBOX", None, &mail("friend@good.test", "while stopped", &unique("rs")))
        .await;
    pt.manager.reload(vec![a.clone()]).await;
    pt.wait_done("a", 3).await;
    wait_count(p, &user, &pass, &q, 1).await;
    assert!(pt.manager.stop_account("a").await);
    pt.manager.reload(vec![a]).await;
    pt.wait_watching("a").await;
    assert_eq!(pt.store.message_rows("a").await.unwrap().len(), 3, "nothing scanned twice");
    assert_eq!(
        pt.store.audit_rows(Some("a"), Some("action_done"), 10).await.unwrap().len(),
        1,
        "acted exactly once"
    );
    assert_eq!((c.count("INBOX").await, c.count(&q).await), (2, 1));
    pt.manager.shutdown().await;
}

/// The watched folder is deleted and recreated while Postern is connected:
/// mail in the new folder (new UIDVALIDITY) is still scanned and acted on,
/// without waiting for a reconnect (issue 15, defect 1).
async fn uidvalidity_change_while_connected(p: &Peer) {
    let (user, pass) = p.new_user("uvc");
    let watched = p.folder("Watched");
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.create(&watched).await;
    let a = acct(p, &user, &pass, &[&watched]);
    let q = a.quarantine_folder.clone();
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    c.append(&watched, None, &mail("friend@good.test", "first", &unique("uvc"))).await;
    pt.wait_done("a", 1).await;
    let old = c.uidvalidity(&watched).await;
    c.delete(&watched).await;
    c.create(&watched).await;
    let new = eventually(T, "the recreated folder's UIDVALIDITY", || async {
        TestClient::connect(p.port, &user, &pass).await.try_uidvalidity(&watched).await
    })
    .await;
    assert_ne!(old, new, "{:?} gave the recreated folder a new UIDVALIDITY", p.server);
    // From a fresh session: Courier refuses APPEND into the mailbox a session has EXAMINEd.
    TestClient::connect(p.port, &user, &pass)
        .await
        .append(&watched, None, &mail("bad@evil.test", "after recreate", &unique("uvc")))
        .await;
    let rows = pt.wait_done("a", 2).await;
    let evil = rows
        .iter()
        .find(|r| r.verdict.as_deref() == Some("quarantine"))
        .expect("the new mail was scanned");
    // imap4d tells a session nothing when its folder is replaced: Postern
    // fetches the new mail under the old UIDVALIDITY, and the move runs
    // before the new one shows. What must hold there too is below: one
    // copy quarantined, nothing left behind.
    if p.server != Server::Mailutils {
        assert_eq!(evil.uidvalidity, new, "recorded under the new UIDVALIDITY: {rows:?}");
    }
    wait_count(p, &user, &pass, &q, 1).await;
    // A fresh session: Dovecot answers SERVERBUG for a while to the one that
    // had the folder open when it was deleted and recreated.
    drop(c);
    assert_eq!(TestClient::connect(p.port, &user, &pass).await.count(&watched).await, 0);
    pt.manager.shutdown().await;
}

/// `backfill` scans what is there without acting, then acts on new mail.
async fn backfill(p: &Peer) {
    let (user, pass) = p.new_user("bf");
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    // Dated today: imap4d takes INTERNALDATE from the Date header, and the
    // backfill looks back by INTERNALDATE.
    for i in 0..3 {
        c.append(
            "INBOX",
            None,
            &dated_now(mail("old@evil.test", &format!("old {i}"), &unique("old"))),
        )
        .await;
    }
    let mut a = acct(p, &user, &pass, &["INBOX"]);
    let q = a.quarantine_folder.clone();
    a.start_at = postern::config::StartAt::Backfill { days: 3 };
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    let rows = pt.wait_done("a", 3).await;
    assert!(rows.iter().all(|r| r.observe_only), "backfill never acts: {rows:?}");
    pt.wait_watching("a").await;
    c.append("INBOX", None, &mail("new@evil.test", "new", &unique("new"))).await;
    pt.wait_done("a", 4).await;
    wait_count(p, &user, &pass, &q, 1).await;
    wait_count(p, &user, &pass, "INBOX", 3).await;
    pt.manager.shutdown().await;
}

/// `raw` with today's Date header.
fn dated_now(raw: Vec<u8>) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc2822();
    String::from_utf8(raw)
        .unwrap()
        .replace("Date: Sun, 22 Nov 2026 10:00:00 +0000", &format!("Date: {now}"))
        .into_bytes()
}

/// `start_at: new` leaves mail that was there before the start alone, also
/// where SELECT sends no UIDNEXT (Courier; issue 15, defect 6).
async fn start_new_skips_existing(p: &Peer) {
    let (user, pass) = p.new_user("sn");
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.append("INBOX", None, &mail("old@evil.test", "before start", &unique("snold")))
        .await;
    let a = acct(p, &user, &pass, &["INBOX"]);
    let q = a.quarantine_folder.clone();
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    c.append("INBOX", None, &mail("new@evil.test", "after start", &unique("snnew")))
        .await;
    pt.wait_done("a", 1).await;
    wait_count(p, &user, &pass, &q, 1).await;
    let rows = pt.store.message_rows("a").await.unwrap();
    assert_eq!(rows.len(), 1, "only the new message is scanned: {rows:?}");
    let left = c.ids("INBOX").await;
    assert!(left.len() == 1 && left[0].contains("snold"), "the old message stays: {left:?}");
    assert!(c.ids(&q).await[0].contains("snnew"));
    pt.manager.shutdown().await;
}

/// Names with spaces, watched and as the quarantine folder: every argument
/// is quoted (issue 15, defect 4).
async fn spaced_folder_names(p: &Peer) {
    let (user, pass) = p.new_user("sp");
    let team = p.folder("Team Inbox");
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.create(&team).await;
    let mut a = acct(p, &user, &pass, &["INBOX", &team]);
    a.quarantine_folder = p.folder("Held Back");
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    c.append(&team, None, &mail("bad@evil.test", "in team", &unique("sp"))).await;
    c.append("INBOX", None, &mail("bad@evil.test", "in inbox", &unique("sp"))).await;
    pt.wait_done("a", 2).await;
    wait_count(p, &user, &pass, &p.folder("Held Back"), 2).await;
    wait_count(p, &user, &pass, &team, 0).await;
    wait_count(p, &user, &pass, "INBOX", 0).await;
    pt.manager.shutdown().await;
}

/// Non-ASCII names, configured in UTF-8, go over the wire as modified UTF-7
/// (RFC 3501 5.1.3): `Entwürfe` is `Entw&APw-rfe` and `Spam – Quarantäne`
/// is `Spam &IBM- Quarant&AOQ-ne` (issue 15, defect 5).
async fn non_ascii_folder_names(p: &Peer) {
    let (user, pass) = p.new_user("na");
    let (drafts, drafts_wire) = (p.folder("Entwürfe"), p.folder("Entw&APw-rfe"));
    let q_wire = p.folder("Spam &IBM- Quarant&AOQ-ne");
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.create(&drafts_wire).await;
    let mut a = acct(p, &user, &pass, &[&drafts]);
    a.quarantine_folder = p.folder("Spam – Quarantäne");
    let pt = Postern::start(vec![a], tuning_for(p), None).await;
    pt.wait_watching("a").await;
    c.append(&drafts_wire, None, &mail("bad@evil.test", "umlaut", &unique("na"))).await;
    c.append(&drafts_wire, None, &mail("friend@good.test", "umlaut", &unique("na")))
        .await;
    pt.wait_done("a", 2).await;
    wait_count(p, &user, &pass, &q_wire, 1).await;
    wait_count(p, &user, &pass, &drafts_wire, 1).await;
    pt.manager.shutdown().await;
}

/// Passes everything except `delete@` senders (held) and `@evil.test` (quarantined).
struct HoldOrQuarantine;

impl postern::scan::Decider for HoldOrQuarantine {
    fn id(&self) -> &'static str {
        "hold-or-quarantine"
    }
    fn decide<'a>(
        &'a self,
        req: postern::scan::ScanRequest<'a>,
    ) -> BoxFuture<'a, Result<postern::domain::Decision, postern::scan::ScanError>> {
        use postern::domain::{Decision, Verdict};
        Box::pin(async move {
            let from = postern::scan::envelope(req.raw).from.unwrap_or_default();
            let verdict = if from.starts_with("delete@") {
                Verdict::Delete
            } else if from.ends_with("@evil.test") {
                Verdict::Quarantine
            } else {
                Verdict::Pass
            };
            Ok(Decision {
                verdict,
                reason: format!("test decider: {from}"),
                ..Default::default()
            })
        })
    }
}

/// The default `Quarantine` and `Postern-Held` folders, as configured out of
/// the box, are created under the personal namespace (`INBOX.Quarantine` on
/// Cyrus and Courier) and used (issue 15, defect 2).
async fn default_folders_under_namespace(p: &Peer) {
    let (user, pass) = p.new_user("df");
    let a = account("a", p.port, &user, &pass, &["INBOX"]);
    assert_eq!(
        (a.quarantine_folder.as_str(), a.hold_folder.as_str()),
        ("Quarantine", "Postern-Held")
    );
    let pt = Postern::start_with(vec![a], tuning_for(p), None, Arc::new(HoldOrQuarantine)).await;
    pt.wait_watching("a").await;
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "quarantine me", &unique("df")))
        .await;
    c.append("INBOX", None, &mail("delete@x.test", "hold me", &unique("df"))).await;
    pt.wait_done("a", 2).await;
    wait_count(p, &user, &pass, &p.folder("Quarantine"), 1).await;
    wait_count(p, &user, &pass, &p.folder("Postern-Held"), 1).await;
    wait_count(p, &user, &pass, "INBOX", 0).await;
    pt.manager.shutdown().await;
}

/// `check-config` finds watched folders where the listener would (under
/// the personal namespace on Cyrus and Courier) and names a missing one
/// with the server's folders; in shadow mode it creates nothing.
async fn check_config_folders(p: &Peer) {
    let (user, pass) = p.new_user("cc");
    let work = p.folder("Work");
    TestClient::connect(p.port, &user, &pass).await.create(&work).await;
    let mut a = acct(p, &user, &pass, &["INBOX", "Work", "Wrok"]);
    a.mode = postern::domain::Mode::Shadow;
    a.quarantine_folder = p.folder("NeverMade");
    let checks = postern::imap::check_folders(&a, T).await.unwrap();
    assert_eq!(checks.len(), 3, "shadow mode checks only the watched folders: {checks:?}");
    assert_eq!(checks[1].outcome, Ok((work.clone(), false)), "{checks:?}");
    let why = checks[2].outcome.clone().unwrap_err();
    assert!(
        why.contains("\"Wrok\" does not exist") && why.contains(&format!("{work:?}")),
        "{why}"
    );
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    assert!(!c.exists(&a.quarantine_folder).await, "nothing created in shadow mode");
}

/// Without MOVE or UIDPLUS a move ends in a plain EXPUNGE, which removes
/// every message marked `\\Deleted`: while the user has one in the folder,
/// Postern's move waits (and is retried) and nothing is expunged; once it
/// is gone, the move goes through. imap4d is the server without either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_uidplus_a_move_waits_for_mail_marked_deleted() {
    let p = Peer::get(Server::Mailutils);
    let (user, pass) = p.new_user("del");
    let a = acct(p, &user, &pass, &["INBOX"]);
    let q = a.quarantine_folder.clone();
    // Waiting is not failing: two attempts would end a refused action.
    let mut t = tuning_for(p);
    t.action_max_attempts = 2;
    let pt = Postern::start(vec![a], t, None).await;
    pt.wait_watching("a").await;
    let mut c = TestClient::connect(p.port, &user, &pass).await;
    let kept = unique("kept");
    c.append("INBOX", None, &mail("friend@good.test", "deleted, not yet expunged", &kept))
        .await;
    pt.wait_done("a", 1).await;
    c.add_flags("INBOX", &kept, "(\\Deleted)").await;
    c.append("INBOX", None, &mail("bad@evil.test", "phish", &unique("bad"))).await;
    pending_action_waits(&pt.store, "a").await;
    assert_eq!(c.count("INBOX").await, 2, "nothing expunged while the user's deleted mail is there");
    assert_eq!(c.count(&q).await, 0, "and no copy made");
    // The user's client expunges its deleted mail; the retry moves the phish.
    raw_expunge(p.port, &user, &pass, "INBOX").await;
    wait_count(p, &user, &pass, &q, 1).await;
    wait_count(p, &user, &pass, "INBOX", 0).await;
    pt.manager.shutdown().await;
}

macro_rules! scenarios {
    ($($server:ident => $kind:expr),* $(,)?) => {$(
        mod $server {
            use super::*;
            scenarios!(@each $kind; idle_delivery, quarantine, flags_untouched, restart_catch_up,
                uidvalidity_change_while_connected, backfill, start_new_skips_existing,
                spaced_folder_names, non_ascii_folder_names, default_folders_under_namespace,
                check_config_folders);
        }
    )*};
    (@each $kind:expr; $($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            super::$name(Peer::get($kind)).await
        }
    )*};
}

scenarios!(dovecot => Server::Dovecot, cyrus => Server::Cyrus, courier => Server::Courier,
    mailutils => Server::Mailutils);
