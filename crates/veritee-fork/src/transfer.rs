//! The transfer: the secret both sides take from their attested exchange, the sealed
//! offer, and the child's side that opens it and restores the pages as they come.

use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use veritee_crypto::hkdf::{HkdfHash, derive_into};
use veritee_crypto::{Confidential, digest};
use veritee_wasm::GlobalValue;

use crate::error::ForkError;
use crate::layout::{
    DIGEST_LABEL, FRAME_LEN, Manifest, PAGE_SIZE, PageSeal, SEALED_PAGE_LEN, max_manifest_len,
    page_aad, page_nonce,
};
use crate::snapshot::AppRuntime;

const OFFER_AAD_LABEL: &[u8; 4] = b"VTFO";
const TRANSFER_SALT: &[u8] = b"veritee fork transfer v1";
const LINK_SALT: &[u8] = b"veritee fork link v1";

/// The secret parent and child share after their mutually attested exchange (each
/// side's evidence binds its share of it). Zeroized on drop, never printed.
pub struct ForkSecret(Confidential<[u8; 32]>);

impl core::fmt::Debug for ForkSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ForkSecret(<redacted>)")
    }
}

impl ForkSecret {
    /// The secret an attested exchange yielded.
    pub fn new(secret: Confidential<[u8; 32]>) -> ForkSecret {
        ForkSecret(secret)
    }

    fn derive(&self, salt: &[u8], digest: &[u8; 32]) -> Result<AeadKey, ForkError> {
        let mut key = Confidential::new([0u8; 32]);
        derive_into(
            HkdfHash::Sha256,
            salt,
            self.0.expose(),
            &[digest],
            key.expose_mut(),
        )?;
        Ok(AeadKey::from_array(key))
    }

    /// The key parent and child keep for their later messages to each other, bound to
    /// the snapshot they forked at.
    pub fn link_key(&self, digest: &[u8; 32]) -> Result<AeadKey, ForkError> {
        self.derive(LINK_SALT, digest)
    }
}

/// The parent's offer to a child: the snapshot's digest and its sealed manifest.
#[derive(Clone)]
pub struct ForkOffer {
    bytes: Vec<u8>,
}

impl core::fmt::Debug for ForkOffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ForkOffer")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

fn manifest_digest(covered: &[u8]) -> [u8; 32] {
    let mut h = digest::Sha256::default();
    h.update(DIGEST_LABEL);
    h.update(covered);
    h.finish()
}

fn offer_aad(digest: &[u8; 32]) -> [u8; 36] {
    let mut aad = [0u8; 36];
    aad[..4].copy_from_slice(OFFER_AAD_LABEL);
    aad[4..].copy_from_slice(digest);
    aad
}

impl ForkOffer {
    pub(crate) fn seal(
        secret: &ForkSecret,
        manifest: &[u8],
        covered: usize,
    ) -> Result<ForkOffer, ForkError> {
        let digest = manifest_digest(&manifest[..covered]);
        let key = secret.derive(TRANSFER_SALT, &digest)?;
        let sealed = key.seal_with_random_nonce(&offer_aad(&digest), manifest)?;
        let mut bytes = Vec::with_capacity(32 + sealed.len());
        bytes.extend_from_slice(&digest);
        bytes.extend_from_slice(&sealed);
        Ok(ForkOffer { bytes })
    }

    /// The offer as sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The snapshot's digest (the offer's first 32 bytes).
    pub fn digest(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        d.copy_from_slice(&self.bytes[..32]);
        d
    }
}

/// What the child learns of the application it continues. `Debug` leaves out the
/// globals (application state).
#[derive(Clone)]
pub struct ForkedState {
    /// The application's id.
    pub app_id: [u8; 16],
    /// SHA-256 of the module it runs: the child must run the same.
    pub module_sha256: [u8; 32],
    /// The snapshot's digest, which the shared key is bound to.
    pub digest: [u8; 32],
    /// The snapshot's generation at the parent.
    pub generation: u64,
    /// Counters and limits.
    pub runtime: AppRuntime,
    /// Length of the linear memory in bytes.
    pub memory_len: usize,
    /// Every mutable global.
    pub globals: Vec<(u32, GlobalValue)>,
}

impl core::fmt::Debug for ForkedState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ForkedState")
            .field("app_id", &self.app_id)
            .field("module_sha256", &self.module_sha256)
            .field("digest", &self.digest)
            .field("generation", &self.generation)
            .field("memory_len", &self.memory_len)
            .field("globals", &self.globals.len())
            .finish_non_exhaustive()
    }
}

/// The child's side of a transfer: the opened manifest, and how far the pages came.
pub struct Restorer {
    state: ForkedState,
    pages: Vec<PageSeal>,
    keys: Vec<(u32, AeadKey)>,
    /// The next page a frame may name; the ones before it are done.
    next_page: usize,
    /// A frame cut by the end of a chunk, waiting for its rest (ciphertext only).
    partial: Vec<u8>,
    received: usize,
    expected: usize,
}

