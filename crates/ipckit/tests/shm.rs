//! Shared memory across real processes: POSIX objects, System V segments and memfds written in
//! one process and read in another; IPC_RMID while attached; seals; who removes what on drop;
//! clear errors for missing objects and out-of-range access.

mod common;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use common::{hear, say};
use ipckit::error::errno_name;
use ipckit::name::{SysvKey, unique, unique_posix};
use ipckit::shm::mapping::Mapping;
use ipckit::shm::memfd::{Memfd, Seals};
use ipckit::shm::posix::{self, PosixShm};
use ipckit::shm::sysv::{self, SysvShm};
use ipckit::socket::ancillary;
use ipckit::socket::unix::UnixStream;
use ipckit::{Access, Errno, ErrorKind};

const SIZE: usize = 4096;

/// Reads `len` bytes at `offset` as text.
fn text(m: &Mapping, offset: usize, len: usize) -> String {
    let mut buf = vec![0u8; len];
    m.read_at(offset, &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Where Linux keeps a POSIX shared-memory object.
fn dev_shm(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm{name}"))
}

/// Creates a segment under a fresh key of this process (retrying if another process has it).
fn create_keyed() -> (SysvKey, SysvShm) {
    create_keyed_with_mode(0o600)
}

/// As [`create_keyed`], with `mode`.
fn create_keyed_with_mode(mode: u32) -> (SysvKey, SysvShm) {
    let pid = std::process::id() as i32;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as i32;
    for n in 0..1000 {
        let raw = 0x1900_0000 | ((pid & 0xfff) << 12) | ((seed.wrapping_add(n)) & 0xfff);
        let key = SysvKey::Key(raw);
        match SysvShm::create(key, &sysv::Options::new(SIZE).mode(mode)) {
            Ok(seg) => return (key, seg),
            Err(e) if e.errno() == Some(Errno::EXIST) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free System V key");
}

/// Adds `seals` to a memfd that had a writable mapping. A child that another test forks while
/// the mapping exists holds a copy of it until its exec, and F_SEAL_WRITE fails with EBUSY
/// meanwhile: retry, within T.
fn seal_after_writable_mapping(memfd: &Memfd, seals: Seals) {
    let start = std::time::Instant::now();
    loop {
        match memfd.add_seals(seals) {
            Ok(()) => return,
            Err(e) if e.errno() == Some(Errno::BUSY) && start.elapsed() < common::T => {
                std::thread::yield_now()
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Waits, within T, until `cond` holds: only for what a child that another test forks can
/// disturb for a moment. Such a child holds copies of this process's mappings and System V
/// attachments from its fork until its exec (and the fork counts as an attach).
fn settles(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < common::T,
            "no {what} within {:?}",
            common::T
        );
        std::thread::yield_now();
    }
}

/// Waits, within T, until segment `id` has `n` attachments.
fn attachments_settle_at(id: i32, n: u64) {
    let count = || {
        SysvShm::open_id(id, Access::ReadOnly)
            .unwrap()
            .stat()
            .unwrap()
            .nattch
    };
    settles(&format!("{n} attachments"), || count() == n);
}

/// Removes a segment by id on drop, so a failing test leaves nothing behind.
struct RemoveId(i32);

impl Drop for RemoveId {
    fn drop(&mut self) {
        if let Ok(seg) = SysvShm::open_id(self.0, Access::ReadOnly) {
            let _ = seg.remove();
        }
    }
}

/// Child roles.
#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        // Shares an anonymous mapping with a fork()ed child, which is the only way to reach it.
        "fork-anonymous" => {
            let m = Mapping::anonymous_shared(4096).unwrap();
            // SAFETY: the forked process only stores to an atomic in the shared mapping and
            // calls _exit, both async-signal-safe, so the other threads' state does not matter.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                if let Ok(a) = m.atomic_u32(0) {
                    a.store(0xC0FFEE, std::sync::atomic::Ordering::SeqCst);
                }
                // SAFETY: ends the forked process at once, running nothing of the parent's.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just forked; `status` is writable.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            say(format!(
                "{:x}",
                m.atomic_u32(0)
                    .unwrap()
                    .load(std::sync::atomic::Ordering::SeqCst)
            ));
        }
        // Opens the POSIX object NAME, reports what the parent wrote, writes a reply.
        "posix-peer" => {
            let shm = PosixShm::open(&common::arg("NAME"), Access::ReadWrite).unwrap();
            let m = shm.map().unwrap();
            say(text(&m, 0, 11));
            m.write_at(64, b"from child").unwrap();
            say("done");
        }
        // Opens the System V segment by KEY, the same.
        "sysv-peer" => {
            let key: SysvKey = common::arg("KEY").parse().unwrap();
            let seg = SysvShm::open(key, Access::ReadWrite).unwrap();
            let m = seg.attach().unwrap();
            say(text(&m, 0, 11));
            m.write_at(64, b"from child").unwrap();
            say("done");
        }
        // Uses the memfd inherited at descriptor 10, the same.
        "memfd-peer" => {
            // SAFETY: the parent put a memfd at descriptor 10 for this child.
            let fd = unsafe { OwnedFd::from_raw_fd(10) };
            let memfd = Memfd::from_fd(fd).unwrap();
            let m = memfd.map(Access::ReadWrite).unwrap();
            say(text(&m, 0, 11));
            m.write_at(64, b"from child").unwrap();
            say("done");
        }
        // Receives a sealed memfd over the socket at descriptor 10 and tries to change it.
        "sealed-memfd-receiver" => {
            // SAFETY: the parent put a Unix stream socket at descriptor 10 for this child.
            let sock = UnixStream::from_fd(unsafe { OwnedFd::from_raw_fd(10) }).unwrap();
            assert!(ipckit::poll::readable_timeout(&sock, common::T).unwrap());
            let got = ancillary::recv(&sock, &mut [0u8; 1], 1).unwrap();
            let memfd = Memfd::from_fd(got.fds.into_iter().next().unwrap()).unwrap();
            let seals = memfd.seals().unwrap();
            assert!(seals.contains(Seals::SHRINK | Seals::GROW | Seals::WRITE | Seals::SEAL));
            let w = memfd.map(Access::ReadWrite).unwrap_err();
            let t = memfd.set_len(0).unwrap_err();
            let a = memfd.add_seals(Seals::FUTURE_WRITE).unwrap_err();
            let names: Vec<String> = [w, t, a]
                .iter()
                .map(|e| errno_name(e.errno().unwrap()))
                .collect();
            say(names.join(" "));
            say(text(&memfd.map(Access::ReadOnly).unwrap(), 0, 6));
        }
        // Attaches segment ID, then on each line: "read" reports the first 10 bytes,
        // "detach" detaches and exits.
        "sysv-attached" => {
            let id: i32 = common::arg("ID").parse().unwrap();
            let m = SysvShm::open_id(id, Access::ReadOnly)
                .unwrap()
                .attach()
                .unwrap();
            say("attached");
            loop {
                match hear().as_str() {
                    "read" => say(text(&m, 0, 10)),
                    "detach" => break,
                    other => panic!("unknown command {other:?}"),
                }
            }
            drop(m);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn posix_memory_written_in_one_process_is_read_in_another() {
    let name = unique_posix("shm-x");
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    let m = shm.map().unwrap();
    m.write_at(0, b"from parent").unwrap();
    let mut child = common::child("child", "posix-peer")
        .arg("NAME", &name)
        .start();
    assert_eq!(child.line(), "from parent");
    assert_eq!(child.line(), "done");
    assert_eq!(text(&m, 64, 10), "from child");
    child.success();
    // The child opened it, and an opener never unlinks.
    assert!(dev_shm(&name).exists());
}

#[test]
fn sysv_memory_written_in_one_process_is_read_in_another() {
    let (key, seg) = create_keyed();
    let m = seg.attach().unwrap();
    m.write_at(0, b"from parent").unwrap();
    let mut child = common::child("child", "sysv-peer").arg("KEY", key).start();
    assert_eq!(child.line(), "from parent");
    assert_eq!(child.line(), "done");
    assert_eq!(text(&m, 64, 10), "from child");
    child.success();
    attachments_settle_at(seg.id(), 1); // the child's went with it
    assert!(!seg.stat().unwrap().removed, "an opener never removes");
}

#[test]
fn memfd_inherited_by_a_child_shares_memory() {
    let memfd = Memfd::create("shm-test-inherit", SIZE).unwrap();
    let m = memfd.map(Access::ReadWrite).unwrap();
    m.write_at(0, b"from parent").unwrap();
    let mut child = common::child("child", "memfd-peer")
        .fd(memfd.as_fd(), 10)
        .start();
    assert_eq!(child.line(), "from parent");
    assert_eq!(child.line(), "done");
    assert_eq!(text(&m, 64, 10), "from child");
    child.success();
}

#[test]
fn a_sealed_memfd_passed_over_a_socket_cannot_be_changed_by_the_receiver() {
    let memfd = Memfd::create("shm-test-sealed", SIZE).unwrap();
    // Written with pwrite, not a writable mapping: see `seal_after_writable_mapping`.
    assert_eq!(rustix::io::pwrite(&memfd, b"sealed", 0), Ok(6));
    memfd
        .add_seals(Seals::SHRINK | Seals::GROW | Seals::WRITE | Seals::SEAL)
        .unwrap();
    let (mine, theirs) = UnixStream::pair().unwrap();
    let mut child = common::child("child", "sealed-memfd-receiver")
        .fd(theirs.as_fd(), 10)
        .start();
    drop(theirs);
    ancillary::send_fds(&mine, b"m", &[memfd.as_fd()]).unwrap();
    assert_eq!(child.line(), "EPERM EPERM EPERM");
    assert_eq!(child.line(), "sealed");
    child.success();
}

#[test]
fn sysv_segment_removed_while_attached_stays_until_the_last_detach() {
    let (key, seg) = create_keyed();
    let id = seg.id();
    let _cleanup = RemoveId(id);
    let m = seg.attach().unwrap();
    m.write_at(0, b"before rm ").unwrap();
    let mut child = common::child("child", "sysv-attached")
        .arg("ID", id)
        .start();
    assert_eq!(child.line(), "attached");
    attachments_settle_at(id, 2);

    seg.remove().unwrap();
    // Marked, not gone: both attachments still work, and the key is free already.
    let st = SysvShm::open_id(id, Access::ReadOnly)
        .unwrap()
        .stat()
        .unwrap();
    assert!(st.removed);
    assert_eq!(st.key, SysvKey::Private);
    attachments_settle_at(id, 2);
    assert_eq!(
        SysvShm::open(key, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT)
    );
    m.write_at(0, b"after rm  ").unwrap();
    child.tell("read");
    assert_eq!(child.line(), "after rm  ");

    drop(m);
    attachments_settle_at(id, 1);
    child.tell("detach");
    child.success();
    // The last detach destroyed it.
    settles("the removed segment going", || {
        SysvShm::open_id(id, Access::ReadOnly).is_err()
    });
    let err = SysvShm::open_id(id, Access::ReadOnly).unwrap_err();
    assert!(
        matches!(err.errno(), Some(Errno::INVAL | Errno::IDRM)),
        "{err}"
    );
}

#[test]
fn a_removed_sysv_segment_goes_when_its_last_user_is_killed() {
    let seg = SysvShm::create(SysvKey::Private, &sysv::Options::new(SIZE)).unwrap();
    let id = seg.id();
    let _cleanup = RemoveId(id);
    let mut child = common::child("child", "sysv-attached")
        .arg("ID", id)
        .start();
    assert_eq!(child.line(), "attached");
    let other = SysvShm::open_id(id, Access::ReadOnly).unwrap();
    seg.remove().unwrap();
    assert!(other.stat().unwrap().removed);
    drop(other);
    child.kill();
    assert!(
        SysvShm::open_id(id, Access::ReadOnly).is_err(),
        "the dead child's attachment was the last"
    );
}

#[test]
fn write_seal_after_shrink_and_grow_refuses_every_write() {
    let memfd = Memfd::create("shm-test-seal", SIZE).unwrap();
    // Written with pwrite, not a writable mapping: see `seal_after_writable_mapping`.
    assert_eq!(rustix::io::pwrite(&memfd, b"before", 0), Ok(6));
    // Read-only, and made before sealing: it does not stop F_SEAL_WRITE.
    let ro = memfd.map(Access::ReadOnly).unwrap();

    memfd.add_seals(Seals::SHRINK | Seals::GROW).unwrap();
    for len in [0, SIZE / 2, SIZE * 2] {
        let err = memfd.set_len(len).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::PERM), "{err}");
        assert!(err.to_string().contains("sealed"), "{err}");
    }
    memfd.add_seals(Seals::WRITE).unwrap();
    assert_eq!(
        memfd.seals().unwrap(),
        Seals::SHRINK | Seals::GROW | Seals::WRITE
    );

    assert_eq!(rustix::io::pwrite(&memfd, b"x", 0), Err(Errno::PERM));
    assert_eq!(rustix::io::write(&memfd, b"x"), Err(Errno::PERM));
    assert_eq!(
        memfd.set_len(SIZE * 2).unwrap_err().errno(),
        Some(Errno::PERM)
    );
    let err = memfd.map(Access::ReadWrite).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::PERM), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");

    assert_eq!(text(&ro, 0, 6), "before");
    assert_eq!(text(&memfd.map(Access::ReadOnly).unwrap(), 0, 6), "before");
    assert_eq!(memfd.len().unwrap(), SIZE);
}

#[test]
fn write_seal_is_refused_while_a_writable_mapping_exists() {
    let memfd = Memfd::create("shm-test-busy", SIZE).unwrap();
    let w = memfd.map(Access::ReadWrite).unwrap();
    let err = memfd.add_seals(Seals::WRITE).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::BUSY), "{err}");
    assert!(err.to_string().contains("drop writable mappings"), "{err}");
    drop(w);
    seal_after_writable_mapping(&memfd, Seals::WRITE);
    assert!(memfd.seals().unwrap().contains(Seals::WRITE));
}

