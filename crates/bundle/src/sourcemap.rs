//! Source maps: a typed reader of the few fields used, our own base64 VLQ decoder of
//! `mappings`, and attribution of a generated file's bytes to its sources.
//!
//! Attribution follows the way source-map-explorer counts: on each generated line a
//! segment covers the bytes from its column up to the next segment's column (or the end of
//! the line). Columns are UTF-16 code units, as the source map specification says, and are
//! converted to byte offsets. Bytes before the first segment of a line, segments without a
//! source, line terminators and the trailing `sourceMappingURL` comment count as
//! `unmapped`, so the sources plus `unmapped` add up to the file's size exactly.

use crate::error::BundleError;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use std::fmt;

/// The fields of a source map that attribution needs.
#[derive(Debug, Deserialize)]
struct RawMap {
    #[serde(default)]
    version: Option<IgnoredAny>,
    #[serde(default)]
    sources: Vec<Option<String>>,
    #[serde(default, rename = "sourceRoot")]
    source_root: Option<String>,
    #[serde(default)]
    mappings: Option<String>,
    #[serde(default, rename = "sourcesContent")]
    sources_content: Option<Vec<StrLen>>,
    #[serde(default)]
    sections: Option<Vec<Section>>,
}

/// One part of an indexed source map.
#[derive(Debug, Deserialize)]
struct Section {
    offset: Offset,
    #[serde(default)]
    map: Option<RawMap>,
    #[serde(default)]
    url: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Offset {
    line: u32,
    column: u32,
}

/// Generated lines beyond this are ignored (with a warning): a guard against hostile maps
/// whose `mappings` are millions of `;`.
pub const DEFAULT_MAX_LINES: usize = 1 << 22;

/// The byte length of a string (or 0 for `null`), read without keeping the string.
#[derive(Debug, Default, Clone, Copy)]
struct StrLen(u64);

impl<'de> Deserialize<'de> for StrLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrLen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrLen, E> {
                Ok(StrLen(v.len() as u64))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrLen, E> {
                Ok(StrLen(0))
            }
            fn visit_none<E: de::Error>(self) -> Result<StrLen, E> {
                Ok(StrLen(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A parsed source map: source paths (with `sourceRoot` applied) and decoded segments.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Source paths as written in the map, after `sourceRoot`.
    pub sources: Vec<String>,
    /// Byte length of each source's `sourcesContent` entry, when the map embeds it.
    pub content_lengths: Vec<Option<u64>>,
    /// Segments per generated line: `(generated column, source index)`.
    pub lines: Vec<Vec<Segment>>,
    /// Problems found while decoding that did not stop it.
    pub warnings: Vec<String>,
}

/// One mapping segment of a generated line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Generated column, in UTF-16 code units.
    pub column: u32,
    /// Index into [`SourceMap::sources`], or `None` for a segment without a source.
    pub source: Option<u32>,
}

/// Where a generated file's bytes come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Bytes per source, parallel to [`SourceMap::sources`].
    pub per_source: Vec<u64>,
    /// Bytes not attributed to any source.
    pub unmapped: u64,
}

impl SourceMap {
    /// Parses a source map (plain or indexed, with `sections`) from JSON bytes.
    pub fn parse(bytes: &[u8]) -> Result<SourceMap, BundleError> {
        Self::parse_with_limit(bytes, DEFAULT_MAX_LINES)
    }

    /// [`SourceMap::parse`], decoding at most `max_lines` generated lines (a caller that
    /// knows the generated file passes its line count).
    pub fn parse_with_limit(bytes: &[u8], max_lines: usize) -> Result<SourceMap, BundleError> {
        let raw: RawMap =
            serde_json::from_slice(bytes).map_err(|e| BundleError::json("source map", e))?;
        Self::from_raw(raw, max_lines.max(1), 0)
    }

    fn from_raw(raw: RawMap, max_lines: usize, depth: usize) -> Result<SourceMap, BundleError> {
        let _ = raw.version;
        if let Some(sections) = raw.sections {
            if depth > 0 {
                return Err(BundleError::Unsupported(
                    "nested sections in an indexed source map".into(),
                ));
            }
            return Self::from_sections(sections, max_lines);
        }
        let root = raw.source_root.unwrap_or_default();
        let sources: Vec<String> = raw
            .sources
            .into_iter()
            .map(|s| join_root(&root, s.as_deref().unwrap_or("")))
            .collect();
        let mut content_lengths: Vec<Option<u64>> = vec![None; sources.len()];
        if let Some(contents) = raw.sources_content {
            for (slot, len) in content_lengths.iter_mut().zip(contents) {
                *slot = Some(len.0);
            }
        }
        let mut warnings = Vec::new();
        let lines = decode_mappings(
            raw.mappings.as_deref().unwrap_or(""),
            sources.len(),
            max_lines,
            &mut warnings,
        );
        Ok(SourceMap {
            sources,
            content_lengths,
            lines,
            warnings,
        })
    }

