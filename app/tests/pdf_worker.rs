//! The PDF worker (scan/pdf/worker.rs): the daemon reads each PDF in a
//! child `postern pdf-worker` under kernel limits, so files the in-process
//! reader must refuse (encrypted, object streams) are read, and a file that
//! makes the parser run away ends the child, never the daemon.

use postern::scan::pdf::{self, PdfScan};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const LINK: &str = "https://bit.ly/3xInvoice";
/// The worker's own wall limit, as the daemon passes it.
const WALL: Duration = Duration::from_secs(6);

fn postern() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_postern"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdf").join(name)).unwrap()
}

#[test]
fn encrypted_and_object_stream_files_are_read_in_the_worker_only() {
    for name in ["enc-rc4.pdf", "enc-aes128.pdf", "enc-aes256.pdf", "objstm.pdf"] {
        let data = fixture(name);
        let inside = pdf::scan(&data, 10);
        assert!(inside.links.is_empty() && inside.limit.is_some(), "{name} in process: {inside:?}");
        let child = pdf::scan_in_child(postern(), &data, 10, WALL);
        assert_eq!(child.links, [LINK], "{name}: {child:?}");
        assert_eq!(child.limit, None, "{name}: {child:?}");
    }
}

#[test]
fn a_classic_file_reads_the_same_in_both() {
    let raw =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks/attachments/pdf-script.test")).unwrap();
    let b64: String = raw
        .split("Content-Transfer-Encoding: base64")
        .nth(1)
        .unwrap()
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.starts_with("--"))
        .collect();
    use base64::Engine;
    let classic = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap();
    let inside = pdf::scan(&classic, 10);
    assert_eq!(inside.actions, ["JavaScript"], "{inside:?}");
    assert_eq!(pdf::scan_in_child(postern(), &classic, 10, WALL), inside);
}

/// An object stream whose members all start inside one nest of arrays:
/// lopdf parses each member to the end of the nest, so 90 members of a
/// 240 KB body are 90 copies of 120k values (over a gigabyte). The
/// in-process reader refuses object streams for this reason; in the worker
/// the address-space limit ends it.
fn object_stream_bomb() -> Vec<u8> {
    let depth = 90;
    let index: String = (0..depth).map(|k| format!("{} {k} ", 1000 + k)).collect();
    let mut content = index.clone().into_bytes();
    content.extend(std::iter::repeat_n(b'[', depth));
    for _ in 0..120_000 {
        content.extend_from_slice(b"1 ");
    }
    content.extend(std::iter::repeat_n(b']', depth));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&content).unwrap();
    let data = z.finish().unwrap();
    let mut stream = format!(
        "<</Type/ObjStm/N {depth}/First {}/Filter/FlateDecode/Length {}>>stream\n",
        index.len(),
        data.len()
    )
    .into_bytes();
    stream.extend_from_slice(&data);
    stream.extend_from_slice(b"\nendstream");
    let objects = [
        b"<</Type/Catalog/Pages 2 0 R>>".to_vec(),
        b"<</Type/Pages/Kids[]/Count 0>>".to_vec(),
        stream,
    ];
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes());
    out
}

#[test]
fn a_parser_bomb_ends_the_worker_at_its_limit_not_the_caller() {
    let bomb = object_stream_bomb();
    assert!(bomb.len() < 4096, "a small file: {}", bomb.len());
    let inside = pdf::scan(&bomb, 10);
    assert_eq!(inside.limit.as_deref(), Some("PDF with object or cross-reference streams not read"));
    let child = pdf::scan_in_child(postern(), &bomb, 10, WALL);
    let why = child.limit.clone().unwrap_or_default();
    assert!(
        why.contains("memory limit") || why.contains("CPU limit") || why.contains("stopped after"),
        "{child:?}"
    );
    assert!(child.links.is_empty(), "{child:?}");
    // This process is untouched and reads the next file.
    assert_eq!(pdf::scan_in_child(postern(), &fixture("enc-aes128.pdf"), 10, WALL).links, [LINK]);
}

#[test]
fn a_worker_that_hangs_is_killed_and_one_that_fails_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let hang = script("hang", "exec sleep 60");
    let crash = script("crash", "kill -SEGV $$");
    let data = fixture("enc-aes128.pdf");
    let start = Instant::now();
    let hung = pdf::scan_in_child(&hang, &data, 10, WALL);
    assert!(start.elapsed().as_secs() < 60, "killed, not waited for");
    assert_eq!(hung.limit.as_deref(), Some("PDF reading stopped after 6.0 s"), "{hung:?}");
    let crashed = pdf::scan_in_child(&crash, &data, 10, WALL);
    assert_eq!(
        crashed.limit.as_deref(),
        Some("the PDF reader process crashed (signal 11)"),
        "{crashed:?}"
    );
    // The message's remaining PDF time is the wall when it is shorter.
    let short = pdf::scan_in_child(&hang, &data, 10, Duration::from_secs(1));
    assert_eq!(short.limit.as_deref(), Some("PDF reading stopped after 1.0 s"), "{short:?}");
    // A child that leaves a grandchild holding the pipe: the whole group goes.
    let fork = script("fork", "sleep 60 &\nsleep 60");
    let forked = pdf::scan_in_child(&fork, &data, 10, Duration::from_secs(1));
    assert_eq!(forked.limit.as_deref(), Some("PDF reading stopped after 1.0 s"), "{forked:?}");
    let missing = pdf::scan_in_child(&dir.path().join("missing"), &data, 10, WALL);
    assert!(
        missing
            .limit
            .as_deref()
            .is_some_and(|l| l.starts_with("the PDF reader process could not start")),
        "{missing:?}"
    );
    let wrong = pdf::scan_in_child(Path::new("/bin/true"), &data, 10, WALL);
    assert!(
        wrong
            .limit
            .as_deref()
            .is_some_and(|l| l.starts_with("the PDF reader's answer was not understood")),
        "{wrong:?}"
    );
    let results: [&PdfScan; 4] = [&hung, &crashed, &missing, &wrong];
    assert!(results.iter().all(|s| s.links.is_empty()), "nothing half-trusted");
}

#[test]
fn the_scan_command_reads_an_encrypted_pdf_through_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("m.eml");
    let case = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks/spoof/pdf-encrypted-link-shortener.test"),
    )
    .unwrap();
    let message: String = case
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\r\n"))
        .collect();
    std::fs::write(&eml, message).unwrap();
    let out = std::process::Command::new(postern())
        .args(["scan", eml.to_str().unwrap(), "--json"])
        .env_clear()
        .env("POSTERN_UNSHORTEN", "false")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ATT_PDF_LINK_REDIRECT"), "{text}");
    assert!(text.contains("bit.ly"), "{text}");
    assert!(!text.contains("PDF_LIMIT_EXCEEDED"), "{text}");
}
