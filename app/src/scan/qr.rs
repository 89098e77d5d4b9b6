//! QR codes in images (inline or attached): "quishing" hides the phishing
//! URL in a picture. Images are decoded with the `image` crate under
//! allocation limits, shrunk to a pixel budget, and scanned with `rqrr`.
//!
//! Issue 18: a 2048×2048 1-bit noise PNG took 191 s in the detector, whose
//! cost grows faster than the pixel count on noise. The pixel budget bounds
//! that work; an image that cannot be searched within it is reported.

use image::{GrayImage, ImageError};
use std::io::Cursor;

/// Images looked at per message.
pub const MAX_IMAGES: usize = 10;
/// Largest image file decoded.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Largest decoded dimension.
const MAX_DIM: u32 = 4096;
/// Pixels the QR detector may look at per image. A QR code in a mail is
/// meant to be scanned from a screen, so one that fills even a tenth of a
/// 1024×1024 picture keeps modules of several pixels after shrinking.
pub const MAX_PIXELS: u64 = 1024 * 1024;
/// Grids decoded per image.
const MAX_GRIDS: usize = 8;
/// The smallest side that can hold a QR code: version 1 has 21 modules a
/// side, and a module needs at least a pixel. Tracking pixels, spacers and
/// icons are smaller; they are not decoded and do not use up
/// [`MAX_IMAGES`], so padding a message with them cannot push a real code
/// past the per-message budget (issue 21).
pub const MIN_SIDE: u32 = 21;

/// What searching one image found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QrScan {
    /// Texts of the QR codes found.
    pub texts: Vec<String>,
    /// Pixels the detector looked at (at most [`MAX_PIXELS`]).
    pub pixels: u64,
    /// The image was shrunk from this size to fit the budget.
    pub shrunk_from: Option<(u32, u32)>,
    /// Why the image could not be fully searched.
    pub limit: Option<String>,
    /// The image's header says it is too small to hold a code
    /// ([`MIN_SIDE`]); it was not decoded.
    pub too_small: bool,
}

/// Texts of every QR code found in `data` (an image file).
pub fn decode(data: &[u8]) -> Vec<String> {
    scan(data).texts
}

/// Searches `data` (an image file) for QR codes within the pixel budget.
pub fn scan(data: &[u8]) -> QrScan {
    if too_small(data) {
        return QrScan {
            too_small: true,
            ..Default::default()
        };
    }
    match load(data) {
        Ok(Some(loaded)) => searched(loaded),
        Ok(None) => QrScan::default(),
        Err(why) => QrScan {
            limit: Some(why),
            ..Default::default()
        },
    }
}

/// Whether the image's header (read without decoding it) gives a size too
/// small for a QR code. Anything unreadable is left to [`load`].
fn too_small(data: &[u8]) -> bool {
    image::ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .is_some_and(|(w, h)| w.min(h) < MIN_SIDE)
}

/// An image ready for the detector.
struct Loaded {
    luma: GrayImage,
    /// The size before shrinking, when it was shrunk.
    shrunk_from: Option<(u32, u32)>,
}

/// The image as greyscale within [`MAX_PIXELS`], and its size before
/// shrinking; `None` for data that is not a readable image, `Err` when
/// the image is too large to search.
fn load(data: &[u8]) -> Result<Option<Loaded>, String> {
    if data.len() > MAX_IMAGE_BYTES {
        return Err(format!("image over {MAX_IMAGE_BYTES} bytes not searched for QR codes"));
    }
    let Ok(mut reader) = image::ImageReader::new(Cursor::new(data)).with_guessed_format() else {
        return Ok(None);
    };
    if reader.format() == Some(image::ImageFormat::Jpeg)
        && let Some(luma) = jpeg_luma(data)
    {
        return Ok(Some(budgeted(luma)));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIM);
    limits.max_image_height = Some(MAX_DIM);
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader.limits(limits);
    let img = match reader.decode() {
        Ok(img) => img,
        Err(ImageError::Limits(e)) => return Err(format!("image too large to decode for QR codes: {e}")),
        // Not an image after all, or a broken one: nothing to search.
        Err(_) => return Ok(None),
    };
    let luma = greyscale(img);
    Ok(Some(budgeted(luma)))
}

/// A YCbCr or greyscale JPEG's luma plane alone. The detector reads grey,
/// and the Y plane is grey already: decoding it alone spares the chroma
/// upsampling and the colour conversion, and the RGB buffer converted
/// back (issue 21). `None` for anything else (CMYK, past [`MAX_DIM`], a
/// broken file): the `image` path then decodes it, or says why not.
fn jpeg_luma(data: &[u8]) -> Option<GrayImage> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(MAX_DIM as usize)
        .set_max_height(MAX_DIM as usize)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), opts);
    decoder.decode_headers().ok()?;
    if !matches!(decoder.input_colorspace()?, ColorSpace::YCbCr | ColorSpace::Luma) {
        return None;
    }
    let (w, h) = decoder.dimensions()?;
    let mut luma = vec![0u8; decoder.output_buffer_size()?];
    decoder.decode_into(&mut luma).ok()?;
    GrayImage::from_raw(u32::try_from(w).ok()?, u32::try_from(h).ok()?, luma)
}

