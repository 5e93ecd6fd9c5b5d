//! Trace readers: every format of the shared cache traces, with `.gz`, `.xz` and `.zst`
//! decompressed transparently (by extension or by magic bytes), and errors that name the
//! file and the position (line, or byte offset for binary records).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::hash::mix64;

/// A loaded trace: one key per request, and request sizes when the format has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// A display name (the file name without directories and compression suffix).
    pub name: String,
    /// The key of each request.
    pub keys: Vec<u64>,
    /// The size of each request, for formats that record one (`csv`, `adaptsize`).
    pub sizes: Option<Vec<u32>>,
}

impl Trace {
    /// Number of requests.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the trace has no request.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of distinct keys.
    pub fn distinct(&self) -> usize {
        let mut set = crate::hash::U64Map::default();
        for &k in &self.keys {
            set.insert(k, ());
        }
        set.len()
    }
}

/// The record formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// Guess from the file name, then from the content.
    Auto,
    /// Text, one key per line; any token (numbers are used as they are, other tokens
    /// hashed).
    Plain,
    /// LIRS traces: text, one integer per line; lines starting with `*` are skipped.
    Lirs,
    /// ARC traces: text `start count ignored request`; each line is the keys
    /// `start..start+count`.
    Arc,
    /// cache2k traces: big-endian signed 32-bit keys.
    Cache2k,
    /// Big-endian signed 64-bit keys.
    I64Be,
    /// Big-endian unsigned 32-bit keys.
    U32Be,
    /// CSV with a header naming the key column (`lbn`, `key`, `id`, `obj_id`) and
    /// optionally `size`; without a known header, the first column is the key.
    Csv,
    /// webcachesim/AdaptSize text `time id size`.
    AdaptSize,
}

impl TraceFormat {
    /// Every format with its CLI name.
    pub const ALL: [TraceFormat; 9] = [
        TraceFormat::Auto,
        TraceFormat::Plain,
        TraceFormat::Lirs,
        TraceFormat::Arc,
        TraceFormat::Cache2k,
        TraceFormat::I64Be,
        TraceFormat::U32Be,
        TraceFormat::Csv,
        TraceFormat::AdaptSize,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Auto => "auto",
            TraceFormat::Plain => "plain",
            TraceFormat::Lirs => "lirs",
            TraceFormat::Arc => "arc",
            TraceFormat::Cache2k => "cache2k",
            TraceFormat::I64Be => "i64be",
            TraceFormat::U32Be => "u32be",
            TraceFormat::Csv => "csv",
            TraceFormat::AdaptSize => "adaptsize",
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TraceFormat {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Self, TraceError> {
        let l = s.trim().to_ascii_lowercase();
        let l = match l.as_str() {
            "i32be" => "cache2k",
            "lis" => "arc",
            "text" | "txt" => "plain",
            other => other,
        }
        .to_owned();
        Self::ALL
            .into_iter()
            .find(|f| f.name() == l)
            .ok_or(TraceError::UnknownFormat(s.to_owned()))
    }
}

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The compressed stream is corrupt or truncated.
    #[error("{path}: corrupt {codec} data near compressed byte {offset}: {message}")]
    Decompress {
        /// The file.
        path: PathBuf,
        /// gzip, xz or zstd.
        codec: &'static str,
        /// How far into the compressed file the decoder had read.
        offset: u64,
        /// The decoder's message.
        message: String,
    },
    /// A text record does not parse.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A binary file ends inside a record.
    #[error(
        "{path}: truncated record at byte {offset}: {remainder} trailing byte(s), records are {record} bytes"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset of the incomplete record (in the decompressed data).
        offset: u64,
        /// Bytes left over.
        remainder: usize,
        /// Record size.
        record: usize,
    },
    /// The format name is not known.
    #[error(
        "unknown trace format {0:?}; expected auto, plain, lirs, arc, cache2k, i64be, u32be, csv or adaptsize"
    )]
    UnknownFormat(String),
    /// Auto-detection could not decide.
    #[error("{0}: cannot tell the trace format; pass --format")]
    Undetected(PathBuf),
}

/// A reader that counts the bytes it has passed on (the compressed position).
struct Counting<R> {
    inner: R,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Gzip,
    Xz,
    Zstd,
}

