use super::*;
use crate::clock::TestClock;
use crate::intel::rep::MemoryCache;
use crate::intel::rep::testserver::{FixtureServer, Reply, client, fixture};
use axum::http::{HeaderMap, Uri};
use std::collections::HashMap;

const KEY: &str = "0123456789abcdef-test-key";
/// The service answers 429 for this address.
const LIMITED_IP: &str = "5.188.10.1";

/// `GET /api/v2/check` the way AbuseIPDB answers it, from the fixtures.
fn abuseipdb_service(uri: &Uri, headers: &HeaderMap) -> Reply {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if header("key") != Some(KEY) {
        return Reply::json(401, fixture("abuseipdb/401.json").unwrap());
    }
    assert_eq!(uri.path(), "/api/v2/check");
    assert_eq!(header("accept"), Some("application/json"));
    let q: HashMap<String, String> = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    assert_eq!(q.get("maxAgeInDays").map(String::as_str), Some("90"));
    let ip: IpAddr = q["ipAddress"].parse().unwrap();
    if ip.to_string() == LIMITED_IP {
        let mut r = Reply::json(429, fixture("abuseipdb/429.json").unwrap());
        r.headers.push(("retry-after", "3600".into()));
        r.headers.push(("x-ratelimit-remaining", "0".into()));
        return r;
    }
    let name = ip.to_string().replace(':', "_");
    let mut r = Reply::json(200, fixture(&format!("abuseipdb/check/{name}.json")).unwrap());
    r.headers.push(("x-ratelimit-remaining", "997".into()));
    r
}

struct Setup {
    server: FixtureServer,
    clock: TestClock,
    scanner: AbuseIpdbScanner,
}

async fn setup(key: &str) -> Setup {
    let server = FixtureServer::start(abuseipdb_service).await;
    let clock = TestClock::new("2026-11-22T12:00:00Z".parse().unwrap());
    let shared: SharedClock = Arc::new(clock.clone());
    let cache = Arc::new(MemoryCache::new(shared.clone()));
    let base = format!("{}/api/v2/", server.base);
    let scanner = AbuseIpdbScanner::new(client(), &base, key, cache, shared);
    Setup { server, clock, scanner }
}

