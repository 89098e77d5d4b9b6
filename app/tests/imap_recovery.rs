//! Crash recovery (SIGKILL of the real binary), UIDVALIDITY changes, and the
//! MOVE fallback paths, each against a real Dovecot.

use crate::common::client::{TestClient, raw_expunge};
use crate::common::harness::{Child, Postern, account, query_i64, query_texts, tuning, write_config};
use crate::common::proxy::Proxy;
use crate::common::stack::{Dovecot, shared};
use crate::common::{audit_rows_at_least, eventually, mail, pending_action_waits, unique};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn wait_sql(db: &Path, sql: &str, want: i64) {
    eventually(T, &format!("{sql} == {want}"), || async {
        (query_i64(db, sql) == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_decision_and_action_acts_exactly_once() {
    let d = shared();
    let (user, pass) = d.new_user("kill");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    write_config(dir.path(), d.imap_port, &user, &pass, &["INBOX"]);
    let child = Child::spawn(dir.path(), Some("after-decision"));
    wait_sql(&db, "SELECT count(*) FROM mailbox_state", 1).await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "crash me", &unique("k"))).await;
    c.append("INBOX", None, &mail("ok@good.test", "fine", &unique("k"))).await;
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'pending'", 1).await;
    wait_sql(&db, "SELECT count(*) FROM messages", 2).await;
    child.kill9();
    assert_eq!(c.count("INBOX").await, 2, "nothing was acted on before the kill");

    let _child = Child::spawn(dir.path(), None);
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'done'", 1).await;
    eventually(T, "moved once", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1 && c.count("INBOX").await == 1).then_some(())
    })
    .await;
    assert_eq!(query_i64(&db, "SELECT count(*) FROM audit WHERE event = 'action_done'"), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM messages"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_move_before_record_does_not_move_twice() {
    let d = shared();
    let (user, pass) = d.new_user("kill2");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    write_config(dir.path(), d.imap_port, &user, &pass, &["INBOX"]);
    let child = Child::spawn(dir.path(), Some("after-move"));
    wait_sql(&db, "SELECT count(*) FROM mailbox_state", 1).await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "moved then killed", &unique("k2")))
        .await;
    eventually(T, "server-side move", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    assert_eq!(query_i64(&db, "SELECT count(*) FROM intents WHERE state = 'pending'"), 1);
    child.kill9();

    let _child = Child::spawn(dir.path(), None);
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'done'", 1).await;
    let detail: i64 = query_i64(
        &db,
        "SELECT count(*) FROM audit WHERE event = 'action_done' AND detail LIKE '%already in Quarantine%'",
    );
    assert_eq!(detail, 1, "the restart found the earlier move instead of repeating it");
    assert_eq!(c.count("Quarantine").await, 1);
    assert_eq!(c.count("INBOX").await, 0);
    assert!(query_i64(&db, "SELECT count(*) FROM messages WHERE location_uid IS NOT NULL") == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_resyncs_and_never_acts_on_a_stale_uid() {
    let d = shared();
    let (user, pass) = d.new_user("uv");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create("Watched").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    write_config(dir.path(), d.imap_port, &user, &pass, &["Watched"]);
    let child = Child::spawn(dir.path(), Some("after-decision"));
    wait_sql(&db, "SELECT count(*) FROM mailbox_state", 1).await;
    let ham1 = mail("ok@good.test", "first ham", &unique("uv"));
    let evil = mail("bad@evil.test", "evil", &unique("uv"));
    c.append("Watched", None, &ham1).await; // UID 1
    wait_sql(&db, "SELECT count(*) FROM messages WHERE status = 'done'", 1).await;
    c.append("Watched", None, &evil).await; // UID 2, intent stays pending (failpoint)
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'pending'", 1).await;
    child.kill9();

    let old = c.uidvalidity("Watched").await;
    c.delete("Watched").await;
    c.create("Watched").await;
    let new = c.uidvalidity("Watched").await;
    assert_ne!(old, new, "Dovecot gave the recreated folder a new UIDVALIDITY");
    let innocent = mail("ok@good.test", "innocent at the stale UID", &unique("uv"));
    c.append("Watched", None, &ham1).await; // UID 1 again: recognised by hash
    c.append("Watched", None, &innocent).await; // UID 2: same number as the stale intent
    c.append("Watched", None, &evil).await; // UID 3

    let _child = Child::spawn(dir.path(), None);
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'stale'", 1).await;
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'done'", 1).await;
    wait_sql(&db, "SELECT count(*) FROM messages WHERE status = 'known'", 1).await;
    eventually(T, "only the evil copy moved", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1 && c.count("Watched").await == 2).then_some(())
    })
    .await;
    let left = c.list("Watched").await;
    assert_eq!(
        left.iter().map(|(u, _, _)| *u).collect::<Vec<_>>(),
        vec![1, 2],
        "UID 2 (innocent) untouched"
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM audit WHERE event = 'uidvalidity_changed'"), 1);
}

const NO_MOVE: &str =
    "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED CONDSTORE ESEARCH";
const NO_MOVE_NO_UIDPLUS: &str = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT UNSELECT CHILDREN NAMESPACE LIST-EXTENDED";

/// Without MOVE, a move is COPY then EXPUNGE. Killed between the two, the
/// message is in both folders; the restart finds the copy and removes only
/// the source, rather than copying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_copy_and_expunge_leaves_one_copy() {
    let d = Dovecot::private("copykill", Some(NO_MOVE));
    let (user, pass) = d.new_user("ck");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    write_config(dir.path(), d.imap_port, &user, &pass, &["INBOX"]);
    let poll = [("POSTERN_IMAP_POLL_SECS", "1")];
    let child = Child::spawn_with(dir.path(), Some("after-copy"), &poll);
    wait_sql(&db, "SELECT count(*) FROM mailbox_state", 1).await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "copied then killed", &unique("ck")))
        .await;
    eventually(T, "the COPY done, the EXPUNGE not", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1 && c.count("INBOX").await == 1).then_some(())
    })
    .await;
    child.kill9();

    let _child = Child::spawn_with(dir.path(), None, &poll);
    wait_sql(&db, "SELECT count(*) FROM intents WHERE state = 'done'", 1).await;
    let done = query_texts(&db, "SELECT detail FROM audit WHERE event = 'action_done'");
    assert!(
        done.len() == 1 && done[0].contains("already copied to Quarantine"),
        "the restart found the earlier copy instead of copying again: {done:?}"
    );
    assert_eq!(c.count("Quarantine").await, 1, "one copy in quarantine");
    assert_eq!(c.count("INBOX").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_falls_back_to_copy_and_uid_expunge_and_polls_without_idle() {
    let d = Dovecot::private("nomove", Some(NO_MOVE));
    let (user, pass) = d.new_user("nm");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let st = p.manager.status();
    assert!(
        st.iter().any(|s| s.state == postern::manager::ListenerState::Polling),
        "no IDLE advertised: polling: {st:?}"
    );
    // A message the user marked \Deleted but did not expunge must survive our UID EXPUNGE.
    c.append("INBOX", Some("(\\Deleted)"), &mail("ok@good.test", "user-deleted", &unique("nm")))
        .await;
    c.append("INBOX", None, &mail("bad@evil.test", "evil", &unique("nm"))).await;
    p.wait_done("a", 2).await;
    eventually(T, "fallback move", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1 && c.count("INBOX").await == 1).then_some(())
    })
    .await;
    let audit = p.store.audit_rows(Some("a"), Some("action_done"), 10).await.unwrap();
    assert!(audit[0].detail.contains("COPY+UID EXPUNGE"), "{audit:?}");
    let inbox = c.list("INBOX").await;
    assert!(
        inbox[0].1.contains(&"\\Deleted".to_string()),
        "the user's own \\Deleted message was not expunged"
    );
    p.manager.shutdown().await;
}

