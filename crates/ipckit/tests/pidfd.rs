//! pidfd: a process exit as a readable descriptor.

mod common;

use std::time::Duration;

use common::{T, hear, say};
use ipckit::notify::pidfd::PidFd;

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "wait-then-exit" => {
            say("ready");
            hear();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_pidfd_becomes_readable_at_child_exit() {
    let mut child = common::child("child", "wait-then-exit").start();
    assert_eq!(child.line(), "ready");
    let pidfd = PidFd::open(child.pid() as ipckit::Pid).unwrap();
    assert!(!pidfd.try_wait_exit().unwrap(), "alive: not readable");
    assert!(!pidfd.wait_exit_timeout(Duration::from_millis(50)).unwrap());
    child.tell("exit");
    assert!(
        pidfd.wait_exit_timeout(T).unwrap(),
        "readable once the child exits"
    );
    assert!(child.wait().success());
}

#[test]
fn a_pidfd_signals_exactly_its_process() {
    let mut child = common::child("child", "wait-then-exit").start();
    assert_eq!(child.line(), "ready");
    let pidfd = PidFd::open(child.pid() as ipckit::Pid).unwrap();
    pidfd.send_signal(libc::SIGKILL).unwrap();
    assert!(pidfd.wait_exit_timeout(T).unwrap());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().signal(), Some(libc::SIGKILL));
    // Reaped: its pid may now be reused, and the pidfd refuses to signal anyone else.
    let err = pidfd.send_signal(libc::SIGKILL).unwrap_err();
    assert_eq!(err.errno(), Some(ipckit::Errno::SRCH));
}

#[test]
fn bad_pids_are_clear_errors() {
    assert_eq!(
        PidFd::open(0).unwrap_err().kind(),
        ipckit::ErrorKind::InvalidInput
    );
    let err = PidFd::open(i32::MAX as u32).unwrap_err();
    assert_eq!(err.errno(), Some(ipckit::Errno::SRCH));
    // Past pid_t: refused before the kernel is asked.
    let err = PidFd::open(u32::MAX).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
}

#[test]
fn wait_exit_blocks_until_the_exit() {
    let mut child = common::child("child", "wait-then-exit").start();
    assert_eq!(child.line(), "ready");
    let pidfd = PidFd::open(child.pid() as ipckit::Pid).unwrap();
    assert!(!pidfd.wait_exit_deadline(ipckit::Deadline::now()).unwrap());
    child.tell("exit");
    // Bounded by the child, which exits on hearing the line.
    pidfd.wait_exit().unwrap();
    assert!(pidfd.try_wait_exit().unwrap());
    assert!(child.wait().success());
}
