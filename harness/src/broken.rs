//! Deliberately broken implementations: each is the reference with one check removed. They
//! prove the vectors catch real mistakes (a test asserts each fails at least one case).
//!
//! Most are built as an implementation without the check would behave: the reference runs,
//! and where the removed check would have refused, the broken one answers as if it had
//! passed. The RSSI one really feeds the lock a passing RSSI.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::iut::reference::ReferenceIut;
use crate::iut::{Iut, IutError};

/// One removed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// The lock ignores RSSI (LK-ADV-4).
    SkipRssi,
    /// The lock accepts steps two away (LK-ADV-2 with a window of ±2).
    StepWindow2,
    /// The lock lets a consumed beacon arm again (LK-ADV-7).
    AcceptReplay,
    /// The lock skips the beacon CMAC (LK-ADV-5).
    SkipBeaconMac,
    /// The lock accepts a second response to one challenge (LK-RSP-2).
    ReuseChallenge,
    /// The lock ignores the response budget (LK-RSP-3).
    IgnoreBudget,
    /// The lock ignores not_after (LK-GRT-5, LK-ADV-6).
    IgnoreNotAfter,
    /// The guest answers challenges without checking the lock MAC (LK-GST-2).
    SkipLockMac,
    /// The issuer grants a replayed request (LK-ISS-5).
    AcceptRequestReplay,
    /// The lock never locks a guest out (LK-LCK-1..3): no notice, nothing refused.
    NoLockout,
    /// The issuer records a replayed lock message again (LK-EVT-4).
    AcceptEventReplay,
    /// The lock ignores the grant's unlock limit (LK-LIM-2).
    IgnoreUnlockLimit,
}

impl Fault {
    /// The reason the check this fault removes would have given.
    fn refusal(self) -> &'static str {
        match self {
            Fault::NoLockout => "locked_out",
            Fault::IgnoreUnlockLimit => "unlock_limit_reached",
            _ => "",
        }
    }

    /// All faults.
    pub const ALL: &'static [Fault] = &[
        Fault::SkipRssi,
        Fault::StepWindow2,
        Fault::AcceptReplay,
        Fault::SkipBeaconMac,
        Fault::ReuseChallenge,
        Fault::IgnoreBudget,
        Fault::IgnoreNotAfter,
        Fault::SkipLockMac,
        Fault::AcceptRequestReplay,
        Fault::NoLockout,
        Fault::AcceptEventReplay,
        Fault::IgnoreUnlockLimit,
    ];
}

/// The reference with `fault`.
#[derive(Debug)]
pub struct BrokenIut {
    inner: ReferenceIut,
    fault: Fault,
    unlocked_on: HashMap<u64, Value>,
    last_grant: Option<Value>,
}

impl BrokenIut {
    /// The reference with one check removed.
    pub fn new(fault: Fault) -> Self {
        Self {
            inner: ReferenceIut::default(),
            fault,
            unlocked_on: HashMap::new(),
            last_grant: None,
        }
    }

    /// Answers one shim-protocol request.
    pub fn handle(&mut self, req: &Value) -> Value {
        let mut req = req.clone();
        let ty = req["input"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.fault == Fault::SkipRssi && ty == "beacon" {
            req["input"]["rssi"] = json!(0);
        }
        if req["op"] == json!("reset") {
            self.unlocked_on.clear();
            self.last_grant = None;
        }
        let mut reply = self.inner.handle(&req);
        let reason = reply["output"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let armed = json!({"outcome": "armed"});
        let replacement = match (self.fault, ty.as_str(), reason.as_str()) {
            (Fault::StepWindow2, "beacon", "stale_step" | "future_step") => Some(armed),
            (Fault::AcceptReplay, "beacon", "replay") => Some(armed),
            (Fault::SkipBeaconMac, "beacon", "bad_beacon_mac") => Some(armed),
            (Fault::IgnoreNotAfter, "beacon", "session_expired") => Some(armed),
            (Fault::IgnoreNotAfter, "grant", "grant_expired") => {
                Some(json!({"outcome": "installed"}))
            }
            (Fault::IgnoreNotAfter, "response", "session_expired") => {
                Some(json!({"outcome": "unlock"}))
            }
            (Fault::IgnoreBudget, "response", "late_response") => {
                Some(json!({"outcome": "unlock"}))
            }
            (Fault::ReuseChallenge, "response", "no_challenge") => req["input"]["conn"]
                .as_u64()
                .and_then(|c| self.unlocked_on.get(&c).cloned()),
            (Fault::SkipLockMac, "challenge", "bad_lock_mac") => {
                Some(json!({"outcome": "response", "bytes": "00".repeat(20)}))
            }
            (Fault::AcceptRequestReplay, "request", "request_replay") => self.last_grant.clone(),
            (Fault::NoLockout | Fault::IgnoreUnlockLimit, "beacon", r)
                if r == self.fault.refusal() =>
            {
                Some(armed)
            }
            (Fault::NoLockout | Fault::IgnoreUnlockLimit, "response", r)
                if r == self.fault.refusal() =>
            {
                Some(json!({"outcome": "unlock"}))
            }
            (Fault::AcceptEventReplay, "lock_message" | "event", "event_replay") => {
                Some(json!({"outcome": "event"}))
            }
            _ => None,
        };
        if let Some(out) = replacement {
            reply["output"] = out;
        }
        if self.fault == Fault::NoLockout
            && let Some(out) = reply["output"].as_object_mut()
        {
            out.remove("lockout");
            out.remove("lockouts_ended");
        }
        if reply["output"]["outcome"] == json!("unlock")
            && let Some(c) = req["input"]["conn"].as_u64()
        {
            self.unlocked_on.insert(c, reply["output"].clone());
        }
        if reply["output"]["outcome"] == json!("granted") {
            self.last_grant = Some(reply["output"].clone());
        }
        reply
    }
}

impl Iut for BrokenIut {
    fn name(&self) -> String {
        format!("latchkey-reference with fault {:?}", self.fault)
    }
    fn call(&mut self, request: &Value) -> Result<Value, IutError> {
        Ok(self.handle(request))
    }
}
