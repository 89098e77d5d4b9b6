//! The built-in decision until the scanning pipeline lands: sender allow and
//! block lists from config.yaml. Real, deterministic and explainable.

use super::{Decider, ScanError, ScanRequest, envelope};
use crate::config::PolicyConfig;
use crate::domain::{Decision, Verdict};
use futures::future::BoxFuture;

/// Tag emitted when the sender matches the block list.
pub const TAG_SENDER_BLOCKED: &str = "LIST_SENDER_BLOCKED";
/// Tag emitted when the sender matches the allow list.
pub const TAG_SENDER_ALLOWED: &str = "LIST_SENDER_ALLOWED";

/// Sender allow/block list decider.
#[derive(Debug, Clone)]
pub struct ListPolicy {
    cfg: PolicyConfig,
}

impl ListPolicy {
    /// From the `policy:` section of config.yaml.
    pub fn new(cfg: PolicyConfig) -> Self {
        Self { cfg }
    }

    /// Decides synchronously.
    pub fn decide_raw(&self, raw: &[u8]) -> Decision {
        let Some(from) = envelope(raw).from else {
            return Decision::pass("no parseable From address");
        };
        if let Some(p) = self.cfg.allow_senders.iter().find(|p| matches(p, &from)) {
            return Decision {
                verdict: Verdict::Pass,
                tags: vec![TAG_SENDER_ALLOWED.into()],
                reason: format!("sender {from} allowed by {p}"),
            };
        }
        if let Some(p) = self.cfg.block_senders.iter().find(|p| matches(p, &from)) {
            return Decision {
                verdict: self.cfg.block_verdict.unwrap_or(Verdict::Quarantine),
                tags: vec![TAG_SENDER_BLOCKED.into()],
                reason: format!("sender {from} blocked by {p}"),
            };
        }
        Decision::pass("no policy matched")
    }
}

impl Decider for ListPolicy {
    fn id(&self) -> &'static str {
        "list-policy"
    }

    fn decide<'a>(&'a self, req: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>> {
        Box::pin(async move { Ok(self.decide_raw(req.raw)) })
    }
}

/// `user@domain` matches exactly, `@domain` matches the domain, `*.domain`
/// matches the domain and its subdomains.
fn matches(pattern: &str, addr: &str) -> bool {
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

    fn policy() -> ListPolicy {
        ListPolicy::new(PolicyConfig {
            allow_senders: vec!["boss@evil.example".into()],
            block_senders: vec!["@evil.example".into(), "*.spam.test".into(), "x@y.test".into()],
            block_verdict: None,
        })
    }

    #[test]
    fn table() {
        let cases = [
            ("a@evil.example", Verdict::Quarantine),
            ("boss@evil.example", Verdict::Pass),
            ("a@sub.spam.test", Verdict::Quarantine),
            ("a@spam.test", Verdict::Quarantine),
            ("a@notspam.test", Verdict::Pass),
            ("x@y.test", Verdict::Quarantine),
            ("xx@y.test", Verdict::Pass),
        ];
        for (from, want) in cases {
            let raw = format!("From: {from}\r\nSubject: t\r\n\r\nbody");
            assert_eq!(policy().decide_raw(raw.as_bytes()).verdict, want, "{from}");
        }
        assert_eq!(policy().decide_raw(b"garbage").verdict, Verdict::Pass);
    }
}
