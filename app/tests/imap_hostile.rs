//! Issue 18, "nothing lost, nothing misplaced, whatever the server says":
//! a scripted lying server (`fake`) answers with oversized literals,
//! duplicated UIDs, swapped bodies and a UIDVALIDITY that changes on every
//! SELECT. Each test failed before its fix.

mod fake;
mod reach;

use crate::common::harness::{Postern, account, tuning};
use crate::common::receiver::Receiver;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{audit_rows_at_least, eventually, mail, unique};
use fake::{Answer, Fake, FetchReq, Hook, World};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn is_body(r: &FetchReq) -> bool {
    r.items.contains("BODY")
}

/// Each message's FETCH line, truthful except where `swap` says which UID's
/// body to send instead.
fn lines(r: &FetchReq, w: &World, swap: impl Fn(u32) -> u32) -> Vec<u8> {
    let mut out = Vec::new();
    for &uid in &r.uids {
        let (seq, _) = w.inbox(uid).unwrap();
        let (_, body) = w.inbox(swap(uid)).unwrap();
        out.extend(World::body_line(seq, uid, body));
    }
    out
}

/// The requested messages, with UID 1's response in place of UID 2's.
fn dup_of_1(r: &FetchReq, w: &World) -> Vec<u8> {
    let mut out = Vec::new();
    for &uid in &r.uids {
        let shown = if uid == 2 { 1 } else { uid };
        let (seq, body) = w.inbox(shown).unwrap();
        out.extend(World::body_line(seq, shown, body));
    }
    out
}

/// Issue 18, item 2: a server that declares a small RFC822.SIZE and then
/// announces a 64 MiB literal. The literal is refused before it is read,
/// the message is recorded as oversize (not skipped), and the folder goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_oversized_literal_is_refused_unread_and_recorded() {
    const HUGE: u64 = 64 * 1024 * 1024;
    let world = World::new(vec![
        mail("ok@good.test", "liar", &unique("big")),
        mail("ok@good.test", "fine", &unique("ok")),
    ]);
    let hook: Hook = Arc::new(|r: &FetchReq, _w: &World| {
        (is_body(r) && r.uids.contains(&1)).then(|| {
            // UID 2 (if asked for too) is never reached: the first literal is the lie.
            Answer::Stream {
                prefix: format!("* 1 FETCH (UID 1 BODY[] {{{HUGE}}}\r\n").into_bytes(),
                len: HUGE,
                suffix: b")\r\n".to_vec(),
            }
        })
    });
    let fake = Fake::start(world, Some(hook)).await;
    let t = tuning();
    let limit = u64::from(t.max_message_bytes);
    assert!(HUGE > limit);
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], t, None).await;
    let rows = p.wait_done("a", 2).await;
    let big = rows.iter().find(|r| r.uid == 1).unwrap();
    assert!(big.tags.as_deref().unwrap_or("").contains("SIZE_OVER_LIMIT"), "{big:?}");
    assert_eq!(big.sha256, format!("unfetched:{HUGE}"), "recorded by the announced size: {big:?}");
    let ok = rows.iter().find(|r| r.uid == 2).unwrap();
    assert!(
        ok.sha256.len() == 64 && ok.verdict.as_deref() == Some("pass"),
        "the next message is scanned: {ok:?}"
    );
    // Bounded work: Postern stopped reading at the announcement; only what
    // the kernel buffers took ever left the server.
    let sent = fake.streamed.load(Ordering::SeqCst);
    assert!(sent < HUGE / 4, "{sent} of {HUGE} literal bytes were accepted");
    eventually(T, "cursor past both", || async {
        let st = p.store.mailbox_state("a", "INBOX").await.unwrap()?;
        (st.last_uid == 2).then_some(())
    })
    .await;
    p.manager.shutdown().await;
}

