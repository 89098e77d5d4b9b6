//! Accounts: list, create, edit, delete, test login, start and stop.
//!
//! Accounts from config.yaml are shown but edited in the file (the file is
//! re-read at start and would undo a dashboard edit); accounts created here
//! are fully managed here. Every change goes through the same validation as
//! config.yaml and takes effect at once through the manager handle.

use super::auth::Admin;
use super::pages::{Flash, flash_texts};
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError, error::html_error};
use crate::config::{AccountConfig, parse_account_value};
use crate::runtime::{AccountRemoveError, AccountTestError};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use minijinja::context;
use serde_json::{Value, json};
use serde_norway::{Mapping, Value as Yaml};

/// An account as shown: never its password.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AccountView {
    name: String,
    host: String,
    port: u16,
    tls: crate::config::TlsMode,
    tls_skip_verify: bool,
    ca_file: Option<std::path::PathBuf>,
    tls_fingerprint: Option<String>,
    user: String,
    folders: Vec<String>,
    quarantine_folder: String,
    hold_folder: String,
    mode: crate::domain::Mode,
    backfill_days: Option<u32>,
    digest: crate::config::DigestFrequency,
    digest_to: Option<String>,
    source: String,
    running: bool,
    /// Running, but a folder is in backoff or broken: shown red, never as
    /// a green "running".
    failing: bool,
    listeners: Vec<crate::runtime::ListenerStatus>,
}

async fn views(st: &AppState) -> Result<Vec<AccountView>, WebError> {
    let mut out = Vec::new();
    for s in st.rt.account_states().await? {
        let a = s.config;
        out.push(AccountView {
            running: s.running,
            failing: s.listeners.iter().any(|l| l.failing()),
            listeners: s.listeners,
            backfill_days: match a.start_at {
                crate::config::StartAt::Backfill { days } => Some(days),
                crate::config::StartAt::New => None,
            },
            digest: a.digest,
            digest_to: a.digest_to,
            name: a.name,
            host: a.host,
            port: a.port,
            tls: a.tls,
            tls_skip_verify: a.tls_skip_verify,
            ca_file: a.ca_file,
            tls_fingerprint: a.tls_fingerprint,
            user: a.user,
            folders: a.folders,
            quarantine_folder: a.quarantine_folder,
            hold_folder: a.hold_folder,
            mode: a.mode,
            source: s.source,
        });
    }
    Ok(out)
}

/// Account input, from the form or JSON. An empty password on an edit keeps
/// the stored one.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct AccountInput {
    name: String,
    host: String,
    /// A number in JSON (as `GET /api/accounts` returns it) or text from the form.
    #[serde(default, deserialize_with = "super::lenient::text")]
    port: Option<String>,
    #[serde(default)]
    tls: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::text")]
    tls_skip_verify: Option<String>,
    /// PEM file on the Postern host: a CA, or the server's own certificate.
    #[serde(default)]
    ca_file: Option<String>,
    /// `sha256:…` pin of the server certificate.
    #[serde(default)]
    tls_fingerprint: Option<String>,
    user: String,
    #[serde(default)]
    pass: String,
    /// A list in JSON or comma-separated text.
    #[serde(default, deserialize_with = "super::lenient::text")]
    folders: Option<String>,
    #[serde(default)]
    quarantine_folder: Option<String>,
    #[serde(default)]
    hold_folder: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::text")]
    backfill_days: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    digest_to: Option<String>,
    /// Set by the edit form: the account must exist.
    #[serde(default)]
    existing: Option<String>,
    /// Log in and check the folders before saving; nothing is saved when
    /// that fails (the form sends it checked).
    #[serde(default, deserialize_with = "super::lenient::text")]
    test: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Validates input exactly like a config.yaml entry.
