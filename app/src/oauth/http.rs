//! The token endpoint conversations (RFC 6749 §4.4 and §6, RFC 7523,
//! RFC 8628). Network code only: what to ask for is decided in `mod.rs`.
//!
//! Every request goes through the SSRF-safe client, like every other
//! operator-configured URL: the endpoints are public identity providers,
//! and a loopback mock is reachable only with the test-only switch.

use super::OAuthError;
use crate::intel::net::SafeClient;
use std::time::Duration;

/// A successful token response.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TokenResponse {
    /// The bearer token for IMAP.
    pub access_token: String,
    /// Seconds until it expires (RFC 6749 §5.1: recommended, not required).
    pub expires_in: Option<u64>,
    /// A new refresh token, when the server rotates them.
    pub refresh_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DeviceAuthorization {
    /// Polled at the token endpoint.
    pub device_code: String,
    /// Typed by the user.
    pub user_code: String,
    /// Where the user types it (Google calls it `verification_url`).
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    /// The URI with the code filled in, when offered.
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes stay valid.
    pub expires_in: u64,
    /// Seconds between polls (default 5).
    pub interval: Option<u64>,
}

/// Responses larger than this are not a token (a misconfigured URL
/// pointing at a web page): refuse rather than buffer it.
const MAX_BODY: usize = 64 * 1024;

/// POSTs `form` to `url` and returns the status and the JSON body.
async fn post(client: &SafeClient, url: &str, form: &[(&str, &str)]) -> Result<(u16, serde_json::Value), OAuthError> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let req = client
        .request(reqwest::Method::POST, url)
        .map_err(|e| OAuthError::Http(e.to_string()))?
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    let resp = client.send(req).await.map_err(|e| OAuthError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(OAuthError::Http(format!("{url} answered with an oversized body")));
    }
    let bytes = resp.bytes().await.map_err(|e| OAuthError::Http(format!("{url}: {e}")))?;
    if bytes.len() > MAX_BODY {
        return Err(OAuthError::Http(format!("{url} answered with an oversized body")));
    }
    let json = serde_json::from_slice(&bytes).map_err(|_| OAuthError::Http(format!("{url} answered HTTP {status} without JSON")))?;
    Ok((status, json))
}

/// The token endpoint's answer: a token, or the OAuth error code.
pub(super) enum Answer {
    Token(TokenResponse),
    Error { code: String, description: String },
}

/// Asks the token endpoint for a token with `form` (grant and credentials).
pub(super) async fn token(client: &SafeClient, url: &str, form: &[(&str, &str)]) -> Result<Answer, OAuthError> {
    let (status, json) = post(client, url, form).await?;
    if (200..300).contains(&status) {
        let t: TokenResponse =
            serde_json::from_value(json).map_err(|e| OAuthError::Http(format!("{url}: unusable token response: {e}")))?;
        return Ok(Answer::Token(t));
    }
    match serde_json::from_value::<ErrorResponse>(json) {
        Ok(e) => Ok(Answer::Error {
            code: e.error,
            description: e.error_description.unwrap_or_default(),
        }),
        Err(_) => Err(OAuthError::Http(format!("{url} answered HTTP {status}"))),
    }
}

/// Starts a device authorization (RFC 8628 §3.1).
pub(super) async fn device_authorization(client: &SafeClient, url: &str, form: &[(&str, &str)]) -> Result<DeviceAuthorization, OAuthError> {
    let (status, json) = post(client, url, form).await?;
    if !(200..300).contains(&status) {
        let why = serde_json::from_value::<ErrorResponse>(json)
            .map(|e| format!("{}: {}", e.error, e.error_description.unwrap_or_default()))
            .unwrap_or_else(|_| format!("HTTP {status}"));
        return Err(OAuthError::Device(format!("{url} refused the device authorization: {why}")));
    }
    serde_json::from_value(json).map_err(|e| OAuthError::Device(format!("{url}: unusable device authorization: {e}")))
}

/// The client used for token requests.
pub(super) fn client(policy: crate::intel::net::NetPolicy) -> Result<SafeClient, OAuthError> {
    SafeClient::new(policy, Duration::from_secs(20)).map_err(|e| OAuthError::Http(e.to_string()))
}
