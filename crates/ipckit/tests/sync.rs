//! Synchronisation across real processes: a robust mutex whose holder is SIGKILLed, SEM_UNDO
//! giving back a dead process's semaphore, counters guarded by semaphores, atomic multi-ops,
//! timed waits, events, rwlocks, and creators removing what they made.
//!
//! Shared memory between parent and child is a memfd the child inherits as descriptor 10:
//! it has no name, so nothing can leak.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use common::{T, hear, run_together, say, start_together};
use ipckit::Errno;
use ipckit::name::SysvKey;
use ipckit::shm::mapping::Mapping;
use ipckit::sync::event::Event;
use ipckit::sync::futex;
use ipckit::sync::mutex::RobustMutex;
use ipckit::sync::rwlock::SharedRwLock;
use ipckit::sync::sem_posix::{self, PosixSem, SharedSem};
use ipckit::sync::sem_sysv::{self, SemOp, SysvSemSet};

/// Size of the shared memory every test uses.
const LEN: usize = 4096;
/// Where a counter lives, after the lock or semaphore at offset 0.
const COUNTER: usize = 256;
/// A short wait for "nothing happens": its length is no assertion.
const SHORT: Duration = Duration::from_millis(50);

/// Shared memory for a test: a memfd (given to children) and the parent's mapping of it.
fn shared() -> (OwnedFd, Mapping) {
    common::memfd("ipckit-test-sync", LEN)
}

/// Child side: the parent's memfd, mapped.
fn child_mapping() -> Mapping {
    common::child_mapping(LEN)
}

/// Child side: adds 1 to the counter `N` times, each time between `take` (which must succeed)
/// and `give`.
fn count_under(m: &Mapping, take: impl Fn() -> bool, give: impl Fn()) {
    start_together();
    for _ in 0..common::arg("N").parse::<u32>().unwrap() {
        assert!(take(), "semaphore not posted");
        let n: u64 = m.read_pod(COUNTER).unwrap();
        m.write_pod(COUNTER, &(n + 1)).unwrap();
        give();
    }
}

/// Child roles.
#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "mutex-hold" => {
            let m = child_mapping();
            let mutex = RobustMutex::attach(&m, 0).unwrap();
            let guard = mutex.lock_timeout(T).unwrap().expect("mutex free");
            say("locked");
            hear(); // until killed
            drop(guard);
        }
        "sysv-hold" => {
            let set = SysvSemSet::open_id(
                common::arg("ID").parse().unwrap(),
                ipckit::Access::ReadWrite,
            )
            .unwrap();
            let mut op = SemOp::wait(0);
            op.undo = common::arg("UNDO") == "1";
            assert!(set.op_timeout(&[op], T).unwrap(), "semaphore not free");
            say("taken");
            hear(); // until killed
        }
        "posix-count" => {
            let m = child_mapping();
            let sem = SharedSem::attach(&m, 0).unwrap();
            count_under(&m, || sem.wait_timeout(T).unwrap(), || sem.post().unwrap());
        }
        "sysv-count" => {
            let m = child_mapping();
            let set = SysvSemSet::open_id(
                common::arg("ID").parse().unwrap(),
                ipckit::Access::ReadWrite,
            )
            .unwrap();
            count_under(
                &m,
                || set.wait_timeout(0, T).unwrap(),
                || set.post(0).unwrap(),
            );
        }
        "event-set" => {
            let m = child_mapping();
            let ev = Event::attach(&m, 0).unwrap();
            assert_eq!(hear(), "set");
            ev.set().unwrap();
        }
        "event-wait" => {
            let m = child_mapping();
            let ev = Event::attach(&m, 0).unwrap();
            say("waiting");
            assert!(ev.wait_timeout(T).unwrap(), "event not set");
            say("woken");
        }
        "rwlock-read" => {
            let m = child_mapping();
            let lock = SharedRwLock::attach(&m, 0).unwrap();
            let guard = lock.read_timeout(T).unwrap().expect("no writer");
            say("reading");
            assert_eq!(hear(), "release");
            drop(guard);
            say("released");
        }
        "named-post" => {
            let sem = PosixSem::open(&common::arg("NAME")).unwrap();
            sem.post().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn robust_mutex_holder_killed_next_locker_gets_owner_died_and_recovers() {
    let (fd, m) = shared();
    let mutex = RobustMutex::init(&m, 0).unwrap();
    let mut holder = common::lock_holder("mutex-hold", fd.as_fd());
    assert!(mutex.try_lock().unwrap().is_none(), "held by the child");
    assert!(
        mutex.lock_timeout(SHORT).unwrap().is_none(),
        "held by the child"
    );

    holder.kill();
    let mut guard = mutex
        .lock_timeout(T)
        .unwrap()
        .expect("the dead holder's lock");
    assert!(guard.owner_died());
    guard.make_consistent().unwrap();
    drop(guard);

    let guard = mutex.lock().unwrap();
    assert!(!guard.owner_died());
    drop(guard);
    assert!(mutex.try_lock().unwrap().is_some());
}

#[test]
fn robust_mutex_left_inconsistent_is_unrecoverable_until_initialised_again() {
    let (fd, m) = shared();
    let mutex = RobustMutex::init(&m, 0).unwrap();
    let mut holder = common::lock_holder("mutex-hold", fd.as_fd());
    holder.kill();
    let guard = mutex
        .lock_timeout(T)
        .unwrap()
        .expect("the dead holder's lock");
    assert!(guard.owner_died());
    drop(guard); // without make_consistent

    let err = mutex.lock().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOTRECOVERABLE));
    assert!(err.to_string().contains("make_consistent"), "{err}");
    let err = mutex.try_lock().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOTRECOVERABLE));

    // Nobody uses it now: initialising it again is the way back.
    let mutex = RobustMutex::init(&m, 0).unwrap();
    assert!(!mutex.lock().unwrap().owner_died());
}

