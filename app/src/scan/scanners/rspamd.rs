//! Rspamd over HTTP: `POST /checkv2` with the envelope as headers. Rspamd's
//! action, less the symbols `rules/rspamd.toml` calls neutral in Postern's
//! setting ([`rspamd_map`](super::rspamd_map)), becomes a tag; its score and
//! scoring symbols are the detail.

use super::rspamd_map::{self, Rules};
use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rspamd says reject.
pub const TAG_REJECT: &str = "RSPAMD_REJECT";
/// Rspamd says add header / rewrite subject.
pub const TAG_SPAM: &str = "RSPAMD_SPAM";
/// Rspamd says greylist / soft reject.
pub const TAG_SUSPICIOUS: &str = "RSPAMD_SUSPICIOUS";
/// Rspamd's score, action and symbols, for every message (informational).
pub const TAG_RESULT: &str = "RSPAMD_RESULT";
/// Rspamd found the mail program the message names forged
/// (`[forged_mua]` in `rules/rspamd.toml`).
pub const TAG_FORGED_MUA: &str = "RSPAMD_FORGED_MUA";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_RESULT, TAG_REJECT, TAG_SPAM, TAG_SUSPICIOUS, TAG_FORGED_MUA];

/// Rspamd client.
#[derive(Debug, Clone)]
pub struct RspamdScanner {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
    mode: FailureMode,
}

#[derive(serde::Deserialize)]
struct Reply {
    action: String,
    score: f64,
    #[serde(default)]
    required_score: f64,
    #[serde(default)]
    symbols: BTreeMap<String, Symbol>,
}

#[derive(serde::Deserialize)]
struct Symbol {
    #[serde(default)]
    score: f64,
}

impl RspamdScanner {
    /// `url` is the normal worker's base, e.g. `http://127.0.0.1:11333`.
    pub fn new(url: &str, timeout: Duration, mode: FailureMode) -> Result<Self, ScanError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| ScanError::scanner("rspamd", e))?;
        Ok(Self {
            client,
            url: url.trim_end_matches('/').to_string(),
            timeout,
            mode,
        })
    }

    /// The `/checkv2` request with the envelope as headers. Every value
    /// comes from the message, so each one is sanitised: a control
    /// character in From or To made reqwest refuse the header, Rspamd was
    /// never asked, and benign mail was quarantined fail-closed (issue 18).
    fn request(&self, input: &ScanInput) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(format!("{}/checkv2", self.url))
            .header("Pass", "all")
            .body(input.raw.as_ref().clone());
        let add = |req: reqwest::RequestBuilder, name: &str, value: Option<String>| match value {
            Some(v) => req.header(name, v),
            None => req,
        };
        req = add(req, "IP", input.sender_ip.map(|ip| ip.to_string()));
        req = add(req, "Helo", input.helo.as_deref().and_then(|h| header_value(h, 255)));
        // The envelope sender when the milter knows it, else the header From.
        let from = input.mail_from.as_deref().or(input.from_addr.as_deref());
        req = add(req, "From", from.and_then(|f| header_value(f, 320)));
        for r in input.rcpt.iter().take(50) {
            req = add(req, "Rcpt", header_value(r, 320));
        }
        add(req, "Queue-Id", input.message_id.as_deref().and_then(|id| header_value(id, 100)))
    }

    async fn check(&self, input: &ScanInput) -> Result<Vec<Finding>, ScanError> {
        let req = self.request(input);
        let resp = req.send().await.map_err(|e| ScanError::scanner("rspamd", e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ScanError::scanner("rspamd", format!("HTTP {status}")));
        }
        let reply: Reply = resp
            .json()
            .await
            .map_err(|e| ScanError::scanner("rspamd", format!("bad reply: {e}")))?;
        Ok(findings(&reply, &rspamd_map::RULES))
    }
}

