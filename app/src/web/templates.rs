//! Templates are embedded in the binary; `.html` templates are autoescaped.

use super::security::Nonce;
use super::{AppState, WebError, error::html_error};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("dashboard.html", include_str!("../../templates/dashboard.html")),
    ("quarantine.html", include_str!("../../templates/quarantine.html")),
    ("messages_table.html", include_str!("../../templates/messages_table.html")),
    ("filters.html", include_str!("../../templates/filters.html")),
    ("drawer.html", include_str!("../../templates/drawer.html")),
    ("lists.html", include_str!("../../templates/lists.html")),
    ("stats.html", include_str!("../../templates/stats.html")),
    ("attacks.html", include_str!("../../templates/attacks.html")),
    ("audit.html", include_str!("../../templates/audit.html")),
    ("settings.html", include_str!("../../templates/settings.html")),
    ("accounts.html", include_str!("../../templates/accounts.html")),
    ("digest.html", include_str!("../../templates/digest.html")),
    ("password.html", include_str!("../../templates/password.html")),
    ("incidents.html", include_str!("../../templates/incidents.html")),
    ("incident.html", include_str!("../../templates/incident.html")),
    ("health.html", include_str!("../../templates/health.html")),
    ("owner_login.html", include_str!("../../templates/owner_login.html")),
    ("owner_link.html", include_str!("../../templates/owner_link.html")),
    ("owner.html", include_str!("../../templates/owner.html")),
    ("requests.html", include_str!("../../templates/requests.html")),
    ("backfill.html", include_str!("../../templates/backfill.html")),
    ("learning.html", include_str!("../../templates/learning.html")),
    ("reports.html", include_str!("../../templates/reports.html")),
    ("campaigns.html", include_str!("../../templates/campaigns.html")),
    ("purge.html", include_str!("../../templates/purge.html")),
    ("purge_job.html", include_str!("../../templates/purge_job.html")),
];

/// Builds the template environment (fails on a template syntax error).
pub(crate) fn environment() -> Result<Environment<'static>, WebError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, src) in TEMPLATES {
        env.add_template(name, src)?;
    }
    env.add_filter("badge", badge);
    env.add_filter("short_time", short_time);
    env.add_filter("defang", defang);
    // Every value printed into a page goes through here, so a sender's
    // bidi controls are shown, never obeyed (`gnp.exe` must not read as
    // `exe.png`), whichever template prints it.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(s) if s.chars().any(is_bidi_control) => minijinja::escape_formatter(out, state, &Value::from(neutralise_bidi(s))),
        _ => minijinja::escape_formatter(out, state, value),
    });
    Ok(env)
}

/// Unicode's directional formatting characters (UAX #9 explicit embeddings,
/// overrides and isolates, plus the implicit marks).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Replaces each bidi control with a visible `[U+XXXX]`.
pub(crate) fn neutralise_bidi(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_bidi_control(c) {
            out.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// CSS class for a verdict badge.
fn badge(v: Option<String>) -> &'static str {
    match v.as_deref() {
        Some("pass") => "badge badge-pass",
        // Junk shares the flag's colour: unwanted, not dangerous.
        Some("flag" | "junk") => "badge badge-flag",
        Some("quarantine") => "badge badge-quarantine",
        Some("delete") => "badge badge-delete",
        _ => "badge badge-muted",
    }
}

/// `2026-11-22T10:01:02.123Z` → `2026-11-22 10:01:02`.
fn short_time(s: Option<String>) -> String {
    s.map(|s| s.replace('T', " ").chars().take(19).collect()).unwrap_or_default()
}

/// Makes a URL or address unclickable: `hxxps://evil[.]example/`.
pub(crate) fn defang(s: String) -> String {
    s.replacen("https://", "hxxps://", 1)
        .replacen("http://", "hxxp://", 1)
        .replace('.', "[.]")
}

/// Per-request page context.
pub(crate) struct PageCx {
    pub(crate) nonce: String,
    pub(crate) csrf: Option<String>,
    pub(crate) nav: &'static str,
    /// The signed-in user and role, for the header and for hiding controls
    /// the role may not use (the server refuses them anyway).
    pub(crate) user: Option<(String, &'static str)>,
}

impl PageCx {
    pub(crate) fn anonymous(nonce: &Nonce) -> Self {
        Self {
            nonce: nonce.0.clone(),
            csrf: None,
            nav: "",
            user: None,
        }
    }

    pub(crate) fn admin(nonce: &Nonce, admin: &super::auth::Admin, nav: &'static str) -> Self {
        Self {
            nonce: nonce.0.clone(),
            csrf: Some(admin.csrf.clone()),
            nav,
            user: Some((admin.user.clone(), admin.role.as_str())),
        }
    }
}

/// Renders a page; a rendering failure becomes a generic error page.
pub(crate) fn render(st: &AppState, name: &str, cx: &PageCx, extra: Value) -> Response {
    match render_string(st, name, cx, extra) {
        Ok(s) => Html(s).into_response(),
        Err(e) => html_error(e),
    }
}

pub(crate) fn render_string(st: &AppState, name: &str, cx: &PageCx, extra: Value) -> Result<String, WebError> {
    let t = st.templates.get_template(name)?;
    let base = context! {
        nonce => cx.nonce,
        csrf => cx.csrf,
        nav => cx.nav,
        user => cx.user.as_ref().map(|u| u.0.clone()),
        role => cx.user.as_ref().map(|u| u.1),
        version => env!("CARGO_PKG_VERSION"),
    };
    Ok(t.render(context! { ..base, ..extra })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_escape() {
        let env = environment().unwrap();
        let t = env.template_from_str("{{ x }}").unwrap();
        assert_eq!(
            t.render(context! { x => "<b>" }).unwrap(),
            "<b>",
            "non-.html inline strings are not escaped"
        );
        let page = env.get_template("login.html").unwrap();
        let out = page
            .render(context! { error => "<script>alert(1)</script>", nonce => "n", login_csrf => "t" })
            .unwrap();
        assert!(out.contains("&lt;script&gt;"), "html templates escape");
        assert!(!out.contains("<script>alert"));
    }

    #[test]
    fn issue_16_bidi_controls_are_shown_not_obeyed() {
        let env = environment().unwrap();
        let page = env.get_template("login.html").unwrap();
        // "invoice\u{202E}gnp.exe" displays as "invoiceexe.png" when obeyed.
        let out = page
            .render(context! { error => "invoice\u{202E}gnp.exe \u{2066}x\u{2069}", nonce => "n", login_csrf => "t" })
            .unwrap();
        assert!(out.contains("invoice[U+202E]gnp.exe [U+2066]x[U+2069]"), "{out}");
        assert!(!out.chars().any(is_bidi_control));
        // Ordinary right-to-left text is not a control and stays as it is.
        assert_eq!(neutralise_bidi("שלום abc"), "שלום abc");
    }

    #[test]
    fn defanging() {
        assert_eq!(defang("https://evil.example/x".into()), "hxxps://evil[.]example/x");
    }
}
