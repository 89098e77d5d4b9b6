#![no_main]
//! URL normalisation and safe-link unwrapping on arbitrary strings.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(u) = postern::scan::urls::normalise(s) {
            let _ = postern::scan::urls::registrable(&u);
        }
        let mut set = std::collections::BTreeSet::new();
        postern::scan::urls::from_text(s, &mut set);
    }
});
