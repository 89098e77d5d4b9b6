//! Bounds what one HTML document can cost before a tree is built (issue 18:
//! 100,000 nested `<div>` took 837 s). html5ever's tree builder walks the
//! stack of open elements for many tags, so its cost grows with nodes times
//! depth; our own heuristics walk ancestors too. A pass with html5ever's
//! streaming tokenizer (linear, no tree) counts start tags and nesting, and
//! only the prefix within [`MAX_ELEMENTS`] and [`MAX_DEPTH`] is handed to the
//! tree builder. Hitting a bound is reported, never silently dropped.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
use std::cell::Cell;

/// Deepest nesting handed to the tree builder. Blink's HTML parser caps
/// DOM depth at 512 too (`kMaximumHTMLParserDOMTreeDepth`), so mail that
/// renders in a browser stays within it.
pub const MAX_DEPTH: usize = 512;
/// Start tags handed to the tree builder. The largest HTML body in the
/// modern ham corpus has 3,919 (its deepest nests 25); 1.8 MB of styled
/// `<div>`s has tens of thousands.
pub const MAX_ELEMENTS: usize = 20_000;
/// The tokenizer is fed this many bytes at a time; the cut falls on the
/// chunk boundary before a bound was crossed, so the prefix overshoots a
/// bound by at most one tag still open across that boundary.
const CHUNK: usize = 1024;

/// The part of a document that may be parsed into a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded<'a> {
    /// The prefix within the bounds (the whole document when none was hit).
    pub html: &'a str,
    /// Start tags the tokenizer saw before stopping.
    pub elements: usize,
    /// Deepest nesting it saw.
    pub depth: usize,
    /// Which bound was hit, for the finding's detail.
    pub limit: Option<String>,
}

/// Elements that never have content, so they never nest.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
];
/// Elements whose end tag is optional: the tree builder closes the open one
/// when the next starts (or ignores it out of context), so an unclosed run
/// does not nest. Counting them would cut legitimate sloppy HTML short.
const SELF_CLOSING_RUNS: &[&str] = &[
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rb", "rt", "rp",
];

#[derive(Default)]
struct Counter {
    elements: Cell<usize>,
    depth: Cell<usize>,
    max_depth: Cell<usize>,
    /// Depth at which an `<svg>` or `<math>` opened: inside foreign
    /// content `<x/>` really closes itself, in HTML it does not.
    foreign_at: Cell<Option<usize>>,
}

impl TokenSink for Counter {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        let name: &str = &tag.name;
        let nests = !VOID.contains(&name) && !SELF_CLOSING_RUNS.contains(&name);
        match tag.kind {
            TagKind::StartTag => {
                self.elements.set(self.elements.get() + 1);
                let foreign = self.foreign_at.get().is_some();
                if nests && !(foreign && tag.self_closing) {
                    if !foreign && matches!(name, "svg" | "math") {
                        self.foreign_at.set(Some(self.depth.get()));
                    }
                    self.depth.set(self.depth.get() + 1);
                    self.max_depth.set(self.max_depth.get().max(self.depth.get()));
                }
                // Like the tree builder, switch the tokenizer for raw text so
                // markup inside scripts and styles is not counted as tags.
                if foreign {
                    return TokenSinkResult::Continue;
                }
                match name {
                    "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                    "style" | "xmp" | "iframe" | "noembed" | "noframes" => TokenSinkResult::RawData(RawKind::Rawtext),
                    "textarea" | "title" => TokenSinkResult::RawData(RawKind::Rcdata),
                    "plaintext" => TokenSinkResult::Plaintext,
                    _ => TokenSinkResult::Continue,
                }
            }
            TagKind::EndTag => {
                if nests {
                    self.depth.set(self.depth.get().saturating_sub(1));
                    if self.foreign_at.get().is_some_and(|d| self.depth.get() <= d) {
                        self.foreign_at.set(None);
                    }
                }
                TokenSinkResult::Continue
            }
        }
    }
}

