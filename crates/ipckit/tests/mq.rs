//! Message queues across real processes: POSIX priority order, every System V type filter,
//! full queues, too-small buffers, statistics, access, and ownership.

mod common;

use std::time::Duration;

use common::{T, say};
use ipckit::Access;
use ipckit::mq::posix::{self, PosixMq, mqueue_mounted};
use ipckit::mq::sysv::{self, SysvMq, TypeFilter};
use ipckit::name::{self, SysvKey};
use ipckit::{Errno, ErrorKind};

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "posix-sender" => {
            let q = PosixMq::open(&common::arg("NAME"), Access::WriteOnly).unwrap();
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
            let q = SysvMq::open_id(common::arg("ID").parse().unwrap(), Access::WriteOnly).unwrap();
            for (t, text) in [
                (5, "five"),
                (2, "two"),
                (7, "seven"),
                (2, "two-again"),
                (1, "one"),
            ] {
                q.send(text.as_bytes(), t).unwrap();
            }
            say(std::process::id().to_string());
        }
        "sysv-receiver" => {
            let q = SysvMq::open(common::arg("KEY").parse().unwrap(), Access::ReadOnly).unwrap();
            let mut buf = [0u8; 64];
            let m = q
                .recv_timeout(&mut buf, TypeFilter::Exact(9), false, T)
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
fn small() -> posix::Options {
    posix::Options::default().max_msgs(2).msg_size(8)
}

fn posix_queue_with_mode(mode: u32) -> PosixMq {
    PosixMq::create(&name::unique_posix("test-mq"), &small().mode(mode)).unwrap()
}

fn posix_queue(max_msgs: usize, msg_size: usize) -> PosixMq {
    let opts = posix::Options::default()
        .max_msgs(max_msgs)
        .msg_size(msg_size);
    PosixMq::create(&name::unique_posix("test-mq"), &opts).unwrap()
}

fn sysv_queue() -> SysvMq {
    SysvMq::create(SysvKey::Private, &sysv::Options::default()).unwrap()
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
    assert!(!q.send_timeout(b"3", 0, Duration::from_millis(50)).unwrap());
    let past = std::time::Instant::now();
    assert!(
        !q.send_deadline(b"3", 0, past).unwrap(),
        "a passed deadline"
    );
    let st = q.stat().unwrap();
    assert_eq!((st.msgs, st.max_msgs, st.msg_size), (2, 2, 16));
    let mut buf = Vec::new();
    assert_eq!(q.recv_timeout(&mut buf, T).unwrap(), Some(0));
    assert_eq!(buf, b"1");
    assert!(q.send_timeout(b"3", 0, T).unwrap(), "room again");
    let deadline = ipckit::Deadline::after(T);
    assert_eq!(q.recv_deadline(&mut buf, deadline).unwrap(), Some(0));
    assert_eq!(q.recv_deadline(&mut buf, deadline).unwrap(), Some(0));
    assert_eq!(buf, b"3");
    assert_eq!(
        q.recv_timeout(&mut buf, Duration::from_millis(20)).unwrap(),
        None
    );
    assert!(
        buf.is_empty(),
        "nothing received, nothing left in the buffer"
    );
}

#[test]
fn a_posix_message_larger_than_msg_size_is_refused_and_priorities_are_bounded() {
    let q = posix_queue(4, 128);
    let err = q.try_send(&[0u8; 129], 0).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::MSGSIZE));
    let err = q.try_send(b"x", posix::PRIO_MAX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    q.send(&[7u8; 128], posix::PRIO_MAX - 1).unwrap();
    let mut buf = Vec::new();
    assert_eq!(q.recv(&mut buf).unwrap(), posix::PRIO_MAX - 1);
    assert_eq!(buf, [7u8; 128]);
}

