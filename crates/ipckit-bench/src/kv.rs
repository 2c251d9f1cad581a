//! `ipckit bench kv`: `ipckit kv serve` against `redis-server`, both driven by the same
//! `redis-benchmark` on identical Unix sockets in one run, and the shared-memory GET against
//! a GET over the socket.
//!
//! Method:
//! - Each round starts a fresh server of each kind (in alternating order, so neither always
//!   runs on a warmer machine), runs redis-benchmark at `-P 1` and at `-P 16` with the same
//!   `-c`, `-n` and tests, and stops it. Persistence off (`--save ''`, no log), then again
//!   with the append-only log at `everysec`. A row's figures are its median round by
//!   requests/s ([`KvRun::rounds`] keeps them all).
//! - redis-benchmark stops at the first error reply and exits non-zero: that row is then an
//!   error, and the run fails, so a server cannot look fast by refusing work.
//! - The shared-memory path: `ipckit kv serve --shm` mirrors one 64-byte string; this process
//!   GETs it over the socket one request at a time (each round trip timed), then through
//!   [`ipckit_kv::shm::ShmReader`] (timed in batches of 64, so the clock's own cost, which is
//!   about the size of a GET, is not counted). Every value read is checked.
//! - A missing `redis-server` or `redis-benchmark` makes its rows `skipped` with the reason.
//!
//! [`KvRun::rounds`]: crate::report::kv::KvRun::rounds

use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report::kv::{IPCKIT, KvRun, KvSection, KvServer, KvShm, REDIS, targets};

/// What `ipckit bench kv` runs.
#[derive(Clone, Debug)]
pub struct KvConfig {
    /// The `ipckit` program, which serves with `kv serve`.
    pub program: PathBuf,
    /// redis-benchmark's `-c`.
    pub clients: u32,
    /// redis-benchmark's `-n` at `-P 1` and at `-P 16`.
    pub requests: [u64; 2],
    /// Rounds per row (the median is reported).
    pub rounds: usize,
    /// redis-benchmark's `-t`.
    pub tests: String,
    /// Persistence settings, each measured: `None` is off, `Some("everysec")` the log.
    pub persistence: Vec<Option<&'static str>>,
    /// GETs timed on each side of the shared-memory comparison.
    pub shm_gets: u64,
    /// Set by a signal: the run stops after the current step.
    pub interrupt: Arc<AtomicBool>,
}

