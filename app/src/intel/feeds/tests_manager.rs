//! The manager against a local HTTP server serving the fixtures: conditional
//! refreshes, diffs, failures that keep the last good copy, and an offline
//! restart from the disk cache.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::test_server::{Served, Server, start};
use super::tests_formats::{OPENPHISH, URLHAUS};
use super::{FeedManager, FeedSpec, Format, builtin, parse};
use crate::clock::{Clock, SharedClock, TestClock};
use crate::intel::{FeedEntry, Kind};

fn clock() -> TestClock {
    TestClock::new(DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap())
}

fn manager(specs: Vec<FeedSpec>, dir: &std::path::Path, clock: &TestClock) -> FeedManager {
    let shared: SharedClock = Arc::new(clock.clone());
    let client = crate::intel::net::SafeClient::new(
        crate::intel::net::NetPolicy {
            allow_loopback_for_tests: true,
        },
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    FeedManager::new(specs, client, dir.to_path_buf(), shared)
}

fn urlhaus_at(addr: SocketAddr) -> FeedSpec {
    builtin(
        "urlhaus",
        Some(&format!("http://{addr}/downloads/csv_recent/")),
        None,
        Some("abuse-key"),
    )
    .unwrap()
}

fn entries_of(m: &FeedManager, name: &str) -> Vec<FeedEntry> {
    let all = m.entries();
    all.iter().find(|(n, _)| n == name).map(|(_, e)| e.as_ref().clone()).unwrap()
}

/// The URLhaus fixture with its newest row gone and two new ones (plus an
/// offline one, which adds nothing).
fn urlhaus_v2() -> Vec<u8> {
    let text = String::from_utf8(URLHAUS.to_vec()).unwrap();
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("\"3690005\"")).collect();
    let new = [
        r#""3690008","2026-11-20 11:00:00","http://203.0.113.80/mozi.m","online","2026-11-20 11:00:00","malware_download","elf,Mozi","https://urlhaus.abuse.ch/url/3690008/","geenensp""#,
        r#""3690007","2026-11-20 10:59:00","https://files.drop.test/a.exe","online","2026-11-20 10:59:00","malware_download","exe","https://urlhaus.abuse.ch/url/3690007/","abuse_ch""#,
        r#""3690006","2026-11-20 10:58:00","http://198.51.100.99/dead","offline","","malware_download","elf","https://urlhaus.abuse.ch/url/3690006/","abuse_ch""#,
    ];
    let at = lines.iter().position(|l| !l.starts_with('#')).unwrap();
    for (i, row) in new.iter().enumerate() {
        lines.insert(at + i, row);
    }
    (lines.join("\n") + "\n").into_bytes()
}