#[test]
fn posix_creator_drop_unlinks_and_persist_keeps() {
    let name = unique_posix("shm-drop");
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    let opener = PosixShm::open(&name, Access::ReadOnly).unwrap();
    drop(opener);
    assert!(dev_shm(&name).exists(), "an opener never unlinks");
    drop(shm);
    assert!(!dev_shm(&name).exists(), "the creator unlinks on drop");

    let shm = PosixShm::create(&name, &posix::Options::new(SIZE))
        .unwrap()
        .persist();
    drop(shm);
    let kept = dev_shm(&name).exists();
    let again = PosixShm::open(&name, Access::ReadOnly);
    posix::remove(&name).unwrap();
    assert!(kept, "persist() keeps it past the creator");
    assert_eq!(again.unwrap().len().unwrap(), SIZE);
    assert!(!dev_shm(&name).exists());

    // remove(self) removes now, from a creator or an opener.
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    shm.remove().unwrap();
    assert!(!dev_shm(&name).exists(), "remove() removes at once");
    let _kept = PosixShm::create(&name, &posix::Options::new(SIZE))
        .unwrap()
        .persist();
    PosixShm::open(&name, Access::ReadOnly)
        .unwrap()
        .remove()
        .unwrap();
    assert!(!dev_shm(&name).exists(), "an opener's remove() removes it");
    let err = posix::remove(&name).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT), "{err}");
}

