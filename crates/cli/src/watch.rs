//! `perfkit watch`: samples any process's memory and CPU from `/proc`, runs the leak
//! detector on its memory, predicts when it reaches `--memory`, and enforces budget levels:
//! warn at 80 % (a message), throttle at 90 % (a signal for memory; CPU is held to `--cpu`
//! all along by stopping and continuing the process), reject at 100 % (SIGTERM, then SIGKILL
//! after a grace period). Exits with the watched child's status and can write the samples
//! as CSV that `perfkit leak analyze` reads. With `--json`, one JSON document on stdout at
//! the end says what happened (the watched command's own output goes to stderr then).

use crate::Outcome;
use anyhow::{Context as _, bail};
use perfkit_alloc::{CgroupSource, SystemMemorySource};
use perfkit_core::ByteSize;
use perfkit_core::units::{format_bytes, parse_duration};
use perfkit_leak::process::{self, ProcessRssSource, ProcessSampler};
use perfkit_leak::{Analysis, LeakDetector, LimitSource, Snapshot, format_secs};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Arguments of `perfkit watch`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  perfkit watch --memory 512MiB --csv mem.csv -- python3 server.py\n  perfkit watch --pid 4242 --interval 5s\n  perfkit watch --cpu 0.25 -- ./batch-job"
)]
pub(crate) struct Args {
    /// The memory limit: warn at 80 %, send --memory-signal at 90 %, SIGTERM at 100 %
    /// (then SIGKILL after --grace). Also the limit of the OOM estimate (default: the
    /// cgroup's limit, else the machine's memory).
    #[arg(long, value_name = "LIMIT")]
    memory: Option<ByteSize>,
    /// Hold the process to this fraction of one CPU core (0.25 = 25 %) by stopping and
    /// continuing it (SIGSTOP/SIGCONT duty cycle).
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    cpu: Option<f64>,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_name = "DUR", value_parser = parse_interval)]
    interval: Duration,
    /// Write the samples as CSV (`t,bytes,cpu`) for `perfkit leak analyze`.
    #[arg(long, value_name = "OUT")]
    csv: Option<PathBuf>,
    /// The signal sent when memory reaches the throttle level (90 % of --memory). A
    /// process that does not handle SIGUSR1 ends on it; pick one it handles.
    #[arg(long, default_value = "USR1", value_name = "SIGNAL", value_parser = parse_signal)]
    memory_signal: i32,
    /// Time between SIGTERM and SIGKILL at the reject level.
    #[arg(long, default_value = "5s", value_name = "DUR", value_parser = parse_interval)]
    grace: Duration,
    /// Print one JSON document on stdout when the watch ends: the samples' summary, the
    /// leak verdict (as `perfkit leak analyze --json`), every level change and leak alert,
    /// and the exit status. The watched command's standard output goes to stderr.
    #[arg(long)]
    json: bool,
    /// Watch a running process instead of starting one.
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pid: Option<u32>,
    /// The command to run and watch (after `--`).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a fraction such as 0.25"))?;
    let v = if s.trim().ends_with('%') {
        v / 100.0
    } else {
        v
    };
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!("{s:?} must be a fraction of one core in (0, 1]"));
    }
    Ok(v)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(10) {
        return Err("the duration must be at least 10ms".to_owned());
    }
    Ok(d)
}

fn parse_signal(s: &str) -> Result<i32, String> {
    process::signal_number(s)
        .ok_or_else(|| format!("{s:?} is not a signal name (TERM, USR1, HUP, ...)"))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The watched process: our child, or any process.
enum Target {
    Child(std::process::Child),
    Pid(u32),
}

impl Target {
    fn pid(&self) -> u32 {
        match self {
            Target::Child(c) => c.id(),
            Target::Pid(p) => *p,
        }
    }

    /// Whether the process has ended (without reaping a child, so its pid stays ours
    /// until `wait`).
    fn ended(&self) -> bool {
        match self {
            Target::Child(c) => {
                let Ok(pid) = libc::pid_t::try_from(c.id()) else {
                    return true;
                };
                // SAFETY: an all-zero siginfo_t is a valid value to be filled in.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child waitable.
                let rc = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                    )
                };
                // SAFETY: reading the pid field of a siginfo_t filled by waitid.
                rc != 0 || unsafe { info.si_pid() } != 0
            }
            // Gone, or a zombie waiting for its parent: it has ended either way.
            Target::Pid(p) => ProcessSampler::new(*p)
                .sample()
                .map_or(true, |s| matches!(s.state, 'Z' | 'X' | 'x')),
        }
    }
}

