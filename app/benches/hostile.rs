//! `make bench`: worst-case cost of one hostile message (issue 18) through
//! the local pipeline (parse plus every local scanner, no network), against
//! the documented bound of 2 s of CPU per message on one core.
//!
//! The hostile set is generated here with a fixed seed, so every run sees
//! the same bytes: deeply nested HTML, noise images, a large styled-div
//! body, thousands of MIME parts, deep message/rfc822 nesting and more.
//! CPU time is the whole process's (`/proc/self/stat`), so work moved to
//! the blocking pool is counted, and so is the CPU of waited-for children:
//! the PDF rows run twice, in process and, as the daemon reads PDFs, in the
//! PDF worker (`postern pdf-worker`, under its kernel limits; its memory is
//! its own and not in the peak column). Results: bench/results/hostile.json.
// A benchmark that cannot set up should stop loudly, like a test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use base64::Engine;
use postern::config::PolicyConfig;
use postern::scan::scanners::{self, yara};
use postern::scan::{FailureMode, InputOptions, Pipeline, Policy, Scanner};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The documented bound: CPU seconds per message on one core.
const BOUND_CPU_S: f64 = 2.0;

fn local() -> Vec<Arc<dyn Scanner>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = scanners::local(&PolicyConfig::default(), &[]);
    v.push(Arc::new(
        yara::YaraScanner::load(&root.join("../rules/yara"), Duration::from_secs(10), FailureMode::Closed).expect("rules compile"),
    ));
    v
}

/// xorshift32 with a fixed seed: the same "noise" every run.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

fn html_message(body: &str) -> Vec<u8> {
    format!("From: a@hostile.test\r\nTo: b@example.org\r\nSubject: hostile\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}\r\n")
        .into_bytes()
}

