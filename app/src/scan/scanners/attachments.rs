//! Dangerous attachments, judged by sniffed type and extension: executables,
//! scripts, shortcuts, disk images, OneNote, macro Office files, double
//! extensions, executables or encryption inside archives, and archives
//! that could not be fully inspected (issue 18: a limit is evidence).

use crate::domain::Finding;
use crate::scan::archive::IssueKind;
use crate::scan::attach::{Attachment, extension};
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::time::Duration;

/// PE/ELF/Mach-O or an executable extension.
pub const TAG_EXECUTABLE: &str = "ATT_EXECUTABLE";
/// Script file.
pub const TAG_SCRIPT: &str = "ATT_SCRIPT";
/// Windows shortcut.
pub const TAG_LNK: &str = "ATT_LNK";
/// ISO/IMG/VHD container (mark-of-the-web bypass).
pub const TAG_DISK_IMAGE: &str = "ATT_DISK_IMAGE";
/// OneNote file.
pub const TAG_ONENOTE: &str = "ATT_ONENOTE";
/// Macro-enabled Office file.
pub const TAG_MACRO_OFFICE: &str = "ATT_MACRO_OFFICE";
/// `invoice.pdf.exe`.
pub const TAG_DOUBLE_EXT: &str = "ATT_DOUBLE_EXT";
/// Executable or script inside an archive.
pub const TAG_ARCHIVE_EXECUTABLE: &str = "ATT_ARCHIVE_EXECUTABLE";
/// Password-protected archive entries.
pub const TAG_ARCHIVE_ENCRYPTED: &str = "ATT_ARCHIVE_ENCRYPTED";
/// Content is an executable while the name or type says otherwise.
pub const TAG_TYPE_MISMATCH: &str = "ATT_TYPE_MISMATCH";
/// An archive listing was stopped by a depth, decompressed-bytes or entry
/// bound: what lies past it was never looked at (42.zip, zip bombs).
pub const TAG_ARCHIVE_LIMIT: &str = "ATT_ARCHIVE_LIMIT";
/// An archive could not be listed: corrupt, encrypted down to its file
/// list, or a format without a reader here (RAR, disk images, xz, …).
pub const TAG_ARCHIVE_UNREADABLE: &str = "ATT_ARCHIVE_UNREADABLE";
/// A PDF with an action that runs something: JavaScript, or Launch (a
/// program or file on the reader's machine).
pub const TAG_PDF_SCRIPT: &str = "ATT_PDF_SCRIPT";
/// An Office file that fetches a template, frame or object from the web
/// when opened (remote template injection).
pub const TAG_OFFICE_REMOTE: &str = "ATT_OFFICE_REMOTE_TEMPLATE";
/// An Office file pointing at a protocol handler used to run code on
/// opening (`mhtml:`, `ms-msdt:`: Follina).
pub const TAG_OFFICE_EXPLOIT: &str = "ATT_OFFICE_EXPLOIT";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[
    TAG_ARCHIVE_LIMIT,
    TAG_PDF_SCRIPT,
    TAG_OFFICE_REMOTE,
    TAG_OFFICE_EXPLOIT,
    TAG_ARCHIVE_UNREADABLE,
    TAG_EXECUTABLE,
    TAG_SCRIPT,
    TAG_LNK,
    TAG_DISK_IMAGE,
    TAG_ONENOTE,
    TAG_MACRO_OFFICE,
    TAG_DOUBLE_EXT,
    TAG_ARCHIVE_EXECUTABLE,
    TAG_ARCHIVE_ENCRYPTED,
    TAG_TYPE_MISMATCH,
];

const EXECUTABLE: &[&str] = &[
    "exe",
    "scr",
    "com",
    "pif",
    "cpl",
    "msi",
    "msix",
    "msp",
    "dll",
    "sys",
    "appx",
    "appxbundle",
    "elf",
    "app",
    "gadget",
    "application",
];
const SCRIPT: &[&str] = &[
    "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "jar", "reg", "sct", "msc", "xll", "chm",
];
const DISK: &[&str] = &["iso", "img", "vhd", "vhdx"];
const MACRO: &[&str] = &["docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm"];
const DOCUMENT: &[&str] = &[
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "rtf", "jpg", "jpeg", "png", "gif", "html", "htm", "zip",
];
const EXEC_MIMES: &[&str] = &[
    "application/x-msdownload",
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-mach-binary",
    "application/x-elf",
];

