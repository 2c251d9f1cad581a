//! `ipckit gc`: remove orphans and stale socket files (nothing live), reporting each one.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use ipckit::host::{self, State};

use crate::ls::Filter;
use crate::output::gc::{Action, RemovalJson};
use crate::output::{self, ls::ObjectJson};

/// Remove orphans and stale socket files (nothing live), reporting each one.
///
/// Carries on past an object it may not remove, and exits 1 if any removal failed.
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    pub filter: Filter,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only objects untouched for longer than this (e.g. 10m, 2h, 7days): no change, attach,
    /// send, receive or semop the kernel records.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// One JSON array: each orphan or stale file acted on, with what was done ("removed",
    /// "would-remove", "failed" with the error).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: GcArgs) -> Result<()> {
    let (objects, notes) = args.filter.scan(false)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (mut removed, mut failed, mut young) = (0, 0, 0);
    let mut report = Vec::new();
    let mut out = std::io::stdout().lock();
    for o in objects.iter().filter(|o| o.state.is_garbage()) {
        if let Some(min) = args.older_than {
            let old_enough = o
                .idle_secs(now)
                .is_some_and(|age| age as u64 >= min.as_secs());
            if !old_enough {
                young += 1;
                continue;
            }
        }
        let (action, error) = if args.dry_run {
            (Action::WouldRemove, None)
        } else {
            match host::remove(o) {
                Ok(()) => (Action::Removed, None),
                Err(e) => (Action::Failed, Some(e.to_string())),
            }
        };
        match action {
            Action::Failed => failed += 1,
            _ => removed += 1,
        }
        if args.json {
            report.push(RemovalJson {
                object: ObjectJson::from(o),
                action,
                error,
            });
        } else {
            // The URI's name is escaped; the reason and the error may quote what a process
            // or the system said: every line is escaped before it reaches the terminal.
            let what = format!("{} ({}: {})", o.uri(), o.state, o.reason);
            let line = match &error {
                None => format!("{} {what}", action.words()),
                Some(e) => format!("failed {what}: {e}"),
            };
            writeln!(out, "{}", ipckit::name::escape_str(&line))?;
        }
    }
    if args.json {
        output::write_pretty(&mut out, &report)?;
    }
    let live = objects.iter().filter(|o| o.state == State::Live).count();
    let unknown = objects.iter().filter(|o| o.state == State::Unknown).count();
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut summary = format!("gc: {verb} {removed}, kept {live} live");
    if unknown > 0 {
        summary.push_str(&format!(", {unknown} unknown"));
    }
    if young > 0 {
        summary.push_str(&format!(", {young} orphans used within --older-than"));
    }
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    eprintln!("{summary}");
    for note in notes {
        eprintln!("note: {}", ipckit::name::escape_str(&note));
    }
    if failed > 0 {
        bail!("{failed} removals failed");
    }
    Ok(())
}
