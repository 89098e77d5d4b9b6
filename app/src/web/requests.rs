//! Release requests from mailbox owners (issue 22, item 2): the list an
//! analyst or admin works through, and the approve and deny verbs. Approving
//! releases the message in the analyst's own name.

use super::auth::Admin;
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError, flash};
use crate::runtime::OpError;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

/// Flash texts, signed like the dashboard's.
#[derive(serde::Deserialize, Default)]
pub(crate) struct RequestsFlash {
    ok: Option<String>,
    ok_sig: Option<String>,
    err: Option<String>,
    err_sig: Option<String>,
}

pub(crate) async fn page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(f): Query<RequestsFlash>,
) -> Result<Response, WebError> {
    let requests = st.rt.release_requests(false).await?;
    // Not `ok`/`err`: base.html would show those a second time.
    let notice = flash::verified("ok", f.ok.as_deref(), f.ok_sig.as_deref());
    let problem = flash::verified("err", f.err.as_deref(), f.err_sig.as_deref());
    let cx = PageCx::admin(&nonce, &admin, "requests");
    Ok(render(&st, "requests.html", &cx, context! { requests, notice, problem }))
}

async fn decide(st: &AppState, admin: &Admin, id: i64, approve: bool) -> Response {
    let q = match st.rt.decide_release_request(id, approve, admin.actor()).await {
        Ok(r) if approve => flash::query("ok", &format!("Approved: {} ({})", r.detail, r.state)),
        Ok(_) => flash::query("ok", "Denied; the message stays in quarantine."),
        Err(OpError::NotFound) => flash::query("err", "no open request with that id"),
        Err(e @ (OpError::NotQuarantined | OpError::Shadow | OpError::Busy)) => flash::query("err", &e.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, id, "release request decision failed");
            flash::query("err", "Something went wrong; see the server log.")
        }
    };
    Redirect::to(&format!("/requests?{q}")).into_response()
}

pub(crate) async fn approve(State(st): State<AppState>, Extension(admin): Extension<Admin>, Path(id): Path<i64>) -> Response {
    decide(&st, &admin, id, true).await
}

pub(crate) async fn deny(State(st): State<AppState>, Extension(admin): Extension<Admin>, Path(id): Path<i64>) -> Response {
    decide(&st, &admin, id, false).await
}
