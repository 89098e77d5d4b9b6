//! The report queue and the campaign view (issue 17, items 3 and 4): pages
//! for people, JSON for scripts. Confirming, rejecting and releasing a
//! campaign need an analyst; every handler only calls runtime verbs.

use super::auth::Admin;
use super::error::html_error;
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError};
use crate::runtime::{CampaignView, ReportOutcome};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use minijinja::context;

/// Reports shown per page.
const LIMIT: u32 = 200;

/// The outcome of the last action, signed like every flash text.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
    done_sig: Option<String>,
    err: Option<String>,
    err_sig: Option<String>,
}

impl Done {
    pub(crate) fn texts(&self) -> (Option<String>, Option<String>) {
        (
            super::flash::verified("done", self.done.as_deref(), self.done_sig.as_deref()),
            super::flash::verified("err", self.err.as_deref(), self.err_sig.as_deref()),
        )
    }
}

fn back(path: &str, r: Result<String, WebError>) -> Response {
    let q = match r {
        Ok(text) => super::flash::query("done", &text),
        Err(e) => super::flash::query("err", &e.public_message()),
    };
    Redirect::to(&format!("{path}?{q}")).into_response()
}

fn said(o: &ReportOutcome) -> String {
    format!("Report #{} {}: {}", o.report, o.state, o.steps.join("; "))
}

pub(crate) async fn reports_page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(flash): Query<Done>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "reports");
    let (done, err) = flash.texts();
    match st.rt.report_queue(None, LIMIT).await {
        Ok(rows) => render(&st, "reports.html", &cx, context! { rows, ok => done, err }),
        Err(e) => html_error(e.into()),
    }
}

pub(crate) async fn confirm_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> Response {
    back(
        "/reports",
        st.rt.confirm_report(id, a.actor()).await.map(|o| said(&o)).map_err(Into::into),
    )
}

pub(crate) async fn reject_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> Response {
    back(
        "/reports",
        st.rt.reject_report(id, a.actor()).await.map(|o| said(&o)).map_err(Into::into),
    )
}

pub(crate) async fn campaigns_page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(flash): Query<Done>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "campaigns");
    let (done, err) = flash.texts();
    match st.rt.campaigns().await {
        Ok(campaigns) => render(&st, "campaigns.html", &cx, context! { campaigns, ok => done, err }),
        Err(e) => html_error(e.into()),
    }
}

pub(crate) async fn campaign_release_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> Response {
    let r = st.rt.release_campaign(id, a.actor()).await.map_err(WebError::from).map(|lines| {
        if lines.is_empty() {
            format!("Campaign #{id}: nothing of it is in quarantine.")
        } else {
            format!("Campaign #{id} released: {}", lines.join("; "))
        }
    });
    back("/campaigns", r)
}

pub(crate) async fn reports_api(State(st): State<AppState>) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(serde_json::json!({ "items": st.rt.report_queue(None, LIMIT).await? })))
}

pub(crate) async fn confirm_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<ReportOutcome>, WebError> {
    Ok(Json(st.rt.confirm_report(id, a.actor()).await?))
}

pub(crate) async fn reject_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<ReportOutcome>, WebError> {
    Ok(Json(st.rt.reject_report(id, a.actor()).await?))
}

pub(crate) async fn campaigns_api(State(st): State<AppState>) -> Result<Json<Vec<CampaignView>>, WebError> {
    Ok(Json(st.rt.campaigns().await?))
}
