//! HTML form posts (post → redirect → get), and the list and settings logic
//! the JSON API shares with them.

use super::auth::Admin;
use super::pages::{Flash, lists_page};
use super::security::Nonce;
use super::templates::PageCx;
use super::{AppState, WebError, error::html_error};
use crate::runtime::{Overrides, SWITCHABLE};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use minijinja::context;

/// Longest list pattern accepted.
pub(crate) const MAX_PATTERN_LEN: usize = 254;

/// Normalises a sender pattern: `user@domain`, `@domain` or `*.domain`.
pub(crate) fn normalise_pattern(raw: &str) -> Result<String, String> {
    let p = raw.trim().to_ascii_lowercase();
    // RFC 5321 caps a path at 256 octets; anything longer is not an address
    // and would only bloat every pipeline rebuild (issue 16).
    if p.len() > MAX_PATTERN_LEN {
        return Err(format!("a pattern is at most {MAX_PATTERN_LEN} characters"));
    }
    let (local, domain) = if let Some(d) = p.strip_prefix("*.") {
        (None, d)
    } else if let Some(d) = p.strip_prefix('@') {
        (None, d)
    } else if let Some((l, d)) = p.rsplit_once('@') {
        (Some(l), d)
    } else {
        return Err(format!("{raw:?} is not user@domain, @domain or *.domain"));
    };
    if let Some(l) = local
        && (l.is_empty() || l.chars().any(|c| c.is_whitespace() || c == '@' || c.is_control()))
    {
        return Err(format!("{raw:?} has an invalid local part"));
    }
    let host_ok = matches!(url::Host::parse(domain), Ok(url::Host::Domain(d)) if d.contains('.') && !d.ends_with('.'));
    if !host_ok {
        return Err(format!("{domain:?} is not a domain name"));
    }
    Ok(p)
}

fn kind_ok(kind: &str) -> Result<&'static str, WebError> {
    match kind {
        "allow" => Ok("allow"),
        "block" => Ok("block"),
        _ => Err(WebError::BadRequest("kind must be allow or block".into())),
    }
}

/// Adds one entry and applies it.
pub(crate) async fn add_entry(st: &AppState, kind: &str, pattern: &str, reason: &str, actor: &str) -> Result<i64, WebError> {
    let kind = kind_ok(kind)?;
    let p = normalise_pattern(pattern).map_err(WebError::BadRequest)?;
    if reason.trim().is_empty() {
        return Err(WebError::BadRequest("give a reason, so the next admin knows why".into()));
    }
    st.rt
        .add_list_entry(kind, &p, reason.trim(), actor)
        .await?
        .ok_or_else(|| WebError::Conflict(format!("{p} is already on the {kind} list")))
}

/// Result of a bulk import.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct ImportReport {
    pub(crate) added: u32,
    pub(crate) duplicates: u32,
    pub(crate) errors: Vec<ImportError>,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct ImportError {
    pub(crate) line: usize,
    pub(crate) text: String,
    pub(crate) error: String,
}

/// One pattern per line; `# text` after it is the entry's reason, blank
/// lines and whole-line comments are skipped. Every bad line is reported
/// and the good ones are still added.
pub(crate) async fn import(st: &AppState, kind: &str, text: &str, reason: &str, actor: &str) -> Result<ImportReport, WebError> {
    let kind = kind_ok(kind)?;
    let mut report = ImportReport::default();
    let mut good = Vec::new();
    for (i, line) in text.lines().enumerate().take(10_000) {
        let (pat, why) = line.split_once('#').map_or((line, ""), |(p, w)| (p, w.trim()));
        if pat.trim().is_empty() {
            continue;
        }
        let why = if why.is_empty() { reason.trim() } else { why };
        let why = if why.is_empty() { "bulk import" } else { why };
        match normalise_pattern(pat) {
            Err(error) => report.errors.push(ImportError {
                line: i + 1,
                text: line.chars().take(200).collect(),
                error,
            }),
            Ok(p) => good.push((p, why.to_string())),
        }
    }
    (report.added, report.duplicates) = st.rt.add_list_entries(kind, &good, actor).await?;
    Ok(report)
}

pub(crate) async fn remove_entry(st: &AppState, id: i64, actor: &str) -> Result<(), WebError> {
    if !st.rt.remove_list_entry(id, actor).await? {
        return Err(WebError::NotFound);
    }
    Ok(())
}

