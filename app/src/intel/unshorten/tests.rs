use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::*;
use crate::intel::net::NetPolicy;

/// One request the fixture saw: method, path, and when (tokio time, so
/// paused-time tests see virtual instants).
type Seen = (Method, String, Instant);

#[derive(Clone)]
struct FixtureState {
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    arrivals: mpsc::UnboundedSender<Seen>,
}

/// A redirecting server on 127.0.0.1.
struct Fixture {
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    arrivals: mpsc::UnboundedReceiver<Seen>,
}

impl Fixture {
    async fn start() -> Fixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, arrivals) = mpsc::unbounded_channel();
        let state = FixtureState {
            port,
            log: log.clone(),
            arrivals: tx,
        };
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fixture { port, log, arrivals }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).unwrap()
    }

    fn requests(&self) -> Vec<(Method, String)> {
        self.log.lock().unwrap().iter().map(|(m, p, _)| (m.clone(), p.clone())).collect()
    }
}

fn redirect(status: u16, location: &str) -> Response {
    let mut r = StatusCode::from_u16(status).unwrap().into_response();
    r.headers_mut().insert("location", HeaderValue::from_str(location).unwrap());
    r
}

async fn handle(State(s): State<FixtureState>, method: Method, uri: Uri) -> Response {
    let seen = (method.clone(), uri.path().to_owned(), Instant::now());
    s.log.lock().unwrap().push(seen.clone());
    let _ = s.arrivals.send(seen);
    let port = s.port;
    let path = uri.path();
    if let Some(n) = path.strip_prefix("/n/") {
        let n: u32 = n.parse().unwrap();
        return redirect(302, &format!("/n/{}", n + 1));
    }
    match path {
        // A three-hop chain: relative, absolute, then path-relative.
        "/a" => redirect(301, "/b"),
        "/b" => redirect(302, &format!("http://127.0.0.1:{port}/c")),
        "/c" => redirect(307, "d"),
        "/d" => "landing".into_response(),
        "/head-405" if method == Method::HEAD => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        "/head-405" => redirect(303, "/d"),
        "/to-private" => redirect(302, "http://10.1.2.3/x"),
        "/to-mapped" => redirect(308, &format!("http://[::ffff:127.0.0.1]:{port}/d")),
        "/no-location" => StatusCode::FOUND.into_response(),
        "/hang" => std::future::pending().await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn unshortener(opts: UnshortenOptions) -> Unshortener {
    let policy = NetPolicy {
        allow_loopback_for_tests: true,
    };
    Unshortener::new(SafeClient::new(policy, Duration::from_secs(5)).unwrap(), opts)
}

fn any_domain() -> UnshortenOptions {
    UnshortenOptions {
        any_domain: true,
        per_second: 0,
        ..UnshortenOptions::default()
    }
}

fn head(path: &str) -> (Method, String) {
    (Method::HEAD, path.to_owned())
}

#[tokio::test]
async fn follows_relative_and_absolute_redirects() {
    let fx = Fixture::start().await;
    let e = unshortener(any_domain()).expand(&fx.url("/a")).await;
    assert_eq!(e.stopped, None);
    assert_eq!(e.start, fx.url("/a"));
    assert_eq!(e.hops, [fx.url("/b"), fx.url("/c"), fx.url("/d")]);
    assert_eq!(e.final_url, fx.url("/d"));
    assert_eq!(fx.requests(), [head("/a"), head("/b"), head("/c"), head("/d")]);
}

#[tokio::test]
async fn a_server_rejecting_head_is_asked_with_get() {
    let fx = Fixture::start().await;
    let e = unshortener(any_domain()).expand(&fx.url("/head-405")).await;
    assert_eq!(e.stopped, None);
    assert_eq!(e.hops, [fx.url("/d")]);
    assert_eq!(
        fx.requests(),
        [head("/head-405"), (Method::GET, "/head-405".to_owned()), head("/d")]
    );
}

#[tokio::test]
async fn the_hop_limit_cuts_a_long_chain() {
    let fx = Fixture::start().await;
    let opts = UnshortenOptions {
        max_hops: 3,
        ..any_domain()
    };
    let e = unshortener(opts).expand(&fx.url("/n/0")).await;
    assert_eq!(e.stopped, Some(Stop::HopLimit));
    assert_eq!(e.hops, [fx.url("/n/1"), fx.url("/n/2"), fx.url("/n/3")]);
    assert_eq!(e.final_url, fx.url("/n/3"));
    assert_eq!(fx.requests().len(), 4);
}

#[tokio::test]
async fn a_redirect_into_a_private_network_is_refused() {
    let fx = Fixture::start().await;
    let e = unshortener(any_domain()).expand(&fx.url("/to-private")).await;
    let private = Url::parse("http://10.1.2.3/x").unwrap();
    assert_eq!(e.hops, std::slice::from_ref(&private));
    assert_eq!(e.final_url, private);
    match e.stopped {
        Some(Stop::Refused(why)) => assert!(why.contains("10.0.0.0/8"), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(fx.requests(), [head("/to-private")]);
}

#[tokio::test]
async fn a_redirect_to_mapped_loopback_is_refused_despite_the_switch() {
    let fx = Fixture::start().await;
    let e = unshortener(any_domain()).expand(&fx.url("/to-mapped")).await;
    let mapped = Url::parse(&format!("http://[::ffff:127.0.0.1]:{}/d", fx.port)).unwrap();
    assert_eq!(e.final_url, mapped);
    match e.stopped {
        Some(Stop::Refused(why)) => assert!(why.contains("IPv4-mapped"), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    // The mapped address is this very server: it must not have been asked.
    assert_eq!(fx.requests(), [head("/to-mapped")]);
}

#[tokio::test]
async fn a_link_off_the_list_is_not_fetched() {
    let fx = Fixture::start().await;
    let u = unshortener(UnshortenOptions {
        per_second: 0,
        ..UnshortenOptions::default()
    });
    let e = u.expand(&fx.url("/a")).await;
    assert_eq!(e.stopped, Some(Stop::NotShortener));
    assert!(e.hops.is_empty());
    assert_eq!(e.final_url, fx.url("/a"));
    assert!(fx.requests().is_empty());
}

#[tokio::test]
async fn extra_domains_are_expanded_through_the_resolver() {
    let fx = Fixture::start().await;
    let opts = UnshortenOptions {
        extra_domains: vec![" LocalHost. ".to_owned()],
        per_second: 0,
        ..UnshortenOptions::default()
    };
    let start = Url::parse(&format!("http://localhost:{}/c", fx.port)).unwrap();
    let e = unshortener(opts).expand(&start).await;
    assert_eq!(e.stopped, None);
    assert_eq!(e.final_url.path(), "/d");
    assert_eq!(fx.requests(), [head("/c"), head("/d")]);
}

#[test]
fn shortener_matching_is_on_the_host_and_its_subdomains() {
    let client = SafeClient::new(NetPolicy::default(), Duration::from_secs(5)).unwrap();
    let opts = UnshortenOptions {
        extra_domains: vec!["Links.Example.".to_owned()],
        ..Default::default()
    };
    let u = Unshortener::new(client, opts);
    let is = |s: &str| u.is_shortener(&Url::parse(s).unwrap());
    for yes in [
        "https://bit.ly/3xYz",
        "http://BIT.LY/abc",
        "https://bit.ly./abc",
        "https://t.co/AbCdEf",
        "https://tinyurl.com/y7abc",
        "https://lnkd.in/eXyZ",
        "https://myapp.page.link/x",
        "https://links.example/go",
        "https://a.links.example/go",
    ] {
        assert!(is(yes), "{yes}");
    }
    for no in [
        "https://example.com/bit.ly",
        "https://evilbit.ly/x",
        "https://bit.ly.evil.example/x",
        "https://notlinks.example/",
        "https://t.com/x",
        "http://127.0.0.1/",
        "mailto:someone@bit.ly",
    ] {
        assert!(!is(no), "{no}");
    }
}

#[tokio::test]
async fn a_redirect_without_location_fails() {
    let fx = Fixture::start().await;
    let e = unshortener(any_domain()).expand(&fx.url("/no-location")).await;
    assert!(
        matches!(&e.stopped, Some(Stop::Failed(m)) if m.contains("without a Location")),
        "{e:?}"
    );
    assert_eq!(e.final_url, fx.url("/no-location"));
}

#[tokio::test]
async fn the_deadline_bounds_a_hanging_hop() {
    let fx = Fixture::start().await;
    // Real time, but no race: the server never answers, so only the
    // deadline (well under the client's 5 s timeout) can end it.
    let opts = UnshortenOptions {
        deadline: Duration::from_millis(200),
        ..any_domain()
    };
    let e = unshortener(opts).expand(&fx.url("/hang")).await;
    assert_eq!(e.stopped, Some(Stop::Deadline));
    assert_eq!(e.final_url, fx.url("/hang"));
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_requests_across_callers() {
    // Paused time normally jumps to the next timer whenever the runtime
    // waits, socket I/O included, which would fire timeouts while a
    // loopback request is in flight. Tokio does not jump while a blocking
    // task runs, so this one keeps the clock still until it is released:
    // time moves only by the advance() calls below.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let holder = tokio::task::spawn_blocking(move || {
        let _ = hold.recv();
    });
    let mut fx = Fixture::start().await;
    let u = unshortener(UnshortenOptions {
        per_second: 2,
        deadline: Duration::from_secs(60),
        ..any_domain()
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (u, url) = (u.clone(), fx.url("/d"));
            tokio::spawn(async move { u.expand(&url).await })
        })
        .collect();
    let mut arrived = Vec::new();
    for k in 0..4 {
        if k > 0 {
            tokio::time::advance(Duration::from_millis(500)).await;
        }
        let (_, _, at) = fx.arrivals.recv().await.unwrap();
        arrived.push(at - start);
    }
    assert_eq!(arrived, [0, 500, 1000, 1500].map(Duration::from_millis));
    for t in tasks {
        let e = t.await.unwrap();
        assert_eq!(e.stopped, None);
        assert_eq!(e.final_url, fx.url("/d"));
    }
    drop(release);
    holder.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_link_gives_up_rather_than_wait_past_its_deadline() {
    // The next slot comes after the link's deadline, so it stops at once
    // and never opens a socket (nothing listens on port 9 anyway).
    let u = unshortener(UnshortenOptions {
        per_second: 1,
        deadline: Duration::from_millis(500),
        ..any_domain()
    });
    // Take the only slot of the coming second.
    assert!(u.limit.acquire(Instant::now()).await);
    let start = Instant::now();
    let e = u.expand(&Url::parse("http://127.0.0.1:9/").unwrap()).await;
    assert_eq!(e.stopped, Some(Stop::Deadline));
    assert_eq!(start.elapsed(), Duration::ZERO);
}
