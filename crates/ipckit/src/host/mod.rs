//! Every IPC object on the host, who uses it, and whether anyone still can: what `ipckit ls`,
//! `ipckit rm` and `ipckit gc` read.
//!
//! [`scan`] reads `/proc/sysvipc` (System V queues, segments and semaphore sets), `/dev/shm`
//! (POSIX shared memory and semaphores), the mqueue filesystem (POSIX queues),
//! `/proc/net/unix` and the socket table of every other network namespace a task is in
//! (`/proc/PID/task/TID/net/unix`: Unix sockets), every process's `/proc/PID/fd`, `fdinfo` and
//! `maps` (who holds or maps what: FIFOs, pipes, and the holders of everything else), and the
//! socket files under a few directories. Each object gets a [`State`]:
//!
//! | kind | orphan when |
//! |---|---|
//! | `sysv-shm` | no attachments, and its creator (`cpid`) and last user (`lpid`) are dead |
//! | `sysv-mq` | nobody is blocked in `msgsnd`/`msgrcv` on it, and its last sender and last receiver are dead |
//! | `sysv-sem` | nobody waits on it, and every semaphore's last user (`GETPID`) is dead |
//! | `posix-shm`, `posix-sem` | no process maps it or holds it open |
//! | `posix-mq` | no process holds it open |
//! | `unix` | (stale) a socket file that no socket in any network namespace is bound to: a connect is refused and no namespace's table lists it |
//!
//! Who is blocked on a System V queue or set comes from every thread's `/proc/PID/task/TID/syscall`.
//! A name made by [`crate::name::unique`] carries the ipckit tag (`ipckit-PURPOSE-PID-…`), so
//! the listing names its creator and purpose ([`Object::creator`]) even after the creator is
//! gone, which a POSIX object otherwise never records.
//!
//! [`State::Unknown`] is given whenever the evidence is not enough, never a guess that could
//! lose someone's data:
//! - a System V queue or set that nobody ever used: the kernel records no creator, and a
//!   process that polls it (`IPC_NOWAIT`) leaves no trace;
//! - a recorded pid that now belongs to a process started after it was recorded (the pid was
//!   reused, or the wall clock was stepped since: start times are boot-relative); the kernel
//!   records times in whole seconds, so only a start clearly past that second counts;
//! - a recorded pid of 0 with a time: a process outside this pid namespace did it; a recorded
//!   pid this scan did not see but `kill(pid, 0)` finds (`hidepid`);
//! - any would-be orphan when this runs in a nested pid namespace that shares the host's IPC
//!   namespace (processes outside are invisible);
//! - a System V queue or set whose users are dead, when a process that could be blocked on it
//!   could not be inspected (its `syscall` file needs ptrace-attach rights);
//! - a POSIX object that a process this scan could not inspect might hold: without root,
//!   other users' descriptors cannot be read (and with `hidepid` their processes cannot even
//!   be seen); such a process counts for its owner's objects and for any whose mode lets
//!   others in. A root process holding another user's private object is not assumed;
//! - a socket file that refuses connections and that no table read lists, when a network
//!   namespace that could hold its socket went unread: a task of the file's owner whose
//!   `net/unix` could not be opened, other users' processes hidden by `hidepid`, processes
//!   outside this pid namespace, or a Unix socket a process holds that no table lists (its
//!   namespace has no task in it).
//!
//! Names are OS strings end to end ([`Object::name`]): an entry planted with bytes that are
//! not UTF-8, or with control characters, is listed, judged and removed like any other.
//! [`Object::uri`] and [`Object::label`] write it with [`crate::name::escape`], and
//! [`unescape`] reads that back.
//!
//! Limits, said in [`Listing::notes`] when they apply: a process whose mappings or system calls
//! (but not descriptors) cannot be read even as root is judged by its descriptors alone; a task
//! that unshared its descriptor table (`CLONE_FILES`) is not read separately; a 32-bit task's
//! `ipc()` call is not decoded (only x86_64 and aarch64 native calls are); a file or socket on a
//! hung network mount can still stall the stat of a descriptor that points at it.
//!
//! Written by hand: no crate reads these tables (util-linux's lsipc is C and cannot tell an
//! orphan). The /proc parsers it shares with the mechanisms (a Unix bind asks whether a socket
//! file is still bound) sit below both, in a crate-internal module that `host` re-exports as
//! [`procfs`]; no mechanism calls `host`.
//!
//! `host` is a module of the ipckit crate, not a crate of its own: the CLI, the lab and the
//! services to come all need its verdicts next to the kinds' own name and tag rules
//! ([`crate::name`]), and a separate crate would depend on ipckit for those rules anyway, so it
//! would only move the same dependency edge, not remove it.
//!
//! ```
//! use ipckit::host::{scan, Kind, Options};
//!
//! let listing = scan(&Options { kinds: vec![Kind::SysvShm, Kind::PosixShm], ..Options::default() });
//! for object in &listing.objects {
//!     println!("{} {} {}", object.kind, object.label(), object.state);
//! }
//! ```

