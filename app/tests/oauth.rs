//! OAuth2 logins (issue 15) against the real Dovecot, whose `oauth2`
//! passdb asks a mock provider's introspection endpoint on loopback, and
//! the token lifecycle against the same mock: refresh before expiry, the
//! device flow, and a revoked grant that becomes an account error without
//! a storm of retries.

use crate::common::eventually;
use crate::common::harness::{Postern, account, tuning};
use crate::common::oauth_mock::{CLIENT_ID, CLIENT_SECRET, OAuthMock, SA_EMAIL};
use crate::common::stack::shared;
use postern::clock::{SharedClock, TestClock};
use postern::config::{AccountConfig, ClientAuth, OAuthConfig, OAuthFlow, SaslMechanism};
use postern::imap::{Conn, Login};
use postern::intel::net::NetPolicy;
use postern::manager::ListenerState;
use postern::oauth::{OAuthError, TokenBroker};
use postern::store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Dovecot's introspection URL (scripts/peers-setup.sh): the one mock that
/// binds it serves every Dovecot login in this file.
const INTROSPECT_ADDR: &str = "127.0.0.1:10981";
const T: Duration = Duration::from_secs(30);
const KEY: [u8; 32] = [9; 32];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oauth").join(name)).unwrap()
}

fn oauth_account(name: &str, port: u16, user: &str, flow: OAuthFlow, token_url: &str, mechanism: SaslMechanism) -> AccountConfig {
    let mut a = account(name, port, user, "", &["INBOX"]);
    a.oauth2 = Some(OAuthConfig {
        flow,
        token_url: token_url.to_string(),
        scope: "https://outlook.office365.com/.default".into(),
        mechanism,
    });
    a
}

fn secret_flow() -> OAuthFlow {
    OAuthFlow::ClientCredentials {
        client_id: CLIENT_ID.into(),
        auth: ClientAuth::Secret(CLIENT_SECRET.into()),
    }
}

fn device_flow(mock: &OAuthMock) -> OAuthFlow {
    OAuthFlow::Device {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        device_url: format!("{}/device", mock.base),
    }
}

fn broker(dir: &Path, clock: SharedClock) -> (Store, TokenBroker) {
    let store = Store::open(&dir.join("p.db"), &KEY, clock).unwrap();
    let broker = TokenBroker::new(
        store.clone(),
        NetPolicy {
            allow_loopback_for_tests: true,
        },
    );
    (store, broker)
}

