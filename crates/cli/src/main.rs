//! The `perfkit` command. A thin binary over the perfkit library crates: one module per
//! subcommand, each with its clap arguments and a `run` function that calls library code.
//!
//! Exit codes: 0 success, 1 a failed check (budget exceeded, regression found), 2 bad usage
//! or bad input (and any other error). Errors print as `error: ...` with their causes.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[cfg(feature = "bundle")]
mod bundle;
#[cfg(feature = "cache")]
mod cache;
mod completions;
mod demo;
#[cfg(feature = "lazy")]
mod lazy;
#[cfg(feature = "leak")]
mod leak;
mod output;
#[cfg(feature = "profiler")]
mod profile;
#[cfg(feature = "leak")]
mod watch;

/// Counts heap use for the demo's memory budget and leak detection (`perfkit-alloc`).
#[cfg(any(feature = "budget", feature = "leak"))]
#[global_allocator]
static GLOBAL: perfkit_alloc::TrackingAllocator<std::alloc::System> =
    perfkit_alloc::TrackingAllocator::new(std::alloc::System);

/// What a subcommand reports back to `main`, which turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything passed: exit 0.
    Success,
    /// A check failed (a budget was exceeded, a regression was found): exit 1.
    #[cfg_attr(not(any(feature = "profiler", feature = "bundle")), allow(dead_code))]
    CheckFailed,
}

/// perfkit: performance tooling for Rust services, and offline analysis of what they produce.
#[derive(Debug, Parser)]
#[command(name = "perfkit", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Run `perfkit demo` to see every capability on a sample service.")]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a built-in sample service under perfkit and print a report per capability.
    Demo(demo::Args),
    /// Memory leaks: classify a memory series and estimate when it runs out of memory.
    #[cfg(feature = "leak")]
    Leak(leak::Args),
    /// Watch any process: memory and CPU from /proc, leak detection, OOM prediction, and
    /// enforcement (warn, throttle, reject) of --memory and --cpu.
    #[cfg(feature = "leak")]
    Watch(watch::Args),
    /// Analyse saved profiles: flame graphs, regressions against a baseline, suggestions.
    #[cfg(feature = "profiler")]
    Profile(profile::Args),
    /// Cache policies: simulate them over a trace, or tune one for a capacity.
    #[cfg(feature = "cache")]
    Cache(cache::Args),
    /// Lazy loading: preload hints (tags and `Link` header) for a bundled web front end.
    #[cfg(feature = "lazy")]
    Lazy(lazy::Args),
    /// Analyse JavaScript bundler output: sizes, findings, budgets, diffs, splitChunks.
    #[cfg(feature = "bundle")]
    Bundle(bundle::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Completions(args) => completions::run(args),
        #[cfg(feature = "cache")]
        Command::Cache(args) => cache::run(args),
        #[cfg(feature = "lazy")]
        Command::Lazy(args) => lazy::run(args),
        #[cfg(feature = "bundle")]
        Command::Bundle(args) => bundle::run(args),
        #[cfg(feature = "profiler")]
        Command::Profile(args) => profile::run(args),
        #[cfg(feature = "leak")]
        Command::Leak(args) => leak::run(args),
        #[cfg(feature = "leak")]
        Command::Watch(args) => watch::run(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(err) => {
            output::print_error(&err);
            ExitCode::from(2)
        }
    }
}
