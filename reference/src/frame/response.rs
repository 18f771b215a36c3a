//! Response: written by the guest (spec §5.3). 20 bytes, so it fits one ATT write at the
//! default MTU of 23. No version byte: the Select and challenge already fixed version 1.
//!
//! ```text
//! 0            4      8              20
//! | phone_time | step | resp_mac(12) |
//! ```

use super::{BufferTooSmall, arr, be_u32, fixed, put};
use crate::{Reason, Step};

/// Length of a response value.
pub const RESPONSE_LEN: usize = 20;

/// A parsed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseView<'a>(&'a [u8; RESPONSE_LEN]);

impl<'a> ResponseView<'a> {
    /// Parses a response (LK-FRM-1).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        fixed::<RESPONSE_LEN>(bytes, false).map(Self)
    }
    /// The phone's clock, Unix seconds.
    pub fn phone_time(&self) -> u32 {
        be_u32(self.0, 0)
    }
    /// The step of the arming beacon.
    pub fn step(&self) -> Step {
        Step(be_u32(self.0, 4))
    }
    /// The response MAC.
    pub fn mac(&self) -> &'a [u8] {
        &self.0[8..20]
    }
}

/// A response's fields, for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Phone clock, Unix seconds.
    pub phone_time: u32,
    /// Step of the arming beacon.
    pub step: Step,
    /// Truncated HMAC under K_resp.
    pub mac: [u8; 12],
}

impl Response {
    /// The encoded value.
    pub fn to_bytes(&self) -> [u8; RESPONSE_LEN] {
        let mut b = [0u8; RESPONSE_LEN];
        b[0..4].copy_from_slice(&self.phone_time.to_be_bytes());
        b[4..8].copy_from_slice(&self.step.0.to_be_bytes());
        b[8..20].copy_from_slice(&self.mac);
        b
    }
    /// Encodes into `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        put(out, &self.to_bytes())
    }
}

impl From<ResponseView<'_>> for Response {
    fn from(v: ResponseView<'_>) -> Self {
        Response {
            phone_time: v.phone_time(),
            step: v.step(),
            mac: arr(v.0, 8),
        }
    }
}
