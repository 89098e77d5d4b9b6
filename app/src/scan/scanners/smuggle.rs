//! HTML smuggling helpers for the HTML scanner (issue 18): JavaScript string
//! pieces joined before matching (`"createObj"+"ectURL"`, a base64 blob split
//! into an array), and `download` links that save an executable or an
//! inline (data:/blob:) file.

use super::attachments::{TAG_DISK_IMAGE, TAG_EXECUTABLE, TAG_LNK, TAG_SCRIPT, by_name};
use super::html::{TAG_DATA_DOWNLOAD, TAG_DOWNLOAD_EXEC};
use crate::domain::Finding;
use crate::scan::urls::Download;

fn is_quote(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'`')
}

/// Joins adjacent JavaScript string literals: a closing quote, `+` or `,`,
/// and an opening quote (whitespace allowed around) are removed, so
/// `"createObj" + "ectURL"` reads `"createObjectURL"` and
/// `["QUJD", "RUZH"]` reads `["QUJDRUZH"]`. Not a JavaScript parser: a
/// normalisation for the keyword and blob-length heuristics only.
pub(super) fn join_js_strings(s: &str) -> String {
    let b = s.as_bytes();
    let skip_ws = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        j
    };
    let mut out = String::with_capacity(s.len());
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        // Jump to the next quote: HTML bodies are long and quotes sparse.
        match b.get(i..).and_then(|rest| memchr::memchr3(b'"', b'\'', b'`', rest)) {
            Some(off) => i += off,
            None => break,
        }
        let j = skip_ws(i + 1);
        if b.get(j).is_some_and(|c| matches!(c, b'+' | b',')) {
            let k = skip_ws(j + 1);
            if b.get(k).copied().is_some_and(is_quote) {
                // i and k are ASCII quotes, so both are char boundaries.
                out.push_str(s.get(last..i).unwrap_or(""));
                i = k + 1;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(s.get(last..).unwrap_or(""));
    out
}

/// Download links that hand over an executable (by the saved name) or an
/// inline file (data: or blob: target).
pub(super) fn downloads(list: &[Download], out: &mut Vec<Finding>) {
    let exec = list
        .iter()
        .find(|d| by_name(&d.name).is_some_and(|t| matches!(t, TAG_EXECUTABLE | TAG_SCRIPT | TAG_LNK) || t == TAG_DISK_IMAGE));
    if let Some(d) = exec {
        out.push(Finding::new(TAG_DOWNLOAD_EXEC, format!("download=\"{}\"", d.name)));
    }
    let inline = list.iter().find(|d| {
        let h = d.href.to_ascii_lowercase();
        h.starts_with("data:") || h.starts_with("blob:")
    });
    if let Some(d) = inline {
        let scheme = d.href.split(':').next().unwrap_or("data");
        out.push(Finding::new(TAG_DATA_DOWNLOAD, format!("{scheme}: link saved as \"{}\"", d.name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_string_pieces() {
        assert_eq!(join_js_strings("URL[\"createObj\" + \"ectURL\"]"), "URL[\"createObjectURL\"]");
        assert_eq!(join_js_strings("['QUJD',\n 'RUZH', 'SUpL']"), "['QUJDRUZHSUpL']");
        assert_eq!(join_js_strings("a = 1 + 2; f(\"x\", y)"), "a = 1 + 2; f(\"x\", y)");
        assert_eq!(join_js_strings("\"é\"+\"ü\""), "\"éü\"");
    }
}