/// The tags for one reply under `rules`: RSPAMD_RESULT always, and the tag
/// of Rspamd's action once the neutral symbols are taken out.
fn findings(reply: &Reply, rules: &Rules) -> Vec<Finding> {
    let symbols: BTreeMap<String, f64> = reply.symbols.iter().map(|(k, v)| (k.clone(), v.score)).collect();
    let a = rules.assess(&reply.action, reply.score, reply.required_score, &symbols);
    let mut syms: Vec<(&String, f64)> = symbols.iter().map(|(k, v)| (k, *v)).collect();
    syms.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    // Every scoring symbol (Rspamd sends a few dozen at most), so the
    // evidence behind the tag can be read and replayed in full.
    let top: Vec<String> = syms
        .iter()
        .filter(|(_, s)| *s != 0.0)
        .map(|(k, s)| format!("{k}({s:.2})"))
        .collect();
    let neutral = if a.neutral.is_empty() {
        String::new()
    } else {
        let n: Vec<&str> = a.neutral.iter().map(|(k, _)| k.as_str()).collect();
        format!("; {:.2} without neutral {}", a.evidence, n.join(" "))
    };
    let detail = format!(
        "action {}, score {:.2}/{:.2}{neutral}: {}",
        reply.action,
        reply.score,
        reply.required_score,
        top.join(" ")
    );
    let tag = match a.rank {
        3 => Some(TAG_REJECT),
        2 => Some(TAG_SPAM),
        1 => Some(TAG_SUSPICIOUS),
        _ => None,
    };
    // The raw result is always kept (score 0 in the policy), so the
    // dashboard and `scan --explain` show Rspamd's view of clean mail too.
    let mut out = vec![Finding::new(TAG_RESULT, detail.clone())];
    if let Some(t) = tag {
        out.push(Finding::new(t, detail));
    }
    let forged = rules.forged_mua(&symbols);
    if !forged.is_empty() {
        out.push(Finding::new(
            TAG_FORGED_MUA,
            format!("Rspamd finds the mail program forged: {}", forged.join(" ")),
        ));
    }
    out
}

/// `value` as an HTTP header value: control characters (CR, LF, NUL, the
/// rest of C0, DEL, C1) and whitespace runs dropped, at most `max` chars;
/// `None` when nothing printable is left. Non-ASCII stays (SMTPUTF8
/// addresses are real); HTTP allows those bytes as obs-text.
pub fn header_value(value: &str, max: usize) -> Option<String> {
    let clean: String = value.chars().filter(|c| !c.is_control() && !c.is_whitespace()).take(max).collect();
    (!clean.is_empty()).then_some(clean)
}

