//! Liveness, component health, Prometheus metrics and the scan API.

use super::{AppState, WebError};
use crate::runtime::ListenerState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Responses by status class, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    classes: [AtomicU64; 5],
}

impl HttpMetrics {
    pub(crate) fn count(&self, s: StatusCode) {
        let i = (s.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.classes[i].fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// One component's health.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Component {
    pub(crate) name: String,
    pub(crate) ok: bool,
    pub(crate) critical: bool,
    pub(crate) detail: String,
    /// Switched off on purpose (a scanner not configured, an account
    /// stopped): not a failure, so `ok` stays true.
    #[serde(default)]
    pub(crate) off: bool,
}

/// Every component: the database, each scanner (pinged) and each account
/// connection. Critical ones make the whole answer 503.
pub(crate) async fn components(st: &AppState) -> Vec<Component> {
    let mut out = Vec::new();
    let db = st.rt.database_ping().await;
    out.push(Component {
        name: "database".into(),
        ok: db.is_ok(),
        critical: true,
        detail: db.map_or_else(|e| e.to_string(), |_| "answers".into()),
        off: false,
    });
    if let Some(r) = st.rt.last_maintenance() {
        let problems: Vec<&str> = r.integrity.iter().chain(&r.errors).map(String::as_str).collect();
        out.push(Component {
            name: "maintenance".into(),
            ok: r.ok(),
            critical: false,
            detail: if r.ok() {
                format!("last run {} ok; {} backup(s) kept", r.at, r.backups)
            } else {
                format!("last run {} found problems: {}", r.at, problems.join("; "))
            },
            off: false,
        });
    }
    let pipeline = st.rt.pipeline();
    out.extend(pipeline.probe().await.into_iter().map(|(id, critical, r)| Component {
        name: format!("scanner:{id}"),
        ok: r.is_ok(),
        critical,
        detail: r.unwrap_or_else(|e| e),
        off: false,
    }));
    for (id, why) in pipeline.disabled() {
        out.push(Component {
            name: format!("scanner:{id}"),
            ok: true,
            critical: false,
            detail: format!("disabled: {why}"),
            off: true,
        });
    }
    for f in st.rt.feed_status() {
        let when = f
            .last_refresh
            .map_or("never refreshed".to_string(), |t| format!("refreshed {}", t.to_rfc3339()));
        out.push(Component {
            name: format!("feed:{}", f.name),
            ok: f.last_error.is_none() && f.last_refresh.is_some(),
            critical: false,
            detail: match &f.last_error {
                Some(e) => format!("{} entries kept, {when}; last attempt failed: {e}", f.entries),
                None => format!("{} entries, {when}", f.entries),
            },
            off: false,
        });
    }
    // Per account, once: where its spam goes (issue 14), so an account
    // without a Junk folder, whose spam is only marked, is no surprise; and
    // whether its server can move mail at all (no MOVE, no UIDPLUS): its
    // threats then stay in place, no outage of Postern's, but it must not
    // look like protection either.
    let (mut junk_seen, mut move_seen, mut mark_seen) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for l in st.rt.listeners() {
        let account = |kind: &str, ok: bool, detail: &str| Component {
            name: format!("{kind}:{}", l.account),
            ok,
            critical: false,
            detail: detail.to_string(),
            off: false,
        };
        if let Some(j) = &l.junk
            && junk_seen.insert(l.account.clone())
        {
            out.push(account("junk", j.folder.is_some(), &j.why));
        }
        // Moves still happen, with a wait: a note, not a failure.
        if let Some(why) = &l.move_caveat
            && move_seen.insert(l.account.clone())
        {
            out.push(account("actions", true, why));
        }
        if let Some(why) = &l.cannot_mark
            && mark_seen.insert(l.account.clone())
        {
            out.push(account("marks", false, why));
        }
    }
    for l in st.rt.listeners() {
        // A stopped account was stopped by an operator: off, not failing.
        let off = matches!(l.state, ListenerState::Stopped);
        let ok = off || !l.failing();
        // A plain state serialises as a JSON string: shown without its quotes.
        let state = match serde_json::to_value(&l.state) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(_) => String::new(),
        };
        let detail = match (&l.state, &l.last_error) {
            (ListenerState::Broken { reason }, _) => format!("broken: {reason}"),
            _ if l.folder_problem.is_some() => l.folder_problem.clone().unwrap_or_default(),
            (_, Some(e)) if l.stuck => format!(
                "stuck: failing since {} without a healthy pass; last error: {e}",
                l.failing_since.as_deref().unwrap_or("?")
            ),
            (_, Some(e)) if !ok => format!("{state}; last error: {e}"),
            _ => format!("{state}; {} logins, {} processed", l.connects, l.processed),
        };
        out.push(Component {
            name: format!("imap:{}/{}", l.account, l.mailbox),
            ok,
            critical: true,
            detail,
            off,
        });
    }
    out
}

pub(crate) async fn health(State(st): State<AppState>) -> Result<Response, WebError> {
    let comps = components(&st).await;
    let degraded = comps.iter().any(|c| c.critical && !c.ok);
    let counts = st.rt.today_counts().await?;
    let (intents, ops) = st.rt.pending_work().await?;
    let body = json!({
        "status": if degraded { "degraded" } else { "ok" },
        "components": comps,
        "today": counts,
        "quarantined": st.rt.quarantine_count().await?,
        "pending": { "actions": intents, "operator_actions": ops },
        "backfill": st.rt.backfill_progress().await?,
        "learning": st.rt.learning_progress().await?,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((code, Json(body)).into_response())
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub(crate) async fn metrics(State(st): State<AppState>) -> Result<Response, WebError> {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# HELP postern_messages_total Messages scanned, by verdict.\n# TYPE postern_messages_total counter"
    );
    for (v, n) in st.rt.verdict_totals().await? {
        let _ = writeln!(m, "postern_messages_total{{verdict=\"{}\"}} {n}", esc(&v));
    }
    let (intents, ops) = st.rt.pending_work().await?;
    let _ = writeln!(
        m,
        "# HELP postern_quarantined Messages Postern moved to quarantine, hold or Junk, not yet released.\n# TYPE postern_quarantined gauge"
    );
    let _ = writeln!(m, "postern_quarantined {}", st.rt.quarantine_count().await?);
    let _ = writeln!(
        m,
        "# HELP postern_pending_actions Actions waiting to run.\n# TYPE postern_pending_actions gauge"
    );
    let _ = writeln!(m, "postern_pending_actions{{kind=\"automatic\"}} {intents}");
    let _ = writeln!(m, "postern_pending_actions{{kind=\"operator\"}} {ops}");
    let _ = writeln!(
        m,
        "# HELP postern_backfill_messages Backfill per folder: messages done and in the window.\n# TYPE postern_backfill_messages gauge"
    );
    for b in st.rt.backfill_progress().await? {
        let (a, f) = (esc(&b.account), esc(&b.mailbox));
        let _ = writeln!(
            m,
            "postern_backfill_messages{{account=\"{a}\",mailbox=\"{f}\",state=\"done\"}} {}",
            b.done
        );
        let _ = writeln!(
            m,
            "postern_backfill_messages{{account=\"{a}\",mailbox=\"{f}\",state=\"total\"}} {}",
            b.total
        );
    }
    let _ = writeln!(
        m,
        "# HELP postern_component_up Component health (1 up, 0 down).\n# TYPE postern_component_up gauge"
    );
    for c in components(&st).await {
        let _ = writeln!(
            m,
            "postern_component_up{{component=\"{}\",critical=\"{}\"}} {}",
            esc(&c.name),
            c.critical,
            u8::from(c.ok)
        );
    }
    let _ = writeln!(
        m,
        "# HELP postern_imap_logins_total Successful IMAP logins.\n# TYPE postern_imap_logins_total counter"
    );
    let status = st.rt.listeners();
    for l in &status {
        let _ = writeln!(
            m,
            "postern_imap_logins_total{{account=\"{}\",mailbox=\"{}\"}} {}",
            esc(&l.account),
            esc(&l.mailbox),
            l.connects
        );
    }
    let _ = writeln!(
        m,
        "# HELP postern_http_responses_total Dashboard responses by status class.\n# TYPE postern_http_responses_total counter"
    );
    for (i, c) in st.metrics.classes.iter().enumerate() {
        let _ = writeln!(
            m,
            "postern_http_responses_total{{class=\"{}xx\"}} {}",
            i + 1,
            c.load(Ordering::Relaxed)
        );
    }
    let feeds = st.rt.feed_status();
    let _ = writeln!(
        m,
        "# HELP postern_feed_entries Entries served per threat feed.\n# TYPE postern_feed_entries gauge"
    );
    for f in &feeds {
        let _ = writeln!(m, "postern_feed_entries{{feed=\"{}\"}} {}", esc(&f.name), f.entries);
    }
    let _ = writeln!(
        m,
        "# HELP postern_feed_last_refresh_seconds Unix time of the last successful refresh.\n# TYPE postern_feed_last_refresh_seconds gauge"
    );
    for f in &feeds {
        let t = f.last_refresh.map_or(0, |t| t.timestamp());
        let _ = writeln!(m, "postern_feed_last_refresh_seconds{{feed=\"{}\"}} {t}", esc(&f.name));
    }
    let _ = writeln!(
        m,
        "# HELP postern_feed_up 1 when the last refresh worked.\n# TYPE postern_feed_up gauge"
    );
    for f in &feeds {
        let _ = writeln!(
            m,
            "postern_feed_up{{feed=\"{}\"}} {}",
            esc(&f.name),
            u8::from(f.last_error.is_none())
        );
    }
    let _ = writeln!(
        m,
        "# HELP postern_threat_index_entries Feed entries and IOCs in the lookup index.\n# TYPE postern_threat_index_entries gauge\npostern_threat_index_entries {}",
        st.rt.threat_index_len()
    );
    ops_metrics(&mut m, &st.rt);
    learning_metrics(&mut m, &st.rt.learning_progress().await?);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m).into_response())
}

/// The lesson queue and each account's bootstrap (issue 17).
fn learning_metrics(m: &mut String, p: &crate::runtime::LearningProgress) {
    let _ = writeln!(
        m,
        "# HELP postern_lessons Lessons for the Rspamd controller, by state.\n# TYPE postern_lessons gauge"
    );
    let l = &p.lessons;
    for (state, n) in [
        ("pending", l.pending),
        ("learned", l.learned),
        ("skipped", l.skipped),
        ("failed", l.failed),
    ] {
        let _ = writeln!(m, "postern_lessons{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        m,
        "# HELP postern_bootstrap_messages Messages a bootstrap listed (total) and has handled (done).\n# TYPE postern_bootstrap_messages gauge"
    );
    for b in &p.bootstrap {
        let a = esc(&b.account);
        let _ = writeln!(
            m,
            "postern_bootstrap_messages{{account=\"{a}\",of=\"total\"}} {}\npostern_bootstrap_messages{{account=\"{a}\",of=\"done\"}} {}",
            b.total, b.done
        );
    }
}

/// Maintenance, notifications and digests.
fn ops_metrics(m: &mut String, rt: &crate::runtime::Runtime) {
    let last = rt.last_maintenance();
    let when = last
        .as_ref()
        .and_then(|r| chrono::DateTime::parse_from_rfc3339(&r.at).ok())
        .map_or(0, |t| t.timestamp());
    let _ = writeln!(
        m,
        "# HELP postern_maintenance_last_run_timestamp_seconds Unix time of the last maintenance run (0: none since start).
# TYPE postern_maintenance_last_run_timestamp_seconds gauge
postern_maintenance_last_run_timestamp_seconds {when}"
    );
    let _ = writeln!(
        m,
        "# HELP postern_maintenance_ok 1 when the last maintenance run found the database sound and every step worked.
# TYPE postern_maintenance_ok gauge
postern_maintenance_ok {}",
        u8::from(last.as_ref().is_none_or(|r| r.ok()))
    );
    let _ = writeln!(
        m,
        "# HELP postern_backups Database backups kept after the last run.
# TYPE postern_backups gauge
postern_backups {}",
        last.as_ref().map_or(0, |r| r.backups)
    );
    let _ = writeln!(
        m,
        "# HELP postern_digests_sent_total Quarantine digests sent since start.
# TYPE postern_digests_sent_total counter
postern_digests_sent_total {}",
        rt.digests_sent()
    );
    if let Some(n) = &rt.notifier() {
        let c = &n.counters;
        let _ = writeln!(
            m,
            "# HELP postern_notifications_total Notifications by channel and outcome.
# TYPE postern_notifications_total counter"
        );
        for (i, ch) in ["ntfy", "webhook"].iter().enumerate() {
            let _ = writeln!(
                m,
                "postern_notifications_total{{channel=\"{ch}\",outcome=\"sent\"}} {}\npostern_notifications_total{{channel=\"{ch}\",outcome=\"failed\"}} {}",
                c.sent[i].load(Ordering::Relaxed),
                c.failed[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            m,
            "# HELP postern_alerts_suppressed_total Alerts held back by POSTERN_NOTIFY_ALERT_MINS.\n# TYPE postern_alerts_suppressed_total counter\npostern_alerts_suppressed_total {}",
            c.suppressed.load(Ordering::Relaxed)
        );
    }
}

/// Raw EML in, decision out. Nothing is stored and nothing moves.
pub(crate) async fn scan_api(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, WebError> {
    if body.is_empty() {
        return Err(WebError::BadRequest("send the raw message as the request body".into()));
    }
    let d = st.rt.pipeline().scan(body.to_vec()).await;
    Ok(Json(json!({
        "verdict": d.verdict, "score": d.score, "tags": d.tags, "reason": d.reason, "reports": d.reports,
    })))
}
