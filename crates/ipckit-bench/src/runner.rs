//! Runs the plan: for each row, a fresh peer process (this program again), the driver's two
//! ends, a warm-up, then the recorded part; a watchdog kills a peer that dies or hangs and
//! unblocks the bench. Also the peer's side of all this ([`peer_main`]).

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ipckit::notify::pidfd::PidFd;
use ipckit_spawn::Child;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::control::Control;
use crate::driver::{Abort, Driver, Kind, Link, Role, Setup};
use crate::drivers;
use crate::error::{Error, Result};
use crate::payload::{MARK, MIN_SIZE, Payload, STOP};
use crate::report::{self, Report, Rtt, Run};
use crate::rows::Row;
use crate::system::{self, Who};

/// Set in the peer's environment to the descriptor number of its control channel.
pub const PEER_ENV: &str = "IPCKIT_BENCH_PEER";

/// One row to measure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The row.
    pub mechanism: Row,
    /// Latency or throughput.
    pub kind: Kind,
    /// Bytes per message.
    pub size: usize,
}

/// What the peer says on the control channel.
#[derive(Debug, Serialize, Deserialize)]
enum PeerMsg {
    /// Its end is set up.
    Ready,
    /// The warm-up's last message arrived (throughput).
    Marked,
    /// The STOP message arrived: messages received after the warm-up, and its CPU time since.
    Done { received: u64, cpu_ns: u64 },
}

/// What the parent sends first.
#[derive(Serialize, Deserialize)]
struct PeerJob {
    job: Job,
    cpu: Option<usize>,
}

/// Every row of the run, in report order. Sizes a mechanism cannot carry become skipped rows.
pub fn plan(cfg: &Config) -> Vec<Job> {
    let mut jobs = Vec::new();
    for &row in Row::ALL {
        if !cfg.only.is_empty() && !cfg.only.contains(&row) {
            continue;
        }
        let fixed = drivers::find(row).and_then(|d| d.fixed_size());
        for kind in [Kind::Latency, Kind::Throughput] {
            let sizes = match (row, kind, fixed) {
                (Row::RefMemcpy, Kind::Latency, _) => vec![],
                (_, _, Some(f)) => vec![f],
                (_, Kind::Latency, None) => cfg.latency_sizes.clone(),
                (_, Kind::Throughput, None) => cfg.throughput_sizes.clone(),
            };
            jobs.extend(sizes.into_iter().map(|size| Job {
                mechanism: row,
                kind,
                size,
            }));
        }
    }
    // Test-only drivers are named in `only` directly.
    for &row in cfg.only.iter().filter(|r| Row::TEST.contains(r)) {
        for (kind, size) in [(Kind::Latency, 64), (Kind::Throughput, 64)] {
            jobs.push(Job {
                mechanism: row,
                kind,
                size,
            });
        }
    }
    jobs
}

/// Runs every row of `cfg`, calling `progress(done, total, job)` before each, and returns the
/// report. A row that fails is kept with its `error`; see [`Report::failed`].
pub fn run(cfg: &Config, progress: &mut dyn FnMut(usize, usize, &Job)) -> Report {
    let jobs = plan(cfg);
    let allowed = system::allowed_cpus();
    let pins = if cfg.pin { system::pin_pair() } else { None };
    let pins = pins.filter(|[mine, _]| system::pin(*mine).is_ok());
    let mut runs = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if cfg.interrupt.load(Ordering::SeqCst) {
            break;
        }
        progress(i, jobs.len(), job);
        runs.push(row(cfg, job, pins));
    }
    let interrupted = cfg.interrupt.load(Ordering::SeqCst);
    if let Some(last) = jobs.last() {
        progress(jobs.len(), jobs.len(), last);
    }
    if pins.is_some() {
        let _ = system::unpin(&allowed);
    }
    Report {
        version: report::VERSION,
        tool: format!("ipckit {}", env!("CARGO_PKG_VERSION")),
        profile: cfg.profile.clone(),
        duration_ms: cfg.duration.as_millis() as u64,
        host: system::host(pins),
        claims: report::claims(&runs),
        overhead: report::overheads(&runs),
        interrupted,
        kv: None,
        runs,
    }
}

