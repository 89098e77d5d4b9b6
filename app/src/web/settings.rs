//! Issue 22, item 3: secrets, feeds, notification rules, digest schedule
//! and retention on the settings page and in the API. Secrets are
//! write-only: the page and API say only whether one is set and where it
//! comes from. Admin only (the routes are `Session`, which is admin).

use super::auth::Admin;
use super::{AppState, WebError};
use crate::config::FEEDS;
use crate::domain::Verdict;
use crate::runtime::Overrides;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde_json::{Value, json};

/// Verdicts a notification rule may name.
const NOTIFY_VERDICTS: &[Verdict] = &[Verdict::Flag, Verdict::Quarantine, Verdict::Delete];

#[derive(serde::Deserialize)]
pub(crate) struct SecretForm {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    clear: Option<String>,
}

/// `POST /settings/secrets`: stores or clears one secret.
pub(crate) async fn secret_save(State(st): State<AppState>, Extension(admin): Extension<Admin>, Form(f): Form<SecretForm>) -> Response {
    let clear = f.clear.is_some();
    let value = (!clear).then_some(f.value.as_str());
    let to = match st.rt.set_secret(&f.key, value, admin.actor()).await {
        Ok(()) => format!("/settings?ok={}", if clear { "secret_cleared" } else { "secret" }),
        Err(e) => format!("/settings?{}", super::flash::query("err", &WebError::from(e).public_message())),
    };
    Redirect::to(&to).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct SecretValue {
    value: String,
}

/// `PUT /api/settings/secrets/{key}`.
pub(crate) async fn secret_put(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(key): Path<String>,
    Json(v): Json<SecretValue>,
) -> Result<Json<Value>, WebError> {
    st.rt.set_secret(&key, Some(&v.value), a.actor()).await?;
    Ok(Json(json!({ "ok": true })))
}

/// `DELETE /api/settings/secrets/{key}`: back to the environment's value, if any.
pub(crate) async fn secret_delete(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(key): Path<String>,
) -> Result<Json<Value>, WebError> {
    st.rt.set_secret(&key, None, a.actor()).await?;
    Ok(Json(json!({ "ok": true })))
}

/// The secrets, feeds and rules part of `GET /api/settings`.
pub(crate) async fn view(st: &AppState) -> Result<Value, WebError> {
    let secrets = st.rt.secret_statuses().await?;
    let enabled = st.rt.feeds_enabled();
    let feeds: Vec<Value> = FEEDS
        .iter()
        .map(|f| json!({ "id": f, "enabled": enabled.iter().any(|e| e == f) }))
        .collect();
    let bg = st.rt.background_live();
    let (n, d, m) = (&bg.settings.notify, &bg.settings.digest, &bg.settings.maintenance);
    Ok(json!({
        "secrets": secrets,
        "feeds": feeds,
        "rules": {
            "ntfy_verdicts": n.ntfy_verdicts,
            "webhook_verdicts": n.webhook_verdicts,
            "notify_mask": n.mask,
            "alert_gap_mins": n.alert_gap_mins,
            "ntfy_url": n.ntfy_url,
            "webhook_url": n.webhook_url,
            "digest_at": d.at.format("%H:%M").to_string(),
            "retention_clean_days": m.clean_days,
            "retention_quarantine_days": m.quarantine_days,
            "retention_held_days": m.held_days,
            "hold_expunge_days": m.hold_expunge_days,
        },
        "verdict_choices": NOTIFY_VERDICTS,
    }))
}

fn opt(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn whole(v: Option<&String>, what: &str) -> Result<Option<u32>, WebError> {
    opt(v)
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| WebError::BadRequest(format!("{what} must be a whole number")))
        })
        .transpose()
}

/// Reads the feeds, rules, schedule and retention fields of the settings
/// form into `o`. Ticked boxes equal to what the environment gives count
/// as "not set here", so the page never freezes the environment's choice.
pub(crate) fn rules_from_form(st: &AppState, fields: &[(String, String)], o: &mut Overrides) -> Result<(), WebError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let ticked = |prefix: &str| -> Vec<String> {
        fields
            .iter()
            .filter_map(|(n, _)| n.strip_prefix(prefix).map(str::to_string))
            .collect()
    };
    if get("rules_shown").is_none() {
        return Ok(());
    }
    let env = st.rt.environment();
    let feeds: Vec<String> = FEEDS
        .iter()
        .map(|f| f.to_string())
        .filter(|f| ticked("feed_").contains(f))
        .collect();
    let env_feeds: Vec<String> = env.intel.feeds.iter().map(|(f, _)| f.clone()).collect();
    o.feeds = (sorted(&feeds) != sorted(&env_feeds)).then_some(feeds);
    let verdicts = |prefix: &str, env: &[Verdict]| {
        let mut v: Vec<Verdict> = NOTIFY_VERDICTS
            .iter()
            .copied()
            .filter(|v| ticked(prefix).iter().any(|t| Some(t.as_str()) == verdict_name(*v)))
            .collect();
        v.sort();
        let mut e = env.to_vec();
        e.sort();
        (v != e).then_some(v)
    };
    o.ntfy_verdicts = verdicts("ntfy_", &env.background.notify.ntfy_verdicts);
    o.webhook_verdicts = verdicts("webhook_", &env.background.notify.webhook_verdicts);
    let mask = get("notify_mask").is_some();
    o.notify_mask = (mask != env.background.notify.mask).then_some(mask);
    o.alert_gap_mins = whole(get("alert_gap_mins"), "the alert interval")?;
    o.ntfy_url = opt(get("ntfy_url"));
    o.webhook_url = opt(get("webhook_url"));
    o.digest_at = opt(get("digest_at"));
    o.retention_clean_days = whole(get("retention_clean_days"), "retention")?;
    o.retention_quarantine_days = whole(get("retention_quarantine_days"), "retention")?;
    o.retention_held_days = whole(get("retention_held_days"), "retention")?;
    o.hold_expunge_days = whole(get("hold_expunge_days"), "retention")?;
    Ok(())
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn verdict_name(v: Verdict) -> Option<&'static str> {
    match v {
        Verdict::Flag => Some("flag"),
        Verdict::Quarantine => Some("quarantine"),
        Verdict::Delete => Some("delete"),
        _ => None,
    }
}
