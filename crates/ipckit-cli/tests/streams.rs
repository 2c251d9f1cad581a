//! `ipckit send` and `recv` against peers that misbehave: a reader that never reads (the
//! --timeout bounds the writes too), standard input that never ends (--lines streams, whole
//! stdin is bounded), an over-long line (recv says it split it), and every signal that would
//! end the process (recv and listen stop cleanly and remove what they made).

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;

use common::{Proc, RemoveMq, RemoveShm, T, ipckit, tempdir};
use ipckit::notify::signal;

/// Asserts `send` gave up on a peer that reads nothing: exit 1, one line that says it timed
/// out and how many bytes went.
fn assert_timed_out_with_count(send: &mut Proc, what: &str) {
    let st = send.wait();
    let err = Proc::rest(&send.err);
    assert_eq!(st.code(), Some(1), "{what}: {err:?}");
    let last = err.last().unwrap();
    assert!(last.contains("timed out after 1s"), "{what}: {last}");
    assert!(
        last.contains("bytes sent") || last.contains("messages sent"),
        "{what}: says how much went: {last}"
    );
}

#[test]
fn send_timeout_bounds_the_writes_to_a_socket_peer_that_never_reads() {
    use ipckit::socket::unix::{BindOptions, UnixAddr, UnixListener};
    let dir = tempdir();
    let path = dir.path().join("s.sock");
    let l = UnixListener::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    let uri = format!("unix:{}", path.display());
    let mut send = Proc::run(&["send", "--timeout", "1s", &uri]);
    let _conn = l.accept_timeout(T).unwrap().expect("send connects");
    // Far more than the socket buffers hold; the peer never reads any of it.
    let _feeder = send.feed(vec![b'x'; 16 << 20]);
    assert_timed_out_with_count(&mut send, "unix stream");
}

#[test]
fn send_timeout_bounds_the_writes_to_a_fifo_reader_that_never_reads() {
    use ipckit::stream::fifo::{self, Fifo};
    let dir = tempdir();
    let path = dir.path().join("f");
    let _node = Fifo::create(&path, &fifo::Options::default()).unwrap();
    // Open for reading, never read.
    let _reader = fifo::try_open_read(&path).unwrap();
    let mut send = Proc::run(&[
        "send",
        "--timeout",
        "1s",
        &format!("fifo:{}", path.display()),
    ]);
    let _feeder = send.feed(vec![b'x'; 16 << 20]);
    assert_timed_out_with_count(&mut send, "fifo");
}

#[test]
fn send_timeout_bounds_the_sends_to_a_seqpacket_peer_that_never_reads() {
    use ipckit::socket::unix::{BindOptions, SeqpacketListener, UnixAddr};
    let dir = tempdir();
    let path = dir.path().join("q.sock");
    let l = SeqpacketListener::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    let uri = format!("unix-seqpacket:{}", path.display());
    let mut send = Proc::run(&["send", "--timeout", "1s", "--lines", &uri]);
    let _conn = l.accept_timeout(T).unwrap().expect("send connects");
    // Many more packets than the peer's queue holds.
    let _feeder = send.feed(b"a packet\n".repeat(1 << 20));
    assert_timed_out_with_count(&mut send, "seqpacket");
}

#[test]
fn send_lines_sends_each_line_as_it_arrives() {
    use ipckit::socket::unix::{BindOptions, UnixAddr, UnixDatagram};
    let dir = tempdir();
    let path = dir.path().join("d.sock");
    let rx = UnixDatagram::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    let mut send = Proc::run(&["send", "--lines", &format!("unix-dgram:{}", path.display())]);
    let mut buf = [0u8; 64];
    for line in ["first", "second"] {
        // Each line is received while standard input is still open, before the next one.
        send.write_stdin(format!("{line}\n").as_bytes());
        let n = rx.recv_timeout(&mut buf, T).unwrap();
        assert_eq!(n.map(|n| &buf[..n]), Some(line.as_bytes()), "{line}");
    }
    send.close_stdin();
    assert!(send.wait().success(), "{:?}", Proc::rest(&send.err));
}

#[test]
fn send_lines_to_a_queue_sends_each_line_as_it_arrives() {
    use ipckit::mq::posix::{self, PosixMq};
    let name = ipckit::name::unique_posix("cli-lines");
    let q = PosixMq::create(&name, &posix::Options::default()).unwrap();
    let _cleanup = RemoveMq(name.clone());
    let mut send = Proc::run(&["send", "--lines", &format!("mq:{name}")]);
    let mut buf = Vec::new();
    for line in ["one", "two"] {
        send.write_stdin(format!("{line}\n").as_bytes());
        assert!(
            q.recv_timeout(&mut buf, T).unwrap().is_some(),
            "{line}, in time"
        );
        assert_eq!(buf, line.as_bytes(), "{line}");
    }
    send.close_stdin();
    assert!(send.wait().success(), "{:?}", Proc::rest(&send.err));
}

