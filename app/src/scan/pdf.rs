//! PDF attachments (issue 14): a PDF is where a phishing link hides from
//! checks that read only the body. 3.6% of the TRAIN phishing carries a
//! PDF, four in five of them with a clickable link (a shortener, a shared
//! document, a redirect), some with a QR code drawn as an image.
//!
//! `lopdf` parses the file ([`load`] bounds what it may do), in the daemon
//! inside a child process under kernel limits ([`worker`]); this module
//! only walks the objects it produced: link actions (`/URI`), actions that
//! run something (`/JavaScript`, `/Launch`) and image XObjects, whose
//! pixels go to the QR detector. Every walk and decode has its own bound,
//! and a file past one is reported, never half-trusted.

mod image;
mod load;
#[cfg(target_os = "linux")]
mod sandbox;
mod worker;

use lopdf::{Dictionary, Object, ObjectId, Stream};

pub use load::MAX_PDF_BYTES;
pub use worker::{WORKER_ARG, probe as probe_worker, scan_in_child, serve as serve_worker};

/// Largest image, in decoded samples, searched for QR codes.
const MAX_SAMPLE_BYTES: usize = 16 * 1024 * 1024;
/// Largest side of an image decoded from its pixels.
const MAX_SIDE: u32 = 4096;
/// Links kept per file.
pub const MAX_LINKS: usize = 200;
/// Time one message may spend reading its PDFs in workers, under the
/// parse's own budget ([`super::budget::PARSE_BUDGET`], 10 s): four
/// hostile files cannot take the message past it.
pub const MAX_TIME_PER_MESSAGE: std::time::Duration = std::time::Duration::from_secs(8);
/// Images decoded per file for QR codes (the message's own budget,
/// [`super::qr::MAX_IMAGES`], applies too), and images looked at to find them
/// (tiny and unsupported ones are skipped, not counted).
const MAX_IMAGES: usize = 4;
const MAX_IMAGE_TRIES: usize = 64;

/// What one PDF holds that the checks weigh (also the PDF worker's answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PdfScan {
    /// Targets of its link actions.
    pub links: Vec<String>,
    /// Actions that run something when the reader opens or clicks
    /// (`JavaScript`, `Launch`), each named once.
    #[serde(deserialize_with = "known_actions")]
    pub actions: Vec<&'static str>,
    /// Texts of the QR codes in its images.
    pub qr_texts: Vec<String>,
    /// Images searched for QR codes.
    pub images_scanned: usize,
    /// Why the file was not (fully) read.
    pub limit: Option<String>,
}

/// Reads `data` (a PDF file) in this process, classic files only (see
/// [`load`]). `images_left` is what the message's QR image budget has
/// left; the images searched here are counted in the result.
pub fn scan(data: &[u8], images_left: usize) -> PdfScan {
    scan_with(data, images_left, load::Isolation::InProcess)
}

/// [`scan`] for the child process of [`worker`], whose kernel limits bound
/// what the in-process loader must refuse: encrypted files and object or
/// cross-reference streams are read too.
fn scan_isolated(data: &[u8], images_left: usize) -> PdfScan {
    scan_with(data, images_left, load::Isolation::Process)
}

fn scan_with(data: &[u8], images_left: usize, isolation: load::Isolation) -> PdfScan {
    let mut out = PdfScan::default();
    let loaded = match load::load(data, isolation) {
        Ok(l) => l,
        Err(why) => {
            out.limit = Some(why);
            return out;
        }
    };
    if loaded.partial {
        out.limit = Some(format!(
            "PDF larger than {} values or with too many object streams; the rest was not read",
            load::MAX_VALUES
        ));
    }
    // lopdf's decoders and the QR detector run on hostile data here too.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&loaded.doc, images_left, &mut out)));
    if read.is_err() {
        out.limit = Some("reading the PDF crashed; the rest was not read".into());
    }
    out
}

