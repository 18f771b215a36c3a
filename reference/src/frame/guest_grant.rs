//! GuestGrant (issuer → guest, spec §6.4): the session key sealed with AES-256-GCM under the
//! guest's enrollment key; the AAD covers every byte before the nonce. 158 bytes.
//!
//! ```text
//! 0 ver | 1 type=0x03 | 2 guest_id(16) | 18 lock_id(16) | 34 request_id(16) | 50 grant_id(16)
//! 66 session_id(8) | 74 issued_at(8) | 82 not_before(8) | 90 not_after(8) | 98 nonce(12)
//! 110 ciphertext(32) + tag(16)
//! ```

use super::{BufferTooSmall, MessageType, arr, be_u64, fixed, put};
use crate::constants::VERSION;
use crate::{GrantId, GuestId, LockId, Reason, RequestId, SessionId};

/// Length of a GuestGrant.
pub const GUEST_GRANT_LEN: usize = 158;
/// Length of the header the AAD covers.
pub const GUEST_GRANT_AAD_LEN: usize = 98;

/// The cleartext fields of a GuestGrant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestGrantHeader {
    /// Guest the grant is for.
    pub guest_id: GuestId,
    /// Lock the session opens.
    pub lock_id: LockId,
    /// The request this answers.
    pub request_id: RequestId,
    /// Grant identity.
    pub grant_id: GrantId,
    /// Session identity.
    pub session_id: SessionId,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity (exclusive), Unix seconds.
    pub not_after: u64,
}

impl GuestGrantHeader {
    /// Bytes 0..98 (covered by the AAD).
    pub fn to_bytes(&self) -> [u8; GUEST_GRANT_AAD_LEN] {
        let mut b = [0u8; GUEST_GRANT_AAD_LEN];
        b[0] = VERSION;
        b[1] = MessageType::GuestGrant as u8;
        b[2..18].copy_from_slice(&self.guest_id.0);
        b[18..34].copy_from_slice(&self.lock_id.0);
        b[34..50].copy_from_slice(&self.request_id.0);
        b[50..66].copy_from_slice(&self.grant_id.0);
        b[66..74].copy_from_slice(&self.session_id.0);
        b[74..82].copy_from_slice(&self.issued_at.to_be_bytes());
        b[82..90].copy_from_slice(&self.not_before.to_be_bytes());
        b[90..98].copy_from_slice(&self.not_after.to_be_bytes());
        b
    }

    /// Assembles the whole message from the header, nonce and sealed key.
    pub fn encode(
        &self,
        nonce: &[u8; 12],
        sealed: &[u8; 48],
        out: &mut [u8],
    ) -> Result<usize, BufferTooSmall> {
        let mut b = [0u8; GUEST_GRANT_LEN];
        b[..98].copy_from_slice(&self.to_bytes());
        b[98..110].copy_from_slice(nonce);
        b[110..].copy_from_slice(sealed);
        put(out, &b)
    }
}

/// A parsed GuestGrant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestGrantView<'a> {
    /// Cleartext fields.
    pub header: GuestGrantHeader,
    /// Bytes 0..98.
    pub header_bytes: &'a [u8],
    /// GCM nonce.
    pub nonce: [u8; 12],
    /// Ciphertext and tag.
    pub sealed: &'a [u8],
}

impl<'a> GuestGrantView<'a> {
    /// Parses a GuestGrant (LK-FRM-1..3).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        let b = fixed::<GUEST_GRANT_LEN>(bytes, true)?;
        if b[1] != MessageType::GuestGrant as u8 {
            return Err(Reason::WrongType);
        }
        Ok(Self {
            header: GuestGrantHeader {
                guest_id: GuestId(arr(b, 2)),
                lock_id: LockId(arr(b, 18)),
                request_id: RequestId(arr(b, 34)),
                grant_id: GrantId(arr(b, 50)),
                session_id: SessionId(arr(b, 66)),
                issued_at: be_u64(b, 74),
                not_before: be_u64(b, 82),
                not_after: be_u64(b, 90),
            },
            header_bytes: &b[..GUEST_GRANT_AAD_LEN],
            nonce: arr(b, 98),
            sealed: &b[110..],
        })
    }
}