/// The image as 8-bit grey, transparency laid over white. A code drawn
/// on a transparent background (a common export) would otherwise read
/// as black on black: the `image` crate's conversion drops alpha. The
/// integer weights (Rec. 709, as `image` uses) also spare the float path
/// that was a sixth of QR decoding (issue 21).
fn greyscale(img: image::DynamicImage) -> GrayImage {
    use image::DynamicImage as D;
    fn grey(r: u8, g: u8, b: u8) -> u32 {
        (54 * u32::from(r) + 183 * u32::from(g) + 19 * u32::from(b)) >> 8
    }
    fn over_white(l: u32, a: u8) -> u8 {
        let a = u32::from(a);
        ((l * a + 255 * (255 - a)) / 255) as u8
    }
    let (w, h) = (img.width(), img.height());
    let from = |px: Vec<u8>| GrayImage::from_raw(w, h, px);
    let converted = match &img {
        D::ImageLuma8(_) => None,
        D::ImageLumaA8(i) => from(i.pixels().map(|p| over_white(u32::from(p[0]), p[1])).collect()),
        D::ImageRgb8(i) => from(i.pixels().map(|p| grey(p[0], p[1], p[2]) as u8).collect()),
        D::ImageRgba8(i) => from(i.pixels().map(|p| over_white(grey(p[0], p[1], p[2]), p[3])).collect()),
        _ => None,
    };
    converted.unwrap_or_else(|| img.into_luma8())
}

/// `luma` shrunk to [`MAX_PIXELS`] when it is larger.
fn budgeted(luma: GrayImage) -> Loaded {
    let (w, h) = luma.dimensions();
    if u64::from(w) * u64::from(h) <= MAX_PIXELS {
        return Loaded { luma, shrunk_from: None };
    }
    let (nw, nh) = fit(w, h);
    Loaded {
        luma: shrink(&luma, nw, nh),
        shrunk_from: Some((w, h)),
    }
}

/// `luma` averaged down to `nw`×`nh`: every pixel is the mean of the
/// pixels it covers (a box filter, as `image`'s thumbnail is). SIMD makes
/// it about ten times faster than `thumbnail`, which took 12 ms for one
/// 2574×870 banner (issue 21).
fn shrink(luma: &GrayImage, nw: u32, nh: u32) -> GrayImage {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let (w, h) = luma.dimensions();
    let shrunk = ImageRef::new(w, h, luma.as_raw(), PixelType::U8).ok().and_then(|src| {
        let mut dst = Image::new(nw, nh, PixelType::U8);
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
        Resizer::new().resize(&src, &mut dst, &opts).ok()?;
        GrayImage::from_raw(nw, nh, dst.into_vec())
    });
    // Not expected (the sizes are the image's own); the slow filter is as right.
    shrunk.unwrap_or_else(|| image::imageops::thumbnail(luma, nw, nh))
}

/// Searches pixels decoded elsewhere (a PDF's image) within the same
/// budget as an image file.
pub fn scan_luma(luma: GrayImage) -> QrScan {
    let (w, h) = luma.dimensions();
    if w.min(h) < MIN_SIDE {
        return QrScan {
            too_small: true,
            ..Default::default()
        };
    }
    searched(budgeted(luma))
}

fn searched(Loaded { luma, shrunk_from }: Loaded) -> QrScan {
    QrScan {
        pixels: u64::from(luma.width()) * u64::from(luma.height()),
        texts: detect(&luma),
        shrunk_from,
        limit: None,
        too_small: false,
    }
}

/// The largest size with `w:h`'s aspect ratio within [`MAX_PIXELS`].
fn fit(w: u32, h: u32) -> (u32, u32) {
    let scale = (MAX_PIXELS as f64 / (f64::from(w) * f64::from(h))).sqrt();
    // Floor, so the product never rounds above the budget.
    let nw = ((f64::from(w) * scale).floor() as u32).max(1);
    let nh = ((f64::from(h) * scale).floor() as u32).max(1);
    (nw, nh)
}

fn detect(luma: &GrayImage) -> Vec<String> {
    let (w, h) = (luma.width() as usize, luma.height() as usize);
    let dark = threshold(luma);
    let mut prepared = rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| dark[y * w + x]);
    prepared
        .detect_grids()
        .into_iter()
        .take(MAX_GRIDS)
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

