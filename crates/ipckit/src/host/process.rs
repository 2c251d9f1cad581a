//! Who holds what: every process's open descriptors (`/proc/PID/fd`, `/proc/PID/fdinfo`) and
//! mappings (`/proc/PID/maps`), indexed by the object they lead to.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use rustix::fs::FileType;

use crate::sys::procfs;

/// A process on the host.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its effective uid, if readable.
    pub uid: Option<u32>,
    /// Its command name (`/proc/PID/stat`).
    pub command: String,
    /// When it started, in seconds since the epoch.
    pub started: Option<i64>,
    /// When it started, in milliseconds since the epoch (the kernel counts clock ticks, 10 ms).
    pub(crate) started_ms: Option<i64>,
}

/// How one process uses an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The process.
    pub pid: u32,
    /// Its command name.
    pub command: String,
    /// It has the object open for reading.
    pub read: bool,
    /// It has the object open for writing.
    pub write: bool,
    /// It has the object mapped (or, for System V shared memory, attached).
    pub mapped: bool,
}

impl Holder {
    /// `pid(command)` with how: `r`, `w`, `rw`, `m` (mapped).
    pub fn describe(&self) -> String {
        let mut how = String::new();
        if self.read {
            how.push('r');
        }
        if self.write {
            how.push('w');
        }
        if self.mapped {
            how.push('m');
        }
        format!(
            "{}({}){}{how}",
            self.pid,
            self.command,
            if how.is_empty() { "" } else { ":" }
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Use {
    pub read: bool,
    pub write: bool,
    pub mapped: bool,
}

/// A POSIX queue seen only through a descriptor (the mqueue filesystem is not mounted).
#[derive(Debug, Clone)]
pub(crate) struct HeldQueue {
    pub name: std::ffi::OsString,
    pub uid: u32,
    pub mode: u32,
    pub ctime: i64,
}

/// Every process and what it holds.
#[derive(Debug, Default)]
pub(crate) struct Processes {
    pub all: BTreeMap<u32, Process>,
    /// Processes whose descriptors or mappings could not be read (another user's, without
    /// root), with their uid.
    pub uninspected: Vec<(u32, Option<u32>)>,
    /// Processes whose descriptors were read but whose mappings could not be.
    pub maps_unread: Vec<u32>,
    /// /proc is mounted with `hidepid` and this is not root: other users' processes are not
    /// even listed.
    pub hidden_others: bool,
    /// Files by (device, inode): POSIX shm and semaphores, queues, FIFOs.
    pub files: HashMap<(u64, u64), BTreeMap<u32, Use>>,
    /// FIFO paths by (device, inode).
    pub fifo_paths: HashMap<(u64, u64), PathBuf>,
    /// Sockets by inode.
    pub sockets: HashMap<u64, BTreeMap<u32, Use>>,
    /// One descriptor (`/proc/PID/fd/N`) of each socket, by inode: what tells its family.
    pub socket_fds: HashMap<u64, PathBuf>,
    /// Anonymous pipes by inode.
    pub pipes: HashMap<u64, BTreeMap<u32, Use>>,
    /// System V segments by id, from the mappings.
    pub segments: HashMap<i32, BTreeMap<u32, Use>>,
    /// POSIX queues found through descriptors, by (device, inode).
    pub queues: HashMap<(u64, u64), HeldQueue>,
    /// Processes blocked in `msgsnd`/`msgrcv` on a System V queue, by queue id.
    pub blocked_msg: HashMap<i32, Vec<u32>>,
    /// Processes blocked in `semop`/`semtimedop` on a System V semaphore set, by set id.
    pub blocked_sem: HashMap<i32, Vec<u32>>,
    /// Processes whose threads' `syscall` files could not be read (it needs ptrace-attach
    /// rights: other users' processes, or one's own under Yama's ptrace_scope), with their uid.
    pub syscall_unread: Vec<(u32, Option<u32>)>,
}

/// Whether a pid the kernel recorded is still that process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// A process has the pid and started before the pid was recorded.
    Alive,
    /// A process has the pid but started clearly after it was recorded (past the second the
    /// kernel recorded, by more than the error of the start time): the pid was reused, or the
    /// clock was stepped forward since (boot-relative start times are turned into wall-clock
    /// time with today's clock). Not proof of death.
    Reused,
    /// No process this scan saw has the pid, but it exists (`kill(pid, 0)` says so): hidden
    /// by `hidepid`, or gone and re-used between the scan and the check.
    Hidden,
    /// No process has the pid.
    Dead,
}

impl Processes {
    /// Reads /proc. `pipes`: also index anonymous pipes (one more read per pipe end).
    /// `syscalls`: also note who is blocked on a System V queue or semaphore set (one more
    /// read per thread).
    pub fn scan(pipes: bool, syscalls: bool) -> Processes {
        let mut out = Processes::default();
        let boot_ms = boot_wall_ms();
        let ticks = (rustix::param::clock_ticks_per_second() as i64).max(1);
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        let mut mqueue_devs: HashMap<u64, bool> = HashMap::new();
        out.hidden_others = !rustix::process::geteuid().is_root() && proc_hides_pids();
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let base = PathBuf::from(format!("/proc/{pid}"));
            let Some((command, start_ticks)) =
                procfs::read_lossy(base.join("stat")).and_then(|t| procfs::stat_line(&t))
            else {
                continue; // gone meanwhile
            };
            let uid = procfs::read_lossy(base.join("status")).and_then(|t| procfs::status_euid(&t));
            let started_ms = (start_ticks as i64)
                .checked_mul(1000)
                .map(|ms| boot_ms + ms / ticks);
            let process = Process {
                pid,
                uid,
                command,
                started: started_ms.map(|ms| ms.div_euclid(1000)),
                started_ms,
            };
            let mut fds_read = out.scan_fds(&base, pid, pipes, &mut mqueue_devs);
            let mut maps_read = out.scan_maps(&base, pid);
            // A thread group whose leader has exited (pthread_exit in main) shows no
            // descriptors or mappings under its pid: its other threads still have them.
            if let Some(task) = live_thread(&base, pid) {
                fds_read |= out.scan_fds(&task, pid, pipes, &mut mqueue_devs);
                maps_read |= out.scan_maps(&task, pid);
            }
            if syscalls && !out.scan_syscall(&base, pid) {
                out.syscall_unread.push((pid, uid));
            }
            // Descriptors decide: a process whose descriptors cannot be read (another user's,
            // without root) might hold anything. One whose mappings alone cannot be read (seen
            // for a sandbox's pid 1) is noted but still judged by its descriptors.
            if !fds_read && pid != std::process::id() {
                out.uninspected.push((pid, uid));
            } else if !maps_read {
                out.maps_unread.push(pid);
            }
            out.all.insert(pid, process);
        }
        out
    }

    fn scan_fds(
        &mut self,
        base: &std::path::Path,
        pid: u32,
        pipes: bool,
        mqueue_devs: &mut HashMap<u64, bool>,
    ) -> bool {
        let fd_dir = base.join("fd");
        let Ok(fds) = std::fs::read_dir(&fd_dir) else {
            // A zombie has no descriptors; its directory reads as empty, not as an error.
            return false;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            // Text only for classifying: the object is found by stat-ing the link, and named
            // by the link's bytes, so a path that is not UTF-8 still counts.
            let raw = target;
            let target = raw.to_string_lossy().into_owned();
            let access = || {
                let info = base.join("fdinfo").join(fd.file_name());
                let flags = std::fs::read_to_string(info)
                    .ok()
                    .and_then(|t| procfs::fdinfo_flags(&t))
                    .unwrap_or(0);
                match flags & 3 {
                    0 => Use {
                        read: true,
                        ..Use::default()
                    },
                    1 => Use {
                        write: true,
                        ..Use::default()
                    },
                    _ => Use {
                        read: true,
                        write: true,
                        ..Use::default()
                    },
                }
            };
            if let Some(inode) = bracketed(&target, "socket:[") {
                merge(self.sockets.entry(inode).or_default(), pid, Use::default());
                self.socket_fds.entry(inode).or_insert_with(|| fd.path());
            } else if let Some(inode) = bracketed(&target, "pipe:[") {
                if pipes {
                    merge(self.pipes.entry(inode).or_default(), pid, access());
                }
            } else if target.starts_with('/') {
                let Ok(st) = rustix::fs::stat(fd.path()) else {
                    continue;
                };
                let key = (st.st_dev, st.st_ino);
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Fifo => {
                        self.fifo_paths.entry(key).or_insert_with(|| raw.clone());
                        merge(self.files.entry(key).or_default(), pid, access());
                    }
                    FileType::RegularFile => {
                        merge(self.files.entry(key).or_default(), pid, Use::default());
                        // A queue's link reads `/NAME`: one component, on the mqueue fs.
                        if let Some(name) = target.strip_prefix('/')
                            && !name.is_empty()
                            && !name.contains('/')
                        {
                            let is_mq = *mqueue_devs.entry(st.st_dev).or_insert_with(|| {
                                crate::mq::posix::on_mqueue_fs(fd.path().as_path())
                            });
                            if is_mq {
                                self.queues.entry(key).or_insert(HeldQueue {
                                    name: raw.clone().into_os_string(),
                                    uid: st.st_uid,
                                    mode: st.st_mode & 0o7777,
                                    ctime: st.st_ctime,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        true
    }

    /// What a process is blocked in, from `/proc/PID/syscall`: System V queue and semaphore
    /// waits, which the kernel records nowhere else by pid.
    /// Every thread's: the one blocked is often not the main one. False if some thread's
    /// could not be read.
    fn scan_syscall(&mut self, base: &std::path::Path, pid: u32) -> bool {
        let Ok(tasks) = std::fs::read_dir(base.join("task")) else {
            return false;
        };
        let mut all_read = true;
        for task in tasks.flatten() {
            let Some(text) = procfs::read_lossy(task.path().join("syscall")) else {
                // A thread that exited meanwhile has no directory any more: not a failure.
                all_read &= !task.path().exists();
                continue;
            };
            let Some((nr, arg)) = procfs::blocked_syscall(&text) else {
                continue;
            };
            // An id is an int: the kernel reads the argument's low 32 bits.
            let id = arg as u32 as i32;
            let map = match ipc_call(nr) {
                Some(IpcCall::Msg) => &mut self.blocked_msg,
                Some(IpcCall::Sem) => &mut self.blocked_sem,
                None => continue,
            };
            let pids = map.entry(id).or_default();
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        all_read
    }

    fn scan_maps(&mut self, base: &std::path::Path, pid: u32) -> bool {
        let Some(text) = procfs::read_lossy(base.join("maps")) else {
            return false;
        };
        let mapped = Use {
            mapped: true,
            ..Use::default()
        };
        for m in procfs::maps(&text) {
            if let Some(id) = procfs::sysv_segment(&m) {
                merge(self.segments.entry(id).or_default(), pid, mapped);
            } else {
                merge(self.files.entry((m.dev, m.inode)).or_default(), pid, mapped);
            }
        }
        true
    }

    /// Is `pid` still the process the kernel recorded at `when` (seconds since the epoch, as
    /// the kernel records them: the event happened within that second)?
    ///
    /// Reused only when the process provably started after the event: at least
    /// [`REUSE_MARGIN_MS`] past the end of the recorded second. Its start time is known to
    /// a clock tick (10 ms), and the wall-clock time of boot is measured now, to well within the
    /// margin.
    pub fn liveness(&self, pid: u32, when: Option<i64>) -> Liveness {
        match self.all.get(&pid) {
            None => match rustix::process::Pid::from_raw(pid as i32)
                .map(rustix::process::test_kill_process)
            {
                Some(Ok(())) | Some(Err(rustix::io::Errno::PERM)) => Liveness::Hidden,
                _ => Liveness::Dead,
            },
            Some(p) => match (p.started_ms, when) {
                (Some(started), Some(when))
                    if when > 0
                        && when
                            .checked_add(1)
                            .and_then(|end| end.checked_mul(1000))
                            .is_some_and(|end| started >= end + REUSE_MARGIN_MS) =>
                {
                    Liveness::Reused
                }
                _ => Liveness::Alive,
            },
        }
    }

    /// The holders in `uses`, with their commands.
    pub fn holders(&self, uses: Option<&BTreeMap<u32, Use>>) -> Vec<Holder> {
        uses.into_iter()
            .flatten()
            .map(|(&pid, u)| Holder {
                pid,
                command: self.command(pid),
                read: u.read,
                write: u.write,
                mapped: u.mapped,
            })
            .collect()
    }

    /// The command of `pid`, or `?` when it is not running.
    pub fn command(&self, pid: u32) -> String {
        self.all
            .get(&pid)
            .map(|p| p.command.clone())
            .unwrap_or_else(|| "?".into())
    }

    /// Processes that might be blocked on a System V object of owner `uid` with mode `mode`
    /// without this scan seeing it: those not inspected at all, and (without root) those whose
    /// system calls could not be read.
    pub fn unseen_waiters(&self, uid: u32, mode: u32) -> usize {
        // As root, a syscall file that cannot be read is an oddity (Yama scope 3, a sandbox's
        // init): noted, not counted. Without root it is the rule for other users' processes
        // and, under Yama's ptrace_scope 1, for one's own.
        let unread = if rustix::process::geteuid().is_root() {
            0
        } else {
            self.syscall_unread
                .iter()
                .filter(|(_, puid)| mode & 0o066 != 0 || puid.is_none_or(|p| p == uid))
                .count()
        };
        self.unseen_for(uid, mode) + unread
    }

    /// Processes that could not be inspected and might use an object of owner `uid` with
    /// permission bits `mode`: the owner's own, or anyone's when group or others have access.
    /// (A root process that opened another user's private object is not assumed.)
    pub fn unseen_for(&self, uid: u32, mode: u32) -> usize {
        let hidden =
            self.hidden_others && (mode & 0o066 != 0 || uid != rustix::process::geteuid().as_raw());
        self.uninspected
            .iter()
            .filter(|(_, puid)| mode & 0o066 != 0 || puid.is_none_or(|p| p == uid))
            .count()
            + usize::from(hidden)
    }
}

/// How far past the end of the recorded second a process must have started to count as a
/// later one: the start time's tick (10 ms) and the error of [`boot_wall_ms`], many times over.
pub(crate) const REUSE_MARGIN_MS: i64 = 100;

/// The wall-clock time of boot, in milliseconds since the epoch, by today's clock: now less
/// the time since boot (`CLOCK_BOOTTIME`, which the start times in `/proc/PID/stat` count
/// from). `/proc/stat`'s `btime` is the same to the whole second only, too coarse to tell a
/// process started a second after an event.
pub(crate) fn boot_wall_ms() -> i64 {
    use rustix::time::{ClockId, clock_gettime};
    let ms = |t: rustix::time::Timespec| t.tv_sec * 1000 + t.tv_nsec / 1_000_000;
    let real = ms(clock_gettime(ClockId::Realtime));
    let since_boot = ms(clock_gettime(ClockId::Boottime));
    real - since_boot
}

/// Which System V wait a blocked system call number is. Native calls of x86_64 and aarch64
/// only: a 32-bit (compat) task's `ipc()` multiplexer is not decoded.
enum IpcCall {
    Msg,
    Sem,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn ipc_call(nr: i64) -> Option<IpcCall> {
    if nr == libc::SYS_msgrcv || nr == libc::SYS_msgsnd {
        Some(IpcCall::Msg)
    } else if nr == libc::SYS_semop || nr == libc::SYS_semtimedop {
        Some(IpcCall::Sem)
    } else {
        None
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn ipc_call(_nr: i64) -> Option<IpcCall> {
    None
}

/// The namespace a `/proc/self/ns/KIND` link names, as its inode: the initial pid namespace
/// is 4026531836 and the initial IPC namespace 4026531839 (`PROC_PID_INIT_INO`,
/// `PROC_IPC_INIT_INO`).
pub(crate) fn namespace(kind: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
    let link = link.to_str()?;
    link.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// This process is in a pid namespace other than the host's.
pub(crate) fn nested_pid_namespace() -> bool {
    namespace("pid").is_some_and(|ino| ino != 4_026_531_836)
}

/// This process shares the host's IPC namespace.
pub(crate) fn host_ipc_namespace() -> bool {
    namespace("ipc").is_some_and(|ino| ino == 4_026_531_839)
}

/// /proc is mounted with `hidepid=1` or `2` (`invisible`, `noaccess`): other users'
/// processes are hidden or unreadable.
fn proc_hides_pids() -> bool {
    let Some(info) = procfs::read_lossy("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/proc"))
        .any(|l| {
            l.split([' ', ',']).any(|opt| {
                opt.strip_prefix("hidepid=")
                    .is_some_and(|v| !matches!(v, "0" | "off"))
            })
        })
}

/// When the leader of a thread group is a zombie with live threads, one of those threads'
/// `/proc/PID/task/TID` directory.
fn live_thread(base: &std::path::Path, pid: u32) -> Option<PathBuf> {
    let stat = procfs::read_lossy(base.join("stat"))?;
    if procfs::stat_state(&stat)? != 'Z' {
        return None;
    }
    let me = pid.to_string();
    std::fs::read_dir(base.join("task"))
        .ok()?
        .flatten()
        .map(|t| t.path())
        .find(|t| t.file_name().and_then(|n| n.to_str()) != Some(me.as_str()))
}

fn bracketed(target: &str, prefix: &str) -> Option<u64> {
    target.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
}

fn merge(map: &mut BTreeMap<u32, Use>, pid: u32, u: Use) {
    let e = map.entry(pid).or_default();
    e.read |= u.read;
    e.write |= u.write;
    e.mapped |= u.mapped;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uninspected_process_counts_for_its_own_objects_and_for_open_modes() {
        let mut p = Processes::default();
        p.uninspected.push((1000, Some(1000)));
        // Another user's private object: this process could not have opened it.
        assert_eq!(p.unseen_for(2000, 0o600), 0);
        // Its own, or one others may open: it might hold it.
        assert_eq!(p.unseen_for(1000, 0o600), 1);
        assert_eq!(p.unseen_for(2000, 0o666), 1);
        assert_eq!(p.unseen_for(2000, 0o640), 1);
        // A process whose uid could not be read is assumed to be anyone.
        p.uninspected.push((7, None));
        assert_eq!(p.unseen_for(2000, 0o600), 1);
    }

    #[test]
    fn a_reused_pid_is_not_the_process_the_kernel_recorded() {
        let mut p = Processes::default();
        p.all.insert(
            42,
            Process {
                pid: 42,
                uid: Some(0),
                command: "x".into(),
                started: Some(1_000),
                started_ms: Some(1_000_000),
            },
        );
        assert_eq!(
            p.liveness(42, Some(2_000)),
            Liveness::Alive,
            "started before"
        );
        assert_eq!(p.liveness(42, Some(500)), Liveness::Reused, "started after");
        // Recorded in second 999: the event may have been at 999.999, and a start at 1000.0
        // is within the margin of the tick. Only a start clearly past the second counts.
        assert_eq!(p.liveness(42, Some(999)), Liveness::Alive, "same second");
        assert_eq!(
            p.liveness(42, Some(998)),
            Liveness::Reused,
            "a second later"
        );
        p.all.get_mut(&42).unwrap().started_ms = Some(999_050);
        assert_eq!(
            p.liveness(42, Some(998)),
            Liveness::Alive,
            "within the margin"
        );
        assert_eq!(
            p.liveness(42, None),
            Liveness::Alive,
            "no time: trust the pid"
        );
        // Above any pid_max: no such process anywhere.
        assert_eq!(p.liveness(0x7fff_fff0, None), Liveness::Dead);
        // A real process this (empty) scan did not see: hidden, not dead.
        assert_eq!(p.liveness(std::process::id(), None), Liveness::Hidden);
    }

    #[test]
    fn holders_describe_how_they_hold() {
        let h = Holder {
            pid: 7,
            command: "srv".into(),
            read: true,
            write: true,
            mapped: false,
        };
        assert_eq!(h.describe(), "7(srv):rw");
    }
}
