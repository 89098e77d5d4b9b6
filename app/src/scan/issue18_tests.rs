//! Issue 18, end to end through the local scanners and the shipped policy:
//! content that could not be fully inspected, archives of every format and
//! link evasions each get a verdict that does not pass, while ordinary mail
//! with the same shapes (many parts, forwarded mail, archives, tracked
//! links) gets none of the new tags.

use super::archive::tests::sevenz_of;
use super::attach::tests::zip_of;
use super::scanners::{attachments, html, spoof, structure};
use super::{InputOptions, Pipeline, Policy, Scanner};
use crate::domain::Verdict;
use base64::Engine;
use std::io::Write;
use std::sync::Arc;

const PE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00";

/// Tags added by issue 18 (limits and evasions).
const NEW_TAGS: &[&str] = &[
    structure::TAG_UNINSPECTED,
    attachments::TAG_ARCHIVE_LIMIT,
    attachments::TAG_ARCHIVE_UNREADABLE,
    spoof::TAG_URL_USERINFO,
    spoof::TAG_LINK_TEXT_MISMATCH,
    html::TAG_DOWNLOAD_EXEC,
    html::TAG_DATA_DOWNLOAD,
];

fn pipeline() -> Pipeline {
    let scanners: Vec<Arc<dyn Scanner>> = vec![
        Arc::new(structure::StructureScanner),
        Arc::new(attachments::AttachmentScanner),
        Arc::new(html::HtmlScanner),
        Arc::new(spoof::SpoofScanner::new(spoof::DEFAULT_PROTECTED.lines())),
    ];
    Pipeline::new(scanners, Policy::default_policy().unwrap(), InputOptions::default())
}

async fn decide(raw: String) -> (Verdict, Vec<String>) {
    let d = pipeline().scan(raw.into_bytes()).await;
    (d.verdict, d.tags)
}

fn attachment(name: &str, data: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    format!(
        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
    )
}

fn multipart(parts: &[String]) -> String {
    let mut m = String::from(
        "From: Billing <billing@shop.example>\r\nTo: a@example.org\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n",
    );
    for p in parts {
        m.push_str("--b0\r\n");
        m.push_str(p);
    }
    m.push_str("--b0--\r\n");
    m
}

fn text(body: &str) -> String {
    format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

fn has(tags: &[String], t: &str) -> bool {
    tags.iter().any(|x| x == t)
}

#[tokio::test]
async fn issue_18_exe_after_the_part_limit_is_quarantined() {
    let mut parts: Vec<String> = (0..super::input::MAX_PARTS).map(|i| text(&format!("part {i}"))).collect();
    parts.push(attachment("invoice.exe", PE));
    let (v, tags) = decide(multipart(&parts)).await;
    assert!(has(&tags, structure::TAG_UNINSPECTED), "{tags:?}");
    assert_eq!(v, Verdict::Quarantine, "{tags:?}");
}

#[tokio::test]
async fn issue_18_exe_in_deeply_nested_messages_is_quarantined() {
    let mut inner = multipart(&[text("see attached"), attachment("invoice.exe", PE)]);
    for _ in 0..7 {
        inner = format!(
            "From: fwd@shop.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--x--\r\n"
        );
    }
    let (v, tags) = decide(inner).await;
    assert!(has(&tags, structure::TAG_UNINSPECTED), "{tags:?}");
    assert_eq!(v, Verdict::Quarantine, "{tags:?}");
}

#[tokio::test]
async fn issue_18_exe_past_the_zip_depth_is_quarantined() {
    let mut z = zip_of(&[("invoice.exe", PE)]);
    for i in 0..4 {
        z = zip_of(&[(&format!("level{i}.zip"), &z)]);
    }
    let (v, tags) = decide(multipart(&[text("docs"), attachment("docs.zip", &z)])).await;
    assert!(has(&tags, attachments::TAG_ARCHIVE_LIMIT), "{tags:?}");
    assert_eq!(v, Verdict::Quarantine, "{tags:?}");
}

#[tokio::test]
async fn issue_18_every_archive_format_is_opened_or_distrusted() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("invoice.tar", tar("invoice.exe", PE), attachments::TAG_ARCHIVE_EXECUTABLE),
        ("invoice.tar.gz", gz(&tar("invoice.exe", PE)), attachments::TAG_ARCHIVE_EXECUTABLE),
        ("invoice.tgz", gz(&tar("invoice.exe", PE)), attachments::TAG_ARCHIVE_EXECUTABLE),
        ("invoice.exe.gz", gz(PE), attachments::TAG_ARCHIVE_EXECUTABLE),
        ("invoice.7z", sevenz_of(&[("invoice.exe", PE)]), attachments::TAG_ARCHIVE_EXECUTABLE),
        (
            "invoice.rar",
            b"Rar!\x1a\x07\x01\x00\x33\x92\xb5\xe5\x0a\x01\x05\x06\x00\x05\x01\x01\x80\x80\x00".to_vec(),
            attachments::TAG_ARCHIVE_UNREADABLE,
        ),
    ];
    for (name, data, want) in cases {
        let (v, tags) = decide(multipart(&[text("invoice"), attachment(name, &data)])).await;
        assert!(has(&tags, want), "{name}: {tags:?}");
        assert_eq!(v, Verdict::Quarantine, "{name}: {tags:?}");
    }
}