/// Issue 18, item 6: UID 1 answered twice instead of UIDs 1 and 2. The
/// count matched, so UID 2 was never recorded and the cursor moved past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_duplicate_uid_does_not_stand_in_for_a_missing_one() {
    let mids: Vec<String> = (0..3).map(|i| unique(&format!("dup{i}"))).collect();
    let world = World::new(mids.iter().map(|m| mail("ok@good.test", "dup", m)).collect());
    // Only the chunk FETCH lies; asked for UID 2 alone, the server answers.
    let hook: Hook =
        Arc::new(|r: &FetchReq, w: &World| (is_body(r) && r.uids.len() > 1 && r.uids.contains(&2)).then(|| Answer::Bytes(dup_of_1(r, w))));
    let fake = Fake::start(world, Some(hook)).await;
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], tuning(), None).await;
    let rows = p.wait_done("a", 3).await;
    let uids: BTreeSet<u32> = rows.iter().map(|r| r.uid).collect();
    assert_eq!(uids, BTreeSet::from([1, 2, 3]), "{rows:?}");
    assert_eq!(rows.len(), 3, "each recorded once");
    let got: BTreeSet<String> = rows.iter().filter_map(|r| r.message_id.clone()).collect();
    let want: BTreeSet<String> = mids.iter().map(|m| format!("{m}@test.postern")).collect();
    assert_eq!(got, want, "UID 2 recorded with its own content");
    p.manager.shutdown().await;
}

/// Issue 18, items 6 and 10: a server that never returns UID 2 (it always
/// answers UID 1 in its place). The cursor never passes UID 2, and after
/// `stuck_after` the folder is an account error: on /health, on the
/// dashboard, in the audit log and as an alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_a_uid_never_returned_holds_the_cursor_and_escalates() {
    let world = World::new((0..3).map(|i| mail("ok@good.test", "stuck", &unique(&format!("st{i}")))).collect());
    let hook: Hook = Arc::new(|r: &FetchReq, w: &World| (is_body(r) && r.uids.contains(&2)).then(|| Answer::Bytes(dup_of_1(r, w))));
    let fake = Fake::start(world, Some(hook)).await;
    let receiver = Receiver::start().await;
    let url = format!("{}/hook", receiver.base);
    let p = WebPostern::start_with(vec![account("a", fake.port, "u", "p", &["INBOX"])], Scanners::Local, |s| {
        s.imap.stuck_after = Duration::from_secs(1);
        s.intel.allow_loopback_for_tests = true;
        s.background.notify.webhook_url = Some(url);
    })
    .await;
    let m = p.rt.manager().clone();
    let st = eventually(T, "folder escalated as stuck", || {
        let st = m.status();
        async move { st.into_iter().find(|s| s.mailbox == "INBOX" && s.stuck) }
    })
    .await;
    assert!(st.last_error.as_deref().unwrap_or("").contains("UID(s) [2]"), "{st:?}");
    let cursor = p.rt.store().mailbox_state("a", "INBOX").await.unwrap().map_or(0, |s| s.last_uid);
    assert!(cursor < 2, "the cursor never passes the unrecorded UID 2 (at {cursor})");
    // The flag is raised before its audit row is written.
    let audit = audit_rows_at_least(p.rt.store(), "a", "folder_stuck", 1).await;
    assert_eq!(audit.len(), 1, "escalated once: {audit:?}");
    let admin = Admin::login(&p.base).await;
    let (code, health) = admin.get("/health").await;
    assert_eq!(code, 503, "{health}");
    assert!(health.to_string().contains("stuck: failing since"), "{health}");
    let page = reqwest::Client::new()
        .get(format!("{}/", p.base))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("folder INBOX: stuck since"), "dashboard banner missing");
    let n = p.rt.background().notifier().expect("webhook configured");
    p.rt.check_listeners(&n).await;
    let alert = eventually(T, "stuck-folder alert", || async {
        receiver
            .all()
            .into_iter()
            .find(|r| r.header("x-postern-event").as_deref() == Some("account_error"))
    })
    .await;
    assert!(
        alert.json()["message"].as_str().unwrap().contains("UID(s) [2]"),
        "{:?}",
        alert.json()
    );
    p.stop().await;
}