#[test]
fn a_posix_handle_does_only_what_it_was_opened_for() {
    let name = name::unique_posix("test-mq-access");
    let _q = PosixMq::create(&name, &small()).unwrap();
    let tx = PosixMq::open(&name, Access::WriteOnly).unwrap();
    let rx = PosixMq::open(&name, Access::ReadOnly).unwrap();
    assert_eq!(
        (tx.access(), rx.access()),
        (Access::WriteOnly, Access::ReadOnly)
    );
    let mut buf = Vec::new();
    let err = tx.try_recv(&mut buf).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::BADF), "{err}");
    assert!(err.to_string().contains("writing only"), "{err}");
    let err = rx.try_send(b"x", 0).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::BADF), "{err}");
    assert!(tx.try_send(b"x", 0).unwrap());
    assert_eq!(rx.try_recv(&mut buf).unwrap(), Some(0));
}

#[test]
fn posix_limits_over_the_system_maximum_are_refused_with_the_reason() {
    let name = name::unique_posix("test-mq-limits");
    let err = PosixMq::create(&name, &posix::Options::default().max_msgs(0)).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::INVAL), "{err}");
    assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
    let err = PosixMq::create(&name, &posix::Options::default().msg_size(usize::MAX)).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::INVAL), "{err}");
}

