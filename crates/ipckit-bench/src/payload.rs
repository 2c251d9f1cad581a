//! Every message is checked on arrival: a sequence number at its head and at its tail, and a
//! fixed pattern between them. A lost, repeated, reordered, cut or damaged message fails the
//! check, so no mechanism can win by losing data.

use crate::error::{Error, Result};

/// The sequence number that ends a measurement.
pub const STOP: u64 = u64::MAX;
/// The sequence number that ends the warm-up.
pub const MARK: u64 = u64::MAX - 1;

/// The smallest message: room for the sequence number.
pub const MIN_SIZE: usize = 8;

/// The sequence number at the head of `msg` (at least [`MIN_SIZE`] bytes), unchecked: what a
/// link that carries only the number (a counter, a signal's value) sends.
pub fn seq_of(msg: &[u8]) -> u64 {
    u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"))
}

/// The messages of one size: a pattern both processes make the same way.
pub struct Payload {
    pattern: Vec<u8>,
    out: Vec<u8>,
}

impl Payload {
    /// The pattern for `size`-byte messages (at least [`MIN_SIZE`]).
    pub fn new(size: usize) -> Payload {
        assert!(size >= MIN_SIZE, "messages hold at least a sequence number");
        // A small xorshift: cheap, the same in both processes, no byte repeats in a short cycle.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size as u64;
        let pattern: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Payload {
            out: pattern.clone(),
            pattern,
        }
    }

    /// Bytes per message.
    pub fn size(&self) -> usize {
        self.pattern.len()
    }

    /// Message number `seq`, to send.
    pub fn message(&mut self, seq: u64) -> &[u8] {
        let n = self.out.len();
        self.out[..8].copy_from_slice(&seq.to_le_bytes());
        if n >= 16 {
            self.out[n - 8..].copy_from_slice(&seq.to_le_bytes());
        }
        &self.out
    }

    /// The sequence number of `msg`, after checking its length, its tail and its pattern.
    pub fn check(&self, msg: &[u8]) -> Result<u64> {
        let n = self.pattern.len();
        if msg.len() != n {
            return Err(Error::Corrupt(format!(
                "a message of {} bytes arrived where {n} were sent",
                msg.len()
            )));
        }
        let seq = seq_of(msg);
        if n >= 16 {
            let tail = u64::from_le_bytes(msg[n - 8..].try_into().expect("8 bytes"));
            if tail != seq {
                return Err(Error::Corrupt(format!(
                    "message {seq} ends with the number of message {tail}: parts of two messages"
                )));
            }
            if msg[8..n - 8] != self.pattern[8..n - 8] {
                return Err(Error::Corrupt(format!(
                    "message {seq}: its bytes changed on the way"
                )));
            }
        }
        Ok(seq)
    }

    /// Checks that `msg` is message number `want`.
    pub fn expect(&self, msg: &[u8], want: u64) -> Result<()> {
        let got = self.check(msg)?;
        if got != want {
            return Err(Error::Corrupt(format!(
                "expected message {want}, got message {}",
                label(got)
            )));
        }
        Ok(())
    }
}

fn label(seq: u64) -> String {
    match seq {
        STOP => "STOP".into(),
        MARK => "MARK".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_damage_is_caught() {
        let mut p = Payload::new(64);
        let m = p.message(7).to_vec();
        p.expect(&m, 7).unwrap();
        assert!(p.expect(&m, 8).is_err(), "a lost message");
        assert!(p.expect(&m[..63], 7).is_err(), "a short message");
        let mut bad = m.clone();
        bad[30] ^= 1;
        assert!(p.expect(&bad, 7).is_err(), "a flipped bit");
        let mut mixed = m.clone();
        mixed[56..].copy_from_slice(&6u64.to_le_bytes());
        assert!(p.expect(&mixed, 7).is_err(), "two messages spliced");
        let small = Payload::new(8);
        assert!(small.expect(&5u64.to_le_bytes(), 5).is_ok());
    }
}