/// A name whose first object was removed by name and made again: the name, the first
/// creator's handle and the second's.
fn made_again(prefix: &str) -> (String, PosixShm, PosixShm) {
    let name = unique_posix(prefix);
    let first = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    posix::remove(&name).unwrap();
    let second = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    (name, first, second)
}

#[test]
fn posix_creator_does_not_unlink_a_name_reused_by_another_object() {
    let (name, first, second) = made_again("shm-reuse");
    drop(first);
    assert!(
        dev_shm(&name).exists(),
        "the first creator's drop left the new object"
    );
    drop(second);
    assert!(!dev_shm(&name).exists());
}

#[test]
fn posix_mapping_outlives_the_unlinked_name() {
    let name = unique_posix("shm-outlive");
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    let m = shm.map().unwrap();
    drop(shm);
    assert!(!dev_shm(&name).exists());
    m.write_at(0, b"still here").unwrap();
    assert_eq!(text(&m, 0, 10), "still here");
}

#[test]
fn sysv_creator_drop_removes_and_persist_keeps() {
    let (key, seg) = create_keyed();
    let opener = SysvShm::open(key, Access::ReadWrite).unwrap();
    assert_eq!(opener.id(), seg.id());
    drop(opener);
    assert!(!seg.stat().unwrap().removed, "an opener never removes");
    drop(seg);
    let err = SysvShm::open(key, Access::ReadOnly).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT), "{err}");

    let (key, seg) = create_keyed();
    let _cleanup = RemoveId(seg.id());
    drop(seg.persist());
    let kept = SysvShm::open(key, Access::ReadOnly).unwrap();
    assert_eq!(kept.stat().unwrap().len, SIZE);
    kept.remove().unwrap();
    assert_eq!(
        SysvShm::open(key, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT)
    );
}

