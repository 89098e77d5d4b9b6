//! PDF attachments (issue 14): a PDF is where a phishing link hides from
//! checks that read only the body. 3.6% of the TRAIN phishing carries a
//! PDF, four in five of them with a clickable link (a shortener, a shared
//! document, a redirect), some with a QR code drawn as an image.
//!
//! `lopdf` parses the file (it bounds nesting and every stream it inflates);
//! this module only walks the objects it produced: link actions (`/URI`),
//! actions that run something (`/JavaScript`, `/Launch`) and image
//! XObjects, whose pixels go to the QR detector. Every walk and decode has
//! its own bound, and a file past one is reported, never half-trusted.

use super::qr::{self, QrScan};
use image::GrayImage;
use lopdf::{Dictionary, Document, LoadOptions, Object, Stream};

/// Largest PDF parsed. lopdf holds every object in memory at 120 bytes a
/// value, so a file of bare numbers grows sixty-fold while it loads; 2 MiB
/// keeps that near 120 MiB, and [`LOADING`] lets one file load at a time.
/// The largest PDF in the TRAIN phishing is 1.5 MB (p99 0.7 MB).
pub const MAX_PDF_BYTES: usize = 2 * 1024 * 1024;
/// Largest size one stream may inflate to while loading (object and
/// cross-reference streams; a big one holds a few hundred objects in
/// well under a MiB).
const MAX_STREAM_BYTES: usize = 256 * 1024;
/// Streams per file. lopdf inflates object and cross-reference streams
/// while it loads, each up to [`MAX_STREAM_BYTES`]; counting the `stream`
/// keywords (which cannot be escaped) bounds how many there can be, for
/// encrypted files too, where lopdf does not call the load filter. A
/// long scanned document, one image a page, can exceed it; it is then
/// reported as not read.
const MAX_STREAMS: usize = 256;
/// Largest image, in decoded samples, searched for QR codes.
const MAX_SAMPLE_BYTES: usize = 16 * 1024 * 1024;
/// Links kept per file.
pub const MAX_LINKS: usize = 50;
/// Images decoded per file for QR codes (the message's own budget,
/// [`qr::MAX_IMAGES`], applies too).
const MAX_IMAGES: usize = 4;
/// Largest side of an image decoded from its pixels.
const MAX_SIDE: u32 = 4096;
/// Values (nested ones counted, stream data at a value per 120 bytes)
/// kept per file, and object streams (each inflated and parsed, up to
/// [`MAX_STREAM_BYTES`]) unpacked per file: lopdf bounds each stream, these
/// bound the sum, so a file of small compressed streams cannot become
/// gigabytes of objects.
const MAX_VALUES: usize = 400_000;
const MAX_OBJECT_STREAMS: usize = 64;

/// What one PDF holds that the checks weigh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfScan {
    /// Targets of its link actions, as written.
    pub links: Vec<String>,
    /// Actions that run something when the reader opens or clicks
    /// (`JavaScript`, `Launch`), each named once.
    pub actions: Vec<&'static str>,
    /// Texts of the QR codes in its images.
    pub qr_texts: Vec<String>,
    /// Images searched for QR codes.
    pub images_scanned: usize,
    /// Why the file was not (fully) read.
    pub limit: Option<String>,
}

