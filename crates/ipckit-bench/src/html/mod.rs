//! The HTML report: one self-contained page with inline CSS, hand-written SVG charts and the
//! report's JSON embedded. The SVG holds plain `<text>` elements that the browser lays out, so
//! nothing needs a font file at run time (plotters would).

use std::collections::BTreeMap;

mod kv;

use crate::report::{
    Kind, Report, Role, Rtt, Run, bandwidth_label, ns_label, rate_label, size_label,
};

/// Width of every chart, pixels.
const WIDTH: f64 = 960.0;
/// Left margin of the bar charts, where the mechanism names go.
const NAMES: f64 = 190.0;
/// Right margin of the bar charts, where the value labels go.
const VALUES: f64 = 80.0;
/// Line colours of the throughput chart, the most distinct first (after Sasha Trubetskoy's
/// list of 20); past 20 the dash pattern changes too.
const PALETTE: [&str; 20] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    "#469990", "#000075", "#808000", "#800000", "#000000", "#a9a9a9", "#bfef45", "#fabed4",
    "#dcbeff", "#ffe119", "#ffd8b1", "#aaffc3",
];
const DASHES: [&str; 4] = ["", "7 3", "2 3", "9 3 2 3"];
/// Tail markers of the latency chart: label, colour.
const TAILS: [(&str, &str); 4] = [
    ("p90", "#59a14f"),
    ("p99", "#f28e2b"),
    ("p99.9", "#e15759"),
    ("max", "#222"),
];

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;\
color:#222;padding:0 12px}h1{margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;\
padding:3px 7px;text-align:left}th{background:#f3f3f3}.rows td{white-space:nowrap}\
.rows td.skip,.rows td.err{white-space:normal}td.n{text-align:right;\
font-variant-numeric:tabular-nums}.small{font-size:11px;color:#555}.yes{color:#2a7d2a;\
font-weight:600}.no{color:#b22;font-weight:600}.na{color:#777}.skip{color:#777;font-style:italic}\
.err{color:#b22}.note{color:#777;font-style:italic}svg{display:block;margin:12px 0}";

/// Renders `report` as one self-contained HTML page: host and method, the claims check, charts
/// of latency, throughput and CPU per message, every row, and the report's JSON in
/// `<script type="application/json" id="report">`.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str(&format!(
        "<title>ipckit bench</title><style>{CSS}</style></head><body>\n"
    ));
    out.push_str("<h1>ipckit bench</h1>\n");
    out.push_str(&header(report));
    out.push_str("<h2>Claims check</h2>\n");
    out.push_str(&claims_table(report));
    out.push_str(&overhead_list(report));
    out.push_str("<h2>Round-trip latency</h2>\n");
    out.push_str(&latency_charts(&report.runs));
    out.push_str("<h2>Throughput</h2>\n");
    out.push_str(&throughput_chart(&report.runs));
    out.push_str("<h2>CPU per message</h2>\n");
    out.push_str(&cpu_chart(&report.runs));
    out.push_str("<h2>All results</h2>\n");
    out.push_str(&results_table(&report.runs));
    out.push_str(&kv::section(report.kv.as_ref()));
    // `</` would end the script element and `<!--` would change how its end is found; both
    // occur only inside JSON strings, where the escaped forms mean the same.
    let json = serde_json::to_string(report).unwrap_or_else(|_| "null".to_string());
    let json = json.replace("</", "<\\/").replace("<!--", "<\\u0021--");
    out.push_str(&format!(
        "<script type=\"application/json\" id=\"report\">{json}</script>\n</body></html>\n"
    ));
    out
}

