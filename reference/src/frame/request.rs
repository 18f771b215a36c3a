//! GrantRequest (guest → issuer, spec §6.5): sealed with AES-256-GCM under the guest's
//! enrollment key; the AAD covers bytes 0..58. 90 bytes.
//!
//! ```text
//! 0 ver | 1 type=0x04 | 2 guest_id(16) | 18 lock_id(16) | 34 request_id(16) | 50 timestamp(8)
//! 58 nonce(12) | 70 ciphertext of u32 requested_validity_s (4) + tag(16)
//! ```

use super::{BufferTooSmall, MessageType, arr, be_u64, fixed, put};
use crate::constants::VERSION;
use crate::{GuestId, LockId, Reason, RequestId};

/// Length of a GrantRequest.
pub const GRANT_REQUEST_LEN: usize = 90;
/// Length of the header the AAD covers.
pub const GRANT_REQUEST_AAD_LEN: usize = 58;

/// Cleartext fields of a GrantRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRequestHeader {
    /// Requesting guest.
    pub guest_id: GuestId,
    /// Lock wanted.
    pub lock_id: LockId,
    /// Fresh request id; the issuer refuses a repeat.
    pub request_id: RequestId,
    /// Guest clock, Unix seconds.
    pub timestamp: u64,
}

impl GrantRequestHeader {
    /// Bytes 0..58 (covered by the AAD).
    pub fn to_bytes(&self) -> [u8; GRANT_REQUEST_AAD_LEN] {
        let mut b = [0u8; GRANT_REQUEST_AAD_LEN];
        b[0] = VERSION;
        b[1] = MessageType::GrantRequest as u8;
        b[2..18].copy_from_slice(&self.guest_id.0);
        b[18..34].copy_from_slice(&self.lock_id.0);
        b[34..50].copy_from_slice(&self.request_id.0);
        b[50..58].copy_from_slice(&self.timestamp.to_be_bytes());
        b
    }

    /// Assembles the whole message.
    pub fn encode(
        &self,
        nonce: &[u8; 12],
        sealed: &[u8; 20],
        out: &mut [u8],
    ) -> Result<usize, BufferTooSmall> {
        let mut b = [0u8; GRANT_REQUEST_LEN];
        b[..58].copy_from_slice(&self.to_bytes());
        b[58..70].copy_from_slice(nonce);
        b[70..].copy_from_slice(sealed);
        put(out, &b)
    }
}

/// A parsed GrantRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRequestView<'a> {
    /// Cleartext fields.
    pub header: GrantRequestHeader,
    /// Bytes 0..58.
    pub header_bytes: &'a [u8],
    /// GCM nonce.
    pub nonce: [u8; 12],
    /// Ciphertext and tag.
    pub sealed: &'a [u8],
}

impl<'a> GrantRequestView<'a> {
    /// Parses a GrantRequest (LK-FRM-1..3).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        let b = fixed::<GRANT_REQUEST_LEN>(bytes, true)?;
        if b[1] != MessageType::GrantRequest as u8 {
            return Err(Reason::WrongType);
        }
        Ok(Self {
            header: GrantRequestHeader {
                guest_id: GuestId(arr(b, 2)),
                lock_id: LockId(arr(b, 18)),
                request_id: RequestId(arr(b, 34)),
                timestamp: be_u64(b, 50),
            },
            header_bytes: &b[..GRANT_REQUEST_AAD_LEN],
            nonce: arr(b, 58),
            sealed: &b[70..],
        })
    }
}
