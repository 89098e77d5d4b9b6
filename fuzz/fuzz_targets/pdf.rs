#![no_main]
//! Any byte string as a PDF attachment.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = postern::scan::pdf::scan(data, 2);
    assert!(r.links.len() <= postern::scan::pdf::MAX_LINKS);
    assert!(r.images_scanned <= 2);
});
