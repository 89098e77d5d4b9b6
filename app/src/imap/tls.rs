//! rustls client configuration: system roots plus an optional CA file, a
//! pinned certificate (the server's own in `ca_file`, or its SHA-256
//! fingerprint), or (only when the operator asks for it) no certificate
//! verification.

use super::{ImapError, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// How one account's server certificate is trusted.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Trust<'a> {
    /// Extra PEM certificates: CAs, or the server's own self-signed one.
    pub(super) ca_file: Option<&'a Path>,
    /// `tls_fingerprint`: SHA-256 of the server certificate, 64 hex digits.
    pub(super) fingerprint: Option<&'a str>,
    /// `tls_skip_verify`.
    pub(super) skip_verify: bool,
}

/// Builds the client config for one account.
pub(super) fn client_config(trust: Trust<'_>) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls(e.to_string()))?;
    if trust.skip_verify {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    let mut pinned = Vec::new();
    if let Some(path) = trust.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ImapError::Tls(format!("{}: {e}", path.display())))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| ImapError::Tls(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ImapError::Tls(format!("{} holds no PEM certificate", path.display())));
        }
        for c in certs {
            roots
                .add(c.clone())
                .map_err(|e| ImapError::Tls(format!("{}: {e}", path.display())))?;
            pinned.push(c);
        }
    }
    let fingerprint = match trust.fingerprint {
        Some(f) => Some(parse_fingerprint(f).ok_or_else(|| ImapError::Tls(format!("tls_fingerprint {f:?} is not a SHA-256 fingerprint")))?),
        None => None,
    };
    // Without any root (no system store, no ca_file) only a pin can verify.
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .ok();
    if webpki.is_none() && fingerprint.is_none() {
        return Err(ImapError::Tls(
            "no trusted certificates: the system store is empty and no ca_file or tls_fingerprint is set".into(),
        ));
    }
    let verifier = Pinning {
        webpki,
        pinned,
        fingerprint,
        provider: provider(),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `sha256:AB:CD…`, `AB:CD…` or plain hex (as `openssl x509 -fingerprint
/// -sha256` prints it) to 32 bytes.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let t = s.trim();
    let t = t
        .split_once(':')
        .filter(|(algo, _)| algo.eq_ignore_ascii_case("sha256") || algo.eq_ignore_ascii_case("sha-256"))
        .map_or(t, |(_, rest)| rest);
    let hex_digits: String = t.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_digits).ok()?;
    bytes.try_into().ok()
}

/// The SHA-256 fingerprint of a certificate, as `tls_fingerprint` takes it.
pub fn fingerprint_of(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// The usual chain check, plus two ways to pin a certificate the chain
/// check cannot accept:
/// - the server's own certificate is in `ca_file` (a self-signed one made
///   with `openssl req -x509` is CA:TRUE, which webpki refuses as an end
///   entity with `CaUsedAsEndEntity`): the exact bytes are trusted;
/// - `tls_fingerprint`: the certificate's SHA-256 must match, and then
///   nothing else about it is checked (that is what pinning means).
///
/// Every refusal says in plain words what was wrong and how to fix it.
#[derive(Debug)]
struct Pinning {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    fingerprint: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

/// A refusal in plain language, carried through rustls.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse(msg: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(Refusal(msg)))))
}

/// What a chain failure means for an operator.
fn explain(e: &rustls::Error, name: &ServerName<'_>) -> String {
    let name = name.to_str();
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            // webpki's CaUsedAsEndEntity reaches rustls only as `Other`.
            CertificateError::Other(o) if o.0.to_string().contains("CaUsedAsEndEntity") => {
                "it is a CA certificate used as the server's own (typical of a self-signed one made with `openssl req -x509`)".into()
            }
            CertificateError::UnknownIssuer => {
                "it is not signed by a trusted CA (self-signed, or its CA is not in the system store or ca_file)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("it is not issued for {name}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "it is not valid yet".into(),
            CertificateError::Revoked => "it has been revoked".into(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

impl ServerCertVerifier for Pinning {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint_of(end_entity.as_ref());
        if let Some(want) = &self.fingerprint {
            if Sha256::digest(end_entity.as_ref()).as_slice() == want.as_slice() {
                return Ok(ServerCertVerified::assertion());
            }
            return Err(refuse(format!(
                "the server's certificate does not match the pinned tls_fingerprint sha256:{} (it presented {seen}); \
                 if the server's certificate was replaced on purpose, update tls_fingerprint",
                hex::encode(want)
            )));
        }
        if self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(webpki) = &self.webpki else {
            return Err(refuse(format!("no trusted certificate matches the server's ({seen})")));
        };
        webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map_err(|e| {
                let in_file = if self.pinned.is_empty() {
                    ""
                } else {
                    " (it is not one of the certificates in ca_file, and none of them signed it)"
                };
                refuse(format!(
                    "the server's certificate is not trusted: {}{in_file}. Its fingerprint is {seen}; if this is your \
                     server's own certificate, put it in ca_file or set tls_fingerprint: {seen}",
                    explain(&e, server_name)
                ))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The plain-language reason inside a failed handshake's error.
pub(super) fn handshake_error(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(o))) => o.0.to_string(),
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}

/// Server name for SNI and verification.
pub(super) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_string()).map_err(|e| ImapError::Tls(format!("server name {host:?}: {e}")))
}

/// `tls_skip_verify: true`: the chain is not checked, but handshake
/// signatures still are, so the session is at least bound to the presented key.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