/// Escapes text for HTML content and attribute values; all text from the report goes here.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn header(report: &Report) -> String {
    let h = &report.host;
    let pinned = match (h.pinned, h.pinned_cpus) {
        (true, Some([a, b])) => format!("pinned to CPUs {a} and {b}"),
        (true, None) => "pinned".to_string(),
        (false, _) => "not pinned".to_string(),
    };
    format!(
        "<p>Host: {} CPUs, Linux {}, {}; {}.<br>Tool: {}, profile {}, {} ms recorded per row.</p>\n\
         <p class=\"small\">Method: two processes per row; RTT = ping-pong round trip; throughput \
         = one-way streaming; every message verified on arrival; CPU = user + system time of \
         both processes per message.</p>\n",
        h.cpus,
        esc(&h.kernel),
        esc(&h.cpu_model),
        pinned,
        esc(&report.tool),
        esc(&report.profile),
        report.duration_ms
    )
}

fn ratio_label(r: f64) -> String {
    if !r.is_finite() {
        "n/a".to_string()
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 1.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

fn claims_table(report: &Report) -> String {
    if report.claims.is_empty() {
        return "<p class=\"note\">No claims checked.</p>\n".to_string();
    }
    let mut out = String::from(
        "<table><tr><th>claim</th><th>measured ratio</th><th>holds</th><th>basis</th></tr>\n",
    );
    for c in &report.claims {
        let (class, holds) = match c.holds {
            Some(true) => ("yes", "yes"),
            Some(false) => ("no", "no"),
            None => ("na", "not measured"),
        };
        let ratio = c
            .measured_ratio
            .map_or("not measured".to_string(), ratio_label);
        let sizes: Vec<String> = (c.by_size.iter())
            .map(|(s, r)| format!("{}: {}", size_label(*s), ratio_label(*r)))
            .collect();
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"{class}\">{holds}</td>\
             <td>{}<br><span class=\"small\">{}</span></td></tr>\n",
            esc(&c.claim),
            esc(&ratio),
            esc(&c.basis),
            esc(&sizes.join(" · "))
        ));
    }
    out.push_str("</table>\n");
    out
}

/// The library's own cost: mechanism over raw reference, median round trip.
fn overhead_list(report: &Report) -> String {
    if report.overhead.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2>Library overhead</h2>\n<ul>\n");
    for o in &report.overhead {
        out.push_str(&format!(
            "<li>{} / {} at {}: {} (median round trip; 1.00x is no cost of its own)</li>\n",
            esc(&o.mechanism),
            esc(&o.reference),
            esc(&size_label(o.size)),
            esc(&ratio_label(o.ratio))
        ));
    }
    out.push_str("</ul>\n");
    out
}

/// A pixel coordinate for SVG; never `NaN` or `inf`.
fn px(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "0".to_string()
    }
}

/// A value for a log scale: at least 1, and 1 for anything not finite.
fn clamp1(v: f64) -> f64 {
    if v.is_finite() { v.max(1.0) } else { 1.0 }
}

/// The smallest value above zero and the largest value, for an axis: zeros are left out so
/// they do not stretch it down to 1 (they are drawn at its start); `(1, 1)` when none is above
/// zero.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let positive = values.filter(|v| v.is_finite() && *v > 0.0);
    let (min, max) = positive.fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if max > 0.0 { (min, max) } else { (1.0, 1.0) }
}

/// A finite value, or nothing.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// A log10 axis from `10^lo` to `10^hi`, drawn over `len` pixels from `start` (a negative
/// `len` runs upwards, for y axes).
struct LogAxis {
    lo: f64,
    hi: f64,
    start: f64,
    len: f64,
}

impl LogAxis {
    /// Whole decades around `min..=max`.
    fn decades(min: f64, max: f64, start: f64, len: f64) -> LogAxis {
        let lo = clamp1(min).log10().floor();
        let hi = clamp1(max).log10().ceil().max(lo + 1.0);
        LogAxis { lo, hi, start, len }
    }

