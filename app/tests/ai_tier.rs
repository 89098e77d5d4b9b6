//! The AI tier end to end (`--features ai`): a phishing mail that no other
//! scanner catches, delivered to Dovecot, ends in quarantine because of
//! AI_PHISH; an ordinary mail passes.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{eventually, unique};
use std::time::Duration;

fn plain(from: &str, subject: &str, body: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: user@example.test\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@ai.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_only_the_ai_tier_catches_is_quarantined() {
    let d = shared();
    let (user, pass) = d.new_user("ai");
    let p = WebPostern::start(vec![account("ai", d.imap_port, &user, &pass, &["INBOX"])], Scanners::LocalAi).await;
    let running: Vec<_> = p.rt.live().current().scanners().iter().map(|s| s.id()).collect();
    assert!(
        running.contains(&"ai"),
        "AI tier not loaded: {:?}",
        p.rt.live().current().disabled()
    );
    let admin = Admin::login(&p.base).await;
    p.wait_idling().await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let tag = unique("ai");
    c.append(
        "INBOX",
        None,
        &plain(
            "IT Service Desk <helpdesk@mailbox-services.example>",
            "Action required: your mailbox password expires today",
            "Dear user,\r\n\r\nYour email account password will expire today. To avoid suspension of your mailbox, \
             verify your account and confirm your login credentials now. Failure to verify your account within \
             24 hours will result in permanent deactivation.\r\n\r\nRegards,\r\nEmail Security Team",
            &format!("phish-{tag}"),
        ),
    )
    .await;
    c.append(
        "INBOX",
        None,
        &plain(
            "Anna <anna@example.org>",
            "Notes from Thursday",
            "Hi Bob,\r\n\r\nthanks for the meeting on Thursday. I attached nothing, but here are my notes: we agreed \
             to move the release to next week and to ask Carol about the budget.\r\n\r\nCheers,\r\nAnna",
            &format!("ham-{tag}"),
        ),
    )
    .await;
    let store = p.rt.store().clone();
    let rows = eventually(Duration::from_secs(30), "both messages decided", || {
        let store = store.clone();
        async move {
            let rows = store.message_rows("ai").await.unwrap();
            (rows.len() == 2).then_some(rows)
        }
    })
    .await;
    let phish = rows
        .iter()
        .find(|r| r.message_id.as_deref().is_some_and(|m| m.starts_with("phish-")))
        .unwrap();
    let ham = rows
        .iter()
        .find(|r| r.message_id.as_deref().is_some_and(|m| m.starts_with("ham-")))
        .unwrap();
    let tags = phish.tags.clone().unwrap_or_default();
    assert_eq!(phish.verdict.as_deref(), Some("quarantine"), "tags {tags}");
    let scoring: Vec<&str> = tags.split(',').filter(|t| !t.is_empty() && *t != "AI_SCORES").collect();
    assert_eq!(scoring, vec!["AI_PHISH"], "only the AI tier caught it");
    assert_eq!(ham.verdict.as_deref(), Some("pass"), "{:?}", ham.tags);
    eventually(Duration::from_secs(30), "moved to Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.exists("Quarantine").await && c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    let (_, detail) = admin.get(&format!("/api/messages/{}", phish.id)).await;
    assert!(detail["reason"].as_str().unwrap().contains("AI_PHISH"), "{detail}");
    assert!(
        detail["scan_json"].as_str().unwrap().contains("phish="),
        "the model scores are stored for the dashboard"
    );
    p.stop().await;
}
