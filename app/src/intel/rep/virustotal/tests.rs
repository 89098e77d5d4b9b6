use super::*;
use crate::clock::TestClock;
use crate::intel::rep::MemoryCache;
use crate::intel::rep::testserver::{FixtureServer, Reply, client, fixture};
use axum::http::{HeaderMap, Uri};

const KEY: &str = "vt-test-key-0123456789";
const MALICIOUS: &str = "516ea954f38494c620f2b0a2da02c7ad819d2c3bafa1a01185348a64c2442e40";
const SUSPICIOUS: &str = "18761df9f4085a3241c22db8f24c92092da5fe31191c7a5137efd2f390f23903";
const CLEAN: &str = "a9870936deb653bef337de8bc688dd76f13dd2a0596c595f4d46ec5602d55700";
const HEURISTIC: &str = "b06914f034a256296a674f7df300cfd81adbb0357dce1321140a930a6df67ee8";
const UNKNOWN: &str = "a2d42273063a28c6a42d999e59087368c474ceb13155432dbd1e2a75e029697b";
/// The service answers 429 for this hash.
const QUOTA: &str = "4f2b0b3c0e5d5e0f8a1e6c9d4b7a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a";

/// `GET /api/v3/files/{sha256}` the way VirusTotal answers it, from the fixtures.
fn vt_service(uri: &Uri, headers: &HeaderMap) -> Reply {
    if headers.get("x-apikey").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return Reply::json(401, fixture("virustotal/401.json").unwrap());
    }
    let sha = uri.path().strip_prefix("/api/v3/files/").unwrap();
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha}");
    if sha == QUOTA {
        let mut r = Reply::json(429, fixture("virustotal/429.json").unwrap());
        r.headers.push(("retry-after", "60".into()));
        return r;
    }
    match fixture(&format!("virustotal/files/{sha}.json")) {
        Some(body) => Reply::json(200, body),
        None => Reply::json(404, fixture("virustotal/not-found.json").unwrap()),
    }
}

struct Setup {
    server: FixtureServer,
    clock: TestClock,
    scanner: VirusTotalScanner,
}

async fn setup(key: &str) -> Setup {
    let server = FixtureServer::start(vt_service).await;
    let clock = TestClock::new("2026-11-22T12:00:00Z".parse().unwrap());
    let shared: SharedClock = Arc::new(clock.clone());
    let cache = Arc::new(MemoryCache::new(shared.clone()));
    let scanner = VirusTotalScanner::new(client(), &format!("{}/api/v3", server.base), key, cache, shared);
    Setup { server, clock, scanner }
}

fn att(name: &str, sniffed: Option<&str>, sha256: &str) -> Attachment {
    Attachment {
        name: Some(name.into()),
        ext: crate::scan::attach::extension(name),
        declared: "application/octet-stream".into(),
        sniffed: sniffed.map(str::to_string),
        size: 1000,
        sha256: sha256.into(),
        ..Default::default()
    }
}

fn message(attachments: Vec<Attachment>) -> ScanInput {
    ScanInput {
        attachments,
        ..Default::default()
    }
}

fn four() -> ScanInput {
    message(vec![
        att("invoice.exe", Some("application/vnd.microsoft.portable-executable"), MALICIOUS),
        att("statement.pdf", Some("application/pdf"), SUSPICIOUS),
        att(
            "report.docx",
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            CLEAN,
        ),
        att("setup.zip", Some("application/zip"), UNKNOWN),
    ])
}

#[tokio::test]
async fn verdicts_become_tags_and_answers_are_cached() {
    let s = setup(KEY).await;
    let found = s.scanner.scan(&four()).await.unwrap();
    let got: Vec<(&str, &str)> = found.iter().map(|f| (f.tag.as_str(), f.detail.as_deref().unwrap())).collect();
    assert_eq!(
        got,
        vec![
            (
                TAG_MALICIOUS,
                format!("invoice.exe sha256={MALICIOUS} 12/70 engines (trojan.formbook/kryptik)").as_str()
            ),
            (
                TAG_SUSPICIOUS,
                format!("statement.pdf sha256={SUSPICIOUS} 1/62 engines, 1 suspicious").as_str()
            ),
        ]
    );
    assert_eq!(s.server.requests(), 4);

    assert_eq!(s.scanner.scan(&four()).await.unwrap(), found);
    assert_eq!(s.server.requests(), 4, "second scan served from the cache");

    s.clock.advance(chrono::Duration::minutes(61));
    s.scanner.scan(&four()).await.unwrap();
    assert_eq!(s.server.requests_to(UNKNOWN), 2, "404s are kept one hour");
    assert_eq!(s.server.requests(), 5);

    s.clock.advance(chrono::Duration::hours(24));
    assert_eq!(s.scanner.scan(&four()).await.unwrap(), found);
    for sha in [MALICIOUS, SUSPICIOUS, CLEAN] {
        assert_eq!(s.server.requests_to(sha), 2, "{sha} after 25 hours");
    }
}

