//! AES-128-CMAC (RFC 4493) for messages of at most one block, which is all the beacon
//! needs (15 bytes). For such messages CMAC is one AES call on the padded block XOR a
//! precomputed subkey, so the lock's hot path does exactly one block encryption with a key
//! schedule expanded once per session. Verified against RFC 4493 and the `cmac` crate.

use aes::Aes128Enc;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use core::fmt;
use zeroize::Zeroize;

/// An AES-128-CMAC key prepared for messages of ≤ 16 bytes.
#[derive(Clone)]
pub struct ShortCmac {
    cipher: Aes128Enc,
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
        let cipher = Aes128Enc::new(&Array::from(*key));
        let mut l = Array::from([0u8; 16]);
        cipher.encrypt_block(&mut l);
        let mut l_bytes: [u8; 16] = l.into();
        let k1 = dbl(&l_bytes);
        let k2 = dbl(&k1);
        l_bytes.zeroize();
        Self { cipher, k1, k2 }
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
        let mut arr = Array::from(block);
        self.cipher.encrypt_block(&mut arr);
        Some(arr.into())
    }
}

impl Drop for ShortCmac {
    fn drop(&mut self) {
        // `Aes128Enc` zeroizes its own round keys (aes `zeroize` support); clear the subkeys.
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
    #[test]
    fn rfc4493_examples() {
        let key: [u8; 16] = h("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let c = ShortCmac::new(&key);
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

    #[test]
    fn matches_cmac_crate_for_every_short_length() {
        let key = [7u8; 16];
        let c = ShortCmac::new(&key);
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
