//! The ring's index protocol, and nothing else: which slot a sender may write, when the
//! receiver may read it, when a sender may write it again. All of the channel's ordering
//! lives here, on atomics that `--cfg loom` swaps for loom's, so the model check at the end of
//! this file runs this very code.
//!
//! Message number `pos` (counting from 0; 64 bits never wrap in practice) goes to slot
//! `pos % slots`. Every slot has a 64-bit *stamp*: a sender publishes message `pos` by
//! storing `pos + 1` there with `Release`, and the receiver, which waits for exactly that
//! value with `Acquire`, then sees everything the sender wrote to the slot. The receiver's
//! position is its own (kept in the receiver). How a sender learns that a slot is free again
//! depends on how many senders there are:
//!
//! - **One sender** (Lamport's ring): the receiver stores `head = pos + 1` (`Release`) after
//!   reading message `pos`; the sender keeps its own copy of `head` and reloads it
//!   (`Acquire`) only when that copy says the ring is full, once per lap at most. The sender's
//!   `tail` is its alone. So a busy pair shares only the slots themselves: the receiver never
//!   reads a line the sender writes for bookkeeping, and the sender reads the receiver's line
//!   rarely.
//! - **Several senders** (Dmitry Vyukov's bounded queue, one consumer): after reading, the
//!   receiver stores the stamp `pos + slots` (`Release`): "free for the message one lap
//!   later". A sender claims position `pos` by a compare-and-swap of `tail` from `pos` to
//!   `pos + 1`, after an `Acquire` load of the slot's stamp found `pos` there; a stamp still
//!   below `pos` means the ring is full.
//!
//! | stamp of slot `pos % slots` | meaning |
//! |---|---|
//! | `pos` (several senders) or anything but `pos + 1` (one sender) | no message `pos` yet |
//! | `pos + 1` | message `pos` is written: the receiver may read it |
//! | `pos + slots` (several senders) | message `pos` was read: free for message `pos + slots` |

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

/// Where the stamp of slot `index` lives (in the shared mapping, or in loom's model).
pub(crate) trait Stamps {
    fn stamp(&self, index: usize) -> &AtomicU64;
}

/// The protocol over one ring: the senders' `tail`, the receiver's `head`, the stamps.
pub(crate) struct Ring<'a, S> {
    tail: &'a AtomicU64,
    head: &'a AtomicU64,
    stamps: S,
    slots: u64,
    multi: bool,
}

impl<'a, S: Stamps> Ring<'a, S> {
    /// The ring of `slots` (a power of two) slots, with one sender or several (`multi`).
    pub(crate) fn new(
        tail: &'a AtomicU64,
        head: &'a AtomicU64,
        stamps: S,
        slots: usize,
        multi: bool,
    ) -> Self {
        debug_assert!(slots.is_power_of_two());
        Ring {
            tail,
            head,
            stamps,
            slots: slots as u64,
            multi,
        }
    }

    /// Makes every slot free for its first message. Only before anyone else sees the ring.
    pub(crate) fn init(&self) {
        self.tail.store(0, Ordering::Relaxed);
        self.head.store(0, Ordering::Relaxed);
        for i in 0..self.slots {
            // Slot i is free for message i; with one sender, `i` is also "not message i yet".
            self.stamps.stamp(i as usize).store(i, Ordering::Relaxed);
        }
    }

    /// The slot index of position `pos`.
    pub(crate) fn index(&self, pos: u64) -> usize {
        (pos & (self.slots - 1)) as usize
    }

