//! `GET /api/stats/top`: which engines contributed, the URL domains and the
//! attachment types of the period (the stats page shows the same tables).

use super::{AppState, WebError};
use crate::runtime::records::TopStats;
use axum::Json;
use axum::extract::{Query, State};

#[derive(Debug, serde::Deserialize)]
pub(crate) struct TopQuery {
    days: Option<i64>,
    limit: Option<u32>,
}

pub(crate) async fn top(State(st): State<AppState>, Query(q): Query<TopQuery>) -> Result<Json<TopStats>, WebError> {
    let (days, limit) = (q.days.unwrap_or(30).clamp(1, 365), q.limit.unwrap_or(10).clamp(1, 100));
    Ok(Json(st.rt.top_stats(days, limit).await?))
}