#[test]
fn posix_queues_belong_to_their_creator() {
    let name = name::unique_posix("test-mq-own");
    let q = PosixMq::create(&name, &small()).unwrap();
    assert_eq!(
        PosixMq::create(&name, &posix::Options::default())
            .unwrap_err()
            .errno(),
        Some(Errno::EXIST)
    );
    let opener = PosixMq::open(&name, Access::ReadOnly).unwrap();
    drop(opener); // an opener never removes
    assert!(PosixMq::open(&name, Access::ReadOnly).is_ok());
    drop(q);
    let err = PosixMq::open(&name, Access::ReadOnly).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT));
    let kept = PosixMq::create(&name, &small()).unwrap().persist();
    drop(kept);
    assert!(PosixMq::open(&name, Access::ReadOnly).is_ok());
    posix::remove(&name).unwrap();
    // Removed: the name is free again.
    let q = PosixMq::create(&name, &small()).unwrap();
    q.remove().unwrap();
    assert_eq!(
        PosixMq::open(&name, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT),
        "remove() removes at once"
    );
    let _kept = PosixMq::create(&name, &small()).unwrap().persist();
    PosixMq::open(&name, Access::ReadOnly)
        .unwrap()
        .remove()
        .unwrap();
    assert_eq!(
        posix::remove(&name).unwrap_err().errno(),
        Some(Errno::NOENT),
        "an opener's remove() removed it"
    );
    assert_eq!(
        PosixMq::open("no-slash", Access::ReadOnly)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn every_sysv_type_filter() {
    let q = sysv_queue();
    let mut child = common::child("child", "sysv-sender")
        .arg("ID", q.id())
        .start();
    let sender: ipckit::Pid = child.line().parse().unwrap();
    child.success();
    let st = q.stat().unwrap();
    assert_eq!(st.msgs, 5);
    assert_eq!(st.lspid, sender);
    assert!(st.stime.is_some() && st.rtime.is_none());
    assert_eq!(st.key, SysvKey::Private);
    assert_eq!((st.mode, st.cuid, st.cgid), (0o600, st.uid, st.gid));
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
    assert_eq!(q.stat().unwrap().lrpid, std::process::id());
    assert!(
        q.try_recv(&mut buf, TypeFilter::Exact(0), false).is_err(),
        "type 0 is not a type"
    );
}

#[test]
fn a_sysv_receive_buffer_too_small_errors_unless_truncation_is_asked_for() {
    let q = sysv_queue();
    q.send(b"twelve bytes", 1).unwrap();
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
    let q = sysv_queue();
    q.set_max_bytes(100).unwrap();
    assert_eq!(q.stat().unwrap().max_bytes, 100);
    assert!(q.try_send(&[0u8; 60], 1).unwrap());
    assert!(
        !q.try_send(&[0u8; 60], 1).unwrap(),
        "full: EAGAIN, not a wait"
    );
    assert!(
        !q.send_timeout(&[0u8; 60], 1, Duration::from_millis(50))
            .unwrap()
    );
    let past = std::time::Instant::now();
    assert!(!q.send_deadline(&[0u8; 60], 1, past).unwrap());
    let mut buf = [0u8; 64];
    let short = Duration::from_millis(50);
    assert!(
        q.recv_timeout(&mut buf, TypeFilter::Any, false, short)
            .unwrap()
            .is_some()
    );
    assert!(
        q.recv_timeout(&mut buf, TypeFilter::Any, false, short)
            .unwrap()
            .is_none()
    );
    assert!(
        q.recv_deadline(&mut buf, TypeFilter::Any, false, past)
            .unwrap()
            .is_none()
    );
    q.send(b"last", 2).unwrap();
    let m = q.recv(&mut buf, TypeFilter::Exact(2), false).unwrap();
    assert_eq!((m.mtype, &buf[..m.len]), (2, &b"last"[..]));
}

#[test]
fn a_sysv_handle_does_only_what_it_was_opened_for() {
    let q = sysv_queue();
    let tx = SysvMq::open_id(q.id(), Access::WriteOnly).unwrap();
    let rx = SysvMq::open_id(q.id(), Access::ReadOnly).unwrap();
    assert_eq!(q.access(), Access::ReadWrite);
    let mut buf = [0u8; 8];
    let err = tx.try_recv(&mut buf, TypeFilter::Any, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = rx.try_send(b"x", 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("ReadOnly"), "{err}");
    assert!(tx.try_send(b"x", 1).unwrap());
    assert!(
        rx.try_recv(&mut buf, TypeFilter::Any, false)
            .unwrap()
            .is_some()
    );
    let err = SysvMq::create(SysvKey::Private, &sysv::Options::default().mode(0o1600)).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "IPC_CREAT must not slip in"
    );
}

#[test]
fn a_sysv_queue_is_found_by_key_in_another_process_and_removed_by_its_creator() {
    let key = SysvKey::Key(0x1c_0000 | (std::process::id() as i32 & 0xffff));
    let q = SysvMq::create(key, &sysv::Options::default()).unwrap();
    assert_eq!(
        SysvMq::create(key, &sysv::Options::default())
            .unwrap_err()
            .errno(),
        Some(Errno::EXIST)
    );
    let mut child = common::child("child", "sysv-receiver")
        .arg("KEY", key)
        .start();
    q.send(b"by key", 9).unwrap();
    assert_eq!(child.line(), "by key");
    child.success();
    let id = q.id();
    drop(q);
    assert_eq!(
        SysvMq::open(key, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT)
    );
    assert!(SysvMq::open_id(id, Access::ReadOnly).is_err());
    let kept = SysvMq::create(key, &sysv::Options::default())
        .unwrap()
        .persist();
    drop(kept);
    let again = SysvMq::open(key, Access::ReadOnly).unwrap();
    again.remove().unwrap();
    assert_eq!(
        SysvMq::open(key, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT),
        "an opener's remove() removed it"
    );
}

#[test]
fn a_posix_queue_gets_exactly_the_mode_asked_for_whatever_the_umask() {
    let mut child = common::child("child", "umask-mode").start();
    assert_eq!(child.line(), "644");
    child.success();
    let opts = posix::Options::default().mode(0o4755);
    let err = PosixMq::create(&name::unique_posix("test-mq"), &opts).unwrap_err();
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
    let first = PosixMq::create(&name, &small()).unwrap();
    posix::remove(&name).unwrap();
    let second = PosixMq::create(&name, &small()).unwrap();
    drop(first);
    assert!(
        PosixMq::open(&name, Access::ReadOnly).is_ok(),
        "the first creator left the second queue alone"
    );
    let again = PosixMq::create(&name, &small()).unwrap_err();
    assert_eq!(again.errno(), Some(Errno::EXIST));
    let first = PosixMq::open(&name, Access::ReadOnly).unwrap();
    posix::remove(&name).unwrap();
    let third = PosixMq::create(&name, &small()).unwrap();
    let err = first.remove().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed, "{err}");
    assert!(PosixMq::open(&name, Access::ReadOnly).is_ok());
    drop((second, third));
    assert_eq!(
        PosixMq::open(&name, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT)
    );
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
    let name = name::unique_posix("test-mq-ooc");
    let made = PosixMq::open_or_create(&name, Access::WriteOnly, &small()).unwrap();
    assert_eq!(made.access(), Access::ReadWrite, "made: read-write");
    let joined = PosixMq::open_or_create(&name, Access::WriteOnly, &small()).unwrap();
    assert_eq!(joined.access(), Access::WriteOnly, "joined: as asked");
    assert!(joined.try_send(b"x", 0).unwrap());
    drop(joined);
    let e = PosixMq::open_or_create(&name, Access::WriteOnly, &small().mode(0o200)).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::PERM), "{e}");
    assert!(
        e.to_string().contains("0600") && e.to_string().contains("0200"),
        "{e}"
    );
    drop(made);
    assert_eq!(
        PosixMq::open(&name, Access::ReadOnly).unwrap_err().errno(),
        Some(Errno::NOENT),
        "the maker removes it"
    );

    let wide = PosixMq::create(&name, &small().mode(0o666)).unwrap();
    let e = PosixMq::open_or_create(&name, Access::WriteOnly, &small()).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("0666") && s.contains(&format!("ipckit rm mq:{name}")),
        "{s}"
    );
    let trusted = PosixMq::open_or_create(&name, Access::WriteOnly, &small().trust_existing(true));
    assert!(trusted.is_ok());
    if root() {
        rustix::fs::fchown(
            &wide,
            Some(rustix::process::Uid::from_raw(NOBODY)),
            Some(rustix::process::Gid::from_raw(NOBODY)),
        )
        .unwrap();
        let e =
            PosixMq::open_or_create(&name, Access::WriteOnly, &small().mode(0o666)).unwrap_err();
        assert!(e.to_string().contains("owned by nobody (uid 65534)"), "{e}");
        // Plain open still joins it.
        assert!(PosixMq::open(&name, Access::WriteOnly).is_ok());
    }
}