#[test]
fn whole_stdin_larger_than_a_message_is_refused_without_waiting_for_its_end() {
    use ipckit::socket::unix::{BindOptions, UnixAddr, UnixDatagram};
    let dir = tempdir();
    let path = dir.path().join("d.sock");
    let _rx = UnixDatagram::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    let mut send = Proc::run(&["send", &format!("unix-dgram:{}", path.display())]);
    // More than any datagram can carry, and standard input stays open: the old code read
    // until end of input, for ever.
    let _feeder = send.feed(vec![b'x'; 4 << 20]);
    let st = send.wait();
    let err = Proc::rest(&send.err);
    assert_eq!(st.code(), Some(1), "{err:?}");
    let last = err.last().unwrap();
    assert!(
        last.contains("standard input is longer than") && last.contains("--lines"),
        "{last}"
    );
}

#[test]
fn an_over_long_line_is_an_error_naming_the_line_and_the_limit() {
    use ipckit::socket::unix::{BindOptions, UnixAddr, UnixDatagram};
    let dir = tempdir();
    let path = dir.path().join("d.sock");
    let rx = UnixDatagram::bind(&UnixAddr::path(&path), &BindOptions::default()).unwrap();
    let mut send = Proc::run(&["send", "--lines", &format!("unix-dgram:{}", path.display())]);
    let mut input = b"short\n".to_vec();
    input.extend(vec![b'y'; 4 << 20]); // line 2, never ending: the input stays open
    let _feeder = send.feed(input);
    let st = send.wait();
    let err = Proc::rest(&send.err);
    assert_eq!(st.code(), Some(1), "{err:?}");
    let last = err.last().unwrap();
    assert!(
        last.contains("line 2 of standard input is longer than"),
        "{last}"
    );
    let mut buf = [0u8; 16];
    let n = rx.recv_timeout(&mut buf, T).unwrap();
    assert_eq!(n.map(|n| &buf[..n]), Some(&b"short"[..]), "line 1 went");
}

#[test]
fn recv_says_when_it_splits_an_over_long_line() {
    use ipckit::socket::unix::{UnixAddr, UnixStream};
    let dir = tempdir();
    let path = dir.path().join("s.sock");
    let uri = format!("unix:{}", path.display());
    const MAX_LINE: usize = 1 << 20;
    for json in [true, false] {
        let mut args = vec!["recv", &uri[..], "--timeout", "20s"];
        if json {
            args.push("--json");
        }
        let mut recv = Proc::server(&args);
        let mut s = UnixStream::connect(&UnixAddr::path(&path)).unwrap();
        let mut data = vec![b'z'; MAX_LINE + 10];
        data.extend_from_slice(b"\nwhole line\n");
        s.write_all(&data).unwrap();
        drop(s);
        assert!(recv.wait().success());
        let out = Proc::rest(&recv.out);
        let err = Proc::rest(&recv.err);
        assert_eq!(out.len(), 3, "two pieces and the next line");
        assert!(
            err.iter()
                .any(|l| l.contains("longer than 1048576 bytes") && l.contains("split")),
            "a note on stderr: {err:?}"
        );
        if json {
            let v: Vec<serde_json::Value> = out
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(v[0]["bytes"], MAX_LINE);
            assert_eq!(v[1]["bytes"], 10);
            assert_eq!(
                (v[0]["split"].clone(), v[1]["split"].clone()),
                (true.into(), true.into())
            );
            assert!(
                v[2].get("split").is_none(),
                "a whole line is not marked: {}",
                out[2]
            );
            assert_eq!(v[2]["data"], "whole line");
        } else {
            assert_eq!((out[0].len(), out[1].len()), (MAX_LINE, 10));
        }
    }
    // --quiet: no note. (No ready line either: the test's open of the FIFO for writing
    // waits for recv to open it for reading.)
    use ipckit::stream::fifo::{self, Fifo};
    let fpath = dir.path().join("f");
    let _node = Fifo::create(&fpath, &fifo::Options::default()).unwrap();
    let furi = format!("fifo:{}", fpath.display());
    let mut recv = Proc::run(&["recv", &furi, "--timeout", "20s", "--quiet"]);
    let mut w = fifo::open_write_timeout(&fpath, T).unwrap();
    w.write_all(&vec![b'z'; MAX_LINE + 1]).unwrap();
    drop(w);
    assert!(recv.wait().success());
    assert_eq!(Proc::rest(&recv.out).len(), 2, "split in two pieces");
    assert_eq!(Proc::rest(&recv.err), Vec::<String>::new());
}

