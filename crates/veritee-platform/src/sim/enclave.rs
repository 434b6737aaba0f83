//! Enclave images and running simulated enclaves.

use super::counter::SimCounter;
use super::machine::MachineSecrets;
use crate::{EnclaveIdentity, MonotonicCounter, Platform, PlatformError, SealPolicy};
use std::sync::Arc;
use time::OffsetDateTime;
use veritee_attest::simulated::envelope::SimEvidence;
use veritee_attest::simulated::report::{DIGEST_LEN, ReportBody, SimReport};
use veritee_attest::{ReportData, TeeKind};
use veritee_crypto::aead::AeadKey;
use veritee_crypto::digest::{Sha384, sha384};
use veritee_crypto::hkdf::{self, HkdfHash};
use veritee_crypto::sign::{self, EcdsaSigningKey};

const MEASURE_DOMAIN: &[u8] = b"veritee-sim-enclave-v1\0";
const SIGSTRUCT_DOMAIN: &[u8] = b"veritee-sim-sigstruct-v1\0";
const SEAL_SALT: &[u8] = b"veritee-sim-seal-v2";

/// A signature over an image's identity by its developer (cf. SGX SIGSTRUCT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSignature {
    /// The signer's SubjectPublicKeyInfo (ECDSA P-384).
    pub signer_spki: Vec<u8>,
    /// ECDSA P-384/SHA-384 r || s over the sigstruct bytes.
    pub signature: Vec<u8>,
}

/// What the hardware loads: a measurement of the code, its declared identity, and
/// optionally the developer's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveImage {
    /// SHA-384 over the code (see [`EnclaveImage::measure`]).
    pub measurement: [u8; DIGEST_LEN],
    /// Product id under the signer.
    pub product_id: u16,
    /// Security version.
    pub security_version: u16,
    /// Debug mode: the host could read the enclave's memory.
    pub debug: bool,
    /// The developer's signature, if any.
    pub signature: Option<ImageSignature>,
}

impl EnclaveImage {
    /// The measurement of `code`: SHA-384 over a domain tag, the length, and the bytes.
    pub fn measure(code: &[u8]) -> [u8; DIGEST_LEN] {
        let mut h = Sha384::default();
        h.update(MEASURE_DOMAIN);
        h.update(&(code.len() as u64).to_le_bytes());
        h.update(code);
        h.finish()
    }

    /// An unsigned image of `code`.
    pub fn unsigned(code: &[u8], product_id: u16, security_version: u16, debug: bool) -> Self {
        Self {
            measurement: Self::measure(code),
            product_id,
            security_version,
            debug,
            signature: None,
        }
    }

    /// An image of `code` signed by `signer`.
    pub fn signed(
        code: &[u8],
        signer: &EcdsaSigningKey,
        product_id: u16,
        security_version: u16,
        debug: bool,
    ) -> Result<Self, PlatformError> {
        let mut image = Self::unsigned(code, product_id, security_version, debug);
        let signature = signer.sign(&image.sigstruct())?;
        image.signature = Some(ImageSignature {
            signer_spki: signer.public_key_spki()?,
            signature,
        });
        Ok(image)
    }

    fn sigstruct(&self) -> Vec<u8> {
        let mut out = SIGSTRUCT_DOMAIN.to_vec();
        out.extend_from_slice(&self.measurement);
        out.extend_from_slice(&self.product_id.to_le_bytes());
        out.extend_from_slice(&self.security_version.to_le_bytes());
        out.push(u8::from(self.debug));
        out
    }

    /// The signer identity: SHA-384 of the signer's public key, if signed.
    pub fn signer(&self) -> Option<[u8; DIGEST_LEN]> {
        self.signature.as_ref().map(|s| sha384(&s.signer_spki))
    }
}

/// An enclave running on a simulated machine.
pub struct SimEnclave {
    machine: Arc<MachineSecrets>,
    identity: EnclaveIdentity,
    measurement: [u8; DIGEST_LEN],
    signer: [u8; DIGEST_LEN],
}

impl core::fmt::Debug for SimEnclave {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimEnclave")
            .field("identity", &self.identity)
            .finish()
    }
}

