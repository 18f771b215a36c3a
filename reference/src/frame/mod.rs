//! Wire formats (spec §5–§6). Parsing is zero-copy into typed views over the input and
//! checks only structure (LK-FRM-1..4); the roles check meaning. Encoding writes into a
//! caller-provided buffer. No function here panics on any input.

mod beacon;
mod challenge;
mod cursor;
mod event;
mod guest_grant;
mod layout;
mod lock_grant;
mod lock_status;
mod request;
mod response;
mod revocation;
mod select;

pub use beacon::{BEACON_LEN, BEACON_MAC_INPUT_LEN, Beacon, BeaconView};
pub use challenge::{CHALLENGE_LEN, Challenge, ChallengeView, NONCE_LEN};
pub use event::{EventKind, LOCK_EVENT_FIXED_LEN, LockEvent, LockEventView};
pub use guest_grant::{GUEST_GRANT_AAD_LEN, GUEST_GRANT_LEN, GuestGrantHeader, GuestGrantView};
pub use layout::{FieldSpan, FrameKind, layout};
pub use lock_grant::{LOCK_GRANT_HEADER_LEN, LockGrantHeader, LockGrantView, append_signature};
pub use lock_status::{
    BATTERY_UNKNOWN, LOCK_STATUS_FIXED_LEN, LockStatus, LockStatusView, MAX_STATUS_COUNTERS,
    StatusCounter, StatusFlags,
};
pub use request::{GRANT_REQUEST_AAD_LEN, GRANT_REQUEST_LEN, GrantRequestHeader, GrantRequestView};
pub use response::{RESPONSE_LEN, Response, ResponseView};
pub use revocation::{REVOCATION_SIGNED_PREFIX_LEN, Revocation, RevocationView};
pub use select::{SELECT_LEN, Select, SelectView};

use crate::Reason;

/// Message type byte of the MQTT messages (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// Issuer → lock: a session grant.
    LockGrant = 0x01,
    /// Issuer → lock: a revocation.
    Revocation = 0x02,
    /// Issuer → guest: a sealed session grant.
    GuestGrant = 0x03,
    /// Guest → issuer: a sealed grant request.
    GrantRequest = 0x04,
    /// Lock → issuer: a signed event.
    LockEvent = 0x05,
    /// Lock → issuer: a signed status report.
    LockStatus = 0x06,
}

impl MessageType {
    /// The message type named by a payload's second byte, after checking its version
    /// (LK-FRM-1, LK-FRM-2, LK-FRM-3). Lets a subscriber on a shared topic dispatch.
    pub fn of(payload: &[u8]) -> Result<MessageType, Reason> {
        match payload {
            [] | [_] => Err(Reason::Truncated),
            [v, _, ..] if *v != crate::constants::VERSION => Err(Reason::UnsupportedVersion),
            [_, 0x01, ..] => Ok(MessageType::LockGrant),
            [_, 0x02, ..] => Ok(MessageType::Revocation),
            [_, 0x03, ..] => Ok(MessageType::GuestGrant),
            [_, 0x04, ..] => Ok(MessageType::GrantRequest),
            [_, 0x05, ..] => Ok(MessageType::LockEvent),
            [_, 0x06, ..] => Ok(MessageType::LockStatus),
            _ => Err(Reason::WrongType),
        }
    }
}

/// The caller's buffer is too small for the frame being encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the frame needs.
    pub needed: usize,
}

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "output buffer too small: frame needs {} bytes",
            self.needed
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BufferTooSmall {}

/// Checks a fixed-length frame's length (LK-FRM-1) and version byte (LK-FRM-2).
pub(crate) fn fixed<const N: usize>(bytes: &[u8], version_at_0: bool) -> Result<&[u8; N], Reason> {
    let arr: &[u8; N] = match bytes.len().cmp(&N) {
        core::cmp::Ordering::Less => return Err(Reason::Truncated),
        core::cmp::Ordering::Greater => return Err(Reason::TrailingBytes),
        core::cmp::Ordering::Equal => bytes.try_into().map_err(|_| Reason::Truncated)?,
    };
    if version_at_0 && arr[0] != crate::constants::VERSION {
        return Err(Reason::UnsupportedVersion);
    }
    Ok(arr)
}

/// Copies a fixed frame into the caller's buffer.
pub(crate) fn put(out: &mut [u8], frame: &[u8]) -> Result<usize, BufferTooSmall> {
    let dst = out.get_mut(..frame.len()).ok_or(BufferTooSmall {
        needed: frame.len(),
    })?;
    dst.copy_from_slice(frame);
    Ok(frame.len())
}

pub(crate) fn be_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_be_bytes(a)
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

pub(crate) fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

#[cfg(test)]
mod tests;