/// Reads `data` (a PDF file). `images_left` is what the message's QR image
/// budget has left; the images searched here are counted in the result.
pub fn scan(data: &[u8], images_left: usize) -> PdfScan {
    let mut out = PdfScan::default();
    if data.len() > MAX_PDF_BYTES {
        out.limit = Some(format!("PDF over {MAX_PDF_BYTES} bytes not read"));
        return out;
    }
    let streams = stream_keywords(data);
    if streams > MAX_STREAMS {
        out.limit = Some(format!("PDF with {streams} streams (over {MAX_STREAMS}) not read"));
        return out;
    }
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        filter: Some(within_budget),
        ..LoadOptions::default()
    };
    // A panic below never happens with the lock held (it is caught), but
    // a poisoned lock must not stop every later PDF.
    let _one = LOADING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    LOADED.set((0, 0, false));
    // lopdf is fuzzed and bounds its recursion, but a parser panic on a
    // hostile file must stay this file's problem: it becomes a limit.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Document::load_mem_with_options(data, options)));
    let doc = match loaded {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            out.limit = Some(format!("PDF could not be read: {e}"));
            return out;
        }
        Err(_) => {
            out.limit = Some("the PDF parser crashed on this file".into());
            return out;
        }
    };
    if LOADED.get().2 {
        out.limit = Some(format!(
            "PDF with more than {MAX_VALUES} values or {MAX_OBJECT_STREAMS} object streams; the rest was not read"
        ));
    }
    let mut images = Vec::new();
    // The loader kept at most MAX_VALUES; this is the backstop.
    let mut budget = MAX_VALUES;
    for obj in doc.objects.values() {
        if !walk(obj, &mut out, &mut images, &mut budget) {
            out.limit = Some(format!("PDF with more than {MAX_VALUES} values; the rest was not read"));
            break;
        }
    }
    for stream in images.into_iter().take(MAX_IMAGES.min(images_left)) {
        let Some(found) = image_qr(stream) else { continue };
        if !found.too_small {
            out.images_scanned += 1;
        }
        if let Some(why) = found.limit {
            out.limit.get_or_insert(why);
        }
        out.qr_texts.extend(found.texts);
    }
    out
}

/// One file loads at a time: the bounds above are per file.
static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// What the current load has used of [`MAX_VALUES`] and
    /// [`MAX_OBJECT_STREAMS`], and whether something was refused: lopdf's
    /// filter is a plain function, and without its `rayon` feature it runs
    /// on the loading thread.
    static LOADED: std::cell::Cell<(usize, usize, bool)> = const { std::cell::Cell::new((0, 0, false)) };
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

/// lopdf's load filter: keeps objects within the budget, and refuses
/// object streams past theirs before they are inflated.
fn within_budget(id: (u32, u16), obj: &mut Object) -> Option<((u32, u16), Object)> {
    let (values, streams, over) = LOADED.get();
    let is_objstm = matches!(obj, Object::Stream(s) if name(&s.dict, b"Type") == Some(b"ObjStm"));
    let values = values + weight(obj);
    if values > MAX_VALUES || (is_objstm && streams >= MAX_OBJECT_STREAMS) {
        LOADED.set((values, streams, true));
        return None;
    }
    LOADED.set((values, streams + usize::from(is_objstm), over));
    // lopdf keeps `obj` itself for an indirect object and the returned copy
    // for one unpacked from an object stream, which is never a stream; so
    // streams (the large objects) are not copied.
    let kept = match obj {
        Object::Stream(_) => Object::Null,
        other => other.clone(),
    };
    Some((id, kept))
}

/// How many `stream` keywords (not `endstream`) end a line.
fn stream_keywords(data: &[u8]) -> usize {
    memchr::memmem::find_iter(data, b"stream")
        .filter(|&at| matches!(data.get(at + 6), Some(b'\r' | b'\n')) && !data[..at].ends_with(b"end"))
        .count()
}

/// Looks at `obj` and everything nested in it (references are not
/// followed: every indirect object is walked from the top once). Image
/// streams are collected for later. `false` once the budget is spent.
fn walk<'a>(obj: &'a Object, out: &mut PdfScan, images: &mut Vec<&'a Stream>, budget: &mut usize) -> bool {
    let mut stack = vec![obj];
    while let Some(obj) = stack.pop() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match obj {
            Object::Array(items) => stack.extend(items),
            Object::Dictionary(dict) => {
                action(dict, out);
                stack.extend(dict.iter().map(|(_, v)| v));
            }
            Object::Stream(stream) => {
                if name(&stream.dict, b"Subtype") == Some(b"Image") {
                    images.push(stream);
                }
                action(&stream.dict, out);
                stack.extend(stream.dict.iter().map(|(_, v)| v));
            }
            _ => {}
        }
    }
    true
}

