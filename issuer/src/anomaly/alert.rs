//! The engine's output: an [`Alert`], serialised as the JSON object of contract §4 that the
//! daemon publishes on `{p}/alerts` and stores in the `alerts` table. Its JSON Schema is
//! `docs/alerts.schema.json`.

use std::fmt;

use latchkey::{GuestId, LockId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation of the alert id hash, so it can never equal another hash of the
/// project.
const ALERT_ID_DS: &[u8] = b"latchkey/v1 anomaly-alert\0";

/// The four detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// A guest unlocks at an hour unusual for them at this lock.
    UnusualHour,
    /// Failed handshakes or refusals pile up (including lockouts).
    FailureBurst,
    /// A revoked guest is still trying.
    RevokedGuest,
    /// A guest unlocks at two locks too far apart for the time between.
    ImpossibleTravel,
}

impl Detector {
    /// Every detector, in the order the engine runs them.
    pub const ALL: &'static [Detector] = &[
        Detector::UnusualHour,
        Detector::FailureBurst,
        Detector::RevokedGuest,
        Detector::ImpossibleTravel,
    ];

    /// The snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Detector::UnusualHour => "unusual_hour",
            Detector::FailureBurst => "failure_burst",
            Detector::RevokedGuest => "revoked_guest",
            Detector::ImpossibleTravel => "impossible_travel",
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an alert is about (`kind` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A guest unlocked at an hour unusual for them at this lock.
    UnusualHour,
    /// Failures at a lock or by a guest went over the threshold in the sliding window.
    FailureBurst,
    /// A lock locked a guest out after repeated failed handshakes.
    Lockout,
    /// A revoked guest's beacon reached a lock, or a revoked guest asked for a grant.
    RevokedGuest,
    /// A guest unlocked at two locks too far apart for the time between.
    ImpossibleTravel,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: &'static [AlertKind] = &[
        AlertKind::UnusualHour,
        AlertKind::FailureBurst,
        AlertKind::Lockout,
        AlertKind::RevokedGuest,
        AlertKind::ImpossibleTravel,
    ];

    /// The snake_case name (the `kind` field).
    pub const fn name(self) -> &'static str {
        match self {
            AlertKind::UnusualHour => "unusual_hour",
            AlertKind::FailureBurst => "failure_burst",
            AlertKind::Lockout => "lockout",
            AlertKind::RevokedGuest => "revoked_guest",
            AlertKind::ImpossibleTravel => "impossible_travel",
        }
    }

    /// The detector that raises this kind.
    pub const fn detector(self) -> Detector {
        match self {
            AlertKind::UnusualHour => Detector::UnusualHour,
            AlertKind::FailureBurst | AlertKind::Lockout => Detector::FailureBurst,
            AlertKind::RevokedGuest => Detector::RevokedGuest,
            AlertKind::ImpossibleTravel => Detector::ImpossibleTravel,
        }
    }

    /// The severity every alert of this kind carries: an unusual hour is often a guest's
    /// own change of routine (info); failures are worth a look (warning); a revoked guest
    /// still trying and one identity in two places at once are what revocation and
    /// enrollment exist to prevent (critical).
    pub const fn severity(self) -> Severity {
        match self {
            AlertKind::UnusualHour => Severity::Info,
            AlertKind::FailureBurst | AlertKind::Lockout => Severity::Warning,
            AlertKind::RevokedGuest | AlertKind::ImpossibleTravel => Severity::Critical,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// The snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One alert (contract §4):
/// `{alert_id, at_ms, kind, severity, score, lock_id?, guest_id?, detail}`.
/// `lock_id` and `guest_id` are omitted when the alert has none; ids are lowercase hex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// 32 lowercase hex digits, derived from the alert's inputs (kind, time, lock, guest
    /// and what triggered it), so replaying the same audit trail gives the same ids and a
    /// store can insert them idempotently.
    pub alert_id: String,
    /// The issuer time (`at_ms`) of the record that raised it, Unix ms.
    pub at_ms: u64,
    /// What it is about.
    pub kind: AlertKind,
    /// How urgent ([`AlertKind::severity`]).
    pub severity: Severity,
    /// How anomalous: higher is more, each detector documents its scale
    /// (`docs/anomaly.md`). Always finite and ≥ 0.
    pub score: f64,
    /// The lock concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub lock_id: Option<LockId>,
    /// The guest concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub guest_id: Option<GuestId>,
    /// The evidence, a JSON object whose fields depend on `kind` (`docs/anomaly.md`).
    pub detail: serde_json::Value,
}

impl Alert {
    /// An alert of `kind` raised by the record at `at_ms`. `trigger` names what raised it
    /// beyond kind, time, lock and guest (e.g. the scope of a burst), so two alerts of one
    /// record get different ids.
    pub(crate) fn new(
        kind: AlertKind,
        at_ms: u64,
        lock_id: Option<LockId>,
        guest_id: Option<GuestId>,
        score: f64,
        trigger: &str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            alert_id: alert_id(kind, at_ms, lock_id, guest_id, trigger),
            at_ms,
            kind,
            severity: kind.severity(),
            // NaN or infinity would serialise as JSON null; the schema wants a number.
            score: if score.is_finite() {
                score.max(0.0)
            } else if score > 0.0 {
                f64::MAX
            } else {
                0.0
            },
            lock_id,
            guest_id,
            detail,
        }
    }

    /// The detector that raised it.
    pub fn detector(&self) -> Detector {
        self.kind.detector()
    }
}