/// The prefix of `html` that stays within [`MAX_ELEMENTS`] and
/// [`MAX_DEPTH`]. Linear in the input; the tokenizer stops at the first
/// chunk that crosses a bound.
pub fn bound(html: &str) -> Bounded<'_> {
    bound_with(html, MAX_ELEMENTS, MAX_DEPTH)
}

fn bound_with(html: &str, max_elements: usize, max_depth: usize) -> Bounded<'_> {
    let tok = Tokenizer::new(Counter::default(), TokenizerOpts::default());
    let queue = BufferQueue::default();
    let mut start = 0;
    while start < html.len() {
        let mut end = (start + CHUNK).min(html.len());
        while !html.is_char_boundary(end) {
            end += 1;
        }
        queue.push_back(StrTendril::from_slice(&html[start..end]));
        let _ = tok.feed(&queue);
        let (n, d) = (tok.sink.elements.get(), tok.sink.max_depth.get());
        if n > max_elements || d > max_depth {
            let why = if d > max_depth {
                format!("HTML nested deeper than {max_depth} elements; only the first {start} bytes were parsed")
            } else {
                format!("HTML has more than {max_elements} elements; only the first {start} bytes were parsed")
            };
            return Bounded {
                html: &html[..start],
                elements: n,
                depth: d,
                limit: Some(why),
            };
        }
        start = end;
    }
    tok.end();
    Bounded {
        html,
        elements: tok.sink.elements.get(),
        depth: tok.sink.max_depth.get(),
        limit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("<html><body>{}x", "<div>".repeat(n))
    }

    #[test]
    fn issue_18_deep_nesting_is_cut_before_the_tree_is_built() {
        // Issue 18 (hostile input): 100,000 nested divs took 837 s.
        let html = nested(5 * MAX_DEPTH);
        let b = bound(&html);
        assert!(b.limit.as_deref().is_some_and(|l| l.contains("deeper")), "{b:?}");
        let kept = b.html.matches("<div>").count();
        assert!(kept <= MAX_DEPTH + 1, "{kept} nested divs reach the tree builder");
        assert!(kept > MAX_DEPTH - CHUNK / 5, "the cut is close to the bound, not at zero: {kept}");
        // The tree built from the prefix is bounded too.
        let doc = scraper::Html::parse_document(b.html);
        assert!(doc.tree.nodes().count() <= MAX_DEPTH + 10);
    }

    #[test]
    fn issue_18_too_many_elements_is_cut() {
        let html = "<p>a</p>".repeat(50) + &"<span>x</span>".repeat(200);
        let b = bound_with(&html, 100, MAX_DEPTH);
        assert!(b.limit.as_deref().is_some_and(|l| l.contains("more than 100 elements")), "{b:?}");
        assert!(b.html.matches('<').count() / 2 <= 101, "{}", b.html.len());
    }

    #[test]
    fn ordinary_mail_is_untouched() {
        // A newsletter shape: nested tables, unclosed <p>/<li>/<td>, void
        // elements, inline SVG with self-closing paths, markup in a script.
        let row = "<tr><td><p>Item<br><img src=x><p>more<ul><li>a<li>b</ul></td></tr>";
        let svg = format!("<svg>{}</svg>", "<path d='M0 0'/>".repeat(2000));
        let html = format!(
            "<html><head><style>div > p {{ color: red }}</style><script>var s='{}';</script></head><body>\
             <table><tbody>{}</tbody></table>{svg}</body></html>",
            "<div>".repeat(5000),
            row.repeat(600)
        );
        let b = bound(&html);
        assert_eq!(b.limit, None, "{:?}", (b.elements, b.depth));
        assert_eq!(b.html.len(), html.len());
        assert!(b.depth < 20, "{}", b.depth);
    }

    #[test]
    fn self_closing_divs_still_nest() {
        // In HTML `<div/>` does not close: the tree builder nests them.
        let html = "<div/>".repeat(3 * MAX_DEPTH);
        assert!(bound(&html).limit.is_some());
    }

    #[test]
    fn multibyte_text_never_splits_a_char() {
        let html = "é".repeat(3000) + &"<b>".repeat(2 * MAX_DEPTH);
        let b = bound(&html);
        assert!(b.limit.is_some());
        assert!(b.html.len() >= 6000);
    }
}
