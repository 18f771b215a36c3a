//! The key schedule (**LK-KEY-1**, spec §4.2):
//! `PRK = HKDF-Extract("latchkey/v1", K_s)`, each subkey
//! `HKDF-Expand(PRK, u8(len(label)) || label || lock_id || session_id, L)`.

use core::fmt;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{SessionKey, ShortCmac};
use crate::{LockId, SessionId};

/// HKDF salt of v1.
pub const HKDF_SALT: &[u8] = b"latchkey/v1";
/// Label of `K_tag`.
pub const LABEL_TAG: &[u8] = b"lk1 beacon tag";
/// Label of `K_adv`.
pub const LABEL_ADV: &[u8] = b"lk1 beacon cmac";
/// Label of `K_chal`.
pub const LABEL_CHAL: &[u8] = b"lk1 challenge mac";
/// Label of `K_resp`.
pub const LABEL_RESP: &[u8] = b"lk1 response mac";

/// The per-session subkeys, derived from `K_s` and bound to lock and session.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// HMAC-SHA256 key of the rotating tag.
    pub tag: [u8; 32],
    /// AES-128-CMAC key of the beacon MAC (raw; see [`SessionKeys::beacon_cmac`]).
    pub adv: [u8; 16],
    /// HMAC-SHA256 key of the lock's challenge MAC.
    pub chal: [u8; 32],
    /// HMAC-SHA256 key of the guest's response MAC.
    pub resp: [u8; 32],
}

impl SessionKeys {
    /// The beacon CMAC key with its schedule expanded.
    pub fn beacon_cmac(&self) -> ShortCmac {
        ShortCmac::new(&self.adv)
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

fn expand(hk: &Hkdf<Sha256>, label: &[u8], lock: &LockId, session: &SessionId, out: &mut [u8]) {
    // Labels are short constants, so the length byte cannot overflow.
    let len = [label.len() as u8];
    let parts: [&[u8]; 4] = [&len, label, &lock.0, &session.0];
    // Output lengths are 16 or 32 bytes, far below HKDF's 255 × 32 limit, so this cannot fail.
    if hk.expand_multi_info(&parts, out).is_err() {
        out.fill(0);
    }
}

/// Derives the four subkeys of a session (**LK-KEY-1**).
pub fn derive_session_keys(k_s: &SessionKey, lock: &LockId, session: &SessionId) -> SessionKeys {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), k_s.expose());
    let mut keys = SessionKeys {
        tag: [0; 32],
        adv: [0; 16],
        chal: [0; 32],
        resp: [0; 32],
    };
    expand(&hk, LABEL_TAG, lock, session, &mut keys.tag);
    expand(&hk, LABEL_ADV, lock, session, &mut keys.adv);
    expand(&hk, LABEL_CHAL, lock, session, &mut keys.chal);
    expand(&hk, LABEL_RESP, lock, session, &mut keys.resp);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> alloc::vec::Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 5869 test case 1 through the same `hkdf` code path.
    #[test]
    fn rfc5869_case_1() {
        let ikm = h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = h("000102030405060708090a0b0c");
        let info = h("f0f1f2f3f4f5f6f7f8f9");
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            okm.to_vec(),
            h(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    #[test]
    fn lk_key_1_subkeys_are_distinct_and_bound_to_lock_and_session() {
        let k = SessionKey::from_bytes([1; 32]);
        let a = derive_session_keys(&k, &LockId([2; 16]), &SessionId([3; 8]));
        assert_ne!(a.tag, a.chal);
        assert_ne!(a.chal, a.resp);
        assert_ne!(a.tag[..16], a.adv);
        let other_lock = derive_session_keys(&k, &LockId([9; 16]), &SessionId([3; 8]));
        let other_session = derive_session_keys(&k, &LockId([2; 16]), &SessionId([4; 8]));
        assert_ne!(a.resp, other_lock.resp);
        assert_ne!(a.resp, other_session.resp);
    }

    #[test]
    fn lk_cry_3_debug_redacts() {
        let k = SessionKey::from_bytes([0xAB; 32]);
        let keys = derive_session_keys(&k, &LockId([2; 16]), &SessionId([3; 8]));
        let s = alloc::format!("{k:?} {keys:?}");
        assert!(!s.contains("ab") && !s.contains("171"), "{s}");
    }
}