#[test]
fn memfd_goes_with_its_last_descriptor_and_mapping() {
    let label = unique("shm-memfd-gone");
    let in_maps = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .contains(&format!("/memfd:{label}"))
    };
    let memfd = Memfd::create(&label, SIZE).unwrap();
    let m = memfd.map(Access::ReadWrite).unwrap();
    drop(memfd);
    assert!(in_maps(), "the mapping keeps the memory");
    m.write_at(0, b"ok").unwrap();
    drop(m);
    assert!(!in_maps(), "nothing of it is left");
}

#[test]
fn sysv_stat_reports_size_owner_mode_and_attachments() {
    let seg = SysvShm::create(SysvKey::Private, &sysv::Options::new(10_000).mode(0o640)).unwrap();
    let st = seg.stat().unwrap();
    assert_eq!(st.len, 10_000);
    assert_eq!(st.mode, 0o640);
    assert_eq!(st.cpid, std::process::id());
    assert_eq!(st.uid, rustix::process::geteuid().as_raw());
    assert_eq!(st.gid, rustix::process::getegid().as_raw());
    assert_eq!((st.cuid, st.cgid), (st.uid, st.gid));
    assert_eq!(st.key, SysvKey::Private);
    assert_eq!((st.nattch, st.atime), (0, None));
    let a = SysvShm::open_id(seg.id(), Access::ReadOnly)
        .unwrap()
        .attach()
        .unwrap();
    assert_eq!(a.len(), 10_000);
    attachments_settle_at(seg.id(), 1);
    assert!(seg.stat().unwrap().atime.is_some());
    drop(a);
    assert!(seg.stat().unwrap().dtime.is_some());
    assert_eq!(seg.key(), SysvKey::Private);
}

