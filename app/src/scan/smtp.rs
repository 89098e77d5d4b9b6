//! The SMTP envelope as the MTA saw it (in-line mode, issue 19). The IMAP
//! path can only rebuild the sender's IP, HELO and recipients from
//! Received and To/Cc headers; a milter is told them by the MTA, so they
//! replace the guesses before any scanner runs.

use super::ScanInput;
use std::net::IpAddr;

/// Envelope facts from the SMTP dialogue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmtpEnvelope {
    /// The connecting client's IP (`None` for a local submission).
    pub client_ip: Option<IpAddr>,
    /// The HELO/EHLO name the client gave.
    pub helo: Option<String>,
    /// MAIL FROM, without angle brackets (empty for the null sender).
    pub mail_from: Option<String>,
    /// RCPT TO addresses, without angle brackets.
    pub rcpt: Vec<String>,
}

impl SmtpEnvelope {
    /// Puts the envelope into a parsed input, over what the headers said.
    /// Empty values leave the header-derived ones in place.
    pub fn apply(&self, input: &mut ScanInput) {
        if let Some(ip) = self.client_ip {
            input.sender_ip = Some(ip);
        }
        if let Some(h) = self.helo.as_deref().filter(|h| !h.is_empty()) {
            input.helo = Some(h.to_string());
        }
        if let Some(f) = self.mail_from.as_deref().filter(|f| !f.is_empty()) {
            input.mail_from = Some(f.to_ascii_lowercase());
        }
        if !self.rcpt.is_empty() {
            input.rcpt = self.rcpt.iter().map(|r| r.to_ascii_lowercase()).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    #[test]
    fn envelope_replaces_what_the_headers_suggest() {
        let raw =
            b"Received: from forged.test (forged.test [198.51.100.9]) by mx.test\r\nFrom: a@a.test\r\nTo: header@b.test\r\n\r\nhi\r\n";
        let mut input = ScanInput::parse(raw.to_vec(), &InputOptions::default());
        let env = SmtpEnvelope {
            client_ip: Some("192.0.2.7".parse().unwrap()),
            helo: Some("real.helo.test".into()),
            mail_from: Some("Bounce@A.test".into()),
            rcpt: vec!["Env@B.test".into()],
        };
        env.apply(&mut input);
        assert_eq!(input.sender_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(input.helo.as_deref(), Some("real.helo.test"));
        assert_eq!(input.mail_from.as_deref(), Some("bounce@a.test"));
        assert_eq!(input.rcpt, vec!["env@b.test"]);
        assert_eq!(
            input.from_addr.as_deref(),
            Some("a@a.test"),
            "the header From stays for spoofing checks"
        );
    }

    #[test]
    fn an_empty_envelope_keeps_the_headers() {
        let raw = b"From: a@a.test\r\nTo: header@b.test\r\n\r\nhi\r\n";
        let mut input = ScanInput::parse(raw.to_vec(), &InputOptions::default());
        SmtpEnvelope::default().apply(&mut input);
        assert_eq!(input.rcpt, vec!["header@b.test"]);
        assert_eq!(input.mail_from, None);
    }
}
