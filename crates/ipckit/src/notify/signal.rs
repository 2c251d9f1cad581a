//! Signals without the async-signal-safety traps: a pollable [`SignalFd`], sending with
//! [`kill`] or [`queue`] (a real-time signal carrying a value), and a [`SelfPipe`] for code that
//! must use a handler.
//!
//! Standard signals (1–31) coalesce: two `SIGUSR1`s sent before the first is taken arrive as
//! one. Real-time signals (`SIGRTMIN`..=`SIGRTMAX`) queue, each with its value. `SIGKILL` and
//! `SIGSTOP` can be neither caught nor blocked.
//!
//! A signalfd only sees signals that are *blocked* in every thread; otherwise the kernel runs
//! the default action (often: terminate) in a thread that does not block them. Block them in
//! `main` before starting threads ([`block`]), or start the process with them blocked, since
//! the mask is inherited across `fork` and `exec`.
//!
//! libc is used here, not rustix: rustix has no signalfd or sigqueue. Each call sits in one
//! small wrapper with its `SAFETY` note.
//!
//! ```standalone_crate
//! use std::time::Duration;
//! use ipckit::notify::signal::{self, SignalFd};
//! // A process of its own with one thread: blocking in this thread is enough.
//! let sig = signal::rt(1);
//! let sfd = SignalFd::new(&[sig]).unwrap();
//! signal::queue(std::process::id(), sig, 42).unwrap();
//! let info = sfd.read_timeout(Duration::from_secs(5)).unwrap().unwrap();
//! assert_eq!((info.signo, info.value), (sig, 42));
//! ```

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use crate::Pid;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll::{self, Deadline};
use crate::stream::pipe::{self, PipeReader, PipeWriter};

pub use libc::{SIGALRM, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// `SIGRTMIN() + n`: real-time signal number `n` (glibc reserves the first few for itself, so
/// `SIGRTMIN()` is a call, not the kernel's 32). See
/// [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html).
pub fn rt(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

/// The name of a signal ("SIGUSR1", "SIGRTMIN+3"), for transcripts and errors.
pub fn name(sig: i32) -> String {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGSTKFLT, "SIGSTKFLT"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPWR, "SIGPWR"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(s, _)| *s == sig) {
        return n.to_string();
    }
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) {
        return format!("SIGRTMIN+{}", sig - libc::SIGRTMIN());
    }
    format!("signal {sig}")
}

pub(crate) fn check_signal(sig: i32) -> Result<()> {
    if sig < 1 || sig > libc::SIGRTMAX() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "checking signal number",
            format!("{sig} is not a signal (1..={})", libc::SIGRTMAX()),
        ));
    }
    Ok(())
}

fn sigset(signals: &[i32]) -> Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: initialised just above.
    let mut set = unsafe { set.assume_init() };
    for &s in signals {
        check_signal(s)?;
        // SAFETY: `set` is a valid, initialised sigset_t and `s` a valid signal number.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    Ok(set)
}

fn change_mask(how: libc::c_int, signals: &[i32]) -> Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Error::os(
            "changing signal mask",
            crate::Errno::from_raw_os_error(rc),
        ));
    }
    Ok(())
}

/// `pthread_sigmask(SIG_BLOCK)`: blocks `signals` in the calling thread (and in threads it
/// starts afterwards, which inherit the mask).
/// See [pthread_sigmask(3)](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html).
pub fn block(signals: &[i32]) -> Result<()> {
    change_mask(libc::SIG_BLOCK, signals)
}

/// `pthread_sigmask(SIG_UNBLOCK)`: unblocks `signals` in the calling thread.
/// See [pthread_sigmask(3)](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html).
pub fn unblock(signals: &[i32]) -> Result<()> {
    change_mask(libc::SIG_UNBLOCK, signals)
}

/// The kernel's `pid_t` for a process id: 1 to `i32::MAX` (0 and negative numbers address
/// process groups in `kill(2)`, which [`kill_group`] spells out).
fn check_pid(what: &str, pid: Pid) -> Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "checking process id",
            format!("{pid} is not a {what} id (1..={})", i32::MAX),
        )
        .hint("a process group is signalled with kill_group")),
    }
}

/// `kill(pid, sig)`: sends `sig` to process `pid` (a signal number, 1 to `SIGRTMAX`).
/// See [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html).
pub fn kill(pid: Pid, sig: i32) -> Result<()> {
    check_signal(sig)?;
    let raw = check_pid("process", pid)?;
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(raw, sig) } == -1 {
        return Err(std::io::Error::last_os_error())
            .during("sending signal", format!("{} to process {pid}", name(sig)))
            .map_err(|e| e.hint_if(crate::Errno::SRCH, "no such process"));
    }
    Ok(())
}

