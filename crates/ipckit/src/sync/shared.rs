//! Typed shared memory: a plain-data value `T` in a mapping that the handle owns, either
//! behind a robust process-shared mutex ([`SharedMutex<T>`], whose guard derefs to `T` as
//! `std::sync::Mutex<T>`'s does) or as a lock-free value read and written whole
//! ([`Shared<T>`]).
//!
//! Both own their [`Mapping`] (of a memfd, a POSIX or System V shared-memory object, a file, or
//! anonymous shared memory across `fork`), so they can be kept in a struct, returned, or moved
//! to another thread like any value; the raw forms ([`RobustMutex`](crate::sync::mutex::RobustMutex)
//! and the others) borrow their mapping and reach the data by offsets. One process
//! [`init`](SharedMutex::init)s the memory, the others [`attach`](SharedMutex::attach) to their
//! mapping of it.
//!
//! # Trust model
//! `T` must be [`bytemuck::Pod`]: every bit pattern is a valid `T` (no `bool`, no enum, no
//! reference, no padding), so nothing another process writes into the memory can make the value
//! invalid for this one: a peer can garble the data, never make it a value Rust forbids.
//! What the types promise beyond that rests on every process that maps the memory keeping to
//! the protocol, as with every lock in [`crate::sync`]:
//! - [`SharedMutex::init`] is `unsafe`: initialising memory another handle is using would
//!   unlock it under its holder. [`SharedMutex::anonymous`], on new memory, is safe.
//! - A [`SharedMutexGuard`] hands out `&T` and `&mut T` only while this thread holds the robust
//!   mutex. The lock is advisory: a process (or a second mapping in this one, written with
//!   [`Mapping::write_at`](crate::shm::mapping::Mapping::write_at) for instance) that writes
//!   the memory without taking it breaks the exclusivity a `&mut T` stands for, and this
//!   process may then see the value change under it. A `SharedMutex` does not lend out its own
//!   mapping; other mappings of the same memory are the caller's to keep out of it.
//! - A [`Shared<T>`] never hands out a reference at all: [`load`](Shared::load) and
//!   [`store`](Shared::store) copy the whole value with atomic word-sized accesses, which are
//!   defined whatever other processes do at the same moment. A load that overlaps a store can
//!   see some words of the old value and some of the new (still a valid `T`, since it is
//!   `Pod`); when the fields must agree with each other, use a `SharedMutex`.
//!
//! # When a holder dies
//! The mutex is robust: if a process dies holding a guard, the next locker gets the mutex and
//! its guard's [`owner_died`](SharedMutexGuard::owner_died) is true. The value is as the dead
//! holder left it (possibly half-updated); check or repair it through the guard, then call
//! [`make_consistent`](SharedMutexGuard::make_consistent). A guard dropped without it leaves the
//! mutex unrecoverable (every later lock fails with `ENOTRECOVERABLE`) until the memory is
//! initialised again. See [`crate::sync::mutex`].
//!
//! ```
//! use ipckit::sync::shared::{Shared, SharedMutex};
//! use std::time::Duration;
//!
//! #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Account {
//!     balance: u64,
//!     updates: u64,
//! }
//!
//! // Anonymous shared memory, shared with `fork`ed children. For unrelated processes, map a
//! // memfd or a POSIX shm object of `SharedMutex::<Account>::footprint()` bytes and give the
//! // mapping to `SharedMutex::init` in one process and `SharedMutex::attach` in the others.
//! let account = SharedMutex::anonymous(Account::default()).unwrap();
//! {
//!     let mut a = account.lock().unwrap();
//!     assert!(!a.owner_died());
//!     a.balance += 100;
//!     a.updates += 1;
//!     // Held: another thread (or process) does not get it.
//!     std::thread::scope(|s| {
//!         s.spawn(|| {
//!             assert!(account.try_lock().unwrap().is_none());
//!             assert!(account.lock_timeout(Duration::from_millis(10)).unwrap().is_none());
//!         });
//!     });
//! } // unlocked here
//! assert_eq!(account.lock().unwrap().balance, 100);
//!
//! // A lock-free value, read and written whole.
//! let seen = Shared::anonymous(0u64).unwrap();
//! seen.store(7);
//! assert_eq!(seen.load(), 7);
//! ```

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

use bytemuck::Pod;

use crate::error::{Error, ErrorKind, Result};
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::sync::mutex::RawMutex;

