//! Issue 22, item 1: several users, each with a role that every route
//! enforces on the server, and an audit log that names who acted.

use super::*;
use crate::runtime::Role;

const ANALYST_PW: &str = "analyst horse battery";
const VIEWER_PW: &str = "viewer horse battery";

async fn with_users(f: &Fixture) {
    let store = f.state.rt.store();
    for (name, role, pw) in [("ann", "analyst", ANALYST_PW), ("vic", "viewer", VIEWER_PW)] {
        assert!(store.add_user(name, role, &bcrypt::hash(pw, 4).unwrap(), "test").await.unwrap());
    }
}

fn call(method: &Method, path: &str, session: &str, csrf: &str) -> Request<Body> {
    req(method, path, "127.0.0.1")
        .header(header::COOKIE, session)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

async fn actors(f: &Fixture) -> Vec<(String, String)> {
    let rows = f.state.rt.store().audit_rows(None, None, 200).await.unwrap();
    rows.into_iter().map(|r| (r.actor, r.event)).collect()
}

#[tokio::test]
async fn every_route_refuses_a_role_below_its_floor() {
    let f = fixture().await;
    with_users(&f).await;
    let (ann, ann_csrf) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();
    let (vic, vic_csrf) = login_as(&f.app, "127.0.0.1", "vic", VIEWER_PW).await.unwrap();
    let mut refused = 0;
    for (spec, _) in routes() {
        let Some(need) = spec.access.role() else { continue };
        for (cookie, csrf, role) in [(&ann, &ann_csrf, Role::Analyst), (&vic, &vic_csrf, Role::Viewer)] {
            if role >= need {
                continue;
            }
            let r = send(&f.app, call(&spec.method, &concrete(spec.path), cookie, csrf)).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{role} {} {}", spec.method, spec.path);
            assert_hardened(&r, spec.path);
            refused += 1;
        }
    }
    assert!(refused > 40, "the table lost role floors: {refused}");
    // Nothing a refused call asked for happened.
    assert_eq!(f.state.rt.overrides().await.unwrap(), crate::runtime::Overrides::default());
    assert!(!actors(&f).await.iter().any(|(a, e)| a != "postern" && e.contains("setting")));
    // Reading is open to every role; each GET route answers the viewer.
    for (spec, _) in routes()
        .into_iter()
        .filter(|(s, _)| s.method == Method::GET && s.access == Access::Viewer)
    {
        let r = send(&f.app, call(&spec.method, &concrete(spec.path), &vic, &vic_csrf)).await;
        assert!(
            r.status() != StatusCode::FORBIDDEN && !r.status().is_server_error(),
            "viewer {} gave {}",
            spec.path,
            r.status()
        );
    }
}

#[tokio::test]
async fn an_analyst_reviews_mail_but_cannot_open_settings() {
    let f = fixture().await;
    with_users(&f).await;
    let (ann, csrf) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();
    let page = send(&f.app, call(&Method::GET, "/settings", &ann, &csrf)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(text(page).await.contains("your role (analyst)"));
    let home = text(send(&f.app, call(&Method::GET, "/", &ann, &csrf)).await).await;
    assert!(home.contains("ann (analyst)"), "the header names the user");
    assert!(
        !home.contains("href=\"/settings\"") && !home.contains("href=\"/accounts\""),
        "no links it may not follow"
    );
    // The seeded message's quarantine move is done, so it can be released.
    let store = f.state.rt.store();
    let intent = store.pending_intents("alice").await.unwrap().remove(0);
    let loc = Some(("Quarantine".to_string(), Some(7)));
    store
        .finish_intent(&intent, crate::store::IntentState::Done, loc, String::new())
        .await
        .unwrap();
    let r = send(&f.app, call(&Method::POST, "/api/messages/1/release", &ann, &csrf)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", text(r).await);
    // The audit log names the analyst, not a generic admin.
    let log = actors(&f).await;
    assert!(log.iter().any(|(a, e)| a == "analyst:ann" && e == "login"), "{log:?}");
    assert!(
        log.iter().any(|(a, e)| a == "analyst:ann" && e == "op_requested"),
        "the release names ann: {log:?}"
    );
    assert!(!log.iter().any(|(a, _)| a == "admin:admin"), "{log:?}");
    // A viewer may not release.
    let (vic, vcsrf) = login_as(&f.app, "127.0.0.1", "vic", VIEWER_PW).await.unwrap();
    let r = send(&f.app, call(&Method::POST, "/api/messages/1/release", &vic, &vcsrf)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_names_cost_a_bcrypt_run_and_are_audited() {
    let f = fixture().await;
    with_users(&f).await;
    let before = f.state.limiter.evaluations();
    assert_eq!(
        login_as(&f.app, "192.0.2.5", "nobody", ANALYST_PW).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        f.state.limiter.evaluations(),
        before + 1,
        "an unknown name is verified like a known one"
    );
    assert_eq!(login_as(&f.app, "192.0.2.6", "ann", VIEWER_PW).await, Err(StatusCode::UNAUTHORIZED));
    let log = actors(&f).await;
    assert!(log.iter().any(|(a, e)| a == "login:nobody" && e == "login_failed"), "{log:?}");
    assert!(log.iter().any(|(a, e)| a == "login:ann" && e == "login_failed"), "{log:?}");
    // The environment's admin logs in by name too, as before without one.
    assert!(login_as(&f.app, "127.0.0.1", "admin", PASSWORD).await.is_ok());
    assert!(actors(&f).await.iter().any(|(a, e)| a == "admin:admin" && e == "login"));
}

#[tokio::test]
async fn removing_a_user_or_changing_a_password_ends_only_their_sessions() {
    let f = fixture().await;
    with_users(&f).await;
    let (admin, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (ann, ann_csrf) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();
    let (ann2, _) = login_as(&f.app, "127.0.0.1", "ann", ANALYST_PW).await.unwrap();
    let (vic, vcsrf) = login_as(&f.app, "127.0.0.1", "vic", VIEWER_PW).await.unwrap();
    let status = |s: &str| call(&Method::GET, "/api/status", s, "");
    // Her own password, through the API every role may use.
    let new = "a far better analyst phrase";
    let body = serde_json::json!({ "current": ANALYST_PW, "new": new, "confirm": new });
    let (code, out) = api(&f, &ann, &ann_csrf, Method::POST, "/api/password", body).await;
    assert_eq!(code, StatusCode::OK, "{out}");
    assert_eq!(send(&f.app, status(&ann)).await.status(), StatusCode::OK);
    assert_eq!(send(&f.app, status(&ann2)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(send(&f.app, status(&admin)).await.status(), StatusCode::OK, "other users stay");
    assert!(login_as(&f.app, "127.0.0.1", "ann", new).await.is_ok());
    assert!(
        login(&f.app, "127.0.0.1", PASSWORD).await.is_ok(),
        "the admin's password is untouched"
    );
    // The password page works for a viewer.
    let page = send(&f.app, call(&Method::GET, "/password", &vic, &vcsrf)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(text(page).await.contains("viewer"));
    // A removed user is logged out on the next request.
    assert!(f.state.rt.store().remove_user("vic", "test").await.unwrap());
    assert_eq!(send(&f.app, status(&vic)).await.status(), StatusCode::UNAUTHORIZED);
}
