//! One-click digest links. They work without a dashboard login (the link is
//! the credential), so a GET only shows what the link would do; the action
//! needs a POST from that page, with a per-page CSRF cookie. Mail filters
//! that prefetch links therefore cannot release or delete anything.

use super::AppState;
use super::auth::{cookie_value, forbidden, set_cookie, token};
use super::security::{Nonce, same};
use super::templates::{PageCx, render};
use crate::runtime::LinkError;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use minijinja::context;
use std::time::Duration;

fn csrf_cookie(st: &AppState) -> &'static str {
    if st.web.insecure_cookies {
        "postern_digest"
    } else {
        "__Host-postern_digest"
    }
}

fn refused(st: &AppState, nonce: &Nonce, e: &LinkError) -> Response {
    let status = match e {
        LinkError::Invalid => StatusCode::NOT_FOUND,
        LinkError::Used | LinkError::Expired | LinkError::Stale(_) => StatusCode::GONE,
        LinkError::Op(_) => StatusCode::CONFLICT,
    };
    if let LinkError::Op(inner) = e {
        tracing::warn!(error = %inner, "digest link action failed");
    }
    let text = match e {
        LinkError::Op(crate::runtime::OpError::Runtime(_)) => "Something went wrong; the administrator can see the details.".into(),
        other => other.to_string(),
    };
    let mut r = render(st, "digest.html", &PageCx::anonymous(nonce), context! { error => text });
    *r.status_mut() = status;
    r
}

pub(crate) async fn confirm_page(State(st): State<AppState>, Extension(nonce): Extension<Nonce>, Path(tok): Path<String>) -> Response {
    match st.rt.digest_link(&tok).await {
        Ok((link, m)) => {
            let csrf = token();
            let mut r = render(
                &st,
                "digest.html",
                &PageCx::anonymous(&nonce),
                context! { link_csrf => csrf, action => link.action, m => m, token => tok },
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&st, csrf_cookie(&st), &csrf, Some(Duration::from_secs(3600))),
            );
            r
        }
        Err(e) => refused(&st, &nonce, &e),
    }
}

pub(crate) async fn redeem(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Path(tok): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let field = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let cookie = cookie_value(&headers, csrf_cookie(&st)).unwrap_or_default();
    if cookie.is_empty() || !same(&cookie, &field) {
        return forbidden();
    }
    match st.rt.redeem_digest_link(&tok).await {
        Ok(done) => {
            let pending = done.state == "pending";
            render(
                &st,
                "digest.html",
                &PageCx::anonymous(&nonce),
                context! { done => done.detail, pending => pending },
            )
        }
        Err(e) => refused(&st, &nonce, &e),
    }
}
