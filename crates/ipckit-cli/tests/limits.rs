//! `ipckit limits` end to end: the JSON agrees with /proc, System V objects made by util-linux's
//! ipcmk are counted, the table has a row per resource, and bad usage or a closed stdout end
//! in a clean exit status. Objects are removed by a guard even when an assertion fails.

mod common;

use std::process::{Command, Stdio};

use common::{Ran, T};
use serde_json::Value;

/// What a command gave, as text.
struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl From<Ran> for Output {
    fn from(r: Ran) -> Output {
        Output {
            status: r.status,
            stdout: r.out(),
            stderr: r.err(),
        }
    }
}

/// Runs `cmd` to its end, bounded by T, with its output read while it runs.
fn run(cmd: Command) -> Output {
    common::run(cmd).into()
}

fn ipckit(args: &[&str]) -> Output {
    common::ipckit_run(args).into()
}

/// `ipckit limits --json`, parsed: one object per resource.
fn limits_json() -> Vec<Value> {
    let out = ipckit(&["limits", "--json"]);
    assert!(out.status.success(), "{}", out.stderr);
    match serde_json::from_str(&out.stdout) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?}\n{}", out.stdout),
    }
}

fn row<'a>(rows: &'a [Value], resource: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["resource"] == resource)
        .unwrap_or_else(|| panic!("no {resource} row in {rows:?}"))
}

fn used(rows: &[Value], resource: &str) -> u64 {
    row(rows, resource)["used"]
        .as_u64()
        .unwrap_or_else(|| panic!("{resource} has no used count"))
}

fn limit(rows: &[Value], resource: &str) -> Option<u64> {
    row(rows, resource)["limit"].as_u64()
}

/// The numbers of a /proc file ("32000\t1024000000\t500\t32000").
fn proc_numbers(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect()
}

/// A System V object made by `ipcmk`, removed by `ipcrm` on drop (even when a test fails).
struct IpcObject {
    /// ipcrm's flag for its kind: -q, -m or -s.
    rm_flag: &'static str,
    id: String,
}

impl IpcObject {
    fn make(args: &[&str], rm_flag: &'static str) -> IpcObject {
        let mut cmd = Command::new("ipcmk");
        cmd.args(args);
        let out = run(cmd);
        assert!(out.status.success(), "ipcmk {args:?}: {}", out.stderr);
        // "Message queue id: 3", "Shared memory id: 3", "Semaphore id: 3"
        let id = out.stdout.split_whitespace().last().unwrap_or_default();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "ipcmk {args:?} printed {:?}",
            out.stdout
        );
        IpcObject {
            rm_flag,
            id: id.to_string(),
        }
    }
}

impl Drop for IpcObject {
    fn drop(&mut self) {
        let mut cmd = Command::new("ipcrm");
        cmd.args([self.rm_flag, &self.id]);
        let out = run(cmd);
        if !out.status.success() && !std::thread::panicking() {
            panic!("ipcrm {} {}: {}", self.rm_flag, self.id, out.stderr);
        }
    }
}

