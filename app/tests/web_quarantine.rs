//! The quarantine workflow over the JSON API, against the real Dovecot and
//! Rspamd of the test stack: release (and no re-quarantine loop), delete
//! (with a kept copy and an audit row), rescan, learn, lists and settings.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{eventually, mail, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn quarantined(admin: &Admin) -> Vec<Value> {
    admin.get("/api/messages?quarantined=true&limit=200").await.1["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn id_of(admin: &Admin, subject: &str) -> i64 {
    eventually(WAIT, &format!("{subject} in quarantine"), || async move {
        quarantined(admin)
            .await
            .iter()
            .find(|m| m["subject"] == subject)
            .and_then(|m| m["id"].as_i64())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_delete_rescan_and_learn_through_the_api() {
    let d = shared();
    let (user, pass) = d.new_user("webq");
    let p = WebPostern::start(vec![account("webq", d.imap_port, &user, &pass, &["INBOX"])], Scanners::Stack).await;
    let admin = Admin::login(&p.base).await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    p.wait_idling().await;

    let tag = unique("q");
    let (a, b, k) = (format!("release {tag}"), format!("delete {tag}"), format!("keep {tag}"));
    for (subj, id) in [(&a, "ra"), (&b, "rb"), (&k, "rk")] {
        c.append("INBOX", None, &mail("boss@evil.test", subj, &format!("{id}-{tag}"))).await;
    }
    let (ida, idb, idk) = (id_of(&admin, &a).await, id_of(&admin, &b).await, id_of(&admin, &k).await);
    eventually(WAIT, "three messages moved", || async {
        (c_count(d, &user, &pass, "Quarantine").await == 3).then_some(())
    })
    .await;

    // Release: back to INBOX, and it stays there.
    let (code, r) = admin.post(&format!("/api/messages/{ida}/release")).await;
    assert_eq!((code, r["state"].as_str()), (200, Some("done")), "{r}");
    let store = p.rt.store().clone();
    eventually(WAIT, "released copy recognised", || {
        let store = store.clone();
        async move {
            let rows = store.audit_rows(Some("webq"), Some("released_returned"), 10).await.unwrap();
            (!rows.is_empty()).then_some(())
        }
    })
    .await;
    let inbox = c.ids("INBOX").await;
    assert!(
        inbox.iter().any(|m| m.contains(&format!("ra-{tag}"))),
        "released message is in INBOX: {inbox:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, pending) = p.rt.store().pending_work().await.unwrap();
    assert_eq!(pending, 0);
    assert!(
        c.ids("INBOX").await.iter().any(|m| m.contains(&format!("ra-{tag}"))),
        "and stays there"
    );
    assert!(!c.ids("Quarantine").await.iter().any(|m| m.contains(&format!("ra-{tag}"))));
    let (code, r) = admin.post(&format!("/api/messages/{ida}/release")).await;
    assert_eq!(code, 409, "a released message cannot be released again: {r}");

    // Delete: gone from the server, EML copy kept, audit row by the admin.
    let (code, r) = admin.post(&format!("/api/messages/{idb}/delete")).await;
    assert_eq!((code, r["state"].as_str()), (200, Some("done")), "{r}");
    assert!(!c.ids("Quarantine").await.iter().any(|m| m.contains(&format!("rb-{tag}"))));
    let (_, detail) = admin.get(&format!("/api/messages/{idb}")).await;
    let eml = detail["eml_path"].as_str().expect("EML copy recorded");
    assert!(std::fs::metadata(eml).unwrap().len() > 0, "EML copy kept at {eml}");
    assert!(
        detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "delete_done" && h["actor"] == "admin:admin"),
        "{detail}"
    );
    let (code, raw) = (
        admin.get(&format!("/messages/{idb}/eml")).await.0,
        std::fs::read_to_string(eml).unwrap(),
    );
    assert_eq!(code, 200);
    assert!(raw.contains(&format!("rb-{tag}")));

    // Rescan records a verdict and moves nothing.
    let (code, r) = admin.post(&format!("/api/messages/{idk}/rescan")).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["verdict"], "quarantine");
    assert!(c.ids("Quarantine").await.iter().any(|m| m.contains(&format!("rk-{tag}"))));

    // Learn goes to the real Rspamd controller...
    let (code, r) = admin.post(&format!("/api/messages/{idk}/learn-spam")).await;
    assert_eq!(code, 200, "{r}");
    assert!(r["detail"].as_str().unwrap().contains("learn"), "{r}");
    // ...and a failure is shown, not swallowed.
    let (code, _) = admin
        .send(Method::PUT, "/api/settings/secrets/rspamd_password", json!({"value": "wrong"}))
        .await;
    assert_eq!(code, 200);
    let (code, r) = admin.post(&format!("/api/messages/{idk}/learn-ham")).await;
    assert_eq!(code, 502, "{r}");
    assert!(r["error"].as_str().unwrap().contains("Rspamd"), "{r}");

    // A list entry applies at once.
    let (code, r) = admin
        .send(
            Method::POST,
            "/api/lists",
            json!({"kind": "block", "pattern": "@later.example", "reason": "test"}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let late = format!("late {tag}");
    c.append("INBOX", None, &mail("x@later.example", &late, &format!("rl-{tag}"))).await;
    id_of(&admin, &late).await;

    // Bad settings are refused with a reason.
    let (code, r) = admin
        .send(
            Method::PUT,
            "/api/settings",
            json!({"threshold_flag": 50.0, "threshold_quarantine": 10.0}),
        )
        .await;
    assert_eq!(code, 400, "{r}");
    p.stop().await;
}

async fn c_count(d: &crate::common::stack::Dovecot, user: &str, pass: &str, folder: &str) -> usize {
    let mut c = TestClient::connect(d.imap_port, user, pass).await;
    if !c.exists(folder).await {
        return 0;
    }
    c.count(folder).await
}
