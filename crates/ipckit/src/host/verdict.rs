//! The judgements: live, orphan or unknown from the pids System V records, from who holds a
//! POSIX object, and the ends of a FIFO or pipe.

use super::process::{self, Processes};
use super::{Creator, Holder, Object, State};
use crate::sys::procfs;

pub(super) fn who(procs: &Processes, pid: u32) -> String {
    format!("{pid}({})", procs.command(pid))
}

/// A pid the kernel recorded for a System V object: what it was, and when it was recorded.
pub(super) struct Recorded {
    pub(super) what: &'static str,
    pub(super) pid: u32,
    pub(super) when: Option<i64>,
}

impl Recorded {
    /// A pid with the time of the event that recorded it. Pid 0 with no time: never happened.
    /// Pid 0 with a time: it happened in a process outside this pid namespace, which the
    /// kernel shows as 0.
    pub(super) fn new(what: &'static str, pid: Option<u32>, when: Option<i64>) -> Option<Recorded> {
        let pid = pid.unwrap_or(0);
        let happened = pid > 0 || when.is_some_and(|t| t > 0);
        happened.then_some(Recorded { what, pid, when })
    }
}

/// Judges a System V object from the processes blocked on it (`blocked`: `None` for a kind
/// nobody blocks on) and the pids the kernel recorded: live if one waits or one is alive;
/// unknown if one is out of sight, possibly reused, or nothing was ever recorded, or if a
/// process that could be blocked on it could not be inspected; orphan when every one is dead.
pub(super) fn judge_recorded(
    procs: &Processes,
    o: &mut Object,
    recorded: &[Recorded],
    blocked: Option<&Vec<u32>>,
    call: &str,
) {
    use process::Liveness;
    if let Some(pids) = blocked.filter(|p| !p.is_empty()) {
        o.state = State::Live;
        let by: Vec<String> = pids.iter().map(|&p| who(procs, p)).collect();
        o.reason = format!("{} blocked in {call} on it", by.join(", "));
        o.holders = pids
            .iter()
            .map(|&pid| Holder {
                pid,
                command: procs.command(pid),
                read: false,
                write: false,
                mapped: false,
            })
            .collect();
        return;
    }
    let live = |r: &&Recorded| r.pid > 0 && procs.liveness(r.pid, r.when) == Liveness::Alive;
    if let Some(r) = recorded.iter().find(live) {
        o.state = State::Live;
        o.reason = format!("its {} {} is alive", r.what, who(procs, r.pid));
    } else if let Some(r) = recorded.iter().find(|r| r.pid == 0) {
        o.state = State::Unknown;
        o.reason = format!(
            "its {} is a process outside this pid namespace (the kernel shows pid 0)",
            r.what
        );
    } else if let Some(r) = recorded
        .iter()
        .find(|r| procs.liveness(r.pid, r.when) == Liveness::Hidden)
    {
        o.state = State::Unknown;
        o.reason = format!(
            "its {} pid {} exists but this scan cannot see it (/proc hidepid?)",
            r.what, r.pid
        );
    } else if let Some(r) = recorded
        .iter()
        .find(|r| procs.liveness(r.pid, r.when) == Liveness::Reused)
    {
        o.state = State::Unknown;
        o.reason = format!(
            "its {} was pid {}, now {} which started later: the pid was reused (or the clock was stepped)",
            r.what,
            r.pid,
            who(procs, r.pid)
        );
    } else if recorded.is_empty() {
        o.state = State::Unknown;
        o.reason = "never used, and System V records no creator pid: a process that polls it \
                    leaves no trace (ipckit rm removes it)"
            .into();
    } else if blocked.is_some()
        && let unseen = procs.unseen_waiters(o.uid.unwrap_or(0), o.perms.unwrap_or(0))
        && unseen > 0
    {
        // A process blocked on it would show only in its syscall file.
        o.state = State::Unknown;
        o.reason = format!(
            "its recorded users are dead, but {unseen} processes that could wait on it could not be inspected"
        );
    } else {
        o.state = State::Orphan;
        let mut dead: Vec<String> = Vec::new();
        for r in recorded {
            let text = format!("{} {}", r.what, r.pid);
            if !dead.iter().any(|d| d.ends_with(&format!(" {}", r.pid))) {
                dead.push(text);
            }
        }
        let verb = if dead.len() == 1 { "is" } else { "are" };
        o.reason = format!("its {} {verb} dead", dead.join(" and "));
    }
}

/// Live when someone holds it; else orphan, or unknown if an uninspected process might hold
/// it. The ipckit creator a name records is named in the reason either way.
pub(super) fn judge_held(procs: &Processes, o: &mut Object, nobody: &str) {
    // A tag is ASCII: a name that is not UTF-8 has none.
    let tag = o
        .name
        .as_deref()
        .and_then(|n| n.to_str())
        .map(|n| n.trim_start_matches('/').trim_start_matches("sem."))
        .and_then(procfs::ipckit_tag);
    o.creator = tag.map(|(purpose, pid)| Creator {
        pid,
        purpose,
        alive: procs.liveness(pid, o.ctime) == process::Liveness::Alive,
    });
    o.creator_command = o
        .creator
        .as_ref()
        .filter(|c| c.alive)
        .map(|c| procs.command(c.pid));
    if !o.holders.is_empty() {
        o.state = State::Live;
        let by: Vec<String> = o.holders.iter().map(Holder::describe).collect();
        o.reason = format!("held by {}", by.join(", "));
    } else {
        let unseen = procs.unseen_for(o.uid.unwrap_or(0), o.perms.unwrap_or(0));
        if unseen > 0 {
            o.state = State::Unknown;
            o.reason = format!("{nobody} of those inspected; {unseen} processes could not be");
        } else {
            o.state = State::Orphan;
            // An ipckit handle holds its object while it exists, so a creator that still runs
            // but holds nothing has let it go (persisted it and dropped the handle).
            o.reason = match &o.creator {
                Some(c) if c.alive => format!(
                    "{nobody}; its ipckit creator {} runs but no longer holds it",
                    who(procs, c.pid)
                ),
                Some(c) => format!("{nobody}; its ipckit creator {} is dead", c.pid),
                None => nobody.to_string(),
            };
        }
    }
}

/// Readers and writers of a FIFO or pipe, in words.
pub(super) fn ends(o: &mut Object) {
    let readers = o.holders.iter().filter(|h| h.read).count();
    let writers = o.holders.iter().filter(|h| h.write).count();
    let plural = |n: usize, what: &str| match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    };
    o.detail = Some(format!(
        "{}, {}",
        plural(readers, "reader"),
        plural(writers, "writer")
    ));
    o.state = State::Live;
    o.reason = match (readers, writers) {
        (0, _) => "no reader: a write fails with EPIPE (and SIGPIPE)".into(),
        (_, 0) => "no writer: a read returns end-of-file".into(),
        _ => {
            let by: Vec<String> = o.holders.iter().map(Holder::describe).collect();
            format!("open by {}", by.join(", "))
        }
    };
}
