//! One message: the detail drawer, the sanitised preview and the raw EML.
//!
//! The preview is the only place mail HTML reaches a browser. It is cleaned
//! by ammonia (no scripts, styles, event handlers or forms), stripped of
//! links and remote images, and served with its own CSP (`sandbox`, no
//! scripts, images only from `data:`) into a sandboxed iframe.

use super::auth::Admin;
use super::security::Nonce;
use super::templates::{PageCx, defang, render_string};
use super::{AppState, WebError};
use crate::domain::ScannerReport;
use crate::scan::ScanInput;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use std::collections::HashSet;

const MAX_PREVIEW_HTML: usize = 512 * 1024;

/// Parses the stored copy, if there is one and it is readable.
async fn parsed(st: &AppState, id: i64) -> Option<ScanInput> {
    parse(st, st.rt.raw_copy(id).await.ok()?).await
}

/// The stored copy, else the message read from its mailbox (mail let
/// through keeps no copy); the error is plain language for the preview.
async fn parsed_or_fetched(st: &AppState, id: i64) -> Result<ScanInput, String> {
    if let Some(i) = parsed(st, id).await {
        return Ok(i);
    }
    let raw = st.rt.message_source(id).await.map_err(|e| match e {
        crate::runtime::OpError::NoCopy => "Postern kept no copy of this message, so there is nothing to preview.".to_string(),
        e => format!("The message could not be read from the mailbox: {e}."),
    })?;
    parse(st, raw).await.ok_or_else(|| "The message could not be parsed.".to_string())
}

async fn parse(st: &AppState, raw: Vec<u8>) -> Option<ScanInput> {
    let opts = st.rt.input_options();
    // Bounded like a scan's parse: a message of hostile PDFs cannot hold
    // the page (the blocking task finishes on its own).
    let parse = tokio::task::spawn_blocking(move || ScanInput::parse(raw, &opts));
    tokio::time::timeout(crate::scan::budget::PARSE_BUDGET, parse).await.ok()?.ok()
}

pub(crate) async fn drawer(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let d = st.rt.message_detail(id).await?.ok_or(WebError::NotFound)?;
    let reports: Vec<ScannerReport> = d
        .scan_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let policy = st.rt.pipeline();
    let engines: Vec<_> = reports
        .iter()
        .map(|r| {
            let findings: Vec<_> = r
                .findings
                .iter()
                .map(|f| context! { tag => f.tag, detail => f.detail, weight => weight_text(policy.policy(), &f.tag) })
                .collect();
            context! { scanner => r.scanner, critical => r.critical, elapsed_ms => r.elapsed_ms, error => r.error, findings }
        })
        .collect();
    let input = parsed(&st, id).await;
    // No copy, but still in its folder: preview and actions read it on demand.
    let live = input.is_none() && st.rt.can_fetch(id).await?;
    let (auth, urls, attachments) = match &input {
        Some(i) => {
            let mut seen = HashSet::new();
            let urls: Vec<String> = i
                .urls
                .iter()
                .chain(i.qr_urls.iter())
                .filter(|u| seen.insert(u.as_str()))
                .take(100)
                .map(|u| defang(u.clone()))
                .collect();
            let atts: Vec<_> = i
                .attachments
                .iter()
                .map(|a| context! { name => a.name, declared => a.declared, sniffed => a.sniffed, size => a.size, sha256 => a.sha256, entries => a.entries.len() })
                .collect();
            (Some(i.auth), urls, atts)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let cx = PageCx::admin(&nonce, &admin, "");
    let html = render_string(
        &st,
        "drawer.html",
        &cx,
        context! {
            m => d, engines, auth, urls, attachments, has_copy => input.is_some(), live,
            from_name => input.as_ref().and_then(|i| i.from_name.clone()).filter(|n| !n.trim().is_empty()),
        },
    )?;
    Ok(Html(html).into_response())
}

fn weight_text(p: &crate::scan::Policy, tag: &str) -> String {
    match p.weight(tag) {
        Some(crate::scan::Weight::Score(s)) => format!("{s:+}"),
        Some(crate::scan::Weight::Quarantine) => "quarantine".into(),
        None => "info".into(),
    }
}

/// Cleans mail HTML for display: safe tags only, no links, no remote
/// images. Returns the HTML and how many remote images were dropped.
pub(crate) fn sanitise(html: &str) -> (String, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let remote = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = remote.clone();
    let clean = ammonia::Builder::default()
        .rm_tags(["a"])
        .add_tags(["span"])
        .attribute_filter(move |element, attribute, value| match (element, attribute) {
            ("img", "src") if value.starts_with("data:image/") => Some(value.into()),
            ("img", "src") => {
                counter.fetch_add(1, Ordering::Relaxed);
                None
            }
            (_, "href") => None,
            _ => Some(value.into()),
        })
        .add_url_schemes(["data"])
        .clean(html)
        .to_string();
    (clean, remote.load(Ordering::Relaxed))
}

pub(crate) async fn preview(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    st.rt.message_summary(id).await?.ok_or(WebError::NotFound)?;
    let body = match parsed_or_fetched(&st, id).await {
        Err(why) => format!("<p class=\"pv-note\">{}</p>", minijinja::HtmlEscape(&why)),
        Ok(i) if !i.html.is_empty() => {
            let mut src = i.html.join("\n<hr>\n");
            if src.len() > MAX_PREVIEW_HTML {
                let mut cut = MAX_PREVIEW_HTML;
                while !src.is_char_boundary(cut) {
                    cut -= 1;
                }
                src.truncate(cut);
            }
            let (clean, remote) = sanitise(&src);
            let note = if remote > 0 {
                format!("<p class=\"pv-note\">{remote} remote image(s) blocked. Links are disabled in previews.</p>")
            } else {
                "<p class=\"pv-note\">Links are disabled in previews.</p>".to_string()
            };
            format!("{note}{clean}")
        }
        Ok(i) => format!("<pre>{}</pre>", minijinja::HtmlEscape(&i.text)),
    };
    let n = &nonce.0;
    let doc = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>preview</title><style nonce=\"{n}\">\
         body{{font:14px/1.5 system-ui,sans-serif;margin:1rem;color:#111827;overflow-wrap:anywhere}}\
         img{{max-width:100%;height:auto}}pre{{white-space:pre-wrap}}\
         .pv-note{{background:#fef3c7;border:1px solid #fcd34d;padding:.25rem .5rem;font-size:12px}}</style></head>\
         <body>{body}</body></html>"
    );
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{n}'; img-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
    );
    let mut resp = Html(doc).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    Ok(resp)
}

pub(crate) async fn eml(State(st): State<AppState>, Path(id): Path<i64>) -> Result<Response, WebError> {
    let raw = st.rt.raw_copy(id).await?;
    let mut resp = raw.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("message/rfc822"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"postern-{id}.eml\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitiser_removes_active_content() {
        let evil = r#"<p onclick="x()">hi</p><script>document.title='pwned'</script>
            <img src="https://tracker.example/p.gif"><img src="data:image/png;base64,AAAA">
            <a href="javascript:alert(1)">click</a><iframe src="https://x.example"></iframe>
            <svg onload="alert(1)"></svg><style>body{}</style><form action="https://x.example"><input></form>"#;
        let (clean, remote) = sanitise(evil);
        assert_eq!(remote, 1);
        for bad in [
            "script",
            "onclick",
            "onload",
            "javascript:",
            "iframe",
            "tracker.example",
            "<style",
            "<form",
            "href",
        ] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
        assert!(clean.contains("data:image/png"));
        assert!(clean.contains("click"), "link text stays readable");
    }
}
