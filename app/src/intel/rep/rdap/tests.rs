use super::*;
use crate::clock::TestClock;
use crate::intel::rep::MemoryCache;
use crate::intel::rep::testserver::{FixtureServer, Reply, client, fixture};
use axum::http::{HeaderMap, Uri};

fn start() -> TestClock {
    TestClock::new("2026-11-22T12:00:00Z".parse().unwrap())
}

/// Serves RDAP answers from the fixtures under `/rdap/`, a bootstrap that
/// points `test` there at `/dns.json`, and a failing server for `broken.test`.
fn rdap_service(uri: &Uri, headers: &HeaderMap) -> Reply {
    let path = uri.path();
    if path == "/dns.json" {
        let host = headers["host"].to_str().unwrap();
        let body = serde_json::json!({
            "description": "RDAP bootstrap file for Domain Name System registrations",
            "publication": "2026-11-21T19:00:01Z",
            "services": [[["test"], [format!("http://{host}/rdap/")]]],
            "version": "1.0"
        });
        return Reply::json(200, body.to_string());
    }
    if path == "/garbage.json" {
        return Reply::json(200, "<html>maintenance</html>".into());
    }
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/rdap+json") {
        return Reply::json(406, "{}".into());
    }
    let Some(name) = path.strip_prefix("/rdap/domain/") else {
        return Reply::json(400, "{}".into());
    };
    if name == "broken.test" {
        return Reply::json(503, "{}".into());
    }
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'), "{name}");
    match fixture(&format!("rdap/domain/{name}.json")) {
        Some(body) => Reply::json(200, body),
        None => Reply::json(404, fixture("rdap/not-found.json").unwrap()),
    }
}

async fn setup(clock: &TestClock) -> (FixtureServer, RdapScanner) {
    let server = FixtureServer::start(rdap_service).await;
    let shared: SharedClock = Arc::new(clock.clone());
    let cache = Arc::new(MemoryCache::new(shared.clone()));
    let scanner = RdapScanner::new(client(), cache, shared).unwrap();
    let n = scanner.refresh_bootstrap(&format!("{}/dns.json", server.base)).await.unwrap();
    assert_eq!(n, 1);
    (server, scanner)
}

fn message() -> ScanInput {
    ScanInput {
        from_domain: Some("mail.Fresh-Login.test".into()),
        urls: vec![
            "https://recent-shop.test/pay".into(),
            "https://www.old-bank.test/login".into(),
            "https://fresh-login.test/again".into(),
            "https://unknown-new.test/x".into(),
            "https://cdn.no-date.test/a.png".into(),
            "https://example.com/not-in-this-bootstrap".into(),
            "https://192.0.2.7/raw-ip".into(),
        ],
        ..Default::default()
    }
}

fn tags(findings: &[Finding]) -> Vec<(&str, &str)> {
    let mut v: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.tag.as_str(), f.detail.as_deref().unwrap_or("")))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn domain_ages_become_tags_and_answers_are_cached() {
    let clock = start();
    let (server, scanner) = setup(&clock).await;
    let found = scanner.scan(&message()).await.unwrap();
    let via = server.base.trim_start_matches("http://").split(':').next().unwrap().to_string();
    assert_eq!(
        tags(&found),
        vec![
            (
                TAG_NEWLY_REGISTERED,
                format!("recent-shop.test registered 2026-11-02 (20 days ago) via {via}").as_str()
            ),
            (
                TAG_VERY_NEW,
                format!("fresh-login.test registered 2026-11-20 (2 days ago) via {via}").as_str()
            ),
        ]
    );
    // fresh-login, recent-shop, old-bank, unknown-new, no-date: once each,
    // though fresh-login appears twice and under a subdomain.
    assert_eq!(server.requests_to("/rdap/domain/"), 5);
    assert_eq!(server.requests_to("/rdap/domain/fresh-login.test"), 1);

    let again = scanner.scan(&message()).await.unwrap();
    assert_eq!(tags(&again), tags(&found));
    assert_eq!(server.requests_to("/rdap/domain/"), 5, "second scan served from the cache");

    clock.advance(chrono::Duration::minutes(61));
    scanner.scan(&message()).await.unwrap();
    assert_eq!(server.requests_to("/rdap/domain/unknown-new.test"), 2, "404s are kept one hour");
    assert_eq!(server.requests_to("/rdap/domain/"), 6, "found domains are still cached");

    clock.advance(chrono::Duration::hours(24));
    let later = scanner.scan(&message()).await.unwrap();
    for d in ["fresh-login", "recent-shop", "old-bank", "no-date"] {
        assert_eq!(server.requests_to(&format!("/rdap/domain/{d}.test")), 2, "{d} after 25 hours");
    }
    assert_eq!(server.requests_to("/rdap/domain/unknown-new.test"), 3);
    assert!(
        later
            .iter()
            .any(|f| f.tag == TAG_VERY_NEW && f.detail.as_deref().unwrap().contains("(3 days ago)")),
        "{later:?}"
    );
    let health = scanner.health().await.unwrap();
    assert!(health.contains("1 TLDs") && health.contains("11 lookups"), "{health}");
}

