//! Issue 22, item 6: the layers keep their boundaries by code, not habit.
//! The web layer reaches the system through `runtime` only, never `imap`,
//! `store` or `manager` directly; the scanners never reach `store`, `web`
//! or `imap`. Exceptions would be listed in [`ALLOWED`] (empty now): the list may
//! only shrink, so the test also fails when a file needs fewer than listed
//! (then lower the count).
//!
//! Runtime is a closed application layer: the web layer calls its verbs and
//! never its parts (store, manager, pipeline, clock...), by field or by the
//! accessors kept for setup and tests ([`INTERNALS`]).

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

/// The shipped (non-test) files of a layer, as (path under src/, text).
/// Unit tests may seed the store and inspect Runtime's parts through the
/// accessors; only shipped code is held to the rules.
fn shipped_files(src: &Path, layer: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src.join(layer), &mut files);
    files
        .into_iter()
        .map(|f| (f.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/"), f))
        .filter(|(rel, _)| !(rel.ends_with("/tests.rs") || rel.contains("/tests/")))
        .map(|(rel, f)| {
            let text = std::fs::read_to_string(&f).unwrap();
            (rel, text)
        })
        .collect()
}

#[test]
fn layers_name_only_what_they_may() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut scanned = 0;
    for (layer, banned) in RULES {
        for (rel, text) in shipped_files(&src, layer) {
            scanned += 1;
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

/// Runtime's parts: the web layer must use verbs instead.
const INTERNALS: &[&str] = &[
    "store",
    "manager",
    "live",
    "intel",
    "background",
    "events",
    "clock",
    "settings",
    "file_lists",
];

/// (line, text) of each `rt.<part>` in `src`, a field or its accessor,
/// also when rustfmt split the chain over lines (`st\n    .rt\n    .store()`).
fn internals_touched(src: &str) -> Vec<(usize, String)> {
    // Whitespace before a `.` is dropped, each kept byte remembering its line.
    let (mut flat, mut line_of) = (String::new(), Vec::new());
    let mut line = 1;
    let mut pending: Vec<char> = Vec::new();
    for c in src.chars() {
        if c.is_whitespace() {
            pending.push(c);
            if c == '\n' {
                line += 1;
            }
            continue;
        }
        if c != '.' {
            for w in pending.drain(..) {
                flat.push(w);
                line_of.extend(std::iter::repeat_n(line, w.len_utf8()));
            }
        }
        pending.clear();
        flat.push(c);
        line_of.extend(std::iter::repeat_n(line, c.len_utf8()));
    }
    let mut out = Vec::new();
    for (i, _) in flat.match_indices("rt.") {
        if flat[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &flat[i + 3..];
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if INTERNALS.contains(&word.as_str()) {
            out.push((line_of[i + 3], format!("rt.{word}")));
        }
    }
    out
}

#[test]
fn the_web_layer_uses_runtime_verbs_not_its_parts() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut scanned = 0;
    let mut problems = Vec::new();
    for (rel, text) in shipped_files(&src, "web") {
        scanned += 1;
        for (line, what) in internals_touched(&text) {
            problems.push(format!("src/{rel}:{line}: {what}: call a Runtime verb instead"));
        }
    }
    assert!(scanned > 20, "the web directory moved: {scanned} files");
    assert!(
        problems.is_empty(),
        "the web layer touches Runtime's parts:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_internals_scanner_finds_fields_accessors_and_split_chains() {
    let snippet = "let a = st.rt.store.accounts();\nlet n = st.rt.now();\nlet b = st\n    .rt\n    .manager()\n    .status();\nlet c = start.rt_store; let d = st.rt.settings_view();\nlet e = &rt.clock;";
    let found = internals_touched(snippet);
    assert_eq!(
        found,
        [
            (1, "rt.store".to_string()),
            (5, "rt.manager".to_string()),
            (8, "rt.clock".to_string())
        ]
    );
}
