//! Keeps README.md's configuration reference and the code in sync. (Test
//! code only, so it lives with the tests; it reads the sources as text.)
//!
//! The README is the operator's documentation, so every setting the code
//! reads must have a row in its "Configuration reference" tables, and every
//! row there must name something the code reads. This test reads, at test
//! time:
//!
//! - the code's `POSTERN_*` variables: every string literal that is exactly
//!   `"POSTERN_[A-Z0-9_]+"` in the product sources under `app/src` (comments
//!   and test code are skipped, see [`product_sources`]), plus name
//!   templates such as `"POSTERN_FEED_{}_URL"`, which a README row matches
//!   as `POSTERN_FEED_<NAME>_URL`;
//! - the code's `config.yaml` keys: every allowed-key list in
//!   `config/accounts.rs`, i.e. the `*_KEYS` constants and the inline
//!   `["…", "…"].contains(&k)` lists (top-level and `policy:` keys);
//! - the README: the backticked names in the first column of every table row
//!   between `## Configuration reference` and the next `## ` heading (a cell
//!   may list several names separated by commas).
//!
//! It then reports, by name, what is missing from the README and what the
//! README documents that the code does not know. It also checks that every
//! `POSTERN_…` name mentioned anywhere in the README's prose exists in the
//! code (typos; a template's instances such as `POSTERN_FEED_URLHAUS_URL`
//! count, expanded from [`postern::config::FEEDS`]), and that the reference mentions
//! every feed name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Variables the product code reads that are not settings for operators, so
/// the configuration table must not list them. Keep a reason with each; the
/// test fails if one of these disappears from the code or shows up in the
/// table.
const NOT_SETTINGS: &[(&str, &str)] = &[
    // A crash-test hook compiled into the binary: the integration tests set
    // it to stall the process at a named point (between decision and action,
    // after the move) and SIGKILL it there. The README's Tests section
    // mentions it; the reference does not.
    ("POSTERN_TEST_FAILPOINT", "crash-test hook used by the integration tests"),
];

/// The README heading whose tables are the configuration reference.
const SECTION: &str = "## Configuration reference";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A string literal's text between its quotes (escapes left as written).
    Str(String),
    Ident(String),
    Punct(char),
}

/// A small Rust lexer: enough to find string literals, identifiers and
/// brackets while ignoring comments, char literals, lifetimes and numbers.
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (s, next) = quoted(&c, i + 1);
            out.push(Tok::Str(s));
            i = next;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // '\n', '\'', '\u{1F600}'
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or loop label: the identifier follows.
                out.push(Tok::Punct('\''));
                i += 1;
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || (c[i] == '.' && at(i + 1).is_ascii_digit())) {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            match (word.as_str(), at(i)) {
                ("r" | "br" | "cr", '"' | '#') => {
                    let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
                    if at(i + hashes) != '"' {
                        out.push(Tok::Ident(word));
                        continue;
                    }
                    let start = i + hashes + 1;
                    let mut j = start;
                    while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#')) {
                        j += 1;
                    }
                    out.push(Tok::Str(c[start..j.min(c.len())].iter().collect()));
                    i = j + 1 + hashes;
                }
                ("b" | "c", '"') => {
                    let (s, next) = quoted(&c, i + 1);
                    out.push(Tok::Str(s));
                    i = next;
                }
                ("b", '\'') => {
                    // A byte literal: b'x' or b'\n'.
                    i += if at(i + 1) == '\\' { 2 } else { 1 };
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                }
                _ => out.push(Tok::Ident(word)),
            }
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// Reads a `"…"` literal whose text starts at `i`; returns it and the index
/// after the closing quote.
fn quoted(c: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    (c[start..i.min(c.len())].iter().collect(), i + 1)
}

fn is_punct(t: Option<&Tok>, p: char) -> bool {
    t == Some(&Tok::Punct(p))
}

fn is_ident(t: Option<&Tok>, w: &str) -> bool {
    matches!(t, Some(Tok::Ident(x)) if x == w)
}

/// Length of the bracketed group that starts at `toks[i]` (an opening
/// bracket), or of the rest of the tokens if it never closes.
fn group_len(toks: &[Tok], i: usize) -> usize {
    let mut depth = 0i32;
    for (n, t) in toks[i..].iter().enumerate() {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return n + 1;
                }
            }
            _ => {}
        }
    }
    toks.len() - i
}

