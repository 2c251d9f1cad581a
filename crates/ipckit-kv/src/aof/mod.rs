//! Persistence: an append-only log of the writes, as RESP arrays (the format Redis's own
//! appendonly file uses), with `--fsync always|everysec|no`, recovery that truncates a torn
//! tail, background compaction (rewrite) and a snapshot on SHUTDOWN.
//!
//! (Helper K1 fills this in. The signatures below are the contract the server builds on.)

use std::path::Path;

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

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Commands replayed.
    pub commands: u64,
    /// Bytes of a torn tail (a write cut by a crash) removed from the end, if any.
    pub truncated: u64,
}

/// An open append-only log.
#[derive(Debug)]
pub struct Aof {
    _private: (),
}

impl Aof {
    /// Replays the log at `path` (if it exists) through `apply`, truncating a torn tail, then
    /// opens it for appending. The file is never opened through a symlink, and its directory
    /// must be one `ipckit::files` trusts.
    pub fn open(
        _path: &Path,
        _fsync: Fsync,
        _apply: &mut dyn FnMut(&[Vec<u8>]),
    ) -> ipckit::Result<(Aof, Recovered)> {
        Err(ipckit::Error::new(
            ipckit::ErrorKind::InvalidInput,
            "opening the append-only log",
            "not built yet",
        ))
    }

    /// Appends commands (each an argument list) to the log's buffer.
    pub fn append(&mut self, _commands: &[Vec<Vec<u8>>]) {}

    /// Writes the buffer out, and under `Fsync::Always` syncs it; call before sending the
    /// replies of the commands appended.
    pub fn flush(&mut self) -> ipckit::Result<()> {
        Ok(())
    }

    /// Starts compacting the log in the background from `snapshot` (commands that rebuild
    /// the current state); appends made meanwhile are kept. Poll with [`Aof::poll_rewrite`].
    pub fn start_rewrite(&mut self, _snapshot: Vec<Vec<Vec<u8>>>) -> ipckit::Result<()> {
        Ok(())
    }

    /// Finishes a background rewrite if it is done (swaps the new file in).
    pub fn poll_rewrite(&mut self) -> ipckit::Result<()> {
        Ok(())
    }

    /// The log's size in bytes now (the server rewrites when it has doubled).
    pub fn len(&self) -> u64 {
        0
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
