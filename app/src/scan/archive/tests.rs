//! Archive listing: every format's entries, nesting across formats, and
//! bounded work for bombs (issue 18). Work is asserted, never time.

use super::*;
use crate::scan::attach::tests::zip_of;
use std::io::{Cursor, Write};

fn paths(entries: &[ArchiveEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

fn kinds(issues: &[Issue]) -> Vec<IssueKind> {
    issues.iter().map(|i| i.kind).collect()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz_of(data: &[u8], header_name: Option<&str>) -> Vec<u8> {
    let mut b = flate2::GzBuilder::new();
    if let Some(n) = header_name {
        b = b.filename(n);
    }
    let mut w = b.write(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub(crate) fn sevenz_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
    for (name, data) in files {
        w.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(*data))
            .unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn list_default(data: &[u8], name: &str) -> (Vec<ArchiveEntry>, Vec<Issue>, Budget) {
    let mut b = Budget::default();
    let (e, i) = list(data, name, &mut b);
    (e, i, b)
}

#[test]
fn lists_tar_tgz_gz_and_7z_entries() {
    let pe: &[u8] = b"MZ\x90\x00";
    let tar = tar_of(&[("docs/readme.txt", b"hi"), ("invoice.exe", pe)]);
    let (e, i, _) = list_default(&tar, "files.tar");
    assert_eq!(paths(&e), vec!["docs/readme.txt", "invoice.exe"]);
    assert!(i.is_empty(), "{i:?}");

    let (e, i, _) = list_default(&gz_of(&tar, None), "files.tgz");
    assert_eq!(paths(&e), vec!["files.tar", "files.tar!docs/readme.txt", "files.tar!invoice.exe"]);
    assert!(i.is_empty(), "{i:?}");

    let (e, _, _) = list_default(&gz_of(pe, Some("readme.txt")), "invoice.exe.gz");
    assert_eq!(paths(&e), vec!["invoice.exe", "readme.txt"], "both names a tool may extract to");

    let (e, i, _) = list_default(&sevenz_of(&[("a.txt", b"x"), ("invoice.exe", pe)]), "x.7z");
    assert_eq!(paths(&e), vec!["a.txt", "invoice.exe"]);
    assert!(i.is_empty(), "{i:?}");
}

#[test]
fn nested_archives_cross_formats() {
    let tgz = gz_of(&tar_of(&[("invoice.exe", b"MZ")]), None);
    let seven = sevenz_of(&[("inner.tgz", &tgz)]);
    // 7z (1) > gzip (2) > tar (3): all opened.
    let (e, i, b) = list_default(&seven, "pack.7z");
    assert_eq!(
        paths(&e),
        vec!["inner.tgz", "inner.tgz!inner.tar", "inner.tgz!inner.tar!invoice.exe"]
    );
    assert!(i.is_empty(), "{i:?}");
    assert!(b.bytes > 0, "the nested payloads were charged");
    // One zip more puts the tar at depth 4: reported, not followed.
    let (e, i, _) = list_default(&zip_of(&[("pack.7z", &seven)]), "mail.zip");
    assert_eq!(paths(&e), vec!["pack.7z", "pack.7z!inner.tgz"]);
    assert_eq!(kinds(&i), vec![IssueKind::Limit], "{i:?}");
}

#[test]
fn rar_disk_images_and_garbage_are_unreadable_not_clean() {
    let (_, i, _) = list_default(b"Rar!\x1a\x07\x01\x00rest of a rar", "invoice.rar");
    assert_eq!(kinds(&i), vec![IssueKind::Unreadable]);
    let mut iso = vec![0u8; 0x8010];
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    let (_, i, _) = list_default(&iso, "scan.iso");
    assert_eq!(kinds(&i), vec![IssueKind::Unreadable]);
    let (_, i, _) = list_default(b"not really", "invoice.7z");
    assert_eq!(kinds(&i), vec![IssueKind::Unreadable], "named 7z but unreadable");
    let (_, i, _) = list_default(b"\x1f\x8bbroken", "x.gz");
    assert_eq!(kinds(&i), vec![IssueKind::Unreadable]);
    let (e, i, _) = list_default(b"%PDF-1.7\n", "report.pdf");
    assert!(e.is_empty() && i.is_empty(), "not an archive: nothing to say");
}

/// Issue 18: a zip whose many entries each decompress to a big payload (the
/// 2,000 entries pointing at one 20 MB kernel) costs at most the budget.
#[test]
fn issue_18_decompression_budget_bounds_a_zip_bomb() {
    let kernel = vec![0u8; 1024 * 1024];
    let files: Vec<(String, &[u8])> = (0..30).map(|i| (format!("k{i}.zip"), kernel.as_slice())).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let bomb = zip_of(&files);
    assert!(bomb.len() < 1024 * 1024, "small on the wire");
    let limits = Limits {
        archive_bytes: 8 * 1024 * 1024,
        message_bytes: 12 * 1024 * 1024,
        ..Limits::DEFAULT
    };
    let mut b = Budget::new(limits);
    let (e, i) = list(&bomb, "bomb.zip", &mut b);
    assert_eq!(e.len(), 30, "every entry is still listed");
    assert!(b.bytes <= limits.archive_bytes, "decompressed {} bytes", b.bytes);
    assert!(i.iter().any(|i| i.kind == IssueKind::Limit && i.detail.contains("budget")), "{i:?}");
    // A second attachment of the same message gets only what is left.
    let (_, i2) = list(&bomb, "again.zip", &mut b);
    assert!(b.bytes <= limits.message_bytes, "decompressed {} bytes", b.bytes);
    assert!(i2.iter().any(|i| i.kind == IssueKind::Limit), "{i2:?}");
}

/// Issue 18: a 42.zip-style fan-out is bounded by depth and entries.
#[test]
fn issue_18_fan_out_bomb_is_bounded() {
    let mut layer = zip_of(&[("0.txt", &vec![0u8; 1024 * 1024])]);
    for _ in 0..5 {
        let names: Vec<String> = (0..4).map(|i| format!("{i}.zip")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), layer.as_slice())).collect();
        layer = zip_of(&files);
    }
    let mut b = Budget::default();
    let (e, i) = list(&layer, "42.zip", &mut b);
    // Depth 3 opened: 4 + 16 + 64 entries, nothing deeper.
    assert_eq!(e.len(), 4 + 16 + 64);
    assert!(b.bytes <= Limits::DEFAULT.archive_bytes);
    assert!(i.iter().any(|i| i.detail.contains("nesting")), "{i:?}");
}

#[test]
fn entry_budget_is_per_message() {
    let files: Vec<(String, &[u8])> = (0..30).map(|i| (format!("f{i}.txt"), &b"x"[..])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let z = zip_of(&files);
    let mut b = Budget::new(Limits {
        entries: 50,
        ..Limits::DEFAULT
    });
    let (e1, i1) = list(&z, "a.zip", &mut b);
    let (e2, i2) = list(&z, "b.zip", &mut b);
    assert_eq!((e1.len(), e2.len()), (30, 20));
    assert!(i1.is_empty());
    assert_eq!(kinds(&i2), vec![IssueKind::Limit]);
}

/// Legitimate containers: an Office file and a DMARC aggregate report.
#[test]
fn ordinary_containers_have_no_issues() {
    let docx = zip_of(&[("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"<w/>")]);
    let (e, i, _) = list_default(&docx, "letter.docx");
    assert_eq!(e.len(), 2);
    assert!(i.is_empty(), "{i:?}");
    let report = gz_of(b"<feedback></feedback>", Some("google.com!example.org!1!2.xml"));
    let (e, i, _) = list_default(&report, "google.com!example.org!1!2.xml.gz");
    assert!(!e.is_empty());
    assert!(i.is_empty(), "{i:?}");
}