/// Memory enforcement levels, as in perfkit-budget: allow, warn, throttle, reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Allow,
    Warn,
    Throttle,
    Reject,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Throttle => "throttle",
            Level::Reject => "reject",
        }
    }
}

fn level(used: u64, limit: u64) -> Level {
    let r = used as f64 / limit as f64;
    if r >= 1.0 {
        Level::Reject
    } else if r >= 0.9 {
        Level::Throttle
    } else if r >= 0.8 {
        Level::Warn
    } else {
        Level::Allow
    }
}

fn say(msg: &str) {
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2K");
    }
    let _ = writeln!(err, "perfkit watch: {msg}");
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let target = match (args.pid, args.command.is_empty()) {
        (Some(_), false) => bail!("give either --pid PID or -- CMD ARGS..., not both"),
        (None, true) => bail!("nothing to watch: give --pid PID or -- CMD ARGS..."),
        (Some(pid), true) => {
            ProcessSampler::new(pid)
                .sample()
                .with_context(|| format!("cannot watch process {pid}"))?;
            Target::Pid(pid)
        }
        (None, false) => {
            let mut command = std::process::Command::new(&args.command[0]);
            command.args(&args.command[1..]);
            if args.json {
                // Stdout carries our one JSON document; the child's output goes beside our
                // messages.
                command.stdout(std::process::Stdio::from(std::io::stderr()));
            }
            let child = command
                .spawn()
                .with_context(|| format!("starting {:?}", args.command[0]))?;
            Target::Child(child)
        }
    };
    // SAFETY: installing a handler that only stores to an atomic is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    let code = watch(&args, target)?;
    if code == 0 {
        Ok(Outcome::Success)
    } else {
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
}

/// Holds a process to a CPU fraction by stopping and continuing it, adjusting the share of
/// each 100 ms period it may run so that the measured use tracks the target.
struct CpuThrottle {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    pid: u32,
}

impl CpuThrottle {
    fn start(pid: u32, fraction: f64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let period = Duration::from_millis(100);
            let hz = process::clock_ticks_per_sec() as f64;
            let sampler = ProcessSampler::new(pid);
            let ticks = || sampler.sample().map_or(0, |s| s.cpu_ticks);
            let mut share = fraction;
            let mut window_start = (Instant::now(), ticks());
            while !flag.load(Ordering::SeqCst) {
                if share < 1.0 {
                    std::thread::sleep(period.mul_f64(share));
                    if flag.load(Ordering::SeqCst)
                        || process::send_signal(pid, libc::SIGSTOP).is_err()
                    {
                        break;
                    }
                    std::thread::sleep(period.mul_f64(1.0 - share));
                    let _ = process::send_signal(pid, libc::SIGCONT);
                } else {
                    std::thread::sleep(period);
                }
                // Twice a second, correct the share towards the target use (the process
                // may get less than its share when the machine is busy).
                let elapsed = window_start.0.elapsed().as_secs_f64();
                if elapsed >= 0.5 {
                    let now_ticks = ticks();
                    let used = now_ticks.saturating_sub(window_start.1) as f64 / hz / elapsed;
                    share = (share + 0.8 * (fraction - used)).clamp(0.02, 1.0);
                    window_start = (Instant::now(), now_ticks);
                }
            }
            let _ = process::send_signal(pid, libc::SIGCONT);
        });
        CpuThrottle {
            stop,
            handle: Some(handle),
            pid,
        }
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = process::send_signal(self.pid, libc::SIGCONT);
    }
}

impl Drop for CpuThrottle {
    fn drop(&mut self) {
        self.finish();
    }
}