impl core::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Restorer")
            .field("received", &self.received)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Restorer {
    /// Opens `offer` with the key `secret` gives for the digest it names, and checks
    /// that the manifest inside hashes to that digest.
    pub fn open(secret: &ForkSecret, offer: &[u8]) -> Result<Restorer, ForkError> {
        let limit = 32 + NONCE_LEN + max_manifest_len() + TAG_LEN;
        if offer.len() > limit {
            return Err(ForkError::Malformed(format!(
                "an offer of {} bytes is larger than the largest ({limit})",
                offer.len()
            )));
        }
        let Some((digest, sealed)) = offer.split_first_chunk::<32>() else {
            return Err(ForkError::Truncated {
                what: "offer",
                needed: 32 - offer.len(),
            });
        };
        let key = secret.derive(TRANSFER_SALT, digest)?;
        let opened = key
            .open_with_nonce_prefix(&offer_aad(digest), sealed)
            .map_err(|_| ForkError::OfferDoesNotOpen)?;
        let (manifest, covered) = Manifest::decode(opened.expose())?;
        // The tag already vouches for the manifest; the digest check ties the key
        // derivation to what the manifest says (a parent cannot offer one snapshot
        // under another's digest).
        if !veritee_crypto::ct_eq(&manifest_digest(&opened.expose()[..covered]), digest) {
            return Err(ForkError::DigestMismatch);
        }
        let expected = manifest.pages.iter().filter(|p| !p.is_zero()).count();
        let memory_len = usize::try_from(manifest.memory_len)
            .map_err(|_| ForkError::Malformed("memory length too large".into()))?;
        Ok(Restorer {
            state: ForkedState {
                app_id: manifest.app_id,
                module_sha256: manifest.module_sha256,
                digest: *digest,
                generation: manifest.generation,
                runtime: manifest.runtime,
                memory_len,
                globals: manifest.globals,
            },
            pages: manifest.pages,
            keys: manifest.keys,
            next_page: 0,
            partial: Vec::new(),
            received: 0,
            expected,
        })
    }

    /// What the manifest says of the application.
    pub fn state(&self) -> &ForkedState {
        &self.state
    }

    /// The ids of the sealed pages the manifest names, in the order frames must bring
    /// them ([`Restorer::push`]: each frame is the page's index, 4 bytes big-endian,
    /// then its ciphertext and tag).
    pub fn page_ids(&self) -> Vec<crate::PageId> {
        self.pages
            .iter()
            .enumerate()
            .filter_map(|(index, seal)| seal.id(index))
            .collect()
    }

    /// Decrypts the frames in `chunk` into `memory` (the child's linear memory, of the
    /// snapshot's length). Chunks may cut frames anywhere; frames must name sealed
    /// pages in ascending order. Pages skipped over are zero pages, and are zeroed.
    pub fn push(&mut self, chunk: &[u8], memory: &mut [u8]) -> Result<(), ForkError> {
        self.check_memory(memory)?;
        let mut rest = chunk;
        if !self.partial.is_empty() {
            let need = FRAME_LEN - self.partial.len();
            let take = need.min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() < FRAME_LEN {
                return Ok(());
            }
            let frame = std::mem::take(&mut self.partial);
            self.frame(&frame, memory)?;
        }
        let mut frames = rest.chunks_exact(FRAME_LEN);
        for frame in &mut frames {
            self.frame(frame, memory)?;
        }
        self.partial.extend_from_slice(frames.remainder());
        Ok(())
    }

    /// Ends the transfer: every sealed page must have arrived, and the pages after the
    /// last are zeroed. Returns the state to resume from.
    pub fn finish(mut self, memory: &mut [u8]) -> Result<ForkedState, ForkError> {
        self.check_memory(memory)?;
        let incomplete = ForkError::Incomplete {
            received: self.received,
            expected: self.expected,
        };
        if !self.partial.is_empty() {
            return Err(incomplete);
        }
        self.zero_until(self.pages.len(), memory)
            .map_err(|_| incomplete)?;
        Ok(self.state)
    }

    fn check_memory(&self, memory: &[u8]) -> Result<(), ForkError> {
        if memory.len() != self.state.memory_len {
            return Err(ForkError::MemorySize {
                expected: self.state.memory_len,
                actual: memory.len(),
            });
        }
        Ok(())
    }

    /// Zeroes pages `next_page..end`, which must all be zero pages.
    fn zero_until(&mut self, end: usize, memory: &mut [u8]) -> Result<(), ForkError> {
        for index in self.next_page..end {
            if !self.pages[index].is_zero() {
                return Err(ForkError::PageOrder {
                    index: index as u64,
                    reason: "a sealed page was skipped",
                });
            }
            memory[index * PAGE_SIZE..(index + 1) * PAGE_SIZE].fill(0);
        }
        self.next_page = end;
        Ok(())
    }

    fn frame(&mut self, frame: &[u8], memory: &mut [u8]) -> Result<(), ForkError> {
        let (index, sealed) = frame.split_at(4);
        let mut raw = [0u8; 4];
        raw.copy_from_slice(index);
        let index = u32::from_be_bytes(raw);
        let at = index as usize;
        if at < self.next_page {
            return Err(ForkError::PageOrder {
                index: index.into(),
                reason: "it came again or out of order",
            });
        }
        let Some(seal) = self.pages.get(at).copied() else {
            return Err(ForkError::PageOrder {
                index: index.into(),
                reason: "it is past the end of the memory",
            });
        };
        if seal.is_zero() {
            return Err(ForkError::PageOrder {
                index: index.into(),
                reason: "the manifest lists it as a zero page",
            });
        }
        self.zero_until(at, memory)?;
        let key = self
            .keys
            .binary_search_by_key(&seal.epoch, |(e, _)| *e)
            .map(|i| &self.keys[i].1)
            .map_err(|_| ForkError::PageDoesNotOpen(index.into()))?;
        debug_assert_eq!(sealed.len(), SEALED_PAGE_LEN);
        key.open_to(
            &page_nonce(seal.counter),
            &page_aad(&self.state.app_id, index),
            sealed,
            &mut memory[at * PAGE_SIZE..(at + 1) * PAGE_SIZE],
        )
        .map_err(|_| ForkError::PageDoesNotOpen(index.into()))?;
        self.next_page = at + 1;
        self.received += 1;
        Ok(())
    }
}
