//! Office Open XML attachments (Word, Excel and PowerPoint files: docx,
//! xlsx, pptx and their macro and template forms) are zip packages, and
//! phishing uses both things they can carry: a "shared invoice" whose one
//! line is a link, and, since 2023, a document whose only content is a QR
//! code. Links are the package's external relationships (`*/_rels/*.rels`,
//! read with `quick-xml`); pictures sit under `*/media/` and are searched
//! for QR codes like any attached image. The package is opened with the
//! `zip` crate, and every entry is bounded by what it really inflates to,
//! not by the size it declares.

use super::attach::Attachment;
use quick_xml::events::Event;
use std::io::{Cursor, Read};

/// Office files read per message.
pub const MAX_FILES: usize = 4;
/// Links kept per file.
pub const MAX_LINKS: usize = 200;
/// Zip entries looked at per file.
const MAX_ENTRIES: usize = 10_000;
/// Relationship parts read per file, and the largest one.
const MAX_RELS: usize = 64;
const MAX_RELS_BYTES: u64 = 256 * 1024;
/// Pictures looked at per file to find the ones worth searching.
const MAX_MEDIA_TRIES: usize = 32;

/// Relationship types whose external target Word or Excel fetches on
/// opening, without a click: remote template injection (CVE-2017-0199).
const FETCHED: &[&str] = &["attachedtemplate", "oleobject", "frame", "subdocument"];
/// URL schemes of protocol handlers that Office documents have used to run
/// code on opening; no ordinary document points at them.
const EXPLOIT_SCHEMES: &[&str] = &["mhtml:", "ms-msdt:", "search-ms:", "search:", "ms-officecmd:"];
/// Remote and exploit relationships kept per file.
const MAX_REMOTE: usize = 8;

/// Extensions of Office Open XML packages.
const EXTS: &[&str] = &[
    "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlam", "pptx", "pptm", "potx", "potm", "ppsx", "ppsm", "ppam", "sldx",
    "sldm",
];

/// What one Office file holds that the checks weigh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfficeScan {
    /// External targets of its relationships (hyperlinks, linked
    /// pictures and templates), as written.
    pub links: Vec<String>,
    /// Parts it fetches from the web when opened (a template, a frame, an
    /// embedded object), as "attachedTemplate https://…".
    pub remote: Vec<String>,
    /// Relationships that hand a URL to a Windows protocol handler known
    /// for running code (`mhtml:`, `ms-msdt:`: Follina, CVE-2022-30190).
    pub exploits: Vec<String>,
    /// Its pictures, for the QR search (at most the budget it was given).
    pub images: Vec<Vec<u8>>,
    /// Why the file was not (fully) read.
    pub limit: Option<String>,
}

/// Whether the attachment is an Office Open XML package: a zip, named or
/// sniffed as one.
pub fn is_office(a: &Attachment, data: &[u8]) -> bool {
    let sniffed = a
        .sniffed
        .as_deref()
        .is_some_and(|m| m.starts_with("application/vnd.openxmlformats-officedocument."));
    let named = a.ext.as_deref().is_some_and(|e| EXTS.contains(&e));
    data.starts_with(b"PK\x03\x04") && (sniffed || named)
}

/// Reads the package's links, and up to `images_left` of its pictures.
pub fn read(data: &[u8], images_left: usize) -> OfficeScan {
    let mut out = OfficeScan::default();
    let mut zip = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(z) => z,
        Err(e) => {
            out.limit = Some(format!("Office file is not a readable zip package: {e}"));
            return out;
        }
    };
    if zip.len() > MAX_ENTRIES {
        out.limit = Some(format!("Office file with more than {MAX_ENTRIES} parts; the rest was not read"));
    }
    let (mut rels, mut tries) = (0, 0);
    for i in 0..zip.len().min(MAX_ENTRIES) {
        // Encrypted or damaged parts are skipped; the archive listing has
        // already reported what could not be opened.
        let Ok(entry) = zip.by_index(i) else { continue };
        let Ok(name) = entry.name().map(|n| n.to_ascii_lowercase()) else {
            continue;
        };
        if name.ends_with(".rels") && rels < MAX_RELS {
            rels += 1;
            match bounded(entry, MAX_RELS_BYTES) {
                Some(xml) => relationships(&xml, &mut out),
                None => {
                    out.limit
                        .get_or_insert_with(|| format!("{name}: over {MAX_RELS_BYTES} bytes; its links were not read"));
                }
            }
        } else if is_picture(&name) && out.images.len() < images_left && tries < MAX_MEDIA_TRIES {
            tries += 1;
            if let Some(bytes) = bounded(entry, super::qr::MAX_IMAGE_BYTES as u64) {
                out.images.push(bytes);
            }
        }
    }
    out
}

