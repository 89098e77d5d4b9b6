//! The AI tier as a scanner (`--features ai`): the mail model over subject
//! and body text, the DGA model over the registrable domains of the sender
//! and of the URLs. Inference is CPU work, so it runs on the blocking pool.

use crate::domain::Finding;
use crate::scan::ai::features::{dga_features, mail_indices, registrable_label, tokens_up_to};
use crate::scan::ai::onnx::Models;
use crate::scan::ai::{GREYLIST, TAG_DGA, TAG_SCORES, TAGS, Thresholds, contained_tag, is_phishing, mail_tag};
use crate::scan::scanners::brands::Brands;
use crate::scan::scanners::contained::sender_contained;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Most distinct domains judged per message.
const MAX_DOMAINS: usize = 20;

struct Inner {
    models: Models,
    thresholds: Thresholds,
    greylist: BTreeSet<String>,
    /// For `sender_contained`: consumer mail domains and shared hosting.
    brands: Brands,
}

/// The ONNX scanner. Fail-open: the AI tier only ever adds evidence.
#[derive(Clone)]
pub struct AiScanner {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl AiScanner {
    /// Loads the runtime and both models; the error says what is missing.
    pub fn load(lib: &Path, models: &Path, thresholds: Thresholds, protected: &[String], timeout: Duration) -> Result<Self, String> {
        let models = Models::load(lib, models)?;
        let greylist = GREYLIST
            .lines()
            .chain(protected.iter().map(String::as_str))
            .filter_map(registrable_label)
            .collect();
        let mut brands = Brands::shipped();
        for d in protected {
            brands.add_domain(d);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                models,
                thresholds,
                greylist,
                brands,
            }),
            timeout,
        })
    }
}

/// Fewer tokens than this in the plain parts, and more in the HTML: the
/// plain part is a stub ("View this email in your browser") that says
/// nothing about the mail, and the HTML's visible text is read instead
/// (`STUB_TOKENS` in models/train.py).
const STUB_TOKENS: usize = 20;

/// Body text as the models were trained on it: the plain parts, or the
/// visible text of the HTML parts when there is no plain part or only a
/// stub of one.
fn body_text(input: &ScanInput) -> String {
    if input.html_visible.is_empty() {
        return input.text.clone();
    }
    let has_plain = !input.text.trim().is_empty();
    // Counting stops at the stub bound: a real plain part is not read twice.
    let n_plain = if has_plain {
        tokens_up_to(&input.text, STUB_TOKENS).len()
    } else {
        0
    };
    if has_plain && n_plain >= STUB_TOKENS {
        return input.text.clone();
    }
    // Extracted from each bounded tree when the input was built.
    let html = input.html_visible.concat();
    if has_plain && tokens_up_to(&html, n_plain + 1).len() <= n_plain {
        return input.text.clone();
    }
    html
}

fn domains(input: &ScanInput) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let hosts = input.from_domain.iter().cloned().chain(
        input
            .urls
            .iter()
            .chain(&input.qr_urls)
            .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_string)),
    );
    let mut out = Vec::new();
    for h in hosts {
        if h.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        if let Some(label) = registrable_label(&h)
            && seen.insert(label.clone())
        {
            out.push((h, label));
            if out.len() >= MAX_DOMAINS {
                break;
            }
        }
    }
    out
}

