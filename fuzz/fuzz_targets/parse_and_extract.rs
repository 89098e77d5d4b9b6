#![no_main]
//! Any byte string through the parse-once input builder: no panic, bounded work.
use libfuzzer_sys::fuzz_target;
use postern::scan::{InputOptions, ScanInput};

fuzz_target!(|data: &[u8]| {
    let opts = InputOptions {
        authserv_id: Some("mx.example.org".into()),
        ..Default::default()
    };
    let input = ScanInput::parse(data.to_vec(), &opts);
    let _ = input.observables();
});
