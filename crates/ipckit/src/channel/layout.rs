//! The shared mapping's layout: the header at its start, the slots after it, and [`Shared`],
//! the mapping with what its header says, checked once.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::options::Options;
use super::ring::{Ring, Stamps};
use super::wait::{self, Signal, Wait};
use crate::error::{Error, ErrorKind, Result};
use crate::shm::mapping::Mapping;
use crate::shm::posix::PosixShm;

pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"ipckitch");
/// 2: the creator's wait mode is in the header.
pub(super) const VERSION: u32 = 2;
/// A slot: stamp (8 bytes), length (4), flags (4), then the payload.
pub(super) const SLOT_HEAD: usize = 16;
pub(super) const INLINE: u32 = 0;
/// The payload is a bulk message's length; its memfd comes over the socket.
pub(super) const BULK: u32 = 1;
/// Nothing: a loan dropped without a commit. The receiver skips it.
pub(super) const VOID: u32 = 2;
/// Before the commit, with several senders: claimed by the process whose pid is in the
/// other bits, for position `len` (its low 32 bits).
pub(super) const OWNED: u32 = 1 << 31;
pub(super) const SOCKET_NAME: usize = 64;

/// The shared header, at the start of the mapping.
#[repr(C)]
pub(super) struct Header {
    pub(super) magic: AtomicU64,
    pub(super) version: u32,
    pub(super) multi: u32,
    pub(super) slots: u32,
    pub(super) slot_size: u32,
    pub(super) stride: u32,
    pub(super) pollable: u32,
    /// The creator's [`Wait`], which every end starts with (see [`wait_word`]).
    pub(super) wait: u32,
    /// A named channel's abstract socket name (without the leading NUL), NUL-padded.
    pub(super) socket: [u8; SOCKET_NAME],
    /// Bumped whenever an end is dropped (see [`Peer::hangups`]).
    pub(super) hangups: AtomicU32,
    /// The senders' claim counter (see `ring`).
    pub(super) tail: CachePadded<AtomicU64>,
    /// The receiver's position, for a single sender (see `ring`).
    pub(super) head: CachePadded<AtomicU64>,
    /// The receiver sleeps here for messages.
    pub(super) data: CachePadded<Signal>,
    /// Senders sleep here for free slots.
    pub(super) space: CachePadded<Signal>,
}

pub(super) const HEADER: usize = std::mem::size_of::<Header>().next_multiple_of(128);

/// A [`Wait`] as the header stores it.
fn wait_word(wait: Wait) -> u32 {
    match wait {
        Wait::Spin => 0,
        Wait::Blocking => 1,
        Wait::Adaptive => 2,
    }
}

fn word_wait(word: u32) -> Option<Wait> {
    Some(match word {
        0 => Wait::Spin,
        1 => Wait::Blocking,
        2 => Wait::Adaptive,
        _ => return None,
    })
}

pub(super) fn stride(slot_size: usize) -> usize {
    (SLOT_HEAD + slot_size).next_multiple_of(64)
}

/// What a named channel's object holds, at a first look (before [`Shared::attach`] checks
/// the whole header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Contents {
    /// Nothing yet: empty, or zeroes where the magic goes. A receiver is setting it up (or
    /// it is not a channel, which the look cannot tell).
    Unformatted,
    /// A channel's magic.
    Channel,
    /// Something else.
    Other,
}

impl Contents {
    pub(super) fn of(map: &Mapping) -> Contents {
        if map.is_empty() {
            return Contents::Unformatted;
        }
        if map.len() < HEADER {
            return Contents::Other;
        }
        // SAFETY: at least HEADER bytes, page-aligned; only the atomic first word is read.
        let magic = unsafe { &*map.as_ptr().cast::<AtomicU64>() }.load(Ordering::Acquire);
        match magic {
            0 => Contents::Unformatted,
            MAGIC => Contents::Channel,
            _ => Contents::Other,
        }
    }
}

/// The mapping and what its header says, checked once.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) map: Mapping,
    pub(super) slots: usize,
    pub(super) slot_size: usize,
    pub(super) stride: usize,
    pub(super) multi: bool,
    /// How the channel's creator said its ends wait: where every end starts.
    pub(super) wait: Wait,
    /// An anonymous channel's memfd, to pass an end on.
    pub(super) memfd: Option<OwnedFd>,
    /// The named channel's object, owned by the receiver (removed with it).
    pub(super) _object: Option<PosixShm>,
}

pub(super) struct SlotStamps<'a>(&'a Shared);

impl Stamps for SlotStamps<'_> {
    fn stamp(&self, index: usize) -> &AtomicU64 {
        // SAFETY: `index < slots` (the ring masks it); each slot starts 8-aligned with its
        // stamp, inside the mapping (checked by `Shared::new`).
        unsafe { &*self.0.slot(index).cast::<AtomicU64>() }
    }
}

