//! Memory sources: the tracking allocator's heap, process RSS, the process's cgroup, and the
//! whole system, each behind [`MemorySource`].
//!
//! The parsers are plain functions over file contents ([`parse_statm`], [`parse_meminfo`],
//! [`parse_cgroup_limit`], [`parse_proc_self_cgroup`], [`parse_mountinfo`]) so that they are
//! tested on real kernel output; the sources only locate and read the files.

use crate::{MemoryError, MemoryReading, MemorySource};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn read_file(path: &Path) -> Result<String, MemoryError> {
    std::fs::read_to_string(path).map_err(|source| MemoryError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn parse_error(path: &Path, reason: impl Into<String>) -> MemoryError {
    MemoryError::Parse {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn not_available(name: &'static str, reason: impl Into<String>) -> MemoryError {
    MemoryError::NotAvailable {
        source_name: name,
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------
// heap

/// The tracking allocator's live heap bytes. [`MemoryError::NotAvailable`] when
/// [`TrackingAllocator`](crate::TrackingAllocator) is not the global allocator.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapSource;

impl MemorySource for HeapSource {
    fn name(&self) -> &'static str {
        "heap"
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        let stats = crate::stats().ok_or_else(|| {
            not_available(
                "heap",
                "the perfkit tracking allocator is not installed as #[global_allocator]",
            )
        })?;
        Ok(MemoryReading {
            used_bytes: stats.live_bytes,
            limit_bytes: None,
        })
    }
}

// ---------------------------------------------------------------------------------------
// rss

/// Parses `/proc/PID/statm` (sizes in pages: `size resident shared text lib data dt`) and
/// returns the resident set size in bytes.
pub fn parse_statm(text: &str, page_size: u64) -> Result<u64, String> {
    let mut fields = text.split_ascii_whitespace();
    let _size = fields.next().ok_or("empty statm")?;
    let resident = fields.next().ok_or("statm has no resident field")?;
    let pages: u64 = resident
        .parse()
        .map_err(|_| format!("resident field {resident:?} is not a number"))?;
    pages
        .checked_mul(page_size)
        .ok_or_else(|| "resident size overflows".to_owned())
}

fn page_size() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            return size as u64;
        }
    }
    4096
}

/// The process's resident set size, from `/proc/self/statm`.
#[derive(Debug, Clone)]
pub struct RssSource {
    path: PathBuf,
}

impl RssSource {
    /// Reads `/proc/self/statm`.
    pub fn new() -> Self {
        RssSource {
            path: PathBuf::from("/proc/self/statm"),
        }
    }

    /// Reads another `statm` file (another process's, or a fixture).
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        RssSource { path: path.into() }
    }
}

impl Default for RssSource {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySource for RssSource {
    fn name(&self) -> &'static str {
        "rss"
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        if !self.path.exists() {
            return Err(not_available(
                "rss",
                format!("{} does not exist (not Linux?)", self.path.display()),
            ));
        }
        let text = read_file(&self.path)?;
        let used = parse_statm(&text, page_size()).map_err(|r| parse_error(&self.path, r))?;
        Ok(MemoryReading {
            used_bytes: used,
            limit_bytes: None,
        })
    }
}

// ---------------------------------------------------------------------------------------
// system

/// Total and available memory from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total_bytes: u64,
    /// `MemAvailable`, or on kernels before 3.14 `MemFree + Buffers + Cached`.
    pub available_bytes: u64,
}

/// Parses `/proc/meminfo` (`MemTotal:       24684084 kB` lines).
pub fn parse_meminfo(text: &str) -> Result<MemInfo, String> {
    let mut total = None;
    let mut available = None;
    let (mut free, mut buffers, mut cached) = (None, None, None);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            "MemFree" => &mut free,
            "Buffers" => &mut buffers,
            "Cached" => &mut cached,
            _ => continue,
        };
        let mut parts = rest.split_ascii_whitespace();
        let number = parts.next().ok_or_else(|| format!("{key} has no value"))?;
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{key} value {number:?} is not a number"))?;
        let multiplier = match parts.next() {
            Some("kB") => 1024,
            None => 1,
            Some(unit) => return Err(format!("{key} has unknown unit {unit:?}")),
        };
        *slot = Some(
            value
                .checked_mul(multiplier)
                .ok_or_else(|| format!("{key} overflows"))?,
        );
    }
    let total_bytes = total.ok_or("no MemTotal line")?;
    let available_bytes = match (available, free) {
        (Some(a), _) => a,
        (None, Some(f)) => f + buffers.unwrap_or(0) + cached.unwrap_or(0),
        (None, None) => return Err("neither MemAvailable nor MemFree".to_owned()),
    };
    Ok(MemInfo {
        total_bytes,
        available_bytes: available_bytes.min(total_bytes),
    })
}

