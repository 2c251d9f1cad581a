//! `ipckit advise` end to end: the first choice for the issue's combinations, conflicts, this
//! host's figures from a bench report, and the exit codes (1: a bad --report, 2: usage).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `ipckit advise ARGS`, run in `dir` (so a report lying around elsewhere plays no part).
fn advise(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipckit"))
        .arg("advise")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
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

/// A bench report with one mechanism's rows, as `ipckit bench` writes them.
const REPORT: &str = r#"{
  "version": 1, "tool": "ipckit 0.1.0", "profile": "quick", "duration_ms": 400,
  "host": {"cpus": 2, "kernel": "6.1", "cpu_model": "Test CPU", "pinned": true,
           "pinned_cpus": [0, 1]},
  "runs": [
    {"mechanism": "pipe", "role": "mechanism", "kind": "latency", "size": 64, "messages": 10,
     "rtt_ns": {"p50": 21000, "p90": 22000, "p99": 23000, "p999": 24000, "max": 25000},
     "msgs_per_s": 47000.0, "bytes_per_s": null, "cpu_ns_per_msg": 1.0, "verified": true,
     "skipped": null, "error": null, "repeats": 1},
    {"mechanism": "pipe", "role": "mechanism", "kind": "throughput", "size": 64, "messages": 10,
     "rtt_ns": null, "msgs_per_s": 200000.0, "bytes_per_s": 12800000.0, "cpu_ns_per_msg": 1.0,
     "verified": true, "skipped": null, "error": null, "repeats": 3}
  ],
  "claims": [], "overhead": [], "interrupted": false
}"#;

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
    std::fs::write(&file, REPORT).unwrap();
    let f = file.to_str().unwrap();
    let v = json(dir.path(), &["--related", "--one-way", "--report", f]);
    let m = &v["candidates"][0]["measured"];
    assert_eq!(m["row"], "pipe");
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
        flat.contains("not in this report (rows fifo: a full `ipckit bench` measures them)"),
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
    let row = |mech: &str, kind: &str, p50: &str, msgs: &str, bytes: &str| {
        format!(
            r#"{{"mechanism": "{mech}", "role": "mechanism", "kind": "{kind}", "size": 4096,
                "messages": 10, "rtt_ns": {p50}, "msgs_per_s": {msgs}, "bytes_per_s": {bytes},
                "cpu_ns_per_msg": 1.0, "verified": true, "skipped": null, "error": null,
                "repeats": 1}}"#
        )
    };
    let rtt = |p50: u64| {
        format!(r#"{{"p50": {p50}, "p90": {p50}, "p99": {p50}, "p999": {p50}, "max": {p50}}}"#)
    };
    let runs = [
        row("shm-futex", "latency", &rtt(50_000), "1.0", "null"),
        row("shm-futex", "throughput", "null", "100000.0", "409600000.0"),
        row("pipe", "latency", &rtt(20_000), "1.0", "null"),
        row("pipe", "throughput", "null", "50000.0", "204800000.0"),
    ];
    // REPORT's header (version, tool, host), these rows.
    let header = &REPORT[..REPORT.find(r#""runs""#).unwrap()];
    let report = format!(
        r#"{header} "runs": [{}], "claims": [], "overhead": [], "interrupted": false}}"#,
        runs.join(",")
    );
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
        flat(&text).contains(
            "p50 RTT 50.0 µs, 100.0 k msgs/s (390.6 MiB/s) at 4 KiB (bench row shm-futex)"
        ),
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
    std::fs::write(dir.path().join("ipckit-report/report.json"), REPORT).unwrap();
    let v = json(dir.path(), &["--related", "--one-way"]);
    assert_eq!(v["report"], "ipckit-report/report.json");
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
    std::fs::write(
        &newer,
        REPORT.replacen(r#""version": 1"#, r#""version": 2"#, 1),
    )
    .unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, REPORT.replacen(r#""profile""#, r#""profiles""#, 1)).unwrap();
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