#[test]
fn posix_create_sets_the_exact_mode_and_refuses_a_taken_name() {
    let name = unique_posix("shm-mode");
    // 0o666 would be narrowed by the usual umask (022) if the mode were not set afterwards.
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE).mode(0o666)).unwrap();
    let st = rustix::fs::fstat(&shm).unwrap();
    assert_eq!(st.st_mode & 0o777, 0o666);
    assert_eq!(shm.len().unwrap(), SIZE);
    assert!(!shm.is_empty().unwrap());
    assert_eq!(shm.access(), Access::ReadWrite);
    assert_eq!(shm.name(), name);

    let err = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EXIST));
    assert!(err.to_string().contains(&name), "{err}");
    assert!(err.to_string().contains("open it instead"), "{err}");
    drop(shm);
    assert!(!dev_shm(&name).exists());
}

#[test]
fn modes_other_than_permission_bits_are_refused() {
    let name = unique_posix("shm-badmode");
    let err = PosixShm::create(&name, &posix::Options::new(SIZE).mode(0o4600)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!dev_shm(&name).exists());
    // For System V, 0o1000 is IPC_CREAT: it must not slip into the flags.
    let err =
        SysvShm::create(SysvKey::Private, &sysv::Options::new(SIZE).mode(0o1600)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn opening_a_missing_object_gives_enoent_with_a_hint() {
    let name = unique_posix("shm-missing");
    let err = PosixShm::open(&name, Access::ReadOnly).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT));
    let s = err.to_string();
    assert!(s.contains(&name) && s.contains("ENOENT"), "{s}");
    assert!(s.contains("create it first"), "{s}");

    // A key nobody has: made, then removed.
    let (key, seg) = create_keyed();
    let id = seg.id();
    drop(seg);
    let err = SysvShm::open(key, Access::ReadOnly).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT));
    let s = err.to_string();
    assert!(
        s.contains(&key.to_string()) && s.contains("create it first"),
        "{s}"
    );

    let err = SysvShm::open_id(id, Access::ReadOnly).unwrap_err();
    assert!(
        matches!(err.errno(), Some(Errno::INVAL | Errno::IDRM)),
        "{err}"
    );
    assert!(err.to_string().contains("ipcs -m"), "{err}");

    let err = SysvShm::open(SysvKey::Private, Access::ReadOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_pipe_is_not_a_memfd() {
    let (r, _w) = ipckit::stream::pipe::pipe().unwrap();
    let err = Memfd::from_fd(OwnedFd::from(r)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("pipe:"), "names what it is: {err}");
    assert!(err.to_string().contains("memfd_create"), "{err}");
}

#[test]
fn a_posix_shm_object_is_not_a_memfd_though_it_has_seals() {
    let name = unique_posix("shm-not-memfd");
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    let fd = shm.as_fd().try_clone_to_owned().unwrap();
    // tmpfs files answer F_GET_SEALS too: the check must not stop there.
    assert!(rustix::fs::fcntl_get_seals(&fd).is_ok());
    let err = Memfd::from_fd(fd).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("/dev/shm"), "{err}");
    let memfd = Memfd::create("shm-test-is-memfd", SIZE).unwrap();
    let back = Memfd::from_fd(memfd.into_fd()).unwrap();
    assert_eq!(back.len().unwrap(), SIZE);
}

