//! `ipckit::files`: writes that no planted symlink redirects, no directory another user
//! controls receives, no missing directory is made for; reads that take only a bounded
//! regular file and never block.

use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use ipckit::files::{self, Options};
use ipckit::{Errno, ErrorKind};

/// The bound on every wait.
const T: Duration = Duration::from_secs(20);

const NOBODY: u32 = 65534;

/// A private directory for one test (`ipckit-files-*` under the temp dir), removed with all
/// it holds on drop, even on a panic.
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ipckit-files-test-")
        .tempdir()
        .unwrap()
}

fn entries(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// True when the test may go on as root; false (having said so) when it must be skipped.
fn need_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "this test needs root, and CI runs as root"
    );
    eprintln!("SKIPPED: needs root");
    false
}

/// Runs `f` on another thread and waits at most `T` for it: a call that blocks (opening a
/// FIFO) fails the test instead of hanging it.
fn bounded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(T).expect("the call blocked")
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn victim(dir: &Path) -> PathBuf {
    let victim = dir.join("victim");
    std::fs::write(&victim, b"secret").unwrap();
    chmod(&victim, 0o600);
    victim
}

#[test]
fn write_makes_a_file_and_replaces_one_whole() {
    let dir = tempdir();
    let path = dir.path().join("report.json");
    files::write(&path, b"first").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode & !0o644, 0, "mode {mode:o}");
    let ino = std::fs::metadata(&path).unwrap().ino();

    files::write_with(&path, b"second", &Options::default().private(true)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o077, 0, "private");
    assert_ne!(
        meta.ino(),
        ino,
        "a new file renamed into place, not the old one rewritten"
    );
    assert_eq!(
        entries(dir.path()),
        ["report.json"],
        "no temporary file left"
    );
}

#[test]
fn a_symlink_at_the_target_is_neither_followed_nor_replaced() {
    let dir = tempdir();
    let victim = victim(dir.path());
    let link = dir.path().join("index.html");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = files::write(&link, b"<html>").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::LOOP), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"secret");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A dangling one too: it would have created the file it names.
    let nowhere = dir.path().join("nowhere");
    let dangling = dir.path().join("dangling.html");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    assert!(files::write(&dangling, b"x").is_err());
    assert!(!nowhere.exists());
    assert!(files::check_write(&link).is_err());
}

#[test]
fn a_missing_directory_is_enoent_naming_it_and_is_not_made() {
    let dir = tempdir();
    let missing = dir.path().join("missing");
    for path in [missing.join("x.html"), missing.join("deeper/x.html")] {
        let err = files::write(&path, b"x").unwrap_err();
        assert_eq!(err.errno(), Some(Errno::NOENT), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "the directory {} does not exist",
                missing.display()
            )),
            "{text}"
        );
        assert!(!missing.exists());
        let err = files::create_dir(&path).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::NOENT), "{err}");
        assert!(!missing.exists());
    }
}

#[test]
fn a_directory_others_can_write_is_refused_unless_sticky() {
    let dir = tempdir();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let err = files::write(open.join("x.html"), b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(
        text.contains("writable by every user (mode 0777, not sticky)") && text.contains("chmod"),
        "{text}"
    );
    assert!(entries(&open).is_empty());
    // On the way to the file counts as much as the file's own directory.
    std::fs::create_dir(open.join("mine")).unwrap();
    chmod(&open.join("mine"), 0o755);
    assert!(files::write(open.join("mine/x.html"), b"x").is_err());
    assert!(entries(&open.join("mine")).is_empty());
    // create_dir takes no such directory either, nor makes one in it.
    assert!(files::create_dir(&open).is_err());
    assert!(files::create_dir(open.join("new")).is_err());
    assert!(!open.join("new").exists());

    // Sticky (as /tmp): others may add names, not take the caller's away.
    chmod(&open, 0o1777);
    files::write(open.join("x.html"), b"x").unwrap();
    files::write(open.join("mine/x.html"), b"x").unwrap();
    files::create_dir(&open).unwrap();
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    if !need_root() {
        return;
    }
    let dir = tempdir();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = files::write(theirs.join("x.html"), b"x").unwrap_err();
    assert!(err.to_string().contains("belongs to uid 65534"), "{err}");
    assert!(entries(&theirs).is_empty());
    let err = files::create_dir(&theirs).unwrap_err();
    assert!(err.to_string().contains("belongs to uid 65534"), "{err}");
    assert!(files::create_dir(theirs.join("sub")).is_err());

    // A directory of root's inside another user's: that user can rename it away and put a
    // link in its place, so the walk refuses to pass through.
    let victims = dir.path().join("victims");
    std::fs::create_dir(&victims).unwrap();
    std::fs::create_dir(theirs.join("sub")).unwrap();
    assert!(files::write(theirs.join("sub/x.html"), b"x").is_err());
    // ... nor through a link that user owns to a directory of root's.
    std::fs::remove_dir(theirs.join("sub")).unwrap();
    std::os::unix::fs::symlink(&victims, theirs.join("sub")).unwrap();
    std::os::unix::fs::lchown(theirs.join("sub"), Some(NOBODY), Some(NOBODY)).unwrap();
    assert!(files::write(theirs.join("sub/x.html"), b"x").is_err());
    assert!(entries(&victims).is_empty());

    // Group-writable, the group not the owner's alone (nogroup holds nobody).
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(0), Some(NOBODY)).unwrap();
    chmod(&shared, 0o775);
    let err = files::write(shared.join("x"), b"x").unwrap_err();
    assert!(err.to_string().contains("writable by its group"), "{err}");
    chmod(&shared, 0o755);
    files::write(shared.join("x"), b"x").unwrap();
}

