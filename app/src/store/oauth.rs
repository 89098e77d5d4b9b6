//! OAuth2 tokens per account, sealed with the store's [`SecretBox`](super::crypto::SecretBox).

use super::{Result, Store};
use rusqlite::{OptionalExtension, params};

/// What is stored for one account.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OAuthTokens {
    /// The flow/client/user/scope the tokens belong to.
    pub fingerprint: String,
    /// Device flow: the long-lived refresh token.
    pub refresh: Option<String>,
    /// The current access token.
    pub access: Option<String>,
    /// When `access` expires (RFC 3339).
    pub expires_at: Option<String>,
    /// Why the refresh token was refused; it is not tried again until a new login.
    pub refused: Option<String>,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("fingerprint", &self.fingerprint)
            .field("refresh", &self.refresh.as_ref().map(|_| ".."))
            .field("access", &self.access.as_ref().map(|_| ".."))
            .field("expires_at", &self.expires_at)
            .field("refused", &self.refused)
            .finish()
    }
}

fn ctx(account: &str, kind: &str) -> String {
    format!("oauth:{account}:{kind}")
}

impl Store {
    /// The account's stored tokens, decrypted.
    pub async fn oauth_tokens(&self, account: &str) -> Result<Option<OAuthTokens>> {
        let a = account.to_string();
        self.call(move |c, cx| {
            let row = c
                .query_row(
                    "SELECT fingerprint, refresh_enc, access_enc, expires_at, refused FROM oauth_tokens WHERE account = ?1",
                    params![a],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((fingerprint, refresh, access, expires_at, refused)) = row else {
                return Ok(None);
            };
            let open = |v: Option<String>, kind: &str| v.map(|s| cx.secrets.open(&s, &ctx(&a, kind))).transpose();
            Ok(Some(OAuthTokens {
                fingerprint,
                refresh: open(refresh, "refresh")?,
                access: open(access, "access")?,
                expires_at,
                refused,
            }))
        })
        .await
    }

    /// Replaces the account's tokens with `t` (sealed).
    pub async fn save_oauth_tokens(&self, account: &str, t: &OAuthTokens) -> Result<()> {
        let (a, t) = (account.to_string(), t.clone());
        self.call(move |c, cx| {
            let seal = |v: &Option<String>, kind: &str| v.as_deref().map(|s| cx.secrets.seal(s, &ctx(&a, kind)));
            c.execute(
                "INSERT INTO oauth_tokens (account, fingerprint, refresh_enc, access_enc, expires_at, refused, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(account) DO UPDATE SET fingerprint=?2, refresh_enc=?3, access_enc=?4, expires_at=?5,
                   refused=?6, updated_at=?7",
                params![
                    a,
                    t.fingerprint,
                    seal(&t.refresh, "refresh"),
                    seal(&t.access, "access"),
                    t.expires_at,
                    t.refused,
                    cx.now
                ],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SharedClock, SystemClock};
    use std::sync::Arc;

    #[tokio::test]
    async fn tokens_are_sealed_and_bound_to_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(SystemClock);
        let store = Store::open(&dir.path().join("p.db"), &[7u8; 32], clock).unwrap();
        assert_eq!(store.oauth_tokens("a").await.unwrap(), None);
        let t = OAuthTokens {
            fingerprint: "f".into(),
            refresh: Some("refresh-secret-1".into()),
            access: Some("access-secret-1".into()),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
            refused: None,
        };
        store.save_oauth_tokens("a", &t).await.unwrap();
        assert_eq!(store.oauth_tokens("a").await.unwrap(), Some(t));
        // Nothing readable at rest, and a row copied to another account does not open.
        let raw: String = store
            .call(|c, _| {
                c.execute("INSERT INTO oauth_tokens SELECT 'b', fingerprint, refresh_enc, access_enc, expires_at, refused, updated_at FROM oauth_tokens", [])?;
                Ok(c.query_row("SELECT refresh_enc || access_enc FROM oauth_tokens WHERE account='a'", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert!(!raw.contains("secret"), "{raw}");
        assert!(store.oauth_tokens("b").await.is_err());
    }
}
