//! Block or allow a message's sender or its domain from the drawer, where
//! the decision is made. The pattern comes from the stored message, never
//! from the form, so the button does what its label says; the reason is
//! optional here (the entry records which message it came from).

use super::auth::Admin;
use super::{AppState, WebError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SenderListForm {
    /// `block-sender`, `block-domain`, `allow-sender` or `allow-domain`.
    action: String,
    #[serde(default)]
    reason: String,
}

/// The list and the pattern for `action` on a message from `from`.
pub(crate) fn entry_for(action: &str, from: &str) -> Result<(&'static str, String), WebError> {
    let (kind, what) = action
        .split_once('-')
        .ok_or_else(|| WebError::BadRequest(format!("unknown action {action:?}")))?;
    let kind = match kind {
        "block" => "block",
        "allow" => "allow",
        _ => return Err(WebError::BadRequest(format!("unknown action {action:?}"))),
    };
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| WebError::BadRequest("the message has no sender address".into()))?;
    let pattern = match what {
        "sender" => from.to_string(),
        "domain" => format!("@{domain}"),
        _ => return Err(WebError::BadRequest(format!("unknown action {action:?}"))),
    };
    Ok((kind, pattern))
}

pub(crate) async fn add(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Form(f): Form<SenderListForm>,
) -> Response {
    let r = async {
        let m = st.rt.message_summary(id).await?.ok_or(WebError::NotFound)?;
        let (kind, pattern) = entry_for(&f.action, m.from.as_deref().unwrap_or(""))?;
        let reason = match f.reason.trim() {
            "" => format!("from the dashboard, message #{id}"),
            r => r.to_string(),
        };
        super::forms::add_entry(&st, kind, &pattern, &reason, admin.actor()).await
    }
    .await;
    match r {
        Ok(_) => Redirect::to("/lists?ok=list_added").into_response(),
        Err(e) => Redirect::to(&format!("/lists?{}", super::flash::query("err", &e.public_message()))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_22_the_drawer_buttons_map_to_sender_and_domain_entries() {
        let from = "m@evil.example";
        assert_eq!(entry_for("block-sender", from).unwrap(), ("block", from.to_string()));
        assert_eq!(entry_for("block-domain", from).unwrap(), ("block", "@evil.example".to_string()));
        assert_eq!(entry_for("allow-domain", from).unwrap(), ("allow", "@evil.example".to_string()));
        assert!(entry_for("block-everyone", from).is_err());
        assert!(entry_for("delete-sender", from).is_err());
        assert!(entry_for("block-domain", "no-address").is_err());
    }
}
