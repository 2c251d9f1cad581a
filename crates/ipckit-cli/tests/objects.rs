//! Issue #14, end to end through the `ipckit` binary: an existing object another user made
//! (or one wider than the mode asked for) is refused unless `--trust-existing` says to use it,
//! an abstract socket's `--mode` holds against a peer of another user, and shared memory that
//! does not fit the filesystem is an error at creation (never SIGBUS), leaving nothing behind.
//!
//! The tests with a foreign owner need root (they run `ipckit` as `nobody`, uid 65534): they
//! say "SKIPPED: needs root" elsewhere, and fail in CI (CI set) if not root.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};

use common::{NOBODY, Proc, Rm, dev_shm, ipckit, need_root, tempdir};

/// What a finished command gave.
struct Ran {
    status: ExitStatus,
    out: Vec<String>,
    err: String,
}

/// Runs `cmd`, bounded by T.
fn run_cmd(cmd: Command) -> Ran {
    let r = common::run(cmd);
    Ran {
        status: r.status,
        out: r.out_lines(),
        err: r.err(),
    }
}

/// Runs `ipckit ARGS` as this user.
fn run(args: &[&str]) -> Ran {
    let mut cmd = ipckit();
    cmd.args(args);
    run_cmd(cmd)
}

/// Runs `ipckit ARGS` as nobody (std drops the supplementary groups too).
fn run_as_nobody(args: &[&str]) -> Ran {
    let mut cmd = ipckit();
    cmd.args(args).uid(NOBODY).gid(NOBODY);
    run_cmd(cmd)
}

/// A System V key no object has now (the objects are made by `ipckit` itself).
fn free_key(kind: &str) -> String {
    let pid = std::process::id();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for n in 0..1000u32 {
        let raw = 0x1a00_0000 | ((pid & 0xfff) << 12) | (seed.wrapping_add(n) & 0xfff);
        let key = format!("0x{raw:08x}");
        let taken = match kind {
            "sysv-mq" => {
                ipckit::mq::sysv::SysvMq::open(key.parse().unwrap(), ipckit::Access::ReadOnly)
                    .is_ok()
            }
            _ => ipckit::shm::sysv::SysvShm::open(key.parse().unwrap(), ipckit::Access::ReadOnly)
                .is_ok(),
        };
        if !taken {
            return key;
        }
    }
    panic!("no free System V key");
}

/// The refusal says who owns the object and how to opt in.
fn assert_refused(r: &Ran, uri: &str, owner: &str) {
    assert_eq!(
        r.status.code(),
        Some(1),
        "{uri}: a foreign or too-wide object must be refused: {}",
        r.err
    );
    assert!(r.err.contains(owner), "{uri}: names the owner: {}", r.err);
    assert!(
        r.err.contains("--trust-existing"),
        "{uri}: names the opt-in: {}",
        r.err
    );
    assert!(
        r.err.contains("ipckit rm"),
        "{uri}: says how to remove it: {}",
        r.err
    );
}

#[test]
fn send_create_refuses_a_queue_or_shared_memory_another_user_made() {
    if !need_root() {
        return;
    }
    let uris = [
        format!("mq:{}", ipckit::name::unique_posix("foreign")),
        format!("shm:{}", ipckit::name::unique_posix("foreign")),
        format!("sysv-mq:{}", free_key("sysv-mq")),
        format!("sysv-shm:{}", free_key("sysv-shm")),
    ];
    for uri in &uris {
        // Another user plants the object, open to everyone.
        let _rm = Rm(uri.clone());
        let made = run_as_nobody(&["send", uri, "--create", "--mode", "666", "planted"]);
        assert!(
            made.status.success(),
            "{uri}: nobody makes it: {}",
            made.err
        );

        let r = run(&["send", uri, "--create", "secret"]);
        assert_refused(&r, uri, "nobody");
        assert!(r.err.contains("65534"), "{uri}: names the uid: {}", r.err);
        assert!(r.err.contains("666"), "{uri}: names the mode: {}", r.err);

        // Asked for by name, it is used.
        let r = run(&["send", uri, "--create", "--trust-existing", "trusted"]);
        assert!(
            r.status.success(),
            "{uri}: --trust-existing uses it: {}",
            r.err
        );
    }
}

