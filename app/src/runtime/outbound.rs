//! `check-config`'s view of the outbound URLs: every one that the SSRF guard
//! would refuse at request time is reported up front (issue 16: a literal-IP
//! `POSTERN_VIRUSTOTAL_URL` was passed as OK).

use crate::config::Settings;
use crate::intel::net::{NetPolicy, SafeClient};

/// `(variable, reason)` for each configured outbound URL the guard refuses.
pub fn refused_outbound_urls(s: &Settings) -> Vec<(String, String)> {
    let i = &s.intel;
    let policy = NetPolicy {
        allow_loopback_for_tests: i.allow_loopback_for_tests,
    };
    let Ok(client) = SafeClient::new(policy, std::time::Duration::from_secs(1)) else {
        return vec![("HTTP client".into(), "cannot be built".into())];
    };
    let mut urls: Vec<(String, &str)> = i
        .feeds
        .iter()
        .filter_map(|(name, url)| Some((format!("POSTERN_FEED_{}_URL", name.to_ascii_uppercase()), url.as_deref()?)))
        .collect();
    urls.push(("POSTERN_RDAP_BOOTSTRAP_URL".into(), &i.rdap_bootstrap_url));
    urls.push(("POSTERN_ABUSEIPDB_URL".into(), &i.abuseipdb_url));
    urls.push(("POSTERN_VIRUSTOTAL_URL".into(), &i.virustotal_url));
    urls.into_iter()
        .filter_map(|(var, url)| match client.get(url) {
            Ok(_) => None,
            Err(crate::intel::IntelError::Refused { why, .. }) => Some((var, why)),
            Err(e) => Some((var, e.to_string())),
        })
        .collect()
}

/// `(account path, reason)` for each OAuth2 endpoint of `accounts` the
/// guard refuses: token endpoints are operator-configured URLs like the
/// feeds, and reached through the same client.
pub fn refused_oauth_urls(s: &Settings, accounts: &[crate::config::AccountConfig]) -> Vec<(String, String)> {
    let policy = NetPolicy {
        allow_loopback_for_tests: s.intel.allow_loopback_for_tests,
    };
    let Ok(client) = SafeClient::new(policy, std::time::Duration::from_secs(1)) else {
        return vec![("HTTP client".into(), "cannot be built".into())];
    };
    let mut out = Vec::new();
    for a in accounts {
        let Some(o) = &a.oauth2 else { continue };
        let mut urls = vec![("token_url", o.token_url.as_str())];
        if let crate::config::OAuthFlow::Device { device_url, .. } = &o.flow {
            urls.push(("device_url", device_url));
        }
        for (key, url) in urls {
            if let Err(e) = client.get(url) {
                let why = match e {
                    crate::intel::IntelError::Refused { why, .. } => why,
                    other => other.to_string(),
                };
                out.push((format!("account {} oauth2.{key}", a.name), why));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_endpoints_on_private_addresses_are_reported() {
        let s = Settings::for_data_dir(std::path::PathBuf::from("/nonexistent"), [0u8; 32]);
        let mut p = Vec::new();
        let (a, _) = crate::config::parse_accounts(
            "accounts:\n  - {name: a, host: h.example, user: u, oauth2: {flow: client_credentials, client_id: c, client_secret: real-secret-1, token_url: 'http://10.0.0.5/token', scope: s}}\n  - {name: b, host: h.example, user: u, oauth2: {flow: client_credentials, provider: microsoft, tenant: t, client_id: c, client_secret: real-secret-1}}\n",
            std::path::Path::new("/nonexistent"),
            &mut p,
        );
        assert!(p.is_empty(), "{p:?}");
        let vars: Vec<String> = refused_oauth_urls(&s, &a).into_iter().map(|(v, _)| v).collect();
        assert_eq!(vars, ["account a oauth2.token_url"]);
    }

    #[test]
    fn issue_16_literal_ip_service_urls_are_reported() {
        let mut s = Settings::for_data_dir(std::path::PathBuf::from("/nonexistent"), [0u8; 32]);
        assert_eq!(refused_outbound_urls(&s), vec![], "the defaults are fine");
        s.intel.virustotal_url = "http://2130706433:8080/api/v3".into();
        s.intel.abuseipdb_url = "http://[::ffff:10.0.0.1]/api/v2".into();
        s.intel.feeds = vec![("urlhaus".into(), Some("http://0x7f000001/feed".into()))];
        let vars: Vec<String> = refused_outbound_urls(&s).into_iter().map(|(v, _)| v).collect();
        assert_eq!(
            vars,
            ["POSTERN_FEED_URLHAUS_URL", "POSTERN_ABUSEIPDB_URL", "POSTERN_VIRUSTOTAL_URL"]
        );
    }
}
