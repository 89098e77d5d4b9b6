//! Router tests: every route in the table, driven with `oneshot`.

use super::*;
use crate::clock::{SharedClock, TestClock};
use crate::config::Settings;
use crate::store::Store;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

mod attacks;
mod campaigns;
mod export;
mod incidents;
mod learning;
mod live;
mod owner;
mod purge;
mod roles;
mod settings;
mod triage;

const PASSWORD: &str = "correct horse battery staple";

struct Fixture {
    app: Router,
    state: AppState,
    clock: TestClock,
    _dir: tempfile::TempDir,
}

/// One account and one quarantined message with an HTML body and a stored
/// copy, so that list, drawer, preview and download routes render for real.
async fn seed(store: &Store, settings: &Settings) {
    use crate::domain::{Action, Decision, MessageKey, Verdict};
    use crate::store::{MessageMeta, NewMessage};
    let acct: crate::config::AccountConfig = serde_json::from_value(serde_json::json!({
        "name": "alice", "host": "127.0.0.1", "port": 143, "tls": "plain", "tls_skip_verify": false, "ca_file": null,
        "user": "alice", "pass": "secret", "folders": ["INBOX"], "quarantine_folder": "Quarantine",
        "hold_folder": "Postern-Held", "mode": "enforce", "start_at": "New"
    }))
    .unwrap();
    store.upsert_account(&acct, "config").await.unwrap();
    let raw = b"From: Mallory <m@evil.example>\r\nSubject: <b>hello</b>\r\nMessage-ID: <x@evil.example>\r\n\
        Content-Type: text/html\r\n\r\n<p>Hi <a href=\"https://evil.example/x\">there</a><script>alert(1)</script></p>\r\n";
    let path = crate::store::eml::store(&settings.eml_dir, "alice", "ab", raw).unwrap();
    let new = NewMessage {
        key: MessageKey {
            account: "alice".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid: 1,
        },
        meta: MessageMeta {
            message_id: Some("x@evil.example".into()),
            sha256: "ab".into(),
            size: raw.len() as u64,
            from: Some("m@evil.example".into()),
            subject: Some("<b>hello</b>".into()),
            internal_date: None,
        },
    };
    let d = Decision {
        verdict: Verdict::Quarantine,
        tags: vec!["LIST_SENDER_BLOCKED".into()],
        reason: "blocked".into(),
        ..Default::default()
    };
    let action = Action::Quarantine {
        folder: "Quarantine".into(),
    };
    let (_, intent) = store
        .record_decision(&new, &d, Some(&action), false, Some(path.to_string_lossy().into_owned()))
        .await
        .unwrap();
    assert!(intent.is_some());
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// A fixture whose environment `adjust` changes first.
async fn fixture_with(adjust: impl FnOnce(&mut Settings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().into());
    let shared: SharedClock = Arc::new(clock.clone());
    let mut settings = Settings::for_data_dir(dir.path().to_path_buf(), [7u8; 32]);
    // Cost 4 keeps the test fast; production hashes use cost 12.
    settings.admin_password_hash = Some(bcrypt::hash(PASSWORD, 4).unwrap());
    settings.web.insecure_cookies = true;
    settings.web.login_max_failures = 3;
    adjust(&mut settings);
    let store = Store::open(&settings.db_path, &settings.db_key, shared.clone()).unwrap();
    seed(&store, &settings).await;
    let rt = Runtime::assemble(Arc::new(settings.clone()), Default::default(), store, shared)
        .await
        .unwrap();
    let st = AppState::new(rt, settings.web.clone(), CancellationToken::new()).unwrap();
    Fixture {
        app: router(st.clone()),
        state: st,
        clock,
        _dir: dir,
    }
}

fn req(method: &Method, path: &str, ip: &str) -> axum::http::request::Builder {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    Request::builder().method(method.clone()).uri(path).extension(ConnectInfo(addr))
}

async fn send(app: &Router, r: Request<Body>) -> Response<Body> {
    app.clone().oneshot(r).await.unwrap()
}

async fn text(r: Response<Body>) -> String {
    String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

fn set_cookie(r: &Response<Body>, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[i..].split('"').next().unwrap().to_string()
}

/// Logs in as the environment's admin; returns the session cookie and its
/// CSRF token.
async fn login(app: &Router, ip: &str, password: &str) -> Result<(String, String), StatusCode> {
    login_as(app, ip, "", password).await
}

/// Logs in as `user` (empty: the form left blank, i.e. the environment's admin).
async fn login_as(app: &Router, ip: &str, user: &str, password: &str) -> Result<(String, String), StatusCode> {
    let page = send(app, req(&Method::GET, "/login", ip).body(Body::empty()).unwrap()).await;
    let cookie = set_cookie(&page, "postern_login").unwrap();
    let token = hidden(&text(page).await, "_csrf");
    let body = format!(
        "_csrf={token}&username={}&password={}",
        auth::urlencode(user),
        auth::urlencode(password)
    );
    let r = send(
        app,
        req(&Method::POST, "/login", ip)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    if r.status() != StatusCode::SEE_OTHER {
        return Err(r.status());
    }
    let session = set_cookie(&r, "postern_session").unwrap();
    let home = send(
        app,
        req(&Method::GET, "/", ip)
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(home.status(), StatusCode::OK);
    let html = text(home).await;
    let i = html.find("name=\"csrf-token\" content=\"").unwrap() + 27;
    let csrf = html[i..].split('"').next().unwrap().to_string();
    Ok((session, csrf))
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{name}", "nobody")
        .replace("{key}", "rspamd_password")
        .replace("{file}", "app.css")
}

fn assert_hardened(r: &Response<Body>, what: &str) {
    let h = r.headers();
    for name in [
        "x-content-type-options",
        "referrer-policy",
        "permissions-policy",
        "strict-transport-security",
    ] {
        assert!(h.contains_key(name), "{what}: missing {name}");
    }
    let csp = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors"), "{what}: CSP without frame-ancestors: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        assert!(csp.contains("'nonce-"), "{what}: HTML without a nonce CSP: {csp}");
    }
}

#[tokio::test]
async fn every_session_route_refuses_anonymous_callers() {
    let f = fixture().await;
    for (spec, _) in routes().into_iter().filter(|(s, _)| s.access.role().is_some()) {
        let r = send(
            &f.app,
            req(&spec.method, &concrete(spec.path), "127.0.0.1").body(Body::empty()).unwrap(),
        )
        .await;
        let s = r.status();
        let to_login = s == StatusCode::SEE_OTHER && r.headers().get(header::LOCATION).is_some_and(|l| l == "/login");
        assert!(s == StatusCode::UNAUTHORIZED || to_login, "{} {} gave {s}", spec.method, spec.path);
        assert_hardened(&r, spec.path);
    }
}

#[tokio::test]
async fn every_unsafe_route_needs_the_csrf_token() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let unsafe_routes: Vec<_> = routes()
        .into_iter()
        .filter(|(s, _)| s.method != Method::GET && (s.access.role().is_some() || s.access == Access::Public))
        .collect();
    assert!(unsafe_routes.len() > 20, "the table lost routes");
    for (spec, _) in unsafe_routes {
        let path = concrete(spec.path);
        for (ct, body) in [
            ("application/json", "{}".to_string()),
            ("application/x-www-form-urlencoded", format!("_csrf=wrong{csrf}")),
        ] {
            let r = send(
                &f.app,
                req(&spec.method, &path, "127.0.0.1")
                    .header(header::COOKIE, &session)
                    .header(header::CONTENT_TYPE, ct)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{} {} ({ct}) without a valid token",
                spec.method,
                spec.path
            );
            assert_hardened(&r, spec.path);
        }
    }
    // The same token in the header is accepted (the request then fails or
    // succeeds on its merits, but not with 403).
    let r = send(
        &f.app,
        req(&Method::PUT, "/api/settings", "127.0.0.1")
            .header(header::COOKIE, &session)
            .header("x-csrf-token", &csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"threshold_flag": 4.5}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("4.5"));
}

#[tokio::test]
async fn every_get_route_answers_with_hardened_headers() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    for (spec, _) in routes().into_iter().filter(|(s, _)| s.method == Method::GET) {
        let r = send(
            &f.app,
            req(&spec.method, &concrete(spec.path), "127.0.0.1")
                .header(header::COOKIE, &session)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(!r.status().is_server_error(), "{} gave {}", spec.path, r.status());
        assert_hardened(&r, spec.path);
    }
    let r = send(&f.app, req(&Method::GET, "/no/such/page", "127.0.0.1").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_hardened(&r, "404");
}

#[tokio::test]
async fn cidr_gates_metrics_and_scan_api() {
    let f = fixture().await;
    for (method, path) in [(Method::GET, "/metrics"), (Method::POST, "/api/scan")] {
        let body = || Body::from("From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n");
        let outside = send(&f.app, req(&method, path, "192.0.2.9").body(body()).unwrap()).await;
        assert_eq!(outside.status(), StatusCode::FORBIDDEN, "{path} from outside");
        let inside = send(&f.app, req(&method, path, "127.0.0.1").body(body()).unwrap()).await;
        assert_eq!(inside.status(), StatusCode::OK, "{path} from loopback");
        let t = text(inside).await;
        assert!(t.contains("postern_") || t.contains("\"verdict\""), "{path}: {t}");
    }
}

#[tokio::test]
async fn login_locks_out_after_repeated_failures_and_sessions_expire() {
    let f = fixture().await;
    assert_eq!(login(&f.app, "192.0.2.1", "wrong password").await, Err(StatusCode::UNAUTHORIZED));
    assert_eq!(login(&f.app, "192.0.2.1", "wrong password").await, Err(StatusCode::UNAUTHORIZED));
    assert_eq!(login(&f.app, "192.0.2.1", "wrong password").await, Err(StatusCode::UNAUTHORIZED));
    assert_eq!(
        login(&f.app, "192.0.2.1", PASSWORD).await,
        Err(StatusCode::TOO_MANY_REQUESTS),
        "locked out even with the right password"
    );
    assert!(login(&f.app, "192.0.2.2", PASSWORD).await.is_ok(), "another address is not locked");
    f.clock.advance(chrono::Duration::minutes(16));
    let (session, _) = login(&f.app, "192.0.2.1", PASSWORD).await.expect("lockout expired");
    let ok = send(
        &f.app,
        req(&Method::GET, "/api/status", "192.0.2.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    f.clock.advance(chrono::Duration::minutes(31));
    let idle = send(
        &f.app,
        req(&Method::GET, "/api/status", "192.0.2.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(idle.status(), StatusCode::UNAUTHORIZED, "idle timeout");
}

#[tokio::test]
async fn login_form_needs_its_own_token() {
    let f = fixture().await;
    let r = send(
        &f.app,
        req(&Method::POST, "/login", "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("password={}", auth::urlencode(PASSWORD))))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn password_change_ends_other_sessions() {
    let f = fixture().await;
    let (a, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (b, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let body = serde_json::json!({"current": PASSWORD, "new": "a much better passphrase", "confirm": "a much better passphrase"});
    let r = send(
        &f.app,
        req(&Method::POST, "/api/password", "127.0.0.1")
            .header(header::COOKIE, &a)
            .header("x-csrf-token", &csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", text(r).await);
    let get = |s: String| {
        req(&Method::GET, "/api/status", "127.0.0.1")
            .header(header::COOKIE, s)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&f.app, get(a)).await.status(), StatusCode::OK, "the changing session stays");
    assert_eq!(
        send(&f.app, get(b)).await.status(),
        StatusCode::UNAUTHORIZED,
        "others are logged out"
    );
    assert_eq!(login(&f.app, "127.0.0.1", PASSWORD).await, Err(StatusCode::UNAUTHORIZED));
    assert!(login(&f.app, "127.0.0.1", "a much better passphrase").await.is_ok());
}

#[tokio::test]
async fn openapi_documents_every_api_route() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
    for (spec, _) in routes().into_iter().filter(|(s, _)| s.path.starts_with("/api/")) {
        let m = spec.method.as_str().to_ascii_lowercase();
        assert!(
            doc["paths"][spec.path][&m].is_object(),
            "{} {} is not in openapi.json",
            spec.method,
            spec.path
        );
    }
}

#[tokio::test]
async fn pages_render_real_rows_escaped() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let get = |p: &str| {
        req(&Method::GET, p, "127.0.0.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap()
    };
    for path in ["/", "/quarantine", "/accounts", "/messages/1/drawer", "/audit"] {
        let r = send(&f.app, get(path)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let t = text(r).await;
        assert!(!t.contains("<b>hello</b>"), "{path} must escape the subject");
    }
    let preview = send(&f.app, get("/messages/1/preview")).await;
    let csp = preview.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(csp.contains("sandbox") && csp.contains("frame-ancestors 'self'"), "{csp}");
    let body = text(preview).await;
    assert!(
        body.contains("Hi") && !body.contains("<script") && !body.contains("evil.example/x"),
        "{body}"
    );
    let eml = send(&f.app, get("/messages/1/eml")).await;
    assert_eq!(eml.headers()[header::CONTENT_TYPE], "message/rfc822");
    assert!(text(eml).await.contains("Message-ID: <x@evil.example>"));
}

#[tokio::test]
async fn open_event_streams_do_not_block_shutdown() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_on(f.state.clone(), listener));
    let http = reqwest::Client::new();
    let stream = http
        .get(format!("http://{addr}/events"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    f.state.shutdown.cancel();
    // A liveness bound, not a speed goal: without the fix this never returns.
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "server did not stop with an open stream: {done:?}");
    drop(stream);
}

/// Issue 16, hole 1: the lockout was checked before bcrypt and the failure
/// recorded after, so parallel wrong passwords were all evaluated. Now at
/// most `limit` of them reach bcrypt; the rest get 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_16_parallel_wrong_passwords_cannot_outrun_the_lockout() {
    let f = fixture().await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let app = f.app.clone();
        set.spawn(async move {
            let r = send(
                &app,
                req(&Method::POST, "/login", "192.0.2.7")
                    .header(header::COOKIE, "postern_login=tok")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("_csrf=tok&password=wrong"))
                    .unwrap(),
            )
            .await;
            r.status()
        });
    }
    let statuses: Vec<StatusCode> = set.join_all().await;
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    let wrong = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!((wrong, refused), (3, 37), "limit is 3: {statuses:?}");
    assert_eq!(f.state.limiter.evaluations(), 3, "bcrypt ran only for reserved attempts");
}

/// Issue 16, hole 6: any `Host` was served (DNS rebinding). Every route
/// refuses a foreign host with 421, hardened like any other response.
#[tokio::test]
async fn issue_16_every_route_refuses_a_foreign_host() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    for (spec, _) in routes() {
        let r = send(
            &f.app,
            req(&spec.method, &concrete(spec.path), "127.0.0.1")
                .header(header::HOST, "attacker.example")
                .header(header::COOKIE, &session)
                .header("x-csrf-token", &csrf)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{} {}", spec.method, spec.path);
        assert_hardened(&r, "421");
    }
    let ok = send(
        &f.app,
        req(&Method::GET, "/metrics", "127.0.0.1")
            .header(header::HOST, "127.0.0.1:8025")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK, "the listen address is a valid host");
}

/// Issue 16, hole 6 (defence in depth): a state-changing request that a
/// browser marks as cross-site is refused even with a valid token.
#[tokio::test]
async fn issue_16_cross_site_writes_are_refused() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let put = |extra: (&'static str, &'static str)| {
        req(&Method::PUT, "/api/settings", "127.0.0.1")
            .header(header::COOKIE, &session)
            .header("x-csrf-token", &csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .header(extra.0, extra.1)
            .body(Body::from(r#"{"threshold_flag": 4.5}"#))
            .unwrap()
    };
    for bad in [
        ("origin", "https://attacker.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = send(&f.app, put(bad)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad:?}");
        assert_hardened(&r, "cross-site");
    }
    for good in [("origin", "http://127.0.0.1:8025"), ("sec-fetch-site", "same-origin")] {
        assert_eq!(send(&f.app, put(good)).await.status(), StatusCode::OK, "{good:?}");
    }
    // What Chromium sends for our own form posts under `Referrer-Policy:
    // no-referrer` (the browser test's login): an opaque origin, marked
    // same-origin. Marked cross-site, the same opaque origin is refused.
    let with = |site: &'static str| {
        let mut r = put(("origin", "null"));
        r.headers_mut().insert("sec-fetch-site", header::HeaderValue::from_static(site));
        r
    };
    assert_eq!(send(&f.app, with("same-origin")).await.status(), StatusCode::OK);
    assert_eq!(send(&f.app, with("cross-site")).await.status(), StatusCode::FORBIDDEN);
}

/// Issue 16, hole 5: responses made by layers (413 from the body limit,
/// 408 from the request timeout) went out without the security headers.
/// Every route that takes a body is walked for both.
#[tokio::test]
async fn issue_16_layer_made_errors_carry_the_headers() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let bodied: Vec<_> = routes().into_iter().filter(|(s, _)| s.method != Method::GET).collect();
    assert!(bodied.len() > 20, "the table lost routes");
    for (spec, _) in &bodied {
        let r = send(
            &f.app,
            req(&spec.method, &concrete(spec.path), "127.0.0.1")
                .header(header::COOKIE, &session)
                .header("x-csrf-token", &csrf)
                .header(header::CONTENT_LENGTH, security::BODY_LIMIT + 1)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{} {}", spec.method, spec.path);
        assert_hardened(&r, "413");
    }
    // A body that never finishes: paused time jumps to the deadline as soon
    // as nothing else can run, so this proves the 408 without waiting.
    tokio::time::pause();
    for (spec, _) in &bodied {
        let never = Body::from_stream(futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>());
        let r = send(
            &f.app,
            req(&spec.method, &concrete(spec.path), "127.0.0.1")
                .header(header::COOKIE, &session)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(never)
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT, "{} {}", spec.method, spec.path);
        assert_hardened(&r, "408");
    }
}

/// A local server that records the `Password` header of every request and
/// answers with `reply`.
async fn recorder(reply: Response<Body>) -> (String, Arc<std::sync::Mutex<Vec<Option<String>>>>) {
    let seen: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    let (parts, body) = reply.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let app = Router::new().fallback(move |h: axum::http::HeaderMap| {
        let (log, parts, body) = (log.clone(), parts.clone(), body.clone());
        async move {
            log.lock().unwrap().push(h.get("password").map(|v| v.to_str().unwrap().to_string()));
            Response::from_parts(parts, Body::from(body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn api(f: &Fixture, session: &str, csrf: &str, method: Method, path: &str, body: serde_json::Value) -> (StatusCode, String) {
    let r = send(
        &f.app,
        req(&method, path, "127.0.0.1")
            .header(header::COOKIE, session)
            .header("x-csrf-token", csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    let s = r.status();
    (s, text(r).await)
}

/// Issue 16, hole 3: the Rspamd client followed a cross-origin 307 and
/// re-sent `Password`, and showed the admin the upstream body; a changed
/// controller URL received the stored password.
#[tokio::test]
async fn issue_16_the_controller_password_never_leaves_its_endpoint() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (elsewhere, elsewhere_seen) = recorder(Response::new(Body::from("{}"))).await;
    let redirect = Response::builder()
        .status(307)
        .header(header::LOCATION, format!("{elsewhere}/learnspam"))
        .body(Body::from("<html>upstream secret page</html>"))
        .unwrap();
    let (controller, seen) = recorder(redirect).await;
    let put = |url: &str| serde_json::json!({ "rspamd_controller_url": url });
    assert_eq!(
        api(&f, &session, &csrf, Method::PUT, "/api/settings", put(&controller)).await.0,
        StatusCode::OK
    );
    let secret = serde_json::json!({ "value": "controller-pw" });
    let (s, _) = api(&f, &session, &csrf, Method::PUT, "/api/settings/secrets/rspamd_password", secret).await;
    assert_eq!(s, StatusCode::OK);

    let (s, body) = api(
        &f,
        &session,
        &csrf,
        Method::POST,
        "/api/messages/1/learn-spam",
        serde_json::json!({}),
    )
    .await;
    assert!(!s.is_success(), "a redirect is not a success: {s} {body}");
    assert!(!body.contains("upstream secret page"), "{body}");
    assert_eq!(seen.lock().unwrap().as_slice(), [Some("controller-pw".to_string())]);
    assert!(elsewhere_seen.lock().unwrap().is_empty(), "the redirect was not followed");

    // Moving the controller drops the stored password.
    assert_eq!(
        api(&f, &session, &csrf, Method::PUT, "/api/settings", put(&elsewhere)).await.0,
        StatusCode::OK
    );
    assert_eq!(f.state.rt.rspamd_password().await.unwrap(), None);
    api(
        &f,
        &session,
        &csrf,
        Method::POST,
        "/api/messages/1/learn-spam",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(elsewhere_seen.lock().unwrap().as_slice(), [None], "no password sent to the new URL");
}

/// Issue 16, hole 3: an account moved to another host with an empty
/// password kept the stored one, and "Test login" sent it there.
#[tokio::test]
async fn issue_16_moving_an_account_needs_its_password_again() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let acct = |host: &str, pass: &str| serde_json::json!({ "name": "bob", "host": host, "port": "1", "tls": "plain", "user": "bob", "pass": pass, "folders": "INBOX" });
    let (s, body) = api(&f, &session, &csrf, Method::POST, "/api/accounts", acct("127.0.0.1", "bob-pw")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/accounts/bob", acct("127.0.0.2", "")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("password again"), "{body}");
    assert_eq!(
        f.state.rt.store().account("bob").await.unwrap().unwrap().host,
        "127.0.0.1",
        "unchanged"
    );
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/accounts/bob", acct("127.0.0.1", "")).await;
    assert_eq!(s, StatusCode::OK, "same server, password kept: {body}");
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/accounts/bob", acct("127.0.0.3", "new-pw")).await;
    assert_eq!(s, StatusCode::OK, "a typed password may go anywhere: {body}");
}

/// Issue 15, defect 7: the account API takes `ca_file` and a pinned
/// fingerprint through the same checks as config.yaml, and a new pin is a
/// new endpoint (the stored password is not sent to a differently trusted
/// server without asking).
#[tokio::test]
async fn issue15_account_api_accepts_ca_file_and_tls_fingerprint() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.pem");
    std::fs::write(&ca, "not checked until connect").unwrap();
    let pin = format!("SHA256:{}", ["AB"; 32].join(":"));
    let acct = |fp: &str, pass: &str| serde_json::json!({ "name": "carol", "host": "imap.example.org", "tls": "implicit", "user": "carol", "pass": pass, "ca_file": ca.to_str().unwrap(), "tls_fingerprint": fp });
    let (s, body) = api(&f, &session, &csrf, Method::POST, "/api/accounts", acct(&pin, "carol-pw")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let stored = f.state.rt.store().account("carol").await.unwrap().unwrap();
    assert_eq!(stored.ca_file.as_deref(), Some(ca.as_path()));
    assert_eq!(stored.tls_fingerprint, Some(format!("sha256:{}", "ab".repeat(32))));
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/accounts/carol", acct("sha256:1234", "")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("tls_fingerprint"), "{body}");
    let other = format!("sha256:{}", "cd".repeat(32));
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/accounts/carol", acct(&other, "")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a new pin needs the password again: {body}");
}

/// Issue 16: `/api/scan` took at most about 2 MB (the extractor default)
/// though the limit is documented as 32 MiB.
#[tokio::test]
async fn issue_16_scan_api_takes_messages_above_two_megabytes() {
    let f = fixture().await;
    let mut raw = b"From: a@b.example\r\nSubject: big\r\n\r\n".to_vec();
    raw.resize(3 * 1024 * 1024, b'a');
    let r = send(&f.app, req(&Method::POST, "/api/scan", "127.0.0.1").body(Body::from(raw)).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Issue 16: `last_seen` was written at most once a minute, so the idle
/// expiry could fire up to 60 s early.
#[tokio::test]
async fn issue_16_idle_expiry_counts_from_the_last_request() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let get = || {
        req(&Method::GET, "/api/status", "127.0.0.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap()
    };
    f.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(send(&f.app, get()).await.status(), StatusCode::OK);
    // 29 min 30 s after the last request: still inside the 30-minute idle window.
    f.clock.advance(chrono::Duration::seconds(29 * 60 + 30));
    assert_eq!(send(&f.app, get()).await.status(), StatusCode::OK);
    f.clock.advance(chrono::Duration::seconds(30 * 60 + 1));
    assert_eq!(send(&f.app, get()).await.status(), StatusCode::UNAUTHORIZED);
}
