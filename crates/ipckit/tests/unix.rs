//! Unix domain sockets across real processes: message boundaries by socket type, stale socket
//! take-over versus refusal while a listener lives, modes, abstract names.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use common::{T, hear, say};
use ipckit::socket::unix::{
    BindOptions, SeqpacketListener, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket, UnixStream,
};
use ipckit::{Errno, ErrorKind};

const MSG: usize = 100;

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    if role == "abstract-peer" {
        return abstract_peer();
    }
    let addr = UnixAddr::path(common::arg("PATH"));
    let three = [[b'1'; MSG], [b'2'; MSG], [b'3'; MSG]];
    match role.as_str() {
        "stream-sender" => {
            let mut s = UnixStream::connect(&addr).unwrap();
            for m in &three {
                s.write_all(m).unwrap();
            }
        }
        "seqpacket-sender" => {
            let s = UnixSeqpacket::connect(&addr).unwrap();
            for m in &three {
                s.send(m).unwrap();
            }
        }
        "dgram-sender" => {
            let s = UnixDatagram::unbound().unwrap();
            for m in &three {
                s.send_to(m, &addr).unwrap();
            }
        }
        "listener" => {
            let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
            say("ready");
            // Serve one connection if the parent makes one, then wait to be told to stop.
            if hear() == "accept" {
                // The parent's refused bind probed with a connect, which this listener sees
                // as a connection already closed: skip it.
                loop {
                    let mut c = l.accept_timeout(T).unwrap().expect("a connection");
                    if c.write_all(b"served").is_ok() {
                        break;
                    }
                }
                hear();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// Waits for the sender to finish, so every message is queued before the single read.
fn one_read_after(child: common::Child, read: impl FnOnce(&mut [u8]) -> usize) -> usize {
    child.success();
    let mut buf = [0u8; 1000];
    read(&mut buf)
}

#[test]
fn a_stream_socket_does_not_keep_message_boundaries() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("s"));
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let child = common::child("child", "stream-sender")
        .arg("PATH", addr.to_string())
        .start();
    let mut conn = l.accept_timeout(T).unwrap().unwrap();
    let n = one_read_after(child, |b| conn.read(b).unwrap());
    assert_eq!(n, 3 * MSG, "three writes arrive as one run of bytes");
}

#[test]
fn a_seqpacket_socket_keeps_message_boundaries() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("q"));
    let l = SeqpacketListener::bind(&addr, &BindOptions::default()).unwrap();
    let child = common::child("child", "seqpacket-sender")
        .arg("PATH", addr.to_string())
        .start();
    let conn = l.accept_timeout(T).unwrap().unwrap();
    let n = one_read_after(child, |b| conn.recv(b).unwrap());
    assert_eq!(n, MSG, "one receive is one send");
    let mut buf = [0u8; 1000];
    assert_eq!(conn.recv(&mut buf).unwrap(), MSG);
    assert_eq!(&buf[..MSG], &[b'2'; MSG]);
    assert_eq!(conn.recv(&mut buf).unwrap(), MSG);
    assert_eq!(
        conn.recv(&mut buf).unwrap(),
        0,
        "end of stream after the sender exited"
    );
}

#[test]
fn a_datagram_socket_keeps_message_boundaries() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("d"));
    let sock = UnixDatagram::bind(&addr, &BindOptions::default()).unwrap();
    let child = common::child("child", "dgram-sender")
        .arg("PATH", addr.to_string())
        .start();
    let n = one_read_after(child, |b| sock.recv(b).unwrap());
    assert_eq!(n, MSG);
}

#[test]
fn a_datagram_larger_than_the_buffer_is_a_truncation_error() {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.send(&[1u8; 500]).unwrap();
    let err = b.recv(&mut [0u8; 100]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert!(err.to_string().contains("500-byte message"), "{err}");
}

#[test]
fn a_stale_socket_file_is_taken_over() {
    let dir = common::tempdir();
    let path = dir.path().join("stale");
    let addr = UnixAddr::path(&path);
    let mut child = common::child("child", "listener")
        .arg("PATH", path.display())
        .start();
    assert_eq!(child.line(), "ready");
    child.kill(); // SIGKILL: no destructor runs, the socket file stays behind
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket()
    );
    assert_eq!(
        UnixStream::connect(&addr).unwrap_err().errno(),
        Some(Errno::CONNREFUSED)
    );
    // Not with take-over off:
    let opts = BindOptions::default().take_over_stale(false);
    let err = UnixListener::bind(&addr, &opts).unwrap_err();
    assert!(err.to_string().contains("stale socket file"), "{err}");
    // By default the refused connect proves no listener, so the file is replaced.
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let _c = UnixStream::connect(&addr).unwrap();
    assert!(l.accept_timeout(T).unwrap().is_some());
}

