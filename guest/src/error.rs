//! Why an unlock did not happen.

use std::fmt;
use std::time::Duration;

use latchkey::{GrantId, LockId, Reason};
use latchkey_transport::mqtt::MqttError;
use latchkey_transport::radio::{AttError, RadioError};

use crate::report::GrantFallback;
use crate::rng::RngError;

/// A step of an unlock, as named in errors, logs and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnlockStep {
    /// Getting a grant from the issuer over MQTT.
    Grant,
    /// Advertising the beacon.
    Advertise,
    /// Finding and connecting to the lock.
    Connect,
    /// Writing the Select.
    Select,
    /// Reading the Challenge.
    Challenge,
    /// Writing the Response.
    Response,
}

impl fmt::Display for UnlockStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Grant => "grant request",
            Self::Advertise => "advertising",
            Self::Connect => "connection",
            Self::Select => "Select write",
            Self::Challenge => "Challenge read",
            Self::Response => "Response write",
        })
    }
}

/// Why a guest operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuestError {
    /// The options are unusable (message says which one and why).
    #[error("invalid guest configuration: {0}")]
    InvalidConfig(String),
    /// The CSPRNG could not be seeded.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The MQTT client refused a request (bad TLS files, topic, payload size, shut down).
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
    /// No CONNACK from the broker in time.
    #[error(
        "cannot reach the MQTT broker {broker} within {} s (is it running, and are the URL, \
         TLS files and credentials right?)",
        waited.as_secs_f32()
    )]
    BrokerUnreachable {
        /// The broker, without password.
        broker: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The MQTT client stopped delivering messages.
    #[error("the MQTT client stopped")]
    MqttClosed,
    /// The enrollment bundle does not list this lock.
    #[error(
        "lock {lock} is not in this guest's enrollment; ask the issuer for a bundle that \
         lists it"
    )]
    LockNotEnrolled {
        /// The lock asked for.
        lock: LockId,
    },
    /// No GuestGrant arrived in time.
    #[error(
        "no grant for lock {lock} arrived within {} s ({requests} request(s) sent{}); the \
         issuer may be down, or it refused the request (it does not answer refusals: check \
         its log)",
        waited.as_secs_f32(),
        if *connected { "" } else { ", and the broker connection is down" }
    )]
    GrantTimeout {
        /// The lock.
        lock: LockId,
        /// How long we waited.
        waited: Duration,
        /// How many GrantRequests were published.
        requests: u32,
        /// Whether the broker connection was up at the end.
        connected: bool,
    },
    /// The held grant cannot be used (the core said `no_grant` or `grant_expired`).
    #[error("the grant for lock {lock} cannot be used: {reason}")]
    GrantUnusable {
        /// The lock.
        lock: LockId,
        /// The core's reason.
        reason: Reason,
    },
    /// No lock advertising the Latchkey service was found.
    #[error(
        "no lock advertising the Latchkey service was found within {} s (out of range, or \
         its Bluetooth is off)",
        waited.as_secs_f32()
    )]
    NoLockFound {
        /// How long we looked.
        waited: Duration,
    },
    /// The radio failed during a step.
    #[error("radio error during the {step}: {source}")]
    Radio {
        /// The step.
        step: UnlockStep,
        /// The radio's error.
        #[source]
        source: RadioError,
    },
    /// The lock refused, with a Latchkey reason (from its ATT application error code).
    #[error("the lock refused the {step}: {reason}{}", hint(*reason))]
    Refused {
        /// The step the lock refused.
        step: UnlockStep,
        /// The lock's reason.
        reason: Reason,
    },
    /// The lock refused with an ATT code that names no single reason (`0x8A` malformed
    /// frame, `0x8F`, or a code outside the Latchkey table).
    #[error("the lock refused the {step} with {att}, which names no Latchkey reason")]
    RefusedUnspecified {
        /// The step the lock refused.
        step: UnlockStep,
        /// The ATT error.
        att: AttError,
    },
    /// The lock's Challenge did not verify: it is not the lock this grant is for, or the
    /// clocks disagree. No Response was written.
    #[error("the lock's challenge was rejected: {reason}; no response was sent")]
    ChallengeRejected {
        /// Why (LK-GST-1..5 or a frame reason).
        reason: Reason,
    },
    /// The Response was written but its result was lost: the lock may have unlocked.
    #[error(
        "the Response was sent but its result was lost ({source}); the lock may or may not have unlocked"
    )]
    OutcomeUnknown {
        /// The radio's error.
        #[source]
        source: RadioError,
    },
    /// The BLE attempt had no outcome in time.
    #[error(
        "the unlock attempt had no outcome within {} s (stuck at the {step})",
        waited.as_secs_f32()
    )]
    AttemptTimeout {
        /// The step in progress.
        step: UnlockStep,
        /// The attempt's limit.
        waited: Duration,
    },
    /// The caller cancelled the unlock.
    #[error("the unlock was cancelled")]
    Cancelled,
    /// The lock did not accept the grant held for it (its beacons armed nothing, or the lock
    /// said the grant is dead), so the grant was dropped and a fresh one requested within
    /// the same unlock; that second try failed too, with `source`.
    #[error(
        "the lock did not accept the grant held for lock {lock} ({}), so it was dropped and a \
         fresh grant requested: {source}{}",
        refused.name(),
        fallback_hint(source)
    )]
    FreshGrantFailed {
        /// The lock.
        lock: LockId,
        /// The grant that was dropped.
        dropped: GrantId,
        /// What the lock answered with it.
        refused: Reason,
        /// Why the try with a fresh grant failed.
        #[source]
        source: Box<GuestError>,
    },
}

