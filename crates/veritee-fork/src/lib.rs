//! Secure fork (flow 5 of DESIGN.md), with no I/O: the snapshot a parent enclave keeps
//! of each application, and the transfer that moves it to a child enclave.
//!
//! ## The snapshot
//!
//! A [`Snapshot`] holds an application's state encrypted: its linear memory cut into
//! 4 KiB pages ([`PAGE_SIZE`]), each sealed on its own with AES-256-GCM, and its
//! globals and runtime counters. [`Snapshot::update`] brings it up to date and
//! re-encrypts only the pages that changed since the last update.
//!
//! **How changed pages are found, and what it costs.** The snapshot keeps a plaintext
//! shadow of the memory as it was at the last update (inside the enclave, zeroized on
//! drop) and compares each page with it: a `memcmp` of the whole memory per update,
//! about the cost of one `memcpy` of it, plus a copy and an encryption of each changed
//! page. The price is memory: the shadow doubles the application's memory footprint
//! in the enclave. Page hashes would cost 32 bytes per page instead, but hashing the
//! whole memory at every update (SHA-256 at about 2 GB/s here) costs more than the
//! encryption it saves; a write barrier (instrumenting every store instruction) would
//! cost every call of the application instead of every fork.
//!
//! Each page is sealed under the snapshot's current *epoch key*, with a nonce counter
//! that never repeats under that key. After a fork the parent starts a new epoch
//! ([`Snapshot::rekey`]): the pages it re-encrypts from then on are under a key the
//! child never had, while pages unchanged since the fork stay under the old key and
//! hold only what the child already has.
//!
//! ## The transfer
//!
//! ```text
//! manifest v1 (big-endian)                      the snapshot's digest covers all but the keys
//!   "VTFM" | version u16 = 1 | app id (16) | module SHA-256 (32) | generation u64
//!   | calls u64 | fuel used u64 | limits: fuel, memory bytes, table elements, output
//!     bytes, log bytes, timeout ms (6 x u64) | memory length u64 (whole 64 KiB pages)
//!   | global count u32 | count x (index u32 | kind u8 | value 16)
//!   | page count u32 (memory length / 4096) | count x (epoch u32 | counter u64)
//!                                               epoch 0xFFFF_FFFF: an all-zero page, not sent
//!   ------------------------------------------- digest = SHA-256("veritee fork manifest v1" | above)
//!   | key count u32 | count x (epoch u32 | AES-256 key (32))
//!
//! offer     digest (32) | nonce (12) | AES-256-GCM(transfer key, AAD "VTFO" | digest, manifest)
//!           transfer key = HKDF-SHA256(salt "veritee fork transfer v1", shared secret, info digest)
//! frames    index u32 | sealed page (4096 + 16 tag), ascending, sealed pages only, cut anywhere
//!           page key = its epoch's key, nonce = 0 u32 | counter u64,
//!           AAD = "VTFP" | app id | index u32
//! ```
//!
//! The shared secret comes from the attested exchange between parent and child (each
//! side's evidence binds its share), so a manifest opens only in the child that took
//! part in that exchange, and only for the snapshot whose digest the key was derived
//! for. The manifest names each page's epoch and counter, so a page from another
//! snapshot (or an older state of this one) fails its tag; frames must come in
//! ascending order, each sealed page once, and a child refuses to finish until every
//! sealed page has arrived. The host carries offer and frames and sees only
//! ciphertext.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod layout;
mod snapshot;
mod transfer;

pub use error::ForkError;
pub use layout::{
    FRAME_LEN, MAX_KEYS, MAX_MEMORY_BYTES, PAGE_SIZE, PageId, SEALED_PAGE_LEN, max_manifest_len,
};
pub use snapshot::{AppRuntime, Snapshot, UpdateStats};
pub use transfer::{ForkOffer, ForkSecret, ForkedState, Restorer};

/// Entry points for the fuzz targets only: the manifest reader, and an offer sealed
/// over arbitrary manifest bytes so that the checks behind the tag are reached.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{ForkError, ForkOffer, ForkSecret};

    /// Reads `bytes` as a manifest.
    pub fn decode_manifest(bytes: &[u8]) -> Result<(), ForkError> {
        crate::layout::Manifest::decode(bytes).map(|_| ())
    }

    /// Seals `manifest` as a parent would, its digest over the first `covered` bytes.
    pub fn seal_offer(
        secret: &ForkSecret,
        manifest: &[u8],
        covered: usize,
    ) -> Result<ForkOffer, ForkError> {
        ForkOffer::seal(secret, manifest, covered.min(manifest.len()))
    }
}