fn test_clock() -> (TestClock, SharedClock) {
    let c = TestClock::new(chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().into());
    (c.clone(), Arc::new(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_xoauth2_and_oauthbearer_log_in_to_dovecot_and_a_revoked_grant_is_an_account_error() {
    let d = shared();
    let user = "oauthuser";
    let mock = OAuthMock::start(INTROSPECT_ADDR, user).await;
    let dir = tempfile::tempdir().unwrap();
    // Real time: the mock checks the assertions' expiry against its own clock.
    let (_, b) = broker(dir.path(), Arc::new(postern::clock::SystemClock));

    // Microsoft-style app-only token (client secret), sent as XOAUTH2.
    let a = oauth_account("m365", d.imap_port, user, secret_flow(), &mock.token_url(), SaslMechanism::Xoauth2);
    let token = b.access_token(&a).await.unwrap();
    let mut c = Conn::connect_with(&a, Login::Bearer(&token), Duration::from_secs(10), 1 << 20)
        .await
        .unwrap();
    c.select("INBOX").await.unwrap();
    c.logout().await;

    // Microsoft certificate assertion, OAUTHBEARER chosen by capability.
    let cert = OAuthFlow::ClientCredentials {
        client_id: CLIENT_ID.into(),
        auth: ClientAuth::Certificate {
            thumbprint_s256: postern::oauth::thumbprint_s256(&fixture("cert.pem")).unwrap(),
            private_key_pem: fixture("key.pem"),
        },
    };
    let a = oauth_account("m365cert", d.imap_port, user, cert, &mock.token_url(), SaslMechanism::Auto);
    let token = b.access_token(&a).await.unwrap();
    let mut c = Conn::connect_with(&a, Login::Bearer(&token), Duration::from_secs(10), 1 << 20)
        .await
        .unwrap();
    c.select("INBOX").await.unwrap();
    c.logout().await;

    // Google service account with domain-wide delegation (sub = the mailbox), OAUTHBEARER.
    let sa = OAuthFlow::ServiceAccount {
        client_email: SA_EMAIL.into(),
        key_id: Some("k1".into()),
        private_key_pem: fixture("key.pem"),
    };
    let a = oauth_account("gws", d.imap_port, user, sa, &mock.token_url(), SaslMechanism::Oauthbearer);
    let token = b.access_token(&a).await.unwrap();
    let mut c = Conn::connect_with(&a, Login::Bearer(&token), Duration::from_secs(10), 1 << 20)
        .await
        .unwrap();
    c.select("INBOX").await.unwrap();
    c.logout().await;
    assert_eq!(
        mock.grants(),
        [
            "client_credentials",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ]
    );

    // A wrong token is refused by the server, with its reason.
    let err = Conn::connect_with(&a, Login::Bearer("not-a-token"), Duration::from_secs(10), 1 << 20)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AUTHENTICATIONFAILED"), "{err}");

    // A device-flow account logs in and watches; then the user's grant is revoked.
    let p = Postern::start(vec![], tuning(), None).await;
    let a = oauth_account("dev", d.imap_port, user, device_flow(&mock), &mock.token_url(), SaslMechanism::Auto);
    p.store.upsert_account(&a, "config").await.unwrap();
    let pb = &p.manager.deps().oauth;
    postern::oauth::device_login(pb, &a, |_| {}).await.unwrap();
    p.manager.start_account(a.clone()).await;
    p.wait_watching("dev").await;
    p.manager.stop_account("dev").await;
    mock.revoke(user);
    let before = mock.grants().len();
    p.manager.start_account(a.clone()).await;
    let why = eventually(T, "revoked grant shown as an account error", || async {
        p.manager.status().into_iter().find_map(|s| match (&s.state, s.needs_attention()) {
            (ListenerState::Broken { reason }, true) if s.account == "dev" && reason.contains("postern oauth login dev") => {
                Some(reason.clone())
            }
            _ => None,
        })
    })
    .await;
    assert!(why.contains("invalid_grant"), "{why}");
    // Bounded work: the refused refresh token was sent once; every later
    // attempt (listener, runner, direct calls) fails without a request.
    for _ in 0..5 {
        assert!(matches!(pb.access_token(&a).await, Err(OAuthError::Revoked { .. })));
    }
    assert_eq!(mock.grants().len() - before, 1, "{:?}", mock.grants());
    p.manager.shutdown().await;
}

#[tokio::test]
async fn oauth_access_token_is_reused_then_refreshed_before_it_expires() {
    let mock = OAuthMock::start("127.0.0.1:0", "someone").await;
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared_clock) = test_clock();
    let (store, b) = broker(dir.path(), shared_clock);
    let a = oauth_account("acct", 1, "someone", secret_flow(), &mock.token_url(), SaslMechanism::Auto);
    let first = b.access_token(&a).await.unwrap();
    assert_eq!(b.access_token(&a).await.unwrap(), first, "cached");
    clock.advance(chrono::Duration::minutes(54));
    assert_eq!(b.access_token(&a).await.unwrap(), first, "still 6 minutes left");
    assert_eq!(mock.grants().len(), 1);
    clock.advance(chrono::Duration::minutes(2));
    let second = b.access_token(&a).await.unwrap();
    assert_ne!(second, first, "renewed 4 minutes before expiry");
    assert_eq!(mock.grants().len(), 2);
    // Sealed at rest: the database never holds the token in clear.
    drop(store);
    let raw = std::fs::read(dir.path().join("p.db")).unwrap();
    assert!(!raw.windows(second.len()).any(|w| w == second.as_bytes()));
}

#[tokio::test]
async fn oauth_device_login_polls_until_approved_then_refreshes_and_a_refused_grant_is_not_resent() {
    let mock = OAuthMock::start("127.0.0.1:0", "dev-user").await;
    mock.state.lock().unwrap().device_pending = 2;
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared_clock) = test_clock();
    let (_, b) = broker(dir.path(), shared_clock);
    let a = oauth_account("dev", 1, "dev-user", device_flow(&mock), &mock.token_url(), SaslMechanism::Auto);
    assert!(matches!(b.access_token(&a).await, Err(OAuthError::NeedsLogin(_))));
    let mut shown = Vec::new();
    postern::oauth::device_login(&b, &a, |d| shown.push((d.verification_uri.clone(), d.user_code.clone())))
        .await
        .unwrap();
    assert_eq!(shown, [(format!("{}/activate", mock.base), "WDJB-MJHT".to_string())]);
    let device_grant = "urn:ietf:params:oauth:grant-type:device_code";
    assert_eq!(
        mock.grants(),
        [device_grant, device_grant, device_grant],
        "two pending polls, then approval"
    );
    let from_login = b.access_token(&a).await.unwrap();
    clock.advance(chrono::Duration::minutes(58));
    let refreshed = b.access_token(&a).await.unwrap();
    assert_ne!(refreshed, from_login);
    assert_eq!(mock.grants().last().map(String::as_str), Some("refresh_token"));

    mock.revoke("dev-user");
    clock.advance(chrono::Duration::minutes(58));
    let n = mock.grants().len();
    for _ in 0..3 {
        let e = b.access_token(&a).await.unwrap_err();
        assert!(e.needs_operator() && e.to_string().contains("postern oauth login dev"), "{e}");
    }
    assert_eq!(mock.grants().len(), n + 1, "the refused refresh token is sent once");
    // A new login clears the refusal.
    postern::oauth::device_login(&b, &a, |_| {}).await.unwrap();
    assert!(b.access_token(&a).await.is_ok());
}
