//! The iceoryx2 row between two real processes: this test binary re-executes itself as the peer
//! (`--exact iceoryx_peer`, with the peer's control end as descriptor 3), checks every payload,
//! and checks that nothing of iceoryx2 is left in /dev/shm, /tmp/iceoryx2 or the temporary
//! directory afterwards — also when the peer is killed with SIGKILL mid-stream.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ipckit::notify::pidfd::PidFd;
use ipckit_bench::control::Control;
use ipckit_bench::driver::{Driver, Kind, Setup};
use ipckit_bench::drivers::iceoryx::Iceoryx2;
use serde::{Deserialize, Serialize};

/// Set in the peer's environment: the peer test runs only then.
const PEER_ENV: &str = "IPCKIT_BENCH_ICEORYX_PEER";
/// The test the peer process runs.
const PEER_TEST: &str = "iceoryx_peer";
/// The longest any process waits for the other before giving up.
const WAIT: Duration = Duration::from_secs(60);
/// The descriptor the peer finds its control end at.
const PEER_FD: i32 = 3;

/// The tests share /dev/shm listings: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What the peer is to do, sent before the driver's own setup.
#[derive(Serialize, Deserialize)]
struct Job {
    kind: Kind,
    size: usize,
    /// Messages to take; `u64::MAX`: until killed.
    count: u64,
}

/// The peer's verdict on what it received.
#[derive(Serialize, Deserialize)]
struct Done {
    error: Option<String>,
}

/// The payload of every message: a fixed pattern, with the sequence number in the first 8
/// bytes (little-endian).
struct Payload {
    pattern: Vec<u8>,
}

impl Payload {
    fn new(size: usize) -> Payload {
        Payload {
            pattern: (0..size)
                .map(|i| (i as u8).wrapping_mul(31) ^ 0xa5)
                .collect(),
        }
    }

    /// Message `seq`, into `buf`.
    fn fill(&self, buf: &mut [u8], seq: u64) {
        buf.copy_from_slice(&self.pattern);
        let n = buf.len().min(8);
        buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
    }

    /// Whether `msg` is message `seq`, and what is wrong if not.
    fn verify(&self, msg: &[u8], seq: u64) -> Result<(), String> {
        let size = self.pattern.len();
        if msg.len() != size {
            return Err(format!("message {seq}: {} B, expected {size} B", msg.len()));
        }
        let n = size.min(8);
        let mut got = [0; 8];
        got[..n].copy_from_slice(&msg[..n]);
        if msg[..n] != seq.to_le_bytes()[..n] {
            return Err(format!(
                "message {seq}: sequence field {} (lost, repeated or reordered)",
                u64::from_le_bytes(got)
            ));
        }
        if msg[n..] != self.pattern[n..] {
            return Err(format!("message {seq}: payload damaged"));
        }
        Ok(())
    }
}

/// The peer process: runs only when re-executed by [`Peer::spawn`].
#[test]
fn iceoryx_peer() {
    if std::env::var_os(PEER_ENV).is_none() {
        return;
    }
    // SAFETY: the parent put the peer's control end at PEER_FD before exec, and nothing else
    // in this process owns that descriptor.
    let ctl = Control::from_fd(unsafe { OwnedFd::from_raw_fd(PEER_FD) });
    let job: Job = ctl.recv().expect("job");
    let stop = Arc::new(AtomicBool::new(false));
    {
        // Bounds every wait of the peer: stop when the parent exits or after WAIT.
        let stop = stop.clone();
        let parent = PidFd::open(std::os::unix::process::parent_id() as i32).expect("pidfd");
        std::thread::spawn(move || {
            let _ = parent.wait_exit(Some(WAIT));
            stop.store(true, Ordering::Relaxed);
        });
    }
    let setup = Setup {
        size: job.size,
        kind: job.kind,
        stop,
    };
    let result = serve(&setup, &ctl, &job);
    ctl.send(&Done {
        error: result.err(),
    })
    .expect("done");
}

/// The peer's side of one job.
fn serve(setup: &Setup, ctl: &Control, job: &Job) -> Result<(), String> {
    let mut link = Iceoryx2.peer(setup, ctl).map_err(|e| e.to_string())?;
    let payload = Payload::new(job.size);
    let mut reply = vec![0; job.size];
    for seq in 0..job.count {
        let msg = link.recv().map_err(|e| format!("recv {seq}: {e}"))?;
        payload.verify(msg, seq)?;
        if job.kind == Kind::Latency {
            payload.fill(&mut reply, seq);
            link.send(&reply).map_err(|e| format!("send {seq}: {e}"))?;
        }
    }
    Ok(())
}

/// The peer process, seen from the test.
struct Peer {
    child: Child,
    pidfd: Arc<PidFd>,
    /// Sets `stop` once the peer has exited (killing it first if it outlives [`WAIT`]);
    /// yields whether it exited by itself in time.
    watcher: Option<JoinHandle<bool>>,
}

