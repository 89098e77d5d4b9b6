//! HTML heuristics over every HTML body and HTML attachment:
//! - smuggling: a large base64 blob together with Blob / createObjectURL /
//!   msSaveOrOpenBlob (string pieces joined first), a `data:` URI carrying
//!   an executable type, or a `download` link saving an executable or an
//!   inline data:/blob: file;
//! - hidden text (`hidden.rs`), calibrated on modern newsletters;
//! - a password field in the message itself (issue 14);
//! - an HTML or SVG attachment that runs something when opened (`active.rs`).

use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use scraper::{Html, Selector};
use std::time::Duration;

/// Form fields, parsed once per process.
static INPUTS: std::sync::LazyLock<Option<Selector>> = std::sync::LazyLock::new(|| Selector::parse("input").ok());

/// JavaScript assembling a file from an embedded blob.
pub const TAG_SMUGGLING: &str = "HTML_SMUGGLING";
/// A data: URI with an executable content type.
pub const TAG_DATA_URI_EXEC: &str = "HTML_DATA_URI_EXEC";
/// Text hidden from the reader (rules in `hidden.rs`).
pub const TAG_HIDDEN_TEXT: &str = super::hidden::TAG_HIDDEN_TEXT;
/// A password input in the message or an HTML/SVG attachment (issue 14).
pub const TAG_PASSWORD_FORM: &str = "HTML_PASSWORD_FORM";
/// A `download` link whose saved file is an executable, script, shortcut
/// or disk image (issue 18: `download="invoice.exe"`).
pub const TAG_DOWNLOAD_EXEC: &str = "HTML_DOWNLOAD_EXEC";
/// A `download` link to an inline `data:` or `blob:` file (issue 18).
pub const TAG_DATA_DOWNLOAD: &str = "HTML_DATA_DOWNLOAD";
/// An HTML or SVG attachment that runs something when opened (`active.rs`).
pub const TAG_HTML_ACTIVE: &str = super::active::TAG_HTML_ACTIVE;
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[
    TAG_SMUGGLING,
    TAG_DATA_URI_EXEC,
    TAG_HIDDEN_TEXT,
    TAG_DOWNLOAD_EXEC,
    TAG_DATA_DOWNLOAD,
    TAG_PASSWORD_FORM,
    TAG_HTML_ACTIVE,
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

/// A password field inside the message itself (issue 14): mail that asks
/// for a password in place, in its body or an HTML/SVG attachment.
pub(crate) fn password_form(doc: &Html, out: &mut Vec<Finding>) {
    let Some(sel) = INPUTS.as_ref() else { return };
    let found = doc
        .select(sel)
        .any(|i| i.value().attr("type").is_some_and(|t| t.trim().eq_ignore_ascii_case("password")));
    if found {
        out.push(Finding::new(TAG_PASSWORD_FORM, "a form field asks for a password"));
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
            }
            // Hidden text and password fields were found on the one tree
            // the input builder made of each body's bounded prefix.
            out.extend(input.html_findings.iter().cloned());
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
        let doc = Html::parse_document(html);
        super::super::hidden::hidden_text(&doc, &mut out);
        password_form(&doc, &mut out);
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
    }

    /// Issue 14: a login form inside the mail; a search box is fine.
    #[test]
    fn issue_14_password_forms() {
        assert_eq!(
            tags("<form action=\"https://evil.test/p\"><input name=e><input type=\"Password\" name=p></form>"),
            vec![TAG_PASSWORD_FORM]
        );
        assert!(tags("<form action=\"https://shop.example/search\"><input type=\"text\" name=q></form>").is_empty());
    }
}
