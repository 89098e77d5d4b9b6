//! The mailbox owner's quarantine (issue 22, item 2): sign-in by one-time
//! link or by proving the IMAP password, the owner's own list, and release.
//! Owners have sessions of their own (cookie and table apart from the
//! dashboard's), so an owner can never reach a dashboard route, and every
//! query is scoped to the session's one account by the runtime.

use super::auth::{cookie_value, forbidden, set_cookie, token};
use super::limiter::Locked;
use super::security::{ClientIp, Nonce, same};
use super::templates::{PageCx, render};
use super::{AppState, WebError, flash};
use crate::runtime::{LinkError, OpError, OwnerRelease};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use sha2::{Digest, Sha256};
use std::time::Duration;

fn session_cookie(st: &AppState) -> &'static str {
    if st.web.insecure_cookies {
        "postern_owner"
    } else {
        "__Host-postern_owner"
    }
}

/// The per-page CSRF cookie of the sign-in forms and the link page.
fn form_cookie(st: &AppState) -> &'static str {
    if st.web.insecure_cookies {
        "postern_owner_form"
    } else {
        "__Host-postern_owner_form"
    }
}

fn hash(t: &str) -> String {
    hex::encode(Sha256::digest(t.as_bytes()))
}

fn field(body: &[u8], name: &str) -> String {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A signed-in owner.
struct Owner {
    account: String,
    csrf: String,
    token_hash: String,
}

async fn owner(st: &AppState, headers: &HeaderMap) -> Result<Option<Owner>, WebError> {
    let Some(tok) = cookie_value(headers, session_cookie(st)) else {
        return Ok(None);
    };
    let th = hash(&tok);
    Ok(st
        .rt
        .owner_session(&th, st.web.session_idle, st.web.session_max)
        .await?
        .map(|(account, csrf)| Owner {
            account,
            csrf,
            token_hash: th,
        }))
}

/// The owner behind an unsafe request whose form carries the session's
/// CSRF token; without a session no token can be right, so that is a 403 too.
async fn owner_posting(st: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Owner, Response> {
    match owner(st, headers).await {
        Ok(Some(o)) if same(&field(body, "_csrf"), &o.csrf) => Ok(o),
        Ok(_) => Err(forbidden()),
        Err(e) => Err(e.into_response()),
    }
}

/// Whether an anonymous form carries the token its own page set as a cookie.
fn form_ok(st: &AppState, headers: &HeaderMap, body: &[u8]) -> bool {
    let cookie = cookie_value(headers, form_cookie(st)).unwrap_or_default();
    !cookie.is_empty() && same(&cookie, &field(body, "_csrf"))
}

fn with_form_cookie(st: &AppState, mut r: Response, t: &str) -> Response {
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, form_cookie(st), t, Some(Duration::from_secs(3600))),
    );
    r
}

fn login_page_with(st: &AppState, nonce: &Nonce, status: StatusCode, error: Option<&str>, sent: bool) -> Response {
    let t = token();
    let mut r = render(
        st,
        "owner_login.html",
        &PageCx::anonymous(nonce),
        context! { form_csrf => t, error => error, sent => sent },
    );
    *r.status_mut() = status;
    with_form_cookie(st, r, &t)
}

pub(crate) async fn login_page(State(st): State<AppState>, Extension(nonce): Extension<Nonce>) -> Response {
    login_page_with(&st, &nonce, StatusCode::OK, None, false)
}

fn locked(st: &AppState, nonce: &Nonce, mins: i64) -> Response {
    let msg = format!("Too many attempts. Try again in {mins} minute(s).");
    login_page_with(st, nonce, StatusCode::TOO_MANY_REQUESTS, Some(&msg), false)
}

/// Mails a sign-in link. Every request is charged to the login limiter and
/// never given back, so the form cannot be used to flood a mailbox.
pub(crate) async fn login_link(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !form_ok(&st, &headers, &body) {
        return forbidden();
    }
    if let Err(Locked(mins)) = st.limiter.reserve(ip, st.rt.now()) {
        return locked(&st, &nonce, mins);
    }
    match st.rt.send_owner_links(&field(&body, "address")).await {
        Ok(_) => login_page_with(&st, &nonce, StatusCode::OK, None, true),
        Err(e) => {
            let e = WebError::from(e);
            login_page_with(&st, &nonce, StatusCode::SERVICE_UNAVAILABLE, Some(&e.public_message()), false)
        }
    }
}

fn signed_in(st: &AppState, session: &str) -> Response {
    let mut r = Redirect::to("/my").into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(st, session_cookie(st), session, Some(st.web.session_max)),
    );
    h.append(header::SET_COOKIE, set_cookie(st, form_cookie(st), "", Some(Duration::ZERO)));
    r
}

