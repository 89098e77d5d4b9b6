//! Brand-consistent mail (issue 14): the sender is a brand's own domain
//! and every place the message sends the reader is that brand's too.
//!
//! Real transactional mail (a shipping notice, a receipt, a sign-in code)
//! reads like phishing to a text model, because phishing copies it. What a
//! phisher cannot copy is where the links go: a message that only leads to
//! amazon.co.uk gives its reader nothing to be phished with, whoever sent
//! it. So this is evidence *for* the message, scored below zero. It is not
//! given when any link leaves the brand, goes through a redirect to
//! elsewhere, or lands where anyone can publish under the brand's name
//! (shared documents, forms, payment requests: the `shared` entries of
//! `rules/brands.toml`), when Reply-To is not the brand's, when the page
//! offers a download, when anything but an image is attached, or when no
//! link is the brand's. Links to the brand's
//! pages on social networks and app stores (the table's `neutral`
//! domains) neither count for it nor break it, and neither do links to
//! another known brand's own site: a shop's dispatch notice links to the
//! carrier's tracking page, a carrier's notice to the shop, and a page on
//! ups.com gives a phisher no more than a page on the sender's own site.

use super::brands::{Brand, Brands};
use crate::domain::Finding;
use crate::scan::ScanInput;
use crate::scan::urls::{self, registrable};
use std::collections::BTreeSet;
use url::Url;

/// Every link, form and Reply-To of a message from a brand's own domain is
/// that brand's.
pub const TAG_BRAND_CONSISTENT: &str = "BRAND_CONSISTENT";

/// More destinations than this and the message is not judged: real
/// notices carry a few dozen at most.
const MAX_DESTINATIONS: usize = 200;

/// The finding, when the message is consistent with its sender's brand.
pub fn brand_consistent(input: &ScanInput, brands: &Brands) -> Option<Finding> {
    let from_reg = registrable(input.from_domain.as_deref()?)?;
    // `owning` leaves out consumer mail domains: anyone writes from gmail.com.
    let brand = brands.owning(&from_reg)?;
    if input.reply_to.is_some() && !brand.owns(&reply_to_registrable(input)?) {
        return None;
    }
    // A document or archive can carry what the body does not show (a link
    // in a PDF, a macro); only images (logos, inline pictures) may ride along.
    if !input.downloads.is_empty() || !input.attachments.iter().all(is_image) {
        return None;
    }
    let targets = destinations(input)?;
    let (mut own, mut social) = (0, 0);
    let mut elsewhere = BTreeSet::new();
    for raw in &targets {
        let url = Url::parse(raw).ok()?;
        if leads_to_brand(&url, brand) {
            own += 1;
        } else if brands.neutral(&url) {
            social += 1;
        } else if let Some(other) = other_brand(&url, brands) {
            elsewhere.insert(other.name.as_str());
        } else {
            return None;
        }
    }
    if own == 0 {
        return None;
    }
    let mut detail = format!("sent from {from_reg}; every link goes to {} ({own})", brand.name);
    if !elsewhere.is_empty() {
        let names: Vec<&str> = elsewhere.into_iter().collect();
        detail.push_str(&format!(", another brand's own site ({})", names.join(", ")));
    }
    if social > 0 {
        detail.push_str(&format!(" or its social/app-store pages ({social})"));
    }
    Some(Finding::new(TAG_BRAND_CONSISTENT, detail))
}

/// Another known brand whose own site (not a place where others publish,
/// not a redirect away) the URL is on.
pub(super) fn other_brand<'a>(url: &Url, brands: &'a Brands) -> Option<&'a Brand> {
    let other = brands.owning(url.host_str()?)?;
    leads_to_brand(url, other).then_some(other)
}

pub(super) fn is_image(a: &crate::scan::attach::Attachment) -> bool {
    let sniffed = a.sniffed.as_deref().unwrap_or(a.declared.as_str());
    sniffed.starts_with("image/") && sniffed != "image/svg+xml" && a.declared != "image/svg+xml"
}

