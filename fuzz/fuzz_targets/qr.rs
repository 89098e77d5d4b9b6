#![no_main]
//! Any byte string as an image for the QR decoder.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(postern::scan::qr::decode(data).len() <= 8);
});