impl Peer {
    /// Starts the peer with `ctl` as its descriptor 3 and a watcher that sets `stop` when it
    /// exits.
    fn spawn(ctl: Control, stop: Arc<AtomicBool>) -> Peer {
        let fd = ctl.as_fd().as_raw_fd();
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.args(["--exact", PEER_TEST, "--nocapture", "--test-threads=1"])
            .env(PEER_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = if fd == PEER_FD {
                    // Already in place: dup2 would keep its close-on-exec flag.
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, PEER_FD)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawning the peer");
        drop(ctl);
        let pidfd = Arc::new(PidFd::open(child.id() as i32).expect("pidfd"));
        let watcher = {
            let pidfd = pidfd.clone();
            std::thread::spawn(move || {
                let exited = pidfd.wait_exit(Some(WAIT)).unwrap_or(false);
                if !exited {
                    let _ = pidfd.send_signal(libc::SIGKILL);
                    let _ = pidfd.wait_exit(Some(WAIT));
                }
                stop.store(true, Ordering::Relaxed);
                exited
            })
        };
        Peer {
            child,
            pidfd,
            watcher: Some(watcher),
        }
    }

    fn kill(&self) {
        self.pidfd
            .send_signal(libc::SIGKILL)
            .expect("killing the peer");
    }

    /// Waits (bounded by the watcher) for the peer to exit; reaps it.
    fn finish(mut self) -> std::process::ExitStatus {
        let exited = self.watcher.take().unwrap().join().expect("watcher");
        assert!(exited, "the peer did not exit within {WAIT:?}");
        self.child.wait().expect("reaping the peer")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A failed assertion: do not leave the peer running or unreaped.
        if let Some(watcher) = self.watcher.take() {
            let _ = self.pidfd.send_signal(libc::SIGKILL);
            let _ = watcher.join();
            let _ = self.child.wait();
        }
    }
}

/// Every iceoryx2 file there is: entries of /dev/shm and the temporary directory that look
/// like iceoryx2's (other programs may use those at the same time), and everything under
/// /tmp/iceoryx2.
fn snapshot() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                out.insert(e.path());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for dir in [Path::new("/dev/shm"), &std::env::temp_dir()] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains("iox2") {
                    out.insert(e.path());
                }
            }
        }
    }
    walk(Path::new("/tmp/iceoryx2"), &mut out);
    out
}

fn assert_nothing_left(before: &BTreeSet<PathBuf>) {
    let after = snapshot();
    let new: Vec<_> = after.difference(before).collect();
    assert!(new.is_empty(), "iceoryx2 left files behind: {new:#?}");
}

/// One measurement: `count` messages of `size` bytes, every payload checked on both sides.
fn measure(kind: Kind, size: usize, count: u64) {
    let (ctl, peer_ctl) = Control::pair().expect("control pair");
    let stop = Arc::new(AtomicBool::new(false));
    let peer = Peer::spawn(peer_ctl, stop.clone());
    ctl.send(&Job { kind, size, count }).expect("job");
    let setup = Setup { size, kind, stop };
    let mut link = Iceoryx2.parent(&setup, &ctl).expect("parent");
    let payload = Payload::new(size);
    let mut msg = vec![0; size];
    let start = std::time::Instant::now();
    for seq in 0..count {
        payload.fill(&mut msg, seq);
        link.send(&msg)
            .unwrap_or_else(|e| panic!("send {seq}: {e}"));
        if kind == Kind::Latency {
            let reply = link.recv().unwrap_or_else(|e| panic!("recv {seq}: {e}"));
            payload.verify(reply, seq).unwrap();
        }
    }
    let elapsed = start.elapsed();
    let done: Done = ctl.recv().expect("the peer's verdict");
    assert_eq!(done.error, None, "the peer");
    drop(link);
    let status = peer.finish();
    assert!(status.success(), "peer exited with {status}");
    // For the eye only (cargo test -- --nocapture); nothing is asserted on time.
    println!(
        "iceoryx2 {kind:?} {size} B x {count}: {:.0} ns per message",
        elapsed.as_nanos() as f64 / count as f64
    );
}

#[test]
fn iceoryx_latency_and_throughput_leave_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = snapshot();
    measure(Kind::Latency, 64, 100);
    measure(Kind::Latency, 4096, 100);
    measure(Kind::Throughput, 64, 10_000);
    measure(Kind::Throughput, 64 << 10, 10_000);
    assert_nothing_left(&before);
}

/// Kills the peer after `warmup` messages and expects the parent to fail, not hang.
fn killed(kind: Kind, size: usize, warmup: u64) {
    let (ctl, peer_ctl) = Control::pair().expect("control pair");
    let stop = Arc::new(AtomicBool::new(false));
    let peer = Peer::spawn(peer_ctl, stop.clone());
    ctl.send(&Job {
        kind,
        size,
        count: u64::MAX,
    })
    .expect("job");
    let setup = Setup { size, kind, stop };
    let mut link = Iceoryx2.parent(&setup, &ctl).expect("parent");
    let payload = Payload::new(size);
    let mut msg = vec![0; size];
    let mut failed = None;
    // Past the kill, a dead subscriber's buffer takes a few more messages at most; then the
    // parent blocks until the watcher sets `stop`. The bound only keeps a broken driver from
    // looping for ever.
    for seq in 0..warmup + 1_000_000 {
        if seq == warmup {
            peer.kill();
        }
        payload.fill(&mut msg, seq);
        let r = link.send(&msg).and_then(|()| match kind {
            Kind::Latency => link.recv().map(|reply| {
                payload.verify(reply, seq).unwrap();
            }),
            Kind::Throughput => Ok(()),
        });
        if let Err(e) = r {
            assert!(seq >= warmup, "failed before the kill, at {seq}: {e}");
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the parent never noticed that the peer was killed");
    assert!(setup.stopped(), "failed before `stop` was set: {e}");
    drop(link);
    let status = peer.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "peer: {status}");
}

#[test]
fn iceoryx_peer_killed_mid_stream_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = snapshot();
    killed(Kind::Throughput, 4096, 1000);
    killed(Kind::Latency, 64, 100);
    assert_nothing_left(&before);
}

#[test]
fn iceoryx_check_refuses_what_cannot_fit() {
    assert_eq!(Iceoryx2.check(64, Kind::Latency), Ok(()));
    assert_eq!(Iceoryx2.check(64 << 10, Kind::Throughput), Ok(()));
    let why = Iceoryx2
        .check(usize::MAX / 4, Kind::Throughput)
        .unwrap_err();
    assert!(why.contains("iceoryx2"), "{why}");
}
