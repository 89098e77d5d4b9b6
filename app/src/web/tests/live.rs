//! Issue 22: mail Postern let through is previewed, quarantined and learned
//! from the drawer, by analysts and admins only (reading it from the
//! mailbox is tested against Dovecot in app/tests/web_live.rs).

use super::*;

const ANALYST_PW: &str = "analyst horse battery";
const VIEWER_PW: &str = "viewer horse battery";

/// A passed message with no stored copy, still in its folder.
async fn passed(f: &Fixture) -> i64 {
    use crate::domain::{Decision, MessageKey};
    use crate::store::{MessageMeta, NewMessage};
    let m = NewMessage {
        key: MessageKey {
            account: "alice".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid: 2,
        },
        meta: MessageMeta {
            message_id: Some("p@ok.example".into()),
            sha256: "cd".into(),
            size: 10,
            from: Some("friend@ok.example".into()),
            subject: Some("lunch".into()),
            internal_date: None,
        },
    };
    f.state
        .rt
        .store()
        .record_decision(&m, &Decision::pass("clean"), None, false, None)
        .await
        .unwrap()
        .0
}

fn call(method: &Method, path: &str, session: &str, csrf: &str) -> Request<Body> {
    req(method, path, "127.0.0.1")
        .header(header::COOKIE, session)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn only_analysts_and_admins_act_on_mail_let_through() {
    let f = fixture().await;
    let store = f.state.rt.store();
    for (name, role, pw) in [("ann", "analyst", ANALYST_PW), ("vic", "viewer", VIEWER_PW)] {
        assert!(store.add_user(name, role, &bcrypt::hash(pw, 4).unwrap(), "test").await.unwrap());
    }
    let id = passed(&f).await;
    let (ann, ann_csrf) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();
    let (vic, vic_csrf) = login_as(&f.app, "127.0.0.1", "vic", VIEWER_PW).await.unwrap();

    // The analyst's drawer offers the actions and a preview read on demand.
    let drawer = text(send(&f.app, call(&Method::GET, &format!("/messages/{id}/drawer"), &ann, &ann_csrf)).await).await;
    for want in [
        "data-action=\"quarantine\"",
        "data-action=\"learn-spam\"",
        "data-action=\"learn-ham\"",
        "no copy kept",
    ] {
        assert!(drawer.contains(want), "analyst drawer lacks {want}: {drawer}");
    }
    // The viewer's drawer previews, but offers no action, and every verb refuses.
    let drawer = text(send(&f.app, call(&Method::GET, &format!("/messages/{id}/drawer"), &vic, &vic_csrf)).await).await;
    assert!(drawer.contains("/preview"));
    assert!(!drawer.contains("data-action="), "viewer drawer offers actions: {drawer}");
    for verb in ["quarantine", "learn-spam", "learn-ham"] {
        let r = send(&f.app, call(&Method::POST, &format!("/api/messages/{id}/{verb}"), &vic, &vic_csrf)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewer {verb}");
    }
    let audit = store.audit_rows(None, None, 100).await.unwrap();
    assert!(
        !audit.iter().any(|r| r.event == "quarantine_requested"),
        "a refused call did nothing"
    );

    // The seeded message 1 still has its own move pending: not queued twice.
    let r = send(&f.app, call(&Method::POST, "/api/messages/1/quarantine", &ann, &ann_csrf)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(text(r).await.contains("still running"));
    // Its drawer keeps the quarantine actions, not these.
    let drawer = text(send(&f.app, call(&Method::GET, "/messages/1/drawer", &ann, &ann_csrf)).await).await;
    assert!(!drawer.contains("data-action=\"quarantine\""));
}

#[tokio::test]
async fn the_stats_page_shows_the_top_tables_and_the_api_serves_them() {
    let f = fixture().await;
    let (s, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let page = text(send(&f.app, call(&Method::GET, "/stats", &s, &csrf)).await).await;
    for t in [
        "By engine (found something)",
        "Top URL domains",
        "Top attachment types",
        "Top sender domains",
    ] {
        assert!(page.contains(&format!("data-table=\"{t}\"")), "stats page lacks {t}");
    }
    let r = send(&f.app, call(&Method::GET, "/api/stats/top?days=7&limit=5", &s, &csrf)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    for k in ["by_engine", "url_domains", "attachment_types"] {
        assert!(v[k].is_array(), "{k}: {v}");
    }
}

#[tokio::test]
async fn audit_rows_name_their_message_and_link_to_it() {
    let f = fixture().await;
    let (s, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let page = text(send(&f.app, call(&Method::GET, "/audit", &s, &csrf)).await).await;
    // The seeded message's subject is `<b>hello</b>`: shown, escaped, linked.
    let link = page
        .split("data-open-message=\"1\" data-audit-subject>")
        .nth(1)
        .expect("a linked subject");
    assert!(link.starts_with("&lt;b&gt;hello"), "{link}");
    assert!(page.contains("href=\"/?message=1\""));
    assert!(!page.contains("<b>hello"));
}
