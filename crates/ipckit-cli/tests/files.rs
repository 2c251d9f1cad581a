//! The files `ipckit` writes and reads on a user's behalf, end to end: the bench reports, the
//! manual pages and the bench report `advise` reads. None is written through a planted symlink,
//! into a directory another user owns or can write, or into a directory that is not there (no
//! parent is made silently); none is read from a device, a FIFO or an oversized file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ipckit::notify::pidfd::PidFd;

/// The bound on every wait.
const T: Duration = Duration::from_secs(30);

/// The quickest bench there is: one reference row, one size, 10 ms.
const TINY_BENCH: &[&str] = &[
    "bench",
    "--only",
    "ref-memcpy",
    "--sizes",
    "64",
    "--duration",
    "0.01",
    "--no-pin",
];

/// `ipckit ARGS` run in `dir`, killed if it has not exited within `T`; its output.
fn ipckit(dir: &Path, args: &[&str]) -> Output {
    ipckit_limited(dir, args, None)
}

/// As [`ipckit`], with the address space limited to `limit_kib` (so a reader that does not
/// bound what it reads fails fast instead of filling the machine's memory).
fn ipckit_limited(dir: &Path, args: &[&str], limit_kib: Option<u64>) -> Output {
    let mut cmd = match limit_kib {
        Some(kib) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_ipckit"));
            sh
        }
        None => Command::new(env!("CARGO_BIN_EXE_ipckit")),
    };
    let child = cmd
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pidfd = PidFd::open(child.id()).unwrap();
    if !pidfd.wait_exit_timeout(T).unwrap() {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        let out = child.wait_with_output().unwrap();
        panic!(
            "ipckit {args:?} did not exit within {T:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A private directory for one test, removed with all it holds on drop (even on a panic).
fn tempdir(purpose: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ipckit-files-{purpose}-"))
        .tempdir()
        .unwrap()
}

/// Removes a directory on drop, whatever made it (the code under test must not have).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when the test may go on as root; false (having said so) when it must be skipped.
fn need_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "this test needs root, and CI runs as root"
    );
    eprintln!("SKIPPED: needs root");
    false
}

const NOBODY: u32 = 65534;

/// A file only its owner may read, with known content: what a planted link points at.
fn victim(dir: &Path) -> PathBuf {
    let victim = dir.join("victim");
    std::fs::write(&victim, b"root's secret\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    victim
}

fn assert_untouched(victim: &Path) {
    let now = std::fs::read(victim).unwrap();
    assert!(
        now == b"root's secret\n",
        "the victim was overwritten: {} bytes now, starting {:?}",
        now.len(),
        String::from_utf8_lossy(&now[..now.len().min(40)])
    );
}

#[test]
fn bench_never_writes_through_a_planted_report_symlink() {
    let dir = tempdir("bench-link");
    let victim = victim(dir.path());
    let report = dir.path().join("ipckit-report");
    std::fs::create_dir(&report).unwrap();
    std::os::unix::fs::symlink(&victim, report.join("index.html")).unwrap();

    let out = ipckit(dir.path(), TINY_BENCH);
    assert_untouched(&victim);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ipckit-report/index.html") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(report.join("index.html"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left as it was"
    );
}

/// The case: root runs the bench in a world-writable sticky directory where another
/// user made `ipckit-report/` and planted `index.html` there, a link to a root-only file.
#[test]
fn bench_as_root_refuses_a_report_directory_another_user_planted() {
    if !need_root() {
        return;
    }
    let dir = tempdir("bench-planted");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = victim(dir.path());
    let report = dir.path().join("ipckit-report");
    std::fs::create_dir(&report).unwrap();
    std::os::unix::fs::symlink(&victim, report.join("index.html")).unwrap();
    std::os::unix::fs::lchown(report.join("index.html"), Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&report, Some(NOBODY), Some(NOBODY)).unwrap();

    let out = ipckit(dir.path(), TINY_BENCH);
    assert_untouched(&victim);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ipckit-report") && err.contains("nobody"),
        "{err}"
    );
    assert!(!report.join("report.json").exists());
}

#[test]
fn bench_refuses_a_report_directory_others_can_write_or_a_symlinked_one() {
    let dir = tempdir("bench-open-dir");
    let report = dir.path().join("ipckit-report");
    std::fs::create_dir(&report).unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ipckit(dir.path(), TINY_BENCH);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writable by every user"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read_dir(&report).unwrap().next().is_none());

    // ipckit-report a link to a directory elsewhere: not followed.
    let other = tempdir("bench-elsewhere");
    std::fs::remove_dir(&report).unwrap();
    std::os::unix::fs::symlink(other.path(), &report).unwrap();
    let out = ipckit(dir.path(), TINY_BENCH);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(std::fs::read_dir(other.path()).unwrap().next().is_none());
}