fn with_attachment(name: &str, ctype: &str, data: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!(
        "From: a@hostile.test\r\nTo: b@example.org\r\nSubject: scan me\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --b\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename={name}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

fn noise_png(side: u32, rng: &mut Rng) -> Vec<u8> {
    let img = image::GrayImage::from_fn(side, side, |_, _| image::Luma([if rng.next() & 1 == 0 { 0 } else { 255 }]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn styled_divs(bytes: usize, rng: &mut Rng, nested: bool) -> String {
    let mut s = String::from("<html><body>");
    let mut open = 0usize;
    while s.len() < bytes {
        let hide = if rng.next().is_multiple_of(7) { "display:none;" } else { "" };
        s.push_str(&format!(
            "<div style=\"{hide}color:#{:06x};background-color:#ffffff;font-size:{}px;padding:2px\">word {} ",
            rng.next() & 0xff_ffff,
            8 + rng.next() % 10,
            rng.next()
        ));
        if nested {
            open += 1;
        } else {
            s.push_str("</div>");
        }
    }
    s.push_str(&"</div>".repeat(open));
    s
}

fn many_parts(n: usize) -> Vec<u8> {
    let mut s =
        String::from("From: a@hostile.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for i in 0..n {
        s.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f{i}.bin\r\n\r\npart {i}\r\n"
        ));
    }
    s.push_str("--b--\r\n");
    s.into_bytes()
}

fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut inner = String::from("From: x@hostile.test\r\nSubject: core\r\n\r\ncore\r\n");
    for i in 0..depth {
        inner = format!(
            "From: a@hostile.test\r\nSubject: level {i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n\
             --b{i}\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b{i}--\r\n"
        );
    }
    inner.into_bytes()
}

/// A PDF written by hand: `objects` are the bodies of objects 3.. (1 is
/// the catalog, 2 the page tree), with a correct cross-reference table.
fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    let head = [
        b"<</Type/Catalog/Pages 2 0 R>>".to_vec(),
        b"<</Type/Pages/Kids[]/Count 0>>".to_vec(),
    ];
    for body in head.iter().chain(objects) {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes());
    out
}

/// One array of bare numbers filling the PDF size bound (1 MiB): the
/// most memory lopdf allocates per byte of file.
fn pdf_numbers() -> Vec<u8> {
    pdf_of(&[numbers(1024 * 1024 - 4096)])
}

fn numbers(bytes: usize) -> Vec<u8> {
    let mut body = b"[".to_vec();
    while body.len() < bytes {
        body.extend_from_slice(b"1 ");
    }
    body.push(b']');
    body
}

/// 200 object streams of four 64 KiB arrays each: 256 KiB inflated from a
/// few hundred bytes, 128k values a stream.
fn pdf_object_streams() -> Vec<u8> {
    use std::io::Write;
    let member = numbers(64 * 1024);
    let streams: Vec<Vec<u8>> = (0..200u32)
        .map(|s| {
            let index: String = (0..4)
                .map(|m| format!("{} {} ", 1000 + s * 4 + m, m as usize * (member.len() + 1)))
                .collect();
            let mut content = index.clone().into_bytes();
            for _ in 0..4 {
                content.extend_from_slice(&member);
                content.push(b' ');
            }
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(&content).unwrap();
            let data = z.finish().unwrap();
            let mut body = format!(
                "<</Type/ObjStm/N 4/First {}/Filter/FlateDecode/Length {}>>stream\n",
                index.len(),
                data.len()
            )
            .into_bytes();
            body.extend_from_slice(&data);
            body.extend_from_slice(b"\nendstream");
            body
        })
        .collect();
    pdf_of(&streams)
}

/// 30,000 cross-reference entries all pointing at one 400 KB array: a
/// loader that parses per entry parses it 30,000 times.
fn pdf_same_offset() -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let at = out.len();
    out.extend_from_slice(b"1 0 obj\n");
    out.extend_from_slice(&numbers(400 * 1024));
    out.extend_from_slice(b"\nendobj\n");
    let xref = out.len();
    let n = 30_000;
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", n + 1).as_bytes());
    for _ in 0..n {
        out.extend_from_slice(format!("{at:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n", n + 1).as_bytes());
    out
}

/// The hostile set: (name, raw message).
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = Rng(0x2545_f491);
    let links: String = (0..50_000)
        .map(|i| format!("<a href=\"https://l{i}.hostile.test/p?{i}\">x</a>"))
        .collect();
    vec![
        ("nested_div_100k", html_message(&format!("<html><body>{}", "<div>".repeat(100_000)))),
        ("nested_div_1m", html_message(&format!("<html><body>{}", "<div>".repeat(1_000_000)))),
        ("nested_b_100k", html_message(&"<b>".repeat(100_000))),
        ("nested_table_20k", html_message(&"<table><tr><td>".repeat(20_000))),
        ("styled_divs_1_8mb", html_message(&styled_divs(1_800_000, &mut rng, false))),
        ("styled_divs_nested_1_8mb", html_message(&styled_divs(1_800_000, &mut rng, true))),
        ("data_uri_repeat", html_message(&"data:".repeat(400_000))),
        ("links_50k", html_message(&links)),
        (
            "noise_png_2048",
            with_attachment("scan.png", "image/png", &noise_png(2048, &mut rng)),
        ),
        (
            "noise_png_4096",
            with_attachment("scan.png", "image/png", &noise_png(4096, &mut rng)),
        ),
        ("mime_parts_5000", many_parts(5000)),
        ("pdf_numbers_1mb", with_attachment("numbers.pdf", "application/pdf", &pdf_numbers())),
        (
            "pdf_object_streams_200",
            with_attachment("streams.pdf", "application/pdf", &pdf_object_streams()),
        ),
        (
            "pdf_xref_same_offset",
            with_attachment("xref.pdf", "application/pdf", &pdf_same_offset()),
        ),
        ("rfc822_depth_50", nested_rfc822(50)),
    ]
}

/// CPU seconds used by this process and its waited-for children so far
/// (user + system), from `/proc/self/stat`; `None` where that is not
/// available.
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime.
    let mut ticks = 0.0;
    for i in 11..=14 {
        ticks += f.get(i)?.parse::<f64>().ok()?;
    }
    // USER_HZ is 100 on every Linux platform Postern ships for.
    Some(ticks / 100.0)
}