/// The entry's bytes, if it inflates to at most `max`.
fn bounded(entry: impl Read, max: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    entry.take(max + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= max).then_some(buf)
}

/// A picture part the image decoder can read (not EMF/WMF vector art).
fn is_picture(name: &str) -> bool {
    name.contains("/media/")
        && [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"]
            .iter()
            .any(|e| name.ends_with(e))
}

/// Adds the external targets of one relationships part.
fn relationships(xml: &[u8], out: &mut OfficeScan) {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "Relationship" => {
                let (mut target, mut external, mut kind) = (None, false, String::new());
                for attr in e.attributes().flatten() {
                    match attr.key.local_name().as_ref() {
                        "Type" => kind = attr.value.rsplit('/').next().unwrap_or("").to_ascii_lowercase(),
                        "Target" => {
                            target = attr
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .ok()
                                .map(|v| v.trim().to_string())
                        }
                        "TargetMode" => external = attr.value.eq_ignore_ascii_case("External"),
                        _ => {}
                    }
                }
                if let Some(t) = target.filter(|t| external && !t.is_empty()) {
                    remote(&kind, &t, out);
                    if out.links.len() >= MAX_LINKS {
                        out.limit
                            .get_or_insert_with(|| format!("Office file with more than {MAX_LINKS} links; the rest were not checked"));
                        return;
                    }
                    if !out.links.contains(&t) {
                        out.links.push(t);
                    }
                }
            }
            // Broken XML ends the part; what was read before still counts.
            Ok(Event::Eof) | Err(_) => return,
            Ok(_) => {}
        }
        buf.clear();
    }
}

/// Records an external target that is fetched on opening, or that goes to
/// a code-running protocol handler.
fn remote(kind: &str, target: &str, out: &mut OfficeScan) {
    let lower = target.to_ascii_lowercase();
    let shown: String = target.chars().take(100).collect();
    let (list, what) = if EXPLOIT_SCHEMES.iter().any(|s| lower.starts_with(s)) || lower.contains("!x-usc:") {
        (&mut out.exploits, format!("{kind} {shown}"))
    } else if FETCHED.contains(&kind) && from_elsewhere(&lower) {
        (&mut out.remote, format!("{kind} {shown}"))
    } else {
        return;
    };
    if list.len() < MAX_REMOTE && !list.contains(&what) {
        list.push(what);
    }
}

/// Whether a (lower-cased) target is fetched from another machine: over
/// the web, or from a Windows share (`\\host\share`, `file://host/…`,
/// `file:////host/…`), which also hands that host the reader's NTLM
/// credentials. A path on the author's own disk (`file:///C:/…`,
/// `file:///Users/…`, `C:\…`) is not.
fn from_elsewhere(lower: &str) -> bool {
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("\\\\") || lower.starts_with("//") {
        return true;
    }
    let Some(rest) = lower.strip_prefix("file:") else {
        return false;
    };
    let path = rest.trim_start_matches(['/', '\\']);
    match rest.len() - path.len() {
        // file://host/share: the authority is a host.
        2 => {
            let host = path.split(['/', '\\']).next().unwrap_or("");
            !host.is_empty() && host != "localhost"
        }
        // file:///C:/… or file:///home/…: a local path.
        3 => false,
        // file:////host/share: a UNC path written as a URL.
        n => n >= 4,
    }
}

