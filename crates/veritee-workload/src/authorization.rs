//! An authorization: one workload's seed sealed to one target's storage key, with the
//! window it is valid in. The security module issues it; the target opens it.

use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};

use crate::error::WorkloadError;
use crate::layout::Reader;
use crate::seed::{SEED_LEN, WorkloadSeed};
use crate::workload::WorkloadId;

/// An authorization's length in the slot area.
pub const AUTHORIZATION_LEN: usize = SEALED_OFFSET + SEALED_SEED_LEN;

const SLOT_VERSION: u16 = 1;
/// version, reserved, workload id, storage key id, authorization id, not before, not after.
const SEALED_OFFSET: usize = 2 + 2 + 16 + 16 + 16 + 8 + 8;
const SEALED_SEED_LEN: usize = hpke::ENCAPSULATED_KEY_LEN + SEED_LEN + hpke::TAG_LEN;
const HPKE_INFO: &[u8] = b"veritee workload authorization v1";
const STORAGE_KEY_LABEL: &[u8] = b"veritee workload storage key";
const _: () = assert!(SEALED_OFFSET == 68);
const _: () = assert!(AUTHORIZATION_LEN == 148);

/// Names a target's storage key in slots without giving the key itself away: the first
/// 16 bytes of SHA-256("veritee workload storage key" | public key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageKeyId([u8; 16]);

impl StorageKeyId {
    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// From its bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl core::fmt::Display for StorageKeyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The id slots name `key` by.
pub fn storage_key_id(key: &HpkePublicKey) -> StorageKeyId {
    let mut input = Vec::with_capacity(STORAGE_KEY_LABEL.len() + hpke::PUBLIC_KEY_LEN);
    input.extend_from_slice(STORAGE_KEY_LABEL);
    input.extend_from_slice(key.as_bytes());
    let digest = veritee_crypto::digest::sha256(&input);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    StorageKeyId(id)
}

/// One slot: which workload, which target key, when, and the sealed seed.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The workload it opens.
    pub workload: WorkloadId,
    /// The target key it was sealed to.
    pub storage_key: StorageKeyId,
    /// The SM's id for it.
    pub id: [u8; 16],
    /// First valid second (Unix).
    pub not_before: u64,
    /// Last valid second (Unix).
    pub not_after: u64,
    sealed_seed: [u8; SEALED_SEED_LEN],
}

impl core::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authorization")
            .field("workload", &self.workload)
            .field("storage_key", &self.storage_key.to_string())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Authorization {
    /// Seals `seed` to `storage_key` for `workload`, valid from `not_before` to
    /// `not_after` inclusive.
    pub fn issue(
        seed: &WorkloadSeed,
        workload: WorkloadId,
        storage_key: &HpkePublicKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<Self, WorkloadError> {
        if not_after < not_before {
            return Err(WorkloadError::Invalid(format!(
                "an authorization's window ends ({not_after}) before it starts ({not_before})"
            )));
        }
        let mut slot = Self {
            workload,
            storage_key: storage_key_id(storage_key),
            id: veritee_crypto::rand::array()?,
            not_before,
            not_after,
            sealed_seed: [0u8; SEALED_SEED_LEN],
        };
        let sealed = hpke::seal(storage_key, HPKE_INFO, &slot.header(), seed.expose())?;
        if sealed.len() != SEALED_SEED_LEN {
            return Err(WorkloadError::Malformed(format!(
                "HPKE sealed the seed into {} bytes, not {SEALED_SEED_LEN}",
                sealed.len()
            )));
        }
        slot.sealed_seed.copy_from_slice(&sealed);
        Ok(slot)
    }

    /// The bytes the sealed seed's AAD covers.
    fn header(&self) -> [u8; SEALED_OFFSET] {
        let mut out = [0u8; SEALED_OFFSET];
        out[0..2].copy_from_slice(&SLOT_VERSION.to_be_bytes());
        out[4..20].copy_from_slice(self.workload.as_bytes());
        out[20..36].copy_from_slice(self.storage_key.as_bytes());
        out[36..52].copy_from_slice(&self.id);
        out[52..60].copy_from_slice(&self.not_before.to_be_bytes());
        out[60..68].copy_from_slice(&self.not_after.to_be_bytes());
        out
    }

    /// Its bytes in the slot area.
    pub fn to_bytes(&self) -> [u8; AUTHORIZATION_LEN] {
        let mut out = [0u8; AUTHORIZATION_LEN];
        out[..SEALED_OFFSET].copy_from_slice(&self.header());
        out[SEALED_OFFSET..].copy_from_slice(&self.sealed_seed);
        out
    }

    /// Reads one authorization, exactly [`AUTHORIZATION_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WorkloadError> {
        let mut r = Reader::new(bytes, "authorization");
        let version = r.u16()?;
        if version != SLOT_VERSION {
            return Err(WorkloadError::Malformed(format!(
                "authorization version {version} is not supported (this build reads 1)"
            )));
        }
        if r.u16()? != 0 {
            return Err(WorkloadError::Malformed(
                "an authorization's reserved field is not zero".into(),
            ));
        }
        let slot = Self {
            workload: WorkloadId::from_bytes(r.array()?),
            storage_key: StorageKeyId(r.array()?),
            id: r.array()?,
            not_before: r.u64()?,
            not_after: r.u64()?,
            sealed_seed: r.array()?,
        };
        r.finish()?;
        if slot.not_after < slot.not_before {
            return Err(WorkloadError::Malformed(
                "an authorization's window ends before it starts".into(),
            ));
        }
        Ok(slot)
    }

    /// Checks the window at `now` (Unix seconds, the target's trusted time) and unseals
    /// the seed with the target's storage key.
    pub fn unseal(
        &self,
        storage_key: &HpkeKeyPair,
        now: u64,
    ) -> Result<WorkloadSeed, WorkloadError> {
        let own = storage_key_id(&storage_key.public_key());
        if own != self.storage_key {
            return Err(WorkloadError::NoSlot(own.to_string()));
        }
        if now < self.not_before || now > self.not_after {
            return Err(WorkloadError::OutsideWindow {
                now,
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        let seed = hpke::open(storage_key, HPKE_INFO, &self.header(), &self.sealed_seed)
            .map_err(|_| WorkloadError::SealedSeed)?;
        WorkloadSeed::from_bytes(seed.expose())
    }
}