/// `hex(SHA-256(DS ‖ kind ‖ 0 ‖ at_ms ‖ lock ‖ guest ‖ trigger)[..16])`; an absent id
/// hashes as a 0 byte, a present one as 1 followed by its bytes.
fn alert_id(
    kind: AlertKind,
    at_ms: u64,
    lock_id: Option<LockId>,
    guest_id: Option<GuestId>,
    trigger: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(ALERT_ID_DS);
    h.update(kind.name().as_bytes());
    h.update([0]);
    h.update(at_ms.to_be_bytes());
    match lock_id {
        Some(id) => {
            h.update([1]);
            h.update(id.0);
        }
        None => h.update([0]),
    }
    match guest_id {
        Some(id) => {
            h.update([1]);
            h.update(id.0);
        }
        None => h.update([0]),
    }
    h.update(trigger.as_bytes());
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

/// Serde for an optional identifier as its lowercase hex text form.
mod opt_hex {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(super) fn serialize<T: Display, S: Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample(lock: Option<LockId>, guest: Option<GuestId>) -> Alert {
        Alert::new(
            AlertKind::UnusualHour,
            1_736_150_400_000,
            lock,
            guest,
            4.25,
            "",
            json!({"local_time": "03:12"}),
        )
    }

    #[test]
    fn alert_json_has_exactly_the_contract_fields() {
        let alert = sample(Some(LockId([0xab; 16])), Some(GuestId([0x01; 16])));
        let value = serde_json::to_value(&alert).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "alert_id", "at_ms", "detail", "guest_id", "kind", "lock_id", "score", "severity"
            ]
        );
        assert_eq!(value["kind"], "unusual_hour");
        assert_eq!(value["severity"], "info");
        assert_eq!(value["lock_id"], "ab".repeat(16));
        assert_eq!(value["guest_id"], "01".repeat(16));
        assert_eq!(value["at_ms"], 1_736_150_400_000u64);
        assert_eq!(value["score"], 4.25);
        assert_eq!(value["detail"]["local_time"], "03:12");
        let back: Alert = serde_json::from_value(value).unwrap();
        assert_eq!(back, alert);
    }

    #[test]
    fn absent_ids_are_omitted_and_accepted_as_null() {
        let alert = sample(None, None);
        let value = serde_json::to_value(&alert).unwrap();
        assert!(value.get("lock_id").is_none());
        assert!(value.get("guest_id").is_none());
        let mut with_nulls = value.clone();
        with_nulls["lock_id"] = serde_json::Value::Null;
        let back: Alert = serde_json::from_value(with_nulls).unwrap();
        assert_eq!(back, alert);
    }

    #[test]
    fn alert_id_is_deterministic_and_depends_on_every_input() {
        let lock = Some(LockId([1; 16]));
        let guest = Some(GuestId([2; 16]));
        let id = |kind, at, lock, guest, trigger| alert_id(kind, at, lock, guest, trigger);
        let base = id(AlertKind::FailureBurst, 5, lock, guest, "lock");
        assert_eq!(base.len(), 32);
        assert!(
            base.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(base, id(AlertKind::FailureBurst, 5, lock, guest, "lock"));
        assert_ne!(base, id(AlertKind::Lockout, 5, lock, guest, "lock"));
        assert_ne!(base, id(AlertKind::FailureBurst, 6, lock, guest, "lock"));
        assert_ne!(base, id(AlertKind::FailureBurst, 5, None, guest, "lock"));
        assert_ne!(base, id(AlertKind::FailureBurst, 5, lock, None, "lock"));
        assert_ne!(base, id(AlertKind::FailureBurst, 5, lock, guest, "guest"));
    }

    #[test]
    fn a_non_finite_score_is_made_a_json_number() {
        let mut alert = sample(None, None);
        for (score, expect) in [(f64::NAN, 0.0), (f64::INFINITY, f64::MAX), (-3.0, 0.0)] {
            alert = Alert::new(alert.kind, 0, None, None, score, "", json!({}));
            assert_eq!(alert.score, expect);
            let text = serde_json::to_string(&alert).unwrap();
            assert!(!text.contains("null"), "{text}");
        }
    }

    /// Every kind of alert the engine raises on the synthetic workload validates against
    /// the published schema, and the schema refuses what the contract does not allow.
    #[test]
    fn alerts_of_every_kind_validate_against_docs_alerts_schema_json() {
        use crate::anomaly::workload::{WorkloadConfig, generate};
        use crate::anomaly::{AnomalyConfig, AnomalyEngine};

        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/alerts.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let workload = generate(&WorkloadConfig {
            weeks: 4,
            ..WorkloadConfig::default()
        })
        .unwrap();
        // The no-coordinates check on, so that method appears too.
        let mut config = AnomalyConfig::default();
        config.impossible_travel.min_interval_without_coordinates_s = Some(600);
        let mut engine = AnomalyEngine::new(config).unwrap();
        let mut first = std::collections::BTreeMap::new();
        for r in &workload.records {
            for alert in engine.observe(&r.record, &workload.directory) {
                let value = serde_json::to_value(&alert).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{value}: {errors:?}");
                first.entry(alert.kind).or_insert(value);
            }
        }
        assert_eq!(first.len(), AlertKind::ALL.len(), "{:?}", first.keys());

        let good = first[&AlertKind::UnusualHour].clone();
        assert!(validator.is_valid(&good));
        let mut bad = good.clone();
        bad["kind"] = json!("UnusualHour");
        assert!(!validator.is_valid(&bad));
        let mut bad = good.clone();
        bad["lock_id"] = json!("AB".repeat(16));
        assert!(!validator.is_valid(&bad));
        let mut bad = good.clone();
        bad["extra"] = json!(1);
        assert!(!validator.is_valid(&bad));
        let mut bad = good.clone();
        bad["severity"] = json!("critical");
        assert!(!validator.is_valid(&bad));
        let mut bad = good.clone();
        bad["detail"].as_object_mut().unwrap().remove("probability");
        assert!(!validator.is_valid(&bad));
        let mut bad = good;
        bad.as_object_mut().unwrap().remove("guest_id");
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        for kind in AlertKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.name());
        }
    }
}
