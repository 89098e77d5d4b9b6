use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::*;

/// A fixture server on 127.0.0.1 that answers "ok" and counts requests.
async fn serve() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/",
            get(|State(hits): State<Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

fn client(allow_loopback_for_tests: bool) -> SafeClient {
    SafeClient::new(NetPolicy { allow_loopback_for_tests }, Duration::from_secs(5)).unwrap()
}

fn assert_refused(r: Result<impl fmt::Debug, IntelError>, reason: &str) {
    match r {
        Err(IntelError::Refused { why, .. }) => {
            assert!(why.contains(reason), "refused for {why:?}, expected {reason:?}")
        }
        other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn literal_loopback_is_refused_without_the_switch() {
    let (port, hits) = serve().await;
    assert_refused(client(false).get(&format!("http://127.0.0.1:{port}/")), "loopback");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn literal_loopback_works_with_the_switch() {
    let (port, hits) = serve().await;
    let c = client(true);
    let resp = c.send(c.get(&format!("http://127.0.0.1:{port}/")).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
    let (port, hits) = serve().await;
    let c = client(false);
    // A host name passes the URL check; only the resolver can refuse it.
    let request = c.get(&format!("http://localhost:{port}/")).unwrap();
    let err = c.send(request).await.unwrap_err();
    match &err {
        IntelError::Refused { target, why } => {
            assert!(target.starts_with("http://localhost:"), "{target}");
            assert!(why.contains("localhost resolves only to refused addresses"), "{why}");
            assert!(why.contains("loopback"), "{why}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_resolver_passes_allowed_addresses_through() {
    let (port, hits) = serve().await;
    let c = client(true);
    let resp = c.send(c.get(&format!("http://localhost:{port}/")).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn mapped_loopback_is_refused_even_with_the_switch() {
    let (port, hits) = serve().await;
    let c = client(true);
    assert_refused(c.get(&format!("http://[::ffff:127.0.0.1]:{port}/")), "IPv4-mapped");
    assert_refused(
        c.request(reqwest::Method::HEAD, &format!("http://[::ffff:7f00:1]:{port}/")),
        "IPv4-mapped",
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn check_url_refuses_what_the_resolver_cannot_see() {
    let c = client(false);
    let refused = [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http://user@example.com/", "credentials"),
        ("https://user:pw@example.com/", "credentials"),
        ("http://:pw@example.com/", "credentials"),
        // The url crate normalises every IPv4 spelling to an address.
        ("http://2130706433/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://0/", "0.0.0.0/8"),
        ("http://[::1]/", "loopback ::1"),
        ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
        ("http://[::ffff:10.0.0.1]/", "IPv4-mapped"),
        ("http://[64:ff9b::a00:1]/", "NAT64"),
        ("http://[fe80::1]/", "link-local"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.1.2.3:8443/", "10.0.0.0/8"),
        ("http://192.168.0.1/", "192.168.0.0/16"),
    ];
    for (url, reason) in refused {
        let parsed = Url::parse(url).unwrap();
        match c.check_url(&parsed) {
            Err(IntelError::Refused { target, why }) => {
                assert!(why.contains(reason), "{url}: {why:?} does not name {reason:?}");
                assert_eq!(target, parsed.to_string());
            }
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
        assert!(c.get(url).is_err(), "{url}");
    }
    for url in [
        "https://example.com/",
        "http://example.com:8080/path?q=1",
        "http://93.184.216.34/",
        "http://[2606:4700::1111]/",
    ] {
        c.check_url(&Url::parse(url).unwrap()).unwrap();
        let _checked = c.get(url).unwrap();
    }
    assert_refused(c.get("not a url"), "not a URL");
}

#[tokio::test]
async fn transport_failures_are_http_errors() {
    // A port nobody listens on any more: connection refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = client(true);
    let err = c.send(c.get(&format!("http://127.0.0.1:{port}/")).unwrap()).await.unwrap_err();
    match err {
        IntelError::Http(msg) => assert!(msg.contains("127.0.0.1"), "{msg}"),
        other => panic!("expected Http, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = Router::new()
        .route("/", get(|| async { (axum::http::StatusCode::FOUND, [("location", "/next")], "") }))
        .route("/next", get(|| async { "followed" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = client(true);
    let resp = c.send(c.get(&format!("http://127.0.0.1:{port}/")).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/next");
}

#[tokio::test]
async fn requests_name_postern_as_the_user_agent() {
    let app =
        Router::new().route(
            "/",
            get(|headers: axum::http::HeaderMap| async move {
                headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = client(true);
    let resp = c.send(c.get(&format!("http://127.0.0.1:{port}/")).unwrap()).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), format!("postern/{}", env!("CARGO_PKG_VERSION")));
}
