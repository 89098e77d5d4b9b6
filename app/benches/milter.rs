//! make bench: P6, milter overhead (issue 19). The same messages are sent
//! over SMTP to one private Postfix (scripts/bench-postfix.sh) on two
//! listeners that differ only in `smtpd_milters`: none (the baseline) and
//! Postern's milter, running here with the stack's Rspamd and clamd and the
//! local scanners, as `postern run` builds them. Measured per message on a
//! kept-open SMTP connection: MAIL FROM to the end-of-data reply, so every
//! stage the milter sees is inside the time. Rspamd's own `/checkv2` time
//! on the same messages is shown beside it. Goal: p99 with Postern ≤ Rspamd
//! p99 + 5 ms over the baseline's p99.
//!
//! Needs the test stack (`make stack`, Postfix included) and root (Postfix).
//! BENCH_MESSAGES (default 500) and BENCH_CORPUS as for the other benches.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use postern::config::{MilterListen, MilterSettings, PolicyConfig};
use postern::milter::Milter;
use postern::scan::scanners::{clamav, rspamd};
use postern::scan::{FailureMode, InputOptions, LiveDecider, Pipeline, Policy, Scanner};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Env = BTreeMap<String, String>;

fn peers() -> Env {
    let base = std::env::var("PEERS_BASE").unwrap_or_else(|_| "/tmp/postern-stack".into());
    let text = std::fs::read_to_string(Path::new(&base).join("peers.env")).expect("peers.env: run `make stack` first");
    let mut env: Env = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    env.insert("PEERS_BASE".into(), base);
    env
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(v: &[f64]) -> serde_json::Value {
    serde_json::json!({ "p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95), "p99_ms": pct(v, 0.99), "n": v.len() })
}

/// MAIL FROM to end-of-data reply per message, on one kept-open connection.
/// Refusals (550 for malware, 451) are replies too and are timed alike;
/// returns the times (sorted) and how many were refused.
async fn smtp_times(port: u16, msgs: &[Vec<u8>]) -> (Vec<f64>, usize) {
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(120)))
        .build();
    let env = Envelope::new(
        Some("bench@example.net".parse().unwrap()),
        vec!["user@example.test".parse().unwrap()],
    )
    .unwrap();
    let (mut out, mut refused) = (Vec::with_capacity(msgs.len()), 0);
    for m in msgs {
        let start = Instant::now();
        let r = t.send_raw(&env, m).await;
        out.push(start.elapsed().as_secs_f64() * 1000.0);
        refused += usize::from(r.is_err());
    }
    out.sort_by(f64::total_cmp);
    (out, refused)
}

async fn rspamd_times(url: &str, msgs: &[Vec<u8>]) -> Vec<f64> {
    let http = reqwest::Client::new();
    let url = format!("{url}/checkv2");
    let mut out = Vec::new();
    for m in msgs {
        let t = Instant::now();
        http.post(&url).body(m.clone()).send().await.unwrap().bytes().await.unwrap();
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    out
}

fn main() {
    let env = peers();
    let msgs = common::messages();
    let (plain, with, mport) = (free_port(), free_port(), free_port());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench-postfix.sh");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(async {
        let mut scanners: Vec<Arc<dyn Scanner>> = postern::scan::scanners::local(&PolicyConfig::default(), &[]);
        scanners.push(Arc::new(
            rspamd::RspamdScanner::new(&env["RSPAMD_URL"], Duration::from_secs(10), FailureMode::Closed).unwrap(),
        ));
        scanners.push(Arc::new(clamav::ClamavScanner::new(
            &format!("127.0.0.1:{}", env["CLAMD_PORT"]),
            Duration::from_secs(10),
            FailureMode::Closed,
            25 * 1024 * 1024,
        )));
        let live = Arc::new(LiveDecider::new(Pipeline::new(
            scanners,
            Policy::default_policy().unwrap(),
            InputOptions::default(),
        )));
        let dir = tempfile::tempdir().unwrap();
        let store = postern::store::Store::open(&dir.path().join("db"), &[7; 32], Arc::new(postern::clock::SystemClock)).unwrap();
        let listen = MilterListen::Inet(format!("127.0.0.1:{mport}").parse().unwrap());
        let bound = postern::milter::bind(&listen).await.unwrap();
        let m = Arc::new(Milter {
            live,
            store,
            events: tokio::sync::broadcast::channel(1024).0,
            settings: MilterSettings::default(),
            max_message_bytes: 25 * 1024 * 1024,
            eml_dir: None,
        });
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(postern::milter::serve(bound, m, stop.clone()));
        let up = std::process::Command::new("bash")
            .arg(&script)
            .args(["up", &env["PEERS_BASE"], &plain.to_string(), &with.to_string(), &format!("inet:127.0.0.1:{mport}")])
            .status()
            .unwrap();
        assert!(up.success(), "scripts/bench-postfix.sh up failed");

        // Warm both paths (Postfix's processes, Rspamd's maps, the pipeline).
        let warm = &msgs[..msgs.len().min(20)];
        smtp_times(plain, warm).await;
        smtp_times(with, warm).await;
        let (base, base_refused) = smtp_times(plain, &msgs).await;
        let (milter, milter_refused) = smtp_times(with, &msgs).await;
        let rspamd = rspamd_times(&env["RSPAMD_URL"], &msgs).await;
        stop.cancel();
        let _ = std::process::Command::new("bash").arg(&script).args(["down", &env["PEERS_BASE"]]).status();

        let overhead = pct(&milter, 0.99) - pct(&base, 0.99);
        let goal = pct(&rspamd, 0.99) + 5.0;
        println!(
            "P6 milter overhead, {} msgs, p50 / p95 / p99 ms: Postfix alone {:.1} / {:.1} / {:.1}; with Postern {:.1} / {:.1} / {:.1} ({milter_refused} refused); Rspamd /checkv2 alone {:.1} / {:.1} / {:.1}",
            msgs.len(),
            pct(&base, 0.5),
            pct(&base, 0.95),
            pct(&base, 0.99),
            pct(&milter, 0.5),
            pct(&milter, 0.95),
            pct(&milter, 0.99),
            pct(&rspamd, 0.5),
            pct(&rspamd, 0.95),
            pct(&rspamd, 0.99)
        );
        println!(
            "    p99 overhead {overhead:.1} ms against a goal of ≤ {goal:.1} ms (Rspamd p99 + 5 ms): {}",
            if overhead <= goal { "met" } else { "missed" }
        );
        serde_json::json!({
            "bench": "milter", "messages": msgs.len(),
            "postfix_alone": summary(&base), "postfix_alone_refused": base_refused,
            "with_postern": summary(&milter), "with_postern_refused": milter_refused,
            "rspamd_alone": summary(&rspamd),
            "p99_overhead_ms": overhead, "goal_ms": goal, "met": overhead <= goal,
        })
    });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/milter.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap_or_default())
        .unwrap_or_else(|e| eprintln!("cannot write {}: {e}", path.display()));
    eprintln!("wrote {}", path.display());
}
