//! TEE-bound workloads (flow 2 of DESIGN.md), with no I/O.
//!
//! An owner builds a workload: WebAssembly modules, configuration and secrets
//! (`CD1`..`CDn`, e.g. a disk passphrase), each a *component*. [`build`] encrypts them
//! under keys derived from a random [`WorkloadSeed`], with the hash of every component
//! inside the encryption, and an HMAC over the encrypted payload. The seed goes to the
//! owner's security module (SM), which seals it to one target's storage key: an
//! [`Authorization`]. The orchestrator puts authorizations in the workload's slot area,
//! which the HMAC deliberately does not cover, so one file carries slots for many
//! targets and is re-targeted without being rebuilt. A target finds its slot, unseals
//! the seed, and [`WorkloadFile::open`] checks the HMAC, decrypts and checks every
//! component hash before anything is released.
//!
//! ## The file, version 1 (all integers big-endian)
//!
//! ```text
//! offset  size
//!      0     4  magic "VTWL"
//!      4     2  format version = 1
//!      6     2  reserved, 0
//!      8    16  workload id (random; names the workload at the SM)
//!     24    12  payload nonce
//!     36     8  payload length P (ciphertext and its 16-byte tag)
//!     44     P  payload: AES-256-GCM(encryption key, nonce, AAD = bytes 0..44, plaintext)
//!   44+P    32  HMAC-SHA-256(HMAC key, bytes 0..44+P)
//!   ---------- everything above is the workload; its digest is SHA-256 of it ----------
//!   76+P     4  slot area magic "VTSL"
//!   80+P     2  slot count N (at most MAX_SLOTS)
//!   82+P     .. N authorizations, one per target (see below): 148 bytes each for
//!               version 1, 324 for version 2
//!
//! keys      HKDF-SHA-256(salt = "veritee workload v1" | workload id, ikm = seed,
//!                        info = "encryption" | "hmac" | "output"), 32 bytes each
//!
//! plaintext component count u16 (1..=MAX_COMPONENTS)
//!           | count x (kind u8 | name length u8 | name | SHA-256 (32) | length u64)
//!           | the components' bytes, in table order
//!           kinds: 1 module (WebAssembly), 2 configuration, 3 secret
//!
//! authorization (148 bytes)
//!      0     2  slot version = 1
//!      2     2  reserved, 0
//!      4    16  workload id
//!     20    16  storage key id: SHA-256("veritee workload storage key" | public key)[..16]
//!     36    16  authorization id (the SM's)
//!     52     8  not before, Unix seconds
//!     60     8  not after, Unix seconds
//!     68    80  sealed seed: HPKE base mode (X25519, HKDF-SHA-256, AES-256-GCM) to the
//!               storage key, info "veritee workload authorization v1",
//!               AAD = bytes 0..68: encapsulated key (32) | seed ciphertext and tag (48)
//!
//! authorization to a target with a TPM (324 bytes)
//!      0     2  slot version = 2
//!      2    66  as version 1, the storage key id being SHA-256("veritee workload TPM
//!               storage key" | enclave's X25519 key | TPM key's TPMT_PUBLIC)[..16]
//!     68   256  sealed seed: RSA-OAEP (SHA-256, MGF1-SHA-256) to the TPM's RSA-2048
//!               storage key, label = SHA-256(bytes 0..68) | 0x00, of
//!               HPKE base mode to the enclave's key (80 bytes, as in version 1), info
//!               "veritee workload authorization v2", AAD = bytes 0..68
//! ```
//!
//! Why an HMAC beside the GCM tag: the target checks the workload as a whole under a
//! key only the seed gives before it trusts a byte of it, and the HMAC names the
//! covered bytes exactly (header and payload), so the slot area can change freely.
//! The launch check computes the HMAC on one thread while it decrypts and hashes on
//! another; nothing decrypted leaves [`WorkloadFile::open`] unless both pass.
//!
//! Why authorizations carry no SM signature: the sealed seed's AAD binds the slot's
//! fields (workload, target key, window), and a seed that was not the workload's fails
//! its HMAC; only a holder of the seed (the owner, the SM) can make a slot that opens.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod authorization;
mod error;
mod layout;
mod payload;
mod seed;
mod workload;

pub use authorization::{
    AUTHORIZATION_LEN, Authorization, StorageKeyId, TPM_AUTHORIZATION_LEN, storage_key_id,
    tpm_storage_key_id,
};
pub use error::WorkloadError;
pub use layout::{
    HEADER_LEN, HMAC_LEN, MAX_COMPONENTS, MAX_NAME_LEN, MAX_PAYLOAD_LEN, MAX_SLOTS, VERSION,
};
pub use payload::{Component, ComponentKind, ComponentSpec};
pub use seed::{OutputBox, SEED_LEN, WorkloadSeed};
pub use workload::{OpenedWorkload, WorkloadFile, WorkloadId, build};

/// Entry points for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::payload::parse_table;
}
