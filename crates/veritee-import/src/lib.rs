//! Secret import and cryptography as a service (flow 3 of DESIGN.md): the formats, with
//! no I/O and no state.
//!
//! A customer fetches two public keys, the TEE's (attested: its evidence binds it) and
//! the provider's (stated by the provider over the customer's nonce,
//! [`provider::SignedProviderStatement`]), checks both, and then:
//! 1. states what it imports in [`metadata::ImportMetadata`] and signs them;
//! 2. encrypts the key material to the TEE, then to the provider
//!    ([`envelope::seal`]), both layers bound to the metadata's digest; the TEE layer
//!    may instead be one of the standard formats customers' tools produce
//!    ([`formats`]: CKM_RSA_AES_KEY_WRAP or RFC 9180 HPKE, bound by its digest);
//! 3. sends metadata, signature and ciphertext; the host peels the provider layer,
//!    the enclave the TEE's, stores the key in the customer's partition and answers
//!    with a signed [`confirmation::Confirmation`];
//! 4. asks operations by key id inside an attested session; what the enclave
//!    encrypts under an imported key is a [`ciphertext`] envelope.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ciphertext;
pub mod confirmation;
pub mod envelope;
mod error;
pub mod formats;
pub mod keys;
pub mod metadata;
pub mod payload;
pub mod provider;
pub mod quorum;
pub mod revocation;
pub mod tee_rsa;
pub mod validator;

pub use error::ImportError;