#[tokio::test]
async fn the_new_days_threshold_is_configurable() {
    let clock = start();
    let (_server, scanner) = setup(&clock).await;
    let scanner = scanner.with_new_days(10);
    let found = scanner.scan(&message()).await.unwrap();
    assert_eq!(tags(&found).len(), 1);
    assert_eq!(found[0].tag, TAG_VERY_NEW);
}

#[tokio::test]
async fn one_failing_domain_keeps_the_others_results() {
    let clock = start();
    let (server, scanner) = setup(&clock).await;
    let input = ScanInput {
        from_domain: Some("broken.test".into()),
        urls: vec!["https://fresh-login.test/".into()],
        ..Default::default()
    };
    let found = scanner.scan(&input).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].tag, TAG_VERY_NEW);

    let only_broken = ScanInput {
        from_domain: Some("broken.test".into()),
        ..Default::default()
    };
    let err = scanner.scan(&only_broken).await.unwrap_err().to_string();
    assert!(err.contains("broken.test") && err.contains("503"), "{err}");
    assert_eq!(server.requests_to("/rdap/domain/broken.test"), 2, "failures are not cached");
}

#[tokio::test]
async fn at_most_ten_domains_per_message_and_unknown_tlds_are_skipped() {
    let clock = start();
    let (server, scanner) = setup(&clock).await;
    let input = ScanInput {
        urls: (0..15).map(|i| format!("https://www.site{i}.test/")).collect(),
        ..Default::default()
    };
    assert!(scanner.scan(&input).await.unwrap().is_empty());
    assert_eq!(server.requests_to("/rdap/domain/"), MAX_DOMAINS);

    let elsewhere = ScanInput {
        from_domain: Some("example.org".into()),
        urls: vec!["https://example.com/".into()],
        ..Default::default()
    };
    let before = server.requests();
    assert!(scanner.scan(&elsewhere).await.unwrap().is_empty());
    assert_eq!(server.requests(), before, "no RDAP server for these TLDs: skipped silently");
}

#[tokio::test]
async fn a_bad_bootstrap_download_keeps_the_current_one() {
    let clock = start();
    let (server, scanner) = setup(&clock).await;
    let err = scanner.refresh_bootstrap(&format!("{}/garbage.json", server.base)).await;
    assert!(matches!(err, Err(IntelError::Format { .. })), "{err:?}");
    assert!(scanner.bootstrap().server_for("x.test").is_some());

    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("dns.json");
    std::fs::write(&saved, scanner.bootstrap().to_json().unwrap()).unwrap();
    let fresh = RdapScanner::new(client(), Arc::new(MemoryCache::new(Arc::new(clock.clone()))), Arc::new(clock)).unwrap();
    assert_eq!(fresh.bootstrap().server_for("x.test"), None, "the shipped snapshot has no .test");
    assert_eq!(fresh.load_bootstrap(&saved).unwrap(), 1);
    assert_eq!(
        fresh.bootstrap().server_for("x.test"),
        Some(format!("{}/rdap/", server.base).as_str())
    );
    assert!(matches!(
        fresh.load_bootstrap(&dir.path().join("missing.json")),
        Err(IntelError::Io(_))
    ));
}

/// Issue 16, hole 2: a literal-IP bootstrap URL skipped the SSRF check.
#[tokio::test]
async fn issue_16_a_literal_ip_bootstrap_url_is_refused() {
    let clock = TestClock::new("2026-11-22T12:00:00Z".parse().unwrap());
    let server = FixtureServer::start(rdap_service).await;
    let shared: SharedClock = Arc::new(clock.clone());
    let cache = Arc::new(MemoryCache::new(shared.clone()));
    let scanner = RdapScanner::new(crate::intel::rep::testserver::guarded_client(), cache, shared).unwrap();
    let url = format!("{}/dns.json", server.base.replace("127.0.0.1", "2130706433"));
    let err = scanner.refresh_bootstrap(&url).await.unwrap_err();
    assert!(matches!(err, IntelError::Refused { .. }), "{err}");
    assert_eq!(server.requests(), 0, "nothing reached the fixture");
}
