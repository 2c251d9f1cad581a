//! Shared memory: a ring of message slots each way in one shared region, with four ways to make
//! the region and wait on it (`posix-shm-sem`, `sysv-shm-sem`, `shm-futex`, `mmap-file-futex`),
//! and the two raw references a shared-memory round trip is measured against (`ref-spin`,
//! `ref-futex`).
//!
//! A message is copied into a slot by the sender and out of it by the receiver (through
//! [`Mapping::write_at`] and [`Mapping::read_at`]), as the kernel mechanisms copy in and out.
//! The ring holds a power of two of messages, up to 4096 or 1 MiB each way, at least two (a
//! pipe holds 64 KiB).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ipckit::Access;
use ipckit::name::{SysvKey, unique_posix};
use ipckit::shm::mapping::Mapping;
use ipckit::shm::memfd::Memfd;
use ipckit::shm::posix::{self, PosixShm};
use ipckit::shm::sysv::{self, SysvShm};
use ipckit::sync::futex;
use ipckit::sync::sem_posix::{self, PosixSem};
use ipckit::sync::sem_sysv::{self, SemOp, SysvSemSet};

use crate::control::Control;
use crate::driver::{Driver, Kind, Link, Role, STEP, Setup};
use crate::error::{Error, Result};
use crate::payload::seq_of;

/// Per direction, at `direction * 256`: the count of messages written, the count read, and a
/// flag each side raises before it sleeps, each on its own cache line.
const HEAD: usize = 0;
const TAIL: usize = 64;
const PRODUCER_WAITS: usize = 128;
const CONSUMER_WAITS: usize = 192;
const HEADER: usize = 512;

/// How a ring's ends wait for each other. Semaphores: per direction `d`, number `2d` counts
/// messages and number `2d + 1` free slots.
enum Gate {
    Futex,
    Posix(Box<[PosixSem; 4]>),
    Sysv(SysvSemSet),
}

/// The ring's shape for `size`-byte messages: (slots, bytes per slot, bytes in all).
fn shape(size: usize) -> (usize, usize, usize) {
    // A power of two, so `counter % slots` stays in step when the u32 counters wrap.
    let slots = ((1usize << 20) / size).clamp(2, 4096);
    let slots = 1 << (usize::BITS - 1 - slots.leading_zeros());
    let stride = (8 + size).next_multiple_of(64);
    (slots, stride, HEADER + 2 * slots * stride)
}

struct Ring {
    map: Mapping,
    gate: Gate,
    slots: usize,
    stride: usize,
    tx: usize,
    rx: usize,
    head: u32,
    tail: u32,
    buf: Vec<u8>,
    setup: Setup,
    /// The object that owns the region's name, dropped after the mapping.
    _keep: Option<Box<dyn Send>>,
}

impl Ring {
    fn new(map: Mapping, gate: Gate, setup: &Setup, parent: bool) -> Ring {
        let (slots, stride, _) = shape(setup.size);
        Ring {
            map,
            gate,
            slots,
            stride,
            tx: if parent { 0 } else { 1 },
            rx: if parent { 1 } else { 0 },
            head: 0,
            tail: 0,
            buf: vec![0; setup.size],
            setup: setup.clone(),
            _keep: None,
        }
    }

    fn word(&self, dir: usize, field: usize) -> Result<&AtomicU32> {
        Ok(self.map.atomic_u32(dir * 256 + field)?)
    }

    fn slot(&self, dir: usize, n: u32) -> usize {
        HEADER + (dir * self.slots + n as usize % self.slots) * self.stride
    }