impl KvConfig {
    /// The default: `-c 50`, 50,000 requests per test at `-P 1` and 200,000 at `-P 16`, three
    /// rounds, persistence off and at `everysec`, the tests the issue names.
    pub fn quick(program: PathBuf) -> KvConfig {
        KvConfig {
            program,
            clients: 50,
            requests: [50_000, 200_000],
            rounds: 3,
            tests: "set,get,incr,lpush,lpop,hset,mset".into(),
            persistence: vec![None, Some("everysec")],
            shm_gets: 200_000,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// How long a server has to start answering PING.
const READY: Duration = Duration::from_secs(15);

/// Runs the kv suite; `progress` hears what is being measured.
pub fn run(cfg: &KvConfig, progress: &mut dyn FnMut(&str)) -> KvSection {
    let redis = version("redis-server", &["--version"]);
    let bench = version("redis-benchmark", &["--version"]);
    let ours = version(&cfg.program.to_string_lossy(), &["--version"]);
    let mut servers = vec![KvServer {
        name: IPCKIT.into(),
        version: ours.as_ref().ok().cloned(),
        skipped: bench.as_ref().err().cloned(),
    }];
    servers.push(KvServer {
        name: REDIS.into(),
        version: redis.as_ref().ok().cloned(),
        skipped: redis.as_ref().err().or(bench.as_ref().err()).cloned(),
    });
    let mut samples: Vec<Tagged> = Vec::new();
    let pipelines = [(1u32, cfg.requests[0]), (16u32, cfg.requests[1])];
    for round in 0..cfg.rounds {
        for (pi, persistence) in cfg.persistence.iter().enumerate() {
            // Each server goes first in half the (round, persistence) pairs.
            let mut order = [IPCKIT, REDIS];
            if (round + pi) % 2 == 1 {
                order.reverse();
            }
            for server in order {
                let persist = persistence.unwrap_or("off").to_string();
                if let Some(why) = servers
                    .iter()
                    .find(|s| s.name == server)
                    .and_then(|s| s.skipped.clone())
                {
                    if round == 0 {
                        for (p, _) in pipelines {
                            samples.push((
                                server.into(),
                                persist.clone(),
                                p,
                                String::new(),
                                Err(format!("skipped: {why}")),
                            ));
                        }
                    }
                    continue;
                }
                if cfg.interrupt.load(Ordering::SeqCst) {
                    break;
                }
                progress(&format!(
                    "round {}/{}: {server}, persistence {persist}",
                    round + 1,
                    cfg.rounds
                ));
                let started = Server::start(server, &cfg.program, *persistence, None);
                for (p, n) in pipelines {
                    // One redis-benchmark per test, so the server's CPU time (from
                    // /proc/PID/stat around it) belongs to that test alone.
                    for test in cfg.tests.split(',') {
                        let result = started.as_ref().map_err(|e| e.clone()).and_then(|s| {
                            let before = s.cpu_ns();
                            let mut rows =
                                benchmark(&s.sock, cfg.clients, n, p, test, &cfg.interrupt)?;
                            if let (Some(a), Some(b)) = (before, s.cpu_ns()) {
                                for r in &mut rows {
                                    r.cpu_us_per_req = Some((b - a) as f64 / 1e3 / n as f64);
                                }
                            }
                            Ok(rows)
                        });
                        match result {
                            Ok(rows) => {
                                for row in rows {
                                    samples.push((
                                        server.into(),
                                        persist.clone(),
                                        p,
                                        row.test.clone(),
                                        Ok(row),
                                    ));
                                }
                            }
                            Err(e) => samples.push((
                                server.into(),
                                persist.clone(),
                                p,
                                String::new(),
                                Err(e),
                            )),
                        }
                    }
                }
                if let Ok(s) = started
                    && let Err(e) = s.stop()
                {
                    samples.push((server.into(), persist.clone(), 0, String::new(), Err(e)));
                }
            }
        }
    }
    let runs = medians(samples);
    let shm = if cfg.interrupt.load(Ordering::SeqCst) {
        None
    } else {
        progress("shared-memory GET against a socket GET");
        Some(shm_vs_socket(cfg))
    };
    let (shm, shm_error) = match shm {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let mut runs = runs;
    if let Some(e) = shm_error {
        runs.push(KvRun {
            server: IPCKIT.into(),
            persistence: "off".into(),
            pipeline: 1,
            test: "shm GET".into(),
            rps: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            rounds: Vec::new(),
            server_cpu_us_per_req: None,
            skipped: None,
            error: Some(e),
        });
    }
    let targets = targets(&runs, shm.as_ref());
    KvSection {
        log_filesystem: Some(filesystem(&std::env::temp_dir())),
        clients: cfg.clients,
        requests: cfg.requests,
        rounds: cfg.rounds,
        servers,
        runs,
        shm,
        targets,
    }
}

/// A sample with what it belongs to: server, persistence, `-P`, test.
type Tagged = (String, String, u32, String, Result<Sample, String>);

/// One redis-benchmark test's figures.
#[derive(Clone, Debug)]
struct Sample {
    test: String,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server's CPU time (user + system) per request, microseconds.
    cpu_us_per_req: Option<f64>,
}

/// Rows from the rounds: the median round by requests/s per server, persistence, `-P` and
/// test; an error in any round makes the row an error.
fn medians(samples: Vec<Tagged>) -> Vec<KvRun> {
    let mut runs: Vec<KvRun> = Vec::new();
    let mut rounds: Vec<Vec<Sample>> = Vec::new();
    for (server, persistence, pipeline, test, result) in samples {
        let i = match runs.iter().position(|r| {
            r.server == server
                && r.persistence == persistence
                && r.pipeline == pipeline
                && r.test == test
        }) {
            Some(i) => i,
            None => {
                runs.push(KvRun {
                    server,
                    persistence,
                    pipeline,
                    test: if test.is_empty() {
                        "(all)".into()
                    } else {
                        test
                    },
                    rps: 0.0,
                    p50_ms: 0.0,
                    p99_ms: 0.0,
                    rounds: Vec::new(),
                    server_cpu_us_per_req: None,
                    skipped: None,
                    error: None,
                });
                rounds.push(Vec::new());
                runs.len() - 1
            }
        };
        match result {
            Ok(s) => rounds[i].push(s),
            Err(e) if e.starts_with("skipped: ") => {
                runs[i].skipped = Some(e["skipped: ".len()..].into())
            }
            Err(e) => runs[i].error = Some(e),
        }
    }
    for (run, samples) in runs.iter_mut().zip(rounds) {
        run.rounds = samples.iter().map(|s| s.rps).collect();
        let mut sorted = samples;
        sorted.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        if let Some(m) = sorted.get(sorted.len() / 2) {
            run.rps = m.rps;
            run.p50_ms = m.p50_ms;
            run.p99_ms = m.p99_ms;
            run.server_cpu_us_per_req = m.cpu_us_per_req;
        }
    }
    runs
}

/// `PROGRAM --version`'s first line, or why it cannot be run.
fn version(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()),
        Ok(out) => Err(format!("`{program} --version` failed ({})", out.status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{program} is not installed (apt-get install redis-server redis-tools)"
        )),
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}

/// A server process on a Unix socket in a private directory of its own; stopped (and the
/// directory removed) on drop.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    sock: PathBuf,
    /// The mirror's name, removed on drop if a killed server left it.
    shm: Option<String>,
}

impl Server {
    /// Starts `kind` with `persistence` (and, for ipckit, the mirror at `shm`), and waits
    /// until it answers PING.
    fn start(
        kind: &str,
        program: &Path,
        persistence: Option<&str>,
        shm: Option<&str>,
    ) -> Result<Server, String> {
        // The directory belongs to `server` from here: every failure below removes it.
        let dir = private_dir()?;
        let mut server = Server {
            child: None,
            sock: dir.join("kv.sock"),
            dir,
            shm: shm.map(str::to_string),
        };
        let (dir, sock) = (server.dir.clone(), server.sock.clone());
        let log = dir.join("server.log");
        let mut cmd = if kind == IPCKIT {
            let mut c = Command::new(program);
            c.args(["kv", "serve"])
                .arg(format!("unix:{}", sock.display()));
            if let Some(fsync) = persistence {
                c.arg("--appendonly")
                    .arg(dir.join("kv.aof"))
                    .args(["--fsync", fsync]);
            }
            if let Some(name) = shm {
                c.args(["--shm", name]);
            }
            c
        } else {
            let mut c = Command::new("redis-server");
            c.args(["--port", "0", "--unixsocket"])
                .arg(&sock)
                .args(["--unixsocketperm", "600", "--save", "", "--dir"])
                .arg(&dir)
                .args(["--daemonize", "no", "--protected-mode", "no"]);
            match persistence {
                Some(fsync) => c.args(["--appendonly", "yes", "--appendfsync", fsync]),
                None => c.args(["--appendonly", "no"]),
            };
            c
        };
        let out =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        die_with_parent(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {kind}: {e}"))?;
        server.child = Some(child);
        server.wait_ready(kind, &log)?;
        Ok(server)
    }

    fn wait_ready(&mut self, kind: &str, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Ok(mut s) = UnixStream::connect(&self.sock) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reply = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return Ok(());
                }
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let said = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
                let last = &lines[lines.len().saturating_sub(3)..];
                return Err(match exited {
                    Some(status) => format!(
                        "{kind} exited ({status}) before serving: {}",
                        last.join(" / ")
                    ),
                    None => format!("{kind} did not answer PING within {} s", READY.as_secs()),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The server's CPU time so far (user + system, from `/proc/PID/stat`, in clock ticks
    /// turned into nanoseconds).
    fn cpu_ns(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command's closing parenthesis: state is the 3rd field, utime
        // the 14th, stime the 15th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        let hz = rustix::param::clock_ticks_per_second();
        Some(ticks * 1_000_000_000 / hz)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s; an exit it was not asked
    /// for (a crash during the run) is the error.
    fn stop(mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server died during the run ({status})"));
        }
        terminate(&mut child);
        Ok(())
    }
}

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) with the pid of a child not yet waited for: it cannot be reused.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // A server that had to be killed could not remove its mirror.
        if let Some(name) = &self.shm {
            let _ = ipckit::shm::posix::remove(name);
        }
    }
}

/// The child gets SIGKILL if the bench dies first (a second Ctrl-C, a crash): no server
/// outlives its bench. `prctl(PR_SET_PDEATHSIG)`, see
/// [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html).
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, and calls only prctl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The type of the filesystem `dir` is on, by `statfs(2)`'s magic number.
fn filesystem(dir: &Path) -> String {
    let Ok(st) = rustix::fs::statfs(dir) else {
        return "an unknown filesystem".into();
    };
    let name = match st.f_type as u64 {
        0x0102_1994 => "tmpfs (an fsync costs nothing)",
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x2FC1_2FC1 => "zfs",
        other => return format!("filesystem type {other:#x}"),
    };
    format!("{name} ({})", dir.display())
}

/// A new directory only this user can enter, in the temporary directory.
fn private_dir() -> Result<PathBuf, String> {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ipckit-kvbench-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// One redis-benchmark run: its CSV rows, or what went wrong (its error line).
fn benchmark(
    sock: &Path,
    clients: u32,
    n: u64,
    p: u32,
    tests: &str,
    interrupt: &AtomicBool,
) -> Result<Vec<Sample>, String> {
    let mut cmd = Command::new("redis-benchmark");
    die_with_parent(&mut cmd);
    let child = cmd
        .arg("-s")
        .arg(sock)
        .args([
            "-c",
            &clients.to_string(),
            "-n",
            &n.to_string(),
            "-P",
            &p.to_string(),
            "-t",
            tests,
            "--csv",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting redis-benchmark: {e}"))?;
    let out = wait_output(child, Duration::from_secs(600), interrupt)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = parse_csv(&stdout);
    if !out.status.success() || rows.is_empty() {
        let said = stderr
            .lines()
            .chain(stdout.lines())
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "redis-benchmark -P {p} failed ({}): {said}",
            out.status
        ));
    }
    if let Some(r) = rows.iter().find(|r| !(r.rps.is_finite() && r.rps > 0.0)) {
        return Err(format!(
            "redis-benchmark -P {p} gave {} requests/s for {}: too few requests to time (raise --requests)",
            r.rps, r.test
        ));
    }
    Ok(rows)
}

/// `child`'s output, or an error once `limit` has passed (the child then killed).
fn wait_output(
    mut child: Child,
    limit: Duration,
    interrupt: &AtomicBool,
) -> Result<std::process::Output, String> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Readers on threads: a full pipe must not stall the child while it is waited for.
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline && !interrupt.load(Ordering::SeqCst) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                if interrupt.load(Ordering::SeqCst) {
                    return Err("interrupted".into());
                }
                return Err(format!(
                    "redis-benchmark did not finish within {} s",
                    limit.as_secs()
                ));
            }
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// redis-benchmark's `--csv`: a header, then `"test","rps","avg","min","p50","p95","p99","max"`.
fn parse_csv(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split("\",\"").map(|f| f.trim_matches('"')).collect();
            if f.len() < 7 || f[0] == "test" {
                return None;
            }
            Some(Sample {
                test: f[0].to_string(),
                rps: f[1].parse().ok()?,
                p50_ms: f[4].parse().ok()?,
                p99_ms: f[6].parse().ok()?,
                cpu_us_per_req: None,
            })
        })
        .collect()
}