#[tokio::test]
async fn the_free_tier_budget_skips_the_fifth_lookup_in_a_minute() {
    let s = setup(KEY).await;
    s.scanner.scan(&four()).await.unwrap();
    assert_eq!(s.server.requests(), 4);

    let fifth = message(vec![att("payment_portal.html", Some("text/html"), HEURISTIC)]);
    s.clock.advance(chrono::Duration::seconds(30));
    assert!(s.scanner.scan(&fifth).await.unwrap().is_empty(), "skipped, not an error");
    assert_eq!(s.server.requests(), 4, "no request over the budget");
    let health = s.scanner.health().await.unwrap();
    assert!(health.contains("1 skipped") && health.contains("4/4 requests"), "{health}");

    s.scanner.scan(&four()).await.unwrap();
    assert_eq!(s.server.requests(), 4, "cache hits do not need the budget");

    s.clock.advance(chrono::Duration::seconds(31));
    let found = s.scanner.scan(&fifth).await.unwrap();
    assert_eq!(s.server.requests(), 5);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].tag, TAG_SUSPICIOUS, "three engines say suspicious");
}

#[tokio::test]
async fn only_risky_attachments_distinct_hashes_at_most_four() {
    let s = setup(KEY).await;
    let harmless = message(vec![
        att("photo.jpg", Some("image/jpeg"), UNKNOWN),
        att("notes.txt", None, UNKNOWN),
        Attachment {
            size: 0,
            ..att("empty.exe", None, UNKNOWN)
        },
        att("bad-hash.exe", None, "not-a-hash"),
    ]);
    assert!(s.scanner.scan(&harmless).await.unwrap().is_empty());
    assert_eq!(s.server.requests(), 0);

    let s = setup(KEY).await;
    let many = message(vec![
        att("a.exe", None, MALICIOUS),
        att("copy-of-a.exe", None, &MALICIOUS.to_ascii_uppercase()),
        // A picture by name whose content is an executable.
        att("cat.jpg", Some("application/vnd.microsoft.portable-executable"), SUSPICIOUS),
        att("b.html", None, HEURISTIC),
        att("c.one", None, CLEAN),
        att("d.iso", None, UNKNOWN),
    ]);
    let found = s.scanner.scan(&many).await.unwrap();
    assert_eq!(s.server.requests(), MAX_HASHES);
    assert_eq!(s.server.requests_to(MALICIOUS), 1, "one lookup per hash");
    assert_eq!(
        s.server.requests_to(UNKNOWN),
        0,
        "the fifth distinct hash is over the per-message cap"
    );
    let tags: Vec<&str> = found.iter().map(|f| f.tag.as_str()).collect();
    assert_eq!(tags, vec![TAG_MALICIOUS, TAG_SUSPICIOUS, TAG_SUSPICIOUS]);
}

#[tokio::test]
async fn a_wrong_key_is_a_scan_error_and_other_hashes_survive_a_429() {
    let s = setup("wrong").await;
    let err = s.scanner.scan(&four()).await.unwrap_err().to_string();
    assert!(err.contains("401") && err.contains("WrongCredentialsError"), "{err}");

    let s = setup(KEY).await;
    let mixed = message(vec![att("a.exe", None, QUOTA), att("b.exe", None, MALICIOUS)]);
    let found = s.scanner.scan(&mixed).await.unwrap();
    assert_eq!(found.len(), 1, "the 429 does not discard the other answer");
    let health = s.scanner.health().await.unwrap_err().to_string();
    assert!(health.contains("rate-limited until 2026-11-22 12:01:00"), "{health}");
    let before = s.server.requests();
    assert!(
        s.scanner
            .scan(&message(vec![att("c.pdf", None, SUSPICIOUS)]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.server.requests(), before, "paused by the service: skipped");
}

#[tokio::test]
async fn a_larger_budget_can_be_configured() {
    let Setup { server, clock, scanner } = setup(KEY).await;
    let scanner = scanner.with_rate_limit(8, chrono::Duration::minutes(1));
    scanner.scan(&four()).await.unwrap();
    clock.advance(chrono::Duration::seconds(1));
    let fifth = message(vec![att("payment_portal.html", None, HEURISTIC)]);
    assert_eq!(scanner.scan(&fifth).await.unwrap().len(), 1);
    assert_eq!(server.requests(), 5);
}

/// Issue 16, hole 2: `POSTERN_VIRUSTOTAL_URL=http://2130706433:…` (decimal
/// 127.0.0.1) received the API key, since this client skipped the SSRF check.
#[tokio::test]
async fn issue_16_a_literal_ip_base_never_gets_the_key() {
    let server = FixtureServer::start(vt_service).await;
    let clock = TestClock::new("2026-11-22T12:00:00Z".parse().unwrap());
    let shared: SharedClock = Arc::new(clock);
    let cache = Arc::new(MemoryCache::new(shared.clone()));
    let base = format!("{}/api/v3", server.base.replace("127.0.0.1", "2130706433"));
    let scanner = VirusTotalScanner::new(crate::intel::rep::testserver::guarded_client(), &base, KEY, cache, shared);
    let out = scanner.scan(&four()).await;
    assert!(format!("{out:?}").contains("refused"), "{out:?}");
    assert_eq!(server.requests(), 0, "nothing reached the fixture");
}
