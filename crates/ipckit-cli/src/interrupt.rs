//! The stop signals: every signal whose default action ends the process and that arrives
//! from outside (Ctrl-C, SIGTERM, SIGHUP, SIGUSR1, SIGALRM, the real-time signals, ...), one
//! list for every command that must clean up before it ends ([`stop_signals`]): `recv` and
//! `listen` (serve.rs, channel.rs) read them on a signalfd in their poll loop; the long-running
//! commands (bench, lab) through [`Interrupt`]: the first one asks the work to stop at the
//! next clean point, so every object in use is removed; a second one ends the process at once.
//!
//! Not in the list: SIGKILL and SIGSTOP (they cannot be caught); the signals a fault raises
//! in the thread that caused it (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS: blocking
//! them would not stop the kernel from killing the process) and SIGABRT (what `abort()`
//! raises: a process that aborts must not go on); SIGPIPE, which the Rust runtime ignores, so
//! a write to a closed reader is an EPIPE error; and the signals whose default is to stop the
//! process or to do nothing (SIGTSTP, SIGTTIN, SIGTTOU, SIGCHLD, SIGCONT, SIGURG, SIGWINCH).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The standard stop signals (the real-time ones are added by [`stop_signals`]).
pub const STOP_SIGNALS: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
];

/// Every stop signal this process should catch: [`STOP_SIGNALS`] and the real-time signals
/// (`SIGRTMIN()..=SIGRTMAX()`, those glibc leaves to programs), less any already ignored when
/// the process started (nohup's SIGHUP, a background job's SIGINT): an ignored signal stays
/// ignored.
pub fn stop_signals() -> Vec<i32> {
    STOP_SIGNALS
        .iter()
        .copied()
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        .filter(|&s| !ignored(s))
        .collect()
}

/// Catches the stop signals from here on.
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    caught: Arc<Mutex<Option<i32>>>,
}

impl Interrupt {
    /// Catches the [`stop_signals`] and sets `flag` when one comes, from a thread of its own.
    /// SIGINT, SIGTERM and SIGHUP are blocked in this thread and read from a signalfd (call
    /// this before any other thread starts, so every thread inherits the mask). A child
    /// started with `std::process::Command` does not keep the mask (the standard library
    /// empties it in the child before `exec`), so a Ctrl-C to the process group reaches the
    /// children too, each with its own default action. The other stop signals get a handler that only
    /// writes to a pipe (a [`SelfPipe`](ipckit::notify::signal::SelfPipe)): a child process
    /// starts with their default action and an unchanged mask, so the work's own children can
    /// use SIGUSR1 or a real-time signal as they please. A signal already ignored (nohup, a
    /// background job) stays ignored.
    pub fn catch(flag: Arc<AtomicBool>) -> anyhow::Result<Interrupt> {
        use ipckit::notify::signal::{self, SelfPipe, SignalFd};
        use ipckit::poll::{PollFd, PollFlags};
        let (blocked, handled): (Vec<i32>, Vec<i32>) = stop_signals()
            .into_iter()
            .partition(|s| [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].contains(s));
        let caught = Arc::new(Mutex::new(None));
        let sfd = SignalFd::new(&blocked)?;
        let pipe = SelfPipe::install(&handled)?;
        let raised = flag.clone();
        let caught_by = caught.clone();
        std::thread::spawn(move || {
            let next = || -> ipckit::Result<i32> {
                loop {
                    let mut fds = [
                        PollFd::new(&sfd, PollFlags::IN),
                        PollFd::new(&pipe, PollFlags::IN),
                    ];
                    ipckit::poll::poll_until(&mut fds, ipckit::Deadline::NEVER)?;
                    if let Some(info) = sfd.try_read()? {
                        return Ok(info.signo);
                    }
                    if let Some(sig) = pipe.try_wait()? {
                        return Ok(sig);
                    }
                }
            };
            while let Ok(signo) = next() {
                if raised.swap(true, Ordering::SeqCst) {
                    eprintln!("ipckit: {} again: stopping at once", signal::name(signo));
                    std::process::exit(1);
                }
                if let Ok(mut c) = caught_by.lock() {
                    *c = Some(signo);
                }
            }
        });
        Ok(Interrupt { flag, caught })
    }

    /// The signal that asked to stop, if one did.
    pub fn caught(&self) -> Option<i32> {
        if !self.flag.load(Ordering::SeqCst) {
            return None;
        }
        Some(
            self.caught
                .lock()
                .ok()
                .and_then(|c| *c)
                .unwrap_or(libc::SIGINT),
        )
    }
}

/// Whether `sig` is set to be ignored (by nohup, or a shell for a background job).
fn ignored(sig: i32) -> bool {
    // SAFETY: a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}
