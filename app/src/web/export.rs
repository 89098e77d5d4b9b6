//! CSV exports of the message list, the audit log and the daily stats, with
//! the filters of the page they were asked from (issue 22, item 5).
//!
//! Rows are read a page at a time and written into a streamed body, so a
//! long audit log is never held whole in memory. A text cell that a
//! spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR, and
//! their full-width forms) gets a leading `'` (OWASP "CSV injection"):
//! senders and subjects are attacker-controlled.

use super::pages::AuditQuery;
use super::{AppState, WebError};
use crate::runtime::records::{MessageFilter, MessageSummary};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::borrow::Cow;
use std::future::Future;

/// Rows read from the store per chunk.
pub(super) const PAGE: u32 = 200;
/// Rows one export writes at most, so an export is bounded work.
const MAX_ROWS: usize = 1_000_000;

pub(super) type Rows = Vec<Vec<String>>;

/// `s`, made inert for spreadsheets.
pub(crate) fn cell(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

pub(super) fn text(s: Option<&str>) -> String {
    cell(s.unwrap_or_default()).into_owned()
}

/// CSV bytes for `rows` (the csv crate quotes and escapes).
fn encode(rows: Rows) -> Result<Bytes, std::io::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(&r).map_err(std::io::Error::other)?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
}

/// A body that writes `header`, then pages from `fetch` until it returns no
/// next cursor. `fetch(before)` gives rows and the cursor of the next page.
pub(super) fn paged<F, Fut>(header: &'static [&'static str], mut fetch: F) -> Body
where
    F: FnMut(Option<i64>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Rows, Option<i64>), WebError>> + Send + 'static,
{
    let head = encode(vec![header.iter().map(|h| h.to_string()).collect()]);
    // State: the next page's cursor (`None`: done; `Some(None)`: first page).
    let start: Option<Option<i64>> = Some(None);
    let pages = futures::stream::unfold((start, 0usize), move |(cursor, written)| {
        let next = cursor.filter(|_| written < MAX_ROWS).map(&mut fetch);
        async move {
            match next?.await {
                Ok((rows, more)) => {
                    let n = rows.len();
                    Some((encode(rows), (more.map(Some), written + n)))
                }
                // Headers are sent already: the stream ends with an error,
                // so the client sees a failed download, not a short file.
                Err(e) => {
                    tracing::error!(error = %e, "CSV export failed");
                    Some((Err(std::io::Error::other("export failed")), (None, written)))
                }
            }
        }
    });
    Body::from_stream(futures::stream::once(async move { head }).chain(pages))
}

pub(super) fn csv_response(st: &AppState, what: &str, body: Body) -> Response {
    let day = st.rt.now().format("%Y-%m-%d");
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"postern-{what}-{day}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

const MESSAGE_COLUMNS: &[&str] = &[
    "id",
    "first_seen",
    "account",
    "mailbox",
    "from",
    "subject",
    "verdict",
    "score",
    "tags",
    "status",
    "location",
    "quarantined",
    "disposition",
    "observe_only",
];

fn message_row(m: &MessageSummary) -> Vec<String> {
    vec![
        m.id.to_string(),
        text(Some(&m.first_seen)),
        text(Some(&m.account)),
        text(Some(&m.mailbox)),
        text(m.from.as_deref()),
        text(m.subject.as_deref()),
        text(m.verdict.as_deref()),
        m.score.map(|s| s.to_string()).unwrap_or_default(),
        text(m.tags.as_deref()),
        text(Some(&m.status)),
        text(m.location.as_deref()),
        m.quarantined.to_string(),
        text(m.disposition.as_deref()),
        m.observe_only.to_string(),
    ]
}

/// `GET /export/messages.csv`: the dashboard's or the quarantine's list
/// (`quarantined=true`), with its verdict, account and search filters.
pub(crate) async fn messages(State(st): State<AppState>, Query(f): Query<MessageFilter>) -> Response {
    let rt = st.rt.clone();
    let body = paged(MESSAGE_COLUMNS, move |before| {
        let (rt, f) = (
            rt.clone(),
            MessageFilter {
                before,
                limit: Some(PAGE),
                ..f.clone()
            },
        );
        async move {
            let rows = rt.messages(&f).await?;
            let more = (rows.len() == PAGE as usize).then(|| rows.last().map(|r| r.id)).flatten();
            Ok((rows.iter().map(message_row).collect(), more))
        }
    });
    csv_response(&st, "messages", body)
}

const AUDIT_COLUMNS: &[&str] = &["id", "time", "actor", "account", "mailbox", "uid", "message", "event", "detail"];

/// `GET /export/audit.csv`: the audit log with the audit page's filters.
pub(crate) async fn audit(State(st): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    let rt = st.rt.clone();
    let body = paged(AUDIT_COLUMNS, move |before| {
        let (rt, account, event, actor) = (rt.clone(), q.account.clone(), q.event.clone(), q.actor.clone());
        async move {
            let rows = rt
                .audit_page(account.as_deref(), event.as_deref(), actor.as_deref(), before, PAGE)
                .await?;
            let more = (rows.len() == PAGE as usize).then(|| rows.last().map(|r| r.id)).flatten();
            let out = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        text(Some(&r.ts)),
                        text(Some(&r.actor)),
                        text(r.account.as_deref()),
                        text(r.mailbox.as_deref()),
                        r.uid.map(|u| u.to_string()).unwrap_or_default(),
                        r.message.map(|m| m.to_string()).unwrap_or_default(),
                        text(Some(&r.event)),
                        text(Some(&r.detail)),
                    ]
                })
                .collect();
            Ok((out, more))
        }
    });
    csv_response(&st, "audit", body)
}

#[derive(serde::Deserialize)]
pub(crate) struct StatsQuery {
    days: Option<i64>,
}

/// `GET /export/stats.csv`: verdict counts per day for the last `days`
/// (30 unless given), then the totals.
pub(crate) async fn stats(State(st): State<AppState>, Query(q): Query<StatsQuery>) -> Result<Response, WebError> {
    let data = super::api::stats_data(&st, q.days.unwrap_or(30).clamp(1, 365)).await?;
    let mut rows: Rows = vec![["day", "pass", "flag", "junk", "quarantine", "delete"].map(String::from).to_vec()];
    for d in data.days.iter().chain(std::iter::once(&data.totals)) {
        let day = if std::ptr::eq(d, &data.totals) {
            "total".to_string()
        } else {
            d.day.clone()
        };
        rows.push(vec![
            day,
            d.pass.to_string(),
            d.flag.to_string(),
            d.junk.to_string(),
            d.quarantine.to_string(),
            d.delete.to_string(),
        ]);
    }
    let bytes = encode(rows).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(csv_response(&st, "stats", Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_plain_text_kept() {
        for evil in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1", "\u{FF1D}1+1"] {
            assert!(cell(evil).starts_with('\''), "{evil:?}");
        }
        for fine in ["Invoice 42", "a@b.example", "", "'already quoted", " =leading space"] {
            assert_eq!(cell(fine), fine);
        }
        // The csv crate quotes what needs it; the neutralised cell stays one cell.
        let out = encode(vec![vec![text(Some("=cmd|' /C calc'!A0")), "a,b".into(), "say \"hi\"".into()]]).unwrap();
        assert_eq!(&out[..], b"'=cmd|' /C calc'!A0,\"a,b\",\"say \"\"hi\"\"\"\n");
    }
}
