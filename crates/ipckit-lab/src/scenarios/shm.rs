//! Shared memory is the one mechanism where the kernel does nothing for you once the memory is
//! mapped: two processes that each do "read the counter, add one, write it back" lose updates
//! whenever their steps interleave (`shm-race`). A process-shared POSIX semaphore around the
//! increment (`shm-semaphore`) or a single atomic read-modify-write (`shm-atomic`) makes the
//! count exact again.
//!
//! The memory is a memfd that each child inherits as descriptor 3 and maps itself: nothing to
//! unlink, nothing left behind whatever happens to the processes.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipckit::shm::mapping::Mapping;
use ipckit::shm::memfd::Memfd;
use ipckit::sync::sem_posix::SharedSem;

use crate::child::{self, Args, Child, Role};
use crate::{Lab, Result, Scenario, Verdict};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "shm-race",
        lesson: "two processes incrementing a shared counter without synchronisation lose updates",
        run: race,
    },
    Scenario {
        name: "shm-semaphore",
        lesson: "the same increments inside a process-shared POSIX semaphore give the exact count",
        run: semaphore,
    },
    Scenario {
        name: "shm-atomic",
        lesson: "the same increments as one atomic fetch_add give the exact count, with no lock",
        run: atomic,
    },
];

pub(crate) const ROLES: &[Role] = &[("shm-incrementer", incrementer)];

/// Where the counter lives in the shared memory.
const COUNTER: usize = 0;
/// Where the semaphore lives (its own cache line, away from the counter).
const SEM: usize = 64;
/// The descriptor number the children find the memfd at.
const FD: i32 = 3;
/// How many processes increment at once.
const CHILDREN: usize = 2;

/// How the children increment.
#[derive(Clone, Copy)]
enum Mode {
    /// Relaxed load, a short spin, relaxed store: no synchronisation at all.
    Race,
    /// The same load, spin and store between `sem_wait` and `sem_post`.
    Semaphore,
    /// One `fetch_add`.
    Atomic,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Race => "race",
            Mode::Semaphore => "semaphore",
            Mode::Atomic => "atomic",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "race" => Ok(Mode::Race),
            "semaphore" => Ok(Mode::Semaphore),
            "atomic" => Ok(Mode::Atomic),
            _ => Err(format!("no increment mode '{s}'").into()),
        }
    }
}

/// Spins between the load and the store: the window in which the other process's increments
/// are overwritten, wide enough that a preemption on one CPU lands in it too.
const SPIN: u32 = 8;

fn race(lab: &mut Lab) -> Result<Verdict> {
    let (expected, got, _) = counted(lab, Mode::Race)?;
    let lost = expected.saturating_sub(got);
    lab.say(
        "parent",
        format!("lost updates: {expected} - {got} = {lost}"),
    );
    Verdict::check(
        lost > 0,
        format!(
            "{lost} of {expected} increments lost ({:.1}%): load-then-store is not an increment",
            lost as f64 * 100.0 / expected.max(1) as f64
        ),
    )
}

fn semaphore(lab: &mut Lab) -> Result<Verdict> {
    let (expected, got, overlapped) = counted_overlapping(lab, Mode::Semaphore)?;
    exact(got, expected, overlapped, "none lost inside the semaphore")
}

fn atomic(lab: &mut Lab) -> Result<Verdict> {
    let (expected, got, overlapped) = counted_overlapping(lab, Mode::Atomic)?;
    exact(got, expected, overlapped, "fetch_add loses none")
}

/// [`counted`], run again (three times at most) while a starved machine ran the children one
/// after the other.
fn counted_overlapping(lab: &mut Lab, mode: Mode) -> Result<(u64, u64, bool)> {
    let mut run = counted(lab, mode)?;
    for _ in 0..2 {
        if run.2 {
            break;
        }
        lab.say("parent", "the children did not overlap: once more");
        run = counted(lab, mode)?;
    }
    Ok(run)
}

/// An exact count proves the synchronisation only if the children really ran at the same time
/// (each saw the other add while it ran); run one after the other, any increment is exact.
fn exact(got: u64, expected: u64, overlapped: bool, why: &str) -> Result<Verdict> {
    if !overlapped {
        return Verdict::check(
            false,
            format!(
                "the children did not run at the same time (each must see the other add): nothing shown; final count {got} of {expected}"
            ),
        );
    }
    Verdict::check(
        got == expected,
        format!("final count {got} of {expected} expected, the children overlapping: {why}"),
    )
}

/// How long each child goes on incrementing, at least: long enough that on one CPU the
/// scheduler switches between the children many times, whatever the machine's speed, so the
/// three scenarios compare the same overlap.
const RUN_MS: u64 = 200;

