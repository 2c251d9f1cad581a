//! The kv section of the HTML report: the targets, one row per redis-benchmark test
//! with both servers side by side and their ratio as a bar, and the shared-memory GET.

use super::esc;
use crate::report::kv::{KvRun, KvSection, cpu_label, pairs};

/// The section, or nothing when the run had no kv suite.
pub(super) fn section(kv: Option<&KvSection>) -> String {
    let Some(kv) = kv else {
        return String::new();
    };
    let mut out = String::from("<h2>kv: ipckit kv against redis-server</h2>\n");
    out += &format!(
        "<p>redis-benchmark <code>-c {}</code>, <code>-n {}</code> at <code>-P 1</code> and \
         <code>{}</code> at <code>-P 16</code>, on identical Unix sockets; each row is the \
         median of {} rounds, each on a fresh server, the two servers in alternating order.</p>\n",
        kv.clients, kv.requests[0], kv.requests[1], kv.rounds
    );
    out += "<ul>\n";
    if let Some(fs) = &kv.log_filesystem {
        out += &format!("<li>logs of the everysec rows on {}</li>\n", esc(fs));
    }
    for s in &kv.servers {
        let what = match (&s.version, &s.skipped) {
            (_, Some(why)) => format!("<span class=\"skip\">skipped: {}</span>", esc(why)),
            (Some(v), None) => esc(v),
            (None, None) => String::new(),
        };
        out += &format!("<li>{}: {what}</li>\n", esc(&s.name));
    }
    out += "</ul>\n<table><tr><th>target</th><th>ratio</th><th>met</th><th>basis</th></tr>\n";
    for t in &kv.targets {
        let (class, word) = match t.holds {
            Some(true) => ("yes", "yes"),
            Some(false) => ("no", "no"),
            None => ("na", "not measured"),
        };
        out += &format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"{class}\">{word}</td><td class=\"small\">{}</td></tr>\n",
            esc(&t.target),
            t.ratio.map(|r| format!("{r:.2}x")).unwrap_or_default(),
            esc(&t.basis)
        );
    }
    out += "</table>\n";
    out += "<table class=\"rows\"><tr><th>test</th><th>persistence</th><th>-P</th>\
            <th>ipckit-kv req/s</th><th>redis-server req/s</th><th>ratio</th>\
            <th>ipckit p50 / p99 ms</th><th>redis p50 / p99 ms</th>\
            <th>server CPU µs/req (ipckit / redis)</th></tr>\n";
    let cells = |r: Option<&KvRun>| match r {
        Some(r) if r.measured() => (
            format!("<td class=\"n\">{:.0}</td>", r.rps),
            format!("<td class=\"n\">{:.3} / {:.3}</td>", r.p50_ms, r.p99_ms),
        ),
        Some(r) => {
            let (class, why) = match (&r.error, &r.skipped) {
                (Some(e), _) => ("err", e.as_str()),
                (None, Some(s)) => ("skip", s.as_str()),
                _ => ("na", ""),
            };
            (
                format!("<td class=\"{class}\">{}</td>", esc(why)),
                "<td></td>".into(),
            )
        }
        None => ("<td></td>".into(), "<td></td>".into()),
    };
    for pair in pairs(kv) {
        let r = pair.row;
        let ratio = match pair.ratio() {
            Some(q) => {
                // A bar 100 px wide at 1.0x, capped at 2.0x; green when at least redis's.
                let w = (q.min(2.0) * 100.0).max(1.0);
                let colour = if q >= 1.0 { "#59a14f" } else { "#e15759" };
                format!(
                    "<td class=\"n\"><svg width=\"210\" height=\"14\" style=\"display:inline;margin:0\">\
                     <rect width=\"{w:.0}\" height=\"12\" fill=\"{colour}\"/>\
                     <line x1=\"100\" y1=\"0\" x2=\"100\" y2=\"14\" stroke=\"#222\"/></svg> {q:.2}x</td>"
                )
            }
            None => "<td></td>".into(),
        };
        let (a, al) = cells(pair.ours);
        let (b, bl) = cells(pair.theirs);
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td>{a}{b}{ratio}{al}{bl}\
             <td class=\"n\">{} / {}</td></tr>\n",
            esc(&r.test),
            esc(&r.persistence),
            r.pipeline,
            cpu_label(pair.ours),
            cpu_label(pair.theirs)
        );
    }
    out += "</table>\n";
    if let Some(s) = &kv.shm {
        out += &format!(
            "<p>GET of a {} B value, one reader: through shared memory p50 <b>{:.0} ns</b> \
             ({:.2} M GETs/s); over the Unix socket p50 <b>{:.1} µs</b> ({:.0} GETs/s, one \
             request at a time).</p>\n",
            s.value_size,
            s.shm_get_p50_ns,
            s.shm_gets_per_s / 1e6,
            s.socket_get_p50_ns / 1e3,
            s.socket_gets_per_s
        );
    }
    out
}
