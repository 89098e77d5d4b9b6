//! What the benchmarks share: the messages they run on.

use std::path::{Path, PathBuf};

/// The golden fixtures plus, when present, BENCH_CORPUS (any folder of
/// .eml files, e.g. `../shared/corpus` extracted), repeated up to
/// BENCH_MESSAGES (default 500) so every run scans the same mix.
pub fn messages() -> Vec<Vec<u8>> {
    messages_up_to(std::env::var("BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(500))
}

/// Like [`messages`], with the count given.
pub fn messages_up_to(limit: usize) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/fixtures/eml")];
    if let Ok(extra) = std::env::var("BENCH_CORPUS") {
        dirs.push(PathBuf::from(extra));
    }
    let mut out = Vec::new();
    for d in dirs {
        let mut stack = vec![d];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_none_or(|x| x != "expect" && x != "failed")
                    && let Ok(b) = std::fs::read(&p)
                    && b.len() < 5 * 1024 * 1024
                {
                    out.push(b);
                }
            }
        }
    }
    // Repeat the set up to the requested count so every run scans the same mix.
    let base = out.clone();
    while out.len() < limit && !base.is_empty() {
        out.extend(base.iter().take(limit - out.len()).cloned());
    }
    out.truncate(limit);
    out
}
