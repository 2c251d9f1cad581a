//! The append-only log: replay, torn tails at every byte, corruption in the middle, rewrite
//! while appending, the fsync policies, the file rules, and SIGKILL of a writer process at
//! many points (under `always`, during rewrites too): every acknowledged write survives, and
//! what survives is a prefix of what was sent.
//!
//! Cross-process tests re-execute this test binary as a child (the `child` test, with
//! `IPCKIT_KV_ROLE` set) and talk to it over its stdout in lines (ipckit-spawn).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipckit_kv::aof::{self, Aof, AofOptions, Fsync};

const ROLE: &str = "IPCKIT_KV_ROLE";
/// The bound on every wait.
const T: Duration = Duration::from_secs(30);

type Cmd = Vec<Vec<u8>>;

fn cmd(args: &[&[u8]]) -> Cmd {
    args.iter().map(|a| a.to_vec()).collect()
}

fn set(k: &str, v: &str) -> Cmd {
    cmd(&[b"SET", k.as_bytes(), v.as_bytes()])
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ipckit-kv-aof-")
        .tempdir()
        .unwrap()
}

/// Opens the log and returns it with every command replayed.
fn open(path: &Path, fsync: Fsync) -> (Aof, Vec<Cmd>, aof::Recovered) {
    let mut seen = Vec::new();
    let (log, found) = Aof::open(path, fsync, &mut |args| seen.push(args.to_vec())).unwrap();
    (log, seen, found)
}

fn encoded(cmds: &[Cmd]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        aof::encode(c, &mut out);
    }
    out
}

/// The keys and values SETs leave.
fn state(cmds: &[Cmd]) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut m = HashMap::new();
    for c in cmds {
        assert_eq!(c[0], b"SET", "only SETs are logged here: {c:?}");
        m.insert(c[1].clone(), c[2].clone());
    }
    m
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rewrite-"))
        .collect()
}

#[test]
fn commands_replay_as_they_were_appended() {
    let dir = tempdir();
    let path = dir.path().join("appendonly.aof");
    let big = vec![0xa5u8; 1 << 20];
    let cmds = vec![
        set("k", "v"),
        cmd(&[b"SET", b"binary\r\n\0key", b"\r\n*1\r\n$4\r\nPING\r\n"]),
        cmd(&[b"DEL", b""]),
        cmd(&[b"SET", b"big", &big]),
        cmd(&[b"MSET", b"a", b"1", b"b", b"2"]),
    ];
    {
        let (mut log, seen, found) = open(&path, Fsync::Always);
        assert!(seen.is_empty());
        assert_eq!(found, aof::Recovered::default());
        log.append(&cmds[..3]);
        log.append_one(&cmds[3]);
        log.append(&cmds[4..]);
        assert_eq!(
            log.len(),
            encoded(&cmds).len() as u64,
            "len counts the buffer"
        );
        log.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), encoded(&cmds));
    }
    let (log, seen, found) = open(&path, Fsync::Always);
    assert_eq!(seen, cmds);
    assert_eq!(found.commands, cmds.len() as u64);
    assert_eq!(found.truncated, 0);
    assert_eq!(log.len(), std::fs::metadata(&path).unwrap().len());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "made private: {mode:o}");
}

#[test]
fn a_torn_last_command_is_cut_off_at_every_byte() {
    let dir = tempdir();
    let whole = vec![
        set("a", "1"),
        set("b", "22"),
        cmd(&[b"SET", b"c", b"three"]),
    ];
    let last = cmd(&[b"SET", b"torn", b"the value \r\n of the last"]);
    let prefix = encoded(&whole);
    let tail = encoded(std::slice::from_ref(&last));
    for cut in 0..=tail.len() {
        let path = dir.path().join(format!("cut-{cut}.aof"));
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(&tail[..cut]);
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, seen, found) = open(&path, Fsync::No);
        if cut == tail.len() {
            assert_eq!(seen.len(), 4);
            assert_eq!(found.truncated, 0);
            continue;
        }
        assert_eq!(seen, whole, "cut at byte {cut}: exactly the whole prefix");
        assert_eq!(found.commands, 3);
        assert_eq!(found.truncated, cut as u64, "cut at byte {cut}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            prefix,
            "the torn part is gone"
        );
        // Appending goes on from the end of the last whole command.
        log.append_one(&set("after", "x"));
        log.flush().unwrap();
        drop(log);
        let (_log, seen, found) = open(&path, Fsync::No);
        assert_eq!(seen.len(), 4, "cut at byte {cut}");
        assert_eq!(seen[3], set("after", "x"));
        assert_eq!(found.truncated, 0);
    }
}

