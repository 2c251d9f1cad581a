//! The measured-figures reader: what a bench [`Report`] says of a rule's rows on this host.

use ipckit_bench::Row;
use ipckit_bench::report::{Kind, Report};

use crate::need::Constraints;
use crate::rule::Rule;

/// One mechanism's figures in a bench report, at one message size.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The bench row they come from ([`Row::ShmFutex`], …).
    pub row: Row,
    /// Bytes per message of the round trip (or of the throughput when there is no round trip).
    pub size: usize,
    /// Median round trip, nanoseconds (a latency row at `size`).
    pub p50_rtt_ns: Option<u64>,
    /// Bytes per message of the throughput figures: `size`, or for large payloads the largest
    /// size the throughput was measured at (the bench measures round trips at fewer sizes).
    pub throughput_size: usize,
    /// Messages per second one way (a throughput row at `throughput_size`).
    pub msgs_per_sec: Option<f64>,
    /// Payload bytes per second one way (a throughput row at `throughput_size`).
    pub bytes_per_sec: Option<f64>,
}

/// The figures of the first of `rows` that `report` measured, at the smallest message size
/// with both a round trip and a throughput (or, failing that, any measured size). A row that
/// was skipped, failed or not verified gives nothing.
pub fn measured(report: &Report, rows: &[Row]) -> Option<Measured> {
    pick(report, rows, false)
}

/// [`measured`] for a candidate under `c`: at the largest such size when payloads are large.
pub fn measured_for(report: &Report, rule: &Rule, c: &Constraints) -> Option<Measured> {
    pick(report, rule.rows, c.large_payloads)
}