    /// Futex wait until `ready(word)`. The waiter raises its flag, re-checks the word, and
    /// only then sleeps: the other side stores the word before it reads the flag (both SeqCst),
    /// so either the waiter sees the new word or the other side sees the flag and wakes it.
    /// Only the waiter lowers its own flag: a waker that lowered it could lower the flag of a
    /// later wait, and then skip its wake.
    fn sleep(
        &self,
        dir: usize,
        word: usize,
        flag: usize,
        ready: impl Fn(u32) -> bool,
    ) -> Result<()> {
        let w = self.word(dir, word)?;
        if ready(w.load(Ordering::SeqCst)) {
            return Ok(());
        }
        let raised = self.word(dir, flag)?;
        raised.store(1, Ordering::SeqCst);
        let result = loop {
            let seen = w.load(Ordering::SeqCst);
            if ready(seen) {
                break Ok(());
            }
            match futex::wait_timeout(w, seen, STEP) {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = self.setup.check() {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        raised.store(0, Ordering::SeqCst);
        result
    }

    /// Wakes the other side if its flag is up.
    fn nudge(&self, dir: usize, word: usize, flag: usize) -> Result<()> {
        if self.word(dir, flag)?.load(Ordering::SeqCst) == 1 {
            futex::wake(self.word(dir, word)?, 1)?;
        }
        Ok(())
    }
}

impl Link for Ring {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let (d, head, slots) = (self.tx, self.head, self.slots as u32);
        match &self.gate {
            Gate::Futex => self.sleep(d, TAIL, PRODUCER_WAITS, |tail| {
                head.wrapping_sub(tail) < slots
            })?,
            Gate::Posix(s) => self.setup.wait(|| s[2 * d + 1].wait_timeout(STEP))?,
            Gate::Sysv(set) => self
                .setup
                .wait(|| set.op_timeout(&[SemOp::wait(2 * d + 1).no_undo()], STEP))?,
        }
        let at = self.slot(d, head);
        self.map.write_pod(at, &(msg.len() as u64))?;
        self.map.write_at(at + 8, msg)?;
        self.head = head.wrapping_add(1);
        match &self.gate {
            Gate::Futex => {
                self.word(d, HEAD)?.store(self.head, Ordering::SeqCst);
                self.nudge(d, HEAD, CONSUMER_WAITS)?;
            }
            Gate::Posix(s) => s[2 * d].post()?,
            Gate::Sysv(set) => {
                set.op(&[SemOp::post(2 * d).no_undo()])?;
            }
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<&[u8]> {
        let (d, tail) = (self.rx, self.tail);
        match &self.gate {
            Gate::Futex => self.sleep(d, HEAD, CONSUMER_WAITS, |head| head != tail)?,
            Gate::Posix(s) => self.setup.wait(|| s[2 * d].wait_timeout(STEP))?,
            Gate::Sysv(set) => self
                .setup
                .wait(|| set.op_timeout(&[SemOp::wait(2 * d).no_undo()], STEP))?,
        }
        let at = self.slot(d, tail);
        let len: u64 = self.map.read_pod(at)?;
        let len = (len as usize).min(self.buf.len());
        self.map.read_at(at + 8, &mut self.buf[..len])?;
        self.tail = tail.wrapping_add(1);
        match &self.gate {
            Gate::Futex => {
                self.word(d, TAIL)?.store(self.tail, Ordering::SeqCst);
                self.nudge(d, TAIL, PRODUCER_WAITS)?;
            }
            Gate::Posix(s) => s[2 * d + 1].post()?,
            Gate::Sysv(set) => {
                set.op(&[SemOp::post(2 * d + 1).no_undo()])?;
            }
        }
        Ok(&self.buf[..len])
    }
}

/// `posix-shm-sem`: `shm_open` memory, named POSIX semaphores.
pub struct PosixShmSem;

impl Driver for PosixShmSem {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::PosixShmSem
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (slots, _, len) = shape(setup.size);
        let shm = PosixShm::create(&unique_posix("bench-shm"), &posix::Options::new(len))?;
        let sems = [0, slots, 0, slots].map(|v| {
            PosixSem::create(
                &unique_posix("bench-sem"),
                &sem_posix::Options::new(v as u32),
            )
        });
        let sems: [PosixSem; 4] = sems
            .into_iter()
            .collect::<ipckit::Result<Vec<_>>>()?
            .try_into()
            .expect("four semaphores");
        let names: Vec<&str> = std::iter::once(shm.name())
            .chain(sems.iter().map(|s| s.name()))
            .collect();
        ctl.send(&names)?;
        let map = shm.map()?;
        let mut ring = Ring::new(map, Gate::Posix(Box::new(sems)), setup, true);
        ring._keep = Some(Box::new(shm));
        Ok(Box::new(ring))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let names: Vec<String> = ctl.recv()?;
        let shm = PosixShm::open(&names[0], Access::ReadWrite)?;
        let sems: [PosixSem; 4] = names[1..]
            .iter()
            .map(|n| PosixSem::open(n))
            .collect::<ipckit::Result<Vec<_>>>()?
            .try_into()
            .map_err(|_| Error::Peer("expected four semaphore names".into()))?;
        Ok(Box::new(Ring::new(
            shm.map()?,
            Gate::Posix(Box::new(sems)),
            setup,
            false,
        )))
    }
}

/// `sysv-shm-sem`: `shmget` memory, one System V set of four semaphores.
pub struct SysvShmSem;

impl Driver for SysvShmSem {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::SysvShmSem
    }

    fn check(&self, size: usize, _kind: Kind) -> std::result::Result<(), String> {
        // semvmx: a System V semaphore counts to 32767; the ring needs at most 256.
        let _ = size;
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (slots, _, len) = shape(setup.size);
        let shm = SysvShm::create(SysvKey::Private, &sysv::Options::new(len))?;
        let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(4))?;
        let slots = slots as u16;
        set.set_all(&[0, slots, 0, slots])?;
        ctl.send(&(shm.id(), set.id()))?;
        let map = shm.attach()?;
        let mut ring = Ring::new(map, Gate::Sysv(set), setup, true);
        ring._keep = Some(Box::new(shm));
        Ok(Box::new(ring))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (shm, set): (i32, i32) = ctl.recv()?;
        let map = SysvShm::open_id(shm, Access::ReadWrite)?.attach()?;
        let set = SysvSemSet::open_id(set, ipckit::Access::ReadWrite)?;
        Ok(Box::new(Ring::new(map, Gate::Sysv(set), setup, false)))
    }
}

/// `shm-futex`: a memfd (passed over the control channel), futex waits.
pub struct ShmFutex;

impl Driver for ShmFutex {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::ShmFutex
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let map = share_memfd(shape(setup.size).2, ctl)?;
        Ok(Box::new(Ring::new(map, Gate::Futex, setup, true)))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(Ring::new(
            open_memfd(ctl)?,
            Gate::Futex,
            setup,
            false,
        )))
    }
}