fn codec_of(path: &Path, head: &[u8]) -> Codec {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if head.starts_with(&[0x1f, 0x8b]) || name.ends_with(".gz") {
        Codec::Gzip
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) || name.ends_with(".xz") {
        Codec::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || name.ends_with(".zst") {
        Codec::Zstd
    } else {
        Codec::None
    }
}

/// Reads a file, decompressing it by extension or magic bytes.
pub fn read_decompressed(path: &Path) -> Result<Vec<u8>, TraceError> {
    let io = |source| TraceError::Io {
        path: path.to_owned(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    decompress(path, raw)
}

fn decompress(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, TraceError> {
    let codec = codec_of(path, &raw[..raw.len().min(8)]);
    let pos = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let input = Counting {
        inner: &raw[..],
        n: pos.clone(),
    };
    let mut out = Vec::with_capacity(raw.len() * 4);
    let err = |codec: &'static str, message: String| TraceError::Decompress {
        path: path.to_owned(),
        codec,
        offset: pos.get(),
        message,
    };
    match codec {
        Codec::None => return Ok(raw),
        Codec::Gzip => {
            flate2::read::MultiGzDecoder::new(input)
                .read_to_end(&mut out)
                .map_err(|e| err("gzip", e.to_string()))?;
        }
        Codec::Xz => {
            let mut br = std::io::BufReader::new(input);
            lzma_rs::xz_decompress(&mut br, &mut out).map_err(|e| err("xz", e.to_string()))?;
        }
        Codec::Zstd => {
            let mut dec = ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| err("zstd", e.to_string()))?;
            dec.read_to_end(&mut out)
                .map_err(|e| err("zstd", e.to_string()))?;
        }
    }
    Ok(out)
}

/// The display name of a trace file: its file name without compression suffixes.
pub fn trace_name(path: &Path) -> String {
    let mut name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for suffix in [".gz", ".xz", ".zst", ".trace", ".lis", ".txt", ".csv"] {
        if let Some(s) = name.strip_suffix(suffix) {
            name = s.to_owned();
        }
    }
    name
}

/// Reads the trace at `path` in `format` (`Auto` to guess).
pub fn read_trace(path: &Path, format: TraceFormat) -> Result<Trace, TraceError> {
    let data = read_decompressed(path)?;
    parse_trace(path, &data, format)
}

/// Parses already decompressed trace bytes; `path` names the source in errors and is
/// used to guess the format.
pub fn parse_trace(path: &Path, data: &[u8], format: TraceFormat) -> Result<Trace, TraceError> {
    let format = match format {
        TraceFormat::Auto => detect(path, data)?,
        f => f,
    };
    let mut trace = Trace {
        name: trace_name(path),
        ..Trace::default()
    };
    match format {
        TraceFormat::Cache2k => binary(path, data, 4, &mut trace.keys, |b| {
            i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64 as u64
        })?,
        TraceFormat::U32Be => binary(path, data, 4, &mut trace.keys, |b| {
            u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        })?,
        TraceFormat::I64Be => binary(path, data, 8, &mut trace.keys, |b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_be_bytes(a) as u64
        })?,
        text => parse_text(path, data, text, &mut trace)?,
    }
    Ok(trace)
}

fn binary(
    path: &Path,
    data: &[u8],
    record: usize,
    keys: &mut Vec<u64>,
    f: impl Fn(&[u8]) -> u64,
) -> Result<(), TraceError> {
    let rem = data.len() % record;
    if rem != 0 {
        return Err(TraceError::Truncated {
            path: path.to_owned(),
            offset: (data.len() - rem) as u64,
            remainder: rem,
            record,
        });
    }
    keys.reserve(data.len() / record);
    keys.extend(data.chunks_exact(record).map(f));
    Ok(())
}

/// A token as a key: integers as they are, anything else hashed (FNV-1a, mixed).
fn token_key(tok: &str) -> u64 {
    if let Ok(v) = tok.parse::<u64>() {
        return v;
    }
    if let Ok(v) = tok.parse::<i64>() {
        return v as u64;
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in tok.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

fn parse_int(tok: &str) -> Option<u64> {
    tok.parse::<u64>()
        .ok()
        .or_else(|| tok.parse::<i64>().ok().map(|v| v as u64))
}

fn parse_text(
    path: &Path,
    data: &[u8],
    format: TraceFormat,
    trace: &mut Trace,
) -> Result<(), TraceError> {
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        TraceError::Parse {
            path: path.to_owned(),
            line,
            message: "not UTF-8 text (is this a binary trace? pass --format)".to_owned(),
        }
    })?;
    let perr = |line: usize, message: String| TraceError::Parse {
        path: path.to_owned(),
        line,
        message,
    };
    let mut csv_cols: Option<(usize, Option<usize>)> = None;
    let mut sizes = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        match format {
            TraceFormat::Plain => trace.keys.push(token_key(line)),
            TraceFormat::Lirs => {
                if line.starts_with('*') {
                    continue;
                }
                let k = parse_int(line).ok_or_else(|| {
                    perr(line_no, format!("expected an integer key, found {line:?}"))
                })?;
                trace.keys.push(k);
            }
            TraceFormat::Arc => {
                let mut it = line.split_ascii_whitespace();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err(perr(
                        line_no,
                        format!("expected `start count ignored request`, found {line:?}"),
                    ));
                };
                let start =
                    parse_int(a).ok_or_else(|| perr(line_no, format!("bad start block {a:?}")))?;
                let count = b
                    .parse::<u64>()
                    .ok()
                    .filter(|&c| c <= 1 << 24)
                    .ok_or_else(|| perr(line_no, format!("bad block count {b:?}")))?;
                trace.keys.extend((0..count).map(|j| start.wrapping_add(j)));
            }
            TraceFormat::AdaptSize => {
                let f: Vec<&str> = line.split_ascii_whitespace().collect();
                if f.len() < 3 {
                    return Err(perr(
                        line_no,
                        format!("expected `time id size`, found {line:?}"),
                    ));
                }
                let size = f[2]
                    .parse::<u64>()
                    .map_err(|_| perr(line_no, format!("bad size {:?}", f[2])))?;
                trace.keys.push(token_key(f[1]));
                sizes.push(size.min(u64::from(u32::MAX)) as u32);
            }
            TraceFormat::Csv => {
                let f: Vec<&str> = line.split(',').map(str::trim).collect();
                let (key_col, size_col) = match csv_cols {
                    Some(c) => c,
                    None => {
                        let header = f.iter().any(|c| parse_int(c).is_none());
                        let lower: Vec<String> = f.iter().map(|s| s.to_ascii_lowercase()).collect();
                        let find =
                            |names: &[&str]| lower.iter().position(|c| names.contains(&c.as_str()));
                        let size = find(&["size", "obj_size", "bytes"]).filter(|_| header);
                        let key = find(&["lbn", "key", "id", "obj_id", "object", "block"])
                            .filter(|_| header)
                            .unwrap_or(if size == Some(0) { 1 } else { 0 });
                        csv_cols = Some((key, size));
                        if header {
                            continue;
                        }
                        (key, size)
                    }
                };
                let k = f
                    .get(key_col)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| perr(line_no, format!("missing key column {}", key_col + 1)))?;
                trace.keys.push(token_key(k));
                if let Some(sc) = size_col {
                    let s = f
                        .get(sc)
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| perr(line_no, format!("bad size in column {}", sc + 1)))?;
                    sizes.push(s.min(u64::from(u32::MAX)) as u32);
                }
            }
            other => return Err(TraceError::UnknownFormat(other.name().to_owned())),
        }
    }
    if !sizes.is_empty() {
        trace.sizes = Some(sizes);
    }
    Ok(())
}

