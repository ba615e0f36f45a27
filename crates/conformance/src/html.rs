//! The report vendors hand on: one self-contained HTML page (inline CSS
//! and SVG, no script, nothing fetched) with the verdict, the proxy's
//! identity, every case by group with its clause, expected versus
//! observed for each failure and warning, and for a load run the latency
//! percentiles drawn against KMS's 250 ms budget. The page is well-formed
//! XML (XHTML syntax) so that tools can check it.

use crate::cases::Group;
use crate::load::LoadReport;
use crate::report::{CaseResult, Report, Verdict};
use std::fmt::Write as _;

/// KMS's per-attempt budget, in microseconds.
const BUDGET_US: u64 = 250_000;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1b1f24;padding:0 1em}\
h1{font-size:1.6em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #d0d7de}\
.verdict{display:inline-block;padding:.35em .9em;border-radius:6px;font-weight:700;color:#fff}\
.v-pass{background:#1a7f37}.v-fail{background:#cf222e}.v-warn{background:#9a6700}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25em .5em;vertical-align:top;border-bottom:1px solid #eaeef2}\
th{background:#f6f8fa}.r{font-weight:700;font-family:monospace;white-space:nowrap}\
.PASS{color:#1a7f37}.FAIL{color:#cf222e}.WARN{color:#9a6700}.SKIP{color:#57606a}\
code{font-family:ui-monospace,monospace;font-size:.92em}.clause{color:#57606a;font-size:.9em}\
details{margin:.2em 0}ul.mm{margin:.2em 0 .2em 1.2em;padding:0}dl.id dt{font-weight:600;float:left;clear:left;width:14em}dl.id dd{margin:0 0 .2em 14em}";

/// Renders the page for a conformance run, with a load run if there is one.
pub fn render(report: &Report, load: Option<&LoadReport>) -> String {
    let mut s = String::new();
    let (class, word) = verdict_of(report, load);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>\
<meta name=\"viewport\" content=\"width=device-width\"/>\
<title>XKS conformance report: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&report.target.endpoint)
    );
    let _ = writeln!(
        s,
        "<h1>XKS Proxy API conformance report</h1>\n<p><span class=\"verdict {class}\" id=\"verdict\">{word}</span> \
         {} cases: {} passed, {} failed, {} warnings, {} skipped &#183; {} &#183; {:.1} s</p>",
        report.summary.total,
        report.summary.passed,
        report.summary.failed,
        report.summary.warned,
        report.summary.skipped,
        esc(&report.tool),
        report.millis as f64 / 1000.0
    );
    attention(&mut s, report);
    identity(&mut s, report);
    if let Some(l) = load {
        load_section(&mut s, l);
    }
    if !report.cases.is_empty() {
        let times: Vec<u64> = report.cases.iter().map(|c| c.millis).collect();
        let _ = writeln!(
            s,
            "<h2 id=\"timing\">Time per case</h2>\n<p>How long each case took (a case is one request, or a few), against KMS's 250 ms per-request budget.</p>"
        );
        s.push_str(&histogram_svg(&times));
    }
    for g in Group::ALL {
        let cases: Vec<&CaseResult> = report.cases.iter().filter(|c| c.group == g).collect();
        if cases.is_empty() {
            continue;
        }
        group_section(&mut s, g, &cases);
    }
    s.push_str("<p class=\"clause\">Clauses refer to the XKS Proxy API specification v1.0.3. A WARN is an answer that follows one reading of a rule where the specification and AWS's own tools disagree; see docs/conformance.md.</p>\n</body></html>\n");
    s
}

fn verdict_of(report: &Report, load: Option<&LoadReport>) -> (&'static str, &'static str) {
    let load_failed = load.is_some_and(|l| l.verdict.starts_with("FAIL"));
    if report.has_failures() || load_failed {
        ("v-fail", "DOES NOT CONFORM")
    } else if report.summary.warned > 0 {
        ("v-warn", "CONFORMS, WITH WARNINGS")
    } else {
        ("v-pass", "CONFORMS")
    }
}

/// The failures and warnings first, one line each, for the reader in a
/// hurry (the details are in their group below).
fn attention(s: &mut String, r: &Report) {
    let flagged: Vec<&CaseResult> = r
        .cases
        .iter()
        .filter(|c| matches!(c.result, Verdict::Fail | Verdict::Warn))
        .collect();
    if flagged.is_empty() {
        return;
    }
    let _ = writeln!(s, "<h2>Failures and warnings</h2>\n<ul id=\"attention\">");
    for c in flagged {
        let first = c
            .mismatches
            .first()
            .map(|m| m.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<li><span class=\"r {r}\">{r}</span> <code>{}</code>: {}</li>",
            esc(&c.id),
            esc(&first),
            r = c.result.as_str()
        );
    }
    let _ = writeln!(s, "</ul>");
}

fn identity(s: &mut String, r: &Report) {
    let t = &r.target;
    let _ = writeln!(
        s,
        "<h2>Proxy under test</h2>\n<dl class=\"id\" id=\"identity\">"
    );
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(s, "<dt>{}</dt><dd><code>{}</code></dd>", esc(k), esc(v));
    };
    row("Endpoint", &t.endpoint);
    row("URI path", &t.uri_path);
    row("Region", &t.region);
    let unknown = "(not observed)";
    row("TLS version", t.tls_version.as_deref().unwrap_or(unknown));
    row(
        "TLS cipher suite",
        t.tls_suite.as_deref().unwrap_or(unknown),
    );
    row(
        "Server certificate subject",
        t.server_subject.as_deref().unwrap_or(unknown),
    );
    let _ = writeln!(s, "</dl>");
}

fn group_section(s: &mut String, g: Group, cases: &[&CaseResult]) {
    let n = |v: Verdict| cases.iter().filter(|c| c.result == v).count();
    let _ = writeln!(
        s,
        "<h2 id=\"group-{}\">{} <code>{}</code> &#183; {} cases, {} failed, {} warnings, {} skipped</h2>",
        g.as_str(),
        esc(g.title()),
        g.as_str(),
        cases.len(),
        n(Verdict::Fail),
        n(Verdict::Warn),
        n(Verdict::Skip)
    );
    let _ = writeln!(
        s,
        "<table><tr><th>result</th><th>case</th><th>description and clause</th></tr>"
    );
    for c in cases {
        let r = c.result.as_str();
        let _ = write!(
            s,
            "<tr class=\"case\" data-id=\"{id}\" data-result=\"{r}\"><td class=\"r {r}\">{r}</td><td><code>{id}</code></td><td>{}",
            esc(&c.description),
            id = esc(&c.id)
        );
        match c.result {
            Verdict::Fail | Verdict::Warn => {
                let _ = write!(
                    s,
                    "<details open=\"open\" class=\"mismatches\"><summary>expected vs observed</summary><ul class=\"mm\">"
                );
                for m in &c.mismatches {
                    let _ = write!(
                        s,
                        "<li><b>{}</b>: expected <code>{}</code>, observed <code>{}</code></li>",
                        esc(&m.check),
                        esc(&m.expected),
                        esc(&m.observed)
                    );
                }
                s.push_str("</ul></details>");
            }
            Verdict::Skip => {
                let _ = write!(
                    s,
                    "<div class=\"clause\">skipped: {}</div>",
                    esc(c.reason.as_deref().unwrap_or(""))
                );
            }
            Verdict::Pass => {
                if let Some(n) = &c.note {
                    let _ = write!(s, "<div class=\"clause\">note: {}</div>", esc(n));
                }
            }
        }
        let _ = writeln!(
            s,
            "<div class=\"clause\">spec: {}</div></td></tr>",
            esc(&c.clause)
        );
    }
    s.push_str("</table>\n");
}

fn load_section(s: &mut String, l: &LoadReport) {
    let _ = writeln!(
        s,
        "<h2 id=\"load\">Load run</h2>\n<p>{} requests in {:.1} s ({:.0} req/s{}), concurrency {}; {} over KMS's 250 ms; verdict: <b>{}</b></p>",
        l.requests,
        l.seconds,
        l.achieved_rps,
        l.target_rps.map(|r| format!(", target {r:.0}")).unwrap_or_default(),
        l.concurrency,
        l.over_250ms,
        esc(&l.verdict)
    );
    let rows = [
        ("p50", l.p50_us),
        ("p90", l.p90_us),
        ("p99", l.p99_us),
        ("p99.9", l.p999_us),
        ("max", l.max_us),
    ];
    s.push_str("<table id=\"percentiles\"><tr>");
    for (k, _) in rows {
        let _ = write!(s, "<th>{k}</th>");
    }
    s.push_str("</tr><tr>");
    for (_, v) in rows {
        let _ = write!(s, "<td>{:.3} ms</td>", v as f64 / 1000.0);
    }
    s.push_str("</tr></table>\n");
    if !l.errors.is_empty() {
        s.push_str("<ul>");
        for (k, v) in &l.errors {
            let _ = write!(s, "<li>{v} &#215; <code>{}</code></li>", esc(k));
        }
        s.push_str("</ul>\n");
    }
    s.push_str(&latency_svg(&rows));
}

/// Histogram buckets (upper bounds in ms; the last is open).
const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000];

/// Counts of `millis` per bucket of [`BUCKETS_MS`] (plus one for "more").
pub fn bucket_counts(millis: &[u64]) -> Vec<u64> {
    let mut counts = vec![0u64; BUCKETS_MS.len() + 1];
    for &m in millis {
        let i = BUCKETS_MS
            .iter()
            .position(|&b| m < b)
            .unwrap_or(BUCKETS_MS.len());
        counts[i] += 1;
    }
    counts
}

/// A histogram of durations (ms) as vertical bars, buckets left of KMS's
/// 250 ms budget in blue, beyond it in red, the budget as a dashed line.
pub fn histogram_svg(millis: &[u64]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 20.0;
    let counts = bucket_counts(millis);
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let n = counts.len() as f64;
    let slot = (W - LEFT - 10.0) / n;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"latency-histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"histogram of durations against the 250 ms budget\">"
    );
    let plot_h = H - TOP - BOTTOM;
    for (i, &c) in counts.iter().enumerate() {
        let x = LEFT + i as f64 * slot;
        let h = c as f64 / max as f64 * plot_h;
        let over = i >= BUCKETS_MS.iter().position(|&b| b == 500).unwrap_or(8);
        let label = match i {
            0 => "<1".to_owned(),
            i if i < BUCKETS_MS.len() => format!("{}-{}", BUCKETS_MS[i - 1], BUCKETS_MS[i]),
            _ => format!(">{}", BUCKETS_MS[BUCKETS_MS.len() - 1]),
        };
        let _ = writeln!(
            s,
            "<rect class=\"bucket\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} ms: {c}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{c}</text>",
            x + 2.0,
            TOP + plot_h - h,
            slot - 4.0,
            if over { "#cf222e" } else { "#2f81f7" },
            esc(&label),
            x + slot / 2.0,
            H - BOTTOM + 14.0,
            esc(&label),
            x + slot / 2.0,
            TOP + plot_h - h - 3.0
        );
    }
    // The budget sits at the boundary of the 100-250 and 250-500 buckets.
    let i = BUCKETS_MS.iter().position(|&b| b == 250).unwrap_or(7) + 1;
    let bx = LEFT + i as f64 * slot;
    let _ = writeln!(
        s,
        "<line id=\"budget-line\" x1=\"{bx:.1}\" y1=\"{TOP}\" x2=\"{bx:.1}\" y2=\"{:.1}\" stroke=\"#cf222e\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{bx:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#cf222e\" text-anchor=\"middle\">KMS budget 250 ms</text><text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\">ms</text>",
        H - BOTTOM,
        TOP - 6.0,
        H - 8.0
    );
    s.push_str("</svg>\n");
    s
}

/// Latency by percentile as horizontal bars on a logarithmic millisecond
/// axis, with KMS's 250 ms budget as a red line.
pub fn latency_svg(rows: &[(&str, u64)]) -> String {
    const W: f64 = 640.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 20.0;
    const BAR: f64 = 22.0;
    let top = 24.0;
    let h = top + rows.len() as f64 * (BAR + 8.0) + 30.0;
    // Axis from 0.1 ms to 1 s (log10), covering the 250 ms budget.
    let (lo, hi) = (100f64.log10(), 1_000_000f64.log10());
    let x = |us: u64| {
        let v = (us.max(100) as f64).log10().min(hi);
        LEFT + (v - lo) / (hi - lo) * (W - LEFT - RIGHT)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"latency-percentiles\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"latency percentiles against the 250 ms budget\">"
    );
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"14\" font-size=\"12\">latency (log scale, ms) by percentile</text>"
    );
    for (i, (name, us)) in rows.iter().enumerate() {
        let y = top + i as f64 * (BAR + 8.0);
        let over = *us > BUDGET_US;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{:.3} ms</text>",
            LEFT - 6.0,
            y + 15.0,
            esc(name),
            (x(*us) - LEFT).max(1.0),
            if over { "#cf222e" } else { "#2f81f7" },
            x(*us) + 4.0,
            y + 15.0,
            *us as f64 / 1000.0
        );
    }
    let axis_y = top + rows.len() as f64 * (BAR + 8.0);
    for (label, us) in [
        ("0.1", 100u64),
        ("1", 1_000),
        ("10", 10_000),
        ("100", 100_000),
        ("1000", 1_000_000),
    ] {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{axis_y:.1}\" stroke=\"#d0d7de\"/><text x=\"{0:.1}\" y=\"{1:.1}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
            x(us),
            axis_y + 12.0
        );
    }
    let b = x(BUDGET_US);
    let _ = writeln!(
        s,
        "<line id=\"budget\" x1=\"{b:.1}\" y1=\"{:.1}\" x2=\"{b:.1}\" y2=\"{axis_y:.1}\" stroke=\"#cf222e\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{b:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#cf222e\" text-anchor=\"middle\">KMS budget 250 ms</text>",
        top - 4.0,
        axis_y + 24.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_escaping() {
        assert_eq!(
            bucket_counts(&[0, 1, 249, 250, 999, 5000]),
            vec![1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1]
        );
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        let svg = histogram_svg(&[3, 300]);
        assert_eq!(svg.matches("<rect class=\"bucket\"").count(), 11);
        assert!(svg.contains("KMS budget 250 ms"));
    }
}