/// Signs in by proving the IMAP password against the account's server.
/// Rate-limited like the dashboard login; the password is never stored.
pub(crate) async fn login_imap(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !form_ok(&st, &headers, &body) {
        return forbidden();
    }
    if let Err(Locked(mins)) = st.limiter.reserve(ip, st.rt.now()) {
        return locked(&st, &nonce, mins);
    }
    let (tok, csrf) = (token(), token());
    let (login, password) = (field(&body, "login"), field(&body, "password"));
    match st.rt.owner_imap_login(&login, &password, &hash(&tok), &csrf, &ip.to_string()).await {
        Ok(Some(_)) => {
            st.limiter.succeeded(ip);
            signed_in(&st, &tok)
        }
        Ok(None) => login_page_with(
            &st,
            &nonce,
            StatusCode::UNAUTHORIZED,
            Some("Wrong login or password, or the mail server is unreachable."),
            false,
        ),
        Err(e) => WebError::from(e).into_response(),
    }
}

fn link_refused(st: &AppState, nonce: &Nonce, e: &LinkError) -> Response {
    let status = match e {
        LinkError::Invalid => StatusCode::NOT_FOUND,
        LinkError::Op(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::GONE,
    };
    let text = match e {
        LinkError::Op(inner) => {
            tracing::warn!(error = %inner, "owner sign-in link failed");
            "Something went wrong; the administrator can see the details.".to_string()
        }
        other => format!("{other}. Ask for a new sign-in link."),
    };
    let mut r = render(st, "owner_link.html", &PageCx::anonymous(nonce), context! { error => text });
    *r.status_mut() = status;
    r
}

/// What a sign-in link opens; signing in needs the button (a POST), so mail
/// filters that prefetch links cannot use it up.
pub(crate) async fn link_page(State(st): State<AppState>, Extension(nonce): Extension<Nonce>, Path(tok): Path<String>) -> Response {
    match st.rt.owner_link(&tok).await {
        Ok(account) => {
            let t = token();
            let r = render(
                &st,
                "owner_link.html",
                &PageCx::anonymous(&nonce),
                context! { form_csrf => t, account => account, token => tok },
            );
            with_form_cookie(&st, r, &t)
        }
        Err(e) => link_refused(&st, &nonce, &e),
    }
}

pub(crate) async fn link_redeem(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(link): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !form_ok(&st, &headers, &body) {
        return forbidden();
    }
    let (tok, csrf) = (token(), token());
    match st.rt.redeem_owner_link(&link, &hash(&tok), &csrf, &ip.to_string()).await {
        Ok(_) => signed_in(&st, &tok),
        Err(e) => link_refused(&st, &nonce, &e),
    }
}

/// Flash texts of the owner pages, signed like the dashboard's.
#[derive(serde::Deserialize, Default)]
pub(crate) struct OwnerFlash {
    ok: Option<String>,
    ok_sig: Option<String>,
    err: Option<String>,
    err_sig: Option<String>,
}

/// The owner's own quarantine and release requests.
pub(crate) async fn page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    headers: HeaderMap,
    Query(f): Query<OwnerFlash>,
) -> Result<Response, WebError> {
    let Some(o) = owner(&st, &headers).await? else {
        return Ok(Redirect::to("/my/login").into_response());
    };
    let messages = st.rt.owner_quarantine(&o.account, None).await?;
    let requests = st.rt.owner_requests(&o.account).await?;
    // Not `ok`/`err`: base.html would show those a second time.
    let notice = flash::verified("ok", f.ok.as_deref(), f.ok_sig.as_deref());
    let problem = flash::verified("err", f.err.as_deref(), f.err_sig.as_deref());
    let pending: Vec<i64> = requests.iter().filter(|r| r.state == "pending").map(|r| r.message).collect();
    Ok(render(
        &st,
        "owner.html",
        &PageCx::anonymous(&nonce),
        context! { account => o.account, owner_csrf => o.csrf, messages, requests, pending, notice, problem },
    ))
}

pub(crate) async fn release(State(st): State<AppState>, Path(id): Path<i64>, headers: HeaderMap, body: Bytes) -> Response {
    let o = match owner_posting(&st, &headers, &body).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let q = match st.rt.owner_release(&o.account, id).await {
        Ok(OwnerRelease::Released(r)) if r.state == "pending" => {
            flash::query("ok", "Release queued; it happens as soon as the mail server is reachable.")
        }
        Ok(OwnerRelease::Released(r)) if r.state == "done" => flash::query("ok", "Released to your inbox."),
        Ok(OwnerRelease::Released(r)) => flash::query("err", &format!("Not released: {}", r.detail)),
        Ok(OwnerRelease::Requested(_)) => flash::query(
            "ok",
            "This message may be dangerous, so an administrator must approve its release. Your request has been sent.",
        ),
        Err(e @ (OpError::NotFound | OpError::NotQuarantined | OpError::Shadow | OpError::Busy)) => flash::query("err", &e.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, account = %o.account, "owner release failed");
            flash::query("err", "Something went wrong; the administrator can see the details.")
        }
    };
    Redirect::to(&format!("/my?{q}")).into_response()
}

pub(crate) async fn logout(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let o = match owner_posting(&st, &headers, &body).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(e) = st.rt.owner_logout(&o.token_hash, &o.account).await {
        return WebError::from(e).into_response();
    }
    let mut r = Redirect::to("/my/login").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, session_cookie(&st), "", Some(Duration::ZERO)));
    r
}
