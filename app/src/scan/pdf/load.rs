//! lopdf keeps every object of a file in memory, 120 bytes a value, and
//! some of its work grows with what the file claims rather than with its
//! size (many cross-reference entries may point at one big object; an
//! object stream's index may list one offset many times). This module
//! bounds a load from outside: a size and stream count checked on the
//! bytes, and a load filter (lopdf calls it after parsing each object and
//! before unpacking an object stream) that keeps a budget and stops the
//! load when the work parsed goes past it.

use super::name;
use lopdf::{Document, LoadOptions, Object, Stream};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Largest PDF parsed. A file of bare numbers grows sixty-fold while it
/// loads (the hostile bench measured 130 MiB for 2 MiB), one file at a
/// time ([`LOADING`]); 1 MiB keeps that near 65 MiB. The TRAIN phishing's
/// PDFs: p99 0.7 MB, largest 1.5 MB.
pub const MAX_PDF_BYTES: usize = 1024 * 1024;
/// Largest size one stream may inflate to while loading (object and
/// cross-reference streams; a big one holds a few hundred objects in well
/// under a MiB).
const MAX_STREAM_BYTES: usize = 256 * 1024;
/// `stream` keywords per file (they cannot be escaped, so counting them
/// bounds how many streams lopdf may inflate). A long scanned document, an
/// image a page, can exceed it; it is then reported as not read.
pub(super) const MAX_STREAMS: usize = 256;
/// Values kept per file (nested ones counted, stream data at a value per
/// 120 bytes): about 48 MB of objects.
pub(super) const MAX_VALUES: usize = 400_000;
/// Values parsed per file, kept or refused, and objects handed to the
/// filter: past either the load stops.
const MAX_PARSED: usize = 4 * MAX_VALUES;
const MAX_CALLS: usize = 200_000;
/// Wall time for one load, the backstop for work between two filter calls.
const MAX_LOAD_TIME: Duration = Duration::from_secs(3);
/// Object streams unpacked per file, and members per object stream.
pub(super) const MAX_OBJECT_STREAMS: usize = 64;
const MAX_MEMBERS: usize = 10_000;

/// One file loads at a time: the bounds above are per file.
static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Clone, Copy)]
struct Budget {
    kept: usize,
    parsed: usize,
    calls: usize,
    object_streams: usize,
    refused: bool,
    start: Option<Instant>,
}

thread_local! {
    /// The current load's budget. lopdf's filter is a plain function, and
    /// without lopdf's `rayon` feature (off in Cargo.toml) it runs on the
    /// loading thread.
    static BUDGET: Cell<Budget> = const {
        Cell::new(Budget { kept: 0, parsed: 0, calls: 0, object_streams: 0, refused: false, start: None })
    };
}

/// Unwinds out of lopdf when the load goes past its budget (with
/// `resume_unwind`, which runs no panic hook: nothing is printed).
struct Stop;

/// A loaded document, and whether part of it was refused.
pub(super) struct Loaded {
    pub doc: Document,
    pub partial: bool,
}

/// Where a load runs, which decides what it may attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// In the daemon: only what the bounds below hold for.
    InProcess,
    /// In the PDF worker, under kernel limits (`super::worker`).
    Process,
}

/// Loads `data` within the bounds, or says why it was not loaded.
pub(super) fn load(data: &[u8], isolation: Isolation) -> Result<Loaded, String> {
    if data.len() > MAX_PDF_BYTES {
        return Err(format!("PDF over {MAX_PDF_BYTES} bytes not read"));
    }
    let streams = stream_keywords(data);
    if streams > MAX_STREAMS {
        return Err(format!("PDF with {streams} streams (over {MAX_STREAMS}) not read"));
    }
    // lopdf does not call the load filter for encrypted files, so none of
    // the budget would hold; they are reported instead (encrypted with an
    // empty password is also how some phishing hides its link). Object
    // streams and cross-reference streams are refused too: lopdf parses
    // each object-stream member to the end of its object, not to the next
    // member's offset, and may unpack a container without the filter (an
    // indirect /Length), so a kilobyte of nested arrays becomes gigabytes;
    // chains of cross-reference streams cost their entries before any
    // filter call. Classic files (PDF 1.4 style) are read; the others are
    // reported until lopdf bounds those paths itself. In the worker
    // process the kernel bounds them (memory, CPU), so they are read there.
    match declared_name(data, &[b"Encrypt", b"ObjStm", b"XRef"]) {
        _ if isolation == Isolation::Process => {}
        Some(b"Encrypt") => return Err("encrypted PDF not read".into()),
        Some(_) => return Err("PDF with object or cross-reference streams not read".into()),
        None => {}
    }
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        filter: Some(within_budget),
        ..LoadOptions::default()
    };
    // Every panic below is caught; a poisoned lock must still not stop
    // every later PDF.
    let _one = LOADING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    BUDGET.set(Budget {
        kept: 0,
        parsed: 0,
        calls: 0,
        object_streams: 0,
        refused: false,
        start: Some(Instant::now()),
    });
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Document::load_mem_with_options(data, options)));
    match loaded {
        Ok(Ok(doc)) => Ok(Loaded {
            doc,
            partial: BUDGET.get().refused,
        }),
        Ok(Err(e)) => Err(format!("PDF could not be read: {e}")),
        Err(payload) if payload.is::<Stop>() => Err(format!(
            "PDF reading stopped: over {MAX_PARSED} values, {MAX_CALLS} objects or {} s of parsing",
            MAX_LOAD_TIME.as_secs()
        )),
        Err(_) => Err("the PDF parser crashed on this file".into()),
    }
}

