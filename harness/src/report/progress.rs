//! A progress bar on stderr while cases run. Hidden when disabled or when stderr is not
//! a terminal, so CI logs hold only the final report.

use crate::model::Verdict;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

const TEMPLATE: &str = "{bar:40.cyan/blue} {pos}/{len} {elapsed_precise} {msg}";

/// Progress of a run, one tick per case.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    failed: u64,
}

impl Progress {
    /// A bar for `total` cases; drawn only if `enabled` and stderr is a terminal.
    pub fn new(total: u64, enabled: bool) -> Self {
        let bar = if enabled && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            // A bad template is our bug, not the user's; fall back to the default look.
            if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, failed: 0 }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Records one finished case. Failures are printed above the bar as they happen.
    pub fn inc(&mut self, case_id: &str, verdict: Verdict) {
        if verdict == Verdict::Failed {
            self.failed += 1;
            self.bar.println(format!("FAILED {case_id}"));
        }
        if self.failed > 0 {
            self.bar
                .set_message(format!("{} failed · {case_id}", self.failed));
        } else {
            self.bar.set_message(case_id.to_string());
        }
        self.bar.inc(1);
    }

    /// Removes the bar; the report follows on stdout.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
