//! Login, sessions, CSRF and the login rate limiter.
//!
//! The session cookie holds a random token; the store keeps only its
//! SHA-256, next to a per-session CSRF token that every unsafe request
//! must echo (header `X-CSRF-Token` or form field `_csrf`).

use super::limiter::Locked;
use super::security::{ClientIp, Nonce, same};
use super::templates::{PageCx, render};
use super::{AppState, WebError};
use crate::store::AuditEntry;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use minijinja::context;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A logged-in admin, put in request extensions by [`require_session`].
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) token_hash: String,
    pub(crate) csrf: String,
}

impl Admin {
    /// Audit actor name.
    pub(crate) fn actor(&self) -> &'static str {
        "admin:admin"
    }
}

const FORM_LIMIT: usize = 2 * 1024 * 1024;

fn cookie_name(st: &AppState) -> &'static str {
    if st.web.insecure_cookies {
        "postern_session"
    } else {
        "__Host-postern_session"
    }
}

fn login_cookie_name(st: &AppState) -> &'static str {
    if st.web.insecure_cookies {
        "postern_login"
    } else {
        "__Host-postern_login"
    }
}

pub(super) fn token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

pub(super) fn set_cookie(st: &AppState, name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(!st.web.insecure_cookies);
    if let Some(m) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(m.as_secs() as i64));
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

fn unauthenticated(req: &Request) -> Response {
    let p = req.uri().path();
    let api = p.starts_with("/api/") || p == "/events" || p == "/health" || req.method() != Method::GET;
    if api {
        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "login required"}))).into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

pub(super) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({"error": "missing or wrong CSRF token; reload the page"})),
    )
        .into_response()
}

/// Middleware for every [`super::Access::Session`] route: a valid, unexpired
/// session, and for unsafe methods its CSRF token.
pub(crate) async fn require_session(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(tok) = cookie_value(req.headers(), cookie_name(&st)) else {
        return unauthenticated(&req);
    };
    let th = hash(&tok);
    let row = match st.rt.store.session(&th).await {
        Ok(r) => r,
        Err(e) => return WebError::from(e).into_response(),
    };
    let Some(row) = row else { return unauthenticated(&req) };
    let now = st.rt.clock.now();
    let idle = chrono::Duration::from_std(st.web.session_idle).unwrap_or_default();
    let max = chrono::Duration::from_std(st.web.session_max).unwrap_or_default();
    let expired = parse_time(&row.last_seen).is_none_or(|t| now - t > idle) || parse_time(&row.created_at).is_none_or(|t| now - t > max);
    if expired {
        let _ = st.rt.store.delete_session(&th).await;
        return unauthenticated(&req);
    }
    let req = if matches!(*req.method(), Method::GET | Method::HEAD) {
        req
    } else {
        match check_csrf(req, &row.csrf).await {
            Ok(r) => r,
            Err(r) => return r,
        }
    };
    // Every request moves the idle clock, so the idle expiry is exact
    // (issue 16: writing at most once a minute let it fire 60 s early).
    if let Err(e) = st.rt.store.touch_session(&th).await {
        return WebError::from(e).into_response();
    }
    let mut req = req;
    req.extensions_mut().insert(Admin {
        token_hash: th,
        csrf: row.csrf,
    });
    next.run(req).await
}

/// Accepts the token from the header, or from the `_csrf` field of a form
/// body (which is buffered and handed on unchanged).
async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    if let Some(h) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if same(h, expected) { Ok(req) } else { Err(forbidden()) };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden());
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT).await.map_err(|_| forbidden())?;
    let ok = url::form_urlencoded::parse(&bytes).any(|(k, v)| k == "_csrf" && same(&v, expected));
    if !ok {
        return Err(forbidden());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

pub(crate) async fn login_page(State(st): State<AppState>, Extension(nonce): Extension<Nonce>) -> Response {
    login_response(&st, &nonce, StatusCode::OK, None)
}

fn login_response(st: &AppState, nonce: &Nonce, status: StatusCode, error: Option<&str>) -> Response {
    let t = token();
    let cx = PageCx::anonymous(nonce);
    let mut resp = render(st, "login.html", &cx, context! { login_csrf => t, error => error });
    *resp.status_mut() = status;
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, login_cookie_name(st), &t, Some(Duration::from_secs(3600))),
    );
    resp
}

