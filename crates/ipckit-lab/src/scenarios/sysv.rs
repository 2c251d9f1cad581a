//! System V shared memory lives in the kernel, not in any process: a segment outlives the
//! process that made it unless someone removes it (`sysv-orphan`), which is how crashed
//! programs fill `ipcs -m`; `ipckit gc` finds such orphans (nothing attached, creator and last
//! user dead) and removes them. And removal is deferred (`rmid-attached`): `IPC_RMID` only
//! marks a segment, which every process attached keeps using until the last one detaches,
//! while its key is already free.

use ipckit::Access;
use ipckit::host::{self, Kind, Options, State};
use ipckit::name::SysvKey;
use ipckit::shm::sysv::{self, SysvShm};

use crate::child::{self, Args, Role};
use crate::{Lab, Result, Scenario, Verdict};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sysv-orphan",
        lesson: "a System V segment outlives its creator until removed: ipckit's scan calls it an orphan and gc removes it",
        run: orphan,
    },
    Scenario {
        name: "rmid-attached",
        lesson: "IPC_RMID on an attached segment only marks it: attached processes keep using it, the key is free, it goes with the last detach",
        run: rmid_attached,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("sysv-orphan-maker", orphan_maker),
    ("sysv-attached-user", attached_user),
];

const SIZE: usize = 4096;

/// Removes every segment the child `cpid` created, when dropped: whatever step failed, and
/// even if the child was killed before it said its segment's id.
struct SegmentGuard {
    cpid: Option<ipckit::Pid>,
}

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        let Some(cpid) = self.cpid else { return };
        let table = ipckit::host::procfs::read_lossy("/proc/sysvipc/shm").unwrap_or_default();
        for row in ipckit::host::procfs::sysv_table(&table) {
            if row.num("cpid") != Some(i64::from(cpid)) {
                continue;
            }
            if let Some(id) = ipckit::host::procfs::sysv_id(&row)
                && let Ok(seg) = SysvShm::open_id(id, Access::ReadOnly)
                && seg.stat().is_ok_and(|st| st.cpid == cpid)
            {
                let _ = seg.remove();
            }
        }
    }
}

