//! Targets with a TPM 2.0: the target's side (its TPM keys, its answers, the seed
//! unsealed by its TPM) and the security module's (the TPM checks, the
//! MakeCredential round, the enrollment it completes).
//!
//! A TPM target holds two storage keys: its TPM's (non-exportable, usable only in the
//! measured state the PCRs show) and its enclave's own X25519 key; an authorization
//! seals the seed to the enclave's key, then the result to the TPM's, so it opens only
//! in that enclave on that platform in that state. (A TPM decrypts for any software in
//! the measured state, the host's included: the inner layer is what keeps the seed from
//! the host.)
//!
//! Enrollment of a TPM target takes two round trips through the orchestrator:
//! 1. the SM's challenge → the target's TPM evidence (EK certificate, AK, storage key
//!    certified by the AK over the nonce, PCR quote over the nonce) and its enclave's
//!    evidence binding its own key and the TPM keys' names to the nonce, sealed to the
//!    SM; the SM checks the TPM's
//!    ([`veritee_tpm::enrollment::verify_enrollment_cached`]) and the enclave's (as a
//!    TEE target's), and answers with a credential made to the EK for the AK's name;
//! 2. the target's TPM activates it (only the TPM holding that EK, with that AK, can)
//!    and returns the secret sealed to the SM; the SM compares it in constant time and
//!    only then records the target.
//!
//! The target keeps its TPM key blobs (encrypted by the TPM; they load into it only)
//! as a sealed record of its own, `workload-tpm-keys`.

use super::reply;
use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::collections::HashMap;
use veritee_attest::{Claims, HexBytes, ReportData};
use veritee_crypto::hpke::HpkePublicKey;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_proto::workload::{
    ACTIVATION_HPKE_INFO, ActivatedCredential, ActivationChallenge, EnrollOutcome,
    EnrollmentAnswer, EnrollmentChallenge, TPM_ENROLLMENT_HPKE_INFO, TPM_TARGET_BINDING_LABEL,
    tpm_target_binding,
};
use veritee_tpm::credential::{CredentialChallenge, make_credential};
use veritee_tpm::device::{TargetTpm, TpmKeys, normalize_pcrs};
use veritee_tpm::enrollment::{TpmEnrollmentEvidence, VerifiedTpmTarget, verify_enrollment_cached};
use veritee_tpm::policy::object_name;
use veritee_workload::{StorageKeyId, WorkloadFile, WorkloadSeed, tpm_storage_key_id};
use zeroize::Zeroizing;

const TPM_KEYS_RECORD: &str = "workload-tpm-keys";
/// How long a credential may wait for its activation, by the enclave's trusted time.
const ACTIVATION_LIFETIME: time::Duration = time::Duration::minutes(10);
/// Most credentials waiting at once.
const MAX_PENDING_ACTIVATIONS: usize = 64;

/// Where the target's TPM is and which PCRs its storage key is bound to.
pub(crate) struct TpmTargetConfig {
    /// The TCTI (`device:/dev/tpmrm0`, `swtpm:host=...,port=...`).
    pub(crate) tcti: String,
    /// SHA-256 PCRs the storage key's policy covers.
    pub(crate) pcrs: Vec<u32>,
    /// One TPM conversation at a time: its transient object slots are few.
    pub(crate) busy: std::sync::Mutex<()>,
}

/// A TPM target's answer to an enrollment challenge (CBOR, sealed to the SM).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct TpmEnrollmentAnswer {
    /// What its TPM shows.
    tpm: TpmEnrollmentEvidence,
    /// The enclave's own storage key (X25519).
    #[serde(with = "serde_bytes")]
    enclave_key: Vec<u8>,
    /// The enclave's evidence: report data = binding([`TPM_TARGET_BINDING_LABEL`],
    /// [`tpm_target_binding`], nonce).
    #[serde(with = "serde_bytes")]
    enclave_evidence: Vec<u8>,
}

/// A TPM target whose evidence verified, waiting for its credential's activation.
struct PendingActivation {
    nonce: String,
    secret: Zeroizing<[u8; 32]>,
    target: VerifiedTpmTarget,
    enclave_key: HpkePublicKey,
    at: time::OffsetDateTime,
}

