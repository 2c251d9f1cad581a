//! `ipckit completions SHELL`: the shell completion script, from the same clap definition
//! that parses the command line (clap_complete).

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

/// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
///
/// bash: `ipckit completions bash > ~/.local/share/bash-completion/completions/ipckit`;
/// zsh: into a directory of $fpath as `_ipckit`; fish:
/// `ipckit completions fish > ~/.config/fish/completions/ipckit.fish`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    // Rendered whole first: the generators panic on a write error, and a closed pipe is an
    // error to report, not a panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ipckit", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script to standard output")
}