/// Which pixels are dark, by rqrr's own adaptive threshold
/// (`PreparedImage::prepare`) to the bit, so what it detects is unchanged:
/// each pixel is compared with running averages along its row, read both
/// ways, that carry over from row to row. rqrr divides by the averaging
/// window three times a pixel, which was over half of its preparation
/// (issue 21); the window is fixed per image, so the divisions are
/// strength-reduced to multiplications.
fn threshold(luma: &GrayImage) -> Vec<bool> {
    use strength_reduce::StrengthReducedU64;
    let (w, h) = (luma.width() as usize, luma.height() as usize);
    let px = luma.as_raw();
    let s = (w / 8).max(1) as u64;
    let (window, cut) = (StrengthReducedU64::new(s), StrengthReducedU64::new(200 * s));
    let mut row_average = vec![0u64; w];
    let (mut avg_v, mut avg_u) = (0u64, 0u64);
    let mut dark = vec![false; w * h];
    for (y, (row, out)) in px.chunks_exact(w.max(1)).zip(dark.chunks_exact_mut(w.max(1))).enumerate() {
        row_average.fill(0);
        for x in 0..w {
            let (v, u) = if y % 2 == 0 { (w - 1 - x, x) } else { (x, w - 1 - x) };
            avg_v = avg_v * (s - 1) / window + u64::from(row[v]);
            avg_u = avg_u * (s - 1) / window + u64::from(row[u]);
            row_average[v] += avg_v;
            row_average[u] += avg_u;
        }
        for ((d, &p), &avg) in out.iter_mut().zip(row).zip(&row_average) {
            *d = u64::from(p) < avg * 95 / cut;
        }
    }
    dark
}

/// The QR code of `tests/fixtures/eml/phish-qr-code.eml`, as pixels (for
/// the tests here and the PDF reader's).
#[cfg(test)]
pub(crate) fn fixture_code() -> GrayImage {
    use base64::Engine as _;
    let eml = include_str!("../../tests/fixtures/eml/phish-qr-code.eml");
    let b64: String = eml
        .split("Content-Transfer-Encoding: base64")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.starts_with("--"))
        .collect();
    let png = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
    image::load_from_memory(&png).map(|i| i.to_luma8()).unwrap_or_default()
}

