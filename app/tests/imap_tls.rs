//! Issue 15, "TLS as deployed" and defect 7: implicit TLS and STARTTLS
//! against the test Dovecot's listeners, whose certificate is the usual
//! self-signed one from `openssl req -x509` (CA:TRUE). It is trusted by
//! file (`ca_file`) or by SHA-256 pin (`tls_fingerprint`), or not at all
//! (`tls_skip_verify`); a wrong certificate is refused in plain words.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, tuning};
use crate::common::stack::{Dovecot, shared};
use crate::common::{eventually, mail, unique};
use postern::config::{AccountConfig, TlsMode};
use postern::imap::{Conn, ImapError, fingerprint_of};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn pin_of(pem: &Path) -> String {
    let der = CertificateDer::from_pem_file(pem).unwrap();
    fingerprint_of(der.as_ref())
}

/// An account on the shared Dovecot over TLS (`localhost` is in its SAN).
fn tls_account(d: &Dovecot, mode: TlsMode, user: &str, pass: &str) -> AccountConfig {
    let port = if mode == TlsMode::Implicit { d.imaps_port } else { d.imap_port };
    let mut a = account("t", port, user, pass, &["INBOX"]);
    a.host = "localhost".into();
    a.tls = mode;
    a
}

/// Another self-signed certificate, made the same way, that the server
/// does not have.
fn other_cert(dir: &Path) -> PathBuf {
    let (cert, key) = (dir.join("other.pem"), dir.join("other.key"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    cert
}

async fn connects(a: &AccountConfig) -> Result<(), String> {
    match Conn::connect(a, T).await {
        Ok(c) => {
            c.logout().await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_self_signed_server_certificate_in_ca_file_is_trusted_over_implicit_tls_and_starttls() {
    let d = shared();
    let (user, pass) = d.new_user("tlsca");
    for mode in [TlsMode::Implicit, TlsMode::Starttls] {
        let mut a = tls_account(d, mode, &user, &pass);
        a.ca_file = Some(d.ca_cert.clone());
        connects(&a).await.unwrap_or_else(|e| panic!("{mode:?} with ca_file: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_pinned_fingerprint_is_trusted_over_implicit_tls_and_starttls() {
    let d = shared();
    let (user, pass) = d.new_user("tlspin");
    let pin = pin_of(&d.ca_cert);
    for mode in [TlsMode::Implicit, TlsMode::Starttls] {
        let mut a = tls_account(d, mode, &user, &pass);
        a.tls_fingerprint = Some(pin.clone());
        connects(&a).await.unwrap_or_else(|e| panic!("{mode:?} pinned: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_skip_verify_connects_over_implicit_tls_and_starttls() {
    let d = shared();
    let (user, pass) = d.new_user("tlsskip");
    for mode in [TlsMode::Implicit, TlsMode::Starttls] {
        let mut a = tls_account(d, mode, &user, &pass);
        a.tls_skip_verify = true;
        connects(&a).await.unwrap_or_else(|e| panic!("{mode:?} skip verify: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_a_wrong_certificate_is_refused_in_plain_words() {
    let d = shared();
    let (user, pass) = d.new_user("tlsbad");
    let dir = tempfile::tempdir().unwrap();
    let other = other_cert(dir.path());
    let pin = pin_of(&d.ca_cert);
    for mode in [TlsMode::Implicit, TlsMode::Starttls] {
        // Nothing trusts it: the error names the fingerprint to pin.
        let a = tls_account(d, mode, &user, &pass);
        let untrusted = connects(&a).await.unwrap_err();
        assert!(
            untrusted.contains("not trusted") && untrusted.contains(&pin) && untrusted.contains("CA certificate used as the server's own"),
            "{mode:?}: {untrusted}"
        );
        // Another self-signed certificate in ca_file.
        let mut a = tls_account(d, mode, &user, &pass);
        a.ca_file = Some(other.clone());
        let other_ca = connects(&a).await.unwrap_err();
        assert!(
            other_ca.contains("not trusted") && other_ca.contains("not one of the certificates in ca_file") && other_ca.contains(&pin),
            "{mode:?}: {other_ca}"
        );
        // The wrong pin.
        let mut a = tls_account(d, mode, &user, &pass);
        a.tls_fingerprint = Some(pin_of(&other));
        let wrong_pin = connects(&a).await.unwrap_err();
        assert!(
            wrong_pin.contains("does not match the pinned tls_fingerprint") && wrong_pin.contains(&pin),
            "{mode:?}: {wrong_pin}"
        );
        for e in [&untrusted, &other_ca, &wrong_pin] {
            for raw in ["CaUsedAsEndEntity", "UnknownIssuer", "invalid peer certificate"] {
                assert!(!e.contains(raw), "{mode:?}: {e}");
            }
        }
    }
    let a = tls_account(d, TlsMode::Implicit, &user, &pass);
    assert!(matches!(Conn::connect(&a, T).await, Err(ImapError::Tls(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_the_engine_quarantines_over_pinned_implicit_tls() {
    let d = shared();
    let (user, pass) = d.new_user("tlseng");
    let mut a = tls_account(d, TlsMode::Implicit, &user, &pass);
    a.name = "a".into();
    a.ca_file = Some(d.ca_cert.clone());
    let p = Postern::start(vec![a], tuning(), None).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "invoice", &unique("tls"))).await;
    p.wait_done("a", 1).await;
    eventually(Duration::from_secs(30), "evil mail in Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    p.manager.shutdown().await;
}