fn watch(args: &Args, mut target: Target) -> anyhow::Result<i32> {
    let pid = target.pid();
    let sampler = ProcessSampler::new(pid);
    let mut builder = LeakDetector::builder(Arc::new(ProcessRssSource::new(pid)))
        .window(3600)
        .limit(LimitSource::Cgroup(Arc::new(CgroupSource::new())))
        .limit(LimitSource::System(Arc::new(SystemMemorySource::new())));
    if let Some(m) = args.memory {
        builder = builder.limit(LimitSource::Explicit(m.as_u64()));
    }
    let detector = builder.build()?;
    let start = Instant::now();
    // What `--json` reports besides the summary, in order.
    let events: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let alert_events = Arc::clone(&events);
    detector.on_alert(move |alert| {
        let a = &alert.analysis;
        let t = round3(start.elapsed().as_secs_f64());
        let event = if a.leak {
            say(&format!("leak detected: {}", describe(a)));
            serde_json::json!({"t_secs": t, "event": "leak", "pattern": a.pattern,
                "confidence": round3(a.confidence),
                "growth_bytes_per_sec": round3(a.growth_bytes_per_sec)})
        } else if alert.previous.is_some_and(|(p, _)| p.is_leak()) {
            say("the leak pattern is gone: memory is no longer growing");
            serde_json::json!({"t_secs": t, "event": "leak_gone"})
        } else {
            return;
        };
        alert_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    });
    let record = |event: serde_json::Value| {
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    };
    let mut csv = match &args.csv {
        Some(path) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            writeln!(f, "t,bytes,cpu")?;
            Some(f)
        }
        None => None,
    };
    let mut throttle = args.cpu.map(|f| CpuThrottle::start(pid, f));
    let hz = process::clock_ticks_per_sec() as f64;
    let status_line = std::io::stderr().is_terminal();
    let mut last_ticks: Option<(Instant, u64)> = None;
    let mut current = Level::Allow;
    let mut term_sent: Option<Instant> = None;
    let mut killed = false;
    let mut interrupted_at: Option<Instant> = None;
    let mut abandoned = false;
    let mut peak = 0u64;
    let mut samples = 0usize;

    loop {
        if target.ended() {
            break;
        }
        if INTERRUPTED.load(Ordering::SeqCst) && interrupted_at.is_none() {
            interrupted_at = Some(Instant::now());
            if let Some(t) = throttle.as_mut() {
                t.finish();
            }
            if matches!(target, Target::Pid(_)) {
                say("interrupted; the watched process keeps running");
                break;
            }
        }
        if interrupted_at.is_some_and(|t| t.elapsed() > args.grace) {
            say("interrupted; the child did not exit, leaving it running");
            abandoned = true;
            break;
        }
        let Ok(s) = sampler.sample() else {
            break; // the process is gone
        };
        let now = Instant::now();
        let cpu = last_ticks.map_or(0.0, |(t, ticks)| {
            let dt = now.duration_since(t).as_secs_f64();
            if dt > 0.0 {
                s.cpu_ticks.saturating_sub(ticks) as f64 / hz / dt
            } else {
                0.0
            }
        });
        last_ticks = Some((now, s.cpu_ticks));
        let t = now.duration_since(start).as_secs_f64();
        peak = peak.max(s.rss_bytes);
        samples += 1;
        detector.record(Snapshot {
            t_secs: t,
            bytes: s.rss_bytes,
            limit_bytes: None,
        });
        if let Some(f) = csv.as_mut() {
            writeln!(f, "{t:.3},{},{cpu:.4}", s.rss_bytes)?;
        }
        let verdict = (samples >= 10).then(|| detector.detect_leaks());

        if let Some(limit) = args.memory.map(|m| m.as_u64()).filter(|&m| m > 0) {
            let lvl = level(s.rss_bytes, limit);
            if lvl != current {
                record(serde_json::json!({"t_secs": round3(t), "event": "level",
                    "level": lvl.name(), "rss_bytes": s.rss_bytes, "limit_bytes": limit}));
            }
            if lvl > current {
                let pct = s.rss_bytes as f64 / limit as f64 * 100.0;
                match lvl {
                    Level::Warn => say(&format!(
                        "warn: memory {} is {pct:.0} % of the {} limit",
                        format_bytes(s.rss_bytes),
                        format_bytes(limit)
                    )),
                    Level::Throttle => {
                        let sent = process::send_signal(pid, args.memory_signal).is_ok();
                        say(&format!(
                            "throttle: memory {} is {pct:.0} % of the {} limit; {} signal {}",
                            format_bytes(s.rss_bytes),
                            format_bytes(limit),
                            if sent { "sent" } else { "could not send" },
                            args.memory_signal
                        ));
                    }
                    Level::Reject => {
                        say(&format!(
                            "reject: memory {} reached the {} limit; sending SIGTERM (SIGKILL in {})",
                            format_bytes(s.rss_bytes),
                            format_bytes(limit),
                            format_secs(args.grace.as_secs_f64())
                        ));
                        if let Some(t) = throttle.as_mut() {
                            t.finish();
                        }
                        let _ = process::send_signal(pid, libc::SIGTERM);
                        term_sent = Some(Instant::now());
                    }
                    Level::Allow => {}
                }
                current = lvl;
            } else if lvl < current && lvl < Level::Reject {
                current = lvl;
            }
        }
        if let Some(sent) = term_sent
            && !killed
            && sent.elapsed() >= args.grace
        {
            record(serde_json::json!({"t_secs": round3(t), "event": "sigkill"}));
            say("the process ignored SIGTERM; sending SIGKILL");
            let _ = process::send_signal(pid, libc::SIGKILL);
            killed = true;
        }
        if status_line {
            let verdict_text = verdict
                .as_ref()
                .map_or("collecting samples".to_owned(), |a| {
                    if a.leak {
                        format!("{} leak", a.pattern)
                    } else {
                        "no leak".to_owned()
                    }
                });
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[pid {pid}] {:>7.1}s  rss {:>10}  cpu {:>5.1} %  {verdict_text}",
                t,
                format_bytes(s.rss_bytes),
                cpu * 100.0
            );
            let _ = err.flush();
        }
        // Sleep until the next sample, waking early when the process ends.
        let next = now + args.interval;
        let new_interrupt = || INTERRUPTED.load(Ordering::SeqCst) && interrupted_at.is_none();
        while Instant::now() < next && !target.ended() && !new_interrupt() {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(20)));
        }
    }
    if let Some(mut t) = throttle.take() {
        t.finish();
    }
    if let Some(mut f) = csv.take() {
        f.flush()?;
    }
    if status_line {
        eprintln!();
    }
    let code = match &mut target {
        // Interrupted and the child would not stop: do not wait for it.
        Target::Child(_) if abandoned => 128 + libc::SIGINT,
        Target::Child(child) => {
            let status = child.wait().context("waiting for the child")?;
            use std::os::unix::process::ExitStatusExt as _;
            status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(1)
        }
        Target::Pid(_) => 0,
    };
    let final_verdict = detector.last_verdict();
    say(&format!(
        "{samples} samples over {}, peak rss {}; {}",
        format_secs(start.elapsed().as_secs_f64()),
        format_bytes(peak),
        final_verdict.as_ref().map_or_else(
            || "too few samples for a leak verdict".to_owned(),
            |a| if a.leak {
                format!("leak: {}", describe(a))
            } else {
                "no leak".to_owned()
            }
        )
    ));
    if let Some(path) = &args.csv {
        say(&format!(
            "samples written to {} (perfkit leak analyze {})",
            path.display(),
            path.display()
        ));
    }
    if abandoned {
        say(&format!(
            "process {pid} is still running; exiting with status {code}"
        ));
    } else if matches!(target, Target::Child(_)) {
        say(&format!("the process exited with status {code}"));
    }
    if args.json {
        let events = std::mem::take(&mut *events.lock().unwrap_or_else(PoisonError::into_inner));
        crate::output::print_json(&serde_json::json!({
            "pid": pid,
            "command": args.command,
            "samples": samples,
            "duration_secs": round3(start.elapsed().as_secs_f64()),
            "peak_rss_bytes": peak,
            "memory_limit_bytes": args.memory.map(|m| m.as_u64()),
            "cpu_fraction": args.cpu,
            "exit_status": matches!(target, Target::Child(_)).then_some(code),
            "interrupted": interrupted_at.is_some(),
            "abandoned": abandoned,
            "verdict": final_verdict
                .as_ref()
                .map(|a| crate::leak::json_document(a, detector.limit())),
            "events": events,
        }))?;
    }
    Ok(code)
}

fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        v
    }
}

fn describe(a: &Analysis) -> String {
    let mut s = format!(
        "{} pattern, growing {}/s, confidence {:.0} %",
        a.pattern,
        format_bytes(a.growth_bytes_per_sec.max(0.0).round() as u64),
        a.confidence * 100.0
    );
    match a.oom {
        Some(oom) => match oom.eta_secs {
            Some(eta) => s.push_str(&format!(
                "; OOM: reaches the {} limit of {} in ~{} (range {} to {})",
                oom.limit_source,
                format_bytes(oom.limit_bytes),
                format_secs(eta),
                oom.eta_low_secs.map_or("?".to_owned(), format_secs),
                oom.eta_high_secs.map_or("never".to_owned(), format_secs)
            )),
            None => s.push_str("; OOM: no estimate"),
        },
        None => s.push_str("; OOM: no limit known"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_budget_thresholds() {
        assert_eq!(level(79, 100), Level::Allow);
        assert_eq!(level(80, 100), Level::Warn);
        assert_eq!(level(95, 100), Level::Throttle);
        assert_eq!(level(100, 100), Level::Reject);
    }

    #[test]
    fn parses_fractions_and_signals() {
        assert_eq!(parse_fraction("0.25").unwrap(), 0.25);
        assert_eq!(parse_fraction("50%").unwrap(), 0.5);
        assert!(parse_fraction("0").is_err() && parse_fraction("1.5").is_err());
        assert!(parse_fraction("fast").is_err());
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_interval("1ms").is_err());
    }
}
