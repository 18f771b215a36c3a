//! Logs on stderr through `tracing`: human-readable or JSON lines, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset: `info`, with the embedded broker's per-connection
/// chatter at `warn`.
pub const DEFAULT_FILTER: &str = "info,rumqttd=warn";

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let (filter, bad_env) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e.to_string())),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Some(e) = bad_env {
        tracing::warn!(error = %e, default = DEFAULT_FILTER, "RUST_LOG is invalid; using the default filter");
    }
}
