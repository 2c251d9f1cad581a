//! The owning, typed forms of shared memory across real processes: a `SharedMutex<T>` whose
//! holder is SIGKILLed with the guard held (the next locker sees `owner_died` and the data the
//! dead holder wrote), a counter many processes increment through guards, and a lock-free
//! `Shared<T>` one process stores and another loads.
//!
//! The memory is a memfd the child inherits as descriptor 10: it has no name, so nothing can
//! leak.

mod common;

use std::os::fd::{AsFd, OwnedFd};

use common::{T, hear, run_together, say, start_together};
use ipckit::shm::mapping::Mapping;
use ipckit::sync::shared::{Shared, SharedMutex};
use ipckit::{Errno, ErrorKind};

/// What the tests keep behind the lock: two fields that must agree, and how far an update got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Ledger {
    debit: u64,
    credit: u64,
    stage: u32,
    _pad: u32,
}

impl Ledger {
    /// A ledger with these fields.
    fn new(debit: u64, credit: u64, stage: u32) -> Self {
        Ledger {
            debit,
            credit,
            stage,
            _pad: 0,
        }
    }
}

/// Size of the memfd: enough for either form.
const LEN: usize = 4096;

fn memfd() -> (OwnedFd, Mapping) {
    common::memfd("ipckit-test-shared", LEN)
}

/// Child side: the parent's memfd, mapped.
fn child_mapping() -> Mapping {
    common::child_mapping(LEN)
}

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "die-mid-update" => {
            let ledger = SharedMutex::<Ledger>::attach(child_mapping()).unwrap();
            let mut g = ledger.lock_timeout(T).unwrap().expect("free");
            // Half an update: the debit is written, the credit not yet.
            g.debit += 10;
            g.stage = 1;
            say("locked");
            hear(); // until killed, the guard held
            drop(g);
        }
        "count" => {
            let counter = SharedMutex::<u64>::attach(child_mapping()).unwrap();
            start_together();
            for _ in 0..common::arg("N").parse::<u32>().unwrap() {
                let mut n = counter.lock_timeout(T).unwrap().expect("lock in time");
                *n += 1;
            }
        }
        "store" => {
            let value = Shared::<Ledger>::attach(child_mapping()).unwrap();
            value.store(Ledger::new(3, 3, 2));
            say("stored");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_holder_killed_with_the_guard_held_leaves_owner_died_and_its_data_to_the_next_locker() {
    let (fd, m) = memfd();
    let ledger = // SAFETY: no SharedMutex uses this memory yet (or any more).
    unsafe { SharedMutex::init(m, Ledger::default()) }.unwrap();
    let mut holder = common::lock_holder("die-mid-update", fd.as_fd());
    assert!(ledger.try_lock().unwrap().is_none(), "held by the child");
    holder.kill();

    let mut g = ledger
        .lock_timeout(T)
        .unwrap()
        .expect("the dead holder's lock");
    assert!(g.owner_died());
    // What the dead holder wrote is there: a debit without its credit.
    assert_eq!((g.debit, g.credit, g.stage), (10, 0, 1));
    // Repair through the guard, then mark it consistent.
    g.credit = g.debit;
    g.stage = 0;
    g.make_consistent().unwrap();
    drop(g);

    let g = ledger.lock().unwrap();
    assert!(!g.owner_died());
    assert_eq!(*g, Ledger::new(10, 10, 0));
}

#[test]
fn a_guard_dropped_without_make_consistent_leaves_the_mutex_unrecoverable_until_init() {
    let (fd, m) = memfd();
    let ledger = // SAFETY: no SharedMutex uses this memory yet (or any more).
    unsafe { SharedMutex::init(m, Ledger::default()) }.unwrap();
    let mut holder = common::lock_holder("die-mid-update", fd.as_fd());
    holder.kill();
    let g = ledger
        .lock_timeout(T)
        .unwrap()
        .expect("the dead holder's lock");
    assert!(g.owner_died());
    drop(g);
    let err = ledger.lock().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOTRECOVERABLE), "{err}");
    // Nobody uses it now: the mapping back, initialised again.
    let ledger = // SAFETY: no SharedMutex uses this memory yet (or any more).
    unsafe { SharedMutex::init(ledger.into_mapping(), Ledger::default()) }.unwrap();
    assert!(!ledger.lock().unwrap().owner_died());
}

#[test]
fn processes_incrementing_through_guards_lose_no_update() {
    const CHILDREN: u64 = 3;
    const N: u64 = 1000;
    let (fd, m) = memfd();
    let counter = // SAFETY: no SharedMutex uses this memory yet (or any more).
    unsafe { SharedMutex::init(m, 0u64) }.unwrap();
    let children = (0..CHILDREN)
        .map(|_| {
            common::child("child", "count")
                .arg("N", N)
                .fd(fd.as_fd(), 10)
                .start()
        })
        .collect();
    run_together(children);
    assert_eq!(*counter.lock().unwrap(), CHILDREN * N);
}

#[test]
fn a_shared_value_stored_by_one_process_is_loaded_by_another() {
    let (fd, m) = memfd();
    let value = Shared::init(m, Ledger::default()).unwrap();
    assert_eq!(value.load(), Ledger::default());
    let mut child = common::child("child", "store").fd(fd.as_fd(), 10).start();
    assert_eq!(child.line(), "stored");
    child.success();
    assert_eq!(value.load(), Ledger::new(3, 3, 2));
}

#[test]
fn attaching_with_another_type_to_nothing_or_to_too_little_memory_is_refused() {
    let (fd, m) = memfd();
    let _ledger = // SAFETY: no SharedMutex uses this memory yet (or any more).
    unsafe { SharedMutex::init(m, Ledger::default()) }.unwrap();
    let again = || Mapping::map_fd(&fd, LEN, ipckit::Access::ReadWrite).unwrap();
    let err = SharedMutex::<u64>::attach(again()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("8-byte type"), "{err}");
    assert!(SharedMutex::<Ledger>::attach(again()).is_ok());

    // Zeroed memory: no mutex, no value.
    let blank = Mapping::anonymous_shared(LEN).unwrap();
    let err = SharedMutex::<Ledger>::attach(blank).unwrap_err();
    assert!(err.to_string().contains("initialise it first"), "{err}");
    let blank = Mapping::anonymous_shared(LEN).unwrap();
    let err = Shared::<Ledger>::attach(blank).unwrap_err();
    assert!(err.to_string().contains("initialise it first"), "{err}");

    // A value of a type larger than the mapping.
    let small = Mapping::anonymous_shared(16).unwrap();
    let err = Shared::init(small, [0u64; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(Shared::<[u64; 8]>::footprint() > 64);

    // A value of another type than the one initialised.
    let v = Shared::init(Mapping::anonymous_shared(LEN).unwrap(), 1u32).unwrap();
    let err = Shared::<u64>::attach(v.into_mapping()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn values_of_every_width_round_trip() {
    let a = Shared::anonymous([1u8, 2, 3]).unwrap();
    a.store([4, 5, 6]);
    assert_eq!(a.load(), [4, 5, 6]);
    let b = Shared::anonymous([7u32; 3]).unwrap();
    assert_eq!(b.load(), [7; 3]);
    let c = Shared::anonymous(u64::MAX - 1).unwrap();
    assert_eq!(c.load(), u64::MAX - 1);
    let m = SharedMutex::anonymous([9u16; 5]).unwrap();
    assert_eq!(*m.lock().unwrap(), [9; 5]);
}
