//! Mail that leads nowhere but its sender's own domain (issue 14).
//!
//! The AI tier reads text, and a real receipt or bill reads like the
//! phishing that copies it. What phishing needs besides the text is a
//! place to send the reader: a page on another domain, a file, a reply
//! address elsewhere. A message whose every link, form, QR code and
//! Reply-To stays on the From domain, with nothing attached but pictures
//! and plain PDFs, offers none of that; whoever wrote it only leads back to
//! the domain it came from. The AI scanner uses this to warn about such
//! mail rather than quarantine it (`AI_PHISH_OWN_LINKS`). A phisher on a
//! look-alike domain of its own is still answered by the domain checks,
//! whose tags add to the warning.
//!
//! As for `BRAND_CONSISTENT`, links to the sender's pages on social
//! networks and app stores and to another known brand's own site (a
//! shop's notice links to the carrier's tracking page) neither count for it
//! nor break it; at least one link must be the sender's own.
//!
//! Not contained: a From on a consumer mail domain (anyone sends from
//! gmail.com), a link where others publish under a brand's domains (a
//! shared document, a form, a payment request), a `tel:` or any scheme but
//! http(s) and `mailto:` (callback scams work by telephone), a URL that
//! carries another domain's URL in its query (a redirect), a download
//! link, an attachment other than a picture or a PDF without actions, a
//! part not read in full (a bound or deadline hit), and a message with no
//! link at all (nothing shows where it leads).

use super::brands::Brands;
use super::consistent::{destinations, other_brand, redirects_only, reply_to_registrable};
use crate::scan::ScanInput;
use crate::scan::urls::registrable;
use url::Url;

