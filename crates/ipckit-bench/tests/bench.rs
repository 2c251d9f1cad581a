//! The engine end to end: every driver carries checked messages between two real processes
//! (this test binary started again as the peer), a driver that corrupts or drops a message
//! fails its rows, and the report keeps its JSON layout and its charts.

use std::time::Duration;

use ipckit_bench::report::Kind;
use ipckit_bench::{Config, PeerCommand, Report, Row};

/// The peer: the bench starts this binary again with only this test selected.
#[test]
fn peer() {
    if ipckit_bench::is_peer() {
        ipckit_bench::peer_main();
    }
}

fn config(only: &[Row]) -> Config {
    let peer = PeerCommand {
        program: std::env::current_exe().unwrap(),
        args: ["peer", "--exact", "--nocapture", "--test-threads=1"]
            .map(String::from)
            .to_vec(),
    };
    Config {
        latency_sizes: vec![64, 4096],
        throughput_sizes: vec![64, 64 << 10],
        duration: Duration::from_millis(30),
        warmup: Duration::from_millis(10),
        pin: false,
        only: only.to_vec(),
        ..Config::quick(peer)
    }
}

fn run(cfg: &Config) -> Report {
    ipckit_bench::run(cfg, &mut |_, _, _| {})
}

#[test]
fn every_driver_carries_checked_messages_and_the_report_keeps_its_layout() {
    let report = run(&config(&[]));
    // iceoryx2's files (its own folder, its /dev/shm segments) are gone with each row.
    let iox = |dir: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect::<Vec<String>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|n: &String| n.contains("iox2") && n.contains(&std::process::id().to_string()))
            .collect()
    };
    assert_eq!(iox("/dev/shm"), Vec::<String>::new());
    assert_eq!(
        iox(std::env::temp_dir().to_str().unwrap()),
        Vec::<String>::new()
    );
    for row in Row::ALL {
        assert!(
            report.runs.iter().any(|r| r.mechanism == *row),
            "{row} has no row"
        );
    }
    for r in &report.runs {
        let what = format!("{} {:?} {}", r.mechanism, r.kind, r.size);
        assert_eq!(r.error, None, "{what}");
        match &r.skipped {
            Some(why) => assert!(!why.is_empty() && !r.verified, "{what}"),
            None => {
                assert!(r.verified && r.messages > 0, "{what}");
                assert!(r.cpu_ns_per_msg.is_some(), "{what}");
                assert_eq!(r.rtt_ns.is_some(), r.kind == Kind::Latency, "{what}");
                assert_eq!(
                    r.bytes_per_s.is_some(),
                    r.kind == Kind::Throughput,
                    "{what}"
                );
            }
        }
    }
    // A kernel limit shows as a skipped row that names it, rather than a missing row.
    let mq = report
        .runs
        .iter()
        .find(|r| r.mechanism == Row::PosixMq && r.size == 64 << 10)
        .expect("a posix-mq row at 64 KiB");
    assert!(mq.skipped.as_deref().unwrap().contains("msgsize_max"));

    // The JSON layout issue #4 fixed, field by field.
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["version"], 1);
    for key in ["cpus", "kernel", "cpu_model", "pinned"] {
        assert!(v["host"].get(key).is_some(), "host.{key}");
    }
    for run in v["runs"].as_array().unwrap() {
        for key in [
            "mechanism",
            "role",
            "kind",
            "size",
            "messages",
            "rtt_ns",
            "msgs_per_s",
            "bytes_per_s",
            "cpu_ns_per_msg",
            "verified",
            "skipped",
        ] {
            assert!(run.get(key).is_some(), "runs[].{key} in {run}");
        }
        assert!(["mechanism", "reference", "peer"].contains(&run["role"].as_str().unwrap()));
        assert!(["latency", "throughput"].contains(&run["kind"].as_str().unwrap()));
        if let Some(rtt) = run["rtt_ns"].as_object() {
            for key in ["p50", "p90", "p99", "p999", "max"] {
                assert!(rtt[key].as_u64().is_some(), "rtt_ns.{key}");
            }
            assert!(rtt["p50"].as_u64() <= rtt["max"].as_u64());
        }
    }
    let claims = v["claims"].as_array().unwrap();
    assert_eq!(
        claims.len(),
        10,
        "five folk claims, five targets of the channel"
    );
    for c in claims {
        for key in ["claim", "measured_ratio", "holds"] {
            assert!(c.get(key).is_some(), "claims[].{key}");
        }
        // The 1 MiB target needs a 1 MiB row, which this short run does not make.
        let needs_1mib = c["claim"].as_str().unwrap().contains("1 MiB");
        assert_eq!(
            c["measured_ratio"].is_number(),
            !needs_1mib,
            "every claim this run's sizes allow is measured: {c}"
        );
    }
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back.runs.len(), report.runs.len());
    // The reader every consumer uses takes back what the bench writes.
    let back = Report::from_json(&report.to_json()).unwrap();
    assert_eq!(back.runs.len(), report.runs.len());
    assert_eq!(back.claims.len(), report.claims.len());

    // One SVG per chart: latency at each size measured (the notification and reference rows
    // add theirs), throughput against size, CPU per message.
    let mut latency_sizes: Vec<usize> = report
        .runs
        .iter()
        .filter(|r| r.kind == Kind::Latency && r.rtt_ns.is_some())
        .map(|r| r.size)
        .collect();
    latency_sizes.sort_unstable();
    latency_sizes.dedup();
    let html = ipckit_bench::html::render(&report);
    assert_eq!(html.matches("<svg").count(), latency_sizes.len() + 2);
    assert!(!html.contains("NaN"));
}

#[test]
fn a_corrupted_message_fails_its_rows() {
    let report = run(&config(&[Row::TestCorrupt]));
    assert_eq!(report.runs.len(), 2);
    for r in &report.runs {
        let e = r.error.as_deref().unwrap_or_else(|| panic!("{r:?} passed"));
        assert!(
            e.contains("payload check failed") && e.contains("message 49"),
            "{e}"
        );
        assert!(!r.verified);
    }
    assert_eq!(report.failed().len(), 2);
}

#[test]
fn a_dropped_message_fails_its_rows_without_hanging() {
    let mut cfg = config(&[Row::TestDrop]);
    // Latency: both sides wait for ever on a message that never comes; the watchdog ends it.
    cfg.grace = Duration::from_secs(2);
    let report = run(&cfg);
    let errors: Vec<&str> = report
        .runs
        .iter()
        .filter_map(|r| r.error.as_deref())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("did not finish in time"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("expected message 49, got message 50"),
        "{}",
        errors[1]
    );
}

#[test]
fn an_interrupt_abandons_the_row_in_progress_and_starts_no_other() {
    let mut cfg = config(&[Row::ShmFutex, Row::Pipe]);
    // Uninterrupted, the first row alone would record for a minute.
    cfg.duration = Duration::from_secs(60);
    let interrupt = cfg.interrupt.clone();
    let report = ipckit_bench::run(&cfg, &mut |_, _, _| {
        interrupt.store(true, std::sync::atomic::Ordering::SeqCst)
    });
    assert!(report.interrupted);
    assert_eq!(report.runs.len(), 1, "no row after the interrupt");
    let e = report.runs[0].error.as_deref().unwrap();
    assert!(e.contains("interrupted"), "{e}");
}
