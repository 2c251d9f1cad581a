//! Kernel IPC limits and how much of each is in use: what `lsipc -g` shows, plus POSIX message
//! queues, pipes, `/dev/shm` space and this process's open files.
//!
//! One [`Limit`] row per resource, read from
//! - `/proc/sys/kernel/{msgmni,msgmax,msgmnb,shmall,shmmax,shmmni,sem}` and, for the use,
//!   `/proc/sysvipc/{msg,shm,sem}` ([sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html)),
//! - `/proc/sys/fs/mqueue/*` and the entries of `/dev/mqueue` when the mqueue filesystem is
//!   mounted there ([mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html)),
//! - `/proc/sys/fs/pipe-max-size` and `pipe-user-pages-{soft,hard}`
//!   ([pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html)),
//! - `statvfs("/dev/shm")` ([statvfs(3)](https://man7.org/linux/man-pages/man3/statvfs.3.html)),
//! - `getrlimit(RLIMIT_MSGQUEUE)`, `getrlimit(RLIMIT_NOFILE)` and `/proc/self/fd`
//!   ([getrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)).
//!
//! Values are those of the caller's IPC namespace. A value that cannot be read (a file missing
//! in a container, a mount that is not there) is `None`, never an error: a full table with a
//! few gaps helps more than none.
//!
//! ```
//! let rows = ipckit::host::limits::limits().unwrap();
//! assert!(rows.iter().any(|r| r.resource == "MSGMNI"));
//! for row in &rows {
//!     // e.g. "MSGMNI: 0 of 32000 (0.00%)"
//!     let pct = row.use_percent().map(|p| format!(" ({p:.2}%)")).unwrap_or_default();
//!     let _line = format!("{}: {:?} of {:?}{pct}", row.resource, row.used, row.limit);
//! }
//! ```

use std::fmt;
use std::os::fd::AsRawFd;

use crate::error::{Error, ErrorKind, Result};

/// What a [`Limit`]'s `used` and `limit` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A number of things: queues, segments, semaphores, messages, descriptors.
    Count,
    /// Bytes.
    Bytes,
    /// Memory pages of [`page_size`](rustix::param::page_size) bytes (SHMALL, the pipe page
    /// limits).
    Pages,
}

impl Unit {
    /// The unit's name as ipckit prints it in JSON: `"count"`, `"bytes"` or `"pages"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::Pages => "pages",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kernel limit and its current use.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Its name, as `lsipc -g` prints it where lsipc has it ("MSGMNI", "SHMALL", ...), else
    /// ipckit's ("MQ_QUEUES_MAX", "PIPE_MAX_SIZE", "SHM_FS", "RLIMIT_NOFILE", ...).
    pub resource: &'static str,
    /// What it limits, in a few words ("Number of message queues").
    pub description: &'static str,
    /// How much is in use now, when the kernel tells (`None`: unknown or not counted).
    pub used: Option<u64>,
    /// The limit as the kernel reports it (`None`: could not be read). For a limit that is
    /// off ([`unlimited`](Limit::unlimited)) this is the kernel's raw value: `u64::MAX` for
    /// `RLIM_INFINITY`, 18446744073692774399 for SHMMAX's default, 0 for the pipe page limits.
    pub limit: Option<u64>,
    /// True when `limit` is the kernel's way of saying "no limit".
    pub unlimited: bool,
    /// What `used` and `limit` count.
    pub unit: Unit,
}

impl Limit {
    /// `used` as a percentage of `limit`; `None` when either is unknown, the limit is 0 or
    /// there is no limit.
    pub fn use_percent(&self) -> Option<f64> {
        match (self.used, self.limit) {
            (Some(used), Some(limit)) if limit > 0 && !self.unlimited => {
                Some(used as f64 * 100.0 / limit as f64)
            }
            _ => None,
        }
    }
}

/// A sysctl at or above this means "no limit": SHMMAX and SHMALL default to
/// `ULONG_MAX - 2^24`, and `RLIM_INFINITY` is `u64::MAX`.
const NO_LIMIT_FROM: u64 = u64::MAX - (1 << 24);

/// SHMMIN and SEMVMX are compiled into the kernel, not sysctls (include/uapi/linux/shm.h, sem.h).
const SHMMIN: u64 = 1;
const SEMVMX: u64 = 32767;