fn name<'a>(dict: &'a Dictionary, key: &[u8]) -> Option<&'a [u8]> {
    dict.get(key).ok().and_then(|o| o.as_name().ok())
}

/// An action dictionary: a link (`/URI`), or something that runs.
fn action(dict: &Dictionary, out: &mut PdfScan) {
    if let Ok(Object::String(uri, _)) = dict.get(b"URI")
        && out.links.len() < MAX_LINKS
    {
        let uri = String::from_utf8_lossy(uri).trim().to_string();
        if !uri.is_empty() && !out.links.contains(&uri) {
            out.links.push(uri);
        }
    }
    let runs = match name(dict, b"S") {
        Some(b"JavaScript") => Some("JavaScript"),
        Some(b"Launch") => Some("Launch"),
        _ if dict.has(b"JS") => Some("JavaScript"),
        _ => None,
    };
    if let Some(kind) = runs
        && !out.actions.contains(&kind)
    {
        out.actions.push(kind);
    }
}

/// Searches one image XObject for QR codes: JPEG data as it is, raw
/// grey or RGB samples (8 bits) and 1-bit images as pixels. Other
/// encodings (JPEG 2000, CCITT, JBIG2, palettes) are not decoded.
fn image_qr(stream: &Stream) -> Option<QrScan> {
    let filters = stream.filters().unwrap_or_default();
    if filters.last() == Some(&&b"DCTDecode"[..]) {
        return (filters.len() == 1).then(|| qr::scan(&stream.content));
    }
    let dim = |key: &[u8]| {
        stream
            .dict
            .get(key)
            .ok()
            .and_then(|o| o.as_i64().ok())
            .and_then(|v| u32::try_from(v).ok())
    };
    let (w, h) = (dim(b"Width")?, dim(b"Height")?);
    if w.min(h) < qr::MIN_SIDE {
        return Some(QrScan {
            too_small: true,
            ..QrScan::default()
        });
    }
    if w.max(h) > MAX_SIDE {
        return Some(QrScan {
            limit: Some(format!("PDF image of {w}x{h} not searched for QR codes")),
            ..QrScan::default()
        });
    }
    let mask = matches!(stream.dict.get(b"ImageMask"), Ok(Object::Boolean(true)));
    let bits = if mask { 1 } else { dim(b"BitsPerComponent")? };
    let channels: u32 = if mask {
        1
    } else {
        match name(&stream.dict, b"ColorSpace") {
            Some(b"DeviceGray" | b"G") => 1,
            Some(b"DeviceRGB" | b"RGB") => 3,
            _ => return None,
        }
    };
    let stride = match (bits, channels) {
        (8, c) => w as usize * c as usize,
        (1, 1) => (w as usize).div_ceil(8),
        _ => return None,
    };
    let size = stride * h as usize;
    if size > MAX_SAMPLE_BYTES {
        return Some(QrScan {
            limit: Some(format!("PDF image of {w}x{h} not searched for QR codes")),
            ..QrScan::default()
        });
    }
    let samples = stream.decompressed_content_with_limit(size).ok()?;
    if samples.len() < stride * h as usize {
        return None;
    }
    let luma = GrayImage::from_fn(w, h, |x, y| {
        let row = &samples[y as usize * stride..];
        let (x, c) = (x as usize, channels as usize);
        image::Luma([match bits {
            // Sample 0 is black in DeviceGray and paints in a mask.
            1 => {
                if row[x / 8] >> (7 - x % 8) & 1 == 0 {
                    0
                } else {
                    255
                }
            }
            _ if c == 1 => row[x],
            _ => {
                let p = &row[x * 3..x * 3 + 3];
                ((u16::from(p[0]) * 77 + u16::from(p[1]) * 150 + u16::from(p[2]) * 29) >> 8) as u8
            }
        }])
    });
    Some(qr::scan_luma(luma))
}

#[cfg(test)]
#[path = "pdf_tests.rs"]
mod tests;
