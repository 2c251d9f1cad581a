//! [`Options`]: how a channel is made.

use super::layout::{HEADER, SLOT_HEAD, stride};
use super::wait::Wait;
use crate::error::{Error, ErrorKind, Result};
use crate::object::DEFAULT_MODE;

/// How a channel is made.
#[derive(Clone, Debug)]
pub struct Options {
    pub(super) slots: usize,
    pub(super) slot_size: usize,
    pub(super) wait: Wait,
    pub(super) multi: bool,
    pub(super) pollable: bool,
    pub(super) mode: u32,
}

impl Default for Options {
    /// 256 slots of 4080 bytes (4 KiB each with the slot's head: 1 MiB in all), one
    /// sender, adaptive waiting, not pollable, mode 0o600 for a named channel.
    fn default() -> Self {
        Options {
            slots: 256,
            slot_size: 4096 - SLOT_HEAD,
            wait: Wait::Adaptive,
            multi: false,
            pollable: false,
            mode: DEFAULT_MODE,
        }
    }
}

impl Options {
    /// How many messages the ring holds: a power of two, 2 to 65536.
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = n;
        self
    }

    /// The largest message that travels in the ring (larger ones go as bulk): 8 bytes to
    /// 64 MiB, a multiple of 8.
    pub fn slot_size(mut self, bytes: usize) -> Self {
        self.slot_size = bytes;
        self
    }

    /// How the channel's ends wait: stored in the channel, so every end starts with it, the
    /// ends passed on ([`Sender::receive_over`](super::Sender::receive_over)) and the senders
    /// of a named channel ([`open`](super::open)) included. Each end can change its own with
    /// `set_wait`.
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// Several senders (threads or processes) at once: they claim slots with a
    /// compare-and-swap instead of a store.
    pub fn multi_sender(mut self, on: bool) -> Self {
        self.multi = on;
        self
    }

    /// The receiver gets an eventfd ([`Receiver::event_fd`](super::Receiver::event_fd)) that becomes readable when
    /// a message may be waiting. Anonymous channels only: a named channel's senders
    /// could not be handed the descriptor.
    pub fn pollable(mut self, on: bool) -> Self {
        self.pollable = on;
        self
    }

    /// A named channel's permission bits (default 0o600: only its owner may send): who may
    /// [`open`](super::open) it. Bits outside 0o777 are refused; the mode is set exactly,
    /// whatever the umask. An anonymous channel has no name and no mode.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub(super) fn check(&self) -> Result<usize> {
        let bad = |why: String| Err(Error::new(ErrorKind::InvalidInput, "making a channel", why));
        if !self.slots.is_power_of_two() || !(2..=65536).contains(&self.slots) {
            return bad(format!(
                "{} slots: the count must be a power of two from 2 to 65536",
                self.slots
            ));
        }
        if !(8..=64 << 20).contains(&self.slot_size) || !self.slot_size.is_multiple_of(8) {
            return bad(format!(
                "a slot size of {} bytes: it must be a multiple of 8 from 8 to 64 MiB",
                self.slot_size
            ));
        }
        let len = self
            .slots
            .checked_mul(stride(self.slot_size))
            .and_then(|n| n.checked_add(HEADER))
            .unwrap_or(usize::MAX);
        if len > 1 << 30 {
            return bad(format!(
                "{} slots of {} bytes need {len} bytes: over the 1 GiB limit",
                self.slots, self.slot_size
            ));
        }
        Ok(len)
    }
}
