//! `ipckit advise` end to end: the first choice for the issue's combinations, conflicts, this
//! host's figures from a bench report, and the exit codes (1: a bad --report, 2: usage).

mod common;

use std::path::Path;

use common::Ran;

use ipckit_bench::Row;
use ipckit_bench::report::{Host, Kind, Report, Role, Rtt, Run, VERSION};
use serde_json::Value;

/// `ipckit advise ARGS`, run in `dir` (so a report lying around elsewhere plays no part).
fn advise(dir: &Path, args: &[&str]) -> Ran {
    let mut cmd = common::ipckit();
    cmd.arg("advise").args(args).current_dir(dir);
    common::run(cmd)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = advise(dir, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn first(v: &Value) -> &str {
    v["candidates"][0]["mechanism"].as_str().unwrap()
}

/// A bench report of these rows, as `ipckit bench` writes it.
fn report(runs: Vec<Run>) -> String {
    Report {
        version: VERSION,
        tool: "ipckit 0.1.0".into(),
        profile: "quick".into(),
        duration_ms: 400,
        host: Host {
            cpus: 2,
            kernel: "6.1".into(),
            cpu_model: "Test CPU".into(),
            pinned: true,
            pinned_cpus: Some([0, 1]),
        },
        runs,
        claims: Vec::new(),
        overhead: Vec::new(),
        interrupted: false,
        kv: None,
    }
    .to_json()
}

/// A verified latency row: round trips of `p50` ns (p90 to max a little slower).
fn latency(row: Row, size: usize, p50: u64) -> Run {
    Run {
        messages: 10,
        rtt_ns: Some(Rtt {
            p50,
            p90: p50 + 1000,
            p99: p50 + 2000,
            p999: p50 + 3000,
            max: p50 + 4000,
        }),
        msgs_per_s: Some(1e9 / p50 as f64),
        cpu_ns_per_msg: Some(1.0),
        verified: true,
        skipped: None,
        repeats: 1,
        ..Run::skipped(
            row.as_str(),
            Role::Mechanism,
            Kind::Latency,
            size,
            String::new(),
        )
    }
}

/// A verified throughput row of `msgs` messages per second.
fn throughput(row: Row, size: usize, msgs: f64) -> Run {
    Run {
        messages: 10,
        msgs_per_s: Some(msgs),
        bytes_per_s: Some(msgs * size as f64),
        cpu_ns_per_msg: Some(1.0),
        verified: true,
        skipped: None,
        repeats: 3,
        ..Run::skipped(
            row.as_str(),
            Role::Mechanism,
            Kind::Throughput,
            size,
            String::new(),
        )
    }
}

/// A report with the pipe's rows at 64 B only.
fn pipe_report() -> String {
    report(vec![
        latency(Row::Pipe, 64, 21000),
        throughput(Row::Pipe, 64, 200000.0),
    ])
}

#[test]
fn the_five_combinations_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        first(&json(d, &["--related", "--one-way"])),
        "anonymous pipe"
    );
    assert_eq!(
        first(&json(d, &["--unrelated", "--one-way"])),
        "FIFO (named pipe)"
    );
    assert_eq!(
        first(&json(d, &["--two-way", "--fd-passing"])),
        "Unix stream socket"
    );
    assert_eq!(
        first(&json(d, &["--boundaries", "--priorities"])),
        "POSIX message queue"
    );
    let v = json(d, &["--large-payloads", "--latency-critical"]);
    let shm = first(&v);
    assert!(shm.starts_with("shared memory"), "{shm}");
    assert!(
        shm.contains("futex") && shm.contains("semaphore"),
        "synchronisation named: {shm}"
    );
    // Every field the issue asks for is there, and no report means no figures.
    let top = &v["candidates"][0];
    assert_eq!(top["rank"], 1);
    for key in ["calls", "why", "tradeoff", "failure_mode", "cleanup", "lab"] {
        assert!(
            !top[key].as_str().unwrap_or_default().is_empty(),
            "{key}: {top}"
        );
    }
    assert_eq!(top["lab"], "shm-race");
    assert!(top["measured"].is_null());
    assert!(v["report"].is_null());
    assert_eq!(v["constraints"]["large_payloads"], true);
    assert_eq!(v["constraints"]["related"], Value::Null);
    assert_eq!(v["conflicts"], serde_json::json!([]));
}

