//! Issue 22, item 3: a secret never reaches the log. The real binary runs at
//! debug level with every secret the environment can carry, and each one is
//! put to use or made to fail: a wrong IMAP password against the real
//! Dovecot (listener and the dashboard's account test), an Rspamd and an SMTP
//! server that are not there, the dashboard login, secrets and a notification
//! URL with a password in it set through the API. Then the log (stdout and
//! stderr) is searched for every value, and the database for the one the
//! dashboard stored (it must be sealed).

use crate::common::harness::{Child, write_config};
use crate::common::receiver::Receiver;
use crate::common::stack::{free_port, shared};
use crate::common::web::{ADMIN_PASSWORD, Admin};
use crate::common::{eventually, unique};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_or_the_database_in_clear() {
    let d = shared();
    let (user, _right) = d.new_user("secretlog");
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start().await;
    // Distinct values, none a substring of another, none found in a log by chance.
    let tag = unique("s").replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let imap_pass = format!("imapPw{tag}Q");
    let secrets: Vec<(&str, String)> = vec![
        ("POSTERN_RSPAMD_PASSWORD", format!("rspamdPw{tag}Q")),
        ("POSTERN_NTFY_TOKEN", format!("ntfyTk{tag}Q")),
        ("POSTERN_WEBHOOK_SECRET", format!("hookSec{tag}Q")),
        ("POSTERN_VIRUSTOTAL_KEY", format!("vtKey{tag}Q")),
        ("POSTERN_ABUSEIPDB_KEY", format!("abuseKey{tag}Q")),
        ("POSTERN_PHISHTANK_KEY", format!("ptKey{tag}Q")),
        ("POSTERN_ABUSECH_AUTH_KEY", format!("achKey{tag}Q")),
    ];
    let smtp_pass = format!("smtpPw{tag}Q");
    let dashboard_secret = format!("dashVt{tag}Q");
    let url_pass = format!("urlPw{tag}Q");

    write_config(dir.path(), d.imap_port, &user, &imap_pass, &["INBOX"]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let admin_hash = bcrypt::hash(ADMIN_PASSWORD, 4).unwrap();
    let (listen, smtp_url) = (format!("127.0.0.1:{port}"), format!("smtp://mailer:{smtp_pass}@127.0.0.1:1"));
    let (ntfy, webhook) = (format!("{}/alerts", hook.base), format!("{}/hook", hook.base));
    let mut env: Vec<(&str, &str)> = vec![
        ("POSTERN_LISTEN", &listen),
        ("POSTERN_ADMIN_PASSWORD_HASH", &admin_hash),
        ("POSTERN_INSECURE_COOKIES", "true"),
        ("POSTERN_RSPAMD_URL", "http://127.0.0.1:1"),
        ("POSTERN_RSPAMD_CONTROLLER_URL", "http://127.0.0.1:1"),
        ("POSTERN_NTFY_URL", &ntfy),
        ("POSTERN_WEBHOOK_URL", &webhook),
        ("POSTERN_SMTP_URL", &smtp_url),
        ("POSTERN_DIGEST_FROM", "postern@example.test"),
        ("POSTERN_DIGEST_ADMIN_TO", "postmaster@example.test"),
        ("POSTERN_PUBLIC_URL", "https://postern.example.test"),
        ("POSTERN_TEST_ONLY_ALLOW_LOOPBACK_FETCH", "true"),
    ];
    env.extend(secrets.iter().map(|(k, v)| (*k, v.as_str())));
    let child = Child::spawn_with(dir.path(), None, &env);
    let log_path = dir.path().join("postern.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The listener's login is refused by the real Dovecot, and logged.
    eventually(Duration::from_secs(60), "the refused IMAP login in the log", || async {
        let l = log();
        l.to_lowercase().contains("authentication failed").then_some(())
    })
    .await;
    eventually(Duration::from_secs(60), "the dashboard", || async {
        reqwest::get(format!("{base}/healthz")).await.ok().map(|_| ())
    })
    .await;
    let admin = Admin::login(&base).await;
    let (code, out) = admin.post("/api/accounts/main/test").await;
    assert!(code < 500, "{code} {out}");
    assert!(!out.to_string().contains(&imap_pass), "the account test's answer: {out}");
    let (code, out) = admin
        .send(
            reqwest::Method::PUT,
            "/api/settings/secrets/virustotal_key",
            serde_json::json!({ "value": dashboard_secret }),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let (code, out) = admin
        .send(
            reqwest::Method::PUT,
            "/api/settings",
            serde_json::json!({ "webhook_url": format!("https://user:{url_pass}@hooks.example.org/x") }),
        )
        .await;
    assert_eq!(code, 400, "{out}");
    assert!(!out.to_string().contains(&url_pass), "the refusal echoes no password: {out}");
    let (_, settings) = admin.get("/api/settings").await;
    let shown = settings.to_string();
    for (k, v) in &secrets {
        assert!(!shown.contains(v.as_str()), "{k} shown by GET /api/settings");
    }
    assert!(!shown.contains(&dashboard_secret) && !shown.contains(&smtp_pass));
    // The secret change is applied (and logged, by key) before we look.
    eventually(Duration::from_secs(30), "the secret change in the log", || async {
        log().contains("virustotal_key").then_some(())
    })
    .await;
    drop(child);

    let l = log();
    assert!(l.lines().count() > 10, "a log was written: {l}");
    let mut leaked: Vec<&str> = secrets.iter().filter(|(_, v)| l.contains(v.as_str())).map(|(k, _)| *k).collect();
    for (what, v) in [
        ("the IMAP password", &imap_pass),
        ("the SMTP password", &smtp_pass),
        ("the secret set in the dashboard", &dashboard_secret),
        ("the password in a refused URL", &url_pass),
        ("the admin password", &ADMIN_PASSWORD.to_string()),
    ] {
        if l.contains(v.as_str()) {
            leaked.push(what);
        }
    }
    assert!(leaked.is_empty(), "in the log: {leaked:?}");

    // The dashboard's secret is sealed in SQLite, not stored in clear.
    let mut db = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("postern.db")) {
            db.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(!db.is_empty(), "the database is in the data dir");
    let needle = dashboard_secret.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle),
        "the dashboard's secret is in the database in clear"
    );
}
