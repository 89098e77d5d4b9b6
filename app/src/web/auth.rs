//! Login, sessions, CSRF and the login rate limiter.
//!
//! The session cookie holds a random token; the store keeps only its
//! SHA-256, next to a per-session CSRF token that every unsafe request
//! must echo (header `X-CSRF-Token` or form field `_csrf`).

use super::limiter::Locked;
use super::security::{ClientIp, Nonce, same};
use super::templates::{PageCx, render};
use super::{AppState, WebError};
use crate::runtime::records::AuditEntry;
use crate::runtime::{BUILTIN_ADMIN, Role};
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

/// A logged-in user (of any role, despite the name, which predates roles),
/// put in request extensions by [`require_session`].
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) token_hash: String,
    pub(crate) csrf: String,
    pub(crate) user: String,
    pub(crate) role: Role,
    /// `role:name`, as the audit log records it.
    actor: String,
}

impl Admin {
    /// Audit actor name: the real user and the role they acted in.
    pub(crate) fn actor(&self) -> &str {
        &self.actor
    }
}

/// The audit actor for a user acting in a role.
fn actor_name(role: Role, user: &str) -> String {
    format!("{role}:{user}")
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

/// A logged-in user whose role is below what the route needs.
fn not_allowed(req: &Request, role: Role) -> Response {
    let msg = format!("your role ({role}) does not allow this; ask an admin");
    let p = req.uri().path();
    if p.starts_with("/api/") || req.method() != Method::GET {
        (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": msg }))).into_response()
    } else {
        let mut r = super::error::html_error(WebError::BadRequest(msg));
        *r.status_mut() = StatusCode::FORBIDDEN;
        r
    }
}

pub(super) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({"error": "missing or wrong CSRF token; reload the page"})),
    )
        .into_response()
}