#[tokio::test]
async fn issue_18_userinfo_link_is_quarantined() {
    let raw = "From: Service <service@mail.evil.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Confirm your account at <a href=\"https://paypal.com@evil.test/login\">paypal.com</a></p>\r\n";
    let (v, tags) = decide(raw.to_string()).await;
    assert!(has(&tags, spoof::TAG_URL_USERINFO), "{tags:?}");
    assert_eq!(v, Verdict::Quarantine, "{tags:?}");
}

#[tokio::test]
async fn issue_18_smuggling_download_is_quarantined() {
    let raw = "From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<a href=\"data:;base64,TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA\" download=\"invoice.exe\">Open invoice</a>\r\n";
    let (v, tags) = decide(raw.to_string()).await;
    assert!(has(&tags, html::TAG_DOWNLOAD_EXEC), "{tags:?}");
    assert_eq!(v, Verdict::Quarantine, "{tags:?}");
}

/// Ordinary mail with the same shapes: a forwarded message, Office files
/// (zips), a DMARC report (gzip), a tarball of sources, and a newsletter
/// whose shown domain is tracked through its own subdomain.
#[tokio::test]
async fn ordinary_mail_gets_none_of_the_new_tags() {
    let docx = zip_of(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>")]);
    let fwd = multipart(&[text("original"), attachment("notes.txt", b"hello")]);
    let mut raw = multipart(&[
        text("Hi, the files and the report are attached."),
        attachment("letter.docx", &docx),
        attachment("google.com!example.org!1700000000!1700086400.xml.gz", &gz(b"<feedback/>")),
        attachment("project-1.2.tar.gz", &gz(&tar("project-1.2/README", b"readme"))),
        attachment("slides.7z", &sevenz_of(&[("slides.pdf", b"%PDF-1.7")])),
        format!("Content-Type: message/rfc822\r\n\r\n{fwd}\r\n"),
        "Content-Type: text/html\r\n\r\n<p>Shop at <a href=\"https://click.example.com/t/abc\">example.com</a> or \
         <a href=\"https://example.us1.list-manage.com/track/click?u=1\">read more</a>. \
         <a href=\"https://www.example.com/brochure.pdf\" download>Brochure</a></p>\r\n"
            .to_string(),
    ]);
    raw = raw.replace("Billing <billing@shop.example>", "Shop <news@example.com>");
    let (v, tags) = decide(raw).await;
    for t in NEW_TAGS {
        assert!(!has(&tags, t), "{t} on ordinary mail: {tags:?}");
    }
    assert_eq!(v, Verdict::Pass, "{tags:?}");
}