#[test]
fn a_log_torn_inside_a_transaction_is_cut_before_its_multi() {
    let dir = tempdir();
    let whole = vec![set("a", "1"), set("b", "22")];
    let tx = vec![
        cmd(&[b"MULTI"]),
        set("t", "1"),
        set("u", "2"),
        cmd(&[b"EXEC"]),
    ];
    let prefix = encoded(&whole);
    let tail = encoded(&tx);
    // Every cut from the MULTI up to the last byte before the EXEC is whole.
    for cut in 0..tail.len() {
        let path = dir.path().join(format!("tx-{cut}.aof"));
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(&tail[..cut]);
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, _seen, found) = open(&path, Fsync::No);
        assert_eq!(found.commands, 2, "cut at byte {cut}");
        assert_eq!(found.truncated, cut as u64, "cut at byte {cut}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            prefix,
            "cut at byte {cut}: the open transaction is gone"
        );
        log.append_one(&set("after", "x"));
        log.flush().unwrap();
        drop(log);
        let (_log, seen, found) = open(&path, Fsync::No);
        let mut want = whole.clone();
        want.push(set("after", "x"));
        assert_eq!(
            seen, want,
            "cut at byte {cut}: no MULTI left to swallow the write"
        );
        assert_eq!(found.truncated, 0);
    }
    // The whole transaction stays.
    let path = dir.path().join("tx-whole.aof");
    let mut bytes = prefix.clone();
    bytes.extend_from_slice(&tail);
    std::fs::write(&path, &bytes).unwrap();
    let (_log, seen, found) = open(&path, Fsync::No);
    assert_eq!((seen.len(), found.truncated), (6, 0));
}

#[test]
fn a_multi_inside_a_transaction_is_corruption_at_the_first() {
    let dir = tempdir();
    let path = dir.path().join("multi.aof");
    let head = encoded(&[set("a", "1")]);
    let cmds = [
        set("a", "1"),
        cmd(&[b"MULTI"]),
        set("t", "1"),
        cmd(&[b"MULTI"]),
        set("u", "2"),
        cmd(&[b"EXEC"]),
        set("z", "9"),
    ];
    let bytes = encoded(&cmds);
    std::fs::write(&path, &bytes).unwrap();
    let err = Aof::open(&path, Fsync::No, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("offset {}", head.len())), "{msg}");
    assert!(msg.contains("MULTI"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing changed");
    let opts = AofOptions {
        fsync: Fsync::No,
        truncate_corrupt: true,
    };
    let mut seen = Vec::new();
    let (_log, found) = Aof::open_with(&path, &opts, &mut |a| seen.push(a.to_vec())).unwrap();
    assert_eq!(found.commands, 1);
    assert_eq!(std::fs::read(&path).unwrap(), head);
    assert_eq!(
        std::fs::read(found.saved.unwrap()).unwrap(),
        &bytes[head.len()..]
    );
}

#[test]
fn garbage_after_the_last_command_is_a_torn_tail() {
    let dir = tempdir();
    let path = dir.path().join("zeros.aof");
    let mut bytes = encoded(&[set("a", "1")]);
    let good = bytes.len();
    bytes.extend(std::iter::repeat_n(0u8, 4096)); // a block the crash left unwritten
    bytes.extend_from_slice(b"*2\r\n$3\r\nDEL"); // and the start of one more
    std::fs::write(&path, &bytes).unwrap();
    let (_log, seen, found) = open(&path, Fsync::No);
    assert_eq!(seen, [set("a", "1")]);
    assert_eq!(found.truncated, (bytes.len() - good) as u64);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
}

#[test]
fn a_corrupt_command_in_the_middle_is_an_error_naming_its_offset() {
    let dir = tempdir();
    let path = dir.path().join("corrupt.aof");
    let cmds = [set("a", "1"), set("b", "2"), set("c", "3")];
    let mut bytes = encoded(&cmds);
    let second = encoded(&cmds[..1]).len();
    bytes[second + 4] = b'#'; // the second command's first '$'
    std::fs::write(&path, &bytes).unwrap();

    let err = Aof::open(&path, Fsync::No, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("offset {second}")), "{msg}");
    assert!(
        msg.contains("--aof-truncate-corrupt"),
        "a way out is named: {msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing changed");
    assert!(aof::replay(&path, &mut |_| {}).is_err());

    // Asked to, it cuts there and keeps what it cut.
    let mut seen = Vec::new();
    let opts = AofOptions {
        fsync: Fsync::No,
        truncate_corrupt: true,
    };
    let (_log, found) = Aof::open_with(&path, &opts, &mut |a| seen.push(a.to_vec())).unwrap();
    assert_eq!(seen, cmds[..1]);
    assert_eq!(found.truncated, (bytes.len() - second) as u64);
    let saved = found.saved.expect("the cut part is saved");
    assert_eq!(std::fs::read(&saved).unwrap(), &bytes[second..]);
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..second]);
}

