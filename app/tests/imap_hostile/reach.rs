//! Issue 15, defects 1 and 6, with the scripted server: a folder deleted
//! and recreated while Postern sits in it, as Courier shows it (the old
//! session serves the new folder under the old UIDVALIDITY; STATUS and a
//! new SELECT tell) and as Cyrus does (only `* 1 EXPUNGE`), and a SELECT
//! without UIDNEXT. Each test failed before its fix.

use super::fake::{Fake, World};
use crate::common::harness::{Postern, account, tuning};
use crate::common::{eventually, mail, unique};
use postern::config::StartAt;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// Three harmless messages, seen and recorded under UIDVALIDITY 7; then
/// INBOX is replaced by `fresh` (blocked mail at UID 1, and UIDs up to 4,
/// past the old cursor at 3). Returns the new UIDVALIDITY.
async fn replace_inbox(p: &Postern, fake: &Fake, push: &[&str]) -> u32 {
    p.wait_done("a", 3).await;
    p.wait_watching("a").await;
    let fresh = vec![
        mail("bad@evil.test", "new folder, bad", &unique("nb")),
        mail("ok@good.test", "new folder 2", &unique("n2")),
        mail("ok@good.test", "new folder 3", &unique("n3")),
        mail("ok@good.test", "new folder 4", &unique("n4")),
    ];
    let mut w = fake.world.lock().unwrap();
    let uv = w.recreate_inbox(fresh);
    w.push.extend(push.iter().map(|s| s.to_string()));
    uv
}

/// Every message of the new folder is recorded exactly once, under the new
/// UIDVALIDITY; nothing of it under the old one; the blocked one is moved.
async fn assert_new_folder_scanned_once(p: &Postern, fake: &Fake, new_uv: u32) {
    let rows = eventually(T, "the new folder scanned", || async {
        let rows = p.store.message_rows("a").await.unwrap();
        (rows.iter().filter(|r| r.uidvalidity == new_uv && r.status != "decided").count() >= 4).then_some(rows)
    })
    .await;
    let mut fresh: Vec<u32> = rows.iter().filter(|r| r.uidvalidity == new_uv).map(|r| r.uid).collect();
    fresh.sort_unstable();
    assert_eq!(fresh, vec![1, 2, 3, 4], "each new UID once: {rows:?}");
    let old: Vec<u32> = rows.iter().filter(|r| r.uidvalidity == 7).map(|r| r.uid).collect();
    assert_eq!(old, vec![1, 2, 3], "nothing of the new folder under the old UIDVALIDITY: {rows:?}");
    eventually(T, "blocked mail of the new folder quarantined", || async {
        let w = fake.world.lock().unwrap();
        (w.boxes["Quarantine"].len() == 1).then_some(())
    })
    .await;
}

fn start_world() -> World {
    World::new(
        (0..3)
            .map(|i| mail("ok@good.test", "old folder", &unique(&format!("of{i}"))))
            .collect(),
    )
}

/// Courier: no word to the old session at all. The checks after the IDLE
/// renewal (a new SELECT) or a wake (STATUS) reveal the new UIDVALIDITY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_courier_folder_recreated_under_the_old_uidvalidity_is_noticed_on_renewal() {
    let fake = Fake::start(start_world(), None).await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(1);
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], t, None).await;
    let uv = replace_inbox(&p, &fake, &[]).await;
    assert_new_folder_scanned_once(&p, &fake, uv).await;
    let cmds = fake.world.lock().unwrap().commands();
    assert!(cmds.iter().any(|c| c.contains("STATUS \"INBOX\"")), "{cmds:?}");
    p.manager.shutdown().await;
}

/// Cyrus: the old session hears only `* 1 EXPUNGE`. The renewal is far
/// away, so the wake itself must lead to the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_cyrus_folder_recreated_with_only_an_expunge_is_noticed_on_the_wake() {
    let fake = Fake::start(start_world(), None).await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(600);
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], t, None).await;
    let uv = replace_inbox(&p, &fake, &["* 1 EXPUNGE"]).await;
    assert_new_folder_scanned_once(&p, &fake, uv).await;
    p.manager.shutdown().await;
}

