//! Issue 22, item 4: the dashboard's cards and the menu's "Quarantine (N)"
//! follow a new quarantine and a release live, over SSE, without a reload
//! (app/web/e2e/counts.mjs in headless Chromium). A credential phish is
//! quarantined; the release moves it back to Dovecot's INBOX. The
//! settings page then shows an environment token as "set (environment)",
//! and sets and clears a VirusTotal key without ever echoing it.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::unique;
use crate::common::web::{ADMIN_PASSWORD, Scanners, WebPostern};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

const ENV_TOKEN: &str = "tk-env-browser-0123456789";

/// Appends a credential phish (the stack quarantines it; GTUBE would go to
/// Junk) to the account's INBOX; answers its subject and Message-ID.
async fn deliver(State(c): State<Arc<Mutex<TestClient>>>) -> Json<Value> {
    let id = unique("n");
    let subject = format!("Live count {id}");
    let raw = format!(
        "From: \"PayPal Security\" <service@paypa1-account-check.example>\r\nTo: user@example.test\r\n\
         Subject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@counts.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><p>Your account is limited. Confirm your password now.</p>\
         <form action=\"https://paypa1-account-check.example/collect\" method=\"post\">\
         <input type=\"password\" name=\"pw\"><button>Confirm</button></form>\
         <a href=\"https://www.paypal.com@paypa1-account-check.example/login\">https://www.paypal.com/login</a>\
         </body></html>\r\n"
    );
    c.lock().await.append("INBOX", None, raw.as_bytes()).await;
    Json(json!({ "subject": subject, "message_id": format!("{id}@counts.test") }))
}

/// The Message-IDs in one of the account's folders.
async fn folder(State(c): State<Arc<Mutex<TestClient>>>, Path(name): Path<String>) -> Json<Value> {
    let mut c = c.lock().await;
    let ids = if c.exists(&name).await { c.ids(&name).await } else { Vec::new() };
    Json(json!({ "ids": ids }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_count_cards_follow_quarantine_and_release_live() {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        web.join("e2e/node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix app/web/e2e` (make test does it)"
    );
    let d = shared();
    let (user, pass) = d.new_user("counts");
    // A token from the environment, to be shown as "set (environment)".
    let p = WebPostern::start_with(
        vec![account("counts", d.imap_port, &user, &pass, &["INBOX"])],
        Scanners::Stack,
        |s| {
            s.background.notify.ntfy_token = Some(ENV_TOKEN.into());
        },
    )
    .await;
    let client = Arc::new(Mutex::new(TestClient::connect(d.imap_port, &user, &pass).await));
    let control = Router::new()
        .route("/deliver", post(deliver))
        .route("/folder/{name}", get(folder))
        .with_state(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, control).await });

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts/counts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(web.join("e2e/counts.mjs"))
        .env("BASE_URL", &p.base)
        .env("CONTROL_URL", &control_url)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ENV_TOKEN", ENV_TOKEN)
        .env("ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), cmd.output())
        .await
        .expect("browser script timed out")
        .expect("running node");
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{log}");
    assert!(
        out.status.success(),
        "live counts failed (screenshots in {}):\n{log}",
        artifacts.display()
    );
    // The page's numbers are the store's.
    let c = p.rt.live_counts().await.unwrap();
    assert_eq!((c.in_quarantine, c.quarantine), (0, 0), "{c:?}");
    // The secret set and cleared in the page is audited under the admin's name.
    let rows = p.rt.store().audit_rows(None, Some("secret_changed"), 10).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.actor == "admin:admin" && !r.detail.contains("vt-browser-key"))
    );
    p.stop().await;
}
