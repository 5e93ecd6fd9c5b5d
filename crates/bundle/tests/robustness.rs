//! Malformed and hostile inputs give an error or a warning, never a panic or a hang. The
//! fuzz targets (crates/bundle/fuzz) run the same entry points; this is their corpus as an
//! ordinary test, plus random bytes from proptest.

use perfkit_bundle::sourcemap::SourceMap;
use perfkit_bundle::{parse_esbuild_metafile, parse_webpack_stats};
use proptest::prelude::*;

fn corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        "{",
        "[]",
        "null",
        "{}",
        r#"{"assets": 5}"#,
        r#"{"assets":[{"name":"a.js","size":-5}],"chunks":[{"id":1}]}"#,
        r#"{"assets":[{"name":"a.js","size":1e308}]}"#,
        r#"{"assets":[{"name":"a.js","size":123456789012345678901234567890}]}"#,
        r#"{"modules":[{"name":"x","size":"big","chunks":[1]}]}"#,
        r#"{"modules":[{"name":"x","chunks":[{"id":1}]}]}"#,
        r#"{"chunks":[{"id":null}]}"#,
        r#"{"children":[{"children":[{"children":[]}]}]}"#,
        r#"{"inputs":{},"outputs":{"a.js":{"inputs":{"x":{"bytesInOutput":"no"}}}}}"#,
        r#"{"inputs":{"a":{"bytes":18446744073709551615}},"outputs":{"o.js":{"inputs":{"a":{"bytesInOutput":18446744073709551615}},"bytes":1}}}"#,
        r#"{"version":3,"sources":["a"],"mappings":"AAAA,gggggggggggggggggggggggg,//////,A"}"#,
        r#"{"version":3,"sources":["a"],"mappings":"AAAAA,AAAAAAA,BA,;;;;;;CAAA"}"#,
        r#"{"version":3,"sources":[null,5],"mappings":"AAAA"}"#,
        r#"{"version":3,"sections":[]}"#,
        r#"{"version":3,"sources":["a"],"mappings":"A!@#$%^&*()"}"#,
        "\u{feff}{}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Deep nesting: serde_json's recursion limit turns it into an error, not a stack overflow.
    let deep = format!("{{\"children\":[{}]}}", "{\"children\":[".repeat(5000));
    v.push(deep.into_bytes());
    let deep_modules = format!(
        "{{\"modules\":[{}]}}",
        "{\"name\":\"m\",\"modules\":[".repeat(3000)
    );
    v.push(deep_modules.into_bytes());
    v.push("[".repeat(100_000).into_bytes());
    // Truncations of a valid stats document.
    let valid = br#"{"assets":[{"name":"a.js","size":10}],"chunks":[{"id":1,"names":["main"],"initial":true,"files":["a.js"]}],"modules":[{"name":"./a.js","size":3,"chunks":[1]}]}"#;
    for cut in (0..valid.len()).step_by(7) {
        v.push(valid[..cut].to_vec());
    }
    v
}

fn exercise(data: &[u8]) {
    let _ = parse_webpack_stats(data);
    let _ = parse_esbuild_metafile(data);
    if let Ok(map) = SourceMap::parse(data) {
        let code = b"abc\xe2\x82\xacdef\nline two\n\xff\xfe\n";
        let a = map.attribute(code);
        assert_eq!(
            a.per_source.iter().sum::<u64>() + a.unmapped,
            code.len() as u64
        );
    }
}

#[test]
fn corpus_of_malformed_inputs_never_panics() {
    for input in corpus() {
        exercise(&input);
    }
}

#[test]
fn errors_are_clear() {
    let e = parse_webpack_stats(br#"{"modules":[{"name":"x","size":"big"}]}"#).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("webpack stats") && msg.contains("line 1 column"),
        "{msg}"
    );
    let deep = format!("{{\"children\":[{}]}}", "{\"children\":[".repeat(5000));
    let msg = parse_webpack_stats(deep.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("recursion limit"), "{msg}");
    let msg = SourceMap::parse(
        br#"{"version":3,"sections":[{"offset":{"line":0,"column":0},"url":"a.map"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("sections"), "{msg}");
}

#[test]
fn out_of_range_mappings_are_warnings() {
    let map =
        SourceMap::parse(br#"{"version":3,"sources":["a"],"mappings":"AAAA,CCAA,gggggggggggg"}"#)
            .unwrap();
    assert!(!map.warnings.is_empty());
    let a = map.attribute(b"xyz");
    assert_eq!(a.per_source, vec![1]);
    assert_eq!(a.unmapped, 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&data);
    }

    #[test]
    fn random_mappings_add_up(mappings in "[A-Za-z0-9+/,;]{0,200}", code in "[a-z\n]{0,200}") {
        let json = format!(r#"{{"version":3,"sources":["a","b","c"],"mappings":"{mappings}"}}"#);
        let map = SourceMap::parse(json.as_bytes()).unwrap();
        let a = map.attribute(code.as_bytes());
        prop_assert_eq!(a.per_source.iter().sum::<u64>() + a.unmapped, code.len() as u64);
    }
}