    /// `min..=max` with room either side, at least 0.6 decade (two doublings) wide.
    fn padded(min: f64, max: f64, start: f64, len: f64) -> LogAxis {
        let (a, b) = (clamp1(min).log10(), clamp1(max).log10());
        let pad = ((b - a) * 0.06).max(0.3);
        LogAxis {
            lo: a - pad,
            hi: b + pad,
            start,
            len,
        }
    }

    /// Where `v` goes; values off the axis (zero, say) go to its nearer end.
    fn pos(&self, v: f64) -> f64 {
        let at = clamp1(v).log10().clamp(self.lo, self.hi);
        self.start + (at - self.lo) / (self.hi - self.lo) * self.len
    }

    /// The powers of ten on the axis.
    fn decade_ticks(&self) -> Vec<f64> {
        (self.lo.ceil() as i32..=self.hi.floor() as i32)
            .map(|k| 10f64.powi(k))
            .collect()
    }

    /// At most about seven powers of two on the axis, evenly spaced.
    fn pow2_ticks(&self) -> Vec<f64> {
        let l2 = 2f64.log10();
        let (a, b) = ((self.lo / l2).ceil() as i32, (self.hi / l2).floor() as i32);
        let count = b - a + 1;
        let step = [1, 2, 5, 10]
            .into_iter()
            .find(|s| count / s <= 7)
            .unwrap_or(10);
        (a..=b)
            .filter(|k| k.rem_euclid(step) == 0)
            .map(|k| 2f64.powi(k))
            .collect()
    }
}

const END: &str = " text-anchor=\"end\"";
const MIDDLE: &str = " text-anchor=\"middle\"";

/// `<text>` at (`x`, `y`) with extra attributes; `body` is escaped here.
fn text(x: f64, y: f64, attrs: &str, body: &str) -> String {
    format!(
        "<text x=\"{}\" y=\"{}\"{attrs}>{}</text>",
        px(x),
        px(y),
        esc(body)
    )
}

/// A line from (`x1`, `y1`) to (`x2`, `y2`); `style` holds its stroke attributes.
fn line(x1: f64, y1: f64, x2: f64, y2: f64, style: &str) -> String {
    let (x1, y1, x2, y2) = (px(x1), px(y1), px(x2), px(y2));
    format!("<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" {style}/>")
}

fn rect(x: f64, y: f64, w: f64, h: f64, fill: &str) -> String {
    let (x, y, w, h) = (px(x), px(y), px(w), px(h));
    format!("<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{fill}\"/>")
}

/// Opens a chart: its `<title>`, and the same title shown at `x`.
fn svg_open(height: f64, title: &str, x: f64) -> String {
    let (w, h) = (px(WIDTH), px(height));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">\
         <title>{}</title>\n{}\n",
        esc(title),
        text(x, 18.0, " font-size=\"14\" font-weight=\"600\"", title)
    )
}

/// Vertical grid lines of a horizontal axis at `ticks`, from `top` to `bottom`, labelled below.
fn x_grid(axis: &LogAxis, ticks: &[(f64, String)], top: f64, bottom: f64) -> String {
    let mut out = String::new();
    let mut last = f64::NEG_INFINITY;
    for (v, label) in ticks {
        let x = axis.pos(*v);
        out.push_str(&line(x, top, x, bottom, "stroke=\"#ddd\""));
        // Labels closer than 46 px would overlap; the grid line stays.
        if x - last >= 46.0 {
            out.push_str(&text(x, bottom + 15.0, MIDDLE, label));
            last = x;
        }
    }
    out.push('\n');
    out
}

fn no_rows() -> String {
    "<p class=\"note\">No rows measured.</p>\n".to_string()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Mechanism => "mechanism",
        Role::Reference => "reference",
        Role::Peer => "peer",
    }
}

fn role_colour(role: Role) -> &'static str {
    match role {
        Role::Mechanism => "#4e79a7",
        Role::Reference => "#a0a0a0",
        Role::Peer => "#b07aa1",
    }
}

