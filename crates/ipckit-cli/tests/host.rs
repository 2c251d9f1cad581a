//! `ipckit ls`, `rm` and `gc` against real objects: children that make every kind of object
//! and are killed with SIGKILL leave orphans that `ls` flags and `gc` removes, while objects in
//! use are listed live and survive; objects made by ipcmk are listed as lsipc lists them.
//!
//! Every test names its own objects (keys and names unique to this process) and filters `ls`
//! and `gc` to them, so tests running at the same time never touch each other's objects. A
//! guard removes everything a test made, even when an assertion fails.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::spawn::{child, hear, role, say};
use common::{Ran, RemovePath, RemoveSegmentByKey, text};
use ipckit::mq::posix::{PosixMq, mqueue_mounted};
use ipckit::mq::sysv::SysvMq;
use ipckit::name::SysvKey;
use ipckit::shm::posix::PosixShm;
use ipckit::shm::sysv::SysvShm;
use ipckit::sync::sem_posix::{self, PosixSem};
use ipckit::sync::sem_sysv::{self, SemOp, SysvSemSet};
use serde_json::Value;

fn ipckit(args: &[&str]) -> Ran {
    common::ipckit_run(args)
}

/// A System V key unique to this test process and `salt` (below 16): the whole pid is mixed
/// in, so two test runs at once do not share keys.
fn key(salt: i32) -> i32 {
    let mixed = std::process::id().wrapping_mul(0x9e37_79b1) >> 8;
    0x2d00_0000 | (mixed as i32 & 0x00ff_fff0) | salt
}

fn hex(key: i32) -> String {
    format!("{key:#010x}")
}

/// One of every kind of object, named for one test, removed on drop whatever happened.
struct Objects {
    shm_key: i32,
    msg_key: i32,
    sem_key: i32,
    shm: String,
    sem: String,
    mq: String,
    dir: tempfile::TempDir,
}

impl Objects {
    fn new(salt: i32) -> Objects {
        Objects {
            shm_key: key(salt),
            msg_key: key(salt + 1),
            sem_key: key(salt + 2),
            // Named once the child runs: the tag in a name records its maker's pid.
            shm: String::new(),
            sem: String::new(),
            mq: String::new(),
            dir: tempfile::Builder::new()
                .prefix("ipckit-hosttest-")
                .tempdir()
                .unwrap(),
        }
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("s.sock")
    }

    /// The --name filters that pick out exactly these objects.
    fn filters(&self) -> Vec<String> {
        let sock = self.sock().display().to_string();
        let mut names = vec![
            hex(self.shm_key),
            hex(self.msg_key),
            hex(self.sem_key),
            self.shm.clone(),
            self.sem.clone(),
            self.mq.clone(),
            sock,
        ];
        names.iter_mut().for_each(|n| *n = format!("--name={n}"));
        names
    }

    /// `ipckit ls --json` of these objects, by kind.
    fn ls(&self) -> (HashMap<String, Value>, String) {
        let mut args = vec!["ls", "--json"];
        let filters = self.filters();
        args.extend(filters.iter().map(String::as_str));
        let out = ipckit(&args);
        assert!(out.status.success(), "ls failed: {}", text(&out.stderr));
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("ls --json is JSON");
        let by_kind = all
            .into_iter()
            .map(|o| (o["kind"].as_str().unwrap().to_string(), o))
            .collect();
        (by_kind, text(&out.stderr))
    }

    fn gc(&self, extra: &[&str]) -> Ran {
        let mut args = vec!["gc"];
        args.extend_from_slice(extra);
        let filters = self.filters();
        args.extend(filters.iter().map(String::as_str));
        ipckit(&args)
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        if let Ok(s) = SysvShm::open(SysvKey::Key(self.shm_key), ipckit::Access::ReadOnly) {
            let _ = s.remove();
        }
        if let Ok(q) = SysvMq::open(SysvKey::Key(self.msg_key), ipckit::Access::ReadOnly) {
            let _ = q.remove();
        }
        if let Ok(s) = SysvSemSet::open(SysvKey::Key(self.sem_key), ipckit::Access::ReadWrite) {
            let _ = s.remove();
        }
        let _ = ipckit::shm::posix::remove(&self.shm);
        let _ = sem_posix::remove(&self.sem);
        let _ = ipckit::mq::posix::remove(&self.mq);
    }
}

/// POSIX names with ipckit's tag for creator `pid`, as `ipckit::name::unique` makes them.
fn tagged_names(pid: u32, salt: &str) -> Vec<String> {
    ["shm", "sem", "mq"]
        .iter()
        .map(|p| format!("/ipckit-hosttest-{p}-{pid}-0-{salt}"))
        .collect()
}