#[test]
fn robust_mutex_relocked_by_its_holder_is_an_error_not_a_hang() {
    let m = Mapping::anonymous_shared(LEN).unwrap();
    let mutex = RobustMutex::init(&m, 8).unwrap();
    let _guard = mutex.lock().unwrap();
    let err = mutex.lock().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::DEADLK));
    // A misaligned offset is refused before any pthread call.
    assert!(RobustMutex::init(&m, 3).is_err());
}

/// A new System V set of one semaphore holding 1, and a child that takes it and is killed.
fn sysv_holder_killed(undo: bool) -> SysvSemSet {
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(1)).unwrap();
    set.set(0, 1).unwrap();
    let mut holder = common::child("child", "sysv-hold")
        .arg("ID", set.id())
        .arg("UNDO", if undo { "1" } else { "0" })
        .start();
    assert_eq!(holder.line(), "taken");
    assert_eq!(set.get(0).unwrap(), 0);
    holder.kill();
    set
}

#[test]
fn sysv_sem_undo_gives_back_what_a_killed_holder_took() {
    let set = sysv_holder_killed(true);
    assert_eq!(
        set.get(0).unwrap(),
        1,
        "the kernel undid the dead process's wait"
    );
    assert!(set.try_wait(0).unwrap());
}

#[test]
fn sysv_sem_without_undo_stays_taken_after_the_holder_is_killed() {
    let set = sysv_holder_killed(false);
    assert_eq!(set.get(0).unwrap(), 0, "nobody gives it back");
    assert!(!set.try_wait(0).unwrap());
}

const CHILDREN: usize = 3;
const INCREMENTS: u64 = 2000;

/// Parent side: [`CHILDREN`] children from `spawn`, each adding [`INCREMENTS`] to the counter
/// under a lock, let go together; the counter once they all succeeded.
fn counted_by_children<'a>(m: &Mapping, spawn: impl Fn() -> common::Spawn<'a>) -> u64 {
    let children = (0..CHILDREN)
        .map(|_| spawn().arg("N", INCREMENTS).start())
        .collect();
    run_together(children);
    m.read_pod(COUNTER).unwrap()
}

