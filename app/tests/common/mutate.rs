//! A seeded byte mutator and a tiny fuzz driver for stable Rust: the CI
//! stand-in for cargo-fuzz (which needs nightly). Same seed, same inputs, so
//! a failure reproduces; the failing input is also written to disk.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Byte strings that make parsers take unusual paths.
const DICT: &[&[u8]] = &[
    b"\r\n--b1\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
    b"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    b"\r\nContent-Type: message/rfc822\r\n\r\n",
    b"=?utf-8?B?",
    b"<div><div><div>",
    b"<a href=\"",
    b"://",
    b"xn--",
    b"%00",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b\x08",
    b"7z\xbc\xaf\x27\x1c",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
];

/// Seeded mutations: bit flips, truncation, duplicated and deleted spans,
/// dictionary splices, byte overwrites with interesting values.
pub struct Mutator {
    rng: StdRng,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    pub fn mutate(&mut self, base: &[u8]) -> Vec<u8> {
        let mut m = base.to_vec();
        for _ in 0..self.rng.random_range(1..8) {
            if m.is_empty() {
                m.extend_from_slice(DICT[self.rng.random_range(0..DICT.len())]);
                continue;
            }
            let i = self.rng.random_range(0..m.len());
            match self.rng.random_range(0..7) {
                0 => m[i] ^= 1 << self.rng.random_range(0..8),
                1 => m.truncate(i),
                2 => {
                    let j = (i + self.rng.random_range(0..64)).min(m.len());
                    let span = m[i..j].to_vec();
                    m.splice(i..i, span);
                }
                3 => {
                    let j = (i + self.rng.random_range(0..64)).min(m.len());
                    m.drain(i..j);
                }
                4 | 5 => {
                    let d = DICT[self.rng.random_range(0..DICT.len())];
                    m.splice(i..i, d.iter().copied());
                }
                _ => m[i] = [b'<', b'>', b'=', b'"', 0, 0xff, b'\n', b'{', b'}'][self.rng.random_range(0..9)],
            }
        }
        m
    }
}

/// How much each target runs: `FUZZ_ITERS` inputs (default `default_iters`),
/// stopping early after `FUZZ_SECONDS` (default 20) so CI time stays fixed.
pub fn budget(default_iters: usize) -> (usize, Duration) {
    let iters = std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_iters);
    let secs = std::env::var("FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    (iters, Duration::from_secs(secs))
}

/// Runs `target` over `seeds` and their mutations. A panic (or a failed
/// invariant, which panics) saves the input under target/fuzz-failures and
/// fails the test with its path and the seed. Returns how many inputs ran.
pub fn run(name: &str, seed: u64, seeds: &[Vec<u8>], default_iters: usize, mut target: impl FnMut(&[u8])) -> usize {
    assert!(!seeds.is_empty(), "{name}: no seed inputs");
    let (iters, limit) = budget(default_iters);
    let mut m = Mutator::new(seed);
    let start = Instant::now();
    let mut ran = 0;
    for i in 0..iters.max(seeds.len()) {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            let base = &seeds[m.rng().random_range(0..seeds.len())];
            m.mutate(base)
        };
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{name}-{seed:x}-{i}.bin"));
            let _ = std::fs::write(&path, &input);
            panic!(
                "fuzz target {name} failed on input {i} (seed {seed:#x}); saved to {}",
                path.display()
            );
        }
        ran += 1;
        if i >= seeds.len() && start.elapsed() > limit {
            break;
        }
    }
    ran
}
