//! Challenge: read by the guest after Select (spec §5.3). 33 bytes.
//!
//! ```text
//! 0     1           13          17              25           33
//! | ver | nonce(12) | lock_time | session_id(8) | lock_mac(8) |
//! ```

use super::{BufferTooSmall, arr, be_u32, fixed, put};
use crate::{Reason, SessionId};

/// Length of a challenge value.
pub const CHALLENGE_LEN: usize = 33;
/// Length of the challenge nonce.
pub const NONCE_LEN: usize = 12;

/// A parsed challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeView<'a>(&'a [u8; CHALLENGE_LEN]);

impl<'a> ChallengeView<'a> {
    /// Parses a challenge (LK-FRM-1, LK-FRM-2).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        fixed::<CHALLENGE_LEN>(bytes, true).map(Self)
    }
    /// The lock's nonce.
    pub fn nonce(&self) -> [u8; NONCE_LEN] {
        arr(self.0, 1)
    }
    /// The lock's clock, Unix seconds.
    pub fn lock_time(&self) -> u32 {
        be_u32(self.0, 13)
    }
    /// The session the lock matched.
    pub fn session_id(&self) -> SessionId {
        SessionId(arr(self.0, 17))
    }
    /// The lock's MAC.
    pub fn lock_mac(&self) -> &'a [u8] {
        &self.0[25..33]
    }
}

/// A challenge's fields, for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// Fresh nonce from the lock's CSPRNG (LK-CHL-1).
    pub nonce: [u8; NONCE_LEN],
    /// Lock clock, Unix seconds.
    pub lock_time: u32,
    /// The matched session.
    pub session_id: SessionId,
    /// Truncated HMAC under K_chal.
    pub lock_mac: [u8; 8],
}

impl Challenge {
    /// The encoded value.
    pub fn to_bytes(&self) -> [u8; CHALLENGE_LEN] {
        let mut b = [0u8; CHALLENGE_LEN];
        b[0] = crate::constants::VERSION;
        b[1..13].copy_from_slice(&self.nonce);
        b[13..17].copy_from_slice(&self.lock_time.to_be_bytes());
        b[17..25].copy_from_slice(&self.session_id.0);
        b[25..33].copy_from_slice(&self.lock_mac);
        b
    }
    /// Encodes into `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        put(out, &self.to_bytes())
    }
}

impl From<ChallengeView<'_>> for Challenge {
    fn from(v: ChallengeView<'_>) -> Self {
        Challenge {
            nonce: v.nonce(),
            lock_time: v.lock_time(),
            session_id: v.session_id(),
            lock_mac: arr(v.0, 25),
        }
    }
}
