//! Test support shared by the tests of the `ipckit` command (`mod common;` in each file), so
//! that there is one way to do each thing and every wait in it is bounded:
//!
//! - [`run_with_timeout`] runs a command to its end: killed, and the test failed with the
//!   command and what it said, when it has not exited in time. [`run`] and [`ipckit_run`]
//!   are its usual forms. No test calls `Command::output()` or `status()`.
//! - [`Proc`] is a command left running (a server, a reader), its output read line by line in
//!   the background; every wait on it is bounded by [`T`], and it is killed on drop.
//! - Guards that remove what a test made even when an assertion fails: [`Rm`] (`ipckit rm
//!   --force`, reporting a removal that fails), [`RemoveMq`], [`RemoveShm`], [`RemovePath`];
//!   [`tempdir`] for files.
//! - [`spawn`]: re-executing the test binary as a child that runs one role (the library's
//!   test support, shared with the `ipckit` crate's tests).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ipckit::notify::pidfd::PidFd;

#[path = "../../../ipckit/tests/common/mod.rs"]
pub mod spawn;

/// The bound on every wait: long enough for a loaded 2-core CI machine.
pub const T: Duration = Duration::from_secs(20);

/// `nobody`: the other user of the tests that need one.
pub const NOBODY: u32 = 65534;

/// The `ipckit` binary under test.
pub fn ipckit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipckit"))
}

/// Bytes as text, for messages and for assertions on text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a command run to its end gave.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Its process id (it has exited: only for comparing with what a peer reported).
    pub pid: i32,
}

impl Ran {
    /// Standard output as text.
    pub fn out(&self) -> String {
        text(&self.stdout)
    }

    /// Standard error as text.
    pub fn err(&self) -> String {
        text(&self.stderr)
    }

    /// Standard output, line by line.
    pub fn out_lines(&self) -> Vec<String> {
        self.out().lines().map(str::to_string).collect()
    }

    /// Standard error, line by line.
    pub fn err_lines(&self) -> Vec<String> {
        self.err().lines().map(str::to_string).collect()
    }
}

/// Reads `r` to its end on a thread; the receiver gets everything once it ends.
fn read_all(r: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut all);
        }
        let _ = tx.send(all);
    });
    rx
}

/// Runs `cmd` to its end with `stdin` as its standard input: SIGKILLed, and the test failed
/// with the command and its standard error, when it has not exited within `limit`. Its
/// output is read while it runs (a full pipe cannot stall it) and its input written from a
/// thread (a command that does not read it cannot stall the test).
pub fn run_with_timeout(cmd: Command, stdin: &[u8], limit: Duration) -> Ran {
    run_with_stdout(cmd, stdin, Stdio::piped(), limit)
}

/// [`run_with_timeout`] with standard output going to `stdout` (read back only when it is
/// `Stdio::piped()`).
pub fn run_with_stdout(cmd: Command, stdin: &[u8], stdout: Stdio, limit: Duration) -> Ran {
    let what = format!("{cmd:?}");
    try_run_with_stdout(cmd, stdin, stdout, limit)
        .unwrap_or_else(|e| panic!("starting {what}: {e}"))
}

/// [`run`], or `None` when `cmd`'s program is not installed.
pub fn run_if_installed(cmd: Command) -> Option<Ran> {
    match try_run_with_stdout(cmd, b"", Stdio::piped(), T) {
        Ok(ran) => Some(ran),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("starting a command: {e}"),
    }
}

/// [`run_with_stdout`], with an error when the command cannot be started.
fn try_run_with_stdout(
    mut cmd: Command,
    stdin: &[u8],
    stdout: Stdio,
    limit: Duration,
) -> std::io::Result<Ran> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as i32;
    let pidfd = PidFd::open(child.id()).unwrap();
    let input = child.stdin.take().unwrap();
    if stdin.is_empty() {
        drop(input); // end of input at once
    } else {
        let data = stdin.to_vec();
        let mut input = input;
        std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
    }
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let exited = pidfd.wait_exit_timeout(limit).unwrap();
    if !exited {
        let _ = child.kill();
    }
    // Exited, or SIGKILLed just now: reaping does not wait.
    let status = child.wait().unwrap();
    let collect = |rx: Receiver<Vec<u8>>, name: &str| {
        rx.recv_timeout(T).unwrap_or_else(|_| {
            panic!("{what}: its {name} stayed open {T:?} after it exited (a process it started holds it)")
        })
    };
    let stderr = collect(err, "stderr");
    if !exited {
        panic!(
            "{what} did not exit within {limit:?} and was killed; its stderr: {}",
            text(&stderr)
        );
    }
    let stdout = collect(out, "stdout");
    Ok(Ran {
        status,
        stdout,
        stderr,
        pid,
    })
}

/// Runs `cmd` to its end within [`T`], with no input.
pub fn run(cmd: Command) -> Ran {
    run_with_timeout(cmd, b"", T)
}

/// Runs `ipckit ARGS` to its end within [`T`], with no input.
pub fn ipckit_run<S: AsRef<OsStr>>(args: &[S]) -> Ran {
    let mut cmd = ipckit();
    cmd.args(args);
    run(cmd)
}

