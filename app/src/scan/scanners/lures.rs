//! Lures the spoof scanner weighs beside its own checks (issue 14): a
//! brand's mail whose Reply-To is a freemail address, links or forms to
//! free hosting, IPFS gateways, form builders or dynamic DNS, and a PDF
//! whose link hides where it goes. The lists are data under `rules/`.

use super::brands::Brands;
use super::spoof::{TAG_FREE_HOSTING, TAG_IMAGE_FREE_HOSTING, TAG_OFFICE_LINK_REDIRECT, TAG_PDF_LINK_REDIRECT, TAG_REPLY_TO_FREEMAIL};
use crate::domain::Finding;
use crate::scan::ScanInput;
use crate::scan::urls::registrable;
use std::sync::LazyLock;

/// The shipped free-hosting list.
pub const DEFAULT_FREE_HOSTING: &str = include_str!("../../../../rules/free_hosting.txt");
/// The shipped freemail list.
pub const DEFAULT_FREEMAIL: &str = include_str!("../../../../rules/freemail.txt");
/// The shipped shortener list.
pub const DEFAULT_SHORTENERS: &str = include_str!("../../../../rules/shorteners.txt");

/// The shipped image-sharing hosts.
pub const DEFAULT_IMAGE_HOSTS: &str = include_str!("../../../../rules/image_hosts.txt");

static SHORTENERS: LazyLock<Vec<String>> = LazyLock::new(|| entries(DEFAULT_SHORTENERS).collect());
static IMAGE_HOSTS: LazyLock<Vec<String>> = LazyLock::new(|| entries(DEFAULT_IMAGE_HOSTS).collect());

/// The shipped shorteners, one host each (the unshortener expands links
/// on them).
pub fn shipped_shorteners() -> &'static [String] {
    &SHORTENERS
}

/// URLs looked at per message.
const MAX_URLS: usize = 500;

/// Picture types: newsletters serve images from cloud buckets, which is
/// no lure.
const IMAGE_EXTS: &[&str] = &[".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".ico"];

/// The lure lists.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// (host, path prefix) pairs.
    hosting: Vec<(String, String)>,
    freemail: Vec<String>,
}

fn entries(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
}

impl Lists {
    /// From list texts (one entry a line, `#` comments).
    pub fn new(hosting: &str, freemail: &str) -> Self {
        let hosting = entries(hosting)
            .map(|e| match e.split_once('/') {
                Some((h, p)) => (h.to_string(), format!("/{p}")),
                None => (e, String::new()),
            })
            .collect();
        Self {
            hosting,
            freemail: entries(freemail).collect(),
        }
    }

    /// The shipped lists.
    pub fn shipped() -> Self {
        Self::new(DEFAULT_FREE_HOSTING, DEFAULT_FREEMAIL)
    }

