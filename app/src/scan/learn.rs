//! Teaching Rspamd's Bayes classifier (the dashboard's learn buttons and users' folders,
//! issue 17): `POST /learnspam` or `/learnham` on the **controller** worker, with its
//! password. Failures are returned to the operator, never swallowed.

use std::time::Duration;

/// Why learning failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LearnError {
    /// No controller URL is configured.
    #[error("the Rspamd controller is not configured (POSTERN_RSPAMD_CONTROLLER_URL or Settings → Endpoints)")]
    NotConfigured,
    /// Transport failure or timeout.
    #[error("cannot reach the Rspamd controller: {0}")]
    Transport(String),
    /// The controller answered with an error.
    #[error("Rspamd refused to learn (HTTP {status}): {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Rspamd's message.
        detail: String,
    },
}

/// Spam or ham.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Learn as spam.
    Spam,
    /// Learn as ham.
    Ham,
}

impl Class {
    /// `spam` or `ham`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Spam => "spam",
            Class::Ham => "ham",
        }
    }

    /// The class stored as `s`, if any.
    pub fn parse(s: &str) -> Option<Class> {
        match s {
            "spam" => Some(Class::Spam),
            "ham" => Some(Class::Ham),
            _ => None,
        }
    }
}

/// What the controller did with a lesson it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taught {
    /// Learned (or learned before).
    Learned(String),
    /// Accepted but not learned: Rspamd answers 204 when its learn
    /// conditions decline the message (too few words for the classifier, or
    /// the classifier already puts it in that class). Sending it again
    /// changes nothing.
    Skipped(String),
}

/// Sends `raw` to the controller's learn endpoint. An "already learned"
/// answer counts as learned: the classifier holds that lesson.
pub async fn teach(controller: Option<&str>, password: Option<&str>, raw: Vec<u8>, class: Class) -> Result<Taught, LearnError> {
    let base = controller.ok_or(LearnError::NotConfigured)?.trim_end_matches('/');
    let path = match class {
        Class::Spam => "learnspam",
        Class::Ham => "learnham",
    };
    // The request carries the controller password: a redirect (even a 307,
    // which re-sends headers) must never take it to another origin (issue 16).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| LearnError::Transport(e.to_string()))?;
    let mut req = client.post(format!("{base}/{path}")).body(raw);
    if let Some(p) = password {
        req = req.header("Password", p);
    }
    let resp = req.send().await.map_err(|e| LearnError::Transport(e.to_string()))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    // Only Rspamd's own short `error` field is shown to the admin; any other
    // body (an HTML page, a proxy's answer) is not echoed (issue 16).
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .map(|e| e.chars().filter(|c| !c.is_control()).take(120).collect())
        .unwrap_or_else(|| "no error message".to_string());
    if status.as_u16() == 204 {
        return Ok(Taught::Skipped(format!(
            "Rspamd declined to learn it ({path}): too few words, or its classifier already puts it in that class"
        )));
    }
    if status.is_success() {
        return Ok(Taught::Learned(format!("Rspamd learned it as {path}")));
    }
    // Rspamd answers 208 or an error mentioning "already learned" for a repeat.
    if detail.contains("already learned") {
        return Ok(Taught::Learned(format!("Rspamd had already learned it ({path})")));
    }
    let detail = if status.as_u16() == 401 {
        format!("{detail}; learning needs the controller's enable_password (POSTERN_RSPAMD_PASSWORD or Settings)")
    } else {
        detail
    };
    Err(LearnError::Refused {
        status: status.as_u16(),
        detail,
    })
}
