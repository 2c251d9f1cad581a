//! The shared-memory mirror: round trips with readers in other processes, not-mirrored
//! entries, a full table, expiry, readers that never see a torn value while the writer
//! rewrites, writers killed mid-stream and mid-update (readers never hang; the next create
//! repairs), the refusals (a second server, a foreign or wider object), and readers fed
//! arbitrary memory (no panic, no read outside the mapping).
//!
//! Cross-process tests re-execute this test binary as a child (the `child` test, with
//! `IPCKIT_KV_ROLE` set) and talk to it over stdin/stdout in lines (ipckit-spawn).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ipckit::ErrorKind;
use ipckit_kv::shm::{Lookup, Mirror, MirrorOptions, Presence, ShmReader, Start};
use ipckit_kv::store::{Store, Value};
use proptest::prelude::*;

const ROLE: &str = "IPCKIT_KV_ROLE";
/// The bound on every wait.
const T: Duration = Duration::from_secs(30);

fn opts() -> MirrorOptions {
    MirrorOptions {
        capacity: 64,
        max_value: 512,
        ..MirrorOptions::default()
    }
}

fn unique(purpose: &str) -> String {
    ipckit::name::unique_posix(purpose)
}

fn exists(name: &str) -> bool {
    std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A lookup as one line.
fn show(r: ipckit::Result<Lookup>) -> String {
    match r {
        Ok(Lookup::Found(v)) => format!("found {}", hex(&v)),
        Ok(Lookup::Absent) => "absent".into(),
        Ok(Lookup::NotMirrored) => "not-mirrored".into(),
        Err(e) => format!("error {:?} {e}", e.kind()),
    }
}

/// A self-checking value: `KEY:COUNTER:` repeated a number of times the counter decides, so
/// that a value torn between two writes (or with the wrong length) cannot pass [`check`].
fn value(key: &str, counter: u64) -> Vec<u8> {
    format!("{key}:{counter}:")
        .repeat(1 + (counter % 13) as usize)
        .into_bytes()
}

/// The counter of a value [`value`] made for `key`; panics on anything else.
fn check(key: &str, v: &[u8]) -> u64 {
    let s = std::str::from_utf8(v).unwrap_or_else(|_| panic!("torn value for {key}: {v:?}"));
    let mut parts = s.splitn(3, ':');
    let (k, c) = (parts.next().unwrap(), parts.next());
    let c: u64 = c
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("torn value for {key}: {s:?}"));
    assert_eq!(k, key, "a value of another key: {s:?}");
    assert_eq!(v, value(key, c), "torn value for {key}: {s:?}");
    c
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|j| format!("key{j}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Children

/// Role `get`: opens the mirror and answers `get HEXKEY` lines with [`show`]'s line, until
/// stdin closes.
fn get_role() {
    let r = ShmReader::open(&ipckit_spawn::arg("NAME").unwrap()).unwrap();
    ipckit_spawn::say("open");
    while let Some(l) = ipckit_spawn::hear() {
        let key = unhex(l.strip_prefix("get ").unwrap());
        ipckit_spawn::say(show(r.get(&key)));
    }
}

/// Role `loop`: GETs the keys round and round, checking every value found, until told
/// `stop` (or stdin closes), then `EXTRA` more; says `reading` after the first round and
/// `done FOUND STUCK NOT_MIRRORED COUNTERS` at the end. With `STUCK_OK`, an error saying a
/// writer holds a bucket mid-update is counted, not fatal.
fn loop_role() {
    // Patient: the writers here rewrite the same few keys without pause, which a reader's
    // copy can lose to many times over on a loaded machine (the server's writes come at most
    // at its request rate). A bucket stuck mid-update still fails after this long.
    let r = ShmReader::open(&ipckit_spawn::arg("NAME").unwrap())
        .unwrap()
        .with_patience(Duration::from_secs(1));
    let n: usize = ipckit_spawn::arg("KEYS").unwrap().parse().unwrap();
    let extra: u64 = ipckit_spawn::arg("EXTRA").unwrap().parse().unwrap();
    let stuck_ok = ipckit_spawn::arg("STUCK_OK").is_some();
    let keys = keys(n);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let _ = ipckit_spawn::hear();
        s.store(true, Ordering::SeqCst);
    });
    let (mut found, mut stuck, mut not_mirrored) = (0u64, 0u64, 0u64);
    let mut counters = std::collections::HashSet::new();
    let mut buf = Vec::new();
    let mut left = None;
    let mut i = 0usize;
    while left != Some(0) {
        let key = &keys[i % n];
        match r.get_into(key.as_bytes(), &mut buf) {
            Ok(Presence::Found) => {
                counters.insert(check(key, &buf));
                found += 1;
            }
            Ok(Presence::NotMirrored) => not_mirrored += 1,
            Ok(Presence::Absent) => panic!("{key} read as absent"),
            Err(e) if stuck_ok && e.kind() == ErrorKind::TimedOut => {
                assert!(e.to_string().contains("mid-update"), "{e}");
                stuck += 1;
            }
            Err(e) => panic!("{key}: {e}"),
        }
        i += 1;
        if i == n {
            ipckit_spawn::say("reading");
        }
        left = match left {
            Some(l) => Some(l - 1),
            None if stop.load(Ordering::Relaxed) => Some(extra),
            None => None,
        };
    }
    ipckit_spawn::say(format!(
        "done {found} {stuck} {not_mirrored} {}",
        counters.len()
    ));
}