/// The signature of an OLE compound file (legacy .doc, .xls, .ppt).
const CFB_MAGIC: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";
/// Entries of a compound file that hold a VBA project: the `VBA` storage
/// (under `Macros` in Word, `_VBA_PROJECT_CUR` in Excel) and the project's
/// own stream.
const VBA_ENTRIES: &[&str] = &["vba", "_vba_project", "_vba_project_cur"];

/// Where an Office file keeps a VBA project, if it has one, whatever it is
/// called: a `vbaProject.bin` part in an Office Open XML package (a .docx
/// with macros is a renamed .docm), or a VBA storage in a legacy compound
/// file (.doc, .xls), which no name gives away.
pub fn vba_project(a: &Attachment, data: &[u8]) -> Option<String> {
    if let Some(e) = a.entries.iter().find(|e| {
        e.path
            .rsplit(['/', '!'])
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case("vbaproject.bin"))
    }) {
        return Some(e.path.clone());
    }
    if !data.starts_with(CFB_MAGIC) {
        return None;
    }
    // A broken compound file is only unread; the crate's errors are
    // expected, and a panic inside it must not end the parse.
    std::panic::catch_unwind(|| {
        let file = cfb::CompoundFile::open(Cursor::new(data)).ok()?;
        file.walk()
            .take(MAX_ENTRIES)
            .find(|e| VBA_ENTRIES.iter().any(|v| e.name().eq_ignore_ascii_case(v)))
            .map(|e| e.path().display().to_string())
    })
    .ok()
    .flatten()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scan::attach::tests::zip_of;

    pub(crate) const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://login.micros0ft.example/doc?a=1&amp;b=2" TargetMode="External"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.png"/>
