//! LockGrant (issuer → lock, spec §6.3): the session key RSA-OAEP-wrapped to the lock, with
//! an RSA-PSS signature over every byte before the signature.
//!
//! ```text
//! 0 ver | 1 type=0x01 | 2 lock_id(16) | 18 grant_id(16) | 34 session_id(8) | 42 guest_id(16)
//! 58 issued_at(8) | 66 not_before(8) | 74 not_after(8) | 82 max_unlocks(2)
//! 84 wrapped_len(2) | 86 wrapped(n) | 86+n sig_len(2) | 88+n sig(m)
//! ```

use alloc::vec::Vec;

use super::MessageType;
use super::cursor::Reader;
use crate::constants::{RSA_MAX_BYTES, RSA_MIN_BYTES, VERSION};
use crate::{GrantId, GuestId, LockId, Reason, SessionId};

/// Length of the header the OAEP label covers (bytes 0..84).
pub const LOCK_GRANT_HEADER_LEN: usize = 84;

/// The fixed fields of a LockGrant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockGrantHeader {
    /// Lock the grant is for.
    pub lock_id: LockId,
    /// Grant identity.
    pub grant_id: GrantId,
    /// Session identity (unique per lock).
    pub session_id: SessionId,
    /// Guest the session belongs to.
    pub guest_id: GuestId,
    /// When the issuer issued it, Unix seconds.
    pub issued_at: u64,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity (exclusive), Unix seconds.
    pub not_after: u64,
    /// How many times the session may unlock (LK-LIM-1); 0 = no limit.
    pub max_unlocks: u16,
}

impl LockGrantHeader {
    /// Bytes 0..84: also the RSA-OAEP label, binding the wrapped key to this header.
    pub fn to_bytes(&self) -> [u8; LOCK_GRANT_HEADER_LEN] {
        let mut b = [0u8; LOCK_GRANT_HEADER_LEN];
        b[0] = VERSION;
        b[1] = MessageType::LockGrant as u8;
        b[2..18].copy_from_slice(&self.lock_id.0);
        b[18..34].copy_from_slice(&self.grant_id.0);
        b[34..42].copy_from_slice(&self.session_id.0);
        b[42..58].copy_from_slice(&self.guest_id.0);
        b[58..66].copy_from_slice(&self.issued_at.to_be_bytes());
        b[66..74].copy_from_slice(&self.not_before.to_be_bytes());
        b[74..82].copy_from_slice(&self.not_after.to_be_bytes());
        b[82..84].copy_from_slice(&self.max_unlocks.to_be_bytes());
        b
    }

    /// Writes the signed part (header, wrapped key) into `out`, which is cleared first.
    /// Append the signature with [`append_signature`](super::lock_grant::append_signature).
    pub fn encode_unsigned(&self, wrapped: &[u8], out: &mut Vec<u8>) -> Result<(), Reason> {
        let n = u16::try_from(wrapped.len()).map_err(|_| Reason::FieldOutOfRange)?;
        if !(RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&wrapped.len()) {
            return Err(Reason::FieldOutOfRange);
        }
        out.clear();
        out.extend_from_slice(&self.to_bytes());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(wrapped);
        Ok(())
    }
}

/// Appends `sig_len || sig` to a signed message's prefix (LockGrant, Revocation, LockEvent).
pub fn append_signature(out: &mut Vec<u8>, sig: &[u8]) -> Result<(), Reason> {
    if !(RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&sig.len()) {
        return Err(Reason::FieldOutOfRange);
    }
    out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    out.extend_from_slice(sig);
    Ok(())
}

/// A parsed LockGrant, borrowing the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockGrantView<'a> {
    /// The fixed fields.
    pub header: LockGrantHeader,
    /// Bytes 0..84 (the OAEP label).
    pub header_bytes: &'a [u8],
    /// The RSA-OAEP ciphertext of the session key.
    pub wrapped: &'a [u8],
    /// Every byte before `sig_len`: what the signature covers (after the DS prefix).
    pub signed: &'a [u8],
    /// The RSA-PSS signature.
    pub signature: &'a [u8],
}

impl<'a> LockGrantView<'a> {
    /// Parses a LockGrant (LK-FRM-1..4).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        let mut r = Reader::new(bytes);
        r.header(MessageType::LockGrant)?;
        let header = LockGrantHeader {
            lock_id: LockId(r.array()?),
            grant_id: GrantId(r.array()?),
            session_id: SessionId(r.array()?),
            guest_id: GuestId(r.array()?),
            issued_at: r.u64()?,
            not_before: r.u64()?,
            not_after: r.u64()?,
            max_unlocks: r.u16()?,
        };
        let wrapped = r.len_prefixed(RSA_MIN_BYTES..=RSA_MAX_BYTES)?;
        let signed_len = r.pos();
        let signature = r.len_prefixed(RSA_MIN_BYTES..=RSA_MAX_BYTES)?;
        r.finish()?;
        Ok(Self {
            header,
            header_bytes: &bytes[..LOCK_GRANT_HEADER_LEN],
            wrapped,
            signed: &bytes[..signed_len],
            signature,
        })
    }
}