fn share_memfd(len: usize, ctl: &Control) -> Result<Mapping> {
    let memfd = Memfd::create("ipckit-bench", len)?;
    ctl.send_fds(&"memfd", &[std::os::fd::AsFd::as_fd(&memfd)])?;
    Ok(memfd.map(Access::ReadWrite)?)
}

fn open_memfd(ctl: &Control) -> Result<Mapping> {
    let (_, mut fds) = ctl.recv_fds::<String>(1)?;
    Ok(Memfd::from_fd(fds.pop().expect("one descriptor"))?.map(Access::ReadWrite)?)
}

/// `mmap-file-futex`: a file in the temporary directory mapped `MAP_SHARED` by both, futex
/// waits.
pub struct MmapFileFutex;

impl Driver for MmapFileFutex {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::MmapFileFutex
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let len = shape(setup.size).2;
        let file = tempfile::Builder::new()
            .prefix("ipckit-bench-")
            .tempfile()?;
        file.as_file().set_len(len as u64)?;
        ctl.send(&file.path())?;
        let map = Mapping::map_fd(file.as_file(), len, Access::ReadWrite)?;
        let mut ring = Ring::new(map, Gate::Futex, setup, true);
        ring._keep = Some(Box::new(file));
        Ok(Box::new(ring))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let path: std::path::PathBuf = ctl.recv()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        let map = Mapping::map_fd(&file, shape(setup.size).2, Access::ReadWrite)?;
        Ok(Box::new(Ring::new(map, Gate::Futex, setup, false)))
    }
}

/// The value a reference row stores for sequence number `seq` (never 0, the "nothing yet").
fn encode(seq: u64) -> u64 {
    match seq {
        crate::payload::STOP | crate::payload::MARK => seq,
        n => n + 1,
    }
}

fn decode(v: u64) -> u64 {
    match v {
        crate::payload::STOP | crate::payload::MARK => v,
        n => n - 1,
    }
}

/// `ref-spin`: one atomic word each way in shared memory, each side spinning on the other's:
/// the hardware's round trip, with no system call at all.
pub struct RefSpin;

struct SpinLink {
    map: Mapping,
    tx: usize,
    rx: usize,
    last: u64,
    buf: [u8; 8],
    setup: Setup,
}

