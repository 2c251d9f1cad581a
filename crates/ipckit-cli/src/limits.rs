//! `ipckit limits`: the kernel's IPC limits and their current use, as a table or JSON.

use std::io::Write;

use anyhow::Context;
use ipckit::host::limits::{Limit, Unit};

use crate::output::limits::LimitJson;

/// Kernel IPC limits and their current use (like `lsipc -g`, plus POSIX queues, pipes,
/// /dev/shm and open files).
#[derive(clap::Args, Debug)]
pub struct LimitsArgs {
    /// As a JSON array: resource, description, used, limit, unit, use_percent, unlimited.
    #[arg(long)]
    pub json: bool,
}

/// Prints every limit of [`ipckit::host::limits::limits`]: a table, or with `--json` one
/// array. A write error (a closed pipe) is returned, never a panic.
pub fn run(args: LimitsArgs) -> anyhow::Result<()> {
    let rows = ipckit::host::limits::limits()?;
    let text = if args.json {
        json_text(&rows)?
    } else {
        table(&rows)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the limits to standard output")
}

fn json_text(rows: &[Limit]) -> anyhow::Result<String> {
    let rows: Vec<LimitJson> = rows.iter().map(LimitJson::from).collect();
    let mut text = serde_json::to_string_pretty(&rows)?;
    text.push('\n');
    Ok(text)
}

/// The table as `lsipc -g` orders it: RESOURCE DESCRIPTION LIMIT USED USE%, names left, numbers right, "-" unknown.
fn table(rows: &[Limit]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let value = |v: Option<u64>| v.map_or("-".into(), |v| show(v, r.unit));
            let limit = if r.unlimited {
                "unlimited".into()
            } else {
                value(r.limit)
            };
            let pct = r.use_percent().map_or("-".into(), |p| format!("{p:.2}%"));
            [
                r.resource.into(),
                r.description.into(),
                limit,
                value(r.used),
                pct,
            ]
        })
        .collect();
    let header = ["RESOURCE", "DESCRIPTION", "LIMIT", "USED", "USE%"].map(String::from);
    let mut width = [0; 5];
    for line in std::iter::once(&header).chain(&cells) {
        for (w, cell) in width.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for [resource, description, limit, used, pct] in std::iter::once(&header).chain(&cells) {
        let [w0, w1, w2, w3, w4] = width;
        text +=
            &format!("{resource:<w0$} {description:<w1$} {limit:>w2$} {used:>w3$} {pct:>w4$}\n");
    }
    text
}

/// A value for the table: bytes as lsipc prints them (4K, 24G, 1B), other units as numbers.
fn show(value: u64, unit: Unit) -> String {
    match unit {
        Unit::Bytes => human_bytes(value),
        Unit::Count | Unit::Pages => value.to_string(),
    }
}

/// Bytes in powers of 1024 with a one-letter suffix and at most one decimal: 1B, 8K, 23.5G.
pub fn human_bytes(bytes: u64) -> String {
    const SUFFIX: [char; 7] = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
    let mut exp = 0;
    while exp + 1 < SUFFIX.len() && bytes >> (10 * (exp + 1)) > 0 {
        exp += 1;
    }
    // Tenths of the unit, rounded; a value that rounds up to 1024 moves to the next unit.
    let tenths = |exp: usize| (u128::from(bytes) * 10 + (1u128 << (10 * exp)) / 2) >> (10 * exp);
    let mut t = tenths(exp);
    if t >= 10240 && exp + 1 < SUFFIX.len() {
        exp += 1;
        t = tenths(exp);
    }
    let suffix = SUFFIX[exp];
    if exp == 0 || t % 10 == 0 {
        format!("{}{suffix}", t / 10)
    } else {
        format!("{}.{}{suffix}", t / 10, t % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(resource: &'static str, unit: Unit, used: Option<u64>, max: Option<u64>) -> Limit {
        Limit {
            resource,
            description: "what it limits",
            used,
            limit: max,
            unlimited: max.is_some_and(|m| m >= u64::MAX - (1 << 24)),
            unit,
        }
    }

    #[test]
    fn bytes_like_lsipc() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1), "1B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1K");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(8192), "8K");
        assert_eq!(human_bytes(1048576), "1M");
        // 1023.99K rounds to 1024.0K: shown as the next unit.
        assert_eq!(human_bytes(1024 * 1024 - 10), "1M");
        assert_eq!(human_bytes(24683656 * 1024), "23.5G");
        assert_eq!(human_bytes(18446744073692774399), "16E");
        assert_eq!(human_bytes(u64::MAX), "16E");
    }

    #[test]
    fn table_aligns_and_marks_unknown_and_unlimited() {
        let rows = [
            limit("MSGMNI", Unit::Count, Some(3), Some(32000)),
            limit("MSGMAX", Unit::Bytes, None, Some(8192)),
            limit("SHMMAX", Unit::Bytes, None, Some(18446744073692774399)),
            limit("SHMALL", Unit::Pages, Some(258), Some(18446744073692774399)),
            limit("MQ_QUEUES_MAX", Unit::Count, None, None),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        let header = lines[0];
        assert!(header.starts_with("RESOURCE      DESCRIPTION"), "{header}");
        assert!(header.ends_with("USE%"));
        // Every line is as wide as the header: the columns line up, nothing trails.
        assert!(lines.iter().all(|l| l.len() == header.len()), "{text}");
        let fields = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
        assert_eq!(fields(1)[0], "MSGMNI");
        assert_eq!(fields(1)[4..], ["32000", "3", "0.01%"]);
        assert_eq!(fields(2)[4..], ["8K", "-", "-"]);
        assert_eq!(fields(3)[4..], ["unlimited", "-", "-"]);
        assert_eq!(fields(4)[4..], ["unlimited", "258", "-"]);
        assert_eq!(fields(5)[4..], ["-", "-", "-"]);
    }

    #[test]
    fn json_has_numbers_nulls_and_units() {
        let rows = [
            limit("MSGMNI", Unit::Count, Some(8), Some(32)),
            limit("SHMMAX", Unit::Bytes, None, Some(18446744073692774399)),
        ];
        let text = json_text(&rows).unwrap();
        let typed: Vec<LimitJson> = serde_json::from_str(&text).unwrap();
        assert_eq!(typed, rows.iter().map(LimitJson::from).collect::<Vec<_>>());
        assert_eq!(typed[0].use_percent, Some(25.0));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v[0],
            serde_json::json!({
                "resource": "MSGMNI", "description": "what it limits", "used": 8, "limit": 32,
                "unit": "count", "use_percent": 25.0, "unlimited": false
            })
        );
        assert_eq!(v[1]["used"], serde_json::Value::Null);
        assert_eq!(v[1]["limit"].as_u64(), Some(18446744073692774399));
        assert_eq!(v[1]["unit"], "bytes");
        assert_eq!(v[1]["use_percent"], serde_json::Value::Null);
        assert_eq!(v[1]["unlimited"], true);
    }
}
