//! A PDF image XObject as pixels for the QR detector.

use super::{MAX_SAMPLE_BYTES, MAX_SIDE, name};
use crate::scan::qr::{self, QrScan};
use image::GrayImage;
use lopdf::{Object, Stream};

/// Searches one image XObject for QR codes: JPEG data as it is, raw
/// grey or RGB samples (8 bits) and 1-bit images as pixels. Other
/// encodings (JPEG 2000, CCITT, JBIG2, palettes) are not decoded; `None`
/// for those and for broken images.
pub(super) fn qr(stream: &Stream) -> Option<QrScan> {
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
    let too_large = || QrScan {
        limit: Some(format!("PDF image of {w}x{h} not searched for QR codes")),
        ..QrScan::default()
    };
    if w.max(h) > MAX_SIDE {
        return Some(too_large());
    }
    let mask = matches!(stream.dict.get(b"ImageMask"), Ok(Object::Boolean(true)));
    let bits = if mask { 1 } else { dim(b"BitsPerComponent")? };
    let channels: usize = if mask {
        1
    } else {
        match name(&stream.dict, b"ColorSpace") {
            Some(b"DeviceGray" | b"G") => 1,
            Some(b"DeviceRGB" | b"RGB") => 3,
            _ => return None,
        }
    };
    let stride = match (bits, channels) {
        (8, c) => w as usize * c,
        (1, 1) => (w as usize).div_ceil(8),
        _ => return None,
    };
    let size = stride * h as usize;
    if size > MAX_SAMPLE_BYTES {
        return Some(too_large());
    }
    // lopdf checks its limit before undoing a PNG predictor, which adds a
    // byte a row (fpdf and iText embed PNG pictures that way).
    let samples = stream.decompressed_content_with_limit(size + h as usize + 64).ok()?;
    if samples.len() < size {
        return None;
    }
    let luma = GrayImage::from_fn(w, h, |x, y| {
        let row = &samples[y as usize * stride..];
        let x = x as usize;
        image::Luma([match (bits, channels) {
            // Sample 0 is black in DeviceGray and paints in a mask.
            (1, _) => {
                if row[x / 8] >> (7 - x % 8) & 1 == 0 {
                    0
                } else {
                    255
                }
            }
            (_, 1) => row[x],
            _ => {
                let p = &row[x * 3..x * 3 + 3];
                ((u16::from(p[0]) * 77 + u16::from(p[1]) * 150 + u16::from(p[2]) * 29) >> 8) as u8
            }
        }])
    });
    Some(qr::scan_luma(luma))
}
