//! The other processes of a scenario: this program started again (by `ipckit_spawn`) with
//! [`ROLE_ENV`] naming the role to play. Parent and child talk in lines over the child's stdin
//! and stdout, and every wait for the child is bounded by [`T`].

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub(crate) use ipckit_spawn::{hear, say};

use crate::Result;

/// The environment variable that makes this program a scenario's child process.
pub const ROLE_ENV: &str = "IPCKIT_LAB_ROLE";

/// The bound on every wait for another process: long enough for a loaded 2-core machine.
pub const T: Duration = Duration::from_secs(10);

/// A child role: runs in the child process.
pub(crate) type Role = (&'static str, fn(&Args) -> Result<()>);

/// True when this process was started as a scenario's child.
pub fn is_child() -> bool {
    std::env::var_os(ROLE_ENV).is_some()
}

/// Plays the role [`ROLE_ENV`] names, looked up in `roles`, and exits: 0 when it succeeded, 1
/// (with the error on stderr) when it failed, 2 for a role that does not exist.
pub(crate) fn play(roles: &[&[Role]]) -> ! {
    let role = std::env::var(ROLE_ENV).unwrap_or_default();
    let found = roles
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
            let _ = writeln!(
                std::io::stderr(),
                "ipckit lab child {role}: {}",
                ipckit::error::message(&*e)
            );
            std::process::exit(1);
        }
    }
}

/// The values the parent gave a child.
pub(crate) struct Args;

impl Args {
    /// The value `name`.
    pub fn get(&self, name: &str) -> Result<String> {
        ipckit_spawn::arg(name).ok_or_else(|| format!("the child needs the value {name}").into())
    }

    /// The value `name`, parsed.
    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<T> {
        self.get(name)?
            .parse()
            .map_err(|_| format!("the value {name} does not parse").into())
    }
}

/// Child side: takes ownership of descriptor `n`, which the parent passed with
/// [`Spawn::fd`]. Fails if it is not open, or if it was taken already: each number is handed
/// out once, so two owners can never close it twice.
pub(crate) fn take_fd(n: i32) -> Result<std::os::fd::OwnedFd> {
    Ok(ipckit_spawn::take_fd(n)?)
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
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {path}: {}", ipckit::error::message(&e)))?;
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

/// How to start a child.
pub(crate) struct Spawn<'a> {
    role: &'static str,
    spawn: ipckit_spawn::Spawn<'a>,
}

/// Starts building a child that plays `role`.
pub(crate) fn spawn<'a>(role: &'static str) -> Spawn<'a> {
    Spawn {
        role,
        spawn: ipckit_spawn::Spawn::this().role(ROLE_ENV, role).talk(),
    }
}

impl<'a> Spawn<'a> {
    /// Passes `value` as `Args::get(name)`.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.spawn = self.spawn.arg(name, value);
        self
    }

    /// Gives the child `fd` as its descriptor number `target` (inherited across exec).
    pub fn fd(mut self, fd: BorrowedFd<'a>, target: i32) -> Self {
        self.spawn = self.spawn.fd(fd, target);
        self
    }

    /// Starts the child. It dies with this process (`PR_SET_PDEATHSIG`).
    pub fn start(self) -> Result<Child> {
        let Spawn { role, mut spawn } = self;
        let cmd = spawn.command();
        // A process group of its own: a terminal's Ctrl-C reaches only the
        // lab, which lets the scenario finish and clean up (the child still dies with the lab).
        cmd.process_group(0).stderr(Stdio::piped());
        Ok(Child {
            role,
            child: spawn.start()?,
        })
    }
}

/// A running child; killed and reaped on drop if still running.
pub(crate) struct Child {
    role: &'static str,
    child: ipckit_spawn::Child,
}

impl Child {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        self.child.line_timeout(timeout).map_err(|_| {
            format!(
                "child {} ({}) exited: {}",
                self.pid(),
                self.role,
                self.child.stderr()
            )
            .into()
        })
    }

    /// Tells it one line.
    pub fn tell(&mut self, line: &str) -> Result<()> {
        Ok(self.child.tell(line)?)
    }

    /// Waits, within [`T`], for it to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.child.wait_timeout(T)?.ok_or_else(|| {
            format!(
                "child {} ({}) did not exit within {T:?}",
                self.pid(),
                self.role
            )
            .into()
        })
    }

    /// Waits for it and fails unless it exited with status 0.
    pub fn success(&mut self) -> Result<()> {
        let st = self.wait()?;
        if !st.success() {
            return Err(format!(
                "child {} ({}) failed ({st}): {}",
                self.pid(),
                self.role,
                self.child.stderr()
            )
            .into());
        }
        Ok(())
    }

    /// Sends it `signal` (through its pidfd: never a reused pid).
    pub fn signal(&self, signal: i32) -> Result<()> {
        Ok(self.child.signal(signal)?)
    }

    /// SIGKILLs it and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.child.kill_timeout(T)?;
        self.wait()
    }
}