#[tokio::test]
async fn conditional_refreshes_diffs_failures_and_an_offline_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = "/downloads/csv_recent/";
    let server = Server::default();
    server.set(path, Served::new(URLHAUS, "\"v1\""));
    let (addr, task) = start(server.clone()).await;
    let m = manager(vec![urlhaus_at(addr)], dir.path(), &clock);
    let v1 = parse(Format::UrlhausCsv, URLHAUS).unwrap();

    // First download: everything is new.
    let report = m.refresh_all().await;
    assert_eq!(report.changes.len(), 1);
    let c = &report.changes[0];
    assert_eq!(
        (c.name.as_str(), c.error.as_deref(), c.not_modified, c.removed),
        ("urlhaus", None, false, 0)
    );
    assert_eq!(c.added, v1);
    assert_eq!(entries_of(&m, "urlhaus"), v1);
    let seen = server.get(path);
    assert_eq!(seen.requests, 1);
    assert_eq!(seen.if_none_match, vec![None], "nothing cached yet, so nothing conditional");
    assert_eq!(seen.auth_key, vec![Some("abuse-key".to_string())]);
    let st = &m.status()[0];
    assert_eq!(
        (st.entries, st.last_refresh, st.last_error.as_deref()),
        (4, Some(clock.now()), None)
    );
    assert_eq!(std::fs::read(dir.path().join("urlhaus.data")).unwrap(), URLHAUS);
    assert!(dir.path().join("urlhaus.json").exists());

    // Unchanged: the validators go back and a 304 keeps the same data.
    clock.advance(Duration::hours(1));
    let before = m.entries()[0].1.clone();
    let c = m.refresh("urlhaus").await.unwrap();
    assert!(c.not_modified && c.added.is_empty() && c.removed == 0 && c.error.is_none(), "{c:?}");
    assert!(Arc::ptr_eq(&before, &m.entries()[0].1), "a 304 keeps the very same entries");
    let seen = server.get(path);
    assert_eq!(seen.requests, 2);
    assert_eq!(seen.if_none_match[1].as_deref(), Some("\"v1\""));
    assert_eq!(seen.if_modified_since[1].as_deref(), Some("Fri, 20 Nov 2026 10:05:07 GMT"));
    assert_eq!(m.status()[0].last_refresh, Some(clock.now()), "a 304 is a successful refresh");

    // Changed: two added, one removed.
    clock.advance(Duration::hours(1));
    let v2_body = urlhaus_v2();
    server.with(path, |s| {
        s.body = v2_body.clone();
        s.etag = "\"v2\"".into();
    });
    let c = m.refresh("urlhaus").await.unwrap();
    assert_eq!(
        c.added,
        vec![
            FeedEntry {
                kind: Kind::Url,
                value: "http://203.0.113.80/mozi.m".into()
            },
            FeedEntry {
                kind: Kind::Url,
                value: "https://files.drop.test/a.exe".into()
            },
        ]
    );
    assert_eq!((c.removed, c.not_modified, c.error.as_deref()), (1, false, None));
    let v2 = parse(Format::UrlhausCsv, &v2_body).unwrap();
    assert_eq!(v2.len(), 5);
    assert_eq!(entries_of(&m, "urlhaus"), v2);
    let good_at = clock.now();

    // Server error: the last good entries stay, the error is reported.
    clock.advance(Duration::hours(1));
    server.with(path, |s| s.status = 500);
    let c = m.refresh("urlhaus").await.unwrap();
    assert!(c.error.as_deref().unwrap().contains("500"), "{c:?}");
    assert!(c.added.is_empty() && c.removed == 0 && !c.not_modified);
    assert_eq!(entries_of(&m, "urlhaus"), v2);
    let st = &m.status()[0];
    assert!(st.last_error.as_deref().unwrap().contains("500"));
    assert_eq!(
        (st.last_refresh, st.last_attempt, st.entries),
        (Some(good_at), Some(clock.now()), 5)
    );

    // A 200 with an error page in it: the same.
    server.with(path, |s| {
        s.status = 200;
        s.body = b"<html><body><h1>Maintenance</h1></body></html>\n".to_vec();
        s.etag = "\"v3\"".into();
    });
    let c = m.refresh("urlhaus").await.unwrap();
    assert!(c.error.as_deref().unwrap().contains("unreadable answer from urlhaus"), "{c:?}");
    assert_eq!(entries_of(&m, "urlhaus"), v2);
    assert_eq!(
        std::fs::read(dir.path().join("urlhaus.data")).unwrap(),
        v2_body,
        "the cache keeps the good copy"
    );
    assert!(m.status()[0].last_error.is_some());

    // The validators are still the last good download's; a 304 clears the error.
    clock.advance(Duration::hours(1));
    server.with(path, |s| {
        s.body = v2_body.clone();
        s.etag = "\"v2\"".into();
    });
    let c = m.refresh("urlhaus").await.unwrap();
    assert!(c.not_modified, "{c:?}");
    assert_eq!(server.get(path).if_none_match.last().unwrap().as_deref(), Some("\"v2\""));
    assert_eq!(m.status()[0].last_error, None);
    let checked_at = clock.now();
    let requests = server.get(path).requests;

    // Restart with the server gone: the cache alone restores the feed.
    task.abort();
    let _ = task.await;
    clock.advance(Duration::hours(1));
    let restarted = manager(vec![urlhaus_at(addr)], dir.path(), &clock);
    assert!(entries_of(&restarted, "urlhaus").is_empty());
    restarted.load_cached();
    assert_eq!(entries_of(&restarted, "urlhaus"), v2);
    let st = &restarted.status()[0];
    assert_eq!((st.entries, st.last_refresh, st.last_error.as_deref()), (5, Some(checked_at), None));
    let c = restarted.refresh("urlhaus").await.unwrap();
    assert!(c.error.is_some(), "nothing listens any more: {c:?}");
    assert_eq!(entries_of(&restarted, "urlhaus"), v2);
    assert_eq!(server.get(path).requests, requests);
}

