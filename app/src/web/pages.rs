//! The HTML pages. Each handler gathers data, then renders one template.

use super::auth::Admin;
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError, chart, error::html_error};
use crate::runtime::records::MessageFilter;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;

/// Query string of pages that show a flash message after a redirect.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Flash {
    ok: Option<String>,
    err: Option<String>,
    err_sig: Option<String>,
}

impl Flash {
    /// Success messages are fixed texts chosen by code, so a crafted link
    /// cannot make the dashboard say anything else.
    pub(crate) fn ok_text(&self) -> Option<&'static str> {
        Some(match self.ok.as_deref()? {
            "list_added" => "List entry added; the pipeline now uses it.",
            "list_removed" => "List entry removed.",
            "settings" => "Settings saved and applied to new scans.",
            "secret" => "Secret saved (encrypted). It will not be shown again.",
            "secret_cleared" => "Secret cleared.",
            "password" => "Password changed. Every other session was logged out.",
            "account_saved" => "Account saved and (re)started.",
            "account_deleted" => "Account removed; its history stays in the audit log.",
            "account_started" => "Account started.",
            "account_stopped" => "Account stopped.",
            _ => return None,
        })
    }

    /// Errors are free text (the operator's own input echoed, a server's
    /// answer), so only those this process signed are shown.
    fn err_text(&self) -> Option<String> {
        super::flash::verified("err", self.err.as_deref(), self.err_sig.as_deref())
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ListQuery {
    verdict: Option<String>,
    category: Option<String>,
    account: Option<String>,
    q: Option<String>,
    before: Option<i64>,
}

impl ListQuery {
    fn filter(&self, quarantined: bool) -> MessageFilter {
        MessageFilter {
            verdict: self.verdict.clone(),
            category: self.category.clone(),
            account: self.account.clone(),
            q: self.q.clone(),
            quarantined,
            before: self.before,
            limit: Some(50),
        }
    }
}

async fn message_page(st: &AppState, cx: PageCx, q: ListQuery, quarantined: bool, template: &str) -> Result<Response, WebError> {
    let f = q.filter(quarantined);
    let rows = st.rt.messages(&f).await?;
    let next_before = (rows.len() == 50).then(|| rows.last().map(|r| r.id)).flatten();
    let accounts = st.rt.account_names().await?;
    // Today's counts are a GROUP BY over the day's rows; only the dashboard shows them.
    let counts = if quarantined { None } else { Some(st.rt.today_counts().await?) };
    let in_quarantine = st.rt.quarantine_count().await?;
    let learning = if quarantined {
        None
    } else {
        Some(st.rt.learning_progress().await?)
    };
    // Folders that need the operator (failing to connect, stuck, or a
    // broken server) head the dashboard.
    let attention: Vec<_> = if quarantined {
        Vec::new()
    } else {
        st.rt.listeners().into_iter().filter(|l| l.failing()).collect()
    };
    Ok(render(
        st,
        template,
        &cx,
        context! {
            rows, next_before, accounts, counts, in_quarantine, attention, learning,
            categories => crate::scan::category::FILTERS,
            f => context! { verdict => f.verdict, category => f.category, account => f.account, q => f.q, quarantined },
        },
    ))
}

pub(crate) async fn dashboard(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<ListQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "dashboard");
    message_page(&st, cx, q, false, "dashboard.html").await.unwrap_or_else(html_error)
}

pub(crate) async fn quarantine(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<ListQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "quarantine");
    message_page(&st, cx, q, true, "quarantine.html").await.unwrap_or_else(html_error)
}

/// The lists page; `import` is the report of an import just made.
pub(crate) async fn lists_page(st: &AppState, cx: PageCx, flash: &Flash, import: Option<minijinja::Value>) -> Result<Response, WebError> {
    let entries = st.rt.list_entries().await?;
    let file = st.rt.config_lists();
    Ok(render(
        st,
        "lists.html",
        &cx,
        context! {
            entries,
            file_allow => file.allow_senders,
            file_block => file.block_senders,
            ok => flash.ok_text(), err => flash.err_text(), import,
        },
    ))
}

pub(crate) async fn lists(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(flash): Query<Flash>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "lists");
    lists_page(&st, cx, &flash, None).await.unwrap_or_else(html_error)
}

pub(crate) async fn stats(State(st): State<AppState>, Extension(nonce): Extension<Nonce>, Extension(admin): Extension<Admin>) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "stats");
    async {
        let data = super::api::stats_data(&st, 30).await?;
        let svg = chart::verdict_bars(&data.days);
        let since = (st.rt.now() - chrono::Duration::days(29)).format("%Y-%m-%d").to_string();
        let b = st.rt.breakdown(&since).await?;
        let fp = b.false_positive_percent().map(|p| format!("{p:.1}%"));
        let top = st.rt.top_stats(30, 10).await?;
        Ok::<_, WebError>(render(
            &st,
            "stats.html",
            &cx,
            context! {
                chart => svg, totals => data.totals, senders => data.top_senders, domains => data.top_domains,
                categories => b.by_category, accounts => b.by_account, acted => b.acted, released => b.released, fp,
                engines => top.by_engine, url_domains => top.url_domains, file_types => top.attachment_types,
            },
        ))
    }
    .await
    .unwrap_or_else(html_error)
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct AuditQuery {
    pub(crate) account: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) before: Option<i64>,
}

pub(crate) async fn audit(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "audit");
    async {
        let rows = st
            .rt
            .audit_page(q.account.as_deref(), q.event.as_deref(), q.actor.as_deref(), q.before, 100)
            .await?;
        let next_before = (rows.len() == 100).then(|| rows.last().map(|r| r.id)).flatten();
        let subjects = st.rt.audit_subjects(&rows).await?;
        Ok::<_, WebError>(render(
            &st,
            "audit.html",
            &cx,
            context! { rows, next_before, subjects, f => context! { account => q.account, event => q.event, actor => q.actor } },
        ))
    }
    .await
    .unwrap_or_else(html_error)
}

pub(crate) async fn settings(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(flash): Query<Flash>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "settings");
    async {
        let view = super::api::settings_view(&st).await?;
        Ok::<_, WebError>(render(
            &st,
            "settings.html",
            &cx,
            context! { s => view, ok => flash.ok_text(), err => flash.err_text() },
        ))
    }
    .await
    .unwrap_or_else(html_error)
}

pub(crate) fn flash_texts(flash: &Flash) -> (Option<&'static str>, Option<String>) {
    (flash.ok_text(), flash.err_text())
}