/// The words written before the value: which type the memory was initialised for (its size
/// and alignment), so that a process attaching with another `T` is refused.
fn tag<T>() -> u64 {
    ((std::mem::size_of::<T>() as u64) << 32) | std::mem::align_of::<T>() as u64
}

fn describe(tag: u64) -> String {
    format!(
        "a {}-byte type aligned to {}",
        tag >> 32,
        tag & u64::from(u32::MAX)
    )
}

fn too_small(op: &'static str, what: &str, len: usize, need: usize) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        op,
        format!("the mapping holds {len} bytes, {what} needs {need}"),
    )
    .hint("map at least footprint() bytes")
}

/// What `init` and `attach` of both kinds check first: the mapping holds `need` bytes (the
/// footprint of `what`).
fn check_fits(op: &'static str, what: &str, mapping: &Mapping, need: usize) -> Result<()> {
    if mapping.len() < need {
        return Err(too_small(op, what, mapping.len(), need));
    }
    Ok(())
}

/// Writes `T`'s type tag at `offset` (before the marker that publishes it).
fn write_tag<T>(mapping: &Mapping, offset: usize) -> Result<()> {
    mapping
        .atomic_u64(offset)?
        .store(tag::<T>(), Ordering::Relaxed);
    Ok(())
}

/// Refuses memory whose type tag at `offset` is not `T`'s (read after the marker).
fn check_tag<T>(op: &'static str, mapping: &Mapping, offset: usize) -> Result<()> {
    let found = mapping.atomic_u64(offset)?.load(Ordering::Relaxed);
    if found != tag::<T>() {
        return Err(wrong_type(op, found, tag::<T>()));
    }
    Ok(())
}

fn wrong_type(op: &'static str, found: u64, want: u64) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        op,
        format!(
            "the memory holds {}, not {}",
            describe(found),
            describe(want)
        ),
    )
    .hint("attach with the type the memory was initialised with")
}

/// The Debug of both handles: the kind, the value's type and the mapping's length.
fn debug_handle<T>(
    f: &mut std::fmt::Formatter<'_>,
    kind: &str,
    mapping: &Mapping,
) -> std::fmt::Result {
    f.debug_struct(kind)
        .field("type", &std::any::type_name::<T>())
        .field("len", &mapping.len())
        .finish_non_exhaustive()
}

/// A `T` behind a robust, process-shared mutex, in a mapping this handle owns (unmapped on
/// drop). The guard from [`lock`](SharedMutex::lock) derefs to `T`. See the
/// [module docs](self) for the trust model.
pub struct SharedMutex<T: Pod> {
    raw: RawMutex,
    data: *mut T,
    mapping: Mapping,
    _value: PhantomData<T>,
}

// SAFETY: the mapping is owned and stays mapped while the handle lives wherever it moves; the
// mutex is process-shared, made to be locked from any thread; the value is reached only under
// the lock, as with std's Mutex<T: Send>.
unsafe impl<T: Pod + Send> Send for SharedMutex<T> {}
// SAFETY: as above: `&SharedMutex` hands out `&T`/`&mut T` only to the thread holding the lock.
unsafe impl<T: Pod + Send> Sync for SharedMutex<T> {}

impl<T: Pod> std::fmt::Debug for SharedMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_handle::<T>(f, "SharedMutex", &self.mapping)
    }
}

impl<T: Pod> SharedMutex<T> {
    /// Where the type tag sits: after the mutex and its marker.
    fn tag_offset() -> usize {
        RawMutex::footprint().next_multiple_of(8)
    }

    /// Where the value sits.
    fn data_offset() -> usize {
        (Self::tag_offset() + 8).next_multiple_of(std::mem::align_of::<T>())
    }

    /// Bytes a mapping must hold for a `SharedMutex<T>`: the mutex, a type tag and the value.
    pub fn footprint() -> usize {
        Self::data_offset() + std::mem::size_of::<T>()
    }

    /// `pthread_mutex_init` (robust, process-shared, error-checking) at the start of `mapping`,
    /// with `value` written after it: makes the memory a `SharedMutex<T>` holding `value`, and
    /// takes the mapping. Do it once, before other processes [`attach`](SharedMutex::attach).
    /// The mapping must be writable and hold [`footprint`](SharedMutex::footprint) bytes.
    /// [`anonymous`](SharedMutex::anonymous) does this for new memory, safely.
    ///
    /// # Safety
    /// No `SharedMutex` may be using this memory, in this process or another (through this
    /// mapping or another mapping of the same object): initialising a mutex while a guard
    /// is alive unlocks it under its holder, and the next locker gets a second `&mut T` to the
    /// same value.
    /// See [pthread_mutex_init(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_init.3p.html).
    pub unsafe fn init(mapping: Mapping, value: T) -> Result<Self> {
        check_fits(
            "initialising shared mutex",
            "this SharedMutex",
            &mapping,
            Self::footprint(),
        )?;
        // The tag and the value first: the mutex's marker, written last with Release, is what
        // `attach` checks, so a process that sees it sees them too.
        write_tag::<T>(&mapping, Self::tag_offset())?;
        mapping.write_pod(Self::data_offset(), &value)?;
        let raw = RawMutex::init(&mapping, 0)?;
        Self::with(mapping, raw)
    }

