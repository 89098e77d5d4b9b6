//! The JSON API: everything the pages do, for scripts and integrations.
//! `/api/openapi.json` describes it.

use super::auth::Admin;
use super::forms;
use super::{AppState, WebError};
use crate::runtime::records::{AuditRow, Count, DayCounts, ListEntry, MessageDetail, MessageFilter, MessageSummary, OpKind};
use crate::runtime::{OpResult, Overrides, SWITCHABLE};
use crate::scan::learn::Class;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::{Value, json};

type ApiResult<T> = Result<Json<T>, WebError>;

pub(crate) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

pub(crate) async fn status(State(st): State<AppState>) -> ApiResult<Value> {
    Ok(Json(json!({ "listeners": st.rt.listeners() })))
}

#[derive(serde::Serialize)]
pub(crate) struct Page<T> {
    items: Vec<T>,
    /// Pass as `before` for the next page; absent on the last one.
    next_before: Option<i64>,
}

pub(crate) async fn messages(State(st): State<AppState>, Query(f): Query<MessageFilter>) -> ApiResult<Page<MessageSummary>> {
    let limit = f.limit.unwrap_or(50).clamp(1, 200);
    let items = st.rt.messages(&f).await?;
    let next_before = (items.len() as u32 == limit).then(|| items.last().map(|r| r.id)).flatten();
    Ok(Json(Page { items, next_before }))
}

