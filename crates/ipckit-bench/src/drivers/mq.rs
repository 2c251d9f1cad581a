//! Message queues: POSIX (`mq_open`, two queues, one each way) and System V (`msgget`, two
//! private queues). The parent creates and owns them; the peer opens them by name or id.

use ipckit::Access;
use ipckit::mq::posix::{self, PosixMq};
use ipckit::mq::sysv::{self, SysvMq, TypeFilter, msgmax};
use ipckit::name::{SysvKey, unique_posix};

use crate::control::Control;
use crate::driver::{Abort, Driver, Kind, Link, STEP, Setup};

use crate::error::Result;
use crate::system::sysctl;

/// `posix-mq`: queues ten deep (fewer if the user's queue memory limit says so), of exactly
/// the message size.
pub struct PosixMqDriver;

/// ipckit's queue descriptors wait through poll (so every call has a timed form); the timed
/// forms cost what the blocking ones do, and let a wait see the stop flag.
struct PosixLink {
    tx: PosixMq,
    rx: PosixMq,
    buf: Vec<u8>,
    setup: Setup,
}

impl Link for PosixLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.setup.wait(|| self.tx.send_timeout(msg, 0, STEP))
    }

    fn recv(&mut self) -> Result<&[u8]> {
        self.setup
            .wait_for(|| self.rx.recv_timeout(&mut self.buf, STEP))?;
        Ok(&self.buf)
    }
}

impl Driver for PosixMqDriver {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::PosixMq
    }

    fn check(&self, size: usize, _kind: Kind) -> std::result::Result<(), String> {
        let max = sysctl("/proc/sys/fs/mqueue/msgsize_max").unwrap_or(8192);
        if size > max {
            return Err(format!(
                "over the POSIX queue's message limit fs.mqueue.msgsize_max = {max} bytes"
            ));
        }
        if depth(size) < 2 {
            return Err(format!(
                "two queues of two {size}-byte messages are over this user's queue memory limit (RLIMIT_MSGQUEUE = {} bytes)",
                msgqueue_limit()
            ));
        }
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let opts = posix::Options::default()
            .max_msgs(depth(setup.size))
            .msg_size(setup.size);
        let down = PosixMq::create(&unique_posix("bench-down"), &opts)?;
        let up = PosixMq::create(&unique_posix("bench-up"), &opts)?;
        ctl.send(&(down.name(), up.name()))?;
        Ok(Box::new(PosixLink {
            tx: down,
            rx: up,
            buf: Vec::new(),
            setup: setup.clone(),
        }))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (down, up): (String, String) = ctl.recv()?;
        Ok(Box::new(PosixLink {
            rx: PosixMq::open(&down, Access::ReadOnly)?,
            tx: PosixMq::open(&up, Access::WriteOnly)?,
            buf: Vec::new(),
            setup: setup.clone(),
        }))
    }
}

/// This user's limit on the memory of all its POSIX queues (RLIMIT_MSGQUEUE).
fn msgqueue_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Msgqueue)
        .current
        .unwrap_or(u64::MAX)
}

/// How deep the two queues are: ten (the default fs.mqueue.msg_max) or as many as fit the
/// user's queue memory, the kernel counting each message's size and about a hundred bytes of
/// its own per message.
fn depth(size: usize) -> usize {
    let max = sysctl("/proc/sys/fs/mqueue/msg_max").unwrap_or(10).min(10);
    let per_message = 2 * (size as u64 + 128);
    (msgqueue_limit() / per_message).min(max as u64) as usize
}

/// `sysv-mq`: two private queues, messages of type 1.
pub struct SysvMqDriver;

struct SysvLink {
    tx: SysvMq,
    rx: SysvMq,
    buf: Vec<u8>,
    len: usize,
}

impl Link for SysvLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.send(msg, 1)?)
    }

    fn recv(&mut self) -> Result<&[u8]> {
        self.len = self.rx.recv(&mut self.buf, TypeFilter::Any, false)?.len;
        Ok(&self.buf[..self.len])
    }

    fn abort(&self) -> Option<Abort> {
        let ids = [self.tx.id(), self.rx.id()];
        Some(Box::new(move || {
            // Removing the queues wakes every call blocked on them (EIDRM).
            for id in ids {
                if let Ok(q) = SysvMq::open_id(id, Access::ReadOnly) {
                    let _ = q.remove();
                }
            }
        }))
    }
}

impl Driver for SysvMqDriver {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::SysvMq
    }

    fn check(&self, size: usize, _kind: Kind) -> std::result::Result<(), String> {
        let max = msgmax();
        if size > max {
            return Err(format!(
                "over the System V queue's message limit kernel.msgmax = {max} bytes"
            ));
        }
        // A queue holds kernel.msgmnb bytes: a larger message would wait for room for ever.
        let mnb = sysctl("/proc/sys/kernel/msgmnb").unwrap_or(16384);
        if size > mnb {
            return Err(format!(
                "over the System V queue's size kernel.msgmnb = {mnb} bytes"
            ));
        }
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let down = SysvMq::create(SysvKey::Private, &sysv::Options::default())?;
        let up = SysvMq::create(SysvKey::Private, &sysv::Options::default())?;
        ctl.send(&(down.id(), up.id()))?;
        Ok(Box::new(SysvLink {
            tx: down,
            rx: up,
            buf: vec![0; setup.size],
            len: 0,
        }))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (down, up): (i32, i32) = ctl.recv()?;
        Ok(Box::new(SysvLink {
            rx: SysvMq::open_id(down, Access::ReadOnly)?,
            tx: SysvMq::open_id(up, Access::WriteOnly)?,
            buf: vec![0; setup.size],
            len: 0,
        }))
    }
}
