//! The dashboard and its JSON API (axum + minijinja).
//!
//! Every route is declared once in [`routes`] with its access level; the
//! router is built from that table and the router tests walk the same table,
//! so no route can escape the session, CSRF and header checks unnoticed.
//! The web layer steers the system only through [`Runtime`] (store, manager
//! handle, live pipeline); it never talks IMAP itself.

mod accounts;
mod api;
mod assets;
mod attacks;
mod auth;
mod campaign_actions;
mod chart;
mod digest_links;
mod error;
mod export;
mod flash;
mod forms;
mod health;
mod health_page;
mod host;
mod incidents;
mod intel;
mod lenient;
mod limiter;
mod live;
mod messages;
mod owner;
mod pages;
mod progress;
mod purge;
mod reports;
mod requests;
mod security;
mod sender_lists;
mod settings;
mod sse;
mod stats_top;
mod templates;
#[cfg(test)]
mod tests;

pub use error::WebError;

use crate::config::WebSettings;
use crate::runtime::{Role, Runtime};
use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (liveness, assets, the login form).
    Public,
    /// A logged-in admin; unsafe methods also need the session's CSRF token.
    Session,
    /// A logged-in analyst or admin (reviewing, releasing and learning
    /// mail); the same session and CSRF checks.
    Analyst,
    /// Any logged-in user, viewers included (reading); the same session and
    /// CSRF checks.
    Viewer,
    /// Clients in `POSTERN_METRICS_ALLOW`.
    MetricsCidr,
    /// Clients in `POSTERN_SCAN_API_ALLOW` (integrations, benchmarks).
    ScanCidr,
}

impl Access {
    /// The least role a session route needs; `None` for the others.
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Session => Some(Role::Admin),
            Self::Analyst => Some(Role::Analyst),
            Self::Viewer => Some(Role::Viewer),
            Self::Public | Self::MetricsCidr | Self::ScanCidr => None,
        }
    }
}

/// One entry of the route table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern, axum syntax.
    pub path: &'static str,
    /// Access level.
    pub access: Access,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What every handler shares (reached through [`AppState`]).
pub struct Inner {
    pub(crate) rt: Runtime,
    pub(crate) web: WebSettings,
    pub(crate) templates: minijinja::Environment<'static>,
    pub(crate) limiter: limiter::LoginLimiter,
    pub(crate) shutdown: CancellationToken,
    pub(crate) metrics: health::HttpMetrics,
    /// Grows by the bound address in [`serve_on`] (port 0 resolves there).
    hosts: arc_swap::ArcSwap<host::AllowedHosts>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub(crate) fn allowed_hosts(&self) -> Arc<host::AllowedHosts> {
        self.hosts.load_full()
    }

    /// State over a running system. `shutdown` ends open event streams.
    pub fn new(rt: Runtime, web: WebSettings, shutdown: CancellationToken) -> Result<Self, WebError> {
        let templates = templates::environment()?;
        let limiter = limiter::LoginLimiter::new(web.login_max_failures, web.login_max_global, web.login_lockout);
        let s = rt.environment();
        let hosts = host::AllowedHosts::new(&web.allowed_hosts, s.background.digest.public_url.as_deref(), s.listen);
        Ok(Self(Arc::new(Inner {
            hosts: arc_swap::ArcSwap::from_pointee(hosts),
            rt,
            web,
            templates,
            limiter,
            shutdown,
            metrics: health::HttpMetrics::default(),
        })))
    }
}

fn spec(method: Method, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec { method, path, access }
}

