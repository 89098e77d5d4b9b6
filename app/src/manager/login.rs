//! Logging an account in: with its password, or with an OAuth2 access
//! token from the engine's broker. Joins `imap` and `oauth`, which know
//! nothing of each other.

use crate::config::AccountConfig;
use crate::imap::{Conn, ImapError, Login};
use crate::oauth::OAuthError;
use crate::worker::Deps;

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

/// Logins in progress at once, over every account of the process. A
/// thousand accounts starting together would otherwise open a thousand
/// connections and TLS handshakes at the same moment and stampede the
/// server (issue 21); sessions already logged in are not counted.
pub(crate) const MAX_CONCURRENT_LOGINS: usize = 16;

static LOGINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_LOGINS);

/// Connects and logs in as the account says, at most
/// [`MAX_CONCURRENT_LOGINS`] at a time.
pub(crate) async fn connect(deps: &Deps, acct: &AccountConfig) -> Result<Conn, LoginError> {
    // The semaphore is never closed; were it, logging in unbounded beats
    // not logging in.
    let _slot = LOGINS.acquire().await.ok();
    login(deps, acct).await
}

async fn login(deps: &Deps, acct: &AccountConfig) -> Result<Conn, LoginError> {
    let t = &deps.tuning;
    if acct.oauth2.is_none() {
        return Ok(Conn::connect_limited(acct, t.command_timeout, t.max_message_bytes.into()).await?);
    }
    let token = deps.oauth.access_token(acct).await?;
    match Conn::connect_with(acct, Login::Bearer(&token), t.command_timeout, t.max_message_bytes.into()).await {
        Ok(c) => Ok(c),
        Err(ImapError::Auth { user, detail }) => {
            // The token may have been revoked before it expired: the next
            // attempt asks for a new one instead of replaying it.
            deps.oauth.forget_access(acct).await?;
            Err(LoginError::TokenRefused { user, detail })
        }
        Err(e) => Err(e.into()),
    }
}
