//! Fuzz targets on stable Rust, run in `make test` for a fixed short budget
//! (FUZZ_ITERS / FUZZ_SECONDS; `make fuzz` runs them longer): message parse,
//! extraction through the local scanners, URLs, archives, QR decoding and
//! PDF reading.
//! Each starts from real-format seeds and checks invariants, not only "no
//! panic". The cargo-fuzz targets under fuzz/ call the same entry points.

use crate::common::{local_pipeline, mutate};
use mail_parser::MimeHeaders;
use postern::scan::archive::{Budget, Limits};
use postern::scan::attach;
use postern::scan::{InputOptions, ScanInput, pdf, qr, urls};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn opts() -> InputOptions {
    InputOptions {
        authserv_id: Some("mx.example.org".into()),
        ..Default::default()
    }
}

/// Every attachment's decoded bytes in the fixtures, by content type prefix.
fn fixture_attachments(prefix: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for raw in fixtures() {
        if let Some(m) = mail_parser::MessageParser::default().parse(&raw) {
            for a in m.attachments() {
                if a.content_type().is_some_and(|c| c.ctype().eq_ignore_ascii_case(prefix)) {
                    out.push(a.contents().to_vec());
                }
            }
        }
    }
    out
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    for (name, data) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
    buf.into_inner()
}

#[test]
fn fuzz_parse() {
    let o = opts();
    let mut seeds = fixtures();
    seeds.push(b"From: a@b\r\n\r\n".to_vec());
    seeds.push(Vec::new());
    let ran = mutate::run("parse", 0x9a45_e001, &seeds, 20_000, |data| {
        let input = ScanInput::parse(data.to_vec(), &o);
        assert_eq!(input.raw.as_slice(), data, "the raw message is kept as given");
        assert!(input.urls.len() <= urls::MAX_URLS, "URL bound");
        assert!(input.notes.len() <= 50, "note bound");
        let obs = input.observables();
        assert!(obs.len() <= postern::scan::input::MAX_OBSERVABLES);
    });
    assert!(ran >= seeds.len());
}

#[test]
fn fuzz_extract_through_local_scanners() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Every tag the code can emit, budgets included (the registry the
    // tags-to-scores test walks).
    let known: BTreeSet<&str> = postern::runtime::tags::all().into_iter().collect();
    let p = local_pipeline(opts());
    let ran = mutate::run("extract", 0x9a45_e002, &fixtures(), 5000, |data| {
        let d = rt.block_on(p.scan(data.to_vec()));
        for t in &d.tags {
            assert!(known.contains(t.as_str()), "tag {t} is not in any scanner's table");
        }
        assert!(d.score.is_finite(), "score {}", d.score);
    });
    assert!(ran > 0);
}

