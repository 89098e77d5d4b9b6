//! The `oauth2:` block of an account: where its IMAP access tokens come from.
//!
//! Three flows, one per kind of tenant:
//! * `client_credentials`: Microsoft 365 app-only access (tenant, client id,
//!   and a client secret or a certificate signing a JWT client assertion);
//! * `service_account`: Google Workspace domain-wide delegation (a JWT
//!   bearer grant signed with the service account's key, `sub` = mailbox);
//! * `device`: a per-user refresh token obtained once with
//!   `postern oauth login ACCOUNT` (RFC 8628 device authorization).
//!
//! Secrets (client secret, private keys) are read from files here, exactly
//! like `pass_file`, and sealed in the database with the account.

use super::problem::Problem;
use super::secret::looks_like_placeholder;
use serde_norway::{Mapping, Value};
use std::path::Path;

/// Which SASL mechanism carries the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaslMechanism {
    /// OAUTHBEARER (RFC 7628) when advertised, else XOAUTH2.
    #[default]
    Auto,
    /// Google's and Microsoft's XOAUTH2.
    Xoauth2,
    /// RFC 7628 OAUTHBEARER.
    Oauthbearer,
}

/// How the client proves itself in the client-credentials flow.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A shared client secret.
    Secret(String),
    /// A certificate registered with the app: the token request carries a
    /// JWT signed with its key (PS256, `x5t#S256` = the certificate's
    /// SHA-256 thumbprint).
    Certificate {
        /// SHA-256 of the certificate's DER, base64url.
        thumbprint_s256: String,
        /// PEM private key (PKCS#8 or PKCS#1 RSA).
        private_key_pem: String,
    },
}

/// Where tokens come from.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "flow")]
pub enum OAuthFlow {
    /// App-only client credentials (Microsoft 365).
    ClientCredentials {
        /// Application (client) id.
        client_id: String,
        /// Secret or certificate.
        auth: ClientAuth,
    },
    /// Service account with domain-wide delegation (Google Workspace).
    ServiceAccount {
        /// The service account's `client_email` (JWT `iss`).
        client_email: String,
        /// Its `private_key_id` (JWT `kid`), if given.
        key_id: Option<String>,
        /// Its PEM private key.
        private_key_pem: String,
    },
    /// A refresh token obtained with `postern oauth login` (device flow).
    Device {
        /// Public client id.
        client_id: String,
        /// Optional client secret (Google's "TVs and limited input" clients have one).
        client_secret: Option<String>,
        /// The device authorization endpoint.
        device_url: String,
    },
}

impl OAuthFlow {
    /// The flow's name as written in config.yaml.
    pub fn name(&self) -> &'static str {
        match self {
            OAuthFlow::ClientCredentials { .. } => "client_credentials",
            OAuthFlow::ServiceAccount { .. } => "service_account",
            OAuthFlow::Device { .. } => "device",
        }
    }

    /// The id this flow authenticates as (for telling cached tokens apart).
    pub fn client(&self) -> &str {
        match self {
            OAuthFlow::ClientCredentials { client_id, .. } | OAuthFlow::Device { client_id, .. } => client_id,
            OAuthFlow::ServiceAccount { client_email, .. } => client_email,
        }
    }
}

/// An account's OAuth2 settings.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OAuthConfig {
    /// The flow and its credentials.
    pub flow: OAuthFlow,
    /// The token endpoint.
    pub token_url: String,
    /// Space-separated scopes requested.
    pub scope: String,
    /// SASL mechanism.
    pub mechanism: SaslMechanism,
}

// Secrets stay out of logs and Debug output.
impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("flow", &self.flow.name())
            .field("client", &self.flow.client())
            .field("token_url", &self.token_url)
            .field("scope", &self.scope)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// Microsoft's IMAP scope for app-only access.
pub const M365_APP_SCOPE: &str = "https://outlook.office365.com/.default";
/// Microsoft's delegated IMAP scope, plus a refresh token.
pub const M365_USER_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access";
/// Google's full-mail scope (the only one that allows IMAP).
pub const GOOGLE_SCOPE: &str = "https://mail.google.com/";
/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

const KEYS: &[&str] = &[
    "flow",
    "provider",
    "tenant",
    "client_id",
    "client_secret",
    "client_secret_file",
    "certificate_file",
    "private_key_file",
    "service_account_file",
    "token_url",
    "device_url",
    "scope",
    "mechanism",
];

struct P<'a> {
    m: &'a Mapping,
    path: String,
    base: &'a Path,
    problems: &'a mut Vec<Problem>,
}

