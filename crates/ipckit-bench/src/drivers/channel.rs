//! ipckit's own channel (`ipckit::channel`), in its three ways of waiting: `channel-spin`,
//! `channel` (adaptive, the default) and `channel-blocking`.
//!
//! Two anonymous channels, one each way, made by the parent and passed to the peer over the
//! control socket (`Sender::send_over`). A message is copied once, by the sender into the
//! slot ([`Sender::send`]); the receiver checks it in place ([`Receiver::borrow`], through
//! [`Link::recv_with`]) and releases the slot. A channel notices a dead peer by itself (its
//! socket hangs up), so the link needs no [`Link::abort`].
//!
//! The ring is sized like the other shared-memory rows: slots of the message size, a power of
//! two of them between 4 and 256, about 4 MiB in all, so a 1 MiB row still has four slots in
//! flight.

use std::time::Duration;

use ipckit::channel::{self, Options, Receiver, Sender, Wait};

use crate::control::Control;
use crate::driver::{Driver, Link, STEP, Setup};
use crate::error::{Error, Result};

/// One of the channel's rows.
pub struct Channel(pub Wait);

fn options(setup: &Setup, wait: Wait) -> Options {
    let slot = setup.size.next_multiple_of(8).max(8);
    let slots = ((4usize << 20) / (slot + 64)).clamp(4, 256);
    let slots = 1 << (usize::BITS - 1 - slots.leading_zeros());
    Options::default().slots(slots).slot_size(slot).wait(wait)
}

struct ChannelLink {
    tx: Sender,
    rx: Receiver,
    buf: Vec<u8>,
    setup: Setup,
}

impl Link for ChannelLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        while !self.tx.send_timeout(msg, STEP)? {
            self.setup.check()?;
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<&[u8]> {
        let mut buf = std::mem::take(&mut self.buf);
        self.recv_with(&mut |m| {
            buf.clear();
            buf.extend_from_slice(m);
            Ok(0)
        })?;
        self.buf = buf;
        Ok(&self.buf)
    }

    fn recv_with(&mut self, check: &mut dyn FnMut(&[u8]) -> Result<u64>) -> Result<u64> {
        loop {
            if let Some(msg) = self.rx.borrow_timeout(STEP)? {
                return check(&msg);
            }
            self.setup.check()?;
        }
    }
}

const PASS: Duration = Duration::from_secs(10);

impl Driver for Channel {
    fn name(&self) -> crate::rows::Row {
        match self.0 {
            Wait::Spin => crate::rows::Row::ChannelSpin,
            Wait::Adaptive => crate::rows::Row::Channel,
            Wait::Blocking => crate::rows::Row::ChannelBlocking,
        }
    }

    fn check(&self, size: usize, _kind: crate::driver::Kind) -> std::result::Result<(), String> {
        if size > 64 << 20 {
            return Err("over the channel's largest slot, 64 MiB (larger messages go by its bulk path, not measured here)".into());
        }
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let opts = options(setup, self.0);
        let (tx, peer_rx) = channel::pair(&opts)?;
        let (peer_tx, rx) = channel::pair(&opts)?;
        peer_rx.send_over(ctl)?;
        peer_tx.send_over(ctl)?;
        Ok(Box::new(ChannelLink {
            tx,
            rx,
            buf: Vec::new(),
            setup: setup.clone(),
        }))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let mut rx = Receiver::receive_over_timeout(ctl, PASS)?;
        let mut tx = Sender::receive_over_timeout(ctl, PASS)?;
        rx.set_wait(self.0);
        tx.set_wait(self.0);
        if tx.slot_size() < setup.size {
            return Err(Error::Peer(
                "the channel's slots are smaller than the messages".into(),
            ));
        }
        Ok(Box::new(ChannelLink {
            tx,
            rx,
            buf: Vec::new(),
            setup: setup.clone(),
        }))
    }
}