/// Classifies a file name (without contents).
pub(crate) fn by_name(name: &str) -> Option<&'static str> {
    let ext = extension(name)?;
    let e = ext.as_str();
    if EXECUTABLE.contains(&e) {
        Some(TAG_EXECUTABLE)
    } else if SCRIPT.contains(&e) {
        Some(TAG_SCRIPT)
    } else if e == "lnk" || e == "url" {
        Some(TAG_LNK)
    } else if DISK.contains(&e) {
        Some(TAG_DISK_IMAGE)
    } else if e == "one" || e == "onepkg" {
        Some(TAG_ONENOTE)
    } else if MACRO.contains(&e) {
        Some(TAG_MACRO_OFFICE)
    } else {
        None
    }
}

fn double_ext(name: &str) -> bool {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).to_ascii_lowercase();
    let parts: Vec<&str> = base.split('.').collect();
    parts.len() >= 3
        && DOCUMENT.contains(&parts[parts.len() - 2])
        && by_name(&base).is_some_and(|t| t == TAG_EXECUTABLE || t == TAG_SCRIPT || t == TAG_LNK)
}

fn check(a: &Attachment, out: &mut Vec<Finding>) {
    let label = a.name.clone().unwrap_or_else(|| format!("unnamed {}", a.declared));
    let sniffed_exec = a.sniffed.as_deref().is_some_and(|m| EXEC_MIMES.contains(&m));
    let named = a.name.as_deref().and_then(by_name);
    if let Some(tag) = named {
        out.push(Finding::new(tag, label.clone()));
    }
    if sniffed_exec && named != Some(TAG_EXECUTABLE) {
        out.push(Finding::new(
            TAG_EXECUTABLE,
            format!("{label} is {}", a.sniffed.as_deref().unwrap_or("")),
        ));
        out.push(Finding::new(TAG_TYPE_MISMATCH, format!("{label} declared {}", a.declared)));
    }
    if !sniffed_exec && named.is_none() && a.sniffed.as_deref() == Some("application/x-iso9660-image") {
        out.push(Finding::new(TAG_DISK_IMAGE, label.clone()));
    }
    if a.name.as_deref().is_some_and(double_ext) {
        out.push(Finding::new(TAG_DOUBLE_EXT, label.clone()));
    }
    let inner: Vec<&str> = a
        .entries
        .iter()
        .filter(|e| by_name(&e.path).is_some_and(|t| matches!(t, TAG_EXECUTABLE | TAG_SCRIPT | TAG_LNK | TAG_DISK_IMAGE)))
        .map(|e| e.path.as_str())
        .take(5)
        .collect();
    if !inner.is_empty() {
        out.push(Finding::new(TAG_ARCHIVE_EXECUTABLE, format!("{label}: {}", inner.join(", "))));
    }
    if a.entries.iter().any(|e| e.encrypted) {
        out.push(Finding::new(TAG_ARCHIVE_ENCRYPTED, label.clone()));
    }
    for (kind, tag) in [
        (IssueKind::Limit, TAG_ARCHIVE_LIMIT),
        (IssueKind::Unreadable, TAG_ARCHIVE_UNREADABLE),
    ] {
        let details: Vec<&str> = a
            .issues
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| i.detail.as_str())
            .take(3)
            .collect();
        if !details.is_empty() {
            out.push(Finding::new(tag, format!("{label}: {}", details.join("; "))));
        }
    }
}

/// Attachment scanner.
#[derive(Debug, Default)]
pub struct AttachmentScanner;

