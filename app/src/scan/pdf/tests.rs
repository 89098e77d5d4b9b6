use super::load::{MAX_STREAMS, MAX_VALUES, declared_name, stream_keywords};
use super::*;
use ::image::GrayImage;
use lopdf::Document;
use lopdf::{Object, Stream, dictionary};

/// A one-page document with `extra` objects beside it (the page links
/// to nothing: the scan walks every object, not the page tree).
fn doc(extra: Vec<Object>, page: lopdf::Dictionary) -> Vec<u8> {
    let mut d = Document::with_version("1.7");
    // A classic cross-reference table: files with xref streams are refused.
    d.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let pages = d.new_object_id();
    let mut page = page;
    page.set("Type", "Page");
    page.set("Parent", pages);
    page.set("MediaBox", vec![0.into(), 0.into(), 612.into(), 792.into()]);
    let page = d.add_object(page);
    d.objects.insert(
        pages,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 }),
    );
    let catalog = d.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    d.trailer.set("Root", catalog);
    for o in extra {
        d.add_object(o);
    }
    let mut out = Vec::new();
    d.save_to(&mut out).unwrap();
    out
}

fn link(uri: &str) -> Object {
    Object::Dictionary(dictionary! {
        "Type" => "Annot", "Subtype" => "Link",
        "A" => dictionary! { "S" => "URI", "URI" => Object::string_literal(uri) },
    })
}

#[test]
fn links_and_running_actions_are_found_inline_and_indirect() {
    let page = dictionary! { "Annots" => vec![link("https://bit.ly/4pQx7Zk"), link("https://bit.ly/4pQx7Zk")] };
    let launch = Object::Dictionary(dictionary! { "S" => "Launch", "F" => Object::string_literal("cmd.exe") });
    let js = Object::Dictionary(dictionary! { "JS" => Object::string_literal("app.alert(1)") });
    let far = link(" https://evil.example/login ");
    let r = scan(&doc(vec![launch, js, far], page), 10);
    let mut links = r.links.clone();
    links.sort();
    assert_eq!(
        links,
        ["https://bit.ly/4pQx7Zk", "https://evil.example/login"],
        "de-duplicated, trimmed"
    );
    let mut actions = r.actions.clone();
    actions.sort();
    assert_eq!(actions, ["JavaScript", "Launch"]);
    assert_eq!(r.limit, None);
}

#[test]
fn an_ordinary_document_has_nothing() {
    let r = scan(&doc(vec![], dictionary! {}), 10);
    assert_eq!(r, PdfScan::default());
}

/// The QR code of `tests/fixtures/eml/phish-qr-code.eml`, as pixels.
fn qr_pixels() -> GrayImage {
    crate::scan::qr::fixture_code()
}

const QR_URL: &str = crate::scan::qr::FIXTURE_URL;

fn gray_image(luma: &GrayImage) -> Object {
    let mut s = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image",
            "Width" => i64::from(luma.width()), "Height" => i64::from(luma.height()),
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        luma.as_raw().clone(),
    );
    s.compress().unwrap();
    Object::Stream(s)
}

fn jpeg_image(luma: &GrayImage) -> Object {
    let mut jpeg = Vec::new();
    luma.write_to(&mut std::io::Cursor::new(&mut jpeg), ::image::ImageFormat::Jpeg)
        .unwrap();
    Object::Stream(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Filter" => "DCTDecode",
            "Width" => i64::from(luma.width()), "Height" => i64::from(luma.height()),
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        jpeg,
    ))
}

#[test]
fn qr_codes_are_read_from_raw_and_jpeg_images_within_the_message_budget() {
    let luma = qr_pixels();
    for image in [gray_image(&luma), jpeg_image(&luma)] {
        let r = scan(&doc(vec![image], dictionary! {}), 10);
        assert_eq!(r.qr_texts, [QR_URL], "{r:?}");
        assert_eq!(r.images_scanned, 1);
    }
    let both = doc(vec![gray_image(&luma), jpeg_image(&luma)], dictionary! {});
    let r = scan(&both, 1);
    assert_eq!(
        (r.images_scanned, r.qr_texts.len()),
        (1, 1),
        "one image left in the message's budget"
    );
    let r = scan(&both, 0);
    assert_eq!((r.images_scanned, r.qr_texts.len()), (0, 0));
}