impl Scanner for RspamdScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::RSPAMD.id
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        self.mode
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(self.check(input))
    }
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        Box::pin(async move {
            let r = self
                .client
                .get(format!("{}/ping", self.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| ScanError::scanner("rspamd", e))?;
            if !r.status().is_success() {
                return Err(ScanError::scanner("rspamd", format!("/ping answered HTTP {}", r.status())));
            }
            Ok(format!("{} answers /ping", self.url))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    #[test]
    fn header_values_lose_control_characters() {
        assert_eq!(header_value("a\r\nb\0c@x.test\x1b\x7f", 320).as_deref(), Some("abc@x.test"));
        assert_eq!(header_value("ü@bücher.test", 320).as_deref(), Some("ü@bücher.test"));
        assert_eq!(header_value("\u{85}x\u{9f}", 320).as_deref(), Some("x"), "C1 controls too");
        assert_eq!(header_value("\r\n\t ", 320), None);
        assert_eq!(header_value(&"a".repeat(500), 320).map(|v| v.len()), Some(320));
    }

    #[test]
    fn issue_18_control_characters_in_the_envelope_still_build_a_request() {
        // Issue 18: a CR in From made reqwest refuse the header ("builder
        // error"), so Rspamd was never asked and the mail was quarantined.
        let s = RspamdScanner::new("http://127.0.0.1:9", Duration::from_secs(1), FailureMode::Closed).unwrap();
        let input = ScanInput {
            from_addr: Some("evil\r\nX-Injected: 1@a.test".into()),
            rcpt: vec!["me\0@b.test".into(), "\x01\x02".into(), "you@c.test".into()],
            helo: Some("mx\n.a.test".into()),
            message_id: Some("<id\r\n@a.test>".into()),
            ..Default::default()
        };
        let req = s.request(&input).build().expect("request builds");
        let h = req.headers();
        assert_eq!(h["From"], "evilX-Injected:1@a.test");
        let rcpt: Vec<&str> = h.get_all("Rcpt").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(rcpt, vec!["me@b.test", "you@c.test"]);
        assert_eq!(h["Helo"], "mx.a.test");
        assert_eq!(h["Queue-Id"], "<id@a.test>");
        // The same through the parser, from raw headers.
        let raw = b"From: <a\x01b@a.test>\r\nTo: <c\x00d@b.test>\r\nSubject: hi\r\n\r\nbody".to_vec();
        let parsed = ScanInput::parse(raw, &InputOptions::default());
        let ctl = |s: &str| s.chars().any(char::is_control);
        assert!(
            parsed.from_addr.as_deref().is_some_and(ctl) || parsed.rcpt.iter().any(|r| ctl(r)),
            "the parser keeps control characters, so they reach the request: {:?} {:?}",
            parsed.from_addr,
            parsed.rcpt
        );
        assert!(s.request(&parsed).build().is_ok(), "{:?} {:?}", parsed.from_addr, parsed.rcpt);
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    fn tags(json: &str) -> Vec<String> {
        let reply: Reply = serde_json::from_str(json).expect("fixture parses");
        findings(&reply, &rspamd_map::RULES).into_iter().map(|f| f.tag).collect()
    }

    /// A list post (list-samba-technical, TRAIN) as offline Rspamd scored
    /// it: every scoring symbol is an artefact of Postern's setting.
    const LIST_POST_OFFLINE: &str = r#"{"is_skipped":false,"score":8.0,"required_score":15.0,
        "action":"add header","symbols":{
        "SPOOF_REPLYTO":{"name":"SPOOF_REPLYTO","score":6.0,"options":["samba.org","lists.samba.org"]},
        "DATE_IN_PAST":{"name":"DATE_IN_PAST","score":1.0},
        "RDNS_NONE":{"name":"RDNS_NONE","score":0.7},
        "RDNS_DNSFAIL":{"name":"RDNS_DNSFAIL","score":0.0},
        "MV_CASE":{"name":"MV_CASE","score":0.5},
        "MAILLIST":{"name":"MAILLIST","score":-0.2,"options":["mailman"]},
        "HAS_LIST_UNSUB":{"name":"HAS_LIST_UNSUB","score":-0.01}}}"#;

    /// Spam (SpamAssassin, TRAIN-like): structural symbols that describe
    /// the mail, plus the same artefacts.
    const SPAM_OFFLINE: &str = r#"{"score":11.6,"required_score":15.0,"action":"add header","symbols":{
        "R_BAD_CTE_7BIT":{"score":3.5},"MISSING_MIME_VERSION":{"score":2.0},
        "SUBJ_ALL_CAPS":{"score":3.0},"MIME_HTML_ONLY":{"score":0.2},
        "DATE_IN_PAST":{"score":1.0},"RDNS_NONE":{"score":1.0},"RDNS_DNSFAIL":{"score":0.0},
        "HTTP_TO_IP":{"score":0.9}}}"#;

    #[test]
    fn a_list_post_scored_only_on_offline_artefacts_gets_no_spam_tag() {
        assert_eq!(tags(LIST_POST_OFFLINE), vec![TAG_RESULT]);
    }

    #[test]
    fn spam_symbols_keep_their_tag_and_the_detail_says_what_was_left_out() {
        let reply: Reply = serde_json::from_str(SPAM_OFFLINE).expect("fixture parses");
        let f = findings(&reply, &rspamd_map::RULES);
        assert_eq!(f.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>(), vec![TAG_RESULT, TAG_SPAM]);
        let d = f[1].detail.as_deref().unwrap_or_default();
        assert!(
            d.starts_with("action add header, score 11.60/15.00; 9.60 without neutral DATE_IN_PAST RDNS_NONE: R_BAD_CTE_7BIT(3.50)"),
            "{d}"
        );
        assert!(!d.contains("RDNS_DNSFAIL"), "zero-score symbols stay out of the detail: {d}");
    }

    #[test]
    fn online_evidence_is_never_discounted() {
        // Rspamd with DNS and Bayes: the same structure plus real evidence.
        let online = r#"{"score":16.0,"required_score":15.0,"action":"reject","symbols":{
            "BAYES_SPAM":{"score":5.1},"RBL_SPAMHAUS_SBL":{"score":4.0},"RDNS_NONE":{"score":2.0},
            "PHISHING":{"score":4.9}}}"#;
        assert_eq!(tags(online), vec![TAG_RESULT, TAG_REJECT]);
        let greylist = r#"{"score":4.5,"required_score":15.0,"action":"greylist","symbols":{"FUZZY_DENIED":{"score":4.5}}}"#;
        assert_eq!(tags(greylist), vec![TAG_RESULT, TAG_SUSPICIOUS]);
    }

    #[test]
    fn a_forged_mail_program_is_its_own_tag() {
        // sa-spam (TRAIN-like): Outlook Express named, its fingerprint absent.
        let forged = r#"{"score":10.6,"required_score":15.0,"action":"add header","symbols":{
            "FORGED_MUA_OUTLOOK":{"score":3.0},"RATWARE_MS_HASH":{"score":2.0},"OLD_X_MAILER":{"score":2.0},
            "DATE_IN_PAST":{"score":1.0},"MIME_HTML_ONLY":{"score":0.2}}}"#;
        let reply: Reply = serde_json::from_str(forged).expect("fixture parses");
        let f = findings(&reply, &rspamd_map::RULES);
        assert_eq!(
            f.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>(),
            vec![TAG_RESULT, TAG_SPAM, TAG_FORGED_MUA]
        );
        assert_eq!(
            f[2].detail.as_deref(),
            Some("Rspamd finds the mail program forged: FORGED_MUA_OUTLOOK RATWARE_MS_HASH")
        );
        assert_eq!(tags(LIST_POST_OFFLINE), vec![TAG_RESULT], "an old mailer alone is not forgery");
    }
}
