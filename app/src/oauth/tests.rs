use super::*;
use crate::config::{Problem, parse_accounts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oauth")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&Utc)
}

fn decode(jwt: &str, alg: Algorithm, aud: &str) -> (jsonwebtoken::Header, serde_json::Value) {
    let key = DecodingKey::from_rsa_pem(fixture("pub.pem").as_bytes()).unwrap();
    let mut v = Validation::new(alg);
    v.set_audience(&[aud]);
    // The fixed test time is in the past; the signature and claims are what matter here.
    v.validate_exp = false;
    let d = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &v).unwrap();
    (d.header, d.claims)
}

#[test]
fn microsoft_client_assertion_is_signed_and_names_the_certificate() {
    let thumb = thumbprint_s256(&fixture("cert.pem")).unwrap();
    assert_eq!(thumb.len(), 43, "base64url of 32 bytes");
    let url = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
    let jwt = client_assertion("cid", url, &thumb, &fixture("key.pem"), now()).unwrap();
    let (h, c) = decode(&jwt, Algorithm::PS256, url);
    assert_eq!(h.x5t_s256.as_deref(), Some(thumb.as_str()));
    assert_eq!((c["iss"].as_str(), c["sub"].as_str()), (Some("cid"), Some("cid")));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() == 32));
    let again = client_assertion("cid", url, &thumb, &fixture("key.pem"), now()).unwrap();
    assert_ne!(decode(&again, Algorithm::PS256, url).1["jti"], c["jti"], "a fresh jti each time");
}

#[test]
fn google_assertion_delegates_to_the_mailbox() {
    let jwt = service_account_assertion(
        "sa@p.iam.gserviceaccount.com",
        Some("kid1"),
        &fixture("key.pem"),
        "alice@example.org",
        GOOGLE_SCOPE_T,
        "https://oauth2.googleapis.com/token",
        now(),
    )
    .unwrap();
    let (h, c) = decode(&jwt, Algorithm::RS256, "https://oauth2.googleapis.com/token");
    assert_eq!(h.kid.as_deref(), Some("kid1"));
    assert_eq!(c["sub"], "alice@example.org");
    assert_eq!(c["iss"], "sa@p.iam.gserviceaccount.com");
    assert_eq!(c["scope"], GOOGLE_SCOPE_T);
}

const GOOGLE_SCOPE_T: &str = crate::config::GOOGLE_SCOPE;

#[test]
fn unusable_keys_are_reported() {
    assert!(check_rsa_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    assert!(thumbprint_s256("not pem").is_err());
    assert!(check_rsa_key(&fixture("key.pem")).is_ok());
}

fn parse(yaml: &str) -> (Vec<AccountConfig>, Vec<Problem>) {
    let mut p = Vec::new();
    let (a, _) = parse_accounts(yaml, &fixtures(), &mut p);
    (a, p)
}

#[test]
fn microsoft_and_google_blocks_parse_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.json");
    std::fs::write(
        &sa,
        serde_json::json!({"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com",
            "private_key_id": "k1", "private_key": fixture("key.pem")})
        .to_string(),
    )
    .unwrap();
    let y = format!(
        "accounts:
  - name: m365
    host: outlook.office365.com
    user: shared@contoso.com
    oauth2: {{flow: client_credentials, provider: microsoft, tenant: contoso.onmicrosoft.com, client_id: cid,
              certificate_file: cert.pem, private_key_file: key.pem}}
  - name: gws
    host: imap.gmail.com
    user: alice@example.org
    oauth2: {{flow: service_account, provider: google, service_account_file: {}, mechanism: xoauth2}}
  - name: dev
    host: outlook.office365.com
    user: bob@contoso.com
    oauth2: {{flow: device, provider: microsoft, tenant: common, client_id: pub}}
",
        sa.display()
    );
    let (a, p) = parse(&y);
    assert!(p.is_empty(), "{p:?}");
    let m = a[0].oauth2.as_ref().unwrap();
    assert_eq!(
        m.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(m.scope, crate::config::M365_APP_SCOPE);
    assert!(matches!(
        &m.flow,
        OAuthFlow::ClientCredentials {
            auth: ClientAuth::Certificate { .. },
            ..
        }
    ));
    assert!(a[0].pass.is_empty());
    let g = a[1].oauth2.as_ref().unwrap();
    assert_eq!(
        (g.token_url.as_str(), g.scope.as_str()),
        (crate::config::GOOGLE_TOKEN_URL, crate::config::GOOGLE_SCOPE)
    );
    assert_eq!(g.mechanism, crate::config::SaslMechanism::Xoauth2);
    let d = a[2].oauth2.as_ref().unwrap();
    assert!(matches!(&d.flow, OAuthFlow::Device { device_url, .. } if device_url.ends_with("/common/oauth2/v2.0/devicecode")));
    assert_eq!(d.scope, crate::config::M365_USER_SCOPE);
    // Secrets never reach Debug output.
    assert!(!format!("{:?}", a[0]).contains("PRIVATE KEY"));
}

#[test]
fn oauth_config_mistakes_are_reported_with_paths() {
    let y = "accounts:
  - {name: a, host: h.example, user: u, pass: s3cr3t-Pw, oauth2: {flow: client_credentials, provider: microsoft, tenant: t, client_id: c, client_secret: real-secret-1}}
  - {name: b, host: h.example, user: u, oauth2: {flow: client_credentials, provider: microsoft, tenant: t}}
  - {name: c, host: h.example, user: u, oauth2: {flow: device, provider: google, client_id: x}}
  - {name: d, host: h.example, user: u, oauth2: {flow: magic, token_url: 'https://t.example/token', scope: s}}
  - {name: e, host: h.example, user: u, oauth2: {flow: service_account, provider: google, service_account_file: cert.pem}}
  - {name: f, host: h.example, user: u, oauth2: {flow: client_credentials, client_id: c, client_secret: real-secret-1}}
";
    let (a, p) = parse(y);
    assert!(a.is_empty());
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "accounts[0].pass",
        "accounts[1].oauth2.client_id",
        "accounts[1].oauth2.client_secret_file",
        "accounts[2].oauth2.flow",
        "accounts[3].oauth2.flow",
        "accounts[4].oauth2.service_account_file",
        "accounts[5].oauth2.token_url",
        "accounts[5].oauth2.scope",
    ] {
        assert!(paths.contains(&want), "{want} missing from {p:#?}");
    }
}

#[test]
fn fingerprint_changes_with_client_user_and_scope() {
    let (a, p) = parse(
        "accounts:\n  - {name: a, host: h.example, user: u, oauth2: {flow: client_credentials, client_id: c, client_secret: real-secret-1, token_url: 'https://t.example/token', scope: s}}\n",
    );
    assert!(p.is_empty(), "{p:?}");
    let a = &a[0];
    let fp = fingerprint(a, a.oauth2.as_ref().unwrap());
    let mut b = a.clone();
    b.user = "v".into();
    assert_ne!(fingerprint(&b, b.oauth2.as_ref().unwrap()), fp);
    let mut c = a.clone();
    if let Some(o) = c.oauth2.as_mut() {
        o.scope = "other".into();
    }
    assert_ne!(fingerprint(&c, c.oauth2.as_ref().unwrap()), fp);
}
