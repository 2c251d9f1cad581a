//! Persistence: an append-only log of the writes, as RESP arrays (the format Redis's own
//! appendonly file uses), with `--fsync always|everysec|no`, recovery that truncates a torn
//! tail, background compaction (rewrite) and a snapshot on SHUTDOWN.
//!
//! # The file
//! Each write is one command, a RESP array of bulk strings (`*3\r\n$3\r\nSET\r\n...`), so
//! `redis-check-aof` and people can read it. The log is opened with
//! [`ipckit::files::open_append`]: created `0o600`, never through a symlink, only in a
//! directory another user cannot change (see [`ipckit::files`]), and locked with `flock`, so
//! a second server on the same log is refused instead of interleaving its writes.
//!
//! # Recovery ([`Aof::open`])
//! Every whole command is replayed through the caller's `apply`, in order. Then:
//! - the bytes end inside a command (a write cut by a crash), or what follows the last whole
//!   command is not a command and no whole command comes after it (a zero-filled block): a
//!   **torn tail**. It is cut off (`ftruncate` to the end of the last whole command, then
//!   `fsync`) and reported in [`Recovered::truncated`];
//! - something that is not a command with whole commands after it: **corruption in the
//!   middle**. Nothing is dropped silently: `open` fails naming the offset, unless
//!   [`AofOptions::truncate_corrupt`] says to cut the log there (what is cut is saved next to
//!   the log first, as `NAME.corrupt-OFFSET-…`, and reported in [`Recovered::saved`]).
//!
//! - the log ends inside a transaction (a `MULTI` whose `EXEC` is torn off or missing): the
//!   whole transaction is the torn tail, cut off from its `MULTI` (as Redis does), so the
//!   log never ends in an open `MULTI` that would swallow the writes appended after it. A
//!   `MULTI` followed by another before any `EXEC` is corruption at the first.
//!
//! The line between the two is drawn by looking for a whole command after the bad bytes
//! (within 64 MiB): a torn tail cannot have one; garbage longer than that is called
//! corruption. A torn command whose value holds the bytes of a whole RESP command is taken
//! for corruption too: the safe side (the server refuses to start, and says how to go on).
//!
//! # When writes reach the disk ([`Fsync`])
//! The server [`append`](Aof::append)s each write's commands, then calls
//! [`flush`](Aof::flush) before sending the replies: one `write(2)` of the buffer. From then
//! on the write survives a crash of the server itself (SIGKILL, a panic, the OOM killer),
//! whatever the policy: the kernel has it. What the policy decides is a crash of the machine
//! (power loss, a kernel panic):
//! - `Always`: `flush` also `fdatasync`s before returning, so an acknowledged write survives;
//! - `EverySec`: a background thread `fdatasync`s at most once a second, when something was
//!   written since its last one; the event loop never waits for it. "At most about one second
//!   lost" means precisely: a write whose `flush` returned at time *t* is on the disk by
//!   *t* + 1 s + the time one `fdatasync` takes (the thread's next sync starts at most 1 s
//!   after its previous one started, and covers everything written before it starts). A disk
//!   slower than that stretches the window by how much slower it is; a failed background sync
//!   makes the next `flush` fail (as Redis refuses writes after one) until a later sync
//!   succeeds;
//! - `No`: never synced by the log; the kernel writes it back when it pleases (about 30 s).
//!
//! Closing the log ([`Aof::close`], or drop) syncs it under every policy.
//!
//! # Rewrite (compaction)
//! [`start_rewrite`](Aof::start_rewrite) takes the commands that rebuild the current state
//! and writes them to a new temporary file in the same directory from a thread. Meanwhile
//! every flush still goes to the old log (so nothing depends on the rewrite finishing) and is
//! also kept in a side buffer. [`poll_rewrite`](Aof::poll_rewrite), called from the event
//! loop, finishes a rewrite whose thread is done: it appends the side buffer to the new file,
//! `fdatasync`s it, `rename`s it over the log (atomic: a crash leaves the old log or the new
//! one, both holding every acknowledged write), `fsync`s the directory (before any write is
//! acknowledged from the new file), and goes on appending there. That last step runs on the
//! loop: one write of what came in during the rewrite, and one `fdatasync`.
//! A failed rewrite removes its temporary file and leaves the old log as it was. Temporary
//! files a killed server left (`.NAME.rewrite-….tmp`) are removed by the next `open`.
//!
//! # Snapshot (`SHUTDOWN SAVE`, `--snapshot`)
//! [`Aof::snapshot`] is a rewrite done synchronously: the log is replaced, atomically, by the
//! commands given (which must rebuild the whole state: what the log held before is gone),
//! and appending goes on in the new file. [`write_snapshot`] writes such a file where no log
//! is kept, and [`replay`] reads one back.
//!
//! ```
//! use ipckit_kv::aof::{Aof, Fsync};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("appendonly.aof");
//! let (mut log, found) = Aof::open(&path, Fsync::Always, &mut |_| {}).unwrap();
//! assert_eq!(found.commands, 0);
//! log.append(&[vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]]);
//! log.flush().unwrap(); // written and synced: the reply may go
//! drop(log);
//!
//! let mut seen = Vec::new();
//! let (_log, found) = Aof::open(&path, Fsync::Always, &mut |args| seen.push(args.to_vec())).unwrap();
//! assert_eq!(found.commands, 1);
//! assert_eq!(seen[0][1], b"k");
//! ```

