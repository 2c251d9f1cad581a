//! Message queues: POSIX (`mq_open`, two queues, one each way) and System V (`msgget`, two
//! private queues). The parent creates and owns them; the peer opens them by name or id.

use ipckit::mq::posix::{Access, PosixMq, QueueAttr};
use ipckit::mq::sysv::{SysvMq, TypeFilter, msgmax};
use ipckit::name::{SysvKey, unique_posix};

use crate::control::Control;
use crate::driver::{Abort, Driver, Kind, Link, Setup};
use crate::error::Result;
use crate::system::sysctl;

/// `posix-mq`: queues as deep as `fs.mqueue.msg_max` allows, of exactly the message size.
pub struct PosixMqDriver;

struct PosixLink {
    tx: PosixMq,
    rx: PosixMq,
    buf: Vec<u8>,
}

impl Link for PosixLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.send(msg, 0)?)
    }

    fn recv(&mut self) -> Result<&[u8]> {
        self.rx.recv(&mut self.buf)?;
        Ok(&self.buf)
    }

    fn abort(&self) -> Option<Abort> {
        let (tx, rx) = (self.tx.name().to_string(), self.rx.name().to_string());
        Some(Box::new(move || {
            // Room in the queue a send waits on, and a message for the receive: either call
            // returns, and the runner, seeing the stop, reports the peer.
            if let Ok(q) = PosixMq::open(&tx, Access::Read) {
                let _ = q.try_recv(&mut Vec::new());
            }
            if let Ok(q) = PosixMq::open(&rx, Access::Write) {
                let _ = q.try_send(b"abort: the peer is gone", 0);
            }
        }))
    }
}

impl Driver for PosixMqDriver {
    fn name(&self) -> &'static str {
        "posix-mq"
    }

    fn check(&self, size: usize, _kind: Kind) -> std::result::Result<(), String> {
        let max = sysctl("/proc/sys/fs/mqueue/msgsize_max").unwrap_or(8192);
        if size > max {
            return Err(format!(
                "over the POSIX queue's message limit fs.mqueue.msgsize_max = {max} bytes"
            ));
        }
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let attr = QueueAttr {
            max_msgs: sysctl("/proc/sys/fs/mqueue/msg_max").unwrap_or(10) as i64,
            msg_size: setup.size as i64,
        };
        let down = PosixMq::create(&unique_posix("bench-down"), attr, 0o600)?;
        let up = PosixMq::create(&unique_posix("bench-up"), attr, 0o600)?;
        ctl.send(&(down.name(), up.name()))?;
        Ok(Box::new(PosixLink {
            tx: down,
            rx: up,
            buf: Vec::new(),
        }))
    }

    fn peer(&self, _setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (down, up): (String, String) = ctl.recv()?;
        Ok(Box::new(PosixLink {
            rx: PosixMq::open(&down, Access::Read)?,
            tx: PosixMq::open(&up, Access::Write)?,
            buf: Vec::new(),
        }))
    }
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
        Ok(self.tx.send(1, msg)?)
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
                if let Ok(mut q) = SysvMq::open_id(id) {
                    let _ = q.remove();
                }
            }
        }))
    }
}

impl Driver for SysvMqDriver {
    fn name(&self) -> &'static str {
        "sysv-mq"
    }

    fn check(&self, size: usize, _kind: Kind) -> std::result::Result<(), String> {
        let max = msgmax();
        if size > max {
            return Err(format!(
                "over the System V queue's message limit kernel.msgmax = {max} bytes"
            ));
        }
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let down = SysvMq::create(SysvKey::Private, 0o600)?;
        let up = SysvMq::create(SysvKey::Private, 0o600)?;
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
            rx: SysvMq::open_id(down)?,
            tx: SysvMq::open_id(up)?,
            buf: vec![0; setup.size],
            len: 0,
        }))
    }
}
