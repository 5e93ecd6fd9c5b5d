//! Fuzzes the source map reader, the VLQ decoder and attribution: the input is split into
//! a map and the generated code it describes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (map, code) = data.split_at(split);
    if let Ok(sm) = perfkit_bundle::sourcemap::SourceMap::parse(map) {
        let a = sm.attribute(code);
        let total: u64 = a.per_source.iter().sum::<u64>() + a.unmapped;
        assert_eq!(
            total,
            code.len() as u64,
            "sources + unmapped must add up to the file"
        );
    }
    if let Ok(text) = std::str::from_utf8(map) {
        let mut warnings = Vec::new();
        let _ = perfkit_bundle::sourcemap::decode_mappings(text, 3, 1 << 16, &mut warnings);
    }
});
