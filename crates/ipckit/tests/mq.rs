//! Message queues across real processes: POSIX priority order, every System V type filter,
//! full queues, too-small buffers, statistics, and ownership.

mod common;

use std::time::Duration;

use common::{T, say};
use ipckit::mq::posix::{Access, PosixMq, QueueAttr, mqueue_mounted};
use ipckit::mq::sysv::{SysvMq, TypeFilter};
use ipckit::name::{self, SysvKey};
use ipckit::{Errno, ErrorKind};

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "posix-sender" => {
            let q = PosixMq::open(&common::arg("NAME"), Access::Write).unwrap();
            for (text, prio) in [
                ("low", 1),
                ("high", 30),
                ("mid", 10),
                ("high-2", 30),
                ("zero", 0),
            ] {
                q.send(text.as_bytes(), prio).unwrap();
            }
        }
        "sysv-sender" => {
            let q = SysvMq::open_id(common::arg("ID").parse().unwrap()).unwrap();
            for (t, text) in [
                (5, "five"),
                (2, "two"),
                (7, "seven"),
                (2, "two-again"),
                (1, "one"),
            ] {
                q.send(t, text.as_bytes()).unwrap();
            }
            say(std::process::id().to_string());
        }
        "sysv-receiver" => {
            let q = SysvMq::open(common::arg("KEY").parse().unwrap()).unwrap();
            let mut buf = [0u8; 64];
            let m = q
                .recv_timeout(&mut buf, TypeFilter::Exact(9), false, Some(T))
                .unwrap()
                .unwrap();
            say(String::from_utf8_lossy(&buf[..m.len]));
        }
        "umask-mode" => {
            // SAFETY: umask only sets this process's file-creation mask.
            unsafe { libc::umask(0o077) };
            let q = posix_queue_with_mode(0o644);
            let st = rustix::fs::fstat(&q).unwrap();
            say(format!("{:o}", st.st_mode & 0o777));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A queue of two 8-byte messages: enough for the ownership tests.
const SMALL: QueueAttr = QueueAttr {
    max_msgs: 2,
    msg_size: 8,
};

fn posix_queue_with_mode(mode: u32) -> PosixMq {
    PosixMq::create(&name::unique_posix("test-mq"), SMALL, mode).unwrap()
}

fn posix_queue(max_msgs: i64, msg_size: i64) -> PosixMq {
    PosixMq::create(
        &name::unique_posix("test-mq"),
        QueueAttr { max_msgs, msg_size },
        0o600,
    )
    .unwrap()
}

#[test]
fn posix_messages_come_out_by_priority_then_in_order() {
    let q = posix_queue(10, 64);
    let child = common::child("child", "posix-sender")
        .arg("NAME", q.name())
        .start();
    child.success();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while let Some(prio) = q.try_recv(&mut buf).unwrap() {
        got.push((String::from_utf8(buf.clone()).unwrap(), prio));
    }
    let want = [
        ("high", 30),
        ("high-2", 30),
        ("mid", 10),
        ("low", 1),
        ("zero", 0),
    ];
    assert_eq!(got, want.map(|(t, p)| (t.to_string(), p)));
}

#[test]
fn a_full_posix_queue_refuses_without_blocking_and_times_out() {
    let q = posix_queue(2, 16);
    assert!(q.try_send(b"1", 0).unwrap());
    assert!(q.try_send(b"2", 0).unwrap());
    assert!(!q.try_send(b"3", 0).unwrap(), "full: EAGAIN, not a wait");
    assert!(
        !q.send_timeout(b"3", 0, Some(Duration::from_millis(50)))
            .unwrap()
    );
    assert_eq!(q.stat().unwrap().cur_msgs, 2);
    let mut buf = Vec::new();
    assert_eq!(q.recv_timeout(&mut buf, Some(T)).unwrap(), Some(0));
    assert!(q.send_timeout(b"3", 0, Some(T)).unwrap(), "room again");
}

#[test]
fn a_posix_receive_buffer_smaller_than_msg_size_is_an_error() {
    let q = posix_queue(4, 128);
    q.send(b"fits", 0).unwrap();
    let err = q.try_recv_into(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::MSGSIZE));
    assert!(err.to_string().contains("refuses rather than cut"), "{err}");
    assert_eq!(
        q.try_recv_into(&mut [0u8; 128]).unwrap(),
        Some((4, 0)),
        "the message was not lost"
    );
    let err = q.try_send(&[0u8; 129], 0).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::MSGSIZE));
}

