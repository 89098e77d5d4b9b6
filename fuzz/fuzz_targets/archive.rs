#![no_main]
//! Any byte string as an attachment: type sniffing and archive listing
//! stay within their entry and byte bounds.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = postern::scan::attach::describe(Some("a.zip"), "application/zip", data, &mut |_| {});
    assert!(a.entries.len() <= postern::scan::attach::MAX_ARCHIVE_ENTRIES);
});