/// Reads every limit of the table, in `lsipc -g` order, then POSIX queues, pipes, `/dev/shm`
/// and open files.
///
/// Fails only when `/proc` is not a procfs mount, as nothing but the rlimits could be read;
/// any single file that is missing or unreadable leaves its value `None`.
pub fn limits() -> Result<Vec<Limit>> {
    const OP: &str = "reading the kernel IPC limits";
    let proc = rustix::fs::statfs("/proc").map_err(|e| {
        Error::os(OP, e)
            .object("/proc")
            .hint("mount procfs: mount -t proc proc /proc")
    })?;
    if proc.f_type != rustix::fs::PROC_SUPER_MAGIC {
        return Err(Error::new(ErrorKind::Os, OP, "/proc is not a procfs mount")
            .object("/proc")
            .hint("mount procfs: mount -t proc proc /proc"));
    }

    let sysctl = |path: &str| read(path).as_deref().and_then(parse_number);
    let sysv = |name: &str| read(&format!("/proc/sysvipc/{name}"));
    let (msg, shm, sem) = (sysv("msg"), sysv("shm"), sysv("sem"));
    let page = rustix::param::page_size() as u64;
    let sem_limits = read("/proc/sys/kernel/sem")
        .as_deref()
        .map(parse_sem)
        .unwrap_or_default();
    let shm_fs = shm_fs_space();
    let msgqueue = rlimit(rustix::process::Resource::Msgqueue);
    let nofile = rlimit(rustix::process::Resource::Nofile);

    use Unit::{Bytes, Count, Pages};
    let mut rows = vec![
        row("MSGMNI", "Number of message queues", Count)
            .used(msg.as_deref().and_then(sysvipc_rows))
            .limit(sysctl("/proc/sys/kernel/msgmni")),
        row("MSGMAX", "Max size of message (bytes)", Bytes)
            .limit(sysctl("/proc/sys/kernel/msgmax")),
        row("MSGMNB", "Default max size of queue (bytes)", Bytes)
            .limit(sysctl("/proc/sys/kernel/msgmnb")),
        row("SHMMNI", "Shared memory segments", Count)
            .used(shm.as_deref().and_then(sysvipc_rows))
            .limit(sysctl("/proc/sys/kernel/shmmni")),
        row("SHMALL", "Shared memory pages", Pages)
            .used(
                shm.as_deref()
                    .and_then(|t| sysvipc_sum(t, "size", |bytes| bytes.div_ceil(page))),
            )
            .limit(sysctl("/proc/sys/kernel/shmall")),
        row("SHMMAX", "Max size of shared memory segment (bytes)", Bytes)
            .limit(sysctl("/proc/sys/kernel/shmmax")),
        row("SHMMIN", "Min size of shared memory segment (bytes)", Bytes).limit(Some(SHMMIN)),
        row("SEMMNI", "Number of semaphore identifiers", Count)
            .used(sem.as_deref().and_then(sysvipc_rows))
            .limit(sem_limits.semmni),
        row("SEMMNS", "Total number of semaphores", Count)
            .used(sem.as_deref().and_then(|t| sysvipc_sum(t, "nsems", |n| n)))
            .limit(sem_limits.semmns),
        row("SEMMSL", "Max semaphores per semaphore set", Count).limit(sem_limits.semmsl),
        row("SEMOPM", "Max number of operations per semop(2)", Count).limit(sem_limits.semopm),
        row("SEMVMX", "Semaphore max value", Count).limit(Some(SEMVMX)),
        row("MQ_QUEUES_MAX", "Number of POSIX message queues", Count)
            .used(mqueue_entries())
            .limit(sysctl("/proc/sys/fs/mqueue/queues_max")),
        row("MQ_MSG_MAX", "Max messages per POSIX queue", Count)
            .limit(sysctl("/proc/sys/fs/mqueue/msg_max")),
        row(
            "MQ_MSGSIZE_MAX",
            "Max size of POSIX queue message (bytes)",
            Bytes,
        )
        .limit(sysctl("/proc/sys/fs/mqueue/msgsize_max")),
        row("MQ_MSG_DEFAULT", "Default messages per POSIX queue", Count)
            .limit(sysctl("/proc/sys/fs/mqueue/msg_default")),
        row(
            "MQ_MSGSIZE_DEFAULT",
            "Default size of POSIX queue message (bytes)",
            Bytes,
        )
        .limit(sysctl("/proc/sys/fs/mqueue/msgsize_default")),
        row(
            "RLIMIT_MSGQUEUE",
            "POSIX queue bytes per user (soft rlimit)",
            Bytes,
        )
        .limit(msgqueue.0)
        .unlimited_if(msgqueue.1),
        row(
            "PIPE_MAX_SIZE",
            "Max pipe capacity without CAP_SYS_RESOURCE (bytes)",
            Bytes,
        )
        .limit(sysctl("/proc/sys/fs/pipe-max-size")),
    ];
    for (resource, description, path) in [
        (
            "PIPE_USER_PAGES_SOFT",
            "Pipe pages per user before new pipes get 1 page",
            "/proc/sys/fs/pipe-user-pages-soft",
        ),
        (
            "PIPE_USER_PAGES_HARD",
            "Pipe pages per user before new pipes fail",
            "/proc/sys/fs/pipe-user-pages-hard",
        ),
    ] {
        // 0 turns the per-user pipe limit off (pipe(7)).
        let limit = sysctl(path);
        rows.push(
            row(resource, description, Pages)
                .limit(limit)
                .unlimited_if(limit == Some(0)),
        );
    }
    rows.extend([
        row(
            "SHM_FS",
            "Space in /dev/shm, POSIX shared memory (bytes)",
            Bytes,
        )
        .used(shm_fs.map(|s| s.used))
        .limit(shm_fs.map(|s| s.size))
        // tmpfs mounted with size=0 has no limit and reports 0 blocks.
        .unlimited_if(shm_fs.is_some_and(|s| s.size == 0)),
        row(
            "RLIMIT_NOFILE",
            "Open files of this process (soft rlimit)",
            Count,
        )
        .used(open_fds())
        .limit(nofile.0)
        .unlimited_if(nofile.1),
    ]);
    Ok(rows.into_iter().map(RowBuilder::finish).collect())
}

