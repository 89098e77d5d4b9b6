//! Issue 22, item 6: the layers keep their boundaries by code, not habit.
//! The web layer reaches the system through `runtime` only, never `imap`,
//! `store` or `manager` directly; the scanners never reach `store`, `web`
//! or `imap`. Exceptions would be listed in [`ALLOWED`] (empty now): the list may
//! only shrink, so the test also fails when a file needs fewer than listed
//! (then lower the count).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (file under src/, module, references today). Remove an entry when the
/// file stops needing it.
/// Empty since the web layer names the store's records through
/// `runtime::records` and tests accounts through `Runtime::test_account`.
const ALLOWED: &[(&str, &str, usize)] = &[];

/// (layer directory, modules it must not name).
const RULES: &[(&str, &[&str])] = &[("web", &["imap", "store", "manager"]), ("scan", &["store", "web", "imap"])];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The first path segment after each `crate::`, `postern::` or
/// `super::super::`, with `{a, b::c}` groups expanded.
fn modules_named(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["crate::", "postern::", "super::super::"] {
        for (i, _) in src.match_indices(prefix) {
            let rest = &src[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    out.push(item.trim().split("::").next().unwrap_or("").to_string());
                }
            } else {
                out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
    }
    out
}

#[test]
fn layers_name_only_what_they_may() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut scanned = 0;
    for (layer, banned) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        for f in files {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            // Test code may seed the store; only shipped code is held to the rule.
            if rel.ends_with("/tests.rs") || rel.contains("/tests/") {
                continue;
            }
            scanned += 1;
            let text = std::fs::read_to_string(&f).unwrap();
            for m in modules_named(&text) {
                if banned.contains(&m.as_str()) {
                    *found.entry((rel.clone(), m)).or_default() += 1;
                }
            }
        }
    }
    assert!(scanned > 20, "the layer directories moved: {scanned} files");
    let allowed: BTreeMap<(String, String), usize> = ALLOWED.iter().map(|(f, m, n)| ((f.to_string(), m.to_string()), *n)).collect();
    let mut problems = Vec::new();
    for (key, n) in &found {
        match allowed.get(key) {
            None => problems.push(format!("{} names crate::{} ({n}x): go through runtime", key.0, key.1)),
            Some(max) if n > max => problems.push(format!("{} names crate::{} {n}x, allowed {max}", key.0, key.1)),
            _ => {}
        }
    }
    for (key, max) in &allowed {
        let n = found.get(key).copied().unwrap_or(0);
        if n < *max {
            problems.push(format!("{} now names crate::{} {n}x: lower ALLOWED from {max}", key.0, key.1));
        }
    }
    assert!(problems.is_empty(), "layering:\n{}", problems.join("\n"));
}

#[test]
fn the_scanner_finds_grouped_and_plain_paths() {
    let names = modules_named("use crate::{store::Store, imap};\nlet x = crate::web::router;\nuse super::super::manager::X;");
    assert_eq!(names, ["store", "imap", "web", "manager"]);
}
