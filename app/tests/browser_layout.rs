//! Issue 22's cosmetics in headless Chromium (app/web/e2e/layout.mjs): at
//! 1400 px the audit card holds even a long unbroken detail (no horizontal
//! overflow), and at phone width (390 px) the Quarantine table keeps the
//! subject visible while less important columns hide. Screenshots of both
//! land in target/browser-artifacts/layout-*.png.

use crate::common::unique;
use crate::common::web::{ADMIN_PASSWORD, Scanners, WebPostern};
use postern::domain::{Action, Decision, MessageKey, Verdict};
use postern::store::{AuditEntry, IntentState, MessageMeta, NewMessage};
use std::path::PathBuf;

/// A quarantined message with a long subject, and audit rows whose detail
/// is one long unbroken token (a hash, a URL, a server's answer).
async fn seed(p: &WebPostern, subject: &str) {
    let store = p.rt.store();
    let key = MessageKey {
        account: "layout".into(),
        mailbox: "INBOX".into(),
        uidvalidity: 1,
        uid: 1,
    };
    let m = NewMessage {
        key: key.clone(),
        meta: MessageMeta {
            message_id: Some("<layout@example.test>".into()),
            sha256: "ab".repeat(32),
            size: 100,
            from: Some("a-very-long-sender-address-for-layout@some-long-domain.example".into()),
            subject: Some(subject.into()),
            internal_date: None,
        },
    };
    let d = Decision {
        verdict: Verdict::Quarantine,
        tags: vec!["GTUBE".into()],
        reason: "spam".into(),
        score: 20.0,
        ..Default::default()
    };
    let action = Action::Quarantine {
        folder: "Quarantine".into(),
    };
    let (id, _) = store.record_decision(&m, &d, Some(&action), false, None).await.unwrap();
    let intent = store.pending_intents("layout").await.unwrap().pop().unwrap();
    store
        .finish_intent(&intent, IntentState::Done, Some(("Quarantine".into(), Some(7))), "moved".into())
        .await
        .unwrap();
    let long = format!("https://{}.example/{}", "x".repeat(180), "unbroken".repeat(40));
    store
        .audit(AuditEntry::message(&key, Some(id), "url_seen", format!("server said {long}")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_card_holds_long_details_and_phones_keep_the_subject() {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        web.join("e2e/node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix app/web/e2e` (make test does it)"
    );
    let p = WebPostern::start(vec![], Scanners::Local).await;
    let subject = format!("Quarterly invoice overdue {}", unique("ly"));
    seed(&p, &subject).await;
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(web.join("e2e/layout.mjs"))
        .env("BASE_URL", &p.base)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SUBJECT", &subject)
        .env("ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("browser script timed out")
        .expect("running node");
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{log}");
    assert!(
        out.status.success(),
        "layout checks failed (screenshots in {}):\n{log}",
        artifacts.display()
    );
    p.stop().await;
}
