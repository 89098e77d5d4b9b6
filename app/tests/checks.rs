//! Per-check fixtures (issue 14), Stalwart style: every file
//! `fixtures/checks/<check>/NAME.test` is a raw message after `# ` header
//! lines, the first of which is `# expect: TAG TAG` with the exact tag set
//! the local pipeline must give (empty for a ham counter-example). See
//! fixtures/checks/README.md. A mismatch writes `NAME.failed`.

use crate::common::local_pipeline;
use postern::scan::InputOptions;
use postern::scan::scanners::{attachments, html, spoof, structure};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Tags no synthetic message reaches through the local pipeline, and why.
const NOT_FIXTURED: &[(&str, &str)] = &[
    ("MIME_UNPARSEABLE", "mail-parser reads every byte string as some message"),
    (
        "ATT_ARCHIVE_LIMIT",
        "needs a multi-megabyte archive bomb; covered by unit tests in scan::archive",
    ),
];

struct Case {
    path: PathBuf,
    expect: BTreeSet<String>,
    raw: Vec<u8>,
}

fn read_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let mut expect = None;
    let mut body = String::new();
    let mut in_header = true;
    for line in text.split_inclusive('\n') {
        if in_header && line.starts_with('#') {
            if let Some(tags) = line.strip_prefix("# expect:") {
                expect = Some(tags.split_whitespace().map(str::to_string).collect());
            }
            continue;
        }
        in_header = false;
        body.push_str(line);
    }
    let expect = expect.unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
    Case {
        path: path.to_path_buf(),
        expect,
        raw: body.into_bytes(),
    }
}

fn cases() -> Vec<(String, Case)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let check = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "test")) {
            out.push((check.clone(), read_case(f)));
        }
    }
    out
}

#[tokio::test]
async fn check_fixtures_give_exactly_their_tags() {
    // PDFs are read as the daemon reads them: in the worker process.
    let p = local_pipeline(InputOptions {
        pdf_worker: Some(std::sync::Arc::from(std::path::Path::new(env!("CARGO_BIN_EXE_postern")))),
        ..InputOptions::default()
    });
    let mut run = 0;
    let mut failed = Vec::new();
    for (check, case) in cases() {
        // Both line endings must give the same answer.
        for crlf in [false, true] {
            let raw = if crlf {
                String::from_utf8_lossy(&case.raw).replace('\n', "\r\n").into_bytes()
            } else {
                case.raw.clone()
            };
            let d = p.scan(raw).await;
            run += 1;
            let got: BTreeSet<String> = d.tags.iter().cloned().collect();
            let failed_path = case.path.with_extension("failed");
            if got != case.expect {
                let line = got.iter().cloned().collect::<Vec<_>>().join(" ");
                std::fs::write(&failed_path, format!("# expect: {line}\n# reason: {}\n", d.reason)).unwrap();
                failed.push(format!(
                    "{check}/{} ({}): got [{line}]",
                    case.path.display(),
                    if crlf { "CRLF" } else { "LF" }
                ));
            } else {
                let _ = std::fs::remove_file(&failed_path);
            }
        }
    }
    assert!(run > 0, "no fixtures ran");
    assert!(failed.is_empty(), "check fixtures that differ:\n{}", failed.join("\n"));
}

/// Every local check's tags have a positive fixture, and every check
/// folder has a ham counter-example that must stay clean.
#[test]
fn every_local_check_has_a_positive_fixture_and_a_ham_counter_example() {
    let all = cases();
    let fixtured: BTreeSet<&str> = all.iter().flat_map(|(_, c)| c.expect.iter().map(String::as_str)).collect();
    let tags = [structure::TAGS, attachments::TAGS, html::TAGS, spoof::TAGS].concat();
    let missing: Vec<&str> = tags
        .iter()
        .copied()
        .filter(|t| !fixtured.contains(t) && !NOT_FIXTURED.iter().any(|(n, _)| n == t))
        .collect();
    assert!(missing.is_empty(), "tags without a positive fixture: {missing:?}");
    let checks: BTreeSet<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
    assert!(checks.len() >= 4, "check folders: {checks:?}");
    for check in checks {
        assert!(
            all.iter().any(|(c, case)| c == check && case.expect.is_empty()),
            "{check} has no ham counter-example"
        );
    }
}

/// Rspamd's reply as Postern reads it (`fixtures/checks-rspamd/`, see its
/// README): a stand-in `/checkv2` on 127.0.0.1 serves each fixture's
/// `# rspamd:` reply; the local scanners plus the Rspamd scanner under the
/// shipped policy must give exactly `# expect:` and `# verdict:`.
#[tokio::test]
async fn rspamd_fixtures_give_exactly_their_tags_and_verdict() {
    use crate::common::fixture_http::FixtureHttp;
    use postern::scan::scanners::rspamd::RspamdScanner;
    let http = FixtureHttp::start().await;
    let rspamd = RspamdScanner::new(&http.base, std::time::Duration::from_secs(10), postern::scan::FailureMode::Closed).unwrap();
    let mut scanners = postern::scan::scanners::local(&postern::config::PolicyConfig::default(), &[]);
    scanners.push(std::sync::Arc::new(rspamd));
    let p = postern::scan::Pipeline::new(scanners, postern::scan::Policy::default_policy().unwrap(), InputOptions::default());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks-rspamd");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut failed = Vec::new();
    let mut verdicts = BTreeSet::new();
    let mut run = 0;
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "test")) {
        let case = read_case(f);
        let text = std::fs::read_to_string(f).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{} has no `{name}` line", f.display()))
                .to_string()
        };
        http.set("checkv2", 200, field("# rspamd:"));
        let want_verdict = field("# verdict:");
        let d = p.scan(case.raw.clone()).await;
        run += 1;
        assert_eq!(http.hits("checkv2"), run, "{}: Rspamd was asked once per message", f.display());
        let got: BTreeSet<String> = d.tags.iter().cloned().collect();
        if got != case.expect || d.verdict.as_str() != want_verdict {
            failed.push(format!(
                "{}: got [{}] {} ({})",
                f.display(),
                got.iter().cloned().collect::<Vec<_>>().join(" "),
                d.verdict,
                d.reason
            ));
        }
        verdicts.insert(want_verdict);
    }
    assert!(failed.is_empty(), "Rspamd fixtures that differ:\n{}", failed.join("\n"));
    for v in ["pass", "junk"] {
        assert!(verdicts.contains(v), "no Rspamd fixture with verdict {v}: {verdicts:?}");
    }
}
