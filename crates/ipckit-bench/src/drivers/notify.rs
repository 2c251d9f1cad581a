//! Notification only: an `eventfd` counter and a real-time signal with a value carry a number,
//! not a payload. The number is the message's sequence number, so each is still checked.
//!
//! Both go through ipckit's descriptors, which are non-blocking with a poll to wait (so every
//! call has a timed and a non-blocking form): a wait that finds nothing costs a read, a poll
//! and a read again.

use std::os::fd::AsFd;

use ipckit::notify::eventfd::{EventFd, Mode};
use ipckit::notify::signal::{self, SignalFd};

use crate::control::Control;
use crate::driver::{Driver, Kind, Link, STEP, Setup};
use crate::error::Result;
use crate::payload::{MARK, STOP, seq_of};

fn only_latency(kind: Kind) -> std::result::Result<(), String> {
    match kind {
        Kind::Latency => Ok(()),
        Kind::Throughput => {
            Err("notification only: it carries a number, not a payload, so nothing streams".into())
        }
    }
}

/// `eventfd`: one counter each way; the value added is the sequence number (moved off 0,
/// which an eventfd cannot carry).
pub struct EventFdDriver;

struct EventLink {
    tx: EventFd,
    rx: EventFd,
    buf: [u8; 8],
    setup: Setup,
}

impl Link for EventLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let v = match seq_of(msg) {
            STOP => 1,
            MARK => 2,
            n => n + 3,
        };
        Ok(self.tx.add(v)?)
    }

    fn recv(&mut self) -> Result<&[u8]> {
        let v = self.setup.wait_for(|| self.rx.read_timeout(STEP))?;
        let seq = match v {
            1 => STOP,
            2 => MARK,
            n => n.wrapping_sub(3),
        };
        self.buf = seq.to_le_bytes();
        Ok(&self.buf)
    }
}

impl Driver for EventFdDriver {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::EventFd
    }

    fn fixed_size(&self) -> Option<usize> {
        Some(8)
    }

    fn check(&self, _size: usize, kind: Kind) -> std::result::Result<(), String> {
        only_latency(kind)
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let down = EventFd::new(0, Mode::Counter)?;
        let up = EventFd::new(0, Mode::Counter)?;
        ctl.send_fds(
            &crate::rows::Row::EventFd.as_str(),
            &[down.as_fd(), up.as_fd()],
        )?;
        Ok(Box::new(EventLink {
            tx: down,
            rx: up,
            buf: [0; 8],
            setup: setup.clone(),
        }))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (_, fds) = ctl.recv_fds::<String>(2)?;
        let [down, up]: [_; 2] = fds.try_into().expect("two descriptors");
        Ok(Box::new(EventLink {
            rx: EventFd::from_fd(down)?,
            tx: EventFd::from_fd(up)?,
            buf: [0; 8],
            setup: setup.clone(),
        }))
    }
}

/// `signal`: `SIGRTMIN+5` with the sequence number as its value, sent to the other side's
/// measuring thread (rt_tgsigqueueinfo) and taken from a signalfd. The signal stays blocked in
/// that thread afterwards: unblocking it with one still in flight would end the process.
pub struct SignalDriver;

fn sig() -> i32 {
    signal::rt(5)
}

struct SignalLink {
    sfd: SignalFd,
    to: (i32, i32),
    buf: [u8; 8],
    setup: Setup,
}

fn me() -> (i32, i32) {
    (
        std::process::id() as i32,
        rustix::thread::gettid().as_raw_nonzero().get(),
    )
}

impl Link for SignalLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let v = match seq_of(msg) {
            STOP => -1,
            MARK => -2,
            n => n as i32,
        };
        Ok(signal::queue_thread(
            self.to.0 as ipckit::Pid,
            self.to.1 as ipckit::Pid,
            sig(),
            v,
        )?)
    }

    fn recv(&mut self) -> Result<&[u8]> {
        let info = self.setup.wait_for(|| self.sfd.read_timeout(STEP))?;
        let seq = match info.value {
            -1 => STOP,
            -2 => MARK,
            n => n as u32 as u64,
        };
        self.buf = seq.to_le_bytes();
        Ok(&self.buf)
    }
}

impl Driver for SignalDriver {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::Signal
    }

    fn fixed_size(&self) -> Option<usize> {
        Some(4)
    }

    fn check(&self, _size: usize, kind: Kind) -> std::result::Result<(), String> {
        only_latency(kind)
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let sfd = SignalFd::new(&[sig()])?;
        ctl.send(&me())?;
        let to: (i32, i32) = ctl.recv()?;
        Ok(Box::new(SignalLink {
            sfd,
            to,
            buf: [0; 8],
            setup: setup.clone(),
        }))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let sfd = SignalFd::new(&[sig()])?;
        let to: (i32, i32) = ctl.recv()?;
        ctl.send(&me())?;
        Ok(Box::new(SignalLink {
            sfd,
            to,
            buf: [0; 8],
            setup: setup.clone(),
        }))
    }
}
