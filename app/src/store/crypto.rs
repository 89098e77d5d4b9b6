//! AES-256-GCM for secrets at rest (IMAP passwords, API keys).
//!
//! Each value gets a fresh random 96-bit nonce, and the row's identity is
//! bound in as associated data so a ciphertext cannot be swapped between rows.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const VERSION: &str = "v1";

/// Encrypts and decrypts stored secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// Decryption failed: wrong key, tampered value, or a value bound to another row.
#[derive(Debug, thiserror::Error)]
#[error("stored secret cannot be decrypted (wrong POSTERN_DB_ENCRYPTION_KEY or tampered data)")]
pub struct DecryptError;

impl SecretBox {
    /// A box for `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
        }
    }

    /// Encrypts `plain` bound to `context` (e.g. `account:alice:pass`).
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let nonce = Nonce::generate();
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        format!("{VERSION}:{}:{}", B64.encode(nonce), B64.encode(ct))
    }

    /// Decrypts a value produced by [`SecretBox::seal`] with the same context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, DecryptError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(VERSION), Some(n), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DecryptError);
        };
        let nonce_bytes = B64.decode(n).map_err(|_| DecryptError)?;
        let nonce = Nonce::try_from(nonce_bytes.as_slice()).map_err(|_| DecryptError)?;
        let ct = B64.decode(c).map_err(|_| DecryptError)?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let b = SecretBox::new(&[7u8; 32]);
        let s = b.seal("hunter2", "account:a:pass");
        assert!(!s.contains("hunter2"));
        assert_eq!(b.open(&s, "account:a:pass").unwrap(), "hunter2");
        assert!(b.open(&s, "account:b:pass").is_err(), "bound to its row");
        assert!(SecretBox::new(&[8u8; 32]).open(&s, "account:a:pass").is_err(), "wrong key");
        assert_ne!(s, b.seal("hunter2", "account:a:pass"), "fresh nonce each time");
        assert!(b.open("garbage", "x").is_err());
    }
}
