//! URL extraction and normalisation, with well-known safe-link wrappers
//! (Microsoft SafeLinks, Proofpoint v2/v3, Mimecast) unwrapped so the real
//! destination is what gets checked. Parsing is the `url` and `linkify`
//! crates' job; this module only decides what to keep.

use linkify::{LinkFinder, LinkKind};
use std::collections::BTreeSet;
use url::Url;

/// Links, parsed once per process.
#[cfg(test)]
static ANCHORS: std::sync::LazyLock<Option<scraper::Selector>> =
    std::sync::LazyLock::new(|| scraper::Selector::parse("a[href], area[href]").ok());

/// Upper bound on URLs kept per message (a message with more is itself odd).
pub const MAX_URLS: usize = 2000;
/// Links (visible text and target) kept per message.
pub const MAX_LINKS: usize = 500;
/// Visible link text kept per link, in characters.
const MAX_LINK_TEXT: usize = 200;

/// An HTML link as the reader sees it: its visible text and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Visible text, whitespace collapsed, bounded.
    pub text: String,
    /// Normalised http(s) target (safe-link wrappers removed).
    pub href: String,
}

/// A link with a `download` attribute: clicking saves a file instead of
/// opening a page, the HTML-smuggling way to hand over an executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The href as written, cut to its first 100 characters (a data: URI
    /// can be megabytes).
    pub href: String,
    /// The file name the browser will save as: the attribute's value, else
    /// the last path segment of the href.
    pub name: String,
}

/// Collects `<a href>` links with their visible text, for the link-text
/// checks (a shown domain against the real target), and links that carry a
/// `download` attribute. The parse does this inside its one walk over the
/// linking elements ([`anchor`]); this separate walk is what it is tested
/// against.
#[cfg(test)]
pub(crate) fn anchors(doc: &scraper::Html, links: &mut Vec<Link>, downloads: &mut Vec<Download>) {
    let Some(sel) = ANCHORS.as_ref() else {
        return;
    };
    for el in doc.select(sel) {
        let raw = el.value().attr("href").unwrap_or("");
        if !anchor(el, raw, normalise(raw), links, downloads) {
            return;
        }
    }
}

/// Records one `<a href>` (or `<area href>`) whose href `raw` normalises to
/// `href`: the caller that walks every linking element anyway normalises
/// once for both uses (issue 21). `false` once the bounds are reached.
pub fn anchor(el: scraper::ElementRef<'_>, raw: &str, href: Option<String>, links: &mut Vec<Link>, downloads: &mut Vec<Download>) -> bool {
    if links.len() >= MAX_LINKS || downloads.len() >= MAX_LINKS {
        return false;
    }
    let raw = raw.trim();
    if let Some(name) = el.value().attr("download") {
        let name = if name.trim().is_empty() {
            raw.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("")
        } else {
            name.trim()
        };
        downloads.push(Download {
            href: raw.chars().take(100).collect(),
            name: name.chars().take(MAX_LINK_TEXT).collect(),
        });
    }
    let Some(href) = href else { return true };
    let mut text = String::new();
    for word in el.text().flat_map(str::split_whitespace) {
        if text.len() >= MAX_LINK_TEXT {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    if !text.is_empty() {
        links.push(Link { text, href });
    }
    true
}

/// Finds http(s) URLs in plain text.
pub fn from_text(text: &str, out: &mut BTreeSet<String>) {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]);
    for link in finder.links(text) {
        if out.len() >= MAX_URLS {
            return;
        }
        if let Some(u) = normalise(link.as_str()) {
            out.insert(u);
        }
    }
}

/// Whether `host` is `domain` or one of its subdomains.
pub fn on_domain(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// Normalises one URL: http(s) only, no fragment, lower-case host, with
/// safe-link wrappers removed (up to 3 levels deep).
pub fn normalise(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw.trim()).ok()?;
    for _ in 0..3 {
        match unwrap_safelink(&url) {
            Some(inner) => url = inner,
            None => break,
        }
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    Some(url.to_string())
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn unwrap_safelink(url: &Url) -> Option<Url> {
    let host = url.host_str()?.to_ascii_lowercase();
    if host.ends_with(".safelinks.protection.outlook.com") {
        return Url::parse(&query(url, "url")?).ok();
    }
    if host == "urldefense.proofpoint.com" && url.path().starts_with("/v2/url") {
        // v2 encodes '/' as '_' and '%' as '-' in the u= parameter.
        let u = query(url, "u")?.replace('_', "/").replace('-', "%");
        let decoded = percent_decode(&u)?;
        return Url::parse(&decoded).ok();
    }
    if host == "urldefense.com" && url.path().starts_with("/v3/__") {
        let rest = url.as_str().split_once("/v3/__")?.1;
        let inner = rest.rsplit_once("__;").map_or(rest, |(a, _)| a);
        return Url::parse(inner).ok();
    }
    if host.ends_with(".mimecast.com") && host.starts_with("protect") {
        // Mimecast links are opaque tokens; the domain parameter is all it reveals.
        return Url::parse(&format!("https://{}/", query(url, "domain")?)).ok();
    }
    None
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// The registrable domain (eTLD+1) of a host, via the Public Suffix List.
pub fn registrable(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&host).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_unwraps() {
        assert_eq!(normalise("HTTPS://Example.COM/a#frag").as_deref(), Some("https://example.com/a"));
        assert_eq!(normalise("mailto:x@y").as_deref(), None);
        assert_eq!(
            normalise("https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fevil.test%2Fpay&data=x").as_deref(),
            Some("https://evil.test/pay")
        );
        assert_eq!(
            normalise("https://urldefense.proofpoint.com/v2/url?u=https-3A__evil.test_login&d=x").as_deref(),
            Some("https://evil.test/login")
        );
        assert_eq!(
            normalise("https://urldefense.com/v3/__https://evil.test/x__;!!abc$").as_deref(),
            Some("https://evil.test/x")
        );
        assert_eq!(
            normalise("https://protect-eu.mimecast.com/s/abc?domain=evil.test").as_deref(),
            Some("https://evil.test/")
        );
    }

    #[test]
    fn text_extraction_dedups() {
        let mut s = BTreeSet::new();
        from_text("see https://a.test/x and https://a.test/x#y, or www.b.test", &mut s);
        assert_eq!(s.into_iter().collect::<Vec<_>>(), vec!["https://a.test/x"]);
        assert_eq!(registrable("Mail.Example.co.uk").as_deref(), Some("example.co.uk"));
    }
}
