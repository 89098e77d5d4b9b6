//! Quarantine digests: a per-recipient email listing the mail quarantined
//! since the last one, each item with a release and a delete link. The
//! links open a confirmation page (see `web::digest_links`), so a mail filter
//! that prefetches links cannot act on them.

pub mod admin;
pub mod links;

use crate::store::MessageSummary;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Digest failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// An address did not parse.
    #[error("bad address {0:?}")]
    Address(String),
    /// The message could not be built.
    #[error("cannot build the digest: {0}")]
    Build(String),
    /// SMTP failed.
    #[error("SMTP: {0}")]
    Smtp(String),
}

/// One listed message with its links.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    /// The message.
    pub m: MessageSummary,
    /// Opens the release confirmation.
    pub release_url: String,
    /// Opens the delete confirmation.
    pub delete_url: String,
}

const TEXT: &str = "Postern quarantine digest for {{ account }}
{{ items|length }} message(s) held in quarantine {{ period }}.
Each link works once and expires {{ expires }}.
{% for i in items %}
- {{ i.m.first_seen[:16] }}  from {{ i.m.from or '(no sender)' }}
  Subject: {{ i.m.subject or '(no subject)' }}
  Why: {{ i.m.tags or i.m.verdict }} (score {{ i.m.score or 0 }})
  Release to {{ i.m.mailbox }}: {{ i.release_url }}
  Delete: {{ i.delete_url }}
{% endfor %}
Only release mail you expected. Postern never asks for your password.
";

const HTML: &str = r#"<!doctype html><html><body style="font-family:sans-serif">
<h2>Quarantine digest for {{ account }}</h2>
<p>{{ items|length }} message(s) held in quarantine {{ period }}. Each link works once and expires {{ expires }}.</p>
<table cellpadding="6" style="border-collapse:collapse">
<tr><th align="left">Received</th><th align="left">From</th><th align="left">Subject</th><th align="left">Why</th><th></th></tr>
{% for i in items %}<tr style="border-top:1px solid #ccc">
<td>{{ i.m.first_seen[:16] }}</td><td>{{ i.m.from or '(no sender)' }}</td><td>{{ i.m.subject or '(no subject)' }}</td>
<td>{{ i.m.tags or i.m.verdict }}</td>
<td><a href="{{ i.release_url }}">Release</a> · <a href="{{ i.delete_url }}">Delete</a></td></tr>
{% endfor %}</table>
<p>Only release mail you expected. Postern never asks for your password.</p>
</body></html>"#;

/// Builds the digest email.
pub fn compose(from: &str, to: &str, account: &str, period: &str, expires: &str, items: &[Item]) -> Result<Message, DigestError> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    let build = |e: minijinja::Error| DigestError::Build(e.to_string());
    env.add_template("digest.txt", TEXT).map_err(build)?;
    env.add_template("digest.html", HTML).map_err(build)?;
    let cx = minijinja::context! { account, period, expires, items };
    let text = env.get_template("digest.txt").and_then(|t| t.render(&cx)).map_err(build)?;
    let html = env.get_template("digest.html").and_then(|t| t.render(&cx)).map_err(build)?;
    let from: Mailbox = format!("Postern <{from}>")
        .parse()
        .map_err(|_| DigestError::Address(from.to_string()))?;
    let to: Mailbox = to.parse().map_err(|_| DigestError::Address(to.to_string()))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[Postern] {} message(s) in quarantine for {account}", items.len()))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| DigestError::Build(e.to_string()))
}

/// An SMTP submission client from `POSTERN_SMTP_URL`.
#[derive(Clone)]
pub struct Mailer(AsyncSmtpTransport<Tokio1Executor>);

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer(..)")
    }
}

impl Mailer {
    /// A client for `url` (`smtps://`, `smtp://…?tls=required`, or plain `smtp://` on loopback).
    pub fn from_url(url: &str) -> Result<Mailer, DigestError> {
        Self::from_url_with(url, None)
    }

    /// A client for `url` that logs in with `credentials` (user, password)
    /// instead of any the URL carries: the dashboard keeps them sealed apart.
    pub fn from_url_with(url: &str, credentials: Option<(String, String)>) -> Result<Mailer, DigestError> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| DigestError::Smtp(e.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(60)));
        if let Some((user, pass)) = credentials {
            b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(user, pass));
        }
        Ok(Mailer(b.build()))
    }

    /// Sends one message.
    pub async fn send(&self, m: Message) -> Result<(), DigestError> {
        self.0.send(m).await.map(|_| ()).map_err(|e| DigestError::Smtp(e.to_string()))
    }
}