#[test]
fn posix_queues_belong_to_their_creator() {
    let name = name::unique_posix("test-mq-own");
    let q = PosixMq::create(&name, SMALL, 0o600).unwrap();
    assert_eq!(
        PosixMq::create(&name, QueueAttr::default(), 0o600)
            .unwrap_err()
            .errno(),
        Some(Errno::EXIST)
    );
    let opener = PosixMq::open(&name, Access::Read).unwrap();
    drop(opener); // an opener never removes
    assert!(PosixMq::open(&name, Access::Read).is_ok());
    drop(q);
    let err = PosixMq::open(&name, Access::Read).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT));
    let mut kept = PosixMq::create(&name, SMALL, 0o600).unwrap();
    kept.persist();
    drop(kept);
    assert!(PosixMq::open(&name, Access::Read).is_ok());
    PosixMq::unlink(&name).unwrap();
    // Unlinked: the name is free again (and this new queue is removed on drop).
    PosixMq::create(&name, SMALL, 0o600).unwrap();
    assert_eq!(
        PosixMq::open("no-slash", Access::Read).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn every_sysv_type_filter() {
    let q = SysvMq::create(SysvKey::Private, 0o600).unwrap();
    let mut child = common::child("child", "sysv-sender")
        .arg("ID", q.id())
        .start();
    let sender: i32 = child.line().parse().unwrap();
    child.success();
    let st = q.stat().unwrap();
    assert_eq!(st.msgs, 5);
    assert_eq!(st.last_send_pid, sender);
    let take = |f: TypeFilter| {
        let mut buf = [0u8; 64];
        let m = q.try_recv(&mut buf, f, false).unwrap().expect("a message");
        (m.mtype, String::from_utf8_lossy(&buf[..m.len]).into_owned())
    };
    let mut buf = [0u8; 64];
    // Queue, in order: 5 five, 2 two, 7 seven, 2 two-again, 1 one.
    assert_eq!(
        take(TypeFilter::Exact(2)),
        (2, "two".into()),
        "exact: the first of that type"
    );
    assert_eq!(
        take(TypeFilter::UpTo(6)),
        (1, "one".into()),
        "negative: the lowest type up to |t|"
    );
    // Left: 5 five, 7 seven, 2 two-again.
    assert_eq!(
        take(TypeFilter::Except(5)),
        (7, "seven".into()),
        "MSG_EXCEPT: the first of another type"
    );
    assert_eq!(
        take(TypeFilter::Any),
        (5, "five".into()),
        "0: the first of any type"
    );
    assert_eq!(
        q.try_recv(&mut buf, TypeFilter::Exact(3), false).unwrap(),
        None,
        "none of type 3: ENOMSG at once"
    );
    assert_eq!(take(TypeFilter::Any), (2, "two-again".into()));
    assert_eq!(q.stat().unwrap().last_recv_pid, std::process::id() as i32);
    assert!(
        q.try_recv(&mut buf, TypeFilter::Exact(0), false).is_err(),
        "type 0 is not a type"
    );
}

#[test]
fn a_sysv_receive_buffer_too_small_errors_unless_truncation_is_asked_for() {
    let q = SysvMq::create(SysvKey::Private, 0o600).unwrap();
    q.send(1, b"twelve bytes").unwrap();
    let mut small = [0u8; 6];
    let err = q.try_recv(&mut small, TypeFilter::Any, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert!(err.to_string().contains("stays in the queue"), "{err}");
    assert_eq!(q.stat().unwrap().msgs, 1, "the message was not lost");
    let m = q
        .try_recv(&mut small, TypeFilter::Any, true)
        .unwrap()
        .unwrap();
    assert_eq!(&small[..m.len], b"twelve", "MSG_NOERROR: cut as asked");
}

#[test]
fn a_full_sysv_queue_refuses_without_blocking_and_times_out() {
    let q = SysvMq::create(SysvKey::Private, 0o600).unwrap();
    q.set_max_bytes(100).unwrap();
    assert_eq!(q.stat().unwrap().max_bytes, 100);
    assert!(q.try_send(1, &[0u8; 60]).unwrap());
    assert!(
        !q.try_send(1, &[0u8; 60]).unwrap(),
        "full: EAGAIN, not a wait"
    );
    assert!(
        !q.send_timeout(1, &[0u8; 60], Some(Duration::from_millis(50)))
            .unwrap()
    );
    let mut buf = [0u8; 64];
    assert!(
        q.recv_timeout(
            &mut buf,
            TypeFilter::Any,
            false,
            Some(Duration::from_millis(50))
        )
        .unwrap()
        .is_some()
    );
    assert!(
        q.recv_timeout(
            &mut buf,
            TypeFilter::Any,
            false,
            Some(Duration::from_millis(50))
        )
        .unwrap()
        .is_none()
    );
}

#[test]
fn a_sysv_queue_is_found_by_key_in_another_process_and_removed_by_its_creator() {
    let key = SysvKey::Key(0x1c_0000 | (std::process::id() as i32 & 0xffff));
    let q = SysvMq::create(key, 0o600).unwrap();
    assert_eq!(
        SysvMq::create(key, 0o600).unwrap_err().errno(),
        Some(Errno::EXIST)
    );
    let mut child = common::child("child", "sysv-receiver")
        .arg("KEY", key)
        .start();
    q.send(9, b"by key").unwrap();
    assert_eq!(child.line(), "by key");
    child.success();
    let id = q.id();
    drop(q);
    assert_eq!(SysvMq::open(key).unwrap_err().errno(), Some(Errno::NOENT));
    assert!(SysvMq::open_id(id).is_err());
    let mut kept = SysvMq::create(key, 0o600).unwrap();
    kept.persist();
    drop(kept);
    let mut again = SysvMq::open(key).unwrap();
    again.remove().unwrap();
}

#[test]
fn a_posix_queue_gets_exactly_the_mode_asked_for_whatever_the_umask() {
    let mut child = common::child("child", "umask-mode").start();
    assert_eq!(child.line(), "644");
    child.success();
    let err =
        PosixMq::create(&name::unique_posix("test-mq"), QueueAttr::default(), 0o4755).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "set-id bits are not a queue's"
    );
}

#[test]
fn a_posix_creator_never_removes_a_queue_made_again_under_its_name() {
    if !mqueue_mounted() {
        // Without the mqueue filesystem the name's owner cannot be told: .ci/run mounts it.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must mount /dev/mqueue"
        );
        eprintln!("SKIPPED: /dev/mqueue is not mounted");
        return;
    }
    let name = name::unique_posix("test-mq-again");
    let attr = SMALL;
    let first = PosixMq::create(&name, attr, 0o600).unwrap();
    PosixMq::unlink(&name).unwrap();
    let second = PosixMq::create(&name, attr, 0o600).unwrap();
    drop(first);
    assert!(
        PosixMq::open(&name, Access::Read).is_ok(),
        "the first creator left the second queue alone"
    );
    drop(second);
    assert_eq!(
        PosixMq::open(&name, Access::Read).unwrap_err().errno(),
        Some(Errno::NOENT)
    );
}