    /// The `SharedMutex<T>` another process [`init`](SharedMutex::init)ed in its mapping of the
    /// same memory (no system call); takes the mapping. Memory no `init` marked, or marked for a
    /// type of another size or alignment, is refused with [`ErrorKind::InvalidInput`].
    pub fn attach(mapping: Mapping) -> Result<Self> {
        let op = "attaching to shared mutex";
        check_fits(op, "this SharedMutex", &mapping, Self::footprint())?;
        let raw = RawMutex::attach(&mapping, 0)?;
        check_tag::<T>(op, &mapping, Self::tag_offset())?;
        Self::with(mapping, raw)
    }

    /// `mmap(MAP_SHARED | MAP_ANONYMOUS)` of [`footprint`](SharedMutex::footprint) bytes, then
    /// [`init`](SharedMutex::init): a `SharedMutex<T>` that this process and the children it
    /// `fork`s share (no unrelated process can reach it).
    /// See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
    pub fn anonymous(value: T) -> Result<Self> {
        let mapping = Mapping::anonymous_shared(Self::footprint())?;
        // SAFETY: the mapping is new: no SharedMutex uses it yet.
        unsafe { Self::init(mapping, value) }
    }

    fn with(mapping: Mapping, raw: RawMutex) -> Result<Self> {
        let data = mapping.ptr_at::<T>(Self::data_offset())?;
        Ok(SharedMutex {
            raw,
            data,
            mapping,
            _value: PhantomData,
        })
    }

    /// Gives the mapping back (unlocked: no guard can outlive the handle), for example to
    /// [`init`](SharedMutex::init) it again after the mutex was left unrecoverable.
    pub fn into_mapping(self) -> Mapping {
        self.mapping
    }

    fn guard(&self, owner_died: Option<bool>) -> Option<SharedMutexGuard<'_, T>> {
        owner_died.map(|owner_died| SharedMutexGuard {
            mutex: self,
            owner_died,
            inconsistent: owner_died,
            _not_send: PhantomData,
        })
    }

    /// `pthread_mutex_lock`: waits for the mutex as long as it takes and gives a guard that
    /// derefs to the value. The guard tells whether the previous holder died holding it. Fails
    /// with `ENOTRECOVERABLE` for a mutex left unrecoverable, `EDEADLK` if this thread holds it
    /// already. See [pthread_mutex_lock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_lock.3p.html).
    pub fn lock(&self) -> Result<SharedMutexGuard<'_, T>> {
        let got = self.raw.lock_until(Deadline::NEVER)?;
        self.guard(got).ok_or_else(|| {
            Error::new(
                ErrorKind::Os,
                "locking shared mutex",
                "pthread_mutex_lock returned without the mutex",
            )
        })
    }

    /// `pthread_mutex_trylock`: the guard if the mutex is free now, `Ok(None)` if another
    /// holds it (`EBUSY`).
    /// See [pthread_mutex_lock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_lock.3p.html).
    pub fn try_lock(&self) -> Result<Option<SharedMutexGuard<'_, T>>> {
        self.lock_deadline(Deadline::now())
    }

    /// `pthread_mutex_clocklock` on `CLOCK_MONOTONIC`: waits at most `timeout`; `Ok(None)` when
    /// another still held it (`ETIMEDOUT`).
    /// See [pthread_mutex_timedlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_timedlock.3p.html).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<SharedMutexGuard<'_, T>>> {
        self.lock_deadline(Deadline::after(timeout))
    }

    /// `pthread_mutex_clocklock` until `deadline` (`pthread_mutex_trylock` for one already
    /// passed, `pthread_mutex_lock` for [`Deadline::NEVER`]); `Ok(None)` when another still
    /// held it.
    /// See [pthread_mutex_timedlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_timedlock.3p.html).
    pub fn lock_deadline(
        &self,
        deadline: impl Into<Deadline>,
    ) -> Result<Option<SharedMutexGuard<'_, T>>> {
        Ok(self.guard(self.raw.lock_until(deadline.into())?))
    }
}