/// A server that refuses STATUS on the selected folder: after a
/// `[CLOSED]` the folder is selected again, and the new UIDVALIDITY found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_closed_response_code_leads_to_a_new_select() {
    let mut world = start_world();
    world.status_refused = true;
    let fake = Fake::start(world, None).await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(600);
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], t, None).await;
    let uv = replace_inbox(&p, &fake, &["* OK [CLOSED] mailbox replaced"]).await;
    assert_new_folder_scanned_once(&p, &fake, uv).await;
    let audit = p.store.audit_rows(Some("a"), Some("uidvalidity_changed"), 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    p.manager.shutdown().await;
}

/// Issue 15, defect 6: SELECT sends no UIDNEXT. With `start_at: new`, mail
/// already in the folder is not new: the blocked message from before the
/// start stays where it is, and only mail delivered afterwards is scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_select_without_uidnext_does_not_turn_old_mail_into_new_mail() {
    let world = World::existing(vec![
        mail("bad@evil.test", "from before the start", &unique("pre")),
        mail("ok@good.test", "also before", &unique("pre")),
    ]);
    let fake = Fake::start(world, None).await;
    let p = Postern::start(vec![account("a", fake.port, "u", "p", &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let st = p.store.mailbox_state("a", "INBOX").await.unwrap().unwrap();
    assert_eq!(st.last_uid, 2, "the cursor starts after the existing mail");
    {
        let mut w = fake.world.lock().unwrap();
        w.deliver(vec![mail("ok@good.test", "after the start", &unique("post"))]);
        w.push.push("* 3 EXISTS".into());
    }
    let rows = p.wait_done("a", 1).await;
    assert_eq!(rows.iter().map(|r| r.uid).collect::<Vec<_>>(), vec![3], "{rows:?}");
    let cmds = fake.world.lock().unwrap().commands();
    assert!(!cmds.iter().any(|c| c.contains("MOVE")), "old mail was acted on: {cmds:?}");
    p.manager.shutdown().await;
}

/// Defect 6 with `backfill_days`: the existing mail is scanned observe-only
/// (never moved), not treated as new mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_backfill_without_uidnext_scans_old_mail_observe_only() {
    let world = World::existing(vec![
        mail("bad@evil.test", "history", &unique("bf")),
        mail("ok@good.test", "history", &unique("bf")),
    ]);
    let fake = Fake::start(world, None).await;
    let mut acct = account("a", fake.port, "u", "p", &["INBOX"]);
    acct.start_at = StartAt::Backfill { days: 30 };
    let p = Postern::start(vec![acct], tuning(), None).await;
    let rows = p.wait_done("a", 2).await;
    assert!(rows.iter().all(|r| r.observe_only), "{rows:?}");
    p.wait_watching("a").await;
    let cmds = fake.world.lock().unwrap().commands();
    assert!(!cmds.iter().any(|c| c.contains("MOVE")), "history was acted on: {cmds:?}");
    p.manager.shutdown().await;
}

/// A server that refuses the backfill's `SINCE` search. Through
/// async-imap the BAD read as "no old mail" and the backfill showed as
/// done; now the refusal is in the audit trail, and the folder goes on to
/// watch new mail instead of failing on every pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_backfill_search_is_recorded_and_new_mail_is_still_watched() {
    let mut world = World::existing(vec![mail("ok@good.test", "history", &unique("bfr"))]);
    world.refuse_since = true;
    world.incoming = vec![mail("bad@evil.test", "new", &unique("bfr"))];
    let fake = Fake::start(world, None).await;
    let mut acct = account("a", fake.port, "u", "p", &["INBOX"]);
    acct.start_at = StartAt::Backfill { days: 30 };
    let p = Postern::start(vec![acct], tuning(), None).await;
    let rows = p.wait_done("a", 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].uid, 2, "the new message, not the history: {rows:?}");
    assert!(!rows[0].observe_only, "{rows:?}");
    let refused = p.store.audit_rows(Some("a"), Some("backfill_refused"), 10).await.unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].detail.contains("Unknown search key SINCE"), "{refused:?}");
    p.manager.shutdown().await;
}