/// A bar chart on a log axis in nanoseconds: title, legend of the role colours, grid from
/// `top` to `bottom`, then `body` (the rows) and the axis label.
fn ns_bar_chart(title: &str, axis: &LogAxis, top: f64, bottom: f64, body: &str) -> String {
    let mut out = svg_open(bottom + 46.0, title, NAMES);
    let mut x = NAMES;
    for (role, name) in [
        (Role::Mechanism, "ipckit mechanism"),
        (Role::Reference, "raw reference"),
        (Role::Peer, "peer project"),
    ] {
        out.push_str(&rect(x, 28.0, 12.0, 10.0, role_colour(role)));
        out.push_str(&text(x + 16.0, 37.0, "", name));
        x += 130.0;
    }
    let ticks: Vec<(f64, String)> = (axis.decade_ticks().into_iter())
        .map(|v| (v, ns_label(v)))
        .collect();
    out.push_str(&x_grid(axis, &ticks, top - 4.0, bottom));
    out.push_str(body);
    let mid = NAMES + (WIDTH - NAMES - VALUES) / 2.0;
    out.push_str(&text(mid, bottom + 36.0, MIDDLE, "nanoseconds, log scale"));
    out.push_str("</svg>\n");
    out
}

/// One bar row of height `h` at `y`: the row's name, a bar up to `value`, and `label` at the
/// right.
fn bar(axis: &LogAxis, y: f64, h: f64, run: &Run, value: f64, label: &str) -> String {
    let ty = y + h / 2.0 + 4.0;
    let width = axis.pos(value) - NAMES;
    [
        text(NAMES - 6.0, ty, END, &run.mechanism),
        rect(NAMES, y + 2.0, width, h - 4.0, role_colour(run.role)),
        text(WIDTH - VALUES + 8.0, ty, "", label),
    ]
    .concat()
}

/// One horizontal-bar chart per latency message size: bar = p50, markers for the tail.
fn latency_charts(runs: &[Run]) -> String {
    let mut by_size: BTreeMap<usize, Vec<(&Run, Rtt)>> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == Kind::Latency && r.measured())
    {
        if let Some(rtt) = r.rtt_ns {
            by_size.entry(r.size).or_default().push((r, rtt));
        }
    }
    if by_size.is_empty() {
        return no_rows();
    }
    by_size
        .into_iter()
        .map(|(size, mut rows)| {
            rows.sort_by_key(|(_, rtt)| rtt.p50);
            latency_chart(size, &rows)
        })
        .collect()
}

fn latency_chart(size: usize, rows: &[(&Run, Rtt)]) -> String {
    const TOP: f64 = 50.0;
    const ROW: f64 = 18.0;
    let bottom = TOP + rows.len() as f64 * ROW;
    let tails = |t: &Rtt| [t.p90, t.p99, t.p999, t.max];
    let all = rows
        .iter()
        .flat_map(|(_, t)| tails(t).into_iter().chain([t.p50]));
    let (min, max) = range(all.map(|v| v as f64));
    let axis = LogAxis::decades(min, max, NAMES, WIDTH - NAMES - VALUES);
    let mut body = String::new();
    let mut x = NAMES + 400.0;
    for (label, colour) in TAILS {
        let style = format!("stroke=\"{colour}\" stroke-width=\"2\"");
        body.push_str(&line(x, 27.0, x, 39.0, &style));
        body.push_str(&text(x + 5.0, 37.0, "", label));
        x += 52.0;
    }
    for (i, (run, rtt)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let p50 = rtt.p50 as f64;
        body.push_str(&bar(&axis, y, ROW, run, p50, &ns_label(p50)));
        for (v, (_, colour)) in tails(rtt).into_iter().zip(TAILS) {
            let x = axis.pos(v as f64);
            let style = format!("stroke=\"{colour}\" stroke-width=\"2\"");
            body.push_str(&line(x, y + 1.0, x, y + ROW - 1.0, &style));
        }
        body.push('\n');
    }
    let title = format!(
        "Round trip (RTT), {} messages: p50 bars, tail marks",
        size_label(size)
    );
    ns_bar_chart(&title, &axis, TOP, bottom, &body)
}