#[derive(serde::Deserialize)]
pub(crate) struct ListForm {
    kind: String,
    pattern: String,
    #[serde(default)]
    reason: String,
}

fn back(path: &str, r: Result<&str, WebError>) -> Response {
    match r {
        Ok(code) => Redirect::to(&format!("{path}?ok={code}")).into_response(),
        Err(e) => Redirect::to(&format!("{path}?{}", super::flash::query("err", &e.public_message()))).into_response(),
    }
}

pub(crate) async fn list_add(State(st): State<AppState>, Extension(admin): Extension<Admin>, Form(f): Form<ListForm>) -> Response {
    let r = add_entry(&st, &f.kind, &f.pattern, &f.reason, admin.actor()).await;
    back("/lists", r.map(|_| "list_added"))
}

pub(crate) async fn list_delete(State(st): State<AppState>, Extension(admin): Extension<Admin>, Path(id): Path<i64>) -> Response {
    back("/lists", remove_entry(&st, id, admin.actor()).await.map(|_| "list_removed"))
}

#[derive(serde::Deserialize)]
pub(crate) struct ImportForm {
    kind: String,
    text: String,
    #[serde(default)]
    reason: String,
}

/// Renders the lists page with the per-line report (no redirect: the
/// report is the answer).
pub(crate) async fn list_import(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Form(f): Form<ImportForm>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "lists");
    async {
        let report = import(&st, &f.kind, &f.text, &f.reason, admin.actor()).await?;
        let v = context! { kind => f.kind, report };
        lists_page(&st, cx, &Flash::default(), Some(v)).await
    }
    .await
    .unwrap_or_else(html_error)
}

fn opt(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn number(v: Option<&String>, name: &str) -> Result<Option<f64>, WebError> {
    opt(v)
        .map(|s| {
            s.parse::<f64>()
                .map_err(|_| WebError::BadRequest(format!("the {name} threshold must be a number")))
        })
        .transpose()
}

/// Reads the settings form: empty fields fall back to the environment;
/// an unticked scanner box switches that scanner off.
fn overrides_from_form(fields: &[(String, String)]) -> Result<Overrides, WebError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    Ok(Overrides {
        threshold_flag: number(get("threshold_flag"), "flag")?,
        threshold_quarantine: number(get("threshold_quarantine"), "quarantine")?,
        rspamd_url: opt(get("rspamd_url")),
        rspamd_controller_url: opt(get("rspamd_controller_url")),
        clamd_addr: opt(get("clamd_addr")),
        disabled: SWITCHABLE
            .iter()
            .filter(|id| get(&format!("scanner_{id}")).is_none())
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    })
}

pub(crate) async fn settings_save(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let mut o = overrides_from_form(&fields)?;
        super::settings::rules_from_form(&st, &fields, &mut o)?;
        st.rt.set_overrides(o, admin.actor()).await?;
        Ok::<_, WebError>("settings")
    }
    .await;
    back("/settings", r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(normalise_pattern(" Bad@Spam.Example ").unwrap(), "bad@spam.example");
        assert_eq!(normalise_pattern("@spam.example").unwrap(), "@spam.example");
        assert_eq!(normalise_pattern("*.spam.example").unwrap(), "*.spam.example");
        for bad in ["spam", "@localhost", "a b@x.example", "@", "*.", "x@", "@exa mple.com"] {
            assert!(normalise_pattern(bad).is_err(), "{bad}");
        }
        // Issue 16: no length limit.
        let long = format!("@{}example", "a.".repeat(150));
        assert!(normalise_pattern(&long).is_err());
        assert!(normalise_pattern(&format!("@{}.example", "a".repeat(60))).is_ok());
    }

    #[test]
    fn unticked_scanners_are_disabled() {
        let f = vec![
            ("threshold_flag".to_string(), "4.5".to_string()),
            ("threshold_quarantine".to_string(), "".to_string()),
            ("scanner_rspamd".to_string(), "on".to_string()),
        ];
        let o = overrides_from_form(&f).unwrap();
        assert_eq!(o.threshold_flag, Some(4.5));
        assert_eq!(o.threshold_quarantine, None);
        assert_eq!(o.disabled, vec!["clamav".to_string(), "yara".to_string()]);
    }
}
