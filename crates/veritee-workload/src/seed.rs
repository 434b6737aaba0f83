//! The workload seed and the keys derived from it.

use veritee_crypto::Confidential;
use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use veritee_crypto::hkdf::{HkdfHash, derive_into};

use crate::error::WorkloadError;
use crate::workload::WorkloadId;

/// A seed's length.
pub const SEED_LEN: usize = 32;

const SALT_LABEL: &[u8] = b"veritee workload v1";
const OUTPUT_AAD_LABEL: &[u8; 4] = b"VTWO";

/// The random secret every key of one workload is derived from. Only the owner, its
/// security module and an authorized target's enclave ever hold it.
pub struct WorkloadSeed(Confidential<[u8; SEED_LEN]>);

impl core::fmt::Debug for WorkloadSeed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("WorkloadSeed(<redacted>)")
    }
}

impl WorkloadSeed {
    /// A fresh seed from the platform's randomness.
    pub fn generate() -> Result<Self, WorkloadError> {
        Ok(Self(veritee_crypto::rand::secret_array()?))
    }

    /// A seed from its bytes (a seed file, or an unsealed authorization).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WorkloadError> {
        if bytes.len() != SEED_LEN {
            return Err(WorkloadError::Invalid(format!(
                "a workload seed is {SEED_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        let mut raw = Confidential::new([0u8; SEED_LEN]);
        raw.expose_mut().copy_from_slice(bytes);
        Ok(Self(raw))
    }

    /// The seed's bytes, for sealing it.
    pub fn expose(&self) -> &[u8; SEED_LEN] {
        self.0.expose()
    }

    /// Whether two seeds are the same, in constant time.
    pub fn same_as(&self, other: &WorkloadSeed) -> bool {
        self.0 == other.0
    }

    pub(crate) fn derive(
        &self,
        workload: &WorkloadId,
        purpose: &[u8],
    ) -> Result<Confidential<[u8; 32]>, WorkloadError> {
        let mut salt = Vec::with_capacity(SALT_LABEL.len() + 16);
        salt.extend_from_slice(SALT_LABEL);
        salt.extend_from_slice(workload.as_bytes());
        let mut out = Confidential::new([0u8; 32]);
        derive_into(
            HkdfHash::Sha256,
            &salt,
            self.0.expose(),
            &[purpose],
            out.expose_mut(),
        )?;
        Ok(out)
    }

    pub(crate) fn encryption_key(&self, workload: &WorkloadId) -> Result<AeadKey, WorkloadError> {
        Ok(AeadKey::from_array(self.derive(workload, b"encryption")?))
    }

    pub(crate) fn hmac_key(
        &self,
        workload: &WorkloadId,
    ) -> Result<Confidential<[u8; 32]>, WorkloadError> {
        self.derive(workload, b"hmac")
    }

    /// The box a launched workload's output is sealed in, which only holders of this
    /// seed open.
    pub fn output_box(&self, workload: &WorkloadId) -> Result<OutputBox, WorkloadError> {
        Ok(OutputBox {
            key: AeadKey::from_array(self.derive(workload, b"output")?),
            workload: *workload,
        })
    }
}

/// Seals what a launched workload produced so that only holders of the seed (the owner,
/// its security module, the targets it authorized) read it; the host carries
/// ciphertext. The AAD names the workload, the key that opened the seed and the launch,
/// so the host cannot relabel an output as another target's or another launch's (a
/// holder of the seed could make one, as it could run the workload itself).
pub struct OutputBox {
    key: AeadKey,
    workload: WorkloadId,
}

impl core::fmt::Debug for OutputBox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutputBox")
            .field("workload", &self.workload)
            .finish_non_exhaustive()
    }
}

impl OutputBox {
    fn aad(&self, target: &crate::StorageKeyId, launch: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(4 + 32 + launch.len());
        aad.extend_from_slice(OUTPUT_AAD_LABEL);
        aad.extend_from_slice(self.workload.as_bytes());
        aad.extend_from_slice(target.as_bytes());
        aad.extend_from_slice(launch);
        aad
    }

    /// `nonce (12) | AES-256-GCM(output key, AAD "VTWO" | workload id | storage key id)`.
    pub fn seal(
        &self,
        target: &crate::StorageKeyId,
        output: &[u8],
    ) -> Result<Vec<u8>, WorkloadError> {
        self.seal_for(target, &[], output)
    }

    /// As [`OutputBox::seal`], with `launch` (what names one launch: the caller's
    /// nonce and the workload's digest) appended to the AAD, so that the answer to an
    /// earlier launch cannot be passed off as this one's.
    pub fn seal_for(
        &self,
        target: &crate::StorageKeyId,
        launch: &[u8],
        output: &[u8],
    ) -> Result<Vec<u8>, WorkloadError> {
        Ok(self
            .key
            .seal_with_random_nonce(&self.aad(target, launch), output)?)
    }

    /// Opens what [`OutputBox::seal`] made for `target`.
    pub fn open(
        &self,
        target: &crate::StorageKeyId,
        sealed: &[u8],
    ) -> Result<veritee_crypto::SecretBytes, WorkloadError> {
        self.open_for(target, &[], sealed)
    }

    /// Opens what [`OutputBox::seal_for`] made for `target` and `launch`.
    pub fn open_for(
        &self,
        target: &crate::StorageKeyId,
        launch: &[u8],
        sealed: &[u8],
    ) -> Result<veritee_crypto::SecretBytes, WorkloadError> {
        let minimum = NONCE_LEN + TAG_LEN;
        if sealed.len() < minimum {
            return Err(WorkloadError::Truncated {
                what: "sealed output",
                needed: minimum - sealed.len(),
            });
        }
        self.key
            .open_with_nonce_prefix(&self.aad(target, launch), sealed)
            .map_err(|_| WorkloadError::Decrypt)
    }
}
