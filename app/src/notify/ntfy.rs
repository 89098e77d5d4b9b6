//! ntfy: published as JSON to the server's root with the topic in the body,
//! so titles in any language need no header encoding.

use super::{Notice, NoticeKind, NotifyError};
use crate::domain::Verdict;
use crate::intel::net::SafeClient;
use url::Url;

/// Priority (1–5) and emoji tags: the louder the verdict, the louder the phone.
fn style(n: &Notice) -> (u8, &'static str) {
    match (n.kind, n.verdict) {
        (NoticeKind::Verdict, Some(Verdict::Delete)) => (5, "rotating_light"),
        (NoticeKind::Verdict, Some(Verdict::Quarantine)) => (4, "warning"),
        (NoticeKind::Verdict, _) => (3, "mag"),
        (NoticeKind::ScannerUnhealthy, _) => (4, "stethoscope"),
        (NoticeKind::Clawback, _) => (4, "leftwards_arrow_with_hook"),
        (NoticeKind::Maintenance, _) => (4, "wrench"),
        (NoticeKind::AccountError, _) => (4, "mailbox_with_no_mail"),
        (NoticeKind::CompromiseSuspicion, _) => (5, "key"),
        (NoticeKind::UserReport, _) => (4, "fishing_pole_and_fish"),
    }
}

pub(super) async fn send(client: &SafeClient, topic_url: &str, token: Option<&str>, n: &Notice) -> Result<(), NotifyError> {
    let bad = |detail: String| NotifyError::Url { channel: "ntfy", detail };
    let url = Url::parse(topic_url).map_err(|e| bad(e.to_string()))?;
    let topic = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no topic in the URL path".into()))?
        .to_string();
    let mut root = url.clone();
    {
        let mut segs = root.path_segments_mut().map_err(|()| bad("cannot hold a path".into()))?;
        segs.pop();
    }
    let (priority, tag) = style(n);
    let body = serde_json::json!({
        "topic": topic,
        "title": n.title,
        "message": n.message,
        "priority": priority,
        "tags": [tag],
    });
    let mut req = client.request_url(reqwest::Method::POST, &root)?.json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = client.send(req).await?;
    if !resp.status().is_success() {
        return Err(NotifyError::Status {
            channel: "ntfy",
            status: resp.status().as_u16(),
        });
    }
    Ok(())
}