#[test]
fn write_only_access_to_memory_is_refused() {
    let name = unique_posix("shm-wronly");
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    let err = PosixShm::open(&name, Access::WriteOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    let seg = SysvShm::create(SysvKey::Private, &sysv::Options::new(SIZE)).unwrap();
    let err = SysvShm::open_id(seg.id(), Access::WriteOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let memfd = Memfd::create("shm-test-wronly", SIZE).unwrap();
    let err = memfd.map(Access::WriteOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = Mapping::map_fd(&shm, SIZE, Access::WriteOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn a_sysv_open_checks_the_access_asked_for_against_the_mode() {
    // Read-only for its owner: asking for read-write is refused at open, not at shmat.
    let (key, seg) = create_keyed_with_mode(0o400);
    let ro = SysvShm::open(key, Access::ReadOnly).unwrap();
    assert_eq!(ro.access(), Access::ReadOnly);
    assert_eq!(ro.id(), seg.id());
    if rustix::process::geteuid().is_root() {
        return; // CAP_IPC_OWNER passes every permission check
    }
    let err = SysvShm::open(key, Access::ReadWrite).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ACCESS), "{err}");
}

#[test]
fn a_posix_remove_leaves_a_name_made_again_alone() {
    let (name, first, second) = made_again("shm-remove-reused");
    let err = first.remove().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed, "{err}");
    assert!(dev_shm(&name).exists(), "the new object stays");
    drop(second);
    assert!(!dev_shm(&name).exists());
}

#[test]
fn access_past_the_end_of_a_mapping_is_an_error() {
    let name = unique_posix("shm-bounds");
    let shm = PosixShm::create(&name, &posix::Options::new(SIZE)).unwrap();
    let seg = SysvShm::create(SysvKey::Private, &sysv::Options::new(SIZE)).unwrap();
    let memfd = Memfd::create("shm-test-bounds", SIZE).unwrap();
    let maps = [
        shm.map().unwrap(),
        seg.attach().unwrap(),
        memfd.map(Access::ReadWrite).unwrap(),
    ];
    for m in &maps {
        assert_eq!(m.len(), SIZE);
        let mut buf = [0u8; 8];
        for offset in [SIZE, SIZE - 4, usize::MAX] {
            let err = m.read_at(offset, &mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("past the end"), "{err}");
            let err = m.write_at(offset, &buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        assert!(m.read_pod::<u64>(SIZE - 7).is_err());
        assert!(m.atomic_u32(SIZE).is_err());
        // The last bytes are in range.
        m.write_at(SIZE - 8, &buf).unwrap();
        m.read_at(SIZE - 8, &mut buf).unwrap();
    }
    // A read-only mapping refuses writes in range too.
    let ro = PosixShm::open(&name, Access::ReadOnly)
        .unwrap()
        .map()
        .unwrap();
    let err = ro.write_at(0, b"x").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let ro = SysvShm::open_id(seg.id(), Access::ReadOnly)
        .unwrap()
        .attach()
        .unwrap();
    assert!(ro.write_at(0, b"x").is_err());
}

#[test]
fn an_empty_posix_object_cannot_be_mapped_and_says_why() {
    let name = unique_posix("shm-empty");
    let shm = PosixShm::create(&name, &posix::Options::new(0)).unwrap();
    let err = shm.map().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let s = err.to_string();
    assert!(s.contains(&name) && s.contains("ftruncate"), "{s}");
}

#[test]
fn an_anonymous_shared_mapping_is_shared_with_a_forked_child() {
    let mut child = common::child("child", "fork-anonymous").start();
    assert_eq!(
        child.line(),
        "c0ffee",
        "the forked process's store is seen by its parent"
    );
    child.success();
}

#[test]
fn a_file_backed_mapping_reaches_the_file_on_flush() {
    let mut file = tempfile::tempfile().unwrap();
    file.set_len(4096).unwrap();
    let m = Mapping::map_fd(&file, 4096, Access::ReadWrite).unwrap();
    m.write_at(100, b"through the mapping").unwrap();
    m.flush().unwrap();
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(100)).unwrap();
    let mut back = [0u8; 19];
    file.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"through the mapping");
    let ro = Mapping::map_fd(&file, 4096, Access::ReadOnly).unwrap();
    assert_eq!(
        ro.write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::InvalidInput,
        "read-only mapping"
    );
}

#[test]
fn mapping_past_the_end_of_a_file_is_refused_not_a_sigbus() {
    let file = tempfile::tempfile().unwrap();
    file.set_len(100).unwrap();
    let err = Mapping::map_fd(&file, 8192, Access::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("more than the 100"), "{err}");
}

/// True when running as root (a test that makes an object another user owns needs it);
/// otherwise says the test is skipped (and fails in CI, which runs as root).
fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI runs as root");
    eprintln!("SKIPPED: needs root");
    false
}

/// `nobody`.
const NOBODY: u32 = 65534;

#[test]
fn posix_open_or_create_makes_joins_and_refuses_what_is_not_this_users() {
    let name = unique_posix("test-shm-ooc");
    let opts = posix::Options::new(SIZE);
    let made = PosixShm::open_or_create(&name, Access::ReadOnly, &opts).unwrap();
    assert_eq!(made.access(), Access::ReadWrite, "made: read-write");
    made.map().unwrap().write_at(0, b"mine").unwrap();
    // This user's, 0600 as asked: joined, never removed by the joiner.
    let joined = PosixShm::open_or_create(&name, Access::ReadOnly, &opts).unwrap();
    assert_eq!(text(&joined.map().unwrap(), 0, 4), "mine");
    drop(joined);
    assert!(dev_shm(&name).exists());
    // Asked for 0o400, found 0o600: wider than asked.
    let narrow = posix::Options::new(SIZE).mode(0o400);
    let e = PosixShm::open_or_create(&name, Access::ReadOnly, &narrow).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::PERM), "{e}");
    assert!(
        e.to_string().contains("0600") && e.to_string().contains("0400"),
        "{e}"
    );
    assert!(
        PosixShm::open_or_create(&name, Access::ReadOnly, &narrow.trust_existing(true)).is_ok()
    );
    drop(made);
    assert!(!dev_shm(&name).exists(), "the maker removes it");

    // Wide open, 0666, when 0600 is asked for: refused, naming the mode and the way out.
    let wide = PosixShm::create(&name, &posix::Options::new(SIZE).mode(0o666)).unwrap();
    let e = PosixShm::open_or_create(&name, Access::ReadWrite, &opts).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("0666") && s.contains("--trust-existing"), "{s}");
    assert!(s.contains(&format!("ipckit rm shm:{name}")), "{s}");
    drop(wide);
}

