//! An authorization: one workload's seed sealed to one target's storage key, with the
//! window it is valid in. The security module issues it; the target opens it.
//!
//! Two kinds, told apart by the slot version: version 1 seals the seed with HPKE to an
//! enclave's X25519 storage key; version 2, for a target with a TPM, seals it so twice:
//! with HPKE to the target enclave's key, then with RSA-OAEP-SHA256 to the TPM's
//! RSA-2048 storage key, which only that TPM can use, and only under its PCR policy. A
//! TPM decrypts for any software in the measured state, the host's included: the inner
//! layer keeps the seed the enclave's. Both share the 68-byte header the sealing binds.

use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};

use crate::error::WorkloadError;
use crate::layout::Reader;
use crate::seed::{SEED_LEN, WorkloadSeed};
use crate::workload::WorkloadId;

/// An authorization's length in the slot area (version 1, to an enclave's key).
pub const AUTHORIZATION_LEN: usize = SEALED_OFFSET + SEALED_SEED_LEN;
/// A version 2 authorization's length (to a TPM's RSA-2048 storage key).
pub const TPM_AUTHORIZATION_LEN: usize = SEALED_OFFSET + TPM_SEALED_SEED_LEN;

const SLOT_VERSION: u16 = 1;
const TPM_SLOT_VERSION: u16 = 2;
/// An RSA-2048 ciphertext.
const TPM_SEALED_SEED_LEN: usize = 256;
const TPM_STORAGE_KEY_LABEL: &[u8] = b"veritee workload TPM storage key";
const TPM_HPKE_INFO: &[u8] = b"veritee workload authorization v2";
/// version, reserved, workload id, storage key id, authorization id, not before, not after.
const SEALED_OFFSET: usize = 2 + 2 + 16 + 16 + 16 + 8 + 8;
const SEALED_SEED_LEN: usize = hpke::ENCAPSULATED_KEY_LEN + SEED_LEN + hpke::TAG_LEN;
const HPKE_INFO: &[u8] = b"veritee workload authorization v1";
const STORAGE_KEY_LABEL: &[u8] = b"veritee workload storage key";
const _: () = assert!(SEALED_OFFSET == 68);
const _: () = assert!(AUTHORIZATION_LEN == 148);
const _: () = assert!(TPM_AUTHORIZATION_LEN == 324);

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

/// The id slots name a TPM target's pair of keys by: the first 16 bytes of
/// SHA-256("veritee workload TPM storage key" | the enclave's X25519 key | the TPM
/// key's public area, TPMT_PUBLIC, which covers its attributes and policy as well as its
/// key). Rotating either makes another id.
pub fn tpm_storage_key_id(enclave_key: &HpkePublicKey, public_area: &[u8]) -> StorageKeyId {
    let mut input =
        Vec::with_capacity(TPM_STORAGE_KEY_LABEL.len() + hpke::PUBLIC_KEY_LEN + public_area.len());
    input.extend_from_slice(TPM_STORAGE_KEY_LABEL);
    input.extend_from_slice(enclave_key.as_bytes());
    input.extend_from_slice(public_area);
    let digest = veritee_crypto::digest::sha256(&input);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    StorageKeyId(id)
}

/// The seed as a slot holds it.
#[derive(Clone, PartialEq, Eq)]
enum SealedSeed {
    /// Version 1: HPKE to an enclave's X25519 key.
    Hpke([u8; SEALED_SEED_LEN]),
    /// Version 2: HPKE to the enclave's key, then RSA-OAEP-SHA256 to its TPM's key.
    Tpm(Box<[u8; TPM_SEALED_SEED_LEN]>),
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
    sealed_seed: SealedSeed,
}

