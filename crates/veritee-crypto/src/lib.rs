//! The cryptographic layer of veritee.
//!
//! Every primitive comes from a maintained library: aws-lc-rs for AES-GCM, AES key
//! wrap, ECDSA/RSA/Ed25519, HKDF, digests and randomness; the `hpke` crate for RFC 9180
//! hybrid public-key encryption. This crate only gives them the shapes veritee uses and
//! wraps every secret in a type that zeroizes on drop and never prints.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aead;
pub mod digest;
mod error;
pub mod hkdf;
pub mod hpke;
pub mod keywrap;
pub mod kx;
pub mod mac;
pub mod memo;
pub mod rand;
pub mod rsa;
pub mod secret;
pub mod sign;

pub use error::CryptoError;
pub use secret::{Confidential, SecretBytes, ct_eq};