/// The URL in [`fixture_code`].
#[cfg(test)]
pub(crate) const FIXTURE_URL: &str = "https://login.micros0ft.com/verify?id=77";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_images_are_harmless() {
        assert!(decode(b"not an image").is_empty());
        let huge = scan(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xff\xff\xff");
        assert!(huge.texts.is_empty(), "huge declared size refused");
    }

    fn png(img: &GrayImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn issue_18_big_images_are_shrunk_to_the_pixel_budget() {
        // Issue 18: a 2048² noise PNG took 191 s and a 4096² one never
        // finished. The detector now sees at most MAX_PIXELS.
        let mut seed = 0x2545_f491_u32;
        let noise = GrayImage::from_fn(2048, 2048, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            image::Luma([if seed & 1 == 0 { 0 } else { 255 }])
        });
        let Loaded { luma, shrunk_from } = load(&png(&noise)).unwrap().unwrap();
        assert_eq!(shrunk_from, Some((2048, 2048)));
        let pixels = u64::from(luma.width()) * u64::from(luma.height());
        assert!(pixels <= MAX_PIXELS && pixels > MAX_PIXELS / 2, "{pixels}");
    }

    #[test]
    fn fit_keeps_the_aspect_ratio_within_budget() {
        for (w, h) in [(4096, 4096), (4096, 1), (1, 4096), (3000, 2000), (1025, 1025)] {
            let (nw, nh) = fit(w, h);
            assert!(u64::from(nw) * u64::from(nh) <= MAX_PIXELS, "{w}x{h} -> {nw}x{nh}");
            assert!(nw >= 1 && nh >= 1);
        }
    }

    #[test]
    fn images_too_small_for_a_code_are_not_decoded() {
        for (w, h) in [(1, 1), (20, 400), (600, 16)] {
            let r = scan(&png(&GrayImage::from_pixel(w, h, image::Luma([255]))));
            assert!(r.too_small && r.pixels == 0 && r.limit.is_none(), "{w}x{h}: {r:?}");
        }
        let r = scan(&png(&GrayImage::from_pixel(21, 21, image::Luma([255]))));
        assert!(!r.too_small && r.pixels == 441, "{r:?}");
    }

    #[test]
    fn codes_in_colour_and_on_transparent_backgrounds_are_read() {
        let code = fixture_code();
        let encode = |img: image::DynamicImage| {
            let mut out = Vec::new();
            img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
            out
        };
        // Dark blue modules on a light yellow page.
        let coloured = image::RgbImage::from_fn(code.width(), code.height(), |x, y| {
            if code.get_pixel(x, y)[0] < 128 {
                image::Rgb([20, 30, 120])
            } else {
                image::Rgb([255, 250, 205])
            }
        });
        assert_eq!(decode(&encode(coloured.into())), vec![FIXTURE_URL.to_string()]);
        // Black modules, everything else transparent black: read as black
        // on black before alpha was laid over white.
        let transparent = image::RgbaImage::from_fn(code.width(), code.height(), |x, y| {
            image::Rgba([0, 0, 0, if code.get_pixel(x, y)[0] < 128 { 255 } else { 0 }])
        });
        assert_eq!(decode(&encode(transparent.into())), vec![FIXTURE_URL.to_string()]);
        let grey_alpha = image::GrayAlphaImage::from_fn(code.width(), code.height(), |x, y| {
            image::LumaA([0, if code.get_pixel(x, y)[0] < 128 { 255 } else { 0 }])
        });
        assert_eq!(decode(&encode(grey_alpha.into())), vec![FIXTURE_URL.to_string()]);
    }

    /// Issue 21: a JPEG is read as its luma plane alone; the code in it
    /// reads as before, and the plane is the grey the `image` path gives
    /// (the Y of YCbCr against Rec. 709 weights: a few levels apart).
    #[test]
    fn jpegs_are_read_from_their_luma_plane() {
        let code = fixture_code();
        let big = image::imageops::resize(&code, code.width() * 4, code.height() * 4, image::imageops::FilterType::Nearest);
        let coloured = image::RgbImage::from_fn(big.width(), big.height(), |x, y| {
            if big.get_pixel(x, y)[0] < 128 {
                image::Rgb([20, 30, 120])
            } else {
                image::Rgb([255, 250, 205])
            }
        });
        let mut jpeg = Vec::new();
        image::DynamicImage::from(coloured)
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let luma = jpeg_luma(&jpeg).expect("a YCbCr JPEG has a luma plane");
        let via_image = greyscale(image::load_from_memory(&jpeg).unwrap());
        assert_eq!(luma.dimensions(), via_image.dimensions());
        let diff: u64 = luma
            .as_raw()
            .iter()
            .zip(via_image.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        assert!(
            diff / (luma.as_raw().len() as u64) < 8,
            "mean difference {}",
            diff / luma.as_raw().len() as u64
        );
        assert_eq!(decode(&jpeg), vec![FIXTURE_URL.to_string()]);
        assert_eq!(
            jpeg_luma(b"\xff\xd8\xff\xe0 not a jpeg"),
            None,
            "a broken file goes the image crate's way"
        );
    }

    /// Deterministic pixels of every kind the threshold meets: noise,
    /// gradients, flat areas, sizes odd and even.
    fn samples() -> Vec<GrayImage> {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut v = vec![fixture_code(), GrayImage::from_pixel(21, 21, image::Luma([255]))];
        for (w, h) in [(21, 21), (64, 33), (257, 130), (1024, 3), (9, 700)] {
            v.push(GrayImage::from_fn(w, h, |_, _| image::Luma([next() as u8])));
            v.push(GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8])));
        }
        v
    }

    #[test]
    fn issue_21_the_threshold_is_rqrrs_to_the_bit() {
        for img in samples() {
            let (w, h) = (img.width() as usize, img.height() as usize);
            let theirs = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img.get_pixel(x as u32, y as u32)[0]);
            let dark = threshold(&img);
            let ours = rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| dark[y * w + x]);
            for y in 0..h {
                for x in 0..w {
                    assert!(theirs.get_pixel_at(x, y) == ours.get_pixel_at(x, y), "{w}x{h} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn a_code_in_a_large_picture_is_read_after_shrinking() {
        // A flyer-sized picture (3000×2000, six megapixels) with the code
        // printed at twice its size near one corner.
        let code = fixture_code();
        let scale = 2;
        let (left, top) = (3000 - code.width() * scale - 40, 2000 - code.height() * scale - 40);
        let mut page = GrayImage::from_pixel(3000, 2000, image::Luma([255]));
        for (x, y, p) in code.enumerate_pixels() {
            for dy in 0..scale {
                for dx in 0..scale {
                    page.put_pixel(left + x * scale + dx, top + y * scale + dy, *p);
                }
            }
        }
        let r = scan(&png(&page));
        assert_eq!(r.shrunk_from, Some((3000, 2000)));
        assert_eq!(r.texts, vec![FIXTURE_URL.to_string()]);
    }

    #[test]
    fn small_images_are_searched_whole() {
        let white = GrayImage::from_pixel(300, 200, image::Luma([255]));
        let r = scan(&png(&white));
        assert_eq!((r.pixels, r.shrunk_from, r.limit), (60_000, None, None));
    }
}
