//! EK certificates a security module has verified, so that a target enrolling again
//! (fresher evidence, a rotated storage key) does not pay for its chain again.
//!
//! An entry is the SHA-256 of an EK certificate's DER, the anchor its chain reached and
//! the window in which every certificate on that chain is valid. It is used only inside
//! that window and only while its anchor is still one the caller trusts; an entry that
//! turned invalid (its window passed, or its anchor is no longer given) is purged when
//! it is looked up, and the chain is verified afresh, which then fails with the reason.
//! The cache is in memory: it lives as long as the enclave, whose anchors are measured.

use std::collections::HashMap;
use time::OffsetDateTime;
use veritee_attest::ParsedCertificate;

/// Most EK certificates remembered; beyond it, the entries closest to expiry go first.
pub const MAX_CACHED_EKS: usize = 4096;

struct Verified {
    anchor: ParsedCertificate,
    valid_from: OffsetDateTime,
    valid_until: OffsetDateTime,
}

/// EK certificates whose chain verified, by the SHA-256 of their DER.
#[derive(Default)]
pub struct VerifiedEkCache {
    entries: HashMap<[u8; 32], Verified>,
    hits: u64,
    purged: u64,
}

impl VerifiedEkCache {
    /// The anchor `ek_der`'s chain reached, if it verified before, is valid at `at`,
    /// and reached one of `anchors`; an entry that is no longer so is purged.
    pub(crate) fn get(
        &mut self,
        ek_der: &[u8],
        anchors: &[ParsedCertificate],
        at: OffsetDateTime,
    ) -> Option<ParsedCertificate> {
        let key = veritee_crypto::digest::sha256(ek_der);
        let entry = self.entries.get(&key)?;
        let still_valid = entry.valid_from <= at
            && at <= entry.valid_until
            && anchors
                .iter()
                .any(|a| a.fingerprint() == entry.anchor.fingerprint());
        if !still_valid {
            self.entries.remove(&key);
            self.purged += 1;
            return None;
        }
        self.hits += 1;
        Some(entry.anchor.clone())
    }

    /// Remembers that `ek_der` verified along `path` (leaf to anchor).
    pub(crate) fn insert(&mut self, ek_der: &[u8], path: &[ParsedCertificate]) {
        let (Some(anchor), Some(valid_from), Some(valid_until)) = (
            path.last(),
            path.iter().map(ParsedCertificate::not_before).max(),
            path.iter().map(ParsedCertificate::not_after).min(),
        ) else {
            return;
        };
        if self.entries.len() >= MAX_CACHED_EKS {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, v)| v.valid_until)
                .map(|(k, _)| *k);
            if let Some(key) = soonest {
                self.entries.remove(&key);
            }
        }
        self.entries.insert(
            veritee_crypto::digest::sha256(ek_der),
            Verified {
                anchor: anchor.clone(),
                valid_from,
                valid_until,
            },
        );
    }

    /// How many EK certificates are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many lookups found a valid entry (the chain was not verified again).
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// How many entries were purged for having turned invalid.
    pub fn purged(&self) -> u64 {
        self.purged
    }
}