#[test]
fn bench_never_makes_a_missing_directory_and_says_which() {
    let dir = tempdir("bench-missing");
    let missing = dir.path().join("no-such-dir");
    let html = missing.join("x.html");
    let json = dir.path().join("r.json");
    let out = ipckit(
        dir.path(),
        &[
            TINY_BENCH,
            &[
                "--html",
                html.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ENOENT") && err.contains(missing.to_str().unwrap()),
        "{err}"
    );
    assert!(!missing.exists(), "the missing directory was made");
    // Checked before measuring: nothing was written at all.
    assert!(!json.exists());
    assert!(!dir.path().join("ipckit-report").exists());

    // Only --html given: the report directory (for the JSON) is not made for nothing either.
    let out = ipckit(
        dir.path(),
        &[TINY_BENCH, &["--html", html.to_str().unwrap()]].concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!missing.exists());
    assert!(!dir.path().join("ipckit-report").exists());

    // The issue's own example, at the root of the filesystem (only root could make it).
    if is_root() {
        let top = PathBuf::from(format!("/{}", ipckit::name::unique("nonexistent")));
        let _cleanup = RemoveOnDrop(top.clone());
        let html = top.join("x.html");
        let out = ipckit(
            dir.path(),
            &[
                TINY_BENCH,
                &[
                    "--html",
                    html.to_str().unwrap(),
                    "--json",
                    json.to_str().unwrap(),
                ],
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(top.to_str().unwrap()),
            "{}",
            stderr(&out)
        );
        assert!(!top.exists(), "{} was made", top.display());
    }
}

#[test]
fn bench_still_writes_its_reports_and_json_to_standard_output() {
    let dir = tempdir("bench-ok");
    let out = ipckit(dir.path(), TINY_BENCH);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = dir.path().join("ipckit-report");
    let meta = std::fs::symlink_metadata(&report).unwrap();
    assert!(meta.is_dir());
    assert_eq!(
        meta.mode() & 0o022,
        0,
        "the report directory is not writable by others"
    );
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(report.join("report.json").is_file());
    // Run again: the reports are replaced (no temporary file left beside them).
    let out = ipckit(dir.path(), TINY_BENCH);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<_> = std::fs::read_dir(&report)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["index.html", "report.json"]);

    let html = dir.path().join("only.html");
    let out = ipckit(
        dir.path(),
        &[
            TINY_BENCH,
            &["--json", "-", "--html", html.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert!(html.is_file());
}

#[test]
fn advise_reads_only_a_bounded_regular_report() {
    let dir = tempdir("advise");
    // /dev/zero never ends: read unbounded, it fills the memory (capped here at 1 GiB so the
    // old code fails fast rather than take the machine down).
    let limit = Some(1 << 20);
    let out = ipckit_limited(
        dir.path(),
        &["advise", "--related", "--report", "/dev/zero"],
        limit,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/dev/zero") && err.contains("character device, not a regular file"),
        "{err}"
    );

    // A FIFO: opening it for reading would wait for a writer for ever.
    let fifo = dir.path().join("report.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let out = ipckit(dir.path(), &["advise", "--report", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FIFO, not a regular file"),
        "{}",
        stderr(&out)
    );

    // A directory.
    let out = ipckit(dir.path(), &["advise", "--report", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("directory, not a regular file"),
        "{}",
        stderr(&out)
    );

    // A file over the 64 MiB a report may have (sparse: no disk used).
    let big = dir.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let out = ipckit_limited(
        dir.path(),
        &["advise", "--report", big.to_str().unwrap()],
        limit,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("67108865 bytes") && err.contains("64 MiB"),
        "{err}"
    );
}

#[test]
fn man_out_needs_the_parent_and_never_follows_a_planted_link() {
    let dir = tempdir("man");
    // A missing parent is not made.
    let deep = dir.path().join("share/man/man1");
    let out = ipckit(dir.path(), &["man", "--out", deep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ENOENT") && err.contains("share"), "{err}");
    assert!(!dir.path().join("share").exists());

    // --out naming a link to a directory elsewhere: not followed.
    let elsewhere = tempdir("man-elsewhere");
    let link = dir.path().join("man1");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let out = ipckit(dir.path(), &["man", "--out", link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none()
    );

    // A directory others can write is refused.
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ipckit(dir.path(), &["man", "--out", "man1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writable by every user"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read_dir(&link).unwrap().next().is_none());

    // A page planted as a link to a victim: the victim is untouched.
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = victim(dir.path());
    std::os::unix::fs::symlink(&victim, link.join("ipckit-ls.1")).unwrap();
    let out = ipckit(dir.path(), &["man", "ls", "--out", "man1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_untouched(&victim);

    // And a fresh directory, in a parent that is there, works.
    let fresh = dir.path().join("fresh");
    let out = ipckit(dir.path(), &["man", "--out", "fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fresh.join("ipckit.1").is_file());
    assert_eq!(
        std::fs::metadata(fresh.join("ipckit.1")).unwrap().mode() & 0o022,
        0
    );
}
