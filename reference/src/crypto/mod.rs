//! Cryptography of the protocol (spec §4), RustCrypto by default: HKDF-SHA256 key schedule,
//! HMAC-SHA256 tags and MACs, AES-128-CMAC beacon MAC, AES-256-GCM seals, RSA-OAEP and
//! RSA-PSS. The RSA operations go through a pluggable [`provider`]: RustCrypto
//! ([`rustcrypto`], the default, `no_std`) or aws-lc-rs (`aws_lc`, feature `aws-lc-rs`). Every MAC or tag comparison is constant time (**LK-CRY-1**); every secret
//! type zeroizes on drop (**LK-CRY-2**) and prints no key material in `Debug`
//! (**LK-CRY-3**).

#[cfg(target_arch = "x86_64")]
mod aes_ni;
#[cfg(feature = "aws-lc-rs")]
pub mod aws_lc;
mod cmac_short;
mod kdf;
mod mac;
pub mod provider;
pub mod rsa;
pub mod rustcrypto;
mod seal;
mod secret;

pub use cmac_short::ShortCmac;
pub use kdf::{SessionKeys, derive_session_keys};
#[doc(hidden)]
pub use mac::hmac_sha256;
pub use mac::{MacContext, beacon_mac, beacon_tag, ct_eq, ct_eq_8, lock_mac, response_mac};
pub use seal::{open_guest_grant, open_request, seal_guest_grant, seal_request};
pub use secret::{EnrollmentKey, SessionKey};