/// Middleware for every session route: a valid, unexpired session of a user
/// whose role is at least `need`, and for unsafe methods its CSRF token.
pub(crate) async fn require_session(State((st, need)): State<(AppState, Role)>, req: Request, next: Next) -> Response {
    let Some(tok) = cookie_value(req.headers(), cookie_name(&st)) else {
        return unauthenticated(&req);
    };
    let th = hash(&tok);
    let row = match st.rt.session(&th).await {
        Ok(r) => r,
        Err(e) => return WebError::from(e).into_response(),
    };
    let Some(row) = row else { return unauthenticated(&req) };
    let now = st.rt.now();
    let idle = chrono::Duration::from_std(st.web.session_idle).unwrap_or_default();
    let max = chrono::Duration::from_std(st.web.session_max).unwrap_or_default();
    let expired = parse_time(&row.last_seen).is_none_or(|t| now - t > idle) || parse_time(&row.created_at).is_none_or(|t| now - t > max);
    if expired {
        // The expired row is refused either way; a failed delete is pruned later.
        if let Err(e) = st.rt.end_session(&th).await {
            tracing::warn!(error = %e, "could not delete an expired session");
        }
        return unauthenticated(&req);
    }
    // The role is looked up on every request: a removed user (no row, and
    // not the environment's admin) is logged out at once.
    let role = match row.role.as_deref() {
        Some(r) => r.parse::<Role>().ok(),
        None if row.user == BUILTIN_ADMIN => Some(Role::Admin),
        None => None,
    };
    let Some(role) = role else { return unauthenticated(&req) };
    if role < need {
        return not_allowed(&req, role);
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
    if let Err(e) = st.rt.touch_session(&th).await {
        return WebError::from(e).into_response();
    }
    let mut req = req;
    req.extensions_mut().insert(Admin {
        token_hash: th,
        csrf: row.csrf,
        actor: actor_name(role, &row.user),
        user: row.user,
        role,
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
    let now = st.rt.now();
    // Reserve the attempt before bcrypt runs (issue 16): parallel requests
    // cannot all slip past the check and be evaluated.
    if let Err(Locked(mins)) = st.limiter.reserve(ip, now) {
        let msg = format!("Too many failed attempts. Try again in {mins} minute(s).");
        return login_response(&st, &nonce, StatusCode::TOO_MANY_REQUESTS, Some(&msg));
    }
    // An empty name is the environment's admin, so the single-admin setup
    // (and its password managers' saved logins) keep working.
    let name = field("username").trim().to_string();
    let name = if name.is_empty() { BUILTIN_ADMIN.to_string() } else { name };
    let found = match st.rt.user_credentials(&name).await {
        Ok(h) => h,
        Err(e) => return WebError::from(e).into_response(),
    };
    let no_admin = name == BUILTIN_ADMIN && found.is_none();
    if no_admin && !has_other_users(&st).await {
        let msg = "No admin password is configured. Set POSTERN_ADMIN_PASSWORD_HASH (see `postern hash-password`) or add a user with `postern user add`.";
        return login_response(&st, &nonce, StatusCode::SERVICE_UNAVAILABLE, Some(msg));
    }
    // An unknown name costs the same bcrypt run as a wrong password, so
    // timing does not tell which names exist.
    let (stored, role) = match found {
        Some((h, r)) => (h, Some(r)),
        None => (decoy_hash().await, None),
    };
    let ok = st.limiter.verify(field("password"), stored).await;
    // A failed attempt names what was typed (bounded; names are not secret),
    // a successful one the user and role.
    let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let mut audit = AuditEntry {
        actor: format!("login:{shown}"),
        event: "login_failed".into(),
        detail: format!("from {ip}"),
        ..Default::default()
    };
    let Some(role) = role.filter(|_| ok) else {
        record(&st, audit).await;
        tracing::warn!(%ip, user = %shown, "failed dashboard login");
        return login_response(&st, &nonce, StatusCode::UNAUTHORIZED, Some("Wrong user name or password."));
    };
    (audit.actor, audit.event) = (actor_name(role, &name), "login".into());
    st.limiter.succeeded(ip);
    prune_sessions(&st).await;
    let (tok, csrf) = (token(), token());
    if let Err(e) = st.rt.open_session(&hash(&tok), &csrf, &ip.to_string(), &name).await {
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

/// Whether any stored user exists (then a missing environment admin is not
/// an outage: the others can still log in).
async fn has_other_users(st: &AppState) -> bool {
    st.rt.has_users().await.unwrap_or(false)
}

/// A bcrypt hash of a random secret at the production cost, made once.
async fn decoy_hash() -> String {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DECOY.get() {
        return h.clone();
    }
    let made = tokio::task::spawn_blocking(|| bcrypt::hash(token(), crate::secrets::BCRYPT_COST).unwrap_or_default())
        .await
        .unwrap_or_default();
    DECOY.get_or_init(|| made).clone()
}

/// Drops expired sessions (run at each login, so the table stays small
/// without a timer).
async fn prune_sessions(st: &AppState) {
    if let Err(e) = st.rt.prune_sessions(st.web.session_idle, st.web.session_max).await {
        tracing::warn!(error = %e, "cannot prune expired sessions");
    }
}

/// Writes an audit row; a failure is logged loudly rather than dropped,
/// since a missing login or logout row is what an investigation looks for.
async fn record(st: &AppState, entry: AuditEntry) {
    let event = entry.event.clone();
    if let Err(e) = st.rt.audit_login(entry).await {
        tracing::error!(error = %e, %event, "cannot write the audit row");
    }
}

pub(crate) async fn logout(State(st): State<AppState>, Extension(admin): Extension<Admin>) -> Response {
    // A session that could not be deleted is still valid: saying "logged
    // out" would be a lie, so the failure is reported.
    if let Err(e) = st.rt.end_session(&admin.token_hash).await {
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
    let stored = st.rt.user_credentials(&admin.user).await?.map(|(h, _)| h).unwrap_or_default();
    if !st.limiter.verify(p.current, stored).await {
        return Err(WebError::BadRequest("the current password is wrong".into()));
    }
    let new = p.new;
    let hashed = tokio::task::spawn_blocking(move || crate::secrets::hash_password(&new))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| WebError::BadRequest(format!("new password refused: {e}")))?;
    st.rt
        .set_user_hash(&admin.user, &hashed, admin.actor(), Some(&admin.token_hash))
        .await?;
    Ok(st.rt.end_other_sessions(&admin.token_hash).await?)
}

pub(crate) async fn change_password_form(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Form(p): Form<PasswordChange>,
) -> Response {
    // Admins change it on the settings page; everyone else on their own.
    let back = if admin.role == Role::Admin { "/settings" } else { "/password" };
    match change_password(&st, &admin, p).await {
        Ok(_) => Redirect::to(&format!("{back}?ok=password")).into_response(),
        Err(e) => Redirect::to(&format!("{back}?{}", super::flash::query("err", &e.public_message()))).into_response(),
    }
}

/// The signed-in user's own page: who they are, their role, and the
/// password form.
pub(crate) async fn password_page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    axum::extract::Query(flash): axum::extract::Query<super::pages::Flash>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "password");
    let (ok, err) = super::pages::flash_texts(&flash);
    render(
        &st,
        "password.html",
        &cx,
        context! { ok, err, user => admin.user, role => admin.role },
    )
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