#[test]
fn fuzz_urls() {
    let seeds: Vec<Vec<u8>> = [
        "https://example.com/a?b=c#frag",
        "http://[::1]:8080/x",
        "https://xn--80ak6aa92e.com/login",
        "https://paypal.com@evil.test/login",
        "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fevil.test%2F&data=x",
        "https://urldefense.proofpoint.com/v2/url?u=https-3A__evil.test_a&d=x",
        "https://urldefense.com/v3/__https://evil.test/a__;!!x",
        "https://protect-eu.mimecast.com/s/abc?domain=evil.test",
        "see www.example.org/path and http://2130706433/ or https://ex%41mple.com",
        "mailto:a@b.c javascript:alert(1) data:text/html,<b>",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let ran = mutate::run("urls", 0x9a45_e003, &seeds, 20_000, |data| {
        let s = String::from_utf8_lossy(data);
        if let Some(u) = urls::normalise(&s) {
            let parsed = url::Url::parse(&u).expect("normalise returns a parseable URL");
            assert!(matches!(parsed.scheme(), "http" | "https"), "{u}");
            assert!(parsed.fragment().is_none(), "{u}");
            if let Some(h) = parsed.host_str() {
                let _ = urls::registrable(h);
            }
        }
        let mut set = BTreeSet::new();
        urls::from_text(&s, &mut set);
        assert!(set.len() <= urls::MAX_URLS);
        for u in &set {
            assert!(url::Url::parse(u).is_ok(), "{u}");
        }
    });
    assert!(ran > 0);
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

fn gz_of(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::GzBuilder::new()
        .filename("payload.exe")
        .write(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn sevenz_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(std::io::Cursor::new(Vec::new())).unwrap();
    for (name, data) in files {
        w.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(*data))
            .unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn fuzz_archives() {
    let exe: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff";
    let inner = zip_of(&[("invoice.exe", exe), ("readme.txt", b"hello")]);
    let tar = tar_of(&[("docs/a.txt", b"hi"), ("invoice.exe", exe), ("inner.zip", &inner)]);
    let seeds = vec![
        inner.clone(),
        zip_of(&[("nested.zip", &inner), ("a/b/c.js", b"WScript.Shell")]),
        zip_of(&[("big.bin", &vec![0u8; 64 * 1024])]),
        zip_of(&[]),
        tar.clone(),
        gz_of(&tar),
        gz_of(exe),
        sevenz_of(&[("invoice.exe", exe), ("inner.tar", &tar)]),
    ];
    // The name decides which lister is tried when the magic is damaged.
    let names = ["x.zip", "x.tar", "x.tgz", "x.gz", "x.7z", "x.rar", "x.iso", "x.bin"];
    let limits = Limits {
        // Small bounds so mutated inputs reach them.
        entries: 50,
        message_bytes: 4 * 1024 * 1024,
        ..Limits::DEFAULT
    };
    let mut n = 0usize;
    let ran = mutate::run("archives", 0x9a45_e004, &seeds, 20_000, |data| {
        n += 1;
        let mut budget = Budget::new(limits);
        let a = attach::describe(Some(names[n % names.len()]), "application/octet-stream", data, &mut budget);
        assert!(a.entries.len() <= limits.entries, "entry bound: {}", a.entries.len());
        assert!(budget.entries <= limits.entries, "entry budget: {}", budget.entries);
        assert!(budget.bytes <= limits.message_bytes, "byte budget: {}", budget.bytes);
        assert_eq!(a.size, data.len() as u64);
        assert_eq!(a.sha256.len(), 64);
    });
    assert!(ran > 0);
}

#[test]
fn fuzz_qr_images() {
    let mut seeds = fixture_attachments("image");
    assert!(!seeds.is_empty(), "the QR fixture has an image attachment");
    for (w, h) in [(1, 1), (33, 17), (64, 64)] {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([if (x * 7 + y * 3) % 5 == 0 { 0 } else { 255 }]));
        for fmt in [image::ImageFormat::Png, image::ImageFormat::Gif] {
            let mut out = std::io::Cursor::new(Vec::new());
            image::DynamicImage::ImageLuma8(img.clone())
                .to_rgba8()
                .write_to(&mut out, fmt)
                .unwrap();
            seeds.push(out.into_inner());
        }
    }
    let ran = mutate::run("qr", 0x9a45_e005, &seeds, 2000, |data| {
        let texts = qr::decode(data);
        assert!(texts.len() <= 8, "grid bound");
    });
    assert!(ran > 0);
}

/// The PDFs of the per-check fixtures (synthetic: links, a script, a QR
/// code drawn as a 1-bit image).
fn fixture_pdfs() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks");
    let mut out = Vec::new();
    for dir in ["attachments", "spoof"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let raw: String = text
                .lines()
                .skip_while(|l| l.starts_with('#'))
                .map(|l| format!("{l}\r\n"))
                .collect();
            if let Some(m) = mail_parser::MessageParser::default().parse(raw.as_bytes()) {
                out.extend(
                    m.attachments()
                        .filter(|a| a.contents().starts_with(b"%PDF"))
                        .map(|a| a.contents().to_vec()),
                );
            }
        }
    }
    out
}

#[test]
fn fuzz_pdf() {
    let seeds = fixture_pdfs();
    assert!(seeds.len() >= 4, "the PDF fixtures: {}", seeds.len());
    let ran = mutate::run("pdf", 0x5d1f_0c07, &seeds, 1500, |data| {
        let r = pdf::scan(data, 2);
        assert!(r.links.len() <= pdf::MAX_LINKS, "link bound");
        assert!(r.images_scanned <= 2, "the message's image budget");
        assert!(r.actions.len() <= 2);
    });
    assert!(ran > 0);
}