#[tokio::test]
async fn feeds_refresh_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    // Each request waits until both are in flight: one-after-the-other
    // refreshing would never get an answer.
    let server = Server {
        barrier: Some(Arc::new(tokio::sync::Barrier::new(2))),
        ..Server::default()
    };
    server.set("/u", Served::new(URLHAUS, "\"u\""));
    server.set("/o", Served::new(OPENPHISH, "\"o\""));
    let (addr, _task) = start(server.clone()).await;
    let specs = vec![
        builtin("urlhaus", Some(&format!("http://{addr}/u")), None, None).unwrap(),
        builtin("openphish", Some(&format!("http://{addr}/o")), None, None).unwrap(),
    ];
    let m = manager(specs, dir.path(), &clock);
    // A liveness bound, not a speed goal.
    let report = tokio::time::timeout(std::time::Duration::from_secs(60), m.refresh_all())
        .await
        .unwrap();
    let names: Vec<_> = report
        .changes
        .iter()
        .map(|c| (c.name.as_str(), c.added.len(), c.error.is_none()))
        .collect();
    assert_eq!(names, vec![("urlhaus", 4, true), ("openphish", 5, true)]);
    assert_eq!(m.entries().iter().map(|(_, e)| e.len()).collect::<Vec<_>>(), vec![4, 5]);
    assert!(m.refresh("nope").await.is_none());
}

#[tokio::test]
async fn a_corrupt_cache_is_reported_and_the_next_download_is_unconditional() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = "/downloads/csv_recent/";
    let server = Server::default();
    server.set(path, Served::new(URLHAUS, "\"v1\""));
    let (addr, _task) = start(server.clone()).await;
    manager(vec![urlhaus_at(addr)], dir.path(), &clock).refresh_all().await;

    std::fs::write(dir.path().join("urlhaus.data"), b"\x00\x01\x02 not a feed").unwrap();
    let m = manager(vec![urlhaus_at(addr)], dir.path(), &clock);
    m.load_cached();
    let st = &m.status()[0];
    assert_eq!(st.entries, 0);
    assert!(st.last_error.as_deref().unwrap().contains("cached copy unusable"), "{st:?}");
    let c = m.refresh("urlhaus").await.unwrap();
    assert_eq!(
        server.get(path).if_none_match.last().unwrap(),
        &None,
        "no 304 may keep a corrupt copy"
    );
    assert_eq!((c.added.len(), c.error.as_deref()), (4, None));
    assert_eq!(m.status()[0].last_error, None);

    std::fs::write(dir.path().join("urlhaus.json"), b"{ truncated").unwrap();
    let m = manager(vec![urlhaus_at(addr)], dir.path(), &clock);
    m.load_cached();
    assert!(m.status()[0].last_error.as_deref().unwrap().contains("metadata"));
}

