//! One error type for the web layer. The client gets a generic message and a
//! reference; the detail goes to the log only.

use crate::runtime::RuntimeError;
use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

/// Web failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The listener could not be bound or failed.
    #[error("dashboard listener: {0}")]
    Bind(std::io::Error),
    /// A template failed to load or render.
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::runtime::records::StoreError),
    /// Settings or pipeline failure.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// Anything else internal.
    #[error("{0}")]
    Internal(String),
    /// The client asked for something that does not exist.
    #[error("not found")]
    NotFound,
    /// The request is malformed or refused; the message is safe to show.
    #[error("{0}")]
    BadRequest(String),
    /// A conflicting state; the message is safe to show.
    #[error("{0}")]
    Conflict(String),
    /// An upstream service (Rspamd) failed; the message is safe to show.
    #[error("{0}")]
    Upstream(String),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Runtime(RuntimeError::Invalid(_) | RuntimeError::Scan(_)) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text the client may see.
    pub fn public_message(&self) -> String {
        match self {
            Self::NotFound => "not found".into(),
            Self::BadRequest(m) | Self::Conflict(m) | Self::Upstream(m) => m.clone(),
            Self::Runtime(e @ (RuntimeError::Invalid(_) | RuntimeError::Scan(_))) => e.to_string(),
            _ => "internal error; see the server log".into(),
        }
    }
}

impl From<crate::runtime::OpError> for WebError {
    fn from(e: crate::runtime::OpError) -> Self {
        use crate::runtime::OpError as E;
        match e {
            E::NotFound => Self::NotFound,
            E::NotQuarantined | E::NotFailed | E::Busy | E::NoCopy | E::Shadow | E::Refused(_) => Self::Conflict(e.to_string()),
            E::Fetch(f @ crate::runtime::PeekError::Unreachable(_)) => Self::Upstream(f.to_string()),
            E::Fetch(f) => Self::Conflict(f.to_string()),
            E::Learn(l) => Self::Upstream(l.to_string()),
            E::Io(m) => Self::Internal(m),
            E::Runtime(r) => Self::Runtime(r),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(serde_json::json!({ "error": self.public_message() }))).into_response()
    }
}

/// HTML pages render their own error page; this is for the rare failure
/// while rendering it.
pub(crate) fn html_error(e: WebError) -> Response {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "page failed");
    }
    let msg = minijinja::HtmlEscape(&e.public_message()).to_string();
    (
        status,
        Html(format!(
            "<!doctype html><title>Postern</title><main><h1>{}</h1><p>{msg}</p><p><a href=\"/\">Back</a></p></main>",
            status.as_u16()
        )),
    )
        .into_response()
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        WebError::NotFound.into_response()
    } else {
        html_error(WebError::NotFound)
    }
}
