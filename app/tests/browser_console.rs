//! Issue 22's acceptance in headless Chromium (app/web/e2e/console.mjs):
//! an analyst cannot open settings; a mailbox owner sees only their own
//! quarantine, releases spam alone, and a phishing release becomes a
//! request an admin approves; a CSV export downloads with the page's filters;
//! backfill progress moves on the dashboard while a 500-message backfill runs.
//!
//! Two real Dovecot accounts, the stack's Rspamd and clamd. The control
//! server delivers mail and lists folders, so the script checks Dovecot
//! itself, not only the pages.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::proxy::Proxy;
use crate::common::stack::shared;
use crate::common::unique;
use crate::common::web::{ADMIN_PASSWORD, Scanners, WebPostern};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const ANALYST_PASSWORD: &str = "analyst horse battery";
/// Messages in the backfill the dashboard watches (the issue's 500).
const BACKFILL: usize = 500;

/// Each account's login and a lazily opened IMAP client.
struct Mailboxes {
    port: u16,
    logins: HashMap<String, (String, String)>,
    clients: Mutex<HashMap<String, TestClient>>,
}

#[derive(serde::Deserialize)]
struct Deliver {
    to: String,
    kind: String,
    subject: String,
}

/// GTUBE spam, or a brand-spoofing credential phish (display name "PayPal",
/// a password form, a URL hiding its host behind userinfo).
fn build(kind: &str, subject: &str, id: &str) -> Vec<u8> {
    let (from, ctype, body) = match kind {
        "phish" => (
            "\"PayPal Security\" <service@paypa1-account-check.example>",
            "text/html; charset=utf-8",
            "<html><body><p>Your account is limited. Confirm your password now.</p>\
             <form action=\"https://paypa1-account-check.example/collect\" method=\"post\">\
             <input type=\"password\" name=\"pw\"><button>Confirm</button></form>\
             <a href=\"https://www.paypal.com@paypa1-account-check.example/login\">https://www.paypal.com/login</a>\
             </body></html>\r\n"
                .to_string(),
        ),
        _ => (
            "Newsletter <news@bulk.example>",
            "text/plain; charset=utf-8",
            format!("Buy now.\r\n{GTUBE}\r\n"),
        ),
    };
    format!(
        "From: {from}\r\nTo: user@example.test\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@console.test>\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n{body}"
    )
    .into_bytes()
}

async fn with_client<R>(mb: &Mailboxes, name: &str, f: impl AsyncFnOnce(&mut TestClient) -> R) -> Option<R> {
    let (user, pass) = mb.logins.get(name)?;
    let mut g = mb.clients.lock().await;
    if !g.contains_key(name) {
        g.insert(name.to_string(), TestClient::connect(mb.port, user, pass).await);
    }
    let c = g.get_mut(name)?;
    Some(f(c).await)
}

async fn deliver(State(mb): State<Arc<Mailboxes>>, Json(d): Json<Deliver>) -> Json<Value> {
    let id = unique("c");
    let raw = build(&d.kind, &d.subject, &id);
    with_client(&mb, &d.to, async |c| c.append("INBOX", None, &raw).await).await;
    Json(json!({ "message_id": format!("{id}@console.test") }))
}