fn from(ip: &str) -> ScanInput {
    ScanInput {
        sender_ip: Some(ip.parse().unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn scores_become_tags_and_answers_are_cached() {
    let s = setup(KEY).await;
    let high = s.scanner.scan(&from("185.220.101.34")).await.unwrap();
    assert_eq!(high.len(), 1);
    assert_eq!(high[0].tag, TAG_HIGH);
    assert_eq!(
        high[0].detail.as_deref(),
        Some(
            "185.220.101.34 abuse confidence 100% (2891 reports from 412 users, last 2026-11-22T10:41:07+00:00); \
             DE, Data Center/Web Hosting/Transit, Zwiebelfreunde e.V.; Tor exit node"
        )
    );
    let medium = s.scanner.scan(&from("2a06:4883:1000::52")).await.unwrap();
    assert_eq!(medium.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>(), vec![TAG_MEDIUM]);
    assert!(s.scanner.scan(&from("93.184.216.34")).await.unwrap().is_empty(), "score 3 is low");
    assert!(s.scanner.scan(&from("8.8.8.8")).await.unwrap().is_empty(), "whitelisted");
    assert_eq!(s.server.requests(), 4);

    assert_eq!(s.scanner.scan(&from("185.220.101.34")).await.unwrap(), high);
    assert_eq!(s.scanner.scan(&from("2a06:4883:1000::52")).await.unwrap(), medium);
    assert_eq!(s.server.requests(), 4, "cache hits");
    s.clock.advance(chrono::Duration::hours(6));
    s.scanner.scan(&from("185.220.101.34")).await.unwrap();
    assert_eq!(s.server.requests(), 5, "kept six hours");
    let health = s.scanner.health().await.unwrap();
    assert!(
        health.contains("5 lookups, 2 cache hits") && health.contains("997 requests left"),
        "{health}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_a_scan_error() {
    let s = setup("wrong-key").await;
    let err = s.scanner.scan(&from("185.220.101.34")).await.unwrap_err().to_string();
    assert!(err.contains("401") && err.contains("Authentication failed"), "{err}");
    assert_eq!(s.scanner.failure_mode(), FailureMode::Open);
    s.scanner.scan(&from("185.220.101.34")).await.unwrap_err();
    assert_eq!(s.server.requests(), 2, "errors are not cached");
}

#[tokio::test]
async fn non_public_senders_are_never_sent() {
    let s = setup(KEY).await;
    for ip in [
        "10.1.2.3",
        "127.0.0.1",
        "192.168.0.9",
        "100.64.0.1",
        "169.254.1.1",
        "203.0.113.9",
        "::1",
        "fe80::1",
        "fd00::5",
        "::ffff:10.0.0.1",
    ] {
        assert!(s.scanner.scan(&from(ip)).await.unwrap().is_empty(), "{ip}");
    }
    assert!(s.scanner.scan(&ScanInput::default()).await.unwrap().is_empty());
    assert_eq!(s.server.requests(), 0);
}

#[tokio::test]
async fn rate_limited_means_no_requests_until_the_pause_ends() {
    let s = setup(KEY).await;
    let err = s.scanner.scan(&from(LIMITED_IP)).await.unwrap_err().to_string();
    assert!(err.contains("rate-limited") && err.contains("429"), "{err}");
    let err = s.scanner.scan(&from("185.220.101.34")).await.unwrap_err().to_string();
    assert!(err.contains("rate-limited until 2026-11-22 13:00:00"), "{err}");
    assert_eq!(s.server.requests(), 1, "no request while paused");
    let health = s.scanner.health().await.unwrap_err().to_string();
    assert!(
        health.contains("rate-limited until") && health.contains("0 requests left"),
        "{health}"
    );
    s.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(s.scanner.scan(&from("185.220.101.34")).await.unwrap().len(), 1);
    assert_eq!(s.server.requests(), 2);
}

#[test]
fn public_addresses() {
    for ip in ["185.220.101.34", "8.8.8.8", "2a06:4883:1000::52", "::ffff:8.8.8.8"] {
        assert!(is_public(ip.parse().unwrap()), "{ip}");
    }
    for ip in [
        "0.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.0.1",
        "100.127.255.1",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "64:ff9b::1.2.3.4",
        "::ffff:192.168.0.1",
    ] {
        assert!(!is_public(ip.parse().unwrap()), "{ip}");
    }
}

#[test]
fn whitelisted_overrides_the_score() {
    let r: Report =
        serde_json::from_str(r#"{"abuseConfidenceScore":90,"isWhitelisted":true,"totalReports":5,"numDistinctUsers":2}"#).unwrap();
    assert_eq!(judge("1.2.3.4", &r), None);
    let r = Report { is_whitelisted: None, ..r };
    assert_eq!(judge("1.2.3.4", &r).unwrap().tag, TAG_HIGH);
    let r = Report {
        abuse_confidence_score: 25,
        ..r
    };
    assert_eq!(judge("1.2.3.4", &r).unwrap().tag, TAG_MEDIUM);
    let r = Report {
        abuse_confidence_score: 24,
        ..r
    };
    assert_eq!(judge("1.2.3.4", &r), None);
}

/// Issue 16, hole 2: a literal-IP base URL skipped the SSRF check and got the key.
#[tokio::test]
async fn issue_16_a_literal_ip_base_never_gets_the_key() {
    let server = FixtureServer::start(abuseipdb_service).await;
    let clock = TestClock::new("2026-11-22T12:00:00Z".parse().unwrap());
    let shared: SharedClock = Arc::new(clock);
    let cache = Arc::new(MemoryCache::new(shared.clone()));
    let base = format!("{}/api/v2/", server.base.replace("127.0.0.1", "2130706433"));
    let scanner = AbuseIpdbScanner::new(crate::intel::rep::testserver::guarded_client(), &base, KEY, cache, shared);
    let err = scanner.scan(&from("185.220.101.34")).await.unwrap_err().to_string();
    assert!(err.contains("refused"), "{err}");
    assert_eq!(server.requests(), 0, "nothing reached the fixture");
}
