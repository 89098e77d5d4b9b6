//! Threat-intelligence API: indicators (IOCs) with their sightings, and
//! the feeds' state with an on-demand refresh.

use super::auth::Admin;
use super::{AppState, WebError};
use crate::intel::ioc::Submitted;
use crate::runtime::records::{IndicatorRow, SightingRow};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

type ApiResult<T> = Result<Json<T>, WebError>;

/// One indicator or a batch.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    Many(Vec<Submitted>),
    One(Submitted),
}

#[derive(serde::Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    100
}

/// Most indicators accepted in one request.
const MAX_BATCH: usize = 10_000;

pub(crate) async fn add(State(st): State<AppState>, Extension(a): Extension<Admin>, Json(body): Json<OneOrMany>) -> ApiResult<Value> {
    let items = match body {
        OneOrMany::Many(v) => v,
        OneOrMany::One(i) => vec![i],
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(WebError::BadRequest(format!("send 1 to {MAX_BATCH} indicators")));
    }
    let mut valid = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (n, i) in items.into_iter().enumerate() {
        match i.validate() {
            Ok(v) => valid.push(v),
            Err(e) => errors.push(format!("item {n}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(WebError::BadRequest(format!("nothing stored: {}", errors.join("; "))));
    }
    let (ids, rechecks) = st.rt.add_indicators(valid, a.actor()).await?;
    Ok(Json(json!({ "ids": ids, "rechecks_queued": rechecks })))
}

pub(crate) async fn list(State(st): State<AppState>, Query(q): Query<PageQuery>) -> ApiResult<Vec<IndicatorRow>> {
    Ok(Json(st.rt.indicators(q.limit.clamp(1, 1000), q.offset).await?))
}

pub(crate) async fn one(State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult<IndicatorRow> {
    st.rt.indicator(id).await?.map(Json).ok_or(WebError::NotFound)
}

pub(crate) async fn remove(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<Value> {
    if !st.rt.delete_indicator(id, a.actor()).await? {
        return Err(WebError::NotFound);
    }
    st.rt.sync_indicators().await?;
    Ok(Json(json!({ "ok": true })))
}

pub(crate) async fn sightings(State(st): State<AppState>, Path(id): Path<i64>, Query(q): Query<PageQuery>) -> ApiResult<Vec<SightingRow>> {
    Ok(Json(st.rt.sightings(id, q.limit.clamp(1, 1000)).await?))
}

pub(crate) async fn feeds(State(st): State<AppState>) -> ApiResult<Value> {
    Ok(Json(st.rt.intel_status()))
}

pub(crate) async fn refresh(State(st): State<AppState>) -> ApiResult<Value> {
    let report = st.rt.refresh_feeds().await?;
    Ok(Json(report))
}
