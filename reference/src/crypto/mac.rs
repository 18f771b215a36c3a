//! The protocol's MACs (spec §4.3). Inputs are fixed-width fields behind a per-MAC ASCII
//! prefix, so no two different field tuples share an input.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::ShortCmac;
use crate::frame::NONCE_LEN;
use crate::{LockId, SessionId, Step};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    hmac_sha256(key, parts)
}

/// HMAC-SHA256 of the concatenation of `parts`: the primitive under every tag and MAC of
/// the protocol, exposed only so that external test vectors (Wycheproof) can exercise the
/// exact code path. Protocol code uses [`beacon_tag`], [`lock_mac`] and [`response_mac`].
#[doc(hidden)]
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot refuse one.
    let mut m = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn truncate<const N: usize>(full: [u8; 32]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&full[..N]);
    out
}

/// Constant-time equality of two byte strings (**LK-CRY-1**). Different lengths are unequal.
#[inline]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Constant-time equality of two 8-byte MACs, compared as one word (the beacon hot path:
/// the slice form spends a barrier per byte).
#[inline]
pub fn ct_eq_8(a: &[u8; 8], b: &[u8; 8]) -> bool {
    u64::from_ne_bytes(*a).ct_eq(&u64::from_ne_bytes(*b)).into()
}

/// `tag(step) = HMAC-SHA256(K_tag, "LK1-TAG" || u32(step))[0..8]`: the TOTP-style code that
/// doubles as the rotating lookup tag.
pub fn beacon_tag(k_tag: &[u8; 32], step: Step) -> [u8; 8] {
    truncate(hmac(k_tag, &[b"LK1-TAG", &step.0.to_be_bytes()]))
}

/// `beacon_mac = AES-CMAC(K_adv, beacon[0..15])[0..8]`.
#[inline]
pub fn beacon_mac(k_adv: &ShortCmac, mac_input: &[u8; 15]) -> [u8; 8] {
    let full = k_adv.mac_15(mac_input);
    let (first, _) = full.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    *first
}

/// The fields both challenge–response MACs bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacContext {
    /// The lock.
    pub lock_id: LockId,
    /// The session.
    pub session_id: SessionId,
    /// The lock's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The lock's clock in the challenge, Unix seconds.
    pub lock_time: u32,
    /// The step of the arming beacon.
    pub step: Step,
    /// The attempt of the arming beacon.
    pub attempt: u16,
}

/// `lock_mac = HMAC-SHA256(K_chal, "LK1-CHAL" || lock_id || session_id || nonce ||
/// u32(lock_time) || u32(step) || u16(attempt))[0..8]`.
pub fn lock_mac(k_chal: &[u8; 32], c: &MacContext) -> [u8; 8] {
    truncate(hmac(
        k_chal,
        &[
            b"LK1-CHAL",
            &c.lock_id.0,
            &c.session_id.0,
            &c.nonce,
            &c.lock_time.to_be_bytes(),
            &c.step.0.to_be_bytes(),
            &c.attempt.to_be_bytes(),
        ],
    ))
}

/// `resp_mac = HMAC-SHA256(K_resp, "LK1-RESP" || lock_id || session_id || nonce ||
/// u32(lock_time) || u32(phone_time) || u32(step) || u16(attempt))[0..12]`.
pub fn response_mac(k_resp: &[u8; 32], c: &MacContext, phone_time: u32) -> [u8; 12] {
    truncate(hmac(
        k_resp,
        &[
            b"LK1-RESP",
            &c.lock_id.0,
            &c.session_id.0,
            &c.nonce,
            &c.lock_time.to_be_bytes(),
            &phone_time.to_be_bytes(),
            &c.step.0.to_be_bytes(),
            &c.attempt.to_be_bytes(),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> alloc::vec::Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 4231 test case 2 through the same HMAC code path.
    #[test]
    fn rfc4231_case_2() {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        // A 4-byte key zero-padded to 32 bytes is the same HMAC key (both pad to the block).
        let out = hmac(&key, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            out.to_vec(),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn lk_cry_1_ct_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq_8(b"12345678", b"12345678"));
        for i in 0..8 {
            let mut other = *b"12345678";
            other[i] ^= 0x80;
            assert!(!ct_eq_8(b"12345678", &other), "byte {i}");
        }
    }
}