/// Sets a System V queue's owner (IPC_SET), as its creator may.
fn set_queue_owner(id: i32, uid: u32) {
    // SAFETY: msqid_ds is plain integers; IPC_STAT fills it, IPC_SET reads it.
    unsafe {
        let mut ds: libc::msqid_ds = std::mem::zeroed();
        assert_eq!(libc::msgctl(id, libc::IPC_STAT, &mut ds), 0);
        ds.msg_perm.uid = uid;
        assert_eq!(libc::msgctl(id, libc::IPC_SET, &mut ds), 0);
    }
}

/// A queue under a fresh key, with `mode`.
fn keyed_queue(mode: u32) -> (SysvKey, SysvMq) {
    let pid = std::process::id() as i32;
    for n in 0..1000 {
        let key = SysvKey::Key(0x1b00_0000 | ((pid & 0xfff) << 12) | n);
        match SysvMq::create(key, &sysv::Options::default().mode(mode)) {
            Ok(q) => return (key, q),
            Err(e) if e.errno() == Some(Errno::EXIST) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free System V key");
}

#[test]
fn sysv_open_or_create_makes_joins_and_refuses_what_is_not_this_users() {
    let (key, wide) = keyed_queue(0o666);
    let opts = sysv::Options::default();
    let e = SysvMq::open_or_create(key, Access::WriteOnly, &opts).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::PERM), "{e}");
    assert!(
        e.to_string().contains("0666") && e.to_string().contains("sysv-mq:"),
        "{e}"
    );
    let q = SysvMq::open_or_create(key, Access::WriteOnly, &opts.trust_existing(true)).unwrap();
    assert_eq!(q.id(), wide.id());
    let q = SysvMq::open_or_create(key, Access::WriteOnly, &opts.mode(0o666)).unwrap();
    assert_eq!(q.id(), wide.id());
    drop(q);
    if root() {
        set_queue_owner(wide.id(), NOBODY);
        let e = SysvMq::open_or_create(key, Access::WriteOnly, &opts.mode(0o666)).unwrap_err();
        assert!(e.to_string().contains("owned by nobody (uid 65534)"), "{e}");
    }
    wide.remove().unwrap();
    let made = SysvMq::open_or_create(key, Access::WriteOnly, &opts).unwrap();
    assert_eq!(made.stat().unwrap().mode, 0o600);
    let id = made.id();
    drop(made);
    assert!(
        SysvMq::open_id(id, Access::ReadOnly).is_err(),
        "the maker removes it"
    );
}
