//! The other processes of a scenario: this program started again with [`ROLE_ENV`] naming
//! the role to play. Parent and child talk in lines over the child's stdin and stdout, and
//! every wait for the child is bounded by [`T`].

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use ipckit::notify::pidfd::PidFd;

use crate::Result;

/// The environment variable that makes this program a scenario's child process.
pub const ROLE_ENV: &str = "IPCKIT_LAB_ROLE";
const ARG_PREFIX: &str = "IPCKIT_LAB_ARG_";
/// The descriptor numbers the parent passed, comma-separated (see [`take_fd`]).
const FDS_ENV: &str = "IPCKIT_LAB_FDS";
const PREFIX: &str = "LAB:";

/// The bound on every wait for another process: long enough for a loaded 2-core machine.
pub const T: Duration = Duration::from_secs(10);

/// A child role: runs in the child process.
pub(crate) type Role = (&'static str, fn(&Args) -> Result<()>);

/// True when this process was started as a scenario's child.
pub fn is_child() -> bool {
    std::env::var_os(ROLE_ENV).is_some()
}

/// Plays the role [`ROLE_ENV`] names and exits: 0 when it succeeded, 1 (with the error on
/// stderr) when it failed, 2 for a role that does not exist.
pub fn child_main() -> ! {
    let role = std::env::var(ROLE_ENV).unwrap_or_default();
    let found = crate::scenarios::ROLES
        .iter()
        .flat_map(|r| r.iter())
        .find(|(name, _)| *name == role);
    let Some((_, play)) = found else {
        let _ = writeln!(std::io::stderr(), "ipckit lab: no child role '{role}'");
        std::process::exit(2);
    };
    match play(&Args) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ipckit lab child {role}: {e}");
            std::process::exit(1);
        }
    }
}

/// The values the parent gave a child.
pub(crate) struct Args;

impl Args {
    /// The value `name`.
    pub fn get(&self, name: &str) -> Result<String> {
        std::env::var(format!("{ARG_PREFIX}{name}"))
            .map_err(|_| format!("the child needs {ARG_PREFIX}{name}").into())
    }

    /// The value `name`, parsed.
    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<T> {
        self.get(name)?
            .parse()
            .map_err(|_| format!("{ARG_PREFIX}{name} does not parse").into())
    }
}

/// Child side: takes ownership of descriptor `n`, which the parent passed with
/// [`Spawn::fd`]. Fails if it is not open, or if it was taken already: each number is handed
/// out once, so two owners can never close it twice.
pub(crate) fn take_fd(n: i32) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    static TAKEN: Mutex<Vec<i32>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().map_err(|_| "descriptor registry poisoned")?;
    if taken.contains(&n) {
        return Err(format!("descriptor {n} was taken already").into());
    }
    let passed = std::env::var(FDS_ENV).unwrap_or_default();
    if !passed.split(',').any(|p| p == n.to_string()) {
        return Err(format!("the parent passed no descriptor {n}").into());
    }
    // SAFETY: F_GETFD only reads the flags of descriptor `n`; it touches no memory.
    if unsafe { libc::fcntl(n, libc::F_GETFD) } == -1 {
        return Err(format!("no descriptor {n}: the parent passed none").into());
    }
    taken.push(n);
    // SAFETY: `n` is open (checked above) and the parent says it passed it (FDS_ENV) to this
    // freshly executed process for the role alone; the registry above makes this its only
    // owner.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(n) })
}

/// Waits, at most [`T`], until process `pid` sleeps in one of the system calls `nrs` (with first
/// argument `arg0`, when given): the kernel's own word that the process is blocked there, read
/// from `/proc/PID/syscall` (its main thread) every millisecond. True once it is, false if it
/// never was.
// c_long is i64 where the lab runs; the cast is for the others.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn wait_sleeping_in(pid: u32, nrs: &[libc::c_long], arg0: Option<u64>) -> Result<bool> {
    let path = format!("/proc/{pid}/syscall");
    let deadline = std::time::Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        if let Some((n, a)) = ipckit::host::procfs::blocked_syscall(&text)
            && nrs.contains(&(n as libc::c_long))
            && arg0.is_none_or(|want| want == a)
        {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Child side: tells the parent one line.
pub(crate) fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{PREFIX}{}", line.as_ref());
    let _ = out.flush();
}

/// Child side: waits for one line from the parent; `None` when the parent closed stdin (it
/// is gone or done), so a child never waits past its parent.
pub(crate) fn hear() -> Option<String> {
    let mut s = String::new();
    match std::io::stdin().lock().read_line(&mut s) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(s.trim_end().to_string()),
    }
}

/// How to start a child.
pub(crate) struct Spawn {
    role: &'static str,
    args: Vec<(String, String)>,
    fds: Vec<(i32, i32)>,
}