pub(crate) async fn login(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // Read the form by hand so that any request without the token, whatever
    // its content type, is refused as CSRF before anything else.
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    // Login CSRF: the form must carry the token its own page set as a cookie.
    let cookie = cookie_value(&headers, login_cookie_name(&st)).unwrap_or_default();
    if cookie.is_empty() || !same(&cookie, &field("_csrf")) {
        return forbidden();
    }
    let now = st.rt.clock.now();
    // Reserve the attempt before bcrypt runs (issue 16): parallel requests
    // cannot all slip past the check and be evaluated.
    if let Err(Locked(mins)) = st.limiter.reserve(ip, now) {
        let msg = format!("Too many failed attempts. Try again in {mins} minute(s).");
        return login_response(&st, &nonce, StatusCode::TOO_MANY_REQUESTS, Some(&msg));
    }
    let stored = match st.rt.admin_hash().await {
        Ok(h) => h,
        Err(e) => return WebError::from(e).into_response(),
    };
    let Some(stored) = stored else {
        let msg = "No admin password is configured. Set POSTERN_ADMIN_PASSWORD_HASH (see `postern hash-password`).";
        return login_response(&st, &nonce, StatusCode::SERVICE_UNAVAILABLE, Some(msg));
    };
    let ok = st.limiter.verify(field("password"), stored).await;
    let mut audit = AuditEntry {
        actor: "admin:admin".into(),
        event: "login".into(),
        detail: format!("from {ip}"),
        ..Default::default()
    };
    if !ok {
        audit.event = "login_failed".into();
        record(&st, audit).await;
        tracing::warn!(%ip, "failed dashboard login");
        return login_response(&st, &nonce, StatusCode::UNAUTHORIZED, Some("Wrong password."));
    }
    st.limiter.succeeded(ip);
    prune_sessions(&st).await;
    let (tok, csrf) = (token(), token());
    if let Err(e) = st.rt.store.create_session(&hash(&tok), &csrf, &ip.to_string()).await {
        return WebError::from(e).into_response();
    }
    record(&st, audit).await;
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&st, cookie_name(&st), &tok, Some(st.web.session_max)),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&st, login_cookie_name(&st), "", Some(Duration::ZERO)),
    );
    resp
}

/// Drops expired sessions (run at each login, so the table stays small
/// without a timer).
async fn prune_sessions(st: &AppState) {
    let now = st.rt.clock.now();
    let fmt = |d: std::time::Duration| {
        let t = now - chrono::Duration::from_std(d).unwrap_or_default();
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    if let Err(e) = st
        .rt
        .store
        .prune_sessions(&fmt(st.web.session_idle), &fmt(st.web.session_max))
        .await
    {
        tracing::warn!(error = %e, "cannot prune expired sessions");
    }
}

/// Writes an audit row; a failure is logged loudly rather than dropped,
/// since a missing login or logout row is what an investigation looks for.
async fn record(st: &AppState, entry: AuditEntry) {
    let event = entry.event.clone();
    if let Err(e) = st.rt.store.audit(entry).await {
        tracing::error!(error = %e, %event, "cannot write the audit row");
    }
}

pub(crate) async fn logout(State(st): State<AppState>, Extension(admin): Extension<Admin>) -> Response {
    // A session that could not be deleted is still valid: saying "logged
    // out" would be a lie, so the failure is reported.
    if let Err(e) = st.rt.store.delete_session(&admin.token_hash).await {
        return WebError::from(e).into_response();
    }
    record(
        &st,
        AuditEntry {
            actor: admin.actor().into(),
            event: "logout".into(),
            detail: String::new(),
            ..Default::default()
        },
    )
    .await;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, cookie_name(&st), "", Some(Duration::ZERO)));
    resp
}

#[derive(serde::Deserialize)]
pub(crate) struct PasswordChange {
    current: String,
    new: String,
    confirm: String,
}

/// Verifies the current password, stores the new hash and ends every other
/// session.
async fn change_password(st: &AppState, admin: &Admin, p: PasswordChange) -> Result<usize, WebError> {
    if p.new != p.confirm {
        return Err(WebError::BadRequest("the new passwords do not match".into()));
    }
    let stored = st.rt.admin_hash().await?.unwrap_or_default();
    if !st.limiter.verify(p.current, stored).await {
        return Err(WebError::BadRequest("the current password is wrong".into()));
    }
    let new = p.new;
    let hashed = tokio::task::spawn_blocking(move || crate::secrets::hash_password(&new))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| WebError::BadRequest(format!("new password refused: {e}")))?;
    st.rt.set_admin_hash(&hashed, admin.actor()).await?;
    Ok(st.rt.store.delete_other_sessions(&admin.token_hash).await?)
}

pub(crate) async fn change_password_form(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Form(p): Form<PasswordChange>,
) -> Response {
    match change_password(&st, &admin, p).await {
        Ok(_) => Redirect::to("/settings?ok=password").into_response(),
        Err(e) => Redirect::to(&format!("/settings?{}", super::flash::query("err", &e.public_message()))).into_response(),
    }
}

pub(crate) async fn change_password_api(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Json(p): Json<PasswordChange>,
) -> Result<Json<serde_json::Value>, WebError> {
    let ended = change_password(&st, &admin, p).await?;
    Ok(Json(serde_json::json!({ "ok": true, "other_sessions_ended": ended })))
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