/// Bytes per second against message size, log-log, one line per mechanism.
fn throughput_chart(runs: &[Run]) -> String {
    let mut series: Vec<(&Run, Vec<(usize, f64)>)> = Vec::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == Kind::Throughput && r.measured())
    {
        let Some(bps) = finite(r.bytes_per_s) else {
            continue;
        };
        match series.iter_mut().find(|(s, _)| s.mechanism == r.mechanism) {
            Some((_, points)) => points.push((r.size, bps)),
            None => series.push((r, vec![(r.size, bps)])),
        }
    }
    if series.is_empty() {
        return no_rows();
    }
    const LEFT: f64 = 110.0;
    const RIGHT: f64 = WIDTH - 200.0; // the legend is right of this
    const TOP: f64 = 40.0;
    let plot_h = (series.len() as f64 * 16.0 + 10.0).max(320.0);
    let bottom = TOP + plot_h;
    let mut sizes: Vec<usize> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let (min_s, max_s) = range(sizes.iter().map(|s| *s as f64));
    let (min_b, max_b) = range(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)));
    let xa = LogAxis::padded(min_s, max_s, LEFT, RIGHT - LEFT);
    let ya = LogAxis::padded(min_b, max_b, bottom, -plot_h);
    let mut out = svg_open(bottom + 46.0, "Throughput against message size", LEFT);
    let ticks: Vec<(f64, String)> = sizes.iter().map(|s| (*s as f64, size_label(*s))).collect();
    out.push_str(&x_grid(&xa, &ticks, TOP, bottom));
    for v in ya.pow2_ticks() {
        let y = ya.pos(v);
        out.push_str(&line(LEFT, y, RIGHT, y, "stroke=\"#ddd\""));
        out.push_str(&text(LEFT - 6.0, y + 4.0, END, &bandwidth_label(v)));
    }
    out.push('\n');
    for (i, (run, mut points)) in series.into_iter().enumerate() {
        points.sort_by_key(|p| p.0);
        let style = format!(
            "stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"",
            PALETTE[i % PALETTE.len()],
            DASHES[(i / PALETTE.len()) % DASHES.len()]
        );
        let xy: Vec<(String, String)> = (points.iter())
            .map(|(s, v)| (px(xa.pos(*s as f64)), px(ya.pos(*v))))
            .collect();
        let coords: Vec<String> = xy.iter().map(|(x, y)| format!("{x},{y}")).collect();
        out.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" {style}/>",
            coords.join(" ")
        ));
        for (x, y) in &xy {
            let fill = PALETTE[i % PALETTE.len()];
            out.push_str(&format!(
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{fill}\"/>"
            ));
        }
        let ly = TOP + 6.0 + i as f64 * 16.0;
        out.push_str(&line(RIGHT + 14.0, ly, RIGHT + 36.0, ly, &style));
        let name = match run.role {
            Role::Mechanism => run.mechanism.clone(),
            role => format!("{} ({})", run.mechanism, role_name(role)),
        };
        out.push_str(&text(RIGHT + 42.0, ly + 4.0, "", &name));
        out.push('\n');
    }
    let x_label = "message size, log scale";
    out.push_str(&text((LEFT + RIGHT) / 2.0, bottom + 36.0, MIDDLE, x_label));
    let y_label = format!(
        " transform=\"rotate(-90 16 {})\"{MIDDLE}",
        px(TOP + plot_h / 2.0)
    );
    let y_label_text = "payload bytes/s, one way, log scale";
    out.push_str(&text(16.0, TOP + plot_h / 2.0, &y_label, y_label_text));
    out.push_str("</svg>\n");
    out
}

