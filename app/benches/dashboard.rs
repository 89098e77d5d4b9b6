//! `make bench` part 3 (P5): quarantine-list latency with a large database.
//! 100,000 stored scans (a fifth of them in quarantine), 50 concurrent
//! logged-in clients each fetching the quarantine list through the JSON API
//! and as the HTML page, first and deep pages. Results go to
//! bench/results/dashboard.json.
// A benchmark that cannot set up should stop loudly, like a test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use postern::clock::{SharedClock, SystemClock};
use postern::config::Settings;
use postern::runtime::Runtime;
use postern::store::Store;
use postern::web::AppState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "bench admin passphrase";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bulk-loads synthetic scans straight into SQLite (one transaction).
fn seed(db: &std::path::Path, n: usize) {
    let mut c = rusqlite::Connection::open(db).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut st = tx
            .prepare(
                "INSERT INTO messages (account, mailbox, uidvalidity, uid, message_id, sha256, size, from_addr, subject,
                   status, verdict, tags, reason, score, first_seen, updated_at, quarantined, location_mailbox, location_uid)
                 VALUES (?1, 'INBOX', 1, ?2, ?3, ?4, 2048, ?5, ?6, 'done', ?7, ?8, 'bench', ?9, ?10, ?10, ?11, ?12, ?13)",
            )
            .unwrap();
        for i in 0..n {
            let verdict = match i % 10 {
                0 | 1 => "quarantine",
                2 => "flag",
                _ => "pass",
            };
            let q = verdict == "quarantine";
            let day = 1 + (i * 30 / n.max(1));
            st.execute(rusqlite::params![
                format!("acct{}", i % 4),
                i as i64 + 1,
                format!("bench-{i}@example.test"),
                format!("{i:064x}"),
                format!("sender{}@domain{}.example", i % 997, i % 89),
                format!("Bench subject number {i}"),
                verdict,
                if q { "RSPAMD_REJECT" } else { "" },
                if q { 12.0 } else { 1.0 },
                format!("2026-11-{day:02}T10:00:00.000Z"),
                q,
                q.then_some("Quarantine"),
                q.then_some(i as i64 + 1),
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let i = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let token = html[i..].split('"').next().unwrap().to_string();
    let body = format!("_csrf={token}&password={}", PASSWORD.replace(' ', "+"));
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let n = env_num("BENCH_SCANS", 100_000);
    let clients = env_num("BENCH_CLIENTS", 50);
    let per_client = env_num("BENCH_REQUESTS", 40);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Settings::for_data_dir(dir.path().to_path_buf(), [9u8; 32]);
    s.admin_password_hash = Some(bcrypt::hash(PASSWORD, 4).unwrap());
    s.web.insecure_cookies = true;
    s.web.login_max_failures = 100;
    let clock: SharedClock = Arc::new(SystemClock);
    drop(Store::open(&s.db_path, &s.db_key, clock.clone()).unwrap());
    let t = Instant::now();
    seed(&s.db_path, n);
    eprintln!("seeded {n} scans in {:.1} s", t.elapsed().as_secs_f64());
    let store = Store::open(&s.db_path, &s.db_key, clock.clone()).unwrap();
    let rt = Runtime::assemble(Arc::new(s.clone()), Default::default(), store, clock)
        .await
        .unwrap();
    let state = AppState::new(rt, s.web.clone(), CancellationToken::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(postern::web::serve_on(state, listener));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deep = n as i64 / 2;
    let targets = [
        ("api first page", "/api/messages?quarantined=true&limit=50".to_string()),
        ("api deep page", format!("/api/messages?quarantined=true&limit=50&before={deep}")),
        ("html page", "/quarantine".to_string()),
    ];
    let mut results = Vec::new();
    for (name, path) in &targets {
        let mut tasks = Vec::new();
        let wall = Instant::now();
        for _ in 0..clients {
            let (http, base, path) = (http.clone(), base.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let cookie = login(&http, &base).await;
                let mut lat = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let r = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
                    assert!(r.status().is_success(), "{path}: {}", r.status());
                    r.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let secs = wall.elapsed().as_secs_f64();
        all.sort();
        let row = serde_json::json!({
            "name": name, "path": path, "requests": all.len(), "clients": clients,
            "p50_ms": pct(&all, 0.50), "p99_ms": pct(&all, 0.99), "max_ms": pct(&all, 1.0),
            "req_per_s": all.len() as f64 / secs,
        });
        println!(
            "P5 {name:<16} {} req, {clients} clients: p50 {:.1} ms  p99 {:.1} ms  ({:.0} req/s)",
            all.len(),
            pct(&all, 0.5),
            pct(&all, 0.99),
            all.len() as f64 / secs
        );
        results.push(row);
    }
    let out = serde_json::json!({
        "bench": "dashboard", "stored_scans": n, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "results": results,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/dashboard.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("wrote {}", path.display());
}