#[test]
fn a_live_listener_is_refused_and_keeps_working() {
    let dir = common::tempdir();
    let path = dir.path().join("live");
    let addr = UnixAddr::path(&path);
    let mut child = common::child("child", "listener")
        .arg("PATH", path.display())
        .start();
    assert_eq!(child.line(), "ready");
    let err = UnixListener::bind(&addr, &BindOptions::default()).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ADDRINUSE));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("process {}", child.pid())) && msg.contains("is listening there"),
        "{msg}"
    );
    // The live listener still has its file and still serves.
    child.tell("accept");
    let mut c = UnixStream::connect(&addr).unwrap();
    let mut buf = [0u8; 6];
    common::read_exact_within(&mut c, &mut buf);
    assert_eq!(&buf, b"served");
    child.tell("stop");
    child.success();
    assert!(
        !path.exists(),
        "the child's listener removed its file on exit"
    );
}

#[test]
fn a_file_that_is_not_a_socket_is_never_removed() {
    let dir = common::tempdir();
    let path = dir.path().join("plain");
    std::fs::write(&path, b"keep me").unwrap();
    let err = UnixListener::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn socket_files_get_the_mode_asked_for_and_go_with_their_owner() {
    let dir = common::tempdir();
    let path = dir.path().join("m");
    let l = UnixListener::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "safe by default"
    );
    drop(l);
    assert!(!path.exists());
    let opts = BindOptions::default().mode(0o660);
    let l = UnixListener::bind(&UnixAddr::path(&path), &opts).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    let l = l.persist();
    drop(l);
    assert!(path.exists(), "persist keeps the file");
    // The next bind takes the stale file over; remove() then removes it at once.
    let l = UnixListener::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    l.remove().unwrap();
    assert!(!path.exists(), "remove removes the file now");
    // A mode with bits outside the permission bits is refused, and nothing is made.
    let err = UnixListener::bind(&UnixAddr::path(&path), &BindOptions::default().mode(0o4700))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!path.exists());
    let d = UnixDatagram::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    d.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn abstract_names_have_no_file_and_are_exclusive() {
    let name = ipckit::name::unique("abstract-test");
    let addr = UnixAddr::abstract_name(name.as_bytes());
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let err = UnixListener::bind(&addr, &BindOptions::default()).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ADDRINUSE));
    assert!(err.to_string().contains("never stale"), "{err}");
    let mut c = UnixStream::connect(&addr).unwrap();
    let mut s = l.accept_timeout(T).unwrap().unwrap();
    c.write_all(b"ab").unwrap();
    let mut b = [0u8; 2];
    common::read_exact_within(&mut s, &mut b);
    assert_eq!(&b, b"ab");
    drop(l);
    assert_eq!(
        UnixStream::connect(&addr).unwrap_err().errno(),
        Some(Errno::CONNREFUSED),
        "gone with its socket"
    );
}

#[test]
fn bad_addresses_are_clear_errors() {
    let long = format!("/tmp/{}", "x".repeat(150));
    let err = UnixListener::bind(&UnixAddr::path(long), &BindOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = UnixStream::connect(&UnixAddr::path("/nonexistent/ipckit.sock")).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT));
    assert!(
        err.to_string().contains("start the listener first"),
        "{err}"
    );
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("typed"));
    let _l = SeqpacketListener::bind(&addr, &BindOptions::default()).unwrap();
    let err = UnixStream::connect(&addr).unwrap_err();
    assert!(err.to_string().contains("another socket type"), "{err}");
}