/// `kill(-pgid, sig)`: sends `sig` to every process in process group `pgid`. Group 1 is
/// refused: `kill(-1)` would signal every process the caller may signal.
/// See [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html).
pub fn kill_group(pgid: Pid, sig: i32) -> Result<()> {
    check_signal(sig)?;
    let raw = check_pid("process group", pgid)?;
    if raw == 1 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "checking process group",
            "kill(-1) would signal every process, not group 1",
        ));
    }
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(-raw, sig) } == -1 {
        return Err(std::io::Error::last_os_error())
            .during(
                "sending signal",
                format!("{} to process group {pgid}", name(sig)),
            )
            .map_err(|e| e.hint_if(crate::Errno::SRCH, "no such process group"));
    }
    Ok(())
}

/// `sigqueue(pid, sig, value)`: sends `sig` with an integer `value` to process `pid`. With a
/// real-time signal each one queues; a standard signal still coalesces.
/// See [sigqueue(3)](https://man7.org/linux/man-pages/man3/sigqueue.3.html).
pub fn queue(pid: Pid, sig: i32, value: i32) -> Result<()> {
    check_signal(sig)?;
    let raw = check_pid("process", pid)?;
    let val = libc::sigval {
        sival_ptr: value as isize as *mut libc::c_void,
    };
    // SAFETY: sigqueue takes integers and a sigval by value.
    if unsafe { libc::sigqueue(raw, sig, val) } == -1 {
        return Err(std::io::Error::last_os_error())
            .during("queueing signal", format!("{} to process {pid}", name(sig)))
            .map_err(|e| {
                e.hint_if(
                    crate::Errno::AGAIN,
                    "the receiver's queue of real-time signals is full (RLIMIT_SIGPENDING)",
                )
                .hint_if(crate::Errno::SRCH, "no such process")
            });
    }
    Ok(())
}

/// `rt_tgsigqueueinfo(2)`: sends `sig` with an integer `value` to thread `tid` of process
/// `pid` only, as `pthread_sigqueue(3)` does within a process. Use it when the receiving
/// process has threads that do not block `sig`: a process-directed signal may go to any of
/// them, and a real-time signal's default action ends the process. (64-bit Linux only: the
/// `siginfo_t` layout it fills is the 64-bit one.)
/// See [rt_tgsigqueueinfo(2)](https://man7.org/linux/man-pages/man2/rt_tgsigqueueinfo.2.html).
#[cfg(target_pointer_width = "64")]
pub fn queue_thread(pid: Pid, tid: Pid, sig: i32, value: i32) -> Result<()> {
    check_signal(sig)?;
    let raw_pid = check_pid("process", pid)?;
    let raw_tid = check_pid("thread", tid)?;
    // SAFETY: all-zero is a valid siginfo_t; the fields set below are the ones
    // rt_tgsigqueueinfo reads for SI_QUEUE.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    info.si_signo = sig;
    info.si_code = libc::SI_QUEUE;
    // SAFETY: SigInfoQueue is the start of siginfo_t as the kernel lays it out for SI_QUEUE
    // (signo, errno, code, padding, then pid, uid and the sigval), smaller than siginfo_t and
    // no more aligned; sigqueue(3) fills the same fields.
    unsafe {
        let q = (&raw mut info).cast::<SigInfoQueue>();
        (*q).pid = rustix::process::getpid().as_raw_nonzero().get();
        (*q).uid = rustix::process::getuid().as_raw();
        (*q).value = value as isize;
    }
    // SAFETY: the syscall reads one siginfo_t from `info`, valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            raw_pid as libc::c_long,
            raw_tid as libc::c_long,
            sig as libc::c_long,
            &info as *const libc::siginfo_t,
        )
    };
    if r == -1 {
        return Err(std::io::Error::last_os_error())
            .during(
                "queueing signal",
                format!("{} to thread {tid} of process {pid}", name(sig)),
            )
            .map_err(|e| {
                e.hint_if(
                    crate::Errno::AGAIN,
                    "the receiver's queue of real-time signals is full (RLIMIT_SIGPENDING)",
                )
                .hint_if(crate::Errno::SRCH, "no such thread in that process")
            });
    }
    Ok(())
}

/// The start of `siginfo_t` for `SI_QUEUE` on 64-bit Linux: signo, errno, code and padding,
/// then the sender's pid and uid and the value.
#[cfg(target_pointer_width = "64")]
#[repr(C)]
struct SigInfoQueue {
    head: [libc::c_int; 4],
    pid: libc::pid_t,
    uid: libc::uid_t,
    value: isize,
}

