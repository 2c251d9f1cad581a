//! Names from the system that are not UTF-8, or that carry control characters, through `ls`,
//! `gc` and `rm`: a local user can plant such entries in /dev/shm, the mqueue filesystem or
//! a directory of socket files. Every command still works on them (`gc` does not fail for
//! ever), JSON gives a byte form that round-trips, the URI `ls` prints leads `rm` to exactly
//! that object, and no raw control character reaches the terminal.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use common::{Ran, text};
use serde_json::Value;

/// `ipckit ARGS`, bounded by `common::T`; asserts nothing raw of a planted name reached its
/// output.
fn ipckit(args: &[&OsStr]) -> Ran {
    let out = common::ipckit_run(args);
    for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "{args:?} wrote a raw ESC to {what}: {}",
            String::from_utf8_lossy(bytes)
        );
        // Nothing of the planted names reaches the terminal raw: no byte that is not UTF-8.
        assert!(
            std::str::from_utf8(bytes).is_ok(),
            "{args:?} wrote bytes that are not UTF-8 to {what}: {}",
            String::from_utf8_lossy(bytes)
        );
    }
    out
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn bytes_of(parts: &[&[u8]]) -> OsString {
    OsString::from_vec(parts.concat())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Files (in /dev/shm, the mqueue filesystem, a directory) removed when dropped, whatever the
/// test did; and the directory itself.
struct Planted {
    files: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Drop for Planted {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Creates `path` as an empty regular file of mode 0600, as `shm_open` would.
fn plant_file(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| panic!("planting {path:?}: {e}"));
}

/// The `ls --json` objects whose name the unique part `tag` is in.
fn ls_json(tag: &str, dir: &Path) -> Vec<Value> {
    let dir_arg = bytes_of(&[b"--dir=", dir.as_os_str().as_bytes()]);
    let name_arg = format!("--name={tag}");
    let out = ipckit(&[os("ls"), os("--json"), &dir_arg, os(&name_arg)]);
    assert!(out.status.success(), "ls --json: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ls --json is JSON")
}

#[test]
fn names_that_are_not_utf8_or_hold_control_characters_are_listed_escaped_and_removed_exactly() {
    let tag = ipckit::name::unique("test");
    // The directory's name holds the tag too, so one --name picks out every planted object.
    let dir = tempfile::Builder::new()
        .prefix(&format!("{tag}-dir-"))
        .tempdir()
        .unwrap();
    let mut planted = Planted {
        files: Vec::new(),
        dir,
    };
    let shm = |suffix: &[u8]| bytes_of(&[b"/", tag.as_bytes(), b"-", suffix]);
    // Not UTF-8; an escape sequence and a newline; a literal backslash-x that looks like an
    // escape, and the name that escape would mean, so rm can be seen to take exactly one.
    let bad_utf8 = shm(b"\xff");
    let esc = shm(b"\x1b[31mred\nline");
    let backslash = shm(b"a\\x41");
    let plain_twin = shm(b"aA");
    for name in [&bad_utf8, &esc, &backslash, &plain_twin] {
        let file = PathBuf::from(bytes_of(&[b"/dev/shm", name.as_bytes()]));
        planted.files.push(file.clone());
        plant_file(&file);
    }
    // Socket files: a stale one whose name is not UTF-8, and a live one with an escape in it.
    let stale_sock = planted.dir.path().join(OsStr::from_bytes(b"s\xfe.sock"));
    drop(std::os::unix::net::UnixListener::bind(&stale_sock).unwrap());
    let live_sock = planted
        .dir
        .path()
        .join(OsStr::from_bytes(b"live\x1b]0;owned\x07.sock"));
    let _listener = std::os::unix::net::UnixListener::bind(&live_sock).unwrap();
    // A FIFO held open, its name not UTF-8.
    let fifo = planted.dir.path().join(OsStr::from_bytes(b"f\x9b\xff"));
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let _held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    // A POSIX queue whose name is not UTF-8, when the mqueue filesystem shows queues.
    let mq = shm(b"q\xfe");
    if ipckit::mq::posix::mqueue_mounted() {
        planted
            .files
            .push(PathBuf::from(bytes_of(&[b"/dev/mqueue", mq.as_bytes()])));
        let c = std::ffi::CString::new(mq.as_bytes()).unwrap();
        // SAFETY: `c` is a valid C string; a null attr pointer asks for the defaults.
        let q = unsafe {
            libc::mq_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                0o600 as libc::mode_t,
                std::ptr::null::<libc::mq_attr>(),
            )
        };
        assert!(q >= 0, "mq_open: {}", std::io::Error::last_os_error());
        // SAFETY: `q` is the descriptor just opened.
        unsafe { libc::mq_close(q) };
    }

    // ls works, and every name is shown escaped, with its bytes in name_hex.
    let all = ls_json(&tag, planted.dir.path());
    let find = |name: &OsStr| -> Value {
        all.iter()
            .find(|o| o["name_hex"] == hex(name.as_bytes()))
            .unwrap_or_else(|| panic!("{name:?} is not listed with its bytes: {all:#?}"))
            .clone()
    };
    let mut expect: Vec<(&OsStr, &str, &str, &str)> = vec![
        (&bad_utf8, "posix-shm", "shm", "orphan"),
        (&esc, "posix-shm", "shm", "orphan"),
        (&backslash, "posix-shm", "shm", "orphan"),
        (stale_sock.as_os_str(), "unix", "unix", "stale"),
        (live_sock.as_os_str(), "unix", "unix", "live"),
        (fifo.as_os_str(), "fifo", "fifo", "live"),
    ];
    if ipckit::mq::posix::mqueue_mounted() {
        expect.push((&mq, "posix-mq", "mq", "orphan"));
    }
    for (name, kind, scheme, state) in &expect {
        let o = find(name);
        let escaped = ipckit::name::escape(name);
        assert_eq!(o["kind"], *kind, "{o}");
        assert_eq!(o["name"], escaped, "{o}");
        assert_eq!(o["uri"], format!("{scheme}:{escaped}"), "{o}");
        assert_eq!(o["state"], *state, "{o}");
    }
    // A plain name is itself, with no byte form.
    let twin = all
        .iter()
        .find(|o| o["name"] == plain_twin.to_str().unwrap())
        .expect("the plain twin is listed");
    assert!(twin["name_hex"].is_null(), "{twin}");

    // The table: one line per object, names escaped.
    let dir_arg = bytes_of(&[b"--dir=", planted.dir.path().as_os_str().as_bytes()]);
    let name_arg = format!("--name={tag}");
    let out = ipckit(&[os("ls"), &dir_arg, os(&name_arg)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert_eq!(
        table.lines().count(),
        1 + all.len(),
        "a name broke a line: {table}"
    );
    assert!(table.contains(&ipckit::name::escape(&esc)), "{table}");

    // rm takes the URI ls printed and removes exactly that object: the literal backslash
    // name, not the twin its escape would spell.
    let uri = find(&backslash)["uri"].as_str().unwrap().to_string();
    let out = ipckit(&[os("rm"), os(&uri)]);
    assert!(out.status.success(), "rm {uri}: {}", text(&out.stderr));
    let exists = |name: &OsStr| Path::new(&bytes_of(&[b"/dev/shm", name.as_bytes()])).exists();
    assert!(!exists(&backslash), "rm {uri} left it");
    assert!(exists(&plain_twin), "rm {uri} removed another object");
    // And the printed URI of a name that is not UTF-8, and the raw bytes of a socket path.
    let uri = find(&bad_utf8)["uri"].as_str().unwrap().to_string();
    let out = ipckit(&[os("rm"), os(&uri)]);
    assert!(out.status.success(), "rm {uri}: {}", text(&out.stderr));
    assert!(!exists(&bad_utf8), "rm {uri} left it");
    let raw = bytes_of(&[b"unix:", stale_sock.as_os_str().as_bytes()]);
    let out = ipckit(&[os("rm"), &raw]);
    assert!(out.status.success(), "rm {raw:?}: {}", text(&out.stderr));
    assert!(!stale_sock.exists());
    // A live one is refused, and the refusal names it escaped.
    let uri = find(live_sock.as_os_str())["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ipckit(&[os("rm"), os(&uri)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
    assert!(live_sock.exists());

    // gc: a dry run names each one escaped, its JSON with the byte form; the real run removes
    // the rest of the garbage and succeeds; the live ones stay.
    let out = ipckit(&[os("gc"), os("--dry-run"), &dir_arg, os(&name_arg)]);
    assert!(out.status.success(), "gc --dry-run: {}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("would remove shm:{}", ipckit::name::escape(&esc))),
        "{said}"
    );
    let out = ipckit(&[
        os("gc"),
        os("--json"),
        os("--dry-run"),
        &dir_arg,
        os(&name_arg),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let entry = report
        .iter()
        .find(|r| r["name_hex"] == hex(esc.as_bytes()))
        .unwrap_or_else(|| panic!("gc --json does not give the bytes: {report:#?}"));
    assert_eq!(entry["name"], ipckit::name::escape(&esc));
    for r in &report {
        // The byte form, when there is one, is the name the escaped text shows.
        if let Some(h) = r["name_hex"].as_str() {
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(
                r["name"],
                ipckit::name::escape(OsStr::from_bytes(&bytes)),
                "{r}"
            );
        }
    }

    let out = ipckit(&[os("gc"), &dir_arg, os(&name_arg)]);
    assert!(
        out.status.success(),
        "gc failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(!exists(&esc), "gc left the escape-named object");
    assert!(!exists(&plain_twin), "gc left the plain orphan");
    if ipckit::mq::posix::mqueue_mounted() {
        let file = PathBuf::from(bytes_of(&[b"/dev/mqueue", mq.as_bytes()]));
        assert!(!file.exists(), "gc left the queue");
    }
    let left = ls_json(&tag, planted.dir.path());
    let mut states: Vec<(&str, &str)> = left
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["state"].as_str().unwrap()))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [("fifo", "live"), ("unix", "live")],
        "only the live socket and the FIFO are left: {left:#?}"
    );
    assert!(live_sock.exists() && fifo.exists());
}
