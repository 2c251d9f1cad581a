//! How a side of a channel waits: for a message (the receiver) or for a free slot (a sender).
//!
//! Each direction has a [`Signal`] in the shared header: a count of sleepers, a futex word
//! (`epoch`), and a count of waiters that asked for fenced notifications. A waiter spins
//! first ([`Wait::Spin`] for ever, [`Wait::Adaptive`] for [`ADAPTIVE_SPIN`], [`Wait::Blocking`]
//! not at all), then counts itself in `sleepers`, re-checks, and sleeps on `epoch`. The other
//! side, after publishing, looks at `sleepers`: only when somebody sleeps does it bump
//! `epoch` and call `FUTEX_WAKE` (and write the eventfd of a pollable channel). A busy pair
//! therefore makes no system call at all.
//!
//! # Why no wake-up is lost, and why the busy path has no fence
//!
//! The waiter stores to `sleepers` then loads the stamp; the publisher stores the stamp then
//! loads `sleepers` (Dekker's pattern). Each pair needs a store-load barrier between, or both
//! could miss the other's store. A `SeqCst` fence on the publisher's side costs it the drain
//! of its store buffer on every message, about a cache-line transfer: measured, a third of
//! the round trip of a busy pair. So the barrier is made asymmetric, as userspace RCU does:
//! every process using a channel registers with `membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)`,
//! the publisher's side is only a compiler fence, and a waiter about to sleep calls
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which runs a full barrier on every CPU
//! running a registered process. Either the publisher's store was before that barrier (then
//! the waiter's re-check sees it) or its load of `sleepers` is after it (then it sees the
//! sleeper). The system call is paid only by a side that is about to sleep anyway.
//!
//! A waiter that sleeps on every message ([`Wait::Blocking`], or a pollable receiver) would
//! pay it every time, so instead it registers in the signal's `fenced` count once (followed
//! by one `membarrier`), and while that count is not zero publishers use a real `SeqCst`
//! fence. A process where `membarrier` is not available (an old kernel, a seccomp filter)
//! always fences as a publisher and registers as fenced as a waiter; the one wake-up that
//! registration could race with is caught by the sleep's [`SLICE`] bound.
//!
//! The `epoch` word closes the rest: the waiter reads it before its re-check, and a publisher
//! that saw the sleeper bumps it before `FUTEX_WAKE`, so `FUTEX_WAIT` returns at once
//! (`EAGAIN`) if the bump came first.
//!
//! A sleeping side also wakes every [`SLICE`] to ask whether its peer is still there (through
//! the channel's socket: see `bulk`), and at once when an end of the channel is dropped (the
//! dropping side bumps `hangups` and wakes everyone). So a peer killed with `SIGKILL` is
//! noticed within one slice; a peer that drops its end is noticed at once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering, compiler_fence, fence};
use std::time::{Duration, Instant};

use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};

use crate::error::{Error, ErrorKind, Result};
use crate::notify::eventfd::EventFd;
use crate::poll::Deadline;
use crate::sync::futex;

/// How a channel's ends wait for each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wait {
    /// Busy-poll: the lowest latency, a whole CPU per waiting side.
    Spin,
    /// Sleep on a futex at once: no CPU while waiting, a system call per wake-up.
    Blocking,
    /// Spin for [`ADAPTIVE_SPIN`], then sleep on a futex. A busy pair (round trips of a few
    /// microseconds at most) never sleeps and makes no system call; an idle one costs
    /// nothing.
    #[default]
    Adaptive,
}

/// How long [`Wait::Adaptive`] spins before it sleeps: several round trips between two busy
/// processes (well under a microsecond to a few), and less than a sleeping wake-up costs
/// (tens of microseconds on a VM). Longer spins were measured to buy nothing: a wait that
/// outlasts this is one where the other side is doing real work (copying a large message,
/// say), and on a machine whose two CPUs share a core a spinning side slows it down.
pub const ADAPTIVE_SPIN: Duration = Duration::from_micros(20);