/// CPU time per message of the throughput rows, horizontal bars grouped by message size.
fn cpu_chart(runs: &[Run]) -> String {
    let mut by_size: BTreeMap<usize, Vec<(&Run, f64)>> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == Kind::Throughput && r.measured())
    {
        if let Some(cpu) = finite(r.cpu_ns_per_msg) {
            by_size.entry(r.size).or_default().push((r, cpu));
        }
    }
    if by_size.is_empty() {
        return no_rows();
    }
    const TOP: f64 = 50.0;
    const ROW: f64 = 16.0;
    const GROUP: f64 = 22.0;
    let (min, max) = range(by_size.values().flatten().map(|(_, v)| *v));
    let rows: usize = by_size.values().map(Vec::len).sum();
    let bottom = TOP + by_size.len() as f64 * GROUP + rows as f64 * ROW;
    let axis = LogAxis::decades(min, max, NAMES, WIDTH - NAMES - VALUES);
    let mut body = String::new();
    let mut y = TOP;
    for (size, mut rows) in by_size {
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        body.push_str(&text(
            12.0,
            y + 15.0,
            " font-weight=\"600\"",
            &size_label(size),
        ));
        body.push('\n');
        y += GROUP;
        for (run, cpu) in rows {
            body.push_str(&bar(&axis, y, ROW, run, cpu, &ns_label(cpu)));
            body.push('\n');
            y += ROW;
        }
    }
    let title = "CPU per message (user + system of both processes), streaming";
    ns_bar_chart(title, &axis, TOP, bottom, &body)
}

