//! Sampling any process from `/proc`: resident memory from `/proc/PID/statm`, CPU time and
//! state from `/proc/PID/stat`; and [`ProcessRssSource`], a [`MemorySource`] for another
//! process, so a [`LeakDetector`](crate::LeakDetector) can watch programs in any language.

use crate::error::LeakError;
use perfkit_alloc::{MemoryError, MemoryReading, MemorySource};
use std::path::PathBuf;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time consumed so far, in clock ticks.
    pub cpu_ticks: u64,
    /// The state letter (`R` running, `S` sleeping, `T` stopped, `Z` zombie, ...).
    pub state: char,
}

/// Parses the fields of `/proc/PID/stat` this module uses: the state and utime + stime.
///
/// The command name (field 2) is in parentheses and may contain spaces and parentheses, so
/// the fields are counted from the last `)`.
///
/// ```
/// use perfkit_leak::process::parse_stat;
/// let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 200 0 0 0 150 25 0 0 20 0 1 0 100 1000 50";
/// assert_eq!(parse_stat(line).unwrap(), ('S', 175));
/// assert!(parse_stat("garbage").is_err());
/// ```
pub fn parse_stat(text: &str) -> Result<(char, u64), String> {
    let close = text
        .rfind(')')
        .ok_or_else(|| "no closing parenthesis after the command name".to_owned())?;
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let state = rest
        .first()
        .and_then(|s| s.chars().next())
        .ok_or_else(|| "missing the state field".to_owned())?;
    let field = |n: usize| -> Result<u64, String> {
        rest.get(n - 3)
            .ok_or_else(|| format!("missing field {n}"))?
            .parse::<u64>()
            .map_err(|e| format!("field {n}: {e}"))
    };
    Ok((state, field(14)? + field(15)?))
}

/// Parses `/proc/PID/statm` into resident bytes (its second field times the page size).
///
/// ```
/// use perfkit_leak::process::parse_statm_resident;
/// assert_eq!(parse_statm_resident("1000 250 30 1 0 100 0", 4096).unwrap(), 250 * 4096);
/// assert!(parse_statm_resident("1000", 4096).is_err());
/// ```
pub fn parse_statm_resident(text: &str, page_size: u64) -> Result<u64, String> {
    let resident = text
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| "missing the resident field".to_owned())?;
    let pages: u64 = resident
        .parse()
        .map_err(|e| format!("resident field {resident:?}: {e}"))?;
    Ok(pages.saturating_mul(page_size))
}

/// The system's page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as u64 } else { 4096 }
}

/// Clock ticks per second (the unit of CPU times in `/proc/PID/stat`).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// Reads a process's memory and CPU from `/proc`.
#[derive(Debug, Clone)]
pub struct ProcessSampler {
    pid: u32,
    stat: PathBuf,
    statm: PathBuf,
    page_size: u64,
}