fn read(doc: &lopdf::Document, images_left: usize, out: &mut PdfScan) {
    let mut found = Found::default();
    // The loader kept at most MAX_VALUES; this is the backstop.
    let mut budget = load::MAX_VALUES;
    for obj in doc.objects.values() {
        if !walk(obj, out, &mut found, &mut budget) {
            out.limit = Some(format!("PDF with more than {} values; the rest was not read", load::MAX_VALUES));
            break;
        }
    }
    for id in found.uri_refs {
        if let Ok(Object::String(uri, _)) = doc.get_object(id) {
            add_link(uri, out, &mut found.truncated);
        }
    }
    if found.truncated {
        out.limit
            .get_or_insert_with(|| format!("PDF with more than {MAX_LINKS} links; the rest were not checked"));
    }
    let want = MAX_IMAGES.min(images_left);
    for stream in found.images.into_iter().take(MAX_IMAGE_TRIES) {
        if out.images_scanned >= want {
            break;
        }
        let Some(scan) = image::qr(stream) else { continue };
        if !scan.too_small {
            out.images_scanned += 1;
        }
        if let Some(why) = scan.limit {
            out.limit.get_or_insert(why);
        }
        out.qr_texts.extend(scan.texts);
    }
}

/// What the walk collected beside the links and actions.
#[derive(Default)]
struct Found<'a> {
    images: Vec<&'a Stream>,
    /// `/URI` values given as references, resolved after the walk.
    uri_refs: Vec<ObjectId>,
    truncated: bool,
}

/// Looks at `obj` and everything nested in it (references are not
/// followed: every indirect object is walked from the top once). `false`
/// once the budget is spent.
fn walk<'a>(obj: &'a Object, out: &mut PdfScan, found: &mut Found<'a>, budget: &mut usize) -> bool {
    let mut stack = vec![obj];
    while let Some(obj) = stack.pop() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let dict = match obj {
            Object::Array(items) => {
                stack.extend(items);
                continue;
            }
            Object::Dictionary(dict) => dict,
            Object::Stream(stream) => {
                if name(&stream.dict, b"Subtype") == Some(b"Image") {
                    found.images.push(stream);
                }
                &stream.dict
            }
            _ => continue,
        };
        action(dict, out, found);
        stack.extend(dict.iter().map(|(_, v)| v));
    }
    true
}

/// The action names [`action`] records; an answer naming others (from a
/// worker that misbehaves) keeps only these.
const ACTIONS: [&str; 2] = ["JavaScript", "Launch"];

fn known_actions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<&'static str>, D::Error> {
    let names: Vec<String> = serde::Deserialize::deserialize(d)?;
    Ok(names.iter().filter_map(|n| ACTIONS.into_iter().find(|k| k == n)).collect())
}

fn name<'a>(dict: &'a Dictionary, key: &[u8]) -> Option<&'a [u8]> {
    dict.get(key).ok().and_then(|o| o.as_name().ok())
}

/// An action dictionary: a link (`/URI`), or something that runs.
fn action(dict: &Dictionary, out: &mut PdfScan, found: &mut Found<'_>) {
    match dict.get(b"URI") {
        Ok(Object::String(uri, _)) => add_link(uri, out, &mut found.truncated),
        Ok(Object::Reference(id)) if found.uri_refs.len() < MAX_LINKS => found.uri_refs.push(*id),
        _ => {}
    }
    let [javascript, launch] = ACTIONS;
    let runs = match name(dict, b"S") {
        Some(b"JavaScript") => Some(javascript),
        Some(b"Launch") => Some(launch),
        _ if dict.has(b"JS") => Some(javascript),
        _ => None,
    };
    if let Some(kind) = runs
        && !out.actions.contains(&kind)
    {
        out.actions.push(kind);
    }
}

/// A link target as a reader would open it: text strings may be UTF-16
/// with a byte-order mark, and readers open `www.` names over http.
fn add_link(raw: &[u8], out: &mut PdfScan, truncated: &mut bool) {
    let text = match raw.strip_prefix(&[0xfe, 0xff]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        None => String::from_utf8_lossy(raw).into_owned(),
    };
    let text = text.trim();
    let link = if text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www.")) && text.len() > 4 {
        format!("http://{text}")
    } else {
        text.to_string()
    };
    if link.is_empty() || out.links.contains(&link) {
        return;
    }
    if out.links.len() >= MAX_LINKS {
        *truncated = true;
        return;
    }
    out.links.push(link);
}

#[cfg(test)]
mod tests;