impl Scanner for AttachmentScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::ATTACHMENTS.id
    }
    fn timeout(&self) -> Duration {
        crate::scan::registry::ATTACHMENTS.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        crate::scan::registry::ATTACHMENTS.fail
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
            for a in &input.attachments {
                check(a, &mut out);
            }
            // By content: a legacy .doc or a renamed .docm says nothing by
            // name; a file whose name already said it is not counted twice.
            if !input.office_macros.is_empty() && !out.iter().any(|f| f.tag == TAG_MACRO_OFFICE) {
                out.push(Finding::new(TAG_MACRO_OFFICE, input.office_macros.join(", ")));
            }
            if !input.pdf_actions.is_empty() {
                out.push(Finding::new(TAG_PDF_SCRIPT, input.pdf_actions.join(", ")));
            }
            if !input.office_remote.is_empty() {
                out.push(Finding::new(TAG_OFFICE_REMOTE, input.office_remote.join(", ")));
            }
            if !input.office_exploits.is_empty() {
                out.push(Finding::new(TAG_OFFICE_EXPLOIT, input.office_exploits.join(", ")));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::archive::Budget;
    use crate::scan::attach::{describe, tests::zip_of};
    use crate::scan::office::tests::compound;

    fn tags(name: &str, declared: &str, data: &[u8]) -> Vec<String> {
        let a = describe(Some(name), declared, data, &mut Budget::default());
        let mut out = Vec::new();
        check(&a, &mut out);
        out.into_iter().map(|f| f.tag).collect()
    }

    #[test]
    fn table() {
        let pe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE\x00\x00";
        assert_eq!(tags("setup.exe", "application/octet-stream", pe), vec![TAG_EXECUTABLE]);
        assert_eq!(tags("invoice.pdf.exe", "application/pdf", pe), vec![TAG_EXECUTABLE, TAG_DOUBLE_EXT]);
        assert_eq!(tags("photo.jpg", "image/jpeg", pe), vec![TAG_EXECUTABLE, TAG_TYPE_MISMATCH]);
        assert_eq!(tags("run.js", "text/plain", b"eval(1)"), vec![TAG_SCRIPT]);
        assert_eq!(tags("open.lnk", "application/octet-stream", b"L\x00\x00\x00"), vec![TAG_LNK]);
        // Disk images have no reader here: their contents are uninspected.
        assert_eq!(
            tags("disk.iso", "application/octet-stream", b"\x00"),
            vec![TAG_DISK_IMAGE, TAG_ARCHIVE_UNREADABLE]
        );
        assert_eq!(tags("notes.one", "application/octet-stream", b"\x00"), vec![TAG_ONENOTE]);
        assert_eq!(
            tags("budget.xlsm", "application/octet-stream", &zip_of(&[("xl/vbaProject.bin", b"x")])),
            vec![TAG_MACRO_OFFICE]
        );
        // A zip that does not open is uninspected content (issue 18).
        assert_eq!(
            tags("budget.xlsm", "application/octet-stream", b"PK\x03\x04"),
            vec![TAG_MACRO_OFFICE, TAG_ARCHIVE_UNREADABLE]
        );
        assert_eq!(
            tags("scan.zip", "application/zip", &zip_of(&[("scan.pdf.exe", pe)])),
            vec![TAG_ARCHIVE_EXECUTABLE]
        );
        assert!(
            tags("report.pdf", "application/pdf", b"%PDF-1.7\n").is_empty(),
            "ordinary PDFs are clean"
        );
        assert!(tags("a.b.c.txt", "text/plain", b"hi").is_empty());
    }

    /// Tags of the whole scanner over a message with one attachment.
    fn scanned(name: &str, data: &[u8]) -> Vec<String> {
        use base64::Engine as _;
        let raw = format!(
            "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
             Content-Type: application/octet-stream; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            base64::engine::general_purpose::STANDARD.encode(data)
        );
        let input = ScanInput::parse(raw.into_bytes(), &crate::scan::InputOptions::default());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(AttachmentScanner.scan(&input))
            .unwrap()
            .into_iter()
            .map(|f| f.tag)
            .collect()
    }

    #[test]
    fn macros_are_found_by_content_whatever_the_name() {
        // Legacy Word and Excel keep VBA in a storage no name shows.
        let word = compound(&["/WordDocument", "/Macros/VBA/", "/Macros/VBA/_VBA_PROJECT", "/Macros/PROJECT"], 1);
        assert_eq!(scanned("invoice.doc", &word), vec![TAG_MACRO_OFFICE]);
        let excel = compound(&["/Workbook", "/_VBA_PROJECT_CUR/VBA/", "/_VBA_PROJECT_CUR/VBA/dir"], 1);
        assert_eq!(scanned("statement.xls", &excel), vec![TAG_MACRO_OFFICE]);
        // A .docm renamed .docx.
        let renamed = zip_of(&[("[Content_Types].xml", b"<Types/>"), ("word/vbaProject.bin", b"x")]);
        assert_eq!(scanned("letter.docx", &renamed), vec![TAG_MACRO_OFFICE]);
        // Named macro-enabled and holding one: one finding, not two.
        assert_eq!(
            scanned("budget.xlsm", &zip_of(&[("xl/vbaProject.bin", b"x")])),
            vec![TAG_MACRO_OFFICE]
        );
        // Ordinary legacy documents, and a broken compound file, are clean.
        assert!(
            scanned(
                "minutes.doc",
                &compound(&["/WordDocument", "/1Table", "/\u{5}SummaryInformation"], 1)
            )
            .is_empty()
        );
        assert!(scanned("broken.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 truncated").is_empty());
    }
}
