//! Randomness from the operating system, through aws-lc-rs.
//!
//! aws-lc is built without its CPU jitter entropy source (`AWS_LC_SYS_NO_JITTER_ENTROPY`
//! in `.cargo/config.toml`). With it, the first use of randomness in a process cost
//! about 20 ms of CPU (aws-lc-rs#1140, aws-lc#3180): three quarters of a one-shot CLI
//! command. Without it aws-lc still mixes two sources: its DRBG is seeded from the
//! operating system (getrandom(2)) and takes extra entropy from the CPU (RDRAND/RNDR),
//! or from the operating system again where the CPU has none.
//!
//! Which sources that leaves, and who can influence them:
//! - A client, on Linux, macOS or Windows: the kernel's CSPRNG, which is what ring,
//!   rustls and OpenSSL use. Linux seeds it from RDSEED/RDRAND, interrupt timings and
//!   (since 5.4) its own jitter entropy at boot.
//! - An enclave. SGX under Gramine or Occlum: getrandom is served inside the enclave
//!   from RDRAND, out of the host's reach. SEV-SNP and TDX guests: the guest kernel's
//!   CRNG, which Linux requires to be seeded from RDRAND in a confidential guest
//!   (6.9, "x86/coco: Require seeding RNG with RDRAND on CoCo systems"). Nitro: the
//!   NSM's hardware RNG feeds the enclave kernel. The simulated TEE: the host's kernel,
//!   as it is a process on the host.
//! - What was given up: a source independent of the kernel. In a TEE that source was
//!   the weakest one: jitter entropy times the CPU, and the host schedules that CPU
//!   and, outside TDX, can offset and scale its time stamp counter.

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
