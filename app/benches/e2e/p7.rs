//! P7 (issue 21): many accounts on one instance. BENCH_ACCOUNTS (1,000)
//! accounts, one folder each, on a private Dovecot started by the project's
//! own scripts/peers-setup.sh (a thousand IDLE sessions would crowd the
//! shared test server). Measures the time until every listener watches,
//! RSS and CPU while idle, and arrival→action for mail to a random account
//! next to the same messages sent to one account on its own.

use super::{Env, Postern, connect, kib, pct, unique};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private Dovecot with `users`, torn down on drop.
struct Private {
    base: PathBuf,
    port: u16,
}

impl Private {
    fn start(users: &[(String, String)]) -> Private {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let base = PathBuf::from(format!("/tmp/postern-p7-{}", std::process::id()));
        let list: Vec<String> = users.iter().map(|(u, p)| format!("{u}:{p}")).collect();
        let port = free_port();
        let out = Command::new("bash")
            .arg(root.join("scripts/peers-setup.sh"))
            .arg(&base)
            .arg("dovecot")
            .env("DOVECOT_IMAP_PORT", port.to_string())
            .env("DOVECOT_IMAPS_PORT", free_port().to_string())
            .env("DOVECOT_LMTP_PORT", free_port().to_string())
            .env("DOVECOT_USERS", list.join(" "))
            // One inotify instance per IDLE session, or Dovecot falls back to polling.
            .env("DOVECOT_INOTIFY_INSTANCES", "4096")
            // Room for every account's IDLE session plus the action
            // connections of accounts with pending moves and the bench's
            // own APPEND sessions; the idle count is measured below.
            .env("DOVECOT_IMAP_PROCESS_LIMIT", "1536")
            .env("PEERS_SKIP_INSTALL", "1")
            .output()
            .expect("peers-setup.sh");
        assert!(
            out.status.success(),
            "private dovecot: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Private { base, port }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let _ = Command::new("bash")
            .arg(root.join("scripts/peers-teardown.sh"))
            .arg(&self.base)
            .output();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// CPU seconds (user + system) the process has used.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // Counted from the state field (0): utime is 11, stime 12. Fields are
    // not filtered, since some (tpgid) are negative.
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / tck
}

/// Established TCP connections from `pid` to the IMAP `port` (from `ss`).
fn imap_connections(pid: u32, port: u16) -> Option<usize> {
    let out = Command::new("ss")
        .args(["-Htnp", "state", "established", &format!("( dport = :{port} )")])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.lines().filter(|l| l.contains(&format!("pid={pid},"))).count())
}

/// APPEND → action for each message, to the account `pick` chooses.
async fn latencies(
    env: &Env,
    p: &Postern,
    users: &[(String, String)],
    msgs: &[Vec<u8>],
    run: &str,
    mut pick: impl FnMut() -> usize,
) -> Vec<f64> {
    let mut out = Vec::new();
    for (n, m) in msgs.iter().enumerate() {
        let (user, pass) = &users[pick()];
        let mut s = connect(env, user, pass).await.expect("login for APPEND");
        let raw = unique(m, n, run);
        let mid = format!("{run}-{n}@bench.postern");
        let t = Instant::now();
        s.append("INBOX", None, None, &raw).await.unwrap();
        loop {
            if p.query("SELECT verdict FROM messages WHERE message_id = ?1 AND status = 'done'", &mid)
                .is_some()
            {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "{mid} never done");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        let _ = s.logout().await;
    }
    out.sort_by(f64::total_cmp);
    out
}

pub(super) async fn p7(shared: &Env, n: usize, msgs: &[Vec<u8>]) -> serde_json::Value {
    let users: Vec<(String, String)> = (0..n).map(|i| (format!("p7u{i}"), format!("p7pw{i}"))).collect();
    let dovecot = Private::start(&users);
    let mut env = shared.clone();
    env.insert("DOVECOT_IMAP_PORT".into(), dovecot.port.to_string());
    // Baseline: the same messages to one account watched alone.
    let one = Postern::start(&env, &[(users[0].0.clone(), users[0].1.clone(), "")]).await;
    let single = latencies(&env, &one, &users, msgs, "p7one", || 0).await;
    one.stop();
    let accounts: Vec<(String, String, &str)> = users.iter().map(|(u, p)| (u.clone(), p.clone(), "")).collect();
    let p = Postern::spawn(&env, &accounts);
    let watching = match p.wait_watching(n, Duration::from_secs(600)).await {
        Ok(t) => t.as_secs_f64(),
        Err(e) => panic!("P7: not every account watching after 600 s: {e}"),
    };
    // Idle: let the start-up settle, then 20 s of nothing arriving.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (c0, t0) = (cpu_s(p.child.id()), Instant::now());
    tokio::time::sleep(Duration::from_secs(20)).await;
    let idle_cpu = (cpu_s(p.child.id()) - c0) / t0.elapsed().as_secs_f64() * 100.0;
    let (rss, hwm) = (kib(p.child.id(), "VmRSS:"), kib(p.child.id(), "VmHWM:"));
    let conns = imap_connections(p.child.id(), dovecot.port);
    // Mail to a random account (a fixed-seed LCG: the same run every time).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let many = latencies(&env, &p, &users, msgs, "p7many", || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as usize % n
    })
    .await;
    p.stop();
    drop(dovecot);
    println!(
        "P7 {n} accounts: all watching in {watching:.1} s; {conns:?} IMAP connections when idle; idle RSS {:.1} MiB (peak {:.1}), idle CPU {idle_cpu:.2}% of one core; \
         arrival→action to a random account p50 {:.1} p99 {:.1} ms | one account alone p50 {:.1} p99 {:.1} ms ({} msgs each)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        pct(&many, 0.5),
        pct(&many, 0.99),
        pct(&single, 0.5),
        pct(&single, 0.99),
        msgs.len()
    );
    serde_json::json!({
        "accounts": n, "all_watching_s": watching, "login_concurrency": 16, "idle_imap_connections": conns,
        "idle_rss_mib": rss as f64 / 1024.0, "peak_rss_mib": hwm as f64 / 1024.0, "idle_cpu_pct_one_core": idle_cpu,
        "messages": msgs.len(),
        "random_p50_ms": pct(&many, 0.5), "random_p95_ms": pct(&many, 0.95), "random_p99_ms": pct(&many, 0.99),
        "one_p50_ms": pct(&single, 0.5), "one_p95_ms": pct(&single, 0.95), "one_p99_ms": pct(&single, 0.99),
    })
}
