//! Fuzzes the webpack/rspack stats reader: any bytes give a result or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = perfkit_bundle::parse_webpack_stats(data);
});