/// GET of one mirrored key over the socket, then through shared memory.
fn shm_vs_socket(cfg: &KvConfig) -> Result<KvShm, String> {
    const KEY: &[u8] = b"ipckit:bench:shm";
    let value: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
    let name = format!("/ipckit-kvbench-{}", std::process::id());
    let server = Server::start(IPCKIT, &cfg.program, None, Some(&name))?;
    let mut s = UnixStream::connect(&server.sock).map_err(|e| format!("connecting: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut set = Vec::new();
    ipckit_kv::aof::encode(&[&b"SET"[..], KEY, &value], &mut set);
    s.write_all(&set).map_err(|e| format!("SET: {e}"))?;
    let mut ok = [0u8; 5];
    s.read_exact(&mut ok).map_err(|e| format!("SET: {e}"))?;
    if &ok != b"+OK\r\n" {
        return Err(format!("SET replied {:?}", String::from_utf8_lossy(&ok)));
    }
    let mut get = Vec::new();
    ipckit_kv::aof::encode(&[&b"GET"[..], KEY], &mut get);
    let mut expect = format!("${}\r\n", value.len()).into_bytes();
    expect.extend_from_slice(&value);
    expect.extend_from_slice(b"\r\n");
    let mut reply = vec![0u8; expect.len()];
    let n = (cfg.shm_gets / 10).max(1000);
    let mut rtts = Vec::with_capacity(n as usize);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&get).map_err(|e| format!("GET: {e}"))?;
        s.read_exact(&mut reply).map_err(|e| format!("GET: {e}"))?;
        rtts.push(t.elapsed().as_nanos() as f64);
        if reply != expect {
            return Err(format!(
                "GET over the socket replied {:?}",
                String::from_utf8_lossy(&reply)
            ));
        }
    }
    let socket_gets_per_s = n as f64 / started.elapsed().as_secs_f64();

    let reader = ipckit_kv::shm::ShmReader::open(&name).map_err(|e| format!("{e}"))?;
    match reader.get(KEY).map_err(|e| format!("{e}"))? {
        ipckit_kv::shm::Lookup::Found(v) if v == value => {}
        other => return Err(format!("the mirror gave {other:?} for the key just SET")),
    }
    const BATCH: u64 = 64;
    let batches = (cfg.shm_gets / BATCH).max(100);
    let mut per_get = Vec::with_capacity(batches as usize);
    let mut wrong = 0u64;
    let started = Instant::now();
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..BATCH {
            match std::hint::black_box(reader.get(std::hint::black_box(KEY))) {
                Ok(ipckit_kv::shm::Lookup::Found(v)) if v.len() == value.len() => {}
                _ => wrong += 1,
            }
        }
        per_get.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    let shm_gets_per_s = (batches * BATCH) as f64 / started.elapsed().as_secs_f64();
    if wrong > 0 {
        return Err(format!("{wrong} shared-memory GETs did not give the value"));
    }
    server.stop()?;
    Ok(KvShm {
        value_size: value.len(),
        shm_get_p50_ns: median(&mut per_get),
        shm_gets_per_s,
        socket_get_p50_ns: median(&mut rtts),
        socket_gets_per_s,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_read_and_other_lines_ignored() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"SET\",\"88888.89\",\"0.341\",\"0.056\",\"0.271\",\"0.535\",\"1.719\",\"5.431\"\n\
                    \"MSET (10 keys)\",\"350877.19\",\"2.089\",\"0.176\",\"1.615\",\"6.039\",\"8.199\",\"8.343\"\n\
                    garbage\n";
        let rows = parse_csv(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].test, "MSET (10 keys)");
        assert!((rows[0].rps - 88888.89).abs() < 1e-6);
        assert!((rows[0].p99_ms - 1.719).abs() < 1e-9);
    }

    #[test]
    fn a_row_is_its_median_round_and_an_error_in_any_round_marks_it() {
        let s = |rps: f64| Sample {
            test: "SET".into(),
            rps,
            p50_ms: rps / 1e6,
            p99_ms: 1.0,
            cpu_us_per_req: Some(rps),
        };
        let row = |r: Result<Sample, String>| {
            (
                IPCKIT.to_string(),
                "off".to_string(),
                1,
                "SET".to_string(),
                r,
            )
        };
        let runs = medians(vec![row(Ok(s(3.0))), row(Ok(s(1.0))), row(Ok(s(2.0)))]);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].rps, 2.0);
        assert_eq!(runs[0].rounds, vec![3.0, 1.0, 2.0]);
        assert_eq!(
            runs[0].server_cpu_us_per_req,
            Some(2.0),
            "the median round's"
        );
        let runs = medians(vec![
            row(Ok(s(3.0))),
            row(Err("redis-benchmark failed".into())),
        ]);
        assert!(!runs[0].measured());
    }
}