    /// Flattens an indexed map: each section's lines shift by its offset (and the columns
    /// of its first line by the offset's column), its sources append to the list.
    fn from_sections(sections: Vec<Section>, max_lines: usize) -> Result<SourceMap, BundleError> {
        let mut out = SourceMap::default();
        for section in sections {
            let Some(map) = section.map else {
                if section.url.is_some() {
                    return Err(BundleError::Unsupported(
                        "indexed source map sections by `url`".into(),
                    ));
                }
                continue;
            };
            let sub = Self::from_raw(map, max_lines, 1)?;
            let base = out.sources.len() as u32;
            out.sources.extend(sub.sources);
            out.content_lengths.extend(sub.content_lengths);
            out.warnings.extend(sub.warnings);
            let first = section.offset.line as usize;
            for (i, segments) in sub.lines.into_iter().enumerate() {
                let line = first.saturating_add(i);
                if line >= max_lines {
                    warn(&mut out.warnings, || {
                        format!("section at line {first} goes past {max_lines} generated lines")
                    });
                    break;
                }
                if segments.is_empty() {
                    continue;
                }
                if out.lines.len() <= line {
                    out.lines.resize(line + 1, Vec::new());
                }
                let shift = if i == 0 { section.offset.column } else { 0 };
                out.lines[line].extend(segments.into_iter().map(|s| Segment {
                    column: s.column.saturating_add(shift),
                    source: s.source.map(|x| x + base),
                }));
            }
        }
        Ok(out)
    }

    /// Attributes the bytes of `code`, the generated file, to this map's sources.
    pub fn attribute(&self, code: &[u8]) -> Attribution {
        let mut per_source = vec![0u64; self.sources.len()];
        let total = code.len() as u64;
        let body = &code[..code.len() - source_map_comment_len(code)];
        let mut mapped = 0u64;
        let mut cols: Vec<Segment> = Vec::new();
        for (index, line) in split_lines(body).enumerate() {
            let Some(segments) = self.lines.get(index) else {
                break;
            };
            if segments.is_empty() || line.is_empty() {
                continue;
            }
            cols.clear();
            cols.extend_from_slice(segments);
            if !cols.windows(2).all(|w| w[0].column <= w[1].column) {
                cols.sort_by_key(|s| s.column);
            }
            let offsets = byte_offsets(line, &cols);
            for (i, seg) in cols.iter().enumerate() {
                let start = offsets[i];
                let end = offsets.get(i + 1).copied().unwrap_or(line.len());
                let len = end.saturating_sub(start) as u64;
                if let Some(slot) = seg.source.and_then(|src| per_source.get_mut(src as usize)) {
                    *slot += len;
                    mapped += len;
                }
            }
        }
        Attribution {
            per_source,
            unmapped: total - mapped.min(total),
        }
    }
}

/// Joins `sourceRoot` and a source path the way source map consumers do.
fn join_root(root: &str, source: &str) -> String {
    if root.is_empty() || source.contains("://") || source.starts_with('/') {
        source.to_owned()
    } else if root.ends_with('/') {
        format!("{root}{source}")
    } else {
        format!("{root}/{source}")
    }
}

/// The length of a trailing `//# sourceMappingURL=...` or `/*# sourceMappingURL=... */`
/// comment (with surrounding whitespace), which is no source's code.
fn source_map_comment_len(code: &[u8]) -> usize {
    let end = code.len();
    let trimmed_end = end
        - code
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let last_line_start = code[..trimmed_end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let last = &code[last_line_start..trimmed_end];
    let is_comment = (last.starts_with(b"//# sourceMappingURL=")
        || last.starts_with(b"//@ sourceMappingURL=")
        || last.starts_with(b"/*# sourceMappingURL="))
        && !last.is_empty();
    if is_comment { end - last_line_start } else { 0 }
}

/// Lines without their terminator (`\n`; a `\r` before it is kept as content).
fn split_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n')
}

/// Byte offsets within `line` of each segment's UTF-16 column, clamped to the line.
fn byte_offsets(line: &[u8], segments: &[Segment]) -> Vec<usize> {
    if line.is_ascii() {
        return segments
            .iter()
            .map(|s| (s.column as usize).min(line.len()))
            .collect();
    }
    let mut out = Vec::with_capacity(segments.len());
    let mut byte = 0usize;
    let mut utf16 = 0u64;
    for seg in segments {
        let target = u64::from(seg.column);
        while utf16 < target && byte < line.len() {
            let b = line[byte];
            let (width, units) = match b {
                0x00..=0x7f => (1, 1),
                0xc0..=0xdf => (2, 1),
                0xe0..=0xef => (3, 1),
                0xf0..=0xf7 => (4, 2),
                _ => (1, 1), // invalid or continuation byte: one unit, as a replacement char
            };
            byte = (byte + width).min(line.len());
            utf16 += units;
        }
        out.push(byte);
    }
    out
}

const MAX_WARNINGS: usize = 20;

fn warn(warnings: &mut Vec<String>, msg: impl FnOnce() -> String) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(msg());
    } else if warnings.len() == MAX_WARNINGS {
        warnings.push("further source map warnings suppressed".into());
    }
}

