//! The Health page: every component `/health` reports, for a person. A
//! component that is switched off on purpose (a scanner left unconfigured,
//! a stopped account) is listed as "off", apart from the failures, so an
//! operator is not taught to ignore red.

use super::AppState;
use super::auth::Admin;
use super::health::components;
use super::security::Nonce;
use super::templates::{PageCx, render};
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use minijinja::context;

pub(crate) async fn page(State(st): State<AppState>, Extension(nonce): Extension<Nonce>, Extension(admin): Extension<Admin>) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "health");
    let all = components(&st).await;
    let failing: Vec<_> = all.iter().filter(|c| !c.ok).cloned().collect();
    let off: Vec<_> = all.iter().filter(|c| c.ok && c.off).cloned().collect();
    let fine: Vec<_> = all.iter().filter(|c| c.ok && !c.off).cloned().collect();
    let degraded = failing.iter().any(|c| c.critical);
    render(&st, "health.html", &cx, context! { failing, off, fine, degraded })
}
