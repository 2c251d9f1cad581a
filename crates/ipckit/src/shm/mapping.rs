//! Shared mappings: `mmap(2)` of a shared-memory object, a memfd or a file with `MAP_SHARED`,
//! an anonymous shared mapping that a `fork` child shares, and (through [`crate::shm::sysv`])
//! System V attachments. One type, [`Mapping`], for all of them.
//!
//! Memory shared with another process can change under this one at any time, so a
//! [`Mapping`] gives safe code no `&[u8]` or `&T` of plain data into it (that would promise Rust it does not
//! change). Safe access is by copy ([`Mapping::read_at`], [`Mapping::write_at`]), by plain-data
//! value ([`Mapping::read_pod`], [`Mapping::write_pod`], for `bytemuck::Pod` types) and by
//! atomics ([`Mapping::atomic_u32`], [`Mapping::atomic_u64`]). Copies of memory that another
//! process writes at the same moment can be torn: guard them with a semaphore or a lock.
//!
//! Types built on a mapping may hand out references where a protocol keeps every other
//! writer away while they live, and say so. The shared-memory channel does: a
//! [`channel::Msg`](crate::channel::Msg) derefs to `&[u8]` and a
//! [`channel::Loan`](crate::channel::Loan) to `&mut [u8]` in the ring, because a slot is the
//! loaning sender's alone from its claim to its commit, and the receiver's alone from the
//! commit until the `Msg` drops; a bulk message is a memfd of its own, sealed against
//! shrinking and growing, that its sender lets go of when it commits. That holds for peers
//! that follow the channel's protocol: a process that maps the ring and ignores it, or keeps
//! a bulk memfd's descriptor, can still write there (the bulk memfd is not sealed against
//! writing), which is why a channel's peers must trust each other. The unsafe
//! [`Mapping::as_slice`] and [`Mapping::as_mut_slice`] leave the same promise to their
//! caller.
//!
//! ```
//! use ipckit::shm::mapping::Mapping;
//! use std::sync::atomic::Ordering;
//! let m = Mapping::anonymous_shared(4096).unwrap();
//! m.write_at(8, b"hello").unwrap();
//! let mut buf = [0u8; 5];
//! m.read_at(8, &mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//! m.atomic_u32(0).unwrap().fetch_add(1, Ordering::SeqCst);
//! assert_eq!(m.read_pod::<u32>(0).unwrap(), 1);
//! ```

use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use rustix::mm::{MapFlags, MsyncFlags, ProtFlags};

use crate::error::{Context, Errno, Error, ErrorKind, Result};
use crate::object::Access;

/// How a mapping is released on drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// `munmap`.
    Unmap,
    /// `shmdt` (a System V attachment).
    Detach,
}

/// A shared mapping of `len` bytes, unmapped (or detached) on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    release: Release,
}