/// The scores and DGA findings, and the mail model's tag apart: whether a
/// phishing tag gives way depends on the shared input (`AiScanner::scan`).
type Checked = (Vec<Finding>, Option<(&'static str, String)>);

impl Inner {
    fn check(&self, input: &ScanInput) -> Result<Checked, ScanError> {
        let err = |e: String| ScanError::scanner("ai", e);
        let subject = input.subject.as_deref().unwrap_or("");
        let m = self.models.mail(&mail_indices(subject, &body_text(input))).map_err(err)?;
        let t = self.thresholds;
        let mut worst: Option<(String, f64)> = None;
        for (host, label) in domains(input) {
            if self.greylist.contains(&label) {
                continue;
            }
            let p = self.models.dga(&dga_features(&label)).map_err(err)?;
            if worst.as_ref().is_none_or(|(_, w)| p > *w) {
                worst = Some((host, p));
            }
        }
        let dga = worst
            .as_ref()
            .map_or("no domains judged".to_string(), |(h, p)| format!("dga={p:.3} ({h})"));
        let mut out = vec![Finding::new(
            TAG_SCORES,
            format!("ham={:.3} spam={:.3} phish={:.3}; {dga}", m.ham, m.spam, m.phish),
        )];
        if let Some((h, p)) = worst
            && p >= t.dga
        {
            out.push(Finding::new(TAG_DGA, format!("{h} P(generated)={p:.3} >= {}", t.dga)));
        }
        Ok((out, mail_tag(m.ham, m.phish, m.spam, &t)))
    }
}

impl Scanner for AiScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::AI.id
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        FailureMode::Open
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        let inner = self.inner.clone();
        // The input is shared by every scanner; the blocking task needs its own.
        let owned = ScanInput {
            subject: input.subject.clone(),
            text: input.text.clone(),
            html_visible: input.html_visible.clone(),
            from_domain: input.from_domain.clone(),
            urls: input.urls.clone(),
            qr_urls: input.qr_urls.clone(),
            ..Default::default()
        };
        Box::pin(async move {
            let (mut out, mail) = tokio::task::spawn_blocking(move || inner.check(&owned))
                .await
                .map_err(|e| ScanError::scanner("ai", e))??;
            if let Some(tag) = mail {
                // Only a phishing verdict asks where the message leads: most
                // mail never pays for the walk over its links.
                let own = is_phishing(tag.0).then(|| sender_contained(input, &self.inner.brands)).flatten();
                let (tag, detail) = contained_tag(tag, own.as_deref());
                out.insert(1, Finding::new(tag, detail));
            }
            Ok(out)
        })
    }
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        let t = self.inner.thresholds;
        Box::pin(async move { Ok(format!("models loaded; thresholds phish {} spam {} dga {}", t.phish, t.spam, t.dga)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str, html: &[&str]) -> ScanInput {
        ScanInput {
            text: text.into(),
            html_visible: html.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_stub_plain_part_gives_way_to_the_html() {
        let story = "Good morning. Here is what you need to know today about the markets, the storm in the Gulf and the court ruling on the housing plan.";
        assert_eq!(body_text(&input("View this email in your browser.", &[story])), story);
        assert_eq!(body_text(&input("", &[story])), story, "no plain part");
        let long_plain = format!("{story} And more.");
        assert_eq!(body_text(&input(&long_plain, &[story])), long_plain, "a real plain part is read");
        assert_eq!(
            body_text(&input("Short plain note here.", &["Hi"])),
            "Short plain note here.",
            "the HTML has no more to say"
        );
        assert_eq!(body_text(&input("Only plain.", &[])), "Only plain.");
    }

    /// A lure whose every link stays on its sender's own domain is
    /// flagged as AI_PHISH_OWN_LINKS; the same text with one link
    /// elsewhere is AI_PHISH. The shipped model and runtime, as in
    /// `onnx::tests` (POSTERN_AI_RUNTIME).
    #[tokio::test]
    async fn a_lure_that_leads_only_to_its_sender_is_told_apart() {
        use crate::scan::InputOptions;
        use crate::scan::ai::onnx::runtime_path;
        let lib = runtime_path(std::env::var_os("POSTERN_AI_RUNTIME").map(std::path::PathBuf::from).as_deref())
            .expect("set POSTERN_AI_RUNTIME to libonnxruntime.so (scripts/onnxruntime.sh fetches it)");
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let ai = AiScanner::load(&lib, &models, Thresholds::default(), &[], Duration::from_secs(10)).unwrap();
        let tags = |link: &str| {
            let raw = format!(
                "From: Billing <billing@tandemhq.io>\r\nSubject: Action required: your account will be suspended\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Dear user, your email account password will \
                 expire today. To avoid suspension of your mailbox, verify your account and confirm your login \
                 credentials now. Failure to verify your account within 24 hours will result in permanent \
                 deactivation.</p><p><a href=\"{link}\">Verify now</a></p>"
            );
            let input = ScanInput::parse(raw.into_bytes(), &InputOptions::default());
            let ai = ai.clone();
            async move {
                let found = ai.scan(&input).await.unwrap();
                found.into_iter().map(|f| f.tag).filter(|t| t != TAG_SCORES).collect::<Vec<_>>()
            }
        };
        assert_eq!(tags("https://app.tandemhq.io/verify").await, vec!["AI_PHISH_OWN_LINKS"]);
        assert_eq!(tags("https://tandemhq-verify.test/login").await, vec!["AI_PHISH"]);
    }
}