/// What a measurement recorded.
struct Measured {
    messages: u64,
    elapsed: Duration,
    cpu_ns: u64,
    hist: Option<Histogram<u64>>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How many times a throughput row is measured; the median counts.
pub const THROUGHPUT_REPEATS: usize = 3;

fn row(cfg: &Config, job: &Job, pins: Option<[usize; 2]>) -> Run {
    let (role, checked) = if job.mechanism == Row::RefMemcpy {
        (Role::Reference, Ok(()))
    } else {
        match drivers::find(job.mechanism) {
            Some(d) => (d.role(), d.check(job.size, job.kind)),
            None => (
                Role::Mechanism,
                Err(format!("no driver called {}", job.mechanism)),
            ),
        }
    };
    if let Err(why) = checked {
        return Run::skipped(job.mechanism.as_str(), role, job.kind, job.size, why);
    }
    // A throughput row is the median of three runs of a third of the time each: one burst of
    // noise on a shared machine then moves no figure. (A latency row's percentiles are already
    // medians over thousands of round trips.)
    let repeats = match job.kind {
        Kind::Throughput => THROUGHPUT_REPEATS,
        Kind::Latency => 1,
    };
    let part = Config {
        duration: cfg.duration / repeats as u32,
        ..cfg.clone()
    };
    let measured = (0..repeats)
        .map(|_| match job.mechanism {
            Row::RefMemcpy => memcpy(&part, job.size),
            _ => pair(&part, job, pins),
        })
        .collect::<Result<Vec<Measured>>>()
        .map(|mut all| {
            all.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            all.swap_remove(all.len() / 2)
        });
    let mut run = Run::skipped(
        job.mechanism.as_str(),
        role,
        job.kind,
        job.size,
        String::new(),
    );
    run.skipped = None;
    run.repeats = repeats;
    match measured {
        Ok(m) => {
            let secs = m.elapsed.as_secs_f64().max(1e-9);
            run.messages = m.messages;
            run.verified = true;
            run.msgs_per_s = Some(m.messages as f64 / secs);
            if job.kind == Kind::Throughput {
                run.bytes_per_s = Some((m.messages * job.size as u64) as f64 / secs);
            }
            run.cpu_ns_per_msg = Some(m.cpu_ns as f64 / m.messages.max(1) as f64);
            run.rtt_ns = m.hist.map(|h| Rtt {
                p50: h.value_at_quantile(0.5),
                p90: h.value_at_quantile(0.9),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
            });
        }
        Err(e) => run.error = Some(e.to_string()),
    }
    run
}

/// `ref-memcpy`: one process copying `size` bytes between two buffers as fast as it can.
fn memcpy(cfg: &Config, size: usize) -> Result<Measured> {
    let src = Payload::new(size.max(MIN_SIZE)).message(1)[..size].to_vec();
    let mut dst = vec![0u8; size];
    // Reading the clock costs about what copying 64 bytes does: look at it every 64 KiB.
    let batch = ((64 << 10) / size).max(16) as u64;
    let mut copies = |until: Instant| {
        let mut n = 0u64;
        loop {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst);
            n += 1;
            if n.is_multiple_of(batch) {
                if cfg.interrupt.load(Ordering::Relaxed) {
                    return Err(Error::Peer(INTERRUPTED.into()));
                }
                if Instant::now() >= until {
                    return Ok(n);
                }
            }
        }
    };
    copies(Instant::now() + cfg.warmup)?;
    let cpu0 = system::cpu_ns(Who::Thread);
    let start = Instant::now();
    let messages = copies(start + cfg.duration)?;
    Ok(Measured {
        messages,
        elapsed: start.elapsed(),
        cpu_ns: system::cpu_ns(Who::Thread) - cpu0,
        hist: None,
    })
}

const INTERRUPTED: &str = "interrupted";

/// Starts the peer with `ctl` as descriptor 3, killed if this process dies.
fn spawn(cfg: &Config, ctl: &Control) -> Result<Child> {
    let mut peer = ipckit_spawn::Spawn::new(&cfg.peer.program)
        .args(&cfg.peer.args)
        .role(PEER_ENV, "3")
        .fd(ctl.as_fd(), 3);
    peer.command().stdout(Stdio::null());
    Ok(peer.start()?)
}