/// What an owner's sealing policy judges a TPM target by: its TPM's claims (PCRs, EK)
/// with its enclave's code (measurement, signer, security version) and whether either
/// is simulated or debug.
fn merged_claims(tpm: Claims, enclave: &Claims) -> Claims {
    let mut claims = tpm;
    let primary = veritee_channel::peer::primary_measurement(enclave.tee);
    if let Some(measurement) = enclave.measurement(primary) {
        claims.measurements.insert(
            ENCLAVE_MEASUREMENT.to_string(),
            HexBytes(measurement.to_vec()),
        );
    }
    claims.signer = enclave.signer.clone();
    claims.security_version = enclave.security_version;
    claims.simulated |= enclave.simulated;
    claims.debug |= enclave.debug;
    claims
        .details
        .insert("enclave_tee".into(), enclave.tee.to_string());
    claims
}

/// The measurement name a TPM target's enclave code goes by in its claims.
pub(super) const ENCLAVE_MEASUREMENT: &str = "enclave_measurement";

/// Credentials sent and not yet activated: each is good once.
#[derive(Default)]
pub(crate) struct PendingActivations {
    by_id: HashMap<String, PendingActivation>,
}

impl PendingActivations {
    fn insert(&mut self, id: String, pending: PendingActivation) -> Result<(), EnclaveFailure> {
        let now = pending.at;
        self.by_id.retain(|_, p| now - p.at < ACTIVATION_LIFETIME);
        if self.by_id.len() >= MAX_PENDING_ACTIVATIONS {
            return Err(failure(
                FailureKind::TooMany,
                format!(
                    "{MAX_PENDING_ACTIVATIONS} TPM credentials are waiting for activation; try again later"
                ),
            ));
        }
        self.by_id.insert(id, pending);
        Ok(())
    }

    fn take(&mut self, id: &str, now: time::OffsetDateTime) -> Option<PendingActivation> {
        let pending = self.by_id.remove(id)?;
        (now - pending.at < ACTIVATION_LIFETIME).then_some(pending)
    }
}

fn tpm_failure(kind: FailureKind) -> impl Fn(veritee_tpm::TpmError) -> EnclaveFailure {
    move |e| failure(kind, e.to_string())
}

impl EnclaveService {
    fn tpm_config(&self) -> Option<&TpmTargetConfig> {
        self.tpm_target.as_ref()
    }

    /// The target's TPM keys, created on first use.
    fn tpm_keys(
        &self,
        config: &TpmTargetConfig,
        tpm: &mut TargetTpm,
        link: &mut dyn HostLink,
    ) -> Result<TpmKeys, EnclaveFailure> {
        let ns = self.enclave_ns()?;
        let _one_at_a_time = lock(&self.workload_writes);
        if let Some(record) = self.record_get(link, &ns, TPM_KEYS_RECORD)? {
            let keys: TpmKeys = serde_json::from_slice(record.expose()).map_err(internal)?;
            // Compared as the keys hold them (ascending, once each): `--tpm-pcrs 7,0`
            // is the same selection as `0,7`, and must not make new keys every time.
            let wanted =
                normalize_pcrs(&config.pcrs).map_err(tpm_failure(FailureKind::BadRequest))?;
            if keys.pcrs == wanted {
                return Ok(keys);
            }
        }
        let keys = tpm
            .create_keys(&config.pcrs)
            .map_err(tpm_failure(FailureKind::Unavailable))?;
        self.record_put(
            link,
            &ns,
            TPM_KEYS_RECORD,
            &serde_json::to_vec(&keys).map_err(internal)?,
        )?;
        Ok(keys)
    }

