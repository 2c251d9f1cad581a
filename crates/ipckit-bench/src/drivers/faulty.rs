//! Two drivers that break on purpose, for the tests: `pipe` with message 50 corrupted or
//! dropped on its way out. The bench must fail a run over either. Not selectable with
//! `--only`.

use crate::control::Control;
use crate::driver::{Driver, Link, Setup};
use crate::drivers::stream::Pipe;
use crate::error::Result;

/// What goes wrong.
#[derive(Clone, Copy)]
pub enum Fault {
    /// One byte of message 50 is flipped.
    Corrupt,
    /// Message 50 is never sent.
    Drop,
}

/// `pipe`, with a fault.
pub struct Faulty(pub Fault);

struct FaultyLink {
    inner: Box<dyn Link>,
    fault: Fault,
    sent: u64,
}

impl Link for FaultyLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.sent += 1;
        if self.sent != 50 {
            return self.inner.send(msg);
        }
        match self.fault {
            Fault::Drop => Ok(()),
            Fault::Corrupt => {
                let mut bad = msg.to_vec();
                let last = bad.len() - 1;
                bad[last / 2] ^= 0x40;
                self.inner.send(&bad)
            }
        }
    }

    fn recv(&mut self) -> Result<&[u8]> {
        self.inner.recv()
    }
}

impl Driver for Faulty {
    fn name(&self) -> crate::rows::Row {
        match self.0 {
            Fault::Corrupt => crate::rows::Row::TestCorrupt,
            Fault::Drop => crate::rows::Row::TestDrop,
        }
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(FaultyLink {
            inner: Pipe.parent(setup, ctl)?,
            fault: self.0,
            sent: 0,
        }))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        Ok(Box::new(FaultyLink {
            inner: Pipe.peer(setup, ctl)?,
            fault: self.0,
            sent: 0,
        }))
    }
}