/// How much memory an object holds, in values.
fn weight(obj: &Object) -> usize {
    let mut n = 0;
    let mut stack = vec![obj];
    while let Some(o) = stack.pop() {
        n += 1;
        match o {
            Object::Array(items) => stack.extend(items),
            Object::Dictionary(d) => stack.extend(d.iter().map(|(_, v)| v)),
            Object::Stream(s) => {
                n += s.content.len() / 120;
                stack.extend(s.dict.iter().map(|(_, v)| v));
            }
            _ => {}
        }
    }
    n
}

/// lopdf's load filter: keeps objects within the budget, refuses object
/// streams past theirs (or with an index that would parse the same bytes
/// twice) before they are unpacked, and stops the load past the work
/// budget.
fn within_budget(id: (u32, u16), obj: &mut Object) -> Option<((u32, u16), Object)> {
    let mut b = BUDGET.get();
    let w = weight(obj);
    b.parsed += w;
    b.calls += 1;
    let late = b.start.is_some_and(|s| s.elapsed() > MAX_LOAD_TIME);
    if b.parsed > MAX_PARSED || b.calls > MAX_CALLS || late {
        BUDGET.set(b);
        std::panic::resume_unwind(Box::new(Stop));
    }
    let objstm = match &*obj {
        Object::Stream(s) if name(&s.dict, b"Type") == Some(b"ObjStm") => Some(s),
        _ => None,
    };
    let refuse = match objstm {
        Some(s) => b.object_streams >= MAX_OBJECT_STREAMS || !members_apart(s),
        None => false,
    } || b.kept + w > MAX_VALUES;
    if refuse {
        b.refused = true;
        BUDGET.set(b);
        return None;
    }
    b.kept += w;
    b.object_streams += usize::from(objstm.is_some());
    BUDGET.set(b);
    // lopdf keeps `obj` itself for an indirect object and the returned copy
    // for a member of an object stream, which is never a stream; so streams
    // (the large objects) are not copied.
    let kept = match obj {
        Object::Stream(_) => Object::Null,
        other => other.clone(),
    };
    Some((id, kept))
}

/// Whether an object stream's members sit one after another: at most
/// [`MAX_MEMBERS`], at strictly increasing offsets, so unpacking it parses
/// each byte once. (lopdf parses each listed member from its offset; an
/// index listing one offset many times would parse the same object again
/// and again.)
fn members_apart(stream: &Stream) -> bool {
    let Ok(first) = stream.dict.get(b"First").and_then(Object::as_i64) else {
        return false;
    };
    let Ok(content) = stream.decompressed_content_with_limit(MAX_STREAM_BYTES) else {
        return false;
    };
    let Some(index) = usize::try_from(first).ok().and_then(|f| content.get(..f)) else {
        return false;
    };
    let Ok(index) = std::str::from_utf8(index) else {
        return false;
    };
    let numbers: Option<Vec<usize>> = index.split_ascii_whitespace().map(|n| n.parse().ok()).collect();
    let Some(numbers) = numbers else { return false };
    let offsets: Vec<usize> = numbers.chunks(2).filter_map(|p| p.get(1).copied()).collect();
    offsets.len() <= MAX_MEMBERS && offsets.windows(2).all(|w| w[0] < w[1])
}

/// How many `stream` keywords (not `endstream`) end a line. lopdf allows
/// spaces and tabs before the line end, so they are skipped here too.
pub(super) fn stream_keywords(data: &[u8]) -> usize {
    memchr::memmem::find_iter(data, b"stream")
        .filter(|&at| {
            let rest = data[at + 6..].iter().find(|&&c| c != b' ' && c != b'\t');
            matches!(rest, Some(b'\r' | b'\n')) && !data[..at].ends_with(b"end")
        })
        .count()
}

/// The first name in the file, `#`-escapes decoded, that is one of
/// `keys` (the trailer and stream dictionaries are never compressed, so
/// the keys that matter are in plain sight). NUL ends a name, as lopdf
/// reads it.
pub(super) fn declared_name(data: &[u8], keys: &[&'static [u8]]) -> Option<&'static [u8]> {
    let longest = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    memchr::memchr_iter(b'/', data).find_map(|at| {
        let mut decoded = Vec::with_capacity(longest + 1);
        let mut i = at + 1;
        while decoded.len() <= longest {
            match data.get(i) {
                Some(b'#') => {
                    let hex = data.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(byte) => decoded.push(byte),
                        None => break,
                    }
                    i += 3;
                }
                Some(&c) if c != 0 && !c.is_ascii_whitespace() && !b"()<>[]{}/%".contains(&c) => {
                    decoded.push(c);
                    i += 1;
                }
                _ => break,
            }
        }
        keys.iter().copied().find(|k| decoded == *k)
    })
}