/// One signal taken from a [`SignalFd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    /// The signal number.
    pub signo: i32,
    /// How it was sent (`SI_USER` for kill, `SI_QUEUE` for sigqueue, ...).
    pub code: i32,
    /// The sender's pid (for kill and sigqueue).
    pub pid: Pid,
    /// The sender's real uid.
    pub uid: u32,
    /// The value sent with [`queue`] (0 otherwise).
    pub value: i32,
}

/// `signalfd(2)`: pending signals read as data from a pollable descriptor.
/// See [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html).
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

crate::impl_fd!(SignalFd, fd);

impl SignalFd {
    /// `pthread_sigmask(SIG_BLOCK)` then `signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK)`:
    /// blocks `signals` in the calling thread and opens a signalfd for them (non-blocking
    /// inside). See the module notes on threads, and
    /// [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html).
    pub fn new(signals: &[i32]) -> Result<Self> {
        let set = sigset(signals)?;
        block(signals)?;
        // SAFETY: `set` is initialised; -1 asks for a new descriptor, which we own at once.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if raw == -1 {
            return Err(std::io::Error::last_os_error())
                .during("creating signalfd for", format!("{signals:?}"));
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// `read(2)` on the non-blocking signalfd: takes one pending signal, `Ok(None)` when none
    /// is. See [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html).
    pub fn try_read(&self) -> Result<Option<SigInfo>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: the buffer is exactly one signalfd_siginfo, writable, and lives across the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if n == size as isize {
                // SAFETY: the kernel filled the whole structure (and it was zeroed before).
                let i = unsafe { info.assume_init() };
                return Ok(Some(SigInfo {
                    signo: i.ssi_signo as i32,
                    code: i.ssi_code,
                    pid: i.ssi_pid,
                    uid: i.ssi_uid,
                    // The sender's sigval as an integer, whatever the byte order.
                    value: i.ssi_ptr as i64 as i32,
                }));
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(None),
                _ => return Err(err).during("reading", "signalfd"),
            }
        }
    }

    /// `read(2)` on the signalfd: waits for a signal and takes it.
    /// See [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html).
    pub fn read(&self) -> Result<SigInfo> {
        loop {
            if let Some(info) = self.read_deadline(Deadline::NEVER)? {
                return Ok(info);
            }
        }
    }

    /// `poll(2)` then `read(2)`: waits at most `timeout` for a signal and takes it; `Ok(None)`
    /// when none came. See [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html).
    pub fn read_timeout(&self, timeout: Duration) -> Result<Option<SigInfo>> {
        self.read_deadline(Deadline::after(timeout))
    }

    /// `poll(2)` then `read(2)`: as [`read_timeout`](Self::read_timeout), giving up at
    /// `deadline`. See [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html).
    pub fn read_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<SigInfo>> {
        use std::os::fd::AsFd;
        poll::until_ready(
            self.fd.as_fd(),
            rustix::event::PollFlags::IN,
            deadline.into(),
            || self.try_read(),
        )
    }
}

/// The write end the self-pipe handler writes to; -1 before the first install.
static SELF_PIPE_FD: AtomicI32 = AtomicI32::new(-1);
/// The self-pipe, made once and never closed: a handler still running on another thread as a
/// [`SelfPipe`] is dropped must never write into a descriptor number reused for another file.
static SELF_PIPE: OnceLock<(PipeReader, PipeWriter)> = OnceLock::new();
/// Whether a [`SelfPipe`] handle exists (one per process).
static SELF_PIPE_TAKEN: AtomicBool = AtomicBool::new(false);

