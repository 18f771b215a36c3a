//! Select: the guest names the authentication its beacon armed (spec §5.3). 11 bytes.
//!
//! ```text
//! 0     1          9         11
//! | ver | tag (8)  | attempt |
//! ```

use super::{BufferTooSmall, arr, be_u16, fixed, put};
use crate::Reason;

/// Length of a Select value.
pub const SELECT_LEN: usize = 11;

/// A parsed Select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectView<'a>(&'a [u8; SELECT_LEN]);

impl<'a> SelectView<'a> {
    /// Parses a Select (LK-FRM-1, LK-FRM-2).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        fixed::<SELECT_LEN>(bytes, true).map(Self)
    }
    /// The tag of the arming beacon.
    pub fn tag(&self) -> [u8; 8] {
        arr(self.0, 1)
    }
    /// The attempt of the arming beacon.
    pub fn attempt(&self) -> u16 {
        be_u16(self.0, 9)
    }
}

/// A Select's fields, for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select {
    /// Tag of the arming beacon.
    pub tag: [u8; 8],
    /// Attempt of the arming beacon.
    pub attempt: u16,
}

impl Select {
    /// The encoded value.
    pub fn to_bytes(&self) -> [u8; SELECT_LEN] {
        let mut b = [0u8; SELECT_LEN];
        b[0] = crate::constants::VERSION;
        b[1..9].copy_from_slice(&self.tag);
        b[9..11].copy_from_slice(&self.attempt.to_be_bytes());
        b
    }
    /// Encodes into `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        put(out, &self.to_bytes())
    }
}

impl From<SelectView<'_>> for Select {
    fn from(v: SelectView<'_>) -> Self {
        Select {
            tag: v.tag(),
            attempt: v.attempt(),
        }
    }
}