/// Issue 18, item 7: bodies of UID 1 (harmless) and UID 3 (blocked sender)
/// swapped in the chunk FETCH. The decision for "UID 1" was made on UID 3's
/// content; the runner confirms the content hash before acting, so innocent
/// UID 1 is never moved, and the mismatch is audited for the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_swapped_bodies_never_move_the_wrong_message() {
    let world = World::new(vec![
        mail("ok@good.test", "innocent", &unique("inn")),
        mail("ok@good.test", "other", &unique("oth")),
        mail("bad@evil.test", "invoice", &unique("evil")),
    ]);
    let hook: Hook = Arc::new(|r: &FetchReq, w: &World| {
        (is_body(r) && r.uids.len() > 1).then(|| {
            Answer::Bytes(lines(r, w, |u| match u {
                1 => 3,
                3 => 1,
                u => u,
            }))
        })
    });
    let fake = Fake::start(world, Some(hook)).await;
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], tuning(), None).await;
    p.wait_done("a", 3).await;
    let audit = eventually(T, "mismatch audited", || async {
        let a = p.store.audit_rows(Some("a"), Some("action_skipped_mismatch"), 10).await.unwrap();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(audit[0].uid, Some(1), "{audit:?}");
    assert!(audit[0].detail.contains("left for the operator"), "{audit:?}");
    let cmds = fake.world.lock().unwrap().commands();
    assert!(!cmds.iter().any(|c| c.contains("MOVE 1 ")), "innocent UID 1 was moved: {cmds:?}");
    assert!(fake.world.lock().unwrap().inbox(1).is_some(), "UID 1 still in INBOX");
    p.manager.shutdown().await;
}

/// Issue 18, item 8: UIDVALIDITY changes on every SELECT (and the server
/// drops every IDLE, so Postern keeps reconnecting). Re-syncs are bounded;
/// then the folder is reported broken and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_uidvalidity_churn_is_bounded_and_reported_broken() {
    let mut world = World::new(vec![
        mail("ok@good.test", "a", &unique("ch")),
        mail("ok@good.test", "b", &unique("ch")),
    ]);
    world.churn = true;
    world.bye_on_idle = true;
    let fake = Fake::start(world, None).await;
    let p = WebPostern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], Scanners::Local).await;
    eventually(T, "many reconnects", || async {
        (fake.conns.load(Ordering::SeqCst) >= 14).then_some(())
    })
    .await;
    let rows = p.rt.store().message_rows("a").await.unwrap();
    // First sight plus three re-syncs of two messages, then no more.
    assert!(
        rows.len() <= 8,
        "{} rows after {} connections",
        rows.len(),
        fake.conns.load(Ordering::SeqCst)
    );
    let st = p.rt.manager().status().into_iter().find(|s| s.mailbox == "INBOX").unwrap();
    assert!(matches!(st.state, postern::manager::ListenerState::Broken { .. }), "{st:?}");
    let unstable = p.rt.store().audit_rows(Some("a"), Some("uidvalidity_unstable"), 10).await.unwrap();
    assert_eq!(unstable.len(), 1, "{unstable:?}");
    let (code, health) = Admin::login(&p.base).await.get("/health").await;
    assert_eq!(code, 503);
    assert!(
        health.to_string().contains("broken: server broken: UIDVALIDITY changed"),
        "{health}"
    );
    p.stop().await;
}

