//! AES-128-CMAC (RFC 4493) for messages of at most one block, which is all the beacon
//! needs (15 bytes). For such messages CMAC is one AES call on the padded block XOR a
//! precomputed subkey, so the lock's hot path does exactly one block encryption with a key
//! schedule expanded once per session. Verified against RFC 4493, the `cmac` crate and
//! Wycheproof, with either block cipher backend.

use aes::Aes128Enc;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use core::fmt;
use zeroize::Zeroize;

#[cfg(target_arch = "x86_64")]
use super::aes_ni::RoundKeys;

/// The block cipher, chosen once per key (see `aes_ni` for why there are two).
#[derive(Clone)]
enum Cipher {
    #[cfg(target_arch = "x86_64")]
    AesNi(RoundKeys),
    /// The `aes` crate: AES-NI/VAES, ARMv8 or constant-time bitsliced software.
    Portable(Aes128Enc),
}

impl Cipher {
    fn new(key: &[u8; 16]) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = RoundKeys::new(key) {
            return Cipher::AesNi(k);
        }
        Self::portable(key)
    }

    fn portable(key: &[u8; 16]) -> Self {
        Cipher::Portable(Aes128Enc::new(&Array::from(*key)))
    }

    /// Encrypts the block whose bytes are `block.to_le_bytes()`, kept in registers.
    #[inline]
    fn encrypt_word(&self, block: u128) -> [u8; 16] {
        match self {
            #[cfg(target_arch = "x86_64")]
            Cipher::AesNi(k) => k.encrypt_word(block),
            Cipher::Portable(_) => self.encrypt(&block.to_le_bytes()),
        }
    }

    #[inline]
    fn encrypt(&self, block: &[u8; 16]) -> [u8; 16] {
        match self {
            #[cfg(target_arch = "x86_64")]
            Cipher::AesNi(k) => k.encrypt(block),
            Cipher::Portable(c) => {
                let mut b = Array::from(*block);
                c.encrypt_block(&mut b);
                b.into()
            }
        }
    }
}

/// An AES-128-CMAC key prepared for messages of ≤ 16 bytes.
#[derive(Clone)]
pub struct ShortCmac {
    cipher: Cipher,
    k1: [u8; 16],
    k2: [u8; 16],
}

fn dbl(b: &[u8; 16]) -> [u8; 16] {
    let v = u128::from_be_bytes(*b);
    // Constant time: the conditional XOR is a mask, not a branch.
    let mask = 0u128.wrapping_sub(v >> 127);
    ((v << 1) ^ (mask & 0x87)).to_be_bytes()
}

impl ShortCmac {
    /// Expands the key schedule and the two CMAC subkeys.
    pub fn new(key: &[u8; 16]) -> Self {
        Self::with_cipher(Cipher::new(key))
    }

    /// The same MAC through the `aes` crate whatever the CPU, so tests cover both backends.
    #[doc(hidden)]
    pub fn new_portable(key: &[u8; 16]) -> Self {
        Self::with_cipher(Cipher::portable(key))
    }