#[test]
fn remote_with_fd_passing_is_a_named_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(dir.path(), &["--remote", "--fd-passing"]);
    let conflicts = v["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = conflicts[0].as_str().unwrap();
    assert!(
        c.starts_with("--fd-passing and --remote cannot both hold"),
        "{c}"
    );
    assert!(c.contains("Unix socket"), "{c}");
    assert_eq!(first(&v), "TCP");
    assert_eq!(v["candidates"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["candidates"][0]["cannot"][0]["constraint"],
        "--fd-passing"
    );
    let note = v["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with("--remote rules out every mechanism that is local"),
        "{note}"
    );

    // The same for people: the conflict first, then the answer.
    let out = advise(dir.path(), &["--remote", "--fd-passing"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let conflict = text.find("cannot all hold:").expect(&text);
    let answer = text.find("1. TCP").expect(&text);
    assert!(conflict < answer, "{text}");
}

#[test]
fn a_report_gives_each_candidate_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(&file, pipe_report()).unwrap();
    let f = file.to_str().unwrap();
    let v = json(dir.path(), &["--related", "--one-way", "--report", f]);
    let m = &v["candidates"][0]["measured"];
    assert_eq!(m["row"], Row::Pipe.as_str());
    assert_eq!(m["size"], 64);
    assert_eq!(m["p50_rtt_ns"], 21000);
    assert_eq!(m["msgs_per_sec"], 200000.0);
    assert_eq!(m["bytes_per_sec"], 12800000.0);
    assert_eq!(v["report"], f);
    // A candidate the report has no row for: null.
    assert!(v["candidates"][1]["measured"].is_null());

    let out = advise(dir.path(), &["--related", "--one-way", "--report", f]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Lines are wrapped at 80 columns: compare the words.
    let flat = flat(&text);
    assert!(
        flat.contains("measured here: p50 RTT 21.0 µs, 200.0 k msgs/s (12.2 MiB/s) at 64 B"),
        "{text}"
    );
    assert!(
        flat.contains(&format!(
            "not in this report (rows {}: a full `ipckit bench` measures them)",
            Row::Fifo
        )),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    let see = text.lines().find(|l| l.starts_with("   see:")).unwrap();
    assert!(
        see.ends_with(" ipckit lab pipe-forgotten-end (also: pipe-eof)"),
        "{see}"
    );
}

#[test]
fn latency_critical_says_when_this_host_disagrees() {
    let report = report(vec![
        latency(Row::ShmFutex, 4096, 50_000),
        throughput(Row::ShmFutex, 4096, 100000.0),
        latency(Row::Pipe, 4096, 20_000),
        throughput(Row::Pipe, 4096, 50000.0),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(&file, report).unwrap();
    let f = file.to_str().unwrap();
    let out = advise(
        dir.path(),
        &["--large-payloads", "--latency-critical", "--report", f],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1. shared memory"), "{text}");
    assert!(
        flat(&text).contains(&format!(
            "p50 RTT 50.0 µs, 100.0 k msgs/s (390.6 MiB/s) at 4 KiB (bench row {})",
            Row::ShmFutex
        )),
        "{text}"
    );
    let flat = flat(&text);
    let note = flat.find("note: on this host anonymous pipe").expect(&text);
    assert!(
        flat[note..].contains("p50 20.0 µs against 50.0 µs"),
        "{text}"
    );
    // Without --latency-critical, no such note.
    let out = advise(dir.path(), &["--large-payloads", "--report", f]);
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("note: on this host")
    );
}

#[test]
fn the_default_report_is_read_when_there_and_optional() {
    let dir = tempfile::tempdir().unwrap();
    let out = advise(dir.path(), &["--related", "--one-way"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("ranked for: --related --one-way\n"),
        "{text}"
    );
    assert!(text.contains("1. anonymous pipe\n"), "{text}");
    assert!(text.contains("run `ipckit bench`"), "{text}");

    std::fs::create_dir(dir.path().join("ipckit-report")).unwrap();
    std::fs::write(dir.path().join("ipckit-report/report.json"), pipe_report()).unwrap();
    let v = json(dir.path(), &["--related", "--one-way"]);
    assert_eq!(v["report"], "ipckit-report/report.json");
    assert_eq!(v["candidates"][0]["measured"]["p50_rtt_ns"], 21000);
}

#[test]
fn a_default_report_another_user_wrote_is_passed_over() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ipckit-report")).unwrap();
    let planted = dir.path().join("ipckit-report/report.json");
    std::fs::write(&planted, pipe_report()).unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    let out = advise(dir.path(), &["--related", "--one-way", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["report"].is_null(), "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not to you or root"), "{err}");
    // Named with --report, it is the user's choice.
    let v = json(
        dir.path(),
        &[
            "--related",
            "--one-way",
            "--report",
            planted.to_str().unwrap(),
        ],
    );
    assert_eq!(v["candidates"][0]["measured"]["p50_rtt_ns"], 21000);
}

#[test]
fn a_bad_report_file_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "hello").unwrap();
    let not_report = dir.path().join("other.json");
    std::fs::write(&not_report, r#"{"name": "something else"}"#).unwrap();
    let missing = dir.path().join("missing.json");
    let newer = dir.path().join("newer.json");
    let written = pipe_report();
    let newer_text = written.replacen(r#""version": 1"#, r#""version": 2"#, 1);
    assert_ne!(newer_text, written);
    std::fs::write(&newer, newer_text).unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        written.replacen(r#""profile""#, r#""profiles""#, 1),
    )
    .unwrap();
    for (file, says) in [
        (&missing, "ipckit: reading the bench report"),
        (&not_json, "is not a bench report: not JSON"),
        (&not_report, "not an ipckit bench report"),
        (
            &newer,
            "a bench report of version 2 (this ipckit reads version 1): run ipckit bench again",
        ),
        (
            &broken,
            "not an ipckit bench report of version 1: missing field `profile`",
        ),
    ] {
        let out = advise(dir.path(), &["--report", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ipckit: ") && err.contains(says), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn opposite_flags_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for pair in [["--related", "--unrelated"], ["--one-way", "--two-way"]] {
        let out = advise(dir.path(), &pair);
        assert_eq!(out.status.code(), Some(2), "{pair:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("cannot be used with"), "{err}");
    }
}

/// The words of `text`, one space apart: wrapped lines compare as one.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
