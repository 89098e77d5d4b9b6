//! Issue 20: the incidents pages. Viewers read them; analysts and admins
//! change the status, which lands on the timeline and in the audit log.

use super::*;
use crate::store::AttackRecord;

const ANALYST_PW: &str = "analyst incident battery";
const VIEWER_PW: &str = "viewer incident battery";

fn call(method: &Method, path: &str, session: &str, csrf: &str, form: &str) -> Request<Body> {
    req(method, path, "127.0.0.1")
        .header(header::COOKIE, session)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("{form}&_csrf={csrf}")))
        .unwrap()
}

#[tokio::test]
async fn issue_20_incidents_are_listed_and_only_analysts_change_their_status() {
    let f = fixture().await;
    let store = f.state.rt.store();
    for (name, role, pw) in [("ann", "analyst", ANALYST_PW), ("vic", "viewer", VIEWER_PW)] {
        assert!(store.add_user(name, role, &bcrypt::hash(pw, 4).unwrap(), "test").await.unwrap());
    }
    let attack = AttackRecord {
        at: 1_800_000_000,
        kind: "spray_users".into(),
        ip: Some("203.0.113.9".into()),
        count: 12,
        detail: "password spraying from 203.0.113.9: 12 user names tried".into(),
        ..Default::default()
    };
    store.logwatch_commit("mail.log", None, vec![], vec![attack]).await.unwrap();
    let (vic, vcsrf) = login_as(&f.app, "127.0.0.1", "vic", VIEWER_PW).await.unwrap();
    let (ann, acsrf) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();

    let list = text(send(&f.app, call(&Method::GET, "/incidents", &vic, &vcsrf, "")).await).await;
    assert!(
        list.contains("Attacks from 203.0.113.9") && list.contains("href=\"/incidents/1\""),
        "{list}"
    );
    let page = text(send(&f.app, call(&Method::GET, "/incidents/1", &vic, &vcsrf, "")).await).await;
    assert!(page.contains("password spraying from 203.0.113.9"), "{page}");
    assert!(!page.contains("id=\"status-form\""), "viewers get no status form");
    let r = send(&f.app, call(&Method::POST, "/incidents/1/status", &vic, &vcsrf, "status=closed")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let page = text(send(&f.app, call(&Method::GET, "/incidents/1", &ann, &acsrf, "")).await).await;
    assert!(page.contains("id=\"status-form\""));
    let r = send(
        &f.app,
        call(&Method::POST, "/incidents/1/status", &ann, &acsrf, "status=acknowledged&note=on+it"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/incidents/1?ok=status");
    let r = send(&f.app, call(&Method::POST, "/incidents/1/status", &ann, &acsrf, "status=bogus")).await;
    let to = r.headers()[header::LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with("/incidents/1?err="), "{to}");
    assert!(
        text(send(&f.app, call(&Method::GET, &to, &ann, &acsrf, "")).await)
            .await
            .contains("unknown status")
    );

    let json = text(send(&f.app, call(&Method::GET, "/api/incidents/1", &vic, &vcsrf, "")).await).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["incident"]["status"], "acknowledged");
    let timeline = v["timeline"].as_array().unwrap();
    let status: Vec<_> = timeline.iter().filter(|t| t["kind"] == "status").collect();
    assert_eq!(status.len(), 1, "{timeline:?}");
    assert_eq!(status[0]["actor"], "analyst:ann");
    assert_eq!(status[0]["detail"], "open → acknowledged: on it");
    let audit = store.audit_rows(None, None, 50).await.unwrap();
    assert!(audit.iter().any(|r| r.actor == "analyst:ann" && r.event == "incident_status"));
    let r = send(&f.app, call(&Method::GET, "/incidents/99", &vic, &vcsrf, "")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