#[test]
fn posix_open_or_create_refuses_another_users_object() {
    if !root() {
        return;
    }
    let name = unique_posix("test-shm-foreign");
    let planted = PosixShm::create(&name, &posix::Options::new(SIZE).mode(0o666)).unwrap();
    rustix::fs::fchown(
        &planted,
        Some(rustix::process::Uid::from_raw(NOBODY)),
        Some(rustix::process::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    // Even asking for 0666 (so the mode is not wider): another user's object is refused.
    let opts = posix::Options::new(SIZE).mode(0o666);
    let e = PosixShm::open_or_create(&name, Access::ReadWrite, &opts).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::PERM), "{e}");
    assert!(e.to_string().contains("nobody (uid 65534)"), "{e}");
    assert!(PosixShm::open_or_create(&name, Access::ReadWrite, &opts.trust_existing(true)).is_ok());
    // Plain open still joins it: naming an existing object is asking for it.
    assert!(PosixShm::open(&name, Access::ReadWrite).is_ok());
}

/// Sets a System V segment's owner (IPC_SET), as its creator may.
fn set_segment_owner(id: i32, uid: u32) {
    // SAFETY: shmid_ds is plain integers; IPC_STAT fills it, IPC_SET reads it.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        assert_eq!(libc::shmctl(id, libc::IPC_STAT, &mut ds), 0);
        ds.shm_perm.uid = uid;
        assert_eq!(libc::shmctl(id, libc::IPC_SET, &mut ds), 0);
    }
}

