//! Deceptive links, for the spoof scanner (issue 18): a domain hidden in a
//! URL's userinfo, and link text that shows a domain the link does not go
//! to. Click trackers on the shown domain's own subdomains
//! (`click.example.com` behind "example.com") are the same registrable
//! domain and never fire.

use super::brands::Brands;
use super::spoof::{TAG_LINK_TEXT_MISMATCH, TAG_URL_USERINFO};
use crate::domain::Finding;
use crate::scan::ScanInput;
use crate::scan::urls::{normalise, registrable};

/// URLs looked at for userinfo.
const MAX_URLS: usize = 500;

/// Suffixes whose bare names read as web addresses to people. A bare
/// `README.md` or `setup.py` is a file name, not a domain, even though .md
/// and .py are country TLDs; a scheme or `www.` makes any suffix count.
const WEB_SUFFIXES: &[&str] = &[
    "com", "net", "org", "info", "biz", "io", "co", "gov", "edu", "app", "online", "shop",
];

/// Findings for deceptive links. Link text showing one of a brand's
/// domains over a link to another of its own (amazon.co.uk text, an
/// amzn.eu link) deceives no one (issue 14).
pub(super) fn deceptive(input: &ScanInput, brands: &Brands) -> Vec<Finding> {
    let mut out = Vec::new();
    for u in input.urls.iter().take(MAX_URLS) {
        let Ok(url) = url::Url::parse(u) else { continue };
        let user = percent_decode(url.username());
        if let (Some(shown), Some(host)) = (domain_of(&user, true), url.host_str())
            && registrable(&shown) != registrable(host)
        {
            out.push(Finding::new(TAG_URL_USERINFO, format!("{user}@ hides the real host {host}")));
            break;
        }
    }
    // A sender whose From domain passed DMARC, showing its own domain
    // through its mailing service's click tracker (list-manage.com and the
    // like), deceives no one: 11 of 3,195 modern ham hit such trackers.
    let own = input
        .auth
        .aligned()
        .then(|| input.from_domain.as_deref().and_then(registrable))
        .flatten();
    for l in &input.links {
        let Some(shown) = shown_domain(&l.text) else { continue };
        if own.is_some() && registrable(&shown) == own {
            continue;
        }
        let Some(host) = url::Url::parse(&l.href).ok().and_then(|u| u.host_str().map(str::to_string)) else {
            continue;
        };
        let (want, got) = (registrable(&shown), registrable(&host));
        let same_brand = brands.owning(&shown).is_some_and(|b| got.as_deref().is_some_and(|g| b.owns(g)));
        if want.is_some() && want != got && !same_brand {
            out.push(Finding::new(
                TAG_LINK_TEXT_MISMATCH,
                format!("link text shows {shown}, link goes to {host}"),
            ));
            break;
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The domain a link's visible text shows, if the text is nothing but a
/// web address (`paypal.com`, `www.paypal.com/login`, `https://paypal.com`).
fn shown_domain(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_end_matches(['/', '.', ',', ')', '>'])
        .trim_start_matches(['(', '<']);
    if t.contains(char::is_whitespace) || t.contains('@') {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        // Shown safe-link wrappers are unwrapped like the href was.
        let u = url::Url::parse(&normalise(t)?).ok()?;
        return domain_of(u.host_str()?, true);
    }
    let host = lower.split(['/', '?', '#']).next()?;
    domain_of(host, host.starts_with("www."))
}

/// `s` as a domain name with a public suffix: any known suffix when
/// `any_suffix`, otherwise only one that reads as a web address.
fn domain_of(s: &str, any_suffix: bool) -> Option<String> {
    let s = s.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = s.split('.').count() >= 2
        && s.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    if !labels_ok {
        return None;
    }
    let d = psl::domain(s.as_bytes())?;
    let suffix = d.suffix();
    if !suffix.is_known() {
        return None;
    }
    let suffix = std::str::from_utf8(suffix.as_bytes()).ok()?;
    (any_suffix || suffix.contains('.') || WEB_SUFFIXES.contains(&suffix)).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    fn tags(html: &str) -> Vec<String> {
        let raw = format!("From: a@news.example\r\nContent-Type: text/html\r\n\r\n{html}");
        let input = ScanInput::parse(raw.into_bytes(), &InputOptions::default());
        deceptive(&input, &Brands::shipped()).into_iter().map(|f| f.tag).collect()
    }

    /// Issue 18: `https://paypal.com@evil.test/login` shown as "paypal.com".
    #[test]
    fn issue_18_userinfo_domain_and_shown_domain() {
        assert_eq!(
            tags("<a href=\"https://paypal.com@evil.test/login\">paypal.com</a>"),
            vec![TAG_URL_USERINFO, TAG_LINK_TEXT_MISMATCH]
        );
        assert_eq!(
            tags("<a href=\"https://evil.test/x\">https://www.paypal.com/signin</a>"),
            vec![TAG_LINK_TEXT_MISMATCH]
        );
        assert_eq!(tags("<p>go to https://www.paypal.com@evil.test/</p>"), vec![TAG_URL_USERINFO]);
    }

    /// Newsletters: a tracker on the shown domain's own subdomain, link text
    /// that is not a domain, and file names that happen to be ccTLDs.
    #[test]
    fn tracked_newsletter_links_are_fine() {
        assert!(tags("<a href=\"https://click.example.com/ls/click?upn=abc\">example.com</a>").is_empty());
        assert!(tags("<a href=\"https://shop.us1.list-manage.com/track/click?u=1\">Shop the sale</a>").is_empty());
        assert!(tags("<a href=\"https://github.com/o/r/blob/main/README.md\">README.md</a>").is_empty());
        assert!(tags("<a href=\"https://www.example.co.uk/x\">www.example.co.uk</a>").is_empty());
        assert!(tags("<a href=\"mailto:help@example.com\">help@example.com</a>").is_empty());
        // Issue 14: one brand's own domains on both sides.
        assert!(tags("<a href=\"https://amzn.eu/d/abc\">amazon.co.uk/your-orders</a>").is_empty());
        assert_eq!(
            tags("<a href=\"https://amzn-track.test/d\">amazon.co.uk</a>"),
            vec![TAG_LINK_TEXT_MISMATCH]
        );
        // A shown safe-link is read as its destination, like the href.
        assert!(tags("<a href=\"https://www.example.com/x\">https://urldefense.com/v3/__https://www.example.com/x__;!!a$</a>").is_empty());
    }

    /// A DMARC-aligned sender showing its own domain through its mailing
    /// service's tracker is fine; the same link from anyone else is not.
    #[test]
    fn aligned_sender_may_track_its_own_domain() {
        let html = "<a href=\"https://brand.us7.list-manage.com/track/click?u=1\">brand.com</a>";
        let opts = InputOptions {
            authserv_id: Some("mx.example.org".into()),
            ..Default::default()
        };
        let scan = |auth: &str, from: &str| {
            let raw =
                format!("Authentication-Results: mx.example.org; dmarc={auth}\r\nFrom: {from}\r\nContent-Type: text/html\r\n\r\n{html}");
            let input = ScanInput::parse(raw.into_bytes(), &opts);
            deceptive(&input, &Brands::shipped()).into_iter().map(|f| f.tag).collect::<Vec<_>>()
        };
        assert!(scan("pass", "news@brand.com").is_empty());
        assert_eq!(scan("fail", "news@brand.com"), vec![TAG_LINK_TEXT_MISMATCH]);
        assert_eq!(scan("pass", "news@other.test"), vec![TAG_LINK_TEXT_MISMATCH]);
    }
}
