//! `send`, `recv` and `rm` for the named kernel objects: POSIX and System V message queues and
//! shared memory. These are opened, never bound: `recv` does not create them, and `send`
//! creates one only with `--create`, leaving it in place (an object made on the command line
//! must outlive the command; `ipckit rm URI` removes it) once the command has done its work:
//! one that fails removes what it made. `--create` uses an existing object only if it is
//! this user's and no wider than `--mode`, unless `--trust-existing`.

use std::io;
use std::time::Duration;

use anyhow::{Result, bail};
use ipckit::mq::posix::{self, PosixMq};
use ipckit::mq::sysv::{self, SysvMq, TypeFilter};
use ipckit::shm::posix::PosixShm;
use ipckit::shm::sysv::SysvShm;
use ipckit::shm::{self, mapping::Mapping};
use ipckit::{Access, Deadline};

use crate::endpoint::Endpoint;
use crate::output::{self, Peer};

/// The object flags of `send` and `recv`.
#[derive(Debug, Clone, Default)]
pub struct ObjectOpts {
    /// POSIX queue priority (send).
    pub priority: u32,
    /// System V message type: send uses it as the type (> 0); recv as msgrcv's msgtyp.
    pub mtype: i64,
    /// recv: MSG_EXCEPT with `mtype`.
    pub except: bool,
    /// Shared memory: where to write or read.
    pub offset: usize,
    /// Shared memory recv: how many bytes (default: up to the first NUL byte, or the end).
    pub len: Option<usize>,
    /// send: create the object if it is missing (and keep it).
    pub create: bool,
    /// Shared memory size when `--create` makes it.
    pub size: Option<usize>,
    /// Mode of an object `--create` makes, and the widest an existing one may have.
    pub mode: u32,
    /// `--create`: use an existing object another user owns, or one wider than `mode`.
    pub trust_existing: bool,
}

/// Opens an object (`open`), or with `--create` the library's open-or-create (`open_or_create`):
/// an existing object must be this user's and no wider than `--mode` unless
/// `--trust-existing`, and a missing one is made. What is made is removed again by the
/// handle's drop if the command fails before [`Keep::keep`]: a failed command leaves nothing.
fn open_or_create<T>(
    create: bool,
    open: impl FnOnce() -> ipckit::Result<T>,
    open_or_create: impl FnOnce() -> ipckit::Result<T>,
) -> Result<T> {
    Ok(if create { open_or_create()? } else { open()? })
}

/// Sends each message to a queue as it comes from `messages` (lines of standard input are
/// sent as they are read), or writes them all into shared memory.
pub fn send(
    endpoint: &Endpoint,
    messages: &mut dyn Iterator<Item = Result<Vec<u8>>>,
    opts: &ObjectOpts,
    timeout: Option<Duration>,
) -> Result<()> {
    let timed_out = |i: usize| {
        anyhow::anyhow!(
            "sending to {endpoint}: timed out after {}: the queue stayed full ({i} messages sent, the rest were not)",
            humantime::format_duration(timeout.unwrap_or_default()),
        )
    };
    // Each message may wait the whole timeout for room.
    let deadline = || timeout.map_or(Deadline::NEVER, Deadline::after);
    match endpoint {
        Endpoint::PosixMq(name) => {
            let mut q = open_or_create(
                opts.create,
                || PosixMq::open(name, Access::WriteOnly),
                || {
                    let o = posix::Options::default()
                        .mode(opts.mode)
                        .trust_existing(opts.trust_existing);
                    PosixMq::open_or_create(name, Access::WriteOnly, &o)
                },
            )?;
            for (i, m) in messages.enumerate() {
                if !q.send_deadline(&m?, opts.priority, deadline())? {
                    return Err(timed_out(i));
                }
                // Once a message is in it, a queue made here stays (`ipckit rm` removes it).
                q = q.persist();
            }
            let _kept = q.persist();
        }
        Endpoint::SysvMq(key) => {
            let mut q = open_or_create(
                opts.create,
                || SysvMq::open(*key, Access::WriteOnly),
                || {
                    let o = sysv::Options::default()
                        .mode(opts.mode)
                        .trust_existing(opts.trust_existing);
                    SysvMq::open_or_create(*key, Access::WriteOnly, &o)
                },
            )?;
            let mtype = opts.mtype;
            for (i, m) in messages.enumerate() {
                if !q.send_deadline(&m?, mtype, deadline())? {
                    return Err(timed_out(i));
                }
                q = q.persist();
            }
            let _kept = q.persist();
        }
        Endpoint::PosixShm(_) | Endpoint::SysvShm(_) => {
            // Shared memory holds bytes, not messages: the payload is written as one run
            // (several MESSAGEs, or --lines, joined by newlines).
            let data = messages.collect::<Result<Vec<_>>>()?.join(&b'\n');
            let needed = opts.offset.checked_add(data.len()).ok_or_else(|| {
                anyhow::anyhow!(
                    "writing to {endpoint}: --offset {} is too large",
                    opts.offset
                )
            })?;
            let (map, made) = map_shm(endpoint, opts, true, needed)?;
            map.write_at(opts.offset, &data)?;
            made.keep();
        }
        other => bail!("{other} is not a queue or shared memory"),
    }
    Ok(())
}

