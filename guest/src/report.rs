//! What a successful unlock reports: which grant opened which lock, and how long each step
//! took.

use std::fmt;
use std::time::Duration;

use latchkey::{GrantId, LockId, Reason, SessionId};
use serde_json::json;

/// Duration of each step of an unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepTimings {
    /// Getting the grant over MQTT (zero when a held grant was reused).
    pub grant: Duration,
    /// First advertisement → GATT connection up.
    pub connect: Duration,
    /// Select write(s) until the lock accepted one.
    pub select: Duration,
    /// Challenge read and verification.
    pub challenge: Duration,
    /// Response write → the lock's answer.
    pub response: Duration,
    /// The whole unlock, grant included, to the lock's answer (cleanup excluded).
    pub total: Duration,
}

/// A held grant the lock did not accept (its beacons armed nothing, or the lock said the
/// grant is dead): it was dropped and a fresh grant requested within the same unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantFallback {
    /// The grant that was dropped.
    pub dropped_grant: GrantId,
    /// What the lock answered with it (`no_pending_auth` when it refused the beacons).
    pub refused: Reason,
}

impl GrantFallback {
    /// The fallback as JSON: `{"dropped_grant": hex, "refused": reason name}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "dropped_grant": self.dropped_grant.to_string(),
            "refused": self.refused.name(),
        })
    }
}

/// A successful unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlockReport {
    /// The lock that opened.
    pub lock_id: LockId,
    /// The grant used.
    pub grant_id: GrantId,
    /// Its session.
    pub session_id: SessionId,
    /// Whether a grant held from an earlier unlock was reused (no MQTT round trip).
    pub grant_reused: bool,
    /// GrantRequests published for this unlock (0 when reused).
    pub grant_requests: u32,
    /// Selects written (more than one when the lock had not heard the beacon yet).
    pub select_tries: u32,
    /// Timings of each step (of the attempt that unlocked; `total` covers both attempts
    /// after a fallback).
    pub timings: StepTimings,
    /// Set when the grant held was refused and this unlock used a fresh one.
    pub fallback: Option<GrantFallback>,
}

impl UnlockReport {
    /// The report as JSON (durations in milliseconds), for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        let t = &self.timings;
        json!({
            "outcome": "unlocked",
            "lock_id": self.lock_id.to_string(),
            "grant_id": self.grant_id.to_string(),
            "session_id": self.session_id.to_string(),
            "grant_reused": self.grant_reused,
            "grant_requests": self.grant_requests,
            "select_tries": self.select_tries,
            "fallback": self.fallback.as_ref().map(GrantFallback::to_json),
            "timings_ms": {
                "grant": ms(t.grant),
                "connect": ms(t.connect),
                "select": ms(t.select),
                "challenge": ms(t.challenge),
                "response": ms(t.response),
                "total": ms(t.total),
            },
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

impl fmt::Display for UnlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.timings;
        writeln!(
            f,
            "unlocked lock {} (grant {}, session {})",
            self.lock_id, self.grant_id, self.session_id
        )?;
        if let Some(fb) = &self.fallback {
            writeln!(
                f,
                "  the held grant {} was refused ({}); a fresh grant was used",
                fb.dropped_grant,
                fb.refused.name()
            )?;
        }
        let grant_note = if self.grant_reused {
            "held grant reused".to_owned()
        } else {
            format!("{} request(s)", self.grant_requests)
        };
        let rows: [(&str, Duration, String); 6] = [
            ("grant", t.grant, grant_note),
            ("advertise → connected", t.connect, String::new()),
            (
                "select",
                t.select,
                format!("{} write(s)", self.select_tries),
            ),
            ("challenge", t.challenge, String::new()),
            ("response → outcome", t.response, String::new()),
            ("total", t.total, String::new()),
        ];
        for (name, d, note) in rows {
            writeln!(f, "  {name:<22} {:>9.1} ms  {note}", ms(d))?;
        }
        Ok(())
    }
}