mod format;
mod recover;
mod sync;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use ipckit::{Errno, Error, ErrorKind};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

pub use format::encode;

use sync::Syncer;

/// When the log is flushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Before a write's reply is sent: an acknowledged write survives a crash.
    Always,
    /// About once a second, off the event loop: at most about a second is lost.
    #[default]
    EverySec,
    /// When the kernel pleases.
    No,
}

impl Fsync {
    /// The name Redis gives it (`appendfsync`): `always`, `everysec`, `no`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }
}

impl std::str::FromStr for Fsync {
    type Err = Error;

    /// `always`, `everysec` or `no`, any case.
    fn from_str(s: &str) -> ipckit::Result<Fsync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::EverySec),
            "no" => Ok(Fsync::No),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                "reading the fsync policy",
                format!("{s:?} is not one"),
            )
            .hint("give always, everysec or no")),
        }
    }
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Commands replayed.
    pub commands: u64,
    /// Bytes of a torn tail (a write cut by a crash) removed from the end, if any; with
    /// [`AofOptions::truncate_corrupt`], also the bytes cut from a corrupt point on.
    pub truncated: u64,
    /// Where the bytes cut at a corrupt point were saved, when
    /// [`AofOptions::truncate_corrupt`] cut any.
    pub saved: Option<PathBuf>,
    /// Replayed commands that replied with an error: the log and the keyspace disagree
    /// there. Counted by the server's replay (the log itself does not run commands: 0 here).
    pub replay_errors: u64,
}

/// How [`Aof::open_with`] opens the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AofOptions {
    /// When writes are synced.
    pub fsync: Fsync,
    /// Cut the log at a corrupt command in the middle (saving what is cut next to it)
    /// instead of refusing to open it (`--aof-truncate-corrupt`). Off by default: commands
    /// after the corrupt point are lost if it is on.
    pub truncate_corrupt: bool,
}

const OPENING: &str = "opening the append-only log";
const WRITING: &str = "writing the append-only log";
const REWRITING: &str = "rewriting the append-only log";

/// Bytes the rewrite thread encodes before each write.
const CHUNK: usize = 1 << 20;
/// A buffer larger than this after a flush is let go rather than kept for reuse.
const KEEP_BUFFER: usize = 16 << 20;

/// An open append-only log.
#[derive(Debug)]
pub struct Aof {
    path: PathBuf,
    /// The log's directory (`O_PATH`), for the rewrite's temporary file and rename.
    dir: OwnedFd,
    /// The log's name in `dir`.
    name: OsString,
    file: Arc<File>,
    fsync: Fsync,
    /// Appended, not yet written.
    buf: Vec<u8>,
    /// Bytes in the file.
    written: u64,
    /// Bytes in the file after the open or the last rewrite.
    base: u64,
    /// A failed write left part of a buffer in the file: cut it off before the next one.
    cut_to: Option<u64>,
    /// The directory sync after a rewrite's rename failed: a machine crash may bring the old
    /// log back, without what is written to the new one. Tried again at each flush; under
    /// `Always` the flush fails until it succeeds (no write is acknowledged meanwhile).
    dir_unsynced: bool,
    syncer: Option<Syncer>,
    syncs: Arc<AtomicU64>,
    rewrite: Option<Rewrite>,
}

