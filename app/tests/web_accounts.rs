//! Accounts managed from the dashboard's JSON API, against the real
//! Dovecot: created accounts start watching, carry their digest settings,
//! never show their password, keep it on an edit without one, stop, start
//! and go away; bad input gets a clear 400.

use crate::common::client::TestClient;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{eventually, mail, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn view(admin: &Admin, name: &str) -> Option<Value> {
    let (code, all) = admin.get("/api/accounts").await;
    assert_eq!(code, 200);
    all.as_array().unwrap().iter().find(|a| a["name"] == name).cloned()
}

fn idling(p: &WebPostern, name: &str) -> bool {
    p.rt.manager()
        .status()
        .iter()
        .any(|s| s.account == name && s.mailbox == "INBOX" && format!("{:?}", s.state) == "Idling")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_from_the_api_watch_mail_and_keep_their_digest_settings() {
    let d = shared();
    let (user, pass) = d.new_user("acct");
    let p = WebPostern::start(vec![], Scanners::Local).await;
    let admin = Admin::login(&p.base).await;
    let port = d.imap_port.to_string();
    let body = |extra: Value| {
        let mut b = json!({ "name": "dash", "host": "127.0.0.1", "port": port, "tls": "plain", "user": user, "pass": pass });
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };

    let (code, err) = admin.send(Method::POST, "/api/accounts", body(json!({ "digest": "hourly" }))).await;
    assert_eq!(code, 400, "{err}");
    assert!(err.to_string().contains("digest"), "the problem names the field: {err}");
    let (code, err) = admin
        .send(
            Method::POST,
            "/api/accounts",
            body(json!({ "digest": "weekly", "user": "not-an-address" })),
        )
        .await;
    assert_eq!(code, 400, "a digest needs somewhere to go: {err}");

    let (code, created) = admin
        .send(
            Method::POST,
            "/api/accounts",
            body(json!({ "digest": "weekly", "digest_to": "owner@example.test" })),
        )
        .await;
    assert_eq!(code, 200, "{created}");
    let v = view(&admin, "dash").await.unwrap();
    assert_eq!(
        (v["digest"].as_str(), v["digest_to"].as_str()),
        (Some("weekly"), Some("owner@example.test"))
    );
    assert_eq!(v["source"], "web");
    assert!(
        v.get("pass").is_none() && !v.to_string().contains(&pass),
        "the password is never shown"
    );
    eventually(WAIT, "the new account idling", || async { idling(&p, "dash").then_some(()) }).await;

    // It really watches: blocked mail is quarantined in Dovecot.
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("spam@evil.test", "from the api account", &unique("a")))
        .await;
    eventually(WAIT, "quarantined", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;

    // An edit without a password keeps the stored one (it logs in again).
    let mut edit = body(json!({ "digest": "never", "digest_to": "" }));
    edit["pass"] = json!("");
    let (code, r) = admin.send(Method::PUT, "/api/accounts/dash", edit).await;
    assert_eq!(code, 200, "{r}");
    let v = view(&admin, "dash").await.unwrap();
    assert_eq!((v["digest"].as_str(), v["digest_to"].as_str()), (Some("never"), None));
    let stored = p.rt.store().account("dash").await.unwrap().unwrap();
    assert_eq!(stored.pass, pass, "the stored password survived the edit");
    eventually(WAIT, "idling after the edit", || async { idling(&p, "dash").then_some(()) }).await;

    assert_eq!(admin.post("/api/accounts/dash/stop").await.0, 200);
    eventually(WAIT, "stopped", || async { (!idling(&p, "dash")).then_some(()) }).await;
    assert_eq!(admin.post("/api/accounts/dash/start").await.0, 200);
    eventually(WAIT, "started again", || async { idling(&p, "dash").then_some(()) }).await;

    let (code, _) = admin.send(Method::DELETE, "/api/accounts/dash", json!({})).await;
    assert_eq!(code, 200);
    assert!(view(&admin, "dash").await.is_none());
    eventually(WAIT, "stopped after removal", || async { (!idling(&p, "dash")).then_some(()) }).await;
    let audit = admin.get("/api/audit?limit=50").await.1.to_string();
    assert!(audit.contains("account_created") && audit.contains("account_updated"), "{audit}");
    p.stop().await;
}
