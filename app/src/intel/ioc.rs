//! Operator indicators: validation of what the API and `postern ioc
//! import` receive, and the CSV / JSON-lines import formats. Values are
//! normalised here once, so the store and the index see one spelling.

use super::Kind;
use super::index::Severity;
use crate::domain::NewIndicator;
use serde::Deserialize;

/// An indicator as submitted (API body, CSV row, JSON line).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Submitted {
    /// `ip`, `cidr`, `domain`, `url`, `sha256` or `email`.
    #[serde(rename = "type", alias = "kind")]
    pub kind: String,
    /// The value.
    pub value: String,
    /// Who reported it (default `manual`).
    #[serde(default)]
    pub source: Option<String>,
    /// 0–100 (default 75).
    #[serde(default)]
    pub confidence: Option<u8>,
    /// low, medium, high, critical (default high).
    #[serde(default)]
    pub severity: Option<String>,
    /// RFC 3339 expiry.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Marks a known false positive.
    #[serde(default)]
    pub false_positive: Option<bool>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
}

/// Normalises a value of `kind`, or says what is wrong with it.
pub fn normalise(kind: Kind, value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 2048 {
        return Err("empty or longer than 2048 characters".into());
    }
    match kind {
        Kind::Ip => v.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).map_err(|e| e.to_string()),
        Kind::Cidr => v.parse::<ipnet::IpNet>().map(|n| n.trunc().to_string()).map_err(|e| e.to_string()),
        Kind::Domain => {
            let d = v.trim_end_matches('.').to_ascii_lowercase();
            match url::Host::parse(&d) {
                Ok(url::Host::Domain(d)) if d.contains('.') => Ok(d),
                _ => Err(format!("{v:?} is not a domain name")),
            }
        }
        Kind::Url => {
            let u = url::Url::parse(v).map_err(|e| e.to_string())?;
            if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
                return Err("only http(s) URLs with a host".into());
            }
            let mut u = u;
            u.set_fragment(None);
            Ok(u.to_string())
        }
        Kind::Sha256 => {
            let h = v.to_ascii_lowercase();
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(h)
            } else {
                Err("a SHA-256 is 64 hex digits".into())
            }
        }
        Kind::Email => {
            let a = v.to_ascii_lowercase();
            match a.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() && normalise(Kind::Domain, domain).is_ok() => Ok(a),
                _ => Err(format!("{v:?} is not an email address")),
            }
        }
    }
}

impl Submitted {
    /// Validates into a row for the store.
    pub fn validate(self) -> Result<NewIndicator, String> {
        let kind = Kind::parse(&self.kind).ok_or_else(|| format!("unknown type {:?} (ip, cidr, domain, url, sha256, email)", self.kind))?;
        let value = normalise(kind, &self.value).map_err(|e| format!("{}: {e}", kind.as_str()))?;
        let confidence = self.confidence.unwrap_or(75);
        if confidence > 100 {
            return Err("confidence is 0 to 100".into());
        }
        let severity = match self.severity.as_deref() {
            None => Severity::High,
            Some(s) => Severity::parse(s).ok_or_else(|| format!("unknown severity {s:?} (low, medium, high, critical)"))?,
        };
        let expires_at = match self.expires_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(e) => Some(
                chrono::DateTime::parse_from_rfc3339(e)
                    .map_err(|_| format!("expires_at {e:?} is not an RFC 3339 time"))?
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        };
        let source = self
            .source
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "manual".into());
        if source.len() > 100 {
            return Err("source is at most 100 characters".into());
        }
        Ok(NewIndicator {
            kind: kind.as_str().to_string(),
            value,
            source,
            confidence,
            severity: severity.as_str().to_string(),
            expires_at,
            false_positive: self.false_positive.unwrap_or(false),
            note: self.note.filter(|n| !n.trim().is_empty()),
        })
    }
}

/// Reads an import file: JSON lines when the first non-blank character is
/// `{`, otherwise CSV with a header row naming the fields (`type,value,…`).
/// Every bad line is reported with its line number; nothing is imported
/// from a file with errors.
pub fn parse_import(text: &str) -> Result<Vec<NewIndicator>, Vec<String>> {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    if text.trim_start().starts_with('{') {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Submitted>(line)
                .map_err(|e| e.to_string())
                .and_then(Submitted::validate)
            {
                Ok(i) => out.push(i),
                Err(e) => errors.push(format!("line {}: {e}", n + 1)),
            }
        }
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        for row in rdr.deserialize::<Submitted>() {
            match row {
                Ok(s) => {
                    let line = out.len() + errors.len() + 2;
                    match s.validate() {
                        Ok(i) => out.push(i),
                        Err(e) => errors.push(format!("row {line}: {e}")),
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_kind() {
        assert_eq!(normalise(Kind::Domain, "Evil.TEST.").unwrap(), "evil.test");
        assert!(normalise(Kind::Domain, "not a domain").is_err());
        assert_eq!(normalise(Kind::Cidr, "198.51.100.7/24").unwrap(), "198.51.100.0/24");
        assert_eq!(normalise(Kind::Ip, " 2001:DB8::1 ").unwrap(), "2001:db8::1");
        assert_eq!(normalise(Kind::Url, "HTTP://Evil.test/a#x").unwrap(), "http://evil.test/a");
        assert!(normalise(Kind::Url, "javascript:alert(1)").is_err());
        assert!(normalise(Kind::Sha256, "abc").is_err());
        assert_eq!(normalise(Kind::Email, "Boss@Evil.test").unwrap(), "boss@evil.test");
        assert!(normalise(Kind::Email, "@evil.test").is_err());
    }

    #[test]
    fn imports_csv_and_json_lines_or_nothing() {
        let csv = "# exported by the SOC\ntype,value,source,confidence,severity,expires_at\ndomain,evil.test,soc,90,critical,\nip,203.0.113.5,soc,60,medium,2030-01-01T00:00:00Z\n";
        let v = parse_import(csv).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].confidence, v[0].severity.as_str()), (90, "critical"));
        assert_eq!(v[1].expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
        let jl =
            "{\"type\":\"url\",\"value\":\"https://evil.test/x\"}\n\n{\"type\":\"email\",\"value\":\"a@b.test\",\"false_positive\":true}\n";
        let v = parse_import(jl).unwrap();
        assert_eq!((v[0].source.as_str(), v[0].confidence, v[1].false_positive), ("manual", 75, true));
        let bad = "{\"type\":\"url\",\"value\":\"https://evil.test/x\"}\n{\"type\":\"hash\",\"value\":\"x\"}\n{\"type\":\"ip\",\"value\":\"1.2.3\"}\n";
        let errs = parse_import(bad).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("line 2"));
    }
}
