//! QR codes in images (inline or attached): "quishing" hides the phishing
//! URL in a picture. Images are decoded with the `image` crate under
//! allocation limits and scanned with `rqrr`.

use std::io::Cursor;

/// Images looked at per message.
pub const MAX_IMAGES: usize = 10;
/// Largest image file decoded.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Largest decoded dimension.
const MAX_DIM: u32 = 4096;

/// Texts of every QR code found in `data` (an image file).
pub fn decode(data: &[u8]) -> Vec<String> {
    if data.len() > MAX_IMAGE_BYTES {
        return Vec::new();
    }
    let Ok(reader) = image::ImageReader::new(Cursor::new(data)).with_guessed_format() else {
        return Vec::new();
    };
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIM);
    limits.max_image_height = Some(MAX_DIM);
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader.limits(limits);
    let Ok(img) = reader.decode() else {
        return Vec::new();
    };
    let luma = img.to_luma8();
    let (w, h) = (luma.width() as usize, luma.height() as usize);
    // Dimensions are capped above, so w * h cannot overflow.
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma.get_pixel(x as u32, y as u32)[0]);
    prepared
        .detect_grids()
        .into_iter()
        .take(8)
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_images_are_harmless() {
        assert!(decode(b"not an image").is_empty());
        assert!(
            decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xff\xff\xff").is_empty(),
            "huge declared size refused"
        );
    }
}
