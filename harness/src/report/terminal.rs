//! The plain-text summary printed at the end of a run. Its last line is
//! `N passed, M failed, K unimplemented, D disabled`, alone, for CI tools to parse.

use super::{VERDICTS, closing_line, expectation_name, groups, printable, tally, verdict_name};
use crate::model::{RunReport, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Renders the whole summary, ending in a newline.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the `let _` keeps that out of the signature.
    let _ = write_report(&mut out, report);
    // Our own text has no control characters, so this only touches what shims wrote.
    printable(&out).into_owned()
}

fn write_report(out: &mut String, report: &RunReport) -> std::fmt::Result {
    writeln!(
        out,
        "Latchkey conformance: {} (harness {})",
        report.implementation, report.harness_version
    )?;
    writeln!(out)?;

    let total = tally(&report.results);
    for v in VERDICTS {
        writeln!(out, "  {:<14}{:>6}", verdict_name(v), total.get(v))?;
    }
    writeln!(out, "  {:<14}{:>6}", "total", total.total())?;
    writeln!(out)?;

    write_table(out, report)?;
    write_failures(out, report)?;
    write_unimplemented(out, report)?;

    if report.uncovered.is_empty() {
        writeln!(
            out,
            "coverage: every requirement has an accepting and a rejecting passing case"
        )?;
    } else {
        writeln!(
            out,
            "requirements without coverage: {}",
            report.uncovered.join(", ")
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{}", closing_line(report))
}

/// One row per kind and role.
fn write_table(out: &mut String, report: &RunReport) -> std::fmt::Result {
    let groups = groups(report);
    let kind_w = groups
        .keys()
        .map(|(k, _)| k.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let role_w = groups
        .keys()
        .map(|(_, r)| r.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let headers = ["passed", "failed", "unimplemented", "disabled"];
    write!(out, "  {:<kind_w$}  {:<role_w$}", "kind", "role")?;
    for h in headers {
        write!(out, "  {h:>w$}", w = h.len())?;
    }
    writeln!(out)?;
    for ((kind, role), results) in &groups {
        let t = tally(results.iter().copied());
        write!(out, "  {kind:<kind_w$}  {role:<role_w$}")?;
        for (h, v) in headers.iter().zip(VERDICTS) {
            write!(out, "  {:>w$}", t.get(v), w = h.len())?;
        }
        writeln!(out)?;
    }
    writeln!(out)
}

fn write_failures(out: &mut String, report: &RunReport) -> std::fmt::Result {
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.verdict == Verdict::Failed)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    writeln!(out, "FAILED ({})", failed.len())?;
    for r in failed {
        writeln!(out, "  {} [{}]", r.id, r.requirements.join(", "))?;
        writeln!(out, "    case:     {}", expectation_name(r.result))?;
        write_indented(out, "detail:   ", &r.detail)?;
        if let Some(step) = r.failed_step {
            writeln!(out, "    step:     {step}")?;
        }
        if let Some(expected) = &r.expected {
            writeln!(out, "    expected: {expected}")?;
        }
        if let Some(actual) = &r.actual {
            writeln!(out, "    actual:   {actual}")?;
        }
    }
    writeln!(out)
}

/// A labelled value whose continuation lines line up under the first.
fn write_indented(out: &mut String, label: &str, text: &str) -> std::fmt::Result {
    let mut lines = text.lines();
    writeln!(out, "    {label}{}", lines.next().unwrap_or(""))?;
    for line in lines {
        writeln!(out, "    {:w$}{line}", "", w = label.len())?;
    }
    Ok(())
}

fn write_unimplemented(out: &mut String, report: &RunReport) -> std::fmt::Result {
    let mut by_role: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for r in &report.results {
        if r.verdict == Verdict::Unimplemented {
            by_role.entry(r.role.as_str()).or_default().push(r);
        }
    }
    if by_role.is_empty() {
        return Ok(());
    }
    let count: usize = by_role.values().map(Vec::len).sum();
    writeln!(out, "UNIMPLEMENTED ({count})")?;
    for (role, results) in by_role {
        writeln!(out, "  {role}:")?;
        for r in results {
            let detail = r.detail.lines().next().unwrap_or("");
            if detail.is_empty() {
                writeln!(out, "    {}", r.id)?;
            } else {
                writeln!(out, "    {}: {detail}", r.id)?;
            }
        }
    }
    writeln!(out)
}