/// The held lock of a [`SharedMutex<T>`], which derefs to the `T`; `pthread_mutex_unlock` on
/// drop. Not `Send`: a pthread mutex is unlocked by the thread that locked it.
/// See [pthread_mutex_unlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_unlock.3p.html).
pub struct SharedMutexGuard<'m, T: Pod> {
    mutex: &'m SharedMutex<T>,
    owner_died: bool,
    inconsistent: bool,
    _not_send: PhantomData<*mut ()>,
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for SharedMutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMutexGuard")
            .field("value", &**self)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl<T: Pod> SharedMutexGuard<'_, T> {
    /// True when the previous holder died holding the mutex (`EOWNERDEAD`): the value is as it
    /// left it, possibly half-updated. Stays true after
    /// [`make_consistent`](SharedMutexGuard::make_consistent).
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// `pthread_mutex_consistent`: after checking or repairing the value, marks the mutex usable
    /// again. Without it, dropping this guard makes the mutex unrecoverable. Does nothing when
    /// the previous holder did not die.
    /// See [pthread_mutex_consistent(3)](https://man7.org/linux/man-pages/man3/pthread_mutex_consistent.3.html).
    pub fn make_consistent(&mut self) -> Result<()> {
        if self.inconsistent {
            self.mutex.raw.make_consistent()?;
            self.inconsistent = false;
        }
        Ok(())
    }
}

impl<T: Pod> Deref for SharedMutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `data` is in bounds and aligned for T (checked by ptr_at) in a mapping the
        // mutex owns, and this thread holds the mutex, which every process that touches the
        // value takes first (the trust model in the module docs). T is Pod: whatever bytes
        // are there are a valid T.
        unsafe { &*self.mutex.data }
    }
}

impl<T: Pod> DerefMut for SharedMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the lock is exclusive (error-checking: this thread cannot take
        // a second guard), and `&mut self` makes this the one reference through this guard.
        unsafe { &mut *self.mutex.data }
    }
}

impl<T: Pod> Drop for SharedMutexGuard<'_, T> {
    fn drop(&mut self) {
        // This thread holds the mutex (the guard is not Send), which stays mapped while the
        // SharedMutex the guard borrows lives.
        self.mutex.raw.unlock();
    }
}

/// "IPKV": the marker `init` writes once the value is in place.
const SHARED_MAGIC: u32 = 0x4950_4b56;
/// The marker sits at 0, the type tag at 8, the value from 16 (or its alignment).
const SHARED_TAG: usize = 8;

/// A `T` in a mapping this handle owns (unmapped on drop), read and written whole without a
/// lock: every byte goes through an atomic access, so a load and a store at the same moment in
/// two processes are defined, but the load may mix words of the old and the new value. See the
/// [module docs](self).
pub struct Shared<T: Pod> {
    data: *mut u8,
    mapping: Mapping,
    _value: PhantomData<T>,
}

// SAFETY: the mapping is owned; the value is reached only by atomic accesses.
unsafe impl<T: Pod + Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Pod + Send> Sync for Shared<T> {}

impl<T: Pod> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_handle::<T>(f, "Shared", &self.mapping)
    }
}

/// The widest atomic access the value's size and alignment allow.
#[derive(Clone, Copy)]
enum Word {
    U64,
    U32,
    U8,
}

impl Word {
    fn of<T>() -> (Word, usize) {
        let (size, align) = (std::mem::size_of::<T>(), std::mem::align_of::<T>());
        if align >= 8 && size.is_multiple_of(8) {
            (Word::U64, 8)
        } else if align >= 4 && size.is_multiple_of(4) {
            (Word::U32, 4)
        } else {
            (Word::U8, 1)
        }
    }
}

impl<T: Pod> Shared<T> {
    fn data_offset() -> usize {
        16usize.next_multiple_of(std::mem::align_of::<T>())
    }

    /// Bytes a mapping must hold for a `Shared<T>`: a marker, a type tag and the value.
    pub fn footprint() -> usize {
        Self::data_offset() + std::mem::size_of::<T>()
    }

