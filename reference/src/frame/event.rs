//! LockEvent (lock → issuer, spec §6.6): unlocks, rejections and grant changes, signed with
//! the lock's RSA key.
//!
//! ```text
//! 0 ver | 1 type=0x05 | 2 lock_id(16) | 18 event_id(16) | 34 timestamp_ms(8) | 42 kind(1)
//! 43 reason(2) | 45 grant_id(16) | 61 session_id(8) | 69 sig_len(2) | 71 sig(m)
//! ```

use alloc::vec::Vec;

use super::MessageType;
use super::cursor::Reader;
use crate::constants::{RSA_MAX_BYTES, RSA_MIN_BYTES, VERSION};
use crate::{EventId, GrantId, LockId, Reason, SessionId};

/// Length of the signed prefix.
pub const LOCK_EVENT_FIXED_LEN: usize = 69;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// The lock unlocked.
    Unlock = 1,
    /// The lock refused an input (reason set).
    Rejection = 2,
    /// A grant was installed.
    GrantInstalled = 3,
    /// A revocation was applied.
    RevocationApplied = 4,
    /// A guest was locked out (LK-LCK-1); reason = the code of the failure that triggered it.
    Lockout = 5,
    /// A guest's lockout ended (LK-LCK-3).
    LockoutEnded = 6,
}

impl EventKind {
    /// The kind with this code (1..=6), if any.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Unlock,
            2 => Self::Rejection,
            3 => Self::GrantInstalled,
            4 => Self::RevocationApplied,
            5 => Self::Lockout,
            6 => Self::LockoutEnded,
            _ => return None,
        })
    }

    /// Stable snake_case name (logs, the harness).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unlock => "unlock",
            Self::Rejection => "rejection",
            Self::GrantInstalled => "grant_installed",
            Self::RevocationApplied => "revocation_applied",
            Self::Lockout => "lockout",
            Self::LockoutEnded => "lockout_ended",
        }
    }
}

/// A lock event's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockEvent {
    /// Reporting lock.
    pub lock_id: LockId,
    /// Unique event id (the issuer's replay cache keys on it).
    pub event_id: EventId,
    /// Lock clock, Unix milliseconds.
    pub timestamp_ms: u64,
    /// What happened.
    pub kind: EventKind,
    /// Reason code (0 when none).
    pub reason: u16,
    /// Grant concerned (zeros when none).
    pub grant_id: GrantId,
    /// Session concerned (zeros when none).
    pub session_id: SessionId,
}

impl LockEvent {
    /// The signed prefix (bytes 0..69).
    pub fn signed_prefix(&self) -> [u8; LOCK_EVENT_FIXED_LEN] {
        let mut b = [0u8; LOCK_EVENT_FIXED_LEN];
        b[0] = VERSION;
        b[1] = MessageType::LockEvent as u8;
        b[2..18].copy_from_slice(&self.lock_id.0);
        b[18..34].copy_from_slice(&self.event_id.0);
        b[34..42].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[42] = self.kind as u8;
        b[43..45].copy_from_slice(&self.reason.to_be_bytes());
        b[45..61].copy_from_slice(&self.grant_id.0);
        b[61..69].copy_from_slice(&self.session_id.0);
        b
    }

    /// Writes the signed prefix into `out` (cleared first); then append the signature.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.signed_prefix());
    }
}

/// A parsed lock event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockEventView<'a> {
    /// The fields.
    pub fields: LockEvent,
    /// The signed prefix.
    pub signed: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

impl<'a> LockEventView<'a> {
    /// Parses a lock event (LK-FRM-1..4).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        let mut r = Reader::new(bytes);
        r.header(MessageType::LockEvent)?;
        let lock_id = LockId(r.array()?);
        let event_id = EventId(r.array()?);
        let timestamp_ms = r.u64()?;
        let kind = EventKind::from_u8(r.u8()?).ok_or(Reason::FieldOutOfRange)?;
        let reason = r.u16()?;
        let grant_id = GrantId(r.array()?);
        let session_id = SessionId(r.array()?);
        let signature = r.len_prefixed(RSA_MIN_BYTES..=RSA_MAX_BYTES)?;
        r.finish()?;
        let fields = LockEvent {
            lock_id,
            event_id,
            timestamp_ms,
            kind,
            reason,
            grant_id,
            session_id,
        };
        Ok(Self {
            fields,
            signed: &bytes[..LOCK_EVENT_FIXED_LEN],
            signature,
        })
    }
}
