//! Issue 22, item 3: every key and rule on the settings page, write-only,
//! audited, in force without a restart, and telling where it comes from.

use super::*;
use crate::intel::rep::testserver::{FixtureServer, Reply, fixture as intel_fixture};
use std::sync::Mutex;

const VT_KEY: &str = "vt-dashboard-key-0123456789";

/// A mock VirusTotal on 127.0.0.1 that records the key of every lookup.
async fn mock_virustotal() -> (FixtureServer, Arc<Mutex<Vec<String>>>) {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = keys.clone();
    let server = FixtureServer::start(move |_uri, headers| {
        let key = headers.get("x-apikey").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        seen.lock().unwrap().push(key);
        Reply::json(404, intel_fixture("virustotal/not-found.json").unwrap())
    })
    .await;
    (server, keys)
}

/// Mail with a zip attachment, which VirusTotal is asked about.
fn with_zip(n: u32) -> Vec<u8> {
    use base64::Engine;
    let zip = base64::engine::general_purpose::STANDARD.encode(format!("PK\x03\x04 not really a zip, number {n}"));
    format!(
        "From: a@sender.example\r\nTo: b@example.test\r\nSubject: invoice {n}\r\nMessage-ID: <vt{n}@t>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: application/zip; name=\"inv{n}.zip\"\r\n\
         Content-Disposition: attachment; filename=\"inv{n}.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {zip}\r\n--XX--\r\n"
    )
    .into_bytes()
}

