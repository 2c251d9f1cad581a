//! Anonymous pipes across real processes: EOF, the forgotten write end, EPIPE, capacity,
//! PIPE_BUF atomicity, splice and vmsplice.

mod common;

use std::io::{IoSlice, Read, Seek, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::{T, say};
use ipckit::stream::pipe::{self, PIPE_BUF, PipeReader, PipeWriter};
use ipckit::transport::{TimedRead, TimedWrite};

/// Child roles. The pipe end a role uses is descriptor 10.
#[test]
fn child() {
    let Some(role) = common::role() else { return };
    // SAFETY: the parent put a pipe end at descriptor 10 for this child.
    let fd = unsafe { OwnedFd::from_raw_fd(10) };
    match role.as_str() {
        "write-and-exit" => PipeWriter::from_fd(fd).unwrap().write_all(b"data").unwrap(),
        "report-capacity" => say(PipeReader::from_fd(fd)
            .unwrap()
            .capacity()
            .unwrap()
            .to_string()),
        "records" => {
            let byte = common::arg("BYTE").as_bytes()[0];
            let n: usize = common::arg("N").parse().unwrap();
            let mut w = PipeWriter::from_fd(fd).unwrap();
            let rec = vec![byte; PIPE_BUF];
            for _ in 0..n {
                // One write(2) per record: exactly PIPE_BUF bytes, so the kernel keeps it whole.
                assert_eq!(w.write(&rec).unwrap(), PIPE_BUF);
            }
        }
        "close-read-end" => drop(fd),
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn eof_when_the_last_writer_closes() {
    let (mut r, w) = pipe::pipe().unwrap();
    let child = common::child("child", "write-and-exit")
        .fd(w.as_fd(), 10)
        .start();
    drop(w); // the parent's own write end: now only the child's keeps the pipe open
    child.success();
    assert_eq!(common::read_to_eof(&mut r), b"data");
}

#[test]
fn no_eof_while_a_forgotten_write_end_stays_open() {
    let (mut r, w) = pipe::pipe().unwrap();
    let child = common::child("child", "write-and-exit")
        .fd(w.as_fd(), 10)
        .start();
    child.success();
    let mut buf = [0u8; 16];
    assert_eq!(r.read_timeout(&mut buf, T).unwrap(), Some(4));
    // The child is gone, but this process still holds a write end: no EOF, only a timeout.
    assert_eq!(
        r.read_timeout(&mut buf, Duration::from_millis(300))
            .unwrap(),
        None
    );
    drop(w);
    assert_eq!(r.read_timeout(&mut buf, T).unwrap(), Some(0));
}

#[test]
fn epipe_when_the_reader_is_gone() {
    let (r, mut w) = pipe::pipe().unwrap();
    let child = common::child("child", "close-read-end")
        .fd(r.as_fd(), 10)
        .start();
    drop(r);
    child.success();
    // Rust ignores SIGPIPE, so the write fails with EPIPE instead of killing the process.
    // Another test forking at this moment holds a copy of every descriptor until its exec, so
    // a write may still succeed for that instant: retry, within T.
    let start = std::time::Instant::now();
    let err = loop {
        match w.write_all(b"x") {
            Err(e) => break e,
            Ok(()) => assert!(start.elapsed() < T, "no EPIPE within {T:?}"),
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn a_timed_write_to_a_pipe_nobody_reads_stops_with_the_count() {
    for nonblocking in [false, true] {
        let (r, mut w) = pipe::pipe().unwrap();
        w.set_nonblocking(nonblocking).unwrap();
        let data = vec![b'x'; 1 << 20];
        let n = w
            .write_all_timeout(&data, Duration::from_millis(100))
            .unwrap();
        // The pipe took its capacity, exactly what was reported; the rest was not written.
        assert_eq!(n, w.capacity().unwrap(), "non-blocking: {nonblocking}");
        assert_eq!(r.available().unwrap(), n, "non-blocking: {nonblocking}");
        assert_eq!(w.try_write(b"more").unwrap(), None);
    }
}

#[test]
fn capacity_is_changed_and_observed_by_the_other_process() {
    let (r, w) = pipe::pipe().unwrap();
    assert_eq!(w.capacity().unwrap(), 65536, "Linux default pipe capacity");
    let got = w.set_capacity(200_000).unwrap();
    assert_eq!(got, 262144, "rounded up to a power-of-two number of pages");
    let mut child = common::child("child", "report-capacity")
        .fd(r.as_fd(), 10)
        .start();
    assert_eq!(child.line(), "262144");
    child.success();
    // Fill it without blocking: exactly the capacity goes in.
    w.set_nonblocking(true).unwrap();
    let chunk = [7u8; PIPE_BUF];
    let mut total = 0;
    loop {
        match (&w).write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(total, 262144);
    assert_eq!(r.available().unwrap(), 262144);
}

#[test]
fn shrinking_below_the_data_held_is_refused_with_a_hint() {
    let (_r, mut w) = pipe::pipe().unwrap();
    w.write_all(&[0u8; 8192]).unwrap();
    let err = w.set_capacity(4096).unwrap_err();
    assert_eq!(err.errno(), Some(ipckit::Errno::BUSY));
    assert!(err.to_string().contains("drain it first"), "{err}");
}

#[test]
fn writes_of_pipe_buf_bytes_from_two_writers_never_interleave() {
    const N: usize = 2000;
    let (mut r, w) = pipe::pipe().unwrap();
    let a = common::child("child", "records")
        .arg("BYTE", "a")
        .arg("N", N)
        .fd(w.as_fd(), 10)
        .start();
    let b = common::child("child", "records")
        .arg("BYTE", "b")
        .arg("N", N)
        .fd(w.as_fd(), 10)
        .start();
    drop(w);
    let all = common::read_to_eof(&mut r);
    a.success();
    b.success();
    assert_eq!(all.len(), 2 * N * PIPE_BUF);
    let (mut na, mut nb) = (0, 0);
    for (i, rec) in all.chunks(PIPE_BUF).enumerate() {
        let first = rec[0];
        assert!(
            rec.iter().all(|&x| x == first),
            "record {i} interleaves two writers"
        );
        match first {
            b'a' => na += 1,
            b'b' => nb += 1,
            x => panic!("record {i} holds unexpected byte {x}"),
        }
    }
    assert_eq!((na, nb), (N, N));
}

#[test]
fn splice_moves_file_bytes_through_a_pipe() {
    let mut src = tempfile::tempfile().unwrap();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    src.write_all(&data).unwrap();
    src.rewind().unwrap();
    let mut dst = tempfile::tempfile().unwrap();
    let (r, w) = pipe::pipe().unwrap();
    let mut moved = 0;
    while moved < data.len() {
        let n = w.splice_from(&src, data.len() - moved).unwrap();
        assert!(n > 0);
        let mut out = 0;
        while out < n {
            out += r.splice_to(&dst, n - out).unwrap();
        }
        moved += n;
    }
    dst.rewind().unwrap();
    let mut back = Vec::new();
    dst.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn vmsplice_hands_pages_not_copies_to_the_pipe() {
    let (mut r, w) = pipe::pipe().unwrap();
    let mut page = vec![b'A'; 4096];
    // SAFETY: `page` is changed below on purpose, to show the reader sees the pages (this is
    // the contract's reason); it is not freed until the reader has read it.
    let n = unsafe { w.vmsplice(&[IoSlice::new(&page)]) }.unwrap();
    assert_eq!(n, 4096);
    page.fill(b'B');
    drop(w);
    let got = common::read_to_eof(&mut r);
    assert_eq!(got.len(), 4096);
    assert!(
        got.iter().all(|&b| b == b'B'),
        "vmsplice maps the caller's pages: the reader sees the later contents"
    );
    drop(page);
}

#[test]
fn from_fd_refuses_the_wrong_descriptor() {
    let (r, w) = ipckit::stream::pipe::pipe().unwrap();
    // Each end as the other: the access mode tells them apart.
    let err = PipeWriter::from_fd(r.into_fd()).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("read end"), "{err}");
    let err = PipeReader::from_fd(w.into_fd()).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    // A file is no pipe; a real end is taken.
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let err = PipeReader::from_fd(OwnedFd::from(file)).unwrap_err();
    assert_eq!(err.kind(), ipckit::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("regular file"), "{err}");
    let (r, _w) = ipckit::stream::pipe::pipe().unwrap();
    assert!(PipeReader::from_fd(r.into_fd()).is_ok());
}