    /// Which block cipher backend this key uses: `"aes-ni"` or `"aes-crate"`.
    pub fn backend(&self) -> &'static str {
        match self.cipher {
            #[cfg(target_arch = "x86_64")]
            Cipher::AesNi(_) => "aes-ni",
            Cipher::Portable(_) => "aes-crate",
        }
    }

    fn with_cipher(cipher: Cipher) -> Self {
        let mut l = cipher.encrypt(&[0u8; 16]);
        let k1 = dbl(&l);
        let k2 = dbl(&k1);
        l.zeroize();
        Self { cipher, k1, k2 }
    }

    /// The full 16-byte CMAC of a 15-byte message: the beacon's MAC input.
    ///
    /// Same result as [`mac`](Self::mac), built for the lock's hot path: the padded block
    /// is assembled in registers from two loads of `msg`, never written to the stack, so
    /// no store-to-load forwarding stall precedes the AES rounds (it cost ~40% of a CMAC).
    #[inline]
    pub fn mac_15(&self, msg: &[u8; 15]) -> [u8; 16] {
        let (head, _) = msg.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let (_, tail) = msg.split_last_chunk::<8>().unwrap_or((&[], &[0; 8]));
        // Little-endian words of `msg || 0x80`: bytes 0..8, then bytes 8..15 and the pad.
        let lo = u64::from_le_bytes(*head);
        let hi = (u64::from_le_bytes(*tail) >> 8) | (0x80 << 56);
        let block = (u128::from(hi) << 64 | u128::from(lo)) ^ u128::from_le_bytes(self.k2);
        self.cipher.encrypt_word(block)
    }

    /// The full 16-byte CMAC of `msg`, or `None` if `msg` is longer than one block.
    #[inline]
    pub fn mac(&self, msg: &[u8]) -> Option<[u8; 16]> {
        let mut block = [0u8; 16];
        let sub = match msg.len() {
            16 => {
                block.copy_from_slice(msg);
                &self.k1
            }
            n if n < 16 => {
                block[..n].copy_from_slice(msg);
                block[n] = 0x80;
                &self.k2
            }
            _ => return None,
        };
        for (b, k) in block.iter_mut().zip(sub) {
            *b ^= k;
        }
        let out = self.cipher.encrypt(&block);
        block.zeroize();
        Some(out)
    }
}

impl Drop for ShortCmac {
    fn drop(&mut self) {
        // Both ciphers zeroize their own round keys (aes `zeroize` support, `RoundKeys`'
        // Drop); clear the subkeys.
        self.k1.zeroize();
        self.k2.zeroize();
    }
}

impl fmt::Debug for ShortCmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShortCmac(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::Aes128;
    use cmac::{Cmac, Mac};

    fn h(s: &str) -> alloc::vec::Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 4493 §4, examples 1 and 2 (the ones of at most one block).
    fn both(key: &[u8; 16]) -> [ShortCmac; 2] {
        [ShortCmac::new(key), ShortCmac::new_portable(key)]
    }

    #[test]
    fn the_fast_backend_is_chosen_where_the_cpu_has_aes_ni() {
        let c = ShortCmac::new(&[1; 16]);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("aes") {
            assert_eq!(c.backend(), "aes-ni");
            return;
        }
        assert_eq!(c.backend(), "aes-crate");
        assert_eq!(ShortCmac::new_portable(&[1; 16]).backend(), "aes-crate");
    }

    #[test]
    fn rfc4493_examples() {
        let key: [u8; 16] = h("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        for c in both(&key) {
            assert_eq!(
                c.mac(&[]).unwrap().to_vec(),
                h("bb1d6929e95937287fa37d129b756746")
            );
            assert_eq!(
                c.mac(&h("6bc1bee22e409f96e93d7e117393172a"))
                    .unwrap()
                    .to_vec(),
                h("070a16b46b4d4144f79bdd9dd04a287c")
            );
        }
    }

    #[test]
    fn lk_cry_3_debug_prints_no_key_material() {
        for c in both(&[0x42; 16]) {
            assert_eq!(alloc::format!("{c:?}"), "ShortCmac(<redacted>)");
        }
    }

    #[test]
    fn mac_15_is_mac_of_15_bytes() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..500 {
            let mut key = [0u8; 16];
            let mut msg = [0u8; 15];
            for b in key.iter_mut().chain(msg.iter_mut()) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            for c in both(&key) {
                assert_eq!(Some(c.mac_15(&msg)), c.mac(&msg));
            }
        }
    }

    #[test]
    fn matches_cmac_crate_for_every_short_length() {
        let key = [7u8; 16];
        for c in both(&key) {
            for n in 0..=16 {
                let msg: alloc::vec::Vec<u8> = (0..n as u8).collect();
                let mut m = <Cmac<Aes128> as KeyInit>::new_from_slice(&key).unwrap();
                m.update(&msg);
                let want: [u8; 16] = m.finalize().into_bytes().into();
                assert_eq!(c.mac(&msg), Some(want), "length {n}");
            }
            assert_eq!(c.mac(&[0u8; 17]), None);
        }
    }
}
