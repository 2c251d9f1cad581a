//! Synchronisation between processes, and how it fails: two processes that take two locks
//! in opposite orders deadlock (a timed wait is how a program notices; one lock order is the
//! cure); a System V semaphore held by a killed process comes back only if it was taken with
//! `SEM_UNDO`; a robust mutex tells the next locker that its holder died (`EOWNERDEAD`) and
//! can be repaired; a reader-preferring rwlock lets overlapping readers starve a writer.

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use ipckit::error::errno_name;
use ipckit::name::SysvKey;
use ipckit::shm::mapping::Mapping;
use ipckit::shm::memfd::Memfd;
use ipckit::sync::mutex::RobustMutex;
use ipckit::sync::rwlock::{ReadGuard, SharedRwLock, WriteGuard};
use ipckit::sync::sem_sysv::{self, SemOp, SysvSemSet};
use rustix::io::Errno;

use crate::child::wait_sleeping_in;
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

/// The memfd the parent passed to this child as descriptor 3, mapped writable.
fn inherited_mapping() -> crate::Result<Mapping> {
    let fd = crate::child::take_fd(3)?;
    Ok(Memfd::from_fd(fd)?.map(ipckit::Access::ReadWrite)?)
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
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(2))?;
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
        lab.say(
            "parent",
            "neither wait could ever succeed: each holds what the other waits for",
        );
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
    lab.say("parent", "B asks for sem 1 too (A holds it)");
    // The kernel's word that B is blocked in its semtimedop on this set, and the set's own
    // counts: sem 1 taken with one waiter, sem 2 free, so the waiting B holds neither.
    let b_asleep = wait_sleeping_in(b.pid(), &[libc::SYS_semtimedop], Some(set.id() as u64))?;
    let (waiting, _) = set.waiters(0)?;
    let values = set.get_all()?;
    let b_holds_nothing = b_asleep && waiting == 1 && values == [0, 1];
    lab.kernel(format!(
        "B {} in semtimedop(set {}); sem 1 = {} with {waiting} waiting, sem 2 = {}{}",
        if b_asleep { "sleeps" } else { "is not asleep" },
        set.id(),
        values[0],
        values[1],
        if b_holds_nothing {
            ": B waits, holding nothing"
        } else {
            ""
        }
    ));
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
        timed_out == 2 && completed == 2 && b_holds_nothing,
        format!(
            "opposite orders: {timed_out} of 2 timed waits expired (deadlock); one order: {completed} of 2 processes got both locks, the second {} while it waited",
            if b_holds_nothing {
                "asleep in semtimedop holding nothing"
            } else {
                "NOT seen asleep holding nothing"
            }
        ),
    )
}

/// Child: takes and releases semaphores of set SET as the parent says: `take INDEX MS`
/// (a timed wait with SEM_UNDO), `release` (gives back all it holds).
fn locker(args: &Args) -> crate::Result<()> {
    let set = SysvSemSet::open_id(args.parse("SET")?, ipckit::Access::ReadWrite)?;
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
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(1))?;
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
    let set = SysvSemSet::open_id(args.parse("SET")?, ipckit::Access::ReadWrite)?;
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
    let map = mfd.map(ipckit::Access::ReadWrite)?;
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

/// How many times the read lock passes from one reader to the other while the writer waits.
const HANDOFFS: usize = 20;

/// How long the writer waits for the write lock: far longer than the hand-offs take even on a
/// loaded machine, so the verdict never rests on a race with its deadline.
const WRITER_WAIT: Duration = Duration::from_secs(30);

