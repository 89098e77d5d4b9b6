//! IMAP failures in plain language, each with a fix. async-imap reports a
//! server's NO or BAD as the Rust debug text of its parse result
//! (`outcome: Outcome { code: None, information: Some("…"), … }`), which
//! must never reach an operator: only the server's own sentence does.

use super::ImapError;

/// The server's human text from async-imap's debug rendering of a NO/BAD
/// (`information: Some("…")` or `info: Some("…")`); the input unchanged
/// when it has neither.
pub fn server_text(debug: &str) -> String {
    for key in ["information: Some(\"", "info: Some(\""] {
        if let Some(start) = debug.find(key).map(|i| i + key.len()) {
            let rest = &debug[start..];
            // The text ends at the first unescaped quote.
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => return out,
                    c => out.push(c),
                }
            }
            return out;
        }
    }
    if debug.contains("Outcome {") || debug.contains("code: ") {
        // A NO with no text at all: say so rather than show the structure.
        return "the server gave no reason".into();
    }
    debug.to_string()
}

/// An async-imap error for display: a server's NO or BAD as its own words.
pub(super) fn client_text(e: &async_imap::error::Error) -> String {
    match e {
        async_imap::error::Error::No(d) => format!("the server said no: {}", server_text(d)),
        async_imap::error::Error::Bad(d) => format!("the server refused the command: {}", server_text(d)),
        async_imap::error::Error::Io(io) => io_text(io),
        other => other.to_string(),
    }
}

/// An I/O error for display. async-imap reports a response it cannot
/// parse as an I/O error whose text is the parser's internal state
/// followed by the raw buffer; the buffer is what an operator can act on
/// (GNU imap4d sends `* 3 FETCH FLAGS (\Seen)`, without the parentheses
/// RFC 3501 requires; `quirks.rs` now reads that one, but the next
/// server's mistake will look the same).
pub(super) fn io_text(e: &std::io::Error) -> String {
    const MARK: &str = " during parsing of ";
    let text = e.to_string();
    match text.split_once(MARK) {
        Some((_, buffer)) => {
            let shown: String = buffer.chars().take(160).collect();
            let more = if buffer.chars().count() > 160 { "…" } else { "" };
            format!("the server sent a response that does not follow the IMAP grammar: {shown}{more}")
        }
        None => text,
    }
}

impl ImapError {
    /// What to do about this failure, for the dashboard and `check-config`.
    pub fn fix(&self) -> &'static str {
        match self {
            ImapError::Connect { .. } => {
                "check the host and port, and that this machine can reach the server (firewall, DNS); 993 is IMAPS, 143 is STARTTLS"
            }
            ImapError::Tls(_) => {
                "check the tls mode (implicit on 993, starttls on 143); for a self-signed server give its certificate as ca_file or pin it with tls_fingerprint"
            }
            ImapError::Auth { .. } => {
                "check the user name and password; Gmail and Microsoft 365 need an app password or OAuth2, and some servers want the full address as the user"
            }
            ImapError::Timeout { .. } | ImapError::ConnectionLost | ImapError::Io(_) => {
                "the server stopped answering: check that it is up and not rate-limiting this address, then test again"
            }
            ImapError::Refused { .. } | ImapError::FolderUnavailable { .. } => {
                "check the folder names against the server's (they are case-sensitive, and some servers put folders under INBOX.)"
            }
            ImapError::Unsupported(_) => "this server cannot do what Postern needs here; see the README's server notes",
            ImapError::Deferred(_) => {
                "it goes through once the user's mail client expunges the mail marked deleted; pending actions retry by themselves"
            }
            _ => "test the account again; if it keeps failing, the log has the details",
        }
    }

    /// The failure and its fix in one sentence pair.
    pub fn plain(&self) -> String {
        format!("{self}. Fix: {}", self.fix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_22_a_refused_login_shows_the_servers_words_not_rust_debug() {
        let raw = r#"outcome: Outcome { code: None, information: Some("[AUTHENTICATIONFAILED] Authentication failed."), tag: RequestId("A0001") }"#;
        assert_eq!(server_text(raw), "[AUTHENTICATIONFAILED] Authentication failed.");
        let raw = r#"code: Some(Alert), info: Some("Say \"hi\" first")"#;
        assert_eq!(server_text(raw), r#"Say "hi" first"#);
        assert_eq!(
            server_text("outcome: Outcome { code: None, information: None }"),
            "the server gave no reason"
        );
        assert_eq!(server_text("Mailbox does not exist"), "Mailbox does not exist");
        let e = ImapError::Client(async_imap::error::Error::No(
            r#"outcome: Outcome { code: None, information: Some("Mailbox doesn't exist: Spam"), tag: X }"#.into(),
        ));
        assert_eq!(e.to_string(), "imap: the server said no: Mailbox doesn't exist: Spam");
    }

    /// A response async-imap cannot parse shows the server's bytes, not
    /// the parser's internal state.
    #[test]
    fn an_unparseable_response_shows_what_the_server_sent() {
        let io = std::io::Error::other(
            r#"Error(Error { input: [42, 32, 51], code: TakeWhile1 }) during parsing of "* 3 FETCH FLAGS (\Flagged \Seen)
""#,
        );
        let shown = ImapError::Client(async_imap::error::Error::Io(io)).to_string();
        assert_eq!(
            shown,
            r#"imap: the server sent a response that does not follow the IMAP grammar: "* 3 FETCH FLAGS (\Flagged \Seen)
""#
        );
        let long = std::io::Error::other(format!("x during parsing of \"{}\"", "A".repeat(500)));
        assert!(ImapError::Io(long).to_string().ends_with("AAA…"));
        let plain = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        assert_eq!(ImapError::Io(plain).to_string(), "i/o: broken pipe");
    }

    #[test]
    fn every_failure_comes_with_a_fix() {
        let e = ImapError::Auth {
            user: "alice".into(),
            detail: "Authentication failed.".into(),
        };
        let p = e.plain();
        assert!(
            p.starts_with("login rejected for alice: Authentication failed.. Fix: ") || p.contains("Fix: check the user name"),
            "{p}"
        );
        assert!(!p.contains("Outcome"), "{p}");
    }
}
