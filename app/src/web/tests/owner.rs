//! Issue 22, item 2: a mailbox owner sees and releases only their own
//! account's quarantine; a dangerous message's release waits for an analyst.

use super::*;

/// Puts a message for `account` in quarantine with `tags`; returns its id.
async fn quarantined(f: &Fixture, account: &str, uid: u32, subject: &str, tags: &[&str]) -> i64 {
    use crate::domain::{Action, Decision, MessageKey, Verdict};
    use crate::store::{MessageMeta, NewMessage};
    let store = f.state.rt.store();
    if store.account(account).await.unwrap().is_none() {
        let acct: crate::config::AccountConfig = serde_json::from_value(serde_json::json!({
            "name": account, "host": "127.0.0.1", "port": 143, "tls": "plain", "tls_skip_verify": false, "ca_file": null,
            "user": account, "pass": "secret", "folders": ["INBOX"], "quarantine_folder": "Quarantine",
            "hold_folder": "Postern-Held", "mode": "enforce", "start_at": "New"
        }))
        .unwrap();
        store.upsert_account(&acct, "config").await.unwrap();
    }
    let new = NewMessage {
        key: MessageKey {
            account: account.into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid,
        },
        meta: MessageMeta {
            message_id: None,
            sha256: format!("sha{account}{uid}"),
            size: 10,
            from: Some("x@evil.example".into()),
            subject: Some(subject.into()),
            internal_date: None,
        },
    };
    let d = Decision {
        verdict: Verdict::Quarantine,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        reason: "test".into(),
        ..Default::default()
    };
    let action = Action::Quarantine {
        folder: "Quarantine".into(),
    };
    let (id, intent) = store.record_decision(&new, &d, Some(&action), false, None).await.unwrap();
    // The runner would carry out the move; here it is marked done directly.
    let intent = store
        .pending_intents(account)
        .await
        .unwrap()
        .into_iter()
        .find(|i| Some(i.id) == intent)
        .unwrap();
    let loc = Some(("Quarantine".to_string(), Some(uid)));
    store
        .finish_intent(&intent, crate::store::IntentState::Done, loc, String::new())
        .await
        .unwrap();
    id
}

