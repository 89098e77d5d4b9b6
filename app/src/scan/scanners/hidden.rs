//! Hidden text, for the HTML scanner: text a reader cannot see (zero or
//! tiny fonts, `display:none`, `visibility:hidden`, opacity 0, text
//! coloured like its background) is how spam and phishing stuff words past
//! filters. Modern newsletters hide text too, legitimately (issue 14: the
//! old rule fired on half the TRAIN newsletters), so these do not count:
//! - a font-size of 0 on a layout cell whose children set their own size
//!   again (MJML and most builders collapse inline-block gaps that way);
//!   only text whose own computed size is tiny is hidden;
//! - mobile/desktop variants: a hidden element whose class a `@media`
//!   rule in the message's own stylesheet refers to;
//! - the preheader: the first hidden block, up to `PREHEADER_MAX`, or up
//!   to `LEADING_PREHEADER_MAX` when no visible text comes before it (news
//!   sites put several headlines there);
//! - filler characters (zero-width joiners, U+034F, soft hyphens) padding
//!   a preheader, and tracking pixels, which carry no text.

use crate::domain::Finding;
use scraper::{ElementRef, Html};
use std::collections::HashSet;

/// Stylesheets, parsed once per process.
static STYLES: std::sync::LazyLock<Option<scraper::Selector>> = std::sync::LazyLock::new(|| scraper::Selector::parse("style").ok());

/// Text hidden from the reader.
pub const TAG_HIDDEN_TEXT: &str = "HTML_HIDDEN_TEXT";

/// The first hidden block up to this many characters is the preheader.
const PREHEADER_MAX: usize = 300;
/// A first hidden block before any visible text is a preheader up to this.
const LEADING_PREHEADER_MAX: usize = 1000;
/// Hidden text below this many characters in total is noise.
const HIDDEN_MIN: usize = 80;
/// Class names collected from `@media` rules; a stylesheet naming more is
/// read no further (the HTML itself is already bounded).
const MAX_MEDIA_CLASSES: usize = 10_000;

/// CSS declarations of an inline style, lower-cased, whitespace removed.
fn declarations(style: &str) -> Vec<(&'static str, String)> {
    style
        .split(';')
        .filter_map(|d| d.split_once(':'))
        .filter_map(|(k, v)| {
            // Only the properties read below are kept: newsletters style
            // every cell, and copying each declaration was a twentieth of
            // the local pipeline (issue 21).
            let k = k.trim();
            let key = READ.iter().find(|r| r.eq_ignore_ascii_case(k))?;
            Some((*key, v.trim().to_ascii_lowercase().replace(' ', "").replace("!important", "")))
        })
        .collect()
}

/// The properties [`hides`] and [`font_tiny`] look at.
const READ: &[&str] = &[
    "display",
    "visibility",
    "opacity",
    "color",
    "background-color",
    "background",
    "font-size",
];

fn tiny(size: &str) -> bool {
    let num: String = size.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let Ok(n) = num.parse::<f64>() else { return false };
    let unit = &size[num.len()..];
    match unit {
        "px" | "" => n <= 2.0,
        "pt" => n <= 1.5,
        "em" | "rem" => n <= 0.15,
        "%" => n <= 15.0,
        _ => false,
    }
}