fn pick(report: &Report, rows: &[Row], largest: bool) -> Option<Measured> {
    for row in rows {
        // size -> p50; size -> (msgs/s, bytes/s)
        let mut lat: Vec<(usize, u64)> = Vec::new();
        let mut thr: Vec<(usize, Option<f64>, Option<f64>)> = Vec::new();
        for r in report
            .runs
            .iter()
            .filter(|r| r.mechanism == *row && r.measured() && r.verified)
        {
            match r.kind {
                Kind::Latency => {
                    if let Some(rtt) = r.rtt_ns {
                        lat.push((r.size, rtt.p50));
                    }
                }
                Kind::Throughput => {
                    if r.msgs_per_s.is_some() || r.bytes_per_s.is_some() {
                        thr.push((r.size, r.msgs_per_s, r.bytes_per_s));
                    }
                }
            }
        }
        let both: Vec<usize> = lat
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| thr.iter().any(|(t, _, _)| t == s))
            .collect();
        let sizes: Vec<usize> = if both.is_empty() {
            lat.iter()
                .map(|(s, _)| *s)
                .chain(thr.iter().map(|(s, _, _)| *s))
                .collect()
        } else {
            both
        };
        let size = if largest {
            sizes.iter().max()
        } else {
            sizes.iter().min()
        };
        let Some(&size) = size else { continue };
        // For large payloads each figure at the largest size it was measured at: the bench
        // measures throughput at larger sizes than round trips.
        let (size, throughput_size) = if largest {
            let lat_max = lat.iter().map(|(s, _)| *s).max();
            let thr_max = thr.iter().map(|(s, _, _)| *s).max();
            (lat_max.unwrap_or(size), thr_max.unwrap_or(size))
        } else {
            (size, size)
        };
        let t = thr.iter().find(|(s, _, _)| *s == throughput_size);
        return Some(Measured {
            row: *row,
            size,
            p50_rtt_ns: lat.iter().find(|(s, _)| *s == size).map(|(_, p)| *p),
            throughput_size,
            msgs_per_sec: t.and_then(|t| t.1),
            bytes_per_sec: t.and_then(|t| t.2),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use ipckit_bench::report::{Host, Role, Rtt, Run, VERSION};

    use super::*;
    use crate::need::Need;
    use crate::rules::RULES;

    /// A measured row: a round trip at `p50` (latency), or `msgs` messages per second of
    /// `size` bytes (throughput).
    fn row(row: Row, kind: Kind, size: usize, p50: u64, msgs: f64) -> Run {
        let mut r = Run::skipped(row.as_str(), Role::Mechanism, kind, size, String::new());
        r.skipped = None;
        r.verified = true;
        r.messages = 10;
        match kind {
            Kind::Latency => {
                r.rtt_ns = Some(Rtt {
                    p50,
                    p90: p50,
                    p99: p50,
                    p999: p50,
                    max: p50,
                })
            }
            Kind::Throughput => {
                r.msgs_per_s = Some(msgs);
                r.bytes_per_s = Some(msgs * size as f64);
            }
        }
        r
    }

    fn report(runs: Vec<Run>) -> Report {
        Report {
            version: VERSION,
            tool: "ipckit 0.1.0".into(),
            profile: "quick".into(),
            duration_ms: 400,
            host: Host {
                cpus: 2,
                kernel: "6.1".into(),
                cpu_model: "x".into(),
                pinned: true,
                pinned_cpus: Some([0, 1]),
            },
            runs,
            claims: Vec::new(),
            overhead: Vec::new(),
            interrupted: false,
            kv: None,
        }
    }

    /// Read back from its JSON, as advise reads a report.
    fn sample() -> Report {
        use Kind::{Latency, Throughput};
        let mut failed = row(Row::ShmFutex, Latency, 64, 0, 0.0);
        failed.rtt_ns = None;
        failed.verified = false;
        failed.error = Some("peer died".into());
        let skipped = Run::skipped(
            Row::PosixMq.as_str(),
            Role::Mechanism,
            Throughput,
            65536,
            "over the limit".into(),
        );
        let written = report(vec![
            row(Row::Pipe, Latency, 64, 21000, 0.0),
            row(Row::Pipe, Latency, 4096, 25000, 0.0),
            row(Row::Pipe, Throughput, 64, 0, 200000.0),
            row(Row::Pipe, Throughput, 4096, 0, 60000.0),
            row(Row::Pipe, Throughput, 1 << 20, 0, 100.0),
            failed,
            row(Row::PosixShmSem, Latency, 64, 9000, 0.0),
            skipped,
            row(Row::EventFd, Latency, 8, 30000, 0.0),
        ]);
        Report::from_json(&written.to_json()).unwrap()
    }

    #[test]
    fn reads_the_bench_report() {
        let report = sample();
        let pipe = measured(&report, &[Row::Pipe]).unwrap();
        assert_eq!(
            pipe,
            Measured {
                row: Row::Pipe,
                size: 64,
                p50_rtt_ns: Some(21000),
                throughput_size: 64,
                msgs_per_sec: Some(200000.0),
                bytes_per_sec: Some(12800000.0),
            }
        );
        // Large payloads: each figure at the largest size it was measured at (the round trip at
        // 4 KiB; the throughput at 1 MiB, where only throughput was measured).
        let pipe_rule = RULES.iter().find(|r| r.rows == [Row::Pipe]).unwrap();
        let large = Constraints::from_needs(&[Need::LargePayloads]);
        let big = measured_for(&report, pipe_rule, &large).unwrap();
        assert_eq!((big.size, big.p50_rtt_ns), (4096, Some(25000)));
        assert_eq!(big.throughput_size, 1 << 20);
        assert!(big.msgs_per_sec.is_some());
        // A failed row is passed over for the next row the rule names.
        let shm = measured(&report, &[Row::ShmFutex, Row::PosixShmSem]).unwrap();
        assert_eq!(shm.row, Row::PosixShmSem);
        assert_eq!(
            (shm.size, shm.p50_rtt_ns, shm.msgs_per_sec),
            (64, Some(9000), None)
        );
        // Only a latency row: no throughput (notification only).
        let efd = measured(&report, &[Row::EventFd]).unwrap();
        assert_eq!((efd.size, efd.msgs_per_sec), (8, None));
        // Skipped rows and absent rows give nothing.
        assert_eq!(measured(&report, &[Row::PosixMq]), None);
        assert_eq!(measured(&report, &[Row::UnixStream]), None);
    }

    #[test]
    fn the_channel_shows_its_adaptive_row_first() {
        let rule = RULES.iter().find(|r| r.rows[0] == Row::Channel).unwrap();
        let both = report(vec![
            row(Row::ChannelSpin, Kind::Latency, 64, 300, 0.0),
            row(Row::Channel, Kind::Latency, 64, 900, 0.0),
        ]);
        let m = measured_for(&both, rule, &Constraints::default()).unwrap();
        assert_eq!((m.row, m.p50_rtt_ns), (Row::Channel, Some(900)));
        let spin = report(vec![row(Row::ChannelSpin, Kind::Latency, 64, 300, 0.0)]);
        let m = measured_for(&spin, rule, &Constraints::default()).unwrap();
        assert_eq!(m.row, Row::ChannelSpin);
    }

    #[test]
    fn an_unverified_row_gives_nothing() {
        let mut r = row(Row::Pipe, Kind::Latency, 64, 100, 0.0);
        r.verified = false;
        assert_eq!(measured(&report(vec![r]), &[Row::Pipe]), None);
    }
}