fn rwlock_starvation(lab: &mut Lab) -> crate::Result<Verdict> {
    let mfd = Memfd::create("ipckit-lab-rwlock", 4096)?;
    let map = mfd.map(ipckit::Access::ReadWrite)?;
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
    let (r1, w) = (readers[0].pid(), writer.pid());
    lab.say(
        "parent",
        format!("readers {r1} and {}, writer {w}", readers[1].pid()),
    );

    readers[0].tell("read")?;
    let l = readers[0].line()?;
    lab.say(
        format!("child {r1}"),
        format!("pthread_rwlock_clockrdlock -> {l}"),
    );
    let secs = WRITER_WAIT.as_secs();
    writer.tell(&format!("write {}", WRITER_WAIT.as_millis()))?;
    writer.line()?; // "asking": it is about to wait
    lab.say(
        format!("child {w}"),
        format!("pthread_rwlock_clockwrlock(at most {secs} s): asks for the write lock"),
    );
    // The role runs on the child's main thread, which /proc/PID/syscall shows; the writer does
    // nothing else that could sleep in futex, so a futex sleep is its wait for the write lock.
    if !wait_sleeping_in(w, &[libc::SYS_futex], None)? {
        let said = writer.line_within(Duration::ZERO)?;
        return Err(format!(
            "the writer never slept waiting for the write lock (it said {said:?})"
        )
        .into());
    }
    lab.kernel(format!(
        "child {w} sleeps in futex(): it waits for the write lock"
    ));
    lab.say(
        "parent",
        format!("{HANDOFFS} hand-offs: the idle reader takes a read lock, then the holder lets go"),
    );

    // Each hand-off: the idle reader takes the lock with try_read (it must get in at once,
    // with the writer waiting) before the holder lets go, so a reader holds the lock at every
    // moment. After each, the kernel must still show the writer asleep in its wait: it has
    // not got the lock, and a new reader was let in past it.
    let mut holder = 0;
    for round in 1..=HANDOFFS {
        let next = 1 - holder;
        let (now, was) = (readers[next].pid(), readers[holder].pid());
        readers[next].tell("read-now")?;
        let l = readers[next].line()?;
        if l != "0" {
            lab.kernel(format!(
                "pthread_rwlock_tryrdlock -> {l}: this lock makes readers wait for a waiting writer"
            ));
            return Verdict::check(
                false,
                format!(
                    "hand-off {round}: a new reader was refused ({l}) while the writer waited: this lock prefers writers, no starvation here"
                ),
            );
        }
        readers[holder].tell("unlock")?;
        readers[holder].line()?;
        holder = next;
        let asleep = wait_sleeping_in(w, &[libc::SYS_futex], None)?;
        if let Some(said) = writer.line_within(Duration::ZERO)? {
            return Err(format!("hand-off {round}: the writer stopped waiting: {said}").into());
        }
        if !asleep {
            return Err(
                format!("hand-off {round}: the writer is no longer asleep in futex").into(),
            );
        }
        if round == 1 {
            lab.say(
                format!("child {now}"),
                format!("pthread_rwlock_tryrdlock -> 0 (while {was} reads and {w} waits)"),
            );
            lab.say(format!("child {was}"), "pthread_rwlock_unlock");
        }
    }
    lab.kernel(format!(
        "after each of the {HANDOFFS} hand-offs, child {w} still slept in futex()"
    ));
    lab.say(
        "parent",
        format!(
            "{} read locks granted while the writer waited; one was always held: the lock was never free",
            HANDOFFS + 1
        ),
    );

    readers[holder].tell("unlock")?;
    readers[holder].line()?;
    lab.say(
        format!("child {}", readers[holder].pid()),
        "pthread_rwlock_unlock: the readers stop, the lock is idle",
    );
    let after = writer.line()?;
    let got_after = after == "got it";
    lab.say(
        format!("child {w}"),
        format!(
            "pthread_rwlock_clockwrlock -> {}",
            if got_after {
                "0 (got the write lock)".to_string()
            } else {
                errno_name(Errno::TIMEDOUT)
            }
        ),
    );
    if got_after {
        writer.tell("unlock")?;
        writer.line()?;
    }
    Verdict::check(
        got_after,
        format!(
            "the writer stayed asleep in its wait through {HANDOFFS} reader hand-offs while a reader always held the lock; once the readers stopped it {}",
            if got_after {
                "got the lock"
            } else {
                "still did not get it"
            }
        ),
    )
}

/// Child: uses the rwlock at offset 0 of the inherited memfd as the parent says: `read`
/// (waits), `read-now` (try_read), `write MS` (write_timeout; says "asking" first, then
/// "got it" and keeps the lock, or "timed out"), `unlock` (lets go of what it holds). A read
/// lock is answered "0" when taken, `read-now` "EBUSY" when refused.
fn rw_user(_args: &Args) -> crate::Result<()> {
    let map = inherited_mapping()?;
    let lock = SharedRwLock::attach(&map, 0)?;
    let mut read: Option<ReadGuard<'_>> = None;
    let mut write: Option<WriteGuard<'_>> = None;
    while let Some(cmd) = child::hear() {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["read"] => {
                read = Some(lock.read_timeout(child::T)?.ok_or("no read lock")?);
                child::say("0");
            }
            ["read-now"] => match lock.try_read()? {
                Some(g) => {
                    read = Some(g);
                    child::say("0");
                }
                None => child::say(errno_name(Errno::BUSY)),
            },
            ["unlock"] => {
                read = None;
                write = None;
                child::say("unlocked");
            }
            ["write", ms] => {
                let ms: u64 = ms.parse()?;
                child::say("asking");
                write = lock.write_timeout(Duration::from_millis(ms))?;
                child::say(if write.is_some() {
                    "got it"
                } else {
                    "timed out"
                });
            }
            _ => return Err(format!("unknown command {cmd:?}").into()),
        }
    }
    drop((read, write));
    Ok(())
}