/// Peak resident memory since the last [`reset_peak`], MiB (`VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Starts a new peak (Linux: "5" to clear_refs resets VmHWM).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    // One runtime thread; the blocking pool's work is in the CPU figure.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let set = hostile();
    let p = Pipeline::new(local(), Policy::default_policy().expect("policy"), InputOptions::default());
    let worker = InputOptions {
        pdf_worker: Some(Arc::from(Path::new(env!("CARGO_BIN_EXE_postern")))),
        ..InputOptions::default()
    };
    let pw = Pipeline::new(local(), Policy::default_policy().expect("policy"), worker);
    let runs = set.iter().map(|(name, raw)| (name.to_string(), raw, &p)).chain(
        set.iter()
            .filter(|(name, _)| name.starts_with("pdf_"))
            .map(|(name, raw)| (format!("{name} (worker)"), raw, &pw)),
    );
    let mut rows = Vec::new();
    rt.block_on(async {
        let _ = p.scan(html_message("<p>warm up</p>")).await;
        for (name, raw, p) in runs {
            let size = raw.len();
            reset_peak();
            let (c0, t0) = (cpu_s(), Instant::now());
            let d = p.scan(raw.clone()).await;
            let wall = t0.elapsed().as_secs_f64();
            // Let an abandoned stage finish before the next message so its
            // CPU is charged here, not to the next row.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let cpu = match (c0, cpu_s()) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            };
            let rss = peak_rss_mib().unwrap_or(f64::NAN);
            let limits: Vec<String> = d
                .tags
                .iter()
                .filter(|t| t.ends_with("_LIMIT_EXCEEDED") || t.as_str() == "SCAN_BUDGET_EXCEEDED")
                .cloned()
                .collect();
            // The slowest scanner, to show where the time goes; the rest of
            // the wall time is parsing.
            let slowest = d
                .reports
                .iter()
                .max_by_key(|r| r.elapsed_ms)
                .map(|r| format!("{} {} ms", r.scanner, r.elapsed_ms))
                .unwrap_or_default();
            rows.push((
                name,
                size,
                wall,
                cpu,
                rss,
                d.verdict.to_string(),
                format!("{} [{slowest}]", limits.join(" ")),
            ));
        }
    });
    println!("hostile set, local pipeline ({profile} build), bound {BOUND_CPU_S} s CPU per message");
    println!(
        "{:<35} {:>10} {:>9} {:>9} {:>9} {:<11} limits",
        "message", "bytes", "wall s", "cpu s", "peak MiB", "verdict"
    );
    for (name, size, wall, cpu, rss, verdict, limits) in &rows {
        println!("{name:<35} {size:>10} {wall:>9.3} {cpu:>9.2} {rss:>9.1} {verdict:<11} {limits}");
    }
    let worst = rows.iter().map(|r| r.3.max(r.2)).fold(0.0, f64::max);
    let within = worst <= BOUND_CPU_S;
    println!(
        "worst case: {worst:.3} s (max of wall and CPU); bound {BOUND_CPU_S} s: {}",
        if within { "met" } else { "MISSED" }
    );
    let json_rows: Vec<String> = rows
        .iter()
        .map(|(name, size, wall, cpu, rss, verdict, limits)| {
            format!("{{\"name\":\"{name}\",\"bytes\":{size},\"wall_s\":{wall:.3},\"cpu_s\":{cpu:.2},\"peak_rss_mib\":{rss:.1},\"verdict\":\"{verdict}\",\"limits\":\"{limits}\"}}")
        })
        .collect();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    let _ = std::fs::create_dir_all(&out);
    let json = format!(
        "{{\"profile\":\"{profile}\",\"bound_cpu_s\":{BOUND_CPU_S},\"worst_s\":{worst:.3},\"rows\":[\n{}\n]}}\n",
        json_rows.join(",\n")
    );
    if let Err(e) = std::fs::write(out.join("hostile.json"), json) {
        eprintln!("cannot write results: {e}");
    }
}