impl P<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem::new(format!("{}.{key}", self.path), message, hint));
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.m.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(_) => {
                self.problem(key, "must be a non-empty string", "quote the value");
                None
            }
        }
    }

    fn need(&mut self, key: &str, flow: &str, hint: &str) -> Option<String> {
        let v = self.text(key);
        if v.is_none() && !self.m.contains_key(key) {
            self.problem(key, format!("is required for flow {flow}"), hint);
        }
        v
    }

    /// Reads a file named by `key`, relative to the config's folder.
    fn file(&mut self, key: &str) -> Option<String> {
        let f = self.base.join(self.text(key)?);
        match std::fs::read_to_string(&f) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(
                    key,
                    format!("cannot read {}: {e}", f.display()),
                    "create the file, readable by postern only",
                );
                None
            }
        }
    }

    /// `client_secret` or `client_secret_file`, not both.
    fn secret(&mut self) -> Option<String> {
        let inline = self.text("client_secret");
        let file = self
            .file("client_secret_file")
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string());
        let s = match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    "client_secret",
                    "both client_secret and client_secret_file are set",
                    "keep only one",
                );
                return None;
            }
            (s, None) | (None, s) => s?,
        };
        if looks_like_placeholder(&s) {
            self.problem(
                "client_secret",
                "looks like a placeholder",
                "paste the secret's value from the app registration",
            );
            return None;
        }
        Some(s)
    }
}

