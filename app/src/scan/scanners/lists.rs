//! Sender allow and block lists from config.yaml. An allowlisted sender only
//! counts when authentication aligns, so a forged From cannot buy a pass.

use crate::config::PolicyConfig;
use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::time::Duration;

/// Sender on the block list.
pub const TAG_SENDER_BLOCKED: &str = "LIST_SENDER_BLOCKED";
/// Sender on the allow list, authentication aligned.
pub const TAG_SENDER_ALLOWED: &str = "LIST_SENDER_ALLOWED";
/// Sender on the allow list, but authentication does not align.
pub const TAG_ALLOW_UNAUTHENTICATED: &str = "LIST_ALLOW_UNAUTHENTICATED";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_SENDER_BLOCKED, TAG_SENDER_ALLOWED, TAG_ALLOW_UNAUTHENTICATED];

/// Allow/block list scanner.
#[derive(Debug, Clone)]
pub struct ListScanner {
    cfg: PolicyConfig,
}

impl ListScanner {
    /// From the `policy:` section.
    pub fn new(cfg: PolicyConfig) -> Self {
        Self { cfg }
    }

    fn check(&self, input: &ScanInput) -> Vec<Finding> {
        let Some(from) = input.from_addr.as_deref() else {
            return Vec::new();
        };
        if let Some(p) = self.cfg.block_senders.iter().find(|p| matches(p, from)) {
            return vec![Finding::new(TAG_SENDER_BLOCKED, format!("{from} matches {p}"))];
        }
        if let Some(p) = self.cfg.allow_senders.iter().find(|p| matches(p, from)) {
            let tag = if input.auth.aligned() {
                TAG_SENDER_ALLOWED
            } else {
                TAG_ALLOW_UNAUTHENTICATED
            };
            return vec![Finding::new(tag, format!("{from} matches {p}"))];
        }
        Vec::new()
    }
}

impl Scanner for ListScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::LISTS.id
    }
    fn timeout(&self) -> Duration {
        crate::scan::registry::LISTS.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        crate::scan::registry::LISTS.fail
    }
    fn cpu_bound(&self) -> bool {
        true
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(async move { Ok(self.check(input)) })
    }
}

/// `user@domain` exact, `@domain` the domain, `*.domain` the domain and subdomains.
pub fn matches(pattern: &str, addr: &str) -> bool {
    let domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
    if let Some(suffix) = pattern.strip_prefix("*.") {
        domain == suffix || domain.ends_with(&format!(".{suffix}"))
    } else if let Some(d) = pattern.strip_prefix('@') {
        domain == d
    } else {
        addr == pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    #[test]
    fn table() {
        let s = ListScanner::new(PolicyConfig {
            allow_senders: vec!["boss@corp.test".into()],
            block_senders: vec!["@evil.test".into(), "*.spam.test".into()],
            block_verdict: None,
        });
        let opts = InputOptions {
            authserv_id: Some("mx.corp.test".into()),
            ..Default::default()
        };
        let tags = |raw: &str| {
            s.check(&ScanInput::parse(raw.as_bytes().to_vec(), &opts))
                .into_iter()
                .map(|f| f.tag)
                .collect::<Vec<_>>()
        };
        assert_eq!(tags("From: a@evil.test\r\n\r\nx"), vec![TAG_SENDER_BLOCKED]);
        assert_eq!(tags("From: a@x.spam.test\r\n\r\nx"), vec![TAG_SENDER_BLOCKED]);
        assert_eq!(
            tags("From: boss@corp.test\r\n\r\nx"),
            vec![TAG_ALLOW_UNAUTHENTICATED],
            "forged allowlisted sender"
        );
        assert_eq!(
            tags("Authentication-Results: mx.corp.test; dmarc=pass\r\nFrom: boss@corp.test\r\n\r\nx"),
            vec![TAG_SENDER_ALLOWED]
        );
        assert!(tags("From: a@good.test\r\n\r\nx").is_empty());
    }
}
