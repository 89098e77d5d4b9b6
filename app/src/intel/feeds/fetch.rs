//! One conditional download of a feed, with the body size capped.

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

use super::FeedSpec;
use crate::intel::IntelError;
use crate::intel::net::SafeClient;

/// The validators of the last good download, sent back so an unchanged feed
/// costs a 304 instead of the whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What the server answered.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// 304: the cached copy is current.
    NotModified,
    /// 200 with the whole body.
    Fresh { body: Vec<u8>, validators: Validators },
}

/// Downloads `spec`, conditionally if `since` is given, reading at most
/// `limit` bytes of body.
pub(crate) async fn fetch(client: &SafeClient, spec: &FeedSpec, since: Option<&Validators>, limit: usize) -> Result<Fetched, IntelError> {
    // The checked path (issue 16): a literal-IP feed URL is refused here,
    // since no resolver ever sees it. The refusal names no URL: a PhishTank
    // key is part of the path.
    let mut req = client.get(&spec.url).map_err(|e| match e {
        IntelError::Refused { why, .. } => IntelError::Refused {
            target: "the feed URL".into(),
            why,
        },
        other => other,
    })?;
    for (k, v) in &spec.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(since) = since {
        if let Some(etag) = &since.etag {
            req = req.header(IF_NONE_MATCH, etag.as_str());
        }
        if let Some(lm) = &since.last_modified {
            req = req.header(IF_MODIFIED_SINCE, lm.as_str());
        }
    }
    let mut resp = req.send().await.map_err(http_error)?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED && since.is_some() {
        return Ok(Fetched::NotModified);
    }
    // Any other answer (204, 206, an unasked-for 304) has no whole list in it.
    if status != StatusCode::OK {
        return Err(IntelError::Http(format!("HTTP {status}")));
    }
    if let Some(len) = resp.content_length()
        && len > limit as u64
    {
        return Err(too_large(limit));
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http_error)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Fresh { body, validators })
}

fn too_large(limit: usize) -> IntelError {
    IntelError::Http(format!("body larger than {limit} bytes"))
}

/// The error and its causes, without the URL: a PhishTank key is part of
/// the path, and this text ends up on the status page.
fn http_error(e: reqwest::Error) -> IntelError {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    IntelError::Http(msg)
}