fn orphan(lab: &mut Lab) -> Result<Verdict> {
    // Declared before the child, so it runs after the child is killed and reaped.
    let mut guard = SegmentGuard { cpid: None };
    let mut c = child::spawn("sysv-orphan-maker").start()?;
    let cpid = c.pid();
    guard.cpid = Some(cpid);
    let line = c.line()?;
    let id: i32 = line
        .strip_prefix("created ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("child said '{line}'"))?;
    lab.say(format!("child {cpid}"), &line);
    c.tell("exit")?;
    let line = c.line()?;
    lab.say(format!("child {cpid}"), line);
    c.success()?;
    lab.say("parent", format!("child {cpid} exited and was reaped"));

    let st = SysvShm::open_id(id, Access::ReadOnly)?.stat()?;
    lab.kernel(format!(
        "shmctl(IPC_STAT, id {id}) -> {} bytes, nattch {}, cpid {}, lpid {}, removed {}",
        st.len, st.nattch, st.cpid, st.lpid, st.removed
    ));
    let persisted = st.nattch == 0 && st.cpid == cpid && !st.removed;

    let listing = host::scan(&Options {
        kinds: vec![Kind::SysvShm],
        ..Default::default()
    });
    let object = listing
        .objects
        .into_iter()
        .find(|o| o.id == Some(id))
        .ok_or_else(|| format!("ipckit's scan did not list segment {id}"))?;
    lab.say(
        "parent",
        format!(
            "ipckit::host::scan: {} is {}: {}",
            object.uri(),
            object.state,
            object.reason
        ),
    );
    let is_orphan = object.state == State::Orphan;

    let removed = match host::remove(&object) {
        Ok(()) => {
            lab.say(
                "parent",
                format!(
                    "ipckit::host::remove({}) (what `ipckit gc` does): ok",
                    object.uri()
                ),
            );
            true
        }
        Err(e) => {
            lab.say(
                "parent",
                format!("ipckit::host::remove -> {} ({e})", crate::errno_of(&e)),
            );
            false
        }
    };
    let gone = match SysvShm::open_id(id, Access::ReadOnly) {
        Ok(_) => {
            lab.kernel(format!("shmctl(IPC_STAT, id {id}) -> still there"));
            false
        }
        Err(e) => {
            lab.kernel(format!(
                "shmctl(IPC_STAT, id {id}) -> {} (gone)",
                crate::errno_of(&e)
            ));
            true
        }
    };
    Verdict::check(
        persisted && is_orphan && removed && gone,
        format!(
            "segment {id} outlived its creator {cpid} (nattch {}), scan said {}, removal {}",
            st.nattch,
            object.state,
            if removed && gone {
                "freed it"
            } else {
                "failed"
            }
        ),
    )
}

/// Child: creates a private segment, writes into it, detaches, and (once the parent knows the
/// id) exits without removing it: what a crashed or careless program leaves.
fn orphan_maker(_args: &Args) -> Result<()> {
    let seg = SysvShm::create(SysvKey::Private, &sysv::Options::new(SIZE))?;
    let note = format!("left by pid {}", std::process::id());
    {
        let m = seg.attach()?;
        m.write_at(0, note.as_bytes())?;
    }
    child::say(format!(
        "created {} (shmget IPC_PRIVATE, {SIZE} bytes), wrote '{note}', detached",
        seg.id()
    ));
    // Only once the parent has the id (and will clean up): if it is gone, drop removes it.
    if child::hear().as_deref() != Some("exit") {
        return Err("the parent went away".into());
    }
    let _ = seg.persist();
    child::say("exits without IPC_RMID");
    Ok(())
}

/// A key no other segment has: tries a few derived from this process's id.
fn create_with_fresh_key() -> Result<SysvShm> {
    let base = 0x1ab0_0000_u32 ^ (std::process::id() << 8);
    let mut last = None;
    for i in 0..64u32 {
        let key = SysvKey::Key((base.wrapping_add(i * 0x9e37)) as i32);
        if key == SysvKey::Private {
            continue;
        }
        match SysvShm::create(key, &sysv::Options::new(SIZE)) {
            Ok(seg) => return Ok(seg),
            Err(e) if e.errno() == Some(ipckit::Errno::EXIST) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(|| "no free key".into(), Into::into))
}

/// The segment's row in `/proc/sysvipc/shm`: (key, perms in octal, nattch), `None` when the
/// kernel no longer lists it.
fn proc_row(id: i32) -> Option<(i64, u32, u64)> {
    let text = host::procfs::read_lossy("/proc/sysvipc/shm")?;
    host::procfs::sysv_table(&text)
        .into_iter()
        .find(|r| host::procfs::sysv_id(r) == Some(id))
        .map(|r| {
            (
                r.num("key").unwrap_or(-1),
                r.perms().unwrap_or(0),
                r.unsigned("nattch").unwrap_or(0),
            )
        })
}

fn rmid_attached(lab: &mut Lab) -> Result<Verdict> {
    let seg = create_with_fresh_key()?;
    let (id, key) = (seg.id(), seg.key());
    {
        let m = seg.attach()?;
        m.write_at(0, b"before")?;
    }
    lab.say(
        "parent",
        format!("shmget(key {key}, IPC_CREAT|IPC_EXCL) -> id {id}; wrote 'before', detached"),
    );
    let mut c = child::spawn("sysv-attached-user")
        .arg("KEY", key.raw())
        .start()?;
    let who = format!("child {}", c.pid());
    let line = c.line()?;
    lab.say(&who, line);

    seg.remove()?;
    lab.say("parent", format!("shmctl(id {id}, IPC_RMID) -> ok"));
    let st = SysvShm::open_id(id, Access::ReadOnly)?.stat()?;
    let row = proc_row(id);
    let (row_key, row_perms, row_nattch) = row.unwrap_or((-1, 0, 0));
    lab.kernel(format!(
        "/proc/sysvipc/shm id {id}: key {row_key}, perms {row_perms:o} (SHM_DEST = 1000), nattch {row_nattch}"
    ));
    lab.kernel(format!(
        "IPC_STAT: key {}, SHM_DEST {}, nattch {}",
        st.key, st.removed, st.nattch
    ));
    let marked = row.is_some()
        && row_key == 0
        && row_perms & 0o1000 != 0
        && st.removed
        && st.key == SysvKey::Private
        && st.nattch == 1;

    let key_free = match SysvShm::open(key, Access::ReadOnly) {
        Ok(_) => {
            lab.kernel(format!("shmget(key {key}) -> still finds it"));
            false
        }
        Err(e) => {
            let name = crate::errno_of(&e);
            lab.kernel(format!("shmget(key {key}) -> {name} (the key is free)"));
            name == "ENOENT"
        }
    };

    c.tell("use")?;
    let used = c.line()?;
    lab.say(&who, &used);
    let still_usable = used.starts_with("read 'before', wrote 'after', read back 'after'");

    c.tell("detach")?;
    let line = c.line()?;
    lab.say(&who, line);
    let freed = proc_row(id).is_none();
    lab.kernel(if freed {
        format!("/proc/sysvipc/shm: id {id} is gone (child still running)")
    } else {
        format!("/proc/sysvipc/shm: id {id} is still listed")
    });
    c.tell("exit")?;
    c.success()?;

    let checks = [
        (marked, "marked (key 0, SHM_DEST, still 1 attachment)"),
        (key_free, "shmget by key -> ENOENT"),
        (still_usable, "the attached child read and wrote it"),
        (freed, "freed at the child's shmdt"),
    ];
    let failed: Vec<&str> = checks.iter().filter(|c| !c.0).map(|c| c.1).collect();
    Verdict::check(
        failed.is_empty(),
        if failed.is_empty() {
            format!(
                "segment {id} after IPC_RMID: marked (key 0, SHM_DEST), its key free, still used by the attached child, freed at its shmdt"
            )
        } else {
            format!(
                "segment {id} after IPC_RMID: not shown: {}",
                failed.join("; ")
            )
        },
    )
}

/// Child: opens the segment by key and attaches; on "use" reads and writes it (after the
/// parent removed it); on "detach" detaches; on "exit" exits.
fn attached_user(args: &Args) -> Result<()> {
    let key = SysvKey::from_raw(args.parse("KEY")?);
    let seg = SysvShm::open(key, Access::ReadWrite)?;
    let m = seg.attach()?;
    child::say(format!(
        "shmget(key {key}) -> id {}, shmat -> attached",
        seg.id()
    ));
    if child::hear().as_deref() != Some("use") {
        return Err("the parent went away".into());
    }
    let mut before = [0u8; 6];
    m.read_at(0, &mut before)?;
    m.write_at(16, b"after")?;
    let mut after = [0u8; 5];
    m.read_at(16, &mut after)?;
    child::say(format!(
        "read '{}', wrote 'after', read back '{}'",
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&after)
    ));
    if child::hear().as_deref() != Some("detach") {
        return Err("the parent went away".into());
    }
    drop(m);
    child::say("shmdt -> detached (still running)");
    let _ = child::hear();
    Ok(())
}