/// Runs [`CHILDREN`] incrementers on one counter, started together; returns (the increments
/// they report, the counter's final value, whether every child saw another add meanwhile).
fn counted(lab: &mut Lab, mode: Mode) -> Result<(u64, u64, bool)> {
    let memfd = Memfd::create("ipckit-lab-shm-counter", 4096)?;
    let mapping = memfd.map(ipckit::Access::ReadWrite)?;
    let counter = mapping.atomic_u64(COUNTER)?;
    counter.store(0, Ordering::SeqCst);
    let mut what = format!("memfd of 4096 bytes, counter at offset {COUNTER}");
    // The semaphore is made before any child maps the memory, and lives as long as `mapping`.
    let _sem = match mode {
        Mode::Semaphore => {
            what.push_str(&format!(", sem_init(pshared=1, 1) at offset {SEM}"));
            Some(SharedSem::init(&mapping, SEM, 1)?)
        }
        _ => None,
    };
    lab.say("parent", what);

    let mut children: Vec<Child> = Vec::new();
    for _ in 0..CHILDREN {
        let c = child::spawn("shm-incrementer")
            .arg("MODE", mode.name())
            .arg("MS", RUN_MS)
            .fd(memfd.as_fd(), FD)
            .start()?;
        children.push(c);
    }
    for c in &mut children {
        let line = c.line()?;
        lab.say(format!("child {}", c.pid()), line);
    }
    // Every child has mapped the memory and waits: the starting shot goes to all of them
    // before any can have done much, so their loops overlap.
    for c in &mut children {
        c.tell("go")?;
    }
    lab.say("parent", format!("tells all {CHILDREN} children: go"));
    let mut expected = 0u64;
    let mut overlapped = true;
    for c in &mut children {
        let line = c.line()?;
        let n: u64 = line
            .strip_prefix("done ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("child {} said '{line}'", c.pid()))?;
        expected += n;
        let others: u64 = line
            .split("meanwhile the other added ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        overlapped &= others > 0;
        lab.say(format!("child {}", c.pid()), line);
    }
    for c in &mut children {
        c.success()?;
    }
    let got = counter.load(Ordering::SeqCst);
    lab.say(
        "parent",
        format!("counter = {got}, increments done = {expected}"),
    );
    Ok((expected, got, overlapped))
}

/// Child: maps the inherited memfd, waits for "go", increments the counter as `MODE` says for
/// at least `MS` milliseconds, and says how many it did.
fn incrementer(args: &Args) -> Result<()> {
    let mode = Mode::parse(&args.get("MODE")?)?;
    let ms: u64 = args.parse("MS")?;
    let fd = crate::child::take_fd(FD)?;
    let mapping: Mapping = Memfd::from_fd(fd)?.map(ipckit::Access::ReadWrite)?;
    let counter = mapping.atomic_u64(COUNTER)?;
    let sem = match mode {
        Mode::Semaphore => Some(SharedSem::attach(&mapping, SEM)?),
        _ => None,
    };
    let how = match mode {
        Mode::Race => format!("load, spin {SPIN}, store (no lock)"),
        Mode::Semaphore => "sem_wait, load, spin, store, sem_post".to_string(),
        Mode::Atomic => "fetch_add(1)".to_string(),
    };
    child::say(format!("mapped the memfd; will increment by {how}"));
    if child::hear().as_deref() != Some("go") {
        return Err("the parent did not say go".into());
    }
    let until = Duration::from_millis(ms);
    let start = Instant::now();
    let first = counter.load(Ordering::SeqCst);
    let mut done = 0u64;
    loop {
        for _ in 0..4096 {
            match mode {
                Mode::Race => unsynchronised_increment(counter),
                Mode::Semaphore => {
                    let sem = sem.as_ref().ok_or("no semaphore")?;
                    sem.wait()?;
                    unsynchronised_increment(counter);
                    sem.post()?;
                }
                Mode::Atomic => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        done += 4096;
        if start.elapsed() >= until {
            break;
        }
    }
    let ms = start.elapsed().as_millis();
    let last = counter.load(Ordering::SeqCst);
    match mode {
        // The count is exact here, so its growth beyond this child's own increments is what
        // the other child added meanwhile: the proof that they ran at the same time.
        Mode::Semaphore | Mode::Atomic => child::say(format!(
            "done {done} increments in {ms} ms; meanwhile the other added {}",
            (last - first).saturating_sub(done)
        )),
        Mode::Race => child::say(format!("done {done} increments in {ms} ms")),
    }
    Ok(())
}

/// What `counter++` on plain shared memory compiles to: a load, then a store of the value
/// plus one. Each access is atomic (no torn values) but the pair is not: an increment the
/// other process makes between them is overwritten.
fn unsynchronised_increment(counter: &std::sync::atomic::AtomicU64) {
    let v = counter.load(Ordering::Relaxed);
    for _ in 0..SPIN {
        std::hint::spin_loop();
    }
    counter.store(v + 1, Ordering::Relaxed);
}