impl GuestError {
    /// The protocol reason behind this error, if there is one (the lock's refusal, the
    /// guest's rejection of the challenge, or an unusable grant).
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Refused { reason, .. }
            | Self::ChallengeRejected { reason }
            | Self::GrantUnusable { reason, .. } => Some(*reason),
            Self::FreshGrantFailed { source, .. } => source.reason(),
            _ => None,
        }
    }

    /// The held grant that was dropped for a fresh one, if this unlock fell back to one.
    pub fn fallback(&self) -> Option<GrantFallback> {
        match self {
            Self::FreshGrantFailed {
                dropped, refused, ..
            } => Some(GrantFallback {
                dropped_grant: *dropped,
                refused: *refused,
            }),
            _ => None,
        }
    }
}

/// Why the fresh grant may not have come: the issuer answers no refusal, and the refusal
/// that matters here is that this guest may no longer have access.
fn fallback_hint(source: &GuestError) -> &'static str {
    match source {
        GuestError::GrantTimeout { .. } => {
            ". The issuer answers nothing to a guest that was revoked, whose access to this \
             lock ended or is outside its schedule, or that asks too often: ask its operator"
        }
        _ => "",
    }
}

/// What a lock's refusal usually means to the person holding the phone.
fn hint(reason: Reason) -> &'static str {
    match reason {
        Reason::NoPendingAuth => {
            " — the lock holds no beacon of ours: too far away (signal below its RSSI \
             threshold), it has not received this grant yet, or it refuses the grant's beacons \
             (revoked, unlocks used up, or too many failed attempts: locked out for a while)"
        }
        Reason::ConnectionWindowExpired => " — the Select came too long after the beacon",
        Reason::ChallengeCapReached => " — the lock is busy with other phones; try again",
        Reason::NoChallenge => " — the lock has no challenge for this connection",
        Reason::LateResponse => " — the Response came after the lock's time budget",
        Reason::StepMismatch => " — the Response named another time step than the beacon",
        Reason::ClockSkew => " — the phone's and the lock's clocks differ too much",
        Reason::BadResponseMac => " — the lock does not hold the same session key",
        Reason::SessionExpired => " — the grant expired at the lock",
        Reason::SessionRevoked => " — the grant was revoked",
        Reason::LockedOut => {
            " — too many failed attempts: the lock refuses this phone for a while; try later"
        }
        Reason::UnlockLimitReached => " — the grant's unlocks are used up; ask for a new one",
        _ => "",
    }
}