/// A server whose UIDs start again from 1 under the same UIDVALIDITY (a
/// restore from backup, an index rebuilt without a new UIDVALIDITY). Before,
/// the new mail at the reused UIDs was never scanned and `/health` stayed
/// green; now the folder is reported broken, once in the audit log, and
/// nothing at a reused UID is recorded or moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uids_reused_under_the_same_uidvalidity_are_reported_broken() {
    let mut world = World::new(vec![
        mail("ok@good.test", "a", &unique("reuse")),
        mail("ok@good.test", "b", &unique("reuse")),
    ]);
    world.uidnext_on_select = true;
    let fake = Fake::start(world, None).await;
    let p = WebPostern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], Scanners::Local).await;
    eventually(T, "first two scanned", || async {
        let rows = p.rt.store().message_rows("a").await.unwrap();
        (rows.iter().filter(|r| r.status != "decided").count() == 2).then_some(())
    })
    .await;
    {
        let mut w = fake.world.lock().unwrap();
        w.reuse_uids(vec![mail("bad@evil.test", "at a reused UID", &unique("reuse"))]);
        // Wakes the idling listener; its next IDLE ends the connection, so
        // it selects the folder again and meets the new UIDNEXT.
        w.push.push("* 1 EXISTS".into());
        w.bye_on_idle = true;
    }
    eventually(T, "folder reported broken", || async {
        let st = p.rt.manager().status().into_iter().find(|s| s.mailbox == "INBOX")?;
        matches!(st.state, postern::manager::ListenerState::Broken { .. }).then_some(())
    })
    .await;
    // Retries go on (with backoff) and find the same; still one audit row.
    let before = fake.conns.load(Ordering::SeqCst);
    eventually(T, "more reconnects", || async {
        (fake.conns.load(Ordering::SeqCst) >= before + 3).then_some(())
    })
    .await;
    let rows = p.rt.store().message_rows("a").await.unwrap();
    assert_eq!(rows.len(), 2, "nothing recorded at a reused UID: {rows:?}");
    let reused = p.rt.store().audit_rows(Some("a"), Some("uids_reused"), 10).await.unwrap();
    assert_eq!(reused.len(), 1, "{reused:?}");
    assert!(reused[0].detail.contains("UIDNEXT 2 is not above UID 2"), "{reused:?}");
    let (code, health) = Admin::login(&p.base).await.get("/health").await;
    assert_eq!(code, 503);
    assert!(health.to_string().contains("new UIDVALIDITY"), "{health}");
    let cmds = fake.world.lock().unwrap().commands();
    assert!(!cmds.iter().any(|c| c.contains("MOVE")), "{cmds:?}");
    p.stop().await;
}

/// Issue 15, defect 4: Cyrus and Courier answer a CREATE of an existing
/// folder with a plain `NO ... already exists`, without RFC 5530's
/// `[ALREADYEXISTS]`; that is success, not a blocked account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_create_answered_already_exists_without_the_code_is_success() {
    let mut world = World::new(Vec::new());
    world.boxes.remove("Postern-Held");
    world.create_answer = Some("NO Mailbox already exists".into());
    let fake = Fake::start(world, None).await;
    let a = account("a", fake.port, "u", "p", &["INBOX"]);
    let mut c = postern::imap::Conn::connect(&a, T).await.unwrap();
    assert!(!c.ensure_mailbox("Postern-Held").await.unwrap(), "existing, not created");
    fake.world.lock().unwrap().create_answer = Some("NO [CANNOT] Permission denied".into());
    let e = c.ensure_mailbox("Other Box").await.unwrap_err();
    assert!(
        matches!(&e, postern::imap::ImapError::FolderUnavailable { folder, .. } if folder == "Other Box"),
        "{e}"
    );
    let cmds = fake.world.lock().unwrap().commands();
    assert!(
        cmds.iter().any(|l| l.ends_with("LIST \"\" \"Other Box\"")),
        "LIST pattern quoted: {cmds:?}"
    );
    assert!(cmds.iter().any(|l| l.ends_with("CREATE \"Other Box\"")), "{cmds:?}");
    c.logout().await;
}

/// A server that reports new mail only in its reply to DONE and whose
/// `UID SEARCH UID n:*` finds nothing (GNU imap4d 3.15, found by an
/// interop probe): the liveness probe's DONE wakes the cycle and the
/// catch-up asks with `UID FETCH`, so the mail is scanned long before the
/// renewal. Before, it was never scanned. The account's status says how
/// its verdicts move mail (no MOVE, no UIDPLUS: a guarded EXPUNGE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_reports_mail_only_at_done_and_cannot_search_uids() {
    let mut world = World::new(vec![mail("ok@good.test", "quiet", &unique("i4d"))]);
    world.imap4d = true;
    let fake = Fake::start(world, None).await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(600);
    t.probe_every = Duration::from_millis(500);
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], t, None).await;
    let rows = p.wait_done("a", 1).await;
    assert_eq!(rows[0].uid, 1, "{rows:?}");
    let cmds = fake.world.lock().unwrap().commands();
    assert!(cmds.iter().any(|l| l.contains("UID FETCH 1:* (UID)")), "{cmds:?}");
    let st = p.manager.status().into_iter().find(|s| s.mailbox == "INBOX").unwrap();
    assert!(
        st.move_caveat.as_deref().is_some_and(|w| w.contains("neither MOVE nor UIDPLUS")),
        "{st:?}"
    );
    p.manager.shutdown().await;
}