/// Parses the `oauth2:` block of account `path` (e.g. `accounts[0]`).
pub(super) fn parse_oauth(v: &Value, path: &str, base: &Path, problems: &mut Vec<Problem>) -> Option<OAuthConfig> {
    let path = format!("{path}.oauth2");
    let Some(m) = v.as_mapping() else {
        problems.push(Problem::new(
            path,
            "must be a mapping",
            "e.g. `oauth2: {flow: device, provider: microsoft, ...}`",
        ));
        return None;
    };
    let before = problems.len();
    let mut p = P { m, path, base, problems };
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !KEYS.contains(&k) {
            p.problem(k, "unknown key", super::suggest::unknown_key_hint(k, KEYS));
        }
    }
    let provider = p.text("provider").unwrap_or_else(|| "custom".into());
    if !["microsoft", "google", "custom"].contains(&provider.as_str()) {
        p.problem(
            "provider",
            format!("unknown provider {provider:?}"),
            "one of microsoft, google, custom",
        );
    }
    let tenant = p.text("tenant");
    if provider == "microsoft" && tenant.is_none() && !p.m.contains_key("token_url") {
        p.problem(
            "tenant",
            "is required for provider microsoft",
            "the directory (tenant) id or domain, e.g. contoso.onmicrosoft.com",
        );
    }
    let ms = |end: &str| {
        tenant
            .as_deref()
            .map(|t| format!("https://login.microsoftonline.com/{t}/oauth2/v2.0/{end}"))
    };
    let flow_name = p.text("flow");
    let flow = match flow_name.as_deref() {
        Some("client_credentials") => {
            let client_id = p.need("client_id", "client_credentials", "the app registration's Application (client) id");
            let cert = p.text("certificate_file").is_some();
            let auth = if cert {
                if p.m.contains_key("client_secret") || p.m.contains_key("client_secret_file") {
                    p.problem(
                        "certificate_file",
                        "both a certificate and a client secret are set",
                        "keep only one",
                    );
                }
                let cert_pem = p.file("certificate_file");
                let key = p.need(
                    "private_key_file",
                    "client_credentials with a certificate",
                    "the certificate's PEM private key",
                );
                let key = key.and_then(|_| p.file("private_key_file"));
                let thumb = cert_pem.and_then(|c| match crate::oauth::thumbprint_s256(&c) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        p.problem(
                            "certificate_file",
                            e.to_string(),
                            "a PEM certificate as uploaded to the app registration",
                        );
                        None
                    }
                });
                let key = key.filter(|k| match crate::oauth::check_rsa_key(k) {
                    Ok(()) => true,
                    Err(e) => {
                        p.problem("private_key_file", e.to_string(), "a PEM RSA private key (PKCS#8 or PKCS#1)");
                        false
                    }
                });
                thumb.zip(key).map(|(thumbprint_s256, private_key_pem)| ClientAuth::Certificate {
                    thumbprint_s256,
                    private_key_pem,
                })
            } else {
                let s = p.secret();
                if s.is_none() && !p.m.contains_key("client_secret") && !p.m.contains_key("client_secret_file") {
                    p.problem(
                        "client_secret_file",
                        "client_credentials needs a client secret or a certificate",
                        "set client_secret_file, or certificate_file and private_key_file",
                    );
                }
                s.map(ClientAuth::Secret)
            };
            client_id
                .zip(auth)
                .map(|(client_id, auth)| OAuthFlow::ClientCredentials { client_id, auth })
        }
        Some("service_account") => {
            let key = p.need(
                "service_account_file",
                "service_account",
                "the JSON key downloaded for the service account",
            );
            key.and_then(|_| p.file("service_account_file"))
                .and_then(|json| match service_account(&json) {
                    Ok(f) => Some(f),
                    Err(why) => {
                        p.problem("service_account_file", why, "download a new JSON key for the service account");
                        None
                    }
                })
        }
        Some("device") => {
            let client_id = p.need("client_id", "device", "the public client's id");
            let client_secret = p.secret();
            let device_url = p.text("device_url").or_else(|| ms("devicecode"));
            if device_url.is_none() {
                p.problem("device_url", "is required for flow device", "the device authorization endpoint");
            }
            if provider == "google" {
                p.problem(
                    "flow",
                    "Google does not allow the Gmail scope in the device flow",
                    "use flow: service_account (Workspace) or an app password",
                );
            }
            client_id.zip(device_url).map(|(client_id, device_url)| OAuthFlow::Device {
                client_id,
                client_secret,
                device_url,
            })
        }
        Some(other) => {
            p.problem(
                "flow",
                format!("unknown flow {other:?}"),
                "one of client_credentials, service_account, device",
            );
            None
        }
        None => {
            if !p.m.contains_key("flow") {
                p.problem("flow", "is required", "one of client_credentials, service_account, device");
            }
            None
        }
    };
    let token_url = p.text("token_url").or_else(|| match provider.as_str() {
        "microsoft" => ms("token"),
        "google" => Some(GOOGLE_TOKEN_URL.into()),
        _ => None,
    });
    match &token_url {
        None if provider == "microsoft" => {}
        None => p.problem("token_url", "is required for provider custom", "the token endpoint URL"),
        Some(u) if !u.starts_with("https://") && !u.starts_with("http://") => p.problem(
            "token_url",
            format!("{u:?} is not an http(s) URL"),
            "e.g. https://login.example.org/token",
        ),
        Some(_) => {}
    }
    let default_scope = match (provider.as_str(), flow_name.as_deref()) {
        ("microsoft", Some("device")) => Some(M365_USER_SCOPE),
        ("microsoft", _) => Some(M365_APP_SCOPE),
        ("google", _) => Some(GOOGLE_SCOPE),
        _ => None,
    };
    let scope = p.text("scope").or(default_scope.map(str::to_string));
    if scope.is_none() {
        p.problem("scope", "is required for provider custom", "the scope(s) that grant IMAP access");
    }
    if provider == "google" && flow_name.as_deref() == Some("client_credentials") {
        p.problem(
            "flow",
            "Google has no client-credentials grant for Gmail",
            "use flow: service_account",
        );
    }
    let mechanism: SaslMechanism = match p.m.get("mechanism") {
        None | Some(Value::Null) => SaslMechanism::Auto,
        Some(v) => serde_norway::from_value(v.clone()).unwrap_or_else(|_| {
            p.problem("mechanism", "unknown mechanism", "one of auto, xoauth2, oauthbearer");
            SaslMechanism::Auto
        }),
    };
    if p.problems.len() > before {
        return None;
    }
    Some(OAuthConfig {
        flow: flow?,
        token_url: token_url?,
        scope: scope?,
        mechanism,
    })
}

/// The fields Postern needs from a Google service-account JSON key.
fn service_account(json: &str) -> Result<OAuthFlow, String> {
    #[derive(serde::Deserialize)]
    struct Key {
        #[serde(rename = "type")]
        kind: Option<String>,
        client_email: String,
        private_key: String,
        private_key_id: Option<String>,
    }
    let k: Key = serde_json::from_str(json).map_err(|e| format!("is not a service-account JSON key: {e}"))?;
    if k.kind.as_deref().is_some_and(|t| t != "service_account") {
        return Err(format!("is a {:?} key, not a service_account key", k.kind.unwrap_or_default()));
    }
    crate::oauth::check_rsa_key(&k.private_key).map_err(|e| e.to_string())?;
    Ok(OAuthFlow::ServiceAccount {
        client_email: k.client_email,
        key_id: k.private_key_id,
        private_key_pem: k.private_key,
    })
}
