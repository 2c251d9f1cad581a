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

impl Drop for Running {
    /// A test that failed still stops the server, so its mirror and socket file go.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.stopper.stop();
            if self.rx.recv_timeout(T).is_ok() {
                let _ = thread.join();
            }
        }
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

/// A 1 MiB tmpfs on a temporary directory, unmounted (then the directory removed) on drop.
struct Tmpfs {
    dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// `None` (after saying SKIPPED) when mounting is not allowed here; in CI that fails.
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("ipckit-kv-tmpfs-")
            .tempdir()
            .unwrap();
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=1m,mode=0700".as_ptr().cast(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            assert!(
                std::env::var_os("CI").is_none(),
                "mounting a tmpfs for the full-disk test: {e} (CI runs as root)"
            );
            println!("SKIPPED: mounting a tmpfs for the full-disk test: {e} (needs root)");
            return None;
        }
        Some(Tmpfs { dir: Some(dir) })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Fills it: a file written until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.path().join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let dir = self.dir.take().unwrap();
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        drop(dir);
    }
}

#[test]
fn while_the_log_cannot_be_written_writes_get_misconf_and_the_mirror_waits_for_the_log() {
    use ipckit_kv::shm::{Lookup, MirrorOptions, ShmReader};
    let Some(fs) = Tmpfs::mount() else {
        return;
    };
    let shm = ipckit::name::unique_posix("kv-misconf");
    let server = Running::start(Config {
        appendonly: Some(fs.path().join("log.aof")),
        shm: Some((
            shm.clone(),
            MirrorOptions {
                capacity: 64,
                max_value: 8192,
                ..MirrorOptions::default()
            },
        )),
        ..Config::default()
    });
    let mut c = Client::connect_timeout(&server.addr, T).unwrap();
    let set = |c: &mut Client, k: &str, v: &str| {
        c.command(&[&b"SET"[..], k.as_bytes(), v.as_bytes()])
            .unwrap()
    };
    assert_eq!(set(&mut c, "before", "1"), Reply::OK);
    let reader = ShmReader::open(&shm).unwrap();
    assert_eq!(reader.get(b"before").unwrap(), Lookup::Found(b"1".to_vec()));
    let filler = fs.fill();
    // This write's log append fails in the wake it runs in (under everysec it is still
    // acknowledged, as Redis does); the mirror does not show what the log has not taken.
    // (Larger than a page: the log's last page may have room for a small one.)
    let big = "2".repeat(5000);
    assert_eq!(set(&mut c, "lost", &big), Reply::OK);
    assert!(
        reader.get(b"lost").unwrap() == Lookup::Absent,
        "the mirror shows a write the log has not taken"
    );
    let misconf = Reply::error("MISCONF Errors writing to the AOF file: No space left on device");
    assert_eq!(set(&mut c, "refused", "3"), misconf);
    assert_eq!(c.command(&[&b"INCR"[..], b"n"]).unwrap(), misconf);
    // Reads go on.
    assert_eq!(
        c.command(&[&b"GET"[..], b"lost"]).unwrap(),
        Reply::bulk(&*big)
    );
    assert_eq!(c.command(&[&b"GET"[..], b"refused"]).unwrap(), Reply::Nil);
    // A transaction of writes is refused at EXEC.
    assert_eq!(c.command(&[b"MULTI"]).unwrap(), Reply::OK);
    assert_eq!(
        c.command(&[&b"SET"[..], b"t", b"1"]).unwrap(),
        misconf,
        "refused while queueing"
    );
    assert!(
        matches!(c.command(&[b"EXEC"]).unwrap(), Reply::Error(e) if e.starts_with("EXECABORT"))
    );
    // Room again: the next wake's flush works, the state clears, the mirror catches up.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(c.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    assert_eq!(set(&mut c, "after", "4"), Reply::OK);
    assert_eq!(
        reader.get(b"lost").unwrap(),
        Lookup::Found(big.clone().into_bytes())
    );
    assert_eq!(reader.get(b"after").unwrap(), Lookup::Found(b"4".to_vec()));
    drop(reader);
    server.stop();
    let log = std::fs::read(fs.path().join("log.aof")).unwrap();
    let has = |k: &str| log.windows(k.len()).any(|w| w == k.as_bytes());
    assert!(has("before") && has("lost") && has("after") && !has("refused"));
    assert!(!std::path::Path::new(&format!("/dev/shm{shm}")).exists());
}