/// The child role: make one of every kind, keep them in use, and wait to be killed.
fn make_everything() {
    let arg = |n: &str| common::spawn::arg(n);
    let k = |n: &str| SysvKey::Key(arg(n).parse().unwrap());
    let shm = SysvShm::create(k("SHM_KEY"), &ipckit::shm::sysv::Options::new(4096))
        .unwrap()
        .persist();
    let _attached = shm.attach().unwrap();
    let q = SysvMq::create(k("MSG_KEY"), &ipckit::mq::sysv::Options::default())
        .unwrap()
        .persist();
    q.send(b"left behind", 1).unwrap();
    let set = SysvSemSet::create(k("SEM_KEY"), &sem_sysv::Options::new(2))
        .unwrap()
        .persist();
    set.op(&[SemOp::post(1).no_undo()]).unwrap();
    let names = tagged_names(std::process::id(), &arg("SALT"));
    let pshm = PosixShm::create(&names[0], &ipckit::shm::posix::Options::new(4096))
        .unwrap()
        .persist();
    let _mapped = pshm.map().unwrap();
    let _psem = PosixSem::create(&names[1], &sem_posix::Options::new(0))
        .unwrap()
        .persist();
    let _mq = PosixMq::create(&names[2], &ipckit::mq::posix::Options::default())
        .unwrap()
        .persist();
    // std's listener leaves its file behind, as a C server killed mid-run does.
    let _listener = std::os::unix::net::UnixListener::bind(arg("SOCK")).unwrap();
    say("ready");
    hear();
}

#[test]
fn child_role() {
    match role().as_deref() {
        Some("make") => make_everything(),
        Some("block-recv") => {
            let key = common::spawn::arg("KEY");
            let key = i32::from_str_radix(key.trim_start_matches("0x"), 16).unwrap();
            let q = SysvMq::open(SysvKey::Key(key), ipckit::Access::ReadOnly).unwrap();
            say("ready");
            // Type 2 never comes: msgrcv blocks until the parent kills this process.
            let mut buf = [0u8; 64];
            let _ = q.recv(
                &mut buf,
                ipckit::mq::sysv::TypeFilter::from_msgtyp(2, false).unwrap(),
                false,
            );
        }
        Some("idle") => {
            say("ready");
            hear();
        }
        Some("bind-unlistened") => {
            // Bound, never listening: a connect is refused, as for a stale file, but the
            // socket is alive (a server between bind and listen).
            let _sock = bind_unlistened(Path::new(&common::spawn::arg("SOCK")));
            say("ready");
            hear();
        }
        Some("make-segment") => {
            let k = SysvKey::Key(common::spawn::arg("KEY").parse().unwrap());
            let _ = SysvShm::create(k, &ipckit::shm::sysv::Options::new(4096))
                .unwrap()
                .persist();
            say("made");
        }
        _ => {}
    }
}