/// Splits a file's tokens into product code and the names of modules it
/// declares as `#[cfg(test)] mod name;`. Each `#[cfg(test)]` item (with any
/// further attributes) is dropped: a `mod x;` up to its `;`, a block item up
/// to its closing brace.
fn strip_test_items(toks: &[Tok]) -> (Vec<Tok>, Vec<String>) {
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let (mut kept, mut test_mods) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < toks.len() {
        if !toks[i..].starts_with(&cfg_test) {
            kept.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += cfg_test.len();
        // Further attributes on the same item.
        while is_punct(toks.get(i), '#') && is_punct(toks.get(i + 1), '[') {
            i += 1 + group_len(toks, i + 1);
        }
        let start = i;
        while i < toks.len() {
            match &toks[i] {
                Tok::Punct(';') => {
                    i += 1;
                    break;
                }
                Tok::Punct('{') => {
                    i += group_len(toks, i);
                    break;
                }
                Tok::Punct('(' | '[') => i += group_len(toks, i),
                _ => i += 1,
            }
        }
        let item = &toks[start..i];
        if let [.., Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')] = item
            && m == "mod"
        {
            test_mods.push(name.clone());
        }
    }
    (kept, test_mods)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every product source under `src`, as (path, tokens without test items).
/// Left out: files named `tests.rs`, anything under a `tests/` folder, and
/// the files of modules declared `#[cfg(test)] mod name;` (`name.rs` and
/// `name/` beside the declaring module).
fn product_sources(src: &Path) -> Vec<(PathBuf, Vec<Tok>)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut excluded: Vec<PathBuf> = Vec::new();
    let mut lexed = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        let (kept, test_mods) = strip_test_items(&lex(&text));
        let parent = f.parent().unwrap_or(src);
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let mod_dir = if ["mod", "lib", "main"].contains(&stem) {
            parent.to_path_buf()
        } else {
            parent.join(stem)
        };
        for m in test_mods {
            excluded.push(mod_dir.join(format!("{m}.rs")));
            excluded.push(mod_dir.join(m));
        }
        lexed.push((f, kept));
    }
    lexed
        .into_iter()
        .filter(|(f, _)| {
            let rel = f.strip_prefix(src).unwrap_or(f);
            f.file_name().is_none_or(|n| n != "tests.rs")
                && !rel.components().any(|c| c.as_os_str() == "tests")
                && !excluded.iter().any(|x| f.starts_with(x))
        })
        .collect()
}

fn is_env_name(s: &str) -> bool {
    s.strip_prefix("POSTERN_")
        .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
}

/// `POSTERN_FEED_{}_URL` (code) and `POSTERN_FEED_<NAME>_URL` (README) both
/// become `POSTERN_FEED_{}_URL`; `None` for anything that is not a template.
fn env_template(s: &str) -> Option<String> {
    let t = match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b && s[a + 1..b].chars().all(|c| c.is_ascii_uppercase()) => {
            format!("{}{{}}{}", &s[..a], &s[b + 1..])
        }
        _ => s.to_string(),
    };
    let (head, tail) = t.split_once("{}")?;
    (is_env_name(&format!("{head}X")) && tail.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).then_some(t)
}

fn is_yaml_key(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `config.yaml` keys the parser accepts: the `*_KEYS` constants and the
/// inline `["a", "b"].contains(&k)` lists in accounts.rs.
fn yaml_keys(toks: &[Tok]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for i in 0..toks.len() {
        if is_ident(toks.get(i), "const") && matches!(toks.get(i + 1), Some(Tok::Ident(n)) if n.ends_with("_KEYS")) {
            let end = toks[i..].iter().position(|t| t == &Tok::Punct(';')).map_or(toks.len(), |n| i + n);
            let eq = toks[i..end].iter().position(|t| t == &Tok::Punct('=')).map_or(end, |n| i + n);
            keys.extend(toks[eq..end].iter().filter_map(|t| match t {
                Tok::Str(s) => Some(s.clone()),
                _ => None,
            }));
        }
        if is_punct(toks.get(i), '[') {
            let len = group_len(toks, i);
            let inner = &toks[i + 1..i + len - 1];
            let only_strs = !inner.is_empty() && inner.iter().all(|t| matches!(t, Tok::Str(_)) || t == &Tok::Punct(','));
            if only_strs && is_punct(toks.get(i + len), '.') && is_ident(toks.get(i + len + 1), "contains") {
                keys.extend(inner.iter().filter_map(|t| match t {
                    Tok::Str(s) => Some(s.clone()),
                    _ => None,
                }));
            }
        }
    }
    keys
}

/// What the README's configuration reference lists: the names in the first
/// column of its table rows, each with the line it is on.
struct Documented {
    names: BTreeMap<String, usize>,
    duplicates: Vec<String>,
    malformed: Vec<String>,
}

fn readme_table(readme: &str) -> Documented {
    let lines: Vec<(usize, &str)> = readme
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l))
        .skip_while(|(_, l)| l.trim_end() != SECTION)
        .skip(1)
        .take_while(|(_, l)| !l.starts_with("## "))
        .collect();
    let is_separator = |l: &str| {
        let t = l.trim();
        t.starts_with('|') && t.contains('-') && t.chars().all(|c| "|-: ".contains(c))
    };
    let mut doc = Documented {
        names: BTreeMap::new(),
        duplicates: Vec::new(),
        malformed: Vec::new(),
    };
    for (k, (n, line)) in lines.iter().enumerate() {
        let line = line.trim();
        let header = lines.get(k + 1).is_some_and(|(_, next)| is_separator(next));
        if !line.starts_with('|') || header || is_separator(line) {
            continue;
        }
        let first = line[1..].split('|').next().unwrap_or("");
        let spans: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        let rest: String = first.split('`').step_by(2).collect();
        if spans.is_empty() || rest.chars().any(|c| !(c == ',' || c.is_whitespace())) {
            doc.malformed.push(format!("line {n}: {first:?}"));
        }
        for s in spans {
            let name = env_template(s).unwrap_or_else(|| s.to_string());
            if !(is_env_name(&name) || env_template(&name).is_some() || is_yaml_key(&name)) {
                doc.malformed.push(format!("line {n}: `{s}` is not a setting name"));
            } else if doc.names.insert(name.clone(), *n).is_some() {
                doc.duplicates.push(format!("`{s}` (line {n})"));
            }
        }
    }
    doc
}