#[test]
fn a_symlink_on_the_way_is_followed_only_if_the_caller_or_root_owns_it() {
    let dir = tempdir();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink("real", dir.path().join("alias")).unwrap();
    files::write(dir.path().join("alias/x"), b"x").unwrap();
    assert_eq!(std::fs::read(real.join("x")).unwrap(), b"x");
    // An absolute one too, and one through another.
    std::os::unix::fs::symlink(&real, dir.path().join("abs")).unwrap();
    std::os::unix::fs::symlink("abs", dir.path().join("chain")).unwrap();
    files::write(dir.path().join("chain/y"), b"y").unwrap();
    assert_eq!(std::fs::read(real.join("y")).unwrap(), b"y");
    // A loop ends in ELOOP, not a hang.
    std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
    let err = files::write(dir.path().join("loop/x"), b"x").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::LOOP), "{err}");

    if !need_root() {
        return;
    }
    // In a sticky directory, another user's link is not followed (protected_symlinks).
    chmod(dir.path(), 0o1777);
    std::os::unix::fs::lchown(dir.path().join("alias"), Some(NOBODY), Some(NOBODY)).unwrap();
    let err = files::write(dir.path().join("alias/z"), b"z").unwrap_err();
    assert!(
        err.to_string()
            .contains("symbolic link that belongs to uid 65534"),
        "{err}"
    );
    assert!(!real.join("z").exists());
}

#[test]
fn what_is_not_a_regular_file_at_the_target_is_refused_without_blocking() {
    let dir = tempdir();
    let fifo = dir.path().join("report.fifo");
    mkfifo(&fifo);
    let path = fifo.clone();
    let err = bounded(move || files::write(&path, b"x")).unwrap_err();
    assert!(
        err.to_string().contains("FIFO, not a regular file"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO is left in place"
    );

    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let err = files::write(&sub, b"x").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ISDIR), "{err}");
    // Every failure leaves no temporary file behind.
    assert_eq!(entries(dir.path()), ["report.fifo", "sub"]);
    assert!(entries(&sub).is_empty());
}

#[test]
fn a_sticky_directory_keeps_another_users_file() {
    if !need_root() {
        return;
    }
    let dir = tempdir();
    chmod(dir.path(), 0o1777);
    let theirs = dir.path().join("report.html");
    std::fs::write(&theirs, b"theirs").unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = files::write(&theirs, b"root's").unwrap_err();
    assert!(err.to_string().contains("belongs to uid 65534"), "{err}");
    assert_eq!(std::fs::read(&theirs).unwrap(), b"theirs");
    assert_eq!(entries(dir.path()), ["report.html"]);
}

#[test]
fn create_dir_makes_one_level_and_takes_only_a_real_trusted_directory() {
    let dir = tempdir();
    let report = dir.path().join("ipckit-report");
    files::create_dir(&report).unwrap();
    let meta = std::fs::symlink_metadata(&report).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o022, 0);
    files::create_dir(&report).unwrap(); // there already: fine

    let private = dir.path().join("private");
    files::create_dir_with(&private, &Options::default().private(true)).unwrap();
    assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o077, 0);

    // A link to a directory is not taken, even the caller's own.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&report, &link).unwrap();
    let err = files::create_dir(&link).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::LOOP), "{err}");
    // Nor a file.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let err = files::create_dir(dir.path().join("file")).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EXIST), "{err}");
}

#[test]
fn read_bounded_takes_only_a_regular_file_of_at_most_max_bytes() {
    let dir = tempdir();
    let path = dir.path().join("report.json");
    std::fs::write(&path, b"0123456789").unwrap();
    assert_eq!(files::read_bounded(&path, 10).unwrap(), b"0123456789");
    assert_eq!(
        files::read_to_string_bounded(&path, 100).unwrap(),
        "0123456789"
    );
    let err = files::read_bounded(&path, 9).unwrap_err();
    assert!(
        err.to_string()
            .contains("it has 10 bytes, over the limit of 9 bytes"),
        "{err}"
    );
    // A link to a regular file is read: the caller named it.
    std::os::unix::fs::symlink(&path, dir.path().join("link")).unwrap();
    assert_eq!(
        files::read_bounded(dir.path().join("link"), 10).unwrap(),
        b"0123456789"
    );

    // /dev/zero never ends: refused before a byte is read.
    let err = bounded(|| files::read_bounded("/dev/zero", 1 << 20)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("reading /dev/zero: it is a character device, not a regular file"),
        "{err}"
    );
    // A FIFO nobody writes: its open would wait for ever.
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let err = bounded(move || files::read_bounded(&fifo, 1 << 20)).unwrap_err();
    assert!(
        err.to_string().contains("FIFO, not a regular file"),
        "{err}"
    );
    // A directory.
    let err = files::read_bounded(dir.path(), 1 << 20).unwrap_err();
    assert!(
        err.to_string().contains("directory, not a regular file"),
        "{err}"
    );
    // A socket.
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let err = files::read_bounded(&sock, 1 << 20).unwrap_err();
    assert!(
        err.to_string().contains("socket, not a regular file"),
        "{err}"
    );
    // Oversized, sparse: no disk used, refused with both numbers.
    let big = dir.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let err = files::read_bounded(&big, 64 << 20).unwrap_err();
    assert!(
        err.to_string()
            .contains("it has 67108865 bytes, over the limit of 67108864 bytes (64 MiB)"),
        "{err}"
    );
    // Missing.
    let err = files::read_bounded(dir.path().join("missing"), 10).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::NOENT));
    // Not text.
    std::fs::write(&path, b"\xff\xfe").unwrap();
    let err = files::read_to_string_bounded(&path, 10).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}