/// Watches the peer: if it exits before the measurement is over, or outlives the deadline
/// (then it is killed), sets the stop flag and unblocks the bench's end. Returns why.
fn watchdog(
    pidfd: PidFd,
    deadline: Instant,
    interrupt: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    abort: Option<Abort>,
) -> JoinHandle<Option<String>> {
    const TICK: Duration = Duration::from_millis(100);
    std::thread::spawn(move || {
        let exited = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match pidfd.wait_exit_timeout(left.min(TICK)) {
                Ok(false) if interrupt.load(Ordering::SeqCst) => {
                    let _ = pidfd.send_signal(libc::SIGKILL);
                    stop.store(true, Ordering::SeqCst);
                    if let Some(abort) = abort {
                        abort();
                    }
                    return Some(INTERRUPTED.to_string());
                }
                Ok(false) if !left.is_zero() => continue,
                other => break other,
            }
        };
        let why = match exited {
            // Over: the reason is only used if the bench failed nonetheless.
            // Over: the bench is done with this peer, whatever happened.
            Ok(true) if done.load(Ordering::SeqCst) => return None,
            Ok(true) => EXITED.to_string(),
            _ => {
                let _ = pidfd.send_signal(libc::SIGKILL);
                "the peer did not finish in time and was killed (a lost message?)".to_string()
            }
        };
        stop.store(true, Ordering::SeqCst);
        if let Some(abort) = abort {
            abort();
        }
        Some(why)
    })
}

/// One row between two processes.
fn pair(cfg: &Config, job: &Job, pins: Option<[usize; 2]>) -> Result<Measured> {
    let driver = drivers::find(job.mechanism)
        .ok_or_else(|| Error::Usage(format!("no driver called {}", job.mechanism)))?;
    let (ctl, peer_ctl) = Control::pair()?;
    let mut child = spawn(cfg, &peer_ctl)?;
    drop(peer_ctl);
    let pid = child.id();
    let result = measure(cfg, job, pins, driver, &ctl, pid);
    if result.is_err() {
        let _ = child.signal(libc::SIGKILL);
    }
    // The peer is done or dying; reap it, by force if it lingers.
    if child.wait_timeout(Duration::from_secs(5))?.is_none() {
        child.kill_timeout(Duration::from_secs(5))?;
    }
    result
}

