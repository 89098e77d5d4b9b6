//! HTML heuristics over every HTML body and HTML attachment:
//! - smuggling: a large base64 blob together with Blob / createObjectURL /
//!   msSaveOrOpenBlob (string pieces joined first), a `data:` URI carrying
//!   an executable type, or a `download` link saving an executable or an
//!   inline data:/blob: file;
//! - hidden text: zero or tiny fonts, `display:none`, `visibility:hidden`,
//!   text coloured like its background. One short hidden block (the usual
//!   newsletter preheader) is tolerated.

use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use scraper::{ElementRef, Html};
use std::time::Duration;

/// JavaScript assembling a file from an embedded blob.
pub const TAG_SMUGGLING: &str = "HTML_SMUGGLING";
/// A data: URI with an executable content type.
pub const TAG_DATA_URI_EXEC: &str = "HTML_DATA_URI_EXEC";
/// Text hidden from the reader.
pub const TAG_HIDDEN_TEXT: &str = "HTML_HIDDEN_TEXT";
/// A `download` link whose saved file is an executable, script, shortcut
/// or disk image (issue 18: `download="invoice.exe"`).
pub const TAG_DOWNLOAD_EXEC: &str = "HTML_DOWNLOAD_EXEC";
/// A `download` link to an inline `data:` or `blob:` file (issue 18).
pub const TAG_DATA_DOWNLOAD: &str = "HTML_DATA_DOWNLOAD";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[
    TAG_SMUGGLING,
    TAG_DATA_URI_EXEC,
    TAG_HIDDEN_TEXT,
    TAG_DOWNLOAD_EXEC,
    TAG_DATA_DOWNLOAD,
];

const MIN_BLOB: usize = 4096;
const BLOB_APIS: &[&str] = &["new blob(", "createobjecturl", "mssaveoropenblob", "mssaveblob"];
const EXEC_TYPES: &[&str] = &[
    "application/octet-stream",
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-ms-installer",
    "application/x-dosexec",
    "application/hta",
    "application/x-iso9660-image",
    "application/vnd.ms-htmlhelp",
    "application/x-sh",
    "application/java-archive",
    "application/zip",
    "application/x-zip-compressed",
];
/// Longest content type read after `data:` (the longest listed is 29).
const MAX_MIME: usize = 64;
/// Hidden text shorter than this in a single block is treated as a preheader.
const PREHEADER_MAX: usize = 300;
/// Hidden text below this many characters in total is noise.
const HIDDEN_MIN: usize = 80;

/// HTML heuristics scanner.
#[derive(Debug, Default)]
pub struct HtmlScanner;

fn longest_base64_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            cur += 1;
            best = best.max(cur);
        } else if !matches!(b, b'\r' | b'\n' | b' ' | b'"' | b'\'' | b'\\') {
            cur = 0;
        }
    }
    best
}

fn smuggling(html: &str, out: &mut Vec<Finding>) {
    // Issue 18: `"createObj"+"ectURL"` and a blob split into an array
    // literal are read as the one string they build.
    let joined = super::smuggle::join_js_strings(html);
    let lower = joined.to_ascii_lowercase();
    let apis: Vec<&str> = BLOB_APIS.iter().copied().filter(|a| lower.contains(a)).collect();
    if !apis.is_empty() {
        let run = longest_base64_run(&joined);
        if run >= MIN_BLOB {
            out.push(Finding::new(
                TAG_SMUGGLING,
                format!("{run}-char base64 blob with {}", apis.join(", ")),
            ));
        }
    }
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("data:") {
        rest = &rest[i + 5..];
        // Only content-type characters, and at most MAX_MIME of them: a body
        // of "data:data:data:…" must not cost its length squared (issue 18).
        let end = rest
            .bytes()
            .take(MAX_MIME)
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'+' | b'_'))
            .count();
        // Every byte counted is ASCII, so `end` is a char boundary.
        let mime = rest.get(..end).unwrap_or_default();
        if EXEC_TYPES.contains(&mime) {
            out.push(Finding::new(TAG_DATA_URI_EXEC, format!("data:{mime}")));
            break;
        }
    }
}

/// CSS declarations of an inline style, lower-cased, whitespace removed.
fn declarations(style: &str) -> Vec<(String, String)> {
    style
        .split(';')
        .filter_map(|d| d.split_once(':'))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().to_ascii_lowercase().replace(' ', "").replace("!important", ""),
            )
        })
        .collect()
}

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

