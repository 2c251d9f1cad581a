//! Cross-process test support: a test re-executes its own test binary as a child process that
//! runs one role (the `child` test of the same file, with `IPCKIT_ROLE` set), talks to it over
//! the child's stdin/stdout in lines, and bounds every wait with a timeout.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ipckit::notify::pidfd::PidFd;

/// The bound on every wait in the tests: long enough for a loaded 2-core CI machine.
pub const T: Duration = Duration::from_secs(20);

const PREFIX: &str = "IPCKIT:";

/// The role this process was started for, when it is a child.
pub fn role() -> Option<String> {
    std::env::var("IPCKIT_ROLE").ok()
}

/// A value the parent passed to the child.
pub fn arg(name: &str) -> String {
    std::env::var(format!("IPCKIT_ARG_{name}"))
        .unwrap_or_else(|_| panic!("child needs IPCKIT_ARG_{name}"))
}

/// Child side: tells the parent one line.
pub fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{PREFIX}{}", line.as_ref()).unwrap();
    out.flush().unwrap();
}

/// Child side: waits for one line from the parent (the parent's drop closes stdin, so this
/// cannot wait past the parent).
pub fn hear() -> String {
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s).unwrap();
    s.trim_end().to_string()
}

/// How to start a child.
pub struct Spawn<'a> {
    test: &'a str,
    role: &'a str,
    args: Vec<(String, String)>,
    fds: Vec<(i32, i32)>,
    blocked: Vec<i32>,
}

/// Starts building a child that runs `role` through the test function `test` of this binary.
pub fn child<'a>(test: &'a str, role: &'a str) -> Spawn<'a> {
    Spawn {
        test,
        role,
        args: Vec::new(),
        fds: Vec::new(),
        blocked: Vec::new(),
    }
}

impl<'a> Spawn<'a> {
    /// Passes `value` as `arg(name)`.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push((name.to_string(), value.to_string()));
        self
    }

    /// Gives the child `fd` as descriptor number `target` (inherited across exec).
    pub fn fd(mut self, fd: BorrowedFd<'_>, target: i32) -> Self {
        self.fds.push((fd.as_raw_fd(), target));
        self
    }

    /// Starts the child with `signals` blocked in every thread (the mask survives exec).
    pub fn blocked(mut self, signals: &[i32]) -> Self {
        self.blocked.extend_from_slice(signals);
        self
    }

    pub fn start(self) -> Child {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            self.test,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("IPCKIT_ROLE", self.role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in &self.args {
            cmd.env(format!("IPCKIT_ARG_{k}"), v);
        }
        let fds = self.fds.clone();
        let blocked = self.blocked.clone();
        // SAFETY: only async-signal-safe calls (dup2, fcntl, sigemptyset/sigaddset,
        // sigprocmask) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for &(src, dst) in &fds {
                    if src == dst {
                        if libc::fcntl(src, libc::F_SETFD, 0) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(src, dst) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if !blocked.is_empty() {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    for &s in &blocked {
                        libc::sigaddset(&mut set, s);
                    }
                    if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawning child process");
        let pidfd = PidFd::open(child.id()).expect("pidfd for child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(msg) = line.strip_prefix(PREFIX)
                    && tx.send(msg.to_string()).is_err()
                {
                    break;
                }
            }
        });
        Child {
            child,
            pidfd,
            lines,
        }
    }
}

/// A running child; killed and reaped on drop if still running.
pub struct Child {
    child: std::process::Child,
    pidfd: PidFd,
    lines: mpsc::Receiver<String>,
}

impl Child {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line the child said, within [`T`].
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(T) {
            Ok(l) => l,
            Err(_) => panic!("child {} said nothing within {T:?} (or exited)", self.pid()),
        }
    }

    /// Tells the child one line.
    pub fn tell(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits within [`T`] for the child to exit and returns its status.
    pub fn wait(&mut self) -> ExitStatus {
        assert!(
            self.pidfd.wait_exit_timeout(T).unwrap(),
            "child {} did not exit within {T:?}",
            self.pid()
        );
        self.child.wait().unwrap()
    }

    /// Waits for the child and asserts it succeeded.
    pub fn success(mut self) {
        let st = self.wait();
        assert!(st.success(), "child {} failed: {st}", self.pid());
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) {
        self.pidfd.send_signal(libc::SIGKILL).unwrap();
        self.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh private directory for socket files and FIFOs, removed with everything in it on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ipckit-test-")
        .tempdir()
        .unwrap()
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Reads until end of stream, each read bounded by [`T`].
pub fn read_to_eof(r: &mut impl ipckit::transport::TimedRead) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match r.read_timeout(&mut buf, T).unwrap() {
            Some(0) => return all,
            Some(n) => all.extend_from_slice(&buf[..n]),
            None => panic!("no end of stream within {T:?}"),
        }
    }
}