/// Starts building a child that plays `role`.
pub(crate) fn spawn(role: &'static str) -> Spawn {
    Spawn {
        role,
        args: Vec::new(),
        fds: Vec::new(),
    }
}

impl Spawn {
    /// Passes `value` as `Args::get(name)`.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push((name.to_string(), value.to_string()));
        self
    }

    /// Gives the child `fd` as its descriptor number `target` (inherited across exec).
    pub fn fd(mut self, fd: BorrowedFd<'_>, target: i32) -> Self {
        self.fds.push((fd.as_raw_fd(), target));
        self
    }

    /// Starts the child. It dies with this process (`PR_SET_PDEATHSIG`).
    pub fn start(self) -> Result<Child> {
        let mut cmd = Command::new(std::env::current_exe()?);
        // A process group of its own: a terminal's Ctrl-C reaches only the lab, which lets the
        // scenario finish and clean up (the child still dies with the lab: PR_SET_PDEATHSIG).
        cmd.process_group(0);
        let passed: Vec<String> = self.fds.iter().map(|(_, n)| n.to_string()).collect();
        cmd.env(FDS_ENV, passed.join(","));
        cmd.env(ROLE_ENV, self.role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.args {
            cmd.env(format!("{ARG_PREFIX}{k}"), v);
        }
        let fds = self.fds.clone();
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid, dup2, fcntl) run between fork and
        // exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The lab may have died before the prctl: then nobody would kill this child.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                for &(src, dst) in &fds {
                    let r = if src == dst {
                        libc::fcntl(src, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(src, dst)
                    };
                    if r == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pidfd = match PidFd::open(child.id()) {
            Ok(p) => p,
            Err(e) => {
                // Without a pidfd no wait could be bounded: do not leave the child behind.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
        };
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
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
        let errors = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&errors);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if let Ok(mut e) = sink.lock() {
                    e.push_str(&line);
                    e.push('\n');
                }
            }
        });
        Ok(Child {
            role: self.role,
            child,
            pidfd,
            lines,
            errors,
            reaped: None,
        })
    }
}

/// A running child; killed and reaped on drop if still running.
pub(crate) struct Child {
    role: &'static str,
    child: std::process::Child,
    pidfd: PidFd,
    lines: mpsc::Receiver<String>,
    errors: Arc<Mutex<String>>,
    reaped: Option<ExitStatus>,
}

impl Child {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.errors
            .lock()
            .map(|e| e.trim().to_string())
            .unwrap_or_default()
    }

    /// The next line it says, within [`T`].
    pub fn line(&mut self) -> Result<String> {
        self.line_within(T)?.ok_or_else(|| {
            format!(
                "child {} ({}) said nothing within {T:?}",
                self.pid(),
                self.role
            )
            .into()
        })
    }

    /// The next line it says within `timeout`, or `None`. An error if it exited instead.
    pub fn line_within(&mut self, timeout: Duration) -> Result<Option<String>> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Ok(Some(l)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!(
                "child {} ({}) exited: {}",
                self.pid(),
                self.role,
                self.stderr()
            )
            .into()),
        }
    }

    /// Tells it one line.
    pub fn tell(&mut self, line: &str) -> Result<()> {
        let stdin = self.child.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits, within [`T`], for it to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(st) = self.reaped {
            return Ok(st);
        }
        if !self.pidfd.wait_exit_timeout(T)? {
            return Err(format!(
                "child {} ({}) did not exit within {T:?}",
                self.pid(),
                self.role
            )
            .into());
        }
        let st = self.child.wait()?;
        self.reaped = Some(st);
        Ok(st)
    }

    /// Waits for it and fails unless it exited with status 0.
    pub fn success(&mut self) -> Result<()> {
        let st = self.wait()?;
        if !st.success() {
            return Err(format!(
                "child {} ({}) failed ({st}): {}",
                self.pid(),
                self.role,
                self.stderr()
            )
            .into());
        }
        Ok(())
    }

    /// Sends it `signal` (through its pidfd: never a reused pid).
    pub fn signal(&self, signal: i32) -> Result<()> {
        self.pidfd.send_signal(signal)?;
        Ok(())
    }

    /// SIGKILLs it and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if self.reaped.is_none() {
            let _ = self.pidfd.send_signal(libc::SIGKILL);
        }
        self.wait()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.pidfd.send_signal(libc::SIGKILL);
            // Reap only a child that exited: one stuck in the kernel (D state) must not hang
            // the lab; it is reaped by init when the lab exits.
            if self.pidfd.wait_exit_timeout(T).unwrap_or(false) {
                let _ = self.child.wait();
            }
        }
    }
}
