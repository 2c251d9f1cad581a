//! The table's layout in shared memory (see the diagram in [`super`]), its hash, and the
//! one place that turns offsets into atomics. Readers and the writer share it.

use std::sync::atomic::{AtomicU32, AtomicU64};

use ipckit::{Error, ErrorKind};

use super::MirrorOptions;

/// The first word: `IPKVSHM` and a 1.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"IPKVSHM\x01");
/// The layout's version: a reader refuses any other.
pub(crate) const LAYOUT: u32 = 1;
/// Bytes before the first bucket: one page.
pub(crate) const HEADER_LEN: usize = 4096;

// The header's fields (byte offsets).
pub(crate) const H_MAGIC: usize = 0;
pub(crate) const H_LAYOUT: usize = 8;
pub(crate) const H_HEADER_LEN: usize = 12;
pub(crate) const H_BUCKETS: usize = 16;
pub(crate) const H_SLOT: usize = 24;
pub(crate) const H_MAX_KEY: usize = 32;
pub(crate) const H_MAX_VALUE: usize = 36;
pub(crate) const H_MAX_PROBE: usize = 40;
pub(crate) const H_SEED: usize = 48;
pub(crate) const H_FLAGS: usize = 56;
pub(crate) const H_WRITER: usize = 60;
pub(crate) const H_GENERATION: usize = 64;
pub(crate) const H_LIVE: usize = 72;
pub(crate) const H_TOMBSTONES: usize = 80;
pub(crate) const H_CAPACITY: usize = 88;
pub(crate) const H_MUTEX: usize = 128;

// The header's flags.
/// Some string key may be missing from the table (it was full, or is being loaded): a miss
/// is [`NotMirrored`](super::Lookup::NotMirrored), not `Absent`.
pub(crate) const INCOMPLETE: u32 = 1;
/// The server stopped, or replaced this table with a new one: readers must open again.
pub(crate) const RETIRED: u32 = 2;
/// The writer could not keep the table up to date (its lock failed): nothing is to be
/// believed; every lookup is `NotMirrored`.
pub(crate) const BROKEN: u32 = 4;

// A bucket's fields (byte offsets in its slot).
pub(crate) const B_VERSION: usize = 0;
pub(crate) const B_HASH: usize = 8;
pub(crate) const B_EXPIRES: usize = 16;
pub(crate) const B_KEY_LEN: usize = 24;
pub(crate) const B_VAL_LEN: usize = 28;
pub(crate) const B_STATE: usize = 32;
pub(crate) const B_KEY: usize = 40;

// A bucket's states.
pub(crate) const EMPTY: u32 = 0;
pub(crate) const TOMBSTONE: u32 = 1;
pub(crate) const FOUND: u32 = 2;
pub(crate) const NOT_MIRRORED: u32 = 3;

/// The longest key a table may be made for.
pub const MAX_KEY_LIMIT: usize = 4096;
/// The largest value a table may be made for.
pub const MAX_VALUE_LIMIT: usize = 1 << 20;
/// The most entries a table may be made for.
pub const MAX_CAPACITY: usize = 1 << 28;
/// The longest probe sequence: a key is placed within this many buckets of its home, or not
/// at all (and the table is marked incomplete).
pub(crate) const MAX_PROBE: u64 = 64;

/// The table's shape, from the options (the writer) or the header (a reader, checked against
/// the mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) buckets: u64,
    pub(crate) slot: u64,
    pub(crate) max_key: u32,
    pub(crate) max_value: u32,
    pub(crate) max_probe: u32,
    pub(crate) capacity: u64,
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

