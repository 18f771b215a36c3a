//! Revocation (issuer → lock, spec §6.3), RSA-PSS signed.
//!
//! ```text
//! 0 ver | 1 type=0x02 | 2 lock_id(16) | 18 revocation_id(16) | 34 grant_id(16)
//! 50 session_id(8) | 58 issued_at(8) | 66 expires_at(8) | 74 sig_len(2) | 76 sig(m)
//! ```

use alloc::vec::Vec;

use super::MessageType;
use super::cursor::Reader;
use crate::constants::{RSA_MAX_BYTES, RSA_MIN_BYTES, VERSION};
use crate::{GrantId, LockId, Reason, RevocationId, SessionId};

/// Length of the signed prefix.
pub const REVOCATION_SIGNED_PREFIX_LEN: usize = 74;

/// A revocation's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Lock the revocation is for.
    pub lock_id: LockId,
    /// This revocation's identity.
    pub revocation_id: RevocationId,
    /// The revoked grant.
    pub grant_id: GrantId,
    /// The revoked grant's session.
    pub session_id: SessionId,
    /// When the issuer issued the revocation, Unix seconds.
    pub issued_at: u64,
    /// The revoked grant's not_after: the lock remembers the revocation until then.
    pub expires_at: u64,
}

impl Revocation {
    /// The signed prefix (bytes 0..74).
    pub fn signed_prefix(&self) -> [u8; REVOCATION_SIGNED_PREFIX_LEN] {
        let mut b = [0u8; REVOCATION_SIGNED_PREFIX_LEN];
        b[0] = VERSION;
        b[1] = MessageType::Revocation as u8;
        b[2..18].copy_from_slice(&self.lock_id.0);
        b[18..34].copy_from_slice(&self.revocation_id.0);
        b[34..50].copy_from_slice(&self.grant_id.0);
        b[50..58].copy_from_slice(&self.session_id.0);
        b[58..66].copy_from_slice(&self.issued_at.to_be_bytes());
        b[66..74].copy_from_slice(&self.expires_at.to_be_bytes());
        b
    }

    /// Writes the signed prefix into `out` (cleared first); then append the signature.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.signed_prefix());
    }
}

/// A parsed revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationView<'a> {
    /// The fields.
    pub fields: Revocation,
    /// The signed prefix.
    pub signed: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

impl<'a> RevocationView<'a> {
    /// Parses a revocation (LK-FRM-1..4).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        let mut r = Reader::new(bytes);
        r.header(MessageType::Revocation)?;
        let fields = Revocation {
            lock_id: LockId(r.array()?),
            revocation_id: RevocationId(r.array()?),
            grant_id: GrantId(r.array()?),
            session_id: SessionId(r.array()?),
            issued_at: r.u64()?,
            expires_at: r.u64()?,
        };
        let signature = r.len_prefixed(RSA_MIN_BYTES..=RSA_MAX_BYTES)?;
        r.finish()?;
        Ok(Self {
            fields,
            signed: &bytes[..REVOCATION_SIGNED_PREFIX_LEN],
            signature,
        })
    }
}
