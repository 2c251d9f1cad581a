//! Ancillary data across real processes: an open file and a pipe end passed to another process
//! and used there; truncated control data leaks no descriptor; credentials match the peer.

mod common;

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;

use common::{T, say};
use ipckit::ErrorKind;
use ipckit::socket::ancillary::{self, Credentials};
use ipckit::socket::unix::{
    BindOptions, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket, UnixStream,
};
use ipckit::stream::pipe::{self, PipeWriter};

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    let addr = UnixAddr::path(common::arg("PATH"));
    match role.as_str() {
        "use-passed-fds" => {
            let s = UnixStream::connect(&addr).unwrap();
            let mut buf = [0u8; 1];
            let got = ancillary::recv(&s, &mut buf, 2).unwrap();
            assert_eq!(got.fds.len(), 2);
            let mut fds = got.fds.into_iter();
            let mut file = std::fs::File::from(fds.next().unwrap());
            let mut pipe_w = PipeWriter::from_fd(fds.next().unwrap()).unwrap();
            file.write_all(b"written by the child").unwrap();
            pipe_w.write_all(b"hello through a passed pipe").unwrap();
        }
        "receive-one" => {
            let s = UnixStream::connect(&addr).unwrap();
            assert!(ipckit::poll::readable_timeout(&s, T).unwrap());
            // Alone in this process, so the descriptor count is exact.
            let before = common::open_fds();
            let err = ancillary::recv(&s, &mut [0u8; 1], 1).unwrap_err();
            let after = common::open_fds();
            say(format!("{before} {after} {:?}", err.kind()));
        }
        "report-peer" => {
            let s = UnixStream::connect(&addr).unwrap();
            let c = s.peer_cred().unwrap();
            say(format!("{} {}", c.pid, c.uid));
        }
        "dgram-with-credentials" => {
            let s = UnixDatagram::unbound().unwrap();
            s.send_to(b"who am i", &addr).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn an_open_file_and_a_pipe_end_are_used_by_another_process() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("s"));
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let child = common::child("child", "use-passed-fds")
        .arg("PATH", addr.to_string())
        .start();
    let conn = l.accept_timeout(T).unwrap().unwrap();
    let mut file = tempfile::tempfile().unwrap();
    let (mut r, w) = pipe::pipe().unwrap();
    ancillary::send_fds(&conn, b"x", &[file.as_fd(), w.as_fd()]).unwrap();
    drop(w); // only the child's copy is left: EOF comes when the child is done
    let got = common::read_to_eof(&mut r);
    assert_eq!(got, b"hello through a passed pipe");
    child.success();
    file.rewind().unwrap();
    let mut s = String::new();
    file.read_to_string(&mut s).unwrap();
    assert_eq!(
        s, "written by the child",
        "the child wrote through the same open file"
    );
}

/// Sends `count` descriptors to a child that makes room for one; asserts the receive failed
/// as a truncation and left the child's descriptor count as it was.
fn child_gets_more_descriptors_than_it_asked_for(count: usize) {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("s"));
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let mut child = common::child("child", "receive-one")
        .arg("PATH", addr.to_string())
        .start();
    let conn = l.accept_timeout(T).unwrap().unwrap();
    let (r, _w) = pipe::pipe().unwrap();
    ancillary::send_fds(&conn, b"x", &vec![r.as_fd(); count]).unwrap();
    let report = child.line();
    let parts: Vec<&str> = report.split(' ').collect();
    assert_eq!(parts[2], "Truncated", "{count} descriptors: {report}");
    assert_eq!(
        parts[0], parts[1],
        "descriptor count before and after must match: {report}"
    );
    child.success();
}

#[test]
fn truncated_control_data_leaks_no_descriptor() {
    // Twenty against room for one: more than the control buffer holds even with its
    // alignment slack, so the kernel sets MSG_CTRUNC.
    child_gets_more_descriptors_than_it_asked_for(20);
}

#[test]
fn peer_credentials_match_the_peer_process() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("s"));
    let l = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
    let mut child = common::child("child", "report-peer")
        .arg("PATH", addr.to_string())
        .start();
    let conn = l.accept_timeout(T).unwrap().unwrap();
    let c = conn.peer_cred().unwrap();
    let me = Credentials::current();
    assert_eq!(
        c.pid,
        child.pid() as ipckit::Pid,
        "SO_PEERCRED names the connecting process"
    );
    assert_eq!((c.uid, c.gid), (me.uid, me.gid));
    // And the child sees this process.
    assert_eq!(child.line(), format!("{} {}", me.pid, me.uid));
    child.success();
}

#[test]
fn scm_credentials_arrive_with_each_datagram() {
    let dir = common::tempdir();
    let addr = UnixAddr::path(dir.path().join("d"));
    let sock = UnixDatagram::bind(&addr, &BindOptions::default()).unwrap();
    ancillary::set_pass_credentials(&sock, true).unwrap();
    let child = common::child("child", "dgram-with-credentials")
        .arg("PATH", addr.to_string())
        .start();
    let pid = child.pid() as ipckit::Pid;
    child.success();
    let mut buf = [0u8; 64];
    let got = ancillary::recv(&sock, &mut buf, 0).unwrap();
    assert_eq!(&buf[..got.bytes], b"who am i");
    let c = got.credentials.expect("SO_PASSCRED attaches credentials");
    assert_eq!(c.pid, pid);
    assert_eq!(c.uid, Credentials::current().uid);
}

#[test]
fn explicit_credentials_and_too_many_fds() {
    let (a, b) = UnixStream::pair().unwrap();
    ancillary::set_pass_credentials(&b, true).unwrap();
    ancillary::send_credentials(&a, b"c").unwrap();
    let got = ancillary::recv(&b, &mut [0u8; 4], 0).unwrap();
    assert_eq!(got.credentials, Some(Credentials::current()));
    let (r, _w) = pipe::pipe().unwrap();
    // No data byte: a stream socket would drop the descriptors without a word.
    let err = ancillary::send_fds(&a, b"", &[r.as_fd()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let many = vec![r.as_fd(); 300];
    let err = ancillary::send_fds(&a, b"x", &many).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn more_descriptors_than_asked_for_are_closed_too() {
    // Three fit in the control buffer's alignment slack (no MSG_CTRUNC), but only one was
    // asked for.
    child_gets_more_descriptors_than_it_asked_for(3);
}

#[test]
fn timed_receive_reports_nothing_and_truncation_keeps_the_count() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut buf = [0u8; 4];
    assert!(ancillary::try_recv(&b, &mut buf, 1).unwrap().is_none());
    assert!(
        ancillary::recv_timeout(&b, &mut buf, 1, std::time::Duration::from_millis(20))
            .unwrap()
            .is_none()
    );
    let (r, _w) = pipe::pipe().unwrap();
    ancillary::send_fds(&a, b"xy", &[r.as_fd(), r.as_fd()]).unwrap();
    // No room asked for, two sent: Truncated (both closed), the two data bytes counted.
    let err = ancillary::recv_deadline(&b, &mut buf, 0, ipckit::Deadline::after(T)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert_eq!(err.received(), Some(2));
    let (c, d) = UnixSeqpacket::pair().unwrap();
    c.send(b"longer than four").unwrap();
    let err = ancillary::recv_timeout(&d, &mut buf, 0, T).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert_eq!(err.received(), Some(4));
}
