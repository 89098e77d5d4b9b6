//! Learning from how users file their mail (issue 17), against the real
//! Dovecot and Rspamd controller of the test stack.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::rspamd;
use crate::common::stack::shared;
use crate::common::web::{Scanners, WebPostern};
use crate::common::{eventually, unique};
use postern::config::PolicyConfig;
use postern::domain::Verdict;
use postern::manager::ListenerState;
use postern::runtime::{build_pipeline, load_policy};
use std::time::Duration;

// As long as the other real-peer tests wait: CI runs them all at once on two cores.
const WAIT: Duration = Duration::from_secs(60);

/// A message with enough words for Rspamd's classifier (it declines fewer
/// than 11 tokens) and words of its own, so Bayes (trained by other tests
/// too) does not already put it in a class, which also declines learning.
fn long_mail(from: &str, id: &str) -> Vec<u8> {
    // Letters only: the unique tag's digits become letters.
    let own: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_digit(10).map_or(c, |d| (b'a' + d as u8) as char))
        .collect();
    let words: String = [
        "garden", "river", "lantern", "harbor", "meadow", "copper", "violet", "timber", "canyon", "pepper", "orchid", "marble", "falcon",
        "juniper", "saddle", "willow",
    ]
    .iter()
    .map(|w| format!("{w}{own} "))
    .collect();
    format!(
        "From: Test <{from}>\r\nTo: user@example.test\r\nSubject: Notes {id}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@test.postern>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
    )
    .into_bytes()
}

async fn learned_count(p: &WebPostern, class: &str) -> usize {
    let all = p.rt.store().lessons(100).await.unwrap();
    all.iter().filter(|l| l.class == class && l.state == "learned").count()
}

async fn wait_junk_idling(p: &WebPostern) {
    eventually(WAIT, "Junk learning listener idling", || async {
        p.rt.manager()
            .status()
            .iter()
            .any(|s| s.mailbox == "Junk (learning)" && s.state == ListenerState::Idling)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_folder_moves_teach_rspamd_once() {
    let d = shared();
    let (user, pass) = d.new_user("learn");
    let mut acct = account("learn", d.imap_port, &user, &pass, &["INBOX"]);
    acct.learn_from_folders = true;
    let (url, rpass) = d.rspamd_controller.clone().expect("rspamd controller in the stack");
    let p = WebPostern::start_with(vec![acct.clone()], Scanners::Local, |s| {
        s.scan.rspamd_controller_url = Some(url);
        s.scan.rspamd_password = Some(rpass);
    })
    .await;
    // Postern's own junk verdict for @evil.test, so it moves mail into Junk itself.
    let lists = PolicyConfig {
        block_senders: vec!["@evil.test".into()],
        block_verdict: Some(Verdict::Junk),
        ..Default::default()
    };
    let scan = p.rt.effective_scan(&Default::default());
    let mut policy = load_policy(p.rt.settings()).unwrap();
    policy.block_verdict = lists.block_verdict;
    p.rt.live().swap(build_pipeline(&scan, &lists, policy).unwrap());
    p.rt.spawn_learning(p.shutdown.clone());
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    p.wait_idling().await;
    wait_junk_idling(&p).await;

    let tag = unique("l");
    let (ham, spam) = (format!("ham-{tag}"), format!("spam-{tag}"));
    c.append("INBOX", None, &long_mail("friend@example.test", &ham)).await;
    c.append("INBOX", None, &long_mail("boss@evil.test", &spam)).await;
    eventually(WAIT, "Postern moved the spam into Junk", || async {
        let junk = TestClient::connect(d.imap_port, &user, &pass).await.ids("Junk").await;
        junk.iter().any(|m| m.contains(&spam)).then_some(())
    })
    .await;
    let rows = p.rt.store().message_rows("learn").await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");

    // The user files the legitimate-looking one as spam.
    let before = rspamd::learned().await;
    c.move_message("INBOX", &ham, "Junk").await;
    eventually(WAIT, "spam lesson learned", || async {
        (learned_count(&p, "spam").await == 1).then_some(())
    })
    .await;
    assert!(rspamd::learned().await > before, "Rspamd's learned count rose");
    let marked = p.rt.store().audit_rows(Some("learn"), Some("user_marked_spam"), 10).await.unwrap();
    assert_eq!(marked.len(), 1, "only the user's move is their opinion, not Postern's: {marked:?}");
    assert_eq!(marked[0].actor, "user:learn");
    assert_eq!(marked[0].mailbox.as_deref(), Some("Junk"));
    assert!(marked[0].message.is_some(), "linked to the scanned message: {marked:?}");

    // Both go back to the inbox: each is learned as ham, and the one
    // Postern had junked is not moved straight back.
    let before = rspamd::learned().await;
    c.move_message("Junk", &ham, "INBOX").await;
    c.move_message("Junk", &spam, "INBOX").await;
    eventually(WAIT, "two ham lessons learned", || async {
        (learned_count(&p, "ham").await == 2).then_some(())
    })
    .await;
    assert!(rspamd::learned().await >= before + 2, "Rspamd's learned count rose by two");
    let returned = p.rt.store().audit_rows(Some("learn"), Some("user_marked_ham"), 10).await.unwrap();
    assert_eq!(returned.len(), 2, "{returned:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inbox = c.ids("INBOX").await;
    assert!(
        inbox.iter().any(|m| m.contains(&spam)) && inbox.iter().any(|m| m.contains(&ham)),
        "{inbox:?}"
    );
    let (_, pending) = p.rt.store().pending_work().await.unwrap();
    assert_eq!(pending, 0, "no action was planned for the returned mail");

    // A restart re-syncs every folder and learns nothing twice; filing the
    // same message into Junk again is no new lesson either.
    p.rt.manager().stop_account("learn").await;
    p.rt.manager().start_account(acct).await;
    p.wait_idling().await;
    wait_junk_idling(&p).await;
    c.move_message("INBOX", &ham, "Junk").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let lessons = p.rt.store().lessons(100).await.unwrap();
    assert_eq!(lessons.len(), 3, "{lessons:?}");
    assert!(lessons.iter().all(|l| l.state == "learned" && l.attempts == 1), "{lessons:?}");
    let learned_rows = |e: &'static str| {
        let store = p.rt.store().clone();
        async move { store.audit_rows(Some("learn"), Some(e), 10).await.unwrap().len() }
    };
    assert_eq!(learned_rows("user_learned_spam").await + learned_rows("user_learned_ham").await, 3);
    p.stop().await;
}
