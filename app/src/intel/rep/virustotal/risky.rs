//! Which attachments are worth a hash lookup: what runs, what unpacks to
//! something that runs, and the document and HTML formats that phishing
//! and droppers arrive in. Pictures, plain text and the like are not: the
//! free tier's four lookups a minute are kept for files that matter.

use crate::scan::attach::Attachment;

#[rustfmt::skip]
const RISKY_EXT: &[&[&str]] = &[
    // Executables and installers.
    &["exe", "scr", "com", "pif", "cpl", "dll", "sys", "msi", "msix", "msp", "appx", "appxbundle", "elf", "bin",
      "apk", "dmg", "pkg", "deb", "rpm", "jar", "class"],
    // Scripts.
    &["bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "sct", "reg", "msc", "xll",
      "chm", "sh", "py"],
    // Archives.
    &["zip", "rar", "7z", "gz", "tgz", "tar", "bz2", "xz", "zst", "cab", "ace", "arj", "lzh", "lz", "z", "uue"],
    // Disk images (mark-of-the-web bypass), shortcuts, OneNote.
    &["iso", "img", "vhd", "vhdx", "lnk", "url", "one", "onepkg"],
    // Office documents and PDF.
    &["doc", "docx", "docm", "dot", "dotx", "dotm", "xls", "xlsx", "xlsm", "xlsb", "xlt", "xltm", "xlam", "ppt",
      "pptx", "pptm", "pps", "ppsx", "ppsm", "potm", "ppam", "sldm", "rtf", "odt", "ods", "odp", "pdf"],
    // Credential-phishing pages and HTML smuggling.
    &["html", "htm", "shtml", "xhtml", "mht", "mhtml", "svg"],
];

/// Sniffed (or declared) types worth a lookup, whatever the name says.
#[rustfmt::skip]
const RISKY_MIME: &[&str] = &[
    "application/vnd.microsoft.portable-executable", "application/x-msdownload", "application/x-executable",
    "application/x-mach-binary", "application/x-elf", "application/x-sharedlib", "application/java",
    "application/java-archive", "application/vnd.android.package-archive", "application/x-shellscript",
    "text/x-shellscript", "application/x-rpm", "application/vnd.debian.binary-package",
    "application/zip", "application/x-zip-compressed", "application/vnd.rar", "application/x-rar-compressed",
    "application/x-7z-compressed", "application/gzip", "application/x-bzip2", "application/vnd.bzip3",
    "application/x-xz", "application/zstd", "application/x-tar", "application/x-compress", "application/x-lzip",
    "application/x-cpio", "application/x-unix-archive", "application/vnd.ms-cab-compressed",
    "application/x-iso9660-image", "application/x-qemu-disk", "application/x-ms-shortcut", "application/onenote",
    "application/x-ole-storage", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/rtf", "text/rtf", "application/pdf", "text/html", "image/svg+xml",
];

/// Type prefixes worth a lookup (the OOXML and ODF families, macro variants).
const RISKY_MIME_PREFIX: &[&str] = &[
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
    "application/vnd.ms-word.",
    "application/vnd.ms-excel.",
    "application/vnd.ms-powerpoint.",
];

/// Whether the attachment's sniffed type, declared type or extension is
/// one malware or phishing arrives in. Empty files are never looked up.
pub fn is_risky(a: &Attachment) -> bool {
    let mime_risky = |m: &str| {
        let m = m.split(';').next().unwrap_or(m).trim().to_ascii_lowercase();
        RISKY_MIME.contains(&m.as_str()) || RISKY_MIME_PREFIX.iter().any(|p| m.starts_with(p))
    };
    a.size > 0
        && (a.sniffed.as_deref().is_some_and(mime_risky)
            || mime_risky(&a.declared)
            || a.ext.as_deref().is_some_and(|e| RISKY_EXT.iter().any(|g| g.contains(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, declared: &str, sniffed: Option<&str>) -> Attachment {
        Attachment {
            name: Some(name.into()),
            ext: crate::scan::attach::extension(name),
            declared: declared.into(),
            sniffed: sniffed.map(str::to_string),
            size: 10,
            ..Default::default()
        }
    }

    #[test]
    fn risky_by_type_or_name() {
        let risky = [
            file("x.bin.jpg", "image/jpeg", Some("application/vnd.microsoft.portable-executable")),
            file("payload", "application/octet-stream", Some("application/x-7z-compressed")),
            file("Q3.XLSM", "application/octet-stream", Some("application/zip")),
            file(
                "plan.docx",
                "application/octet-stream",
                Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ),
            file("login", "text/html; charset=utf-8", None),
            file("shortcut.lnk", "application/octet-stream", None),
            file("notes.one", "application/octet-stream", None),
            file("disk.iso", "application/octet-stream", None),
            file("scan.pdf", "application/pdf", Some("application/pdf")),
        ];
        for a in &risky {
            assert!(is_risky(a), "{:?}", a.name);
        }
        let harmless = [
            file("photo.jpg", "image/jpeg", Some("image/jpeg")),
            file("notes.txt", "text/plain", None),
            file("invite.ics", "text/calendar", None),
            Attachment {
                size: 0,
                ..file("empty.exe", "application/octet-stream", None)
            },
        ];
        for a in &harmless {
            assert!(!is_risky(a), "{:?}", a.name);
        }
    }
}
