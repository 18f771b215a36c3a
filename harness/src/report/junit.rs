//! JUnit XML for CI dashboards: one `<testsuite>` per kind and role, one `<testcase>` per
//! case. UNIMPLEMENTED and DISABLED are `<skipped>`, never passes.

use super::{expectation_name, groups, tally, verdict_name};
use crate::model::{CaseResult, RunReport, Verdict};
use std::fmt::Write;

/// Renders the whole document, ending in a newline.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_document(&mut out, report);
    out
}

fn write_document(out: &mut String, report: &RunReport) -> std::fmt::Result {
    let total = tally(&report.results);
    let total_ms: u64 = report.results.iter().map(|r| r.duration_ms).sum();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="{}" tests="{}" failures="{}" errors="0" skipped="{}" time="{}">"#,
        attr(&format!("latchkey conformance: {}", report.implementation)),
        total.total(),
        total.get(Verdict::Failed),
        skipped(total),
        seconds(total_ms),
    )?;
    for ((kind, role), results) in groups(report) {
        let t = tally(results.iter().copied());
        let ms: u64 = results.iter().map(|r| r.duration_ms).sum();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="0" skipped="{}" time="{}">"#,
            attr(&format!("{kind}/{role}")),
            t.total(),
            t.get(Verdict::Failed),
            skipped(t),
            seconds(ms),
        )?;
        for r in results {
            write_case(out, kind, role, r)?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

fn write_case(out: &mut String, kind: &str, role: &str, r: &CaseResult) -> std::fmt::Result {
    write!(
        out,
        r#"    <testcase classname="{}" name="{}" time="{}""#,
        attr(&format!("latchkey.{kind}.{role}")),
        attr(&r.id),
        seconds(r.duration_ms),
    )?;
    match r.verdict {
        Verdict::Passed => writeln!(out, "/>"),
        Verdict::Failed => {
            writeln!(out, ">")?;
            writeln!(
                out,
                r#"      <failure message="{}">{}</failure>"#,
                attr(&r.detail),
                text(&failure_text(r))
            )?;
            writeln!(out, "    </testcase>")
        }
        Verdict::Unimplemented | Verdict::Disabled => {
            writeln!(out, ">")?;
            writeln!(
                out,
                r#"      <skipped message="{}"/>"#,
                attr(&format!("{}: {}", verdict_name(r.verdict), r.detail))
            )?;
            writeln!(out, "    </testcase>")
        }
    }
}

/// The body of a `<failure>`: everything a person needs to reproduce it.
fn failure_text(r: &CaseResult) -> String {
    let mut s = format!("requirements: {}\n", r.requirements.join(", "));
    s.push_str(&format!("case: {}\n", expectation_name(r.result)));
    if let Some(step) = r.failed_step {
        s.push_str(&format!("step: {step}\n"));
    }
    if let Some(input) = &r.input {
        s.push_str(&format!("input: {input}\n"));
    }
    if let Some(expected) = &r.expected {
        s.push_str(&format!("expected: {expected}\n"));
    }
    if let Some(actual) = &r.actual {
        s.push_str(&format!("actual: {actual}\n"));
    }
    s.push_str(&format!("detail: {}", r.detail));
    s
}

fn skipped(t: super::Tally) -> usize {
    t.get(Verdict::Unimplemented) + t.get(Verdict::Disabled)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Whether XML 1.0 can carry this character at all; the rest are dropped.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Escapes character data.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| allowed(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            // `]]>` must not appear in text; escaping every `>` is simplest.
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value. Tabs and line breaks become character references, since
/// parsers would otherwise normalise them to spaces.
pub fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| allowed(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}