async fn folder(State(mb): State<Arc<Mailboxes>>, Path((name, folder)): Path<(String, String)>) -> Json<Value> {
    let ids = with_client(&mb, &name, async |c| {
        if c.exists(&folder).await {
            c.ids(&folder).await
        } else {
            Vec::new()
        }
    })
    .await
    .unwrap_or_default();
    Json(json!({ "ids": ids }))
}

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_console_acceptance_in_chromium() {
    let playwright = web_dir().join("e2e/node_modules/playwright-core");
    assert!(
        playwright.is_dir(),
        "playwright-core is missing: run `npm ci --prefix app/web/e2e` (make test does it)"
    );
    let d = shared();
    let (owner_user, owner_pass) = d.new_user("owner");
    let (other_user, other_pass) = d.new_user("other");
    // 500 old messages for a backfill, in place before Postern starts.
    let (bulk_user, bulk_pass) = d.new_user("bulk");
    let mut c = TestClient::connect(d.imap_port, &bulk_user, &bulk_pass).await;
    for i in 0..BACKFILL {
        let raw = format!(
            "From: Archive <archive@example.test>\r\nTo: bulk@example.test\r\nSubject: Old mail {i}\r\n\
             Message-ID: <old-{i}@console.test>\r\n\r\nAn old message, number {i}.\r\n"
        );
        c.append("INBOX", None, raw.as_bytes()).await;
    }
    // The backfill reaches Dovecot through a proxy that pauses it for
    // 0.8 s in every 1.2 s until it is done: the pipeline scans 500 small
    // messages in seconds, faster than a page (or a person) can watch.
    let slow = Proxy::start(d.imap_port).await;
    let mut bulk = account("bulk", slow.port, &bulk_user, &bulk_pass, &["INBOX"]);
    bulk.start_at = postern::config::StartAt::Backfill { days: 30 };
    let accounts = vec![
        account("owner", d.imap_port, &owner_user, &owner_pass, &["INBOX"]),
        account("other", d.imap_port, &other_user, &other_pass, &["INBOX"]),
        bulk,
    ];
    let p = WebPostern::start(accounts, Scanners::Stack).await;
    let hash = bcrypt::hash(ANALYST_PASSWORD, 4).unwrap();
    assert!(p.rt.store().add_user("ann", "analyst", &hash, "test").await.unwrap());
    let mb = Arc::new(Mailboxes {
        port: d.imap_port,
        logins: HashMap::from([
            ("owner".to_string(), (owner_user.clone(), owner_pass.clone())),
            ("other".to_string(), (other_user, other_pass)),
        ]),
        clients: Mutex::new(HashMap::new()),
    });
    let control = Router::new()
        .route("/deliver", post(deliver))
        .route("/folder/{name}/{folder}", get(folder))
        .with_state(mb);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, control).await });

    let _pacer = {
        let rt = p.rt.clone();
        tokio::spawn(async move {
            loop {
                let finished = rt
                    .backfill_progress()
                    .await
                    .map(|b| b.iter().any(|b| b.account == "bulk" && b.finished))
                    .unwrap_or(false);
                if finished {
                    slow.set_blackhole(false);
                    // The proxy stays up: the account keeps watching through it.
                    std::future::pending::<()>().await;
                }
                slow.set_blackhole(true);
                tokio::time::sleep(std::time::Duration::from_millis(800)).await;
                slow.set_blackhole(false);
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            }
        })
    };

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts/console");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(web_dir().join("e2e/console.mjs"))
        .env("BASE_URL", &p.base)
        .env("CONTROL_URL", &control_url)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ANALYST_PASSWORD", ANALYST_PASSWORD)
        .env("OWNER_LOGIN", &owner_user)
        .env("OWNER_PASSWORD", &owner_pass)
        .env("BACKFILL", BACKFILL.to_string())
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
        "console acceptance failed (screenshots in {}):\n{log}",
        artifacts.display()
    );
    // The audit log names the real actors of the flow.
    let rows = p.rt.store().audit_rows(None, None, 500).await.unwrap();
    let has = |actor: &str, event: &str| rows.iter().any(|r| r.actor == actor && r.event == event);
    assert!(has("owner:owner", "owner_login"), "owner sign-in not audited");
    assert!(has("owner:owner", "op_requested"), "the owner's own release not audited");
    assert!(has("owner:owner", "release_requested"));
    assert!(has("admin:admin", "release_approved"));
    // /health and /metrics tell the same backfill story.
    let b = p.rt.backfill_progress().await.unwrap();
    let bulk = b.iter().find(|b| b.account == "bulk").expect("no backfill progress for bulk");
    assert_eq!(
        (bulk.done, bulk.total, bulk.finished),
        (BACKFILL as u64, BACKFILL as u64, true),
        "{b:?}"
    );
    p.stop().await;
}
