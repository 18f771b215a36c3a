//! Reports of a run: a terminal summary, JSON, JUnit XML for CI, and one browsable HTML
//! page. Every renderer is a pure function of the [`RunReport`], so output is
//! reproducible and snapshot-tested.

pub mod html;
pub mod json;
pub mod junit;
pub mod progress;
pub mod terminal;

pub use progress::Progress;

use crate::model::{CaseResult, Expectation, RunReport, Verdict};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes each report whose path is given.
pub fn write_all(
    report: &RunReport,
    json_path: Option<&Path>,
    junit_path: Option<&Path>,
    html_path: Option<&Path>,
) -> std::io::Result<()> {
    if let Some(path) = json_path {
        std::fs::write(path, json::render(report)?)?;
    }
    if let Some(path) = junit_path {
        std::fs::write(path, junit::render(report))?;
    }
    if let Some(path) = html_path {
        std::fs::write(path, html::render(report))?;
    }
    Ok(())
}

/// Shows control characters (other than tab and newline) as `\u{..}` escapes: details
/// quote what a shim printed, and a stray escape sequence must not drive the terminal.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unprintable) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unprintable(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Verdicts in report order.
pub const VERDICTS: [Verdict; 4] = [
    Verdict::Passed,
    Verdict::Failed,
    Verdict::Unimplemented,
    Verdict::Disabled,
];

/// The verdict as the reports spell it.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
        Verdict::Unimplemented => "UNIMPLEMENTED",
        Verdict::Disabled => "DISABLED",
    }
}

/// What a case demands, as the reports spell it.
pub fn expectation_name(e: Expectation) -> &'static str {
    match e {
        Expectation::Valid => "valid (must accept)",
        Expectation::Invalid => "invalid (must reject)",
    }
}

/// Counts per verdict, indexed like [`VERDICTS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally(pub [usize; 4]);

impl Tally {
    /// Adds one verdict.
    pub fn add(&mut self, v: Verdict) {
        self.0[verdict_index(v)] += 1;
    }

    /// The count of one verdict.
    pub fn get(&self, v: Verdict) -> usize {
        self.0[verdict_index(v)]
    }

    /// All cases.
    pub fn total(&self) -> usize {
        self.0.iter().sum()
    }
}

fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Passed => 0,
        Verdict::Failed => 1,
        Verdict::Unimplemented => 2,
        Verdict::Disabled => 3,
    }
}

/// Results grouped by `(kind, role)`, groups sorted, cases in execution order.
pub fn groups(report: &RunReport) -> BTreeMap<(&str, &str), Vec<&CaseResult>> {
    let mut groups: BTreeMap<(&str, &str), Vec<&CaseResult>> = BTreeMap::new();
    for r in &report.results {
        groups
            .entry((r.kind.as_str(), r.role.as_str()))
            .or_default()
            .push(r);
    }
    groups
}

/// Counts of a set of results.
pub fn tally<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Tally {
    let mut t = Tally::default();
    for r in results {
        t.add(r.verdict);
    }
    t
}

/// The closing line CI tools parse: `N passed, M failed, K unimplemented, D disabled`.
pub fn closing_line(report: &RunReport) -> String {
    let t = tally(&report.results);
    format!(
        "{} passed, {} failed, {} unimplemented, {} disabled",
        t.get(Verdict::Passed),
        t.get(Verdict::Failed),
        t.get(Verdict::Unimplemented),
        t.get(Verdict::Disabled)
    )
}