/// Guesses the format from the file name, then from the content.
pub fn detect(path: &Path, data: &[u8]) -> Result<TraceFormat, TraceError> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let base = trace_name(path).to_ascii_lowercase();
    let by_name = [(".lis", TraceFormat::Arc), (".csv", TraceFormat::Csv)];
    for (ext, f) in by_name {
        if name.contains(ext) {
            return Ok(f);
        }
    }
    if base.contains("adaptsize") {
        return Ok(TraceFormat::AdaptSize);
    }
    if base.contains("scarab") || base.contains("corda") {
        return Ok(TraceFormat::I64Be);
    }
    if base.contains("cloudphysics_w") {
        return Ok(TraceFormat::U32Be);
    }
    if name.contains("cache2k") || base.starts_with("web") || base.starts_with("orm-") {
        return Ok(TraceFormat::Cache2k);
    }
    let head = &data[..data.len().min(4096)];
    let texty = head
        .iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b));
    if texty {
        let first = std::str::from_utf8(head)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| !l.trim().is_empty() && !l.starts_with('*'))
            })
            .unwrap_or("");
        if first.contains(',') {
            return Ok(TraceFormat::Csv);
        }
        let fields = first.split_ascii_whitespace().count();
        let numeric = first
            .split_ascii_whitespace()
            .all(|t| parse_int(t).is_some());
        return Ok(match (fields, numeric) {
            (4, true) => TraceFormat::Arc,
            (3, true) => TraceFormat::AdaptSize,
            (1, true) => TraceFormat::Lirs,
            _ => TraceFormat::Plain,
        });
    }
    if data.len().is_multiple_of(4) && !data.is_empty() {
        return Ok(if data.len().is_multiple_of(8) {
            TraceFormat::I64Be
        } else {
            TraceFormat::Cache2k
        });
    }
    Err(TraceError::Undetected(path.to_owned()))
}
