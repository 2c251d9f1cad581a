//! FIFOs and anonymous pipes, from the descriptors that hold them.

use std::collections::BTreeMap;

use super::process::Processes;
use super::verdict::ends;
use super::{Kind, Listing, Object};

pub(super) fn fifos(procs: &Processes, listing: &mut Listing) {
    let mut found: Vec<Object> = procs
        .fifo_paths
        .iter()
        .map(|(key, path)| {
            let mut o = Object::new(Kind::Fifo);
            o.name = Some(path.clone().into_os_string());
            if let Ok(st) = rustix::fs::lstat(path) {
                o.uid = Some(st.st_uid);
                o.perms = Some(st.st_mode & 0o7777);
                o.ctime = Some(st.st_ctime);
            }
            o.file = Some(*key);
            o.holders = procs.holders(procs.files.get(key));
            ends(&mut o);
            o
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    listing.objects.extend(found);
}

pub(super) fn pipes(procs: &Processes, listing: &mut Listing) {
    let sorted: BTreeMap<_, _> = procs.pipes.iter().collect();
    for (inode, uses) in sorted {
        let mut o = Object::new(Kind::Pipe);
        o.name = Some(format!("pipe:[{inode}]").into());
        o.holders = procs.holders(Some(uses));
        o.uid = o
            .holders
            .first()
            .and_then(|h| procs.all.get(&h.pid))
            .and_then(|p| p.uid);
        // Between processes only: a pipe inside one process (a self-pipe) is its own business.
        if o.holders.len() < 2 {
            continue;
        }
        ends(&mut o);
        o.detail = o
            .detail
            .map(|d| format!("{d}, between {} processes", o.holders.len()));
        listing.objects.push(o);
    }
}
