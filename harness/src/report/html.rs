//! One self-contained HTML page to browse a run: counts, a requirement → cases table,
//! and a section per case with its input, expected and actual output and a diff of the
//! last two. No external assets, so the file can be attached to a CI run as is.

use super::{VERDICTS, closing_line, expectation_name, printable, tally, verdict_name};
use crate::model::{CaseResult, RunReport, Verdict};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { margin: 0 0 .4rem; font-size: 1.05rem; }
h4 { margin: .8rem 0 .2rem; font-size: .9rem; }
code, pre, .diff { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; margin: 0; white-space: pre-wrap; }
.meta { color: #666; margin-top: 0; }
.badge { display: inline-block; padding: 0 .45rem; margin: .1rem; border-radius: .6rem; font-size: .8rem; text-decoration: none; color: #fff; }
.badge.passed { background: #1a7f37; } .badge.failed { background: #cf222e; }
.badge.unimplemented { background: #bf8700; } .badge.disabled { background: #6e7781; }
#filter { width: 100%; box-sizing: border-box; padding: .4rem .6rem; font-size: 1rem; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .25rem .5rem; border-bottom: 1px solid #eee; }
.uncovered { color: #cf222e; font-weight: 600; }
section.case { border: 1px solid #ddd; border-left-width: 6px; border-radius: 4px; padding: .6rem .9rem; margin: .8rem 0; }
section.case.passed { border-left-color: #1a7f37; } section.case.failed { border-left-color: #cf222e; }
section.case.unimplemented { border-left-color: #bf8700; } section.case.disabled { border-left-color: #6e7781; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .4rem 0; }
dt { color: #666; } dd { margin: 0; }
.diff { background: #f6f8fa; padding: .5rem; white-space: pre; overflow-x: auto; }
.diff .exp, .diff .miss { background: #ffebe9; } .diff .act { background: #dafbe1; }
.diff .extra { color: #8c959f; }
.legend { color: #666; font-size: .85rem; }
"#;

const SCRIPT: &str = r#"
const filter = document.getElementById('filter');
filter.addEventListener('input', () => {
  const q = filter.value.trim().toLowerCase();
  for (const el of document.querySelectorAll('.filterable')) el.hidden = q !== '' && !el.dataset.search.includes(q);
});
"#;

/// Renders the page.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_page(&mut out, report);
    out
}

fn write_page(out: &mut String, report: &RunReport) -> std::fmt::Result {
    let title = format!("Latchkey conformance: {}", report.implementation);
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, r#"<html lang="en">"#)?;
    writeln!(out, "<head>")?;
    writeln!(out, r#"<meta charset="utf-8">"#)?;
    writeln!(
        out,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
    )?;
    writeln!(out, "<title>{}</title>", esc(&title))?;
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "</head>")?;
    writeln!(out, "<body>")?;
    writeln!(out, "<header>")?;
    writeln!(out, "<h1>{}</h1>", esc(&title))?;
    writeln!(
        out,
        r#"<p class="meta">harness {} · {}</p>"#,
        esc(&report.harness_version),
        esc(&closing_line(report))
    )?;
    let total = tally(&report.results);
    write!(out, r#"<p class="counts">"#)?;
    for v in VERDICTS {
        write!(
            out,
            r#"<span class="badge {}">{} {}</span>"#,
            class(v),
            verdict_name(v),
            total.get(v)
        )?;
    }
    writeln!(out, "</p>")?;
    writeln!(out, "</header>")?;
    writeln!(
        out,
        r#"<input id="filter" type="search" placeholder="Filter: case id, requirement, verdict, role or any text" autocomplete="off">"#
    )?;
    write_requirements(out, report)?;
    writeln!(out, "<h2>Cases</h2>")?;
    for r in &report.results {
        write_case(out, r)?;
    }
    writeln!(out, "<script>{SCRIPT}</script>")?;
    writeln!(out, "</body>")?;
    writeln!(out, "</html>")
}

fn write_requirements(out: &mut String, report: &RunReport) -> std::fmt::Result {
    let uncovered: BTreeSet<&str> = report.uncovered.iter().map(String::as_str).collect();
    let mut by_req: BTreeMap<(Vec<Chunk<'_>>, &str), Vec<&CaseResult>> = BTreeMap::new();
    for req in &uncovered {
        by_req.entry((natural_key(req), req)).or_default();
    }
    for r in &report.results {
        for req in &r.requirements {
            by_req.entry((natural_key(req), req)).or_default().push(r);
        }
    }
    writeln!(out, "<h2>Requirements</h2>")?;
    writeln!(
        out,
        "<table><thead><tr><th>Requirement</th><th>Coverage</th><th>Cases</th></tr></thead><tbody>"
    )?;
    for ((_, req), results) in &by_req {
        let mut search = req.to_lowercase();
        for r in results {
            search.push(' ');
            search.push_str(&r.id.to_lowercase());
        }
        write!(
            out,
            r#"<tr class="filterable" id="{}" data-search="{}"><td><code>{}</code></td>"#,
            anchor("req", req),
            esc(&search),
            esc(req)
        )?;
        if uncovered.contains(req) {
            write!(out, r#"<td class="uncovered">not covered</td><td>"#)?;
        } else {
            write!(out, "<td>covered</td><td>")?;
        }
        for r in results {
            write!(
                out,
                r##"<a class="badge {}" href="#{}" title="{}, {}">{}</a>"##,
                class(r.verdict),
                anchor("case", &r.id),
                verdict_name(r.verdict),
                expectation_name(r.result),
                esc(&r.id)
            )?;
        }
        writeln!(out, "</td></tr>")?;
    }
    writeln!(out, "</tbody></table>")
}

fn write_case(out: &mut String, r: &CaseResult) -> std::fmt::Result {
    let search = [
        r.id.as_str(),
        verdict_name(r.verdict),
        &r.kind,
        &r.role,
        &r.requirements.join(" "),
        &r.comment,
        &r.detail,
    ]
    .join(" ")
    .to_lowercase();
    writeln!(
        out,
        r#"<section class="case filterable {}" id="{}" data-search="{}">"#,
        class(r.verdict),
        anchor("case", &r.id),
        esc(&search)
    )?;
    writeln!(
        out,
        r#"<h3><span class="badge {}">{}</span> <code>{}</code></h3>"#,
        class(r.verdict),
        verdict_name(r.verdict),
        esc(&r.id)
    )?;
    writeln!(out, "<p>{}</p>", esc(&r.comment))?;
    writeln!(out, "<dl>")?;
    writeln!(
        out,
        "<dt>kind / role</dt><dd>{} / {}</dd>",
        esc(&r.kind),
        esc(&r.role)
    )?;
    writeln!(out, "<dt>case</dt><dd>{}</dd>", expectation_name(r.result))?;
    write!(out, "<dt>requirements</dt><dd>")?;
    for (i, req) in r.requirements.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(
            out,
            r##"{sep}<a href="#{}"><code>{}</code></a>"##,
            anchor("req", req),
            esc(req)
        )?;
    }
    writeln!(out, "</dd>")?;
    if !r.detail.is_empty() {
        writeln!(out, "<dt>detail</dt><dd><pre>{}</pre></dd>", esc(&r.detail))?;
    }
    if let Some(step) = r.failed_step {
        writeln!(out, "<dt>failing step</dt><dd>{step}</dd>")?;
    }
    writeln!(out, "<dt>duration</dt><dd>{} ms</dd>", r.duration_ms)?;
    writeln!(out, "</dl>")?;

    if r.input.is_some() || r.expected.is_some() || r.actual.is_some() {
        let open = if r.verdict == Verdict::Failed {
            " open"
        } else {
            ""
        };
        writeln!(
            out,
            "<details{open}><summary>input, expected, actual</summary>"
        )?;
        if let (Some(expected), Some(actual)) = (&r.expected, &r.actual) {
            writeln!(out, "<h4>expected vs actual</h4>")?;
            writeln!(
                out,
                r#"<p class="legend"><code>-</code> expected, <code>+</code> actual; grey lines exist only in the actual output and are not compared.</p>"#
            )?;
            write_diff(out, &diff(expected, actual))?;
        }
        for (label, value) in [
            ("input", &r.input),
            ("expected", &r.expected),
            ("actual", &r.actual),
        ] {
            if let Some(value) = value {
                writeln!(
                    out,
                    "<h4>{label}</h4><pre>{}</pre>",
                    esc(&format!("{value:#}"))
                )?;
            }
        }
        writeln!(out, "</details>")?;
    }
    writeln!(out, "</section>")
}

/// How an expected JSON value compares to the actual one.
#[derive(Debug, Clone, PartialEq)]
pub enum Diff<'a> {
    /// The same on both sides.
    Equal(&'a Value),
    /// Different scalars, or values of different types.
    Different {
        /// The expected value.
        expected: &'a Value,
        /// The actual value.
        actual: &'a Value,
    },
    /// Expected but absent from the actual output.
    Missing(&'a Value),
    /// Only in the actual output.
    Extra(&'a Value),
    /// Two objects: entries in expected order, then the actual-only keys.
    Object(Vec<(&'a str, Diff<'a>)>),
    /// Two arrays, element by element.
    Array(Vec<Diff<'a>>),
}

/// A recursive diff of two JSON values.
pub fn diff<'a>(expected: &'a Value, actual: &'a Value) -> Diff<'a> {
    if expected == actual {
        return Diff::Equal(expected);
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut entries: Vec<(&str, Diff<'a>)> = e
                .iter()
                .map(|(k, ev)| match a.get(k) {
                    Some(av) => (k.as_str(), diff(ev, av)),
                    None => (k.as_str(), Diff::Missing(ev)),
                })
                .collect();
            entries.extend(
                a.iter()
                    .filter(|(k, _)| !e.contains_key(*k))
                    .map(|(k, av)| (k.as_str(), Diff::Extra(av))),
            );
            Diff::Object(entries)
        }
        (Value::Array(e), Value::Array(a)) => {
            let len = e.len().max(a.len());
            Diff::Array(
                (0..len)
                    .filter_map(|i| match (e.get(i), a.get(i)) {
                        (Some(ev), Some(av)) => Some(diff(ev, av)),
                        (Some(ev), None) => Some(Diff::Missing(ev)),
                        (None, Some(av)) => Some(Diff::Extra(av)),
                        (None, None) => None,
                    })
                    .collect(),
            )
        }
        _ => Diff::Different { expected, actual },
    }
}

/// How a diff line is shown.
#[derive(Clone, Copy)]
enum Mark {
    Same,
    Expected,
    Actual,
    Missing,
    Extra,
}

impl Mark {
    fn class_and_sign(self) -> (&'static str, &'static str) {
        match self {
            Mark::Same => ("same", " "),
            Mark::Expected => ("exp", "-"),
            Mark::Actual => ("act", "+"),
            Mark::Missing => ("miss", "-"),
            Mark::Extra => ("extra", "+"),
        }
    }
}

fn write_diff(out: &mut String, d: &Diff<'_>) -> std::fmt::Result {
    let mut lines = Vec::new();
    diff_lines(d, "", 0, false, &mut lines);
    writeln!(out, r#"<div class="diff">"#)?;
    for (mark, text) in lines {
        let (class, sign) = mark.class_and_sign();
        let title = match mark {
            Mark::Missing => r#" title="missing from the actual output""#,
            Mark::Extra => r#" title="only in the actual output (not compared)""#,
            _ => "",
        };
        writeln!(
            out,
            r#"<div class="{class}"{title}>{sign} {}</div>"#,
            esc(&text)
        )?;
    }
    writeln!(out, "</div>")
}

/// Lays a diff out as pretty JSON lines; `label` is the `"key": ` prefix inside objects.
fn diff_lines(d: &Diff<'_>, label: &str, depth: usize, comma: bool, out: &mut Vec<(Mark, String)>) {
    let indent = "  ".repeat(depth);
    let tail = if comma { "," } else { "" };
    match d {
        Diff::Equal(v) => value_lines(Mark::Same, &indent, label, v, tail, out),
        Diff::Different { expected, actual } => {
            value_lines(Mark::Expected, &indent, label, expected, tail, out);
            value_lines(Mark::Actual, &indent, label, actual, tail, out);
        }
        Diff::Missing(v) => value_lines(Mark::Missing, &indent, label, v, tail, out),
        Diff::Extra(v) => value_lines(Mark::Extra, &indent, label, v, tail, out),
        Diff::Object(entries) => {
            out.push((Mark::Same, format!("{indent}{label}{{")));
            for (i, (key, d)) in entries.iter().enumerate() {
                let label = format!("{}: ", Value::from(*key));
                diff_lines(d, &label, depth + 1, i + 1 < entries.len(), out);
            }
            out.push((Mark::Same, format!("{indent}}}{tail}")));
        }
        Diff::Array(items) => {
            out.push((Mark::Same, format!("{indent}{label}[")));
            for (i, d) in items.iter().enumerate() {
                diff_lines(d, "", depth + 1, i + 1 < items.len(), out);
            }
            out.push((Mark::Same, format!("{indent}]{tail}")));
        }
    }
}

/// One value, pretty-printed, every line marked the same way.
fn value_lines(
    mark: Mark,
    indent: &str,
    label: &str,
    v: &Value,
    tail: &str,
    out: &mut Vec<(Mark, String)>,
) {
    let pretty = format!("{v:#}");
    let mut lines = pretty.lines().peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        let label = if first { label } else { "" };
        let tail = if lines.peek().is_none() { tail } else { "" };
        out.push((mark, format!("{indent}{label}{line}{tail}")));
        first = false;
    }
}

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Unimplemented => "unimplemented",
        Verdict::Disabled => "disabled",
    }
}

/// An element id safe to use unescaped in an `href` fragment.
fn anchor(prefix: &str, id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{safe}")
}

/// Escapes text and attribute values alike; control characters become visible escapes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
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

/// A piece of a requirement id for sorting: numbers by value, so `LK-ADV-2` < `LK-ADV-10`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Chunk<'a> {
    Number(u64),
    Text(&'a str),
}

fn natural_key(s: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let digits = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(end);
        chunks.push(match head.parse() {
            Ok(n) if digits => Chunk::Number(n),
            _ => Chunk::Text(head),
        });
        rest = tail;
    }
    chunks
}
