//! Free-text flash messages (an error's text, a login test's result) travel
//! in the redirect's query string. They are signed with a key that lives
//! only in this process, so a crafted `?err=` link cannot put its own words
//! on a dashboard page; fixed success texts are chosen by code instead
//! (`pages::Flash::ok_text`). A message from before a restart is simply not
//! shown.

use super::auth::urlencode;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;

/// Longest text a flash carries.
const MAX_CHARS: usize = 500;

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

fn mac(field: &str, text: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this never falls back.
    let mut m = Hmac::<Sha256>::new_from_slice(key()).unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
    m.update(field.as_bytes());
    m.update(&[0]);
    m.update(text.as_bytes());
    m
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_CHARS).collect()
}

/// `field=<text>&<field>_sig=<mac>` for a redirect's query string.
pub(crate) fn query(field: &str, text: &str) -> String {
    let text = bounded(text);
    let sig = hex::encode(mac(field, &text).finalize().into_bytes());
    format!("{field}={}&{field}_sig={sig}", urlencode(&text))
}

/// The text, if this process signed it for `field`.
pub(crate) fn verified(field: &str, text: Option<&str>, sig: Option<&str>) -> Option<String> {
    let (text, sig) = (text?, hex::decode(sig?).ok()?);
    mac(field, text).verify_slice(&sig).ok()?;
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> (String, String) {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        (pairs[0].1.clone(), pairs[1].1.clone())
    }

    #[test]
    fn issue_16_only_signed_texts_are_shown() {
        let (text, sig) = parse(&query("err", "IMAP login failed: <b>no</b>"));
        assert_eq!(
            verified("err", Some(&text), Some(&sig)).as_deref(),
            Some("IMAP login failed: <b>no</b>")
        );
        // A crafted link: its own words, no or a wrong signature, or a
        // signature made for another field.
        assert_eq!(verified("err", Some("Call +1 555 to unlock"), None), None);
        assert_eq!(verified("err", Some("Call +1 555 to unlock"), Some(&sig)), None);
        assert_eq!(verified("tested", Some(&text), Some(&sig)), None);
        assert_eq!(verified("err", Some(&text), Some("zz")), None);
    }

    #[test]
    fn long_texts_are_bounded_before_signing() {
        let (text, sig) = parse(&query("tested", &"x".repeat(2000)));
        assert_eq!(text.chars().count(), MAX_CHARS);
        assert!(verified("tested", Some(&text), Some(&sig)).is_some());
    }
}