/// The sender's registrable domain, when every place the message leads
/// is on it.
pub fn sender_contained(input: &ScanInput, brands: &Brands) -> Option<String> {
    let from_reg = registrable(input.from_domain.as_deref()?)?;
    if brands.owner(&from_reg).is_some_and(|b| b.mailbox.contains(&from_reg)) {
        return None;
    }
    if input.reply_to.is_some() && reply_to_registrable(input).as_deref() != Some(from_reg.as_str()) {
        return None;
    }
    let plain_pdf = |a: &crate::scan::attach::Attachment| a.sniffed.as_deref() == Some("application/pdf") && input.pdf_actions.is_empty();
    // Whatever was not read in full (a long HTML part, a PDF past its
    // bounds) may lead anywhere.
    if !input.limits.is_empty()
        || !input.downloads.is_empty()
        || !input.attachments.iter().all(|a| super::consistent::is_image(a) || plain_pdf(a))
    {
        return None;
    }
    let mut targets = destinations(input)?;
    targets.extend(input.pdf_links.iter().cloned());
    targets.extend(input.office_links.iter().cloned());
    targets.extend(input.other_links.iter().cloned());
    if targets.is_empty() {
        return None;
    }
    let on_sender = |url: &Url| -> bool {
        match url.scheme() {
            "http" | "https" => {
                url.host_str().and_then(registrable).as_deref() == Some(from_reg.as_str()) && brands.shared_host(url).is_none()
            }
            "mailto" => url
                .path()
                .rsplit_once('@')
                .and_then(|(_, d)| registrable(d))
                .is_some_and(|d| d == from_reg),
            _ => false,
        }
    };
    let harmless = |url: &Url| brands.neutral(url) || other_brand(url, brands).is_some();
    let mut own = 0;
    for raw in &targets {
        let Ok(url) = Url::parse(raw) else { return None };
        // Its own click tracker may lead on to its own pages or to the
        // harmless places, nowhere else.
        if on_sender(&url) && redirects_only(&url, |inner| on_sender(inner) || harmless(inner)) {
            own += 1;
        } else if !harmless(&url) {
            return None;
        }
    }
    (own > 0).then_some(from_reg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    fn judge(headers: &str, body: &str) -> Option<String> {
        let raw = format!("{headers}MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<html><body>{body}</body></html>");
        let input = ScanInput::parse(raw.into_bytes(), &InputOptions::default());
        sender_contained(&input, &Brands::shipped())
    }

    const SHOP: &str = "From: \"Tandem billing\" <billing@tandemhq.io>\r\nSubject: Your receipt\r\n";

    #[test]
    fn a_receipt_leading_only_to_its_sender_is_contained() {
        let own = "<img src=\"https://cdn.elsewhere.test/logo.png\"><a href=\"https://app.tandemhq.io/billing\">Billing</a> \
                   <a href=\"mailto:support@tandemhq.io\">support</a> Questions? https://tandemhq.io/help";
        assert_eq!(judge(SHOP, own).as_deref(), Some("tandemhq.io"), "pictures elsewhere do not count");
        let tracked = "<a href=\"https://click.tandemhq.io/t?u=https%3A%2F%2Fapp.tandemhq.io%2Fbilling\">Billing</a>";
        assert_eq!(judge(SHOP, tracked).as_deref(), Some("tandemhq.io"), "its own click tracker");
        let footer = "<a href=\"https://tandemhq.io/order/1\">Order</a> <a href=\"https://www.ups.com/track?tracknum=1Z9\">Track</a> \
                      <a href=\"https://www.instagram.com/tandemhq\">Instagram</a>";
        assert_eq!(
            judge(SHOP, footer).as_deref(),
            Some("tandemhq.io"),
            "a carrier's own site and social pages"
        );
        let only_footer = "<a href=\"https://www.ups.com/track?tracknum=1Z9\">Track</a>";
        assert_eq!(judge(SHOP, only_footer), None, "nothing of its own");
    }

    #[test]
    fn a_campaigns_donation_page_is_harmless_but_not_its_own() {
        let campaign = "From: \"Dale Whitfield\" <contact@whitfieldforcongress.com>\r\nSubject: FINAL NOTICE\r\n";
        let appeal = "<a href=\"https://secure.winred.com/whitfield/renew?sc=em\">RENEW</a> \
                      <a href=\"https://whitfieldforcongress.com/unsubscribe\">Unsubscribe</a>";
        assert_eq!(judge(campaign, appeal).as_deref(), Some("whitfieldforcongress.com"));
        let only_platform = "<a href=\"https://secure.actblue.com/donate/x\">Chip in</a>";
        assert_eq!(judge(campaign, only_platform), None, "nothing of its own");
        let lookalike = "<a href=\"https://secure.winred-donations.test/renew\">RENEW</a> \
                         <a href=\"https://whitfieldforcongress.com/unsubscribe\">Unsubscribe</a>";
        assert_eq!(judge(campaign, lookalike), None, "a donation page anywhere else");
    }

    #[test]
    fn anything_leading_elsewhere_is_not() {
        let cases = [
            (
                "<a href=\"https://tandemhq.io/\">a</a> <a href=\"https://tandem-billing.test/pay\">pay</a>",
                "a foreign link",
            ),
            (
                "<a href=\"https://click.tandemhq.io/t?u=https%3A%2F%2Fevil.test%2F\">Billing</a>",
                "a redirect out",
            ),
            (
                "<a href=\"https://tandemhq.io/\">a</a> <a href=\"tel:+18005550142\">call</a>",
                "a telephone link",
            ),
            ("<a href=\"mailto:refunds@freemail.test\">write</a>", "a reply address elsewhere"),
            (
                "<form action=\"https://collect.test/login\"><input type=password></form><a href=\"https://tandemhq.io/\">a</a>",
                "a form",
            ),
            ("Your receipt is ready.", "no link at all"),
        ];
        for (body, why) in cases {
            assert_eq!(judge(SHOP, body), None, "{why}");
        }
        let reply = "From: <billing@tandemhq.io>\r\nReply-To: <tandem.billing@gmail.com>\r\n";
        assert_eq!(judge(reply, "<a href=\"https://tandemhq.io/\">a</a>"), None, "Reply-To elsewhere");
        let consumer = "From: <someone@gmail.com>\r\n";
        assert_eq!(
            judge(consumer, "<a href=\"https://mail.google.com/\">a</a>"),
            None,
            "a consumer mail domain"
        );
        let input = ScanInput::parse(
            format!(
                "{SHOP}Content-Type: text/html\r\n\r\n<a href=\"tel:+1800\">t</a><a href=\"/rel\">r</a><a href=\"mailto:a@b.test\">m</a>"
            )
            .into_bytes(),
            &InputOptions::default(),
        );
        assert_eq!(
            input.other_links,
            vec!["tel:+1800", "mailto:a@b.test"],
            "relative links lead nowhere else"
        );
        let shared = "From: <drive-shares-dm-noreply@google.com>\r\n";
        assert_eq!(
            judge(shared, "<a href=\"https://docs.google.com/document/d/x\">Open</a>"),
            None,
            "shared hosting"
        );
    }
}
