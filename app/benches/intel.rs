//! make bench: the threat index with 1,000,000 feed entries (issue P4's
//! feed half): resident memory with the entries and the index both held,
//! as the running gateway holds them, build time, and lookups per second.

use postern::intel::index::Builder;
use postern::intel::{FeedEntry, Kind};
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A feed-like mix: mostly URLs (URLhaus, OpenPhish), then domains, IPs, hashes.
fn entries(n: usize) -> Vec<FeedEntry> {
    (0..n)
        .map(|i| {
            let (kind, value) = match i % 10 {
                0..=6 => (
                    Kind::Url,
                    format!("http://host{}.site{}.test/wp-content/p{i}/load.php?id={i}", i % 97, i / 7),
                ),
                7 | 8 => (Kind::Domain, format!("d{i}.phish{}.test", i % 1000)),
                _ if i % 20 == 9 => (Kind::Ip, format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)),
                _ => (Kind::Sha256, format!("{i:064x}")),
            };
            FeedEntry { kind, value }
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("BENCH_FEED_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = rss_kib();
    let t = Instant::now();
    let feed = entries(n);
    let after_entries = rss_kib();
    let mut b = Builder::new();
    b.feed("bench", &feed);
    let index = b.build();
    let build_s = t.elapsed().as_secs_f64();
    let after_index = rss_kib();
    // Half the lookups hit (listed URLs), half miss (same shape, unlisted).
    let probes: Vec<String> = (0..200_000)
        .map(|j| {
            let i = (j * 7) % n - ((j * 7) % n) % 10;
            if j % 2 == 0 {
                format!("https://host{}.site{}.test/wp-content/p{i}/load.php?id={i}", i % 97, i / 7)
            } else {
                format!("https://www.clean{j}.test/news/{j}/index.html?utm=1")
            }
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for p in &probes {
        hits += usize::from(!index.url(p, 0).is_empty());
    }
    let lookups_s = probes.len() as f64 / t.elapsed().as_secs_f64();
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "P4 feed index: {n} entries ({} indexed) built in {build_s:.2} s; RSS {:.0} MiB -> {:.0} MiB with entries -> {:.0} MiB with index",
        index.len(),
        mib(base),
        mib(after_entries),
        mib(after_index)
    );
    println!("    URL lookups: {lookups_s:.0}/s on one core ({hits} of {} hit)", probes.len());
    assert_eq!(hits, probes.len() / 2, "every listed probe must hit and no other");
    let out = serde_json::json!({
        "bench": "intel_index", "entries": n, "indexed": index.len(), "build_s": build_s,
        "rss_base_mib": mib(base), "rss_with_entries_mib": mib(after_entries), "rss_with_index_mib": mib(after_index),
        "index_mib": mib(after_index.saturating_sub(after_entries)), "url_lookups_per_s": lookups_s,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/intel.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap_or_default())
        .unwrap_or_else(|e| eprintln!("cannot write {}: {e}", path.display()));
    eprintln!("wrote {}", path.display());
}
