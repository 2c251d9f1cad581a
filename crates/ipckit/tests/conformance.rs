//! One conformance suite over every implementation of the shared traits (byte streams and
//! message transports), so code written against a trait gets the same behaviour from each.

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
    (c, l.accept().unwrap().0)
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