#[test]
fn tiny_and_huge_images_are_not_decoded() {
    let tiny = gray_image(&GrayImage::from_pixel(16, 16, ::image::Luma([255])));
    let r = scan(&doc(vec![tiny], dictionary! {}), 10);
    assert_eq!((r.images_scanned, r.limit), (0, None), "a spacer is not an image searched");
    // Declared 4000x4000 RGB: 48 MB of samples, over the budget; not inflated.
    let huge = Object::Stream(Stream::new(
        dictionary! {
            "Subtype" => "Image", "Width" => 4000, "Height" => 4000,
            "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8, "Filter" => "FlateDecode",
        },
        vec![0; 64],
    ));
    let r = scan(&doc(vec![huge], dictionary! {}), 10);
    assert!(r.limit.as_deref().is_some_and(|l| l.contains("4000x4000")), "{r:?}");
}

/// A file of `n` object streams, written by hand: lopdf's writer keeps
/// object streams to itself.
fn object_streams(n: u32) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    let mut add = |out: &mut Vec<u8>, body: String| {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", offsets.len()).as_bytes());
    };
    add(&mut out, "<</Type/Catalog/Pages 2 0 R>>".into());
    add(&mut out, "<</Type/Pages/Kids[]/Count 0>>".into());
    for i in 0..n {
        let body = format!("{} 0 <</Note ({i})>>", 100_000 + i);
        let first = body.find('<').unwrap();
        add(
            &mut out,
            format!("<</Type/ObjStm/N 1/First {first}/Length {}>>stream\n{body}\nendstream", body.len()),
        );
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes());
    out
}

#[test]
fn files_with_object_streams_are_reported_not_loaded() {
    // lopdf parses each member to the end of its object, not to the next
    // offset, so nested arrays would multiply; such files are not loaded.
    let r = scan(&object_streams(3), 10);
    assert!(
        r.limit.as_deref().is_some_and(|l| l.contains("object or cross-reference streams")),
        "{r:?}"
    );
    let escaped = String::from_utf8(object_streams(1)).unwrap().replace("/ObjStm", "/Obj#53tm");
    let r = scan(escaped.as_bytes(), 10);
    assert!(
        r.limit.as_deref().is_some_and(|l| l.contains("object or cross-reference streams")),
        "{r:?}"
    );
    let r = scan(&doc(vec![], dictionary! {}), 10);
    assert_eq!(r.limit, None, "a classic file is read");
}

#[test]
fn values_past_the_budget_are_not_kept() {
    // 2 bytes of file, 120 of memory each: bare numbers are the cheapest
    // way to make lopdf allocate.
    let chunk = Object::Array(vec![Object::Integer(1); MAX_VALUES / 8]);
    let r = scan(&doc(vec![chunk.clone(); 7], dictionary! {}), 10);
    assert_eq!(r.limit, None, "{r:?}");
    let r = scan(&doc(vec![chunk; 9], dictionary! {}), 10);
    assert!(r.limit.as_deref().is_some_and(|l| l.contains("values or")), "{r:?}");
}

#[test]
fn damaged_or_oversized_files_are_a_limit_not_a_panic() {
    for data in [&b"%PDF-1.7\n"[..], b"%PDF-1.4\n1 0 obj <</URI (http://x", b"not a pdf at all", b""] {
        let r = scan(data, 10);
        assert!(r.links.is_empty() && r.limit.is_some(), "{r:?}");
    }
    let mut big = doc(vec![], dictionary! {});
    big.resize(MAX_PDF_BYTES + 1, b' ');
    let r = scan(&big, 10);
    assert!(r.limit.as_deref().is_some_and(|l| l.contains("not read")), "{r:?}");
}

#[test]
fn files_with_too_many_streams_are_not_loaded() {
    assert_eq!(
        stream_keywords(b"1 0 obj<<>>stream\r\nx\r\nendstream\nendobj 2 0 obj<<>>stream\nendstream"),
        2
    );
    assert_eq!(stream_keywords(b"streams stream endstream\n"), 0);
    assert_eq!(stream_keywords(b"<<>>stream \t\r\nx"), 1, "lopdf allows blanks before the line end");
    let r = scan(&object_streams(MAX_STREAMS as u32 + 1), 10);
    assert!(r.limit.as_deref().is_some_and(|l| l.contains("streams (over")), "{r:?}");
}