/// How often a sleeping side wakes to check that its peer is alive: the bound on noticing a
/// peer killed by `SIGKILL`.
pub const SLICE: Duration = Duration::from_millis(50);

/// Spins before the clock is first read.
const FIRST_SPINS: u32 = 256;

/// How often a spinning side checks that its peer is alive.
const SPIN_CHECK: Duration = Duration::from_millis(1);

/// Whether this process takes part in asymmetric barriers (registered once, on first use).
fn asymmetric() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        membarrier_query().contains_command(MembarrierCommand::GlobalExpedited)
            && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    })
}

/// A full barrier on every CPU running a registered process; `false` if not available.
fn barrier_everywhere() -> bool {
    asymmetric() && membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

/// This process's pid, without a system call on the busy path: cached, and read again after
/// a `fork` (a `pthread_atfork` child handler bumps a generation).
pub(crate) fn current_pid() -> u32 {
    use std::sync::atomic::AtomicU64;
    static FORKS: AtomicU64 = AtomicU64::new(0);
    // (generation + 1) << 32 | pid; 0 until first read.
    static CACHED: AtomicU64 = AtomicU64::new(0);
    static HOOK: OnceLock<()> = OnceLock::new();
    extern "C" fn forked() {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
    HOOK.get_or_init(|| {
        // SAFETY: registers a handler that only touches an atomic, which is
        // async-signal-safe, as a handler run in a forked child must be.
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    });
    let generation = FORKS.load(Ordering::Relaxed);
    let cached = CACHED.load(Ordering::Relaxed);
    if cached >> 32 == generation + 1 {
        return cached as u32;
    }
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    CACHED.store((generation + 1) << 32 | u64::from(pid), Ordering::Relaxed);
    pid
}

/// One direction's wake-up: in the shared header, on its own cache line.
#[repr(C)]
pub(crate) struct Signal {
    /// How many waiters sleep (or are about to) on `epoch`.
    sleepers: AtomicU32,
    /// The futex word: bumped by every wake-up.
    epoch: AtomicU32,
    /// How many waiters asked publishers for a real fence.
    fenced: AtomicU32,
}

impl Signal {
    /// After a publish (a commit, a release): wakes whoever sleeps on this signal, and
    /// `event` (a pollable channel's eventfd) with it.
    ///
    /// Errors of the wake-up itself (a futex or eventfd call that fails, which takes a bad
    /// address or a full counter) are ignored: the sleeper's [`SLICE`] bound catches a missed
    /// wake-up.
    #[inline]
    pub(crate) fn notify(&self, event: Option<&EventFd>) {
        if self.fenced.load(Ordering::Relaxed) != 0 || !asymmetric() {
            fence(Ordering::SeqCst);
        } else {
            compiler_fence(Ordering::SeqCst);
        }
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            let _ = self.wake(event);
        }
    }

    /// Wakes every sleeper, whether or not the count says there is one.
    #[cold]
    pub(crate) fn wake(&self, event: Option<&EventFd>) -> Result<()> {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake(&self.epoch, u32::MAX)?;
        if let Some(e) = event {
            e.add(1)?;
        }
        Ok(())
    }

    /// Counts a waiter in (`arm`) or out. A pollable receiver stays counted while it waits in
    /// an event loop, and asks for fenced notifications.
    pub(crate) fn count(&self, arm: bool, waiter: &mut Waiter) {
        if arm {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            // The store above, then the re-check's load: a full fence between (free on the
            // way to sleep), whatever the target's atomics compile to.
            fence(Ordering::SeqCst);
            waiter.by = current_pid();
            // A waiter that sleeps every time asks for fences once; an adaptive one pays the
            // barrier only now (and falls back to asking if it cannot).
            let every_time = waiter.wait == Wait::Blocking || waiter.pollable;
            if every_time || !barrier_everywhere() {
                waiter.fence(self);
            }
        } else {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// One end's way of waiting.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) wait: Wait,
    /// A pollable receiver: it waits in its user's event loop.
    pollable: bool,
    /// Counted in its signal's `fenced`.
    fenced: bool,
    /// The process that last counted this end in (a copy inherited across `fork` must not
    /// count it out).
    by: u32,
    /// The header's hang-up count when this end last looked at its peer.
    pub(crate) seen: u32,
}

impl Waiter {
    pub(crate) fn new(wait: Wait, pollable: bool) -> Waiter {
        // Register for asymmetric barriers as soon as an end exists in this process.
        asymmetric();
        Waiter {
            wait,
            pollable,
            fenced: false,
            by: 0,
            seen: 0,
        }
    }

    /// Asks `signal`'s publishers for real fences from now on.
    fn fence(&mut self, signal: &Signal) {
        if !self.fenced || !self.mine() {
            self.fenced = true;
            self.by = current_pid();
            signal.fenced.fetch_add(1, Ordering::SeqCst);
            // Every publisher sees the count before this end relies on it.
            barrier_everywhere();
        }
    }

    /// Whether this process is the one that counted this end in.
    pub(crate) fn mine(&self) -> bool {
        self.by == current_pid()
    }

    /// Takes this end's count out of `signal` (when the end is dropped), in the process
    /// that put it there only.
    pub(crate) fn leave(&mut self, signal: &Signal) {
        if self.fenced && self.mine() {
            self.fenced = false;
            signal.fenced.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// What a waiting side asks of its peer.
pub(crate) trait Peer {
    /// `Err` (kind [`ErrorKind::Disconnected`]) when the other side is gone. May make system
    /// calls: called every [`SLICE`] of sleep or [`SPIN_CHECK`] of spinning.
    fn alive(&mut self) -> Result<()>;
    /// A number that changes whenever an end of the channel is dropped: read without a system
    /// call, so a waiter looks at its peer as soon as it changes.
    fn hangups(&self) -> u32;
}

/// How long an operation may wait, in the form the hot path wants: a try reads no clock, and
/// a timeout becomes an instant only once the wait really waits. Every public form is one of
/// these: `try_x` is [`Limit::Now`], `x_timeout` [`Limit::For`], `x` and `x_deadline`
/// [`Limit::Until`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// One look, no wait.
    Now,
    /// Up to this long from when the wait starts.
    For(Duration),
    /// Until this deadline ([`Deadline::NEVER`]: for ever).
    Until(Deadline),
}

impl Limit {
    /// No limit: the blocking forms.
    pub(crate) const NEVER: Limit = Limit::Until(Deadline::NEVER);

    /// Whether this is one look and no wait.
    #[inline]
    pub(crate) fn is_now(self) -> bool {
        matches!(self, Limit::Now | Limit::For(Duration::ZERO))
    }

    /// The instant the limit ends for a wait that starts at `start`; `None`: never.
    fn ends(self, start: Instant) -> Option<Instant> {
        match self {
            Limit::Now => Some(start),
            // A timeout too large for the clock is no timeout.
            Limit::For(t) => start.checked_add(t),
            Limit::Until(d) => d.instant(),
        }
    }

    /// The limit as a deadline from now, for a wait outside the ring (the channel's socket).
    pub(crate) fn deadline(self) -> Deadline {
        match self {
            Limit::Now => Deadline::now(),
            Limit::For(t) => Deadline::after(t),
            Limit::Until(d) => d,
        }
    }
}

/// The error of a wait with no limit that ended without a value, which cannot happen.
pub(crate) fn unreachable_timeout(op: &'static str) -> Error {
    Error::new(ErrorKind::TimedOut, op, "a wait with no time limit ended")
}

/// Calls `ready` until it gives a value, `limit` passes (`Ok(None)`), or the peer is gone
/// (then one last `ready`, so nothing sent before the peer went is lost). Inlined, so `ready`
/// is inlined into the spin loop.
#[inline]
pub(crate) fn until<T>(
    waiter: &mut Waiter,
    signal: &Signal,
    limit: Limit,
    peer: &mut dyn Peer,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<Option<T>> {
    if let Some(v) = ready() {
        return Ok(Some(v));
    }
    if limit.is_now() {
        return one_look(peer, ready);
    }
    let spin_for = match waiter.wait {
        Wait::Spin => None,
        Wait::Adaptive => Some(ADAPTIVE_SPIN),
        Wait::Blocking => Some(Duration::ZERO),
    };
    // A first few spins before the clock is read: a busy peer answers within them.
    if spin_for != Some(Duration::ZERO) {
        for _ in 0..FIRST_SPINS {
            std::hint::spin_loop();
            if let Some(v) = ready() {
                return Ok(Some(v));
            }
        }
    }
    // An end dropped since this one last looked (before this call, perhaps): look now.
    let h = peer.hangups();
    if h != waiter.seen {
        if let Err(e) = peer.alive() {
            return last(e, ready);
        }
        waiter.seen = h;
    }
    let start = Instant::now();
    let deadline = limit.ends(start);
    if deadline.is_some_and(|d| d <= start) {
        // A deadline already passed: a try.
        return one_look(peer, ready);
    }
    let mut checked = start;
    let mut n = 0u32;
    // Spin.
    loop {
        if spin_for == Some(Duration::ZERO) {
            break;
        }
        std::hint::spin_loop();
        if let Some(v) = ready() {
            return Ok(Some(v));
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(64) {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let h = peer.hangups();
            if h != waiter.seen || now - checked >= SPIN_CHECK {
                checked = now;
                if let Err(e) = peer.alive() {
                    return last(e, ready);
                }
                waiter.seen = h;
            }
            if spin_for.is_some_and(|s| now - start >= s) {
                break;
            }
        }
    }
    // Sleep.
    signal.count(true, waiter);
    let result = sleep(signal, deadline, peer, &mut waiter.seen, &mut ready);
    signal.count(false, waiter);
    match result {
        Err(e) if e.kind() == ErrorKind::Disconnected => last(e, ready),
        other => other,
    }
}

fn sleep<T>(
    signal: &Signal,
    deadline: Option<Instant>,
    peer: &mut dyn Peer,
    seen: &mut u32,
    ready: &mut impl FnMut() -> Option<T>,
) -> Result<Option<T>> {
    loop {
        let epoch = signal.epoch.load(Ordering::SeqCst);
        if let Some(v) = ready() {
            return Ok(Some(v));
        }
        let h = peer.hangups();
        if h != *seen {
            peer.alive()?;
            *seen = h;
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(None),
            },
            None => SLICE,
        };
        if !futex::wait_timeout(&signal.epoch, epoch, left.min(SLICE))? {
            peer.alive()?;
        }
    }
}

/// A try: one look at the peer, so a try on a dead channel says so; then one more look at
/// the ring (the peer's look may have found a dead sender's slot to skip).
fn one_look<T>(peer: &mut dyn Peer, mut ready: impl FnMut() -> Option<T>) -> Result<Option<T>> {
    match peer.alive() {
        Ok(()) => Ok(ready()),
        Err(e) => last(e, ready),
    }
}

fn last<T>(e: crate::Error, mut ready: impl FnMut() -> Option<T>) -> Result<Option<T>> {
    match ready() {
        Some(v) => Ok(Some(v)),
        None => Err(e),
    }
}

/// The methods both ends have alike: how the end waits ([`Waiter`]) and the ring's slot size
/// (`Shared`). One body for [`Sender`](super::Sender) and [`Receiver`](super::Receiver).
macro_rules! end_methods {
    ($end:ident) => {
        impl $end {
            /// How this end waits from now on (this end only: the others keep theirs).
            pub fn set_wait(&mut self, wait: Wait) {
                self.waiter.wait = wait;
            }

            /// How this end waits: the channel creator's
            /// [`Options::wait`](super::Options::wait), whichever way the end was reached,
            /// until [`set_wait`](Self::set_wait) changes it.
            pub fn wait_mode(&self) -> Wait {
                self.waiter.wait
            }

            /// The largest message that travels in the ring; larger ones go as bulk.
            pub fn slot_size(&self) -> usize {
                self.shared.slot_size
            }
        }
    };
}
pub(super) use end_methods;
