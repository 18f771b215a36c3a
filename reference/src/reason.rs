//! Why an input was refused. One variant per reason; each names the requirement(s) of
//! `spec/latchkey.md` that produce it, a stable numeric code and a stable snake_case name
//! (used in vectors, events, logs and the harness).

use core::fmt;

/// A requirement identifier of the spec, e.g. `"LK-ADV-4"`.
pub type Requirement = &'static str;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, [$($req:literal),+]; )*) => {
        /// A rejection reason (spec §8). Codes and names are stable across versions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in code order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// Stable numeric code (used in lock events).
            pub const fn code(self) -> u16 {
                match self { $(Reason::$variant => $code,)* }
            }

            /// Stable snake_case name (used in vectors and logs).
            pub const fn name(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            /// The requirement(s) whose check produces this reason.
            pub const fn requirements(self) -> &'static [Requirement] {
                match self { $(Reason::$variant => &[$($req),+],)* }
            }

            /// The reason with this code, if any.
            pub fn from_code(code: u16) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)* _ => None }
            }

            /// The reason with this name, if any.
            pub fn from_name(name: &str) -> Option<Reason> {
                match name { $($name => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

reasons! {
    /// The frame is shorter than its layout.
    Truncated = 1, "truncated", ["LK-FRM-1"];
    /// The frame is longer than its layout.
    TrailingBytes = 2, "trailing_bytes", ["LK-FRM-1"];
    /// The version byte is not 0x01.
    UnsupportedVersion = 3, "unsupported_version", ["LK-FRM-2"];
    /// The type byte does not name the expected message.
    WrongType = 4, "wrong_type", ["LK-FRM-3"];
    /// A field holds a value outside its allowed range.
    FieldOutOfRange = 5, "field_out_of_range", ["LK-FRM-4"];
    /// Manufacturer data of another company: street noise, ignored silently.
    ForeignCompany = 16, "foreign_company", ["LK-ADV-1"];
    /// The beacon's step is older than the lock's step − 1.
    StaleStep = 17, "stale_step", ["LK-ADV-2"];
    /// The beacon's step is newer than the lock's step + 1.
    FutureStep = 18, "future_step", ["LK-ADV-2"];
    /// No live session has this tag for this step.
    UnknownTag = 19, "unknown_tag", ["LK-ADV-3"];
    /// The beacon was heard below the RSSI threshold.
    RssiTooLow = 20, "rssi_too_low", ["LK-ADV-4"];
    /// The beacon's AES-CMAC does not verify.
    BadBeaconMac = 21, "bad_beacon_mac", ["LK-ADV-5"];
    /// The session's grant is not valid yet.
    SessionNotYetValid = 22, "session_not_yet_valid", ["LK-ADV-6"];
    /// The session's grant has expired.
    SessionExpired = 23, "session_expired", ["LK-ADV-6", "LK-RSP-7"];
    /// This beacon already armed an authentication that was consumed.
    Replay = 24, "replay", ["LK-ADV-7"];
    /// The lock holds as many pending authentications as it may.
    PendingCapReached = 25, "pending_cap_reached", ["LK-ADV-8"];
    /// The replay cache is full of entries still inside the step window.
    ReplayCacheFull = 26, "replay_cache_full", ["LK-ADV-9"];
    /// The session's guest is locked out after too many failed handshakes.
    LockedOut = 27, "locked_out", ["LK-LCK-2"];
    /// No pending authentication matches the Select.
    NoPendingAuth = 32, "no_pending_auth", ["LK-SEL-1"];
    /// The Select came after the connection window.
    ConnectionWindowExpired = 33, "connection_window_expired", ["LK-SEL-2"];
    /// The lock holds as many outstanding challenges as it may.
    ChallengeCapReached = 34, "challenge_cap_reached", ["LK-SEL-3"];
    /// No challenge is outstanding on this connection.
    NoChallenge = 40, "no_challenge", ["LK-RSP-1", "LK-RSP-2"];
    /// The response came after the response budget.
    LateResponse = 41, "late_response", ["LK-RSP-3"];
    /// The response's step is not the step of the beacon that armed it.
    StepMismatch = 42, "step_mismatch", ["LK-RSP-4"];
    /// The peer's clock differs from ours by more than the allowed skew.
    ClockSkew = 43, "clock_skew", ["LK-RSP-5", "LK-GST-3"];
    /// The response MAC does not verify.
    BadResponseMac = 44, "bad_response_mac", ["LK-RSP-6"];
    /// The session was revoked.
    SessionRevoked = 45, "session_revoked", ["LK-RSP-7", "LK-REV-3", "LK-REV-5"];
    /// The session used every unlock its grant allows (or the policy allows no more).
    UnlockLimitReached = 46, "unlock_limit_reached", ["LK-LIM-2", "LK-ISS-12"];
    /// The message names another lock.
    WrongLock = 48, "wrong_lock", ["LK-GRT-1", "LK-REV-1", "LK-EVT-2"];
    /// The issuer's signature does not verify.
    BadSignature = 49, "bad_signature", ["LK-GRT-2", "LK-REV-2"];
    /// The wrapped session key does not decrypt (RSA-OAEP).
    UnwrapFailed = 50, "unwrap_failed", ["LK-GRT-3"];
    /// not_before ≥ not_after, or the validity is longer than allowed.
    InvalidValidity = 51, "invalid_validity", ["LK-GRT-4", "LK-GGR-4", "LK-ISS-9"];
    /// The grant's not_after has passed.
    GrantExpired = 52, "grant_expired", ["LK-GRT-5", "LK-GGR-4", "LK-GST-4"];
    /// The grant claims to be issued in the future beyond the allowed skew.
    IssuedInFuture = 53, "issued_in_future", ["LK-GRT-6"];
    /// The grant was revoked (or issued at or before the revocation floor).
    GrantRevoked = 54, "grant_revoked", ["LK-GRT-7", "LK-REV-4"];
    /// Another installed grant uses this session id.
    SessionIdCollision = 55, "session_id_collision", ["LK-GRT-8"];
    /// The lock holds as many sessions as it may.
    SessionCapReached = 56, "session_cap_reached", ["LK-GRT-9"];
    /// The guest grant names another guest.
    WrongGuest = 64, "wrong_guest", ["LK-GGR-1"];
    /// The guest grant answers no outstanding request of ours (or names another lock).
    UnknownRequest = 65, "unknown_request", ["LK-GGR-2"];
    /// The AES-256-GCM seal does not open.
    BadSeal = 66, "bad_seal", ["LK-GGR-3", "LK-ISS-3"];
    /// The challenge names another session.
    SessionMismatch = 67, "session_mismatch", ["LK-GST-1"];
    /// The lock's MAC in the challenge does not verify.
    BadLockMac = 68, "bad_lock_mac", ["LK-GST-2"];
    /// The guest is not in the state this input needs.
    NotUnlocking = 69, "not_unlocking", ["LK-GST-5"];
    /// The guest holds no grant for that lock.
    NoGrant = 70, "no_grant", ["LK-GST-5"];
    /// The request's guest id differs from the topic's.
    GuestMismatch = 80, "guest_mismatch", ["LK-ISS-1"];
    /// The guest is not enrolled.
    UnknownGuest = 81, "unknown_guest", ["LK-ISS-2"];
    /// The guest's enrollment was revoked.
    GuestRevoked = 82, "guest_revoked", ["LK-ISS-2"];
    /// The request's timestamp is older than the request window.
    StaleRequest = 83, "stale_request", ["LK-ISS-4"];
    /// The request's timestamp is newer than the request window.
    FutureRequest = 84, "future_request", ["LK-ISS-4"];
    /// This request id was already seen.
    RequestReplay = 85, "request_replay", ["LK-ISS-5"];
    /// The lock is not registered with the issuer.
    UnknownLock = 86, "unknown_lock", ["LK-ISS-6"];
    /// The guest may not use that lock.
    NotAuthorized = 87, "not_authorized", ["LK-ISS-7", "LK-ISS-12"];
    /// The request cache is full of live entries.
    RequestCacheFull = 88, "request_cache_full", ["LK-ISS-8"];
    /// The issuer tracks as many live grants as it may.
    GrantCapReached = 89, "grant_cap_reached", ["LK-ISS-10"];
    /// The guest or the lock has used up its grant requests for now.
    RateLimited = 90, "rate_limited", ["LK-ISS-11"];
    /// The access policy does not allow the guest at the lock at this time (validity).
    OutsideAccessWindow = 91, "outside_access_window", ["LK-ISS-12"];
    /// The access policy's schedule does not allow the guest at the lock at this time.
    OutsideSchedule = 92, "outside_schedule", ["LK-ISS-12"];
    /// A lock event's (or status's) signature does not verify.
    BadEventSignature = 96, "bad_event_signature", ["LK-EVT-1"];
    /// A lock message older than the event window.
    StaleEvent = 97, "stale_event", ["LK-EVT-3"];
    /// A lock message newer than the event window.
    FutureEvent = 98, "future_event", ["LK-EVT-3"];
    /// A lock message id already seen, or at or before the lock's floor.
    EventReplay = 99, "event_replay", ["LK-EVT-4"];
}

/// The ATT application error a lock returns for each reason a GATT write can produce
/// (spec §5.8). One table serves both directions.
const ATT_CODES: &[(Reason, u8)] = &[
    (Reason::NoPendingAuth, 0x80),
    (Reason::ConnectionWindowExpired, 0x81),
    (Reason::ChallengeCapReached, 0x82),
    (Reason::NoChallenge, 0x83),
    (Reason::LateResponse, 0x84),
    (Reason::StepMismatch, 0x85),
    (Reason::ClockSkew, 0x86),
    (Reason::BadResponseMac, 0x87),
    (Reason::SessionExpired, 0x88),
    (Reason::SessionRevoked, 0x89),
    (Reason::SessionNotYetValid, 0x8B),
    (Reason::LockedOut, 0x8C),
    (Reason::UnlockLimitReached, 0x8D),
];

/// Any malformed GATT value (LK-FRM-*).
const ATT_MALFORMED: u8 = 0x8A;
/// A reason that cannot occur on GATT.
const ATT_OTHER: u8 = 0x8F;

impl Reason {
    /// The ATT application error code a lock returns for this reason on a GATT write
    /// (spec §5.8). Reasons that cannot occur on GATT map to 0x8F.
    pub fn att_code(self) -> u8 {
        if self.requirements()[0].starts_with("LK-FRM-") {
            return ATT_MALFORMED;
        }
        ATT_CODES
            .iter()
            .find(|(r, _)| *r == self)
            .map_or(ATT_OTHER, |(_, c)| *c)
    }

    /// The reason a guest reports for an ATT application error code from the lock.
    /// Malformed (0x8A) and unknown codes have no single reason and yield `None`.
    pub fn from_att_code(code: u8) -> Option<Reason> {
        ATT_CODES.iter().find(|(_, c)| *c == code).map(|(r, _)| *r)
    }

    /// Whether this is street noise a lock should not log or audit (foreign adverts).
    pub const fn is_noise(self) -> bool {
        matches!(self, Reason::ForeignCompany)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.requirements()[0])
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Reason {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        for (i, a) in Reason::ALL.iter().enumerate() {
            assert_eq!(Reason::from_code(a.code()), Some(*a));
            assert_eq!(Reason::from_name(a.name()), Some(*a));
            for b in &Reason::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn att_codes_round_trip_for_gatt_reasons() {
        for r in Reason::ALL {
            let c = r.att_code();
            assert!((0x80..=0x9F).contains(&c));
            if let Some(back) = Reason::from_att_code(c) {
                assert_eq!(back, *r);
            }
        }
    }
}
