//! Synchronisation between processes, and how it fails: two processes that take two locks
//! in opposite orders deadlock (a timed wait is how a program notices; one lock order is the
//! cure); a System V semaphore held by a killed process comes back only if it was taken with
//! `SEM_UNDO`; a robust mutex tells the next locker that its holder died (`EOWNERDEAD`) and
//! can be repaired; a reader-preferring rwlock lets overlapping readers starve a writer.

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use ipckit::error::errno_name;
use ipckit::name::SysvKey;
use ipckit::shm::mapping::Mapping;
use ipckit::shm::memfd::Memfd;
use ipckit::sync::mutex::RobustMutex;
use ipckit::sync::rwlock::{ReadGuard, SharedRwLock};
use ipckit::sync::sem_sysv::{SemOp, SysvSemSet};
use rustix::io::Errno;

use crate::child::{self, Args, Role};
use crate::{Lab, Scenario, Verdict};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "deadlock",
        lesson: "two processes taking two locks in opposite orders deadlock; a timed wait detects it, one global lock order prevents it",
        run: deadlock,
    },
    Scenario {
        name: "sem-undo",
        lesson: "a System V semaphore taken with SEM_UNDO is given back when its holder is killed; without SEM_UNDO it is lost",
        run: sem_undo,
    },
    Scenario {
        name: "robust-mutex",
        lesson: "a robust mutex whose holder died is handed to the next locker with EOWNERDEAD; make_consistent repairs it",
        run: robust_mutex,
    },
    Scenario {
        name: "rwlock-starvation",
        lesson: "under a reader-preferring rwlock, readers that overlap starve a writer although the lock is never idle",
        run: rwlock_starvation,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("sync-locker", locker),
    ("sync-sem-holder", sem_holder),
    ("sync-mutex-user", mutex_user),
    ("sync-rw-user", rw_user),
];

/// How long a timed wait waits for something that is not going to come.
const PATIENCE: Duration = Duration::from_millis(300);

/// Semaphore `index` as the transcript calls it: "sem 1", "sem 2".
fn sem(index: usize) -> String {
    format!("sem {}", index + 1)
}

/// CLOCK_MONOTONIC now, in nanoseconds: the same clock in every process of the machine.
fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The memfd the parent passed to this child as descriptor 3, mapped writable.
fn inherited_mapping() -> crate::Result<Mapping> {
    let fd = crate::child::take_fd(3)?;
    Ok(Memfd::from_fd(fd)?.map(true)?)
}

/// How a process ended, for the transcript.
fn status_text(st: std::process::ExitStatus) -> String {
    match st.signal() {
        Some(s) => format!("killed by {}", ipckit::notify::signal::name(s)),
        None => format!("exited with {}", st.code().unwrap_or(-1)),
    }
}

// ---------------------------------------------------------------------------------------------
// deadlock

