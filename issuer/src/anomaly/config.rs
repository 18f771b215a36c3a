//! The engine's configuration: one section per detector plus the memory caps, with the
//! defaults measured in `docs/anomaly.md`. Deserialises from the issuer's config file
//! (every field optional, unknown fields refused); [`AnomalyConfig::validate`] checks ranges.

use serde::{Deserialize, Serialize};

use super::failure_burst::FailureBurstConfig;
use super::impossible_travel::ImpossibleTravelConfig;
use super::revoked_guest::RevokedGuestConfig;
use super::unusual_hour::UnusualHourConfig;

/// A configuration value out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("anomaly config: {field} = {value} is out of range; expected {expected}")]
pub struct AnomalyConfigError {
    /// The field, as `section.name`.
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// The allowed values.
    pub expected: &'static str,
}

/// Caps on the state the engine keeps. When a map is full, its least recently used entry
/// is evicted: that guest, lock or pair starts again with no history (an evicted guest's
/// habits must be relearned before the unusual-hour detector speaks again; nothing raises
/// a false alert because of an eviction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryLimits {
    /// Guests tracked by each per-guest detector (failure bursts, revoked guests,
    /// impossible travel). Default 10 000.
    pub max_guests: usize,
    /// Locks tracked by the per-lock failure windows. Default 1 000.
    pub max_locks: usize,
    /// Guest × lock hour histograms (about 250 bytes each). Default 50 000.
    pub max_guest_lock_pairs: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_guests: 10_000,
            max_locks: 1_000,
            max_guest_lock_pairs: 50_000,
        }
    }
}

/// Every setting of the engine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Detector 1.
    pub unusual_hour: UnusualHourConfig,
    /// Detector 2 (also raises `lockout` alerts).
    pub failure_burst: FailureBurstConfig,
    /// Detector 3.
    pub revoked_guest: RevokedGuestConfig,
    /// Detector 4.
    pub impossible_travel: ImpossibleTravelConfig,
    /// Memory caps.
    pub limits: MemoryLimits,
}

impl AnomalyConfig {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<(), AnomalyConfigError> {
        self.unusual_hour.validate()?;
        self.failure_burst.validate()?;
        self.revoked_guest.validate()?;
        self.impossible_travel.validate()?;
        let l = &self.limits;
        for (field, v) in [
            ("limits.max_guests", l.max_guests),
            ("limits.max_locks", l.max_locks),
            ("limits.max_guest_lock_pairs", l.max_guest_lock_pairs),
        ] {
            check_u64(field, v as u64, 1, 10_000_000, "1..=10000000")?;
        }
        Ok(())
    }
}

/// `Ok` when `within`, else the error naming `field`, its `value` and what is `expected`.
fn in_range(
    within: bool,
    field: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> Result<(), AnomalyConfigError> {
    within.then_some(()).ok_or_else(|| AnomalyConfigError {
        field,
        value: value.to_string(),
        expected,
    })
}

/// `min..=max` for an integer setting.
pub(crate) fn check_u64(
    field: &'static str,
    value: u64,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<(), AnomalyConfigError> {
    in_range((min..=max).contains(&value), field, value, expected)
}

/// `min..=max` (or `min < v` when `min_exclusive`) for a real setting; NaN never passes.
pub(crate) fn check_f64(
    field: &'static str,
    value: f64,
    min: f64,
    min_exclusive: bool,
    max: f64,
    expected: &'static str,
) -> Result<(), AnomalyConfigError> {
    let above_min = if min_exclusive {
        value > min
    } else {
        value >= min
    };
    in_range(above_min && value <= max, field, value, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(AnomalyConfig::default().validate(), Ok(()));
    }

    #[test]
    fn an_empty_config_table_gives_the_defaults_and_unknown_fields_are_refused() {
        let parsed: AnomalyConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, AnomalyConfig::default());
        let parsed: AnomalyConfig =
            toml::from_str("[impossible_travel]\nmax_speed_mps = 90.0\n").unwrap();
        assert_eq!(parsed.impossible_travel.max_speed_mps, 90.0);
        assert_eq!(parsed.unusual_hour, UnusualHourConfig::default());
        assert!(toml::from_str::<AnomalyConfig>("[unusual_hour]\nthreshold = 1\n").is_err());
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let mut config = AnomalyConfig::default();
        config.unusual_hour.max_probability = 1.5;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "unusual_hour.max_probability");
        assert!(err.to_string().contains("1.5"));

        let mut config = AnomalyConfig::default();
        config.unusual_hour.smoothing = f64::NAN;
        assert_eq!(
            config.validate().unwrap_err().field,
            "unusual_hour.smoothing"
        );

        let mut config = AnomalyConfig::default();
        config.failure_burst.guest_threshold = 0;
        assert_eq!(
            config.validate().unwrap_err().field,
            "failure_burst.guest_threshold"
        );

        let mut config = AnomalyConfig::default();
        config.limits.max_guests = 0;
        assert_eq!(config.validate().unwrap_err().field, "limits.max_guests");

        let mut config = AnomalyConfig::default();
        config.impossible_travel.min_interval_without_coordinates_s = Some(0);
        assert_eq!(
            config.validate().unwrap_err().field,
            "impossible_travel.min_interval_without_coordinates_s"
        );
    }
}
