//! Output conventions shared by every subcommand: errors with their cause chain, one JSON
//! document on stdout for `--json`, and progress bars that show only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Prints `error: ...` and each cause on its own line to stderr.
pub(crate) fn print_error(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
}

/// Prints `value` as one pretty JSON document on stdout, followed by a newline.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

/// A progress bar on stderr that is drawn only when stderr is a terminal, so piped and
/// `--json` output stays clean. `len` of 0 gives a spinner.
#[allow(dead_code)] // used by the analysis subcommands as they arrive
pub(crate) fn progress(len: u64, message: &str) -> ProgressBar {
    let bar = if len == 0 {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(len)
    };
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let template = if len == 0 {
            "{spinner} {msg} {elapsed}"
        } else {
            "{msg} [{bar:30}] {pos}/{len} {elapsed}/{eta}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_message(message.to_owned());
    bar
}

/// Whether stdout is a terminal (for choosing colour or live status lines).
#[allow(dead_code)]
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