/// Where a reader can go from the message: HTML links and forms, QR codes,
/// calendar invitations' links, and URLs written in its text (mail clients
/// make those clickable). Images are left out: they are fetched, not
/// followed. `None` when there are too many to judge.
pub(super) fn destinations(input: &ScanInput) -> Option<BTreeSet<String>> {
    let mut out: BTreeSet<String> = input
        .links
        .iter()
        .map(|l| l.href.clone())
        .chain(input.forms.iter().cloned())
        .chain(input.qr_urls.iter().cloned())
        .chain(input.calendar_links.iter().cloned())
        .collect();
    urls::from_text(&input.text, &mut out);
    for visible in &input.html_visible {
        urls::from_text(visible, &mut out);
    }
    (out.len() <= MAX_DESTINATIONS).then_some(out)
}

/// The URL is on the brand's own domains (its consumer mail domains are
/// its web sites too: account.live.com), not in a place where others
/// publish, and does not redirect (a URL in its query) anywhere else.
fn leads_to_brand(url: &Url, brand: &Brand) -> bool {
    let owned = |u: &Url| {
        u.host_str()
            .and_then(registrable)
            .is_some_and(|reg| (brand.owns(&reg) || brand.mailbox.contains(&reg)) && !brand.hosts_others(u))
    };
    owned(url) && redirects_only(url, owned)
}

/// Whether every web URL carried in `url`'s query (where a click tracker
/// or redirector sends the reader on) satisfies `ok`.
pub(super) fn redirects_only(url: &Url, ok: impl Fn(&Url) -> bool) -> bool {
    url.query_pairs().all(|(_, v)| match Url::parse(&v) {
        Ok(inner) if matches!(inner.scheme(), "http" | "https") => ok(&inner),
        _ => true,
    })
}