</Relationships>"#;

    pub(crate) fn docx(rels: &str, media: &[(&str, &[u8])]) -> Vec<u8> {
        let mut files: Vec<(&str, &[u8])> = vec![
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w:document/>"),
            ("word/_rels/document.xml.rels", rels.as_bytes()),
        ];
        files.extend_from_slice(media);
        zip_of(&files)
    }

    #[test]
    fn external_links_and_pictures_are_read() {
        let png = b"\x89PNG\r\n\x1a\nnot really";
        let scan = read(&docx(RELS, &[("word/media/image1.png", png), ("word/media/image2.emf", b"x")]), 10);
        assert_eq!(scan.links, vec!["https://login.micros0ft.example/doc?a=1&b=2".to_string()]);
        assert_eq!(scan.images, vec![png.to_vec()]);
        assert_eq!(scan.limit, None);
        // No picture budget left: none taken.
        assert!(read(&docx(RELS, &[("word/media/image1.png", png)]), 0).images.is_empty());
    }

    /// Remote template injection and Follina: what Word fetches or runs on
    /// opening. A template on the author's own disk, and ordinary links,
    /// are neither.
    #[test]
    fn fetched_parts_and_exploit_handlers_are_told_apart() {
        let rel = |kind: &str, target: &str| {
            format!(
                "<Relationships><Relationship Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}\" Target=\"{target}\" TargetMode=\"External\"/></Relationships>"
            )
        };
        let template = read(&docx(&rel("attachedTemplate", "https://cdn.example/t.dotm"), &[]), 10);
        assert_eq!(template.remote, vec!["attachedtemplate https://cdn.example/t.dotm".to_string()]);
        assert!(template.exploits.is_empty());
        // A share elsewhere: Windows fetches it and signs in to it (NTLM).
        for target in [
            "\\\\203.0.113.9\\share\\t.dotm",
            "file://files.attacker.example/t/t.dotm",
            "file:////203.0.113.9/share/t.dotm",
            "//files.attacker.example/t.dotm",
        ] {
            let unc = read(&docx(&rel("attachedTemplate", target), &[]), 10);
            assert_eq!(
                unc.remote,
                vec![format!("attachedtemplate {}", target.to_ascii_lowercase())],
                "{target}"
            );
        }
        let follina = read(
            &docx(
                &rel("oleObject", "mhtml:https://x.example/a.html!x-usc:https://x.example/a.html"),
                &[],
            ),
            10,
        );
        assert_eq!(follina.exploits.len(), 1);
        assert!(follina.remote.is_empty());
        for (kind, target) in [
            ("attachedTemplate", "file:///C:/Users/alex/Templates/Letterhead.dotx"),
            ("attachedTemplate", "file:///Users/alex/Library/Group%20Containers/Normal.dotm"),
            ("attachedTemplate", "file://localhost/C:/Templates/Memo.dotx"),
            ("attachedTemplate", "C:\\Users\\alex\\Templates\\Memo.dotx"),
            ("hyperlink", "https://www.example.org/"),
        ] {
            let scan = read(&docx(&rel(kind, target), &[]), 10);
            assert!(scan.remote.is_empty() && scan.exploits.is_empty(), "{kind} {target}");
        }
    }

    #[test]
    fn internal_parts_are_not_links() {
        let rels = RELS.replace(" TargetMode=\"External\"", "");
        assert!(read(&docx(&rels, &[]), 10).links.is_empty());
    }

    #[test]
    fn broken_and_oversized_packages_are_limits_not_panics() {
        assert!(read(b"PK\x03\x04 not a zip at all", 10).limit.is_some());
        let huge = format!("<Relationships>{}</Relationships>", " ".repeat(MAX_RELS_BYTES as usize));
        let scan = read(&docx(&huge, &[]), 10);
        assert!(scan.links.is_empty());
        assert!(scan.limit.is_some_and(|l| l.contains("bytes")));
        let broken = read(
            &docx(
                "<Relationships><Relationship Target=\"https://a.example/\" TargetMode=\"External\"/><<<",
                &[],
            ),
            10,
        );
        assert_eq!(broken.links, vec!["https://a.example/".to_string()]);
        let many: String = (0..MAX_LINKS + 5)
            .map(|i| format!("<Relationship Target=\"https://l{i}.example/\" TargetMode=\"External\"/>"))
            .collect();
        let scan = read(&docx(&format!("<Relationships>{many}</Relationships>"), &[]), 10);
        assert_eq!(scan.links.len(), MAX_LINKS);
        assert!(scan.limit.is_some());
    }

    #[test]
    fn only_zips_named_or_sniffed_as_office_are_office() {
        let data = docx(RELS, &[]);
        let named = |name: &str| Attachment {
            ext: crate::scan::attach::extension(name),
            ..Default::default()
        };
        assert!(is_office(&named("invoice.docx"), &data));
        assert!(is_office(&named("sheet.XLSM"), &data));
        assert!(!is_office(&named("photos.zip"), &data));
        assert!(!is_office(&named("invoice.docx"), b"%PDF-1.7"));
    }
    /// A compound file with these storages (ending in `/`) and streams,
    /// each stream `len` bytes (past 4 KiB they leave the mini stream for
    /// the main allocation table).
    pub(crate) fn compound(paths: &[&str], len: usize) -> Vec<u8> {
        use std::io::Write as _;
        let mut f = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        for p in paths {
            match p.strip_suffix('/') {
                Some(dir) => f.create_storage_all(dir).unwrap(),
                None => f.create_stream(p).unwrap().write_all(&vec![7; len]).unwrap(),
            }
        }
        f.flush().unwrap();
        f.into_inner().into_inner()
    }

    #[test]
    fn damaged_compound_files_are_unread_never_a_crash() {
        let good = compound(&["/Macros/VBA/", "/Macros/VBA/_VBA_PROJECT", "/WordDocument"], 9000);
        let a = |data: &[u8]| crate::scan::attach::describe(Some("x.doc"), "application/msword", data, &mut Default::default());
        assert_eq!(vba_project(&a(&good), &good).as_deref(), Some("/Macros/VBA"));
        // Bytes changed in the header, the allocation tables and the
        // directory: each copy is read or refused, never a panic or a hang.
        let mut seed = 0x2545_f491_u32;
        for _ in 0..3000 {
            let mut bad = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let at = (seed as usize) % bad.len().min(4096);
                bad[at] = (seed >> 24) as u8;
            }
            let _ = vba_project(&a(&bad), &bad);
        }
    }
}
