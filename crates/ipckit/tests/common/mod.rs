//! Cross-process test support: a test re-executes its own test binary as a child process that
//! runs one role (the `child` test of the same file, with `IPCKIT_ROLE` set), talks to it over
//! the child's stdin/stdout in lines, and bounds every wait with a timeout. The process
//! handling is `ipckit_spawn`'s; this adds the test binary's arguments and panics for errors.
#![allow(dead_code)]

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::process::ExitStatus;
use std::time::Duration;

#[allow(unused_imports)]
pub use ipckit_spawn::say;

/// The bound on every wait in the tests: long enough for a loaded 2-core CI machine.
pub const T: Duration = Duration::from_secs(20);

const ROLE: &str = "IPCKIT_ROLE";

/// The role this process was started for, when it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A value the parent passed to the child.
pub fn arg(name: &str) -> String {
    ipckit_spawn::arg(name).unwrap_or_else(|| panic!("child needs the value {name}"))
}

/// Child side: waits for one line from the parent (the parent's drop closes stdin, so this
/// cannot wait past the parent).
pub fn hear() -> String {
    ipckit_spawn::hear().expect("the parent closed stdin")
}

/// How to start a child.
pub struct Spawn<'a>(ipckit_spawn::Spawn<'a>);

/// Starts building a child that runs `role` through the test function `test` of this binary.
pub fn child<'a>(test: &str, role: &str) -> Spawn<'a> {
    Spawn(
        ipckit_spawn::Spawn::this()
            .role(ROLE, role)
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .talk(),
    )
}

impl<'a> Spawn<'a> {
    /// Passes `value` as `arg(name)`.
    pub fn arg(self, name: &str, value: impl ToString) -> Self {
        Spawn(self.0.arg(name, value))
    }

    /// Gives the child `fd` as descriptor number `target` (inherited across exec).
    pub fn fd(self, fd: BorrowedFd<'a>, target: i32) -> Self {
        Spawn(self.0.fd(fd, target))
    }

    /// Starts the child with `signals` blocked in every thread (the mask survives exec).
    pub fn blocked(self, signals: &[i32]) -> Self {
        Spawn(self.0.blocked(signals))
    }

    /// The command underneath (for `ipckit::inherit::pass`).
    pub fn command(&mut self) -> &mut std::process::Command {
        self.0.command()
    }

    pub fn start(self) -> Child {
        Child(self.0.start().expect("spawning child process"))
    }
}

/// A running child; killed and reaped on drop if still running.
pub struct Child(ipckit_spawn::Child);

impl Child {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// The next line the child said, within [`T`].
    pub fn line(&mut self) -> String {
        match self.0.line_timeout(T) {
            Ok(Some(l)) => l,
            Ok(None) => panic!("child {} said nothing within {T:?}", self.pid()),
            Err(e) => panic!("child {} said nothing more: {e}", self.pid()),
        }
    }

    /// Tells the child one line.
    pub fn tell(&mut self, line: &str) {
        self.0.tell(line).unwrap();
    }

    /// Waits within [`T`] for the child to exit and returns its status.
    pub fn wait(&mut self) -> ExitStatus {
        let st = self.0.wait_timeout(T).unwrap();
        st.unwrap_or_else(|| panic!("child {} did not exit within {T:?}", self.pid()))
    }

    /// Waits for the child and asserts it succeeded.
    pub fn success(mut self) {
        let st = self.wait();
        assert!(st.success(), "child {} failed: {st}", self.pid());
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) {
        let st = self.0.kill_timeout(T).unwrap();
        assert!(
            st.is_some(),
            "child {} did not die within {T:?}",
            self.pid()
        );
    }
}

/// A fresh private directory for socket files and FIFOs, removed with everything in it on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ipckit-test-")
        .tempdir()
        .unwrap()
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Reads until end of stream, each read bounded by [`T`].
pub fn read_to_eof(r: &mut impl ipckit::transport::TimedRead) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match r.read_timeout(&mut buf, T).unwrap() {
            Some(0) => return all,
            Some(n) => all.extend_from_slice(&buf[..n]),
            None => panic!("no end of stream within {T:?}"),
        }
    }
}

/// Reads exactly `buf.len()` bytes, the whole read bounded by [`T`]: a peer that sends too
/// little fails the test instead of hanging it.
pub fn read_exact_within(r: &mut impl ipckit::transport::TimedRead, buf: &mut [u8]) {
    let deadline = ipckit::Deadline::after(T);
    let mut got = 0;
    while got < buf.len() {
        match r.read_deadline(&mut buf[got..], deadline).unwrap() {
            Some(0) => panic!("end of stream after {got} of {} bytes", buf.len()),
            Some(n) => got += n,
            None => panic!("only {got} of {} bytes within {T:?}", buf.len()),
        }
    }
}

/// Accepts one connection on a TCP listener, waiting at most [`T`] for it.
pub fn accept_tcp(l: &std::net::TcpListener) -> std::net::TcpStream {
    assert!(
        ipckit::poll::readable_timeout(l, T).unwrap(),
        "no connection within {T:?}"
    );
    l.accept().unwrap().0
}

/// Shared memory for a test: a memfd of `len` bytes (given to children, as descriptor 10) and
/// the parent's mapping of it. It has no name, so nothing can leak.
pub fn memfd(name: &str, len: usize) -> (OwnedFd, ipckit::shm::mapping::Mapping) {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).expect("memfd_create");
    rustix::fs::ftruncate(&fd, len as u64).unwrap();
    let m = ipckit::shm::mapping::Mapping::map_fd(&fd, len, ipckit::Access::ReadWrite).unwrap();
    (fd, m)
}

/// Child side: the parent's [`memfd`] of `len` bytes, at descriptor 10, mapped.
pub fn child_mapping(len: usize) -> ipckit::shm::mapping::Mapping {
    // SAFETY: the parent put a memfd at descriptor 10 for this child.
    let fd = unsafe { OwnedFd::from_raw_fd(10) };
    ipckit::shm::mapping::Mapping::map_fd(&fd, len, ipckit::Access::ReadWrite).unwrap()
}

/// Child side: says "ready" and waits for "go", so that the children [`run_together`] starts
/// overlap.
pub fn start_together() {
    say("ready");
    assert_eq!(hear(), "go");
}

/// Parent side: lets the children waiting in [`start_together`] go at once, and waits for them.
pub fn run_together(mut children: Vec<Child>) {
    for c in &mut children {
        assert_eq!(c.line(), "ready");
    }
    for c in &mut children {
        c.tell("go");
    }
    for c in children {
        c.success();
    }
}

/// Parent side: a child started as `role` with `fd` as its descriptor 10 that took a lock in
/// that memory and said "locked", to be killed holding it.
pub fn lock_holder<'a>(role: &str, fd: BorrowedFd<'a>) -> Child {
    let mut holder = child("child", role).fd(fd, 10).start();
    assert_eq!(holder.line(), "locked");
    holder
}