impl Shared {
    /// Formats a new mapping.
    pub(super) fn format(map: Mapping, opts: &Options, socket: &[u8]) -> Shared {
        // SAFETY: the mapping is new, at least HEADER bytes, page-aligned and nobody else
        // sees it yet; Header is plain integers and atomics, valid when zeroed.
        let h = unsafe { &mut *map.as_ptr().cast::<Header>() };
        h.version = VERSION;
        h.multi = opts.multi as u32;
        h.slots = opts.slots as u32;
        h.slot_size = opts.slot_size as u32;
        h.stride = stride(opts.slot_size) as u32;
        h.pollable = opts.pollable as u32;
        h.wait = wait_word(opts.wait);
        h.socket[..socket.len()].copy_from_slice(socket);
        let shared = Shared {
            map,
            slots: opts.slots,
            slot_size: opts.slot_size,
            stride: stride(opts.slot_size),
            multi: opts.multi,
            wait: opts.wait,
            memfd: None,
            _object: None,
        };
        shared.ring().init();
        shared.header().magic.store(MAGIC, Ordering::Release);
        shared
    }

    /// Checks a mapping made by another process.
    pub(super) fn attach(map: Mapping, what: &str) -> Result<Shared> {
        let bad = |why: String| {
            Err(Error::new(ErrorKind::InvalidInput, "opening a channel", why).object(what))
        };
        if map.len() < HEADER {
            return bad(format!("{} bytes is too small for a channel", map.len()));
        }
        // SAFETY: at least HEADER bytes; only atomics and integers are read.
        let h = unsafe { &*map.as_ptr().cast::<Header>() };
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return bad(
                "it is not an ipckit channel, or its receiver is still setting it up".into(),
            );
        }
        if h.version != VERSION {
            return bad(format!(
                "channel version {}, this ipckit speaks {VERSION}",
                h.version
            ));
        }
        let (slots, slot_size, stride_) =
            (h.slots as usize, h.slot_size as usize, h.stride as usize);
        // The same ranges as Options::check, so a garbage header cannot make this process
        // read or write outside the mapping.
        let fits = slots
            .checked_mul(stride_)
            .and_then(|n| n.checked_add(HEADER))
            .is_some_and(|n| n <= map.len());
        let wait = word_wait(h.wait);
        if !slots.is_power_of_two()
            || !(2..=65536).contains(&slots)
            || !(8..=64 << 20).contains(&slot_size)
            || !slot_size.is_multiple_of(8)
            || stride_ != stride(slot_size)
            || !fits
        {
            return bad("its header does not match its size".into());
        }
        let Some(wait) = wait else {
            return bad(format!("its header names an unknown wait mode {}", h.wait));
        };
        Ok(Shared {
            multi: h.multi != 0,
            map,
            slots,
            slot_size,
            stride: stride_,
            wait,
            memfd: None,
            _object: None,
        })
    }

    pub(super) fn header(&self) -> &Header {
        // SAFETY: formatted or checked at construction; shared access is atomics only,
        // and the plain fields are never written after the magic is published.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    pub(super) fn slot(&self, index: usize) -> *mut u8 {
        debug_assert!(index < self.slots);
        // SAFETY: inside the mapping: HEADER + slots * stride <= len.
        unsafe { self.map.as_ptr().add(HEADER + index * self.stride) }
    }

    pub(super) fn ring(&self) -> Ring<'_, SlotStamps<'_>> {
        Ring::new(
            &self.header().tail,
            &self.header().head,
            SlotStamps(self),
            self.slots,
            self.multi,
        )
    }

    /// The slot's length and flags words. Written by its sender before the commit (and,
    /// with several senders, right after the claim: see [`Shared::tag`]); relaxed atomics,
    /// ordered by the stamp.
    pub(super) fn meta(&self, index: usize) -> (&AtomicU32, &AtomicU32) {
        let p = self.slot(index);
        // SAFETY: within the slot's 16-byte head, 4-aligned (slots are 64-aligned).
        unsafe {
            (
                &*p.add(8).cast::<AtomicU32>(),
                &*p.add(12).cast::<AtomicU32>(),
            )
        }
    }

    /// With several senders: marks the slot of `pos` as claimed by this process, so the
    /// receiver can skip it if this process dies before the commit.
    #[inline]
    pub(super) fn tag(&self, pos: u64) {
        if self.multi {
            let (len, flags) = self.meta(self.ring().index(pos));
            len.store(pos as u32, Ordering::Relaxed);
            flags.store(OWNED | wait::current_pid(), Ordering::Release);
        }
    }

    /// The process that claimed the uncommitted slot of `pos`, if it said so.
    pub(super) fn owner(&self, pos: u64) -> Option<i32> {
        let (len, flags) = self.meta(self.ring().index(pos));
        let f = flags.load(Ordering::Acquire);
        (f & OWNED != 0 && len.load(Ordering::Relaxed) == pos as u32).then_some((f & !OWNED) as i32)
    }

    /// Asks for the slot's second cache line while waiting on its stamp (in the first),
    /// so a message longer than the first line's 48 payload bytes arrives in one
    /// transfer time, not two.
    pub(super) fn prefetch(&self, index: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.stride > 64 {
            // SAFETY: a prefetch is only a hint, and the address is inside the slot.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(self.slot(index).add(64).cast::<i8>());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = index;
    }

    pub(super) fn payload(&self, index: usize) -> *mut u8 {
        // SAFETY: within the slot.
        unsafe { self.slot(index).add(SLOT_HEAD) }
    }
}