#[test]
fn json_rows_agree_with_proc() {
    let rows = limits_json();
    for r in &rows {
        let name = r["resource"].as_str().unwrap();
        assert!(r["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(
            ["count", "bytes", "pages"].contains(&r["unit"].as_str().unwrap()),
            "{r}"
        );
        for key in ["used", "limit"] {
            assert!(r[key].is_null() || r[key].is_u64(), "{name}.{key}: {r}");
        }
        assert!(
            r["use_percent"].is_null() || r["use_percent"].is_f64(),
            "{r}"
        );
        assert!(r["unlimited"].is_boolean(), "{r}");
        let same = rows.iter().filter(|o| o["resource"] == name).count();
        assert_eq!(same, 1, "{name} appears {same} times");
    }
    let one = |path: &str| Some(proc_numbers(path)[0]);
    assert_eq!(limit(&rows, "MSGMNI"), one("/proc/sys/kernel/msgmni"));
    assert_eq!(limit(&rows, "MSGMAX"), one("/proc/sys/kernel/msgmax"));
    assert_eq!(limit(&rows, "MSGMNB"), one("/proc/sys/kernel/msgmnb"));
    assert_eq!(limit(&rows, "SHMMNI"), one("/proc/sys/kernel/shmmni"));
    assert_eq!(limit(&rows, "SHMMAX"), one("/proc/sys/kernel/shmmax"));
    assert_eq!(limit(&rows, "SHMALL"), one("/proc/sys/kernel/shmall"));
    let sem = proc_numbers("/proc/sys/kernel/sem");
    assert_eq!(sem.len(), 4, "/proc/sys/kernel/sem: {sem:?}");
    for (name, value) in ["SEMMSL", "SEMMNS", "SEMOPM", "SEMMNI"].iter().zip(&sem) {
        assert_eq!(limit(&rows, name), Some(*value), "{name}");
    }
    assert_eq!(limit(&rows, "SEMVMX"), Some(32767));
    assert_eq!(
        limit(&rows, "MQ_MSG_MAX"),
        one("/proc/sys/fs/mqueue/msg_max")
    );
    assert_eq!(
        limit(&rows, "PIPE_MAX_SIZE"),
        one("/proc/sys/fs/pipe-max-size")
    );
    // The binary's own descriptors: at least stdin, stdout and stderr.
    assert!(used(&rows, "RLIMIT_NOFILE") >= 3);
    for name in ["RLIMIT_MSGQUEUE", "SHM_FS", "PIPE_USER_PAGES_HARD"] {
        row(&rows, name);
    }
}

#[test]
fn a_sysv_queue_is_counted() {
    let _queue = IpcObject::make(&["-Q"], "-q");
    let rows = limits_json();
    // Other tests may remove their objects meanwhile: only our own queue is sure to be there.
    assert!(used(&rows, "MSGMNI") >= 1, "{:?}", row(&rows, "MSGMNI"));
    assert!(row(&rows, "MSGMNI")["use_percent"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_sysv_segment_is_counted_in_pages() {
    let size: u64 = 1024 * 1024 + 1;
    let _segment = IpcObject::make(&["-M", &size.to_string()], "-m");
    let page = {
        let out = run({
            let mut cmd = Command::new("getconf");
            cmd.arg("PAGESIZE");
            cmd
        });
        out.stdout.trim().parse::<u64>().unwrap()
    };
    let rows = limits_json();
    assert!(used(&rows, "SHMMNI") >= 1);
    // Rounded up: a byte past a page boundary takes a whole page.
    assert!(used(&rows, "SHMALL") >= size.div_ceil(page));
}

#[test]
fn a_sysv_semaphore_set_is_counted() {
    let _set = IpcObject::make(&["-S", "3"], "-s");
    let rows = limits_json();
    assert!(used(&rows, "SEMMNI") >= 1);
    assert!(used(&rows, "SEMMNS") >= 3);
}

#[test]
fn a_posix_queue_is_counted_when_mqueue_is_mounted() {
    if !ipckit::mq::posix::mqueue_mounted() {
        // Without the mqueue filesystem the kernel does not tell: .ci/run mounts it.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must mount /dev/mqueue"
        );
        let rows = limits_json();
        assert!(row(&rows, "MQ_QUEUES_MAX")["used"].is_null());
        eprintln!("SKIPPED: /dev/mqueue is not mounted");
        return;
    }
    use ipckit::mq::posix::{self, PosixMq};
    let opts = posix::Options::default().max_msgs(1).msg_size(8);
    // The creating handle removes the queue on drop, also when an assertion fails.
    let _queue = PosixMq::create(&ipckit::name::unique_posix("test-limits"), &opts).unwrap();
    let rows = limits_json();
    assert!(used(&rows, "MQ_QUEUES_MAX") >= 1);
}

#[test]
fn table_has_the_header_and_a_row_per_resource() {
    let rows = limits_json();
    let out = ipckit(&["limits"]);
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["RESOURCE", "DESCRIPTION", "LIMIT", "USED", "USE%"]
    );
    assert_eq!(lines.len(), rows.len() + 1, "{}", out.stdout);
    for (line, r) in lines[1..].iter().zip(&rows) {
        let name = r["resource"].as_str().unwrap();
        assert_eq!(line.split_whitespace().next(), Some(name), "{line}");
        assert!(line.contains(r["description"].as_str().unwrap()), "{line}");
    }
    // Huge sysctls and RLIM_INFINITY read "unlimited", never a 20-digit number.
    assert!(!out.stdout.contains("18446744073"), "{}", out.stdout);
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = ipckit(&["limits", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    // Standard output is a pipe nobody reads: the first write fails with EPIPE.
    let (reader, writer) = ipckit::stream::pipe::pipe().unwrap();
    drop(reader);
    let mut cmd = common::ipckit();
    cmd.arg("limits");
    let out: Output = common::run_with_stdout(cmd, b"", Stdio::from(writer.into_fd()), T).into();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("writing the limits to standard output"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("internal error"), "{}", out.stderr);
}
