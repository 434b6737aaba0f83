//! Randomness from the operating system, through aws-lc-rs.

use crate::{Confidential, CryptoError};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Fills `out` with random bytes.
pub fn fill(out: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| CryptoError::Random)
}

/// Returns `N` random bytes (for nonces, identifiers and other public values).
pub fn array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// Returns `N` random secret bytes.
pub fn secret_array<const N: usize>() -> Result<Confidential<[u8; N]>, CryptoError> {
    let mut out = Confidential::new([0u8; N]);
    fill(out.expose_mut())?;
    Ok(out)
}
