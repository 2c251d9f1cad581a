//! `ipckit lab`: the IPC playbook's failure modes, run live between real processes.

use std::io::Write;

use anyhow::{Result, bail};

use crate::output::lab::{OutcomeJson, ScenarioJson};
use crate::output::write_pretty;

/// Run the classic IPC failure modes live, between real processes, and watch the kernel.
///
/// Without names, lists the scenarios. Each prints a narrated transcript and a verdict
/// computed from what happened; exits 1 if any did not show its lesson.
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// Scenarios to run, by name; without names (and without --all) the list is printed.
    pub names: Vec<String>,
    /// Run every scenario.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// One JSON array: name, lesson, passed, verdict, transcript (lines), seconds.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LabArgs) -> Result<()> {
    let all = ipckit_lab::scenarios();
    let mut out = std::io::stdout().lock();
    if args.names.is_empty() && !args.all {
        if args.json {
            let list: Vec<ScenarioJson> = all.iter().map(ScenarioJson::from).collect();
            write_pretty(&mut out, &list)?;
        } else {
            let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for s in &all {
                writeln!(out, "{:<width$}  {}", s.name, s.lesson)?;
            }
            writeln!(
                out,
                "\nRun one with `ipckit lab NAME`, or all with `ipckit lab --all`."
            )?;
        }
        return Ok(());
    }
    let chosen: Vec<ipckit_lab::Scenario> = if args.all {
        all
    } else {
        let mut chosen = Vec::new();
        for name in &args.names {
            match ipckit_lab::find(name) {
                Some(s) => chosen.push(s),
                None => crate::usage_bail!("no scenario '{name}' (`ipckit lab` lists them)"),
            }
        }
        chosen
    };
    // Ctrl-C lets the running scenario finish (so it removes what it made: its waits are all
    // bounded) and runs no more; a second Ctrl-C stops at once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interrupt = crate::interrupt::Interrupt::catch(stop)?;
    let mut outcomes = Vec::new();
    for s in &chosen {
        if let Some(signo) = interrupt.caught() {
            eprintln!(
                "ipckit: {}: stopping after {} of {} scenarios",
                ipckit::notify::signal::name(signo),
                outcomes.len(),
                chosen.len()
            );
            break;
        }
        if !args.json {
            writeln!(out, "== {}: {}", s.name, s.lesson)?;
        }
        let json = args.json;
        let outcome = ipckit_lab::run(s, |line| {
            if !json {
                // The narration as it happens; a closed stdout only loses the narration.
                let _ = writeln!(std::io::stdout(), "{line}");
            }
        });
        if !json {
            writeln!(
                out,
                "{} {} ({:.2} s)\n",
                if outcome.passed { "PASS" } else { "FAIL" },
                outcome.verdict,
                outcome.seconds
            )?;
        }
        outcomes.push(outcome);
    }
    if args.json {
        let list: Vec<OutcomeJson> = outcomes.iter().map(OutcomeJson::from).collect();
        write_pretty(&mut out, &list)?;
    }
    if let Some(signo) = interrupt.caught() {
        bail!(
            "stopped by {} after {} of {} scenarios",
            ipckit::notify::signal::name(signo),
            outcomes.len(),
            chosen.len()
        );
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let seconds: f64 = outcomes.iter().map(|o| o.seconds).sum();
    eprintln!(
        "lab: {passed} of {} scenarios showed their lesson ({seconds:.1} s)",
        outcomes.len()
    );
    if passed < outcomes.len() {
        let failed: Vec<&str> = outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.name)
            .collect();
        bail!("did not show: {}", failed.join(", "));
    }
    Ok(())
}