impl SpinLink {
    fn new(map: Mapping, setup: &Setup, parent: bool) -> SpinLink {
        SpinLink {
            map,
            tx: if parent { 0 } else { 128 },
            rx: if parent { 128 } else { 0 },
            last: 0,
            buf: [0; 8],
            setup: setup.clone(),
        }
    }

    fn word(&self, at: usize) -> Result<&AtomicU64> {
        Ok(self.map.atomic_u64(at)?)
    }
}

impl Link for SpinLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let seq = seq_of(msg);
        self.word(self.tx)?.store(encode(seq), Ordering::Release);
        Ok(())
    }

    fn recv(&mut self) -> Result<&[u8]> {
        let w = self.word(self.rx)?;
        let mut spins = 0u32;
        let v = loop {
            let v = w.load(Ordering::Acquire);
            if v != self.last {
                break v;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(4096) {
                self.setup.check()?;
            }
        };
        self.last = v;
        self.buf = decode(v).to_le_bytes();
        Ok(&self.buf)
    }
}

impl Driver for RefSpin {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::RefSpin
    }

    fn role(&self) -> Role {
        Role::Reference
    }

    fn fixed_size(&self) -> Option<usize> {
        Some(8)
    }

    fn check(&self, _size: usize, kind: Kind) -> std::result::Result<(), String> {
        only_latency(kind)
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(SpinLink::new(
            share_memfd(4096, ctl)?,
            setup,
            true,
        )))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(SpinLink::new(open_memfd(ctl)?, setup, false)))
    }
}

fn only_latency(kind: Kind) -> std::result::Result<(), String> {
    match kind {
        Kind::Latency => Ok(()),
        Kind::Throughput => {
            Err("a round-trip reference: it carries an 8-byte value, no payload".into())
        }
    }
}

/// `ref-futex`: one 32-bit word each way, a store and a raw `FUTEX_WAKE` to send, raw
/// `FUTEX_WAIT` to receive (rustix's futex calls, nothing of ipckit): the kernel's cheapest
/// sleeping round trip.
pub struct RefFutex;

struct FutexLink {
    map: Mapping,
    tx: usize,
    rx: usize,
    last: u32,
    buf: [u8; 8],
    setup: Setup,
}

impl FutexLink {
    fn new(map: Mapping, setup: &Setup, parent: bool) -> FutexLink {
        FutexLink {
            map,
            tx: if parent { 0 } else { 128 },
            rx: if parent { 128 } else { 0 },
            last: 0,
            buf: [0; 8],
            setup: setup.clone(),
        }
    }

    fn word(&self, at: usize) -> Result<&AtomicU32> {
        Ok(self.map.atomic_u32(at)?)
    }
}

impl Link for FutexLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let seq = seq_of(msg);
        let w = self.word(self.tx)?;
        w.store(encode(seq) as u32, Ordering::Release);
        rustix::thread::futex::wake(w, rustix::thread::futex::Flags::empty(), 1)
            .map_err(std::io::Error::from)?;
        Ok(())
    }

    fn recv(&mut self) -> Result<&[u8]> {
        use rustix::thread::futex::{Flags, Timespec, wait};
        let step = Timespec {
            tv_sec: 0,
            tv_nsec: STEP.as_nanos() as i64,
        };
        let w = self.word(self.rx)?;
        let v = loop {
            let v = w.load(Ordering::Acquire);
            if v != self.last {
                break v;
            }
            match wait(w, Flags::empty(), self.last, Some(&step)) {
                Ok(()) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::TIMEDOUT) => self.setup.check()?,
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
        };
        self.last = v;
        let seq = match v {
            u32::MAX => crate::payload::STOP,
            0xffff_fffe => crate::payload::MARK,
            n => u64::from(n) - 1,
        };
        self.buf = seq.to_le_bytes();
        Ok(&self.buf)
    }
}

impl Driver for RefFutex {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::RefFutex
    }

    fn role(&self) -> Role {
        Role::Reference
    }

    fn fixed_size(&self) -> Option<usize> {
        Some(8)
    }

    fn check(&self, _size: usize, kind: Kind) -> std::result::Result<(), String> {
        only_latency(kind)
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(FutexLink::new(
            share_memfd(4096, ctl)?,
            setup,
            true,
        )))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(FutexLink::new(open_memfd(ctl)?, setup, false)))
    }
}
