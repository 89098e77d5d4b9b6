//! Search and purge (issue 17, item 5): pages for people, JSON for scripts,
//! and a progress stream. Analysts and admins only (the route table says
//! so); every handler calls runtime verbs, which do the IMAP work.

use super::auth::Admin;
use super::error::html_error;
use super::reports::Done;
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError};
use crate::runtime::{MAX_SEARCH_LEN, PurgeJobRow, PurgeView};
use axum::extract::{Form, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use futures::{Stream, StreamExt};
use minijinja::context;
use std::convert::Infallible;
use std::time::Duration;

/// How often the progress stream looks for a change.
const POLL: Duration = Duration::from_millis(500);

/// The search form and the API's body.
#[derive(serde::Deserialize)]
pub(crate) struct SearchForm {
    criterion: String,
    value: String,
}

fn back(path: &str, field: &str, text: &str) -> Response {
    Redirect::to(&format!("{path}?{}", super::flash::query(field, text))).into_response()
}

pub(crate) async fn page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(flash): Query<Done>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "purge");
    let (done, err) = flash.texts();
    match st.rt.purge_jobs().await {
        Ok(jobs) => render(
            &st,
            "purge.html",
            &cx,
            context! { jobs, max_len => MAX_SEARCH_LEN, ok => done, err },
        ),
        Err(e) => html_error(e.into()),
    }
}

pub(crate) async fn job_page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Query(flash): Query<Done>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "purge");
    let (done, err) = flash.texts();
    match st.rt.purge_view(id).await {
        Ok(Some(job)) => render(&st, "purge_job.html", &cx, context! { job, ok => done, err }),
        Ok(None) => html_error(WebError::NotFound),
        Err(e) => html_error(e.into()),
    }
}

pub(crate) async fn search_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Form(f): Form<SearchForm>) -> Response {
    match st.rt.purge_search(&f.criterion, &f.value, a.actor()).await {
        Ok(v) => Redirect::to(&format!("/purge/{}", v.job.id)).into_response(),
        Err(e) => back("/purge", "err", &WebError::from(e).public_message()),
    }
}

pub(crate) async fn start_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> Response {
    let path = format!("/purge/{id}");
    match st.rt.purge_start(id, a.actor()).await {
        Ok(v) => back(
            &path,
            "done",
            &format!("Purge #{id} started: {} message(s) to quarantine.", v.job.matched),
        ),
        Err(e) => back(&path, "err", &WebError::from(e).public_message()),
    }
}

pub(crate) async fn search_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Json(f): Json<SearchForm>,
) -> Result<Json<PurgeView>, WebError> {
    Ok(Json(st.rt.purge_search(&f.criterion, &f.value, a.actor()).await?))
}

pub(crate) async fn list_api(State(st): State<AppState>) -> Result<Json<Vec<PurgeJobRow>>, WebError> {
    Ok(Json(st.rt.purge_jobs().await?))
}

pub(crate) async fn one_api(State(st): State<AppState>, Path(id): Path<i64>) -> Result<Json<PurgeView>, WebError> {
    st.rt.purge_view(id).await?.map(Json).ok_or(WebError::NotFound)
}

pub(crate) async fn start_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<PurgeView>, WebError> {
    Ok(Json(st.rt.purge_start(id, a.actor()).await?))
}

/// The job's progress, sent on connect and whenever it changes; the stream
/// ends when the job is done (or with the server).
pub(crate) async fn events(State(st): State<AppState>, Path(id): Path<i64>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rt = st.rt.clone();
    let stream = futures::stream::unfold((rt, None::<String>, false), move |(rt, last, ended)| async move {
        if ended {
            return None;
        }
        loop {
            if last.is_some() {
                tokio::time::sleep(POLL).await;
            }
            let job = match rt.purge_progress(id).await {
                Ok(Some(j)) => j,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, job = id, "cannot read purge progress");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            let data = serde_json::to_string(&job).unwrap_or_else(|_| "{}".into());
            if last.as_deref() != Some(data.as_str()) {
                let done = job.state == "done";
                let ev = Event::default().event("purge").data(data.clone());
                return Some((Ok(ev), (rt, Some(data), done)));
            }
        }
    });
    let shutdown = st.shutdown.clone();
    let stream = stream.take_until(async move { shutdown.cancelled_owned().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
}