#[test]
fn posix_unnamed_sem_guards_a_counter_across_processes() {
    let (fd, m) = shared();
    let sem = SharedSem::init(&m, 0, 1).unwrap();
    m.write_pod(COUNTER, &0u64).unwrap();
    let counted = counted_by_children(&m, || {
        common::child("child", "posix-count").fd(fd.as_fd(), 10)
    });
    assert_eq!(counted, CHILDREN as u64 * INCREMENTS);
    assert_eq!(sem.value().unwrap(), 1);
}

#[test]
fn sysv_sem_guards_a_counter_across_processes() {
    let (fd, m) = shared();
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(1)).unwrap();
    set.set(0, 1).unwrap();
    let counted = counted_by_children(&m, || {
        common::child("child", "sysv-count")
            .arg("ID", set.id())
            .fd(fd.as_fd(), 10)
    });
    assert_eq!(counted, CHILDREN as u64 * INCREMENTS);
    assert_eq!(set.get(0).unwrap(), 1);
}

#[test]
fn sysv_ops_in_one_call_apply_all_or_none() {
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(3)).unwrap();
    assert_eq!(set.len(), 3);
    set.set_all(&[1, 0, 2]).unwrap();
    let ops = [SemOp::wait(0), SemOp::wait(1), SemOp::new(2, 5)];
    // Semaphore 1 is 0: nothing at all is applied, not even the first and last operations.
    assert!(!set.try_op(&ops).unwrap());
    assert_eq!(set.get_all().unwrap(), vec![1, 0, 2]);

    set.set(1, 1).unwrap();
    set.op(&ops).unwrap();
    assert_eq!(set.get_all().unwrap(), vec![0, 0, 7]);
    assert_eq!(set.waiters(0).unwrap(), (0, 0));

    // Wait-for-zero on semaphore 0 (now 0) and a take from 2, together.
    assert!(
        set.op_timeout(&[SemOp::wait_zero(0), SemOp::wait(2)], T)
            .unwrap()
    );
    assert_eq!(set.get(2).unwrap(), 6);

    let err = set.op(&[SemOp::wait(3)]).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    assert!(set.op(&[]).is_err());
}

#[test]
fn sysv_semtimedop_times_out_when_the_value_stays_zero() {
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(2)).unwrap();
    assert!(!set.op_timeout(&[SemOp::wait(0)], SHORT).unwrap());
    assert!(!set.wait_timeout(1, SHORT).unwrap());
    // Atomic: a post to 1 paired with a take from 0 that times out is not applied either.
    assert!(
        !set.op_timeout(&[SemOp::post(1), SemOp::wait(0)], SHORT)
            .unwrap()
    );
    assert_eq!(set.get_all().unwrap(), vec![0, 0]);
    assert!(!set.try_wait(0).unwrap());
}

#[test]
fn posix_sem_timedwait_times_out_when_the_value_stays_zero() {
    let name = ipckit::name::unique_posix("test-sem-timeout");
    let named = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    assert!(!named.wait_timeout(SHORT).unwrap());
    assert!(!named.try_wait().unwrap());

    let m = Mapping::anonymous_shared(LEN).unwrap();
    let unnamed = SharedSem::init(&m, 0, 0).unwrap();
    assert!(!unnamed.wait_timeout(SHORT).unwrap());
    assert!(!unnamed.try_wait().unwrap());
    assert_eq!(unnamed.value().unwrap(), 0);
}

#[test]
fn posix_named_sem_is_posted_by_a_process_that_opens_it() {
    let name = ipckit::name::unique_posix("test-sem-open");
    let sem = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    common::child("child", "named-post")
        .arg("NAME", &name)
        .start()
        .success();
    assert!(sem.wait_timeout(T).unwrap());
    assert_eq!(sem.value().unwrap(), 0);
}

fn sem_path(name: &str) -> String {
    format!("/dev/shm/sem.{}", &name[1..])
}

