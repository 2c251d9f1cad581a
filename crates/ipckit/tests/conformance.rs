//! One conformance suite over every implementation of the shared traits (byte streams and
//! message transports), so code written against a trait gets the same behaviour from each.

mod common;

use std::time::Duration;

use ipckit::Access;
use ipckit::ErrorKind;
use ipckit::mq::posix::{self, PosixMq};
use ipckit::mq::sysv::{self, SysvMq};
use ipckit::name::SysvKey;
use ipckit::socket::tcp;
use ipckit::socket::unix::{UnixDatagram, UnixSeqpacket, UnixStream};
use ipckit::stream::pipe::{self, PipeDuplex};
use ipckit::transport::{ByteStream, Duplex, Framed, MessageTransport};

const T: Duration = Duration::from_secs(20);
const SIZES: &[usize] = &[1, 7, 100, 4096, 60_000];

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

/// Every message arrives whole, in order; an idle receive times out with `Ok(None)`.
fn message_conformance<A: MessageTransport + 'static, B: MessageTransport>(
    name: &str,
    mut a: A,
    mut b: B,
) {
    let mut buf = Vec::new();
    assert_eq!(
        b.recv_msg_timeout(&mut buf, Duration::from_millis(20))
            .unwrap(),
        None,
        "{name}: idle receive"
    );
    // A sender thread, so large messages cannot fill the kernel buffer and block both sides.
    // Every size the transport carries (a queue's kernel limit may be below the largest).
    let limit = a.max_msg_len();
    let sizes: Vec<usize> = SIZES
        .iter()
        .copied()
        .filter(|&n| limit.is_none_or(|m| n <= m))
        .collect();
    assert!(sizes.len() >= 4, "{name}: carries at least 4 KiB");
    let to_send = sizes.clone();
    let sender = std::thread::spawn(move || {
        for (i, &n) in to_send.iter().enumerate() {
            a.send_msg(&pattern(n, i)).unwrap();
        }
        a
    });
    for (i, &n) in sizes.iter().enumerate() {
        assert_eq!(
            b.recv_msg_timeout(&mut buf, T).unwrap(),
            Some(n),
            "{name}: size {n}"
        );
        assert!(buf == pattern(n, i), "{name}: message {i} corrupted");
    }
    sender.join().unwrap();
}

/// Bytes arrive in order and complete; end of stream is `Some(0)`.
fn stream_conformance<A: ByteStream + 'static, B: ByteStream>(name: &str, mut a: A, mut b: B) {
    let mut buf = vec![0u8; 70_000];
    assert_eq!(
        b.read_timeout(&mut buf, Duration::from_millis(20)).unwrap(),
        None,
        "{name}: idle read"
    );
    let data = pattern(200_000, 3);
    let expect = data.clone();
    let sender = std::thread::spawn(move || {
        a.write_all(&data).unwrap();
        drop(a);
    });
    let mut got = Vec::new();
    loop {
        match b.read_timeout(&mut buf, T).unwrap() {
            Some(0) => break,
            Some(n) => got.extend_from_slice(&buf[..n]),
            None => panic!("{name}: stalled"),
        }
    }
    sender.join().unwrap();
    assert!(
        got == expect,
        "{name}: stream corrupted ({} of {} bytes)",
        got.len(),
        expect.len()
    );
}

/// Where a byte stream's room comes from while its reader does not read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    /// The reader's buffer alone (a pipe, a Unix socket): once full, the stream stays full
    /// until the reader reads, whatever the scheduling.
    Fixed,
    /// Also the kernel's moving bytes on after a write returned (TCP: from the send queue into
    /// the peer's receive window as acknowledgements come), so room may open without a read:
    /// a write after the stream was full may take more. Whatever it takes is counted.
    Moving,
}

