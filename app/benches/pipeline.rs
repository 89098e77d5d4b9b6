//! `make bench` part 1: scanning throughput and latency on the same messages.
//! - local pipeline (parse + YARA-X + threat index + heuristics + verdict, no network), msg/s on one core;
//! - Rspamd alone (`/checkv2`), msg/s and latency;
//! - the full pipeline (local + Rspamd + clamd), msg/s and latency.
//!
//! Messages: the golden fixtures plus, when present, `../shared/corpus`
//! extracted to BENCH_CORPUS (any folder of .eml files). Results go to
//! bench/results/pipeline.json.
// A benchmark that cannot set up should stop loudly, like a test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

/// The daemon's allocator (see `main.rs`), so the figures are the daemon's.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use common::messages;

use postern::config::PolicyConfig;
use postern::scan::scanners::{self, clamav, rspamd, yara};
use postern::scan::{FailureMode, InputOptions, Pipeline, Policy, Scanner};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn local() -> Vec<Arc<dyn Scanner>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = scanners::local(&PolicyConfig::default(), &[]);
    v.push(Arc::new(
        yara::YaraScanner::load(&root.join("../rules/yara"), Duration::from_secs(10), FailureMode::Closed).expect("rules compile"),
    ));
    v.push(threat_scanner());
    v
}

/// The threat-intelligence lookups over an index of 100,000 feed URLs and
/// domains (unshortening is network work and stays out).
fn threat_scanner() -> Arc<dyn Scanner> {
    use postern::intel::{FeedEntry, Kind};
    let entries: Vec<FeedEntry> = (0..100_000)
        .map(|i| FeedEntry {
            kind: if i % 4 == 0 { Kind::Domain } else { Kind::Url },
            value: if i % 4 == 0 {
                format!("bad{i}.test")
            } else {
                format!("http://site{i}.test/x/{i}.php")
            },
        })
        .collect();
    let mut b = postern::intel::index::Builder::new();
    b.feed("bench", &entries);
    let index = Arc::new(arc_swap::ArcSwap::from_pointee(b.build()));
    let clock: postern::clock::SharedClock = Arc::new(postern::clock::SystemClock);
    Arc::new(postern::intel::scanner::ThreatScanner::new(
        index,
        None,
        clock,
        Duration::from_secs(5),
    ))
}

#[cfg(feature = "ai")]
fn ai_scanner() -> Result<Arc<dyn Scanner>, String> {
    let lib = std::env::var("POSTERN_AI_RUNTIME").map_err(|_| "POSTERN_AI_RUNTIME is not set".to_string())?;
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let s = postern::scan::scanners::ai::AiScanner::load(
        Path::new(&lib),
        &models,
        postern::scan::ai::Thresholds::default(),
        &[],
        Duration::from_secs(10),
    )?;
    Ok(Arc::new(s))
}

struct Stat {
    name: &'static str,
    msgs: usize,
    secs: f64,
    /// This process's CPU time (user + system) over the run.
    cpu_secs: f64,
    lat: Vec<f64>,
}

/// Runs this bench again under `taskset -c CPU` (util-linux), so that the
/// process and every thread it starts later (the blocking pool included)
/// share one CPU: the local figures are then per core by construction, not
/// by the runtime's flavour alone. Returns only in the pinned child.
fn pin_to_one_cpu() {
    const PINNED: &str = "POSTERN_BENCH_PINNED";
    if let Ok(cpu) = std::env::var(PINNED) {
        eprintln!("pinned to CPU {cpu}");
        return;
    }
    let cpu = std::env::var("BENCH_CPU").unwrap_or_else(|_| "0".into());
    let me = std::env::current_exe().expect("own path");
    let status = std::process::Command::new("taskset")
        .args(["-c", &cpu])
        .arg(me)
        .args(std::env::args_os().skip(1))
        .env(PINNED, &cpu)
        .status();
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("taskset (util-linux) is needed to pin the bench to one CPU: {e}");
            std::process::exit(2)
        }
    }
}

