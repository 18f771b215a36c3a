//! Identifiers. All are opaque random bytes; their text form is lowercase hex.

use core::fmt;

/// The text form of an identifier was not lowercase hex of the right length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParseError {
    /// Which identifier type was being parsed.
    pub kind: &'static str,
    /// Expected number of hex digits.
    pub expected_hex_digits: usize,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be {} hex digits",
            self.kind, self.expected_hex_digits
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdParseError {}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        // Lowercase only: one identity has one text form, so topic ACLs written by exact
        // string cannot be sidestepped with another spelling.
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

pub(crate) fn parse_hex<const N: usize>(
    s: &str,
    kind: &'static str,
) -> Result<[u8; N], IdParseError> {
    let err = IdParseError {
        kind,
        expected_hex_digits: N * 2,
    };
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return Err(err);
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = hex_val(b[2 * i]).ok_or(err)?;
        let lo = hex_val(b[2 * i + 1]).ok_or(err)?;
        *o = hi << 4 | lo;
    }
    Ok(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes on the wire.
            pub const LEN: usize = $len;
            /// The all-zero identifier, used on the wire for "none".
            pub const ZERO: Self = Self([0; $len]);

            /// A fresh random identifier.
            pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut b = [0u8; $len];
                rng.fill_bytes(&mut b);
                Self(b)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl core::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, IdParseError> {
                parse_hex::<$len>(s, stringify!($name)).map(Self)
            }
        }
    };
}

id_type!(
    /// A lock's identity (16 bytes), bound into every subkey and MAC.
    LockId, 16
);
id_type!(
    /// A guest's (phone's) identity (16 bytes), assigned at enrollment.
    GuestId, 16
);
id_type!(
    /// One grant issued by the issuer (16 bytes).
    GrantId, 16
);
id_type!(
    /// A session (8 bytes), unique per lock; carried in the challenge.
    SessionId, 8
);
id_type!(
    /// A guest's grant request (16 bytes); the issuer refuses a repeat.
    RequestId, 16
);
id_type!(
    /// A lock event (16 bytes).
    EventId, 16
);
id_type!(
    /// A revocation message (16 bytes).
    RevocationId, 16
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_round_trip() {
        let id = SessionId([0, 1, 0xab, 0xff, 2, 3, 4, 5]);
        let s = id.to_string();
        assert_eq!(s, "0001abff02030405");
        assert_eq!(s.parse::<SessionId>(), Ok(id));
        assert!("0001abff0203040".parse::<SessionId>().is_err());
        assert!("0001abff020304zz".parse::<SessionId>().is_err());
        assert!("0001ABFF02030405".parse::<SessionId>().is_err());
    }
}