/// Every route, with its handler. The single source of truth.
pub fn routes() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::*;
    use Method as M;
    vec![
        (spec(M::GET, "/healthz", Public), get(health::healthz)),
        (spec(M::GET, "/static/{file}", Public), get(assets::serve)),
        (spec(M::GET, "/favicon.ico", Public), get(assets::favicon)),
        (spec(M::GET, "/login", Public), get(auth::login_page)),
        (spec(M::POST, "/login", Public), post(auth::login)),
        (spec(M::GET, "/digest/{token}", Public), get(digest_links::confirm_page)),
        (spec(M::POST, "/digest/{token}", Public), post(digest_links::redeem)),
        (spec(M::GET, "/my/login", Public), get(owner::login_page)),
        (spec(M::POST, "/my/login/link", Public), post(owner::login_link)),
        (spec(M::POST, "/my/login/imap", Public), post(owner::login_imap)),
        (spec(M::GET, "/my/link/{token}", Public), get(owner::link_page)),
        (spec(M::POST, "/my/link/{token}", Public), post(owner::link_redeem)),
        (spec(M::GET, "/my", Public), get(owner::page)),
        (spec(M::POST, "/my/messages/{id}/release", Public), post(owner::release)),
        (spec(M::POST, "/my/logout", Public), post(owner::logout)),
        (spec(M::GET, "/metrics", MetricsCidr), get(health::metrics)),
        (
            spec(M::POST, "/api/scan", ScanCidr),
            // The documented limit is BODY_LIMIT; without this the Bytes
            // extractor's own 2 MB default applied (issue 16).
            post(health::scan_api).layer(axum::extract::DefaultBodyLimit::max(security::BODY_LIMIT)),
        ),
        (spec(M::POST, "/logout", Viewer), post(auth::logout)),
        (spec(M::GET, "/health", Viewer), get(health::health)),
        (spec(M::GET, "/events", Viewer), get(sse::events)),
        (spec(M::GET, "/events/backfill", Viewer), get(progress::events)),
        (spec(M::GET, "/", Viewer), get(pages::dashboard)),
        (spec(M::GET, "/quarantine", Viewer), get(pages::quarantine)),
        (spec(M::GET, "/messages/{id}/drawer", Viewer), get(messages::drawer)),
        (spec(M::GET, "/messages/{id}/preview", Viewer), get(messages::preview)),
        (spec(M::GET, "/messages/{id}/eml", Viewer), get(messages::eml)),
        (spec(M::GET, "/lists", Viewer), get(pages::lists)),
        (spec(M::POST, "/lists", Session), post(forms::list_add)),
        (spec(M::POST, "/lists/import", Session), post(forms::list_import)),
        (spec(M::POST, "/lists/{id}/delete", Session), post(forms::list_delete)),
        (spec(M::POST, "/messages/{id}/sender-list", Session), post(sender_lists::add)),
        (spec(M::GET, "/stats", Viewer), get(pages::stats)),
        (spec(M::GET, "/system", Viewer), get(health_page::page)),
        (spec(M::GET, "/audit", Viewer), get(pages::audit)),
        (spec(M::GET, "/incidents", Viewer), get(incidents::page)),
        (spec(M::GET, "/incidents/{id}", Viewer), get(incidents::detail)),
        (spec(M::POST, "/incidents/{id}/status", Analyst), post(incidents::set_status)),
        (spec(M::GET, "/api/incidents", Viewer), get(incidents::list_api)),
        (spec(M::GET, "/api/incidents/{id}", Viewer), get(incidents::one_api)),
        (spec(M::GET, "/attacks", Viewer), get(attacks::page)),
        (spec(M::GET, "/api/attacks", Viewer), get(attacks::api)),
        (spec(M::GET, "/requests", Analyst), get(requests::page)),
        (spec(M::POST, "/requests/{id}/approve", Analyst), post(requests::approve)),
        (spec(M::POST, "/requests/{id}/deny", Analyst), post(requests::deny)),
        (spec(M::GET, "/settings", Session), get(pages::settings)),
        (spec(M::POST, "/settings", Session), post(forms::settings_save)),
        (spec(M::POST, "/settings/secrets", Session), post(settings::secret_save)),
        (spec(M::GET, "/password", Viewer), get(auth::password_page)),
        (spec(M::POST, "/settings/password", Viewer), post(auth::change_password_form)),
        (spec(M::GET, "/accounts", Session), get(accounts::page)),
        (spec(M::POST, "/accounts", Session), post(accounts::save_form)),
        (spec(M::POST, "/accounts/{name}/delete", Session), post(accounts::delete_form)),
        (spec(M::POST, "/accounts/{name}/test", Session), post(accounts::test_form)),
        (spec(M::POST, "/accounts/{name}/start", Session), post(accounts::start_form)),
        (spec(M::POST, "/accounts/{name}/stop", Session), post(accounts::stop_form)),
        (spec(M::GET, "/export/messages.csv", Viewer), get(export::messages)),
        (spec(M::GET, "/export/audit.csv", Viewer), get(export::audit)),
        (spec(M::GET, "/export/stats.csv", Viewer), get(export::stats)),
        (spec(M::GET, "/export/attackers.csv", Viewer), get(attacks::attackers_csv)),
        (spec(M::GET, "/export/attempts.csv", Viewer), get(attacks::attempts_csv)),
        (spec(M::GET, "/api/openapi.json", Viewer), get(api::openapi)),
        (spec(M::GET, "/api/status", Viewer), get(api::status)),
        (spec(M::GET, "/api/messages", Viewer), get(api::messages)),
        (spec(M::GET, "/api/messages/{id}", Viewer), get(api::message)),
        (spec(M::POST, "/api/messages/{id}/release", Analyst), post(api::release)),
        (spec(M::POST, "/api/messages/{id}/release-learn", Analyst), post(api::release_learn)),
        (spec(M::POST, "/api/messages/{id}/learn-spam", Analyst), post(api::learn_spam)),
        (spec(M::POST, "/api/messages/{id}/learn-ham", Analyst), post(api::learn_ham)),
        (spec(M::POST, "/api/messages/{id}/delete", Analyst), post(api::delete)),
        (spec(M::POST, "/api/messages/{id}/quarantine", Analyst), post(live::quarantine)),
        (spec(M::POST, "/api/messages/{id}/rescan", Analyst), post(api::rescan)),
        (spec(M::POST, "/api/messages/{id}/retry-action", Analyst), post(api::retry_action)),
        (
            spec(M::POST, "/api/messages/{id}/dismiss-action", Analyst),
            post(api::dismiss_action),
        ),
        (spec(M::GET, "/api/lists", Viewer), get(api::lists)),
        (spec(M::POST, "/api/lists", Session), post(api::list_add)),
        (spec(M::POST, "/api/lists/import", Session), post(api::list_import)),
        (spec(M::DELETE, "/api/lists/{id}", Session), delete(api::list_delete)),
        (spec(M::GET, "/api/indicators", Viewer), get(intel::list)),
        (spec(M::POST, "/api/indicators", Session), post(intel::add)),
        (spec(M::GET, "/api/indicators/{id}", Viewer), get(intel::one)),
        (spec(M::DELETE, "/api/indicators/{id}", Session), delete(intel::remove)),
        (spec(M::GET, "/api/indicators/{id}/sightings", Viewer), get(intel::sightings)),
        (spec(M::GET, "/api/feeds", Viewer), get(intel::feeds)),
        (spec(M::POST, "/api/feeds/refresh", Session), post(intel::refresh)),
        (spec(M::GET, "/api/stats", Viewer), get(api::stats)),
        (spec(M::GET, "/api/stats/top", Viewer), get(stats_top::top)),
        (spec(M::GET, "/api/audit", Viewer), get(api::audit)),
        (spec(M::GET, "/api/settings", Session), get(api::settings)),
        (spec(M::PUT, "/api/settings", Session), put(api::settings_put)),
        (spec(M::PUT, "/api/settings/secrets/{key}", Session), put(settings::secret_put)),
        (
            spec(M::DELETE, "/api/settings/secrets/{key}", Session),
            delete(settings::secret_delete),
        ),
        (spec(M::POST, "/api/password", Viewer), post(auth::change_password_api)),
        (spec(M::GET, "/api/accounts", Session), get(accounts::list_api)),
        (spec(M::POST, "/api/accounts", Session), post(accounts::create_api)),
        (spec(M::PUT, "/api/accounts/{name}", Session), put(accounts::update_api)),
        (spec(M::DELETE, "/api/accounts/{name}", Session), delete(accounts::delete_api)),
        (spec(M::POST, "/api/accounts/{name}/test", Session), post(accounts::test_api)),
        (spec(M::POST, "/api/accounts/{name}/start", Session), post(accounts::start_api)),
        (spec(M::POST, "/api/accounts/{name}/stop", Session), post(accounts::stop_api)),
        (spec(M::GET, "/reports", Viewer), get(reports::reports_page)),
        (spec(M::POST, "/reports/{id}/confirm", Analyst), post(reports::confirm_form)),
        (spec(M::POST, "/reports/{id}/reject", Analyst), post(reports::reject_form)),
        (spec(M::GET, "/campaigns", Viewer), get(reports::campaigns_page)),
        (
            spec(M::POST, "/campaigns/{id}/release", Analyst),
            post(reports::campaign_release_form),
        ),
        (spec(M::GET, "/api/reports", Viewer), get(reports::reports_api)),
        (spec(M::POST, "/api/reports/{id}/confirm", Analyst), post(reports::confirm_api)),
        (spec(M::POST, "/api/reports/{id}/reject", Analyst), post(reports::reject_api)),
        (spec(M::GET, "/api/campaigns", Viewer), get(reports::campaigns_api)),
        (
            spec(M::POST, "/campaigns/{id}/quarantine", Analyst),
            post(campaign_actions::quarantine_form),
        ),
        (
            spec(M::POST, "/campaigns/{id}/block-sender", Analyst),
            post(campaign_actions::block_form),
        ),
        (
            spec(M::POST, "/api/campaigns/{id}/release", Analyst),
            post(campaign_actions::release_api),
        ),
        (
            spec(M::POST, "/api/campaigns/{id}/quarantine", Analyst),
            post(campaign_actions::quarantine_api),
        ),
        (
            spec(M::POST, "/api/campaigns/{id}/block-sender", Analyst),
            post(campaign_actions::block_api),
        ),
        (spec(M::GET, "/purge", Analyst), get(purge::page)),
        (spec(M::POST, "/purge/search", Analyst), post(purge::search_form)),
        (spec(M::GET, "/purge/{id}", Analyst), get(purge::job_page)),
        (spec(M::POST, "/purge/{id}/start", Analyst), post(purge::start_form)),
        (spec(M::GET, "/events/purge/{id}", Analyst), get(purge::events)),
        (spec(M::GET, "/api/purge", Analyst), get(purge::list_api)),
        (spec(M::POST, "/api/purge", Analyst), post(purge::search_api)),
        (spec(M::GET, "/api/purge/{id}", Analyst), get(purge::one_api)),
        (spec(M::POST, "/api/purge/{id}/start", Analyst), post(purge::start_api)),
    ]
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state;
    let (mut public, mut metrics, mut scan) = (Router::new(), Router::new(), Router::new());
    let (mut admin, mut analyst, mut viewer) = (Router::new(), Router::new(), Router::new());
    for (spec, handler) in routes() {
        let r = match spec.access {
            Access::Public => &mut public,
            Access::Session => &mut admin,
            Access::Analyst => &mut analyst,
            Access::Viewer => &mut viewer,
            Access::MetricsCidr => &mut metrics,
            Access::ScanCidr => &mut scan,
        };
        *r = std::mem::take(r).route(spec.path, handler);
    }
    // Each role's routes get the session check with that role's floor, so
    // the role is enforced server-side on every verb, not by hiding links.
    let layered = |r: Router<AppState>, role: Role| r.route_layer(from_fn_with_state((state.clone(), role), auth::require_session));
    let session = layered(admin, Role::Admin)
        .merge(layered(analyst, Role::Analyst))
        .merge(layered(viewer, Role::Viewer));
    let metrics = metrics.route_layer(from_fn_with_state(state.clone(), security::metrics_cidr));
    let scan = scan.route_layer(from_fn_with_state(state.clone(), security::scan_cidr));
    Router::new()
        .merge(public)
        .merge(session)
        .merge(metrics)
        .merge(scan)
        .fallback(error::not_found)
        // The last layer added runs first. The header layer is outermost so
        // that every response, those made by the layers inside it (413, 408,
        // 421) included, carries the security headers (issue 16).
        .layer(axum::middleware::from_fn(security::timeout_layer))
        .layer(from_fn_with_state(state.clone(), host::host_layer))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(security::BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), security::headers))
        .with_state(state)
}

/// Serves the dashboard on `addr` until `shutdown` fires. Open event streams
/// end with it, so they never hold up a graceful stop.
pub async fn serve(state: AppState, addr: SocketAddr) -> Result<(), WebError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(WebError::Bind)?;
    let local = listener.local_addr().map_err(WebError::Bind)?;
    tracing::info!(url = %format!("http://{local}/"), "dashboard listening");
    serve_on(state, listener).await
}

/// Like [`serve`], on a listener the caller bound (tests bind port 0).
pub async fn serve_on(state: AppState, listener: tokio::net::TcpListener) -> Result<(), WebError> {
    let shutdown = state.shutdown.clone();
    if state.web.allowed_hosts.is_empty() {
        let bound = listener.local_addr().map_err(WebError::Bind)?;
        let mut hosts = (*state.allowed_hosts()).clone();
        hosts.add_listen(bound);
        state.hosts.store(Arc::new(hosts));
    }
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(WebError::Bind)
}
