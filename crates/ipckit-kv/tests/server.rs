//! The server in-process, through its library API: bind, serve on a thread, stop with the
//! Stopper; the socket file is gone once the server is.

use std::time::Duration;

use ipckit_kv::client::Client;
use ipckit_kv::resp::Reply;
use ipckit_kv::server::{Config, Endpoint, Server, Stopped};

const T: Duration = Duration::from_secs(30);

#[test]
fn serves_on_a_thread_and_stops_when_asked() {
    let dir = tempfile::Builder::new()
        .prefix("ipckit-kv-server-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("s.sock");
    let server = Server::bind(Config {
        listen: vec![Endpoint::Unix(path.clone())],
        log: false,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(server.local_names(), [format!("unix:{}", path.display())]);
    let stopper = server.stopper().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(server.run());
    });
    let mut c = Client::connect_timeout(&format!("unix:{}", path.display()), T).unwrap();
    let cmds: Vec<Vec<Vec<u8>>> = (0..50)
        .flat_map(|i| {
            let k = format!("k{i}").into_bytes();
            [
                vec![b"SET".to_vec(), k.clone(), i.to_string().into_bytes()],
                vec![b"GET".to_vec(), k],
            ]
        })
        .collect();
    let replies = c.pipeline(&cmds).unwrap();
    for (i, pair) in replies.chunks(2).enumerate() {
        assert_eq!(pair[0], Reply::OK);
        assert_eq!(pair[1], Reply::bulk(i.to_string()));
    }
    assert_eq!(c.command(&[b"DBSIZE"]).unwrap(), Reply::Int(50));
    stopper.stop().unwrap();
    let stopped = rx.recv_timeout(T).expect("the loop stops within the bound");
    assert_eq!(stopped.unwrap(), Stopped::Stopper);
    thread.join().unwrap();
    // run() consumed the server: its listener is dropped, and the file with it.
    assert!(!path.exists());
}

/// A server on a thread, its socket's address, and what stops it.
struct Running {
    addr: String,
    stopper: ipckit_kv::server::Stopper,
    rx: std::sync::mpsc::Receiver<ipckit::Result<Stopped>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(config: Config) -> Running {
        let dir = tempfile::Builder::new()
            .prefix("ipckit-kv-server-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("s.sock");
        let server = Server::bind(Config {
            listen: vec![Endpoint::Unix(path.clone())],
            log: false,
            ..config
        })
        .unwrap();
        let stopper = server.stopper().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(server.run());
        });
        Running {
            addr: format!("unix:{}", path.display()),
            stopper,
            rx,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn path(&self) -> &str {
        self.addr.strip_prefix("unix:").unwrap()
    }

    /// Stops it and checks the loop returned (it did not panic or hang).
    fn stop(mut self) {
        self.stopper.stop().unwrap();
        let stopped = self
            .rx
            .recv_timeout(T)
            .expect("the loop stops within the bound");
        assert_eq!(stopped.unwrap(), Stopped::Stopper);
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Reads from `s` until `want` is a suffix of what arrived (bounded by the socket's timeout).
fn read_until_suffix(s: &mut std::os::unix::net::UnixStream, want: &[u8], total: usize) -> Vec<u8> {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while got.len() < total {
        let n = s
            .read(&mut buf)
            .expect("the server replies within the bound");
        assert!(
            n > 0,
            "the server closed the connection after {} bytes",
            got.len()
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.ends_with(want),
        "ends with {:?}",
        &got[got.len().saturating_sub(16)..]
    );
    got
}

#[test]
fn a_large_reply_read_slowly_then_a_ping_is_answered() {
    use std::io::{Read, Write};
    let server = Running::start(Config::default());
    let value = vec![b'v'; 1 << 20];
    let mut c = Client::connect_timeout(&server.addr, T).unwrap();
    assert_eq!(
        c.command(&[&b"SET"[..], b"big", &value]).unwrap(),
        Reply::OK
    );
    let mut s = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(&s, 4096).unwrap();
    s.write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n").unwrap();
    // Part of the reply: the server's write was cut short, some of it is written.
    let mut first = vec![0u8; 100_000];
    let mut n = 0;
    while n < first.len() {
        let got = s.read(&mut first[n..]).unwrap();
        assert!(got > 0);
        n += got;
    }
    // A second request while the large reply is partly written.
    s.write_all(b"PING\r\n").unwrap();
    let header = format!("${}\r\n", value.len());
    let total = header.len() + value.len() + 2 + b"+PONG\r\n".len();
    let rest = read_until_suffix(&mut s, b"\r\n+PONG\r\n", total - n);
    assert_eq!(n + rest.len(), total);
    // The server is still serving everyone.
    assert_eq!(c.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    server.stop();
}

#[test]
fn a_trickling_huge_multibulk_does_not_stop_other_clients() {
    use std::io::Write;
    let server = Running::start(Config::default());
    let mut other = Client::connect_timeout(&server.addr, T).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let n = 300_000;
    let mut request = format!("*{n}\r\n").into_bytes();
    for _ in 0..n {
        request.extend_from_slice(b"$1\r\na\r\n");
    }
    for (i, piece) in request.chunks(4096).enumerate() {
        s.write_all(piece).unwrap();
        if i % 16 == 0 {
            // Answered (within the client's bound) while the request is still arriving.
            assert_eq!(other.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
        }
    }
    // The whole request ran as one: its command name is "a".
    let reply = read_until_suffix(&mut s, b"\r\n", 1);
    assert!(
        reply.starts_with(b"-ERR unknown command 'a'"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(other.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    server.stop();
}