/// A background rewrite under way.
#[derive(Debug)]
struct Rewrite {
    temp: OsString,
    /// What was flushed to the old log since the rewrite started.
    side: Vec<u8>,
    abort: Arc<AtomicBool>,
    thread: JoinHandle<std::io::Result<File>>,
}

fn io_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(raw) => Error::os(op, Errno::from_raw_os_error(raw)).object(path.display()),
        None => Error::new(ErrorKind::Os, op, e.to_string()).object(path.display()),
    }
}

fn os_error(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::os(op, e).object(path.display())
}

#[cfg(test)]
thread_local! {
    /// Tests: how many of this thread's next directory syncs fail (EIO).
    static FAIL_DIR_SYNCS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// `fsync(2)` of the directory `dir` (an `O_PATH` descriptor cannot be synced: open it).
fn sync_dir(dir: &OwnedFd) -> rustix::io::Result<()> {
    #[cfg(test)]
    if FAIL_DIR_SYNCS.with(|f| f.replace(f.get().saturating_sub(1))) > 0 {
        return Err(Errno::IO);
    }
    let d = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fsync(d)
}

/// `flock(LOCK_EX | LOCK_NB)`, tried again for a moment: a child this process (or a thread
/// of it) is forking holds the lock's open file description until it execs.
pub(crate) fn flock_claim(fd: std::os::fd::BorrowedFd<'_>) -> rustix::io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
            Err(Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            r => return r,
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: this process's claim on a log file.
fn lock(file: &File, path: &Path) -> ipckit::Result<()> {
    use std::os::fd::AsFd;
    flock_claim(file.as_fd()).map_err(|e| {
        os_error(OPENING, path, e).hint_if(
            Errno::WOULDBLOCK,
            "another process (a server already running on this log?) has it open and locked: \
             stop it, or give another file",
        )
    })
}

/// The prefix of the rewrite's temporary files for the log `name`.
fn temp_prefix(name: &OsString) -> Vec<u8> {
    let mut p = b".".to_vec();
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(b".rewrite-");
    p
}

/// Writes all of `bytes` to `file` (EINTR retried).
fn write_all(mut file: &File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)
}

impl Aof {
    /// Replays the log at `path` (if it exists) through `apply`, truncating a torn tail, then
    /// opens it for appending. The file is never opened through a symlink, and its directory
    /// must be one `ipckit::files` trusts.
    pub fn open(
        path: &Path,
        fsync: Fsync,
        apply: &mut dyn FnMut(&[Vec<u8>]),
    ) -> ipckit::Result<(Aof, Recovered)> {
        Aof::open_with(
            path,
            &AofOptions {
                fsync,
                ..AofOptions::default()
            },
            apply,
        )
    }

    /// [`Aof::open`] with every option: `openat(2)` with `O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW`
    /// (mode `0o600`) through [`ipckit::files::open_append`], `flock(2)` (a log another
    /// process has open and locked is refused), `pread(2)` to replay, `ftruncate(2)` and
    /// `fsync(2)` to cut a torn tail. On an error the commands replayed so far are to be
    /// thrown away.
    pub fn open_with(
        path: &Path,
        opts: &AofOptions,
        apply: &mut dyn FnMut(&[Vec<u8>]),
    ) -> ipckit::Result<(Aof, Recovered)> {
        let opened =
            ipckit::files::open_append(path, &ipckit::files::Options::default().private(true))?;
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        lock(&opened.file, path)?;
        remove_stale_temps(&opened.dir, &name);
        let found = recover::recover(&opened.file, &opened.dir, &name, path, opts, apply)?;
        let written = opened
            .file
            .metadata()
            .map_err(|e| io_error(OPENING, path, e))?
            .len();
        let file = Arc::new(opened.file);
        let syncs = Arc::new(AtomicU64::new(0));
        let syncer = match opts.fsync {
            Fsync::EverySec => Some(
                Syncer::start(file.clone(), syncs.clone())
                    .map_err(|e| io_error("starting the log's fsync thread", path, e))?,
            ),
            _ => None,
        };
        Ok((
            Aof {
                path: path.to_path_buf(),
                dir: opened.dir,
                name,
                file,
                fsync: opts.fsync,
                buf: Vec::new(),
                written,
                base: written,
                cut_to: None,
                dir_unsynced: false,
                syncer,
                syncs,
                rewrite: None,
            },
            found,
        ))
    }

    /// Appends commands (each an argument list) to the log's buffer.
    pub fn append(&mut self, commands: &[Vec<Vec<u8>>]) {
        for c in commands {
            format::encode(c, &mut self.buf);
        }
    }

    /// Appends one command (an argument list) to the log's buffer.
    pub fn append_one<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        format::encode(args, &mut self.buf);
    }

    /// Writes the buffer out, and under `Fsync::Always` syncs it; call before sending the
    /// replies of the commands appended.
    ///
    /// One `write(2)` (repeated only if the kernel took part of it), then `fdatasync(2)` under
    /// `Always`; under `EverySec` the background thread is told. A failed write is cut back
    /// off the file (`ftruncate(2)`), so the log never keeps half a command in its middle, and
    /// the buffer is kept for the next flush; the error is returned: the replies must not say
    /// the writes are done. Under `EverySec`, a failed background sync is returned here too.
    pub fn flush(&mut self) -> ipckit::Result<()> {
        if self.dir_unsynced {
            match sync_dir(&self.dir) {
                Ok(()) => self.dir_unsynced = false,
                Err(e) if self.fsync == Fsync::Always => {
                    return Err(os_error(WRITING, &self.path, e).hint(
                        "the log's directory could not be synced after a rewrite: a machine \
                         crash may bring the old log back, so no write is acknowledged until \
                         it can be",
                    ));
                }
                Err(_) => {}
            }
        }
        if let Some(to) = self.cut_to {
            rustix::fs::ftruncate(&*self.file, to).map_err(|e| {
                os_error(WRITING, &self.path, e)
                    .hint("a write failed half way and its part could not be cut off yet")
            })?;
            self.cut_to = None;
        }
        if !self.buf.is_empty() {
            if let Err(e) = write_all(&self.file, &self.buf) {
                if rustix::fs::ftruncate(&*self.file, self.written).is_err() {
                    self.cut_to = Some(self.written);
                }
                return Err(io_error(WRITING, &self.path, e).hint_if(
                    Errno::NOSPC,
                    "the disk is full: make room; the writes are kept and written again at the \
                     next flush",
                ));
            }
            self.written += self.buf.len() as u64;
            if let Some(rw) = &mut self.rewrite {
                rw.side.extend_from_slice(&self.buf);
            }
            if self.buf.capacity() > KEEP_BUFFER {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            match self.fsync {
                Fsync::Always => {
                    self.file
                        .sync_data()
                        .map_err(|e| io_error("syncing the append-only log", &self.path, e))?;
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Fsync::EverySec => {
                    if let Some(s) = &self.syncer {
                        s.written();
                    }
                }
                Fsync::No => {}
            }
        }
        if let Some(errno) = self.syncer.as_ref().and_then(Syncer::failed) {
            return Err(os_error(
                "syncing the append-only log (in the background)",
                &self.path,
                Errno::from_raw_os_error(errno),
            )
            .hint(
                "the last fdatasync failed: writes since may not be on the disk; check the \
                 disk, the next successful sync clears this",
            ));
        }
        Ok(())
    }

    /// Starts compacting the log in the background from `snapshot` (commands that rebuild
    /// the current state); appends made meanwhile are kept. Poll with [`Aof::poll_rewrite`].
    ///
    /// Flushes first (the snapshot already holds what is appended). Fails if a rewrite is
    /// under way already. `openat(2)` of a new temporary file (`O_CREAT|O_EXCL|O_NOFOLLOW`,
    /// `0o600`) in the log's directory, written and `fdatasync`ed by a thread.
    pub fn start_rewrite(&mut self, snapshot: Vec<Vec<Vec<u8>>>) -> ipckit::Result<()> {
        if self.rewrite.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                REWRITING,
                "a rewrite is under way already",
            )
            .object(self.path.display())
            .hint("wait for it to finish (poll_rewrite)"));
        }
        self.flush()?;
        let (temp, file) = self.create_temp()?;
        let abort = Arc::new(AtomicBool::new(false));
        let stop = abort.clone();
        let spawned = std::thread::Builder::new()
            .name("kv-aof-rewrite".into())
            .spawn(move || write_commands(file, &snapshot, &stop));
        match spawned {
            Ok(thread) => {
                self.rewrite = Some(Rewrite {
                    temp,
                    side: Vec::new(),
                    abort,
                    thread,
                });
                Ok(())
            }
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.dir, &temp, AtFlags::empty());
                Err(io_error(REWRITING, &self.path, e))
            }
        }
    }

    /// Finishes a background rewrite if it is done (swaps the new file in).
    ///
    /// Returns at once while the thread works. When it is done: the side buffer is appended
    /// to the new file, which is `fdatasync`ed and `renameat(2)`ed over the log, the directory
    /// `fsync`ed, and appending goes on in the new file. A failed rewrite is an error here, and
    /// leaves the old log in use, as it was.
    pub fn poll_rewrite(&mut self) -> ipckit::Result<()> {
        match &self.rewrite {
            Some(rw) if rw.thread.is_finished() => self.finish_rewrite(),
            _ => Ok(()),
        }
    }

    /// Waits for a background rewrite to finish, and finishes it (as
    /// [`poll_rewrite`](Aof::poll_rewrite) does when it is done). Nothing to do without one.
    pub fn finish_rewrite(&mut self) -> ipckit::Result<()> {
        let Some(rw) = self.rewrite.take() else {
            return Ok(());
        };
        let file = match rw.thread.join() {
            Ok(Ok(file)) => file,
            Ok(Err(e)) => {
                let _ = rustix::fs::unlinkat(&self.dir, &rw.temp, AtFlags::empty());
                return Err(io_error(REWRITING, &self.path, e)
                    .hint("the old log is kept, whole; the rewrite can be tried again"));
            }
            Err(_) => {
                let _ = rustix::fs::unlinkat(&self.dir, &rw.temp, AtFlags::empty());
                return Err(
                    Error::new(ErrorKind::Os, REWRITING, "the rewrite thread panicked")
                        .object(self.path.display()),
                );
            }
        };
        self.swap_in(file, &rw.temp, &rw.side)
    }

    /// Whether a background rewrite is under way.
    pub fn rewriting(&self) -> bool {
        self.rewrite.is_some()
    }

    /// Replaces the log now with `commands` (which must rebuild the whole state: the old
    /// log's content is gone), and goes on appending to the new file: a rewrite done
    /// synchronously, for `SHUTDOWN SAVE` and `--snapshot`. A background rewrite under way is
    /// abandoned (its file is older than these commands). Flushes first, so that a failure
    /// leaves the old log holding every write. Returns the new log's size.
    pub fn snapshot(&mut self, commands: &[Vec<Vec<u8>>]) -> ipckit::Result<u64> {
        self.abandon_rewrite();
        self.flush()?;
        let (temp, file) = self.create_temp()?;
        let file = match write_commands(file, commands, &AtomicBool::new(false)) {
            Ok(f) => f,
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.dir, &temp, AtFlags::empty());
                return Err(io_error("writing the snapshot", &self.path, e));
            }
        };
        self.swap_in(file, &temp, &[])?;
        Ok(self.written)
    }

    /// The log's size in bytes now (the server rewrites when it has doubled).
    pub fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The log's size after it was opened or last rewritten (Redis's `aof_base_size`: a
    /// rewrite is due when [`len`](Aof::len) has grown past twice this).
    pub fn base_len(&self) -> u64 {
        self.base
    }

    /// How many `fdatasync`s of the log completed (on the loop under `Always`, in the
    /// background under `EverySec`).
    pub fn fsyncs(&self) -> u64 {
        self.syncs.load(Ordering::Acquire)
    }

    /// The policy the log was opened with.
    pub fn fsync_policy(&self) -> Fsync {
        self.fsync
    }

    /// The log's path, as given to [`open`](Aof::open).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, abandons a rewrite under way, and syncs the log (under every policy),
    /// reporting what failed. Drop does the same and ignores failures.
    pub fn close(mut self) -> ipckit::Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> ipckit::Result<()> {
        self.abandon_rewrite();
        let flushed = self.flush();
        // The background thread's last sync, then this one (which is cheap if it did).
        self.syncer = None;
        let synced = self
            .file
            .sync_data()
            .map_err(|e| io_error("syncing the append-only log", &self.path, e));
        flushed.and(synced)
    }

    fn abandon_rewrite(&mut self) {
        if let Some(rw) = self.rewrite.take() {
            rw.abort.store(true, Ordering::Relaxed);
            let _ = rw.thread.join();
            let _ = rustix::fs::unlinkat(&self.dir, &rw.temp, AtFlags::empty());
        }
    }

    /// A new temporary file in the log's directory, locked as the log is.
    fn create_temp(&self) -> ipckit::Result<(OsString, File)> {
        let mut name = temp_prefix(&self.name);
        name.extend_from_slice(ipckit::name::unique("aof").as_bytes());
        name.extend_from_slice(b".tmp");
        let name = OsString::from(std::ffi::OsStr::from_bytes(&name));
        let fd = rustix::fs::openat(
            &self.dir,
            &name,
            OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| os_error(REWRITING, &self.path, e))?;
        let file = File::from(fd);
        if let Err(e) = rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            let _ = rustix::fs::unlinkat(&self.dir, &name, AtFlags::empty());
            return Err(os_error(REWRITING, &self.path, e));
        }
        Ok((name, file))
    }

    /// Appends `side` to the rewritten `file`, syncs it, renames it over the log, syncs the
    /// directory, and makes it the log.
    fn swap_in(&mut self, file: File, temp: &OsString, side: &[u8]) -> ipckit::Result<()> {
        let fail = |me: &Aof, e: Error| {
            let _ = rustix::fs::unlinkat(&me.dir, temp, AtFlags::empty());
            Err(e.hint("the old log is kept, whole; the rewrite can be tried again"))
        };
        if let Err(e) = write_all(&file, side).and_then(|()| file.sync_data()) {
            return fail(self, io_error(REWRITING, &self.path, e));
        }
        let len = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return fail(self, io_error(REWRITING, &self.path, e)),
        };
        if let Err(e) = rustix::fs::renameat(&self.dir, temp, &self.dir, &self.name) {
            return fail(self, os_error(REWRITING, &self.path, e));
        }
        let file = Arc::new(file);
        if let Some(s) = &self.syncer {
            s.replace_file(file.clone());
        }
        self.file = file;
        self.written = len;
        self.base = len;
        self.cut_to = None;
        sync_dir(&self.dir).map_err(|e| {
            self.dir_unsynced = true;
            os_error(REWRITING, &self.path, e).hint(
                "the new log is in place but its directory could not be synced: a machine \
                 crash may bring the old one back (tried again at each flush; under \
                 --fsync always the flushes fail until it works)",
            )
        })
    }

    /// Whether the directory sync after a rewrite is still owed: [`Aof::flush`] tries it
    /// again (and under `Always` fails while it fails), even with nothing to write.
    pub fn needs_flush(&self) -> bool {
        self.dir_unsynced || !self.buf.is_empty()
    }
}

