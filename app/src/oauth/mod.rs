//! OAuth2 access tokens for IMAP (issue 15): where they come from, when
//! they are renewed, and what an operator sees when they stop working.
//!
//! [`TokenBroker::access_token`] hands out a cached token until shortly
//! before it expires (the store's injected clock decides), then asks the
//! token endpoint again. Tokens are sealed in SQLite, so a restart does not
//! cost a token request, and the listener and action runner of one account
//! share one token. A refresh token the provider refused (`invalid_grant`:
//! revoked, expired, password changed) is marked refused and not sent
//! again: every later attempt fails at once, without network, until
//! `postern oauth login` stores a new one.

mod device;
mod http;
mod jwt;

pub use device::device_login;
pub use http::DeviceAuthorization;
pub use jwt::{check_rsa_key, client_assertion, service_account_assertion, thumbprint_s256};

use crate::config::{AccountConfig, ClientAuth, OAuthConfig, OAuthFlow};
use crate::intel::net::NetPolicy;
use crate::store::{OAuthTokens, Store, StoreError};
use chrono::{DateTime, Utc};
use http::Answer;
use sha2::{Digest, Sha256};

/// A token is renewed this long before it expires, so a connection never
/// starts with a token about to lapse.
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// Lifetime assumed when the endpoint does not say (RFC 6749 §5.1 makes
/// `expires_in` optional); providers issue one-hour tokens.
const DEFAULT_LIFETIME_SECS: u64 = 3600;

/// OAuth2 failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// A key or certificate is unusable.
    #[error("OAuth2 key: {0}")]
    Key(String),
    /// The token endpoint could not be reached or answered nonsense; retried with backoff.
    #[error("OAuth2 token endpoint: {0}")]
    Http(String),
    /// The token endpoint refused the client's credentials or grant.
    #[error("OAuth2 token endpoint refused the request: {code}: {description}")]
    Refused {
        /// OAuth error code (`invalid_client`, `unauthorized_client`, ...).
        code: String,
        /// The provider's explanation.
        description: String,
    },
    /// No refresh token was ever stored for a device-flow account.
    #[error("no OAuth2 token yet: run `postern oauth login {0}`")]
    NeedsLogin(String),
    /// The provider refused the stored refresh token; it is not retried.
    #[error("the OAuth2 refresh token was refused ({detail}): run `postern oauth login {account}`")]
    Revoked {
        /// Account name.
        account: String,
        /// The provider's error.
        detail: String,
    },
    /// The account has no `oauth2:` block.
    #[error("account {0} does not use OAuth2")]
    NotOAuth(String),
    /// The device login did not complete.
    #[error("device login: {0}")]
    Device(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OAuthError {
    /// Whether retrying cannot help until the operator acts (a new login,
    /// a fixed app registration or key): shown as an account error.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            OAuthError::Key(_)
                | OAuthError::Refused { .. }
                | OAuthError::NeedsLogin(_)
                | OAuthError::Revoked { .. }
                | OAuthError::NotOAuth(_)
        )
    }
}

/// Hands out access tokens; one per process, shared by every connection.
#[derive(Debug)]
pub struct TokenBroker {
    store: Store,
    policy: NetPolicy,
    /// One token request at a time, so an account's listeners and runner
    /// that all wake at once ask the endpoint once and share the answer.
    fetch: tokio::sync::Mutex<()>,
}

