//! System V queues, segments and semaphore sets, from `/proc/sysvipc`.

use super::process::{self, Processes};
use super::verdict::{Recorded, judge_recorded, who};
use super::{Kind, Listing, Object, State};
use crate::sys::procfs;

fn sysv_rows(kind: &str) -> Vec<procfs::SysvRow> {
    procfs::read_lossy(format!("/proc/sysvipc/{kind}"))
        .map(|t| procfs::sysv_table(&t))
        .unwrap_or_default()
}

fn sysv_object(kind: Kind, row: &procfs::SysvRow) -> Object {
    let pid = |c: &str| row.num(c).and_then(|v| u32::try_from(v).ok());
    let mut o = Object::new(kind);
    o.key = row.num("key").and_then(|k| i32::try_from(k).ok());
    o.id = procfs::sysv_id(row);
    o.uid = pid("uid");
    o.perms = row.perms();
    o.ctime = row.num("ctime");
    o.cpid = pid("cpid");
    o.lpid = pid("lpid");
    o.lspid = pid("lspid");
    o.lrpid = pid("lrpid");
    o.last_used = ["ctime", "atime", "dtime", "stime", "rtime", "otime"]
        .iter()
        .filter_map(|c| row.num(c))
        .max();
    o
}

pub(super) fn sysv_msg(procs: &Processes, listing: &mut Listing) {
    for row in sysv_rows("msg") {
        let mut o = sysv_object(Kind::SysvMq, &row);
        o.msgs = row.unsigned("qnum");
        o.used_bytes = row.unsigned("cbytes");
        let recorded: Vec<Recorded> = [
            Recorded::new("last sender", o.lspid, row.num("stime")),
            Recorded::new("last receiver", o.lrpid, row.num("rtime")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let none = Vec::new();
        let blocked =
            o.id.and_then(|id| procs.blocked_msg.get(&id))
                .or(Some(&none));
        judge_recorded(procs, &mut o, &recorded, blocked, "msgsnd or msgrcv");
        listing.objects.push(o);
    }
}

pub(super) fn sysv_shm(procs: &Processes, listing: &mut Listing) {
    for row in sysv_rows("shm") {
        let mut o = sysv_object(Kind::SysvShm, &row);
        o.size = row.unsigned("size");
        o.nattch = row.unsigned("nattch");
        o.holders = procs.holders(o.id.and_then(|id| procs.segments.get(&id)));
        let removed = o.perms.is_some_and(|p| p & 0o1000 != 0);
        let nattch = o.nattch.unwrap_or(0);
        o.creator_command = o
            .cpid
            .filter(|&p| p > 0 && procs.liveness(p, o.ctime) == process::Liveness::Alive)
            .map(|p| procs.command(p));
        if nattch > 0 {
            o.state = State::Live;
            let by: Vec<String> = o.holders.iter().map(|h| who(procs, h.pid)).collect();
            o.reason = if by.len() as u64 == nattch {
                format!("attached by {}", by.join(", "))
            } else if by.is_empty() {
                format!("{nattch} attachments, by processes out of sight")
            } else {
                format!("{nattch} attachments, among them {}", by.join(", "))
            };
            if removed {
                o.reason.push_str("; removed, freed at the last detach");
            }
        } else {
            let last_use = [row.num("atime"), row.num("dtime")]
                .into_iter()
                .flatten()
                .max()
                .filter(|&t| t > 0);
            // A segment always has a creator: pid 0 means one outside this pid namespace.
            let creator = Some(Recorded {
                what: "creator",
                pid: o.cpid.unwrap_or(0),
                when: o.ctime,
            });
            let recorded: Vec<Recorded> = creator
                .into_iter()
                .chain(Recorded::new("last user", o.lpid, last_use))
                .collect();
            judge_recorded(procs, &mut o, &recorded, None, "shmat");
            if o.state == State::Orphan {
                o.reason = format!("no attachments; {}", o.reason);
            } else if o.state == State::Live {
                o.reason = format!("not attached, but {}", o.reason);
            }
        }
        listing.objects.push(o);
    }
}

pub(super) fn sysv_sem(procs: &Processes, listing: &mut Listing) {
    use crate::sync::sem_sysv::SysvSemSet;
    for row in sysv_rows("sem") {
        let mut o = sysv_object(Kind::SysvSem, &row);
        o.nsems = row.unsigned("nsems");
        // SETVAL and SETALL record a pid too, and change ctime rather than otime.
        let otime = row.num("otime").filter(|&t| t > 0);
        let when = otime.max(o.ctime);
        // The last user of each semaphore and its waiters need semctl, which needs read access.
        let set =
            o.id.map(|id| SysvSemSet::open_id(id, crate::Access::ReadOnly));
        match set {
            Some(Ok(set)) => {
                let mut waiting = 0;
                let mut recorded = Vec::new();
                for i in 0..set.len() {
                    if let Ok((n, z)) = set.waiters(i) {
                        waiting += n + z;
                    }
                    if let Ok(pid) = set.last_pid(i)
                        && pid > 0
                        && !recorded.iter().any(|r: &Recorded| r.pid == pid)
                    {
                        recorded.push(Recorded {
                            what: "last user",
                            pid,
                            when,
                        });
                    }
                }
                if recorded.is_empty() && otime.is_some() {
                    // Operated on, but by no pid this namespace can see.
                    recorded.extend(Recorded::new("last user", Some(0), otime));
                }
                let none = Vec::new();
                let blocked =
                    o.id.and_then(|id| procs.blocked_sem.get(&id))
                        .or(Some(&none));
                if waiting > 0 && blocked.is_none_or(|b| b.is_empty()) {
                    o.state = State::Live;
                    o.reason = match waiting {
                        1 => "a process waits on it".to_string(),
                        n => format!("{n} processes wait on it"),
                    };
                } else {
                    judge_recorded(procs, &mut o, &recorded, blocked, "semop");
                }
            }
            Some(Err(e)) => {
                o.state = State::Unknown;
                o.reason = format!("cannot read its last users: {e}");
            }
            None => {
                o.state = State::Unknown;
                o.reason = "no id".into();
            }
        }
        listing.objects.push(o);
    }
}
