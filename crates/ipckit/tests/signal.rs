//! Signals across real processes: a sigqueue value arrives through signalfd; kill is seen as
//! SI_USER; the self-pipe turns a handler into a readable byte; real-time signals queue while
//! standard ones coalesce.

mod common;

use common::{T, hear, say};
use ipckit::notify::signal::{self, SIGUSR1, SIGUSR2, SelfPipe, SignalFd};

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "signalfd" => {
            // The parent started this process with the signals blocked in every thread.
            let sfd = SignalFd::new(&[signal::rt(1), SIGUSR1]).unwrap();
            say("ready");
            let i = sfd.read_timeout(T).unwrap().expect("a signal");
            say(format!("{} {} {} {}", i.signo, i.value, i.pid, i.code));
        }
        "self-pipe" => {
            let sp = SelfPipe::install(&[SIGUSR2]).unwrap();
            assert!(SelfPipe::install(&[SIGUSR1]).is_err(), "one per process");
            drop(sp);
            // Installed again after a drop: the same pipe, nothing stale in it.
            let sp = SelfPipe::install(&[SIGUSR2]).unwrap();
            assert_eq!(sp.try_wait().unwrap(), None);
            say("ready");
            say(sp.wait_timeout(T).unwrap().expect("a signal").to_string());
        }
        "count" => {
            let sfd = SignalFd::new(&[SIGUSR1, signal::rt(2)]).unwrap();
            say("ready");
            hear(); // the parent has sent everything: all of it is pending now
            let (mut usr1, mut rt) = (0, 0);
            while let Some(i) = sfd.try_read().unwrap() {
                if i.signo == SIGUSR1 {
                    usr1 += 1;
                } else {
                    rt += 1;
                }
            }
            say(format!("{usr1} {rt}"));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_sigqueue_value_arrives_through_signalfd() {
    let mut child = common::child("child", "signalfd")
        .blocked(&[signal::rt(1), SIGUSR1])
        .start();
    assert_eq!(child.line(), "ready");
    signal::queue(child.pid() as ipckit::Pid, signal::rt(1), 4242).unwrap();
    let me = std::process::id();
    assert_eq!(
        child.line(),
        format!("{} 4242 {me} {}", signal::rt(1), libc::SI_QUEUE)
    );
    child.success();
}

#[test]
fn kill_is_seen_as_sent_by_a_user() {
    let mut child = common::child("child", "signalfd")
        .blocked(&[signal::rt(1), SIGUSR1])
        .start();
    assert_eq!(child.line(), "ready");
    signal::kill(child.pid() as ipckit::Pid, SIGUSR1).unwrap();
    let me = std::process::id();
    assert_eq!(child.line(), format!("{SIGUSR1} 0 {me} {}", libc::SI_USER));
    child.success();
}

#[test]
fn the_self_pipe_turns_a_handler_into_a_readable_byte() {
    let mut child = common::child("child", "self-pipe").start();
    assert_eq!(child.line(), "ready");
    signal::kill(child.pid() as ipckit::Pid, SIGUSR2).unwrap();
    assert_eq!(child.line(), SIGUSR2.to_string());
    child.success();
}

#[test]
fn realtime_signals_queue_and_standard_ones_coalesce() {
    let mut child = common::child("child", "count")
        .blocked(&[SIGUSR1, signal::rt(2)])
        .start();
    assert_eq!(child.line(), "ready");
    for i in 0..3 {
        signal::kill(child.pid() as ipckit::Pid, SIGUSR1).unwrap();
        signal::queue(child.pid() as ipckit::Pid, signal::rt(2), i).unwrap();
    }
    child.tell("read");
    assert_eq!(
        child.line(),
        "1 3",
        "three SIGUSR1 merge into one; three real-time signals stay three"
    );
    child.success();
}

#[test]
fn bad_signals_and_process_groups_are_refused() {
    assert!(signal::kill(std::process::id(), 0).is_err());
    // 0 would be our own group; a pid past i32::MAX would be read as a negative one: -1 every
    // process we may signal, the others a group.
    for pid in [0, u32::MAX, 1 << 31] {
        let err = signal::kill(pid, SIGUSR1).unwrap_err();
        assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput, "{pid}");
    }
    // kill_group never turns into kill(-1).
    let err = signal::kill_group(1, SIGUSR1).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    assert!(signal::queue(std::process::id(), 1000, 0).is_err());
    assert_eq!(signal::name(SIGUSR1), "SIGUSR1");
    assert_eq!(signal::name(signal::rt(3)), "SIGRTMIN+3");
}

#[test]
fn a_thread_directed_signal_reaches_only_the_thread_that_blocks_it() {
    // Other test threads of this process do not block rt(3): a process-directed signal could
    // land on one of them and end the process. Thread-directed, it waits for this thread.
    let sfd = SignalFd::new(&[signal::rt(3)]).unwrap();
    let pid = std::process::id();
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as ipckit::Pid;
    signal::queue_thread(pid, tid, signal::rt(3), 77).unwrap();
    let i = sfd.read_timeout(T).unwrap().expect("the signal");
    assert_eq!(
        (i.signo, i.value, i.pid, i.code),
        (signal::rt(3), 77, pid, libc::SI_QUEUE)
    );
    assert!(signal::queue_thread(pid, 0, signal::rt(3), 0).is_err());
}
