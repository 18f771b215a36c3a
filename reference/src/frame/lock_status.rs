//! LockStatus (lock → issuer, spec §6.10): the lock's health and its rejection counters since
//! the previous status, signed with the lock's RSA key.
//!
//! ```text
//! 0 ver | 1 type=0x06 | 2 lock_id(16) | 18 status_id(16) | 34 timestamp_ms(8) | 42 uptime_s(4)
//! 46 battery_pct(1) | 47 flags(1) | 48 sessions(4) | 52 revocations(4) | 56 lockouts(2)
//! 58 n(1) | 59 counters(6n: reason u16, count u32) | 59+6n sig_len(2) | 61+6n sig(m)
//! ```

use alloc::vec::Vec;

use super::MessageType;
use super::cursor::Reader;
use crate::constants::{RSA_MAX_BYTES, RSA_MIN_BYTES, VERSION};
use crate::{EventId, LockId, Reason};

/// Length of the fixed fields, up to and including the counter count `n`.
pub const LOCK_STATUS_FIXED_LEN: usize = 59;
/// Most counters one LockStatus carries.
pub const MAX_STATUS_COUNTERS: usize = 32;
/// The `battery_pct` value of a lock without a battery, or that does not know its charge.
pub const BATTERY_UNKNOWN: u8 = 255;

/// The flag bits of a LockStatus. Bits other than the three defined are refused on parse
/// (LK-FRM-4), so a v1 reader never silently ignores a meaning it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StatusFlags(u8);

impl StatusFlags {
    /// No flag set.
    pub const NONE: Self = Self(0);
    /// bit 0: the lock runs on mains power.
    pub const MAINS_POWER: Self = Self(0x01);
    /// bit 1: the lock's clock is not synchronised to a time source.
    pub const CLOCK_UNSYNCHRONISED: Self = Self(0x02);
    /// bit 2: the lock's tamper sensor has fired.
    pub const TAMPER: Self = Self(0x04);
    /// Every defined bit.
    pub const ALL: Self = Self(0x07);

    /// The flags of this byte, if it sets no undefined bit.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        if bits & !Self::ALL.0 == 0 {
            Some(Self(bits))
        } else {
            None
        }
    }

    /// The flags of this byte with undefined bits cleared.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// The wire byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for StatusFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// One rejection counter: how often the lock refused an input with this reason code since its
/// previous LockStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCounter {
    /// The reason code (§8.13; unknown codes are carried as they are).
    pub reason: u16,
    /// How many rejections.
    pub count: u32,
}

/// A LockStatus's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStatus {
    /// Reporting lock.
    pub lock_id: LockId,
    /// Unique id; it shares the issuer's per-lock replay cache with event ids (LK-EVT-4).
    pub status_id: EventId,
    /// Lock clock, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Seconds since the lock started.
    pub uptime_s: u32,
    /// Battery charge in percent, `None` for no battery or unknown (255 on the wire).
    pub battery_pct: Option<u8>,
    /// Flags.
    pub flags: StatusFlags,
    /// Installed sessions.
    pub sessions: u32,
    /// Remembered revocations.
    pub revocations: u32,
    /// Active lockouts.
    pub lockouts: u16,
    /// Rejection counters, reason codes strictly increasing, at most [`MAX_STATUS_COUNTERS`].
    pub counters: Vec<StatusCounter>,
}

impl LockStatus {
    /// Writes the signed prefix (every byte before `sig_len`) into `out` (cleared first);
    /// then append the signature. Refuses (`field_out_of_range`) what a parser would refuse:
    /// a battery above 100, more than 32 counters, or counters not strictly increasing.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) -> Result<(), Reason> {
        let battery = match self.battery_pct {
            None => BATTERY_UNKNOWN,
            Some(p) if p <= 100 => p,
            Some(_) => return Err(Reason::FieldOutOfRange),
        };
        let n = u8::try_from(self.counters.len()).map_err(|_| Reason::FieldOutOfRange)?;
        if usize::from(n) > MAX_STATUS_COUNTERS
            || self.counters.windows(2).any(|w| w[0].reason >= w[1].reason)
        {
            return Err(Reason::FieldOutOfRange);
        }
        out.clear();
        out.reserve(LOCK_STATUS_FIXED_LEN + 6 * self.counters.len() + 2 + RSA_MAX_BYTES);
        out.push(VERSION);
        out.push(MessageType::LockStatus as u8);
        out.extend_from_slice(&self.lock_id.0);
        out.extend_from_slice(&self.status_id.0);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.uptime_s.to_be_bytes());
        out.push(battery);
        out.push(self.flags.bits());
        out.extend_from_slice(&self.sessions.to_be_bytes());
        out.extend_from_slice(&self.revocations.to_be_bytes());
        out.extend_from_slice(&self.lockouts.to_be_bytes());
        out.push(n);
        for c in &self.counters {
            out.extend_from_slice(&c.reason.to_be_bytes());
            out.extend_from_slice(&c.count.to_be_bytes());
        }
        Ok(())
    }
}

/// A parsed LockStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStatusView<'a> {
    /// The fields.
    pub fields: LockStatus,
    /// The signed prefix (bytes 0..59+6n).
    pub signed: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

impl<'a> LockStatusView<'a> {
    /// Parses a LockStatus (LK-FRM-1..4), field by field.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Reason> {
        let mut r = Reader::new(bytes);
        r.header(MessageType::LockStatus)?;
        let lock_id = LockId(r.array()?);
        let status_id = EventId(r.array()?);
        let timestamp_ms = r.u64()?;
        let uptime_s = r.u32()?;
        let battery_pct = match r.u8()? {
            BATTERY_UNKNOWN => None,
            p if p <= 100 => Some(p),
            _ => return Err(Reason::FieldOutOfRange),
        };
        let flags = StatusFlags::from_bits(r.u8()?).ok_or(Reason::FieldOutOfRange)?;
        let sessions = r.u32()?;
        let revocations = r.u32()?;
        let lockouts = r.u16()?;
        let n = usize::from(r.u8()?);
        if n > MAX_STATUS_COUNTERS {
            return Err(Reason::FieldOutOfRange);
        }
        let mut counters: Vec<StatusCounter> = Vec::with_capacity(n);
        for _ in 0..n {
            let c = StatusCounter {
                reason: r.u16()?,
                count: r.u32()?,
            };
            // Strictly increasing: one counter per reason, in one canonical order.
            if counters.last().is_some_and(|p| p.reason >= c.reason) {
                return Err(Reason::FieldOutOfRange);
            }
            counters.push(c);
        }
        let signed_len = r.pos();
        let signature = r.len_prefixed(RSA_MIN_BYTES..=RSA_MAX_BYTES)?;
        r.finish()?;
        Ok(Self {
            fields: LockStatus {
                lock_id,
                status_id,
                timestamp_ms,
                uptime_s,
                battery_pct,
                flags,
                sessions,
                revocations,
                lockouts,
                counters,
            },
            signed: &bytes[..signed_len],
            signature,
        })
    }
}