    fn open_tpm<'a>(
        &'a self,
    ) -> Result<
        (
            &'a TpmTargetConfig,
            std::sync::MutexGuard<'a, ()>,
            TargetTpm,
        ),
        EnclaveFailure,
    > {
        let config = self.tpm_config().ok_or_else(|| {
            failure(
                FailureKind::NotFound,
                "this target has no TPM configured (`veritee node --tpm TCTI`)",
            )
        })?;
        let busy = lock(&config.busy);
        let tpm = TargetTpm::open(&config.tcti).map_err(tpm_failure(FailureKind::Unavailable))?;
        Ok((config, busy, tpm))
    }

    /// A TPM target's answer to an enrollment challenge.
    pub(super) fn answer_challenge_tpm(
        &self,
        challenge: &super::target::Challenge,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let enclave_key = self.storage_key(link)?.public_key();
        let (config, _busy, mut tpm) = self.open_tpm()?;
        let keys = self.tpm_keys(config, &mut tpm, link)?;
        let evidence = tpm
            .enrollment_evidence(&keys, &challenge.nonce)
            .map_err(tpm_failure(FailureKind::Unavailable))?;
        let bound = tpm_target_binding(
            enclave_key.as_bytes(),
            &object_name(&keys.ak_public).map_err(internal)?,
            &object_name(&keys.storage_public).map_err(internal)?,
        );
        let enclave_evidence = self
            .platform()
            .evidence(&ReportData::binding(
                TPM_TARGET_BINDING_LABEL,
                &bound,
                &challenge.nonce,
            ))
            .map_err(internal)?;
        challenge.answer_as(
            TPM_ENROLLMENT_HPKE_INFO,
            &TpmEnrollmentAnswer {
                tpm: evidence,
                enclave_key: enclave_key.as_bytes().to_vec(),
                enclave_evidence,
            },
            true,
        )
    }

    /// `POST /v1/workloads/activation`: the TPM activates the SM's credential.
    pub(super) fn activate_credential(
        &self,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let activation: ActivationChallenge = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid activation challenge: {e}")))?;
        let credential = CredentialChallenge {
            credential_blob: B64
                .decode(&activation.credential_blob)
                .map_err(|e| bad(format!("the credential blob is not base64: {e}")))?,
            encrypted_secret: B64
                .decode(&activation.encrypted_secret)
                .map_err(|e| bad(format!("the encrypted secret is not base64: {e}")))?,
        };
        let challenge = super::target::Challenge::parse(
            &serde_json::to_vec(&EnrollmentChallenge {
                challenge_id: activation.challenge_id,
                nonce: activation.nonce,
                sm_public_key: activation.sm_public_key,
            })
            .map_err(internal)?,
        )?;
        let (config, _busy, mut tpm) = self.open_tpm()?;
        let keys = self.tpm_keys(config, &mut tpm, link)?;
        let secret = tpm
            .activate_credential(&keys, &credential)
            .map_err(tpm_failure(FailureKind::Unauthorized))?;
        challenge.answer_as(
            ACTIVATION_HPKE_INFO,
            &ActivatedCredential {
                secret: secret.to_vec(),
            },
            true,
        )
    }

    /// A TPM target's launch: its slot in `file`, the TPM's layer taken off under the
    /// PCR policy and the enclave's opened, in one TPM conversation. None when this
    /// target has no TPM.
    pub(super) fn unseal_with_tpm(
        &self,
        file: &WorkloadFile<'_>,
        now: u64,
        link: &mut dyn HostLink,
    ) -> Result<Option<(StorageKeyId, WorkloadSeed)>, EnclaveFailure> {
        if self.tpm_config().is_none() {
            return Ok(None);
        }
        let enclave_key = self.storage_key(link)?;
        let (config, _busy, mut tpm) = self.open_tpm()?;
        let keys = self.tpm_keys(config, &mut tpm, link)?;
        let key_id = tpm_storage_key_id(&enclave_key.public_key(), &keys.storage_public);
        let refused = |e| super::refused(FailureKind::Unauthorized, e);
        let seed = file
            .slot_for(&key_id)
            .map_err(refused)?
            .unseal_with_tpm(key_id, now, &enclave_key, |ciphertext, label| {
                tpm.decrypt(&keys, ciphertext, label)
            })
            .map_err(refused)?;
        Ok(Some((key_id, seed)))
    }

    /// Deprovisioning a TPM target: a new TPM storage key under the same PCRs, and a
    /// new enclave key (the old TPM key's blob still loads, so it is the enclave's
    /// layer that revokes). Returns the old pair's id and the new one's.
    pub(super) fn rotate_tpm_storage_key(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<(Option<StorageKeyId>, StorageKeyId), EnclaveFailure> {
        let old_enclave = self.storage_key(link)?.public_key();
        let (config, _busy, mut tpm) = self.open_tpm()?;
        let keys = self.tpm_keys(config, &mut tpm, link)?;
        let fresh = tpm
            .rotate_storage_key(&keys)
            .map_err(tpm_failure(FailureKind::Unavailable))?;
        let new_enclave = self.replace_storage_key(link)?.public_key();
        let ns = self.enclave_ns()?;
        let _one_at_a_time = lock(&self.workload_writes);
        self.record_put(
            link,
            &ns,
            TPM_KEYS_RECORD,
            &serde_json::to_vec(&fresh).map_err(internal)?,
        )?;
        Ok((
            Some(tpm_storage_key_id(&old_enclave, &keys.storage_public)),
            tpm_storage_key_id(&new_enclave, &fresh.storage_public),
        ))
    }

    /// The SM's first step for a TPM target: check its evidence, then send a
    /// credential only its TPM can activate.
    pub(super) fn enroll_tpm(
        &self,
        challenge_id: &str,
        answer: TpmEnrollmentAnswer,
        nonce: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let enclave_key = HpkePublicKey::from_bytes(&answer.enclave_key)
            .map_err(|e| bad(format!("the TPM target's enclave key: {e}")))?;
        let evidence = answer.tpm;
        if self.tpm_anchors.is_empty() {
            return Err(failure(
                FailureKind::Unavailable,
                "this security module has no TPM manufacturer CA configured (--tpm-ca), so it cannot check a TPM's endorsement key",
            ));
        }
        let at = self.clock().now();
        // The CAs given include the manufacturers' intermediates: they build paths, the
        // roots anchor them (so a root's CRL applies to its intermediates).
        let (roots, intermediates) =
            veritee_tpm::enrollment::split_manufacturer_cas(&self.tpm_anchors);
        let target = verify_enrollment_cached(
            &evidence,
            nonce,
            &roots,
            &intermediates,
            &self.tpm_crls,
            at,
            &mut lock(&self.verified_eks),
        )
        .map_err(|e| {
            failure(
                FailureKind::Unauthorized,
                format!("TPM target refused: {e}"),
            )
        })?;
        // The enclave vouches for its own key and for the TPM keys the SM just checked:
        // a host that made TPM keys of its own has no enclave evidence naming them.
        let bound = tpm_target_binding(
            enclave_key.as_bytes(),
            &target.ak_name,
            &object_name(&target.storage_public).map_err(internal)?,
        );
        let enclave = self.appraise_target(
            &answer.enclave_evidence,
            &ReportData::binding(TPM_TARGET_BINDING_LABEL, &bound, nonce),
        )?;
        let target = VerifiedTpmTarget {
            claims: merged_claims(target.claims, &enclave),
            ..target
        };
        let mut secret = Zeroizing::new([0u8; 32]);
        *secret = veritee_crypto::rand::array().map_err(internal)?;
        let credential =
            make_credential(&target.ek_public, &target.ak_name, &secret[..]).map_err(internal)?;
        let node_key = B64.encode(self.node(link)?.wrapping.public_key().as_bytes());
        let nonce_b64 = B64.encode(nonce);
        lock(&self.pending_activations).insert(
            challenge_id.to_string(),
            PendingActivation {
                nonce: nonce_b64.clone(),
                secret,
                target,
                enclave_key,
                at,
            },
        )?;
        reply(&EnrollOutcome::Activate {
            activation: ActivationChallenge {
                challenge_id: challenge_id.to_string(),
                nonce: nonce_b64,
                sm_public_key: node_key,
                credential_blob: B64.encode(credential.credential_blob),
                encrypted_secret: B64.encode(credential.encrypted_secret),
            },
        })
    }

    /// `POST /v1/sm/enrollments/{id}/activation`: the TPM's answer to the credential;
    /// the target is enrolled only if it is the secret the SM made.
    pub(super) fn finish_tpm_enrollment(
        &self,
        challenge_id: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let answer: EnrollmentAnswer = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid activation answer: {e}")))?;
        let pending = lock(&self.pending_activations)
            .take(challenge_id, self.clock().now())
            .ok_or_else(|| {
                failure(
                    FailureKind::NotFound,
                    format!(
                        "no TPM credential is waiting for enrollment {challenge_id:?} (unknown, used or expired: a credential is good once, for {} minutes)",
                        ACTIVATION_LIFETIME.whole_minutes()
                    ),
                )
            })?;
        let activated: ActivatedCredential = self.open_sealed_answer(
            ACTIVATION_HPKE_INFO,
            "activation answer",
            challenge_id,
            &pending.nonce,
            &answer.sealed,
            link,
        )?;
        if !veritee_crypto::ct_eq(&activated.secret, &pending.secret[..]) {
            return Err(failure(
                FailureKind::Unauthorized,
                "TPM target refused: its answer to the credential is wrong (ActivateCredential was not run by the TPM holding the enrolled EK and AK)",
            ));
        }
        let target = pending.target;
        self.record_enrollment(
            target.claims,
            super::sm::EnrolledKey::Tpm {
                enclave: pending.enclave_key,
                spki: target.storage_key_spki,
                public_area: target.storage_public,
            },
            link,
        )
    }
}