fn base64_value(c: u8) -> Option<i64> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as i64)
}

/// Decodes one base64 VLQ value starting at `*pos`; `None` on a bad digit or overflow.
fn decode_vlq(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let mut result: i64 = 0;
    let mut shift = 0u32;
    loop {
        let digit = base64_value(*bytes.get(*pos)?)?;
        *pos += 1;
        if shift > 32 {
            return None; // more than 32 bits of magnitude: not a valid mapping value
        }
        result |= (digit & 31) << shift;
        shift += 5;
        if digit & 32 == 0 {
            break;
        }
    }
    let negative = result & 1 == 1;
    let magnitude = result >> 1;
    Some(if negative { -magnitude } else { magnitude })
}

/// Decodes `mappings` into segments per generated line. Malformed segments are skipped
/// with a warning; values out of range make the segment unmapped.
pub fn decode_mappings(
    mappings: &str,
    n_sources: usize,
    max_lines: usize,
    warnings: &mut Vec<String>,
) -> Vec<Vec<Segment>> {
    let bytes = mappings.as_bytes();
    let mut lines: Vec<Vec<Segment>> = vec![Vec::new()];
    let mut pos = 0usize;
    let mut source: i64 = 0;
    let mut orig_line: i64 = 0;
    let mut orig_col: i64 = 0;
    let mut name: i64 = 0;
    let mut column: i64 = 0;
    let mut fields = [0i64; 5];
    while pos < bytes.len() {
        match bytes[pos] {
            b';' => {
                if lines.len() >= max_lines {
                    warn(warnings, || {
                        format!("mappings go past {max_lines} generated lines; the rest is ignored")
                    });
                    break;
                }
                lines.push(Vec::new());
                column = 0;
                pos += 1;
                continue;
            }
            b',' => {
                pos += 1;
                continue;
            }
            _ => {}
        }
        let seg_start = pos;
        let mut n = 0usize;
        let mut bad = false;
        while pos < bytes.len() && bytes[pos] != b',' && bytes[pos] != b';' {
            match decode_vlq(bytes, &mut pos) {
                Some(v) if n < 5 => {
                    fields[n] = v;
                    n += 1;
                }
                Some(_) => {
                    bad = true;
                    n += 1;
                }
                None => {
                    bad = true;
                    // Skip to the end of this segment.
                    while pos < bytes.len() && bytes[pos] != b',' && bytes[pos] != b';' {
                        pos += 1;
                    }
                }
            }
        }
        let line_no = lines.len();
        if bad || !(n == 1 || n == 4 || n == 5) {
            warn(warnings, || {
                format!("malformed mapping segment at byte {seg_start} (generated line {line_no})")
            });
            continue;
        }
        column = column.saturating_add(fields[0]);
        let seg_source = if n >= 4 {
            source = source.saturating_add(fields[1]);
            orig_line = orig_line.saturating_add(fields[2]);
            orig_col = orig_col.saturating_add(fields[3]);
            if n == 5 {
                name = name.saturating_add(fields[4]);
            }
            if source < 0 || source as u64 >= n_sources as u64 {
                warn(warnings, || {
                    format!(
                        "mapping on generated line {line_no} names source {source}, out of range (0..{n_sources})"
                    )
                });
                None
            } else {
                Some(source as u32)
            }
        } else {
            None
        };
        if !(0..=i64::from(u32::MAX)).contains(&column) {
            warn(warnings, || {
                format!("mapping on generated line {line_no} has column {column}, out of range")
            });
            continue;
        }
        if let Some(current) = lines.last_mut() {
            current.push(Segment {
                column: column as u32,
                source: seg_source,
            });
        }
    }
    let _ = (orig_line, orig_col, name);
    lines
}

/// Reads a `sourceMappingURL` from the end of generated code: an external file name, or
/// the decoded JSON of an inline `data:` URI.
pub enum MapRef {
    /// A path relative to the generated file.
    External(String),
    /// The map itself, decoded from a base64 (or plain) data URI.
    Inline(Vec<u8>),
}