/// Without MOVE or UIDPLUS (Dovecot told to hide both, as GNU imap4d and
/// UW-IMAP lack them), a move is COPY and a plain EXPUNGE, which removes
/// every message marked `\\Deleted`: so it runs only while no other message
/// is. With one there, the move waits (refused, retried) and the user's
/// message survives; once the user's client expunges, the move goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_or_uidplus_a_guarded_expunge_moves_and_spares_deleted_mail() {
    let d = Dovecot::private("nouidplus", Some(NO_MOVE_NO_UIDPLUS));
    let (user, pass) = d.new_user("nu");
    // Waiting is not failing: two attempts would end a refused action.
    let mut t = tuning();
    t.action_max_attempts = 2;
    let proxy = Proxy::start(d.imap_port).await;
    let p = Postern::start(vec![account("a", proxy.port, &user, &pass, &["INBOX"])], t, None).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let counts = || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("INBOX").await, c.count("Quarantine").await)
    };
    c.append("INBOX", None, &mail("bad@evil.test", "evil", &unique("nu"))).await;
    p.wait_done("a", 1).await;
    eventually(T, "guarded move", || async { (counts().await == (0, 1)).then_some(()) }).await;
    let done = audit_rows_at_least(&p.store, "a", "action_done", 1).await;
    assert!(
        done[0].detail.contains("COPY+EXPUNGE (no other message marked deleted)"),
        "{done:?}"
    );

    let kept = unique("nu");
    c.append("INBOX", Some("(\\Deleted)"), &mail("ok@good.test", "user-deleted", &kept))
        .await;
    // A large message: were it fetched again at every pass while it waits,
    // that would be a megabyte a pass.
    let mut big = mail("bad@evil.test", "evil again", &unique("nu"));
    for _ in 0..14_000 {
        big.extend_from_slice(&[b'x'; 76]);
        big.extend_from_slice(b"\r\n");
    }
    c.append("INBOX", None, &big).await;
    pending_action_waits(&p.store, "a").await;
    let before = proxy.down.load(std::sync::atomic::Ordering::SeqCst);
    // Passes every 500 ms (the test tuning's action_retry).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent = proxy.down.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        sent < 256 * 1024,
        "a waiting action searches, it does not refetch: {sent} bytes in 4 s"
    );
    // The dashboard's message drawer says why.
    let waiting = p.store.pending_intents("a").await.unwrap();
    let detail = p.store.message_detail(waiting[0].message).await.unwrap().unwrap();
    let note = detail.pending_note.unwrap_or_default();
    assert!(note.contains("marked \\Deleted"), "{note}");
    assert_eq!(
        counts().await,
        (2, 1),
        "nothing expunged, no second copy, while the user's deleted mail is there"
    );
    assert!(c.ids("INBOX").await.iter().any(|m| m.contains(&kept)));
    raw_expunge(d.imap_port, &user, &pass, "INBOX").await;
    eventually(T, "the move after the user's expunge", || async {
        (counts().await == (0, 2)).then_some(())
    })
    .await;
    p.manager.shutdown().await;
}