fn to_config(i: &AccountInput, stored_pass: Option<String>, base: &std::path::Path) -> Result<AccountConfig, WebError> {
    let mut m = Mapping::new();
    let mut put = |k: &str, v: Yaml| {
        m.insert(Yaml::String(k.into()), v);
    };
    put("name", Yaml::String(i.name.trim().into()));
    put("host", Yaml::String(i.host.trim().into()));
    put("user", Yaml::String(i.user.trim().into()));
    let pass = if i.pass.is_empty() {
        stored_pass.unwrap_or_default()
    } else {
        i.pass.clone()
    };
    put("pass", Yaml::String(pass));
    if let Some(p) = nonempty(&i.port) {
        let port = p
            .parse::<u16>()
            .map_err(|_| WebError::BadRequest(format!("port {p:?} is not a number")))?;
        put("port", Yaml::Number(port.into()));
    }
    if let Some(t) = nonempty(&i.tls) {
        put("tls", Yaml::String(t.into()));
    }
    put(
        "tls_skip_verify",
        Yaml::Bool(matches!(nonempty(&i.tls_skip_verify), Some("on" | "true" | "1"))),
    );
    if let Some(f) = nonempty(&i.folders) {
        let list = f
            .split(',')
            .map(|s| Yaml::String(s.trim().into()))
            .filter(|v| v.as_str() != Some(""))
            .collect();
        put("folders", Yaml::Sequence(list));
    }
    for (k, v) in [
        ("ca_file", &i.ca_file),
        ("tls_fingerprint", &i.tls_fingerprint),
        ("quarantine_folder", &i.quarantine_folder),
        ("hold_folder", &i.hold_folder),
        ("mode", &i.mode),
        ("digest", &i.digest),
        ("digest_to", &i.digest_to),
    ] {
        if let Some(v) = nonempty(v) {
            put(k, Yaml::String(v.into()));
        }
    }
    if let Some(d) = nonempty(&i.backfill_days) {
        let days = d
            .parse::<u32>()
            .map_err(|_| WebError::BadRequest(format!("backfill days {d:?} is not a number")))?;
        put("start_at", Yaml::String("backfill".into()));
        put("backfill_days", Yaml::Number(days.into()));
    }
    let mut problems = Vec::new();
    parse_account_value(&Yaml::Mapping(m), base, &mut problems).ok_or_else(|| {
        let text: Vec<String> = problems.iter().map(|p| format!("{}: {} ({})", p.path, p.message, p.hint)).collect();
        WebError::BadRequest(text.join("; "))
    })
}

/// Creates or updates a dashboard-managed account and (re)starts it;
/// returns its name and notes for the operator (the login test's result,
/// a warning when another account watches the same mailbox).
async fn save(st: &AppState, i: AccountInput, actor: &str) -> Result<(String, Vec<String>), WebError> {
    let name = i.name.trim().to_string();
    let existing = st.rt.account_source(&name).await?;
    let editing = i.existing.is_some();
    match (&existing, editing) {
        (Some(s), _) if s.source == "config" => {
            return Err(WebError::Conflict(format!("{name} is defined in config.yaml; edit it there")));
        }
        (Some(s), false) if s.enabled => return Err(WebError::Conflict(format!("an account named {name} already exists"))),
        (None, true) => return Err(WebError::NotFound),
        _ => {}
    }
    let stored = st.rt.account(&name).await?;
    let base = st
        .rt
        .environment()
        .config_path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let cfg = to_config(&i, stored.as_ref().map(|a| a.pass.clone()), &base)?;
    // Issue 16: a kept password goes only where it went before. Pointing
    // the account at another server (or weakening its TLS) needs the
    // password typed again, or "Test login" would hand it to that server.
    if i.pass.is_empty()
        && let Some(old) = &stored
        && !same_endpoint(old, &cfg)
    {
        return Err(WebError::BadRequest(
            "the server or its TLS settings changed: enter the password again".into(),
        ));
    }
    let mut notes = Vec::new();
    if matches!(nonempty(&i.test), Some("on" | "true" | "1")) {
        match st.rt.test_account(&cfg).await {
            Ok(m) => notes.push(m),
            Err(AccountTestError::Failed(m)) => return Err(WebError::BadRequest(format!("not saved: {m}"))),
            Err(e) => return Err(test_error(e)),
        }
    }
    notes.extend(
        st.rt
            .same_mailbox_warnings(&cfg)
            .await?
            .into_iter()
            .map(|w| format!("Warning: {w}; each message would be handled twice.")),
    );
    st.rt.save_account(cfg, editing, actor).await?;
    Ok((name, notes))
}

/// Everything that decides where the password is sent and how safely.
fn same_endpoint(a: &AccountConfig, b: &AccountConfig) -> bool {
    (
        a.host.to_ascii_lowercase(),
        a.port,
        a.tls,
        a.tls_skip_verify,
        &a.ca_file,
        &a.tls_fingerprint,
        &a.user,
    ) == (
        b.host.to_ascii_lowercase(),
        b.port,
        b.tls,
        b.tls_skip_verify,
        &b.ca_file,
        &b.tls_fingerprint,
        &b.user,
    )
}

async fn remove(st: &AppState, name: &str, actor: &str) -> Result<(), WebError> {
    st.rt.remove_account(name, actor).await.map_err(|e| match e {
        AccountRemoveError::NotFound => WebError::NotFound,
        AccountRemoveError::FromConfig => WebError::Conflict(format!("{name} is defined in config.yaml; remove it there")),
        AccountRemoveError::Runtime(e) => e.into(),
    })
}