impl core::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authorization")
            .field("workload", &self.workload)
            .field("storage_key", &self.storage_key.to_string())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("tpm", &self.is_tpm())
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
        check_window(not_before, not_after)?;
        let mut slot = Self {
            workload,
            storage_key: storage_key_id(storage_key),
            id: veritee_crypto::rand::array()?,
            not_before,
            not_after,
            sealed_seed: SealedSeed::Hpke([0u8; SEALED_SEED_LEN]),
        };
        let sealed = hpke::seal(storage_key, HPKE_INFO, &slot.header(), seed.expose())?;
        let sealed: [u8; SEALED_SEED_LEN] = sealed.try_into().map_err(|s: Vec<u8>| {
            WorkloadError::Malformed(format!(
                "HPKE sealed the seed into {} bytes, not {SEALED_SEED_LEN}",
                s.len()
            ))
        })?;
        slot.sealed_seed = SealedSeed::Hpke(sealed);
        Ok(slot)
    }

    /// Seals `seed` for a target with a TPM, for `workload`, valid from `not_before`
    /// to `not_after` inclusive: with HPKE to the target enclave's `enclave_key` (AAD
    /// the header), then the result with RSA-OAEP-SHA256 to the TPM's RSA-2048 storage
    /// key (`storage_key_spki`, DER SubjectPublicKeyInfo; `public_area`, its
    /// TPMT_PUBLIC). The OAEP label is SHA-256(header) followed by a zero byte:
    /// TPM2_RSA_Decrypt takes labels of at most 64 bytes and appends a zero to one that
    /// lacks it, so the label is given already terminated, the same on both sides.
    pub fn issue_to_tpm(
        seed: &WorkloadSeed,
        workload: WorkloadId,
        enclave_key: &HpkePublicKey,
        storage_key_spki: &[u8],
        public_area: &[u8],
        not_before: u64,
        not_after: u64,
    ) -> Result<Self, WorkloadError> {
        check_window(not_before, not_after)?;
        let mut slot = Self {
            workload,
            storage_key: tpm_storage_key_id(enclave_key, public_area),
            id: veritee_crypto::rand::array()?,
            not_before,
            not_after,
            sealed_seed: SealedSeed::Tpm(Box::new([0u8; TPM_SEALED_SEED_LEN])),
        };
        let inner = hpke::seal(enclave_key, TPM_HPKE_INFO, &slot.header(), seed.expose())?;
        let sealed = veritee_crypto::rsa::encrypt_oaep_sha256_with_label(
            storage_key_spki,
            &inner,
            &slot.tpm_label(),
        )?;
        let sealed: [u8; TPM_SEALED_SEED_LEN] = sealed.try_into().map_err(|s: Vec<u8>| {
            WorkloadError::Invalid(format!(
                "a TPM storage key is RSA-2048: the seed sealed into {} bytes, not {TPM_SEALED_SEED_LEN}",
                s.len()
            ))
        })?;
        slot.sealed_seed = SealedSeed::Tpm(Box::new(sealed));
        Ok(slot)
    }

    /// Whether the seed is sealed to a TPM's storage key (slot version 2).
    pub fn is_tpm(&self) -> bool {
        matches!(self.sealed_seed, SealedSeed::Tpm(_))
    }

    fn version(&self) -> u16 {
        match self.sealed_seed {
            SealedSeed::Hpke(_) => SLOT_VERSION,
            SealedSeed::Tpm(_) => TPM_SLOT_VERSION,
        }
    }

    /// The OAEP label of a version 2 slot: SHA-256 of the header, then a zero byte.
    fn tpm_label(&self) -> [u8; 33] {
        let mut label = [0u8; 33];
        label[..32].copy_from_slice(&veritee_crypto::digest::sha256(&self.header()));
        label
    }

    /// The bytes the sealed seed's AAD covers.
    fn header(&self) -> [u8; SEALED_OFFSET] {
        let mut out = [0u8; SEALED_OFFSET];
        out[0..2].copy_from_slice(&self.version().to_be_bytes());
        out[4..20].copy_from_slice(self.workload.as_bytes());
        out[20..36].copy_from_slice(self.storage_key.as_bytes());
        out[36..52].copy_from_slice(&self.id);
        out[52..60].copy_from_slice(&self.not_before.to_be_bytes());
        out[60..68].copy_from_slice(&self.not_after.to_be_bytes());
        out
    }

    /// Its bytes in the slot area.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TPM_AUTHORIZATION_LEN);
        out.extend_from_slice(&self.header());
        match &self.sealed_seed {
            SealedSeed::Hpke(sealed) => out.extend_from_slice(sealed),
            SealedSeed::Tpm(sealed) => out.extend_from_slice(&sealed[..]),
        }
        out
    }

    /// Its length in the slot area.
    pub fn encoded_len(&self) -> usize {
        match self.sealed_seed {
            SealedSeed::Hpke(_) => AUTHORIZATION_LEN,
            SealedSeed::Tpm(_) => TPM_AUTHORIZATION_LEN,
        }
    }

    /// Reads one authorization, exactly [`AUTHORIZATION_LEN`] bytes (version 1) or
    /// [`TPM_AUTHORIZATION_LEN`] (version 2).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WorkloadError> {
        let mut r = Reader::new(bytes, "authorization");
        let slot = Self::read(&mut r)?;
        r.finish()?;
        Ok(slot)
    }

    /// Reads the authorization at the front of `r`; its version says its length.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WorkloadError> {
        let version = r.u16()?;
        if version != SLOT_VERSION && version != TPM_SLOT_VERSION {
            return Err(WorkloadError::Malformed(format!(
                "authorization version {version} is not supported (this build reads 1 and 2)"
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
            sealed_seed: if version == SLOT_VERSION {
                SealedSeed::Hpke(r.array()?)
            } else {
                SealedSeed::Tpm(Box::new(r.array()?))
            },
        };
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
        self.check(storage_key_id(&storage_key.public_key()), now)?;
        let SealedSeed::Hpke(sealed) = &self.sealed_seed else {
            return Err(WorkloadError::SealedSeed);
        };
        let seed = hpke::open(storage_key, HPKE_INFO, &self.header(), sealed)
            .map_err(|_| WorkloadError::SealedSeed)?;
        WorkloadSeed::from_bytes(seed.expose())
    }

    /// Checks the window at `now` for the key pair named `own`, has
    /// `decrypt(ciphertext, label)` (the TPM, under its PCR policy) take the outer
    /// layer off, and opens the inner one with the enclave's `enclave_key`.
    pub fn unseal_with_tpm<E: core::fmt::Display>(
        &self,
        own: StorageKeyId,
        now: u64,
        enclave_key: &HpkeKeyPair,
        decrypt: impl FnOnce(&[u8], &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, E>,
    ) -> Result<WorkloadSeed, WorkloadError> {
        self.check(own, now)?;
        let SealedSeed::Tpm(sealed) = &self.sealed_seed else {
            return Err(WorkloadError::SealedSeed);
        };
        let inner = decrypt(&sealed[..], &self.tpm_label())
            .map_err(|e| WorkloadError::Tpm(e.to_string()))?;
        let seed = hpke::open(enclave_key, TPM_HPKE_INFO, &self.header(), &inner)
            .map_err(|_| WorkloadError::SealedSeed)?;
        WorkloadSeed::from_bytes(seed.expose())
    }

    /// The slot is for `own` and valid at `now`.
    fn check(&self, own: StorageKeyId, now: u64) -> Result<(), WorkloadError> {
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
        Ok(())
    }
}

fn check_window(not_before: u64, not_after: u64) -> Result<(), WorkloadError> {
    if not_after < not_before {
        return Err(WorkloadError::Invalid(format!(
            "an authorization's window ends ({not_after}) before it starts ({not_before})"
        )));
    }
    Ok(())
}
