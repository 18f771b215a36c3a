//! Measures the anomaly detectors on the seeded synthetic workload and prints the table
//! of `docs/anomaly.md`:
//!
//! ```sh
//! cargo run -p latchkey-issuer --example anomaly-eval -- --seed 1 --weeks 5
//! cargo run -p latchkey-issuer --example anomaly-eval -- --seed 1 --runs 3 --max-speed-mps 50
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use latchkey_issuer::anomaly::evaluation::evaluate;
use latchkey_issuer::anomaly::workload::{WorkloadConfig, generate};
use latchkey_issuer::anomaly::{AnomalyConfig, Detector};

/// Run the anomaly engine over a seeded synthetic audit trail and print recall and
/// false-positive rates per detector.
#[derive(Debug, Parser)]
struct Args {
    /// Seed of the workload (the first one, with --runs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Evaluate this many workloads, seeds SEED, SEED+1, …
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// Length of the workload, weeks.
    #[arg(long, default_value_t = 5)]
    weeks: u32,
    /// Number of locks.
    #[arg(long, default_value_t = 24)]
    locks: usize,
    /// Number of guests.
    #[arg(long, default_value_t = 120)]
    guests: usize,
    /// Anomalies injected per detector.
    #[arg(long, default_value_t = 12)]
    anomalies: usize,
    /// Engine settings: a TOML file in the form of the issuer's `[anomaly]` table
    /// (every field optional; see docs/anomaly.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override impossible_travel.max_speed_mps.
    #[arg(long)]
    max_speed_mps: Option<f64>,
    /// Override unusual_hour.max_probability.
    #[arg(long)]
    hour_max_probability: Option<f64>,
    /// Print every false alert as a JSON line after the table.
    #[arg(long)]
    show_false_alerts: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anomaly-eval: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --config {}: {e}", path.display()))?;
            toml::from_str::<AnomalyConfig>(&text)
                .map_err(|e| format!("--config {}: {e}", path.display()))?
        }
        None => AnomalyConfig::default(),
    };
    if let Some(v) = args.max_speed_mps {
        config.impossible_travel.max_speed_mps = v;
    }
    if let Some(v) = args.hour_max_probability {
        config.unusual_hour.max_probability = v;
    }
    config.validate()?;
    let mut recall_min = [f64::INFINITY; 4];
    let mut fp_total = 0usize;
    let mut normal_total = 0usize;
    let mut guest_weeks_total = 0.0;
    for seed in args.seed..args.seed.saturating_add(args.runs.max(1)) {
        let workload = generate(&WorkloadConfig {
            seed,
            weeks: args.weeks,
            locks: args.locks,
            guests: args.guests,
            anomalies_per_detector: args.anomalies,
            ..WorkloadConfig::default()
        })?;
        let eval = evaluate(&workload, &config)?;
        println!("{eval}");
        if args.show_false_alerts {
            for alert in &eval.false_alerts {
                println!("{}", serde_json::to_string(alert)?);
            }
            println!();
        }
        for (i, d) in Detector::ALL.iter().enumerate() {
            if let Some(row) = eval.detector(*d) {
                recall_min[i] = recall_min[i].min(row.recall());
            }
        }
        fp_total += eval.total.false_positives;
        normal_total += eval.normal_records;
        guest_weeks_total += eval.guest_weeks;
    }
    if args.runs > 1 {
        println!("over {} seeds:", args.runs);
        for (i, d) in Detector::ALL.iter().enumerate() {
            println!("  {d}: lowest recall {:.2}", recall_min[i]);
        }
        println!(
            "  false positives: {fp_total} = {:.3} per 1000 normal records, {:.4} per guest-week",
            fp_total as f64 * 1000.0 / normal_total.max(1) as f64,
            fp_total as f64 / guest_weeks_total.max(1.0),
        );
    }
    Ok(())
}
