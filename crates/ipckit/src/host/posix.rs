//! POSIX shared memory and semaphores (`/dev/shm`) and POSIX queues (the mqueue filesystem).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::process::Processes;
use super::verdict::judge_held;
use super::{Kind, Listing, Object, Options};
use crate::sys::procfs;

pub(super) fn dev_shm(procs: &Processes, opts: &Options, listing: &mut Listing) {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        listing.notes.push("/dev/shm cannot be read".into());
        return;
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        // The entry's bytes as they are: a planted name that is not UTF-8 must still lead
        // back to its file.
        let file = entry.file_name();
        let (kind, name) = match file.as_bytes().strip_prefix(b"sem.") {
            Some(n) => (Kind::PosixSem, n),
            None => (Kind::PosixShm, file.as_bytes()),
        };
        if !opts.wants(kind) {
            continue;
        }
        let mut o = Object::new(kind);
        o.name = Some(slash(name));
        o.uid = Some(meta.uid());
        o.perms = Some(meta.mode() & 0o7777);
        o.size = Some(meta.size());
        o.ctime = Some(meta.ctime());
        o.file = Some((meta.dev(), meta.ino()));
        o.holders = procs.holders(procs.files.get(&(meta.dev(), meta.ino())));
        judge_held(procs, &mut o, "no process maps it or holds it open");
        found.push(o);
    }
    found.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    listing.objects.extend(found);
}

pub(super) fn mqueue(procs: &Processes, listing: &mut Listing) {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    if crate::mq::posix::mqueue_mounted() {
        for entry in std::fs::read_dir("/dev/mqueue")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(meta) = entry.metadata() else { continue };
            let mut o = Object::new(Kind::PosixMq);
            o.name = Some(slash(entry.file_name().as_bytes()));
            o.uid = Some(meta.uid());
            o.perms = Some(meta.mode() & 0o7777);
            o.ctime = Some(meta.ctime());
            o.file = Some((meta.dev(), meta.ino()));
            o.used_bytes = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| procfs::mqueue_qsize(&t));
            o.holders = procs.holders(procs.files.get(&(meta.dev(), meta.ino())));
            judge_held(procs, &mut o, "no process holds it open");
            found.push(o);
        }
    } else {
        listing.notes.push(
            "the mqueue filesystem is not mounted: only POSIX queues a process holds open are listed \
             (mount it with: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue)"
                .into(),
        );
        for (key, q) in &procs.queues {
            let mut o = Object::new(Kind::PosixMq);
            o.name = Some(q.name.clone());
            o.uid = Some(q.uid);
            o.perms = Some(q.mode);
            o.ctime = Some(q.ctime);
            o.file = Some(*key);
            o.holders = procs.holders(procs.files.get(key));
            judge_held(procs, &mut o, "no process holds it open");
            found.push(o);
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    listing.objects.extend(found);
}

/// `/NAME`, a POSIX name from a file name's bytes.
fn slash(name: &[u8]) -> OsString {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(b'/');
    bytes.extend_from_slice(name);
    OsString::from_vec(bytes)
}
