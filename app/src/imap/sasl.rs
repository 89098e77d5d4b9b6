//! SASL bearer-token logins: OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's
//! and Microsoft's older form of the same thing).

use crate::config::SaslMechanism;

/// The mechanism to use for `pref` given the pre-login capabilities:
/// OAUTHBEARER when offered (the standard), else XOAUTH2. A mechanism set
/// in the config is used as told, advertised or not (some servers list
/// their mechanisms only after STARTTLS or not at all).
pub(super) fn choose(pref: SaslMechanism, has: impl Fn(&str) -> bool) -> Option<&'static str> {
    match pref {
        SaslMechanism::Xoauth2 => Some("XOAUTH2"),
        SaslMechanism::Oauthbearer => Some("OAUTHBEARER"),
        SaslMechanism::Auto if has("AUTH=OAUTHBEARER") => Some("OAUTHBEARER"),
        SaslMechanism::Auto if has("AUTH=XOAUTH2") => Some("XOAUTH2"),
        SaslMechanism::Auto => None,
    }
}

/// One bearer-token exchange. The first challenge gets the initial
/// response; a second one is the server's error report (a JSON status),
/// which is kept for the error message and answered as the mechanism
/// requires so the server can finish with NO instead of hanging.
pub(super) struct Bearer {
    mechanism: &'static str,
    initial: Option<Vec<u8>>,
    /// The server's error challenge, if it sent one.
    pub(super) error: Option<String>,
}

impl Bearer {
    pub(super) fn new(mechanism: &'static str, user: &str, host: &str, port: u16, token: &str) -> Self {
        let initial = if mechanism == "OAUTHBEARER" {
            // RFC 7628 §3.1: gs2 header with the authzid, then key=value
            // pairs separated by ^A; RFC 5801 escapes ',' and '=' in the name.
            let name = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={name},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
        } else {
            format!("user={user}\x01auth=Bearer {token}\x01\x01")
        };
        Self {
            mechanism,
            initial: Some(initial.into_bytes()),
            error: None,
        }
    }
}

impl async_imap::Authenticator for &mut Bearer {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        if let Some(first) = self.initial.take() {
            return first;
        }
        self.error = Some(String::from_utf8_lossy(challenge).chars().take(300).collect());
        // RFC 7628 §3.2.3: OAUTHBEARER acknowledges with a lone ^A;
        // XOAUTH2 with an empty response.
        if self.mechanism == "OAUTHBEARER" { vec![1] } else { Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator;

    #[test]
    fn auto_prefers_oauthbearer_and_falls_back_to_xoauth2() {
        let both = |c: &str| c == "AUTH=OAUTHBEARER" || c == "AUTH=XOAUTH2";
        assert_eq!(choose(SaslMechanism::Auto, both), Some("OAUTHBEARER"));
        assert_eq!(choose(SaslMechanism::Auto, |c| c == "AUTH=XOAUTH2"), Some("XOAUTH2"));
        assert_eq!(choose(SaslMechanism::Auto, |c| c == "AUTH=PLAIN"), None);
        assert_eq!(choose(SaslMechanism::Xoauth2, both), Some("XOAUTH2"));
        assert_eq!(choose(SaslMechanism::Oauthbearer, |_| false), Some("OAUTHBEARER"));
    }

    #[test]
    fn initial_responses_follow_the_specs() {
        let mut x = Bearer::new("XOAUTH2", "a@example.org", "imap.example.org", 993, "tok");
        assert_eq!((&mut x).process(b""), b"user=a@example.org\x01auth=Bearer tok\x01\x01");
        let mut o = Bearer::new("OAUTHBEARER", "a,b=c@example.org", "imap.example.org", 993, "tok");
        assert_eq!(
            (&mut o).process(b""),
            b"n,a=a=2Cb=3Dc@example.org,\x01host=imap.example.org\x01port=993\x01auth=Bearer tok\x01\x01"
        );
    }

    #[test]
    fn the_error_challenge_is_kept_and_acknowledged() {
        let mut o = Bearer::new("OAUTHBEARER", "u", "h", 1, "t");
        (&mut o).process(b"");
        assert_eq!((&mut o).process(br#"{"status":"invalid_token"}"#), vec![1]);
        assert_eq!(o.error.as_deref(), Some(r#"{"status":"invalid_token"}"#));
        let mut x = Bearer::new("XOAUTH2", "u", "h", 1, "t");
        (&mut x).process(b"");
        assert!((&mut x).process(b"{}").is_empty());
    }
}