#[test]
fn killed_children_leave_orphans_that_ls_flags_and_gc_removes() {
    // Salts 10 to 12: no other test here uses them.
    let mut objs = Objects::new(10);
    let salt = format!("{:x}", key(0));
    let mut maker = child("child_role", "make")
        .arg("SHM_KEY", objs.shm_key)
        .arg("MSG_KEY", objs.msg_key)
        .arg("SEM_KEY", objs.sem_key)
        .arg("SOCK", objs.sock().display())
        .arg("SALT", &salt)
        .start();
    // Known before the child makes anything, so the guard removes them whatever happens.
    let names = tagged_names(maker.pid() as u32, &salt);
    objs.shm = names[0].clone();
    objs.sem = names[1].clone();
    objs.mq = names[2].clone();
    assert_eq!(maker.line(), "ready");
    let pid = maker.pid() as u64;
    let kinds = [
        "sysv-shm",
        "sysv-mq",
        "sysv-sem",
        "posix-shm",
        "posix-sem",
        "posix-mq",
        "unix",
    ];

    // In use: every one is listed live, with the child as the user.
    let (live, notes) = objs.ls();
    for kind in kinds {
        let o = live
            .get(kind)
            .unwrap_or_else(|| panic!("{kind} not listed: {live:?}"));
        assert_eq!(o["state"], "live", "{kind}: {o}");
        let named = o["pids"].as_array().unwrap().contains(&pid.into())
            || o["reason"].as_str().unwrap().contains(&pid.to_string());
        assert!(named, "{kind} does not name its user {pid}: {o}");
    }
    assert_eq!(live["sysv-shm"]["nattch"], 1);
    assert_eq!(live["sysv-mq"]["msgs"], 1);
    assert_eq!(live["sysv-sem"]["nsems"], 2);
    assert_eq!(
        live["posix-shm"]["creator"]["pid"], pid,
        "the ipckit tag names the creator"
    );
    if !mqueue_mounted() {
        assert!(
            notes.contains("mqueue filesystem is not mounted"),
            "{notes}"
        );
    }

    // gc keeps everything in use.
    let out = objs.gc(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).trim().is_empty(),
        "gc removed: {}",
        text(&out.stdout)
    );
    assert_eq!(objs.ls().0.len(), kinds.len(), "gc removed a live object");

    maker.kill();
    // Without the mqueue filesystem a queue nobody holds cannot be seen at all.
    let dead: Vec<&str> = kinds
        .into_iter()
        .filter(|k| *k != "posix-mq" || mqueue_mounted())
        .collect();
    let (after, _) = objs.ls();
    for kind in &dead {
        let o = after
            .get(*kind)
            .unwrap_or_else(|| panic!("{kind} not listed after the kill: {after:?}"));
        let want = if *kind == "unix" { "stale" } else { "orphan" };
        assert_eq!(o["state"], want, "{kind}: {o}");
        assert!(o["pids"].as_array().unwrap().is_empty(), "{kind}: {o}");
    }
    // The name's ipckit tag still names the dead creator: nothing else records it.
    assert_eq!(after["posix-shm"]["creator"]["pid"], pid);
    assert_eq!(after["posix-shm"]["creator"]["alive"], false);
    assert_eq!(after["posix-shm"]["creator"]["purpose"], "hosttest-shm");
    let orphans = ipckit(&[
        "ls",
        "--orphans",
        "--json",
        &format!("--name={}", hex(objs.shm_key)),
    ]);
    let orphans: Vec<Value> = serde_json::from_slice(&orphans.stdout).unwrap();
    assert_eq!(orphans.len(), 1, "--orphans lists the dead child's segment");

    // --dry-run says what it would remove and removes nothing.
    let out = objs.gc(&["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for kind in &dead {
        assert!(
            said.contains(after[*kind]["uri"].as_str().unwrap()),
            "dry run does not mention {kind}: {said}"
        );
    }
    assert!(
        said.lines().all(|l| l.starts_with("would remove ")),
        "{said}"
    );
    assert_eq!(
        objs.ls().0.len(),
        after.len(),
        "--dry-run removed something"
    );

    // gc removes them all and says so, one line each.
    let out = objs.gc(&["--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.len(), dead.len(), "{report:?}");
    assert!(
        report.iter().all(|r| r["action"] == "removed"),
        "{report:?}"
    );
    let (left, _) = objs.ls();
    assert!(left.is_empty(), "gc left: {left:?}");
    assert!(SysvShm::open(SysvKey::Key(objs.shm_key), ipckit::Access::ReadOnly).is_err());
    assert!(SysvMq::open(SysvKey::Key(objs.msg_key), ipckit::Access::ReadOnly).is_err());
    assert!(SysvSemSet::open(SysvKey::Key(objs.sem_key), ipckit::Access::ReadWrite).is_err());
    assert!(!Path::new(&format!("/dev/shm{}", objs.shm)).exists());
    assert!(!Path::new(&format!("/dev/shm/sem.{}", &objs.sem[1..])).exists());
    assert!(!objs.sock().exists());
}

#[test]
fn a_stale_socket_file_is_removed_and_a_bound_one_kept() {
    let dir = tempfile::Builder::new()
        .prefix("ipckit-hosttest-")
        .tempdir()
        .unwrap();
    let stale = dir.path().join("stale.sock");
    let bound = dir.path().join("bound.sock");
    // Bound and closed: the file stays, and nothing is bound to it.
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let addr = ipckit::socket::unix::UnixAddr::Path(bound.clone());
    let listener = ipckit::socket::unix::UnixListener::bind(
        &addr,
        &ipckit::socket::unix::BindOptions::default(),
    )
    .unwrap();
    let dir_arg = format!("--dir={}", dir.path().display());
    let name_arg = format!("--name={}", dir.path().display());

    let out = ipckit(&["ls", "--kind", "unix", "--json", &dir_arg, &name_arg]);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let state = |p: &Path| {
        all.iter()
            .find(|o| o["name"] == p.display().to_string())
            .map(|o| o["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state(&stale).as_deref(), Some("stale"), "{all:?}");
    assert_eq!(state(&bound).as_deref(), Some("live"), "{all:?}");

    let out = ipckit(&["gc", "--kind", "unix", &dir_arg, &name_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("removed unix:{}", stale.display())),
        "{}",
        text(&out.stdout)
    );
    assert!(!stale.exists(), "the stale file is still there");
    assert!(bound.exists(), "gc removed a bound socket's file");
    // And the bound one still answers.
    let conn = ipckit::socket::unix::UnixStream::connect(&addr).unwrap();
    drop(conn);
    drop(listener);
}

#[test]
fn rm_refuses_an_object_in_use_and_names_its_user_unless_forced() {
    let name = ipckit::name::unique_posix("hosttest-rm");
    let shm = PosixShm::create(&name, &ipckit::shm::posix::Options::new(4096)).unwrap();
    let uri = format!("shm:{name}");
    let out = ipckit(&["rm", &uri]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("in use"), "{err}");
    assert!(
        err.contains(&std::process::id().to_string()),
        "does not name the user: {err}"
    );
    assert!(Path::new(&format!("/dev/shm{name}")).exists());

    let out = ipckit(&["rm", "--force", &uri]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!Path::new(&format!("/dev/shm{name}")).exists());
    drop(shm);

    // By id, for System V: this process made the segment and is alive, so it is in use.
    let seg =
        SysvShm::create(SysvKey::Key(key(9)), &ipckit::shm::sysv::Options::new(4096)).unwrap();
    let id = format!("sysv-shm:{}", seg.id());
    let out = ipckit(&["rm", "--id", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("its creator"),
        "{}",
        text(&out.stderr)
    );
    let out = ipckit(&["rm", "--force", "--id", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(SysvShm::open(SysvKey::Key(key(9)), ipckit::Access::ReadOnly).is_err());
    let _ = seg.persist();

    // Nothing there, a bad id, a TCP port: one clear line each, exit 1 or 2.
    let out = ipckit(&[
        "rm",
        "shm:/ipckit-hosttest-none",
        "--id",
        "sysv-shm:2147483000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no such object"),
        "{}",
        text(&out.stderr)
    );
    let out = ipckit(&["rm", "--id", "sysv-shm:x"]);
    assert_eq!(out.status.code(), Some(2), "a bad id is a usage error");
    assert!(
        text(&out.stderr).contains("is not an id"),
        "{}",
        text(&out.stderr)
    );
    let out = ipckit(&["rm"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Removes what ipcmk made, whatever happens.
struct Ipcrm(Vec<(&'static str, String)>);

impl Drop for Ipcrm {
    fn drop(&mut self) {
        for (flag, id) in &self.0 {
            let mut ipcrm = Command::new("ipcrm");
            ipcrm.args([flag, id.as_str()]);
            // It may be gone already (removed by the test): only the wait matters here.
            let _ = common::run(ipcrm);
        }
    }
}

fn ipcmk(args: &[&str]) -> String {
    let mut ipcmk = Command::new("ipcmk");
    ipcmk.args(args);
    let out = common::run(ipcmk);
    assert!(out.status.success(), "ipcmk (util-linux): {}", out.err());
    text(&out.stdout)
        .split_whitespace()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn objects_made_by_ipcmk_are_listed_like_lsipc_lists_them() {
    let mut made = Ipcrm(Vec::new());
    let shm = ipcmk(&["-M", "8192", "-p", "0640"]);
    made.0.push(("-m", shm.clone()));
    let msg = ipcmk(&["-Q", "-p", "0600"]);
    made.0.push(("-q", msg.clone()));
    let sem = ipcmk(&["-S", "3", "-p", "0660"]);
    made.0.push(("-s", sem.clone()));

    for (flag, kind, id, table, fields) in [
        (
            "-m",
            "sysv-shm",
            &shm,
            "sharedmemory",
            &["key", "perms", "owner", "size", "nattch", "cpid", "lpid"][..],
        ),
        (
            "-q",
            "sysv-mq",
            &msg,
            "messages",
            &[
                "key",
                "perms",
                "owner",
                "usedbytes",
                "msgs",
                "lspid",
                "lrpid",
            ][..],
        ),
        (
            "-s",
            "sysv-sem",
            &sem,
            "semaphores",
            &["key", "perms", "owner", "nsems"][..],
        ),
    ] {
        let mut lsipc = Command::new("lsipc");
        lsipc.args([flag, "--json", "--bytes"]);
        let out = common::run(lsipc);
        assert!(out.status.success(), "lsipc (util-linux): {}", out.err());
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        let theirs = theirs[table]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("lsipc does not list {kind} {id}"))
            .clone();
        let key = theirs["key"].as_str().unwrap().to_string();
        let out = ipckit(&["ls", "--json", "--kind", kind, &format!("--name={key}")]);
        let ours: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        let ours = ours
            .iter()
            .find(|o| o["id"].as_i64().map(|v| v.to_string()).as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("ipckit ls does not list {kind} {id}: {ours:?}"));
        for field in fields {
            let ours = match &ours[*field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                theirs[*field].as_str().unwrap_or("null"),
                ours,
                "{kind} {id}: {field}"
            );
        }
        // ipcmk has exited. The segment records it as creator: an orphan lsipc cannot flag.
        // A queue or set records no creator, and nobody has used it: nothing proves it unused.
        let want = if kind == "sysv-shm" {
            "orphan"
        } else {
            "unknown"
        };
        assert_eq!(ours["state"], want, "{kind}: {ours}");
    }
}

#[test]
fn gc_reports_a_removal_it_may_not_make_and_exits_1() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to make an object another user may not remove");
        return;
    }
    // A stale socket file in a directory only root may write: nobody sees it is stale (a
    // connect is refused) but may not unlink it.
    let dir = tempfile::Builder::new()
        .prefix("ipckit-hosttest-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    std::fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut cmd = common::ipckit();
    cmd.args([
        "gc",
        "--kind",
        "unix",
        &format!("--dir={}", dir.path().display()),
        &format!("--name={}", dir.path().display()),
    ]);
    // SAFETY: setgid and setuid are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = common::run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("failed unix:{}", stale.display())),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("1 failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(stale.exists(), "the file was removed");
}

#[test]
fn ls_rejects_bad_input_with_a_clear_error() {
    for (args, code, says) in [
        (&["ls", "--kind", "sysv-bogus"][..], 2, "unknown kind"),
        (&["ls", "-o", "KEY,NOPE"][..], 2, "unknown column"),
        (&["ls", "--user", "no-such-user-ipckit"][..], 2, "no user"),
        (&["gc", "--older-than", "soon"][..], 2, "soon"),
    ] {
        let out = ipckit(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Chosen columns, in the order given.
    let out = ipckit(&["ls", "-o", "kind,state", "--kind", "sysv-shm"]);
    assert!(out.status.success());
    let header = text(&out.stdout);
    let header: Vec<&str> = header.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["KIND", "STATE"]);
}

#[test]
fn older_than_spares_a_recent_orphan() {
    let (_guard, msg, key) = queue_sent_to_by_a_dead_process(4, "600");
    let name = format!("--name={key}");
    let out = ipckit(&["gc", "--older-than", "1day", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("1 orphans used within --older-than"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        SysvMq::open_id(msg.parse().unwrap(), ipckit::Access::ReadOnly).is_ok(),
        "a recent orphan was removed"
    );
    let out = ipckit(&["gc", "--older-than", "0s", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("removed sysv-mq:{key}")),
        "{}",
        text(&out.stdout)
    );
    assert!(SysvMq::open_id(msg.parse().unwrap(), ipckit::Access::ReadOnly).is_err());
}

#[test]
fn fifos_and_pipes_are_listed_with_their_readers_and_writers() {
    let dir = tempfile::Builder::new()
        .prefix("ipckit-hosttest-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("f");
    let fifo = ipckit::stream::fifo::Fifo::create(&path, &ipckit::stream::fifo::Options::default())
        .unwrap();
    let reader = ipckit::stream::fifo::try_open_read(&path).unwrap();
    let writer = ipckit::stream::fifo::try_open_write(&path).unwrap();
    let me = u64::from(std::process::id());

    let out = ipckit(&[
        "ls",
        "--kind",
        "fifo",
        "--json",
        &format!("--name={}", path.display()),
    ]);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["detail"], "1 reader, 1 writer");
    assert_eq!(all[0]["pids"], serde_json::json!([me]));
    drop(writer);
    let out = ipckit(&[
        "ls",
        "--kind",
        "fifo",
        "--json",
        &format!("--name={}", path.display()),
    ]);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        all[0]["reason"].as_str().unwrap().contains("no writer"),
        "{all:?}"
    );
    drop(reader);
    drop(fifo);

    // This process holds the write end of the child's stdin, the child its read end.
    let mut idle = child("child_role", "idle").start();
    assert_eq!(idle.line(), "ready");
    let theirs = idle.pid() as u64;
    let out = ipckit(&["ls", "--pipes", "--kind", "pipe", "--json"]);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let between = all.iter().find(|p| {
        p["holders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["pid"] == me && h["write"] == true)
            && p["holders"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["pid"] == theirs && h["read"] == true)
    });
    assert!(
        between.is_some(),
        "no pipe from {me} to {theirs} in {all:?}"
    );
    idle.tell("done");
    idle.success();
}

/// A System V queue that an `ipckit send` sent one message to and exited: an orphan. Returns
/// a guard that removes it, its id and its key in hex.
fn queue_sent_to_by_a_dead_process(salt: i32, mode: &str) -> (Ipcrm, String, String) {
    let key = hex(key(salt));
    let out = ipckit(&[
        "send",
        &format!("sysv-mq:{key}"),
        "left",
        "--create",
        "--mode",
        mode,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let q = SysvMq::open(
        SysvKey::Key(i32::from_str_radix(&key[2..], 16).unwrap()),
        ipckit::Access::ReadOnly,
    )
    .unwrap();
    let id = q.id().to_string();
    (Ipcrm(vec![("-q", id.clone())]), id, key)
}

#[test]
fn a_process_blocked_in_msgrcv_keeps_its_queue_live() {
    let (_guard, id, key) = queue_sent_to_by_a_dead_process(5, "600");
    let mut receiver = child("child_role", "block-recv").arg("KEY", &key).start();
    assert_eq!(receiver.line(), "ready");
    let name = format!("--name={key}");
    let state = || {
        // lsipc's and ipcrm's name for the kind.
        let out = ipckit(&["ls", "--kind", "msg", "--json", &name]);
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    };
    // The last sender is dead and nothing was received: only the blocked call shows the
    // receiver. Wait, within T, for it to enter msgrcv.
    let live = common::wait_until("the receiver blocked in msgrcv listed live", || {
        Some(state()).filter(|o| o["state"] == "live")
    });
    assert!(
        live["reason"].as_str().unwrap().contains("blocked in"),
        "{live}"
    );
    assert_eq!(live["pids"], serde_json::json!([receiver.pid()]));
    // The kind's other name.
    let out = ipckit(&["gc", "--kind", "sysv-msg", &name]);
    assert!(out.status.success());
    assert!(
        SysvMq::open_id(id.parse().unwrap(), ipckit::Access::ReadOnly).is_ok(),
        "gc removed a queue in use"
    );

    receiver.kill();
    let dead = state();
    assert_eq!(dead["state"], "orphan", "{dead}");
}

#[test]
fn kinds_have_one_name_and_take_lsipcs_on_input() {
    // Every name and alias is taken; nothing of ours matches the name, so the list is empty.
    let name = format!("--name=ipckit-no-such-object-{}", std::process::id());
    let out = ipckit(&[
        "ls",
        "--kind",
        "sysv-mq,sysv-shm,sysv-sem,posix-shm,posix-sem,posix-mq,unix,fifo,pipe,msg,shm,sem,sysv-msg",
        "--json",
        &name,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(all.is_empty(), "{all:?}");
    // An unknown kind is refused with the names it could have been.
    let out = ipckit(&["ls", "--kind", "queue"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("sysv-mq") && err.contains("msg, shm, sem"),
        "{err}"
    );
    // The help has the table of kinds, URIs and lsipc's names.
    let out = ipckit(&["ls", "--help"]);
    let help = text(&out.stdout);
    assert!(
        help.contains("sysv-mq    sysv-mq:0xKEY, sysv-mq:id=ID"),
        "{help}"
    );
    assert!(help.contains("posix-sem  sem:/NAME"), "{help}");
    assert!(!help.contains("sysv-msg:"), "{help}");
}

/// Removes a System V segment by id when dropped, whatever the test did.
struct SegmentById(i32);

impl Drop for SegmentById {
    fn drop(&mut self) {
        if let Ok(s) = SysvShm::open_id(self.0, ipckit::Access::ReadWrite) {
            let _ = s.remove();
        }
    }
}

/// The URI `ls` gives an object, for its id.
fn listed_uri(kind: &str, id: i32) -> String {
    let out = ipckit(&["ls", "--kind", kind, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let o = all
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("id {id} is not listed: {all:?}"));
    o["uri"].as_str().unwrap().to_string()
}

#[test]
fn the_listings_system_v_uris_are_the_ones_rm_takes() {
    // A segment with a key: its URI holds the key in hex, as send, recv and rm read it.
    let k = key(7);
    let keyed = SysvShm::create(SysvKey::Key(k), &ipckit::shm::sysv::Options::new(4096))
        .unwrap()
        .persist();
    let _guard = SegmentById(keyed.id());
    let uri = listed_uri("sysv-shm", keyed.id());
    assert_eq!(uri, format!("sysv-shm:{}", hex(k)));
    // This process made it and lives: rm calls it in use, so --force.
    let out = ipckit(&["rm", "--force", &uri]);
    assert!(out.status.success(), "rm {uri}: {}", text(&out.stderr));
    assert!(SysvShm::open(SysvKey::Key(k), ipckit::Access::ReadOnly).is_err());

    // A private segment has no key: the listing names it by id, which only rm takes.
    let private = SysvShm::create(SysvKey::Private, &ipckit::shm::sysv::Options::new(4096))
        .unwrap()
        .persist();
    let id = private.id();
    let _guard = SegmentById(id);
    let uri = listed_uri("sysv-shm", id);
    assert_eq!(uri, format!("sysv-shm:id={id}"));
    let out = ipckit(&["recv", &uri, "--timeout", "1s"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("send and recv take a key"),
        "{}",
        text(&out.stderr)
    );
    let out = ipckit(&["rm", "--force", &uri]);
    assert!(out.status.success(), "rm {uri}: {}", text(&out.stderr));
    assert!(SysvShm::open_id(id, ipckit::Access::ReadOnly).is_err());
}

/// `socket(AF_UNIX, SOCK_STREAM)` bound to `path`, without `listen`.
fn bind_unlistened(path: &Path) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain system call; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "{path:?} is too long");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes.
    let r = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&raw const addr).cast(),
            len as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "bind {path:?}: {}", std::io::Error::last_os_error());
    fd
}

/// The `ls --json` entry of the socket file at `path` (searched for in its directory).
fn socket_entry(dir: &Path, path: &Path) -> Option<Value> {
    let out = ipckit(&[
        "ls",
        "--kind",
        "unix",
        "--json",
        &format!("--dir={}", dir.display()),
        &format!("--name={}", dir.display()),
    ]);
    assert!(out.status.success(), "ls: {}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    all.into_iter()
        .find(|o| o["name"] == path.display().to_string())
}

#[test]
fn a_socket_bound_in_another_network_namespace_is_live_and_gc_keeps_it() {
    if !common::need_root() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("ipckit-hosttest-")
        .tempdir()
        .unwrap();
    let sock = dir.path().join("netns.sock");
    let mut spawn = child("child_role", "bind-unlistened").arg("SOCK", sock.display());
    // SAFETY: unshare is async-signal-safe; the child gets a network namespace of its own
    // (as a container sharing /tmp has) before it runs anything.
    unsafe {
        use std::os::unix::process::CommandExt;
        spawn.command().pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut binder = spawn.start();
    assert_eq!(binder.line(), "ready");
    // This process's /proc/net/unix does not list it and a connect is refused; only the
    // binder's own namespace's table shows it.
    let o = socket_entry(dir.path(), &sock).expect("the socket file is listed");
    assert_eq!(o["state"], "live", "{o}");
    let reason = o["reason"].as_str().unwrap();
    assert!(reason.contains("network namespace"), "{o}");
    assert!(reason.contains(&binder.pid().to_string()), "{o}");

    let dir_arg = format!("--dir={}", dir.path().display());
    let name_arg = format!("--name={}", dir.path().display());
    for extra in [&["--dry-run"][..], &[][..]] {
        let mut args = vec!["gc", "--kind", "unix", &dir_arg, &name_arg];
        args.extend_from_slice(extra);
        let out = ipckit(&args);
        assert!(out.status.success(), "gc {extra:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).trim().is_empty(),
            "gc {extra:?} acted on a bound socket: {}",
            text(&out.stdout)
        );
        assert!(sock.exists(), "gc {extra:?} removed a bound socket's file");
    }

    // Once the binder is gone nothing is bound to it anywhere: stale, and gc removes it.
    binder.kill();
    let o = socket_entry(dir.path(), &sock).expect("the socket file is listed");
    assert_eq!(o["state"], "stale", "{o}");
    let out = ipckit(&["gc", "--kind", "unix", &dir_arg, &name_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!sock.exists(), "gc left the stale file");
}

const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// A child with pid `pid`, running the "idle" role; or why there is none, for the test to be
/// skipped. The kernel's next pid is steered with /proc/sys/kernel/ns_last_pid, which needs
/// CAP_SYS_ADMIN over this pid namespace; and any process of the host (another test, too) may
/// fork between that write and ours and take the pid, so the pid the child got is checked,
/// a few times at most.
fn child_with_pid(pid: i32) -> Result<common::spawn::Child, String> {
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(format!("pid {pid} is another process's now"));
        }
        std::fs::write(NS_LAST_PID, (pid - 1).to_string())
            .map_err(|e| format!("{NS_LAST_PID} may not be written here: {e}"))?;
        let mut c = child("child_role", "idle").start();
        if c.pid() == pid {
            assert_eq!(c.line(), "ready");
            return Ok(c);
        }
        c.kill();
    }
    Err(format!(
        "other processes took pid {pid} first, {TRIES} times"
    ))
}

/// `clock` now, in milliseconds.
fn clock_ms(clock: rustix::time::ClockId) -> i64 {
    let t = rustix::time::clock_gettime(clock);
    t.tv_sec * 1000 + t.tv_nsec / 1_000_000
}

/// The wall-clock time of boot in milliseconds since the epoch, by today's clock, as `ipckit
/// ls` computes it: now less the time since boot.
fn boot_wall_ms() -> i64 {
    use rustix::time::ClockId;
    clock_ms(ClockId::Realtime) - clock_ms(ClockId::Boottime)
}

/// When process `pid` started, in milliseconds since the epoch, as `ipckit ls` computes it:
/// the start time of /proc/PID/stat (field 22, clock ticks since boot) after the boot time.
fn started_ms(pid: i32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let ticks: i64 = rest.split_whitespace().nth(19).unwrap().parse().unwrap();
    let hz = rustix::param::clock_ticks_per_second() as i64;
    boot_wall_ms() + ticks * 1000 / hz
}

#[test]
fn a_reused_creator_pid_makes_a_segment_unknown_not_live() {
    if !common::need_root() {
        return;
    }
    let k = key(13);
    let _guard = RemoveSegmentByKey(k);
    let mut maker = child("child_role", "make-segment").arg("KEY", k).start();
    let pid = maker.pid();
    assert_eq!(maker.line(), "made");
    maker.success();
    let seg = SysvShm::open(SysvKey::Key(k), ipckit::Access::ReadOnly).unwrap();
    let st = seg.stat().unwrap();
    assert_eq!(st.cpid as i32, pid);
    // The kernel records the creation in whole seconds, and `ls` takes a process for a later
    // one only when it started 100 ms past the end of that second (ipckit's REUSE_MARGIN_MS):
    // the new process must start after `need_ms`, which has 50 ms more for the error of the
    // boot time. The start time the kernel gives is a clock tick, rounded down: wait for one
    // tick and 50 ms beyond. The wait is for the clock alone (nothing else can make that time
    // come sooner): computed once, bounded, and checked against the start time the kernel
    // gives the new process.
    let ctime_s = st
        .ctime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let need_ms = (ctime_s + 1) * 1000 + 100 + 50;
    let tick_ms = 1000 / rustix::param::clock_ticks_per_second() as i64;
    let wait_ms = need_ms + tick_ms + 50 - clock_ms(rustix::time::ClockId::Realtime);
    assert!(
        wait_ms <= 1300 + tick_ms,
        "the segment was made just now, yet the time to wait for is {wait_ms} ms away"
    );
    if wait_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(wait_ms as u64));
    }
    let mut reuser = match child_with_pid(pid) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: no new process with the creator's pid {pid}: {why}");
            return;
        }
    };
    let started = started_ms(pid);
    if started < need_ms {
        reuser.kill();
        eprintln!(
            "SKIPPED: the process with pid {pid} started at {started} ms, not after {need_ms} ms \
             as waited for (the wall clock was stepped meanwhile)"
        );
        return;
    }
    let name = format!("--name={}", hex(k));
    let ls = || {
        let out = ipckit(&["ls", "--kind", "sysv-shm", "--json", &name]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    };
    let o = ls();
    assert_eq!(
        o["state"], "unknown",
        "a reused pid is not the creator: {o}"
    );
    assert!(o["reason"].as_str().unwrap().contains("reused"), "{o}");
    assert!(o["command"].is_null(), "names the wrong process: {o}");
    // gc keeps what it cannot judge.
    let out = ipckit(&["gc", "--kind", "sysv-shm", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(SysvShm::open(SysvKey::Key(k), ipckit::Access::ReadOnly).is_ok());
    reuser.kill();
    assert_eq!(ls()["state"], "orphan");
}

#[test]
fn rm_usage_errors_exit_2_and_remove_nothing() {
    let name = ipckit::name::unique_posix("hosttest-rmusage");
    let shm = PosixShm::create(&name, &ipckit::shm::posix::Options::new(4096))
        .unwrap()
        .persist();
    let file = format!("/dev/shm{name}");
    let _cleanup = RemovePath(PathBuf::from(&file));
    let uri = format!("shm:{name}");
    for args in [
        &["rm", "--id", "sysv-shm:x"][..],
        &["rm", "--id", "sysv-shm:-1"],
        &["rm", "--id", "sysv-shm"],
        &["rm", "--id", "5"],
        &["rm", "--id", "posix-shm:5"],
        &["rm", "--id", "bogus:5"],
        &["rm", "bogus:x"],
        &["rm", "tcp:127.0.0.1:9"],
        &["rm", "shm:no-slash"],
        &["rm", "shm:/a/b"],
        &["rm", "shm:/.."],
        &["rm", "sysv-shm:nokey"],
        // One bad target among good ones: nothing is removed.
        &["rm", "--force", &uri, "--id", "sysv-shm:x"],
        &["rm", "--force", &uri, "bogus:x"],
        &["rm"],
    ] {
        let out = ipckit(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} says nothing");
        assert!(Path::new(&file).exists(), "{args:?} removed {file}");
    }
    // ls and gc: an unknown user is a bad argument too.
    for args in [
        &["ls", "--user", "no-such-user-ipckit"][..],
        &["gc", "--user", "no-such-user-ipckit", "--dry-run"],
        &["ls", "--json", "-o", "KIND"],
    ] {
        let out = ipckit(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    drop(shm);
}
