//! The IPC playbook, executable: each failure mode the guides warn about ("the FIFO open
//! blocks until both sides arrive", "a crashed process leaves its segment behind", "shared
//! memory without a semaphore loses updates") as a scenario that runs real processes on this
//! kernel, narrates what each did and what the kernel answered, and ends with a verdict
//! computed from what happened.
//!
//! ```no_run
//! for s in ipckit_lab::scenarios() {
//!     let outcome = ipckit_lab::run(&s, |line| println!("{line}"));
//!     assert!(outcome.passed, "{}: {}", s.name, outcome.verdict);
//! }
//! ```
//!
//! The other processes of a scenario are this program started again with [`ROLE_ENV`] set:
//! a program that runs scenarios calls [`child_main`] first thing in `main` when
//! [`is_child`] says so (the `ipckit` binary does).

mod child;
mod scenarios;

use std::fmt::Display;
use std::time::Instant;

pub use child::{ROLE_ENV, is_child};

/// What a scenario's steps return: any error ends the scenario as failed, with the error.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One failure mode, runnable.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// `pipe-eof`, `shm-race`, …
    pub name: &'static str,
    /// The lesson, one line.
    pub lesson: &'static str,
    /// The scenario itself: narrates into the [`Lab`] and returns whether the behaviour it
    /// teaches showed.
    pub run: fn(&mut Lab) -> Result<Verdict>,
}

/// A scenario's end: did the behaviour show, and the last line that says so.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The behaviour the lesson is about happened.
    pub passed: bool,
    /// What happened, in one line.
    pub line: String,
}

impl Verdict {
    /// `passed` when `ok`, with `line` either way.
    pub fn check(ok: bool, line: impl Into<String>) -> Result<Verdict> {
        Ok(Verdict {
            passed: ok,
            line: line.into(),
        })
    }
}

/// The narration of a running scenario: who did what, and what the kernel answered.
pub struct Lab<'a> {
    start: Instant,
    lines: Vec<String>,
    echo: Box<dyn FnMut(&str) + 'a>,
}

impl Lab<'_> {
    /// One line of the transcript: `who` (parent, child 1234, kernel) did or saw `what`.
    pub fn say(&mut self, who: impl Display, what: impl Display) {
        let ms = self.start.elapsed().as_millis();
        let line = format!("{ms:>5} ms  {who:<12} {what}");
        (self.echo)(&line);
        self.lines.push(line);
    }

    /// What the kernel answered.
    pub fn kernel(&mut self, what: impl Display) {
        self.say("kernel", what);
    }
}

/// What running a scenario gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// Its lesson.
    pub lesson: &'static str,
    /// The behaviour showed.
    pub passed: bool,
    /// The verdict line.
    pub verdict: String,
    /// Every line of the narration.
    pub transcript: Vec<String>,
    /// How long it took.
    pub seconds: f64,
}

/// Plays the child role [`ROLE_ENV`] names (one of the scenarios' roles) and exits: 0 when it
/// succeeded, 1 (with the error on stderr) when it failed, 2 for a role that does not exist.
pub fn child_main() -> ! {
    child::play(scenarios::ROLES)
}

/// Every scenario, in the order `ipckit lab` lists them.
pub fn scenarios() -> Vec<Scenario> {
    scenarios::ALL
        .iter()
        .flat_map(|m| m.iter().copied())
        .collect()
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

/// Runs one scenario, passing each transcript line to `echo` as it happens. An error or a
/// panic inside the scenario is a failed verdict, never a crash.
pub fn run<'a>(scenario: &Scenario, echo: impl FnMut(&str) + 'a) -> Outcome {
    let mut lab = Lab {
        start: Instant::now(),
        lines: Vec::new(),
        echo: Box::new(echo),
    };
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (scenario.run)(&mut lab)));
    let verdict = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => Verdict {
            passed: false,
            line: format!("error: {}", ipckit::error::message(&*e)),
        },
        Err(p) => Verdict {
            passed: false,
            line: format!(
                "internal error: {}",
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into())
            ),
        },
    };
    Outcome {
        name: scenario.name,
        lesson: scenario.lesson,
        passed: verdict.passed,
        verdict: verdict.line,
        seconds: lab.start.elapsed().as_secs_f64(),
        transcript: lab.lines,
    }
}

/// The errno name of an ipckit error or an I/O error, for the transcript: `EPIPE`, …
pub fn errno_of(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(e) = e.downcast_ref::<ipckit::Error>()
        && let Some(errno) = e.errno()
    {
        return ipckit::error::errno_name(errno);
    }
    if let Some(code) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
    {
        return ipckit::error::errno_name(rustix::io::Errno::from_raw_os_error(code));
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(run: fn(&mut Lab) -> Result<Verdict>) -> Scenario {
        Scenario {
            name: "test",
            lesson: "a test",
            run,
        }
    }

    #[test]
    fn the_verdict_is_what_the_scenario_saw() {
        let shown = run(
            &scenario(|lab| {
                lab.say("parent", "did a thing");
                Verdict::check(true, "it showed")
            }),
            |_| {},
        );
        assert!(shown.passed);
        assert_eq!(shown.transcript.len(), 1);
        assert!(
            shown.transcript[0].contains("parent") && shown.transcript[0].contains("did a thing")
        );
        let not_shown = run(&scenario(|_| Verdict::check(false, "it did not")), |_| {});
        assert!(!not_shown.passed);
        assert_eq!(not_shown.verdict, "it did not");
    }

    #[test]
    fn an_error_or_a_panic_fails_the_scenario_and_says_why() {
        let failed = run(&scenario(|_| Err("the kernel said no".into())), |_| {});
        assert!(!failed.passed);
        assert!(
            failed.verdict.contains("the kernel said no"),
            "{}",
            failed.verdict
        );
        let panicked = run(&scenario(|_| panic!("a bug")), |_| {});
        assert!(!panicked.passed);
        assert!(panicked.verdict.contains("a bug"), "{}", panicked.verdict);
    }

    #[test]
    fn every_scenario_has_a_unique_name_and_a_lesson() {
        let all = scenarios();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate names");
        assert!(all.iter().all(|s| !s.lesson.is_empty()));
    }
}