impl SimEnclave {
    pub(crate) fn new(
        machine: Arc<MachineSecrets>,
        image: &EnclaveImage,
    ) -> Result<Self, PlatformError> {
        let signer = match &image.signature {
            Some(sig) => {
                sign::verify(
                    sign::VerificationScheme::EcdsaP384Sha384Fixed,
                    &sig.signer_spki,
                    &image.sigstruct(),
                    &sig.signature,
                )
                .map_err(|_| {
                    PlatformError::BadImage(
                        "the image signature does not verify with its signer key".into(),
                    )
                })?;
                Some(sha384(&sig.signer_spki))
            }
            None => None,
        };
        Ok(Self {
            machine,
            identity: EnclaveIdentity {
                measurement: image.measurement.to_vec(),
                signer: signer.map(|s| s.to_vec()),
                product_id: image.product_id,
                security_version: image.security_version,
                debug: image.debug,
                launch_config: None,
            },
            measurement: image.measurement,
            signer: signer.unwrap_or([0; DIGEST_LEN]),
        })
    }

    /// Evidence with an explicit timestamp (the platform clock, for tests).
    pub fn evidence_at(
        &self,
        report_data: &ReportData,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, PlatformError> {
        let body = ReportBody {
            debug: self.identity.debug,
            tcb_svn: self.machine.tcb_svn,
            security_version: self.identity.security_version,
            product_id: self.identity.product_id,
            timestamp: u64::try_from(now.unix_timestamp()).unwrap_or(0),
            machine_id: self.machine.machine_id,
            measurement: self.measurement,
            signer: self.signer,
            report_data: *report_data,
        }
        .encode();
        let signature = self.machine.attestation_key.sign(&body)?;
        let evidence = SimEvidence {
            report: SimReport::assemble(&body, &signature)?,
            machine_certificate: self.machine.certificate.clone(),
            ca_certificates: self.machine.ca_certificates.clone(),
            crls: self.machine.crls.clone(),
            tcb_infos: self.machine.tcb_infos.clone(),
        };
        Ok(evidence.encode()?)
    }

    /// The identity `policy` binds sealing keys and counters to.
    fn bound_identity(&self, policy: SealPolicy) -> Result<&[u8], PlatformError> {
        match policy {
            SealPolicy::Measurement => Ok(&self.measurement),
            SealPolicy::Signer => {
                if self.identity.signer.is_none() {
                    return Err(PlatformError::Unsupported(
                        "this enclave is unsigned, so there is no signer to seal to; seal to the measurement".into(),
                    ));
                }
                Ok(&self.signer)
            }
        }
    }
}

impl Platform for SimEnclave {
    fn tee(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        self.evidence_at(report_data, OffsetDateTime::now_utc())
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        // Like SGX EGETKEY: the key depends on the machine's root, the policy, the
        // identity the policy names, the product, the requested security version (at
        // most the enclave's own, so an older build never derives a newer build's key),
        // and the debug attribute, so a debug build never opens what a production build
        // sealed.
        crate::check_security_version(&self.identity, security_version)?;
        let bound_to = self.bound_identity(policy)?;
        let mut key = veritee_crypto::Confidential::new([0u8; 32]);
        hkdf::derive_into(
            HkdfHash::Sha384,
            SEAL_SALT,
            self.machine.sealing_root.expose(),
            &[
                &[policy.code()],
                bound_to,
                &self.identity.product_id.to_le_bytes(),
                &security_version.to_le_bytes(),
                &[u8::from(self.identity.debug)],
                label,
            ],
            key.expose_mut(),
        )?;
        Ok(AeadKey::from_array(key))
    }

    fn monotonic_counter(
        &self,
        policy: SealPolicy,
        name: &str,
    ) -> Result<Box<dyn MonotonicCounter>, PlatformError> {
        let bound_to = self.bound_identity(policy)?;
        let counter = SimCounter::open(
            &self.machine,
            policy,
            bound_to,
            self.identity.product_id,
            self.identity.debug,
            name,
        )?;
        Ok(Box::new(counter))
    }

    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }
}
