//! The daemon's CSPRNG: ChaCha20 seeded once with 32 bytes from the operating system.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use crate::error::IssuerdError;

/// The CSPRNG type every issuer operation draws from.
pub type Csprng = ChaCha20Rng;

/// A CSPRNG seeded from the operating system (`getrandom`).
pub fn os_rng() -> Result<Csprng, IssuerdError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(|e| IssuerdError::Entropy(e.to_string()))?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

/// A deterministic CSPRNG for tests, from a fixed seed.
pub fn seeded_rng(seed: [u8; 32]) -> Csprng {
    ChaCha20Rng::from_seed(seed)
}
