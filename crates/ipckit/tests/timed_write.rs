//! Timed writes across real processes: a reader in another process that opens its end and
//! never reads cannot hold a writer past its deadline, and the writer knows how much went.

mod common;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::{T, say};
use ipckit::socket::unix::{BindOptions, UnixAddr, UnixListener, UnixStream};
use ipckit::stream::fifo::{self, Fifo};
use ipckit::stream::pipe::PipeReader;
use ipckit::transport::TimedWrite;

const SHORT: Duration = Duration::from_millis(200);

/// Child roles: a reader that takes its end and reads nothing until told to drain.
#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        // Opens the FIFO at PATH for reading, says "open", then on "drain" reads it to the
        // end and says how many bytes came.
        "fifo-reader" => {
            let mut r = fifo::try_open_read(common::arg("PATH")).unwrap();
            r.set_nonblocking(false).unwrap();
            say("open");
            assert_eq!(common::hear(), "drain");
            say(common::read_to_eof(&mut r).len().to_string());
        }
        // Connects to the listener at PATH, says "connected", reads nothing until "drain",
        // then reads to the end and says how many bytes came.
        "socket-reader" => {
            let mut s = UnixStream::connect(&UnixAddr::path(common::arg("PATH"))).unwrap();
            say("connected");
            assert_eq!(common::hear(), "drain");
            say(common::read_to_eof(&mut s).len().to_string());
        }
        // The pipe read end at descriptor 10: says "ready", reads nothing until "drain".
        "pipe-reader" => {
            // SAFETY: the parent put the read end at descriptor 10 for this child.
            let mut r = PipeReader::from_fd(unsafe { OwnedFd::from_raw_fd(10) }).unwrap();
            say("ready");
            assert_eq!(common::hear(), "drain");
            say(common::read_to_eof(&mut r).len().to_string());
        }
        other => panic!("unknown role {other}"),
    }
}

/// Writes 8 MiB with a short deadline to a reader that reads nothing: a short count, then the
/// reader (told to drain) finds exactly that many bytes once the writer closes.
fn stops_and_counts(mut child: common::Child, mut w: impl TimedWrite) {
    let data = vec![b'x'; 8 << 20];
    let n = w.write_all_timeout(&data, SHORT).unwrap();
    assert!(n > 0 && n < data.len(), "wrote {n} of {}", data.len());
    assert_eq!(
        w.write_timeout(&data[n..], SHORT).unwrap(),
        None,
        "still full"
    );
    drop(w);
    child.tell("drain");
    assert_eq!(
        child.line(),
        n.to_string(),
        "the reader got what was reported"
    );
    child.success();
}

#[test]
fn a_fifo_whose_reader_never_reads_does_not_hold_the_writer() {
    let dir = common::tempdir();
    let path = dir.path().join("f");
    let _node = Fifo::create(&path, &fifo::Options::default()).unwrap();
    let mut child = common::child("child", "fifo-reader")
        .arg("PATH", path.display())
        .start();
    let w = fifo::open_write_timeout(&path, T).unwrap();
    assert_eq!(child.line(), "open");
    stops_and_counts(child, w);
}

#[test]
fn a_pipe_whose_reader_never_reads_does_not_hold_the_writer() {
    let (r, w) = ipckit::stream::pipe::pipe().unwrap();
    let mut child = common::child("child", "pipe-reader")
        .fd(r.as_fd(), 10)
        .start();
    drop(r);
    assert_eq!(child.line(), "ready");
    stops_and_counts(child, w);
}

#[test]
fn a_socket_peer_that_never_reads_does_not_hold_the_writer() {
    let dir = common::tempdir();
    let path = dir.path().join("s.sock");
    let l = UnixListener::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    let mut child = common::child("child", "socket-reader")
        .arg("PATH", path.display())
        .start();
    let s = l.accept_timeout(T).unwrap().expect("the child connects");
    assert_eq!(child.line(), "connected");
    stops_and_counts(child, s);
}

#[test]
fn a_timed_write_after_the_reader_is_gone_is_epipe_at_once() {
    let (r, mut w) = ipckit::stream::pipe::pipe().unwrap();
    drop(r);
    // Another test forking at this moment may hold a copy of the read end until its exec:
    // retry, within T, until the write sees the reader gone.
    let start = std::time::Instant::now();
    let err = loop {
        match w.write_all_timeout(b"x", T) {
            Err(e) => break e,
            Ok(_) => assert!(start.elapsed() < T, "no EPIPE within {T:?}"),
        }
    };
    assert_eq!(err.errno(), Some(ipckit::Errno::PIPE), "{err}");
    assert!(err.to_string().contains("reader closed its end"), "{err}");
}
