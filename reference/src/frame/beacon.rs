//! The beacon: 23 bytes of manufacturer data after the 2-byte company id (spec §5.1).
//!
//! ```text
//! 0      1      5                13       15               23
//! | ver  | step | tag (8)         | attempt | beacon_mac (8) |
//! ```

use super::{BufferTooSmall, arr, be_u16, be_u32, fixed, put};
use crate::{Reason, Step};

/// Length of the beacon payload (after the company id).
pub const BEACON_LEN: usize = 23;
/// Length of the prefix the beacon MAC covers.
pub const BEACON_MAC_INPUT_LEN: usize = 15;

/// A parsed beacon, borrowing the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeaconView<'a>(&'a [u8; BEACON_LEN]);

impl<'a> BeaconView<'a> {
    /// Parses a beacon payload (LK-FRM-1, LK-FRM-2).
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        fixed::<BEACON_LEN>(bytes, true).map(Self)
    }
    /// The time step the guest claims.
    #[inline]
    pub fn step(&self) -> Step {
        Step(be_u32(self.0, 1))
    }
    /// The rotating tag (TOTP-style code).
    #[inline]
    pub fn tag(&self) -> [u8; 8] {
        arr(self.0, 5)
    }
    /// The guest's attempt number.
    #[inline]
    pub fn attempt(&self) -> u16 {
        be_u16(self.0, 13)
    }
    /// The truncated AES-CMAC.
    #[inline]
    pub fn mac(&self) -> &'a [u8] {
        &self.0[15..23]
    }
    /// The truncated AES-CMAC as an array (for the one-word constant-time comparison).
    #[inline]
    pub fn mac_bytes(&self) -> [u8; 8] {
        arr(self.0, 15)
    }
    /// The bytes the MAC covers.
    #[inline]
    pub fn mac_input(&self) -> &'a [u8; BEACON_MAC_INPUT_LEN] {
        let (input, _) = self
            .0
            .split_first_chunk::<BEACON_MAC_INPUT_LEN>()
            .unwrap_or((&[0; BEACON_MAC_INPUT_LEN], &[]));
        input
    }
    /// The whole payload.
    pub fn as_bytes(&self) -> &'a [u8; BEACON_LEN] {
        self.0
    }
}

/// A beacon's fields, for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beacon {
    /// Time step.
    pub step: Step,
    /// Rotating tag for that step.
    pub tag: [u8; 8],
    /// Attempt number.
    pub attempt: u16,
    /// Truncated AES-CMAC over the first 15 bytes.
    pub mac: [u8; 8],
}

impl Beacon {
    /// The 15 bytes the MAC covers.
    pub fn mac_input(step: Step, tag: &[u8; 8], attempt: u16) -> [u8; BEACON_MAC_INPUT_LEN] {
        let mut b = [0u8; BEACON_MAC_INPUT_LEN];
        b[0] = crate::constants::VERSION;
        b[1..5].copy_from_slice(&step.0.to_be_bytes());
        b[5..13].copy_from_slice(tag);
        b[13..15].copy_from_slice(&attempt.to_be_bytes());
        b
    }

    /// The encoded payload.
    pub fn to_bytes(&self) -> [u8; BEACON_LEN] {
        let mut b = [0u8; BEACON_LEN];
        b[..BEACON_MAC_INPUT_LEN].copy_from_slice(&Self::mac_input(
            self.step,
            &self.tag,
            self.attempt,
        ));
        b[15..].copy_from_slice(&self.mac);
        b
    }

    /// Encodes into `out`, returning the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        put(out, &self.to_bytes())
    }
}

impl From<BeaconView<'_>> for Beacon {
    fn from(v: BeaconView<'_>) -> Self {
        Beacon {
            step: v.step(),
            tag: v.tag(),
            attempt: v.attempt(),
            mac: arr(v.0, 15),
        }
    }
}