impl ProcessSampler {
    /// A sampler of process `pid`.
    pub fn new(pid: u32) -> Self {
        ProcessSampler {
            pid,
            stat: PathBuf::from(format!("/proc/{pid}/stat")),
            statm: PathBuf::from(format!("/proc/{pid}/statm")),
            page_size: page_size(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory only (one read of `statm`).
    pub fn rss_bytes(&self) -> Result<u64, LeakError> {
        let text = std::fs::read_to_string(&self.statm).map_err(|e| self.err(&e))?;
        parse_statm_resident(&text, self.page_size).map_err(|reason| LeakError::Process {
            pid: self.pid,
            reason: format!("{}: {reason}", self.statm.display()),
        })
    }

    /// Memory, CPU time and state.
    pub fn sample(&self) -> Result<ProcessSample, LeakError> {
        let rss_bytes = self.rss_bytes()?;
        let text = std::fs::read_to_string(&self.stat).map_err(|e| self.err(&e))?;
        let (state, cpu_ticks) = parse_stat(&text).map_err(|reason| LeakError::Process {
            pid: self.pid,
            reason: format!("{}: {reason}", self.stat.display()),
        })?;
        Ok(ProcessSample {
            rss_bytes,
            cpu_ticks,
            state,
        })
    }

    fn err(&self, e: &std::io::Error) -> LeakError {
        LeakError::Process {
            pid: self.pid,
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such process".to_owned()
            } else {
                e.to_string()
            },
        }
    }
}

/// The resident memory of any process, as a [`MemorySource`] named `process_rss`.
#[derive(Debug, Clone)]
pub struct ProcessRssSource {
    sampler: ProcessSampler,
}

impl ProcessRssSource {
    /// The source for process `pid`.
    pub fn new(pid: u32) -> Self {
        ProcessRssSource {
            sampler: ProcessSampler::new(pid),
        }
    }
}

impl MemorySource for ProcessRssSource {
    fn name(&self) -> &'static str {
        "process_rss"
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        let path = self.sampler.statm.display().to_string();
        let text = std::fs::read_to_string(&self.sampler.statm).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                MemoryError::NotAvailable {
                    source_name: "process_rss",
                    reason: format!("process {} does not exist", self.sampler.pid),
                }
            } else {
                MemoryError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let used_bytes = parse_statm_resident(&text, self.sampler.page_size)
            .map_err(|reason| MemoryError::Parse { path, reason })?;
        Ok(MemoryReading {
            used_bytes,
            limit_bytes: None,
        })
    }
}

/// Sends signal `signal` (`libc::SIGSTOP`, `libc::SIGTERM`, ...) to process `pid`.
pub fn send_signal(pid: u32, signal: i32) -> Result<(), LeakError> {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return Err(LeakError::Process {
            pid,
            reason: "pid out of range".into(),
        });
    };
    if p <= 0 {
        return Err(LeakError::Process {
            pid,
            reason: "refusing to signal a process group".into(),
        });
    }
    // SAFETY: kill has no memory-safety preconditions; p > 0 names one process.
    let rc = unsafe { libc::kill(p, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(LeakError::Process {
            pid,
            reason: format!(
                "sending signal {signal}: {}",
                std::io::Error::last_os_error()
            ),
        })
    }
}

/// The number of a signal name (`TERM`, `SIGUSR1`, `usr2`, `9`).
///
/// ```
/// use perfkit_leak::process::signal_number;
/// assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
/// assert_eq!(signal_number("usr1"), Some(libc::SIGUSR1));
/// assert_eq!(signal_number("9"), Some(9));
/// assert_eq!(signal_number("NOPE"), None);
/// ```
pub fn signal_number(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "ALRM" => libc::SIGALRM,
        "WINCH" => libc::SIGWINCH,
        "URG" => libc::SIGURG,
        "CHLD" => libc::SIGCHLD,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let me = ProcessSampler::new(std::process::id());
        let s = me.sample().unwrap();
        assert!(s.rss_bytes > 0);
        assert!("RSD".contains(s.state), "{}", s.state);
        assert!(s.cpu_ticks < 1 << 40);
        let r = ProcessRssSource::new(std::process::id()).read().unwrap();
        assert!(r.used_bytes > 0);
        assert!(clock_ticks_per_sec() > 0 && page_size() >= 4096);
    }

    #[test]
    fn missing_process_is_a_clear_error() {
        let gone = ProcessSampler::new(u32::MAX - 7);
        let msg = gone.sample().unwrap_err().to_string();
        assert!(msg.contains("no such process"), "{msg}");
        assert!(matches!(
            ProcessRssSource::new(u32::MAX - 7).read(),
            Err(MemoryError::NotAvailable { .. })
        ));
        assert!(send_signal(0, 0).is_err());
    }

    #[test]
    fn malformed_proc_text_is_an_error_not_a_panic() {
        for text in ["", "1 (x", "1 (x) R", "1 (x) R 1 2 3 4 5 6 7 8 9 10 a b"] {
            assert!(parse_stat(text).is_err(), "{text}");
        }
        assert!(parse_statm_resident("1 x", 4096).is_err());
    }
}