#[tokio::test]
async fn an_oversized_body_is_refused_whether_announced_or_streamed() {
    for chunked in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let server = Server::default();
        server.set(
            "/feed.txt",
            Served {
                chunked,
                ..Served::new(OPENPHISH, "\"o\"")
            },
        );
        let (addr, _task) = start(server.clone()).await;
        let spec = builtin("openphish", Some(&format!("http://{addr}/feed.txt")), None, None).unwrap();
        let m = manager(vec![spec.clone()], dir.path(), &clock).with_body_limit(OPENPHISH.len() - 1);
        let c = m.refresh("openphish").await.unwrap();
        assert!(c.error.as_deref().unwrap().contains("larger than"), "chunked={chunked}: {c:?}");
        assert!(entries_of(&m, "openphish").is_empty());
        assert!(!dir.path().join("openphish.data").exists());

        // Exactly at the limit is fine, and a streamed body arrives whole.
        let m = manager(vec![spec], dir.path(), &clock).with_body_limit(OPENPHISH.len());
        let c = m.refresh("openphish").await.unwrap();
        assert_eq!((c.added.len(), c.error), (5, None), "chunked={chunked}");
        assert_eq!(std::fs::read(dir.path().join("openphish.data")).unwrap(), OPENPHISH);
    }
}

#[tokio::test]
async fn the_phishtank_key_never_reaches_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let (addr, task) = start(Server::default()).await;
    let spec = || {
        let mut s = builtin("phishtank", None, Some("s3cr3t-key"), None).unwrap();
        s.url = s.url.replace("data.phishtank.com", &addr.to_string());
        s
    };
    let m = manager(vec![spec()], dir.path(), &clock);
    let c = m.refresh("phishtank").await.unwrap();
    assert!(c.error.as_deref().unwrap().contains("404"), "{c:?}");
    assert_eq!(m.status()[0].url, format!("http://{addr}/data/***/online-valid.json"));

    // A transport error names no URL either.
    task.abort();
    let _ = task.await;
    let m = manager(vec![spec()], dir.path(), &clock);
    let c = m.refresh("phishtank").await.unwrap();
    let json = serde_json::to_string(&m.status()).unwrap();
    assert!(c.error.is_some());
    assert!(!json.contains("s3cr3t") && !c.error.unwrap().contains("s3cr3t"), "{json}");
    assert!(json.contains(r#""last_attempt":"2027-01-15T08:00:00.000Z""#), "{json}");
    assert!(json.contains(r#""last_refresh":null"#), "{json}");
}

/// Issue 16, hole 2: a feed URL written as a literal IP skipped the SSRF
/// check. It is refused, and the refusal names no URL (a PhishTank key is
/// part of its path).
#[tokio::test]
async fn issue_16_a_literal_ip_feed_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let server = Server::default();
    server.set("/downloads/csv_recent/", Served::new(URLHAUS, "\"v1\""));
    let (addr, task) = start(server.clone()).await;
    let url = format!("http://2130706433:{}/downloads/csv_recent/", addr.port());
    let spec = builtin("urlhaus", Some(&url), None, Some("abuse-key")).unwrap();
    let shared: SharedClock = Arc::new(clock.clone());
    let guarded = crate::intel::net::SafeClient::new(Default::default(), std::time::Duration::from_secs(30)).unwrap();
    let m = FeedManager::new(vec![spec], guarded, dir.path().to_path_buf(), shared);
    let report = m.refresh_all().await;
    let err = report.changes[0].error.clone().unwrap_or_default();
    assert!(err.contains("refused") && !err.contains("2130706433"), "{err}");
    assert_eq!(server.get("/downloads/csv_recent/").requests, 0);
    task.abort();
}

/// Issue 16: a feed's parse error must not echo the response body onto
/// `/health`.
#[test]
fn issue_16_parse_errors_do_not_quote_the_body() {
    let body = br#"[{"url": "<script>alert('pwned')</script>"}, {"url": 7}]"#;
    let err = parse(Format::PhishTankJson, body).unwrap_err().to_string();
    assert!(!err.contains("script") && !err.contains("pwned"), "{err}");
    let body = b"javascript:alert('pwned')\nnot a url pwned\n";
    let err = parse(Format::OpenPhishText, body).unwrap_err().to_string();
    assert!(!err.contains("pwned"), "{err}");
}