fn deadlock(lab: &mut Lab) -> crate::Result<Verdict> {
    let set = SysvSemSet::create(SysvKey::Private, 2, 0o600)?;
    set.set_all(&[1, 1])?;
    lab.say(
        "parent",
        format!(
            "System V set {}: sem 1 = 1, sem 2 = 1 (two locks)",
            set.id()
        ),
    );
    let mut a = child::spawn("sync-locker").arg("SET", set.id()).start()?;
    let mut b = child::spawn("sync-locker").arg("SET", set.id()).start()?;
    lab.say(
        "parent",
        format!("A is pid {}, B is pid {}", a.pid(), b.pid()),
    );

    // Round 1: A takes 1 then 2, B takes 2 then 1. Each takes its first lock and says so
    // before either asks for its second: the cycle is certain, not a matter of timing.
    let forever = child::T.as_millis();
    let ms = PATIENCE.as_millis();
    for (who, c, first) in [("A", &mut a, 0), ("B", &mut b, 1)] {
        c.tell(&format!("take {first} {forever}"))?;
        let l = c.line()?;
        lab.say(
            format!("child {who}"),
            format!("semop({}, -1) -> {l}", sem(first)),
        );
    }
    a.tell(&format!("take 1 {ms}"))?;
    b.tell(&format!("take 0 {ms}"))?;
    lab.say(
        "parent",
        format!("A asks for sem 2, B for sem 1, each waiting at most {ms} ms"),
    );
    let mut timed_out = 0;
    for (who, c, second) in [("A", &mut a, 1), ("B", &mut b, 0)] {
        let l = c.line()?;
        lab.say(
            format!("child {who}"),
            format!("semtimedop({}, -1, {ms} ms) -> {l}", sem(second)),
        );
        timed_out += usize::from(l.starts_with("timed out"));
    }
    if timed_out == 2 {
        lab.kernel("neither wait could ever succeed: each holds what the other waits for");
    }
    for (who, c) in [("A", &mut a), ("B", &mut b)] {
        c.tell("release")?;
        let l = c.line()?;
        lab.say(format!("child {who}"), l);
    }

    // Round 2: the same two processes, both in one order (sem 1, then sem 2).
    lab.say("parent", "again, both in the same order: sem 1 then sem 2");
    let mut completed = 0;
    a.tell(&format!("take 0 {forever}"))?;
    let l = a.line()?;
    lab.say("child A", format!("semop(sem 1, -1) -> {l}"));
    b.tell(&format!("take 0 {forever}"))?;
    lab.say(
        "parent",
        "B asks for sem 1 too (A holds it: B waits, holding nothing)",
    );
    a.tell(&format!("take 1 {forever}"))?;
    let l = a.line()?;
    lab.say(
        "child A",
        format!("semop(sem 2, -1) -> {l}; works, then releases both"),
    );
    completed += usize::from(l == "got it");
    a.tell("release")?;
    a.line()?;
    let l = b.line()?;
    lab.say(
        "child B",
        format!("semop(sem 1, -1) -> {l} (A released it)"),
    );
    b.tell(&format!("take 1 {forever}"))?;
    let l = b.line()?;
    lab.say(
        "child B",
        format!("semop(sem 2, -1) -> {l}; works, then releases both"),
    );
    completed += usize::from(l == "got it");
    b.tell("release")?;
    b.line()?;
    drop((a, b));

    Verdict::check(
        timed_out == 2 && completed == 2,
        format!(
            "opposite orders: {timed_out} of 2 timed waits expired (deadlock); one order: {completed} of 2 processes got both locks"
        ),
    )
}

