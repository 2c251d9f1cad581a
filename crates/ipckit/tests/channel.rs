//! ipckit's shared-memory channel (issue #5) across real processes: message framing (a
//! proptest over the ring, the bulk path and the zero-copy forms), millions of checksummed
//! messages from one and from several child processes, a peer SIGKILLed at random points,
//! back-pressure, named rendezvous, the pollable receiver, bad input, and nothing leaked.

mod common;

use std::collections::VecDeque;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{T, hear, say};
use ipckit::channel::{self, Options, Receiver, Sender, Wait};
use ipckit::name::unique_posix;
use ipckit::shm::posix::PosixShm;
use ipckit::socket::ancillary;
use ipckit::socket::unix::UnixStream;
use ipckit::{Errno, Error, ErrorKind};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A small seeded generator (SplitMix64): the same seed gives the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// SplitMix64's finaliser: a good 64-bit hash of `z`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` bytes that differ with `seed`: a message misplaced or mixed with another shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 31 + seed * 7 + 1) as u8)
        .collect()
}

/// Where Linux keeps a POSIX shared-memory object.
fn dev_shm(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm{name}"))
}

/// Unlinks a POSIX shared-memory name on drop (if it is still there), so a failing test
/// leaves nothing behind.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        if dev_shm(&self.0).exists() {
            let _ = ipckit::shm::posix::remove(&self.0);
        }
    }
}

/// Asserts `r` is an error of kind `kind`, and gives it back.
#[track_caller]
fn err_kind<V: std::fmt::Debug>(r: ipckit::Result<V>, kind: ErrorKind) -> Error {
    match r {
        Ok(v) => panic!("expected an error of kind {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "wrong kind of error: {e}");
            e
        }
    }
}

/// Runs `f` on a thread of its own, so that a blocking call under test is bounded: its
/// result, or a panic if it has not returned within [`T`].
fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    Bounded::spawn(f).join(what)
}

/// A thread whose result is awaited within [`T`].
struct Bounded<R>(mpsc::Receiver<R>);

impl<R: Send + 'static> Bounded<R> {
    fn spawn(f: impl FnOnce() -> R + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        Bounded(rx)
    }

    fn join(self, what: &str) -> R {
        match self.0.recv_timeout(T) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not return within {T:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
        }
    }
}

/// The next message, which must come within [`T`].
#[track_caller]
fn recv(rx: &mut Receiver) -> Vec<u8> {
    match rx.recv_timeout(T) {
        Ok(Some(m)) => m,
        Ok(None) => panic!("no message within {T:?}"),
        Err(e) => panic!("receiving: {e}"),
    }
}

/// The end of the stream: `Disconnected` within [`T`] (not a time-out, not a message).
#[track_caller]
fn expect_disconnected(rx: &mut Receiver) -> Error {
    match rx.recv_timeout(T) {
        Ok(Some(m)) => panic!("expected Disconnected, got a message of {} bytes", m.len()),
        Ok(None) => panic!("expected Disconnected, timed out after {T:?}"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
            e
        }
    }
}

/// Calls the non-blocking `f` until it gives an error, within [`T`], and gives that error:
/// for a try form that must see an end dropped in this process. A child that another test
/// forks holds copies of this process's descriptors until its exec, so a dropped end can
/// stay open elsewhere for a moment (`f` asserts what each `Ok` may be).
#[track_caller]
fn try_until_err<V>(what: &str, mut f: impl FnMut() -> ipckit::Result<V>) -> Error {
    let start = Instant::now();
    loop {
        match f() {
            Err(e) => return e,
            Ok(_) => assert!(start.elapsed() < T, "{what}: no error within {T:?}"),
        }
        std::thread::yield_now();
    }
}

/// `try_recv` until Disconnected (within [`T`]); no message may come.
#[track_caller]
fn try_recv_disconnected(rx: &mut Receiver) -> Error {
    let e = try_until_err("try_recv after every sender left", || {
        rx.try_recv()
            .map(|m| assert!(m.is_none(), "a message after the last one"))
    });
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    e
}

/// A socket pair for handing a channel end to a child: (ours, the child's, to put at
/// descriptor 3).
fn handover() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

/// Child side: the socket the parent put at descriptor 3.
fn inherited_socket() -> UnixStream {
    // SAFETY: the parent put a Unix stream socket at descriptor 3 for this child, and nothing
    // else in this process owns that descriptor.
    UnixStream::from_fd(unsafe { OwnedFd::from_raw_fd(3) }).unwrap()
}

/// Starts a child running `role` with `sock` as its descriptor 3; drops our copy of `sock`.
fn start_with_socket(role: &str, sock: UnixStream, args: &[(&str, String)]) -> common::Child {
    let mut spawn = common::child("child", role).fd(sock.as_fd(), 3);
    for (k, v) in args {
        spawn = spawn.arg(k, v);
    }
    spawn.start()
}

/// Waits, within [`T`], until thread `tid` of process `pid` sleeps in `futex(2)`: it is
/// blocked, not about to block.
fn wait_in_futex(pid: i32, tid: i32) {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some((nr, _)) = ipckit::host::procfs::blocked_syscall(&text)
            && nr == libc::SYS_futex
        {
            return;
        }
        assert!(
            start.elapsed() < T,
            "thread {tid} of {pid} not asleep in futex within {T:?}: {text}"
        );
        std::thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------------
// Stress messages: [seq u64][sender id u32][len u32][checksum u64][payload], the payload
// generated from (seed, id, seq), the checksum over the payload seeded with (id, seq).

const HEAD: usize = 24;
/// The seq of a sender's last message, which carries its running total instead of a checksum.
const FINAL: u64 = u64::MAX;

/// The length of message `seq` of sender `id`: mostly 24..=64 bytes, 1 in 64 up to the slot
/// size (a few KiB), 1 in 2048 bulk (up to three slots).
fn stress_len(seed: u64, id: u32, seq: u64, slot_size: usize) -> usize {
    let r = mix(seed ^ (u64::from(id) << 48) ^ seq.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let pick = r % 4096;
    let more = (r >> 12) as usize;
    if pick < 2 {
        slot_size + 1 + more % (2 * slot_size)
    } else if pick < 66 {
        64 + more % (slot_size - 64 + 1)
    } else {
        HEAD + more % 41
    }
}

fn checksum(payload: &[u8], id: u32, seq: u64) -> u64 {
    let mut h = mix(seq ^ (u64::from(id) << 40) ^ 0x5151);
    let mut words = payload.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap()))
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h ^ payload.len() as u64)
}

/// Writes message `seq` of sender `id` into `buf` (its whole length); gives its checksum.
fn stress_fill(buf: &mut [u8], id: u32, seq: u64) -> u64 {
    let len = buf.len() as u32;
    let (head, payload) = buf.split_at_mut(HEAD);
    let mut x = mix(seq.wrapping_add(u64::from(id) << 32)) | 1;
    let mut words = payload.chunks_exact_mut(8);
    for w in &mut words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
    for b in words.into_remainder() {
        *b = x as u8;
        x >>= 8;
    }
    let sum = checksum(payload, id, seq);
    head[0..8].copy_from_slice(&seq.to_le_bytes());
    head[8..12].copy_from_slice(&id.to_le_bytes());
    head[12..16].copy_from_slice(&len.to_le_bytes());
    head[16..24].copy_from_slice(&sum.to_le_bytes());
    sum
}

/// What a stress message says: (seq, id, len field, checksum field).
fn stress_head(msg: &[u8]) -> (u64, u32, u32, u64) {
    assert!(msg.len() >= HEAD, "a message of {} bytes", msg.len());
    (
        u64::from_le_bytes(msg[0..8].try_into().unwrap()),
        u32::from_le_bytes(msg[8..12].try_into().unwrap()),
        u32::from_le_bytes(msg[12..16].try_into().unwrap()),
        u64::from_le_bytes(msg[16..24].try_into().unwrap()),
    )
}

/// A sender's running total over its checksums (order matters).
fn add_total(total: u64, sum: u64) -> u64 {
    total.wrapping_mul(0x0000_0100_0000_01B3) ^ sum
}

/// Per sender: the next seq expected and the running total.
struct Expect {
    next: u64,
    total: u64,
    done: bool,
}

/// Checks one stress message against what sender `id` must send next (seq, size from the
/// seed, checksum); true if it was that sender's final message (whose total is checked).
#[track_caller]
fn check_stress(msg: &[u8], seed: u64, slot_size: usize, senders: &mut [Expect]) -> bool {
    let (seq, id, len, sum) = stress_head(msg);
    let e = senders
        .get_mut(id as usize)
        .unwrap_or_else(|| panic!("a message from unknown sender {id}"));
    assert!(!e.done, "sender {id}: a message after its final one");
    if seq == FINAL {
        assert_eq!(msg.len(), HEAD, "sender {id}: final message size");
        assert_eq!(
            len, e.next as u32,
            "sender {id}: count in its final message"
        );
        assert_eq!(sum, e.total, "sender {id}: total of checksums");
        e.done = true;
        return true;
    }
    assert_eq!(seq, e.next, "sender {id}: out of order (or lost)");
    let want = stress_len(seed, id, seq, slot_size);
    assert_eq!(msg.len(), want, "sender {id} message {seq}: size");
    assert_eq!(len as usize, want, "sender {id} message {seq}: size field");
    assert_eq!(
        checksum(&msg[HEAD..], id, seq),
        sum,
        "sender {id} message {seq}: checksum"
    );
    e.next += 1;
    e.total = add_total(e.total, sum);
    false
}

