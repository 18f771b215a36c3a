//! Verdict lines, failure details with the daemons' logs, the summary table and
//! summary.json.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::judge::Verdict;
use crate::uml::Boot;

/// Lines of each log printed for a failed run.
const LOG_TAIL: usize = 30;

/// One boot of one scenario, judged.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: &'static str,
    /// 1-based repetition.
    pub round: u32,
    /// Its run folder.
    pub dir: PathBuf,
    /// How the boot ended.
    pub boot: Boot,
    /// The judgement.
    pub verdict: Verdict,
}

impl Outcome {
    /// `PASS unlock #1 (8.4 s) advertising start to unlock 1234 ms …`
    pub fn print_line(&self) {
        let status = if self.verdict.passed() {
            "PASS"
        } else {
            "FAIL"
        };
        let figures: Vec<String> = self
            .verdict
            .figures
            .iter()
            .map(|(k, v)| format!("{k}: {v:.0}"))
            .collect();
        println!(
            "{status} {:<13} #{:<3} boot {:>5.1} s | {}",
            self.scenario,
            self.round,
            self.boot.elapsed.as_secs_f64(),
            figures.join("; ")
        );
        for n in &self.verdict.notes {
            println!("     {n}");
        }
    }

    /// The failed checks, then the tails of the logs and where the HCI trace is.
    pub fn print_failure(&self, timeout_s: u64) {
        if self.boot.timed_out {
            println!("  the machine was killed after {timeout_s} s");
        }
        for f in &self.verdict.failures {
            println!("  - {f}");
        }
        let mut logs = vec![self.dir.join("console.log")];
        if let Ok(entries) = fs::read_dir(self.dir.join("logs")) {
            let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            more.sort();
            logs.extend(more);
        }
        for log in logs {
            print_tail(&log);
        }
        println!(
            "  run folder: {}\n  HCI trace: {} (Wireshark), decoded by btmon in {}",
            self.dir.display(),
            self.dir.join("hci.snoop").display(),
            self.dir.join("logs/btmon.log").display()
        );
    }
}

fn print_tail(path: &Path) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL);
    println!(
        "  --- {} (last {} of {} lines)",
        path.display(),
        lines.len() - from,
        lines.len()
    );
    for l in &lines[from..] {
        println!("  | {l}");
    }
}

/// Every outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    outcomes: Vec<Outcome>,
}

impl Report {
    /// Adds one outcome.
    pub fn push(&mut self, o: Outcome) {
        self.outcomes.push(o);
    }

    /// Whether every boot passed.
    pub fn all_passed(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.verdict.passed())
    }

    /// Outcomes grouped by scenario, in run order.
    fn by_scenario(&self) -> Vec<(&'static str, Vec<&Outcome>)> {
        let mut groups: Vec<(&'static str, Vec<&Outcome>)> = Vec::new();
        for o in &self.outcomes {
            match groups.iter_mut().find(|(n, _)| *n == o.scenario) {
                Some((_, v)) => v.push(o),
                None => groups.push((o.scenario, vec![o])),
            }
        }
        groups
    }

    /// Pass counts and the median and maximum of each figure, per scenario.
    pub fn print_summary(&self, repeat: u32) {
        println!("\n=== real BlueZ end to end: {repeat} run(s) of each scenario");
        for (name, runs) in self.by_scenario() {
            let passed = runs.iter().filter(|o| o.verdict.passed()).count();
            println!("{name:<13} {passed}/{} passed", runs.len());
            for (figure, values) in figures(&runs) {
                let (median, max) = median_max(&values);
                println!("    {figure:<46} median {median:>7.0}  max {max:>7.0}");
            }
        }
        let total = self.outcomes.len();
        let passed = self.outcomes.iter().filter(|o| o.verdict.passed()).count();
        println!("{passed}/{total} runs passed");
    }

    /// summary.json: per scenario, pass count, figures and each failed run's checks.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        let scenarios: Vec<_> = self
            .by_scenario()
            .into_iter()
            .map(|(name, runs)| {
                let figs: BTreeMap<String, _> = figures(&runs)
                    .into_iter()
                    .map(|(k, v)| {
                        let (median, max) = median_max(&v);
                        (k, json!({"median": median, "max": max, "values": v}))
                    })
                    .collect();
                let failures: Vec<_> = runs
                    .iter()
                    .filter(|o| !o.verdict.passed())
                    .map(
                        |o| json!({"round": o.round, "dir": o.dir, "failures": o.verdict.failures}),
                    )
                    .collect();
                json!({
                    "scenario": name,
                    "runs": runs.len(),
                    "passed": runs.iter().filter(|o| o.verdict.passed()).count(),
                    "figures": figs,
                    "failed_runs": failures,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&json!({ "scenarios": scenarios }))
            .map_err(io::Error::other)?;
        fs::write(path, text + "\n")
    }
}

/// Each figure's values across runs, in first-seen order.
fn figures(runs: &[&Outcome]) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for o in runs {
        for (k, v) in &o.verdict.figures {
            match out.iter_mut().find(|(n, _)| n == k) {
                Some((_, vals)) => vals.push(*v),
                None => out.push((k.clone(), vec![*v])),
            }
        }
    }
    out
}

/// Median (the upper one for an even count) and maximum; zeros for no values.
fn median_max(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
    let max = v.last().copied().unwrap_or(0.0);
    (median, max)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn outcome(name: &'static str, round: u32, ok: bool, ms: f64) -> Outcome {
        Outcome {
            scenario: name,
            round,
            dir: PathBuf::from("/x"),
            boot: Boot {
                elapsed: Duration::from_secs(1),
                timed_out: false,
            },
            verdict: Verdict {
                failures: if ok { vec![] } else { vec!["no".into()] },
                figures: vec![("t (ms)".into(), ms)],
                notes: vec![],
            },
        }
    }

    #[test]
    fn summary_groups_runs_and_takes_median_and_max() {
        let mut r = Report::default();
        r.push(outcome("unlock", 1, true, 300.0));
        r.push(outcome("replay", 1, true, 5.0));
        r.push(outcome("unlock", 2, false, 100.0));
        r.push(outcome("unlock", 3, true, 200.0));
        assert!(!r.all_passed());
        let groups = r.by_scenario();
        assert_eq!(groups[0].0, "unlock");
        assert_eq!(groups[0].1.len(), 3);
        let figs = figures(&groups[0].1);
        assert_eq!(median_max(&figs[0].1), (200.0, 300.0));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("summary.json");
        r.write_json(&path).expect("write");
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(v["scenarios"][0]["passed"], 2);
        assert_eq!(v["scenarios"][0]["failed_runs"][0]["round"], 2);
        assert_eq!(v["scenarios"][0]["figures"]["t (ms)"]["median"], 200.0);
    }

    #[test]
    fn an_empty_report_has_not_passed() {
        assert!(!Report::default().all_passed());
        assert_eq!(median_max(&[]), (0.0, 0.0));
    }
}
