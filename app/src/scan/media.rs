//! What reading an image or a PDF found, remembered by the file's SHA-256.
//!
//! Decoding images for QR codes and reading PDFs (in a worker process
//! each) were half of the local pipeline's time (issue 21), and the same
//! files keep arriving: a brand's logo and footer images in every one of
//! its newsletters, one campaign's PDF in every mailbox it reaches (in the
//! training corpus, 710 of 951 images and PDFs repeat an earlier one).
//! What a read finds depends only on the bytes and the budget it was read
//! with, so both go into the key. A PDF read that a limit cut short (time
//! included) is not kept, so a loaded machine cannot pin a partial answer.

use super::pdf::PdfScan;
use super::qr::QrScan;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

/// Images remembered: a result is a few strings at most.
const IMAGES: usize = 4096;
/// PDFs remembered; with [`MAX_PDF_BYTES`] a bound of ~4 MiB in all.
const PDFS: usize = 256;
/// A PDF result holding more text than this (hundreds of long links) is
/// not kept.
const MAX_PDF_BYTES: usize = 16 * 1024;

/// A file's SHA-256.
pub type Digest = [u8; 32];

/// How a PDF was read: the same bytes give the same answer only under the
/// same image budget and the same loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PdfKey {
    digest: Digest,
    images_left: usize,
    isolated: bool,
}

/// Recent image and PDF results, shared by every parse of one pipeline.
pub struct MediaCache {
    /// `None` when nothing is remembered.
    images: Option<Mutex<LruCache<Digest, QrScan>>>,
    pdfs: Option<Mutex<LruCache<PdfKey, PdfScan>>>,
}

impl Default for MediaCache {
    fn default() -> Self {
        Self::new(IMAGES, PDFS)
    }
}

impl std::fmt::Debug for MediaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCache")
            .field("images", &len(&self.images))
            .field("pdfs", &len(&self.pdfs))
            .finish()
    }
}

fn lru<K: std::hash::Hash + Eq, V>(n: usize) -> Option<Mutex<LruCache<K, V>>> {
    NonZeroUsize::new(n).map(|n| Mutex::new(LruCache::new(n)))
}

// A poisoned lock only means a panic elsewhere while it was held; the
// LRU's own state stays whole, so it is used on.
fn len<K: std::hash::Hash + Eq, V>(cache: &Option<Mutex<LruCache<K, V>>>) -> usize {
    cache.as_ref().map_or(0, |c| c.lock().unwrap_or_else(PoisonError::into_inner).len())
}

/// The remembered value, computed and kept (when `keep` says so) the
/// first time. The lock is not held while `read` runs: two parses of a
/// new file may both read it, which costs less than waiting.
fn cached<K: std::hash::Hash + Eq, V: Clone>(
    cache: &Option<Mutex<LruCache<K, V>>>,
    key: K,
    read: impl FnOnce() -> V,
    keep: impl FnOnce(&V) -> bool,
) -> V {
    let Some(cache) = cache else { return read() };
    if let Some(hit) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return hit.clone();
    }
    let value = read();
    if keep(&value) {
        cache.lock().unwrap_or_else(PoisonError::into_inner).put(key, value.clone());
    }
    value
}

/// The digest from an attachment's hex SHA-256; `None` if it is not one.
pub fn digest_of_hex(hex: &str) -> Option<Digest> {
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex, &mut d).ok().map(|()| d)
}

impl MediaCache {
    /// A cache of at most this many image and PDF results; 0 remembers
    /// none of that kind (the benchmark's cold figure).
    pub fn new(images: usize, pdfs: usize) -> Self {
        Self {
            images: lru(images),
            pdfs: lru(pdfs),
        }
    }

    /// What searching the image with this digest for QR codes found,
    /// computed by `read` the first time (the search is bounded by pixels,
    /// not time, so every answer is kept).
    pub fn image(&self, digest: &Digest, read: impl FnOnce() -> QrScan) -> QrScan {
        cached(&self.images, *digest, read, |_| true)
    }

    /// What reading the PDF with this digest found under this image
    /// budget and loader, computed by `read` the first time; only a read
    /// that no limit cut short is kept.
    pub fn pdf(&self, digest: &Digest, images_left: usize, isolated: bool, read: impl FnOnce() -> PdfScan) -> PdfScan {
        let key = PdfKey {
            digest: *digest,
            images_left,
            isolated,
        };
        cached(&self.pdfs, key, read, |scan| scan.limit.is_none() && size(scan) <= MAX_PDF_BYTES)
    }
}

#[cfg(test)]
impl MediaCache {
    /// Images and PDFs remembered.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (len(&self.images), len(&self.pdfs))
    }
}

/// The text a PDF result holds.
fn size(scan: &PdfScan) -> usize {
    scan.links.iter().chain(&scan.qr_texts).map(String::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn an_image_is_read_once_per_content() {
        let cache = MediaCache::default();
        let reads = Cell::new(0);
        let read = |text: &str| {
            reads.set(reads.get() + 1);
            QrScan {
                texts: vec![text.to_string()],
                ..Default::default()
            }
        };
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(cache.image(&a, || read("https://a.example/")).texts, ["https://a.example/"]);
        // The same bytes again: remembered, whatever the closure would say.
        assert_eq!(cache.image(&a, || read("other")).texts, ["https://a.example/"]);
        assert_eq!(cache.image(&b, || read("https://b.example/")).texts, ["https://b.example/"]);
        assert_eq!(reads.get(), 2);
    }

    #[test]
    fn a_pdf_is_remembered_per_budget_and_only_when_complete() {
        let cache = MediaCache::default();
        let reads = Cell::new(0);
        let read = |limit: Option<&str>| {
            reads.set(reads.get() + 1);
            PdfScan {
                links: vec!["https://pdf.example/".into()],
                images_scanned: 1,
                limit: limit.map(str::to_string),
                ..Default::default()
            }
        };
        let d = [7u8; 32];
        cache.pdf(&d, 10, true, || read(None));
        cache.pdf(&d, 10, true, || read(None));
        assert_eq!(reads.get(), 1);
        // Another image budget or loader can find something else.
        cache.pdf(&d, 3, true, || read(None));
        cache.pdf(&d, 10, false, || read(None));
        assert_eq!(reads.get(), 3);
        // A read cut short (a worker's time limit) is read again next time.
        let other = [8u8; 32];
        let first = cache.pdf(&other, 10, true, || read(Some("the PDF worker ran out of time")));
        assert!(first.limit.is_some());
        let second = cache.pdf(&other, 10, true, || read(None));
        assert!(second.limit.is_none());
        assert_eq!(reads.get(), 5);
    }

    #[test]
    fn a_cache_of_nothing_reads_every_time() {
        let cache = MediaCache::new(0, 0);
        let reads = Cell::new(0);
        for _ in 0..2 {
            cache.image(&[1; 32], || {
                reads.set(reads.get() + 1);
                QrScan::default()
            });
        }
        assert_eq!(reads.get(), 2);
        assert_eq!(cache.counts(), (0, 0));
    }

    #[test]
    fn hex_digests_are_read_and_bad_ones_refused() {
        let hex = "ab".repeat(32);
        assert_eq!(digest_of_hex(&hex), Some([0xab; 32]));
        assert_eq!(digest_of_hex("abc"), None);
        assert_eq!(digest_of_hex(&"zz".repeat(32)), None);
    }
}