/// System memory from `/proc/meminfo`: used = total - available, limit = total.
#[derive(Debug, Clone)]
pub struct SystemMemorySource {
    path: PathBuf,
}

impl SystemMemorySource {
    /// Reads `/proc/meminfo`.
    pub fn new() -> Self {
        SystemMemorySource {
            path: PathBuf::from("/proc/meminfo"),
        }
    }

    /// Reads another file in `meminfo` format (a fixture).
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        SystemMemorySource { path: path.into() }
    }

    /// Total and available memory.
    pub fn meminfo(&self) -> Result<MemInfo, MemoryError> {
        if !self.path.exists() {
            return Err(not_available(
                "system",
                format!("{} does not exist (not Linux?)", self.path.display()),
            ));
        }
        let text = read_file(&self.path)?;
        parse_meminfo(&text).map_err(|r| parse_error(&self.path, r))
    }
}

impl Default for SystemMemorySource {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySource for SystemMemorySource {
    fn name(&self) -> &'static str {
        "system"
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        let info = self.meminfo()?;
        Ok(MemoryReading {
            used_bytes: info.total_bytes - info.available_bytes,
            limit_bytes: Some(info.total_bytes),
        })
    }
}

// ---------------------------------------------------------------------------------------
// cgroup

/// Parses a cgroup limit file: a byte count, or `max` (v2) meaning no limit. cgroup v1
/// writes "no limit" as a huge page-rounded number (`9223372036854771712`); anything at or
/// above 2^62 is read as no limit too.
pub fn parse_cgroup_limit(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    let v: u64 = t
        .parse()
        .map_err(|_| format!("{t:?} is neither a byte count nor \"max\""))?;
    Ok((v < 1 << 62).then_some(v))
}

/// One line of `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    /// The hierarchy ID (`0` for the v2 unified hierarchy).
    pub hierarchy: u32,
    /// The controllers (`memory`, ...); empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup's path inside its hierarchy.
    pub path: String,
}