extern "C" fn self_pipe_handler(sig: libc::c_int) {
    let fd = SELF_PIPE_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: only async-signal-safe calls: errno is saved and restored around write(2) on a
    // non-blocking pipe that is never closed (a full pipe drops the byte, which is fine: the
    // reader is awake anyway).
    unsafe {
        let errno = *libc::__errno_location();
        let b = sig as u8;
        libc::write(fd, (&b as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// The self-pipe trick: a signal handler that only writes the signal number into a pipe, so
/// the real work happens in ordinary code that polls the read end. One per process at a time;
/// the pipe itself lives as long as the process.
#[derive(Debug)]
pub struct SelfPipe {
    reader: &'static PipeReader,
    previous: Vec<(i32, libc::sigaction)>,
}

fn self_pipe() -> Result<&'static (PipeReader, PipeWriter)> {
    if let Some(p) = SELF_PIPE.get() {
        return Ok(p);
    }
    let (r, w) = pipe::pipe()?;
    r.set_nonblocking(true)?;
    w.set_nonblocking(true)?;
    let _ = SELF_PIPE.set((r, w)); // another thread may have won: its pipe is the one used
    let p = SELF_PIPE.get().ok_or_else(|| {
        Error::new(
            ErrorKind::Os,
            "installing self-pipe",
            "the pipe could not be kept",
        )
    })?;
    SELF_PIPE_FD.store(p.1.as_raw_fd(), Ordering::SeqCst);
    Ok(p)
}

impl SelfPipe {
    /// `sigaction(sig, SA_RESTART)` for each of `signals`: installs the handler that writes
    /// the signal's number into the pipe. The previous actions come back on drop.
    /// See [sigaction(2)](https://man7.org/linux/man-pages/man2/sigaction.2.html).
    pub fn install(signals: &[i32]) -> Result<Self> {
        for &sig in signals {
            check_signal(sig)?;
        }
        if SELF_PIPE_TAKEN.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "installing self-pipe",
                "one is already installed in this process",
            ));
        }
        let reader = match self_pipe() {
            Ok((reader, _)) => reader,
            Err(e) => {
                SELF_PIPE_TAKEN.store(false, Ordering::SeqCst);
                return Err(e);
            }
        };
        // From here, dropping `me` on an error restores what was installed and frees the slot.
        let mut me = SelfPipe {
            reader,
            previous: Vec::new(),
        };
        // Bytes left from an earlier install are not for this one.
        let mut sink = [0u8; 256];
        while let Ok(n) = rustix::io::read(reader, &mut sink) {
            if n == 0 {
                break;
            }
        }
        for &sig in signals {
            // SAFETY: a zeroed sigaction is a valid starting point; we set handler, mask, flags.
            let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
            act.sa_sigaction = self_pipe_handler as *const () as usize;
            act.sa_flags = libc::SA_RESTART;
            // SAFETY: sa_mask is a valid sigset_t field.
            unsafe { libc::sigemptyset(&mut act.sa_mask) };
            // SAFETY: zeroed is a valid out-parameter for the old action.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are valid; the handler is async-signal-safe.
            if unsafe { libc::sigaction(sig, &act, &mut old) } == -1 {
                return Err(std::io::Error::last_os_error())
                    .during("installing handler for", name(sig))
                    .map_err(|e| {
                        e.hint_if(crate::Errno::INVAL, "SIGKILL and SIGSTOP cannot be caught")
                    });
            }
            me.previous.push((sig, old));
        }
        Ok(me)
    }

    /// `poll(2)` then `read(2)` on the pipe: waits for a signal; returns its number.
    /// See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn wait(&self) -> Result<i32> {
        loop {
            if let Some(sig) = self.wait_deadline(Deadline::NEVER)? {
                return Ok(sig);
            }
        }
    }

    /// `read(2)` on the non-blocking pipe: the number of a signal that came, `Ok(None)` when
    /// none has. See [read(2)](https://man7.org/linux/man-pages/man2/read.2.html).
    pub fn try_wait(&self) -> Result<Option<i32>> {
        self.wait_deadline(Deadline::now())
    }

    /// `poll(2)` then `read(2)`: waits at most `timeout` for a signal; `Ok(None)` when none
    /// came. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<i32>> {
        self.wait_deadline(Deadline::after(timeout))
    }

    /// `poll(2)` then `read(2)`: as [`wait_timeout`](Self::wait_timeout), giving up at
    /// `deadline`. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<i32>> {
        let mut b = [0u8; 1];
        let fd = std::os::fd::AsFd::as_fd(self.reader);
        match poll::read_until(fd, &mut b, deadline.into())? {
            Some(1) => Ok(Some(b[0] as i32)),
            _ => Ok(None),
        }
    }

    /// The read end, to put in a poll set.
    pub fn reader(&self) -> &PipeReader {
        self.reader
    }
}

impl std::os::fd::AsFd for SelfPipe {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.reader.as_fd()
    }
}

impl Drop for SelfPipe {
    fn drop(&mut self) {
        for (sig, old) in self.previous.drain(..).rev() {
            // SAFETY: restoring the action saved at install time.
            unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
        }
        SELF_PIPE_TAKEN.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_signal_has_its_name() {
        for sig in 1..=31 {
            let n = name(sig);
            assert!(n.starts_with("SIG"), "{sig} is named {n}");
        }
        assert_eq!(name(libc::SIGVTALRM), "SIGVTALRM");
        assert_eq!(name(rt(2)), "SIGRTMIN+2");
        assert_eq!(name(0), "signal 0");
    }
}