#[test]
fn posix_named_sem_creator_drop_unlinks_and_persist_keeps() {
    let name = ipckit::name::unique_posix("test-sem-owner");
    let path = sem_path(&name);

    let sem = PosixSem::create(&name, &sem_posix::Options::new(1)).unwrap();
    assert!(Path::new(&path).exists());
    let err = PosixSem::create(&name, &sem_posix::Options::new(1)).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EXIST));
    drop(PosixSem::open(&name).unwrap()); // an opener never unlinks
    assert!(Path::new(&path).exists());
    drop(sem);
    assert!(!Path::new(&path).exists(), "the creator's drop unlinks");
    assert_eq!(
        PosixSem::open(&name).unwrap_err().errno(),
        Some(Errno::NOENT)
    );

    let sem = PosixSem::create(&name, &sem_posix::Options::new(1))
        .unwrap()
        .persist();
    drop(sem);
    let kept = Path::new(&path).exists();
    let reopened = PosixSem::open(&name).map(|s| s.value());
    sem_posix::remove(&name).unwrap();
    assert!(kept, "persist keeps the name");
    assert_eq!(reopened.unwrap().unwrap(), 1);
    assert!(!Path::new(&path).exists());
}

#[test]
fn posix_named_sem_mode_is_exactly_as_asked() {
    use std::os::unix::fs::PermissionsExt;
    let name = ipckit::name::unique_posix("test-sem-mode");
    // A group- and other-writable mode that a usual umask (022) would narrow.
    let _sem = PosixSem::create(&name, &sem_posix::Options::new(0).mode(0o622)).unwrap();
    let mode = std::fs::metadata(sem_path(&name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o622);
}

/// A System V key no other object uses now, and the new set made with it.
fn sysv_set_with_new_key() -> SysvSemSet {
    let base = 0x6970_0000 | ((std::process::id() as i32 & 0xff) << 12);
    for i in 0..0x1000 {
        match SysvSemSet::create(SysvKey::Key(base | i), &sem_sysv::Options::new(1)) {
            Ok(set) => return set,
            Err(e) if e.errno() == Some(Errno::EXIST) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free System V key");
}

#[test]
fn sysv_set_creator_drop_removes_and_persist_keeps() {
    let set = sysv_set_with_new_key();
    let key = set.key();
    let opened = SysvSemSet::open(key, ipckit::Access::ReadWrite).unwrap();
    assert_eq!((opened.id(), opened.len()), (set.id(), 1));
    drop(opened); // an opener never removes
    assert!(SysvSemSet::open(key, ipckit::Access::ReadWrite).is_ok());
    let err = SysvSemSet::create(key, &sem_sysv::Options::new(1)).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EXIST));
    drop(set);
    let err = SysvSemSet::open(key, ipckit::Access::ReadWrite).unwrap_err();
    assert_eq!(
        err.errno(),
        Some(Errno::NOENT),
        "the creator's drop removes"
    );

    let set = sysv_set_with_new_key().persist();
    let (key, id) = (set.key(), set.id());
    drop(set);
    let by_key = SysvSemSet::open(key, ipckit::Access::ReadWrite);
    let by_id = SysvSemSet::open_id(id, ipckit::Access::ReadWrite).unwrap();
    by_id.remove().unwrap();
    assert_eq!(by_key.unwrap().id(), id, "persist keeps the set");
    assert_eq!(
        SysvSemSet::open(key, ipckit::Access::ReadWrite)
            .unwrap_err()
            .errno(),
        Some(Errno::NOENT)
    );
    assert!(SysvSemSet::open(SysvKey::Private, ipckit::Access::ReadWrite).is_err());
}

#[test]
fn event_set_by_a_child_wakes_the_parent() {
    let (fd, m) = shared();
    let ev = Event::init(&m, 0).unwrap();
    let mut setter = common::child("child", "event-set")
        .fd(fd.as_fd(), 10)
        .start();
    assert!(!ev.is_set());
    setter.tell("set");
    assert!(
        ev.wait_timeout(T).unwrap(),
        "the child's set woke this process"
    );
    setter.success();
    assert!(ev.is_set());
    assert!(ev.wait_timeout(SHORT).unwrap(), "stays set");
    ev.reset();
    assert!(!ev.wait_timeout(SHORT).unwrap());
}

#[test]
fn event_set_by_the_parent_wakes_every_waiting_child() {
    let (fd, m) = shared();
    let ev = Event::init(&m, 0).unwrap();
    let mut waiters: Vec<_> = (0..2)
        .map(|_| {
            common::child("child", "event-wait")
                .fd(fd.as_fd(), 10)
                .start()
        })
        .collect();
    for w in &mut waiters {
        assert_eq!(w.line(), "waiting");
    }
    ev.set().unwrap();
    for mut w in waiters {
        assert_eq!(w.line(), "woken");
        w.success();
    }
}

#[test]
fn futex_wait_returns_at_once_on_a_changed_word_and_times_out_otherwise() {
    let m = Mapping::anonymous_shared(LEN).unwrap();
    let word = m.atomic_u32(0).unwrap();
    word.store(7, std::sync::atomic::Ordering::SeqCst);
    futex::wait(word, 8).unwrap();
    assert!(futex::wait_timeout(word, 8, T).unwrap());
    assert!(!futex::wait_timeout(word, 7, SHORT).unwrap());
    assert!(!futex::wait_deadline(word, 7, ipckit::Deadline::now()).unwrap());
    assert_eq!(futex::wake(word, 1).unwrap(), 0);
}

#[test]
fn rwlock_try_write_fails_while_a_child_holds_a_read_lock() {
    let (fd, m) = shared();
    let lock = SharedRwLock::init(&m, 0).unwrap();
    let mut reader = common::child("child", "rwlock-read")
        .fd(fd.as_fd(), 10)
        .start();
    assert_eq!(reader.line(), "reading");
    assert!(lock.try_write().unwrap().is_none());
    assert!(lock.write_timeout(SHORT).unwrap().is_none());
    // Readers share it.
    assert!(lock.try_read().unwrap().is_some());
    reader.tell("release");
    assert_eq!(reader.line(), "released");
    reader.success();
    let w = lock
        .try_write()
        .unwrap()
        .expect("free after the reader left");
    assert!(lock.try_read().unwrap().is_none());
    drop(w);
    assert!(lock.read_timeout(T).unwrap().is_some());
}

#[test]
fn attaching_to_memory_no_one_initialised_is_refused() {
    use ipckit::sync::rwlock::SharedRwLock;
    let m = Mapping::anonymous_shared(4096).unwrap();
    // Zeroed memory is a valid but process-private pthread object: its wake-ups would not
    // reach another process, so attach refuses it.
    for err in [
        RobustMutex::attach(&m, 0).map(drop).unwrap_err(),
        SharedRwLock::attach(&m, 256).map(drop).unwrap_err(),
        SharedSem::attach(&m, 512).map(drop).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("initialise it first"), "{err}");
    }
    let _mutex = RobustMutex::init(&m, 0).unwrap();
    RobustMutex::attach(&m, 0).unwrap();
    assert!(RobustMutex::footprint() > std::mem::size_of::<libc::pthread_mutex_t>());
}

