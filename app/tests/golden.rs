//! Golden corpus: each `fixtures/eml/NAME.eml` has `NAME.expect` with the
//! verdict and the exact tag set from the local (non-network) scanners. A
//! mismatch writes `NAME.failed` with what was produced.

use crate::common::local_pipeline;
use postern::scan::InputOptions;
use std::collections::BTreeSet;
use std::path::Path;

#[tokio::test]
async fn golden_fixtures_match_their_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml");
    let only = std::env::var("TEST_NAME").ok();
    let p = local_pipeline(InputOptions::default());
    let mut run = 0;
    let mut failed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for eml in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "eml")) {
        let name = eml.file_stem().unwrap().to_string_lossy().to_string();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let expect = std::fs::read_to_string(eml.with_extension("expect")).unwrap_or_else(|_| panic!("{name}.expect missing"));
        let want_verdict = expect.lines().find_map(|l| l.strip_prefix("verdict:")).unwrap().trim().to_string();
        let want_tags: BTreeSet<String> = expect
            .lines()
            .find_map(|l| l.strip_prefix("tags:"))
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        // Both line endings must give the same answer.
        for crlf in [true, false] {
            let mut raw = std::fs::read(eml).unwrap();
            if !crlf {
                raw = String::from_utf8_lossy(&raw).replace("\r\n", "\n").into_bytes();
            }
            let d = p.scan(raw).await;
            run += 1;
            let got_tags: BTreeSet<String> = d.tags.iter().cloned().collect();
            let failed_path = eml.with_extension("failed");
            if d.verdict.as_str() != want_verdict || got_tags != want_tags {
                let got = format!(
                    "verdict: {}\ntags: {}\nreason: {}\n",
                    d.verdict,
                    got_tags.iter().cloned().collect::<Vec<_>>().join(" "),
                    d.reason
                );
                std::fs::write(&failed_path, &got).unwrap();
                failed.push(format!("{name} ({}): {got}", if crlf { "CRLF" } else { "LF" }));
            } else {
                let _ = std::fs::remove_file(&failed_path);
            }
        }
    }
    assert!(run > 0, "no fixtures ran");
    assert!(failed.is_empty(), "golden mismatches:\n{}", failed.join("\n"));
}
