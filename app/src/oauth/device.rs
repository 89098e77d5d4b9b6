//! `postern oauth login ACCOUNT`: the device authorization grant
//! (RFC 8628). The user opens the verification URL on any device, types
//! the code, and Postern polls the token endpoint until the login is
//! approved, denied or expired, then seals the refresh token in the store.

use super::http::{self, Answer, DeviceAuthorization};
use super::{OAuthError, TokenBroker, oauth};
use crate::config::{AccountConfig, OAuthFlow};
use std::time::Duration;

/// RFC 8628 §3.2: poll every 5 s unless the server says otherwise.
const DEFAULT_INTERVAL_SECS: u64 = 5;
/// §3.5: `slow_down` adds 5 s to the interval.
const SLOW_DOWN_SECS: u64 = 5;

/// Runs the device flow for `acct`; `show` is called once with the URL and
/// code to present. Polls at most until the code expires.
pub async fn device_login(
    broker: &TokenBroker,
    acct: &AccountConfig,
    mut show: impl FnMut(&DeviceAuthorization),
) -> Result<(), OAuthError> {
    let cfg = oauth(acct)?;
    let OAuthFlow::Device {
        client_id,
        client_secret,
        device_url,
    } = &cfg.flow
    else {
        return Err(OAuthError::Device(format!(
            "account {} uses flow {}, which needs no login",
            acct.name,
            cfg.flow.name()
        )));
    };
    let client = http::client(broker.policy())?;
    let auth = http::device_authorization(&client, device_url, &[("client_id", client_id), ("scope", &cfg.scope)]).await?;
    show(&auth);
    // A server asking for no pause still gets one second: never a tight loop.
    let mut interval = auth.interval.unwrap_or(DEFAULT_INTERVAL_SECS).max(1);
    let mut waited = 0u64;
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", auth.device_code.as_str()),
        ("client_id", client_id.as_str()),
    ];
    if let Some(s) = client_secret {
        form.push(("client_secret", s));
    }
    while waited <= auth.expires_in {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        waited += interval;
        match http::token(&client, &cfg.token_url, &form).await? {
            Answer::Token(t) => {
                let Some(refresh) = t.refresh_token else {
                    return Err(OAuthError::Device(
                        "the provider issued no refresh token: add the offline_access scope".into(),
                    ));
                };
                let lifetime = t.expires_in.unwrap_or(super::DEFAULT_LIFETIME_SECS);
                return broker.store_login(acct, t.access_token, refresh, lifetime).await;
            }
            Answer::Error { code, .. } if code == "authorization_pending" => {}
            Answer::Error { code, .. } if code == "slow_down" => interval += SLOW_DOWN_SECS,
            Answer::Error { code, description } => {
                let why = match code.as_str() {
                    "access_denied" => "the login was declined".to_string(),
                    "expired_token" => "the code expired before the login was approved".to_string(),
                    _ => format!("{code}: {description}"),
                };
                return Err(OAuthError::Device(why));
            }
        }
    }
    Err(OAuthError::Device("the code expired before the login was approved".into()))
}
