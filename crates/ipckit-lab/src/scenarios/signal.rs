//! Signals between processes, and what they can and cannot carry: standard signals coalesce
//! while pending (five SIGUSR1s arrive as one) but real-time signals queue, each with its
//! value and in order; a handler may only do async-signal-safe work, so a poll loop learns of
//! a signal from a self-pipe or a signalfd; SIGKILL and SIGSTOP can be neither caught, blocked
//! nor ignored.
//!
//! Blocking signals is done in child processes only: the lab's own process has threads (one
//! per child's output), and a signal blocked in one thread is delivered to another.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use ipckit::error::errno_name;
use ipckit::notify::signal::{self, SIGKILL, SIGTERM, SIGUSR1, SIGUSR2, SelfPipe, SignalFd};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::child::{self, Args, Role};
use crate::{Lab, Scenario, Verdict};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "signal-coalescing",
        lesson: "a standard signal sent 5 times while blocked arrives once; a real-time signal arrives 5 times, in order, with its values",
        run: coalescing,
    },
    Scenario {
        name: "signal-safe-wakeup",
        lesson: "a handler may only do async-signal-safe work: a self-pipe or a signalfd turns a signal into a readable descriptor for a poll loop",
        run: safe_wakeup,
    },
    Scenario {
        name: "uncatchable-signals",
        lesson: "SIGKILL and SIGSTOP cannot be caught, blocked or ignored: a process that ignores SIGTERM still dies of SIGKILL and stops on SIGSTOP",
        run: uncatchable,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("sig-receiver", receiver),
    ("sig-sender", sender),
    ("sig-waker", waker),
    ("sig-stubborn", stubborn),
];

/// The real-time signal the scenarios queue.
fn rt_sig() -> i32 {
    signal::rt(1)
}

/// How many times each signal is sent in `signal-coalescing`.
const SENDS: i32 = 5;

/// How soon a poll loop must wake after the signal was sent.
const WAKE_BOUND: Duration = Duration::from_secs(1);

/// CLOCK_MONOTONIC now, in nanoseconds: the same clock in every process of the machine.
fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The signals whose bits are set in field `field` (SigPnd, ShdPnd, SigBlk, SigIgn, ...) of
/// /proc/PID/status: bit n-1 stands for signal n.
fn proc_sigset(pid: u32, field: &str) -> crate::Result<Vec<String>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?
        .trim();
    let bits = u64::from_str_radix(hex, 16)?;
    Ok((0..64)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| signal::name(b + 1))
        .collect())
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// signal-coalescing

fn coalescing(lab: &mut Lab) -> crate::Result<Verdict> {
    let rt = rt_sig();
    let mut rx = child::spawn("sig-receiver").start()?;
    let rpid = rx.pid();
    rx.line()?; // "ready": both signals blocked, signalfd open
    lab.say(
        format!("child {rpid}"),
        format!(
            "blocks SIGUSR1 and {}, reads them from a signalfd",
            signal::name(rt)
        ),
    );
    let mut tx = child::spawn("sig-sender").arg("PID", rpid).start()?;
    let spid = tx.pid();

    let mut counts = Vec::new();
    let mut rt_values = Vec::new();
    for (how, sig) in [("kill", SIGUSR1), ("queue", rt)] {
        tx.tell(&format!("{how} {sig} {SENDS}"))?;
        tx.line()?;
        let call = if how == "kill" {
            format!("kill({rpid}, {}) x{SENDS}", signal::name(sig))
        } else {
            format!("sigqueue({rpid}, {}, value 1..={SENDS})", signal::name(sig))
        };
        lab.say(format!("child {spid}"), call);
        lab.kernel(format!(
            "pending for {rpid}: {}",
            listed(&proc_sigset(rpid, "ShdPnd")?)
        ));
        rx.tell("drain")?;
        let mut got = Vec::new();
        loop {
            let l = rx.line()?;
            if l == "end" {
                break;
            }
            let w: Vec<i32> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            if let [signo, value] = w[..] {
                got.push((signo, value));
            }
        }
        let values: Vec<String> = got.iter().map(|(_, v)| v.to_string()).collect();
        lab.say(
            format!("child {rpid}"),
            format!(
                "read signalfd -> {} x{}{}, then EAGAIN",
                signal::name(sig),
                got.iter().filter(|(s, _)| *s == sig).count(),
                if how == "queue" {
                    format!(" (values {})", values.join(", "))
                } else {
                    String::new()
                }
            ),
        );
        counts.push(got.iter().filter(|(s, _)| *s == sig).count());
        if how == "queue" {
            rt_values = got.iter().map(|(_, v)| *v).collect();
        }
    }
    drop(tx);
    drop(rx);
    let in_order = rt_values == (1..=SENDS).collect::<Vec<_>>();
    Verdict::check(
        counts == [1, SENDS as usize] && in_order,
        format!(
            "{SENDS} sent of each: SIGUSR1 delivered {} time(s), {} delivered {} time(s){}",
            counts[0],
            signal::name(rt),
            counts[1],
            if in_order {
                ", values 1..5 in order"
            } else {
                ", values out of order or lost"
            }
        ),
    )
}

