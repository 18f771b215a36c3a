//! AES-128 encryption of one block with AES-NI, for the beacon CMAC on the lock's hot path.
//!
//! Why not the `aes` crate alone: on CPUs with VAES/AVX-512, `aes` 0.9's runtime dispatch
//! picks a wide backend that re-broadcasts the round keys on every call through a
//! non-inlined function; a single 16-byte block pays ~25 ns for work AES-NI does in ~2 ns.
//! This module keeps the round keys in registers' layout and encrypts with `aesenc`, chosen
//! once at key setup by CPUID (no `target-cpu` flags needed). AES-NI is constant time;
//! without it the caller falls back to the `aes` crate (bitsliced, also constant time),
//! never to table-based AES.
//!
//! The only `unsafe` in the crate: calling a `#[target_feature(enable = "aes")]` function,
//! which is sound because a [`RoundKeys`] value exists only if CPUID reported AES-NI.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128, _mm_cvtsi128_si64,
    _mm_set_epi64x, _mm_shuffle_epi32, _mm_slli_si128, _mm_unpackhi_epi64, _mm_xor_si128,
};
use zeroize::Zeroize;

cpufeatures::new!(aes_ni, "aes");

/// An expanded AES-128 key; constructible only where AES-NI is present.
#[derive(Clone)]
pub(crate) struct RoundKeys([__m128i; 11]);

impl RoundKeys {
    /// The expanded key, or `None` if this CPU has no AES-NI.
    pub(crate) fn new(key: &[u8; 16]) -> Option<Self> {
        if !aes_ni::get() {
            return None;
        }
        // SAFETY: CPUID reported AES-NI just above.
        Some(unsafe { expand(key) })
    }

    /// Encrypts one block.
    #[inline]
    pub(crate) fn encrypt(&self, block: &[u8; 16]) -> [u8; 16] {
        self.encrypt_word(u128::from_le_bytes(*block))
    }

    /// Encrypts the block whose bytes are `block.to_le_bytes()`.
    #[inline]
    pub(crate) fn encrypt_word(&self, block: u128) -> [u8; 16] {
        // SAFETY: `self` exists only if `new` saw AES-NI on this CPU.
        unsafe { encrypt(self, block) }
    }
}

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[target_feature(enable = "aes")]
#[inline]
fn load(v: u128) -> __m128i {
    _mm_set_epi64x((v >> 64) as i64, v as i64)
}

#[target_feature(enable = "aes")]
#[inline]
fn store(s: __m128i) -> [u8; 16] {
    let lo = _mm_cvtsi128_si64(s) as u64;
    let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(s, s)) as u64;
    ((u128::from(hi) << 64) | u128::from(lo)).to_le_bytes()
}

/// FIPS-197 key expansion with `aeskeygenassist`.
#[target_feature(enable = "aes")]
fn expand(key: &[u8; 16]) -> RoundKeys {
    let mut rk = [load(u128::from_le_bytes(*key)); 11];
    macro_rules! round {
        ($i:expr, $rcon:expr) => {{
            let prev = rk[$i - 1];
            let t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, $rcon), 0xff);
            let mut p = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
            p = _mm_xor_si128(p, _mm_slli_si128(p, 4));
            p = _mm_xor_si128(p, _mm_slli_si128(p, 4));
            rk[$i] = _mm_xor_si128(p, t);
        }};
    }
    round!(1, 0x01);
    round!(2, 0x02);
    round!(3, 0x04);
    round!(4, 0x08);
    round!(5, 0x10);
    round!(6, 0x20);
    round!(7, 0x40);
    round!(8, 0x80);
    round!(9, 0x1b);
    round!(10, 0x36);
    RoundKeys(rk)
}

#[target_feature(enable = "aes")]
fn encrypt(k: &RoundKeys, block: u128) -> [u8; 16] {
    let mut s = _mm_xor_si128(load(block), k.0[0]);
    for rk in &k.0[1..10] {
        s = _mm_aesenc_si128(s, *rk);
    }
    store(_mm_aesenclast_si128(s, k.0[10]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::Aes128Enc;
    use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

    #[test]
    fn fips197_appendix_c1() {
        let Some(k) = RoundKeys::new(&[
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
            0x0e, 0x0f,
        ]) else {
            return; // no AES-NI here: the fallback is tested by ShortCmac's tests
        };
        let pt = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        let ct = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        assert_eq!(k.encrypt(&pt), ct);
    }

    #[test]
    fn matches_the_aes_crate() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            let mut b = [0u8; 16];
            for c in b.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            b
        };
        for _ in 0..2_000 {
            let (key, pt) = (next(), next());
            let Some(k) = RoundKeys::new(&key) else {
                return;
            };
            let mut want = Array::from(pt);
            Aes128Enc::new(&Array::from(key)).encrypt_block(&mut want);
            assert_eq!(k.encrypt(&pt), <[u8; 16]>::from(want));
        }
    }
}
