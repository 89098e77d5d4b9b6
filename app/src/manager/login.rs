//! Logging an account in: with its password, or with an OAuth2 access
//! token from the engine's broker. Joins `imap` and `oauth`, which know
//! nothing of each other.

use crate::config::AccountConfig;
use crate::imap::{Conn, ImapError, Login};
use crate::oauth::OAuthError;
use crate::worker::Engine;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The server refused a fresh OAuth2 token: the grant, consent or
    /// mailbox permission is wrong, which no retry fixes.
    #[error("the server refused the OAuth2 token for {user}: {detail}; check the app's IMAP permission and admin consent")]
    TokenRefused { user: String, detail: String },
}

impl LoginError {
    /// Whether the operator must act (shown as an account error); the
    /// caller still retries, with its growing backoff, so a fix is picked up.
    pub(crate) fn needs_operator(&self) -> bool {
        match self {
            LoginError::OAuth(e) => e.needs_operator(),
            LoginError::TokenRefused { .. } => true,
            LoginError::Imap(_) => false,
        }
    }
}

/// Connects and logs in as the account says.
pub(crate) async fn connect(engine: &Engine, acct: &AccountConfig) -> Result<Conn, LoginError> {
    let t = &engine.tuning;
    if acct.oauth2.is_none() {
        return Ok(Conn::connect_limited(acct, t.command_timeout, t.max_message_bytes.into()).await?);
    }
    let token = engine.oauth.access_token(acct).await?;
    match Conn::connect_with(acct, Login::Bearer(&token), t.command_timeout, t.max_message_bytes.into()).await {
        Ok(c) => Ok(c),
        Err(ImapError::Auth { user, detail }) => {
            // The token may have been revoked before it expired: the next
            // attempt asks for a new one instead of replaying it.
            engine.oauth.forget_access(acct).await?;
            Err(LoginError::TokenRefused { user, detail })
        }
        Err(e) => Err(e.into()),
    }
}