    /// Writes a marker, a type tag and `value` at the start of `mapping` and takes it. Do it
    /// once, before other processes [`attach`](Shared::attach). The mapping must be writable
    /// and hold [`footprint`](Shared::footprint) bytes. No system call.
    pub fn init(mapping: Mapping, value: T) -> Result<Self> {
        check_fits(
            "initialising shared value",
            "this Shared value",
            &mapping,
            Self::footprint(),
        )?;
        let magic = mapping.atomic_u32(0)?;
        magic.store(0, Ordering::Relaxed);
        write_tag::<T>(&mapping, SHARED_TAG)?;
        let shared = Self::with(mapping)?;
        shared.store(value);
        // Release: a process that sees the marker sees the tag and the value.
        shared
            .mapping
            .atomic_u32(0)?
            .store(SHARED_MAGIC, Ordering::Release);
        Ok(shared)
    }

    /// The `Shared<T>` another process [`init`](Shared::init)ed in its mapping of the same
    /// memory; takes the mapping. Memory no `init` marked, or marked for a type of another size
    /// or alignment, is refused with [`ErrorKind::InvalidInput`]. No system call.
    pub fn attach(mapping: Mapping) -> Result<Self> {
        let op = "attaching to shared value";
        check_fits(op, "this Shared value", &mapping, Self::footprint())?;
        if mapping.atomic_u32(0)?.load(Ordering::Acquire) != SHARED_MAGIC {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                "no shared value was initialised there",
            )
            .hint("initialise it first (init) in one process, then attach in the others"));
        }
        check_tag::<T>(op, &mapping, SHARED_TAG)?;
        Self::with(mapping)
    }

    /// `mmap(MAP_SHARED | MAP_ANONYMOUS)` of [`footprint`](Shared::footprint) bytes, then
    /// [`init`](Shared::init): a value this process and the children it `fork`s share.
    /// See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
    pub fn anonymous(value: T) -> Result<Self> {
        Self::init(Mapping::anonymous_shared(Self::footprint())?, value)
    }

    fn with(mapping: Mapping) -> Result<Self> {
        // In bounds, writable and aligned for T (the mapping starts on a page).
        let data = mapping.ptr_at::<T>(Self::data_offset())?.cast::<u8>();
        Ok(Shared {
            data,
            mapping,
            _value: PhantomData,
        })
    }

    /// Gives the mapping back.
    pub fn into_mapping(self) -> Mapping {
        self.mapping
    }

    /// Copies the value out, word by word (atomic loads, then an acquire fence: what a
    /// [`store`](Shared::store) wrote before its words were seen is visible). A load that
    /// overlaps a store can mix words of both.
    pub fn load(&self) -> T {
        let mut value = T::zeroed();
        let out = bytemuck::bytes_of_mut(&mut value);
        let (word, n) = Word::of::<T>();
        for (i, chunk) in out.chunks_exact_mut(n).enumerate() {
            // SAFETY: `data + i * n` is inside the value (bounds checked by ptr_at), aligned
            // to `n` (the value is aligned to at least `n`, and `i * n` is a multiple of it),
            // in a mapping this handle owns; every access to these bytes is atomic.
            unsafe {
                let p = self.data.add(i * n);
                match word {
                    Word::U64 => chunk.copy_from_slice(
                        &AtomicU64::from_ptr(p.cast())
                            .load(Ordering::Relaxed)
                            .to_ne_bytes(),
                    ),
                    Word::U32 => chunk.copy_from_slice(
                        &AtomicU32::from_ptr(p.cast())
                            .load(Ordering::Relaxed)
                            .to_ne_bytes(),
                    ),
                    Word::U8 => chunk[0] = AtomicU8::from_ptr(p).load(Ordering::Relaxed),
                }
            }
        }
        fence(Ordering::Acquire);
        value
    }

    /// Copies `value` in, word by word (a release fence, then atomic stores).
    pub fn store(&self, value: T) {
        fence(Ordering::Release);
        let (word, n) = Word::of::<T>();
        for (i, chunk) in bytemuck::bytes_of(&value).chunks_exact(n).enumerate() {
            // SAFETY: as in `load`.
            unsafe {
                let p = self.data.add(i * n);
                match word {
                    Word::U64 => AtomicU64::from_ptr(p.cast()).store(
                        u64::from_ne_bytes(chunk.try_into().expect("8 bytes")),
                        Ordering::Relaxed,
                    ),
                    Word::U32 => AtomicU32::from_ptr(p.cast()).store(
                        u32::from_ne_bytes(chunk.try_into().expect("4 bytes")),
                        Ordering::Relaxed,
                    ),
                    Word::U8 => AtomicU8::from_ptr(p).store(chunk[0], Ordering::Relaxed),
                }
            }
        }
    }
}