impl Geometry {
    /// The shape the writer makes: `capacity` entries in half as many buckets again (at most
    /// two thirds full: short probes), slots of whole cache lines.
    pub(crate) fn for_options(opts: &MirrorOptions) -> ipckit::Result<Geometry> {
        let bad = |why: String| {
            Err(
                Error::new(ErrorKind::InvalidInput, "sizing the kv mirror", why).hint(format!(
                    "give a capacity of 1 to {MAX_CAPACITY}, a max_key of 1 to \
                     {MAX_KEY_LIMIT} and a max_value of at most {MAX_VALUE_LIMIT}"
                )),
            )
        };
        if opts.capacity == 0 || opts.capacity > MAX_CAPACITY {
            return bad(format!("a capacity of {} entries", opts.capacity));
        }
        if opts.max_key == 0 || opts.max_key > MAX_KEY_LIMIT {
            return bad(format!("a max_key of {} bytes", opts.max_key));
        }
        if opts.max_value > MAX_VALUE_LIMIT {
            return bad(format!("a max_value of {} bytes", opts.max_value));
        }
        let capacity = opts.capacity as u64;
        let buckets = capacity + capacity.div_ceil(2);
        let g = Geometry {
            buckets,
            slot: 0,
            max_key: opts.max_key as u32,
            max_value: opts.max_value as u32,
            max_probe: buckets.min(MAX_PROBE) as u32,
            capacity,
        };
        Ok(Geometry {
            slot: round_up(
                g.value_offset() as u64 + round_up(opts.max_value as u64, 8),
                64,
            ),
            ..g
        })
    }

    /// Where a slot's value starts: after the key, rounded to a word.
    pub(crate) fn value_offset(&self) -> usize {
        B_KEY + round_up(u64::from(self.max_key), 8) as usize
    }

    /// The bytes the table takes, header included (`None` if that overflows).
    pub(crate) fn len(&self) -> Option<usize> {
        let b = self.buckets.checked_mul(self.slot)?;
        usize::try_from(b).ok()?.checked_add(HEADER_LEN)
    }

    /// Whether the shape is one a table can have, and fits in `mapped` bytes: what a reader
    /// checks before it trusts any offset.
    pub(crate) fn fits(&self, mapped: usize) -> bool {
        let limits = self.buckets >= 1
            && self.capacity >= 1
            && self.capacity <= self.buckets
            && self.max_key >= 1
            && self.max_key as usize <= MAX_KEY_LIMIT
            && self.max_value as usize <= MAX_VALUE_LIMIT
            && self.max_probe >= 1
            && u64::from(self.max_probe) <= self.buckets
            && self.slot.is_multiple_of(64);
        limits
            && self.slot >= self.value_offset() as u64 + round_up(u64::from(self.max_value), 8)
            && self.len().is_some_and(|l| l <= mapped)
    }
}

/// The key's word `i` (little-endian, zero past its end): keys are stored, compared and hashed
/// a word at a time.
#[inline]
pub(crate) fn word(key: &[u8], i: usize) -> u64 {
    let at = i * 8;
    match key.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
        None => {
            let mut b = [0u8; 8];
            let rest = &key[at.min(key.len())..];
            b[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(b)
        }
    }
}

