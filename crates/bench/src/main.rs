//! `perfkit-bench`: runs perfkit and the crate or tool a user would pick instead on the same
//! work, in one run, and reports each comparison as a ratio perfkit-cost / peer-cost (below
//! 1.0 means perfkit is better).
//!
//! ```text
//! cargo run --release -p perfkit-bench -- SUITE [--json]
//! cargo run --release -p perfkit-bench -- all --json
//! cargo run --release -p perfkit-bench -- list
//! ```

use anyhow::bail;
use clap::Parser;
use std::process::ExitCode;

mod suite;
mod suites;

use suite::SuiteResult;

/// Side-by-side benchmarks of perfkit against its peers.
#[derive(Debug, Parser)]
#[command(name = "perfkit-bench", version, about)]
struct Cli {
    /// The suite to run, `all` for every suite, or `list` to list them.
    suite: String,
    /// Print one JSON document on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Shorter runs (fewer iterations): for smoke tests, not for recorded figures.
    #[arg(long)]
    quick: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let all = suites::all();
    let opts = suite::Options { quick: cli.quick };
    match cli.suite.as_str() {
        "list" => {
            for s in &all {
                println!("{:10} {}", s.name(), s.description());
            }
            Ok(())
        }
        "all" => {
            let mut results = Vec::new();
            for s in &all {
                if !cli.json {
                    eprintln!("running suite {}...", s.name());
                }
                results.push(s.run(&opts)?);
            }
            if cli.json {
                let doc = serde_json::json!({ "suites": results });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                for r in &results {
                    print!("{}", r.render_table());
                    println!();
                }
                if results.is_empty() {
                    println!("no benchmark suites are built in yet");
                }
            }
            Ok(())
        }
        name => {
            let Some(s) = all.iter().find(|s| s.name() == name) else {
                let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
                bail!(
                    "unknown suite {name:?}; available: all, list, {}",
                    names.join(", ")
                );
            };
            let result: SuiteResult = s.run(&opts)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{}", result.render_table());
            }
            Ok(())
        }
    }
}