fn form(path: &str, cookie: &str, body: String) -> Request<Body> {
    req(&Method::POST, path, "127.0.0.1")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    req(&Method::GET, path, "127.0.0.1")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

/// Signs in as the owner of `account` with a one-time link; returns the
/// owner cookie and the session's CSRF token from the page.
async fn sign_in_by_link(f: &Fixture, account: &str) -> (String, String) {
    let tok = f
        .state
        .rt
        .issue_owner_link(account, &format!("{account}@example.org"))
        .await
        .unwrap();
    let page = send(
        &f.app,
        req(&Method::GET, &format!("/my/link/{tok}"), "127.0.0.1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let fc = set_cookie(&page, "postern_owner_form").unwrap();
    let csrf = hidden(&text(page).await, "_csrf");
    // Without the page's token the link is not used up.
    let r = send(&f.app, form(&format!("/my/link/{tok}"), &fc, "_csrf=nope".into())).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(&f.app, form(&format!("/my/link/{tok}"), &fc, format!("_csrf={csrf}"))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/my");
    let owner = set_cookie(&r, "postern_owner").unwrap();
    // A link works once.
    let again = send(&f.app, form(&format!("/my/link/{tok}"), &fc, format!("_csrf={csrf}"))).await;
    assert_eq!(again.status(), StatusCode::GONE);
    let page = text(send(&f.app, get("/my", &owner)).await).await;
    (owner, hidden(&page, "_csrf"))
}

#[tokio::test]
async fn an_owner_sees_and_releases_only_their_own_quarantine() {
    let f = fixture().await;
    let spam = quarantined(&f, "carol", 1, "carol spam", &["RSPAMD_REJECT"]).await;
    let phish = quarantined(&f, "carol", 2, "carol phish", &["SPOOF_DISPLAY_NAME_BRAND", "HTML_PASSWORD_FORM"]).await;
    let other = quarantined(&f, "dave", 1, "dave secret", &["RSPAMD_REJECT"]).await;
    let (owner, csrf) = sign_in_by_link(&f, "carol").await;

    let page = text(send(&f.app, get("/my", &owner)).await).await;
    assert!(page.contains("carol spam") && page.contains("carol phish"), "{page}");
    assert!(
        !page.contains("dave secret") && !page.contains("hello"),
        "another account's mail shows"
    );
    // The owner cookie opens no dashboard page.
    let r = send(&f.app, get("/quarantine", &owner)).await;
    assert_eq!(r.headers()[header::LOCATION], "/login");

    // Another account's message is "not found", and nothing is queued for it.
    let r = send(
        &f.app,
        form(&format!("/my/messages/{other}/release"), &owner, format!("_csrf={csrf}")),
    )
    .await;
    assert!(r.headers()[header::LOCATION].to_str().unwrap().contains("no+such+message"));
    // Without the session's token nothing happens either.
    let r = send(&f.app, form(&format!("/my/messages/{spam}/release"), &owner, "_csrf=x".into())).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Spam: released in the owner's name (queued: no runner in this test).
    let r = send(
        &f.app,
        form(&format!("/my/messages/{spam}/release"), &owner, format!("_csrf={csrf}")),
    )
    .await;
    assert!(r.headers()[header::LOCATION].to_str().unwrap().contains("ok="), "{r:?}");
    // Phishing: a request, not a release.
    send(
        &f.app,
        form(&format!("/my/messages/{phish}/release"), &owner, format!("_csrf={csrf}")),
    )
    .await;
    let open = f.state.rt.release_requests(true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].message, open[0].requested_by.as_str()), (phish, "owner:carol"));

    let rows = f.state.rt.store().audit_rows(None, None, 200).await.unwrap();
    let has = |actor: &str, event: &str, msg: Option<i64>| {
        rows.iter()
            .any(|r| r.actor == actor && r.event == event && (msg.is_none() || r.message == msg))
    };
    assert!(has("owner:carol", "owner_login", None));
    assert!(has("owner:carol", "op_requested", Some(spam)), "the spam release is the owner's");
    assert!(!has("owner:carol", "op_requested", Some(phish)), "the phish is not released");
    assert!(has("owner:carol", "release_requested", Some(phish)));
    assert!(!rows.iter().any(|r| r.message == Some(other) && r.event == "op_requested"));

    // An admin approves: the release goes out in the admin's name.
    let (session, admin_csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let list = text(send(&f.app, get("/requests", &session)).await).await;
    assert!(list.contains("carol phish"), "{list}");
    let id = open[0].id;
    let r = send(
        &f.app,
        form(&format!("/requests/{id}/approve"), &session, format!("_csrf={admin_csrf}")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(f.state.rt.release_requests(true).await.unwrap().is_empty());
    let rows = f.state.rt.store().audit_rows(None, None, 200).await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.actor == "admin:admin" && r.event == "release_approved" && r.message == Some(phish))
    );
    assert!(
        rows.iter()
            .any(|r| r.actor == "admin:admin" && r.event == "op_requested" && r.message == Some(phish))
    );

    // Signing out ends the owner session.
    let r = send(&f.app, form("/my/logout", &owner, format!("_csrf={csrf}"))).await;
    assert_eq!(r.headers()[header::LOCATION], "/my/login");
    let r = send(&f.app, get("/my", &owner)).await;
    assert_eq!(r.headers()[header::LOCATION], "/my/login");
}

#[tokio::test]
async fn sign_in_links_are_scoped_signed_and_expire() {
    let f = fixture().await;
    let tok = f.state.rt.issue_owner_link("alice", "alice@example.org").await.unwrap();
    // A forged MAC, or a digest link's token, opens nothing.
    let (n, _) = tok.split_once('.').unwrap();
    for bad in [format!("{n}.AAAA"), "garbage".to_string()] {
        let r = send(
            &f.app,
            req(&Method::GET, &format!("/my/link/{bad}"), "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    f.clock.advance(chrono::Duration::minutes(31));
    let r = send(
        &f.app,
        req(&Method::GET, &format!("/my/link/{tok}"), "127.0.0.1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::GONE);
    // The send form needs its page's token, and says plainly that mail is not set up.
    let page = send(&f.app, req(&Method::GET, "/my/login", "127.0.0.1").body(Body::empty()).unwrap()).await;
    let fc = set_cookie(&page, "postern_owner_form").unwrap();
    let csrf = hidden(&text(page).await, "_csrf");
    let r = send(&f.app, form("/my/login/link", &fc, "address=alice%40example.org".into())).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        &f.app,
        form("/my/login/link", &fc, format!("_csrf={csrf}&address=alice%40example.org")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(r).await.contains("POSTERN_SMTP_URL"));
}