// SAFETY: the mapping is plain memory owned by this handle; every access through it is a copy,
// an atomic, or an unsafe method whose caller takes on the synchronisation.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access is by copy or atomics only.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, 0)`: `len` bytes of a POSIX
    /// shm object, a memfd or a file, read-only for `Access::ReadOnly`, writable too for
    /// `Access::ReadWrite`. `Access::WriteOnly` is refused
    /// ([`InvalidInput`](ErrorKind::InvalidInput)): a mapping is always readable. The
    /// descriptor must be open for the access asked for (EACCES otherwise).
    ///
    /// A writable mapping of a file reserves its pages first (`fallocate(fd, 0, 0, len)`, for
    /// what is not allocated yet: see [`crate::shm`]'s notes on space), so that a full
    /// filesystem is an error with errno ENOSPC here, not `SIGBUS` at the first write of a
    /// page that cannot be had. A read-only mapping cannot reserve (its descriptor may not
    /// write): reading a hole of a sparse file on a full tmpfs can still raise `SIGBUS`.
    /// See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [fallocate(2)](https://man7.org/linux/man-pages/man2/fallocate.2.html).
    pub fn map_fd<Fd: AsFd>(fd: Fd, len: usize, access: Access) -> Result<Self> {
        access.readable("mapping", format!("{len} bytes"))?;
        let writable = access.can_write();
        if len == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "mapping",
                "a mapping cannot be empty",
            )
            .hint("give the object a size first (ftruncate)"));
        }
        // Pages past the end of a file fault with SIGBUS when touched: refuse them here. (An
        // object another process shrinks later can still do that: seal a memfd against it.)
        let st = rustix::fs::fstat(&fd).during("mapping", "descriptor (fstat)")?;
        let is_file =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        if is_file && len as u64 > st.st_size as u64 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "mapping",
                format!(
                    "{len} bytes is more than the {} the object holds",
                    st.st_size
                ),
            )
            .hint("grow it first (ftruncate), or map less"));
        }
        if is_file && writable {
            // Only a lack of room stops the mapping: a descriptor that cannot reserve (opened
            // read-only, sealed, on a filesystem without fallocate) is mmap's to judge.
            let object = format!("{len} bytes (MAP_SHARED)");
            match crate::shm::reserve(fd.as_fd(), len as u64, "mapping", &object, "its filesystem")
            {
                Err(e) if matches!(e.errno(), Some(Errno::NOSPC | Errno::DQUOT)) => return Err(e),
                _ => {}
            }
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a new mapping at an address the kernel picks; nothing else refers to it yet.
        let ptr =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }
                .map_err(|e| {
                Error::os("mapping", e)
                    .object(format!("{len} bytes (MAP_SHARED)"))
                    .hint_if(
                        Errno::ACCESS,
                        "the descriptor was not opened for the access asked for",
                    )
            })?;
        Ok(Mapping {
            ptr: non_null(ptr)?,
            len,
            writable,
            release: Release::Unmap,
        })
    }

    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)`: zeroed
    /// memory that a `fork`ed child shares with its parent (and no unrelated process can reach:
    /// it has no name).
    /// See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
    pub fn anonymous_shared(len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "mapping",
                "a mapping cannot be empty",
            ));
        }
        // SAFETY: a new anonymous mapping; nothing else refers to it yet.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }
        .during("mapping", format!("{len} anonymous shared bytes"))?;
        Ok(Mapping {
            ptr: non_null(ptr)?,
            len,
            writable: true,
            release: Release::Unmap,
        })
    }

    /// Wraps a System V attachment (`shmat`), detached with `shmdt` on drop.
    ///
    /// # Safety
    /// `ptr` must be the address `shmat` returned for a segment of at least `len` bytes, not
    /// detached elsewhere.
    pub(crate) unsafe fn from_shmat(ptr: NonNull<u8>, len: usize, writable: bool) -> Self {
        Mapping {
            ptr,
            len,
            writable,
            release: Release::Detach,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: an empty mapping cannot be made.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte. Any access through it is the caller's to synchronise.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, offset: usize, len: usize, align: usize, write: bool) -> Result<*mut u8> {
        let op = if write {
            "writing to shared memory"
        } else {
            "reading shared memory"
        };
        if write && !self.writable {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                "the mapping is read-only",
            ));
        }
        let end = offset.checked_add(len).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!(
                    "{len} bytes at offset {offset} go past the end of the {}-byte mapping",
                    self.len
                ),
            ));
        }
        // SAFETY: offset + len <= self.len, so the pointer stays inside the mapping.
        let p = unsafe { self.ptr.as_ptr().add(offset) };
        if !(p as usize).is_multiple_of(align) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("offset {offset} is not aligned to {align} bytes"),
            ));
        }
        Ok(p)
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let p = self.check(offset, buf.len(), 1, false)?;
        // SAFETY: `p..p+len` is inside the mapping (checked) and does not overlap `buf`, which
        // is ordinary memory of this process.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the mapping at `offset`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        let p = self.check(offset, data.len(), 1, true)?;
        // SAFETY: `p..p+len` is inside a writable mapping (checked) and does not overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Reads a plain-data value at `offset` (any alignment).
    pub fn read_pod<T: bytemuck::Pod>(&self, offset: usize) -> Result<T> {
        let mut v = T::zeroed();
        self.read_at(offset, bytemuck::bytes_of_mut(&mut v))?;
        Ok(v)
    }

    /// Writes a plain-data value at `offset` (any alignment).
    pub fn write_pod<T: bytemuck::Pod>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_at(offset, bytemuck::bytes_of(value))
    }

    /// The `u32` at `offset` (4-byte aligned) as an atomic shared with every process mapping it.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        let p = self.check(offset, 4, 4, true)?;
        // SAFETY: in bounds and aligned (checked); AtomicU32 may alias memory other processes
        // access atomically, and lives as long as `&self` keeps the mapping.
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    /// The `u64` at `offset` (8-byte aligned) as an atomic shared with every process mapping it.
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        let p = self.check(offset, 8, 8, true)?;
        // SAFETY: as for `atomic_u32`.
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) })
    }

    /// A pointer to a `T` at `offset`, bounds- and alignment-checked, for the types that live
    /// in shared memory and synchronise themselves (process-shared mutexes, semaphores).
    pub(crate) fn ptr_at<T>(&self, offset: usize) -> Result<*mut T> {
        self.check(
            offset,
            std::mem::size_of::<T>(),
            std::mem::align_of::<T>(),
            true,
        )
        .map(|p| p.cast())
    }

    /// The whole mapping as bytes.
    ///
    /// # Safety
    /// No process may write the mapping while the slice lives.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the caller guarantees no concurrent writes; the range is the mapping.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole mapping as mutable bytes.
    ///
    /// # Safety
    /// No other process or thread may read or write the mapping while the slice lives.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the caller guarantees exclusive access; the range is the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// `msync(addr, len, MS_SYNC)`: writes a file-backed mapping's changes to the file now.
    /// See [msync(2)](https://man7.org/linux/man-pages/man2/msync.2.html).
    pub fn flush(&self) -> Result<()> {
        // SAFETY: the range is exactly this live mapping.
        unsafe { rustix::mm::msync(self.ptr.as_ptr().cast(), self.len, MsyncFlags::SYNC) }
            .during("flushing mapping", format!("of {} bytes (msync)", self.len))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        match self.release {
            // SAFETY: this handle made the mapping and nothing borrows it past `&self`.
            Release::Unmap => unsafe {
                let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
            },
            // SAFETY: the address came from shmat (see `from_shmat`).
            Release::Detach => unsafe {
                libc::shmdt(self.ptr.as_ptr().cast());
            },
        }
    }
}

fn non_null(p: *mut std::ffi::c_void) -> Result<NonNull<u8>> {
    NonNull::new(p.cast()).ok_or_else(|| {
        Error::new(
            ErrorKind::Os,
            "mapping",
            "the kernel returned a null address",
        )
    })
}