#[test]
fn send_create_refuses_an_own_object_wider_than_the_mode_asked_for() {
    let uris = [
        format!("mq:{}", ipckit::name::unique_posix("wide")),
        format!("shm:{}", ipckit::name::unique_posix("wide")),
        format!("sysv-mq:{}", free_key("sysv-mq")),
        format!("sysv-shm:{}", free_key("sysv-shm")),
    ];
    for uri in &uris {
        let _rm = Rm(uri.clone());
        let made = run(&["send", uri, "--create", "--mode", "666", "first"]);
        assert!(made.status.success(), "{uri}: {}", made.err);
        // The same mode, or a wider one asked for, is fine.
        let r = run(&["send", uri, "--create", "--mode", "666", "again"]);
        assert!(r.status.success(), "{uri}: the mode asked for: {}", r.err);
        // --mode 600 (the default) asked for, 666 found: refused.
        let r = run(&["send", uri, "--create", "--mode", "600", "secret"]);
        assert_eq!(r.status.code(), Some(1), "{uri}: {}", r.err);
        assert!(
            r.err.contains("0666") && r.err.contains("0600"),
            "{uri}: {}",
            r.err
        );
        assert!(r.err.contains("--trust-existing"), "{uri}: {}", r.err);
        let r = run(&["send", uri, "--create", "--trust-existing", "trusted"]);
        assert!(r.status.success(), "{uri}: {}", r.err);
        // Without --create, an existing object is joined as it is: that is what naming it means.
        let r = run(&["send", uri, "joined"]);
        assert!(r.status.success(), "{uri}: {}", r.err);
    }
}