/// A row being filled in; `finish` marks huge sysctl values as no limit.
struct RowBuilder(Limit);

fn row(resource: &'static str, description: &'static str, unit: Unit) -> RowBuilder {
    RowBuilder(Limit {
        resource,
        description,
        used: None,
        limit: None,
        unlimited: false,
        unit,
    })
}

impl RowBuilder {
    fn used(mut self, used: Option<u64>) -> Self {
        self.0.used = used;
        self
    }

    fn limit(mut self, limit: Option<u64>) -> Self {
        self.0.limit = limit;
        self
    }

    fn unlimited_if(mut self, unlimited: bool) -> Self {
        self.0.unlimited |= unlimited;
        self
    }

    fn finish(mut self) -> Limit {
        self.0.unlimited |= self.0.limit.is_some_and(|l| l >= NO_LIMIT_FROM);
        self.0
    }
}

/// A file's text, or `None` when it cannot be read.
fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `getrlimit(resource)`'s soft limit as (limit, unlimited): `RLIM_INFINITY` is `u64::MAX`.
fn rlimit(resource: rustix::process::Resource) -> (Option<u64>, bool) {
    match rustix::process::getrlimit(resource).current {
        Some(limit) => (Some(limit), false),
        None => (Some(u64::MAX), true),
    }
}

/// Bytes used and size of the filesystem at /dev/shm.
#[derive(Clone, Copy)]
struct Space {
    used: u64,
    size: u64,
}

/// `statvfs("/dev/shm")`: `None` when there is no /dev/shm.
fn shm_fs_space() -> Option<Space> {
    let st = rustix::fs::statvfs("/dev/shm").ok()?;
    Some(Space {
        used: st
            .f_blocks
            .saturating_sub(st.f_bfree)
            .saturating_mul(st.f_frsize),
        size: st.f_blocks.saturating_mul(st.f_frsize),
    })
}

/// How many POSIX queues exist: the entries of /dev/mqueue, when the mqueue filesystem is
/// mounted there (without it the kernel does not tell).
fn mqueue_entries() -> Option<u64> {
    if !crate::mq::posix::mqueue_mounted() {
        return None;
    }
    std::fs::read_dir("/dev/mqueue")
        .ok()?
        .try_fold(0u64, |n, entry| entry.ok().map(|_| n + 1))
}

/// How many descriptors this process has open: the entries of /proc/self/fd, less the one
/// that reads the directory.
fn open_fds() -> Option<u64> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let own = fd.as_raw_fd().to_string();
    let dir = rustix::fs::Dir::new(fd).ok()?;
    dir.into_iter().try_fold(0u64, |n, entry| {
        let entry = entry.ok()?;
        let name = entry.file_name().to_bytes();
        let counts = name != b"." && name != b".." && name != own.as_bytes();
        Some(n + u64::from(counts))
    })
}