/// A writer whose reader does not read: the timed writes give up at their deadline, say how
/// much they wrote, and the reader then finds exactly those bytes, no more; once the reader
/// has read, there is room again.
fn timed_write_conformance<A: ByteStream, B: ByteStream>(
    name: &str,
    room: Room,
    mut a: A,
    mut b: B,
) {
    // More than any kernel buffer here holds (TCP grows its buffers to a few MiB).
    let data = pattern(24 << 20, 5);
    assert_eq!(a.try_write(&[]).unwrap(), Some(0), "{name}: empty write");
    let mut n = a
        .write_all_timeout(&data, Duration::from_millis(200))
        .unwrap();
    assert!(
        n > 0 && n < data.len(),
        "{name}: wrote {n} of {} bytes to a peer that reads nothing",
        data.len()
    );
    match room {
        Room::Fixed => {
            assert_eq!(a.try_write(&data[n..]).unwrap(), None, "{name}: full");
            assert_eq!(
                a.write_timeout(&data[n..], Duration::from_millis(20))
                    .unwrap(),
                None,
                "{name}: still full"
            );
        }
        Room::Moving => {
            // Fill what room opened since, until a write finds none (the buffers are finite,
            // so this ends; the deadline makes sure of it), then once more with a timeout.
            let deadline = std::time::Instant::now() + T;
            while let Some(k) = a.try_write(&data[n..]).unwrap() {
                assert!(k > 0, "{name}: a write that took nothing must say None");
                n += k;
                assert!(
                    std::time::Instant::now() < deadline && n < data.len(),
                    "{name}: never full ({n} bytes written)"
                );
            }
            n += a
                .write_timeout(&data[n..], Duration::from_millis(20))
                .unwrap()
                .unwrap_or(0);
        }
    }
    let mut got = Vec::with_capacity(n);
    let mut buf = vec![0u8; 1 << 16];
    while got.len() < n {
        match b.read_timeout(&mut buf, T).unwrap() {
            Some(0) | None => panic!(
                "{name}: only {} of the {n} bytes written arrived",
                got.len()
            ),
            Some(k) => got.extend_from_slice(&buf[..k]),
        }
    }
    assert!(
        got == data[..n],
        "{name}: the bytes reported written are what arrived"
    );
    assert_eq!(
        b.try_read(&mut buf).unwrap(),
        None,
        "{name}: nothing more than reported"
    );
    assert_eq!(
        a.write_all_timeout(&data[n..n + 1000], T).unwrap(),
        1000,
        "{name}: room again once read"
    );
}

/// A transport whose receiver does not receive: once a try_send says full, a timed send gives
/// up with `Ok(false)`, and the receiver gets exactly the messages reported sent.
fn timed_send_conformance<A: MessageTransport, B: MessageTransport>(
    name: &str,
    mut a: A,
    mut b: B,
) {
    let msg = pattern(100, 9);
    let mut sent = 0;
    while a.try_send_msg(&msg).unwrap() {
        sent += 1;
        assert!(sent < 1_000_000, "{name}: never full");
    }
    assert!(sent > 0, "{name}: an empty transport takes a message");
    assert!(
        !a.send_msg_timeout(&msg, Duration::from_millis(20)).unwrap(),
        "{name}: a full transport's timed send gives up"
    );
    let mut buf = Vec::new();
    for i in 0..sent {
        assert_eq!(
            b.recv_msg_timeout(&mut buf, T).unwrap(),
            Some(msg.len()),
            "{name}: message {i} of {sent}"
        );
    }
    assert_eq!(
        b.try_recv_msg(&mut buf).unwrap(),
        None,
        "{name}: nothing more than reported sent"
    );
    assert!(a.send_msg_timeout(&msg, T).unwrap(), "{name}: room again");
}

fn pipe_duplex() -> (PipeDuplex, PipeDuplex) {
    let (r1, w1) = pipe::pipe().unwrap();
    let (r2, w2) = pipe::pipe().unwrap();
    (
        Duplex {
            reader: r1,
            writer: w2,
        },
        Duplex {
            reader: r2,
            writer: w1,
        },
    )
}

fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = tcp::listen("127.0.0.1:0", false).unwrap();
    let c = tcp::connect(&l.local_addr().unwrap().to_string(), false).unwrap();
    (c, common::accept_tcp(&l))
}

#[test]
fn byte_streams_conform() {
    let (a, b) = UnixStream::pair().unwrap();
    stream_conformance("unix stream", a, b);
    let (a, b) = tcp_pair();
    stream_conformance("tcp loopback", a, b);
    let (a, b) = pipe_duplex();
    stream_conformance("pipe duplex", a, b);
}

#[test]
fn timed_writes_stop_at_the_deadline_and_count_what_went() {
    let (a, b) = UnixStream::pair().unwrap();
    timed_write_conformance("unix stream", Room::Fixed, a, b);
    let (a, b) = tcp_pair();
    timed_write_conformance("tcp loopback", Room::Moving, a, b);
    let (a, b) = pipe_duplex();
    timed_write_conformance("pipe duplex", Room::Fixed, a, b);
    let (a, b) = pipe_duplex();
    a.writer.set_nonblocking(true).unwrap();
    timed_write_conformance("non-blocking pipe duplex", Room::Fixed, a, b);
}

#[test]
fn timed_sends_give_up_on_a_full_transport() {
    let (a, b) = UnixSeqpacket::pair().unwrap();
    timed_send_conformance("unix seqpacket", a, b);
    let (a, b) = UnixDatagram::pair().unwrap();
    timed_send_conformance("unix datagram", a, b);
    let (a, b) = UnixStream::pair().unwrap();
    timed_send_conformance("framed unix stream", Framed::new(a), Framed::new(b));
    let (a, b) = pipe_duplex();
    timed_send_conformance("framed pipes", Framed::new(a), Framed::new(b));
    let name = ipckit::name::unique_posix("conformance-full");
    let a = PosixMq::create(&name, &posix::Options::default()).unwrap();
    let b = PosixMq::open(&name, Access::ReadWrite).unwrap();
    timed_send_conformance("posix mq", a, b);
    let a = SysvMq::create(SysvKey::Private, &sysv::Options::default()).unwrap();
    let b = SysvMq::open_id(a.id(), Access::ReadWrite).unwrap();
    timed_send_conformance("sysv mq", a, b);
}