    /// Findings for one message.
    pub fn check(&self, input: &ScanInput, brands: &Brands) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(f) = self.reply_to(input, brands) {
            out.push(f);
        }
        if let Some(f) = self.hosting(input) {
            out.push(f);
        }
        if let Some(f) = image_hosting(input) {
            out.push(f);
        }
        let documents = [
            (&input.pdf_links, "PDF", TAG_PDF_LINK_REDIRECT),
            (&input.office_links, "Office", TAG_OFFICE_LINK_REDIRECT),
        ];
        for (links, kind, tag) in documents {
            if let Some(detail) = document_redirect(links, kind, brands) {
                out.push(Finding::new(tag, detail));
            }
        }
        out
    }

    fn reply_to(&self, input: &ScanInput, brands: &Brands) -> Option<Finding> {
        // The Reply-To first: most mail has none, or none at a freemail
        // provider, and naming the brand takes the display name's
        // confusable skeleton.
        let rt = input.reply_to.as_deref()?;
        let rt_reg = registrable(rt.rsplit_once('@')?.1)?;
        if !self.freemail.contains(&rt_reg) {
            return None;
        }
        let from_reg = input.from_domain.as_deref().and_then(registrable);
        let brand = input
            .from_name
            .as_deref()
            .and_then(|n| brands.named_in(n))
            .or_else(|| from_reg.as_deref().and_then(|r| brands.owning(r)))?;
        let free = Some(&rt_reg) != from_reg.as_ref() && !brand.owns(&rt_reg);
        free.then(|| Finding::new(TAG_REPLY_TO_FREEMAIL, format!("From is {}, Reply-To is {rt}", brand.name)))
    }

    /// Clickable links, form targets and QR codes only: plain-text URLs
    /// to blogs and CI logs are how mailing lists talk (they were all of
    /// the ham hits when plain text counted).
    fn hosting(&self, input: &ScanInput) -> Option<Finding> {
        let targets = input
            .links
            .iter()
            .map(|l| &l.href)
            .chain(&input.forms)
            .chain(&input.qr_urls)
            .chain(&input.pdf_links)
            .chain(&input.office_links)
            .chain(&input.calendar_links);
        for u in targets.take(MAX_URLS) {
            let Ok(url) = url::Url::parse(u) else { continue };
            let path = url.path().to_ascii_lowercase();
            if IMAGE_EXTS.iter().any(|e| path.ends_with(e)) {
                continue;
            }
            let Some(host) = url.host_str() else { continue };
            let hit = self.hosting.iter().any(|(h, p)| {
                let on = crate::scan::urls::on_domain(host, h);
                on && path.starts_with(p.as_str())
            });
            if hit {
                return Some(Finding::new(TAG_FREE_HOSTING, format!("link to {host}")));
            }
        }
        None
    }
}

/// The first HTML picture served from an anonymous image-sharing host.
fn image_hosting(input: &ScanInput) -> Option<Finding> {
    input.images.iter().find_map(|u| {
        let url = url::Url::parse(u).ok()?;
        let host = url.host_str()?;
        IMAGE_HOSTS
            .iter()
            .any(|h| crate::scan::urls::on_domain(host, h))
            .then(|| Finding::new(TAG_IMAGE_FREE_HOSTING, format!("picture from {host}")))
    })
}