#[test]
fn a_semaphore_creator_never_removes_one_made_again_under_its_name() {
    use ipckit::sync::sem_posix::PosixSem;
    let name = ipckit::name::unique_posix("test-sem-again");
    let first = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    sem_posix::remove(&name).unwrap();
    let second = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    drop(first);
    assert!(
        PosixSem::open(&name).is_ok(),
        "the first creator left the second semaphore alone"
    );
    drop(second);
    assert!(PosixSem::open(&name).is_err());
}

#[test]
fn modes_outside_the_permission_bits_are_refused_not_masked() {
    let name = ipckit::name::unique_posix("test-sem-badmode");
    for bad in [0o1600, 0o4600, 0o10600] {
        let err = PosixSem::create(&name, &sem_posix::Options::new(0).mode(bad)).unwrap_err();
        assert_eq!(
            err.kind(),
            ipckit::ErrorKind::InvalidInput,
            "{bad:o}: {err}"
        );
        let err =
            SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(1).mode(bad)).unwrap_err();
        assert_eq!(
            err.kind(),
            ipckit::ErrorKind::InvalidInput,
            "{bad:o}: {err}"
        );
    }
    assert!(PosixSem::open(&name).is_err(), "nothing was made");
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(1).mode(0o640)).unwrap();
    assert_eq!(set.stat().unwrap().mode, 0o640);
}

