//! Measuring emitted files: raw size, real gzip (level 9) and brotli (quality 11) sizes,
//! and source map attribution, as independent tasks spread over all cores.

use crate::error::BundleError;
use crate::sourcemap::{MapRef, SourceMap, find_map_ref};
use std::collections::HashMap;
#[cfg(feature = "compress")]
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file's bytes: memory-mapped when large, read when small.
pub(crate) enum Loaded {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Loaded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Loaded::Mapped(m) => m,
            Loaded::Owned(v) => v,
        }
    }
}

/// Loads a file, mapping it into memory when it is larger than 64 KiB.
pub(crate) fn load(path: &Path) -> Result<Loaded, BundleError> {
    let file = std::fs::File::open(path).map_err(|e| BundleError::io(path, e))?;
    let len = file.metadata().map_err(|e| BundleError::io(path, e))?.len();
    if len < 64 * 1024 {
        let bytes = std::fs::read(path).map_err(|e| BundleError::io(path, e))?;
        return Ok(Loaded::Owned(bytes));
    }
    // SAFETY: the map is read-only and private to this process. Bundler output is not
    // expected to change while it is analysed; if it is truncated concurrently, the worst
    // case is a SIGBUS, as with any tool that maps its input (documented in the CLI help).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| BundleError::io(path, e))?;
    Ok(Loaded::Mapped(map))
}

/// Runs `f` over the bytes of `loaded`. For a large memory-mapped file (a 600 MB stats
/// file), a helper thread meanwhile drops the pages already read from this process's
/// resident set every few milliseconds (`MADV_DONTNEED`; the map is private and read-only,
/// so a page touched again is simply read back from the page cache). Peak RSS then stays
/// near the parsed data instead of the whole file.
pub(crate) fn with_trimmed_pages<R>(loaded: &Loaded, f: impl FnOnce(&[u8]) -> R) -> R {
    const TRIM_ABOVE: usize = 64 << 20;
    let map = match loaded {
        Loaded::Mapped(map) if map.len() > TRIM_ABOVE => map,
        _ => return f(loaded),
    };
    let _ = map.advise(memmap2::Advice::Sequential);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let trimmer = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(std::time::Duration::from_millis(20));
                // SAFETY: the mapping is private, read-only and never written, so dropping
                // its pages cannot lose data: the next access reads the same bytes back
                // from the file (page cache). No reference into it is invalidated.
                let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
            }
        });
        let result = f(map);
        stop.store(true, Ordering::Relaxed);
        trimmer.thread().unpark();
        result
    })
}

/// A writer that only counts bytes.
#[cfg(feature = "compress")]
#[derive(Default)]
struct Counter(u64);

#[cfg(feature = "compress")]
impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Size of `data` after gzip at level 9 (the gzip header and trailer included).
#[cfg(feature = "compress")]
pub fn gzip_size(data: &[u8]) -> u64 {
    let mut enc = flate2::write::GzEncoder::new(Counter::default(), flate2::Compression::new(9));
    // Writing to a counter cannot fail.
    let _ = enc.write_all(data);
    enc.finish().map_or(0, |c| c.0)
}

/// Without the `compress` feature (fuzz builds only), no compression is done: 0.
#[cfg(not(feature = "compress"))]
pub fn gzip_size(_data: &[u8]) -> u64 {
    0
}

/// Without the `compress` feature (fuzz builds only), no compression is done: 0.
#[cfg(not(feature = "compress"))]
pub fn brotli_size(_data: &[u8]) -> u64 {
    0
}

/// Size of `data` after brotli at quality 11 (window 22, as `brotli -q 11`).
#[cfg(feature = "compress")]
pub fn brotli_size(data: &[u8]) -> u64 {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        size_hint: data.len(),
        ..Default::default()
    };
    let mut input = data;
    let mut out = Counter::default();
    match brotli::BrotliCompress(&mut input, &mut out, &params) {
        Ok(_) => out.0,
        Err(_) => 0,
    }
}

/// What was measured of one file.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    pub(crate) raw: Option<u64>,
    pub(crate) gzip: Option<u64>,
    pub(crate) brotli: Option<u64>,
    pub(crate) map: Option<MapResult>,
    pub(crate) warnings: Vec<String>,
}

/// A file's attribution to the sources of its map.
#[derive(Debug)]
pub(crate) struct MapResult {
    pub(crate) sources: Vec<String>,
    pub(crate) content_lengths: Vec<Option<u64>>,
    pub(crate) per_source: Vec<u64>,
    pub(crate) unmapped: u64,
}

#[derive(Debug, Clone, Copy)]
enum Task {
    Gzip,
    Brotli,
    Map,
}