#[test]
fn links_in_utf16_and_without_a_scheme_are_read() {
    let mut utf16 = vec![0xfe, 0xff];
    utf16.extend("https://bit.ly/u16".encode_utf16().flat_map(u16::to_be_bytes));
    let page = dictionary! { "Annots" => vec![
        Object::Dictionary(dictionary! { "A" => dictionary! { "S" => "URI", "URI" => Object::String(utf16, lopdf::StringFormat::Hexadecimal) } }),
        link("www.example.net/offer"),
    ] };
    let bytes = doc(vec![], page);
    let r = scan(&bytes, 10);
    let mut links = r.links.clone();
    links.sort();
    assert_eq!(links, ["http://www.example.net/offer", "https://bit.ly/u16"]);
}

#[test]
fn a_uri_given_by_reference_is_resolved() {
    // Objects added after the page get ids from 4 on: the string is 5.
    let action = Object::Dictionary(dictionary! { "S" => "URI", "URI" => (5u32, 0u16) });
    let target = Object::string_literal("https://evil.example/by-ref");
    let r = scan(&doc(vec![action, target], dictionary! {}), 10);
    assert_eq!(r.links, ["https://evil.example/by-ref"], "{r:?}");
}

#[test]
fn links_past_the_bound_are_a_limit() {
    let links: Vec<Object> = (0..MAX_LINKS + 5).map(|i| link(&format!("https://x{i}.example/"))).collect();
    let r = scan(&doc(vec![], dictionary! { "Annots" => links }), 10);
    assert_eq!(r.links.len(), MAX_LINKS);
    assert!(r.limit.as_deref().is_some_and(|l| l.contains("links")), "{r:?}");
}

#[test]
fn decoy_images_do_not_use_up_the_budget() {
    let tiny = gray_image(&GrayImage::from_pixel(8, 8, ::image::Luma([255])));
    let mut objects = vec![tiny; 6];
    objects.push(gray_image(&qr_pixels()));
    let r = scan(&doc(objects, dictionary! {}), 1);
    assert_eq!((r.images_scanned, r.qr_texts.as_slice()), (1, &[QR_URL.to_string()][..]), "{r:?}");
}

#[test]
fn encrypted_files_are_reported_not_loaded() {
    let enc = |d: &[u8]| declared_name(d, &[b"Encrypt"]).is_some();
    assert!(enc(b"trailer <</Size 9/Encrypt 8 0 R/Root 1 0 R>>"));
    assert!(enc(b"<</Encr#79pt 8 0 R>>"), "escaped names are decoded");
    assert!(enc(b"<</Encrypt\0 8 0 R>>"), "NUL ends a name, as lopdf reads it");
    assert!(!enc(b"<</EncryptMetadata false/Encrypted 1>>"));
    let mut data = doc(vec![], dictionary! {});
    data.extend_from_slice(b"\ntrailer <</Encrypt 9 0 R>>\n");
    let r = scan(&data, 10);
    assert!(r.limit.as_deref().is_some_and(|l| l.contains("encrypted")), "{r:?}");
}

#[test]
fn an_object_stream_listing_one_offset_twice_is_refused() {
    let body = "100 0 101 0 <</Big [1 1 1]>>";
    let first = body.find('<').unwrap();
    let stream = format!("<</Type/ObjStm/N 2/First {first}/Length {}>>stream\n{body}\nendstream", body.len());
    let mut out = b"%PDF-1.7\n".to_vec();
    let offsets = [out.len()];
    out.extend_from_slice(format!("1 0 obj\n{stream}\nendobj\n").as_bytes());
    let xref = out.len();
    out.extend_from_slice(
        format!(
            "xref\n0 2\n0000000000 65535 f \n{:010} 00000 n \ntrailer\n<</Size 2>>\nstartxref\n{xref}\n%%EOF\n",
            offsets[0]
        )
        .as_bytes(),
    );
    let r = scan(&out, 10);
    assert!(r.limit.as_deref().is_some(), "{r:?}");
}