#[test]
fn accept_timeout_returns_none_when_nobody_connects() {
    let l = UnixListener::bind(
        &UnixAddr::abstract_name(ipckit::name::unique("idle").as_bytes()),
        &BindOptions::default(),
    )
    .unwrap();
    assert!(
        l.accept_timeout(Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_full_backlog_times_out_connects_and_is_still_seen_as_live() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("full"));
    let opts = BindOptions::default().backlog(0);
    let _l = UnixListener::bind(&addr, &opts).unwrap();
    // Nobody accepts: connect until the backlog is full and a timed connect gives up.
    let mut held = Vec::new();
    let err = loop {
        match UnixStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(c) => held.push(c),
            Err(e) => break e,
        }
        assert!(held.len() < 1000, "the backlog never filled");
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("backlog stayed full"), "{err}");
    // A bind over it probes without blocking and refuses: the listener is alive.
    let err = UnixListener::bind(&addr, &BindOptions::default()).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ADDRINUSE), "{err}");
    assert!(err.to_string().contains("live socket"), "{err}");
}

#[test]
fn a_bound_socket_that_does_not_listen_yet_is_not_taken_over() {
    let dir = common::tempdir();
    let path = dir.path().join("starting");
    // Bound, not listening: a connect is refused, exactly as for a stale file.
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::bind(
        &fd,
        &rustix::net::SocketAddrUnix::new(path.as_path()).unwrap(),
    )
    .unwrap();
    let addr = UnixAddr::path(&path);
    assert_eq!(
        UnixStream::connect(&addr).unwrap_err().errno(),
        Some(Errno::CONNREFUSED)
    );
    let err = UnixListener::bind(&addr, &BindOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("may be bound there, not listening yet"),
        "{err}"
    );
    assert!(path.exists(), "its file stays");
    drop(fd);
    // Now nothing is bound to it: stale, and taken over.
    let _l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let _c = UnixStream::connect(&addr).unwrap();
}

#[test]
fn a_datagram_send_to_a_full_receiver_times_out() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("full-dgram"));
    let _rx = UnixDatagram::bind(&addr, &BindOptions::default()).unwrap();
    let tx = UnixDatagram::unbound().unwrap();
    let msg = [0u8; 1024];
    let mut sent = 0;
    while tx
        .send_to_timeout(&msg, &addr, Duration::from_millis(50))
        .unwrap()
    {
        sent += 1;
        assert!(sent < 100_000, "the receiver's queue never filled");
    }
    assert!(sent > 0);
}

#[test]
fn try_and_timed_forms_report_nothing_as_none_or_false() {
    let addr = UnixAddr::abstract_name(ipckit::name::unique("forms").as_bytes());
    let l = SeqpacketListener::bind(&addr, &BindOptions::default()).unwrap();
    assert!(l.try_accept().unwrap().is_none());
    let client = UnixSeqpacket::connect_deadline(&addr, ipckit::Deadline::after(T)).unwrap();
    let server = l
        .accept_deadline(ipckit::Deadline::after(T))
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(server.try_recv(&mut buf).unwrap(), None);
    assert_eq!(
        server
            .recv_timeout(&mut buf, Duration::from_millis(20))
            .unwrap(),
        None
    );
    assert!(client.try_send(b"abc").unwrap());
    assert_eq!(server.recv_timeout(&mut buf, T).unwrap(), Some(3));
    // A packet larger than the buffer: Truncated, with the count of what arrived.
    assert!(client.send_timeout(&[7u8; 20], T).unwrap());
    let err = server.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert_eq!(err.received(), Some(8));

    let (a, b) = UnixDatagram::pair().unwrap();
    assert_eq!(b.try_recv_from(&mut buf).unwrap(), None);
    // Fill the peer's queue: a try_send then reports false, and nothing is lost.
    let mut sent = 0;
    while a.try_send(b"x").unwrap() {
        sent += 1;
    }
    assert!(sent > 0);
    assert!(!a.send_timeout(b"x", Duration::from_millis(20)).unwrap());
    assert_eq!(
        b.recv_deadline(&mut buf, ipckit::Deadline::now()).unwrap(),
        Some(1)
    );
}