/// Messages in the single-sender stress test: 2 million take about 4 s in a debug build on an
/// idle 2-core machine, and up to 5 times that when other processes compete for the cores.
const STRESS_COUNT: u64 = 2_000_000;
/// Messages per sender, and senders, in the multi-sender stress test.
const MULTI_COUNT: u64 = 200_000;
const MULTI_SENDERS: u32 = 3;
const STRESS_SEED: u64 = 0x1F0E_5EED;

// ---------------------------------------------------------------------------------------------
// SIGKILL messages: [seq u64][pattern], mostly small, every 13th bulk.

fn kill_msg(seq: u64, slot_size: usize) -> Vec<u8> {
    let len = if seq % 13 == 12 {
        slot_size + 1 + (seq as usize * 37) % slot_size
    } else {
        8 + (seq as usize * 7) % 57
    };
    let mut m = pattern(len, seq);
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

#[track_caller]
fn check_kill_msg(msg: &[u8], seq: u64, slot_size: usize) {
    assert!(msg.len() >= 8, "a message of {} bytes", msg.len());
    let got = u64::from_le_bytes(msg[..8].try_into().unwrap());
    assert_eq!(got, seq, "out of order (or lost)");
    assert!(msg == kill_msg(seq, slot_size), "message {seq} corrupted");
}

const KILL_SLOTS: usize = 16;
const KILL_SLOT_SIZE: usize = 128;

fn kill_opts() -> Options {
    Options::default()
        .slots(KILL_SLOTS)
        .slot_size(KILL_SLOT_SIZE)
}

// ---------------------------------------------------------------------------------------------
// Child roles

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        // Sends COUNT checksummed stress messages as sender ID, then its final total.
        "stress-sender" => {
            let sock = inherited_socket();
            let mut tx = Sender::receive_over_timeout(&sock, T).unwrap();
            let count: u64 = common::arg("COUNT").parse().unwrap();
            let id: u32 = common::arg("ID").parse().unwrap();
            let seed: u64 = common::arg("SEED").parse().unwrap();
            let slot_size = tx.slot_size();
            let mut buf = vec![0u8; 3 * slot_size + HEAD];
            let mut total = 0;
            for seq in 0..count {
                let len = stress_len(seed, id, seq, slot_size);
                let sum = if seq % 4 == 3 {
                    // Zero copy: written in place (in the slot, or in a bulk memfd).
                    let mut loan = tx.loan(len).unwrap();
                    let sum = stress_fill(&mut loan, id, seq);
                    loan.commit_checked().unwrap();
                    sum
                } else {
                    let sum = stress_fill(&mut buf[..len], id, seq);
                    tx.send(&buf[..len]).unwrap();
                    sum
                };
                total = add_total(total, sum);
            }
            let mut last = [0u8; HEAD];
            last[0..8].copy_from_slice(&FINAL.to_le_bytes());
            last[8..12].copy_from_slice(&id.to_le_bytes());
            last[12..16].copy_from_slice(&(count as u32).to_le_bytes());
            last[16..24].copy_from_slice(&total.to_le_bytes());
            tx.send(&last).unwrap();
            say(format!("{id} {count} {total}"));
        }
        // A sender that the parent SIGKILLs at the point MODE names (see
        // `a_sender_killed_at_any_point_gives_disconnected_after_its_messages`).
        "kill-sender" => {
            let sock = inherited_socket();
            let mut tx = Sender::receive_over_timeout(&sock, T).unwrap();
            let k: u64 = common::arg("K").parse().unwrap();
            let slot_size = tx.slot_size();
            match common::arg("MODE").as_str() {
                "stream" => {
                    // Until killed (or the receiver is gone: then the unwrap ends it).
                    for seq in 0.. {
                        tx.send(&kill_msg(seq, slot_size)).unwrap();
                    }
                }
                "full" => {
                    let mut seq = 0;
                    while tx.try_send(&kill_msg(seq, slot_size)).unwrap() {
                        seq += 1;
                    }
                    tx.set_wait(Wait::Blocking);
                    say(format!(
                        "full {seq} {}",
                        rustix::thread::gettid().as_raw_nonzero()
                    ));
                    tx.send(&kill_msg(seq, slot_size)).unwrap();
                    unreachable!("the ring was full and nobody reads");
                }
                "idle" => {
                    for seq in 0..k {
                        tx.send(&kill_msg(seq, slot_size)).unwrap();
                    }
                    say("idle");
                    hear();
                }
                mode @ ("loan" | "bulk-loan") => {
                    for seq in 0..k {
                        tx.send(&kill_msg(seq, slot_size)).unwrap();
                    }
                    let len = if mode == "loan" { 40 } else { 3 * slot_size };
                    let mut loan = tx.loan(len).unwrap();
                    loan.copy_from_slice(&kill_msg(k, slot_size)[..8].repeat(len / 8));
                    say("loaned");
                    hear();
                    drop(loan);
                }
                other => panic!("unknown mode {other}"),
            }
        }
        // Holds a receiver until killed.
        "kill-receiver" => {
            let sock = inherited_socket();
            let _rx = Receiver::receive_over_timeout(&sock, T).unwrap();
            say("ready");
            hear();
        }
        // Joins the named channel NAME and sends N messages (every 10th bulk), then leaves.
        "named-sender" => {
            let mut tx = channel::open_timeout(&common::arg("NAME"), T).unwrap();
            let n: u64 = common::arg("N").parse().unwrap();
            for seq in 0..n {
                tx.send(&kill_msg(seq, tx.slot_size())).unwrap();
            }
            if common::arg("STAY") == "1" {
                say("sent");
                hear();
            }
        }
        // Makes the named channel NAME and holds it until killed.
        "named-receiver" => {
            let _rx = channel::create(&common::arg("NAME"), &Options::default()).unwrap();
            say("ready");
            hear();
        }
        // On "send N": sends the next N messages; "exit" (or end of input): leaves.
        "poll-sender" => {
            let sock = inherited_socket();
            let mut tx = Sender::receive_over_timeout(&sock, T).unwrap();
            let mut seq = 0;
            loop {
                let line = hear();
                let Some(n) = line.strip_prefix("send ") else {
                    break;
                };
                for _ in 0..n.parse::<u64>().unwrap() {
                    tx.send(&kill_msg(seq, tx.slot_size())).unwrap();
                    seq += 1;
                }
                say("sent");
            }
        }
        // Takes a receiver that was used before it was passed on, receives the rest.
        "used-receiver" => {
            let sock = inherited_socket();
            let mut rx = Receiver::receive_over_timeout(&sock, T).unwrap();
            let from: u64 = common::arg("FROM").parse().unwrap();
            let to: u64 = common::arg("TO").parse().unwrap();
            let mut got = Vec::new();
            // A short bound, only reached when a message is missing.
            while (got.len() as u64) < to - from {
                match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
                    Some(m) => got.push(u64::from_le_bytes(m[..8].try_into().unwrap())),
                    None => break,
                }
            }
            if rx.try_recv().unwrap().is_some() {
                got.push(u64::MAX); // one too many
            }
            let want: Vec<u64> = (from..to).collect();
            say(if got == want {
                "ok".to_string()
            } else {
                format!("got {got:?}")
            });
        }
        // Makes and drops channels of every kind in a loop; reports descriptors and
        // mappings before and after (alone in this process, so the counts are exact).
        "leak-loop" => {
            let maps = || {
                std::fs::read_to_string("/proc/self/maps")
                    .unwrap()
                    .lines()
                    .count()
            };
            let round = |i: usize| {
                let opts = Options::default()
                    .slots(4)
                    .slot_size(64)
                    .pollable(i.is_multiple_of(2))
                    .multi_sender(i.is_multiple_of(3));
                let (tx0, rx0) = channel::pair(&opts).unwrap();
                // Both ends passed on within the process (before use) and the originals
                // dropped.
                let (a, b) = UnixStream::pair().unwrap();
                tx0.send_over(&a).unwrap();
                drop(tx0);
                let mut tx = Sender::receive_over_timeout(&b, T).unwrap();
                rx0.send_over(&a).unwrap();
                drop(rx0);
                let mut rx = Receiver::receive_over_timeout(&b, T).unwrap();
                tx.send(b"small").unwrap();
                tx.send(&[7u8; 1000]).unwrap(); // bulk
                drop(tx.loan(10).unwrap()); // uncommitted
                drop(tx.loan(500).unwrap()); // uncommitted bulk
                assert_eq!(recv(&mut rx), b"small");
                assert!(rx.borrow().unwrap().is_bulk());
                // A second sender end passed on (multi) or the one replaced (single).
                tx.send_over(&a).unwrap();
                let mut tx2 = Sender::receive_over_timeout(&b, T).unwrap();
                drop(tx);
                tx2.send(&[9u8; 100]).unwrap();
                assert_eq!(recv(&mut rx), [9u8; 100]);
                drop(tx2);
                expect_disconnected(&mut rx);
                // Named: sender and receiver, a bulk message.
                let name = unique_posix("chan-leak");
                let mut rx = channel::create(&name, &Options::default().slot_size(64)).unwrap();
                let mut tx = channel::open_timeout(&name, T).unwrap();
                tx.send(&[1u8; 200]).unwrap();
                assert_eq!(recv(&mut rx), [1u8; 200]);
                drop(rx);
                assert!(!dev_shm(&name).exists(), "{name} left in /dev/shm");
                err_kind(tx.send(&[1u8; 200]), ErrorKind::Disconnected);
            };
            round(0); // first use: whatever is made once (membarrier registration)
            let (fds, mapped) = (common::open_fds(), maps());
            for i in 0..60 {
                round(i);
            }
            say(format!("{fds} {} {mapped} {}", common::open_fds(), maps()));
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Framing

#[derive(Clone, Copy, Debug)]
enum SendHow {
    Send,
    TrySend,
    SendTimeout,
    LoanCommit,
    LoanCommitChecked,
    TryLoanCommit,
    /// A loan dropped without a commit: nothing is sent, the receiver skips its slot.
    LoanDropped,
}

#[derive(Clone, Copy, Debug)]
enum RecvHow {
    Recv,
    TryRecv,
    RecvTimeout,
    Borrow,
    TryBorrow,
    BorrowTimeout,
}

#[derive(Clone, Debug)]
enum Op {
    Send(usize, SendHow),
    Recv(RecvHow),
}

fn op_strategy(slot_size: usize) -> impl Strategy<Value = Op> {
    let len = prop_oneof![
        1 => Just(0usize),
        1 => Just(slot_size),
        1 => Just(slot_size + 1),
        8 => 0..=3 * slot_size,
    ];
    let send = prop_oneof![
        Just(SendHow::Send),
        Just(SendHow::TrySend),
        Just(SendHow::SendTimeout),
        Just(SendHow::LoanCommit),
        Just(SendHow::LoanCommitChecked),
        Just(SendHow::TryLoanCommit),
        Just(SendHow::LoanDropped),
    ];
    let recv = prop_oneof![
        Just(RecvHow::Recv),
        Just(RecvHow::TryRecv),
        Just(RecvHow::RecvTimeout),
        Just(RecvHow::Borrow),
        Just(RecvHow::TryBorrow),
        Just(RecvHow::BorrowTimeout),
    ];
    prop_oneof![
        3 => (len, send).prop_map(|(l, s)| Op::Send(l, s)),
        2 => recv.prop_map(Op::Recv),
    ]
}

/// One in-process pair driven by `ops` against a model of the ring: the slots hold messages
/// (`Some`) and skipped loans (`None`) in order. A send on a full ring (by the model) first
/// drains it, so nothing blocks; `try_send`/`try_loan` must say full exactly when the model
/// says so.
fn run_framing(slots: usize, slot_size: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let opts = Options::default().slots(slots).slot_size(slot_size);
    let (mut tx, mut rx) = channel::pair(&opts).unwrap();
    prop_assert_eq!(tx.slot_size(), slot_size);
    prop_assert_eq!(rx.slot_size(), slot_size);
    let mut ring: VecDeque<Option<Vec<u8>>> = VecDeque::new();
    let mut seed = 0u64;

    // Receives one message by `how` and checks it against the model.
    let recv_one = |rx: &mut Receiver,
                    ring: &mut VecDeque<Option<Vec<u8>>>,
                    how: RecvHow|
     -> Result<(), TestCaseError> {
        while let Some(None) = ring.front() {
            ring.pop_front(); // skipped loans go with the next receive
        }
        let Some(Some(want)) = ring.pop_front() else {
            // Nothing to receive: only the non-blocking forms, which say so.
            match how {
                RecvHow::TryBorrow | RecvHow::Borrow | RecvHow::BorrowTimeout => {
                    prop_assert!(rx.try_borrow().unwrap().is_none());
                }
                _ => prop_assert!(rx.try_recv().unwrap().is_none()),
            }
            return Ok(());
        };
        let bulk = want.len() > slot_size;
        let got = match how {
            RecvHow::Recv => rx.recv().unwrap(),
            RecvHow::TryRecv => rx.try_recv().unwrap().expect("a committed message"),
            RecvHow::RecvTimeout => rx.recv_timeout(T).unwrap().expect("a message"),
            RecvHow::Borrow | RecvHow::TryBorrow | RecvHow::BorrowTimeout => {
                let msg = match how {
                    RecvHow::Borrow => rx.borrow().unwrap(),
                    RecvHow::TryBorrow => rx.try_borrow().unwrap().expect("a committed message"),
                    _ => rx.borrow_timeout(T).unwrap().expect("a message"),
                };
                prop_assert_eq!(msg.is_bulk(), bulk, "bulk path for {} bytes", want.len());
                msg.to_vec()
            }
        };
        prop_assert_eq!(got.len(), want.len());
        prop_assert!(got == want, "message of {} bytes differs", want.len());
        Ok(())
    };

    for op in ops {
        match *op {
            Op::Recv(how) => recv_one(&mut rx, &mut ring, how)?,
            Op::Send(len, how) => {
                // The non-blocking forms must say full when the model does (and, below,
                // succeed when it does not).
                if ring.len() == slots {
                    match how {
                        SendHow::TrySend => prop_assert!(!tx.try_send(&pattern(len, 9)).unwrap()),
                        SendHow::TryLoanCommit => prop_assert!(tx.try_loan(len).unwrap().is_none()),
                        SendHow::SendTimeout => {
                            prop_assert!(!tx.send_timeout(&[], Duration::from_millis(1)).unwrap())
                        }
                        _ => {}
                    }
                    // Full: drain everything (in one of the forms), then there is room.
                    while ring.iter().any(Option::is_some) {
                        recv_one(&mut rx, &mut ring, RecvHow::TryRecv)?;
                    }
                    prop_assert!(rx.try_recv().unwrap().is_none());
                    ring.clear();
                }
                seed += 1;
                let msg = pattern(len, seed);
                match how {
                    SendHow::Send => tx.send(&msg).unwrap(),
                    SendHow::TrySend => prop_assert!(tx.try_send(&msg).unwrap()),
                    SendHow::SendTimeout => prop_assert!(tx.send_timeout(&msg, T).unwrap()),
                    SendHow::LoanCommit | SendHow::LoanCommitChecked | SendHow::TryLoanCommit => {
                        let mut loan = match how {
                            SendHow::TryLoanCommit => tx.try_loan(len).unwrap().expect("room"),
                            _ => tx.loan(len).unwrap(),
                        };
                        prop_assert_eq!(loan.len(), len);
                        loan.copy_from_slice(&msg);
                        if matches!(how, SendHow::LoanCommitChecked) {
                            loan.commit_checked().unwrap();
                        } else {
                            loan.commit();
                        }
                    }
                    SendHow::LoanDropped => {
                        let mut loan = tx.loan(len).unwrap();
                        loan.copy_from_slice(&msg);
                        drop(loan);
                        ring.push_back(None);
                        continue;
                    }
                }
                ring.push_back(Some(msg));
            }
        }
    }
    // Everything left arrives, then the end.
    while ring.iter().any(Option::is_some) {
        recv_one(&mut rx, &mut ring, RecvHow::Borrow)?;
    }
    prop_assert!(rx.try_recv().unwrap().is_none());
    drop(tx);
    // (The timed forms after a drop are checked elsewhere: each waits one SLICE today.)
    try_recv_disconnected(&mut rx);
    err_kind(rx.try_borrow().map(|_| ()), ErrorKind::Disconnected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any sequence of sends (every form, lengths 0 to three slots: inline, exactly a slot,
    /// bulk), uncommitted loans and receives (every form) through one small ring: every
    /// message arrives byte-exact, in order, by the right path; skipped loans are invisible;
    /// full is reported exactly when the ring is full; the end is Disconnected.
    #[test]
    fn framing_round_trips_any_sequence(
        (slots, slot_size, ops) in (
            prop::sample::select(vec![2usize, 4, 8]),
            prop::sample::select(vec![8usize, 16, 64]),
        ).prop_flat_map(|(slots, slot_size)| (
            Just(slots),
            Just(slot_size),
            prop::collection::vec(op_strategy(slot_size), 0..120),
        ))
    ) {
        run_framing(slots, slot_size, &ops)?;
    }
}

/// The cases the proptest might not hit often: many zero-length messages, laps around a
/// two-slot ring, a ring full of skipped loans.
#[test]
fn framing_edge_cases() {
    let (mut tx, mut rx) = channel::pair(&Options::default().slots(2).slot_size(8)).unwrap();
    for lap in 0..50u8 {
        tx.send(&[]).unwrap();
        tx.send(&[lap; 8]).unwrap();
        assert_eq!(recv(&mut rx), b"");
        assert_eq!(&*rx.borrow().unwrap(), &[lap; 8]);
    }
    // A ring full of uncommitted loans holds nothing: the receiver skips them all.
    drop(tx.loan(3).unwrap());
    drop(tx.loan(100).unwrap());
    assert!(
        !tx.try_send(b"x").unwrap(),
        "the skipped loans hold both slots"
    );
    assert!(rx.try_recv().unwrap().is_none());
    assert!(tx.try_send(b"after").unwrap());
    assert_eq!(recv(&mut rx), b"after");
    // A loan is the slot itself: it reads back what was written, zero-length works.
    let loan = tx.loan(0).unwrap();
    assert!(loan.is_empty());
    loan.commit();
    let msg = rx.borrow().unwrap();
    assert!(msg.is_empty() && !msg.is_bulk());
    drop(msg);
    let mut loan = tx.loan(1 << 20).unwrap(); // bulk: 1 MiB written in place
    loan[(1 << 20) - 1] = 42;
    loan.commit_checked().unwrap();
    let msg = rx.borrow().unwrap();
    assert!(msg.is_bulk());
    assert_eq!(msg.len(), 1 << 20);
    assert_eq!(msg[(1 << 20) - 1], 42);
    assert!(msg[..(1 << 20) - 1].iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------------------------------------
// 2. Stress

/// The two stress tests take turns: each keeps every core busy (spinning ends on both sides),
/// and on a 2-core machine they slow each other down fivefold when run together.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy_turn() -> std::sync::MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Passes `tx` to a new "stress-sender" child as sender `id`.
fn start_stress_sender(tx: &Sender, id: u32, count: u64) -> common::Child {
    let (mine, theirs) = handover();
    let child = start_with_socket(
        "stress-sender",
        theirs,
        &[
            ("ID", id.to_string()),
            ("COUNT", count.to_string()),
            ("SEED", STRESS_SEED.to_string()),
        ],
    );
    tx.send_over(&mine).unwrap();
    child
}

/// Receives and checks stress messages until every sender sent its final message; gives
/// the number of messages received.
fn receive_stress(rx: &mut Receiver, senders: &mut [Expect]) -> u64 {
    let slot_size = rx.slot_size();
    let mut finals = 0;
    let mut n = 0u64;
    let mut bulk = 0u64;
    while finals < senders.len() {
        // Both forms, both bounded: in place mostly, a copy every 5th.
        let last = if n % 5 == 4 {
            let m = rx.recv_timeout(T).unwrap().expect("a message within T");
            check_stress(&m, STRESS_SEED, slot_size, senders)
        } else {
            let m = rx.borrow_timeout(T).unwrap().expect("a message within T");
            bulk += m.is_bulk() as u64;
            check_stress(&m, STRESS_SEED, slot_size, senders)
        };
        finals += last as usize;
        n += 1;
    }
    assert!(bulk > 0, "no message took the bulk path");
    n
}

/// 2 000 000 messages of mixed sizes (24 to 64 bytes mostly, 1 in 64 up to the 4080-byte
/// slot, 1 in 2048 bulk up to three slots; every 4th written in place with a loan) from a
/// child process, each with its seq and a checksum of its content: the parent checks order,
/// sizes, checksums, the final total (in the channel and told on stdout), then Disconnected.
#[test]
fn millions_of_checksummed_messages_cross_process() {
    let _turn = heavy_turn();
    let (tx, mut rx) = channel::pair(&Options::default()).unwrap();
    let mut child = start_stress_sender(&tx, 0, STRESS_COUNT);
    drop(tx);
    let mut senders = [Expect {
        next: 0,
        total: 0,
        done: false,
    }];
    let n = receive_stress(&mut rx, &mut senders);
    assert_eq!(n, STRESS_COUNT + 1);
    assert_eq!(
        child.line(),
        format!("0 {STRESS_COUNT} {}", senders[0].total),
        "the child's own count and total"
    );
    child.success();
    expect_disconnected(&mut rx);
}

/// Several child processes share one multi-sender channel: each one's messages arrive
/// complete and in its order (checksums, sizes, totals checked per sender).
#[test]
fn several_sender_processes_keep_their_own_order() {
    let _turn = heavy_turn();
    let opts = Options::default().slots(64).multi_sender(true);
    let (tx, mut rx) = channel::pair(&opts).unwrap();
    let mut children: Vec<_> = (0..MULTI_SENDERS)
        .map(|id| start_stress_sender(&tx, id, MULTI_COUNT))
        .collect();
    drop(tx);
    let mut senders: Vec<Expect> = (0..MULTI_SENDERS)
        .map(|_| Expect {
            next: 0,
            total: 0,
            done: false,
        })
        .collect();
    let n = receive_stress(&mut rx, &mut senders);
    assert_eq!(n, u64::from(MULTI_SENDERS) * (MULTI_COUNT + 1));
    let mut told: Vec<String> = children.iter_mut().map(|c| c.line()).collect();
    told.sort();
    let want: Vec<String> = senders
        .iter()
        .enumerate()
        .map(|(id, e)| format!("{id} {MULTI_COUNT} {}", e.total))
        .collect();
    assert_eq!(told, want);
    for c in children {
        c.success();
    }
    expect_disconnected(&mut rx);
}

// ---------------------------------------------------------------------------------------------
// 3. Peer killed

#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// While it streams (sending, or blocked on the full ring: wherever it is).
    Stream,
    /// Asleep in futex on a full ring.
    Full,
    /// Idle after K messages.
    Idle,
    /// Holding an uncommitted loan after K messages.
    Loan,
    /// Holding an uncommitted bulk loan (its memfd made, not sent) after K messages.
    BulkLoan,
}

const KILL_POINTS: [KillAt; 5] = [
    KillAt::Stream,
    KillAt::Full,
    KillAt::Idle,
    KillAt::Loan,
    KillAt::BulkLoan,
];
const RECV_FORMS: [RecvHow; 5] = [
    RecvHow::Recv,
    RecvHow::Borrow,
    RecvHow::RecvTimeout,
    RecvHow::BorrowTimeout,
    RecvHow::TryRecv,
];

/// Receives in `how` until an error: checks each message (seq from `from` on) and gives the
/// count and the error. A timed form that times out fails the test; the try form is looped
/// within [`T`].
fn drain_until_error(rx: &mut Receiver, how: RecvHow, from: u64) -> (u64, Error) {
    let slot_size = rx.slot_size();
    let mut seq = from;
    let start = Instant::now();
    loop {
        let got: ipckit::Result<Option<Vec<u8>>> = match how {
            RecvHow::Recv => rx.recv().map(Some),
            RecvHow::Borrow => rx.borrow().map(|m| Some(m.to_vec())),
            RecvHow::RecvTimeout => rx.recv_timeout(T),
            RecvHow::BorrowTimeout => rx.borrow_timeout(T).map(|m| m.map(|m| m.to_vec())),
            RecvHow::TryRecv | RecvHow::TryBorrow => rx.try_recv(),
        };
        match got {
            Ok(Some(m)) => {
                check_kill_msg(&m, seq, slot_size);
                seq += 1;
            }
            Ok(None) if matches!(how, RecvHow::TryRecv) && start.elapsed() < T => {
                std::thread::yield_now()
            }
            Ok(None) => panic!("{how:?}: no message and no Disconnected within {T:?}"),
            Err(e) => return (seq - from, e),
        }
    }
}

/// A sender process SIGKILLed at a random point (streaming, asleep on a full ring, idle,
/// holding an uncommitted loan or bulk loan), the receiver in a random form (blocking or
/// timed, copy or in place, or polling try_recv), waiting already or only after the kill:
/// every message committed before the kill arrives, in order, and then the receiver gets
/// Disconnected, every time; nothing hangs.
#[test]
fn a_sender_killed_at_any_point_gives_disconnected_after_its_messages() {
    let seed = 0xC0DE_0005;
    let mut rng = Rng(seed);
    for iteration in 0..20 {
        // Each point at least once, then at random.
        let at = match KILL_POINTS.get(iteration) {
            Some(&at) => at,
            None => KILL_POINTS[rng.below(KILL_POINTS.len() as u64) as usize],
        };
        let how = RECV_FORMS[rng.below(RECV_FORMS.len() as u64) as usize];
        let k = rng.below(KILL_SLOTS as u64);
        // Whether the receiver waits already when the kill comes (not for Full: its taking
        // messages would unblock the sender; not for Stream: it reads while the child sends).
        let wait_first =
            rng.below(2) == 0 && matches!(at, KillAt::Idle | KillAt::Loan | KillAt::BulkLoan);
        let ctx = format!(
            "iteration {iteration} (seed {seed:#x}): {at:?}, {how:?}, k={k}, receiver waiting first: {wait_first}"
        );
        let (tx, mut rx) = channel::pair(&kill_opts()).unwrap();
        let (mine, theirs) = handover();
        let mode = match at {
            KillAt::Stream => "stream",
            KillAt::Full => "full",
            KillAt::Idle => "idle",
            KillAt::Loan => "loan",
            KillAt::BulkLoan => "bulk-loan",
        };
        let mut child = start_with_socket(
            "kill-sender",
            theirs,
            &[("MODE", mode.into()), ("K", k.to_string())],
        );
        tx.send_over(&mine).unwrap();
        drop(tx);
        // What the receiver has taken before the kill, and how many must follow it.
        let (from, exact) = match at {
            KillAt::Stream => {
                let r = rng.below(3 * KILL_SLOTS as u64);
                for seq in 0..r {
                    check_kill_msg(&recv(&mut rx), seq, KILL_SLOT_SIZE);
                }
                (r, None)
            }
            KillAt::Full => {
                let line = child.line();
                let mut words = line.split(' ').skip(1);
                let sent: u64 = words.next().unwrap().parse().unwrap();
                let tid: i32 = words.next().unwrap().parse().unwrap();
                assert_eq!(sent, KILL_SLOTS as u64, "{ctx}: try_send said full early");
                wait_in_futex(child.pid(), tid);
                (0, Some(sent))
            }
            KillAt::Idle => {
                assert_eq!(child.line(), "idle");
                (0, Some(k))
            }
            KillAt::Loan | KillAt::BulkLoan => {
                assert_eq!(child.line(), "loaned");
                (0, Some(k))
            }
        };
        let (count, err) = if wait_first {
            // Take the messages and then wait (blocked, in the chosen form) for the next
            // one while the sender is killed.
            let waiting = Bounded::spawn(move || drain_until_error(&mut rx, how, from));
            child.kill();
            waiting.join(&ctx)
        } else {
            child.kill();
            bounded(&ctx.clone(), move || drain_until_error(&mut rx, how, from))
        };
        assert_eq!(err.kind(), ErrorKind::Disconnected, "{ctx}: {err}");
        match exact {
            Some(n) => assert_eq!(count, n, "{ctx}: messages after the kill"),
            None => assert!(
                count <= KILL_SLOTS as u64,
                "{ctx}: {count} messages after the kill"
            ),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum AfterReceiverKilled {
    /// A send blocked on the full ring when the receiver is killed.
    BlockedSend,
    /// On the full ring after the kill: send_timeout, try_send, loan, bulk send.
    SendTimeout,
    TrySend,
    Loan,
    BulkSend,
    /// Killed with the ring empty: some sends may still land in the ring, then Disconnected.
    SendUntilError,
}

/// The receiver's process SIGKILLed: a sender waiting on the full ring, or sending to it
/// after, gets Disconnected (every form), within T.
#[test]
fn a_receiver_killed_gives_the_sender_disconnected() {
    use AfterReceiverKilled::*;
    let seed = 0xC0DE_0006;
    let mut rng = Rng(seed);
    let all = [
        BlockedSend,
        SendTimeout,
        TrySend,
        Loan,
        BulkSend,
        SendUntilError,
    ];
    for iteration in 0..12 {
        let what = match all.get(iteration) {
            Some(&what) => what,
            None => all[rng.below(all.len() as u64) as usize],
        };
        let ctx = format!("iteration {iteration} (seed {seed:#x}): {what:?}");
        let wait = [Wait::Adaptive, Wait::Blocking, Wait::Spin][rng.below(3) as usize];
        let (mut tx, rx) = channel::pair(&kill_opts().wait(wait)).unwrap();
        let (mine, theirs) = handover();
        let mut child = start_with_socket("kill-receiver", theirs, &[]);
        rx.send_over(&mine).unwrap();
        drop(rx);
        assert_eq!(child.line(), "ready");
        if matches!(what, SendUntilError) {
            child.kill();
            let (ok, err) = bounded(&ctx.clone(), move || {
                let mut ok = 0;
                loop {
                    match tx.send(b"into the void") {
                        Ok(()) => ok += 1,
                        Err(e) => return (ok, e),
                    }
                }
            });
            assert_eq!(err.kind(), ErrorKind::Disconnected, "{ctx}: {err}");
            assert!(ok <= KILL_SLOTS, "{ctx}: {ok} sends succeeded");
            continue;
        }
        let mut filled = 0;
        while tx.try_send(b"fill").unwrap() {
            filled += 1;
        }
        assert_eq!(filled, KILL_SLOTS, "{ctx}");
        let err = if matches!(what, BlockedSend) {
            let sending = Bounded::spawn(move || tx.send(b"blocked"));
            child.kill();
            sending.join(&ctx).unwrap_err()
        } else {
            child.kill();
            bounded(&ctx.clone(), move || match what {
                SendTimeout => tx.send_timeout(b"x", T).map(|_| ()),
                // Ok(false) (full) until the receiver's end is seen closed.
                TrySend => Err(try_until_err("try_send on the full ring", || {
                    tx.try_send(b"x")
                        .map(|sent| assert!(!sent, "sent into a full ring"))
                })),
                Loan => tx.loan(8).map(|_| ()),
                _ => tx.send(&[5u8; 3 * KILL_SLOT_SIZE]),
            })
            .unwrap_err()
        };
        assert_eq!(err.kind(), ErrorKind::Disconnected, "{ctx}: {err}");
    }
}

/// An end dropped (not killed) is noticed at once, both ways.
#[test]
fn a_dropped_end_gives_disconnected() {
    let (mut tx, rx) = channel::pair(&Options::default()).unwrap();
    drop(rx);
    let e = try_until_err("try_send after the receiver's drop", || tx.try_send(b"x"));
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    err_kind(tx.send(b"x"), ErrorKind::Disconnected);
    err_kind(tx.send(&[0u8; 10_000]), ErrorKind::Disconnected);
    err_kind(tx.loan(1).map(|_| ()), ErrorKind::Disconnected);

    let (mut tx, mut rx) = channel::pair(&Options::default()).unwrap();
    tx.send(b"last words").unwrap();
    tx.send(&[3u8; 10_000]).unwrap();
    drop(tx);
    assert_eq!(recv(&mut rx), b"last words");
    assert_eq!(recv(&mut rx), [3u8; 10_000]);
    let e = try_recv_disconnected(&mut rx);
    assert!(e.to_string().contains("gone"), "{e}");
    err_kind(rx.borrow().map(|_| ()), ErrorKind::Disconnected);
    err_kind(rx.recv(), ErrorKind::Disconnected);
}

// ---------------------------------------------------------------------------------------------
// 4. Back-pressure

/// A full ring: try_send and try_loan say so at once, the timed forms after their time-out,
/// and a send blocked on it resumes when the receiver takes a message (another thread), in
/// order, for every way of waiting.
#[test]
fn a_full_ring_pushes_back_and_a_blocked_send_resumes() {
    for wait in [Wait::Spin, Wait::Blocking, Wait::Adaptive] {
        let opts = Options::default().slots(4).slot_size(64).wait(wait);
        let (mut tx, mut rx) = channel::pair(&opts).unwrap();
        for i in 0..4u8 {
            assert!(tx.try_send(&[i]).unwrap(), "{wait:?}: room for message {i}");
        }
        assert!(!tx.try_send(b"x").unwrap(), "{wait:?}: full");
        assert!(
            !tx.try_send(&[0u8; 1000]).unwrap(),
            "{wait:?}: full for bulk too"
        );
        assert!(!tx.send_timeout(b"x", Duration::from_millis(20)).unwrap());
        assert!(
            !tx.send_timeout(&[0u8; 1000], Duration::from_millis(20))
                .unwrap()
        );
        assert!(tx.try_loan(1).unwrap().is_none());
        assert!(
            tx.loan_timeout(1, Duration::from_millis(20))
                .unwrap()
                .is_none()
        );
        // One deadline for several waits; one already passed is a try.
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(!tx.send_deadline(b"x", deadline).unwrap());
        assert!(!tx.send_deadline(&[0u8; 1000], deadline).unwrap());
        assert!(tx.loan_deadline(1, deadline).unwrap().is_none());
        assert!(!tx.send_deadline(b"x", ipckit::Deadline::now()).unwrap());
        // Blocked sends (inline, then bulk) that resume as the receiver drains.
        let sending = Bounded::spawn(move || {
            tx.send(&[4]).unwrap();
            tx.send(&[5u8; 1000]).unwrap();
            let mut loan = tx.loan(1).unwrap();
            loan[0] = 6;
            loan.commit();
            tx
        });
        for i in 0..4u8 {
            assert_eq!(recv(&mut rx), [i], "{wait:?}");
        }
        assert_eq!(recv(&mut rx), [4], "{wait:?}");
        assert_eq!(recv(&mut rx), [5u8; 1000], "{wait:?}");
        assert_eq!(recv(&mut rx), [6], "{wait:?}");
        let tx = sending.join("the blocked sends");
        // Nothing extra was sent by the refused tries.
        assert!(rx.try_recv().unwrap().is_none());
        drop(tx);
        expect_disconnected(&mut rx);
    }
}

/// A receive with nothing to take: try forms say so at once, timed forms after the time-out
/// (Ok(None), not an error) while the sender is alive.
#[test]
fn an_empty_ring_gives_none() {
    let (tx, mut rx) = channel::pair(&Options::default()).unwrap();
    assert!(rx.try_recv().unwrap().is_none());
    assert!(rx.try_borrow().unwrap().is_none());
    assert!(
        rx.recv_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none()
    );
    assert!(
        rx.borrow_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none()
    );
    let deadline = ipckit::Deadline::after(Duration::from_millis(20));
    assert!(rx.recv_deadline(deadline).unwrap().is_none());
    assert!(rx.borrow_deadline(deadline).unwrap().is_none());
    assert!(rx.recv_deadline(Instant::now()).unwrap().is_none());
    // A deadline that comes after a message does not hold it back.
    let mut tx = tx;
    tx.send_deadline(b"in time", ipckit::Deadline::NEVER)
        .unwrap();
    assert_eq!(
        rx.recv_deadline(Instant::now() + T).unwrap().as_deref(),
        Some(&b"in time"[..])
    );
    drop(tx);
    expect_disconnected(&mut rx);
    // A dead channel says so to the deadline forms too.
    assert_eq!(
        rx.recv_deadline(Instant::now() + T).unwrap_err().kind(),
        ErrorKind::Disconnected
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Named rendezvous

/// create("/NAME") and a child that opens it: messages (inline and bulk) arrive in order,
/// Disconnected when the child leaves; a second create of the name fails with EEXIST;
/// dropping the receiver removes /dev/shm/NAME; try_open then fails with ENOENT, saying
/// there is no receiver yet, and the timed opens with TimedOut.
#[test]
fn named_channel_rendezvous_and_cleanup() {
    let name = unique_posix("chan-named");
    let _cleanup = Unlink(name.clone());
    let opts = Options::default().slots(8).slot_size(64);
    let mut rx = channel::create(&name, &opts).unwrap();
    assert!(dev_shm(&name).exists());
    // No sender yet: nothing, and not Disconnected (nobody has come and gone).
    assert!(rx.try_recv().unwrap().is_none());
    let e = channel::create(&name, &opts).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EXIST), "{e}");
    assert!(e.to_string().contains(&name), "{e}");

    let n = 100u64;
    let child = common::child("child", "named-sender")
        .arg("NAME", &name)
        .arg("N", n)
        .arg("STAY", 0)
        .start();
    for seq in 0..n {
        check_kill_msg(&recv(&mut rx), seq, 64);
    }
    child.success();
    expect_disconnected(&mut rx);
    drop(rx);
    assert!(
        !dev_shm(&name).exists(),
        "the receiver's drop unlinks {name}"
    );
    // No receiver now: try_open says so at once (ENOENT, in words), the timed forms after
    // waiting (TimedOut); neither speaks of shared memory.
    let e = channel::try_open(&name).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::NOENT), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&name) && text.contains("no receiver yet"),
        "{e}"
    );
    assert!(text.contains(&format!("ipckit recv channel:{name}")), "{e}");
    assert!(!text.contains("shared memory"), "{e}");
    let e = err_kind(
        channel::open_timeout(&name, Duration::from_millis(20)),
        ErrorKind::TimedOut,
    );
    assert!(e.to_string().contains("no receiver yet"), "{e}");
    let e = err_kind(
        channel::open_deadline(&name, Instant::now() + Duration::from_millis(20)),
        ErrorKind::TimedOut,
    );
    assert!(e.to_string().contains("no receiver yet"), "{e}");
    assert!(!dev_shm(&name).exists(), "open never creates a channel");
}

/// open waits for a receiver that comes after it: a sender opened before the channel exists
/// sends once the receiver has made it.
#[test]
fn open_waits_for_the_receiver() {
    let name = unique_posix("chan-open-wait");
    let _cleanup = Unlink(name.clone());
    let (opened_tx, opened) = mpsc::channel();
    let sender = {
        let name = name.clone();
        Bounded::spawn(move || {
            let mut tx = channel::open_timeout(&name, T).unwrap();
            opened_tx.send(()).unwrap();
            tx.send(b"after the receiver came").unwrap();
        })
    };
    // Nothing has made the channel yet, so the sender cannot have opened it.
    assert!(opened.try_recv().is_err());
    let mut rx = channel::create(&name, &Options::default().slot_size(64)).unwrap();
    assert_eq!(recv(&mut rx), b"after the receiver came");
    sender.join("the waiting open");
    opened.recv_timeout(T).unwrap();
}

/// A named channel takes a mode like every other named object: 0600 by default, any
/// permission bits applied exactly (the umask does not narrow them), other bits refused.
#[test]
fn a_named_channel_takes_a_mode() {
    use std::os::unix::fs::PermissionsExt;
    let mode_of = |name: &str| {
        std::fs::metadata(dev_shm(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let name = unique_posix("chan-mode");
    let _cleanup = Unlink(name.clone());
    let rx = channel::create(&name, &Options::default()).unwrap();
    assert_eq!(mode_of(&name), 0o600);
    drop(rx);
    // 0o666 would come out 0o644 under the usual umask 022 without the fchmod.
    for mode in [0o666, 0o640, 0o400] {
        let rx = channel::create(&name, &Options::default().mode(mode)).unwrap();
        assert_eq!(mode_of(&name), mode, "{mode:#o}");
        drop(rx);
        assert!(!dev_shm(&name).exists());
    }
    for bad in [0o1600, 0o4600, 0o10600] {
        let e = err_kind(
            channel::create(&name, &Options::default().mode(bad)),
            ErrorKind::InvalidInput,
        );
        assert!(e.to_string().contains("0o777"), "{e}");
        assert!(!dev_shm(&name).exists(), "{bad:#o}: nothing made");
    }
}

/// A named channel's sender SIGKILLed: the receiver drains it, then Disconnected.
#[test]
fn named_sender_killed_gives_disconnected() {
    let name = unique_posix("chan-named-kill");
    let _cleanup = Unlink(name.clone());
    let mut rx = channel::create(&name, &Options::default().slot_size(64)).unwrap();
    let mut child = common::child("child", "named-sender")
        .arg("NAME", &name)
        .arg("N", 30)
        .arg("STAY", 1)
        .start();
    assert_eq!(child.line(), "sent");
    child.kill();
    for seq in 0..30 {
        check_kill_msg(&recv(&mut rx), seq, 64);
    }
    expect_disconnected(&mut rx);
    drop(rx);
    assert!(!dev_shm(&name).exists());
}

/// The receiver's process SIGKILLed leaves its name behind (no destructor ran): every open
/// then says Disconnected at once (nobody listens), create says EEXIST (a name is never taken
/// over), and channel::remove, which refused while the receiver lived, removes it.
#[test]
fn named_receiver_killed_open_gives_disconnected() {
    let name = unique_posix("chan-named-stale");
    let cleanup = Unlink(name.clone());
    let mut child = common::child("child", "named-receiver")
        .arg("NAME", &name)
        .start();
    assert_eq!(child.line(), "ready");
    // While it lives, open works, and remove refuses (EBUSY).
    drop(channel::open_timeout(&name, T).unwrap());
    let e = channel::remove(&name).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::BUSY), "{e}");
    assert!(e.to_string().contains("receiver is running"), "{e}");
    assert!(dev_shm(&name).exists());
    child.kill();
    assert!(dev_shm(&name).exists(), "a killed receiver cannot unlink");
    // Every form of open fails at once: waiting would not bring a receiver back.
    for e in [
        err_kind(channel::open(&name), ErrorKind::Disconnected),
        err_kind(channel::try_open(&name), ErrorKind::Disconnected),
        err_kind(channel::open_timeout(&name, T), ErrorKind::Disconnected),
    ] {
        let text = e.to_string();
        assert!(text.contains(&name), "{e}");
        assert!(text.contains(&format!("ipckit rm channel:{name}")), "{e}");
    }
    let e = channel::create(&name, &Options::default()).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EXIST), "{e}");
    assert!(e.to_string().contains("ipckit rm channel:"), "{e}");
    // remove takes the leftover away, and the name is free for a new receiver.
    channel::remove(&name).unwrap();
    assert!(!dev_shm(&name).exists());
    let e = channel::remove(&name).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::NOENT), "{e}");
    drop(channel::create(&name, &Options::default()).unwrap());
    drop(cleanup);
    assert!(!dev_shm(&name).exists());
}

/// A named channel cannot be pollable: InvalidInput, and nothing is created.
#[test]
fn named_and_pollable_is_invalid_input() {
    let name = unique_posix("chan-named-poll");
    let _cleanup = Unlink(name.clone());
    let e = err_kind(
        channel::create(&name, &Options::default().pollable(true)),
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("pollable"), "{e}");
    assert!(!dev_shm(&name).exists());
}

// ---------------------------------------------------------------------------------------------
// 6. Pollable

/// A pollable receiver's eventfd becomes readable after a child process sends; try_recv
/// until None takes everything, in order; also for a round larger than the ring (the child
/// blocks until the loop drains); and the child leaving makes it readable for Disconnected.
#[test]
fn pollable_event_fd_wakes_an_event_loop() {
    let opts = Options::default().slots(16).slot_size(64).pollable(true);
    let (tx, mut rx) = channel::pair(&opts).unwrap();
    assert!(rx.event_fd().is_some());
    let (mine, theirs) = handover();
    let mut child = start_with_socket("poll-sender", theirs, &[]);
    tx.send_over(&mine).unwrap();
    drop(tx);
    let mut seq = 0u64;
    for round in [1u64, 5, 16, 100] {
        // The loop arms the eventfd with a try_recv that finds nothing.
        assert!(rx.try_recv().unwrap().is_none());
        child.tell(&format!("send {round}"));
        let end = seq + round;
        while seq < end {
            seq = event_loop_turn(&mut rx, seq);
        }
        assert_eq!(seq, end, "round {round}: exactly the messages sent");
        assert_eq!(child.line(), "sent");
    }
    child.tell("exit");
    child.success();
    assert!(ipckit::poll::readable_timeout(rx.event_fd().unwrap(), T).unwrap());
    try_recv_disconnected(&mut rx);
}

/// Whether a pollable receiver's eventfd is readable now.
fn event_ready(rx: &Receiver) -> bool {
    ipckit::poll::readable_timeout(rx.event_fd().unwrap(), Duration::ZERO).unwrap()
}

/// An event loop's turn: waits (within T) for the eventfd, then takes messages with
/// try_recv until None, checking them from `seq` on; gives the next seq.
fn event_loop_turn(rx: &mut Receiver, mut seq: u64) -> u64 {
    assert!(
        ipckit::poll::readable_timeout(rx.event_fd().unwrap(), T).unwrap(),
        "eventfd not readable within {T:?}"
    );
    while let Some(m) = rx.try_recv().unwrap() {
        check_kill_msg(&m, seq, 64);
        seq += 1;
    }
    seq
}

/// Once try_recv gives None and nothing more is sent, the eventfd must not stay readable:
/// an epoll loop would wake again and again for nothing (spin). Here a sender end dropped
/// (a clone, or the copy kept after `send_over`) leaves it readable for good.
#[test]
fn pollable_event_fd_is_quiet_once_try_recv_gives_none() {
    let opts = Options::default()
        .slots(16)
        .slot_size(64)
        .pollable(true)
        .multi_sender(true);
    let (mut tx, mut rx) = channel::pair(&opts).unwrap();
    assert!(rx.try_recv().unwrap().is_none()); // armed
    tx.send(&kill_msg(0, 64)).unwrap();
    assert_eq!(event_loop_turn(&mut rx, 0), 1);
    assert!(!event_ready(&rx), "quiet after a message was taken");
    drop(tx.try_clone().unwrap()); // a second sender comes and goes; `tx` stays
    // The loop may be woken once for that; then try_recv until None must quiet it.
    if event_ready(&rx) {
        assert!(rx.try_recv().unwrap().is_none());
    }
    assert!(
        !event_ready(&rx),
        "readable with nothing to receive: the event loop spins"
    );
}

/// A pollable receiver in an event loop whose sender is SIGKILLed must learn of it: the
/// eventfd becomes readable, then try_recv gives Disconnected.
#[test]
fn pollable_event_fd_wakes_when_the_sender_is_killed() {
    let opts = Options::default().slots(16).slot_size(64).pollable(true);
    let (tx, mut rx) = channel::pair(&opts).unwrap();
    let (mine, theirs) = handover();
    let mut child = start_with_socket("poll-sender", theirs, &[]);
    tx.send_over(&mine).unwrap();
    drop(tx);
    child.tell("send 3");
    assert_eq!(child.line(), "sent");
    let mut seq = 0;
    while seq < 3 {
        seq = event_loop_turn(&mut rx, seq);
    }
    // Clear whatever readiness is left (see the test above) by reading the eventfd, as an
    // event loop may: from here only a new notification makes it readable.
    if event_ready(&rx) {
        let _ = rustix::io::read(rx.event_fd().unwrap(), &mut [0u8; 8]);
    }
    assert!(!event_ready(&rx));
    child.kill();
    assert!(
        ipckit::poll::readable_timeout(rx.event_fd().unwrap(), T).unwrap(),
        "the event loop is never told its sender died"
    );
    try_recv_disconnected(&mut rx);
}

// ---------------------------------------------------------------------------------------------
// 7. Bad input

/// Options out of range: InvalidInput that says what is wrong and what is allowed, for
/// pair and create (which then makes nothing).
#[test]
fn bad_options_are_invalid_input() {
    let cases = [
        (Options::default().slots(0), "power of two"),
        (Options::default().slots(1), "power of two"),
        (Options::default().slots(3), "power of two"),
        (Options::default().slots(131_072), "power of two"),
        (Options::default().slot_size(0), "multiple of 8"),
        (Options::default().slot_size(12), "multiple of 8"),
        (
            Options::default().slot_size((64 << 20) + 8),
            "multiple of 8",
        ),
        (Options::default().slots(65536).slot_size(64 << 20), "1 GiB"),
    ];
    for (opts, says) in cases {
        let e = err_kind(channel::pair(&opts).map(|_| ()), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(says), "{opts:?}: {e}");
        let name = unique_posix("chan-bad");
        let _cleanup = Unlink(name.clone());
        let e = err_kind(channel::create(&name, &opts), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(says), "{opts:?}: {e}");
        assert!(!dev_shm(&name).exists());
    }
    // The edges that are allowed.
    channel::pair(&Options::default().slots(2).slot_size(8)).unwrap();
    channel::pair(&Options::default().slots(65536).slot_size(8)).unwrap();
}

/// receive_over on a socket that carries something else than a channel end of that kind:
/// InvalidInput; nothing at all: TimedOut; a peer that closed: an error, not a hang.
#[test]
fn receive_over_something_else_is_invalid_input() {
    // Plain bytes.
    let (a, b) = UnixStream::pair().unwrap();
    ancillary::send_fds(&a, b"hello", &[]).unwrap();
    let e = err_kind(Sender::receive_over_timeout(&b, T), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not a channel end"), "{e}");
    ancillary::send_fds(&a, b"hello", &[]).unwrap();
    err_kind(
        Receiver::receive_over_timeout(&b, T),
        ErrorKind::InvalidInput,
    );

    // A receiver's end offered to Sender::receive_over, and the reverse.
    let (tx, rx) = channel::pair(&Options::default()).unwrap();
    rx.send_over(&a).unwrap();
    err_kind(Sender::receive_over_timeout(&b, T), ErrorKind::InvalidInput);
    tx.send_over(&a).unwrap();
    err_kind(
        Receiver::receive_over_timeout(&b, T),
        ErrorKind::InvalidInput,
    );

    // The right tag with descriptors that are not a channel's.
    let (p, q) = rustix::pipe::pipe().unwrap();
    ancillary::send_fds(&a, b"ipckit-channel-sender", &[p.as_fd(), q.as_fd()]).unwrap();
    assert!(Sender::receive_over_timeout(&b, T).is_err());
    // A memfd its sender could still shrink under this process's mapping (SIGBUS): refused
    // before it is mapped.
    let not_a_ring = ipckit::shm::memfd::Memfd::create("not-a-channel", 1 << 16).unwrap();
    ancillary::send_fds(
        &a,
        b"ipckit-channel-sender",
        &[not_a_ring.as_fd(), p.as_fd()],
    )
    .unwrap();
    let e = err_kind(Sender::receive_over_timeout(&b, T), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not sealed"), "{e}");
    // Sealed, but no channel's header.
    use ipckit::shm::memfd::Seals;
    not_a_ring.add_seals(Seals::SHRINK | Seals::GROW).unwrap();
    ancillary::send_fds(
        &a,
        b"ipckit-channel-sender",
        &[not_a_ring.as_fd(), p.as_fd()],
    )
    .unwrap();
    let e = err_kind(Sender::receive_over_timeout(&b, T), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not an ipckit channel"), "{e}");

    // Nothing comes: every bounded form fails with TimedOut (establishing an end).
    err_kind(
        Sender::receive_over_timeout(&b, Duration::from_millis(10)),
        ErrorKind::TimedOut,
    );
    let e = err_kind(Receiver::try_receive_over(&b), ErrorKind::TimedOut);
    assert!(e.to_string().contains("channel end"), "{e}");
    err_kind(
        Sender::receive_over_deadline(&b, Instant::now() + Duration::from_millis(10)),
        ErrorKind::TimedOut,
    );
    // One waiting: the try form takes it.
    tx.send_over(&a).unwrap();
    drop(Sender::try_receive_over(&b).unwrap());
    // The other side closed.
    drop(a);
    assert!(Receiver::receive_over_timeout(&b, T).is_err());
}

/// Other misuse: a second sender on a one-sender channel, a named receiver passed on, a
/// named object that is not a channel, names that are not POSIX names.
#[test]
fn misuse_is_invalid_input() {
    let (tx, _rx) = channel::pair(&Options::default()).unwrap();
    let e = err_kind(tx.try_clone(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("multi_sender"), "{e}");

    let name = unique_posix("chan-misuse");
    let _cleanup = Unlink(name.clone());
    let rx = channel::create(&name, &Options::default()).unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    err_kind(rx.send_over(&a), ErrorKind::InvalidInput);
    let tx = channel::open_timeout(&name, T).unwrap();
    err_kind(tx.send_over(&a), ErrorKind::InvalidInput);
    drop((tx, rx));

    let other = unique_posix("chan-not-a-channel");
    let shm = PosixShm::create(&other, &ipckit::shm::posix::Options::new(1 << 16)).unwrap();
    let e = err_kind(channel::try_open(&other), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not an ipckit channel"), "{e}");
    let e = err_kind(
        channel::open_timeout(&other, Duration::from_millis(20)),
        ErrorKind::TimedOut,
    );
    assert!(e.to_string().contains("not an ipckit channel"), "{e}");
    // remove takes channels only.
    let e = err_kind(channel::remove(&other), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains(&format!("ipckit rm shm:{other}")),
        "{e}"
    );
    assert!(dev_shm(&other).exists());
    drop(shm);
    assert!(!dev_shm(&other).exists());

    err_kind(
        channel::create("no-slash", &Options::default()),
        ErrorKind::InvalidInput,
    );
    err_kind(channel::open("/a/b"), ErrorKind::InvalidInput);
    err_kind(channel::remove("no-slash"), ErrorKind::InvalidInput);
}

// ---------------------------------------------------------------------------------------------
// Ends passed on

/// The creator's wait mode travels with the channel: ends passed over a socket and the
/// senders of a named channel start with it (not the default), and set_wait changes one end
/// only (a clone takes the mode of the end it was cloned from).
#[test]
fn the_wait_mode_travels_with_the_channel() {
    for wait in [Wait::Spin, Wait::Blocking, Wait::Adaptive] {
        let opts = Options::default()
            .slots(4)
            .slot_size(64)
            .wait(wait)
            .multi_sender(true);
        let (tx, rx) = channel::pair(&opts).unwrap();
        assert_eq!((tx.wait_mode(), rx.wait_mode()), (wait, wait));
        let (a, b) = handover();
        tx.send_over(&a).unwrap();
        rx.send_over(&a).unwrap();
        drop(rx);
        let mut tx2 = Sender::receive_over_timeout(&b, T).unwrap();
        let mut rx2 = Receiver::receive_over_timeout(&b, T).unwrap();
        assert_eq!(tx2.wait_mode(), wait, "a passed sender");
        assert_eq!(rx2.wait_mode(), wait, "a passed receiver");
        let other = if wait == Wait::Spin {
            Wait::Blocking
        } else {
            Wait::Spin
        };
        tx2.set_wait(other);
        assert_eq!(tx2.wait_mode(), other);
        assert_eq!(tx.wait_mode(), wait, "set_wait changes its own end only");
        assert_eq!(tx2.try_clone().unwrap().wait_mode(), other);
        tx2.send(b"still one channel").unwrap();
        assert_eq!(recv(&mut rx2), b"still one channel");

        let name = unique_posix("chan-wait");
        let _cleanup = Unlink(name.clone());
        let mut rx = channel::create(&name, &Options::default().slot_size(64).wait(wait)).unwrap();
        assert_eq!(rx.wait_mode(), wait);
        let mut tx = channel::open_timeout(&name, T).unwrap();
        assert_eq!(tx.wait_mode(), wait, "a named channel's sender");
        tx.send(b"named").unwrap();
        assert_eq!(recv(&mut rx), b"named");
    }
}

/// A multi-sender channel's sender cloned in the process: both senders' messages arrive,
/// each in its order.
#[test]
fn cloned_senders_in_threads_keep_their_own_order() {
    let opts = Options::default().slots(8).slot_size(64).multi_sender(true);
    let (tx, mut rx) = channel::pair(&opts).unwrap();
    let threads: Vec<_> = (0..3u8)
        .map(|id| {
            let mut tx = tx.try_clone().unwrap();
            Bounded::spawn(move || {
                for seq in 0..2000u32 {
                    let mut m = vec![id; 1 + (seq as usize % 100)];
                    m[0] = id;
                    m.extend_from_slice(&seq.to_le_bytes());
                    tx.send(&m).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u32; 3];
    for _ in 0..6000 {
        let m = recv(&mut rx);
        let id = m[0] as usize;
        let seq = u32::from_le_bytes(m[m.len() - 4..].try_into().unwrap());
        assert_eq!(seq, next[id], "sender {id}");
        assert_eq!(m.len(), 1 + (seq as usize % 100) + 4);
        next[id] += 1;
    }
    for t in threads {
        t.join("a sender thread");
    }
    expect_disconnected(&mut rx);
}

/// A receiver that took messages and is then passed to another process goes on where it
/// stopped: no message is delivered twice or skipped.
#[test]
fn a_used_receiver_passed_on_continues_where_it_stopped() {
    let (mut tx, mut rx) = channel::pair(&Options::default().slots(8).slot_size(64)).unwrap();
    for seq in 0..5u64 {
        tx.send(&kill_msg(seq, 64)).unwrap();
    }
    for seq in 0..3u64 {
        check_kill_msg(&recv(&mut rx), seq, 64);
    }
    let (mine, theirs) = handover();
    let mut child = start_with_socket(
        "used-receiver",
        theirs,
        &[("FROM", "3".into()), ("TO", "10".into())],
    );
    rx.send_over(&mine).unwrap();
    drop(rx);
    for seq in 5..10u64 {
        tx.send(&kill_msg(seq, 64)).unwrap();
    }
    assert_eq!(child.line(), "ok");
    child.success();
}

/// Bulk messages with no receiver reading: the memfds wait in the channel's socket, whose
/// buffer (a few hundred descriptors) can fill before the ring does. A try then says "full"
/// (`Ok(false)`) at once, never blocks or fails; a blocking send waits for the receiver and
/// goes through; everything sent arrives, in order.
#[test]
fn a_ring_full_of_bulk_messages_does_not_stall_the_sender() {
    for slots in [256usize, 1024] {
        let (tx, mut rx) = channel::pair(&Options::default().slots(slots).slot_size(8)).unwrap();
        let (mut tx, n) = bounded("filling the channel with bulk messages", move || {
            let mut tx = tx;
            let mut sent = 0u64;
            while (sent as usize) < slots {
                match tx.try_send(&kill_msg(sent * 13 + 12, 8)) {
                    Ok(true) => sent += 1,
                    Ok(false) => break,
                    Err(e) => panic!("{slots} slots: bulk message {sent}: {e}"),
                }
            }
            (tx, sent)
        });
        assert!(n >= 64, "{slots} slots: only {n} bulk messages fit");
        // A blocking send now waits for room and gets it once the receiver reads.
        let extra = n;
        let sender = std::thread::spawn(move || {
            tx.send(&kill_msg(extra * 13 + 12, 8)).unwrap();
            tx
        });
        for seq in 0..=n {
            let m = rx.borrow_timeout(T).unwrap().expect("a message");
            assert!(m.is_bulk());
            check_kill_msg(&m, seq * 13 + 12, 8);
        }
        let tx = sender.join().unwrap();
        drop(tx);
        expect_disconnected(&mut rx);
    }
}

/// A bulk loan too large to map fails with an error and hands its slot back: the channel
/// goes on, the receiver never sees it.
#[test]
fn an_impossible_bulk_loan_fails_cleanly() {
    let (mut tx, mut rx) = channel::pair(&Options::default().slots(2).slot_size(8)).unwrap();
    for _ in 0..3 {
        // 1 PiB: more than the address space. (Its slot, handed back as nothing, is
        // skipped by the receiver's next look.)
        let e = tx.loan(1 << 50).unwrap_err();
        assert!(e.to_string().contains("memfd"), "{e}");
        assert!(rx.try_recv().unwrap().is_none());
    }
    tx.send(b"still fine").unwrap();
    tx.send(b"and again").unwrap();
    assert_eq!(recv(&mut rx), b"still fine");
    assert_eq!(recv(&mut rx), b"and again");
    assert!(rx.try_recv().unwrap().is_none());
}

/// One of several sender processes SIGKILLed while it holds an uncommitted loan: the other
/// sender's later messages should still reach the receiver (or the receiver should get an
/// error), not wait behind the dead sender's slot for ever.
#[test]
fn a_multi_sender_killed_holding_a_loan_does_not_wedge_the_others() {
    let opts = kill_opts().multi_sender(true);
    let (mut tx, mut rx) = channel::pair(&opts).unwrap();
    let (mine, theirs) = handover();
    let mut child = start_with_socket(
        "kill-sender",
        theirs,
        &[("MODE", "loan".into()), ("K", "0".into())],
    );
    tx.send_over(&mine).unwrap();
    assert_eq!(child.line(), "loaned");
    child.kill();
    tx.send(b"after").unwrap();
    match rx.recv_timeout(T) {
        Ok(Some(m)) => assert_eq!(m, b"after"),
        Ok(None) => panic!("the live sender's message is stuck behind the dead one's slot"),
        Err(e) => panic!("the live sender's message is lost: {e}"),
    }
    // The same with only tries, as an event loop makes them: each try also looks at the
    // peers, so the dead sender's slot is skipped there too.
    let (mine, theirs) = handover();
    let mut child = start_with_socket(
        "kill-sender",
        theirs,
        &[("MODE", "loan".into()), ("K", "0".into())],
    );
    tx.send_over(&mine).unwrap();
    assert_eq!(child.line(), "loaned");
    child.kill();
    tx.send(b"after tries").unwrap();
    let start = std::time::Instant::now();
    let got = loop {
        if let Some(m) = rx.try_recv().unwrap() {
            break m;
        }
        assert!(
            start.elapsed() < T,
            "try_recv never got past the dead sender's slot"
        );
        std::thread::yield_now();
    };
    assert_eq!(got, b"after tries");
}

/// A timeout too large for the clock is no timeout, not a panic.
#[test]
fn a_huge_timeout_waits_without_panicking() {
    let (mut tx, mut rx) = channel::pair(&Options::default().slots(2)).unwrap();
    assert!(tx.send_timeout(b"one", Duration::MAX).unwrap());
    assert!(tx.send_timeout(b"two", Duration::MAX).unwrap());
    assert_eq!(rx.recv_timeout(Duration::MAX).unwrap().unwrap(), b"one");
    assert_eq!(&*rx.borrow_timeout(Duration::MAX).unwrap().unwrap(), b"two");
    drop(tx);
    let e = rx.recv_timeout(Duration::MAX).unwrap_err();
    assert_eq!(e.kind(), ipckit::ErrorKind::Disconnected);
}

// ---------------------------------------------------------------------------------------------
// 8. Leaks

/// Channels of every kind made and dropped 60 times in a child process, alone there: its
/// descriptors and mappings do not grow, and no named channel stays in /dev/shm.
#[test]
fn nothing_leaks_across_many_channels() {
    let mut child = common::child("child", "leak-loop").start();
    let pid = child.pid();
    let line = child.line();
    let n: Vec<usize> = line.split(' ').map(|w| w.parse().unwrap()).collect();
    assert_eq!(n[0], n[1], "descriptors before and after: {line}");
    assert_eq!(n[2], n[3], "mappings before and after: {line}");
    child.success();
    // unique_posix names are /ipckit-PURPOSE-PID-...
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&format!("chan-leak-{pid}-")))
        .collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}
