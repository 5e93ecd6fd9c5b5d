//! # perfkit-testkit
//!
//! Helpers for perfkit's own tests (not published):
//!
//! - [`data_dir`]: where the real test data lives (`PERFKIT_DATA`, else `../shared/data`
//!   beside the workspace). Tests on real data call it and skip themselves, saying so, when
//!   it returns `None`, so a user's fresh clone passes without the data.
//! - [`RedisServer`]: a real `redis-server` started on a free loopback port for one test and
//!   stopped when dropped.
//!
//! ```no_run
//! if let Some(dir) = perfkit_testkit::data_dir() {
//!     assert!(dir.join("cache-traces").exists());
//! }
//! ```

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR of this crate is <root>/crates/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The real test data directory, if present: `$PERFKIT_DATA`, else `../shared/data` beside
/// the workspace. The workspace is found from the running test's `CARGO_MANIFEST_DIR` (set by
/// `cargo test`) or the current directory, falling back to where this crate was compiled, so
/// a test binary built in one checkout and run from another still finds the data.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("PERFKIT_DATA").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(v);
        return dir.is_dir().then_some(dir);
    }
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
        Some(workspace_root()),
    ];
    starts.into_iter().flatten().find_map(|start| {
        start
            .ancestors()
            .map(|dir| dir.join("..").join("shared").join("data"))
            .find(|candidate| candidate.is_dir())
    })
}

/// A file under the real data directory, if the directory and the file exist. When they do
/// not, prints a line saying that the test was skipped and returns `None`.
pub fn data_file(relative: &str) -> Option<PathBuf> {
    let path = data_dir()?.join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: real data file {relative} not found");
        None
    }
}

/// Whether a program is on `PATH`.
pub fn have_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// A real `redis-server` on a free loopback port, without persistence, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port. Panics with a clear message when `redis-server` is not
    /// installed (`scripts/test.sh` installs it) or does not come up within 10 s.
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (used to bring a killed server back on the same port).
    pub fn start_on(port: u16) -> RedisServer {
        assert!(
            have_program("redis-server"),
            "redis-server is not installed: run scripts/test.sh, which installs it"
        );
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Drain stdout in the background so the server never blocks on a full pipe.
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
        }
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            child: Some(child),
            port,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `redis://127.0.0.1:PORT/` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
