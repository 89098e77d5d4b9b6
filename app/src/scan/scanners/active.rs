//! Active content in an HTML or SVG attachment (issue 14): a script, an
//! event handler, a `javascript:` link, a meta refresh, or a frame that
//! loads a page.
//!
//! Mail clients run none of these in a message body, so bodies are not
//! judged here (newsletters carry stray scripts that never run). An
//! attached `.html` or `.svg` opens in the browser, where they do: that is
//! how HTML- and SVG-attachment phishing sends its reader to a login page,
//! or draws one, while the mail itself carries no link at all.

use crate::domain::Finding;
use scraper::Html;

/// An HTML or SVG attachment runs something when opened.
pub const TAG_HTML_ACTIVE: &str = "ATT_HTML_ACTIVE";

/// Attributes whose value a browser loads or follows.
const URL_ATTRS: &[&str] = &["href", "src", "action", "formaction", "data"];

/// The finding for an attachment's tree, when opening it runs something.
pub(crate) fn attachment(doc: &Html, name: &str, out: &mut Vec<Finding>) {
    if let Some(why) = active(doc) {
        out.push(Finding::new(TAG_HTML_ACTIVE, format!("{name} runs {why} when opened")));
    }
}

/// What in the tree runs when a browser opens it, if anything.
fn active(doc: &Html) -> Option<&'static str> {
    for node in doc.tree.values() {
        let Some(el) = node.as_element() else { continue };
        match el.name() {
            "script" => return Some("a script"),
            "meta" if el.attr("http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("refresh")) => {
                return Some("a meta refresh");
            }
            "iframe" | "frame" | "embed" | "object" if el.attrs().any(|(k, v)| matches!(k, "src" | "data") && loads_page(v)) => {
                return Some("a frame that loads a page");
            }
            _ => {}
        }
        for (k, v) in el.attrs() {
            // Every HTML and SVG attribute named on… is an event handler.
            if k.len() > 2 && k.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("on")) {
                return Some("an event handler");
            }
            if URL_ATTRS.contains(&k) && has_scheme(v, "javascript:") {
                return Some("a javascript: link");
            }
        }
    }
    None
}

/// A frame source that puts a page in front of the reader: a web page, a
/// protocol-relative one, inline HTML or script.
fn loads_page(v: &str) -> bool {
    has_scheme(v, "http:")
        || has_scheme(v, "https:")
        || has_scheme(v, "data:text/html")
        || has_scheme(v, "javascript:")
        || v.trim_start().starts_with("//")
}

/// Whether a URL attribute starts with `scheme` as a browser reads it:
/// leading spaces and controls dropped, tabs and newlines ignored anywhere
/// (`java\tscript:` is `javascript:`), case ignored.
fn has_scheme(v: &str, scheme: &str) -> bool {
    let mut cleaned = v
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'));
    scheme
        .chars()
        .all(|want| cleaned.next().is_some_and(|c| c.eq_ignore_ascii_case(&want)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(markup: &str) -> Option<&'static str> {
        active(&Html::parse_document(markup))
    }

    #[test]
    fn scripts_handlers_refreshes_and_frames_are_active() {
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>window.location.href=atob('aHR0cHM6Ly9ldmlsLnRlc3Qv')</script></svg>";
        assert_eq!(why(svg), Some("a script"));
        assert_eq!(
            why("<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"location='https://evil.test/'\"><rect/></svg>"),
            Some("an event handler")
        );
        assert_eq!(why("<img src=x OnError=\"go()\">"), Some("an event handler"));
        assert_eq!(
            why("<meta http-equiv=\" Refresh \" content=\"0; url=https://evil.test/\">"),
            Some("a meta refresh")
        );
        assert_eq!(
            why("<iframe src=\"https://evil.test/login\" width=100%></iframe>"),
            Some("a frame that loads a page")
        );
        assert_eq!(why("<object data=\"//evil.test/x\"></object>"), Some("a frame that loads a page"));
        assert_eq!(
            why("<a href=\" java\tscript:go()\">Open</a>"),
            Some("a javascript: link"),
            "browsers drop the tab and the leading space"
        );
        assert_eq!(
            why("<svg><a xlink:href=\"JavaScript:go()\"><text>Open</text></a></svg>"),
            Some("a javascript: link")
        );
    }

    #[test]
    fn static_documents_are_not() {
        let logo = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><title>Logo</title>\
                    <a href=\"https://example.org/\"><circle cx=\"5\" cy=\"5\" r=\"4\" fill=\"#c00\"/></a></svg>";
        assert_eq!(why(logo), None);
        let page = "<html><head><meta charset=utf-8><meta http-equiv=\"Content-Type\" content=\"text/html\"></head>\
                    <body><p>Minutes of the meeting, see <a href=\"https://example.org/m\">the page</a>.</p>\
                    <iframe src=\"about:blank\"></iframe><img src=\"cid:logo\"></body></html>";
        assert_eq!(why(page), None);
        assert_eq!(why("<p>the word javascript: in text, and onload too</p>"), None);
    }
}