/// Parses `/proc/self/cgroup`.
pub fn parse_proc_self_cgroup(text: &str) -> Result<Vec<CgroupEntry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {}: expected ID:CONTROLLERS:PATH", n + 1));
        };
        let hierarchy = id
            .parse()
            .map_err(|_| format!("line {}: hierarchy ID {id:?} is not a number", n + 1))?;
        out.push(CgroupEntry {
            hierarchy,
            controllers: ctrl
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// A cgroup file system mount, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// `true` for cgroup2, `false` for a v1 hierarchy.
    pub v2: bool,
    /// The root of the hierarchy that is mounted (not `/` inside some containers).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// v1: the controllers of this hierarchy (from the super options).
    pub controllers: Vec<String>,
}

/// Parses the cgroup mounts out of `/proc/self/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        // 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.is_empty() {
            continue;
        }
        let v2 = match right[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            right
                .get(2)
                .map(|opts| opts.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        out.push(CgroupMount {
            v2,
            root: unescape_mount(left[3]),
            mount_point: PathBuf::from(unescape_mount(left[4])),
            controllers,
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\040` style octal.
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(oct) = s.get(i + 1..i + 4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which cgroup version a [`CgroupSource`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// The unified hierarchy: `memory.current`, `memory.high`, `memory.max`.
    V2,
    /// The v1 memory controller: `memory.usage_in_bytes`, `memory.limit_in_bytes`.
    V1,
}

/// One reading of the process's memory cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupMemory {
    /// Which hierarchy the figures come from.
    pub version: CgroupVersion,
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1; includes page cache).
    pub current_bytes: u64,
    /// `memory.high` (v2, the throttling limit); `None` when `max` or on v1.
    pub high_bytes: Option<u64>,
    /// `memory.max` (v2) or `memory.limit_in_bytes` (v1); `None` when unlimited.
    pub max_bytes: Option<u64>,
}

/// Where the process's memory cgroup files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLocation {
    /// The version.
    pub version: CgroupVersion,
    /// The directory holding the `memory.*` files.
    pub dir: PathBuf,
}

/// Locates the memory cgroup from the texts of `/proc/self/cgroup` and
/// `/proc/self/mountinfo`, prefixing mount points with `root` (`/` normally, a fixture
/// directory in tests). Prefers v2 when its `memory.current` exists, else the v1 memory
/// controller.
pub fn locate_cgroup(
    proc_self_cgroup: &str,
    mountinfo: &str,
    root: &Path,
) -> Result<CgroupLocation, String> {
    let entries = parse_proc_self_cgroup(proc_self_cgroup)?;
    let mounts = parse_mountinfo(mountinfo);
    let join = |mount: &CgroupMount, path: &str| -> PathBuf {
        // Inside a cgroup namespace the mount root may be a prefix of our path.
        let rel = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
        let mp = mount
            .mount_point
            .strip_prefix("/")
            .unwrap_or(&mount.mount_point);
        root.join(mp).join(rel.trim_start_matches('/'))
    };
    let mut tried = Vec::new();
    if let Some(entry) = entries.iter().find(|e| e.hierarchy == 0)
        && let Some(mount) = mounts.iter().find(|m| m.v2)
    {
        let dir = join(mount, &entry.path);
        if dir.join("memory.current").exists() {
            return Ok(CgroupLocation {
                version: CgroupVersion::V2,
                dir,
            });
        }
        tried.push(format!("{}/memory.current", dir.display()));
    }
    if let Some(entry) = entries
        .iter()
        .find(|e| e.controllers.iter().any(|c| c == "memory"))
        && let Some(mount) = mounts
            .iter()
            .find(|m| !m.v2 && m.controllers.iter().any(|c| c == "memory"))
    {
        let dir = join(mount, &entry.path);
        if dir.join("memory.usage_in_bytes").exists() {
            return Ok(CgroupLocation {
                version: CgroupVersion::V1,
                dir,
            });
        }
        tried.push(format!("{}/memory.usage_in_bytes", dir.display()));
    }
    if tried.is_empty() {
        Err("no memory cgroup is mounted for this process".to_owned())
    } else {
        Err(format!("no memory cgroup files at {}", tried.join(" or ")))
    }
}

/// The process's own memory cgroup: v2 `memory.current`/`memory.high`/`memory.max`, with the
/// v1 `memory.usage_in_bytes`/`memory.limit_in_bytes` as fallback.
///
/// The reading's `limit_bytes` is the hard limit (`memory.max`); [`CgroupSource::memory`]
/// also gives `memory.high`. The location is found once, on construction.
#[derive(Debug, Clone)]
pub struct CgroupSource {
    location: Result<CgroupLocation, String>,
}

impl CgroupSource {
    /// Finds the process's memory cgroup through `/proc/self/cgroup` and
    /// `/proc/self/mountinfo`.
    pub fn new() -> Self {
        let location = match (
            std::fs::read_to_string("/proc/self/cgroup"),
            std::fs::read_to_string("/proc/self/mountinfo"),
        ) {
            (Ok(cg), Ok(mi)) => locate_cgroup(&cg, &mi, Path::new("/")),
            _ => Err("/proc/self/cgroup or /proc/self/mountinfo is unreadable (not Linux?)".into()),
        };
        CgroupSource { location }
    }

    /// Reads the cgroup files in `dir` (a known cgroup directory, or a fixture).
    pub fn at(version: CgroupVersion, dir: impl Into<PathBuf>) -> Self {
        CgroupSource {
            location: Ok(CgroupLocation {
                version,
                dir: dir.into(),
            }),
        }
    }

    /// Where the cgroup files are, or why none was found.
    pub fn location(&self) -> Result<&CgroupLocation, MemoryError> {
        self.location
            .as_ref()
            .map_err(|reason| not_available("cgroup", reason.clone()))
    }

    /// Reads usage and limits.
    pub fn memory(&self) -> Result<CgroupMemory, MemoryError> {
        let loc = self.location()?;
        let number = |file: &str| -> Result<Option<u64>, MemoryError> {
            let path = loc.dir.join(file);
            let text = read_file(&path)?;
            parse_cgroup_limit(&text).map_err(|r| parse_error(&path, r))
        };
        let optional = |file: &str| -> Result<Option<u64>, MemoryError> {
            if loc.dir.join(file).exists() {
                number(file)
            } else {
                Ok(None)
            }
        };
        Ok(match loc.version {
            CgroupVersion::V2 => CgroupMemory {
                version: CgroupVersion::V2,
                current_bytes: number("memory.current")?.unwrap_or(u64::MAX),
                high_bytes: optional("memory.high")?,
                max_bytes: optional("memory.max")?,
            },
            CgroupVersion::V1 => CgroupMemory {
                version: CgroupVersion::V1,
                current_bytes: number("memory.usage_in_bytes")?.unwrap_or(u64::MAX),
                high_bytes: None,
                max_bytes: optional("memory.limit_in_bytes")?,
            },
        })
    }
}

impl Default for CgroupSource {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySource for CgroupSource {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        let m = self.memory()?;
        Ok(MemoryReading {
            used_bytes: m.current_bytes,
            limit_bytes: m.max_bytes,
        })
    }
}

// ---------------------------------------------------------------------------------------
// manual

/// A memory source whose value is set by hand: for tests, simulations and demos.
/// Clones share the value.
#[derive(Debug, Clone)]
pub struct ManualSource {
    used: Arc<AtomicU64>,
    limit: Arc<Mutex<Option<u64>>>,
    name: &'static str,
}

impl ManualSource {
    /// A source named `name` reading 0 bytes with no limit.
    pub fn new(name: &'static str) -> Self {
        ManualSource {
            used: Arc::new(AtomicU64::new(0)),
            limit: Arc::new(Mutex::new(None)),
            name,
        }
    }

    /// Sets the bytes in use.
    pub fn set(&self, used_bytes: u64) {
        self.used.store(used_bytes, Ordering::SeqCst);
    }

    /// Sets the limit reported with each reading.
    pub fn set_limit(&self, limit_bytes: Option<u64>) {
        *self.limit.lock().unwrap_or_else(|e| e.into_inner()) = limit_bytes;
    }
}

impl MemorySource for ManualSource {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        Ok(MemoryReading {
            used_bytes: self.used.load(Ordering::SeqCst),
            limit_bytes: *self.limit.lock().unwrap_or_else(|e| e.into_inner()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,200}") {
            let _ = parse_statm(&text, 4096);
            let _ = parse_meminfo(&text);
            let _ = parse_cgroup_limit(&text);
            let _ = parse_proc_self_cgroup(&text);
            let _ = parse_mountinfo(&text);
        }

        #[test]
        fn meminfo_written_as_the_kernel_does_reads_back(
            total in 1u64..(1 << 40),
            avail_share in 0.0f64..1.0,
            noise in proptest::collection::vec(("[A-Z][a-zA-Z_]{2,12}", 0u64..1 << 30), 0..8),
        ) {
            let avail = (total as f64 * avail_share) as u64;
            let mut text = format!("MemTotal:       {total:>8} kB\nMemFree:        {avail:>8} kB\n");
            for (k, v) in &noise {
                if !matches!(k.as_str(), "MemTotal" | "MemAvailable" | "MemFree" | "Buffers" | "Cached") {
                    text.push_str(&format!("{k}:{v:>16} kB\n"));
                }
            }
            text.push_str(&format!("MemAvailable:   {avail:>8} kB\n"));
            let m = parse_meminfo(&text).unwrap();
            prop_assert_eq!(m.total_bytes, total * 1024);
            prop_assert_eq!(m.available_bytes, avail * 1024);
        }

        #[test]
        fn cgroup_limits_read_back(v in 0u64..(1 << 62)) {
            prop_assert_eq!(parse_cgroup_limit(&format!("{v}\n")).unwrap(), Some(v));
        }

        #[test]
        fn statm_reads_back(pages in 0u64..(1 << 40), other in 0u64..1_000_000) {
            let text = format!("{} {pages} {other} 5 0 {other} 0\n", pages + other);
            prop_assert_eq!(parse_statm(&text, 4096).unwrap(), pages * 4096);
        }
    }

    // Fixtures as the kernels produce them.
    const STATM: &str = "765 431 403 5 0 123 0\n";
    const MEMINFO: &str = "MemTotal:       24684084 kB\nMemFree:        23105720 kB\nMemAvailable:   23958884 kB\nBuffers:            7768 kB\nCached:          1011936 kB\nSwapCached:            0 kB\nActive:           425708 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n";
    // A 3.10 kernel (CentOS 7) has no MemAvailable.
    const MEMINFO_OLD: &str = "MemTotal:        1882064 kB\nMemFree:          170908 kB\nBuffers:          122080 kB\nCached:           715324 kB\nSwapCached:        14388 kB\n";
    // A systemd host with the unified hierarchy only.
    const CGROUP_V2_ONLY: &str = "0::/user.slice/user-1000.slice/session-3.scope\n";
    const MOUNTINFO_V2: &str = "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
        26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
    // A Docker container with cgroup namespaces: the mount root is `/`.
    const CGROUP_DOCKER_V2: &str = "0::/\n";
    const MOUNTINFO_DOCKER_V2: &str = "612 594 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n";
    // This machine's kind: a hybrid hierarchy, memory controller on v1.
    const CGROUP_HYBRID: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/aae95335\n1:cpu:/\n0::/\n";
    const MOUNTINFO_HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn statm_resident_pages_times_page_size() {
        assert_eq!(parse_statm(STATM, 4096).unwrap(), 431 * 4096);
        assert!(parse_statm("", 4096).is_err());
        assert!(parse_statm("12", 4096).is_err());
        assert!(parse_statm("12 x 3", 4096).is_err());
    }

    #[test]
    fn meminfo_new_and_old_kernels() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total_bytes, 24_684_084 * 1024);
        assert_eq!(m.available_bytes, 23_958_884 * 1024);
        let old = parse_meminfo(MEMINFO_OLD).unwrap();
        assert_eq!(old.available_bytes, (170_908 + 122_080 + 715_324) * 1024);
        assert!(parse_meminfo("MemFree: 5 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
        assert!(parse_meminfo("MemTotal: 5 MB\n").is_err());
    }

    #[test]
    fn cgroup_limits_including_max() {
        assert_eq!(parse_cgroup_limit("max\n").unwrap(), None);
        assert_eq!(parse_cgroup_limit("536870912\n").unwrap(), Some(512 << 20));
        assert_eq!(parse_cgroup_limit("9223372036854771712\n").unwrap(), None);
        assert!(parse_cgroup_limit("lots").is_err());
        assert!(parse_cgroup_limit("").is_err());
    }

    #[test]
    fn proc_self_cgroup_and_mountinfo() {
        let e = parse_proc_self_cgroup(CGROUP_HYBRID).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[2].controllers, vec!["memory"]);
        assert_eq!(e[0].controllers, vec!["name=systemd"]);
        assert_eq!(e[4].hierarchy, 0);
        assert!(parse_proc_self_cgroup("garbage").is_err());
        let m = parse_mountinfo(MOUNTINFO_HYBRID);
        assert_eq!(m.len(), 3);
        assert!(m[2].v2);
        assert_eq!(m[1].controllers, vec!["rw", "memory"]);
        assert_eq!(unescape_mount(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape_mount(r"/odd\"), r"/odd\");
    }

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn cgroup_v2_with_max_and_high() {
        let root = tempfile::tempdir().unwrap();
        let dir = root
            .path()
            .join("sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope");
        write(&dir, "memory.current", "123744256\n");
        write(&dir, "memory.high", "max\n");
        write(&dir, "memory.max", "max\n");
        let loc = locate_cgroup(CGROUP_V2_ONLY, MOUNTINFO_V2, root.path()).unwrap();
        assert_eq!(loc.version, CgroupVersion::V2);
        assert_eq!(loc.dir, dir);
        let src = CgroupSource::at(loc.version, loc.dir);
        let m = src.memory().unwrap();
        assert_eq!(m.current_bytes, 123_744_256);
        assert_eq!((m.high_bytes, m.max_bytes), (None, None));
        write(&dir, "memory.high", "805306368\n");
        write(&dir, "memory.max", "1073741824\n");
        let r = src.read().unwrap();
        assert_eq!(r.limit_bytes, Some(1 << 30));
        assert_eq!(src.memory().unwrap().high_bytes, Some(768 << 20));
        write(&dir, "memory.max", "a lot\n");
        let err = src.read().unwrap_err().to_string();
        assert!(err.contains("memory.max"), "{err}");
    }

    #[test]
    fn cgroup_v2_in_a_container_namespace() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sys/fs/cgroup");
        write(&dir, "memory.current", "4096\n");
        let loc = locate_cgroup(CGROUP_DOCKER_V2, MOUNTINFO_DOCKER_V2, root.path()).unwrap();
        assert_eq!(loc.dir, dir);
    }

    #[test]
    fn cgroup_v1_fallback_on_a_hybrid_host() {
        let root = tempfile::tempdir().unwrap();
        let dir = root
            .path()
            .join("sys/fs/cgroup/memory/process_api/aae95335");
        write(&dir, "memory.usage_in_bytes", "1372831744\n");
        write(&dir, "memory.limit_in_bytes", "9223372036854771712\n");
        // The unified hierarchy is mounted but has no memory.current at our path.
        std::fs::create_dir_all(root.path().join("sys/fs/cgroup/unified")).unwrap();
        let loc = locate_cgroup(CGROUP_HYBRID, MOUNTINFO_HYBRID, root.path()).unwrap();
        assert_eq!(loc.version, CgroupVersion::V1);
        let m = CgroupSource::at(loc.version, loc.dir.clone())
            .memory()
            .unwrap();
        assert_eq!(m.current_bytes, 1_372_831_744);
        assert_eq!(m.max_bytes, None);
        write(&loc.dir, "memory.limit_in_bytes", "2147483648\n");
        let r = CgroupSource::at(loc.version, loc.dir).read().unwrap();
        assert_eq!(r.limit_bytes, Some(2 << 30));
    }

    #[test]
    fn no_cgroup_is_not_available() {
        let root = tempfile::tempdir().unwrap();
        let err = locate_cgroup(CGROUP_V2_ONLY, MOUNTINFO_V2, root.path()).unwrap_err();
        assert!(err.contains("memory.current"), "{err}");
        assert!(locate_cgroup("", "", root.path()).is_err());
        let src = CgroupSource {
            location: Err("none".into()),
        };
        assert!(matches!(
            src.read(),
            Err(MemoryError::NotAvailable {
                source_name: "cgroup",
                ..
            })
        ));
    }

    #[test]
    fn missing_proc_files_are_not_available() {
        let rss = RssSource::with_path("/nonexistent/statm");
        assert!(matches!(rss.read(), Err(MemoryError::NotAvailable { .. })));
        let sys = SystemMemorySource::with_path("/nonexistent/meminfo");
        assert!(matches!(sys.read(), Err(MemoryError::NotAvailable { .. })));
    }

    #[test]
    fn heap_is_not_available_without_the_tracking_allocator() {
        // This test binary does not install the tracking allocator.
        assert!(matches!(
            HeapSource.read(),
            Err(MemoryError::NotAvailable {
                source_name: "heap",
                ..
            })
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn live_files_of_this_machine() {
        let rss = RssSource::new().read().unwrap();
        assert!(rss.used_bytes > 0);
        let sys = SystemMemorySource::new().read().unwrap();
        let total = sys.limit_bytes.unwrap();
        assert!(total > sys.used_bytes && sys.used_bytes > 0);
        assert!(rss.used_bytes < total);
        // A cgroup may or may not be there; either a reading or a clear NotAvailable.
        match CgroupSource::new().read() {
            Ok(r) => assert!(r.used_bytes > 0),
            Err(MemoryError::NotAvailable { reason, .. }) => eprintln!("no cgroup: {reason}"),
            Err(e) => panic!("cgroup read failed: {e}"),
        }
    }

    #[test]
    fn manual_source_shares_its_value() {
        let a = ManualSource::new("m");
        let b = a.clone();
        b.set(7);
        b.set_limit(Some(10));
        let r = a.read().unwrap();
        assert_eq!((r.used_bytes, r.limit_bytes), (7, Some(10)));
    }
}