mod kind;
pub mod limits;
mod object;
mod pipes;
mod posix;
mod process;
mod remove;
pub(crate) mod sockets;
mod sysv;
mod uri;
mod users;
mod verdict;

pub use crate::sys::procfs;
pub use kind::Kind;
pub use object::{Creator, Listing, Object, Options, State};
pub use process::{Holder, Process};
pub use remove::{remove, remove_fifo};
pub use uri::unescape;
pub use users::{user_id, user_name};

use pipes::{fifos, pipes};
use posix::{dev_shm, mqueue};
use process::Processes;
use sysv::{sysv_msg, sysv_sem, sysv_shm};
use users::Users;

/// Lists the IPC objects on this host and judges each one live, orphan, stale or unknown.
/// Never fails: what cannot be read is left out and said in [`Listing::notes`].
pub fn scan(opts: &Options) -> Listing {
    let wants_files = [Kind::PosixShm, Kind::PosixSem, Kind::PosixMq, Kind::Fifo]
        .into_iter()
        .any(|k| opts.wants(k));
    let procs = Processes::scan(
        opts.wants(Kind::Pipe),
        opts.wants(Kind::SysvMq) || opts.wants(Kind::SysvSem),
    );
    let mut listing = Listing::default();
    let mut users = Users::default();
    if opts.wants(Kind::SysvMq) {
        sysv_msg(&procs, &mut listing);
    }
    if opts.wants(Kind::SysvShm) {
        sysv_shm(&procs, &mut listing);
    }
    if opts.wants(Kind::SysvSem) {
        sysv_sem(&procs, &mut listing);
    }
    if opts.wants(Kind::PosixShm) || opts.wants(Kind::PosixSem) {
        dev_shm(&procs, opts, &mut listing);
    }
    if opts.wants(Kind::PosixMq) {
        mqueue(&procs, &mut listing);
    }
    if opts.wants(Kind::Unix) {
        sockets::list(&procs, &opts.socket_dirs, &mut listing);
    }
    if opts.wants(Kind::Fifo) {
        fifos(&procs, &mut listing);
    }
    if opts.wants(Kind::Pipe) {
        pipes(&procs, &mut listing);
    }
    for o in &mut listing.objects {
        o.owner = o.uid.and_then(|u| users.name(u));
    }
    // Only when some verdict actually rests on processes that could not be inspected.
    let unknown = listing
        .objects
        .iter()
        .any(|o| o.state == State::Unknown && o.reason.contains("could not be"));
    if unknown && procs.hidden_others {
        listing.notes.push(
            "/proc is mounted with hidepid: other users' processes cannot be seen, so objects \
             they might hold are 'unknown' (run as root to see them)"
                .into(),
        );
    }
    if unknown && !procs.uninspected.is_empty() {
        listing.notes.push(format!(
            "the descriptors of {} processes could not be read (permission denied; run as root to see them): \
             objects they might hold are 'unknown', not 'orphan'",
            procs.uninspected.len()
        ));
    }
    if process::nested_pid_namespace() {
        // Processes outside this pid namespace are invisible. Sharing the host's IPC namespace
        // (a container run with --ipc=host), they may use any System V object or queue here.
        let shared = process::host_ipc_namespace();
        if shared {
            for o in listing
                .objects
                .iter_mut()
                .filter(|o| o.state == State::Orphan)
            {
                o.state = State::Unknown;
                o.reason = format!(
                    "{}; but processes outside this pid namespace share its IPC namespace and are not seen",
                    o.reason
                );
            }
        }
        listing.notes.push(format!(
            "this runs in a nested pid namespace: processes outside it are not seen{}",
            if shared {
                ", and they share this IPC namespace, so no object is called an orphan"
            } else {
                ""
            }
        ));
    }
    if !procs.syscall_unread.is_empty() && rustix::process::geteuid().is_root() {
        let pids: Vec<String> = procs
            .syscall_unread
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        listing.notes.push(format!(
            "the system calls of pid {} could not be read even as root: a System V wait of theirs is not seen",
            pids.join(", ")
        ));
    }
    if wants_files && !procs.maps_unread.is_empty() {
        let pids: Vec<String> = procs.maps_unread.iter().map(u32::to_string).collect();
        listing.notes.push(format!(
            "the mappings of pid {} could not be read: a shared memory object such a process maps \
             with its descriptor closed is not seen",
            pids.join(", ")
        ));
    }
    listing
}
