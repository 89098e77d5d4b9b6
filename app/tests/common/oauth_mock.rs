//! A mock OAuth2 provider on loopback: token endpoint (client credentials,
//! JWT bearer, refresh token, device code), device authorization endpoint,
//! and the token-introspection endpoint Dovecot's `oauth2` passdb asks.
//! It issues, refreshes and revokes tokens and counts what it was asked.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "postern-test-client";
pub const CLIENT_SECRET: &str = "mock-client-secret-7f3a";
pub const SA_EMAIL: &str = "postern@test-project.iam.example";

#[derive(Default)]
pub struct MockState {
    /// The mailbox app-only tokens are issued for.
    pub app_user: String,
    /// access token -> user
    pub access: HashMap<String, String>,
    /// refresh token -> user
    pub refresh: HashMap<String, String>,
    /// grant_type of every token request, in order.
    pub grants: Vec<String>,
    pub introspections: usize,
    /// Polls answered `authorization_pending` before the device login is approved.
    pub device_pending: u32,
    pub expires_in: u64,
    n: u32,
}

pub struct OAuthMock {
    pub base: String,
    pub state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oauth").join(name)).unwrap()
}

fn json(code: u16, v: serde_json::Value) -> axum::response::Response {
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn err(code: &str) -> axum::response::Response {
    json(
        400,
        serde_json::json!({"error": code, "error_description": format!("mock says {code}")}),
    )
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: Option<String>,
    iss: String,
}

/// Checks an assertion's signature against the fixture key and its audience.
fn verify(assertion: &str, alg: jsonwebtoken::Algorithm, aud: &str) -> Option<Claims> {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&fixture("pub.pem")).ok()?;
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&[aud]);
    jsonwebtoken::decode::<Claims>(assertion, &key, &v).ok().map(|d| d.claims)
}

impl MockState {
    fn issue(&mut self, user: &str, with_refresh: bool) -> axum::response::Response {
        self.n += 1;
        let at = format!("at-{}-{}", self.n, common_suffix());
        self.access.insert(at.clone(), user.to_string());
        let mut body = serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": self.expires_in});
        if with_refresh {
            let rt = format!("rt-{}-{}", self.n, common_suffix());
            self.refresh.insert(rt.clone(), user.to_string());
            body["refresh_token"] = rt.into();
        }
        json(200, body)
    }
}

fn common_suffix() -> String {
    super::unique("")
}

async fn token(State((st, url)): State<(Arc<Mutex<MockState>>, String)>, body: String) -> axum::response::Response {
    let f: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let mut s = st.lock().unwrap();
    s.grants.push(get("grant_type").to_string());
    match get("grant_type") {
        "client_credentials" => {
            let secret_ok = get("client_secret") == CLIENT_SECRET;
            let cert_ok = get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                && verify(get("client_assertion"), jsonwebtoken::Algorithm::PS256, &url)
                    .is_some_and(|c| c.iss == CLIENT_ID && c.sub.as_deref() == Some(CLIENT_ID));
            if get("client_id") != CLIENT_ID || !(secret_ok || cert_ok) {
                return json(401, serde_json::json!({"error": "invalid_client"}));
            }
            let user = s.app_user.clone();
            s.issue(&user, false)
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => match verify(get("assertion"), jsonwebtoken::Algorithm::RS256, &url) {
            Some(Claims { sub: Some(sub), iss }) if iss == SA_EMAIL => s.issue(&sub, false),
            _ => err("invalid_grant"),
        },
        "refresh_token" => match s.refresh.get(get("refresh_token")).cloned() {
            Some(user) => s.issue(&user, true),
            None => err("invalid_grant"),
        },
        "urn:ietf:params:oauth:grant-type:device_code" => {
            if s.device_pending > 0 {
                s.device_pending -= 1;
                return err("authorization_pending");
            }
            let user = s.app_user.clone();
            s.issue(&user, true)
        }
        _ => err("unsupported_grant_type"),
    }
}

async fn device(State((_, url)): State<(Arc<Mutex<MockState>>, String)>) -> axum::response::Response {
    json(
        200,
        serde_json::json!({
            "device_code": "dc-1", "user_code": "WDJB-MJHT",
            "verification_uri": url.replace("/token", "/activate"),
            "expires_in": 60, "interval": 1
        }),
    )
}

async fn introspect(State((st, _)): State<(Arc<Mutex<MockState>>, String)>, headers: HeaderMap, body: String) -> axum::response::Response {
    let f: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = f.get("token").map(String::as_str).or(bearer).unwrap_or("");
    let mut s = st.lock().unwrap();
    s.introspections += 1;
    match s.access.get(token) {
        Some(user) => json(200, serde_json::json!({"active": true, "username": user})),
        None => json(200, serde_json::json!({"active": false})),
    }
}

impl OAuthMock {
    /// Listens on `addr` (`127.0.0.1:0` for any port); tokens are issued for `app_user`.
    pub async fn start(addr: &str, app_user: &str) -> OAuthMock {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(MockState {
            app_user: app_user.to_string(),
            expires_in: 3600,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/token", post(token))
            .route("/device", post(device))
            .route("/introspect", post(introspect).get(introspect))
            .with_state((state.clone(), format!("{base}/token")));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        OAuthMock { base, state, task }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub fn grants(&self) -> Vec<String> {
        self.state.lock().unwrap().grants.clone()
    }

    /// Revokes every token of `user`, access and refresh.
    pub fn revoke(&self, user: &str) {
        let mut s = self.state.lock().unwrap();
        s.access.retain(|_, u| u != user);
        s.refresh.retain(|_, u| u != user);
    }
}

impl Drop for OAuthMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}