impl Drop for Aof {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

/// The rewrite's work: `commands` encoded into `file` a chunk at a time, then
/// `fdatasync`ed. Gives up (`Interrupted`) when `abort` is set.
fn write_commands(
    file: File,
    commands: &[Vec<Vec<u8>>],
    abort: &AtomicBool,
) -> std::io::Result<File> {
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    for c in commands {
        format::encode(c, &mut chunk);
        if chunk.len() >= CHUNK {
            if abort.load(Ordering::Relaxed) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            write_all(&file, &chunk)?;
            chunk.clear();
        }
    }
    write_all(&file, &chunk)?;
    file.sync_data()?;
    Ok(file)
}

/// Removes the rewrite's temporary files of `name` a killed server left in `dir` (regular
/// files of this user only). The caller holds the log's lock, so no live server's rewrite is
/// among them.
fn remove_stale_temps(dir: &OwnedFd, name: &OsString) {
    use std::os::fd::AsRawFd;
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        let n = e.file_name();
        let b = n.as_bytes();
        if !(b.starts_with(&prefix) && b.ends_with(b".tmp")) {
            continue;
        }
        if let Ok(st) = rustix::fs::statat(dir, &n, AtFlags::SYMLINK_NOFOLLOW)
            && rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            && st.st_uid == me
        {
            let _ = rustix::fs::unlinkat(dir, &n, AtFlags::empty());
        }
    }
}

