//! The files `ipckit` writes and reads on a user's behalf, end to end: the bench reports, the
//! manual pages and the bench report `advise` reads. None is written through a planted symlink,
//! into a directory another user owns or can write, or into a directory that is not there (no
//! parent is made silently); none is read from a device, a FIFO or an oversized file.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{NOBODY, Ran, RemovePath, need_root, tempdir};

/// The bound on every run: a bench, however tiny, takes longer than the other commands.
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
fn ipckit(dir: &Path, args: &[&str]) -> Ran {
    ipckit_limited(dir, args, None)
}

/// As [`ipckit`], with the address space limited to `limit_kib` (so a reader that does not
/// bound what it reads fails fast instead of filling the machine's memory).
fn ipckit_limited(dir: &Path, args: &[&str], limit_kib: Option<u64>) -> Ran {
    let mut cmd = match limit_kib {
        Some(kib) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_ipckit"));
            sh
        }
        None => common::ipckit(),
    };
    cmd.args(args).current_dir(dir);
    common::run_with_timeout(cmd, b"", T)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

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
    let dir = tempdir();
    let victim = victim(dir.path());
    let report = dir.path().join("ipckit-report");
    std::fs::create_dir(&report).unwrap();
    std::os::unix::fs::symlink(&victim, report.join("index.html")).unwrap();

    let out = ipckit(dir.path(), TINY_BENCH);
    assert_untouched(&victim);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = out.err();
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
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = victim(dir.path());
    let report = dir.path().join("ipckit-report");
    std::fs::create_dir(&report).unwrap();
    std::os::unix::fs::symlink(&victim, report.join("index.html")).unwrap();
    std::os::unix::fs::lchown(report.join("index.html"), Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&report, Some(NOBODY), Some(NOBODY)).unwrap();

    let out = ipckit(dir.path(), TINY_BENCH);
    assert_untouched(&victim);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = out.err();
    assert!(
        err.contains("ipckit-report") && err.contains("nobody"),
        "{err}"
    );
    assert!(!report.join("report.json").exists());
}

#[test]
fn bench_refuses_a_report_directory_others_can_write_or_a_symlinked_one() {
    let dir = tempdir();
    let report = dir.path().join("ipckit-report");
    std::fs::create_dir(&report).unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ipckit(dir.path(), TINY_BENCH);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(
        out.err().contains("writable by every user"),
        "{}",
        out.err()
    );
    assert!(std::fs::read_dir(&report).unwrap().next().is_none());

    // ipckit-report a link to a directory elsewhere: not followed.
    let other = tempdir();
    std::fs::remove_dir(&report).unwrap();
    std::os::unix::fs::symlink(other.path(), &report).unwrap();
    let out = ipckit(dir.path(), TINY_BENCH);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(out.err().contains("symbolic link"), "{}", out.err());
    assert!(std::fs::read_dir(other.path()).unwrap().next().is_none());
}

#[test]
fn bench_never_makes_a_missing_directory_and_says_which() {
    let dir = tempdir();
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
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = out.err();
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
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(!missing.exists());
    assert!(!dir.path().join("ipckit-report").exists());

    // The issue's own example, at the root of the filesystem (only root could make it).
    if is_root() {
        let top = PathBuf::from(format!("/{}", ipckit::name::unique("nonexistent")));
        let _cleanup = RemovePath(top.clone());
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
        assert_eq!(out.status.code(), Some(1), "{}", out.err());
        assert!(out.err().contains(top.to_str().unwrap()), "{}", out.err());
        assert!(!top.exists(), "{} was made", top.display());
    }
}

#[test]
fn bench_still_writes_its_reports_and_json_to_standard_output() {
    let dir = tempdir();
    let out = ipckit(dir.path(), TINY_BENCH);
    assert!(out.status.success(), "{}", out.err());
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
    assert!(out.status.success(), "{}", out.err());
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
    assert!(out.status.success(), "{}", out.err());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert!(html.is_file());
}

#[test]
fn advise_reads_only_a_bounded_regular_report() {
    let dir = tempdir();
    // /dev/zero never ends: read unbounded, it fills the memory (capped here at 1 GiB so the
    // old code fails fast rather than take the machine down).
    let limit = Some(1 << 20);
    let out = ipckit_limited(
        dir.path(),
        &["advise", "--related", "--report", "/dev/zero"],
        limit,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = out.err();
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
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(
        out.err().contains("FIFO, not a regular file"),
        "{}",
        out.err()
    );

    // A directory.
    let out = ipckit(dir.path(), &["advise", "--report", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(
        out.err().contains("directory, not a regular file"),
        "{}",
        out.err()
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
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = out.err();
    assert!(
        err.contains("67108865 bytes") && err.contains("64 MiB"),
        "{err}"
    );
}

#[test]
fn man_out_needs_the_parent_and_never_follows_a_planted_link() {
    let dir = tempdir();
    // A missing parent is not made.
    let deep = dir.path().join("share/man/man1");
    let out = ipckit(dir.path(), &["man", "--out", deep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = out.err();
    assert!(err.contains("ENOENT") && err.contains("share"), "{err}");
    assert!(!dir.path().join("share").exists());

    // --out naming a link to a directory elsewhere: not followed.
    let elsewhere = tempdir();
    let link = dir.path().join("man1");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let out = ipckit(dir.path(), &["man", "--out", link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(out.err().contains("symbolic link"), "{}", out.err());
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
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(
        out.err().contains("writable by every user"),
        "{}",
        out.err()
    );
    assert!(std::fs::read_dir(&link).unwrap().next().is_none());

    // A page planted as a link to a victim: the victim is untouched.
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = victim(dir.path());
    std::os::unix::fs::symlink(&victim, link.join("ipckit-ls.1")).unwrap();
    let out = ipckit(dir.path(), &["man", "ls", "--out", "man1"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert_untouched(&victim);

    // And a fresh directory, in a parent that is there, works.
    let fresh = dir.path().join("fresh");
    let out = ipckit(dir.path(), &["man", "--out", "fresh"]);
    assert!(out.status.success(), "{}", out.err());
    assert!(fresh.join("ipckit.1").is_file());
    assert_eq!(
        std::fs::metadata(fresh.join("ipckit.1")).unwrap().mode() & 0o022,
        0
    );
}