    /// Claims the next position for a sender, or `None` when the ring is full. `free` is the
    /// sender's own copy of the receiver's `head` (one sender only; any start value works).
    pub(crate) fn claim(&self, free: &mut u64) -> Option<u64> {
        if !self.multi {
            let pos = self.tail.load(Ordering::Relaxed);
            // Wrapping: a garbage or misused header (two "single" senders) must not panic.
            if pos.wrapping_sub(*free) >= self.slots {
                *free = self.head.load(Ordering::Acquire);
                if pos.wrapping_sub(*free) >= self.slots {
                    return None;
                }
            }
            self.tail.store(pos + 1, Ordering::Relaxed);
            return Some(pos);
        }
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let stamp = self.stamps.stamp(self.index(pos)).load(Ordering::Acquire);
            match stamp.wrapping_sub(pos) as i64 {
                0 => match self.tail.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(pos),
                    Err(now) => pos = now,
                },
                d if d < 0 => return None,
                // Another sender claimed `pos` since `tail` was read.
                _ => pos = self.tail.load(Ordering::Relaxed),
            }
        }
    }

    /// Publishes the message at `pos`: everything written to its slot before is seen by the
    /// receiver that sees the stamp. With several senders, `false` if the receiver skipped
    /// the slot meanwhile ([`Ring::skip`]): the message is not sent.
    pub(crate) fn commit(&self, pos: u64) -> bool {
        let stamp = self.stamps.stamp(self.index(pos));
        if !self.multi {
            stamp.store(pos + 1, Ordering::Release);
            return true;
        }
        stamp
            .compare_exchange(pos, pos + 1, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// With several senders: gives up on message `pos`, claimed by a sender that died before
    /// committing it, and frees its slot for the next lap. `false` if it was committed after
    /// all (then it is read as usual).
    pub(crate) fn skip(&self, pos: u64) -> bool {
        let skipped = self
            .stamps
            .stamp(self.index(pos))
            .compare_exchange(pos, pos + self.slots, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if skipped {
            self.head.store(pos + 1, Ordering::Release);
        }
        skipped
    }

    /// Whether message `pos` is there for the receiver to read.
    pub(crate) fn ready(&self, pos: u64) -> bool {
        self.stamps.stamp(self.index(pos)).load(Ordering::Acquire) == pos + 1
    }

    /// Gives the slot of message `pos` back to the senders: the receiver's reads of it happen
    /// before any sender's writes.
    /// `head` is stored with several senders too, though none reads it: it is where a
    /// receiver passed to another process goes on from ([`Ring::head`]).
    pub(crate) fn release(&self, pos: u64) {
        if self.multi {
            self.stamps
                .stamp(self.index(pos))
                .store(pos + self.slots, Ordering::Release);
        }
        self.head.store(pos + 1, Ordering::Release);
    }

    /// The receiver's position as it last stored it.
    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }
}

#[cfg(all(test, loom))]
mod model {
    //! `RUSTFLAGS="--cfg loom" cargo test -p ipckit --lib --release channel::ring` (`.ci/run`
    //! does, with `LOOM_MAX_PREEMPTIONS=3`): every interleaving of one sender, or of two, and
    //! the receiver over a two-slot ring that wraps, with the payload in loom's checked cells,
    //! so a slot read while it is written (or written while it is read) fails the model.
    //!
    //! Each side makes a bounded number of attempts instead of spinning (a spin loop has no
    //! end for loom to explore), so a run may deliver fewer messages than were offered; what
    //! must hold is that whatever was received was sent, once, in each sender's order, and
    //! that a sender whose claim succeeded had its message delivered if the receiver went on
    //! long enough.
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Model {
        tail: AtomicU64,
        head: AtomicU64,
        stamps: Vec<AtomicU64>,
        data: Vec<UnsafeCell<u64>>,
    }

    // SAFETY: the cells are only touched as the protocol allows, which is what loom checks.
    unsafe impl Sync for Model {}

    struct Slots<'a>(&'a [AtomicU64]);

    impl Stamps for Slots<'_> {
        fn stamp(&self, index: usize) -> &AtomicU64 {
            &self.0[index]
        }
    }

    const ATTEMPTS: usize = 2;

    impl Model {
        fn new(slots: usize) -> Arc<Model> {
            let m = Model {
                tail: AtomicU64::new(0),
                head: AtomicU64::new(0),
                stamps: (0..slots).map(|_| AtomicU64::new(0)).collect(),
                data: (0..slots).map(|_| UnsafeCell::new(0)).collect(),
            };
            m.ring(false).init();
            Arc::new(m)
        }

        fn ring(&self, multi: bool) -> Ring<'_, Slots<'_>> {
            Ring::new(
                &self.tail,
                &self.head,
                Slots(&self.stamps),
                self.stamps.len(),
                multi,
            )
        }

        /// Sends `value` if a slot comes free within a few attempts.
        fn send(&self, multi: bool, free: &mut u64, value: u64) -> bool {
            let ring = self.ring(multi);
            for _ in 0..ATTEMPTS {
                if let Some(pos) = ring.claim(free) {
                    self.data[ring.index(pos)].with_mut(|p| unsafe { *p = value });
                    assert!(ring.commit(pos), "nobody skips in this model");
                    return true;
                }
                loom::thread::yield_now();
            }
            false
        }

        /// Receives the message at `pos` if it comes within a few attempts.
        fn recv(&self, multi: bool, pos: u64) -> Option<u64> {
            let ring = self.ring(multi);
            for _ in 0..ATTEMPTS {
                if ring.ready(pos) {
                    let v = self.data[ring.index(pos)].with(|p| unsafe { *p });
                    ring.release(pos);
                    return Some(v);
                }
                loom::thread::yield_now();
            }
            None
        }

        /// Receives up to `most` messages from position `from` on, until one does not come.
        fn recv_all_from(&self, multi: bool, from: u64, most: u64) -> Vec<u64> {
            (from..from + most)
                .map_while(|pos| self.recv(multi, pos))
                .collect()
        }

        /// Receives from position 0 on until a message does not come.
        fn recv_all(&self, multi: bool, most: u64) -> Vec<u64> {
            (0..most).map_while(|pos| self.recv(multi, pos)).collect()
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    #[test]
    fn one_sender_in_order() {
        model(|| {
            let m = Model::new(2);
            let tx = m.clone();
            let t = loom::thread::spawn(move || {
                let mut free = 0;
                (1..=3)
                    .take_while(|&v| tx.send(false, &mut free, v))
                    .count()
            });
            let got = m.recv_all(false, 3);
            let sent = t.join().unwrap();
            assert!(got.len() <= sent, "received {got:?}, sent {sent}");
            assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
            // What was committed and not yet read is still there, intact.
            let rest: Vec<u64> = (got.len() as u64..sent as u64)
                .map(|pos| m.recv(false, pos).expect("a committed message"))
                .collect();
            assert_eq!(
                rest,
                (got.len() as u64 + 1..=sent as u64).collect::<Vec<_>>()
            );
        });
    }

    /// The receiver gives up on a claimed slot (it took the sender for dead) while the sender
    /// commits it: exactly one of them wins. Either the message is read, or the sender's
    /// commit fails and it knows its message was dropped; and the slot is then free for the
    /// next lap, for another sender.
    #[test]
    fn a_skip_and_a_commit_race_cleanly() {
        model(|| {
            let m = Model::new(2);
            let ring = m.ring(true);
            let mut free = 0;
            let pos = ring.claim(&mut free).expect("an empty ring");
            let tx = m.clone();
            let t = loom::thread::spawn(move || {
                let ring = tx.ring(true);
                tx.data[ring.index(pos)].with_mut(|p| unsafe { *p = 7 });
                ring.commit(pos)
            });
            let skipped = ring.skip(pos);
            let committed = t.join().unwrap();
            assert_ne!(skipped, committed, "exactly one wins");
            if committed {
                assert_eq!(m.recv(true, pos), Some(7));
            }
            // Either way the ring goes on: the next two messages fit and arrive.
            let mut free = 0;
            assert!(m.send(true, &mut free, 8));
            assert!(m.send(true, &mut free, 9));
            assert_eq!(m.recv_all_from(true, pos + 1, 2), [8, 9]);
        });
    }

    #[test]
    fn two_senders_lose_nothing() {
        model(|| {
            let m = Model::new(2);
            let senders: Vec<_> = [vec![1, 2], vec![11]]
                .into_iter()
                .map(|values| {
                    let tx = m.clone();
                    loom::thread::spawn(move || {
                        let mut free = 0;
                        values
                            .into_iter()
                            .take_while(|&v| tx.send(true, &mut free, v))
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            let mut got = m.recv_all(true, 3);
            let sent: Vec<Vec<u64>> = senders.into_iter().map(|t| t.join().unwrap()).collect();
            // Whatever stayed behind is committed: read it now that the senders are done.
            let total: usize = sent.iter().map(Vec::len).sum();
            for pos in got.len() as u64..total as u64 {
                got.push(m.recv(true, pos).expect("a committed message"));
            }
            for s in &sent {
                let mine: Vec<u64> = got.iter().copied().filter(|v| s.contains(v)).collect();
                assert_eq!(&mine, s, "each sender's messages, once, in order: {got:?}");
            }
            assert_eq!(got.len(), total, "{got:?} from {sent:?}");
        });
    }
}