/// Finds the source map reference of `code`, if any.
pub fn find_map_ref(code: &[u8]) -> Option<MapRef> {
    let n = source_map_comment_len(code);
    if n == 0 {
        return None;
    }
    let comment = std::str::from_utf8(&code[code.len() - n..]).ok()?.trim();
    let url = comment.split_once("sourceMappingURL=")?.1;
    let url = url.trim_end_matches("*/").trim();
    if let Some(data) = url.strip_prefix("data:") {
        let (meta, payload) = data.split_once(',')?;
        if meta.ends_with(";base64") {
            return base64_decode(payload.as_bytes()).map(MapRef::Inline);
        }
        return Some(MapRef::Inline(payload.as_bytes().to_vec()));
    }
    Some(MapRef::External(url.to_owned()))
}

/// Standard base64 decoding (padding optional); `None` on a bad character.
pub fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in input {
        if c == b'=' || c.is_ascii_whitespace() {
            continue;
        }
        let v = base64_value(c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A VLQ-encoding helper for tests and fixtures: encodes one value.
pub fn encode_vlq(value: i64, out: &mut String) {
    const CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut v: u64 = if value < 0 {
        ((value.unsigned_abs()) << 1) | 1
    } else {
        (value as u64) << 1
    };
    loop {
        let mut digit = (v & 31) as usize;
        v >>= 5;
        if v > 0 {
            digit |= 32;
        }
        out.push(CHARS[digit] as char);
        if v == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlq_round_trips() {
        for v in [0i64, 1, -1, 15, 16, -16, 1000, -123456, 1 << 30] {
            let mut s = String::new();
            encode_vlq(v, &mut s);
            let mut pos = 0;
            assert_eq!(decode_vlq(s.as_bytes(), &mut pos), Some(v), "{s}");
            assert_eq!(pos, s.len());
        }
    }

    #[test]
    fn attributes_spans_and_unmapped() {
        // line 0: "abcdef": col 0 -> src0, col 2 -> src1, col 4 -> no source.
        // line 1: "ghij": col 1 -> src0 ("g" unmapped).
        let map = br#"{"version":3,"sources":["a.js","b.js"],"mappings":"AAAA,ECAA,E;CDAA"}"#;
        let sm = SourceMap::parse(map).unwrap();
        let code = b"abcdef\nghij\n//# sourceMappingURL=x.js.map\n";
        let a = sm.attribute(code);
        assert_eq!(a.per_source, vec![2 + 3, 2]);
        assert_eq!(
            a.per_source.iter().sum::<u64>() + a.unmapped,
            code.len() as u64
        );
    }

    #[test]
    fn utf16_columns_become_byte_offsets() {
        // "é" is 2 bytes, 1 UTF-16 unit; "😀" is 4 bytes, 2 units.
        let line = "é😀x".as_bytes();
        let segs = [
            Segment {
                column: 0,
                source: Some(0),
            },
            Segment {
                column: 1,
                source: Some(0),
            },
            Segment {
                column: 3,
                source: Some(0),
            },
        ];
        assert_eq!(byte_offsets(line, &segs), vec![0, 2, 6]);
    }

    #[test]
    fn hostile_mappings_warn_not_panic() {
        let mut w = Vec::new();
        let lines = decode_mappings(
            "AAAA,//////////////,gggggggggggggggggggggg,A!,AAAAAAA,AZZZ",
            1,
            DEFAULT_MAX_LINES,
            &mut w,
        );
        assert!(!w.is_empty());
        assert!(lines.len() == 1);
    }

    #[test]
    fn inline_map_is_decoded() {
        let code = b"x\n//# sourceMappingURL=data:application/json;charset=utf-8;base64,eyJ2ZXJzaW9uIjozfQ==\n";
        match find_map_ref(code) {
            Some(MapRef::Inline(bytes)) => assert_eq!(bytes, br#"{"version":3}"#),
            _ => panic!("no inline map"),
        }
    }

    #[test]
    fn indexed_maps_are_flattened() {
        let map = br#"{"version":3,"sections":[
            {"offset":{"line":0,"column":0},"map":{"version":3,"sources":["a.js"],"mappings":"AAAA"}},
            {"offset":{"line":0,"column":3},"map":{"version":3,"sources":["b.js"],"mappings":"AAAA;AAAA"}}]}"#;
        let sm = SourceMap::parse(map).unwrap();
        assert_eq!(sm.sources, vec!["a.js", "b.js"]);
        let a = sm.attribute(b"aaabbb\nbb");
        assert_eq!(a.per_source, vec![3, 5]);
        assert!(
            SourceMap::parse(br#"{"sections":[{"offset":{"line":0,"column":0},"url":"x.map"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn mappings_past_the_line_limit_are_cut() {
        let mappings = ";".repeat(1000);
        let json = format!(r#"{{"version":3,"sources":["a"],"mappings":"{mappings}AAAA"}}"#);
        let sm = SourceMap::parse_with_limit(json.as_bytes(), 10).unwrap();
        assert_eq!(sm.lines.len(), 10);
        assert!(!sm.warnings.is_empty());
    }
}
