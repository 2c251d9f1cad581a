//! What the bench reads from the host: CPU time, CPUs to pin to, and the host description.

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

use crate::report::Host;

/// Whose CPU time to read.
#[derive(Clone, Copy)]
pub enum Who {
    /// The calling thread only (the bench's measuring thread, not its helpers).
    Thread,
    /// The whole process (the peer, with any threads a mechanism starts).
    Process,
}

/// User plus system CPU time, nanoseconds, from getrusage(2). (libc: rustix has no getrusage.)
pub fn cpu_ns(who: Who) -> u64 {
    let who = match who {
        Who::Thread => libc::RUSAGE_THREAD,
        Who::Process => libc::RUSAGE_SELF,
    };
    // SAFETY: all-zero is a valid rusage, and getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_SELF and RUSAGE_THREAD cannot fail.
    unsafe { libc::getrusage(who, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    }
}

/// The two CPUs the bench and its peer are pinned to: the last two allowed (CPU 0 takes most
/// interrupts), or `None` with fewer than two.
pub fn pin_pair() -> Option<[usize; 2]> {
    let cpus = allowed_cpus();
    match cpus.len() {
        0 | 1 => None,
        n => Some([cpus[n - 2], cpus[n - 1]]),
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(Into::into)
}

/// Lets the calling thread run on `cpus` again.
pub fn unpin(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    sched_setaffinity(None, &set).map_err(Into::into)
}

/// The host: CPUs, kernel release and CPU model.
pub fn host(pinned: Option<[usize; 2]>) -> Host {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let uname = rustix::system::uname();
    Host {
        cpus: allowed_cpus().len(),
        kernel: uname.release().to_string_lossy().into_owned(),
        cpu_model,
        pinned: pinned.is_some(),
        pinned_cpus: pinned,
    }
}

/// A number from a file under /proc/sys.
pub fn sysctl(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