/// Signals whose default action ends the process, beyond INT, TERM and HUP.
fn stop_signals() -> [i32; 4] {
    [libc::SIGUSR1, libc::SIGALRM, libc::SIGUSR2, signal::rt(3)]
}

#[test]
fn recv_stops_cleanly_on_every_terminating_signal() {
    let dir = tempdir();
    for sig in stop_signals() {
        let path = dir.path().join("s.sock");
        let uri = format!("unix:{}", path.display());
        let mut recv = Proc::server(&["recv", &uri]);
        assert!(path.exists());
        signal::kill(recv.child.id(), sig).unwrap();
        let st = recv.wait();
        let name = signal::name(sig);
        assert_eq!(
            st.code(),
            Some(1),
            "{name}: exits 1, not killed by it: {st}"
        );
        let err = Proc::rest(&recv.err);
        assert!(
            err.iter()
                .any(|l| l.contains(&format!("interrupted by {name}"))),
            "{name}: {err:?}"
        );
        assert!(!path.exists(), "{name}: the socket file is removed");
    }
    // listen ends well on them too.
    let path = dir.path().join("l.sock");
    let mut listen = Proc::server(&["listen", &format!("unix:{}", path.display())]);
    signal::kill(listen.child.id(), libc::SIGUSR1).unwrap();
    assert!(listen.wait().success(), "listen exits 0 when stopped");
    assert!(!path.exists(), "listen removed its socket file");
}

#[test]
fn a_channel_recv_stops_cleanly_on_every_terminating_signal() {
    for sig in stop_signals() {
        let name = ipckit::name::unique_posix("cli-sig");
        let _cleanup = RemoveShm(name.clone());
        let shm = common::dev_shm(&name);
        let mut recv = Proc::server(&["recv", &format!("channel:{name}")]);
        assert!(shm.exists());
        signal::kill(recv.child.id(), sig).unwrap();
        let st = recv.wait();
        let sname = signal::name(sig);
        assert_eq!(st.code(), Some(1), "{sname}: {st}");
        assert!(!shm.exists(), "{sname}: /dev/shm{name} is removed");
    }
}

#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    // As under nohup: SIGHUP ignored by the parent. recv must not turn it into a stop.
    let dir = tempdir();
    let path = dir.path().join("d.sock");
    let uri = format!("unix-dgram:{}", path.display());
    let mut cmd = ipckit();
    cmd.args(["recv", &uri, "--count", "1", "--timeout", "20s"]);
    // SAFETY: signal(2) is async-signal-safe; it only sets this child's disposition.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut recv = Proc::start(cmd);
    assert!(recv.err.recv_timeout(T).unwrap().contains("receiving on"));
    // The hang-up first: had recv caught it, it would be pending before the message came.
    signal::kill(recv.child.id(), libc::SIGHUP).unwrap();
    let sock = ipckit::socket::unix::UnixDatagram::unbound().unwrap();
    sock.send_to(b"still here", &ipckit::socket::unix::UnixAddr::path(&path))
        .unwrap();
    let st = recv.wait();
    assert!(st.success(), "{st}: {:?}", Proc::rest(&recv.err));
    assert_eq!(Proc::rest(&recv.out), ["still here"]);
}

#[test]
fn lab_stops_at_a_clean_point_on_a_signal_beyond_int_term_hup() {
    // SIGUSR1 is handled (not blocked): the lab's own children, which use SIGUSR1 themselves,
    // start with its default action; the lab itself stops after the running scenario.
    let mut lab = Proc::run(&["lab", "--all"]);
    let first = lab.out.recv_timeout(T).expect("the first scenario starts");
    assert!(first.starts_with("== "), "{first}");
    signal::kill(lab.child.id(), libc::SIGUSR1).unwrap();
    let st = lab.wait();
    let err = Proc::rest(&lab.err);
    assert_eq!(
        st.code(),
        Some(1),
        "exits 1, not killed by the signal: {st}: {err:?}"
    );
    assert!(
        err.iter().any(|l| l.contains("stopped by SIGUSR1")),
        "{err:?}"
    );
}