/// A sysctl's one number ("32000\n"); `None` for empty or non-numeric text.
fn parse_number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The four fields of `/proc/sys/kernel/sem`: "SEMMSL SEMMNS SEMOPM SEMMNI".
#[derive(Debug, Default, PartialEq, Eq)]
struct SemLimits {
    semmsl: Option<u64>,
    semmns: Option<u64>,
    semopm: Option<u64>,
    semmni: Option<u64>,
}

/// Parses `/proc/sys/kernel/sem` ("32000\t1024000000\t500\t32000\n"): a missing or
/// non-numeric field is `None`, the others are still read.
fn parse_sem(text: &str) -> SemLimits {
    let mut fields = text.split_whitespace().map(|f| f.parse().ok());
    let mut next = || fields.next().flatten();
    SemLimits {
        semmsl: next(),
        semmns: next(),
        semopm: next(),
        semmni: next(),
    }
}

/// The number of objects in a `/proc/sysvipc/{msg,shm,sem}` table: its lines after the
/// header. `None` when there is no header (not such a table).
fn sysvipc_rows(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    lines.next().filter(|header| !header.trim().is_empty())?;
    Some(lines.filter(|l| !l.trim().is_empty()).count() as u64)
}

/// The sum of `each(value)` over `column` of a `/proc/sysvipc` table (e.g. "nsems").
/// `None` when the header has no such column or a row's value is missing or not a number:
/// a sum with a gap would look exact and be wrong.
fn sysvipc_sum(text: &str, column: &str, each: impl Fn(u64) -> u64) -> Option<u64> {
    let mut lines = text.lines();
    let index = lines.next()?.split_whitespace().position(|c| c == column)?;
    lines
        .filter(|l| !l.trim().is_empty())
        .try_fold(0u64, |sum, line| {
            let value: u64 = line.split_whitespace().nth(index)?.parse().ok()?;
            Some(sum.saturating_add(each(value)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHM: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
         0          3  1600                  4096  1123  1123      0     0     0     0     0          0          0 1700000000                     0                     0
 305419896          4   600               1048577  1124     0      0  1000  1000  1000  1000          0          0 1700000001                     0                     0
";

    const SEM: &str =
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime
         0          0   600          3     0     0     0     0          0 1700000000
         1          1   600        250     0     0     0     0          0 1700000000
";

    #[test]
    fn numbers_trim_and_refuse_garbage() {
        assert_eq!(parse_number("32000\n"), Some(32000));
        assert_eq!(parse_number("  8192  "), Some(8192));
        assert_eq!(
            parse_number("18446744073692774399\n"),
            Some(18446744073692774399)
        );
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("\n"), None);
        assert_eq!(parse_number("-1"), None);
        assert_eq!(parse_number("12 34"), None);
        assert_eq!(parse_number("99999999999999999999999"), None);
    }

    #[test]
    fn sem_fields_in_order_and_gaps_are_none() {
        assert_eq!(
            parse_sem("32000\t1024000000\t500\t32000\n"),
            SemLimits {
                semmsl: Some(32000),
                semmns: Some(1024000000),
                semopm: Some(500),
                semmni: Some(32000),
            }
        );
        assert_eq!(
            parse_sem("  250   32000  32   128  "),
            parse_sem("250 32000 32 128")
        );
        assert_eq!(parse_sem(""), SemLimits::default());
        let two = parse_sem("250 32000");
        assert_eq!(
            (two.semmns, two.semopm, two.semmni),
            (Some(32000), None, None)
        );
        let bad = parse_sem("250 x 32 128 extra");
        assert_eq!(
            (bad.semmsl, bad.semmns, bad.semopm, bad.semmni),
            (Some(250), None, Some(32), Some(128))
        );
    }

    #[test]
    fn rows_count_objects_after_the_header() {
        assert_eq!(sysvipc_rows(SHM), Some(2));
        assert_eq!(sysvipc_rows(SEM), Some(2));
        assert_eq!(sysvipc_rows("  key msqid perms cbytes qnum\n"), Some(0));
        assert_eq!(sysvipc_rows("  key msqid\n\n   \n 1 2\n"), Some(1));
        assert_eq!(sysvipc_rows(""), None);
        assert_eq!(sysvipc_rows("   \n1 2\n"), None);
    }

    #[test]
    fn sums_a_column_and_rounds_to_pages() {
        // 4096 bytes is one page, 1048577 bytes is 257 pages (256 and a byte).
        assert_eq!(sysvipc_sum(SHM, "size", |b| b.div_ceil(4096)), Some(258));
        assert_eq!(sysvipc_sum(SHM, "size", |b| b), Some(4096 + 1048577));
        assert_eq!(sysvipc_sum(SEM, "nsems", |n| n), Some(253));
        // No objects: zero, not unknown.
        assert_eq!(sysvipc_sum("key semid nsems\n", "nsems", |n| n), Some(0));
    }

    #[test]
    fn sums_are_unknown_when_the_table_is_odd() {
        assert_eq!(sysvipc_sum("", "nsems", |n| n), None);
        assert_eq!(sysvipc_sum(SEM, "no-such-column", |n| n), None);
        // A short row or a non-number: the sum would be wrong, so it is unknown.
        assert_eq!(sysvipc_sum("key semid nsems\n1 2\n", "nsems", |n| n), None);
        assert_eq!(
            sysvipc_sum("key semid nsems\n1 2 x\n", "nsems", |n| n),
            None
        );
        // Extra spaces and fields are fine; overflow saturates.
        assert_eq!(
            sysvipc_sum("  key  semid   nsems  \n  1   2   3  9 9\n", "nsems", |n| n),
            Some(3)
        );
        let huge = "key size\n1 18446744073709551615\n2 18446744073709551615\n";
        assert_eq!(sysvipc_sum(huge, "size", |b| b), Some(u64::MAX));
    }

    #[test]
    fn use_percent_needs_both_numbers_and_a_real_limit() {
        let mut r = row("X", "x", Unit::Count)
            .used(Some(8))
            .limit(Some(32))
            .finish();
        assert_eq!(r.use_percent(), Some(25.0));
        r.limit = Some(0);
        assert_eq!(r.use_percent(), None);
        r.limit = None;
        assert_eq!(r.use_percent(), None);
        let huge = row("SHMALL", "x", Unit::Pages)
            .used(Some(1))
            .limit(Some(18446744073692774399))
            .finish();
        assert!(huge.unlimited);
        assert_eq!(huge.use_percent(), None);
        let off = row("PIPE", "x", Unit::Pages)
            .limit(Some(0))
            .unlimited_if(true)
            .finish();
        assert!(off.unlimited);
        assert!(
            !row("Y", "y", Unit::Bytes)
                .limit(Some(8192))
                .finish()
                .unlimited
        );
    }

    #[test]
    fn reads_this_machine() {
        let rows = limits().unwrap();
        let get = |name: &str| rows.iter().find(|r| r.resource == name).unwrap();
        let names: Vec<_> = rows.iter().map(|r| r.resource).collect();
        for name in [
            "MSGMNI",
            "MSGMAX",
            "MSGMNB",
            "SHMMNI",
            "SHMALL",
            "SHMMAX",
            "SHMMIN",
            "SEMMNI",
            "SEMMNS",
            "SEMMSL",
            "SEMOPM",
            "SEMVMX",
            "MQ_QUEUES_MAX",
            "MQ_MSG_MAX",
            "MQ_MSGSIZE_MAX",
            "MQ_MSG_DEFAULT",
            "MQ_MSGSIZE_DEFAULT",
            "RLIMIT_MSGQUEUE",
            "PIPE_MAX_SIZE",
            "PIPE_USER_PAGES_SOFT",
            "PIPE_USER_PAGES_HARD",
            "SHM_FS",
            "RLIMIT_NOFILE",
        ] {
            assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{name}");
        }
        assert_eq!(names.len(), 23);
        if let Some(msgmni) = read("/proc/sys/kernel/msgmni") {
            assert_eq!(get("MSGMNI").limit, parse_number(&msgmni));
        }
        // This process has stdin/stdout/stderr or at least something open, and the count
        // leaves out the descriptor that read /proc/self/fd.
        let nofile = get("RLIMIT_NOFILE");
        assert!(nofile.used.is_some_and(|n| n >= 1));
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        assert_eq!(nofile.limit, Some(soft.unwrap_or(u64::MAX)));
        assert_eq!(get("SHMMIN").limit, Some(1));
        assert_eq!(get("SEMVMX").limit, Some(32767));
    }
}
