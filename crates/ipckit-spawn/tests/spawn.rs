//! Each test starts this test binary again, running the `child` test with a role.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use ipckit_spawn::{Spawn, TakeError, fds};

const ROLE: &str = "IPCKIT_SPAWN_TEST_ROLE";
const T: Duration = Duration::from_secs(20);

fn helper(role: &str) -> Spawn<'static> {
    Spawn::this()
        .role(ROLE, role)
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .talk()
}

#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    match role.as_str() {
        "double" => {
            let n: u64 = ipckit_spawn::arg("N").unwrap().parse().unwrap();
            ipckit_spawn::say((2 * n).to_string());
            let heard = ipckit_spawn::hear().unwrap();
            ipckit_spawn::say(format!("heard {heard}"));
        }
        "write-two" => {
            let first: i32 = ipckit_spawn::arg("FIRST").unwrap().parse().unwrap();
            let second: i32 = ipckit_spawn::arg("SECOND").unwrap().parse().unwrap();
            let a = ipckit_spawn::take_fd(first).unwrap();
            let b = ipckit_spawn::take_fd(second).unwrap();
            assert!(matches!(
                ipckit_spawn::take_fd(first),
                Err(TakeError::Taken { .. })
            ));
            assert!(matches!(
                ipckit_spawn::take_fd(99),
                Err(TakeError::NotPassed { .. })
            ));
            std::fs::File::from(a).write_all(b"first").unwrap();
            std::fs::File::from(b).write_all(b"second").unwrap();
            ipckit_spawn::say("done");
        }
        "by-name" => {
            let fd = fds::take("out").unwrap();
            let cloexec = rustix::io::fcntl_getfd(&fd).unwrap();
            ipckit_spawn::say(format!(
                "cloexec {}",
                cloexec.contains(rustix::io::FdFlags::CLOEXEC)
            ));
            std::fs::File::from(fd).write_all(b"named").unwrap();
        }
        "blocked-mask" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
            ipckit_spawn::say(line.split_whitespace().nth(1).unwrap());
        }
        "silent" => {
            ipckit_spawn::hear();
        }
        "exit" => {}
        other => panic!("no role {other}"),
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap()
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

#[test]
fn values_go_in_and_lines_come_back() {
    let mut c = helper("double").arg("N", 21).start().unwrap();
    assert_eq!(c.line_timeout(T).unwrap().as_deref(), Some("42"));
    c.tell("hello").unwrap();
    assert_eq!(c.line_timeout(T).unwrap().as_deref(), Some("heard hello"));
    assert!(c.wait_timeout(T).unwrap().unwrap().success());
}

#[test]
fn descriptors_land_at_their_numbers_even_when_the_numbers_cross() {
    let (ra, wa) = pipe();
    let (rb, wb) = pipe();
    // Each write end goes to the other's number: a naive dup2 would overwrite one first.
    let (na, nb) = (wb.as_raw_fd(), wa.as_raw_fd());
    let mut c = helper("write-two")
        .arg("FIRST", na)
        .arg("SECOND", nb)
        .fd(wa.as_fd(), na)
        .fd(wb.as_fd(), nb)
        .start()
        .unwrap();
    drop((wa, wb));
    assert_eq!(c.line_timeout(T).unwrap().as_deref(), Some("done"));
    assert!(c.wait_timeout(T).unwrap().unwrap().success());
    assert_eq!(read_all(ra), "first");
    assert_eq!(read_all(rb), "second");
}

#[test]
fn a_number_given_twice_is_refused() {
    let (_r, w) = pipe();
    let twice = helper("exit").fd(w.as_fd(), 10).fd(w.as_fd(), 10);
    let mut by_name = helper("exit");
    let n = fds::pass(by_name.command(), "out", w.as_fd()).unwrap();
    for spawn in [twice, by_name.fd(w.as_fd(), n)] {
        let e = spawn.start().err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[test]
fn a_descriptor_passed_by_name_is_taken_by_name_and_cloexec_again() {
    let (r, w) = pipe();
    let mut s = helper("by-name");
    let n = fds::pass(s.command(), "out", w.as_fd()).unwrap();
    assert_ne!(n, w.as_raw_fd(), "the child gets a copy");
    assert!(
        fds::pass(s.command(), "out", w.as_fd()).is_err(),
        "one name once"
    );
    let mut c = s.start().unwrap();
    drop(w);
    assert_eq!(c.line_timeout(T).unwrap().as_deref(), Some("cloexec true"));
    assert!(c.wait_timeout(T).unwrap().unwrap().success());
    drop(c);
    assert_eq!(read_all(r), "named");
}

#[test]
fn signals_are_blocked_in_the_child() {
    let mut c = helper("blocked-mask")
        .blocked(&[libc::SIGUSR1, libc::SIGRTMIN() + 1])
        .start()
        .unwrap();
    let mask = u64::from_str_radix(&c.line_timeout(T).unwrap().unwrap(), 16).unwrap();
    assert_ne!(mask & (1 << (libc::SIGUSR1 - 1)), 0, "{mask:x}");
    assert_ne!(mask & (1 << (libc::SIGRTMIN())), 0, "{mask:x}");
}

#[test]
fn a_silent_child_gives_none_in_time_and_is_killed_and_reaped_on_drop() {
    let mut c = helper("silent").start().unwrap();
    assert_eq!(c.line_timeout(Duration::from_millis(50)).unwrap(), None);
    let pidfd = c.pidfd().try_clone_to_owned().unwrap();
    drop(c);
    // Reaped: waitid on its pidfd finds no child any more.
    let e = rustix::process::waitid(
        rustix::process::WaitId::PidFd(pidfd.as_fd()),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
    )
    .unwrap_err();
    assert_eq!(e, rustix::io::Errno::CHILD);
}

#[test]
fn a_child_that_exited_ends_the_lines() {
    let mut c = helper("exit").start().unwrap();
    let e = c.line_timeout(T).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    let st = c.kill_timeout(T).unwrap().unwrap();
    assert!(st.success(), "it exited by itself before the kill: {st}");
}

#[test]
fn a_program_that_cannot_start_is_an_error_whatever_number_a_descriptor_is_given() {
    // std reports a failed exec through a pipe it opens just before the fork, at the lowest
    // free numbers: a target placed onto it would hide the failure. Each free number is tried.
    let (_r, w) = pipe();
    for target in 3..24 {
        let got = Spawn::new("/nonexistent/ipckit-spawn-test")
            .fd(w.as_fd(), target)
            .start();
        let err = got
            .err()
            .unwrap_or_else(|| panic!("started with target {target}"));
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::NotFound,
            "target {target}: {err}"
        );
    }
}