#[test]
fn a_framed_send_cut_by_its_deadline_is_an_error_not_a_lost_frame() {
    // A frame larger than the stream holds: part goes, then the deadline passes mid-frame.
    let (a, _b) = UnixStream::pair().unwrap();
    let err = Framed::new(a)
        .send_msg_timeout(&pattern(8 << 20, 1), Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains("mid-message"), "{err}");
}

#[test]
fn the_largest_message_reported_is_the_largest_one_sent() {
    for (name, (a, b)) in [
        ("seqpacket", {
            let (a, b) = UnixSeqpacket::pair().unwrap();
            (
                Box::new(a) as Box<dyn MessageTransport>,
                Box::new(b) as Box<dyn MessageTransport>,
            )
        }),
        ("datagram", {
            let (a, b) = UnixDatagram::pair().unwrap();
            (
                Box::new(a) as Box<dyn MessageTransport>,
                Box::new(b) as Box<dyn MessageTransport>,
            )
        }),
    ] {
        let (mut a, mut b) = (a, b);
        let max = a.max_msg_len().unwrap();
        let err = a.send_msg(&vec![1u8; max + 1]).unwrap_err();
        assert_eq!(err.errno(), Some(ipckit::Errno::MSGSIZE), "{name}: {err}");
        // The largest one goes (from a thread: it may need the receiver to make room).
        let sender = std::thread::spawn(move || a.send_msg(&vec![2u8; max]).map(|()| a));
        let mut buf = Vec::new();
        assert_eq!(
            b.recv_msg_timeout(&mut buf, T).unwrap(),
            Some(max),
            "{name}"
        );
        sender.join().unwrap().unwrap();
    }
}

#[test]
fn message_transports_conform() {
    let (a, b) = UnixSeqpacket::pair().unwrap();
    message_conformance("unix seqpacket", a, b);
    let (a, b) = UnixDatagram::pair().unwrap();
    message_conformance("unix datagram", a, b);
    let (a, b) = UnixStream::pair().unwrap();
    message_conformance("framed unix stream", Framed::new(a), Framed::new(b));
    let (a, b) = pipe_duplex();
    message_conformance("framed pipes", Framed::new(a), Framed::new(b));
    let (a, b) = tcp_pair();
    message_conformance("framed tcp", Framed::new(a), Framed::new(b));
    // A queue is one object: the two ends are two handles on it.
    let name = ipckit::name::unique_posix("conformance");
    let a = PosixMq::create(&name, &posix::Options::default()).unwrap();
    let b = PosixMq::open(&name, Access::ReadWrite).unwrap();
    message_conformance("posix mq", a, b);
    let a = SysvMq::create(SysvKey::Private, &sysv::Options::default()).unwrap();
    let b = SysvMq::open_id(a.id(), Access::ReadWrite).unwrap();
    message_conformance("sysv mq", a, b);
}

#[test]
fn connected_transports_report_a_closed_peer() {
    let mut buf = Vec::new();
    let (a, mut b) = UnixSeqpacket::pair().unwrap();
    drop(a);
    assert_eq!(
        b.recv_msg_timeout(&mut buf, T).unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    let (a, b) = UnixStream::pair().unwrap();
    drop(a);
    assert_eq!(
        Framed::new(b)
            .recv_msg_timeout(&mut buf, T)
            .unwrap_err()
            .kind(),
        ErrorKind::Disconnected
    );
}

#[test]
fn framing_rejects_a_header_from_a_foreign_peer() {
    use std::io::Write;
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let err = Framed::new(b)
        .recv_msg_timeout(&mut Vec::new(), T)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("does not speak ipckit framing"),
        "{err}"
    );
}

#[test]
fn a_peer_that_stops_mid_message_times_out_instead_of_hanging() {
    use std::io::Write;
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(&10u32.to_le_bytes()).unwrap();
    a.write_all(b"abc").unwrap(); // 3 of 10 body bytes, then silence
    let err = Framed::new(b)
        .recv_msg_timeout(&mut Vec::new(), Duration::from_millis(100))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains("mid-message"), "{err}");
}

#[test]
fn a_huge_timeout_means_for_ever_and_does_not_overflow() {
    use ipckit::transport::TimedRead;
    use std::io::Write;
    assert_eq!(
        ipckit::Deadline::after(Duration::MAX),
        ipckit::Deadline::NEVER
    );
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.write_all(b"x").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        b.read_deadline(&mut buf, ipckit::Deadline::NEVER).unwrap(),
        Some(1)
    );
}
