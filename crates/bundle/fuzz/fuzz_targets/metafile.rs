//! Fuzzes the esbuild metafile reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = perfkit_bundle::parse_esbuild_metafile(data);
});