/// `POSTERN_…` names anywhere in the README, templates and wildcards such as
/// `POSTERN_FEED_<NAME>_URL`, `POSTERN_*_CRITICAL` and
/// `POSTERN_{RSPAMD,CLAMD}_URL` left out.
fn readme_mentions(readme: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = readme;
    while let Some(p) = rest.find("POSTERN_") {
        let after = &rest[p + "POSTERN_".len()..];
        let len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &rest[p..p + "POSTERN_".len() + len];
        let next = after[len..].chars().next();
        if len > 0 && !name.ends_with('_') && !matches!(next, Some('<' | '{' | '*')) {
            out.insert(name.to_string());
        }
        rest = &after[len..];
    }
    out
}

fn list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names.into_iter().map(|n| n.replace("{}", "<NAME>")).collect::<Vec<_>>().join(", ")
}

#[test]
fn readme_config_reference_matches_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme_path = root.join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap_or_else(|e| panic!("reading {}: {e}", readme_path.display()));
    let sources = product_sources(&root.join("src"));

    let mut code_env = BTreeSet::new();
    for (_, toks) in &sources {
        for t in toks {
            if let Tok::Str(s) = t {
                if is_env_name(s) {
                    code_env.insert(s.clone());
                } else if let Some(t) = env_template(s) {
                    code_env.insert(t);
                }
            }
        }
    }
    let accounts_rs = root.join("src/config/accounts.rs");
    let (_, accounts_toks) = sources
        .iter()
        .find(|(f, _)| *f == accounts_rs)
        .unwrap_or_else(|| panic!("{} not among the product sources", accounts_rs.display()));
    let mut code_yaml = yaml_keys(accounts_toks);
    // config.yaml's `logwatch:` section is read by its own module.
    let logwatch_rs = root.join("src/config/logwatch.rs");
    if let Some((_, toks)) = sources.iter().find(|(f, _)| *f == logwatch_rs) {
        code_yaml.extend(yaml_keys(toks));
    }
    // Guards against a scanner that silently finds nothing.
    assert!(code_env.len() > 50, "found only {code_env:?} in the code");
    assert!(
        code_yaml.contains("name") && code_yaml.contains("accounts"),
        "found only {code_yaml:?}"
    );

    let not_settings: BTreeSet<String> = NOT_SETTINGS.iter().map(|(n, _)| n.to_string()).collect();
    let doc = readme_table(&readme);
    let doc_env: BTreeSet<String> = doc.names.keys().filter(|n| n.starts_with("POSTERN_")).cloned().collect();
    let doc_yaml: BTreeSet<String> = doc.names.keys().filter(|n| !n.starts_with("POSTERN_")).cloned().collect();

    let mut problems = Vec::new();
    let mut report = |what: &str, names: Vec<&String>| {
        if !names.is_empty() {
            problems.push(format!("{what}: {}", list(names)));
        }
    };
    report(
        "environment variables the code reads but README.md's configuration reference does not list",
        code_env.difference(&doc_env).filter(|n| !not_settings.contains(*n)).collect(),
    );
    report(
        "environment variables README.md's configuration reference documents but the code does not know",
        doc_env.difference(&code_env).collect(),
    );
    report(
        "config.yaml keys the code accepts but README.md's configuration reference does not list",
        code_yaml.difference(&doc_yaml).collect(),
    );
    report(
        "config.yaml keys README.md's configuration reference documents but the code does not accept",
        doc_yaml.difference(&code_yaml).collect(),
    );
    report(
        "NOT_SETTINGS entries the code no longer reads (remove them from readme_sync.rs)",
        not_settings.difference(&code_env).collect(),
    );
    report(
        "NOT_SETTINGS entries that README.md's configuration reference lists (remove one or the other)",
        not_settings.intersection(&doc_env).collect(),
    );
    // Prose may name a template's instances, e.g. POSTERN_FEED_URLHAUS_URL:
    // expand each template with the feed names (the only templates today).
    let instances: BTreeSet<String> = code_env
        .iter()
        .filter(|t| t.contains("{}"))
        .flat_map(|t| postern::config::FEEDS.iter().map(move |f| t.replace("{}", &f.to_ascii_uppercase())))
        .collect();
    let mentioned = readme_mentions(&readme);
    report(
        "POSTERN_ names mentioned in README.md that the code does not know (typo or removed setting?)",
        mentioned
            .iter()
            .filter(|n| !code_env.contains(*n) && !instances.contains(*n) && !doc_env.contains(*n))
            .collect(),
    );
    let section: String = readme
        .lines()
        .skip_while(|l| l.trim_end() != SECTION)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect::<Vec<_>>()
        .join("\n");
    let feeds: Vec<String> = postern::config::FEEDS.iter().map(|f| f.to_string()).collect();
    report(
        "feeds (config::FEEDS) the configuration reference does not name",
        feeds.iter().filter(|f| !section.contains(f.as_str())).collect(),
    );
    if section.is_empty() {
        problems.push(format!("README.md has no `{SECTION}` section"));
    }
    if !doc.duplicates.is_empty() {
        problems.push(format!(
            "listed more than once in the configuration reference: {}",
            doc.duplicates.join(", ")
        ));
    }
    for m in &doc.malformed {
        problems.push(format!(
            "configuration reference row whose first column is not only backticked setting names, {m}"
        ));
    }
    assert!(
        problems.is_empty(),
        "README.md and the code disagree:\n- {}\n",
        problems.join("\n- ")
    );
}

