//! Incidents pages and API (issue 20): the list, one incident's timeline,
//! and the status change (analysts and admins; the route table enforces it,
//! the page only hides the form from viewers).

use super::auth::Admin;
use super::error::html_error;
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError};
use crate::runtime::incidents::{IncidentItem, IncidentRow};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use minijinja::context;
use serde_json::{Value, json};

#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct DetailQuery {
    #[serde(default)]
    ok: Option<String>,
    #[serde(default)]
    err: Option<String>,
    #[serde(default)]
    err_sig: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct StatusForm {
    status: String,
    #[serde(default)]
    note: String,
}

fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn row_json(i: &IncidentRow) -> Value {
    json!({ "i": i, "first": when(i.first_at), "last": when(i.last_at) })
}

fn item_json(t: &IncidentItem) -> Value {
    // Mail items link to the message drawer; others have no page.
    let href = t.target.filter(|_| t.kind == "mail").map(|m| format!("/messages/{m}/drawer"));
    json!({ "t": t, "when": when(t.at), "href": href })
}

pub(crate) async fn page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<ListQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "incidents");
    async {
        let rows = st.rt.incidents(q.status.as_deref(), 200).await?;
        let rows: Vec<Value> = rows.iter().map(row_json).collect();
        Ok::<_, WebError>(render(&st, "incidents.html", &cx, context! { rows, status => q.status }))
    }
    .await
    .unwrap_or_else(html_error)
}

pub(crate) async fn detail(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "incidents");
    async {
        let (head, items) = st.rt.incident(id).await?.ok_or(WebError::NotFound)?;
        let items: Vec<Value> = items.iter().map(item_json).collect();
        let ok = (q.ok.as_deref() == Some("status")).then_some("Status changed; the timeline and the audit log record it.");
        let err = super::flash::verified("err", q.err.as_deref(), q.err_sig.as_deref());
        let can_change = admin.role >= crate::runtime::Role::Analyst;
        Ok::<_, WebError>(render(
            &st,
            "incident.html",
            &cx,
            context! { inc => row_json(&head), items, ok, err, can_change, statuses => crate::runtime::incidents::INCIDENT_STATUSES },
        ))
    }
    .await
    .unwrap_or_else(html_error)
}

pub(crate) async fn set_status(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Form(f): Form<StatusForm>,
) -> Response {
    let back = format!("/incidents/{id}");
    match st.rt.set_incident_status(id, &f.status, admin.actor(), &f.note).await {
        Ok(true) => Redirect::to(&format!("{back}?ok=status")).into_response(),
        Ok(false) => html_error(WebError::NotFound),
        Err(e) => {
            let e = WebError::from(e);
            Redirect::to(&format!("{back}?{}", super::flash::query("err", &e.public_message()))).into_response()
        }
    }
}

pub(crate) async fn list_api(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Vec<IncidentRow>>, WebError> {
    Ok(Json(st.rt.incidents(q.status.as_deref(), 1000).await?))
}

pub(crate) async fn one_api(State(st): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, WebError> {
    let (incident, timeline) = st.rt.incident(id).await?.ok_or(WebError::NotFound)?;
    Ok(Json(json!({ "incident": incident, "timeline": timeline })))
}