/// Role `writer`: makes the mirror (capacity `CAPACITY`), sets every key, says `ready`, then
/// rewrites them all round after round, saying `progress N` every 50 rounds.
fn writer_role() {
    let name = ipckit_spawn::arg("NAME").unwrap();
    let n: usize = ipckit_spawn::arg("KEYS").unwrap().parse().unwrap();
    let capacity: usize = ipckit_spawn::arg("CAPACITY").unwrap().parse().unwrap();
    let mut m = Mirror::create(&name, &MirrorOptions { capacity, ..opts() }).unwrap();
    m.mark_complete();
    let keys = keys(n);
    for k in &keys {
        m.set(k.as_bytes(), &value(k, 0), None);
    }
    ipckit_spawn::say("ready");
    for c in 1..10_000_000u64 {
        for k in &keys {
            m.set(k.as_bytes(), &value(k, c), None);
        }
        if c.is_multiple_of(50) {
            ipckit_spawn::say(format!("progress {c}"));
        }
    }
}

/// Role `stall`: makes the mirror, sets `key0..key9`, leaves `STALL`'s bucket mid-update
/// with the mutex held, says `stalled` and waits to be killed.
fn stall_role() {
    let name = ipckit_spawn::arg("NAME").unwrap();
    let mut m = Mirror::create(&name, &opts()).unwrap();
    m.mark_complete();
    for k in keys(10) {
        m.set(k.as_bytes(), &value(&k, 0), None);
    }
    m.debug_stall_mid_update(ipckit_spawn::arg("STALL").unwrap().as_bytes());
    ipckit_spawn::say("stalled");
    let _ = ipckit_spawn::hear();
    std::mem::forget(m);
}

