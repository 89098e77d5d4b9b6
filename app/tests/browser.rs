//! The dashboard in headless Chromium (playwright-core, app/web/e2e), against
//! Postern watching the test Dovecot with the real Rspamd and clamd.
//!
//! The browser script drives the pages; this side owns the mailbox: a small
//! control server on loopback delivers mail and reports folder contents, so
//! the script can check what really happened in Dovecot.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::unique;
use crate::common::web::{ADMIN_PASSWORD, Scanners, WebPostern};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use postern::runtime::Runtime;
use postern::store::MessageFilter;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

struct Mailbox {
    port: u16,
    user: String,
    pass: String,
    client: Mutex<Option<TestClient>>,
}

#[derive(serde::Deserialize)]
struct Deliver {
    kind: String,
    subject: String,
}

fn build(kind: &str, subject: &str, id: &str) -> Vec<u8> {
    let (from, ctype, body) = match kind {
        "gtube" => (
            "Newsletter <news@bulk.example>",
            "text/plain; charset=utf-8",
            format!("Buy now.\r\n{GTUBE}\r\n"),
        ),
        // Every payload below would set a marker on the page or its parent if it ran.
        "xss" => (
            "Attacker <attacker@evil.test>",
            "text/html; charset=utf-8",
            "<html><body><p>Invoice attached.</p>\
             <script>parent.__pwned = 1; top.__pwned = 1; document.title = 'pwned';</script>\
             <img src=x onerror=\"parent.__pwned=2\"><svg onload=\"parent.__pwned=3\"></svg>\
             <a href=\"javascript:parent.__pwned=4\">pay</a><iframe srcdoc=\"<script>parent.parent.__pwned=5</script>\"></iframe>\
             <img src=\"https://tracker.example/pixel.gif\"><form action=\"https://phish.example\"><input name=p></form>\
             <style>body{background:url(https://tracker.example/bg)}</style><object data=\"https://x.example/a.swf\"></object>\
             </body></html>\r\n"
                .to_string(),
        ),
        _ => (
            "Spammer <bulk@evil.test>",
            "text/plain; charset=utf-8",
            "Blocked sender.\r\n".to_string(),
        ),
    };
    format!(
        "From: {from}\r\nTo: user@example.test\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@browser.test>\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n{body}"
    )
    .into_bytes()
}

async fn client(mb: &Mailbox) -> tokio::sync::MutexGuard<'_, Option<TestClient>> {
    let mut g = mb.client.lock().await;
    if g.is_none() {
        *g = Some(TestClient::connect(mb.port, &mb.user, &mb.pass).await);
    }
    g
}

async fn deliver(State(mb): State<Arc<Mailbox>>, Json(d): Json<Deliver>) -> Json<Value> {
    let id = unique("b");
    let raw = build(&d.kind, &d.subject, &id);
    let mut g = client(&mb).await;
    if let Some(c) = g.as_mut() {
        c.append("INBOX", None, &raw).await;
    }
    Json(json!({ "message_id": format!("{id}@browser.test") }))
}

#[derive(serde::Deserialize)]
struct LinkFor {
    subject: String,
}

/// A digest release link for the quarantined message with this subject, as
/// a digest would carry it (`token` is null until it is in quarantine).
async fn digest_link(State(rt): State<Runtime>, Json(l): Json<LinkFor>) -> Json<Value> {
    let f = MessageFilter {
        q: Some(l.subject),
        quarantined: true,
        ..Default::default()
    };
    let Some(m) = rt.store().list_messages(&f).await.unwrap().into_iter().next() else {
        return Json(json!({ "token": null }));
    };
    let sha = rt.store().message_sha(m.id).await.unwrap().unwrap();
    let expires = (rt.clock().now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let token = rt
        .issue_digest_link(m.id, &sha, "release", "browser@example.test", &expires)
        .await
        .unwrap();
    Json(json!({ "token": token }))
}

async fn folder(State(mb): State<Arc<Mailbox>>, Path(name): Path<String>) -> Json<Value> {
    let mut g = client(&mb).await;
    let mut ids = Vec::new();
    if let Some(c) = g.as_mut()
        && c.exists(&name).await
    {
        ids = c.ids(&name).await;
    }
    Json(json!({ "ids": ids }))
}

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_flow_in_chromium() {
    let playwright = web_dir().join("e2e/node_modules/playwright-core");
    assert!(
        playwright.is_dir(),
        "playwright-core is missing: run `npm ci --prefix app/web/e2e` (make test does it)"
    );
    let d = shared();
    let (user, pass) = d.new_user("browser");
    let p = WebPostern::start(vec![account("browser", d.imap_port, &user, &pass, &["INBOX"])], Scanners::Stack).await;
    let mb = Arc::new(Mailbox {
        port: d.imap_port,
        user,
        pass,
        client: Mutex::new(None),
    });
    let control = Router::new()
        .route("/deliver", post(deliver))
        .route("/folder/{name}", get(folder))
        .with_state(mb)
        .merge(Router::new().route("/digest-link", post(digest_link)).with_state(p.rt.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, control).await });

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(web_dir().join("e2e/dashboard.mjs"))
        .env("BASE_URL", &p.base)
        .env("CONTROL_URL", &control_url)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
        .await
        .expect("browser script timed out")
        .expect("running node");
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{log}");
    assert!(
        out.status.success(),
        "browser flow failed (screenshots in {}):\n{log}",
        artifacts.display()
    );
    p.stop().await;
}