/// Which tokens belong to which configuration: a changed client, user,
/// scope or endpoint makes stored tokens stale.
pub fn fingerprint(acct: &AccountConfig, cfg: &OAuthConfig) -> String {
    let mut h = Sha256::new();
    for part in [cfg.flow.name(), cfg.flow.client(), &acct.user, &cfg.scope, &cfg.token_url] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

fn oauth(acct: &AccountConfig) -> Result<&OAuthConfig, OAuthError> {
    acct.oauth2.as_ref().ok_or_else(|| OAuthError::NotOAuth(acct.name.clone()))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl TokenBroker {
    /// A broker storing tokens in `store`; requests follow `policy`.
    pub fn new(store: Store, policy: NetPolicy) -> Self {
        Self {
            store,
            policy,
            fetch: tokio::sync::Mutex::new(()),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.store.clock().now()
    }

    /// A token valid for at least [`REFRESH_MARGIN`]: the stored one, or a
    /// new one from the token endpoint.
    pub async fn access_token(&self, acct: &AccountConfig) -> Result<String, OAuthError> {
        let cfg = oauth(acct)?;
        let _one = self.fetch.lock().await;
        let fp = fingerprint(acct, cfg);
        let stored = self.store.oauth_tokens(&acct.name).await?.filter(|t| t.fingerprint == fp);
        if let Some(t) = &stored
            && let (Some(access), Some(exp)) = (&t.access, &t.expires_at)
            && DateTime::parse_from_rfc3339(exp).is_ok_and(|e| e.with_timezone(&Utc) - REFRESH_MARGIN > self.now())
        {
            return Ok(access.clone());
        }
        let client = http::client(self.policy)?;
        let now = self.now();
        let assertion;
        let refresh;
        let mut form: Vec<(&str, &str)> = Vec::new();
        match &cfg.flow {
            OAuthFlow::ClientCredentials { client_id, auth } => {
                form.extend([
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("scope", cfg.scope.as_str()),
                ]);
                match auth {
                    ClientAuth::Secret(s) => form.push(("client_secret", s)),
                    ClientAuth::Certificate {
                        thumbprint_s256,
                        private_key_pem,
                    } => {
                        assertion = client_assertion(client_id, &cfg.token_url, thumbprint_s256, private_key_pem, now)?;
                        form.extend([
                            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                            ("client_assertion", assertion.as_str()),
                        ]);
                    }
                }
            }
            OAuthFlow::ServiceAccount {
                client_email,
                key_id,
                private_key_pem,
            } => {
                assertion = service_account_assertion(
                    client_email,
                    key_id.as_deref(),
                    private_key_pem,
                    &acct.user,
                    &cfg.scope,
                    &cfg.token_url,
                    now,
                )?;
                form.extend([
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ]);
            }
            OAuthFlow::Device {
                client_id, client_secret, ..
            } => {
                let Some(t) = &stored else {
                    return Err(OAuthError::NeedsLogin(acct.name.clone()));
                };
                if let Some(why) = &t.refused {
                    return Err(OAuthError::Revoked {
                        account: acct.name.clone(),
                        detail: why.clone(),
                    });
                }
                let Some(r) = t.refresh.clone() else {
                    return Err(OAuthError::NeedsLogin(acct.name.clone()));
                };
                refresh = r;
                form.extend([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", client_id.as_str()),
                    ("scope", cfg.scope.as_str()),
                ]);
                if let Some(s) = client_secret {
                    form.push(("client_secret", s));
                }
            }
        }
        match http::token(&client, &cfg.token_url, &form).await? {
            Answer::Token(t) => {
                let lifetime = t.expires_in.unwrap_or(DEFAULT_LIFETIME_SECS).min(i64::MAX as u64 / 1000) as i64;
                let keep_refresh = stored.as_ref().and_then(|s| s.refresh.clone());
                self.store
                    .save_oauth_tokens(
                        &acct.name,
                        &OAuthTokens {
                            fingerprint: fp,
                            refresh: t.refresh_token.or(keep_refresh),
                            access: Some(t.access_token.clone()),
                            expires_at: Some(stamp(now + chrono::Duration::seconds(lifetime))),
                            refused: None,
                        },
                    )
                    .await?;
                tracing::info!(account = %acct.name, flow = cfg.flow.name(), expires_in = lifetime, "OAuth2 access token issued");
                Ok(t.access_token)
            }
            Answer::Error { code, description } => {
                if code == "invalid_grant"
                    && matches!(cfg.flow, OAuthFlow::Device { .. })
                    && let Some(mut t) = stored
                {
                    let detail = format!("{code}: {description}");
                    t.refused = Some(detail.clone());
                    t.access = None;
                    self.store.save_oauth_tokens(&acct.name, &t).await?;
                    return Err(OAuthError::Revoked {
                        account: acct.name.clone(),
                        detail,
                    });
                }
                Err(OAuthError::Refused { code, description })
            }
        }
    }

    /// Drops the stored access token after the IMAP server refused it, so
    /// the next attempt asks for a new one instead of reusing it.
    pub async fn forget_access(&self, acct: &AccountConfig) -> Result<(), OAuthError> {
        let _one = self.fetch.lock().await;
        if let Some(mut t) = self.store.oauth_tokens(&acct.name).await? {
            t.access = None;
            t.expires_at = None;
            self.store.save_oauth_tokens(&acct.name, &t).await?;
        }
        Ok(())
    }

    /// Stores what a device login returned, replacing any refused token.
    async fn store_login(&self, acct: &AccountConfig, access: String, refresh: String, lifetime: u64) -> Result<(), OAuthError> {
        let cfg = oauth(acct)?;
        let _one = self.fetch.lock().await;
        let lifetime = lifetime.min(i64::MAX as u64 / 1000) as i64;
        let t = OAuthTokens {
            fingerprint: fingerprint(acct, cfg),
            refresh: Some(refresh),
            access: Some(access),
            expires_at: Some(stamp(self.now() + chrono::Duration::seconds(lifetime))),
            refused: None,
        };
        Ok(self.store.save_oauth_tokens(&acct.name, &t).await?)
    }

    /// The policy requests follow.
    pub(crate) fn policy(&self) -> NetPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests;