pub(crate) async fn message(State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult<MessageDetail> {
    Ok(Json(st.rt.message_detail(id).await?.ok_or(WebError::NotFound)?))
}

pub(crate) async fn release(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<OpResult> {
    Ok(Json(st.rt.request_op(id, OpKind::Release, a.actor()).await?))
}

/// Learns as ham first; if Rspamd refuses, nothing is released and the
/// operator sees why.
pub(crate) async fn release_learn(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<Value> {
    let learned = st.rt.learn(id, Class::Ham, a.actor()).await?;
    let op = st.rt.request_op(id, OpKind::Release, a.actor()).await?;
    Ok(Json(json!({ "learn": learned, "release": op })))
}

pub(crate) async fn learn_spam(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<Value> {
    Ok(Json(json!({ "detail": st.rt.learn(id, Class::Spam, a.actor()).await? })))
}

pub(crate) async fn learn_ham(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<Value> {
    Ok(Json(json!({ "detail": st.rt.learn(id, Class::Ham, a.actor()).await? })))
}

pub(crate) async fn delete(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<OpResult> {
    Ok(Json(st.rt.request_op(id, OpKind::Delete, a.actor()).await?))
}

/// Issue 15, defect 3: the operator's answer to an action that failed
/// every attempt.
pub(crate) async fn retry_action(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<OpResult> {
    Ok(Json(st.rt.retry_failed_action(id, a.actor()).await?))
}

pub(crate) async fn dismiss_action(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<OpResult> {
    Ok(Json(st.rt.dismiss_failed_action(id, a.actor()).await?))
}

pub(crate) async fn rescan(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<Value> {
    let d = st.rt.rescan(id, a.actor()).await?;
    Ok(Json(json!({
        "verdict": d.verdict, "score": d.score, "tags": d.tags, "reason": d.reason,
        "note": "verdict recorded; nothing was moved. Release it yourself if it should go back.",
    })))
}

pub(crate) async fn lists(State(st): State<AppState>) -> ApiResult<Vec<ListEntry>> {
    Ok(Json(st.rt.list_entries().await?))
}

#[derive(serde::Deserialize)]
pub(crate) struct NewEntry {
    kind: String,
    pattern: String,
    reason: String,
}

pub(crate) async fn list_add(State(st): State<AppState>, Extension(a): Extension<Admin>, Json(e): Json<NewEntry>) -> ApiResult<Value> {
    let id = forms::add_entry(&st, &e.kind, &e.pattern, &e.reason, a.actor()).await?;
    Ok(Json(json!({ "id": id })))
}

#[derive(serde::Deserialize)]
pub(crate) struct Import {
    kind: String,
    text: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn list_import(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Json(i): Json<Import>,
) -> ApiResult<forms::ImportReport> {
    Ok(Json(forms::import(&st, &i.kind, &i.text, &i.reason, a.actor()).await?))
}

pub(crate) async fn list_delete(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> ApiResult<Value> {
    forms::remove_entry(&st, id, a.actor()).await?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(serde::Serialize)]
pub(crate) struct Stats {
    pub(crate) days: Vec<DayCounts>,
    pub(crate) totals: DayCounts,
    pub(crate) top_senders: Vec<Count>,
    pub(crate) top_domains: Vec<Count>,
}

/// The last `days` days, every day present (zero when quiet).
pub(crate) async fn stats_data(st: &AppState, days: i64) -> Result<Stats, WebError> {
    let today = st.rt.now().date_naive();
    let first = today - chrono::Duration::days(days - 1);
    let since = first.format("%Y-%m-%d").to_string();
    let got = st.rt.daily_counts(&since).await?;
    let mut all = Vec::new();
    let mut totals = DayCounts {
        day: format!("{since}..{}", today.format("%Y-%m-%d")),
        ..Default::default()
    };
    for d in first.iter_days().take(days as usize) {
        let day = d.format("%Y-%m-%d").to_string();
        let c = got
            .iter()
            .find(|c| c.day == day)
            .cloned()
            .unwrap_or(DayCounts { day, ..Default::default() });
        totals.pass += c.pass;
        totals.flag += c.flag;
        totals.junk += c.junk;
        totals.quarantine += c.quarantine;
        totals.delete += c.delete;
        totals.observed += c.observed;
        totals.released += c.released;
        all.push(c);
    }
    Ok(Stats {
        days: all,
        totals,
        top_senders: st.rt.top_senders(&since, false, 10).await?,
        top_domains: st.rt.top_senders(&since, true, 10).await?,
    })
}

#[derive(serde::Deserialize)]
pub(crate) struct StatsQuery {
    days: Option<i64>,
}

pub(crate) async fn stats(State(st): State<AppState>, Query(q): Query<StatsQuery>) -> ApiResult<Stats> {
    Ok(Json(stats_data(&st, q.days.unwrap_or(30).clamp(1, 365)).await?))
}

#[derive(serde::Deserialize)]
pub(crate) struct AuditQuery {
    account: Option<String>,
    event: Option<String>,
    actor: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

pub(crate) async fn audit(State(st): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Vec<AuditRow>> {
    Ok(Json(
        st.rt
            .audit_page(
                q.account.as_deref(),
                q.event.as_deref(),
                q.actor.as_deref(),
                q.before,
                q.limit.unwrap_or(100),
            )
            .await?,
    ))
}

/// Settings as stored and as in force, and which secrets are set (never
/// their values).
pub(crate) async fn settings_view(st: &AppState) -> Result<Value, WebError> {
    let o = st.rt.overrides().await?;
    let eff = st.rt.effective_scan(&o);
    let p = st.rt.pipeline();
    let running: Vec<&str> = p.scanners().iter().map(|s| s.id()).collect();
    let more = super::settings::view(st).await?;
    let scanners: Vec<Value> = SWITCHABLE
        .iter()
        .map(|id| json!({ "id": id, "enabled": !o.disabled.iter().any(|d| d == id), "running": running.contains(id) }))
        .collect();
    Ok(json!({
        "overrides": o,
        "effective": {
            "threshold_flag": p.policy().flag,
            "threshold_quarantine": p.policy().quarantine,
            "rspamd_url": eff.rspamd_url,
            "rspamd_controller_url": eff.rspamd_controller_url,
            "clamd_addr": eff.clamd_addr,
            "scanners": running,
        },
        "scanners": scanners,
        "secrets": more["secrets"],
        "feeds": more["feeds"],
        "rules": more["rules"],
        "verdict_choices": more["verdict_choices"],
    }))
}

pub(crate) async fn settings(State(st): State<AppState>) -> ApiResult<Value> {
    Ok(Json(settings_view(&st).await?))
}

pub(crate) async fn settings_put(State(st): State<AppState>, Extension(a): Extension<Admin>, Json(o): Json<Overrides>) -> ApiResult<Value> {
    st.rt.set_overrides(o, a.actor()).await?;
    Ok(Json(settings_view(&st).await?))
}