/// Child: blocks SIGUSR1 and SIGRTMIN+1 behind a signalfd; on `drain` reads every pending
/// signal and says `SIGNO VALUE` for each, then `end`.
fn receiver(_args: &Args) -> crate::Result<()> {
    // One thread in this process: blocking in it blocks for the whole process.
    let sfd = SignalFd::new(&[SIGUSR1, rt_sig()])?;
    child::say("ready");
    while let Some(cmd) = child::hear() {
        if cmd != "drain" {
            return Err(format!("unknown command {cmd:?}").into());
        }
        while let Some(info) = sfd.try_read()? {
            child::say(format!("{} {}", info.signo, info.value));
        }
        child::say("end");
    }
    Ok(())
}

/// Child: sends signals to process PID as the parent says: `kill SIG N` (N kills) or `queue
/// SIG N` (N sigqueues with values 1..=N); answers `sent T` with the CLOCK_MONOTONIC time
/// just before the first.
fn sender(args: &Args) -> crate::Result<()> {
    let pid: ipckit::Pid = args.parse("PID")?;
    while let Some(cmd) = child::hear() {
        let w: Vec<&str> = cmd.split_whitespace().collect();
        let (how, sig, n): (&str, i32, i32) = match w[..] {
            [how, sig, n] => (how, sig.parse()?, n.parse()?),
            _ => return Err(format!("unknown command {cmd:?}").into()),
        };
        let t = mono_ns();
        for i in 1..=n {
            match how {
                "kill" => signal::kill(pid, sig)?,
                "queue" => signal::queue(pid, sig, i)?,
                _ => return Err(format!("unknown command {cmd:?}").into()),
            }
        }
        child::say(format!("sent {t}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// signal-safe-wakeup

fn safe_wakeup(lab: &mut Lab) -> crate::Result<Verdict> {
    let mut rx = child::spawn("sig-waker").start()?;
    let rpid = rx.pid();
    rx.line()?; // "ready"
    lab.say(
        format!("child {rpid}"),
        "SIGUSR1: handler that only write()s a byte to a pipe (self-pipe)",
    );
    lab.say(
        format!("child {rpid}"),
        "SIGUSR2: blocked, read from a signalfd; poll() watches both descriptors",
    );
    let mut tx = child::spawn("sig-sender").arg("PID", rpid).start()?;
    let spid = tx.pid();
    let bound = WAKE_BOUND.as_millis();

    let mut woke = Vec::new();
    for (sig, via) in [(SIGUSR1, "self-pipe"), (SIGUSR2, "signalfd")] {
        rx.tell(&format!("wait {bound}"))?;
        rx.line()?; // "polling"
        tx.tell(&format!("kill {sig} 1"))?;
        let sent: u64 = tx
            .line()?
            .strip_prefix("sent ")
            .ok_or("the sender did not say when it sent")?
            .parse()?;
        lab.say(
            format!("child {spid}"),
            format!("kill({rpid}, {})", signal::name(sig)),
        );
        let l = rx.line()?;
        let w: Vec<&str> = l.split_whitespace().collect();
        match w[..] {
            ["woke", how, signo, at, eintr] => {
                let at: u64 = at.parse()?;
                let us = at.saturating_sub(sent) / 1000;
                let eintr: u32 = eintr.parse()?;
                if eintr > 0 {
                    lab.kernel(format!(
                        "poll -> {} (the handler ran; poll is never restarted), poll again",
                        errno_name(Errno::INTR)
                    ));
                }
                lab.say(
                    format!("child {rpid}"),
                    format!(
                        "poll -> {how} readable, read {} after {us} us",
                        signal::name(signo.parse()?)
                    ),
                );
                let ok = how == via
                    && signo.parse::<i32>()? == sig
                    && Duration::from_micros(us) < WAKE_BOUND;
                woke.push((via, ok, us));
            }
            _ => {
                lab.say(format!("child {rpid}"), format!("poll: {l}"));
                woke.push((via, false, 0));
            }
        }
    }
    let all = woke.iter().all(|(_, ok, _)| *ok);
    let summary: Vec<String> = woke
        .iter()
        .map(|(via, ok, us)| {
            if *ok {
                format!("{via} woke the loop in {us} us")
            } else {
                format!("{via} did not wake it")
            }
        })
        .collect();
    Verdict::check(
        all && woke.len() == 2,
        format!("{} (bound {bound} ms)", summary.join(", ")),
    )
}

/// Child: a poll loop woken by signals: SIGUSR1 through the self-pipe handler, SIGUSR2
/// through a signalfd. On `wait MS` says `polling`, polls both for at most MS, and says
/// `woke self-pipe|signalfd SIGNO T EINTRS` (T: CLOCK_MONOTONIC when it woke) or `timed out`.
fn waker(_args: &Args) -> crate::Result<()> {
    let pipe = SelfPipe::install(&[SIGUSR1])?;
    let sfd = SignalFd::new(&[SIGUSR2])?;
    child::say("ready");
    while let Some(cmd) = child::hear() {
        let ms: u64 = cmd
            .strip_prefix("wait ")
            .ok_or_else(|| format!("unknown command {cmd:?}"))?
            .parse()?;
        let deadline = Instant::now() + Duration::from_millis(ms);
        let mut eintr = 0;
        child::say("polling");
        let (via, ready) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [
                PollFd::new(pipe.reader(), PollFlags::IN),
                PollFd::new(&sfd, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(0) => break ("", false),
                Ok(_) if fds[0].revents().contains(PollFlags::IN) => break ("self-pipe", true),
                Ok(_) => break ("signalfd", true),
                Err(Errno::INTR) => eintr += 1,
                Err(e) => return Err(e.into()),
            }
        };
        let at = mono_ns();
        if !ready {
            child::say("timed out");
            continue;
        }
        let signo = if via == "self-pipe" {
            pipe.try_wait()?
        } else {
            sfd.try_read()?.map(|i| i.signo)
        }
        .ok_or("readable but nothing to read")?;
        child::say(format!("woke {via} {signo} {at} {eintr}"));
    }
    drop(pipe);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// uncatchable-signals

/// The state letter of /proc/PID/stat (R, S, T, Z, ...).
fn proc_state(pid: u32) -> crate::Result<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Ok(ipckit::host::procfs::stat_state(&stat).ok_or("odd /proc/PID/stat")?)
}

/// Waits (at most [`child::T`]) until `pid`, a child of this process, has stopped or
/// exited, leaving its state to be collected later (`WNOWAIT`); true if it stopped.
fn wait_stopped(pid: u32) -> crate::Result<bool> {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let pid = Pid::from_raw(pid as i32).ok_or("bad pid")?;
    let opts = WaitIdOptions::STOPPED
        | WaitIdOptions::EXITED
        | WaitIdOptions::NOHANG
        | WaitIdOptions::NOWAIT;
    let start = Instant::now();
    loop {
        if let Some(st) = waitid(WaitId::Pid(pid), opts)? {
            return Ok(st.stopped());
        }
        if start.elapsed() > child::T {
            return Err("the child neither stopped nor exited".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn uncatchable(lab: &mut Lab) -> crate::Result<Verdict> {
    let mut c = child::spawn("sig-stubborn").start()?;
    let pid = c.pid();
    let who = format!("child {pid}");
    // Four attempts on SIGKILL and SIGSTOP, then SIGTERM ignored.
    let mut refused = 0;
    for _ in 0..4 {
        let l = c.line()?;
        refused += usize::from(l.ends_with("EINVAL") || l.ends_with("holds neither"));
        lab.say(&who, l);
    }
    let l = c.line()?;
    lab.say(&who, &l);
    // (SIGPIPE is in the list too: Rust programs start with it ignored.)
    lab.kernel(format!(
        "/proc/{pid}/status SigIgn: {}",
        listed(&proc_sigset(pid, "SigIgn")?)
    ));

    c.signal(SIGTERM)?;
    lab.say("parent", "SIGTERM");
    c.tell("ping")?;
    let survived_term = c.line()? == "pong";
    lab.say(
        &who,
        if survived_term {
            "still here (pong)"
        } else {
            "?"
        },
    );

    c.signal(libc::SIGSTOP)?;
    lab.say("parent", "SIGSTOP");
    let stopped = wait_stopped(pid)?;
    let state = proc_state(pid)?;
    lab.kernel(format!(
        "waitid(WSTOPPED) -> {}; /proc/{pid}/stat state {state}",
        if stopped {
            "stopped by SIGSTOP"
        } else {
            "exited"
        }
    ));
    c.tell("ping")?;
    let quiet = Duration::from_millis(200);
    let silent = c.line_within(quiet)?.is_none();
    lab.say(
        "parent",
        format!(
            "ping -> {}",
            if silent {
                format!("no answer in {} ms (stopped)", quiet.as_millis())
            } else {
                "answered".into()
            }
        ),
    );
    c.signal(libc::SIGCONT)?;
    lab.say("parent", "SIGCONT");
    let resumed = c.line()? == "pong";
    lab.say(
        &who,
        if resumed {
            "runs again, answers: pong"
        } else {
            "?"
        },
    );

    let st = c.kill()?;
    lab.say("parent", "SIGKILL");
    let killed = st.signal() == Some(SIGKILL);
    lab.kernel(format!(
        "{pid} {}",
        match st.signal() {
            Some(s) => format!("killed by {} (wait status)", signal::name(s)),
            None => format!("exited with {}", st.code().unwrap_or(-1)),
        }
    ));
    Verdict::check(
        refused == 4 && survived_term && stopped && state == 'T' && silent && resumed && killed,
        format!(
            "{refused} of 4 attempts to catch/ignore/block SIGKILL or SIGSTOP refused; SIGTERM {}; SIGSTOP {}; SIGKILL {}",
            if survived_term {
                "ignored"
            } else {
                "not ignored"
            },
            if stopped && silent && resumed {
                "stopped it, SIGCONT resumed it"
            } else {
                "did not stop it cleanly"
            },
            if killed {
                "killed it"
            } else {
                "did not kill it"
            }
        ),
    )
}

/// `sigaction(sig, handler)` with libc: ipckit installs no dispositions but its self-pipe.
fn set_disposition(sig: i32, handler: libc::sighandler_t) -> Result<(), Errno> {
    // SAFETY: all-zero is a valid sigaction; the handler set is SIG_IGN or SIG_DFL, no code.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: `act` is valid; a null old-action pointer is allowed.
    if unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) } == -1 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ));
    }
    Ok(())
}

/// Child: tries to catch, ignore and block SIGKILL and SIGSTOP and says what the kernel
/// answered, ignores SIGTERM, then answers each `ping` with `pong`.
fn stubborn(_args: &Args) -> crate::Result<()> {
    let answer = |r: Result<(), Errno>| match r {
        Ok(()) => "0 (accepted!)".to_string(),
        Err(e) => errno_name(e),
    };
    let catch = match SelfPipe::install(&[SIGKILL]) {
        Ok(_) => "0 (accepted!)".to_string(),
        Err(e) => crate::errno_of(&e),
    };
    child::say(format!("sigaction(SIGKILL, handler) -> {catch}"));
    child::say(format!(
        "sigaction(SIGKILL, SIG_IGN) -> {}",
        answer(set_disposition(SIGKILL, libc::SIG_IGN))
    ));
    child::say(format!(
        "sigaction(SIGSTOP, SIG_IGN) -> {}",
        answer(set_disposition(libc::SIGSTOP, libc::SIG_IGN))
    ));
    signal::block(&[SIGKILL, libc::SIGSTOP])?;
    // SAFETY: an all-zero sigset_t is valid storage for pthread_sigmask to fill.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new set only reads the mask into `mask`.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) };
    // SAFETY: `mask` was filled by pthread_sigmask.
    let held = unsafe {
        libc::sigismember(&mask, SIGKILL) == 1 || libc::sigismember(&mask, libc::SIGSTOP) == 1
    };
    child::say(if held {
        "sigprocmask(SIG_BLOCK, SIGKILL SIGSTOP) -> blocked them!"
    } else {
        "sigprocmask(SIG_BLOCK, SIGKILL SIGSTOP) -> 0, but the mask holds neither"
    });
    child::say(format!(
        "sigaction(SIGTERM, SIG_IGN) -> {}",
        answer(set_disposition(SIGTERM, libc::SIG_IGN)).replace(" (accepted!)", "")
    ));
    while let Some(cmd) = child::hear() {
        if cmd == "ping" {
            child::say("pong");
        }
    }
    Ok(())
}