fn results_table(runs: &[Run]) -> String {
    if runs.is_empty() {
        return no_rows();
    }
    let mut out = String::from(
        "<table class=\"rows\"><tr><th>mechanism</th><th>role</th><th>kind</th><th>size</th>\
         <th>messages</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>\
         <th>msgs/s</th><th>bytes/s</th><th>CPU ns/msg</th><th>verified</th></tr>\n",
    );
    for r in runs {
        let role = role_name(r.role);
        let kind = match r.kind {
            Kind::Latency => "latency",
            Kind::Throughput => "throughput",
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{role}</td><td>{kind}</td><td class=\"n\">{}</td>",
            esc(&r.mechanism),
            esc(&size_label(r.size))
        ));
        let cells = if let Some(why) = &r.skipped {
            format!(
                "<td colspan=\"10\" class=\"skip\">skipped: {}</td>",
                esc(why)
            )
        } else if let Some(e) = &r.error {
            format!("<td colspan=\"10\" class=\"err\">error: {}</td>", esc(e))
        } else {
            let dash = || "–".to_string();
            let mut cells = vec![r.messages.to_string()];
            let rtt = r.rtt_ns.map(|t| [t.p50, t.p90, t.p99, t.p999, t.max]);
            for i in 0..5 {
                cells.push(rtt.map_or_else(dash, |t| ns_label(t[i] as f64)));
            }
            cells.push(finite(r.msgs_per_s).map_or_else(dash, |v| rate_label(v) + "/s"));
            cells.push(finite(r.bytes_per_s).map_or_else(dash, bandwidth_label));
            cells.push(finite(r.cpu_ns_per_msg).map_or_else(dash, ns_label));
            cells.push(if r.verified { "yes" } else { "no" }.to_string());
            cells
                .iter()
                .map(|c| format!("<td class=\"n\">{}</td>", esc(c)))
                .collect()
        };
        out.push_str(&cells);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Host, claims};
    use crate::rows::Row;

    fn host() -> Host {
        Host {
            cpus: 8,
            kernel: "6.1.0-test".into(),
            cpu_model: "Test CPU @ 3.0GHz".into(),
            pinned: true,
            pinned_cpus: Some([2, 3]),
        }
    }

    fn report(runs: Vec<Run>) -> Report {
        Report {
            version: crate::report::VERSION,
            tool: "ipckit 0.1.0".into(),
            profile: "quick".into(),
            duration_ms: 500,
            host: host(),
            claims: claims(&runs),
            overhead: Vec::new(),
            interrupted: false,
            kv: None,
            runs,
        }
    }

    fn lat(name: &str, role: Role, size: usize, p50: u64) -> Run {
        let rtt = Rtt {
            p50,
            p90: p50 * 3 / 2,
            p99: p50 * 3,
            p999: p50 * 8,
            max: p50 * 40,
        };
        Run {
            rtt_ns: Some(rtt),
            msgs_per_s: Some(1e9 / p50.max(1) as f64),
            bytes_per_s: Some(size as f64 * 1e9 / p50.max(1) as f64),
            cpu_ns_per_msg: Some(p50 as f64 * 1.8),
            messages: 10_000,
            verified: true,
            skipped: None,
            ..Run::skipped(name, role, Kind::Latency, size, String::new())
        }
    }

    fn thr(name: &str, role: Role, size: usize, msgs: f64, cpu: f64) -> Run {
        Run {
            msgs_per_s: Some(msgs),
            bytes_per_s: Some(msgs * size as f64),
            cpu_ns_per_msg: Some(cpu),
            messages: 100_000,
            verified: true,
            skipped: None,
            ..Run::skipped(name, role, Kind::Throughput, size, String::new())
        }
    }

    fn skipped(name: &str, size: usize, why: &str) -> Run {
        Run::skipped(name, Role::Mechanism, Kind::Throughput, size, why.into())
    }

    fn sample() -> Report {
        let mut runs = Vec::new();
        for size in [64, 4096] {
            runs.push(lat(Row::Pipe.as_str(), Role::Mechanism, size, 9_000));
            runs.push(lat(Row::UnixStream.as_str(), Role::Mechanism, size, 7_000));
            runs.push(lat("x<b>&y", Role::Mechanism, size, 0));
            runs.push(lat(Row::RefSpin.as_str(), Role::Reference, size, 150));
            runs.push(lat(Row::Iceoryx2.as_str(), Role::Peer, size, 900));
            runs.push(thr(Row::Pipe.as_str(), Role::Mechanism, size, 4e5, 2_400.0));
            runs.push(thr(Row::ShmFutex.as_str(), Role::Mechanism, size, 3e6, 0.0));
            runs.push(thr(
                Row::TcpLoopback.as_str(),
                Role::Mechanism,
                size,
                1e5,
                9_000.0,
            ));
        }
        runs.push(skipped(
            Row::PosixMq.as_str(),
            64,
            "msg_max is 10, below the queue depth",
        ));
        let mut failed = thr(Row::SysvMq.as_str(), Role::Mechanism, 64, 0.0, 0.0);
        failed.error = Some("payload check failed: message 7".into());
        runs.push(failed);
        report(runs)
    }

    fn assert_finite(html: &str) {
        for bad in ["NaN", "inf", "Infinity"] {
            assert!(!html.contains(bad), "{bad} in output");
        }
    }

    #[test]
    fn one_svg_per_chart() {
        let html = render(&sample());
        // Two latency sizes, one throughput chart, one CPU chart.
        assert_eq!(html.matches("<svg").count(), 4);
        assert_eq!(html.matches("</svg>").count(), 4);
        assert_eq!(html.matches("<title>").count(), 5); // the page's and one per chart
        assert!(!html.contains("No rows measured"));
        assert_finite(&html);
    }

    #[test]
    fn text_is_escaped() {
        let html = render(&sample());
        let (page, json) = html.split_once("<script").unwrap();
        assert!(page.contains("x&lt;b&gt;&amp;y"));
        assert!(!page.contains("<b>"));
        // The only `</` in the embedded JSON is the script's own end tag.
        assert_eq!(json.matches("</").count(), 3); // </script>, </body>, </html>
        assert!(html.contains("skipped: msg_max is 10, below the queue depth"));
        assert!(html.contains("error: payload check failed: message 7"));
    }

    #[test]
    fn json_survives_embedding() {
        let mut r = sample();
        r.runs[0].mechanism = "</script><!--<script>".into();
        let html = render(&r);
        let start = html.find("id=\"report\">").unwrap() + "id=\"report\">".len();
        let end = html[start..].find("</script>").unwrap() + start;
        let back: Report = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(back.runs[0].mechanism, "</script><!--<script>");
    }

    #[test]
    fn empty_and_single_row_reports() {
        let html = render(&report(Vec::new()));
        assert_eq!(html.matches("<svg").count(), 0);
        assert!(html.contains("No rows measured"));
        assert_finite(&html);
        let html = render(&report(vec![lat(
            Row::Pipe.as_str(),
            Role::Mechanism,
            64,
            0,
        )]));
        assert_eq!(html.matches("<svg").count(), 1);
        assert_finite(&html);
        let html = render(&report(vec![thr(
            Row::Pipe.as_str(),
            Role::Mechanism,
            64,
            0.0,
            0.0,
        )]));
        assert_eq!(html.matches("<svg").count(), 2);
        assert_finite(&html);
    }

    #[test]
    fn non_finite_numbers_stay_out() {
        // A zero-throughput pipe makes the claims' ratios infinite; NaN figures are dropped.
        let runs = vec![
            thr(Row::Pipe.as_str(), Role::Mechanism, 64, 0.0, f64::NAN),
            thr(
                Row::ShmFutex.as_str(),
                Role::Mechanism,
                64,
                1e6,
                f64::INFINITY,
            ),
            thr(Row::RefMemcpy.as_str(), Role::Reference, 64, f64::NAN, 5.0),
        ];
        let html = render(&report(runs));
        assert_finite(&html);
        assert!(html.contains("not measured"));
    }

    /// Writes a realistic page to /tmp/ipckit-sample.html to look at:
    /// `cargo test -p ipckit-bench --lib html::tests::write_sample -- --ignored`. Never
    /// through a symlink another user planted there (`ipckit::files`).
    #[test]
    #[ignore]
    #[cfg(feature = "engine")]
    fn write_sample() {
        let mut runs = Vec::new();
        let rows = Row::SHARED_MEMORY
            .iter()
            .chain(Row::KERNEL_COPY)
            .enumerate();
        for (i, row) in rows {
            let shm = Row::SHARED_MEMORY.contains(row);
            let name = row.as_str();
            let base = if shm {
                500 + 90 * i as u64
            } else {
                5_000 + 1_300 * i as u64
            };
            for size in [64, 4096] {
                runs.push(lat(name, Role::Mechanism, size, base + size as u64 / 4));
            }
            for size in [64usize, 1024, 4096, 65536, 1 << 20] {
                if *row == Row::PosixMq && size == 1 << 20 {
                    runs.push(skipped(name, size, "msgsize_max is 8192"));
                    continue;
                }
                let copy = size as f64 / if shm { 8e9 } else { 2e9 };
                let msgs = 1.0 / (base as f64 * 1e-10 + copy);
                runs.push(thr(name, Role::Mechanism, size, msgs, 1e9 / msgs * 1.7));
            }
        }
        runs.push(lat(Row::RefSpin.as_str(), Role::Reference, 64, 140));
        runs.push(lat(Row::RefFutex.as_str(), Role::Reference, 64, 3_100));
        runs.push(lat(Row::Iceoryx2.as_str(), Role::Peer, 64, 950));
        for size in [64usize, 1024, 4096, 65536, 1 << 20] {
            let msgs = 12e9 / size as f64;
            runs.push(thr(
                Row::RefMemcpy.as_str(),
                Role::Reference,
                size,
                msgs,
                0.0,
            ));
        }
        ipckit::files::write("/tmp/ipckit-sample.html", render(&report(runs)).as_bytes()).unwrap();
    }
}