fn measure(
    cfg: &Config,
    job: &Job,
    pins: Option<[usize; 2]>,
    driver: &dyn Driver,
    ctl: &Control,
    pid: ipckit::Pid,
) -> Result<Measured> {
    let deadline = Instant::now() + cfg.warmup + cfg.duration + cfg.grace;
    ctl.send(&PeerJob {
        job: job.clone(),
        cpu: pins.map(|p| p[1]),
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let setup = Setup {
        size: job.size,
        kind: job.kind,
        stop: stop.clone(),
    };
    let done = Arc::new(AtomicBool::new(false));
    let mut link = driver
        .parent(&setup, ctl)
        .map_err(|e| peer_word(ctl).unwrap_or(e))?;
    let watch = watchdog(
        PidFd::open(pid)?,
        deadline,
        cfg.interrupt.clone(),
        stop,
        done.clone(),
        link.abort(),
    );
    let measured = match ctl.recv::<PeerMsg>() {
        Ok(PeerMsg::Ready) => match job.kind {
            Kind::Latency => latency(cfg, &setup, link.as_mut(), ctl),
            Kind::Throughput => throughput(cfg, &setup, link.as_mut(), ctl),
        },
        Ok(other) => Err(unexpected(other)),
        Err(e) => Err(e),
    };
    done.store(true, Ordering::SeqCst);
    let Err(e) = measured else {
        drop(link);
        let _ = watch.join();
        return measured;
    };
    // What to blame, most telling first: a payload check that failed here; the peer's own
    // report; the watchdog's reason (it acted: the peer exited early, hung, or the run was
    // interrupted); the peer's exit, if it died on its own just now; the error itself. The
    // peer's report is read, and its exit looked at, before this side closes its end (which
    // would give the peer an end-of-stream of its own to report).
    let word = peer_word(ctl);
    let gone = PidFd::open(pid)
        .and_then(|p| p.wait_exit_timeout(Duration::from_millis(100)))
        .unwrap_or(false);
    drop(link);
    let _ = ipckit::notify::signal::kill(pid, libc::SIGKILL);
    let why = watch.join().unwrap_or(None);
    Err(match (word, why) {
        _ if matches!(e, Error::Corrupt(_)) => e,
        (Some(word), _) => word,
        (None, Some(why)) => Error::Peer(why),
        (None, None) if gone => Error::Peer(EXITED.into()),
        (None, None) => e,
    })
}

const EXITED: &str = "the peer process exited in the middle of the measurement";

/// The failure the peer reported, if it did (it reports before it exits, so the report is
/// already there when its exit is noticed).
fn peer_word(ctl: &Control) -> Option<Error> {
    match ctl.recv_within::<PeerMsg>(Duration::ZERO) {
        Err(e @ (Error::Corrupt(_) | Error::Reported(_))) => Some(e),
        _ => None,
    }
}

fn latency(cfg: &Config, setup: &Setup, link: &mut dyn Link, ctl: &Control) -> Result<Measured> {
    let mut p = Payload::new(setup.size.max(MIN_SIZE));
    let mut seq = 0u64;
    let warm_until = Instant::now() + cfg.warmup;
    loop {
        link.send(p.message(seq))?;
        link.recv_with(&mut |m| p.expect(m, seq).map(|()| seq))?;
        seq += 1;
        setup.check()?;
        if Instant::now() >= warm_until {
            break;
        }
    }
    link.send(p.message(MARK))?;
    link.recv_with(&mut |m| p.expect(m, MARK).map(|()| MARK))?;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");
    let cpu0 = system::cpu_ns(Who::Thread);
    let start = Instant::now();
    let end = start + cfg.duration;
    let mut n = 0u64;
    loop {
        let t0 = Instant::now();
        link.send(p.message(seq))?;
        // The round trip ends when the answer is in hand, before it is checked.
        let mut t1 = t0;
        link.recv_with(&mut |m| {
            t1 = Instant::now();
            p.expect(m, seq).map(|()| seq)
        })?;
        hist.saturating_record((t1 - t0).as_nanos() as u64);
        seq += 1;
        n += 1;
        setup.check()?;
        if t1 >= end {
            break;
        }
    }
    let elapsed = start.elapsed();
    let cpu = system::cpu_ns(Who::Thread) - cpu0;
    link.send(p.message(STOP))?;
    let peer_cpu = finish(ctl, n)?;
    Ok(Measured {
        messages: n,
        elapsed,
        cpu_ns: cpu + peer_cpu,
        hist: Some(hist),
    })
}

fn throughput(cfg: &Config, setup: &Setup, link: &mut dyn Link, ctl: &Control) -> Result<Measured> {
    let mut p = Payload::new(setup.size.max(MIN_SIZE));
    let mut seq = 0u64;
    stream(link, &mut p, &mut seq, setup, Instant::now() + cfg.warmup)?;
    link.send(p.message(MARK))?;
    match ctl.recv::<PeerMsg>()? {
        PeerMsg::Marked => {}
        other => return Err(unexpected(other)),
    }
    let cpu0 = system::cpu_ns(Who::Thread);
    let start = Instant::now();
    let n = stream(link, &mut p, &mut seq, setup, start + cfg.duration)?;
    link.send(p.message(STOP))?;
    let cpu = system::cpu_ns(Who::Thread) - cpu0;
    let peer_cpu = finish(ctl, n)?;
    Ok(Measured {
        messages: n,
        elapsed: start.elapsed(),
        cpu_ns: cpu + peer_cpu,
        hist: None,
    })
}

/// Sends messages numbered from `*seq` on until `until`, looking at the clock and the stop
/// flag every 16 messages; returns how many it sent.
fn stream(
    link: &mut dyn Link,
    p: &mut Payload,
    seq: &mut u64,
    setup: &Setup,
    until: Instant,
) -> Result<u64> {
    let mut n = 0u64;
    loop {
        link.send(p.message(*seq))?;
        *seq += 1;
        n += 1;
        if n.is_multiple_of(16) {
            setup.check()?;
            if Instant::now() >= until {
                return Ok(n);
            }
        }
    }
}

fn unexpected(msg: PeerMsg) -> Error {
    Error::Peer(format!("unexpected message from the peer: {msg:?}"))
}

/// Waits for the peer's count and CPU time, and checks the count.
fn finish(ctl: &Control, sent: u64) -> Result<u64> {
    match ctl.recv::<PeerMsg>()? {
        PeerMsg::Done { received, cpu_ns } if received == sent => Ok(cpu_ns),
        PeerMsg::Done { received, .. } => Err(Error::Corrupt(format!(
            "{sent} messages sent, {received} received"
        ))),
        other => Err(unexpected(other)),
    }
}

/// Whether this process was started as a bench peer.
pub fn is_peer() -> bool {
    std::env::var_os(PEER_ENV).is_some()
}

/// The peer process: takes one job from the control channel, sets up its end, answers until
/// STOP, reports, and exits (0, or 1 after telling the bench what failed).
pub fn peer_main() -> ! {
    let fd: i32 = std::env::var(PEER_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    if !is_control_socket(fd) {
        eprintln!(
            "ipckit: {PEER_ENV} is set, but descriptor {fd} is not a bench's control socket: \
             this process is started by `ipckit bench` only; unset {PEER_ENV}"
        );
        std::process::exit(2);
    }
    // SAFETY: the bench passed its control socket as this descriptor (checked above), owned by
    // nobody else in this process.
    let ctl = Control::from_fd(unsafe { OwnedFd::from_raw_fd(fd) });
    // The link outlives the report of a failure: closing it first would let the bench see
    // end-of-file before the reason.
    let mut link = None;
    let code = match serve(&ctl, &mut link) {
        Ok(()) => 0,
        Err(e) => {
            let _ = ctl.fail(&e);
            1
        }
    };
    drop(link);
    std::process::exit(code)
}

/// Whether `fd` is open and a Unix seqpacket socket, as the bench's control end is.
fn is_control_socket(fd: i32) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: only borrowed for the two calls below, which fail cleanly on a closed number.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(fd).is_ok()
        && rustix::net::sockopt::socket_type(fd) == Ok(rustix::net::SocketType::SEQPACKET)
}

fn serve(ctl: &Control, slot: &mut Option<Box<dyn Link>>) -> Result<()> {
    let PeerJob { job, cpu } = ctl.recv()?;
    if let Some(cpu) = cpu {
        system::pin(cpu)?;
    }
    let driver: &dyn Driver = drivers::find(job.mechanism)
        .ok_or_else(|| Error::Usage(format!("no driver called {}", job.mechanism)))?;
    let setup = Setup {
        size: job.size,
        kind: job.kind,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let link = slot.insert(driver.peer(&setup, ctl)?);
    ctl.send(&PeerMsg::Ready)?;
    let mut p = Payload::new(job.size.max(MIN_SIZE));
    let (mut expect, mut counted, mut cpu0) = (0u64, None::<u64>, 0);
    loop {
        let seq = link.recv_with(&mut |m| p.check(m))?;
        match seq {
            STOP => break,
            MARK => {
                cpu0 = system::cpu_ns(Who::Process);
                counted = Some(0);
                match job.kind {
                    Kind::Latency => link.send(p.message(MARK))?,
                    Kind::Throughput => ctl.send(&PeerMsg::Marked)?,
                }
            }
            _ if seq != expect => {
                return Err(Error::Corrupt(format!(
                    "expected message {expect}, got message {seq}"
                )));
            }
            _ => {
                expect += 1;
                if let Some(n) = counted.as_mut() {
                    *n += 1;
                }
                if job.kind == Kind::Latency {
                    link.send(p.message(seq))?;
                }
            }
        }
    }
    ctl.send(&PeerMsg::Done {
        received: counted.unwrap_or(0),
        cpu_ns: system::cpu_ns(Who::Process) - cpu0,
    })
}