/// A folder that keeps no keywords (PERMANENTFLAGS without `\*`, as pymap's),
/// found by an interop probe: flag and junk verdicts were "done" with
/// nothing marked, `/health` green and its junk line saying spam "is
/// marked $Junk in place". Now `/health` warns, and says spam stays unmarked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_that_keeps_no_keywords_is_reported() {
    let mut world = World::new(vec![mail("ok@good.test", "plain", &unique("nokw"))]);
    world.no_keywords = true;
    let fake = Fake::start(world, None).await;
    let p = WebPostern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], Scanners::Local).await;
    eventually(T, "scanned", || async {
        let rows = p.rt.store().message_rows("a").await.unwrap();
        (rows.iter().filter(|r| r.status != "decided").count() == 1).then_some(())
    })
    .await;
    let (_, health) = Admin::login(&p.base).await.get("/health").await;
    let comps = health["components"].as_array().unwrap();
    let find = |name: &str| comps.iter().find(|c| c["name"] == name).cloned();
    let marks = find("marks:a").unwrap_or_else(|| panic!("no marks component: {health}"));
    assert_eq!(marks["ok"], false, "{marks}");
    assert!(marks["detail"].as_str().unwrap().contains("INBOX keeps no keywords"), "{marks}");
    let junk = find("junk:a").unwrap();
    assert!(
        junk["detail"].as_str().unwrap().contains("spam is left in place unmarked"),
        "{junk}"
    );
    p.stop().await;
}

/// A server that accepts TCP and never greets (a hung process), found by an
/// interop probe: between short backoffs the listener spends a whole
/// connect timeout in `connecting`, which `/health` counted as healthy, so
/// it showed green through the outage. Connecting again after a failure is
/// now failing until a healthy pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_not_healthy_while_postern_reconnects() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let p = WebPostern::start(vec![account("a", port, "u", "p", &["INBOX"])], Scanners::Local).await;
    eventually(T, "reconnecting after a failure", || async {
        let st = p.rt.manager().status().into_iter().find(|s| s.mailbox == "INBOX")?;
        (matches!(st.state, postern::manager::ListenerState::Connecting) && st.failing_since.is_some()).then_some(())
    })
    .await;
    let (code, health) = Admin::login(&p.base).await.get("/health").await;
    assert_eq!(code, 503, "{health}");
    assert!(health.to_string().contains("last error"), "{health}");
    p.stop().await;
    held.abort();
}

/// A server that answers the new-mail lookup (`UID FETCH n:* (UID)`) with
/// NO, found by an interop probe against hoodiecrow: async-imap's streamed
/// replies end at the tag without reading it, so the refusal read as "no
/// new mail" and the message was never scanned. The lookup now reads its
/// own tagged reply and asks `UID SEARCH` instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_new_mail_lookup_falls_back_to_search() {
    let mut world = World::new(vec![mail("ok@good.test", "refused", &unique("nf"))]);
    world.refuse_uid_fetch = true;
    let fake = Fake::start(world, None).await;
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], tuning(), None).await;
    let rows = p.wait_done("a", 1).await;
    assert_eq!(rows[0].uid, 1, "{rows:?}");
    let cmds = fake.world.lock().unwrap().commands();
    assert!(cmds.iter().any(|l| l.contains("UID SEARCH UID 1:*")), "{cmds:?}");
    p.manager.shutdown().await;
}