/// Child: takes and releases semaphores of set SET as the parent says: `take INDEX MS`
/// (a timed wait with SEM_UNDO), `release` (gives back all it holds).
fn locker(args: &Args) -> crate::Result<()> {
    let set = SysvSemSet::open_id(args.parse("SET")?)?;
    let mut held = Vec::new();
    while let Some(cmd) = child::hear() {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["take", index, ms] => {
                let index: usize = index.parse()?;
                let ms: u64 = ms.parse()?;
                if set.wait_timeout(index, Duration::from_millis(ms))? {
                    held.push(index);
                    child::say("got it");
                } else {
                    child::say(format!(
                        "timed out ({}): it is still held",
                        errno_name(Errno::AGAIN)
                    ));
                }
            }
            ["release"] => {
                let names: Vec<String> = held.iter().map(|&i| sem(i)).collect();
                for i in held.drain(..) {
                    set.post(i)?;
                }
                child::say(format!("released {}", names.join(" and ")));
            }
            _ => return Err(format!("unknown command {cmd:?}").into()),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sem-undo

fn sem_undo(lab: &mut Lab) -> crate::Result<Verdict> {
    let set = SysvSemSet::create(SysvKey::Private, 1, 0o600)?;
    let mut back_with_undo = false;
    let mut lost_without = false;
    for undo in [true, false] {
        let flag = if undo { "SEM_UNDO" } else { "no SEM_UNDO" };
        set.set(0, 1)?;
        lab.say(
            "parent",
            format!("System V set {}: value 1 (a lock)", set.id()),
        );
        let mut holder = child::spawn("sync-sem-holder")
            .arg("SET", set.id())
            .arg("UNDO", u8::from(undo))
            .start()?;
        let pid = holder.pid();
        let l = holder.line()?;
        lab.say(format!("child {pid}"), format!("semop(-1, {flag}) -> {l}"));
        lab.kernel(format!("value {}", set.get(0)?));
        let st = holder.kill()?;
        lab.say("parent", format!("SIGKILL to {pid}"));
        lab.kernel(format!(
            "child {pid} {}; value now {}",
            status_text(st),
            set.get(0)?
        ));
        if undo {
            // The value is back, so this does not wait; child::T only bounds a broken kernel.
            let got = set.op_timeout(&[SemOp::wait(0).no_undo()], child::T)?;
            lab.say(
                "parent",
                format!(
                    "semtimedop(-1) -> {}",
                    if got {
                        "got it: the kernel undid the dead holder's -1"
                    } else {
                        "timed out"
                    }
                ),
            );
            back_with_undo = got;
        } else {
            let got = set.op_timeout(&[SemOp::wait(0).no_undo()], PATIENCE)?;
            let value = set.get(0)?;
            lab.say(
                "parent",
                format!(
                    "semtimedop(-1, {} ms) -> {}",
                    PATIENCE.as_millis(),
                    if got {
                        "got it".to_string()
                    } else {
                        format!(
                            "{} (timed out): the unit died with its holder",
                            errno_name(Errno::AGAIN)
                        )
                    }
                ),
            );
            lab.kernel(format!("value {value}"));
            lost_without = !got && value == 0;
        }
    }
    Verdict::check(
        back_with_undo && lost_without,
        format!(
            "holder killed: with SEM_UNDO the survivor's wait {}, without it {}",
            if back_with_undo {
                "succeeded"
            } else {
                "failed"
            },
            if lost_without {
                "timed out and the value stayed 0"
            } else {
                "did not time out"
            }
        ),
    )
}

/// Child: takes semaphore 0 of set SET (with SEM_UNDO if UNDO is 1), then waits to be killed.
fn sem_holder(args: &Args) -> crate::Result<()> {
    let set = SysvSemSet::open_id(args.parse("SET")?)?;
    let mut op = SemOp::wait(0);
    if args.parse::<u8>("UNDO")? == 0 {
        op = op.no_undo();
    }
    if !set.op_timeout(&[op], child::T)? {
        return Err("the semaphore stayed 0".into());
    }
    child::say("holds it");
    while child::hear().is_some() {}
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// robust-mutex

/// Where the guarded data lives in the mapping: two counters that must stay equal.
const DATA_A: usize = 512;
const DATA_B: usize = 520;

fn robust_mutex(lab: &mut Lab) -> crate::Result<Verdict> {
    let mfd = Memfd::create("ipckit-lab-robust-mutex", 4096)?;
    let map = mfd.map(true)?;
    let mutex = RobustMutex::init(&map, 0)?;
    lab.say(
        "parent",
        "robust mutex in a memfd, guarding two counters a = b = 0",
    );
    let mut holder = child::spawn("sync-mutex-user")
        .arg("MODE", "die")
        .fd(mfd.as_fd(), 3)
        .start()?;
    let pid = holder.pid();
    let l = holder.line()?;
    lab.say(format!("child {pid}"), l);
    let st = holder.kill()?;
    lab.say(
        "parent",
        format!("SIGKILL to {pid} while it holds the mutex"),
    );
    lab.kernel(format!("child {pid} {}", status_text(st)));

    let mut guard = mutex
        .lock_timeout(child::T)?
        .ok_or("the dead holder's mutex was never handed on")?;
    let owner_died = guard.owner_died();
    lab.kernel(format!(
        "pthread_mutex_clocklock -> {}",
        if owner_died {
            format!(
                "{} (locked, but its holder died in it)",
                errno_name(Errno::OWNERDEAD)
            )
        } else {
            "0 (no sign of the dead holder)".to_string()
        }
    ));
    let (a, b): (u64, u64) = (map.read_pod(DATA_A)?, map.read_pod(DATA_B)?);
    map.write_pod(DATA_B, &a)?;
    lab.say(
        "parent",
        format!("data half-updated (a = {a}, b = {b}): repaired to b = {a}"),
    );
    guard.make_consistent()?;
    lab.say("parent", "pthread_mutex_consistent, unlock");
    drop(guard);

    let mut user = child::spawn("sync-mutex-user")
        .arg("MODE", "use")
        .fd(mfd.as_fd(), 3)
        .start()?;
    let upid = user.pid();
    let l = user.line()?;
    lab.say(format!("child {upid}"), &l);
    user.success()?;
    let works = l.starts_with("locked normally");
    Verdict::check(
        owner_died && works,
        format!(
            "after SIGKILL of the holder the next lock {} and a later lock {}",
            if owner_died {
                "returned EOWNERDEAD"
            } else {
                "did not report EOWNERDEAD"
            },
            if works {
                "succeeded normally"
            } else {
                "failed"
            }
        ),
    )
}

/// Child: MODE `die` locks the mutex at offset 0 of the inherited memfd, half-updates the
/// data and waits to be killed; MODE `use` locks, checks and unlocks.
fn mutex_user(args: &Args) -> crate::Result<()> {
    let map = inherited_mapping()?;
    let mutex = RobustMutex::attach(&map, 0)?;
    let guard = mutex
        .lock_timeout(child::T)?
        .ok_or("the mutex stayed locked")?;
    if args.get("MODE")? == "die" {
        let a: u64 = map.read_pod(DATA_A)?;
        map.write_pod(DATA_A, &(a + 1))?;
        child::say(format!("locked; a = {} (b not yet updated)", a + 1));
        while child::hear().is_some() {}
        drop(guard);
        return Ok(());
    }
    let (a, b): (u64, u64) = (map.read_pod(DATA_A)?, map.read_pod(DATA_B)?);
    let died = guard.owner_died();
    drop(guard);
    child::say(if died {
        "locked, but EOWNERDEAD again".to_string()
    } else {
        format!("locked normally (a = {a}, b = {b}), unlocked")
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// rwlock-starvation

fn rwlock_starvation(lab: &mut Lab) -> crate::Result<Verdict> {
    let mfd = Memfd::create("ipckit-lab-rwlock", 4096)?;
    let map = mfd.map(true)?;
    let _lock = SharedRwLock::init(&map, 0)?;
    lab.say(
        "parent",
        "process-shared rwlock in a memfd (glibc default kind: PREFER_READER)",
    );
    let mut readers = [
        child::spawn("sync-rw-user").fd(mfd.as_fd(), 3).start()?,
        child::spawn("sync-rw-user").fd(mfd.as_fd(), 3).start()?,
    ];
    let mut writer = child::spawn("sync-rw-user").fd(mfd.as_fd(), 3).start()?;
    let (r1, r2, w) = (readers[0].pid(), readers[1].pid(), writer.pid());
    lab.say("parent", format!("readers {r1} and {r2}, writer {w}"));

    readers[0].tell("read")?;
    let first = readers[0].line()?;
    lab.say(format!("child {r1}"), "read lock taken");
    let ms = PATIENCE.as_millis();
    writer.tell(&format!("write {ms}"))?;
    writer.line()?; // "asking": it is about to wait
    lab.say(
        format!("child {w}"),
        format!("asks for the write lock, waiting at most {ms} ms"),
    );
    lab.say(
        "parent",
        "readers take turns: the next takes the read lock before the last lets go",
    );

    // Hand-offs: the idle reader takes the lock (try_read: it must get in at once, with the
    // writer waiting), then the holder lets go. At every moment a reader holds the lock.
    let mut entries = vec![first.parse::<u64>()?];
    let mut holder = 0;
    let started = Instant::now();
    let verdict_line = loop {
        let next = 1 - holder;
        readers[next].tell("read-now")?;
        let l = readers[next].line()?;
        if l == "busy" {
            lab.kernel("pthread_rwlock_tryrdlock -> EBUSY: this lock makes readers wait for a waiting writer");
            break None;
        }
        entries.push(l.parse()?);
        if entries.len() == 2 {
            let (now, was) = (readers[next].pid(), readers[holder].pid());
            lab.say(
                format!("child {now}"),
                format!("pthread_rwlock_tryrdlock -> 0 (while {was} reads and {w} waits)"),
            );
        }
        readers[holder].tell("unlock")?;
        readers[holder].line()?;
        holder = next;
        if let Some(l) = writer.line_within(Duration::ZERO)? {
            break Some(l);
        }
        if started.elapsed() > child::T {
            return Err("the writer never answered".into());
        }
    };
    let Some(answer) = verdict_line else {
        return Verdict::check(
            false,
            "a new reader was refused while the writer waited: no starvation here",
        );
    };
    // "timed out START END" or "got it START END", in CLOCK_MONOTONIC nanoseconds.
    let words: Vec<&str> = answer.split_whitespace().collect();
    let (w_start, w_end): (u64, u64) = match words.as_slice() {
        [.., s, e] => (s.parse()?, e.parse()?),
        _ => return Err(format!("writer said {answer:?}").into()),
    };
    let starved = answer.starts_with("timed out");
    let during = entries
        .iter()
        .filter(|&&t| t > w_start && t < w_end)
        .count();
    lab.say(
        format!("child {w}"),
        format!(
            "pthread_rwlock_clockwrlock({ms} ms) -> {}",
            if starved {
                errno_name(Errno::TIMEDOUT)
            } else {
                "got it".to_string()
            }
        ),
    );
    lab.kernel(format!(
        "{during} read locks granted while the writer waited; the lock was never free"
    ));

    readers[holder].tell("unlock")?;
    readers[holder].line()?;
    lab.say("parent", "the readers stop: the lock is idle");
    writer.tell(&format!("write {ms}"))?;
    writer.line()?;
    let after = writer.line()?;
    let got_after = after.starts_with("got it");
    lab.say(
        format!("child {w}"),
        format!(
            "pthread_rwlock_clockwrlock({ms} ms) -> {}",
            if got_after { "got it" } else { "timed out" }
        ),
    );
    Verdict::check(
        starved && during > 0 && got_after,
        format!(
            "with readers overlapping ({during} entries during its wait) the writer's {ms} ms write {}; once they stopped it {}",
            if starved { "timed out" } else { "succeeded" },
            if got_after {
                "got the lock"
            } else {
                "still failed"
            }
        ),
    )
}

/// Child: uses the rwlock at offset 0 of the inherited memfd as the parent says: `read`
/// (waits), `read-now` (try_read), `unlock`, `write MS` (write_timeout, says "asking" first).
/// Read entries are answered with the CLOCK_MONOTONIC time of the entry.
fn rw_user(_args: &Args) -> crate::Result<()> {
    let map = inherited_mapping()?;
    let lock = SharedRwLock::attach(&map, 0)?;
    let mut held: Option<ReadGuard<'_>> = None;
    while let Some(cmd) = child::hear() {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["read"] => {
                held = Some(lock.read_timeout(child::T)?.ok_or("no read lock")?);
                child::say(mono_ns().to_string());
            }
            ["read-now"] => match lock.try_read()? {
                Some(g) => {
                    held = Some(g);
                    child::say(mono_ns().to_string());
                }
                None => child::say("busy"),
            },
            ["unlock"] => {
                held = None;
                child::say("unlocked");
            }
            ["write", ms] => {
                let ms: u64 = ms.parse()?;
                child::say("asking");
                let start = mono_ns();
                let got = lock.write_timeout(Duration::from_millis(ms))?;
                let end = mono_ns();
                let what = if got.is_some() { "got it" } else { "timed out" };
                drop(got);
                child::say(format!("{what} {start} {end}"));
            }
            _ => return Err(format!("unknown command {cmd:?}").into()),
        }
    }
    drop(held);
    Ok(())
}
