//! Signed JWTs for the two assertion grants: Microsoft's certificate client
//! assertion (RFC 7523 §2.2) and Google's service-account bearer grant
//! (RFC 7523 §2.1). Pure functions of their inputs and the time, so they
//! are tested without a network.

use super::OAuthError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// Assertions live this long; both providers cap them at one hour.
const LIFETIME_SECS: i64 = 600;

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

fn key(pem: &str) -> Result<EncodingKey, OAuthError> {
    EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| OAuthError::Key(format!("not a usable RSA private key: {e}")))
}

/// Whether `pem` holds an RSA private key jsonwebtoken can sign with.
pub fn check_rsa_key(pem: &str) -> Result<(), OAuthError> {
    key(pem).map(|_| ())
}

/// The base64url SHA-256 thumbprint of the first certificate in `pem`
/// (the `x5t#S256` header Microsoft matches against the app's certificates).
pub fn thumbprint_s256(pem: &str) -> Result<String, OAuthError> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| OAuthError::Key(format!("not a PEM certificate: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref())))
}

/// Microsoft's client assertion: `iss` = `sub` = client id, `aud` = the
/// token endpoint, a fresh `jti`, signed PS256 with the certificate's key.
pub fn client_assertion(
    client_id: &str,
    token_url: &str,
    thumbprint_s256: &str,
    key_pem: &str,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let mut header = Header::new(Algorithm::PS256);
    header.x5t_s256 = Some(thumbprint_s256.to_string());
    let mut nonce = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let iat = now.timestamp();
    let claims = Claims {
        iss: client_id,
        sub: Some(client_id),
        aud: token_url,
        scope: None,
        iat,
        nbf: Some(iat),
        exp: iat + LIFETIME_SECS,
        jti: Some(hex::encode(nonce)),
    };
    sign(&header, &claims, key_pem)
}

/// Google's service-account assertion: `iss` = the service account,
/// `sub` = the mailbox to act for (domain-wide delegation), `aud` = the
/// token endpoint, the scope as a claim; RS256.
pub fn service_account_assertion(
    client_email: &str,
    key_id: Option<&str>,
    key_pem: &str,
    user: &str,
    scope: &str,
    token_url: &str,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key_id.map(str::to_string);
    let iat = now.timestamp();
    let claims = Claims {
        iss: client_email,
        sub: Some(user),
        aud: token_url,
        scope: Some(scope),
        iat,
        nbf: None,
        exp: iat + LIFETIME_SECS,
        jti: None,
    };
    sign(&header, &claims, key_pem)
}

fn sign(header: &Header, claims: &Claims<'_>, key_pem: &str) -> Result<String, OAuthError> {
    jsonwebtoken::encode(header, claims, &key(key_pem)?).map_err(|e| OAuthError::Key(format!("signing the assertion: {e}")))
}