#[test]
fn a_length_that_swallows_later_commands_is_corruption_not_a_torn_tail() {
    let dir = tempdir();
    let path = dir.path().join("long.aof");
    let mut bytes = encoded(&[set("a", "1")]);
    let at = bytes.len();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$900\r\nxx\r\n");
    bytes.extend(encoded(&[set("c", "3"), set("d", "4")]));
    std::fs::write(&path, &bytes).unwrap();
    let err = Aof::open(&path, Fsync::No, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains(&format!("offset {at}")), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_rewrite_while_appending_keeps_every_append() {
    let dir = tempdir();
    let path = dir.path().join("appendonly.aof");
    let (mut log, _, _) = open(&path, Fsync::EverySec);
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    fn write(log: &mut Aof, model: &mut HashMap<Vec<u8>, Vec<u8>>, i: usize) {
        let c = set(&format!("key{}", i % 50), &format!("value{i}"));
        model.insert(c[1].clone(), c[2].clone());
        log.append_one(&c);
        if i.is_multiple_of(7) {
            log.flush().unwrap();
        }
    }
    for i in 0..2000 {
        write(&mut log, &mut model, i);
    }
    let before = log.len();
    // The snapshot: what the state is now (what was appended but not flushed is in it too).
    let snapshot: Vec<Cmd> = model
        .iter()
        .map(|(k, v)| vec![b"SET".to_vec(), k.clone(), v.clone()])
        .collect();
    log.start_rewrite(snapshot).unwrap();
    assert!(log.rewriting());
    assert!(log.start_rewrite(Vec::new()).is_err(), "one at a time");
    for i in 2000..3000 {
        write(&mut log, &mut model, i);
        log.poll_rewrite().unwrap();
    }
    log.flush().unwrap();
    log.finish_rewrite().unwrap();
    assert!(!log.rewriting());
    assert!(log.len() < before, "compacted: {} < {before}", log.len());
    assert!(log.base_len() <= log.len() && log.base_len() < before);
    for i in 3000..3100 {
        write(&mut log, &mut model, i);
    }
    log.close().unwrap();
    assert!(leftovers(dir.path()).is_empty());
    let (_log, seen, _) = open(&path, Fsync::No);
    assert_eq!(state(&seen), model);
    assert!(seen.len() < 1200, "{} commands", seen.len());
}

#[test]
fn a_snapshot_replaces_the_log_and_appending_goes_on() {
    let dir = tempdir();
    let path = dir.path().join("appendonly.aof");
    let (mut log, _, _) = open(&path, Fsync::Always);
    for i in 0..100 {
        log.append_one(&set("counter", &i.to_string()));
    }
    log.flush().unwrap();
    log.start_rewrite(vec![set("stale", "x")]).unwrap(); // abandoned by the snapshot
    let len = log.snapshot(&[set("counter", "99")]).unwrap();
    assert_eq!(len, encoded(&[set("counter", "99")]).len() as u64);
    assert!(!log.rewriting());
    log.append_one(&set("after", "1"));
    drop(log);
    assert!(leftovers(dir.path()).is_empty());
    let (_log, seen, _) = open(&path, Fsync::Always);
    assert_eq!(seen, [set("counter", "99"), set("after", "1")]);

    // Where no log is kept: a snapshot file, read back.
    let snap = dir.path().join("dump.aof");
    aof::write_snapshot(&snap, &[set("a", "1"), set("b", "2")]).unwrap();
    let mut seen = Vec::new();
    let found = aof::replay(&snap, &mut |a| seen.push(a.to_vec())).unwrap();
    assert_eq!(found.commands, 2);
    assert_eq!(state(&seen).len(), 2);
}

#[test]
fn temporary_files_a_killed_rewrite_left_are_removed_on_open() {
    let dir = tempdir();
    let path = dir.path().join("appendonly.aof");
    std::fs::write(&path, encoded(&[set("a", "1")])).unwrap();
    let stale = dir.path().join(".appendonly.aof.rewrite-aof-1-2-3.tmp");
    std::fs::write(&stale, b"*1\r\n$4\r\nPI").unwrap();
    let other = dir.path().join(".other.aof.rewrite-x.tmp");
    std::fs::write(&other, b"not ours").unwrap();
    let (_log, seen, _) = open(&path, Fsync::No);
    assert_eq!(seen, [set("a", "1")]);
    assert!(!stale.exists());
    assert!(other.exists(), "another log's file is left alone");
}

#[test]
fn the_fsync_policies_sync_when_they_say() {
    let dir = tempdir();
    for fsync in [Fsync::Always, Fsync::EverySec, Fsync::No] {
        let path = dir.path().join(format!("{}.aof", fsync.as_str()));
        let (mut log, _, _) = open(&path, fsync);
        assert_eq!(log.fsync_policy(), fsync);
        for i in 0..5 {
            log.append_one(&set("k", &i.to_string()));
            log.flush().unwrap();
        }
        log.flush().unwrap(); // nothing buffered: no sync
        match fsync {
            Fsync::Always => assert_eq!(log.fsyncs(), 5),
            Fsync::No => assert_eq!(log.fsyncs(), 0),
            Fsync::EverySec => {
                // The thread syncs the first write at once, then at most once a second.
                let deadline = Instant::now() + T;
                while log.fsyncs() == 0 {
                    assert!(Instant::now() < deadline, "no background sync within {T:?}");
                    std::thread::yield_now();
                }
                assert!(log.fsyncs() <= 5);
            }
        }
        assert_eq!(fsync.as_str().parse::<Fsync>().unwrap(), fsync);
    }
    assert!("sometimes".parse::<Fsync>().is_err());
}

#[test]
fn the_log_is_never_opened_through_a_symlink_or_in_a_directory_others_control() {
    let dir = tempdir();
    let target = dir.path().join("target");
    std::fs::write(&target, b"keep").unwrap();
    let link = dir.path().join("link.aof");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = Aof::open(&link, Fsync::No, &mut |_| {}).unwrap_err();
    assert_eq!(err.errno(), Some(ipckit::Errno::LOOP), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");

    use std::os::unix::fs::PermissionsExt;
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Aof::open(&open_dir.join("x.aof"), Fsync::No, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("writable by every user"), "{err}");
    assert!(!open_dir.join("x.aof").exists());
}

#[test]
fn a_second_open_of_the_same_log_is_refused() {
    let dir = tempdir();
    let path = dir.path().join("appendonly.aof");
    let (_first, _, _) = open(&path, Fsync::No);
    let err = Aof::open(&path, Fsync::No, &mut |_| {}).unwrap_err();
    assert_eq!(err.errno(), Some(ipckit::Errno::WOULDBLOCK), "{err}");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL of a writer process

/// Child role `writer`: fills the log with big values, then appends numbered SETs one at a
/// time, flushing each and saying `ack N` after the flush returned; starts a rewrite after
/// ack `REWRITE_AT` (if not -1) and says `rewrite started`, `rewrite done`.
fn writer_role() {
    let path = PathBuf::from(ipckit_spawn::arg("PATH").unwrap());
    let fsync: Fsync = ipckit_spawn::arg("FSYNC").unwrap().parse().unwrap();
    let rewrite_at: i64 = ipckit_spawn::arg("REWRITE_AT").unwrap().parse().unwrap();
    let (mut log, _) = Aof::open(&path, fsync, &mut |_| {}).unwrap();
    let filler: Vec<Cmd> = (0..FILLER)
        .map(|j| {
            let v = vec![b'a' + (j % 26) as u8; FILLER_LEN];
            vec![b"SET".to_vec(), format!("f{j}").into_bytes(), v]
        })
        .collect();
    log.append(&filler);
    log.flush().unwrap();
    ipckit_spawn::say("filled");
    let mut done: Vec<Cmd> = Vec::new();
    let mut rewriting = false;
    for i in 0..1_000_000i64 {
        let c = set(&format!("k{i}"), &format!("value-{i}"));
        log.append_one(&c);
        log.flush().unwrap();
        done.push(c);
        ipckit_spawn::say(format!("ack {i}"));
        if i == rewrite_at {
            let mut snapshot = filler.clone();
            snapshot.extend(done.iter().cloned());
            log.start_rewrite(snapshot).unwrap();
            rewriting = true;
            ipckit_spawn::say("rewrite started");
        }
        log.poll_rewrite().unwrap();
        if rewriting && !log.rewriting() {
            rewriting = false;
            ipckit_spawn::say("rewrite done");
        }
    }
}

const FILLER: usize = 24;
const FILLER_LEN: usize = 1 << 20;

#[test]
fn child() {
    match std::env::var(ROLE).as_deref() {
        Ok("writer") => writer_role(),
        Ok(other) => panic!("unknown role {other}"),
        Err(_) => {}
    }
}

fn spawn(role: &str) -> ipckit_spawn::Spawn<'static> {
    ipckit_spawn::Spawn::this()
        .role(ROLE, role)
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .talk()
}

/// The next line from `child` within [`T`]; `None` once it exited.
fn line(child: &mut ipckit_spawn::Child) -> Option<String> {
    match child.line_timeout(T) {
        Ok(Some(l)) => Some(l),
        Ok(None) => panic!("child {} said nothing within {T:?}", child.id()),
        Err(_) => None,
    }
}

/// Kills a writer after its `kill_after`-th ack (after `rewrite started` when it was told to
/// rewrite and `kill_after` is -1), then checks what recovery finds.
fn kill_writer_and_recover(fsync: Fsync, kill_after: i64, rewrite_at: i64) -> bool {
    let dir = tempdir();
    let path = dir.path().join("appendonly.aof");
    let mut child = spawn("writer")
        .arg("PATH", path.display())
        .arg("FSYNC", fsync.as_str())
        .arg("REWRITE_AT", rewrite_at)
        .start()
        .unwrap();
    assert_eq!(line(&mut child).as_deref(), Some("filled"));
    let mut acked: i64 = -1;
    loop {
        let l = line(&mut child).expect("the writer exited");
        if let Some(n) = l.strip_prefix("ack ") {
            acked = n.parse().unwrap();
            if acked == kill_after {
                break;
            }
        } else if l == "rewrite started" && kill_after == -1 {
            break;
        }
    }
    let st = child.kill_timeout(T).unwrap().expect("the writer died");
    assert!(!st.success());
    // What it said before it died counts as acknowledged too.
    let mut mid_rewrite = !leftovers(dir.path()).is_empty();
    while let Some(l) = line(&mut child) {
        if let Some(n) = l.strip_prefix("ack ") {
            acked = n.parse().unwrap();
        }
    }
    let (_log, seen, found) = open(&path, Fsync::No);
    let got = state(&seen);
    for j in 0..FILLER {
        let v = &got[format!("f{j}").as_bytes()];
        assert!(v.len() == FILLER_LEN && v.iter().all(|&b| b == b'a' + (j % 26) as u8));
    }
    // Every acknowledged SET is there, and what is there is a prefix of what was sent: k0..kM
    // with nothing missing, M at most one past the last ack (flushed, killed before the ack).
    let numbered = got.len() - FILLER;
    assert!(
        numbered as i64 > acked,
        "{fsync:?}, kill after {kill_after}: acked {acked}, found {numbered} (truncated {})",
        found.truncated
    );
    assert!(
        numbered as i64 <= acked + 2,
        "acked {acked}, found {numbered}"
    );
    for i in 0..numbered {
        assert_eq!(
            got.get(format!("k{i}").as_bytes()).map(Vec::as_slice),
            Some(format!("value-{i}").as_bytes()),
            "k{i} of {numbered}"
        );
    }
    assert!(
        leftovers(dir.path()).is_empty(),
        "open removed the killed rewrite's file"
    );
    mid_rewrite &= rewrite_at >= 0;
    mid_rewrite
}

#[test]
fn every_acknowledged_write_survives_sigkill_under_always() {
    for kill_after in [0, 1, 7, 60, 250] {
        kill_writer_and_recover(Fsync::Always, kill_after, -1);
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill_during_a_rewrite() {
    let mut mid = 0;
    // Killed as the rewrite starts (its thread writing the big snapshot), a little later,
    // and well after it finished.
    for (kill_after, rewrite_at) in [(-1, 3), (-1, 40), (4, 3), (45, 40), (300, 10)] {
        mid += kill_writer_and_recover(Fsync::Always, kill_after, rewrite_at) as usize;
    }
    eprintln!("{mid} of 5 kills left a rewrite's file behind");
}

#[test]
fn a_write_flushed_under_everysec_or_no_survives_sigkill_of_the_server() {
    // Not a machine crash: the kernel has what flush wrote, whatever the policy.
    kill_writer_and_recover(Fsync::EverySec, 100, 50);
    kill_writer_and_recover(Fsync::No, 30, -1);
}