#[test]
fn lexer_sees_only_product_code() {
    let src = r####"
        // r.get("POSTERN_IN_COMMENT")
        /* "POSTERN_IN_BLOCK" /* nested */ "POSTERN_STILL_COMMENT" */
        fn f<'a>(x: &'a str) -> char { let _ = ("POSTERN_KEPT", r#"POSTERN_RAW"#, b"x"); '"' }
        #[cfg(test)]
        mod helpers;
        const ALLOWED_KEYS: &[&str] = &["one", "two"];
        fn g(k: &str) -> bool { ["three", "four"].contains(&k) }
        #[cfg(test)]
        #[allow(dead_code)]
        fn test_only() { let _ = "POSTERN_IN_TEST_FN"; let _ = '{'; }
        fn h() { let _ = "POSTERN_AFTER_TEST_FN"; let _ = format!("POSTERN_FEED_{}_URL", 1); }
        #[cfg(test)]
        mod tests { fn t() { let _ = "POSTERN_IN_TESTS"; } }
    "####;
    let (kept, mods) = strip_test_items(&lex(src));
    let strs: Vec<&str> = kept
        .iter()
        .filter_map(|t| match t {
            Tok::Str(s) if s.starts_with("POSTERN_") => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        strs,
        ["POSTERN_KEPT", "POSTERN_RAW", "POSTERN_AFTER_TEST_FN", "POSTERN_FEED_{}_URL"]
    );
    assert_eq!(mods, ["helpers"]);
    let keys: Vec<String> = yaml_keys(&kept).into_iter().collect();
    assert_eq!(keys, ["four", "one", "three", "two"]);
    assert_eq!(env_template("POSTERN_FEED_<NAME>_URL").as_deref(), Some("POSTERN_FEED_{}_URL"));
    let m = readme_mentions("`POSTERN_A`, POSTERN_*_CRITICAL, `POSTERN_{X,Y}_URL`, `POSTERN_FEED_<NAME>_URL`, POSTERN_B/`_C`");
    assert_eq!(m.into_iter().collect::<Vec<_>>(), ["POSTERN_A", "POSTERN_B"]);
}
