//! Start this program (or another) again as a helper process, and talk to it.
//!
//! For ipckit's own multi-process code: the benchmark's peer, the lab's scenario children and
//! the library tests' children are all this program started again with a role. It depends on
//! libc and rustix only, so that ipckit's own tests can use it; `ipckit::inherit` is built on
//! its descriptor passing ([`fds`]).
//!
//! - Parent: [`Spawn`] sets the role (an environment variable the program checks first thing
//!   in `main`), values ([`Spawn::arg`], read in the child with [`arg`]), descriptors at given
//!   numbers ([`Spawn::fd`], taken in the child with [`take_fd`]) and signals blocked in the
//!   child ([`Spawn::blocked`]). The child dies with the thread that started it
//!   (`PR_SET_PDEATHSIG`).
//! - Talk: with [`Spawn::talk`] the child's stdin and stdout are pipes for a line protocol:
//!   the child [`say`]s and [`hear`]s lines, the parent reads them with [`Child::line_timeout`], every
//!   read bounded by a timeout. Only lines written by [`say`] count, so a test harness may print
//!   on the same stdout.
//! - End: [`Child`] waits only with a bound ([`Child::wait_timeout`], through a pidfd), and is
//!   killed and reaped when dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! const ROLE: &str = "MY_PROGRAM_ROLE";
//!
//! fn main() -> std::io::Result<()> {
//!     if std::env::var_os(ROLE).is_some() {
//!         // The helper: answers one line.
//!         let n: u32 = ipckit_spawn::arg("N").unwrap().parse().unwrap();
//!         ipckit_spawn::say(format!("{}", n * 2));
//!         return Ok(());
//!     }
//!     let mut child = ipckit_spawn::Spawn::this().role(ROLE, "double").arg("N", 21).talk().start()?;
//!     assert_eq!(child.line_timeout(Duration::from_secs(10))?.as_deref(), Some("42"));
//!     assert!(child.wait_timeout(Duration::from_secs(10))?.is_some_and(|st| st.success()));
//!     Ok(())
//! }
//! ```

pub mod fds;

use std::ffi::OsStr;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use fds::TakeError;

/// Values given with [`Spawn::arg`] are environment variables with this prefix.
pub const ARG_PREFIX: &str = "IPCKIT_ARG_";
/// The start of every line [`say`] writes; [`Child::line_timeout`] passes over other lines.
const LINE_PREFIX: &str = "ipckit-spawn:";
/// How long a dropped [`Child`] is given to die of its SIGKILL before it is left to init.
const REAP: Duration = Duration::from_secs(10);

/// How to start a helper process.
pub struct Spawn<'a> {
    cmd: Command,
    fds: Vec<(BorrowedFd<'a>, RawFd)>,
    blocked: Vec<libc::c_int>,
}

impl<'a> Spawn<'a> {
    /// Starts building a helper that runs `program`, with stdin from `/dev/null` and stdout and
    /// stderr inherited (see [`Spawn::talk`], [`Spawn::command`]).
    pub fn new(program: impl AsRef<OsStr>) -> Spawn<'a> {
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null());
        // A value or a record this process was given is not its helper's.
        for (k, _) in std::env::vars_os() {
            if k.to_str()
                .is_some_and(|k| k.starts_with(ARG_PREFIX) || k == fds::RECORD_ENV)
            {
                cmd.env_remove(k);
            }
        }
        Spawn {
            cmd,
            fds: Vec::new(),
            blocked: Vec::new(),
        }
    }

    /// Starts building a helper that runs this program again (`std::env::current_exe`, or
    /// `/proc/self/exe` when that cannot be read: then starting it fails, saying why).
    pub fn this() -> Spawn<'a> {
        Spawn::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()))
    }

    /// Sets the environment variable `var`, which the program checks to know it is a helper,
    /// to `role`.
    pub fn role(mut self, var: &str, role: &str) -> Self {
        self.cmd.env(var, role);
        self
    }

    /// Passes `value` as [`arg`]`(name)`.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.cmd
            .env(format!("{ARG_PREFIX}{name}"), value.to_string());
        self
    }

    /// Adds command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.cmd.args(args);
        self
    }

    /// Gives the child `fd` as its descriptor number `target` (see [`fds::place`]), recorded
    /// under the name of its number for [`take_fd`].
    pub fn fd(mut self, fd: BorrowedFd<'a>, target: RawFd) -> Self {
        self.fds.push((fd, target));
        self
    }

    /// Starts the child with `signals` blocked (the mask survives exec, and threads the child
    /// starts inherit it).
    pub fn blocked(mut self, signals: &[libc::c_int]) -> Self {
        self.blocked.extend_from_slice(signals);
        self
    }

    /// Pipes the child's stdin and stdout for the line protocol ([`say`], [`hear`],
    /// [`Child::line_timeout`], [`Child::tell`]).
    pub fn talk(mut self) -> Self {
        self.cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        self
    }

    /// The command underneath, for what this builder does not cover (stderr, a process group,
    /// the working directory).
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Starts the child. Fails if two descriptors are given the same number, or if the child
    /// could not be started; a child whose pidfd cannot be had is killed, since no wait for it
    /// could be bounded.
    pub fn start(mut self) -> std::io::Result<Child> {
        let mut placed = Vec::with_capacity(self.fds.len());
        for &(fd, target) in &self.fds {
            let record = fds::recorded(&self.cmd);
            if fds::numbers(&record).any(|n| n == target) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("two descriptors are given the child's number {target}"),
                ));
            }
            let entry = fds::entry(&target.to_string(), fd, target)?;
            fds::record_in(&mut self.cmd, &record, &entry);
            placed.push((fd.try_clone_to_owned()?, target));
        }
        fds::place(&mut self.cmd, placed);
        let parent = std::process::id();
        let blocked = signal_set(&self.blocked);
        // SAFETY: between fork and exec the step calls only prctl, getppid and sigprocmask,
        // which are async-signal-safe, on values computed before the fork.
        unsafe {
            self.cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then nothing would kill this one.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                if let Some(set) = &blocked
                    && libc::sigprocmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let targets: Vec<RawFd> = self.fds.iter().map(|&(_, target)| target).collect();
        let placeholders = fds::reserve(targets)?;
        let spawned = self.cmd.spawn();
        drop(placeholders);
        let mut child = spawned?;
        let pidfd = match rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        ) {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
        };
        Ok(Child {
            stdout: child.stdout.take(),
            child,
            pidfd,
            buf: Vec::new(),
            errors: String::new(),
            status: None,
        })
    }
}