/// Logs in with the stored settings and reports what the server offers.
async fn test(st: &AppState, name: &str) -> Result<String, WebError> {
    st.rt.test_stored_account(name).await.map_err(test_error)
}

fn test_error(e: AccountTestError) -> WebError {
    match e {
        AccountTestError::NotFound => WebError::NotFound,
        AccountTestError::Failed(m) => WebError::BadRequest(m),
        AccountTestError::Runtime(e) => e.into(),
    }
}

async fn set_running(st: &AppState, name: &str, run: bool, actor: &str) -> Result<(), WebError> {
    if !st.rt.set_account_running(name, run, actor).await? {
        return Err(WebError::NotFound);
    }
    Ok(())
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct PageQuery {
    #[serde(flatten)]
    flash: Flash,
    edit: Option<String>,
    tested: Option<String>,
    tested_sig: Option<String>,
}

pub(crate) async fn page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<PageQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "accounts");
    match views(&st).await {
        Ok(accounts) => {
            let (ok, err) = flash_texts(&q.flash);
            let edit = q
                .edit
                .as_ref()
                .and_then(|n| accounts.iter().find(|a| &a.name == n && a.source != "config").cloned());
            let tested = super::flash::verified("tested", q.tested.as_deref(), q.tested_sig.as_deref());
            render(&st, "accounts.html", &cx, context! { accounts, ok, err, edit, tested })
        }
        Err(e) => html_error(e),
    }
}

fn back(r: Result<String, WebError>) -> Response {
    match r {
        Ok(q) => Redirect::to(&format!("/accounts?{q}")).into_response(),
        Err(e) => Redirect::to(&format!("/accounts?{}", super::flash::query("err", &e.public_message()))).into_response(),
    }
}

pub(crate) async fn save_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Form(i): Form<AccountInput>) -> Response {
    back(save(&st, i, a.actor()).await.map(|(_, notes)| {
        if notes.is_empty() {
            "ok=account_saved".into()
        } else {
            format!("ok=account_saved&{}", super::flash::query("tested", &notes.join(" ")))
        }
    }))
}

pub(crate) async fn delete_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(name): Path<String>) -> Response {
    back(remove(&st, &name, a.actor()).await.map(|_| "ok=account_deleted".into()))
}

pub(crate) async fn test_form(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    back(test(&st, &name).await.map(|m| super::flash::query("tested", &m)))
}

pub(crate) async fn start_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(name): Path<String>) -> Response {
    back(set_running(&st, &name, true, a.actor()).await.map(|_| "ok=account_started".into()))
}

pub(crate) async fn stop_form(State(st): State<AppState>, Extension(a): Extension<Admin>, Path(name): Path<String>) -> Response {
    back(set_running(&st, &name, false, a.actor()).await.map(|_| "ok=account_stopped".into()))
}

pub(crate) async fn list_api(State(st): State<AppState>) -> Result<Json<Vec<AccountView>>, WebError> {
    Ok(Json(views(&st).await?))
}

pub(crate) async fn create_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Json(mut i): Json<AccountInput>,
) -> Result<Json<Value>, WebError> {
    i.existing = None;
    let (name, notes) = save(&st, i, a.actor()).await?;
    Ok(Json(json!({ "name": name, "started": true, "notes": notes })))
}

pub(crate) async fn update_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(name): Path<String>,
    Json(mut i): Json<AccountInput>,
) -> Result<Json<Value>, WebError> {
    if i.name.trim() != name {
        return Err(WebError::BadRequest(
            "the name in the body must match the URL; accounts cannot be renamed".into(),
        ));
    }
    i.existing = Some(name);
    let (name, notes) = save(&st, i, a.actor()).await?;
    Ok(Json(json!({ "name": name, "restarted": true, "notes": notes })))
}

pub(crate) async fn delete_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    remove(&st, &name, a.actor()).await?;
    Ok(Json(json!({ "ok": true })))
}

pub(crate) async fn test_api(State(st): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, WebError> {
    Ok(Json(json!({ "ok": true, "detail": test(&st, &name).await? })))
}

pub(crate) async fn start_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    set_running(&st, &name, true, a.actor()).await?;
    Ok(Json(json!({ "ok": true })))
}

pub(crate) async fn stop_api(
    State(st): State<AppState>,
    Extension(a): Extension<Admin>,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    set_running(&st, &name, false, a.actor()).await?;
    Ok(Json(json!({ "ok": true })))
}
