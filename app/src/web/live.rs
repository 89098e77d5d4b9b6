//! Mail Postern let through, acted on from the drawer (issue 22): quarantine
//! on request. The message is read from its mailbox by the runtime (never
//! IMAP from here); preview and learning use the same runtime verb.

use super::auth::Admin;
use super::{AppState, WebError};
use crate::runtime::OpResult;
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};

/// Moves a passed or flagged message into the account's quarantine folder
/// (its EML copy kept first, audited as the caller).
pub(crate) async fn quarantine(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<OpResult>, WebError> {
    Ok(Json(st.rt.quarantine_message(id, a.actor()).await?))
}