#[test]
fn child() {
    match std::env::var(ROLE).as_deref() {
        Ok("get") => get_role(),
        Ok("loop") => loop_role(),
        Ok("writer") => writer_role(),
        Ok("stall") => stall_role(),
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

fn line(child: &mut ipckit_spawn::Child) -> String {
    match child.line_timeout(T) {
        Ok(Some(l)) => l,
        Ok(None) => panic!("child {} said nothing within {T:?}", child.id()),
        Err(e) => panic!("child {} said nothing more: {e}", child.id()),
    }
}

fn success(mut child: ipckit_spawn::Child) {
    let st = child.wait_timeout(T).unwrap().expect("the child exited");
    assert!(st.success(), "child failed: {st}");
}

/// A reader in another process.
struct Remote(ipckit_spawn::Child);

impl Remote {
    fn open(name: &str) -> Remote {
        let mut c = spawn("get").arg("NAME", name).start().unwrap();
        assert_eq!(line(&mut c), "open");
        Remote(c)
    }

    fn get(&mut self, key: &[u8]) -> String {
        self.0.tell(&format!("get {}", hex(key))).unwrap();
        line(&mut self.0)
    }

    fn found(v: &[u8]) -> String {
        format!("found {}", hex(v))
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn set_get_remove_and_clear_reach_a_reader_in_another_process() {
    let name = unique("kv-shm-rt");
    let mut m = Mirror::create(&name, &opts()).unwrap();
    assert_eq!(m.start(), Start::New);
    let mut r = Remote::open(&name);
    // A new table is incomplete: a miss may be a key not loaded yet.
    assert_eq!(r.get(b"nothing"), "not-mirrored");
    m.mark_complete();
    assert!(m.is_complete());
    assert_eq!(r.get(b"nothing"), "absent");

    m.set(b"a", b"1", None);
    m.set(b"empty", b"", None);
    m.set(b"binary\0\r\n", &[0, 255, 10, 13], None);
    let big = vec![b'x'; 513];
    m.set(b"big", &big, None);
    m.set_unmirrored(b"a-list");
    let long_key = vec![b'k'; 65];
    m.set(&long_key, b"v", None);
    assert_eq!(r.get(b"a"), Remote::found(b"1"));
    assert_eq!(r.get(b"empty"), Remote::found(b""));
    assert_eq!(r.get(b"binary\0\r\n"), Remote::found(&[0, 255, 10, 13]));
    assert_eq!(r.get(b"big"), "not-mirrored", "over max_value");
    assert_eq!(r.get(b"a-list"), "not-mirrored");
    assert_eq!(r.get(&long_key), "not-mirrored", "over max_key");
    assert_eq!(m.len(), 5);

    m.set(b"a", b"2", None);
    assert_eq!(r.get(b"a"), Remote::found(b"2"));
    m.set(b"big", b"small now", None);
    assert_eq!(r.get(b"big"), Remote::found(b"small now"));
    m.remove(b"a");
    assert_eq!(r.get(b"a"), "absent");
    m.remove(b"a-list");
    assert_eq!(r.get(b"a-list"), "absent");
    m.clear();
    assert!(m.is_empty());
    for k in [&b"empty"[..], b"binary\0\r\n", b"big"] {
        assert_eq!(r.get(k), "absent");
    }
    drop(m);
    assert!(!exists(&name), "the creator removes the name");
    assert!(r.get(b"empty").starts_with("error Disconnected"));
}

#[test]
fn keys_come_and_go_many_times_over_without_losing_one() {
    // Churn through tombstones and rebuilds, checked against a model.
    let name = unique("kv-shm-churn");
    let mut m = Mirror::create(
        &name,
        &MirrorOptions {
            capacity: 100,
            max_value: 32,
            ..MirrorOptions::default()
        },
    )
    .unwrap();
    m.mark_complete();
    let r = ShmReader::open(&name).unwrap();
    let mut model = std::collections::HashMap::new();
    let mut x: u64 = 1;
    for step in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = format!("k{}", x % 150);
        if x.is_multiple_of(3) {
            m.remove(k.as_bytes());
            model.remove(&k);
        } else if model.len() < 100 || model.contains_key(&k) {
            let v = format!("v{step}");
            m.set(k.as_bytes(), v.as_bytes(), None);
            model.insert(k, v);
        }
        if step.is_multiple_of(97) {
            for j in 0..150 {
                let k = format!("k{j}");
                let want = match model.get(&k) {
                    Some(v) => Lookup::Found(v.clone().into_bytes()),
                    None => Lookup::Absent,
                };
                assert_eq!(r.get(k.as_bytes()).unwrap(), want, "{k} at step {step}");
            }
        }
    }
    assert!(
        m.is_complete(),
        "nothing was refused: the model kept to the capacity"
    );
    assert_eq!(m.len(), model.len());
}

#[test]
fn a_full_table_sends_misses_to_the_socket_until_it_is_rebuilt() {
    let name = unique("kv-shm-full");
    let mut m = Mirror::create(
        &name,
        &MirrorOptions {
            capacity: 4,
            ..opts()
        },
    )
    .unwrap();
    m.mark_complete();
    let r = ShmReader::open(&name).unwrap();
    for k in ["a", "b", "c", "d"] {
        m.set(k.as_bytes(), k.as_bytes(), None);
    }
    assert!(m.is_complete());
    m.set(b"e", b"e", None); // no room
    assert!(!m.is_complete() && !r.is_complete());
    assert_eq!(r.get(b"e").unwrap(), Lookup::NotMirrored);
    assert_eq!(r.get(b"never-set").unwrap(), Lookup::NotMirrored);
    assert_eq!(r.get(b"a").unwrap(), Lookup::Found(b"a".to_vec()));

    // The server rebuilds it from its store once keys are gone.
    let mut store = Store::new();
    for k in ["a", "c", "e"] {
        store.set(k.into(), Value::Str(k.into()), None);
    }
    store.set(b"l".to_vec(), Value::List(vec![b"x".to_vec()].into()), None);
    m.sync_all(&store, now_ms());
    assert!(m.is_complete());
    assert_eq!(r.get(b"e").unwrap(), Lookup::Found(b"e".to_vec()));
    assert_eq!(r.get(b"b").unwrap(), Lookup::Absent);
    assert_eq!(r.get(b"l").unwrap(), Lookup::NotMirrored);
    assert_eq!(r.get(b"never-set").unwrap(), Lookup::Absent);
    m.clear();
    assert_eq!(r.get(b"a").unwrap(), Lookup::Absent);
}

#[test]
fn an_expired_entry_reads_as_absent() {
    let name = unique("kv-shm-exp");
    let mut m = Mirror::create(&name, &opts()).unwrap();
    m.mark_complete();
    let r = ShmReader::open(&name).unwrap();
    let now = now_ms();
    m.set(b"past", b"v", Some(now - 1_000));
    m.set(b"future", b"v", Some(now + 3_600_000));
    m.set(b"epoch", b"v", Some(0));
    m.set_unmirrored_until(b"past-list", Some(now - 1));
    m.set_unmirrored_until(b"future-list", Some(now + 3_600_000));
    assert_eq!(r.get(b"past").unwrap(), Lookup::Absent);
    assert_eq!(r.get(b"epoch").unwrap(), Lookup::Absent);
    assert_eq!(r.get(b"future").unwrap(), Lookup::Found(b"v".to_vec()));
    assert_eq!(r.get(b"past-list").unwrap(), Lookup::Absent);
    assert_eq!(r.get(b"future-list").unwrap(), Lookup::NotMirrored);
    m.set(b"past", b"v", None); // PERSIST: no expiry any more
    assert_eq!(r.get(b"past").unwrap(), Lookup::Found(b"v".to_vec()));
}

#[test]
fn follow_keeps_the_mirror_in_step_with_the_store() {
    let name = unique("kv-shm-follow");
    let mut m = Mirror::create(&name, &opts()).unwrap();
    let mut store = Store::new();
    // The store records changed keys only when asked (the server asks when it mirrors).
    store.track_changes(true);
    let now = now_ms();
    store.set(b"s".to_vec(), Value::Str(b"string".to_vec()), None);
    store.set(
        b"t".to_vec(),
        Value::Str(b"ttl".to_vec()),
        Some(now + 60_000),
    );
    store.set(b"gone".to_vec(), Value::Str(b"x".to_vec()), Some(now - 1));
    store.set(b"l".to_vec(), Value::List(vec![b"x".to_vec()].into()), None);
    m.sync_all(&store, now);
    assert!(m.is_complete());
    let r = ShmReader::open(&name).unwrap();
    assert_eq!(r.get(b"s").unwrap(), Lookup::Found(b"string".to_vec()));
    assert_eq!(r.get(b"t").unwrap(), Lookup::Found(b"ttl".to_vec()));
    assert_eq!(r.get(b"gone").unwrap(), Lookup::Absent);
    assert_eq!(r.get(b"l").unwrap(), Lookup::NotMirrored);
    store.take_changed();

    store.set(b"s".to_vec(), Value::Str(b"new".to_vec()), None);
    store.remove(b"l");
    store.set(
        b"t".to_vec(),
        Value::List(vec![b"now a list".to_vec()].into()),
        None,
    );
    let changed = store.take_changed();
    m.follow(&mut store, &changed, now);
    assert_eq!(r.get(b"s").unwrap(), Lookup::Found(b"new".to_vec()));
    assert_eq!(r.get(b"l").unwrap(), Lookup::Absent);
    assert_eq!(r.get(b"t").unwrap(), Lookup::NotMirrored);
}

#[test]
fn readers_in_other_processes_never_see_a_torn_value() {
    let name = unique("kv-shm-torn");
    let mut m = Mirror::create(&name, &opts()).unwrap();
    m.mark_complete();
    let keys = keys(8);
    for k in &keys {
        m.set(k.as_bytes(), &value(k, 0), None);
    }
    let mut readers: Vec<_> = (0..2)
        .map(|_| {
            spawn("loop")
                .arg("NAME", &name)
                .arg("KEYS", keys.len())
                .arg("EXTRA", 100_000)
                .start()
                .unwrap()
        })
        .collect();
    for r in &mut readers {
        assert_eq!(line(r), "reading");
    }
    // Rewrite every key, over and over, with values of changing lengths.
    for c in 1..=20_000u64 {
        for k in &keys {
            m.set(k.as_bytes(), &value(k, c), None);
        }
    }
    for r in &mut readers {
        r.tell("stop").unwrap();
    }
    // Keep writing while they finish their last reads.
    let mut c = 20_000;
    let deadline = std::time::Instant::now() + T;
    for r in &mut readers {
        let done = loop {
            c += 1;
            for k in &keys {
                m.set(k.as_bytes(), &value(k, c), None);
            }
            match r.line_timeout(Duration::ZERO) {
                Ok(Some(l)) => break l,
                Ok(None) => {}
                Err(e) => panic!("reader {} died: {e}", r.id()),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a reader did not finish in {T:?}"
            );
        };
        let f: Vec<u64> = done
            .split(' ')
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(f[0] > 100_000, "{done}: every lookup found a whole value");
        assert_eq!(&f[1..3], [0, 0], "{done}");
        eprintln!("reader saw {} distinct values", f[3]);
    }
    for r in readers {
        success(r);
    }
}

/// Kills a writer process after its `progress`-th report, while two readers read; checks
/// that the readers never hang, and that the next create takes the table back.
fn kill_writer_while_readers_read(progress: u64) {
    let name = unique("kv-shm-kill");
    let mut writer = spawn("writer")
        .arg("NAME", &name)
        .arg("KEYS", 8)
        .arg("CAPACITY", 64)
        .start()
        .unwrap();
    assert_eq!(line(&mut writer), "ready");
    let mut readers: Vec<_> = (0..2)
        .map(|_| {
            spawn("loop")
                .arg("NAME", &name)
                .arg("KEYS", 8)
                .arg("EXTRA", 20_000)
                .arg("STUCK_OK", 1)
                .start()
                .unwrap()
        })
        .collect();
    for r in &mut readers {
        assert_eq!(line(r), "reading");
    }
    while line(&mut writer) != format!("progress {}", progress * 50) {}
    writer.kill_timeout(T).unwrap().expect("the writer died");
    // The readers go on reading the dead writer's table: every lookup answers (a whole value,
    // or the error that a bucket is stuck mid-update), within the reader's patience.
    for r in &mut readers {
        r.tell("stop").unwrap();
    }
    for mut r in readers {
        let done = line(&mut r);
        assert!(done.starts_with("done "), "{done}");
        eprintln!("after the kill at {progress}: {done}");
        success(r);
    }
    // The next server takes the table back.
    let mut m = Mirror::create(&name, &opts()).unwrap();
    assert!(
        matches!(m.start(), Start::Rebuilt { .. }),
        "{:?}",
        m.start()
    );
    let mut r = Remote::open(&name);
    assert_eq!(
        r.get(b"key0"),
        "not-mirrored",
        "emptied, incomplete until loaded"
    );
    m.set(b"key0", b"back", None);
    m.mark_complete();
    assert_eq!(r.get(b"key0"), Remote::found(b"back"));
    assert_eq!(r.get(b"key1"), "absent");
    drop(m);
    assert!(!exists(&name));
}

#[test]
fn a_writer_killed_mid_stream_leaves_readers_answering_and_the_next_create_repairs() {
    for progress in [1, 4, 16] {
        kill_writer_while_readers_read(progress);
    }
}

#[test]
fn a_writer_killed_holding_a_bucket_mid_update_is_a_clear_error_then_repaired() {
    let name = unique("kv-shm-stall");
    let mut stall = spawn("stall")
        .arg("NAME", &name)
        .arg("STALL", "key3")
        .start()
        .unwrap();
    assert_eq!(line(&mut stall), "stalled");
    let pid = stall.id();
    stall.kill_timeout(T).unwrap().expect("killed");

    let r = ShmReader::open(&name)
        .unwrap()
        .with_patience(Duration::from_millis(10));
    let e = r.get(b"key3").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("mid-update"), "{msg}");
    assert!(
        msg.contains(&format!("pid {pid}")) && msg.contains("gone"),
        "{msg}"
    );
    assert!(
        r.get(b"key3").is_err(),
        "still stuck: fails again (at once)"
    );
    for k in keys(10) {
        // Another key is a whole value, or stuck behind key3's bucket on its probe.
        match r.get(k.as_bytes()) {
            Ok(Lookup::Found(v)) => assert_eq!(check(&k, &v), 0),
            Ok(other) => panic!("{k}: {other:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::TimedOut, "{k}: {e}"),
        }
    }

    let mut m = Mirror::create(&name, &opts()).unwrap();
    assert_eq!(m.start(), Start::Rebuilt { writer_died: true });
    // The reader still mapping it sees the repaired table.
    assert_eq!(r.get(b"key3").unwrap(), Lookup::NotMirrored);
    m.set(b"key3", b"repaired", None);
    assert_eq!(r.get(b"key3").unwrap(), Lookup::Found(b"repaired".to_vec()));
    drop(m);
    assert_eq!(r.get(b"key3").unwrap_err().kind(), ErrorKind::Disconnected);
    assert!(!exists(&name));
}

#[test]
fn a_leftover_of_another_shape_is_replaced() {
    let name = unique("kv-shm-shape");
    let mut w = spawn("writer")
        .arg("NAME", &name)
        .arg("KEYS", 4)
        .arg("CAPACITY", 16)
        .start()
        .unwrap();
    assert_eq!(line(&mut w), "ready");
    w.kill_timeout(T).unwrap().expect("killed");
    let old = ShmReader::open(&name).unwrap();
    let m = Mirror::create(&name, &opts()).unwrap();
    assert_eq!(m.start(), Start::Replaced);
    assert_eq!(
        old.get(b"key0").unwrap_err().kind(),
        ErrorKind::Disconnected,
        "the old table's readers are told to open again"
    );
    assert_eq!(ShmReader::open(&name).unwrap().capacity(), 64);
    drop(m);
    assert!(!exists(&name));
}

#[test]
fn a_second_server_on_the_same_name_is_refused() {
    let name = unique("kv-shm-twice");
    let m = Mirror::create(&name, &opts()).unwrap();
    let e = Mirror::create(&name, &opts()).unwrap_err();
    assert_eq!(e.errno(), Some(ipckit::Errno::WOULDBLOCK), "{e}");
    assert!(e.to_string().contains("another server"), "{e}");
    drop(m);
    assert!(!exists(&name));
}

#[test]
fn a_foreign_wider_or_unknown_object_is_refused() {
    use ipckit::shm::posix::{self, PosixShm};
    let len = opts().table_len().unwrap();

    let name = unique("kv-shm-wide");
    let wide = PosixShm::create(&name, &posix::Options::new(len).mode(0o644)).unwrap();
    let e = Mirror::create(&name, &opts()).unwrap_err();
    assert_eq!(e.errno(), Some(ipckit::Errno::PERM), "{e}");
    assert!(e.to_string().contains("0644"), "{e}");
    drop(wide);

    // A reader refuses an object others may write (they could shrink it under its mapping).
    let name = unique("kv-shm-groupw");
    let groupw = PosixShm::create(&name, &posix::Options::new(len).mode(0o620)).unwrap();
    let e = ShmReader::open(&name).unwrap_err();
    assert!(e.to_string().contains("lets other users write"), "{e}");
    drop(groupw);

    let name = unique("kv-shm-other");
    let other = PosixShm::create(&name, &posix::Options::new(len)).unwrap();
    other.map().unwrap().write_at(0, b"not a mirror").unwrap();
    let e = Mirror::create(&name, &opts()).unwrap_err();
    assert_eq!(e.errno(), Some(ipckit::Errno::EXIST), "{e}");
    assert_eq!(
        ShmReader::open(&name).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    drop(other);

    if rustix::process::geteuid().is_root() {
        let name = unique("kv-shm-foreign");
        let foreign = PosixShm::create(&name, &posix::Options::new(len)).unwrap();
        rustix::fs::fchown(&foreign, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
        let e = Mirror::create(&name, &opts()).unwrap_err();
        assert_eq!(e.errno(), Some(ipckit::Errno::PERM), "{e}");
        assert!(e.to_string().contains("65534"), "{e}");
        drop(foreign);
    }
}

// ---------------------------------------------------------------------------------------------
// Readers against arbitrary memory

/// The bytes of a real table with a few entries (taken once).
fn real_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let name = unique("kv-shm-fuzz");
        let mut m = Mirror::create(
            &name,
            &MirrorOptions {
                capacity: 8,
                max_value: 40,
                max_key: 16,
                ..MirrorOptions::default()
            },
        )
        .unwrap();
        m.mark_complete();
        for k in keys(6) {
            m.set(k.as_bytes(), &value(&k, 1)[..10], None);
        }
        let shm = ipckit::shm::posix::PosixShm::open(&name, ipckit::Access::ReadOnly).unwrap();
        let map = shm.map().unwrap();
        let mut bytes = vec![0u8; map.len()];
        map.read_at(0, &mut bytes).unwrap();
        bytes
    })
}

/// A reader over `bytes` in fresh memory, if it takes them.
fn reader_over(bytes: &[u8]) -> Option<ShmReader> {
    let map = ipckit::shm::mapping::Mapping::anonymous_shared(bytes.len().max(1)).unwrap();
    map.write_at(0, bytes).unwrap();
    ShmReader::from_mapping(map, "fake")
        .ok()
        .map(|r| r.with_patience(Duration::ZERO))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A real table with bytes changed anywhere (the header included): open refuses it or
    /// every lookup answers, and an untouched table answers right.
    #[test]
    fn a_reader_of_a_corrupt_table_never_panics_or_strays(
        changes in proptest::collection::vec((0usize..6000, any::<u8>()), 0..40),
        extra in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..4),
        cut in 0usize..64,
    ) {
        let mut bytes = real_table().to_vec();
        for (at, b) in &changes {
            let at = at % bytes.len();
            bytes[at] = *b;
        }
        if cut > 0 && changes.len().is_multiple_of(3) {
            bytes.truncate(bytes.len() - cut * 64);
        }
        if let Some(r) = reader_over(&bytes) {
            for k in keys(6).iter().map(|k| k.as_bytes().to_vec()).chain(extra) {
                let got = r.get(&k);
                if changes.is_empty() && cut == 0 {
                    let want = match std::str::from_utf8(&k) {
                        Ok(s) if s.starts_with("key") && s.len() == 4 => {
                            Lookup::Found(value(s, 1)[..10].to_vec())
                        }
                        // Longer than the table's max_key (16): never mirrored, so the
                        // table cannot say it is absent.
                        _ if k.len() > 16 => Lookup::NotMirrored,
                        _ => Lookup::Absent,
                    };
                    prop_assert_eq!(got.unwrap(), want);
                }
            }
        }
    }

    /// Arbitrary bytes behind a header that passes for a mirror's (any shape that fits):
    /// every lookup answers, nothing panics.
    #[test]
    fn a_reader_of_arbitrary_buckets_never_panics_or_strays(
        buckets in 1u64..40,
        slot_lines in 1u64..6,
        max_key in 1u32..80,
        max_value in 0u32..300,
        probe in 1u32..40,
        flags in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..16384),
        lookups in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..90), 1..6),
    ) {
        let mut head = vec![0u8; 4096];
        let put = |h: &mut Vec<u8>, at: usize, v: &[u8]| h[at..at + v.len()].copy_from_slice(v);
        put(&mut head, 0, b"IPKVSHM\x01");
        put(&mut head, 8, &1u32.to_le_bytes());
        put(&mut head, 12, &4096u32.to_le_bytes());
        put(&mut head, 16, &buckets.to_le_bytes());
        put(&mut head, 24, &(slot_lines * 64).to_le_bytes());
        put(&mut head, 32, &max_key.to_le_bytes());
        put(&mut head, 36, &max_value.to_le_bytes());
        put(&mut head, 40, &probe.to_le_bytes());
        put(&mut head, 48, &body.len().to_le_bytes());
        put(&mut head, 56, &(flags & !2).to_le_bytes());
        put(&mut head, 88, &buckets.min(8).to_le_bytes());
        head.extend_from_slice(&body);
        if let Some(r) = reader_over(&head) {
            for k in &lookups {
                let _ = r.get(k);
                let mut buf = Vec::new();
                if let Ok(Presence::Found) = r.get_into(k, &mut buf) {
                    prop_assert!(buf.len() <= max_value as usize);
                }
            }
        }
    }
}
