//! Issue 17, item 4: the campaign-wide buttons and API. Only an analyst or
//! an admin may act on a campaign, always with the session's CSRF token;
//! a viewer sees the campaign without the buttons.

use super::*;

const ANALYST_PW: &str = "analyst horse battery";
const VIEWER_PW: &str = "viewer horse battery";

/// A second copy of the seeded message (same sender and subject) in
/// another mailbox, so the two form campaign #1.
async fn second_copy(f: &Fixture) {
    use crate::domain::{Decision, MessageKey};
    use crate::store::{MessageMeta, NewMessage};
    let store = f.state.rt.store();
    for (name, role, pw) in [("ann", "analyst", ANALYST_PW), ("vic", "viewer", VIEWER_PW)] {
        assert!(store.add_user(name, role, &bcrypt::hash(pw, 4).unwrap(), "test").await.unwrap());
    }
    let new = NewMessage {
        key: MessageKey {
            account: "bob".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid: 1,
        },
        meta: MessageMeta {
            message_id: Some("y@evil.example".into()),
            sha256: "cd".into(),
            size: 10,
            from: Some("m@evil.example".into()),
            subject: Some("<b>hello</b>".into()),
            internal_date: None,
        },
    };
    store.record_decision(&new, &Decision::default(), None, false, None).await.unwrap();
}

fn post(path: &str, session: &str, csrf: Option<&str>) -> Request<Body> {
    let mut r = req(&Method::POST, path, "127.0.0.1")
        .header(header::COOKIE, session)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = csrf {
        r = r.header("x-csrf-token", c);
    }
    r.body(Body::from("{}")).unwrap()
}

fn get(path: &str, session: &str) -> Request<Body> {
    req(&Method::GET, path, "127.0.0.1")
        .header(header::COOKIE, session)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn issue_17_campaign_actions_need_an_analyst_and_the_csrf_token() {
    let f = fixture().await;
    second_copy(&f).await;
    let (ann, ann_csrf) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();
    let (vic, vic_csrf) = login_as(&f.app, "127.0.0.1", "vic", VIEWER_PW).await.unwrap();
    let campaigns = f.state.rt.campaigns().await.unwrap();
    assert_eq!(campaigns.len(), 1, "{campaigns:?}");
    assert_eq!(campaigns[0].campaign.id, 1);

    // The viewer sees the campaign, not the buttons; the analyst sees them.
    let page = text(send(&f.app, get("/campaigns", &vic)).await).await;
    assert!(page.contains("Campaign #1"), "{page}");
    assert!(!page.contains("/campaigns/1/quarantine") && !page.contains("/campaigns/1/block-sender"));
    let page = text(send(&f.app, get("/campaigns", &ann)).await).await;
    for action in ["quarantine", "block-sender"] {
        assert!(page.contains(&format!("action=\"/campaigns/1/{action}\"")), "{action}: {page}");
    }
    assert!(page.contains("Quarantine everywhere") && page.contains("Block the sender"));

    // A viewer is refused every action, forms and API alike.
    for path in [
        "/campaigns/1/quarantine",
        "/campaigns/1/block-sender",
        "/api/campaigns/1/quarantine",
        "/api/campaigns/1/block-sender",
        "/api/campaigns/1/release",
    ] {
        let r = send(&f.app, post(path, &vic, Some(&vic_csrf))).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewer {path}");
        // Without the CSRF token even the analyst is refused.
        let r = send(&f.app, post(path, &ann, None)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF {path}");
    }
    let lists = f.state.rt.store().list_entries().await.unwrap();
    assert!(lists.is_empty(), "nothing a refused call asked for happened: {lists:?}");

    // The analyst blocks the sender: one list entry, applied, audited by name.
    let r = send(&f.app, post("/api/campaigns/1/block-sender", &ann, Some(&ann_csrf))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    assert_eq!(body["action"], "block-sender", "{body}");
    assert_eq!(body["results"], serde_json::json!(["m@evil.example: blocked"]), "{body}");
    let lists = f.state.rt.store().list_entries().await.unwrap();
    assert_eq!(lists.len(), 1, "{lists:?}");
    let rows = f.state.rt.store().audit_rows(None, Some("list_added"), 5).await.unwrap();
    assert_eq!(rows[0].actor, "analyst:ann", "{rows:?}");
    assert!(rows[0].detail.contains("campaign #1"), "{rows:?}");

    // The form says what happened, on the campaign page.
    let r = send(&f.app, post("/campaigns/1/block-sender", &ann, Some(&ann_csrf))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[header::LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with("/campaigns?done="), "{to}");
    let page = text(send(&f.app, get(&to, &ann)).await).await;
    assert!(page.contains("already on the block list"), "{page}");

    // An unknown campaign is a clear error, not a crash.
    let r = send(&f.app, post("/api/campaigns/999/quarantine", &ann, Some(&ann_csrf))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
