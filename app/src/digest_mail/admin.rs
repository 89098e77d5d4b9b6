//! The admin's daily digest: what log watch saw on the mail server since
//! the last one (attacks, compromise suspicions, incidents opened), with
//! links to the dashboard's attacks and incidents pages.

use super::DigestError;
use crate::store::LogwatchSummary;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

const TEXT: &str = "Postern daily report {{ period }}

Log watch
{% if s.attacks == 0 and not s.compromises and not s.incidents %}No attacks on the mail server's logins.
{% else %}{{ s.attacks }} attack alert(s) from {{ s.attackers }} address(es), {{ s.attempts }} failed login attempt(s).
{% if s.compromises %}
COMPROMISE SUSPICIONS (a login succeeded after failures; change those passwords):
{% for c in s.compromises %}- {{ c }}
{% endfor %}{% endif %}{% if s.incidents %}
Incidents opened:
{% for id, title in s.incidents %}- #{{ id }} {{ title }}: {{ base }}/incidents/{{ id }}
{% endfor %}{% endif %}{% if s.top %}
Busiest attackers:
{% for a in s.top %}- {{ a.ip }}  {{ a.attempts }} attempt(s) against {{ a.users }} user(s){% if a.country %}, {{ a.country }}{% endif %}{% if a.asn %}, AS{{ a.asn }}{% endif %}, indicator {{ a.ioc }}
{% endfor %}{% endif %}{% endif %}
Attacks: {{ base }}/attacks
Incidents: {{ base }}/incidents
";

const HTML: &str = r#"<!doctype html><html><body style="font-family:sans-serif">
<h2>Postern daily report {{ period }}</h2>
<h3>Log watch</h3>
{% if s.attacks == 0 and not s.compromises and not s.incidents %}<p>No attacks on the mail server's logins.</p>
{% else %}<p>{{ s.attacks }} attack alert(s) from {{ s.attackers }} address(es), {{ s.attempts }} failed login attempt(s).</p>
{% if s.compromises %}<p><strong>Compromise suspicions</strong> (a login succeeded after failures; change those passwords):</p>
<ul>{% for c in s.compromises %}<li>{{ c }}</li>{% endfor %}</ul>{% endif %}
{% if s.incidents %}<p>Incidents opened:</p>
<ul>{% for id, title in s.incidents %}<li><a href="{{ base }}/incidents/{{ id }}">#{{ id }}</a> {{ title }}</li>{% endfor %}</ul>{% endif %}
{% if s.top %}<table cellpadding="4" style="border-collapse:collapse">
<tr><th align="left">Address</th><th align="left">Attempts</th><th align="left">Users</th><th align="left">Country</th><th align="left">ASN</th><th align="left">Indicator</th></tr>
{% for a in s.top %}<tr style="border-top:1px solid #ccc"><td>{{ a.ip }}</td><td>{{ a.attempts }}</td><td>{{ a.users }}</td><td>{{ a.country or '' }}</td><td>{% if a.asn %}AS{{ a.asn }}{% endif %}</td><td>{{ a.ioc }}</td></tr>
{% endfor %}</table>{% endif %}{% endif %}
<p><a href="{{ base }}/attacks">Attacks</a> · <a href="{{ base }}/incidents">Incidents</a></p>
</body></html>"#;

/// The digest's text and HTML bodies.
pub fn render_admin(base: &str, period: &str, s: &LogwatchSummary) -> Result<(String, String), DigestError> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    let build = |e: minijinja::Error| DigestError::Build(e.to_string());
    env.add_template("admin.txt", TEXT).map_err(build)?;
    env.add_template("admin.html", HTML).map_err(build)?;
    let cx = minijinja::context! { s, base, period };
    let text = env.get_template("admin.txt").and_then(|t| t.render(&cx)).map_err(build)?;
    let html = env.get_template("admin.html").and_then(|t| t.render(&cx)).map_err(build)?;
    Ok((text, html))
}

/// Builds the admin digest; `base` is the dashboard's public URL.
pub fn compose_admin(from: &str, to: &str, base: &str, period: &str, s: &LogwatchSummary) -> Result<Message, DigestError> {
    let (text, html) = render_admin(base, period, s)?;
    let from: Mailbox = format!("Postern <{from}>")
        .parse()
        .map_err(|_| DigestError::Address(from.to_string()))?;
    let to: Mailbox = to.parse().map_err(|_| DigestError::Address(to.to_string()))?;
    let alarm = if s.compromises.is_empty() { "" } else { ", compromise suspected" };
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!(
            "[Postern] daily report: {} attack(s), {} incident(s) opened{alarm}",
            s.attacks,
            s.incidents.len()
        ))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| DigestError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttackerRow;

    #[test]
    fn the_log_watch_section_names_attackers_suspicions_and_incidents() {
        let s = LogwatchSummary {
            attacks: 3,
            attackers: 1,
            attempts: 42,
            top: vec![AttackerRow {
                ip: "203.0.113.9".into(),
                attempts: 42,
                users: 7,
                alerts: 3,
                country: Some("NL".into()),
                asn: Some(64500),
                as_org: None,
                first_seen: 0,
                last_seen: 0,
                ioc: "active".into(),
                ioc_id: Some(1),
                ioc_expires: None,
            }],
            compromises: vec!["compromise suspicion: 203.0.113.9 user \"bob<x>\" logged in after 5 failures".into()],
            incidents: vec![(4, "Attacks from 203.0.113.9".into())],
        };
        let (text, html) = render_admin("https://p.example", "since 2026-12-01", &s).unwrap();
        for needle in [
            "42 failed login",
            "203.0.113.9",
            "AS64500",
            "https://p.example/incidents/4",
            "COMPROMISE SUSPICIONS",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(
            html.contains("bob&lt;x&gt;") && !html.contains("bob<x>"),
            "the HTML part escapes log text: {html}"
        );
        let m = compose_admin("postern@example.org", "admin@example.org", "https://p.example", "", &s).unwrap();
        let subject = m.headers().get_raw("Subject").unwrap_or_default().to_string();
        assert!(subject.ends_with(", compromise suspected"), "{subject}");
        let (quiet, _) = render_admin("https://p.example", "", &LogwatchSummary::default()).unwrap();
        assert!(quiet.contains("No attacks"), "{quiet}");
    }
}