/// The key's hash under the table's `seed`: FxHash's round over words, then MurmurHash3's
/// finaliser (the bucket is taken from the high bits).
#[inline]
pub(crate) fn hash(seed: u64, key: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(K);
    for i in 0..key.len().div_ceil(8) {
        h = (h.rotate_left(5) ^ word(key, i)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The bucket a hash starts its probe at: `hash * buckets / 2^64` (no division, any count).
#[inline]
pub(crate) fn home(h: u64, buckets: u64) -> u64 {
    ((u128::from(h) * u128::from(buckets)) >> 64) as u64
}

/// A table's memory: a base pointer and the geometry that bounds every offset used with it.
/// Every accessor takes offsets the geometry proves in bounds (a bucket index below
/// `buckets`, a field offset inside a slot), so no value read from the memory ever becomes an
/// address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    base: *mut u8,
    pub(crate) geo: Geometry,
}

impl Memory {
    /// # Safety
    /// `base` points to a mapping of at least `geo.len()` bytes, aligned to 64, that stays
    /// mapped as long as the `Memory` is used.
    pub(crate) unsafe fn new(base: *mut u8, geo: Geometry) -> Memory {
        Memory { base, geo }
    }

    /// The header's `u64` at `off` (one of the `H_` constants).
    #[inline]
    pub(crate) fn h64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= HEADER_LEN && off.is_multiple_of(8));
        // SAFETY: `off` is a header field: inside the mapping (at least HEADER_LEN bytes),
        // aligned (the mapping is page-aligned). On a reader's read-only mapping only
        // `Relaxed` loads of at most register width are allowed (std::sync::atomic, "Atomic
        // accesses to read-only memory"): the reader loads `Relaxed` and fences `Acquire`
        // after; only the writer, which maps it writable, stores or loads otherwise.
        unsafe { AtomicU64::from_ptr(self.base.add(off).cast()) }
    }

    /// The header's `u32` at `off`.
    #[inline]
    pub(crate) fn h32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= HEADER_LEN && off.is_multiple_of(4));
        // SAFETY: as for `h64`.
        unsafe { AtomicU32::from_ptr(self.base.add(off).cast()) }
    }

    /// The start of bucket `i` (`i < buckets`).
    #[inline]
    fn slot(&self, i: u64) -> *mut u8 {
        assert!(i < self.geo.buckets, "bucket {i} of {}", self.geo.buckets);
        // SAFETY: i < buckets and HEADER_LEN + buckets * slot <= the mapping's length (the
        // geometry was checked against it), so the slot is inside the mapping.
        unsafe { self.base.add(HEADER_LEN + (i * self.geo.slot) as usize) }
    }

    /// Bucket `i`'s `u64` field at `off` (8-aligned, inside the slot).
    #[inline]
    pub(crate) fn b64(&self, i: u64, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= self.geo.slot as usize && off.is_multiple_of(8));
        // SAFETY: inside the slot (the callers' offsets are fields or words below
        // value_offset + round8(max_value) <= slot), aligned (slots are multiples of 64 from a
        // page-aligned start); read-only loads as in `h64`.
        unsafe { AtomicU64::from_ptr(self.slot(i).add(off).cast()) }
    }

    /// Bucket `i`'s `u32` field at `off`.
    #[inline]
    pub(crate) fn b32(&self, i: u64, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= self.geo.slot as usize && off.is_multiple_of(4));
        // SAFETY: as for `b64`.
        unsafe { AtomicU32::from_ptr(self.slot(i).add(off).cast()) }
    }

    /// Bucket `i`'s key word `w` (`w < ceil(max_key / 8)`).
    #[inline]
    pub(crate) fn key_word(&self, i: u64, w: usize) -> &AtomicU64 {
        debug_assert!(w < (self.geo.max_key as usize).div_ceil(8));
        self.b64(i, B_KEY + 8 * w)
    }

    /// Bucket `i`'s value word `w` (`w < ceil(max_value / 8)`).
    #[inline]
    pub(crate) fn value_word(&self, i: u64, w: usize) -> &AtomicU64 {
        debug_assert!(w < (self.geo.max_value as usize).div_ceil(8));
        self.b64(i, self.geo.value_offset() + 8 * w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_pad_with_zeros() {
        assert_eq!(word(b"abcdefghij", 0), u64::from_le_bytes(*b"abcdefgh"));
        assert_eq!(
            word(b"abcdefghij", 1),
            u64::from_le_bytes(*b"ij\0\0\0\0\0\0")
        );
        assert_eq!(word(b"", 0), 0);
    }

    #[test]
    fn the_seed_and_every_byte_change_the_hash() {
        assert_ne!(hash(1, b"key"), hash(2, b"key"));
        assert_ne!(hash(1, b"key"), hash(1, b"kez"));
        assert_ne!(hash(1, b"k"), hash(1, b"k\0"), "the length counts");
        for n in [1u64, 7, 1000, 98_304] {
            for k in 0..1000u32 {
                assert!(home(hash(9, &k.to_le_bytes()), n) < n);
            }
        }
    }

    #[test]
    fn the_default_shape_fits_itself() {
        let g = Geometry::for_options(&MirrorOptions::default()).unwrap();
        assert_eq!(g.buckets, 98_304);
        assert!(g.slot >= 40 + 64 + 1024 && g.slot.is_multiple_of(64));
        assert!(g.fits(g.len().unwrap()));
        assert!(!g.fits(g.len().unwrap() - 1));
    }
}