#[test]
fn sysv_set_stat_names_the_owner_and_last_pid_is_a_pid() {
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::default()).unwrap();
    let st = set.stat().unwrap();
    let uid = rustix::process::geteuid().as_raw();
    assert_eq!((st.uid, st.cuid, st.nsems, st.mode), (uid, uid, 1, 0o600));
    assert_eq!(st.gid, st.cgid);
    assert_eq!(st.key, SysvKey::Private);
    assert!(st.otime.is_none(), "no semop yet");
    assert_eq!(set.last_pid(0).unwrap(), 0);
    set.post(0).unwrap();
    let pid: ipckit::Pid = set.last_pid(0).unwrap();
    assert_eq!(pid, std::process::id());
    assert!(set.stat().unwrap().otime.is_some());
}

#[test]
fn every_wait_has_a_try_a_timeout_and_a_deadline_form() {
    use ipckit::Deadline;
    let soon = || Deadline::after(SHORT);
    // System V: nothing to take, then one to take.
    let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(1)).unwrap();
    assert!(!set.try_op(&[SemOp::wait(0)]).unwrap());
    assert!(!set.op_deadline(&[SemOp::wait(0)], soon()).unwrap());
    assert!(!set.wait_deadline(0, Deadline::now()).unwrap());
    set.post(0).unwrap();
    assert!(set.wait_deadline(0, Deadline::NEVER).unwrap());
    // POSIX named and unnamed.
    let name = ipckit::name::unique_posix("test-sem-deadline");
    let named = PosixSem::create(&name, &sem_posix::Options::default()).unwrap();
    assert!(!named.wait_deadline(soon()).unwrap());
    named.post().unwrap();
    assert!(named.wait_deadline(Deadline::now()).unwrap());
    let m = Mapping::anonymous_shared(LEN).unwrap();
    let unnamed = SharedSem::init(&m, 0, 1).unwrap();
    assert!(unnamed.wait_deadline(soon()).unwrap());
    assert!(!unnamed.wait_deadline(soon()).unwrap());
    // Mutex and rwlock: a second thread meets them held.
    let mutex = RobustMutex::init(&m, 256).unwrap();
    let lock = SharedRwLock::init(&m, 512).unwrap();
    let _held = mutex.lock_deadline(Deadline::NEVER).unwrap().expect("free");
    let _w = lock.write_deadline(soon()).unwrap().expect("free");
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(mutex.lock_deadline(soon()).unwrap().is_none());
            assert!(mutex.lock_deadline(Deadline::now()).unwrap().is_none());
            assert!(lock.read_deadline(soon()).unwrap().is_none());
            assert!(lock.write_deadline(Deadline::now()).unwrap().is_none());
        });
    });
    // The event.
    let ev = Event::init(&m, 1024).unwrap();
    assert!(!ev.try_wait());
    assert!(!ev.wait_deadline(soon()).unwrap());
    ev.set().unwrap();
    assert!(ev.try_wait());
    assert!(ev.wait_deadline(Deadline::now()).unwrap());
}

#[test]
fn a_named_semaphore_removed_by_its_handle_is_gone_and_one_made_again_is_left_alone() {
    let name = ipckit::name::unique_posix("test-sem-remove");
    let sem = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    sem.remove().unwrap();
    assert_eq!(
        PosixSem::open(&name).unwrap_err().errno(),
        Some(Errno::NOENT)
    );

    let first = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    sem_posix::remove(&name).unwrap();
    let _second = PosixSem::create(&name, &sem_posix::Options::new(0)).unwrap();
    let err = first.remove().unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::Changed, "{err}");
    assert!(PosixSem::open(&name).is_ok(), "the second one stays");
}