/// The handle of shared memory `map_shm` opened or made: dropped, it removes what it made;
/// [`keep`](Keep::keep) leaves it in place once the command has done its work.
enum Keep {
    Posix(PosixShm),
    Sysv(SysvShm),
}

impl Keep {
    fn keep(self) {
        match self {
            Keep::Posix(s) => {
                let _kept = s.persist();
            }
            Keep::Sysv(s) => {
                let _kept = s.persist();
            }
        }
    }
}

/// Maps shared memory: writable for `send` (made with `--create` when missing, of `--size`
/// or big enough for `needed` bytes), read-only for `recv`.
fn map_shm(
    endpoint: &Endpoint,
    opts: &ObjectOpts,
    writable: bool,
    needed: usize,
) -> Result<(Mapping, Keep)> {
    let create = opts.create && writable;
    let size = opts.size.unwrap_or(needed.max(4096));
    // Refused before anything is made, so a failed command leaves nothing behind.
    if create && size < needed {
        bail!(
            "creating {endpoint}: --size {size} is smaller than --offset plus the message ({needed} bytes)"
        );
    }
    let access = if writable {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let o = shm::Options::new(size)
        .mode(opts.mode)
        .trust_existing(opts.trust_existing);
    // A failure after the object is made (mapping it, writing) drops the handle, which
    // removes it again.
    Ok(match endpoint {
        Endpoint::PosixShm(name) => {
            let shm = open_or_create(
                create,
                || PosixShm::open(name, access),
                || PosixShm::open_or_create(name, access, &o),
            )?;
            (shm.map()?, Keep::Posix(shm))
        }
        Endpoint::SysvShm(key) => {
            let shm = open_or_create(
                create,
                || SysvShm::open(*key, access),
                || SysvShm::open_or_create(*key, access, &o),
            )?;
            (shm.attach()?, Keep::Sysv(shm))
        }
        other => bail!("{other} is not shared memory"),
    })
}

/// Receives `count` messages (1 by default; every message until interrupted with `listen`).
pub fn recv(
    endpoint: &Endpoint,
    count: Option<u64>,
    timeout: Option<Duration>,
    json: bool,
    listen: bool,
    opts: &ObjectOpts,
) -> Result<()> {
    let deadline = timeout.map_or(Deadline::NEVER, Deadline::after);
    let wanted = if listen {
        None
    } else {
        Some(count.unwrap_or(1))
    };
    let mut out = io::stdout().lock();
    let mut seen = 0u64;
    let mut emit = |msg: &[u8], meta: Peer| -> Result<bool> {
        match output::emit(&mut out, msg, meta, json) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(true),
            other => other?,
        }
        seen += 1;
        Ok(wanted.is_some_and(|w| seen >= w))
    };
    let timed_out = |seen: u64| {
        let after = humantime::format_duration(timeout.unwrap_or_default());
        match wanted {
            Some(w) => anyhow::anyhow!(
                "timed out after {after} on {endpoint}: received {seen} of {w} messages"
            ),
            None => {
                anyhow::anyhow!("timed out after {after} on {endpoint}: received {seen} messages")
            }
        }
    };
    match endpoint {
        Endpoint::PosixMq(name) => {
            let q = PosixMq::open(name, Access::ReadOnly)?;
            let mut buf = Vec::new();
            loop {
                let Some(priority) = q.recv_deadline(&mut buf, deadline)? else {
                    return Err(timed_out(seen));
                };
                if emit(
                    &buf,
                    Peer {
                        priority: Some(priority),
                        ..Peer::default()
                    },
                )? {
                    return Ok(());
                }
            }
        }
        Endpoint::SysvMq(key) => {
            let q = SysvMq::open(*key, Access::ReadOnly)?;
            let filter = TypeFilter::from_msgtyp(opts.mtype, opts.except)
                .map_err(|e| crate::args::usage(e.to_string()))?;
            let mut buf = vec![0u8; sysv::msgmax()];
            loop {
                let Some(m) = q.recv_deadline(&mut buf, filter, false, deadline)? else {
                    return Err(timed_out(seen));
                };
                if emit(
                    &buf[..m.len],
                    Peer {
                        mtype: Some(m.mtype),
                        ..Peer::default()
                    },
                )? {
                    return Ok(());
                }
            }
        }
        Endpoint::PosixShm(_) | Endpoint::SysvShm(_) => {
            let (map, _opened) = map_shm(endpoint, opts, false, 0)?;
            let end = match opts.len {
                Some(len) => opts.offset.saturating_add(len),
                None => map.len(),
            };
            if opts.offset > map.len() || end > map.len() {
                bail!(
                    "reading {endpoint}: {} bytes at offset {} go past its end ({} bytes)",
                    end.saturating_sub(opts.offset),
                    opts.offset,
                    map.len()
                );
            }
            let mut buf = vec![0u8; end - opts.offset];
            map.read_at(opts.offset, &mut buf)?;
            // Without --len, the bytes up to the first NUL: what a C string there holds.
            let nul = buf.iter().position(|&b| b == 0);
            if let (None, Some(nul)) = (opts.len, nul) {
                buf.truncate(nul);
            }
            emit(&buf, Peer::default())?;
            Ok(())
        }
        other => bail!("{other} is not a queue or shared memory"),
    }
}