/// The signal set of `signals`, or `None` when there are none.
fn signal_set(signals: &[libc::c_int]) -> Option<libc::sigset_t> {
    if signals.is_empty() {
        return None;
    }
    // SAFETY: sigemptyset initialises the set before sigaddset adds to it; both only write it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        Some(set)
    }
}

/// A running helper: every wait for it bounded; killed and reaped on drop.
pub struct Child {
    child: std::process::Child,
    pidfd: OwnedFd,
    stdout: Option<std::process::ChildStdout>,
    /// Bytes read from stdout that are not a whole line yet.
    buf: Vec<u8>,
    /// What it wrote on a piped stderr so far.
    errors: String,
    status: Option<ExitStatus>,
}

impl Child {
    /// Its pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its pidfd (`pidfd_open`): a pollable handle that never names a reused pid.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The next line it [`say`]s within `timeout`, or `None`. Fails with `UnexpectedEof` once
    /// it closed its stdout (it exited), and when it was not started with [`Spawn::talk`].
    pub fn line_timeout(&mut self, timeout: Duration) -> std::io::Result<Option<String>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]);
                if let Some(said) = line.strip_prefix(LINE_PREFIX) {
                    return Ok(Some(said.to_string()));
                }
            }
            let Some(out) = self.stdout.as_ref() else {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            };
            if !ready(out.as_fd(), deadline)? {
                return Ok(None);
            }
            let mut chunk = [0u8; 4096];
            match rustix::io::read(out, &mut chunk) {
                Ok(0) => {
                    self.stdout = None;
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Tells it one line (it reads it with [`hear`]).
    pub fn tell(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or(std::io::ErrorKind::BrokenPipe)?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// What it wrote so far on its stderr, when that is a pipe (`command().stderr(piped())`):
    /// reads what is there without waiting.
    pub fn stderr(&mut self) -> String {
        if let Some(err) = self.child.stderr.as_ref() {
            let mut chunk = [0u8; 4096];
            while let Ok(true) = ready(err.as_fd(), Some(Instant::now())) {
                match rustix::io::read(err, &mut chunk) {
                    Ok(0) | Err(_) => {
                        self.child.stderr = None;
                        break;
                    }
                    Ok(n) => self.errors.push_str(&String::from_utf8_lossy(&chunk[..n])),
                }
            }
        }
        self.errors.trim().to_string()
    }

    /// `pidfd_send_signal`: sends it `signal`. See
    /// [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).
    pub fn signal(&self, signal: libc::c_int) -> std::io::Result<()> {
        // SAFETY: the syscall reads only its integer arguments (no siginfo is passed).
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits at most `timeout` for it to exit, and reaps it: its status, or `None` if it is
    /// still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() && ready(self.pidfd.as_fd(), Instant::now().checked_add(timeout))?
        {
            self.status = Some(self.child.wait()?);
        }
        Ok(self.status)
    }

    /// SIGKILLs it (unless it was reaped already) and reaps it, waiting at most `timeout`
    /// (a process stuck in the kernel dies late): its status, or `None` if it is not dead yet.
    pub fn kill_timeout(&mut self, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            // ESRCH cannot happen before the reap; a zombie takes the signal quietly.
            self.signal(libc::SIGKILL)?;
        }
        self.wait_timeout(timeout)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // One stuck in the kernel (D state) must not hang the parent: after REAP it is left,
        // and init reaps it when this process exits.
        let _ = self.kill_timeout(REAP);
    }
}

/// Polls `fd` for input until `deadline` (`None`: no end): whether it is readable (or hung up).
fn ready(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> std::io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.map(|l| Timespec {
            tv_sec: l.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: l.subsec_nanos().into(),
        });
        let mut pfd = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut pfd, ts.as_ref()) {
            Ok(0) if left.is_some_and(|l| l.is_zero()) => return Ok(false),
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Child side: the value the parent gave with [`Spawn::arg`], if it did.
pub fn arg(name: &str) -> Option<String> {
    std::env::var(format!("{ARG_PREFIX}{name}")).ok()
}

/// Child side: tells the parent one line (it reads it with [`Child::line_timeout`]).
pub fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{LINE_PREFIX}{}", line.as_ref());
    let _ = out.flush();
}

/// Child side: waits for one line from the parent ([`Child::tell`]); `None` once the parent
/// closed stdin (it is gone or done), so a child never waits past its parent.
pub fn hear() -> Option<String> {
    let mut s = String::new();
    match std::io::stdin().lock().read_line(&mut s) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(s.trim_end().to_string()),
    }
}

/// Child side: takes ownership of descriptor `n`, which the parent gave with [`Spawn::fd`].
/// Fails if the parent passed no such number, if it is not the file the parent passed, or if
/// it was taken already: each number has one owner.
pub fn take_fd(n: RawFd) -> Result<OwnedFd, TakeError> {
    fds::take(&n.to_string())
}