/// The registrable domain of the Reply-To address, if it has one.
pub(super) fn reply_to_registrable(input: &ScanInput) -> Option<String> {
    let (_, domain) = input.reply_to.as_deref()?.rsplit_once('@')?;
    registrable(domain.trim_end_matches('>'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    fn judge(headers: &str, html: &str) -> Option<String> {
        let raw = format!("{headers}MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<html><body>{html}</body></html>");
        let input = ScanInput::parse(raw.into_bytes(), &InputOptions::default());
        brand_consistent(&input, &Brands::shipped()).and_then(|f| f.detail)
    }

    const AMAZON: &str = "From: \"Amazon.co.uk\" <shipment-tracking@amazon.co.uk>\r\nSubject: Dispatched\r\n";

    #[test]
    fn a_brand_linking_only_to_itself_is_consistent() {
        let d = judge(
            AMAZON,
            "<img src=\"https://cdn.example/logo.png\"><a href=\"https://www.amazon.co.uk/track\">Track</a> \
             <a href=\"https://amzn.eu/d/x\">orders</a> <a href=\"https://www.amazon.com/gp/f.html?U=https%3A%2F%2Fwww.amazon.co.uk%2F\">home</a>",
        );
        assert_eq!(d.as_deref(), Some("sent from amazon.co.uk; every link goes to Amazon (3)"));
        let social = judge(
            AMAZON,
            "<a href=\"https://www.amazon.co.uk/track\">Track</a> <a href=\"https://www.facebook.com/amazon\">f</a> \
             <a href=\"https://apps.apple.com/gb/app/amazon-shopping/id297606951\">app</a>",
        );
        assert_eq!(
            social.as_deref(),
            Some("sent from amazon.co.uk; every link goes to Amazon (1) or its social/app-store pages (2)")
        );
        let only_social = judge(AMAZON, "<a href=\"https://www.facebook.com/amazon\">f</a>");
        assert_eq!(only_social, None, "nothing of the brand's own");
        let redirect = judge(
            AMAZON,
            "<a href=\"https://www.amazon.co.uk/\">a</a> <a href=\"https://l.facebook.com/l.php?u=x\">f</a>",
        );
        assert_eq!(redirect, None, "a network's redirector is not neutral");
    }

    /// A shop's dispatch notice links to the carrier's tracking page: both
    /// are brands' own sites. The carrier's shared hosting (a Google Doc)
    /// and a redirect out of the carrier's site are not.
    #[test]
    fn another_brands_own_site_neither_counts_nor_breaks_it() {
        let d = judge(
            AMAZON,
            "<a href=\"https://www.amazon.co.uk/orders\">Order</a> \
             <a href=\"https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB\">Track with Royal Mail</a> \
             <a href=\"https://www.facebook.com/amazon\">f</a>",
        );
        assert_eq!(
            d.as_deref(),
            Some(
                "sent from amazon.co.uk; every link goes to Amazon (1), another brand's own site (Royal Mail) \
                 or its social/app-store pages (1)"
            )
        );
        let only_other = judge(AMAZON, "<a href=\"https://www.royalmail.com/track-your-item\">Track</a>");
        assert_eq!(only_other, None, "nothing of the sender's own");
        let shared = "<a href=\"https://www.amazon.co.uk/orders\">Order</a> <a href=\"https://docs.google.com/forms/d/x\">Survey</a>";
        assert_eq!(judge(AMAZON, shared), None, "a form anyone can publish");
        let redirect = "<a href=\"https://www.amazon.co.uk/orders\">Order</a> \
                        <a href=\"https://www.royalmail.com/go?url=https%3A%2F%2Fevil.test%2F\">Track</a>";
        assert_eq!(judge(AMAZON, redirect), None, "a redirect out of the other brand's site");
    }

    #[test]
    fn one_foreign_link_redirect_download_or_reply_to_breaks_it() {
        let foreign = "<a href=\"https://www.amazon.co.uk/track\">Track</a> <a href=\"https://amaz0n-verify.test/login\">Verify</a>";
        assert_eq!(judge(AMAZON, foreign), None);
        let redirect = "<a href=\"https://www.amazon.com/gp/f.html?U=https%3A%2F%2Fevil.test%2F\">Track</a>";
        assert_eq!(judge(AMAZON, redirect), None);
        let download = "<a href=\"https://www.amazon.co.uk/invoice.html\" download>Invoice</a>";
        assert_eq!(judge(AMAZON, download), None);
        let pdf = format!(
            "{AMAZON}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n\
             <a href=\"https://www.amazon.co.uk/track\">Track</a>\r\n--b\r\nContent-Type: application/pdf; name=invoice.pdf\r\n\
             Content-Disposition: attachment; filename=invoice.pdf\r\n\r\n%PDF-1.4 /URI (https://evil.test/)\r\n--b--\r\n"
        );
        let input = ScanInput::parse(pdf.into_bytes(), &InputOptions::default());
        assert!(
            brand_consistent(&input, &Brands::shipped()).is_none(),
            "a PDF may carry its own link"
        );
        let reply = format!("{AMAZON}Reply-To: refunds@gmail.com\r\n");
        assert_eq!(judge(&reply, "<a href=\"https://www.amazon.co.uk/track\">Track</a>"), None);
        assert_eq!(
            judge(AMAZON, "<p>Call us on 0800 000 000</p>"),
            None,
            "no link, nothing to vouch for"
        );
    }

    #[test]
    fn shared_documents_and_consumer_mailboxes_are_not_the_brand_speaking() {
        let share = "From: \"Jo (via Google Docs)\" <drive-shares-noreply@google.com>\r\n";
        assert_eq!(
            judge(share, "<a href=\"https://docs.google.com/drawings/d/abc/edit\">Open</a>"),
            None
        );
        let gmail = "From: Jo <jo.bloggs@gmail.com>\r\n";
        assert_eq!(judge(gmail, "<a href=\"https://www.google.com/\">Google</a>"), None);
        let lookalike = "From: PayPal <service@paypa1.com>\r\n";
        assert_eq!(judge(lookalike, "<a href=\"https://www.paypal.com/\">PayPal</a>"), None);
    }
}