/// Lines read from `r` on a thread, as they come.
fn lines(r: impl Read + Send + 'static) -> Receiver<String> {
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

/// A running command with its stdout and stderr read line by line in the background, and its
/// stdin kept by the test until it closes it. Every wait on it is bounded by [`T`]; it is
/// killed and reaped on drop if still running.
pub struct Proc {
    pub child: Child,
    pidfd: PidFd,
    stdin: Option<ChildStdin>,
    pub out: Receiver<String>,
    pub err: Receiver<String>,
}

impl Proc {
    /// Starts `cmd`.
    pub fn start(mut cmd: Command) -> Proc {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let pidfd = PidFd::open(child.id()).unwrap();
        Proc {
            stdin: child.stdin.take(),
            out: lines(child.stdout.take().unwrap()),
            err: lines(child.stderr.take().unwrap()),
            child,
            pidfd,
        }
    }

    /// Starts `ipckit ARGS`.
    pub fn run(args: &[&str]) -> Proc {
        let mut cmd = ipckit();
        cmd.args(args);
        Proc::start(cmd)
    }

    /// Starts `ipckit ARGS` and waits for its "receiving on" / "listening on" line.
    pub fn server(args: &[&str]) -> Proc {
        let p = Proc::run(args);
        let first = p
            .err
            .recv_timeout(T)
            .unwrap_or_else(|e| panic!("ipckit {args:?}: no ready line within {T:?} ({e})"));
        assert!(first.contains(" on "), "unexpected first line: {first}");
        p
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line on its stdout, within [`T`].
    pub fn out_line(&self) -> String {
        self.out
            .recv_timeout(T)
            .unwrap_or_else(|e| panic!("no line on stdout within {T:?} ({e})"))
    }

    /// Writes all of `data` to its stdin and closes it.
    pub fn stdin(&mut self, data: &[u8]) {
        self.write_stdin(data);
        self.close_stdin();
    }

    /// Writes `data` to its stdin from a thread (the child may stop reading it; the write
    /// then fails once the child has exited), and keeps stdin open while the handle lives.
    pub fn feed(&mut self, data: Vec<u8>) -> std::thread::JoinHandle<ChildStdin> {
        let mut stdin = self.stdin.take().expect("stdin still ours");
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
            stdin
        })
    }

    /// Writes `data` to its stdin, keeping it open.
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still ours");
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes its stdin: end of input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits within [`T`] for it to exit (the test fails if it does not; the drop kills it).
    pub fn wait(&mut self) -> ExitStatus {
        if !self.pidfd.wait_exit_timeout(T).unwrap() {
            let said: Vec<String> = self.err.try_iter().collect();
            panic!(
                "process {} did not exit within {T:?}; its stderr so far: {said:?}",
                self.child.id()
            );
        }
        self.child.wait().unwrap()
    }

    /// Every line left in `rx` (its stdout or stderr) up to the end of the stream, which
    /// must come within [`T`].
    pub fn rest(rx: &Receiver<String>) -> Vec<String> {
        let deadline = Instant::now() + T;
        let mut all = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => all.push(line),
                Err(RecvTimeoutError::Disconnected) => return all,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the output did not end within {T:?}; so far: {all:?}")
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `ready` until it gives a value, failing the test with `what` if it has not within
/// [`T`]: for a state of another process that nothing signals (what /proc shows).
pub fn wait_until<V>(what: &str, mut ready: impl FnMut() -> Option<V>) -> V {
    let deadline = Instant::now() + T;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {T:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A private directory for one test's files, removed with everything in it on drop (even on
/// a panic).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ipckit-cli-test-")
        .tempdir()
        .unwrap()
}

/// True when running as root; otherwise says the test is skipped (and fails in CI, which
/// runs as root).
pub fn need_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs as root: this test needs it"
    );
    eprintln!("SKIPPED: needs root");
    false
}

/// Where a POSIX shared memory name (`/NAME`) lives.
pub fn dev_shm(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{}", name.trim_start_matches('/')))
}

/// Removes an object with `ipckit rm --force URI` on drop, whoever made it and whether or not
/// something still uses it. An object already gone is fine; a removal that fails otherwise
/// fails the test (or, during a panic, is said on stderr), so a leak is never silent.
pub struct Rm(pub String);

impl Drop for Rm {
    fn drop(&mut self) {
        let r = ipckit_run(&["rm", "--force", &self.0]);
        if r.status.success() || r.err().contains("no such object") {
            return;
        }
        let msg = format!(
            "cleanup: ipckit rm --force {} failed ({}): {}",
            self.0,
            r.status,
            r.err()
        );
        if std::thread::panicking() {
            eprintln!("{msg}");
        } else {
            panic!("{msg}");
        }
    }
}

/// Unlinks a POSIX queue name (`/NAME`) when dropped.
pub struct RemoveMq(pub String);

impl Drop for RemoveMq {
    fn drop(&mut self) {
        let _ = ipckit::mq::posix::remove(&self.0);
    }
}

/// Removes the System V segment with this key, if there is one, when dropped.
pub struct RemoveSegmentByKey(pub i32);

impl Drop for RemoveSegmentByKey {
    fn drop(&mut self) {
        use ipckit::shm::sysv::SysvShm;
        if let Ok(s) = SysvShm::open(ipckit::name::SysvKey::Key(self.0), ipckit::Access::ReadOnly) {
            let _ = s.remove();
        }
    }
}

/// Unlinks a POSIX shared memory name (`/NAME`) when dropped.
pub struct RemoveShm(pub String);

impl Drop for RemoveShm {
    fn drop(&mut self) {
        let _ = ipckit::shm::posix::remove(&self.0);
    }
}

/// Removes a file, or a directory with all it holds, on drop, whatever made it.
pub struct RemovePath(pub PathBuf);

impl Drop for RemovePath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
    }
}