/// A link in a PDF or Office attachment that goes through a shortener, a
/// redirect (a URL carrying another URL) or a place where anyone publishes
/// under a big name (a shared document, a script): the document hides
/// where it leads. A document linking its issuer's own pages is the
/// ordinary case. On the TRAIN phishing that carries a PDF, these were
/// most of the links that the body's own evidence had left in the inbox or
/// in Junk; Office files carry the same one-link "shared invoice".
fn document_redirect(links: &[String], kind: &str, brands: &Brands) -> Option<String> {
    links.iter().find_map(|u| {
        let url = url::Url::parse(u).ok()?;
        let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        let why = if shipped_shorteners().iter().any(|d| crate::scan::urls::on_domain(&host, d)) {
            "a shortener".to_string()
        } else if let Some(b) = brands.shared_host(&url) {
            format!("shared hosting of {}", b.name)
        } else if url.query_pairs().any(|(_, v)| {
            let v = v.trim_start().to_ascii_lowercase();
            v.starts_with("http://") || v.starts_with("https://") || v.starts_with("//")
        }) {
            "a redirect".to_string()
        } else {
            return None;
        };
        Some(format!("{kind} link to {host}, {why}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    fn tags(raw: &str) -> Vec<String> {
        let input = ScanInput::parse(raw.as_bytes().to_vec(), &InputOptions::default());
        Lists::shipped()
            .check(&input, &Brands::shipped())
            .into_iter()
            .map(|f| f.tag)
            .collect()
    }

    /// Issue 14: "PayPal" asking for answers at a gmail address.
    #[test]
    fn issue_14_brand_with_freemail_reply_to() {
        assert_eq!(
            tags("From: \"PayPal\" <service@paypal.com>\r\nReply-To: paypal.resolution@gmail.com\r\n\r\nx"),
            vec![TAG_REPLY_TO_FREEMAIL]
        );
        assert_eq!(
            tags("From: \"Support\" <help@amazon.co.uk>\r\nReply-To: claims@outlook.com\r\n\r\nx"),
            vec![TAG_REPLY_TO_FREEMAIL]
        );
        // A mailing-list post answered to its author's gmail is ordinary.
        assert!(tags("From: Alice via list <list@lists.example.org>\r\nReply-To: alice@gmail.com\r\n\r\nx").is_empty());
        // A brand answering at its own address is ordinary too.
        assert!(tags("From: \"PayPal\" <service@paypal.com>\r\nReply-To: help@paypal.co.uk\r\n\r\nx").is_empty());
    }

    /// Issue 14: a PDF link that hides its target; a PDF linking its
    /// issuer's own pages, or an ESP's click tracker, is not one.
    #[test]
    fn issue_14_pdf_links_through_shorteners_redirects_and_shared_hosts() {
        let pdf = |link: &str| document_redirect(&[link.to_string()], "PDF", &Brands::shipped());
        assert!(pdf("https://bit.ly/4pQx7Zk").is_some_and(|d| d.contains("shortener")));
        assert!(
            pdf("https://BIT.LY./4pQx7Zk").is_some_and(|d| d.contains("shortener")),
            "case, trailing dot"
        );
        assert!(pdf("https://hotgrls1674.page.link/yCMn").is_some(), "a shortener's subdomain");
        assert!(pdf("https://www.google.com/url?q=HTTPS://evil.example/x").is_some_and(|d| d.contains("redirect")));
        assert!(pdf("https://docs.google.com/drawings/d/1/preview").is_some_and(|d| d.contains("Google")));
        assert!(pdf("https://script.google.com/macros/s/x/exec").is_some());
        assert_eq!(pdf("https://www.energy.example/account/bills/2026-11"), None);
        assert_eq!(pdf("https://u123.ct.sendgrid.net/ls/click?upn=abc"), None);
    }

    /// Issue 14: links to free hosting, IPFS and form builders; images in
    /// buckets and shared documents are not lures.
    #[test]
    fn issue_14_free_hosting_links() {
        let html = |body: &str| format!("From: a@b.test\r\nContent-Type: text/html\r\n\r\n{body}");
        assert_eq!(
            tags(&html("<a href=\"https://bafybeigd.ipfs.dweb.link/login.html\">Verify</a>")),
            vec![TAG_FREE_HOSTING]
        );
        assert_eq!(
            tags(&html("<form action=\"https://x-secure.web.app/p\"></form>")),
            vec![TAG_FREE_HOSTING]
        );
        assert_eq!(
            tags(&html("<a href=\"https://docs.google.com/forms/d/e/1/viewform\">Form</a>")),
            vec![TAG_FREE_HOSTING]
        );
        assert!(tags(&html("<img src=\"https://storage.googleapis.com/shop/banner.png\">")).is_empty());
        assert!(tags(&html("<a href=\"https://docs.google.com/document/d/1/edit\">Agenda</a>")).is_empty());
        assert!(tags(&html("<a href=\"https://notweb.app.example.com/\">x</a>")).is_empty());
    }

    #[test]
    fn pictures_from_anonymous_image_hosts() {
        let html = |body: &str| format!("From: a@b.test\r\nContent-Type: text/html\r\n\r\n{body}");
        assert_eq!(
            tags(&html("<img src=\"https://i.imgur.com/AbC123.png\">")),
            vec![TAG_IMAGE_FREE_HOSTING]
        );
        assert_eq!(
            tags(&html("<IMG SRC=\"HTTPS://www.Zupimages.net/up/24/01/x.jpg\">")),
            vec![TAG_IMAGE_FREE_HOSTING]
        );
        // A link to a picture there is a shared screenshot, not the mail's own pictures.
        assert!(tags(&html("<a href=\"https://imgur.com/gallery/x\">screenshot</a>")).is_empty());
        assert!(tags(&html("<img src=\"https://mcusercontent.com/1/images/logo.png\">")).is_empty());
        assert!(tags(&html("<img src=\"https://notimgur.com/x.png\">")).is_empty());
    }
}