/// How an element hides its whole subtree, if it does.
fn hides(d: &[(&'static str, String)]) -> Option<&'static str> {
    let get = |k: &str| d.iter().rev().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
    if get("display") == Some("none") {
        return Some("display:none");
    }
    if get("visibility") == Some("hidden") {
        return Some("visibility:hidden");
    }
    if get("opacity").and_then(|o| o.parse::<f64>().ok()).is_some_and(|o| o < 0.05) {
        return Some("opacity:0");
    }
    if let (Some(c), Some(bg)) = (get("color"), get("background-color").or(get("background")))
        && c == bg
    {
        return Some("text colour equals background");
    }
    None
}

/// The font size an element sets: Some(true) tiny, Some(false) readable,
/// None when it inherits.
fn font_tiny(el: ElementRef<'_>, d: &[(&'static str, String)]) -> Option<bool> {
    if let Some((_, v)) = d.iter().rev().find(|(k, _)| *k == "font-size") {
        return Some(tiny(v));
    }
    if el.value().name() == "font" {
        return el.value().attr("size").map(|s| s.trim() == "0");
    }
    None
}

/// Characters a reader would see: no whitespace, no invisible fillers.
fn visible_chars(text: &str) -> usize {
    text.chars()
        .filter(|c| {
            !c.is_whitespace()
                && !matches!(c, '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
        })
        .count()
}

/// Class names that `@media` rules of the message's stylesheets refer to.
fn media_classes(doc: &Html) -> HashSet<String> {
    let mut out = HashSet::new();
    let Some(sel) = STYLES.as_ref() else { return out };
    for style in doc.select(sel) {
        let css: String = style.text().collect();
        let Some(at) = css.find("@media") else { continue };
        for piece in css[at..].split('.').skip(1) {
            let class: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !class.is_empty() && out.len() < MAX_MEDIA_CLASSES {
                out.insert(class);
            }
        }
    }
    out
}

/// Adds HTML_HIDDEN_TEXT when the document hides enough text.
pub(crate) fn hidden_text(doc: &Html, out: &mut Vec<Finding>) {
    let responsive = media_classes(doc);
    let mut blocks: Vec<(usize, &'static str)> = Vec::new();
    // Whether the first hidden block came before any visible text.
    let mut leading = None;
    let mut seen_visible = false;
    // Walk down once in document order, carrying whether the inherited
    // font is tiny. A hiding element counts once, as one block, and its
    // subtree is not walked again.
    let mut stack = vec![(doc.root_element(), false)];
    while let Some((el, inherited)) = stack.pop() {
        if matches!(el.value().name(), "style" | "script" | "head" | "title" | "template") {
            continue;
        }
        let d = el.value().attr("style").map(declarations).unwrap_or_default();
        let variant = el.value().classes().any(|c| responsive.contains(c));
        if let Some(how) = hides(&d)
            && !variant
        {
            let chars: usize = el.text().map(visible_chars).sum();
            if chars > 0 {
                leading.get_or_insert(!seen_visible);
                blocks.push((chars, how));
            }
            continue;
        }
        let small = font_tiny(el, &d).unwrap_or(inherited);
        let mut children = Vec::new();
        let mut own = 0;
        for child in el.children() {
            if let Some(c) = ElementRef::wrap(child) {
                children.push((c, small));
            } else if let Some(t) = child.value().as_text() {
                let n = visible_chars(t);
                if small {
                    own += n;
                } else if n > 0 {
                    seen_visible = true;
                }
            }
        }
        if own > 0 {
            leading.get_or_insert(!seen_visible);
            blocks.push((own, "tiny font"));
        }
        stack.extend(children.into_iter().rev());
    }
    let limit = if leading == Some(true) {
        LEADING_PREHEADER_MAX
    } else {
        PREHEADER_MAX
    };
    let skip = usize::from(blocks.first().is_some_and(|b| b.0 <= limit));
    let rest = &blocks[skip..];
    let total: usize = rest.iter().map(|b| b.0).sum();
    if total >= HIDDEN_MIN {
        let mut hows: Vec<&str> = rest.iter().map(|b| b.1).collect();
        hows.sort_unstable();
        hows.dedup();
        out.push(Finding::new(
            TAG_HIDDEN_TEXT,
            format!("{total} hidden characters in {} block(s): {}", rest.len(), hows.join(", ")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        hidden_text(&Html::parse_document(html), &mut out);
        out.into_iter().map(|f| f.tag).collect()
    }

    #[test]
    fn stuffed_text_is_hidden() {
        let salad = "word ".repeat(40);
        let stuffed = format!(
            "<p>Pay now</p><span style='font-size:0px'>{salad}</span><span style='color:#fff;background-color:#fff'>{salad}</span>"
        );
        assert_eq!(tags(&stuffed), vec![TAG_HIDDEN_TEXT]);
        // Past the longest preheader, even before any visible text.
        let big = format!("<div style='display: none'>{}</div><p>Hi</p>", "x".repeat(1200));
        assert_eq!(tags(&big), vec![TAG_HIDDEN_TEXT]);
        // A long hidden block after the visible text is no preheader.
        let late = format!("<p>Pay now</p><div style='display:none'>{}</div>", "word ".repeat(100));
        assert_eq!(tags(&late), vec![TAG_HIDDEN_TEXT]);
        // A preheader does not excuse a second, stuffed block.
        let two = format!("<div style='display:none'>Your order</div><p>Hi</p><div style='display:none'>{salad}{salad}</div>");
        assert_eq!(tags(&two), vec![TAG_HIDDEN_TEXT]);
    }

    /// Issue 14: MJML-style layouts set font-size:0 on cells whose text
    /// sets its own size again; that text is plainly visible.
    #[test]
    fn issue_14_font_size_zero_layout_cells_are_visible() {
        let para = "<p style=\"font-family:Arial;font-size:14px\">Our spring catalogue is here, with forty new products for your garden and home.</p>";
        let html = format!(
            "<table><tr><td style=\"font-size:0px;padding:5px\"><div class=\"mj-column\" style=\"font-size:0;display:inline-block\">{}</div></td></tr></table>",
            para.repeat(4)
        );
        assert!(tags(&html).is_empty());
    }

    /// Issue 14: mobile variants hidden by default and shown by a media
    /// query, a preheader padded with zero-width fillers, and a hidden
    /// tracking pixel.
    #[test]
    fn issue_14_responsive_variants_preheader_fillers_and_pixels() {
        let menu = "<a href='https://shop.example/a'>Women</a> <a href='https://shop.example/b'>Men</a> <a href='https://shop.example/c'>Kids and baby clothing</a> ".repeat(3);
        let html = format!(
            "<style>@media only screen and (max-width:480px) {{ .mobileVersion {{ display:block !important; }} }}</style>\
             <div style=\"display:none;max-height:0;overflow:hidden\">Spring sale: 20% off everything{}</div>\
             <div class=\"mobileVersion\" style=\"display:none\">{menu}</div>\
             <div class=\"desktop\">{menu}</div><img src=\"https://t.example/o.gif\" width=1 height=1 style=\"display:none\">",
            "&#847;&zwnj;&nbsp;".repeat(150)
        );
        assert!(tags(&html).is_empty());
        // A news site's preheader of several headlines, before the body.
        let news = format!(
            "<div style='display:none'>{}</div><p>Today</p>",
            "Headline of the day here. ".repeat(30)
        );
        assert!(tags(&news).is_empty());
        // The same block without the media rule is hidden text.
        let bare = html.replacen(".mobileVersion", ".other", 1);
        assert_eq!(tags(&bare), vec![TAG_HIDDEN_TEXT]);
    }
}