/// A FIFO at `path` owned by `uid` with `mode`.
fn plant_fifo(path: &Path, uid: u32, mode: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode)).unwrap();
    if uid != rustix::process::geteuid().as_raw() {
        let uid = rustix::process::Uid::from_raw(uid);
        let gid = rustix::process::Gid::from_raw(NOBODY);
        rustix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

#[test]
fn recv_refuses_a_fifo_another_user_made() {
    if !need_root() {
        return;
    }
    let dir = tempdir();
    let path = dir.path().join("planted");
    plant_fifo(&path, NOBODY, 0o666);
    let uri = format!("fifo:{}", path.display());
    let r = run(&["recv", &uri, "--timeout", "5s"]);
    assert_refused(&r, &uri, "nobody");
    assert!(r.out.is_empty(), "nothing read: {:?}", r.out);
    assert!(path.exists(), "a FIFO recv did not make is not removed");

    // --trust-existing reads it (and leaves it: recv did not make it).
    let mut recv = Proc::server(&["recv", &uri, "--trust-existing", "--timeout", "20s"]);
    let s = run(&["send", &uri, "trusted"]);
    assert!(s.status.success(), "{}", s.err);
    assert!(recv.wait().success());
    assert_eq!(Proc::rest(&recv.out), ["trusted"]);
    assert!(path.exists());
}

#[test]
fn recv_refuses_an_own_fifo_wider_than_the_mode_asked_for() {
    let dir = tempdir();
    let path = dir.path().join("wide");
    plant_fifo(&path, rustix::process::geteuid().as_raw(), 0o666);
    let uri = format!("fifo:{}", path.display());
    let r = run(&["recv", &uri, "--timeout", "5s"]);
    assert_eq!(r.status.code(), Some(1), "{}", r.err);
    assert!(
        r.err.contains("0666") && r.err.contains("0600"),
        "{}",
        r.err
    );
    assert!(r.err.contains("--trust-existing"), "{}", r.err);
    // The mode asked for is what it has: fine (a writer then comes).
    let mut recv = Proc::server(&["recv", &uri, "--mode", "666", "--timeout", "20s"]);
    let s = run(&["send", &uri, "mine"]);
    assert!(s.status.success(), "{}", s.err);
    assert!(recv.wait().success());
    assert_eq!(Proc::rest(&recv.out), ["mine"]);
}

#[test]
fn an_abstract_socket_refuses_a_peer_its_mode_does_not_allow() {
    if !need_root() {
        return;
    }
    let uri = format!("abstract:{}", ipckit::name::unique("abstract-mode"));
    // Mode 600 (the default): this user only.
    let mut recv = Proc::server(&["recv", &uri, "--count", "1", "--timeout", "20s"]);
    // The other user's connection is refused (whatever its sender then sees).
    let _ = run_as_nobody(&["send", &uri, "from nobody"]);
    let s = run(&["send", &uri, "from the owner"]);
    assert!(s.status.success(), "{}", s.err);
    assert!(recv.wait().success());
    assert_eq!(Proc::rest(&recv.out), ["from the owner"]);
    let err = Proc::rest(&recv.err);
    assert!(
        err.iter()
            .any(|l| l.contains("refused") && l.contains("65534")),
        "the refused peer is logged: {err:?}"
    );

    // A mode that lets others connect lets nobody in.
    let uri = format!("abstract:{}", ipckit::name::unique("abstract-mode"));
    let mut recv = Proc::server(&[
        "recv",
        &uri,
        "--count",
        "1",
        "--mode",
        "666",
        "--timeout",
        "20s",
    ]);
    let s = run_as_nobody(&["send", &uri, "from nobody"]);
    assert!(s.status.success(), "{}", s.err);
    assert!(recv.wait().success());
    assert_eq!(Proc::rest(&recv.out), ["from nobody"]);
}

#[test]
fn shared_memory_larger_than_the_free_space_is_refused_and_leaves_nothing() {
    let fs = rustix::fs::statvfs("/dev/shm").unwrap();
    let free = fs.f_bavail * fs.f_frsize;
    for size in [i64::MAX as u64, free.saturating_mul(10).max(1 << 40)] {
        let name = ipckit::name::unique_posix("huge");
        let uri = format!("shm:{name}");
        let _rm = Rm(uri.clone());
        let r = run(&["send", &uri, "--create", "--size", &size.to_string(), "x"]);
        assert_eq!(r.status.code(), Some(1), "--size {size}: {}", r.err);
        assert!(
            r.err.contains(&format!("needs {size} bytes")) && r.err.contains("free"),
            "--size {size}: the numbers: {}",
            r.err
        );
        assert!(r.err.contains("ENOSPC"), "--size {size}: {}", r.err);
        assert!(
            !dev_shm(&name).exists(),
            "--size {size}: nothing is left in /dev/shm"
        );
    }
}

/// Runs `script` (sh) in a private mount namespace whose /dev/shm is a 256 KiB tmpfs, mostly
/// full: `$IPCKIT` is the binary. Its output, and its exit status.
fn in_tiny_dev_shm(script: &str) -> Ran {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg(format!(
            "set -u; mount -t tmpfs -o size=256k none /dev/shm || exit 99; \
             head -c 200000 /dev/zero > /dev/shm/fill || exit 98; {script}"
        ))
        .env("IPCKIT", env!("CARGO_BIN_EXE_ipckit"));
    run_cmd(cmd)
}

#[test]
fn a_full_dev_shm_is_enospc_at_creation_not_sigbus() {
    if !need_root() {
        return;
    }
    for (what, cmd) in [
        (
            "send shm --create",
            "\"$IPCKIT\" send shm:/x --create --size 200000 hello",
        ),
        ("recv channel", "\"$IPCKIT\" recv channel:/x --timeout 5s"),
    ] {
        // sh reports a death by signal N as 128 + N: ipckit's own codes are 0, 1 and 2.
        let r = in_tiny_dev_shm(&format!("{cmd}; echo \"status $?\"; ls -A /dev/shm"));
        assert!(r.status.success(), "{what}: the namespace: {}", r.err);
        assert_eq!(
            r.out.first().map(String::as_str),
            Some("status 1"),
            "{what}: exit 1, not a signal: {:?} {}",
            r.out,
            r.err
        );
        assert!(r.err.contains("ENOSPC"), "{what}: {}", r.err);
        assert_eq!(&r.out[1..], ["fill"], "{what}: nothing left in /dev/shm");
    }
}