/// Writes `commands` as a log file at `path` (replacing one there, atomically: a temporary
/// file, fsynced, renamed over it), under [`ipckit::files`]' rules, `0o600`: the snapshot of
/// a server that keeps no log. Returns its size. Read it back with [`replay`] (or open it as
/// the log).
pub fn write_snapshot(path: &Path, commands: &[Vec<Vec<u8>>]) -> ipckit::Result<u64> {
    let mut bytes = Vec::new();
    for c in commands {
        format::encode(c, &mut bytes);
    }
    ipckit::files::write_with(
        path,
        &bytes,
        &ipckit::files::Options::default().private(true),
    )?;
    Ok(bytes.len() as u64)
}

/// Replays the log or snapshot at `path` through `apply` without opening it for appending
/// or changing it: a torn tail is reported in [`Recovered::truncated`] (and left there), a
/// corrupt command in the middle is an error naming its offset.
pub fn replay(path: &Path, apply: &mut dyn FnMut(&[Vec<u8>])) -> ipckit::Result<Recovered> {
    let file = File::open(path).map_err(|e| io_error(OPENING, path, e))?;
    let meta = file.metadata().map_err(|e| io_error(OPENING, path, e))?;
    if !meta.is_file() {
        return Err(
            Error::new(ErrorKind::InvalidInput, OPENING, "it is not a regular file")
                .object(path.display())
                .hint("give the path of a log file"),
        );
    }
    recover::scan(&file, path, apply).map(|s| Recovered {
        commands: s.commands,
        truncated: s.tail,
        saved: None,
        replay_errors: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str) -> Vec<Vec<u8>> {
        vec![b"SET".to_vec(), k.as_bytes().to_vec(), b"v".to_vec()]
    }

    #[test]
    fn a_failed_directory_sync_after_a_rewrite_fails_flushes_under_always() {
        let dir = tempfile::tempdir().unwrap();
        for fsync in [Fsync::Always, Fsync::EverySec] {
            let path = dir.path().join(format!("{}.aof", fsync.as_str()));
            let (mut log, _) = Aof::open(&path, fsync, &mut |_| {}).unwrap();
            log.append(&[set("a")]);
            log.flush().unwrap();
            FAIL_DIR_SYNCS.with(|f| f.set(2));
            assert!(
                log.snapshot(&[set("a")]).is_err(),
                "the failure is reported"
            );
            assert!(log.needs_flush());
            log.append(&[set("b")]);
            let second = log.flush();
            if fsync == Fsync::Always {
                // The directory sync fails once more: b must not be acknowledged.
                assert!(second.is_err(), "{fsync:?}");
                assert!(log.needs_flush());
                log.flush().unwrap();
            } else {
                second.unwrap();
                log.flush().unwrap();
            }
            assert!(!log.needs_flush());
            drop(log);
            let mut seen = Vec::new();
            replay(&path, &mut |c| seen.push(c.to_vec())).unwrap();
            assert_eq!(seen, [set("a"), set("b")], "{fsync:?}");
        }
    }
}
