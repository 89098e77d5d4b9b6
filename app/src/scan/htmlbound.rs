//! Bounds what one HTML document can cost while its tree is built (issue 18:
//! 100,000 nested `<div>` took 837 s). html5ever's tree builder walks its
//! stack of open elements (and its list of active formatting elements) for
//! many tags, so its cost grows with nodes times depth; our own heuristics
//! walk ancestors too. The document is fed to the tree builder in chunks,
//! and after each one the builder's own state is measured: the handles it
//! holds open and the nodes in the tree. Past [`MAX_DEPTH`] or
//! [`MAX_NODES`] the rest is not fed, the tree of the prefix is kept, and
//! the cut is reported, never silently dropped.
//!
//! Issue 21: this used to be a separate pass of html5ever's tokenizer
//! before the tree was built, which tokenized every HTML body twice. The
//! bound now comes from the one parse.

use html5ever::interface::Tracer;
use html5ever::tendril::{StrTendril, TendrilSink};
use scraper::{Html, HtmlTreeSink};
use std::cell::Cell;
use std::marker::PhantomData;

/// Deepest nesting the tree builder is fed past. Blink's HTML parser caps
/// DOM depth at 512 too (`kMaximumHTMLParserDOMTreeDepth`), so mail that
/// renders in a browser stays within it.
pub const MAX_DEPTH: usize = 512;
/// Tree nodes (elements, text, comments) the tree builder is fed past. The
/// largest HTML body in the modern ham corpus has 3,919 start tags (its
/// deepest nests 25); 1.8 MB of styled `<div>`s has tens of thousands.
pub const MAX_NODES: usize = 50_000;
/// The parser is fed this many bytes at a time; the bounds are checked
/// between chunks, so a bound is overshot by at most one chunk's tags.
const CHUNK: usize = 1024;

/// A document's tree, built within the bounds.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The tree of [`Parsed::html`].
    pub doc: Html,
    /// The prefix that was parsed (the whole document when no bound was hit).
    pub html: &'a str,
    /// Nodes in the tree.
    pub nodes: usize,
    /// Deepest the builder's open state was at a chunk boundary.
    pub depth: usize,
    /// Which bound was hit, for the finding's detail.
    pub limit: Option<String>,
}

/// Counts the handles the tree builder holds: the document, its open
/// elements, its active formatting elements (the other list whose length
/// makes it slow) and a few singletons.
struct Held<H>(Cell<usize>, PhantomData<H>);

impl<H> Tracer for Held<H> {
    type Handle = H;

    fn trace_handle(&self, _node: &Self::Handle) {
        self.0.set(self.0.get() + 1);
    }
}

/// The tree of `html`, or of its prefix within [`MAX_DEPTH`] and
/// [`MAX_NODES`].
pub fn parse(html: &str) -> Parsed<'_> {
    parse_with(html, MAX_NODES, MAX_DEPTH)
}

fn parse_with(html: &str, max_nodes: usize, max_depth: usize) -> Parsed<'_> {
    let mut parser = html5ever::parse_document(HtmlTreeSink::new(Html::new_document()), Default::default());
    let (mut start, mut depth, mut nodes, mut limit) = (0, 0, 0, None);
    while start < html.len() {
        let mut end = (start + CHUNK).min(html.len());
        while !html.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&html[start..end]));
        let held = Held(Cell::new(0), PhantomData);
        parser.tokenizer.sink.trace_handles(&held);
        depth = depth.max(held.0.get());
        nodes = parser.tokenizer.sink.sink.0.borrow().tree.nodes().len();
        start = end;
        if depth > max_depth || nodes > max_nodes {
            limit = Some(if depth > max_depth {
                format!("HTML nested deeper than {max_depth} elements; only the first {start} bytes were parsed")
            } else {
                format!("HTML has more than {max_nodes} nodes; only the first {start} bytes were parsed")
            });
            break;
        }
    }
    Parsed {
        doc: parser.finish(),
        html: &html[..start],
        nodes,
        depth,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("<html><body>{}x", "<div>".repeat(n))
    }

    #[test]
    fn issue_18_deep_nesting_is_cut_while_the_tree_is_built() {
        // Issue 18 (hostile input): 100,000 nested divs took 837 s.
        let html = nested(200 * MAX_DEPTH);
        let p = parse(&html);
        assert!(p.limit.as_deref().is_some_and(|l| l.contains("deeper")), "{:?}", p.limit);
        let kept = p.html.matches("<div>").count();
        // One chunk past the bound at most, and close to it, not at zero.
        assert!(kept <= MAX_DEPTH + CHUNK / 5 + 1, "{kept} nested divs reached the tree builder");
        assert!(kept > MAX_DEPTH, "{kept}");
        assert!(p.doc.tree.nodes().count() <= MAX_DEPTH + CHUNK / 5 + 10);
    }

    #[test]
    fn unclosed_formatting_elements_count_as_depth() {
        // The list of active formatting elements is rebuilt before each
        // text node: thousands of distinct unclosed <b> make that quadratic.
        let html = (0..20_000).map(|i| format!("<b id={i}>t")).collect::<String>();
        assert!(parse(&html).limit.is_some());
    }

    #[test]
    fn issue_18_too_many_nodes_is_cut() {
        let html = "<p>a</p>".repeat(50) + &"<span>x</span>".repeat(2000);
        let p = parse_with(&html, 100, MAX_DEPTH);
        assert!(
            p.limit.as_deref().is_some_and(|l| l.contains("more than 100 nodes")),
            "{:?}",
            p.limit
        );
        assert!(p.nodes <= 100 + 2 * CHUNK / 8, "{}", p.nodes);
        assert!(p.html.len() < html.len());
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
        let p = parse(&html);
        assert_eq!(p.limit, None, "{:?}", (p.nodes, p.depth));
        assert_eq!(p.html.len(), html.len());
        assert!(p.depth < 20, "{}", p.depth);
        // The same tree as a parse in one piece.
        let whole = Html::parse_document(&html);
        assert_eq!(p.doc.html(), whole.html());
    }

    #[test]
    fn self_closing_divs_still_nest() {
        // In HTML `<div/>` does not close: the tree builder nests them.
        let html = "<div/>".repeat(3 * MAX_DEPTH);
        assert!(parse(&html).limit.is_some());
    }

    #[test]
    fn multibyte_text_never_splits_a_char() {
        let html = "é".repeat(3000) + &"<b>".repeat(2 * MAX_DEPTH);
        let p = parse(&html);
        assert!(p.limit.is_some());
        assert!(p.html.len() >= 6000);
        assert!(p.doc.root_element().text().collect::<String>().starts_with("ééé"));
    }
}
