//! Descriptors handed to a real exec'd child by name (`ipckit::inherit`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;

use common::{T, say};
use ipckit::{ErrorKind, inherit};

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "memfd" => {
            let fd = inherit::take("mem").unwrap();
            say(format!("cloexec {}", cloexec(&fd)));
            let file = std::fs::File::from(fd);
            let mut buf = [0u8; 11];
            file.read_exact_at(&mut buf, 0).unwrap();
            say(String::from_utf8_lossy(&buf));
            file.write_all_at(b"child was here", 64).unwrap();
        }
        "socket" => {
            let sock = UnixStream::from(inherit::take("sock").unwrap());
            sock.set_read_timeout(Some(T)).unwrap();
            let mut line = String::new();
            BufReader::new(&sock).read_line(&mut line).unwrap();
            (&sock)
                .write_all(format!("child heard {line}").as_bytes())
                .unwrap();
        }
        "missing" => {
            let e = inherit::take("nope").unwrap_err();
            say(format!("{:?}", e.kind()));
            say(e.to_string());
            drop(inherit::take("mem").unwrap());
            let e = inherit::take("mem").unwrap_err();
            say(format!("{:?}", e.kind()));
        }
        "record" => {
            let record = std::env::var(inherit::ENV).unwrap();
            let fd = inherit::take("mem").unwrap();
            say(format!("threads {}", threads()));
            say(format!(
                "record {}",
                std::env::var_os(inherit::ENV).is_some()
            ));
            // A grandchild that gets the record anyway (here on purpose) cannot take from it.
            let mut grandchild = common::child("child", "grandchild");
            grandchild.command().env(inherit::ENV, record);
            let mut grandchild = grandchild.start();
            say(grandchild.line());
            grandchild.success();
            drop(fd);
        }
        "grandchild" => {
            say(format!("{:?}", inherit::take("mem").unwrap_err().kind()));
        }
        other => panic!("no role {other}"),
    }
}

fn cloexec(fd: &OwnedFd) -> bool {
    rustix::io::fcntl_getfd(fd)
        .unwrap()
        .contains(rustix::io::FdFlags::CLOEXEC)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn memfd(content: &[u8]) -> std::fs::File {
    let fd =
        rustix::fs::memfd_create("ipckit-inherit-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let file = std::fs::File::from(fd);
    file.write_all_at(content, 0).unwrap();
    file
}

/// A child running `role`, with `fd` passed to it as `name`.
fn with_passed(role: &str, name: &str, fd: impl AsFd) -> common::Child {
    let mut spawn = common::child("child", role);
    inherit::pass(spawn.command(), name, fd).unwrap();
    spawn.start()
}

#[test]
fn a_memfd_reaches_an_execd_child_by_name() {
    let mem = memfd(b"hello memfd");
    let mut spawn = common::child("child", "memfd");
    let n = inherit::pass(spawn.command(), "mem", &mem).unwrap();
    assert!(n >= 3, "{n}");
    assert!(
        cloexec(&OwnedFd::from(mem.try_clone().unwrap())),
        "ours stays CLOEXEC"
    );
    let mut child = spawn.start();
    assert_eq!(child.line(), "cloexec true", "take sets CLOEXEC again");
    assert_eq!(child.line(), "hello memfd");
    child.success();
    let mut buf = [0u8; 14];
    mem.read_exact_at(&mut buf, 64).unwrap();
    assert_eq!(&buf, b"child was here");
}

#[test]
fn a_socket_reaches_an_execd_child_and_they_talk() {
    let (mine, theirs) = UnixStream::pair().unwrap();
    let child = with_passed("socket", "sock", &theirs);
    drop(theirs);
    mine.set_read_timeout(Some(T)).unwrap();
    (&mine).write_all(b"ping\n").unwrap();
    let mut line = String::new();
    BufReader::new(&mine).read_line(&mut line).unwrap();
    assert_eq!(line, "child heard ping\n");
    child.success();
}

#[test]
fn a_missing_name_is_a_clear_error_and_a_name_is_taken_once() {
    let mem = memfd(b"x");
    let mut child = with_passed("missing", "mem", &mem);
    assert_eq!(child.line(), "InvalidInput");
    let msg = child.line();
    assert!(msg.contains("nope"), "names the descriptor: {msg}");
    assert!(msg.contains("mem"), "lists what was passed: {msg}");
    assert!(msg.contains("inherit::pass"), "says what to do: {msg}");
    assert_eq!(child.line(), "InvalidInput", "taken twice");
    child.success();
}

#[test]
fn nothing_passed_is_a_clear_error_here_too() {
    let e = inherit::take("not-passed-to-the-test").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not-passed-to-the-test"), "{e}");
}

#[test]
fn a_name_is_passed_once_and_must_be_a_plain_word() {
    let mem = memfd(b"x");
    let mut cmd = std::process::Command::new("true");
    inherit::pass(&mut cmd, "mem", &mem).unwrap();
    let e = inherit::pass(&mut cmd, "mem", &mem).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("mem"), "{e}");
    for bad in ["", "a,b", "a=b"] {
        let e = inherit::pass(&mut cmd, bad, &mem).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
}

#[test]
fn the_record_is_cleared_and_a_grandchild_cannot_take_from_it() {
    let mem = memfd(b"x");
    let mut child = with_passed("record", "mem", &mem);
    let threads = child.line();
    let record = child.line();
    // The record leaves the environment when the child has one thread (a test binary's
    // children have two: the harness and the test), and stays otherwise.
    assert_eq!(
        record == "record false",
        threads == "threads 1",
        "{threads}, {record}"
    );
    assert_eq!(child.line(), "Changed", "the grandchild's number is closed");
    child.success();
}
