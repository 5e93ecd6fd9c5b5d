//! `perfkit completions SHELL`: prints a completion script for the shell.

use crate::{Cli, Outcome};
use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `perfkit completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    shell: Shell,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "perfkit", &mut std::io::stdout());
    Ok(Outcome::Success)
}