/// CPU seconds (user + system) this process has used, from /proc.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // Counted from the state field (0): utime is 11, stime 12. Fields are
    // not filtered, since some (tpgid) are negative.
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let tck = *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
            .unwrap_or(100.0)
    });
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / tck
}

impl Stat {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.lat.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
    }
    fn json(&self) -> String {
        format!(
            "{{\"name\":\"{}\",\"messages\":{},\"msg_per_s\":{:.1},\"msg_per_cpu_s\":{:.1},\"p50_ms\":{:.2},\"p95_ms\":{:.2},\"p99_ms\":{:.2}}}",
            self.name,
            self.msgs,
            self.msgs as f64 / self.secs,
            self.msgs as f64 / self.cpu_secs.max(1e-9),
            self.pct(0.5),
            self.pct(0.95),
            self.pct(0.99)
        )
    }
}

async fn time_pipeline(name: &'static str, p: &Pipeline, msgs: &[Vec<u8>]) -> Stat {
    // The daemon scans the buffer its fetch filled; copying each message
    // here is the bench's own work, so it happens before the clock starts.
    let owned: Vec<Vec<u8>> = msgs.to_vec();
    let (start, cpu0) = (Instant::now(), cpu_secs());
    let mut lat = Vec::with_capacity(msgs.len());
    for m in owned {
        let t = Instant::now();
        let _ = p.scan(m).await;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Stat {
        name,
        msgs: msgs.len(),
        secs: start.elapsed().as_secs_f64(),
        cpu_secs: cpu_secs() - cpu0,
        lat,
    }
}

async fn time_rspamd(url: &str, msgs: &[Vec<u8>]) -> Stat {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let (start, cpu0) = (Instant::now(), cpu_secs());
    let mut lat = Vec::new();
    for m in msgs {
        let t = Instant::now();
        let _ = client
            .post(format!("{url}/checkv2"))
            .header("Pass", "all")
            .body(m.clone())
            .send()
            .await
            .map(|r| r.bytes());
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Stat {
        name: "rspamd_alone",
        msgs: msgs.len(),
        secs: start.elapsed().as_secs_f64(),
        cpu_secs: cpu_secs() - cpu0,
        lat,
    }
}

/// Where the local pipeline's time goes: the parse alone, then each
/// local scanner alone over the same parsed messages (ms per message).
/// Printed, and written as `breakdown` in pipeline.json.
async fn breakdown(scanners: &[Arc<dyn Scanner>], msgs: &[Vec<u8>]) -> Vec<(String, f64)> {
    use postern::scan::ScanInput;
    let opts = InputOptions::default();
    let t = Instant::now();
    let inputs: Vec<ScanInput> = msgs.iter().map(|m| ScanInput::parse(m.clone(), &opts)).collect();
    let mut out = vec![("parse".to_string(), t.elapsed().as_secs_f64() * 1000.0 / msgs.len() as f64)];
    let t = Instant::now();
    for i in &inputs {
        std::hint::black_box(i.observables());
    }
    out.push(("observables".to_string(), t.elapsed().as_secs_f64() * 1000.0 / msgs.len() as f64));
    for s in scanners {
        let t = Instant::now();
        for i in &inputs {
            let _ = std::hint::black_box(s.scan(i).await);
        }
        out.push((s.id().to_string(), t.elapsed().as_secs_f64() * 1000.0 / msgs.len() as f64));
    }
    out
}

fn main() {
    // One worker thread on one CPU: the local figure is per core. The
    // network figures share that CPU with nothing but this client; Rspamd
    // and clamd run in their own processes, unpinned.
    pin_to_one_cpu();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let msgs = messages();
    let mut stats = Vec::new();
    let mut parts = Vec::new();
    rt.block_on(async {
        let policy = Policy::default_policy().expect("policy");
        let local_p = Pipeline::new(local(), policy.clone(), InputOptions::default());
        // The warm-up runs on its own options, so the timed run starts with
        // no image or PDF remembered, as a restarted daemon does.
        let warm = Pipeline::new(local_p.scanners().to_vec(), policy.clone(), InputOptions::default());
        let _ = time_pipeline("warmup", &warm, &msgs[..msgs.len().min(20)]).await;
        stats.push(time_pipeline("local_pipeline_1core", &local_p, &msgs).await);
        // The same with nothing remembered: what the cache of image and PDF
        // results (scan/media.rs) is worth on this mix, whose messages share
        // logos and attachments as real mail does.
        let forgetful = InputOptions {
            media: Arc::new(postern::scan::media::MediaCache::new(0, 0)),
            ..InputOptions::default()
        };
        let cold = Pipeline::new(local_p.scanners().to_vec(), policy.clone(), forgetful);
        stats.push(time_pipeline("local_nothing_remembered", &cold, &msgs).await);
        parts = breakdown(local_p.scanners(), &msgs).await;
        // The AI tier's cost per message: the same local pipeline plus the models.
        #[cfg(feature = "ai")]
        match ai_scanner() {
            Ok(ai) => {
                let mut with_ai = local();
                with_ai.push(ai);
                let p = Pipeline::new(with_ai, policy.clone(), InputOptions::default());
                let _ = time_pipeline("warmup", &p, &msgs[..msgs.len().min(20)]).await;
                stats.push(time_pipeline("local_plus_ai_1core", &p, &msgs).await);
            }
            Err(e) => eprintln!("AI tier not measured: {e}"),
        }
        let rspamd_url = std::env::var("RSPAMD_URL").ok();
        let clamd = std::env::var("CLAMD_ADDR").ok();
        if let (Some(url), Some(clamd)) = (rspamd_url, clamd) {
            stats.push(time_rspamd(&url, &msgs).await);
            let mut full = local();
            full.push(Arc::new(
                rspamd::RspamdScanner::new(&url, Duration::from_secs(20), FailureMode::Closed).expect("rspamd"),
            ));
            full.push(Arc::new(clamav::ClamavScanner::new(
                &clamd,
                Duration::from_secs(30),
                FailureMode::Closed,
                25 << 20,
            )));
            let full_p = Pipeline::new(full, policy, InputOptions::default());
            stats.push(time_pipeline("full_pipeline", &full_p, &msgs).await);
        } else {
            eprintln!("RSPAMD_URL/CLAMD_ADDR not set: skipping the network figures");
        }
    });
    println!(
        "{:<24} {:>8} {:>10} {:>12} {:>9} {:>9} {:>9}",
        "benchmark", "msgs", "msg/s", "msg/cpu-s", "p50 ms", "p95 ms", "p99 ms"
    );
    for s in &stats {
        println!(
            "{:<24} {:>8} {:>10.1} {:>12.1} {:>9.2} {:>9.2} {:>9.2}",
            s.name,
            s.msgs,
            s.msgs as f64 / s.secs,
            s.msgs as f64 / s.cpu_secs.max(1e-9),
            s.pct(0.5),
            s.pct(0.95),
            s.pct(0.99)
        );
    }
    println!("local pipeline, each part alone, ms per message:");
    for (name, ms) in &parts {
        println!("  {name:<22} {ms:>8.3}");
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    let _ = std::fs::create_dir_all(&out);
    let parts_json: Vec<String> = parts
        .iter()
        .map(|(n, ms)| format!("{{\"name\":\"{n}\",\"ms_per_msg\":{ms:.4}}}"))
        .collect();
    let mut items: Vec<String> = stats.iter().map(Stat::json).collect();
    items.push(format!("{{\"name\":\"breakdown\",\"parts\":[{}]}}", parts_json.join(",")));
    let json = format!("[{}]\n", items.join(",\n"));
    if let Err(e) = std::fs::write(out.join("pipeline.json"), json) {
        eprintln!("cannot write results: {e}");
    }
}
