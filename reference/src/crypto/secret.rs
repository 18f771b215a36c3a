//! Long-lived symmetric secrets: zeroized on drop, redacted in Debug.

use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 secret bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// A fresh random key.
            pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut b = [0u8; 32];
                rng.fill_bytes(&mut b);
                Self(b)
            }
            /// The secret bytes. Callers must not log them.
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret32!(
    /// A 32-byte session key `K_s`, one per grant.
    SessionKey
);
secret32!(
    /// A guest's 32-byte enrollment key `K_enr`, shared with the issuer at enrollment.
    EnrollmentKey
);
