//! `ipckit lab`: every scenario the issue names exists, runs between real processes, shows its
//! lesson on this kernel, and none hangs.

mod common;

use std::time::Duration;

use serde_json::Value;

/// The scenarios the playbook must have, in the order `ipckit lab` lists them.
const NAMES: [&str; 27] = [
    "pipe-eof",
    "pipe-forgotten-end",
    "pipe-sigpipe",
    "pipe-capacity",
    "pipe-atomic-writes",
    "fifo-open-blocks",
    "fifo-nonblock-enxio",
    "fifo-persists",
    "shm-race",
    "shm-semaphore",
    "shm-atomic",
    "deadlock",
    "sem-undo",
    "robust-mutex",
    "rwlock-starvation",
    "sysv-orphan",
    "rmid-attached",
    "mq-full",
    "mq-priority",
    "sysv-mq-types",
    "message-boundaries",
    "fd-passing",
    "peer-credentials",
    "stale-socket",
    "signal-coalescing",
    "signal-safe-wakeup",
    "uncatchable-signals",
];

/// Runs `ipckit ARGS`, failing the test if it takes longer than `limit`.
fn ipckit(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let mut cmd = common::ipckit();
    cmd.args(args);
    let out = common::run_with_timeout(cmd, b"", limit);
    (out.status.code(), out.out(), out.err())
}

#[test]
fn every_scenario_shows_its_lesson() {
    // A bound against a hang, generous for a loaded CI machine.
    let (code, out, err) = ipckit(&["lab", "--all", "--json"], Duration::from_secs(180));
    let all: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let names: Vec<&str> = all.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, NAMES);
    let failed: Vec<String> = all
        .iter()
        .filter(|o| o["passed"] != true)
        .map(|o| format!("{}: {}\n{:#}", o["name"], o["verdict"], o["transcript"]))
        .collect();
    assert!(
        failed.is_empty(),
        "did not show their lesson:\n{}",
        failed.join("\n")
    );
    assert_eq!(code, Some(0), "{err}");
    for o in &all {
        let transcript = o["transcript"].as_array().unwrap();
        assert!(
            transcript.len() >= 3,
            "{} narrates too little: {transcript:?}",
            o["name"]
        );
        assert!(!o["lesson"].as_str().unwrap().is_empty());
    }
    // How long it took is printed, not asserted: speed is the benchmark's business.
    let seconds: f64 = all.iter().map(|o| o["seconds"].as_f64().unwrap()).sum();
    eprintln!("the playbook took {seconds:.1} s");
}

#[test]
fn lab_lists_the_scenarios_and_refuses_an_unknown_one() {
    let (code, out, _) = ipckit(&["lab"], Duration::from_secs(20));
    assert_eq!(code, Some(0));
    for name in NAMES {
        assert!(
            out.lines().any(|l| l.starts_with(name)),
            "{name} not listed: {out}"
        );
    }
    let (code, _, err) = ipckit(&["lab", "no-such-scenario"], Duration::from_secs(20));
    assert_eq!(code, Some(2), "an unknown name is a usage error");
    assert!(err.contains("no scenario 'no-such-scenario'"), "{err}");
    let (code, _, _) = ipckit(&["lab", "--all", "pipe-eof"], Duration::from_secs(20));
    assert_eq!(code, Some(2), "--all with names is a usage error");
}
