//! One action on a whole campaign (issue 17, item 4): release everywhere,
//! quarantine everywhere, block the senders. Buttons on the Campaigns page
//! and JSON for scripts; an analyst or admin only, with the session's CSRF
//! token. Every handler only calls a runtime verb.

use super::auth::Admin;
use super::{AppState, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};

/// What a campaign action did, per message or sender.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Done {
    campaign: i64,
    action: &'static str,
    results: Vec<String>,
}

#[derive(Clone, Copy)]
enum Act {
    Release,
    Quarantine,
    Block,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Quarantine => "quarantine",
            Self::Block => "block-sender",
        }
    }

    fn summary(self, id: i64, lines: &[String]) -> String {
        let (none, did) = match self {
            Self::Release => ("nothing of it is in quarantine", "released everywhere"),
            Self::Quarantine => ("everything of it is in quarantine already", "quarantined everywhere"),
            Self::Block => ("it has no sender to block", "senders blocked"),
        };
        if lines.is_empty() {
            format!("Campaign #{id}: {none}.")
        } else {
            format!("Campaign #{id} {did}: {}", lines.join("; "))
        }
    }
}

async fn run(st: &AppState, act: Act, id: i64, actor: &str) -> Result<Done, WebError> {
    let results = match act {
        Act::Release => st.rt.release_campaign(id, actor).await?,
        Act::Quarantine => st.rt.quarantine_campaign(id, actor).await?,
        Act::Block => st.rt.block_campaign_senders(id, actor).await?,
    };
    Ok(Done {
        campaign: id,
        action: act.name(),
        results,
    })
}

async fn form(st: AppState, a: Admin, act: Act, id: i64) -> Response {
    let q = match run(&st, act, id, a.actor()).await {
        Ok(d) => super::flash::query("done", &act.summary(id, &d.results)),
        Err(e) => super::flash::query("err", &e.public_message()),
    };
    Redirect::to(&format!("/campaigns?{q}")).into_response()
}

pub(crate) async fn quarantine_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> Response {
    form(st, a, Act::Quarantine, id).await
}

pub(crate) async fn block_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(id): Path<i64>) -> Response {
    form(st, a, Act::Block, id).await
}

pub(crate) async fn release_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<Done>, WebError> {
    Ok(Json(run(&st, Act::Release, id, a.actor()).await?))
}

pub(crate) async fn quarantine_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<Done>, WebError> {
    Ok(Json(run(&st, Act::Quarantine, id, a.actor()).await?))
}

pub(crate) async fn block_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<Done>, WebError> {
    Ok(Json(run(&st, Act::Block, id, a.actor()).await?))
}