#[test]
fn from_fd_refuses_another_socket_type_or_file() {
    use std::os::fd::OwnedFd;
    let (a, _b) = UnixDatagram::pair().unwrap();
    let err = UnixStream::from_fd(a.into_fd()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Unix datagram socket"), "{err}");
    let (s, _t) = UnixStream::pair().unwrap();
    let err = UnixSeqpacket::from_fd(s.into_fd()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = UnixStream::from_fd(OwnedFd::from(tcp)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("IPv4 stream socket"), "{err}");
    let (r, _w) = ipckit::stream::pipe::pipe().unwrap();
    let err = UnixDatagram::from_fd(r.into_fd()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let (p, _q) = UnixSeqpacket::pair().unwrap();
    assert!(UnixSeqpacket::from_fd(p.into_fd()).is_ok());
    // A listening Unix stream socket is the right family and type, but carries no data.
    let listener = ipckit::socket::unix::UnixListener::bind(
        &ipckit::socket::unix::UnixAddr::abstract_name(
            ipckit::name::unique("from-fd-listener").as_bytes(),
        ),
        &ipckit::socket::unix::BindOptions::default(),
    )
    .unwrap();
    let listener = std::os::fd::AsFd::as_fd(&listener)
        .try_clone_to_owned()
        .unwrap();
    let err = UnixStream::from_fd(listener).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("listening socket"), "{err}");
}

/// `nobody`: the other user of the abstract-name tests.
const NOBODY: u32 = 65534;

/// Child side: connects to the abstract name NAME, says "connected", writes, and says whether
/// the listener then closed the connection ("closed") or read it ("read").
fn abstract_peer() {
    use ipckit::transport::TimedRead;
    let addr = UnixAddr::abstract_name(common::arg("NAME").into_bytes());
    let mut s = UnixStream::connect(&addr).unwrap();
    say("connected");
    let _ = s.write_all(b"from the peer");
    let mut buf = [0u8; 16];
    match s.read_timeout(&mut buf, T) {
        Ok(Some(0)) | Err(_) => say("closed"),
        Ok(Some(_)) => say("read"),
        Ok(None) => say("still open"),
    }
}

/// Starts [`abstract_peer`] as nobody against `name`.
fn peer_as_nobody(name: &str) -> common::Child {
    use std::os::unix::process::CommandExt;
    let mut spawn = common::child("child", "abstract-peer").arg("NAME", name);
    spawn.command().uid(NOBODY).gid(NOBODY);
    spawn.start()
}

#[test]
fn an_abstract_listener_holds_its_peers_to_its_mode() {
    if !rustix::process::geteuid().is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("SKIPPED: needs root");
        return;
    }
    // 0600, the default: this user only. The kernel checks nothing on an abstract name.
    let name = ipckit::name::unique("abstract-mode");
    let addr = UnixAddr::abstract_name(name.as_bytes());
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let mut peer = peer_as_nobody(&name);
    assert_eq!(peer.line(), "connected");
    // Its connection is waiting: accept takes it, refuses it, and finds nothing else.
    assert!(
        l.try_accept().unwrap().is_none(),
        "another user's peer is never returned"
    );
    assert_eq!(peer.line(), "closed", "the refused peer is closed, unread");
    peer.success();
    let refused = l.take_refused();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].uid, NOBODY);
    assert!(l.take_refused().is_empty(), "taken once");
    // This user still gets in.
    let _me = UnixStream::connect(&addr).unwrap();
    assert!(l.accept_timeout(T).unwrap().is_some());

    // 0606: others may connect, and nobody is one of them.
    let name = ipckit::name::unique("abstract-mode");
    let addr = UnixAddr::abstract_name(name.as_bytes());
    let l = UnixListener::bind(&addr, &BindOptions::default().mode(0o606)).unwrap();
    let mut peer = peer_as_nobody(&name);
    assert_eq!(peer.line(), "connected");
    let mut conn = l.accept_timeout(T).unwrap().expect("an allowed peer");
    assert_eq!(conn.peer_cred().unwrap().uid, NOBODY);
    let mut buf = [0u8; 13];
    common::read_exact_within(&mut conn, &mut buf);
    assert_eq!(&buf, b"from the peer");
    drop(conn);
    assert_eq!(peer.line(), "closed");
    peer.success();
    assert!(l.take_refused().is_empty());
}