async fn get_html(f: &Fixture, session: &str, path: &str) -> (StatusCode, String) {
    let r = send(
        &f.app,
        req(&Method::GET, path, "127.0.0.1")
            .header(header::COOKIE, session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let s = r.status();
    (s, text(r).await)
}

/// The settings page's form, sent as the browser sends it.
async fn post_settings_form(f: &Fixture, session: &str, form: String) -> Response<Body> {
    send(
        &f.app,
        req(&Method::POST, "/settings", "127.0.0.1")
            .header(header::COOKIE, session)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
    )
    .await
}

fn secret<'a>(view: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    view["secrets"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap()
}

#[tokio::test]
async fn a_virustotal_key_set_in_the_dashboard_is_used_by_the_next_scan() {
    let (vt, keys) = mock_virustotal().await;
    let f = fixture_with(|s| {
        s.intel.virustotal_url = format!("{}/api/v3", vt.base);
        s.intel.allow_loopback_for_tests = true;
    })
    .await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (_, view) = api(&f, &session, &csrf, Method::GET, "/api/settings", serde_json::json!({})).await;
    let view: serde_json::Value = serde_json::from_str(&view).unwrap();
    assert_eq!(secret(&view, "virustotal_key")["source"], "unset");

    f.state.rt.live().current().scan(with_zip(1)).await;
    assert!(keys.lock().unwrap().is_empty(), "no key, no lookup");

    let (s, body) = api(
        &f,
        &session,
        &csrf,
        Method::PUT,
        "/api/settings/secrets/virustotal_key",
        serde_json::json!({ "value": VT_KEY }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    f.state.rt.live().current().scan(with_zip(2)).await;
    assert_eq!(
        keys.lock().unwrap().as_slice(),
        [VT_KEY.to_string()],
        "the next scan asked with the new key"
    );

    // Write-only: neither the API nor the page nor the audit log shows it.
    let (_, api_view) = api(&f, &session, &csrf, Method::GET, "/api/settings", serde_json::json!({})).await;
    let (s, page) = get_html(&f, &session, "/settings").await;
    assert_eq!(s, StatusCode::OK);
    for shown in [&api_view, &page] {
        assert!(!shown.contains(VT_KEY), "the key is never echoed");
    }
    let view: serde_json::Value = serde_json::from_str(&api_view).unwrap();
    assert_eq!(secret(&view, "virustotal_key")["source"], "dashboard");
    assert_eq!(secret(&view, "virustotal_key")["set"], true);
    let audit = f.state.rt.store().audit_rows(None, Some("secret_changed"), 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "admin:admin", "the real actor");
    assert!(audit[0].detail.contains("virustotal_key") && !audit[0].detail.contains(VT_KEY));

    // Cleared: back to no key, and no more lookups.
    let (s, _) = api(
        &f,
        &session,
        &csrf,
        Method::DELETE,
        "/api/settings/secrets/virustotal_key",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    f.state.rt.live().current().scan(with_zip(3)).await;
    assert_eq!(keys.lock().unwrap().len(), 1, "a cleared key is not used");
    let (_, page) = get_html(&f, &session, "/settings").await;
    assert!(
        page.contains("data-secret-state=\"virustotal_key\"><span class=\"badge badge-muted\">not set"),
        "shown as not set"
    );
}

#[tokio::test]
async fn values_from_the_environment_say_so_and_stay_hidden() {
    let f = fixture_with(|s| {
        s.background.notify.ntfy_token = Some("tk_env_token_value".into());
        s.intel.abusech_key = Some("abusech-env-key".into());
    })
    .await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (s, page) = get_html(&f, &session, "/settings").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.contains("tk_env_token_value") && !page.contains("abusech-env-key"));
    assert!(
        page.contains("data-secret-state=\"ntfy_token\"><span class=\"badge badge-pass\">set (environment)"),
        "{page}"
    );
    assert!(page.contains("POSTERN_NTFY_TOKEN"));
    let (_, view) = api(&f, &session, &csrf, Method::GET, "/api/settings", serde_json::json!({})).await;
    let view: serde_json::Value = serde_json::from_str(&view).unwrap();
    assert_eq!(secret(&view, "abusech_key")["source"], "environment");
    assert_eq!(secret(&view, "webhook_secret")["source"], "unset");

    // The dashboard's value wins; clearing it falls back to the environment's.
    let (s, _) = api(
        &f,
        &session,
        &csrf,
        Method::PUT,
        "/api/settings/secrets/ntfy_token",
        serde_json::json!({ "value": "tk_dash" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        f.state.rt.background().current().settings.notify.ntfy_token.as_deref(),
        Some("tk_dash")
    );
    let (_, view) = api(&f, &session, &csrf, Method::GET, "/api/settings", serde_json::json!({})).await;
    let view: serde_json::Value = serde_json::from_str(&view).unwrap();
    assert_eq!(secret(&view, "ntfy_token")["source"], "dashboard");
    assert_eq!(secret(&view, "ntfy_token")["env_set"], true);
    api(
        &f,
        &session,
        &csrf,
        Method::DELETE,
        "/api/settings/secrets/ntfy_token",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(
        f.state.rt.background().current().settings.notify.ntfy_token.as_deref(),
        Some("tk_env_token_value")
    );

    // A value that would break a header, or a key nobody knows, is refused.
    for (path, value) in [
        ("/api/settings/secrets/webhook_secret", "a\r\nX-Injected: 1"),
        ("/api/settings/secrets/no_such_key", "x"),
    ] {
        let (s, _) = api(&f, &session, &csrf, Method::PUT, path, serde_json::json!({ "value": value })).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test]
async fn rules_schedule_retention_and_feeds_apply_without_restart() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let put = serde_json::json!({
        "retention_clean_days": 5,
        "digest_at": "06:15",
        "ntfy_verdicts": ["delete"],
        "notify_mask": true,
        "feeds": [],
    });
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/settings", put).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let bg = f.state.rt.background().current();
    assert_eq!(bg.settings.maintenance.clean_days, 5);
    assert_eq!(bg.settings.digest.at.format("%H:%M").to_string(), "06:15");
    assert_eq!(bg.settings.notify.ntfy_verdicts, vec![crate::domain::Verdict::Delete]);
    assert!(bg.settings.notify.mask);
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["rules"]["digest_at"], "06:15");

    // Held mail's copy may not go before the mail leaves the hold folder.
    let bad = serde_json::json!({ "retention_held_days": 3, "hold_expunge_days": 10 });
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/settings", bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        f.state.rt.background().current().settings.maintenance.clean_days,
        5,
        "a refused change changes nothing"
    );

    // The form: one box ticked, a rule, a time.
    let form = format!(
        "_csrf={csrf}&rules_shown=1&scanner_rspamd=on&scanner_clamav=on&scanner_yara=on&feed_openphish=on\
         &webhook_quarantine=on&digest_at=07%3A45&retention_clean_days=9"
    );
    let r = post_settings_form(&f, &session, form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        !r.headers()[header::LOCATION].to_str().unwrap().contains("err="),
        "{:?}",
        r.headers()
    );
    assert_eq!(f.state.rt.feeds_enabled(), vec!["openphish".to_string()]);
    let bg = f.state.rt.background().current();
    assert_eq!(bg.settings.digest.at.format("%H:%M").to_string(), "07:45");
    assert_eq!(bg.settings.notify.webhook_verdicts, vec![crate::domain::Verdict::Quarantine]);
    let changed = f.state.rt.store().audit_rows(None, Some("setting_changed"), 10).await.unwrap();
    assert!(changed.iter().all(|a| a.actor == "admin:admin") && changed.len() >= 2);
}

#[tokio::test]
async fn notification_urls_are_set_in_the_dashboard_and_credentials_in_them_are_refused() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let put = serde_json::json!({
        "ntfy_url": "https://ntfy.example.org/postern-alerts",
        "webhook_url": "https://hooks.example.org/postern",
    });
    let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/settings", put).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let n = f.state.rt.background().current().settings.notify.clone();
    assert_eq!(n.ntfy_url.as_deref(), Some("https://ntfy.example.org/postern-alerts"));
    assert_eq!(n.webhook_url.as_deref(), Some("https://hooks.example.org/postern"));
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["rules"]["webhook_url"], "https://hooks.example.org/postern");

    // Not http(s), no host, credentials in the URL, a header break: refused,
    // and the URLs in force stay as they were.
    for bad in [
        serde_json::json!({ "ntfy_url": "file:///etc/passwd" }),
        serde_json::json!({ "ntfy_url": "https://" }),
        serde_json::json!({ "webhook_url": "https://user:hunter2@hooks.example.org/x" }),
        serde_json::json!({ "webhook_url": "https://hooks.example.org/x\r\nX-Injected: 1" }),
        serde_json::json!({ "webhook_url": "not a url" }),
    ] {
        let (s, body) = api(&f, &session, &csrf, Method::PUT, "/api/settings", bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(!body.contains("hunter2"), "a refused URL's password is not echoed: {body}");
    }
    let n = f.state.rt.background().current().settings.notify.clone();
    assert_eq!(n.webhook_url.as_deref(), Some("https://hooks.example.org/postern"));

    // The form: an empty field falls back to the environment's (none here).
    let form = format!("_csrf={csrf}&rules_shown=1&scanner_rspamd=on&scanner_clamav=on&scanner_yara=on&ntfy_url=&webhook_url=");
    let r = post_settings_form(&f, &session, form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let n = f.state.rt.background().current().settings.notify.clone();
    assert_eq!((n.ntfy_url, n.webhook_url), (None, None), "cleared: the environment has none");
}

#[tokio::test]
async fn only_an_admin_may_read_or_set_settings() {
    let f = fixture().await;
    let store = f.state.rt.store();
    assert!(
        store
            .add_user("ana", "analyst", &bcrypt::hash("analyst horse battery", 4).unwrap(), "test")
            .await
            .unwrap()
    );
    let (ana, csrf) = login_as(&f.app, "127.0.0.1", "ana", "analyst horse battery").await.unwrap();
    let (s, _) = get_html(&f, &ana, "/settings").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api(
        &f,
        &ana,
        &csrf,
        Method::PUT,
        "/api/settings/secrets/virustotal_key",
        serde_json::json!({ "value": "x-key" }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api(&f, &ana, &csrf, Method::GET, "/api/settings", serde_json::json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(!store.has_secret_setting("virustotal_key").await.unwrap());
}

/// Reads the event stream until the next `counts` event; returns its data.
async fn next_counts(body: &mut Body, buf: &mut String, from: &mut usize) -> serde_json::Value {
    loop {
        if let Some(i) = buf[*from..].find("event: counts\n") {
            let start = *from + i;
            if let Some(end) = buf[start..].find("\n\n") {
                let block = &buf[start..start + end];
                *from = start + end;
                let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                return serde_json::from_str(data).unwrap();
            }
        }
        let frame = body.frame().await.expect("stream ended").unwrap();
        if let Ok(data) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

/// Issue 22, item 4: the stream opens with the cards' numbers and sends
/// them again after a change, so the page never shows stale counts.
#[tokio::test]
async fn the_event_stream_carries_the_cards_counts() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let r = send(
        &f.app,
        req(&Method::GET, "/events", "127.0.0.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.into_body();
    let (mut buf, mut from) = (String::new(), 0);
    let want = serde_json::to_value(f.state.rt.live_counts().await.unwrap()).unwrap();
    // A liveness bound, not a speed goal.
    let limit = std::time::Duration::from_secs(30);
    let first = tokio::time::timeout(limit, next_counts(&mut body, &mut buf, &mut from))
        .await
        .unwrap();
    assert_eq!(first, want);
    assert!(first["in_quarantine"].is_i64());

    f.state.rt.events().send(crate::domain::Event::Updated { id: 1 }).unwrap();
    let again = tokio::time::timeout(limit, next_counts(&mut body, &mut buf, &mut from))
        .await
        .unwrap();
    assert_eq!(again, want);
    assert!(buf.contains("event: message\n"), "the row came too: {buf}");
}
