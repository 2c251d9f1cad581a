//! eventfd: counter and semaphore modes, timed and non-blocking reads, and a counter shared
//! with another process.

mod common;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::T;
use ipckit::notify::eventfd::{EventFd, Mode};

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "add-five" => {
            // SAFETY: the parent put the eventfd at descriptor 10 for this child.
            let ev = EventFd::from_fd(unsafe { OwnedFd::from_raw_fd(10) }).unwrap();
            ev.add(5).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn counter_mode_takes_the_whole_count() {
    let ev = EventFd::new(2, Mode::Counter).unwrap();
    ev.add(3).unwrap();
    assert_eq!(ev.try_read().unwrap(), Some(5));
    assert_eq!(ev.try_read().unwrap(), None);
    assert_eq!(ev.read_timeout(Duration::from_millis(20)).unwrap(), None);
}

#[test]
fn semaphore_mode_takes_one_at_a_time() {
    let ev = EventFd::new(0, Mode::Semaphore).unwrap();
    ev.add(3).unwrap();
    for _ in 0..3 {
        assert_eq!(ev.try_read().unwrap(), Some(1));
    }
    assert_eq!(ev.try_read().unwrap(), None);
}

#[test]
fn a_full_counter_refuses_more() {
    let ev = EventFd::new(0, Mode::Counter).unwrap();
    ev.add(u64::MAX - 1).unwrap();
    let err = ev.add(1).unwrap_err();
    assert_eq!(err.errno(), Some(ipckit::Errno::AGAIN));
    assert!(ev.add(u64::MAX).is_err());
}

#[test]
fn another_process_wakes_a_waiting_reader() {
    let ev = EventFd::new(0, Mode::Counter).unwrap();
    let child = common::child("child", "add-five")
        .fd(ev.as_fd(), 10)
        .start();
    assert_eq!(ev.read_timeout(T).unwrap(), Some(5));
    child.success();
}

#[test]
fn a_deadline_already_passed_takes_what_is_there_and_never_waits() {
    let ev = EventFd::new(0, Mode::Counter).unwrap();
    assert_eq!(ev.read_deadline(ipckit::Deadline::now()).unwrap(), None);
    ev.add(2).unwrap();
    assert_eq!(ev.read_deadline(ipckit::Deadline::now()).unwrap(), Some(2));
    ev.add(1).unwrap();
    assert_eq!(ev.read().unwrap(), 1);
}

#[test]
fn from_fd_refuses_what_is_not_an_eventfd() {
    let (r, _w) = ipckit::stream::pipe::pipe().unwrap();
    let err = EventFd::from_fd(r.into_fd()).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    let sfd = ipckit::notify::signal::SignalFd::new(&[]).unwrap();
    let err = EventFd::from_fd(sfd.as_fd().try_clone_to_owned().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("signalfd"), "{err}");
    let ev = EventFd::new(1, Mode::Counter).unwrap();
    let again = EventFd::from_fd(ev.into_fd()).unwrap();
    assert_eq!(again.try_read().unwrap(), Some(1));
}
