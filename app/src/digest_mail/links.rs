//! Digest links: `<nonce>.<mac>`, both base64url. The nonce finds the
//! stored link; the MAC, keyed from the database key, covers the nonce and
//! everything the link does (message, content hash, action, recipient,
//! expiry) as stored, so neither a guessed nonce nor an edited row works.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::store::{DigestLink, OwnerLink};

/// The key digest links are signed with, derived from the database key so
/// no extra secret has to be configured.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// Derives the link key from the database key.
    pub fn derive(db_key: &[u8; 32]) -> LinkKey {
        LinkKey(mac(db_key, &[b"postern digest links v1"]))
    }

    /// A fresh token for `link`, and the nonce hash to store it under.
    pub fn issue(&self, link: &DigestLink) -> (String, String) {
        let nonce: [u8; 18] = rand::random();
        let n = URL_SAFE_NO_PAD.encode(nonce);
        let sig = URL_SAFE_NO_PAD.encode(self.sign(&n, link));
        (format!("{n}.{sig}"), nonce_hash(&n))
    }

    /// Splits a token into (nonce hash, MAC) when it is well-formed.
    pub fn parse(token: &str) -> Option<(String, String)> {
        let (n, sig) = token.split_once('.')?;
        let ok = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (ok(n) && ok(sig)).then(|| (nonce_hash(n), format!("{n}.{sig}")))
    }

    /// Whether `token` is the genuine token for the stored `link`.
    pub fn verify(&self, token: &str, link: &DigestLink) -> bool {
        let Some((n, sig)) = token.split_once('.') else { return false };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        let mut m = keyed(&self.0);
        feed(&mut m, n, link);
        m.verify_slice(&sig).is_ok()
    }

    /// A fresh sign-in token for a mailbox owner (issue 22), and the nonce
    /// hash to store it under. Signed with a key of its own, so no digest
    /// link can pass for a sign-in link or the other way round.
    pub fn issue_owner(&self, link: &OwnerLink) -> (String, String) {
        let nonce: [u8; 18] = rand::random();
        let n = URL_SAFE_NO_PAD.encode(nonce);
        let mut m = keyed(&self.owner_key());
        feed_owner(&mut m, &n, link);
        let sig: [u8; 32] = m.finalize().into_bytes().into();
        (format!("{n}.{}", URL_SAFE_NO_PAD.encode(sig)), nonce_hash(&n))
    }

    /// Whether `token` is the genuine sign-in token for the stored `link`.
    pub fn verify_owner(&self, token: &str, link: &OwnerLink) -> bool {
        let Some((n, sig)) = token.split_once('.') else { return false };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        let mut m = keyed(&self.owner_key());
        feed_owner(&mut m, n, link);
        m.verify_slice(&sig).is_ok()
    }

    fn owner_key(&self) -> [u8; 32] {
        mac(&self.0, &[b"postern owner sign-in links v1"])
    }

    fn sign(&self, nonce: &str, link: &DigestLink) -> [u8; 32] {
        let mut m = keyed(&self.0);
        feed(&mut m, nonce, link);
        m.finalize().into_bytes().into()
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this never falls back.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()))
}

fn feed(m: &mut Hmac<Sha256>, nonce: &str, l: &DigestLink) {
    let msg = l.message.to_string();
    for part in [nonce, &msg, &l.sha256, &l.action, &l.recipient, &l.expires_at] {
        // Length-prefixed, so no two different tuples hash alike.
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part.as_bytes());
    }
}

fn feed_owner(m: &mut Hmac<Sha256>, nonce: &str, l: &OwnerLink) {
    for part in [nonce, &l.account, &l.recipient, &l.expires_at] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part.as_bytes());
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = keyed(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// What is stored for a nonce.
pub fn nonce_hash(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> DigestLink {
        DigestLink {
            message: 7,
            sha256: "ab".into(),
            action: "release".into(),
            recipient: "alice@example.org".into(),
            expires_at: "2026-11-25T00:00:00.000Z".into(),
            used_at: None,
        }
    }

    #[test]
    fn a_token_verifies_only_for_its_own_link() {
        let k = LinkKey::derive(&[7; 32]);
        let (tok, h) = k.issue(&link());
        let (h2, _) = LinkKey::parse(&tok).unwrap();
        assert_eq!(h, h2);
        assert!(k.verify(&tok, &link()));
        for edit in [
            DigestLink { message: 8, ..link() },
            DigestLink {
                action: "delete".into(),
                ..link()
            },
            DigestLink {
                sha256: "cd".into(),
                ..link()
            },
            DigestLink {
                expires_at: "2027-01-01T00:00:00.000Z".into(),
                ..link()
            },
        ] {
            assert!(!k.verify(&tok, &edit), "{edit:?}");
        }
        assert!(!LinkKey::derive(&[8; 32]).verify(&tok, &link()), "another key");
        let (n, _) = tok.split_once('.').unwrap();
        assert!(!k.verify(&format!("{n}.AAAA"), &link()), "forged MAC");
        assert!(LinkKey::parse("no-dot").is_none());
        assert!(LinkKey::parse("a.b/c").is_none());
    }

    #[test]
    fn an_owner_token_verifies_only_for_its_own_link_and_never_as_a_digest_link() {
        let k = LinkKey::derive(&[7; 32]);
        let owner = OwnerLink {
            account: "alice".into(),
            recipient: "alice@example.org".into(),
            expires_at: "2026-11-25T00:00:00.000Z".into(),
            used_at: None,
        };
        let (tok, h) = k.issue_owner(&owner);
        assert_eq!(LinkKey::parse(&tok).unwrap().0, h);
        assert!(k.verify_owner(&tok, &owner));
        let other = OwnerLink {
            account: "bob".into(),
            ..owner.clone()
        };
        assert!(!k.verify_owner(&tok, &other), "another account");
        assert!(!LinkKey::derive(&[8; 32]).verify_owner(&tok, &owner), "another key");
        // A digest token never opens a session, nor the reverse.
        let (dtok, _) = k.issue(&link());
        assert!(!k.verify_owner(&dtok, &owner));
        assert!(!k.verify(&tok, &link()));
    }
}