fn hides(style: &str) -> Option<&'static str> {
    let d = declarations(style);
    let get = |k: &str| d.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if get("display") == Some("none") {
        return Some("display:none");
    }
    if get("visibility") == Some("hidden") {
        return Some("visibility:hidden");
    }
    if get("font-size").is_some_and(tiny) {
        return Some("tiny font");
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

/// How `el` itself hides its content, if it does.
fn hidden_how(el: ElementRef<'_>) -> Option<&'static str> {
    match el.value().attr("style").and_then(hides) {
        Some(h) => Some(h),
        None if el.value().name() == "font" && el.value().attr("size") == Some("0") => Some("font size 0"),
        None => None,
    }
}

fn hidden_text(html: &str, out: &mut Vec<Finding>) {
    // Only the bounded prefix becomes a tree (issue 18); the input builder
    // reports the cut as HTML_LIMIT_EXCEEDED.
    let doc = Html::parse_document(crate::scan::htmlbound::bound(html).html);
    let mut blocks: Vec<(usize, &'static str)> = Vec::new();
    // Walk down from the root and stop at the first hidden element of each
    // subtree: each hidden block counts once, at its outermost element, and
    // every node is visited once (checking every styled element's ancestors
    // cost nodes × depth).
    let mut stack = vec![doc.root_element()];
    while let Some(el) = stack.pop() {
        if let Some(how) = hidden_how(el) {
            let chars = el.text().map(|t| t.split_whitespace().map(str::len).sum::<usize>()).sum::<usize>();
            if chars > 0 {
                blocks.push((chars, how));
            }
            continue;
        }
        let children: Vec<ElementRef<'_>> = el.children().filter_map(ElementRef::wrap).collect();
        stack.extend(children.into_iter().rev());
    }
    let total: usize = blocks.iter().map(|b| b.0).sum();
    let preheader = blocks.len() == 1 && total <= PREHEADER_MAX;
    if !preheader && total >= HIDDEN_MIN {
        let mut hows: Vec<&str> = blocks.iter().map(|b| b.1).collect();
        hows.dedup();
        out.push(Finding::new(
            TAG_HIDDEN_TEXT,
            format!("{total} hidden characters in {} block(s): {}", blocks.len(), hows.join(", ")),
        ));
    }
}

impl Scanner for HtmlScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::HTML.id
    }
    fn timeout(&self) -> Duration {
        crate::scan::registry::HTML.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        crate::scan::registry::HTML.fail
    }
    fn cpu_bound(&self) -> bool {
        true
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for h in &input.html {
                smuggling(h, &mut out);
                hidden_text(h, &mut out);
            }
            super::smuggle::downloads(&input.downloads, &mut out);
            out.dedup_by(|a, b| a.tag == b.tag);
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        smuggling(html, &mut out);
        hidden_text(html, &mut out);
        out.into_iter().map(|f| f.tag).collect()
    }

    #[test]
    fn smuggling_needs_blob_and_api() {
        let blob = "QUJD".repeat(2000);
        assert_eq!(
            tags(&format!(
                "<script>var b=atob('{blob}');var u=URL.createObjectURL(new Blob([b]));</script>"
            )),
            vec![TAG_SMUGGLING]
        );
        assert!(
            tags(&format!("<img src='data:image/png;base64,{blob}'>")).is_empty(),
            "a big inline image is fine"
        );
        assert_eq!(
            tags("<a href=\"data:application/octet-stream;base64,TVqQ\">x</a>"),
            vec![TAG_DATA_URI_EXEC]
        );
    }

    /// Issue 18: the blob split into an array and the API name split into
    /// concatenated pieces.
    #[test]
    fn issue_18_split_smuggling_is_joined() {
        let pieces: Vec<String> = (0..40).map(|_| format!("\"{}\"", "QUJD".repeat(30))).collect();
        let html = format!(
            "<script>var p=[{}];var b=new window['Bl'+'ob']([atob(p.join(''))]);var u=URL[\"createObj\"+\"ectURL\"](b);</script>",
            pieces.join(",\n")
        );
        assert_eq!(tags(&html), vec![TAG_SMUGGLING]);
        // An ordinary script with short strings and a join is not smuggling.
        assert!(tags("<script>var a=['x','y'].join('-')+\"z\";</script>").is_empty());
    }

    /// Issue 18: `<a href="data:;base64,..." download="invoice.exe">`.
    #[test]
    fn issue_18_download_links() {
        use crate::scan::{InputOptions, ScanInput};
        let scan = |html: &str| {
            let raw = format!("From: a@b.test\r\nContent-Type: text/html\r\n\r\n{html}");
            let input = ScanInput::parse(raw.into_bytes(), &InputOptions::default());
            let mut out = Vec::new();
            super::super::smuggle::downloads(&input.downloads, &mut out);
            out.into_iter().map(|f| f.tag).collect::<Vec<_>>()
        };
        assert_eq!(
            scan("<a href=\"data:;base64,TVqQAAMAAAAEAAAA\" download=\"invoice.exe\">Invoice</a>"),
            vec![TAG_DOWNLOAD_EXEC, TAG_DATA_DOWNLOAD]
        );
        assert_eq!(
            scan("<a href=\"https://cdn.example.com/setup.msi\" download>Get it</a>"),
            vec![TAG_DOWNLOAD_EXEC]
        );
        // A newsletter offering its PDF for download is fine.
        assert!(scan("<a href=\"https://news.example.com/issue-12.pdf\" download>PDF</a>").is_empty());
    }

    #[test]
    fn data_uri_chains_are_read_one_type_at_a_time() {
        let chain = "data:".repeat(10_000);
        assert!(tags(&chain).is_empty());
        assert_eq!(
            tags(&format!("{chain}application/x-msdownload;base64,TVqQ")),
            vec![TAG_DATA_URI_EXEC]
        );
    }

    #[test]
    fn hidden_text_tolerates_one_preheader() {
        let pre = "<div style=\"display:none;max-height:0\">Your weekly digest: ten stories you should not miss this week, curated.</div><p>Hello</p>";
        assert!(tags(pre).is_empty());
        let salad = "word ".repeat(40);
        let stuffed = format!(
            "<p>Pay now</p><span style='font-size:0px'>{salad}</span><span style='color:#fff;background-color:#fff'>{salad}</span>"
        );
        assert_eq!(tags(&stuffed), vec![TAG_HIDDEN_TEXT]);
        let big = format!("<div style='display: none'>{}</div>", "x".repeat(400));
        assert_eq!(tags(&big), vec![TAG_HIDDEN_TEXT]);
    }
}
