//! The daemon's CSPRNG: ChaCha20 seeded once from the OS (docs/daemons.md, "Randomness").

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroize;

/// The OS refused to hand out random bytes.
#[derive(Debug, thiserror::Error)]
#[error("cannot seed the CSPRNG from the operating system: {0}")]
pub struct RngError(String);

/// A ChaCha20 CSPRNG seeded with 32 bytes from the OS.
pub fn os_seeded() -> Result<ChaCha20Rng, RngError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| RngError(e.to_string()))?;
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    Ok(rng)
}
