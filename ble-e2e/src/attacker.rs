//! The `replay` scenario's attacker: a third controller that records every beacon of the
//! deployment's company id it hears, and after the guest left re-advertises them (latest
//! first), as a bystander with a sniffer and an advertiser would.
//!
//! It talks to BlueZ with bluer directly (it is neither a lock nor a guest) and writes
//! `{"captured": [hex…], "replayed": [hex…]}` to `--out`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bluer::adv::{Advertisement, Type};
use clap::Args;
use serde_json::json;

use crate::beacons::distinct_beacons;

/// Options of `replay-attacker`.
#[derive(Debug, Args)]
pub struct AttackerOptions {
    /// The attacker's controller.
    #[arg(long, default_value = "hci2")]
    adapter: String,
    /// Company id whose manufacturer data is recorded.
    #[arg(long, default_value_t = 0xFFFF)]
    company_id: u16,
    /// Recording stops when this file exists.
    #[arg(long)]
    stop_file: PathBuf,
    /// Seconds the replay lasts, shared among the recorded beacons.
    #[arg(long, default_value_t = 6)]
    replay_s: u64,
    /// Where the record goes (JSON).
    #[arg(long)]
    out: PathBuf,
}

/// Distinct beacons recorded, oldest first.
#[derive(Debug, Default)]
struct Recording {
    beacons: Vec<Vec<u8>>,
}

impl Recording {
    fn add(&mut self, data: &[u8]) {
        if !self.beacons.iter().any(|b| b == data) {
            eprintln!("attacker: recorded {}", hex::encode(data));
            self.beacons.push(data.to_vec());
        }
    }

    /// Replay order: the newest first (the most likely to still be in the lock's window).
    fn replay_order(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.beacons.iter().rev()
    }
}

/// Runs the attacker; exit status 0 when it recorded and replayed at least one beacon.
pub fn main(opts: &AttackerOptions) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("attacker: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(attack(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("attacker: {e}");
            ExitCode::from(2)
        }
    }
}

async fn attack(opts: &AttackerOptions) -> Result<bool, bluer::Error> {
    let session = bluer::Session::new().await?;
    let adapter = session.adapter(&opts.adapter)?;
    adapter.set_powered(true).await?;
    let recording = record(&adapter, opts).await?;
    let mut replayed = Vec::new();
    if !recording.beacons.is_empty() {
        let n = u32::try_from(recording.beacons.len()).unwrap_or(u32::MAX);
        let each = (Duration::from_secs(opts.replay_s) / n).max(Duration::from_millis(500));
        for data in recording.replay_order() {
            eprintln!("attacker: replaying {} for {:?}", hex::encode(data), each);
            let adv = Advertisement {
                advertisement_type: Type::Broadcast,
                manufacturer_data: [(opts.company_id, data.clone())].into_iter().collect(),
                min_interval: Some(Duration::from_millis(100)),
                max_interval: Some(Duration::from_millis(100)),
                ..Default::default()
            };
            let handle = adapter.advertise(adv).await?;
            tokio::time::sleep(each).await;
            drop(handle);
            replayed.push(hex::encode(data));
        }
    }
    let captured: Vec<String> = recording.beacons.iter().map(hex::encode).collect();
    let record = json!({ "captured": captured, "replayed": replayed });
    if let Err(e) = std::fs::write(&opts.out, record.to_string()) {
        eprintln!("attacker: cannot write {}: {e}", opts.out.display());
    }
    Ok(!replayed.is_empty())
}

/// Scans (duplicate data on) until the stop file appears, recording manufacturer data.
async fn record(
    adapter: &bluer::Adapter,
    opts: &AttackerOptions,
) -> Result<Recording, bluer::Error> {
    let mut beacons = distinct_beacons(adapter.clone(), opts.company_id).await?;
    eprintln!("attacker: capturing on {}", adapter.name());
    let mut recording = Recording::default();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            beacon = beacons.recv() => match beacon {
                Some(b) => recording.add(&b),
                None => break,
            },
            _ = tick.tick() => {
                if opts.stop_file.exists() {
                    break;
                }
            }
        }
    }
    Ok(recording)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_keeps_distinct_beacons_and_replays_newest_first() {
        let mut r = Recording::default();
        r.add(&[1]);
        r.add(&[2]);
        r.add(&[1]);
        r.add(&[3]);
        let order: Vec<&Vec<u8>> = r.replay_order().collect();
        assert_eq!(order, [&vec![3], &vec![2], &vec![1]]);
    }
}
