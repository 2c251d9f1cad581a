//! The shared-memory read path: the server mirrors string keys into a POSIX shared-memory
//! hash table that local readers open read-only and GET from without a system call.
//!
//! (Helper K5 fills this in. The signatures below are the contract the server builds on.)

/// What a reader found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key holds this string.
    Found(Vec<u8>),
    /// The key does not exist (or has expired).
    Absent,
    /// The mirror cannot say (the value is too large or not a string, or the table is full):
    /// ask the server over its socket.
    NotMirrored,
}

/// How the server makes its mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// How many entries the table holds.
    pub capacity: usize,
    /// The largest value mirrored, in bytes.
    pub max_value: usize,
    /// The mode of the shared memory (readers need read permission).
    pub mode: u32,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            capacity: 1 << 16,
            max_value: 1024,
            mode: 0o600,
        }
    }
}

/// The server's side: creates the table (and removes it on drop), and keeps it in step.
#[derive(Debug)]
pub struct Mirror {
    _private: (),
}

impl Mirror {
    /// Creates the table at `/NAME` (a leftover of a killed server is rebuilt).
    pub fn create(_name: &str, _opts: &MirrorOptions) -> ipckit::Result<Mirror> {
        Err(ipckit::Error::new(
            ipckit::ErrorKind::InvalidInput,
            "creating the kv mirror",
            "not built yet",
        ))
    }

    /// `key` now holds the string `value` (expiring at `expires_ms`, Unix ms): mirrored if it
    /// fits, else marked not mirrored.
    pub fn set(&mut self, _key: &[u8], _value: &[u8], _expires_ms: Option<u64>) {}

    /// `key` exists but is not a string (or is too large): readers are sent to the socket.
    pub fn set_unmirrored(&mut self, _key: &[u8]) {}

    /// `key` no longer exists.
    pub fn remove(&mut self, _key: &[u8]) {}

    /// Every key gone (FLUSHALL).
    pub fn clear(&mut self) {}
}

/// A reader's side: opens the table read-only.
#[derive(Debug)]
pub struct ShmReader {
    _private: (),
}

impl ShmReader {
    /// Opens the mirror at `/NAME` read-only.
    pub fn open(_name: &str) -> ipckit::Result<ShmReader> {
        Err(ipckit::Error::new(
            ipckit::ErrorKind::InvalidInput,
            "opening the kv mirror",
            "not built yet",
        ))
    }

    /// GET through shared memory: no system call.
    pub fn get(&self, _key: &[u8]) -> ipckit::Result<Lookup> {
        Ok(Lookup::NotMirrored)
    }
}
