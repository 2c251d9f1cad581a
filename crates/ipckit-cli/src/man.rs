//! `ipckit man [SUBCOMMAND]... [--out DIR]`: manual pages in roff, from the same clap
//! definition that parses the command line (clap_mangen).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::CommandFactory;
use clap_mangen::Man;

/// Print a manual page in roff, or write one page per subcommand into a directory.
///
/// Without SUBCOMMAND, the page of ipckit itself, ipckit(1); `ipckit man ls | man -l -`
/// shows ipckit-ls(1), `ipckit man sem wait` gives ipckit-sem-wait(1). With --out DIR, the page and one for each of its subcommands are
/// written into DIR as ipckit.1, ipckit-ls.1, … (what `man -M` or a package's man1/ wants),
/// and their paths printed. DIR is made if missing, but not its parent; it must not be a
/// symlink, nor a directory another user owns or can write, and a page is never written
/// through a symlink.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// The subcommand (and its subcommand, for sem) whose page to give.
    #[arg(value_name = "SUBCOMMAND")]
    pub path: Vec<String>,
    /// Write the pages into this directory (made if missing; its parent must exist) instead
    /// of printing one.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    // Names each subcommand `ipckit-ls` and `ipckit ls`, as its page is titled.
    cmd.build();
    let cmd = find(&cmd, &args.path)?;
    match &args.out {
        None => {
            let page = render(cmd)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .context("writing the manual page to standard output")
        }
        Some(dir) => {
            ipckit::files::create_dir(dir)?;
            let mut out = std::io::stdout().lock();
            for path in write_all(cmd, dir)? {
                writeln!(out, "{}", path.display())?;
            }
            Ok(())
        }
    }
}

/// The (built) command that `path` names under `cmd`.
fn find<'a>(cmd: &'a clap::Command, path: &[String]) -> anyhow::Result<&'a clap::Command> {
    let mut at = cmd;
    for name in path {
        let Some(sub) = at.find_subcommand(name) else {
            let names: Vec<&str> = at.get_subcommands().map(|c| c.get_name()).collect();
            if names.is_empty() {
                bail!("'{}' has no subcommands", display(at));
            }
            bail!(
                "'{}' has no subcommand '{name}' (it has: {})",
                display(at),
                names.join(", ")
            );
        };
        at = sub;
    }
    Ok(at)
}

fn display(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// The page of `cmd`, its footer naming this ipckit's version (a subcommand has none of
/// its own).
fn man(cmd: &clap::Command) -> Man {
    Man::new(cmd.clone()).source(format!("ipckit {}", env!("CARGO_PKG_VERSION")))
}

/// One page, in roff.
fn render(cmd: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    man(cmd)
        .render(&mut page)
        .with_context(|| format!("rendering the manual page of {}", display(cmd)))?;
    Ok(page)
}

/// Writes `cmd`'s page and its subcommands' into `dir` (each a new file renamed into place,
/// never through a symlink: `ipckit::files`), returning their paths.
fn write_all(cmd: &clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let path = dir.join(man(cmd).get_filename());
    let page = render(cmd)?;
    ipckit::files::write(&path, &page)?;
    let mut written = vec![path];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.extend(write_all(sub, dir)?);
    }
    Ok(written)
}
