//! `ipckit kv serve` as a real process, driven by the clients people use: redis-cli (one-shot
//! and scripted), redis-py 8 (RESP3) and 7 (RESP2), redis-benchmark's default run; and by
//! ipckit's own client for the limits: 1,000 clients at once, a client that never reads, the
//! client limit, a protocol error, socket activation and readiness, the peer uid check.
//!
//! redis-cli, redis-benchmark and the redis-py virtualenvs come from `.ci/run`: under CI
//! (CI=true) a missing one fails the test; on a developer machine the test says SKIPPED.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{ipckit, run_with_timeout, tempdir};
use ipckit::notify::pidfd::PidFd;
use ipckit_kv::client::Client;
use ipckit_kv::resp::Reply;

/// The bound on every wait.
const T: Duration = Duration::from_secs(30);

/// Whether `program` can be run; if not, fails under CI and says SKIPPED elsewhere.
fn have(program: &str, test: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing: .ci/run installs it (redis-tools, the redis-py virtualenvs)"
        );
        eprintln!("SKIPPED {test}: {program} is not installed (.ci/run installs it)");
    }
    found
}

/// A running `ipckit kv serve`, its stderr read line by line in the background.
struct Kv {
    child: Child,
    pidfd: PidFd,
    err: mpsc::Receiver<String>,
    /// What the ready lines said, in order: `unix:PATH`, `tcp:127.0.0.1:PORT`.
    endpoints: Vec<String>,
}

fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Kv {
    /// Starts the server on `endpoints` with `flags` and waits for one ready line each.
    fn start(endpoints: &[&str], flags: &[&str]) -> Kv {
        let mut cmd = ipckit();
        cmd.arg("kv").arg("serve").args(endpoints).args(flags);
        Kv::spawn(cmd, endpoints.len())
    }

    fn spawn(mut cmd: Command, ready_lines: usize) -> Kv {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pidfd = PidFd::open(child.id()).unwrap();
        let err = lines(child.stderr.take().unwrap());
        let mut kv = Kv {
            child,
            pidfd,
            err,
            endpoints: Vec::new(),
        };
        let deadline = Instant::now() + T;
        while kv.endpoints.len() < ready_lines {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = kv
                .err
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no ready line in {T:?}; got {:?}", kv.endpoints));
            if let Some(ep) = line.strip_prefix("ipckit: kv listening on ") {
                kv.endpoints.push(ep.to_string());
            }
        }
        kv
    }

    fn client(&self) -> Client {
        Client::connect_timeout(&self.endpoints[0], T).unwrap()
    }

    /// The socket path of the first endpoint.
    fn sock(&self) -> &str {
        self.endpoints[0].strip_prefix("unix:").unwrap()
    }

    /// Waits for a stderr line containing `what`.
    fn log_line(&self, what: &str) -> String {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => continue,
                Err(_) => panic!("no log line with {what:?} in {T:?}"),
            }
        }
    }

    /// SIGTERM, then the exit status (within the bound).
    fn stop(mut self) -> std::process::ExitStatus {
        self.pidfd.send_signal(libc::SIGTERM).unwrap();
        self.wait()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        assert!(
            self.pidfd.wait_exit_timeout(T).unwrap(),
            "the server did not exit within {T:?}"
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Kv {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unix(dir: &Path, name: &str) -> String {
    format!("unix:{}", dir.join(name).display())
}

fn args(a: &[&str]) -> Vec<Vec<u8>> {
    a.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Runs `program args`, with `stdin` fed, bounded by T; (status, stdout, stderr), the
/// outputs without their last newline.
fn run_tool(program: &str, argv: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(argv);
    let ran = run_with_timeout(cmd, stdin, T);
    let trim = |s: String| s.strip_suffix('\n').map(str::to_string).unwrap_or(s);
    (
        ran.status.code().unwrap_or(-1),
        trim(ran.out()),
        trim(ran.err()),
    )
}

#[test]
fn pings_inline_and_multibulk_over_unix_and_tcp_and_stops_on_sigterm_removing_the_socket() {
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s"), "tcp:127.0.0.1:0"], &[]);
    assert_eq!(kv.endpoints.len(), 2);
    assert!(
        kv.endpoints[1].starts_with("tcp:127.0.0.1:"),
        "{:?}",
        kv.endpoints
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(kv.sock()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket file mode");
    for ep in &kv.endpoints {
        let mut c = Client::connect_timeout(ep, T).unwrap();
        assert_eq!(c.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
        assert_eq!(c.command(&[b"ping", b"hi"]).unwrap(), Reply::bulk("hi"));
        c.send_raw(b"PING\r\nPING \"a b\"\r\n").unwrap();
        assert_eq!(c.read_reply().unwrap(), Reply::status("PONG"));
        assert_eq!(c.read_reply().unwrap(), Reply::bulk("a b"));
        // Pipelined: every reply, in order.
        let many: Vec<Vec<Vec<u8>>> = (0..100).map(|i| args(&["PING", &i.to_string()])).collect();
        let replies = c.pipeline(&many).unwrap();
        for (i, r) in replies.iter().enumerate() {
            assert_eq!(r, &Reply::bulk(i.to_string()));
        }
    }
    let sock = PathBuf::from(kv.sock());
    let st = kv.stop();
    assert!(st.success(), "{st:?}");
    assert!(!sock.exists(), "the socket file is removed at exit");
}

#[test]
fn usage_errors_exit_2_and_a_remote_tcp_address_is_refused() {
    let st = ipckit().args(["kv", "serve"]).output().unwrap();
    assert_eq!(st.status.code(), Some(2), "{st:?}");
    let st = ipckit()
        .args(["kv", "serve", "unix:/nonexistent/x", "--fsync", "always"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2), "{st:?}");
    let st = ipckit().args(["kv", "serve", "nowhere"]).output().unwrap();
    assert_eq!(st.status.code(), Some(2), "{st:?}");
    let st = ipckit()
        .args(["kv", "serve", "tcp:0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1), "{st:?}");
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
}

#[test]
fn a_protocol_error_gets_its_reply_then_the_connection_closes() {
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    let mut c = kv.client();
    // The PING after the bad request is never answered.
    c.send_raw(b"*x\r\nPING\r\n").unwrap();
    assert_eq!(
        c.read_reply().unwrap(),
        Reply::error("ERR Protocol error: invalid multibulk length")
    );
    assert!(c.closed_by_server().unwrap(), "closed after the error");
    let mut c = kv.client();
    c.send_raw(b"*1\r\n$-3\r\n").unwrap();
    assert_eq!(
        c.read_reply().unwrap(),
        Reply::error("ERR Protocol error: invalid bulk length")
    );
    assert!(c.closed_by_server().unwrap());
    // The server goes on serving.
    assert_eq!(
        kv.client().command(&[b"PING"]).unwrap(),
        Reply::status("PONG")
    );
}

#[test]
fn a_thousand_clients_are_held_at_once() {
    // This process needs the descriptors too.
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    let mut clients: Vec<Client> = (0..1000).map(|_| kv.client()).collect();
    // Every one sends before any reads: all are connected and served at the same time.
    for (i, c) in clients.iter_mut().enumerate() {
        let mut req = Vec::new();
        ipckit_kv::client::encode_command(&[b"PING", i.to_string().as_bytes()], &mut req);
        c.send_raw(&req).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.read_reply().unwrap(), Reply::bulk(i.to_string()));
    }
    drop(clients);
    assert!(kv.stop().success());
}

#[test]
fn a_client_that_never_reads_is_disconnected_at_the_output_limit_while_others_are_served() {
    let dir = tempdir();
    let kv = Kv::start(
        &[&unix(dir.path(), "s")],
        &["--client-output-buffer-limit", "1mb"],
    );
    let mut hog = kv.client();
    // 64 KiB echoed back 400 times: 25 MiB of replies the hog never reads.
    let big = vec![b'x'; 64 << 10];
    let mut req = Vec::new();
    for _ in 0..400 {
        ipckit_kv::client::encode_command(&[b"PING", &big], &mut req);
    }
    // The server may close before it has read everything: a broken pipe is fine here.
    let _ = hog.send_raw(&req);
    let line = kv.log_line("--client-output-buffer-limit");
    assert!(line.contains("closing client"), "{line}");
    assert!(hog.closed_by_server().unwrap(), "the hog is disconnected");
    let mut other = kv.client();
    assert_eq!(other.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    // One reply larger than the limit is not a client misbehaving: it gets it whole.
    let value = vec![b'v'; 8 << 20];
    assert_eq!(other.command(&[b"SET", b"big", &value]).unwrap(), Reply::OK);
    assert_eq!(
        other.command(&[b"GET", b"big"]).unwrap(),
        Reply::Bulk(value)
    );
}

#[test]
fn past_maxclients_a_client_gets_the_redis_error_and_is_closed() {
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &["--maxclients", "2"]);
    let mut a = kv.client();
    let mut b = kv.client();
    assert_eq!(a.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    assert_eq!(b.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    let mut c = kv.client();
    assert_eq!(
        c.read_reply().unwrap(),
        Reply::error("ERR max number of clients reached")
    );
    assert!(c.closed_by_server().unwrap());
    drop(a);
    // A place is free again once the server has seen `a` go: the next client is served.
    let deadline = Instant::now() + T;
    loop {
        let mut d = kv.client();
        match d.command(&[b"PING"]) {
            Ok(Reply::Status(s)) if s == "PONG" => break,
            other => assert!(Instant::now() < deadline, "still refused: {other:?}"),
        }
    }
}

#[test]
fn allow_uid_closes_peers_of_other_uids_and_logs_them_once() {
    let dir = tempdir();
    let me = rustix::process::geteuid().as_raw();
    let other = if me == 4242 { 4243 } else { 4242 };
    let kv = Kv::start(
        &[&unix(dir.path(), "s")],
        &["--allow-uid", &other.to_string()],
    );
    let mut c = kv.client();
    let _ = c.send_raw(b"PING\r\n");
    assert!(
        c.closed_by_server().unwrap(),
        "a peer of another uid is closed"
    );
    let line = kv.log_line("refused a client of uid");
    assert!(line.contains(&format!("uid {me}")), "{line}");
    drop(kv);
    let kv = Kv::start(
        &[&unix(dir.path(), "s2")],
        &[
            "--allow-uid",
            &other.to_string(),
            "--allow-uid",
            &me.to_string(),
        ],
    );
    assert_eq!(
        kv.client().command(&[b"PING"]).unwrap(),
        Reply::status("PONG")
    );
}

#[test]
fn socket_activation_serves_the_inherited_socket_and_reports_ready_and_stopping() {
    use ipckit::socket::unix::{BindOptions, UnixAddr, UnixDatagram};
    let dir = tempdir();
    let path = dir.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let notify_path = dir.path().join("notify");
    let notify =
        UnixDatagram::bind(&UnixAddr::path(&notify_path), &BindOptions::default()).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" kv serve")
        .arg(env!("CARGO_BIN_EXE_ipckit"))
        .env("NOTIFY_SOCKET", &notify_path);
    let fd = listener.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls: dup2 and fcntl.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let kv = Kv::spawn(cmd, 1);
    drop(listener);
    assert_eq!(kv.endpoints, vec![format!("unix:{}", path.display())]);
    let mut buf = [0u8; 256];
    let n = notify
        .recv_from_timeout(&mut buf, T)
        .unwrap()
        .expect("READY=1 within the bound")
        .0;
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    assert!(msg.contains(&format!("MAINPID={}", kv.child.id())), "{msg}");
    assert_eq!(
        kv.client().command(&[b"PING"]).unwrap(),
        Reply::status("PONG")
    );
    assert!(kv.stop().success());
    let n = notify
        .recv_from_timeout(&mut buf, T)
        .unwrap()
        .expect("STOPPING=1 within the bound")
        .0;
    assert_eq!(&buf[..n], b"STOPPING=1");
    // The socket file is systemd's: the server leaves it.
    assert!(path.exists());
}

#[test]
fn redis_cli_one_shot_and_scripted() {
    if !have("redis-cli", "redis_cli_one_shot_and_scripted") {
        return;
    }
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    let s = kv.sock();
    assert_eq!(
        run_tool("redis-cli", &["-s", s, "SET", "k", "v"], b"").1,
        "OK"
    );
    assert_eq!(run_tool("redis-cli", &["-s", s, "GET", "k"], b"").1, "v");
    assert_eq!(run_tool("redis-cli", &["-s", s, "PING"], b"").1, "PONG");
    let (code, out, err) = run_tool(
        "redis-cli",
        &["-s", s],
        b"SET a 1\nINCR a\nINCRBY a 10\nGET a\nDEL a\nEXISTS a\nRPUSH l x y z\nLRANGE l 0 -1\nNOSUCH x\nPING\n",
    );
    assert_eq!(code, 0, "{err}");
    // redis-cli prints an empty line after an error, with redis-server too.
    assert_eq!(
        out,
        "OK\n2\n12\n12\n1\n0\n3\nx\ny\nz\nERR unknown command 'NOSUCH', with args beginning with: 'x' \n\nPONG",
        "{err}"
    );
}

#[test]
fn redis_py_8_with_resp3() {
    redis_py("/opt/ipckit-venv-redis8/bin/python", 3);
}

#[test]
fn redis_py_7_with_resp2() {
    redis_py("/opt/ipckit-venv-redis7/bin/python", 2);
}

fn redis_py(python: &str, protocol: u32) {
    if !have(python, &format!("redis_py (RESP{protocol})")) {
        return;
    }
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    let script = format!(
        r#"
import sys, redis
r = redis.Redis(unix_socket_path=sys.argv[1], protocol={protocol}, socket_timeout=20, decode_responses=True)
assert r.ping()
assert r.set("k", "v") is True
assert r.get("k") == "v"
assert r.get("missing") is None
p = r.pipeline(transaction=True)
p.set("a", 1).incr("a").get("a")
assert p.execute() == [True, 2, "2"], "pipeline"
assert r.hset("h", mapping={{"f": "1", "g": "2"}}) == 2
assert r.hgetall("h") == {{"f": "1", "g": "2"}}
assert r.expire("k", 100) is True
assert 0 < r.ttl("k") <= 100
assert r.delete("k", "a") == 2
assert r.sadd("s", "x", "y") == 2
assert r.smembers("s") == {{"x", "y"}}
try:
    r.lpush("h", "x")
    raise SystemExit("no WRONGTYPE")
except redis.ResponseError as e:
    assert str(e).startswith("WRONGTYPE"), e
print("ok")
"#
    );
    let (code, out, err) = run_tool(python, &["-c", &script, kv.sock()], b"");
    assert_eq!((code, out.as_str()), (0, "ok"), "{err}");
}

#[test]
fn redis_benchmark_default_run_completes_without_errors() {
    if !have("redis-benchmark", "redis_benchmark_default_run") {
        return;
    }
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    let (code, out, err) = run_tool(
        "redis-benchmark",
        &["-s", kv.sock(), "-n", "2000", "-q"],
        b"",
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let all = format!("{out}\n{err}");
    assert!(!all.contains("ERR") && !all.contains("rror"), "{all}");
    // One line per test of the default set, MSET the last.
    assert!(out.contains("MSET (10 keys)"), "{out}");
    assert!(out.contains("LRANGE_600"), "{out}");
}

#[test]
fn bench_kv_measures_both_servers_and_the_shared_memory_get() {
    if !have("redis-benchmark", "bench_kv") || !have("redis-server", "bench_kv") {
        return;
    }
    let dir = tempdir();
    let (json, html) = (dir.path().join("kv.json"), dir.path().join("kv.html"));
    let mut cmd = ipckit();
    cmd.args([
        "bench",
        "kv",
        "--requests",
        "200",
        "--rounds",
        "1",
        "--json",
    ])
    .arg(&json)
    .arg("--html")
    .arg(&html)
    .current_dir(dir.path());
    let ran = run_with_timeout(cmd, b"", Duration::from_secs(300));
    assert!(ran.status.success(), "{}\n{}", ran.out(), ran.err());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let kv = &report["kv"];
    for s in kv["servers"].as_array().unwrap() {
        assert!(s["skipped"].is_null(), "{s}");
    }
    let runs = kv["runs"].as_array().unwrap();
    for server in ["ipckit-kv", "redis-server"] {
        for persistence in ["off", "everysec"] {
            for p in [1, 16] {
                for test in [
                    "SET",
                    "GET",
                    "INCR",
                    "LPUSH",
                    "LPOP",
                    "HSET",
                    "MSET (10 keys)",
                ] {
                    let row = runs.iter().find(|r| {
                        r["server"] == server
                            && r["persistence"] == persistence
                            && r["pipeline"] == p
                            && r["test"] == test
                    });
                    let row = row
                        .unwrap_or_else(|| panic!("{server} {persistence} -P {p} {test}: no row"));
                    assert!(
                        row["error"].is_null() && row["rps"].as_f64().unwrap() > 0.0,
                        "{row}"
                    );
                }
            }
        }
    }
    let shm = &kv["shm"];
    assert!(shm["shm_get_p50_ns"].as_f64().unwrap() > 0.0, "{kv}");
    assert!(shm["socket_get_p50_ns"].as_f64().unwrap() > 0.0, "{kv}");
    // Every target has both sides measured (whether it is met is the benchmark's business).
    let targets = kv["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 5);
    assert!(
        targets.iter().all(|t| t["holds"].is_boolean()),
        "{targets:?}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("kv: ipckit kv against redis-server"));
    assert!(
        ran.out().contains("target: a shared-memory GET"),
        "{}",
        ran.out()
    );
    // The servers' directories and the mirror are gone.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("ipckit-kvbench-{}", ran.pid))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!std::path::Path::new(&format!("/dev/shm/ipckit-kvbench-{}", ran.pid)).exists());
}

#[test]
fn bench_kv_refuses_the_ipc_flags_and_bench_refuses_the_kv_ones() {
    for args in [
        &["bench", "kv", "--sizes", "64"][..],
        &["bench", "kv", "--only", "pipe"],
        &["bench", "--requests", "1000"],
        &["bench", "kv", "--requests", "5"],
    ] {
        let mut cmd = ipckit();
        cmd.args(args);
        let ran = run_with_timeout(cmd, b"", T);
        assert_eq!(ran.status.code(), Some(2), "{args:?}: {}", ran.err());
    }
}

#[test]
fn get_over_the_socket_prints_the_value_or_says_absent() {
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    assert_eq!(
        kv.client().command(&[b"SET", b"k", b"v 1"]).unwrap(),
        Reply::OK
    );
    let got = ipckit()
        .args(["kv", "get", &kv.endpoints[0], "k"])
        .output()
        .unwrap();
    assert_eq!(got.status.code(), Some(0), "{got:?}");
    assert_eq!(got.stdout, b"v 1\n");
    let got = ipckit()
        .args(["kv", "get", &kv.endpoints[0], "nope"])
        .output()
        .unwrap();
    assert_eq!(got.status.code(), Some(1), "{got:?}");
    assert!(String::from_utf8_lossy(&got.stderr).contains("absent"));
}

#[test]
fn shutdown_stops_the_server_and_removes_the_socket() {
    let dir = tempdir();
    let mut kv = Kv::start(&[&unix(dir.path(), "s")], &[]);
    let sock = PathBuf::from(kv.sock());
    let mut c = kv.client();
    c.send_raw(b"SHUTDOWN\r\n").unwrap();
    // As Redis: no reply, the connection closes.
    assert!(c.closed_by_server().unwrap());
    assert!(kv.wait().success());
    assert!(!sock.exists());
}

#[test]
fn the_query_buffer_limit_and_the_bulk_limit_close_the_client() {
    let dir = tempdir();
    let kv = Kv::start(
        &[&unix(dir.path(), "s")],
        &[
            "--client-query-buffer-limit",
            "1mb",
            "--proto-max-bulk-len",
            "4mb",
        ],
    );
    // A bulk the limit allows, never finished: past 1 MiB buffered the client goes.
    let mut c = kv.client();
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'v', 2 << 20));
    let _ = c.send_raw(&req);
    let line = kv.log_line("--client-query-buffer-limit");
    assert!(line.contains("closing client"), "{line}");
    assert!(c.closed_by_server().unwrap());
    // A bulk longer than --proto-max-bulk-len is a protocol error.
    let mut c = kv.client();
    c.send_raw(b"*2\r\n$4\r\nECHO\r\n$5000000\r\n").unwrap();
    assert_eq!(
        c.read_reply().unwrap(),
        Reply::error("ERR Protocol error: invalid bulk length")
    );
    assert!(c.closed_by_server().unwrap());
    assert_eq!(
        kv.client().command(&[b"PING"]).unwrap(),
        Reply::status("PONG")
    );
}

#[test]
fn requirepass_asks_for_auth_first() {
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &["--requirepass", "sesame"]);
    let mut c = kv.client();
    assert_eq!(
        c.command(&[b"GET", b"k"]).unwrap(),
        Reply::error("NOAUTH Authentication required.")
    );
    assert_eq!(c.command(&[b"AUTH", b"sesame"]).unwrap(), Reply::OK);
    assert_eq!(c.command(&[b"GET", b"k"]).unwrap(), Reply::Nil);
    if have("redis-cli", "requirepass with redis-cli") {
        let (code, out, err) = run_tool(
            "redis-cli",
            &[
                "-s",
                kv.sock(),
                "--no-auth-warning",
                "-a",
                "sesame",
                "SET",
                "k",
                "v",
            ],
            b"",
        );
        assert_eq!((code, out.as_str()), (0, "OK"), "{err}");
    }
}

/// SIGKILL under load from three pipelining clients, at five points (after 1 to 1,000
/// acknowledged writes), each restart recovering the same log: a write whose reply came is
/// never lost, and what survives of each client is a prefix of what it sent. (A SIGKILL
/// leaves the kernel's page cache: this shows the log is written before a reply goes; that
/// `always` also syncs before it is the aof tests' business.)
#[test]
fn sigkill_at_many_points_under_write_load_loses_no_acknowledged_write() {
    const CLIENTS: usize = 3;
    const BATCH: usize = 4;
    let dir = tempdir();
    let log = dir.path().join("appendonly.aof");
    let log_s = log.to_str().unwrap().to_string();
    let sock = unix(dir.path(), "s");
    // The same log across rounds: each restart recovers every earlier round's writes too.
    let mut acked_before: Vec<[usize; CLIENTS]> = Vec::new();
    for (round, kill_after) in [1usize, 5, 40, 200, 1000].into_iter().enumerate() {
        let mut kv = Kv::start(&[&sock], &["--appendonly", &log_s, "--fsync", "always"]);
        let (tx, rx) = mpsc::channel::<usize>();
        let writers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let mut client = kv.client();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    // Pipelined batches of SETs: several requests in flight when the kill comes.
                    let mut acked = 0;
                    for b in 0.. {
                        let batch: Vec<Vec<Vec<u8>>> = (0..BATCH)
                            .map(|j| {
                                let i = b * BATCH + j;
                                args(&["SET", &format!("k:{round}:{c}:{i}"), &i.to_string()])
                            })
                            .collect();
                        match client.pipeline(&batch) {
                            Ok(replies) if replies.iter().all(|r| *r == Reply::OK) => {
                                acked += BATCH;
                                if tx.send(BATCH).is_err() {
                                    break;
                                }
                            }
                            _ => break,
                        }
                        if b > 100_000 {
                            break;
                        }
                    }
                    acked
                })
            })
            .collect();
        drop(tx);
        let mut total = 0;
        while total < kill_after {
            total += rx.recv_timeout(T).expect("the writers make progress");
        }
        kv.pidfd.send_signal(libc::SIGKILL).unwrap();
        kv.wait();
        drop(kv);
        let mut acked = [0usize; CLIENTS];
        for (c, w) in writers.into_iter().enumerate() {
            acked[c] = w.join().unwrap();
        }
        acked_before.push(acked);
        // Restart and look: every acknowledged write of every round so far is there, and
        // what is there of each client is a prefix of what it sent (no holes).
        let kv = Kv::start(&[&sock], &["--appendonly", &log_s, "--fsync", "always"]);
        let mut c = kv.client();
        for (r, acked) in acked_before.iter().enumerate() {
            for (client, &n) in acked.iter().enumerate() {
                let keys: Vec<Vec<Vec<u8>>> = (0..n + 2 * BATCH)
                    .map(|i| args(&["GET", &format!("k:{r}:{client}:{i}")]))
                    .collect();
                let got = c.pipeline(&keys).unwrap();
                let present = got.iter().take_while(|g| **g != Reply::Nil).count();
                assert!(
                    present >= n,
                    "round {r} client {client}: {present} of {n} acknowledged writes survived"
                );
                assert!(
                    got[present..].iter().all(|g| *g == Reply::Nil),
                    "round {r} client {client}: a hole after {present}"
                );
                for (i, g) in got[..present].iter().enumerate() {
                    assert_eq!(
                        *g,
                        Reply::bulk(i.to_string()),
                        "round {r} client {client} key {i}"
                    );
                }
            }
        }
        drop(c);
        assert!(kv.stop().success());
    }
}

#[test]
fn writes_acknowledged_under_fsync_always_survive_sigkill_and_snapshot_compacts_the_log() {
    let dir = tempdir();
    let log = dir.path().join("appendonly.aof");
    let log_s = log.to_str().unwrap();
    let sock = unix(dir.path(), "s");
    let kv = Kv::start(&[&sock], &["--appendonly", log_s, "--fsync", "always"]);
    let mut c = kv.client();
    for _ in 0..100 {
        assert!(matches!(
            c.command(&[b"INCR", b"n"]).unwrap(),
            Reply::Int(_)
        ));
    }
    assert_eq!(
        c.command(&[b"RPUSH", b"l", b"a", b"b"]).unwrap(),
        Reply::Int(2)
    );
    assert_eq!(
        c.command(&[b"SET", b"t", b"x", b"EX", b"1000"]).unwrap(),
        Reply::OK
    );
    // SIGKILL: no chance to flush anything more.
    let mut kv = kv;
    kv.pidfd.send_signal(libc::SIGKILL).unwrap();
    kv.wait();
    drop(kv);
    let kv = Kv::start(&[&sock], &["--appendonly", log_s, "--snapshot"]);
    let mut c = kv.client();
    assert_eq!(c.command(&[b"GET", b"n"]).unwrap(), Reply::bulk("100"));
    assert_eq!(
        c.command(&[b"LRANGE", b"l", b"0", b"-1"]).unwrap(),
        Reply::Array(vec![Reply::bulk("a"), Reply::bulk("b")])
    );
    assert!(matches!(c.command(&[b"TTL", b"t"]).unwrap(), Reply::Int(t) if t > 990));
    let before = std::fs::metadata(&log).unwrap().len();
    c.send_raw(b"SHUTDOWN\r\n").unwrap();
    assert!(c.closed_by_server().unwrap());
    let mut kv = kv;
    assert!(kv.wait().success());
    let after = std::fs::metadata(&log).unwrap().len();
    assert!(
        after < before / 4,
        "the snapshot compacts: {before} -> {after}"
    );
    // And holds everything.
    let kv = Kv::start(&[&sock], &["--appendonly", log_s]);
    assert_eq!(
        kv.client().command(&[b"GET", b"n"]).unwrap(),
        Reply::bulk("100")
    );
}

#[test]
fn get_through_the_shm_mirror_tells_found_absent_and_not_mirrored() {
    let dir = tempdir();
    let name = format!("/ipckit-kv-test-{}", std::process::id());
    let shm_file = PathBuf::from("/dev/shm").join(&name[1..]);
    let kv = Kv::start(
        &[&unix(dir.path(), "s")],
        &[
            "--shm",
            &name,
            "--shm-capacity",
            "256",
            "--shm-max-value",
            "16",
        ],
    );
    let mut c = kv.client();
    assert_eq!(c.command(&[b"SET", b"k", b"v"]).unwrap(), Reply::OK);
    assert_eq!(
        c.command(&[b"SET", b"big", &[b'x'; 100]]).unwrap(),
        Reply::OK
    );
    assert_eq!(c.command(&[b"SADD", b"s", b"m"]).unwrap(), Reply::Int(1));
    let get = |key: &str| {
        let out = ipckit()
            .args(["kv", "get", "--shm", &name, key])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(get("k"), (Some(0), "v\n".to_string()));
    assert_eq!(get("nope").0, Some(1));
    assert_eq!(get("big").0, Some(3));
    assert_eq!(get("s").0, Some(3));
    // A delete leaves the mirror before its reply is sent.
    assert_eq!(c.command(&[b"DEL", b"k"]).unwrap(), Reply::Int(1));
    assert_eq!(get("k").0, Some(1));
    assert!(shm_file.exists());
    assert!(kv.stop().success());
    assert!(!shm_file.exists(), "the mirror is removed at exit");
}

#[test]
fn the_log_is_rewritten_in_the_background_once_it_has_doubled() {
    let dir = tempdir();
    let log = dir.path().join("appendonly.aof");
    let sock = unix(dir.path(), "s");
    let args_ = [
        "--appendonly",
        log.to_str().unwrap(),
        "--aof-rewrite-min-size",
        "4kb",
    ];
    let kv = Kv::start(&[&sock], &args_);
    let mut c = kv.client();
    let incr = args(&["INCR", "n"]);
    let mut grown = 0;
    for _ in 0..20 {
        let r = c.pipeline(&vec![incr.clone(); 100]).unwrap();
        assert!(r.iter().all(|r| matches!(r, Reply::Int(_))));
        grown = grown.max(std::fs::metadata(&log).unwrap().len());
    }
    // 2,000 INCRs make tens of KiB; the rewrite leaves one SET and what came after it. Round
    // trips (no sleep) until the loop's tick has started and finished it, within the bound.
    let deadline = Instant::now() + T;
    loop {
        let len = std::fs::metadata(&log).unwrap().len();
        if len < grown / 4 {
            break;
        }
        assert!(Instant::now() < deadline, "no rewrite: still {len} bytes");
        assert_eq!(c.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    }
    assert_eq!(c.command(&[b"GET", b"n"]).unwrap(), Reply::bulk("2000"));
    assert!(kv.stop().success());
    let kv = Kv::start(&[&sock], &args_);
    assert_eq!(
        kv.client().command(&[b"GET", b"n"]).unwrap(),
        Reply::bulk("2000")
    );
}

#[test]
fn out_of_descriptors_the_server_goes_on_and_accepts_again_once_some_are_free() {
    let dir = tempdir();
    let mut cmd = ipckit();
    cmd.args(["kv", "serve", &unix(dir.path(), "s")]);
    // SAFETY: between fork and exec only setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 40,
                rlim_max: 40,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let kv = Kv::spawn(cmd, 1);
    // More clients than the server has descriptors for: the backlog holds the rest.
    let mut clients: Vec<Client> = (0..60).map(|_| kv.client()).collect();
    let line = kv.log_line("accepting again");
    assert!(line.contains("EMFILE"), "{line}");
    assert_eq!(
        clients[0].command(&[b"PING"]).unwrap(),
        Reply::status("PONG")
    );
    // The last one waits in the backlog; once others go, the server takes it.
    let mut last = clients.pop().unwrap();
    clients.truncate(5);
    assert_eq!(last.command(&[b"PING"]).unwrap(), Reply::status("PONG"));
    assert_eq!(
        clients[1].command(&[b"PING"]).unwrap(),
        Reply::status("PONG")
    );
    assert!(kv.stop().success());
}

#[test]
fn proto_max_bulk_len_is_capped_at_what_the_log_replays_and_config_get_reports_it() {
    let st = ipckit()
        .args([
            "kv",
            "serve",
            "unix:/nonexistent/x",
            "--proto-max-bulk-len",
            "5gb",
        ])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2), "{st:?}");
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("--proto-max-bulk-len"), "{err}");
    let dir = tempdir();
    let kv = Kv::start(&[&unix(dir.path(), "s")], &["--proto-max-bulk-len", "1mb"]);
    let mut c = kv.client();
    assert_eq!(
        c.command(&[&b"CONFIG"[..], b"GET", b"proto-max-bulk-len"])
            .unwrap(),
        Reply::Array(vec![
            Reply::bulk("proto-max-bulk-len"),
            Reply::bulk((1u64 << 20).to_string())
        ])
    );
    assert!(kv.stop().success());
}