/// Measures `files` (paths, `None` for a missing file) in parallel. `tick` is called after
/// each finished task with the number done and the total.
pub(crate) fn measure_all(
    files: &[Option<PathBuf>],
    brotli: bool,
    threads: usize,
    tick: &(dyn Fn(usize, usize) + Sync),
    gzipped: &HashMap<PathBuf, u64>,
) -> Vec<Measured> {
    let mut out: Vec<Measured> = files
        .iter()
        .map(|p| Measured {
            raw: p
                .as_ref()
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len()),
            ..Measured::default()
        })
        .collect();
    let mut tasks: Vec<(usize, Task, u64)> = Vec::new();
    for (i, p) in files.iter().enumerate() {
        if p.is_none() {
            continue;
        }
        let size = out[i].raw.unwrap_or(0);
        match p.as_ref().and_then(|p| gzipped.get(p)) {
            Some(&g) => out[i].gzip = Some(g),
            None => tasks.push((i, Task::Gzip, size)),
        }
        tasks.push((i, Task::Map, size));
        if brotli {
            // Brotli at quality 11 is about ten times slower than gzip: schedule it first.
            tasks.push((i, Task::Brotli, size.saturating_mul(10)));
        }
    }
    tasks.sort_by_key(|t| std::cmp::Reverse(t.2));
    let total = tasks.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers = threads.clamp(1, total.max(1));
    let results: Vec<Vec<(usize, Task, Measured)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(i, task, _)) = tasks.get(k) else {
                            break;
                        };
                        let Some(path) = files[i].as_deref() else {
                            continue;
                        };
                        mine.push((i, task, run_task(path, task)));
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        tick(d, total);
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, task, m) in results.into_iter().flatten() {
        let slot = &mut out[i];
        slot.warnings.extend(m.warnings);
        match task {
            Task::Gzip => slot.gzip = m.gzip,
            Task::Brotli => slot.brotli = m.brotli,
            Task::Map => slot.map = m.map,
        }
    }
    out
}

/// Gzip sizes of the code files under `dir` (`.js`, `.mjs`, `.cjs`, `.css`), computed on the
/// calling thread: started while a stats file is being parsed, so that compression and
/// parsing overlap on two cores.
pub(crate) fn gzip_dir(dir: &Path) -> HashMap<PathBuf, u64> {
    let mut names = Vec::new();
    // A --dist that is not an output directory (a project root) is not worth guessing at.
    if crate::vite::walk(dir, dir, &mut names, 0).is_err() || names.len() > 2000 {
        return HashMap::new();
    }
    names
        .into_iter()
        .filter_map(|rel| {
            let path = dir.join(rel);
            let data = load(&path).ok()?;
            Some((path, gzip_size(&data)))
        })
        .collect()
}

fn run_task(path: &Path, task: Task) -> Measured {
    let mut m = Measured::default();
    let data = match load(path) {
        Ok(d) => d,
        Err(e) => {
            m.warnings.push(e.to_string());
            return m;
        }
    };
    match task {
        Task::Gzip => m.gzip = Some(gzip_size(&data)),
        Task::Brotli => m.brotli = Some(brotli_size(&data)),
        Task::Map => match read_map(path, &data) {
            Ok(Some(map)) => {
                let a = map.attribute(&data);
                for w in &map.warnings {
                    m.warnings.push(format!("{}: {w}", path.display()));
                }
                m.map = Some(MapResult {
                    sources: map.sources,
                    content_lengths: map.content_lengths,
                    per_source: a.per_source,
                    unmapped: a.unmapped,
                });
            }
            Ok(None) => {}
            Err(e) => m
                .warnings
                .push(format!("{}: source map skipped: {e}", path.display())),
        },
    }
    m
}

/// Finds and parses the source map of the generated file at `path` (whose bytes are
/// `code`): an inline `data:` map, the file its `sourceMappingURL` names, or `FILE.map`.
pub(crate) fn read_map(path: &Path, code: &[u8]) -> Result<Option<SourceMap>, BundleError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // Mappings for lines the file does not have are not decoded.
    let lines = code.iter().filter(|&&b| b == b'\n').count() + 1;
    let map_path = match find_map_ref(code) {
        Some(MapRef::Inline(bytes)) => return SourceMap::parse_with_limit(&bytes, lines).map(Some),
        Some(MapRef::External(url)) if !url.contains("://") => {
            let p = dir.join(url.split(['?', '#']).next().unwrap_or(&url));
            p.is_file().then_some(p)
        }
        _ => None,
    };
    let map_path = map_path.or_else(|| {
        let mut p = path.as_os_str().to_owned();
        p.push(".map");
        let p = PathBuf::from(p);
        p.is_file().then_some(p)
    });
    let Some(map_path) = map_path else {
        return Ok(None);
    };
    let bytes = load(&map_path)?;
    SourceMap::parse_with_limit(&bytes, lines)
        .map(Some)
        .map_err(|e| e.in_file(&map_path))
}

#[cfg(all(test, feature = "compress"))]
mod tests {
    use super::*;

    #[test]
    fn gzip_size_matches_a_real_gzip_stream() {
        let data = b"hello hello hello hello hello hello".repeat(100);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        enc.write_all(&data).unwrap();
        let real = enc.finish().unwrap();
        assert_eq!(gzip_size(&data), real.len() as u64);
        assert!(brotli_size(&data) > 0 && brotli_size(&data) < real.len() as u64);
    }

    #[test]
    fn brotli_size_is_a_real_brotli_stream() {
        use std::io::Read as _;
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: 22,
            ..Default::default()
        };
        let mut compressed = Vec::new();
        brotli::BrotliCompress(&mut data.as_slice(), &mut compressed, &params).unwrap();
        assert_eq!(brotli_size(&data), compressed.len() as u64);
        let mut back = Vec::new();
        brotli::Decompressor::new(compressed.as_slice(), 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