#[test]
fn sysv_open_or_create_makes_joins_and_refuses_what_is_not_this_users() {
    let (key, wide) = create_keyed_with_mode(0o666);
    let opts = sysv::Options::new(SIZE);
    let e = SysvShm::open_or_create(key, Access::ReadWrite, &opts).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::PERM), "{e}");
    assert!(
        e.to_string().contains("0666") && e.to_string().contains("sysv-shm:"),
        "{e}"
    );
    let trusted = SysvShm::open_or_create(key, Access::ReadWrite, &opts.trust_existing(true));
    assert_eq!(trusted.unwrap().id(), wide.id());
    let joined = SysvShm::open_or_create(key, Access::ReadOnly, &opts.mode(0o666)).unwrap();
    assert_eq!(joined.id(), wide.id());
    drop(joined);
    assert!(
        SysvShm::open(key, Access::ReadOnly).is_ok(),
        "a joiner removes nothing"
    );
    if root() {
        set_segment_owner(wide.id(), NOBODY);
        let e = SysvShm::open_or_create(key, Access::ReadWrite, &opts.mode(0o666)).unwrap_err();
        assert!(e.to_string().contains("owned by nobody (uid 65534)"), "{e}");
    }
    wide.remove().unwrap();
    // Missing: made, and owned.
    let made = SysvShm::open_or_create(key, Access::ReadOnly, &opts).unwrap();
    assert_eq!(made.stat().unwrap().mode, 0o600);
    let id = made.id();
    drop(made);
    assert!(
        SysvShm::open_id(id, Access::ReadOnly).is_err(),
        "the maker removes it"
    );
}

#[test]
fn posix_shm_larger_than_dev_shm_is_refused_before_anything_is_made() {
    let name = unique_posix("test-shm-huge");
    for len in [i64::MAX as usize, usize::MAX] {
        let e = PosixShm::create(&name, &posix::Options::new(len)).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::NOSPC), "{len}: {e}");
        let s = e.to_string();
        assert!(
            s.contains(&format!("needs {len} bytes, /dev/shm has ")) && s.contains(" free"),
            "{s}"
        );
        assert!(!dev_shm(&name).exists(), "{len}: nothing left");
    }
}

#[test]
fn posix_shm_and_memfds_are_allocated_when_made() {
    use std::os::unix::fs::MetadataExt;
    let len = 1 << 20;
    let name = unique_posix("test-shm-reserved");
    let shm = PosixShm::create(&name, &posix::Options::new(len)).unwrap();
    let blocks = std::fs::metadata(dev_shm(&name)).unwrap().blocks();
    assert!(blocks * 512 >= len as u64, "{blocks} blocks: not reserved");
    drop(shm);
    let m = Memfd::create("test-reserved", len).unwrap();
    let st = rustix::fs::fstat(&m).unwrap();
    assert!(
        st.st_blocks as u64 * 512 >= len as u64,
        "{} blocks",
        st.st_blocks
    );
    m.set_len(2 * len).unwrap();
    let st = rustix::fs::fstat(&m).unwrap();
    assert!(
        st.st_blocks as u64 * 512 >= 2 * len as u64,
        "growth: {} blocks",
        st.st_blocks
    );
    // A writable mapping of a sparse file reserves what it maps.
    let sparse = rustix::fs::memfd_create("test-sparse", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&sparse, len as u64).unwrap();
    assert_eq!(rustix::fs::fstat(&sparse).unwrap().st_blocks, 0);
    let _map = Mapping::map_fd(&sparse, len, Access::ReadWrite).unwrap();
    let st = rustix::fs::fstat(&sparse).unwrap();
    assert!(
        st.st_blocks as u64 * 512 >= len as u64,
        "mapping: {} blocks",
        st.st_blocks
    );
}

#[test]
fn a_memfd_larger_than_memory_is_refused_and_keeps_its_size() {
    let huge = i64::MAX as usize;
    let e = Memfd::create("test-huge", huge).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::NOSPC), "{e}");
    assert!(
        e.to_string().contains(&format!("needs {huge} bytes")),
        "{e}"
    );
    let m = Memfd::create("test-grow", SIZE).unwrap();
    let e = m.set_len(huge).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::NOSPC), "{e}");
    assert_eq!(m.len().unwrap(), SIZE, "the size is put back");
}
