//! The target's side: its storage key, its answer to an enrollment challenge, and the
//! launch check before a workload runs.
//!
//! The storage key is an X25519 key the enclave creates and keeps as a sealed record
//! of its own, which also names the measurement that made it: another build, even one
//! that can unseal the record (same signer), makes a key of its own. It never leaves
//! the enclave, and the evidence that enrolls it binds its public half to the SM's
//! fresh nonce. Rotating it (deprovisioning) makes every authorization issued to the
//! old key unopenable.

use super::{refused, reply};
use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use veritee_attest::ReportData;
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_crypto::{Confidential, SecretBytes};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_proto::workload::{
    ENROLLMENT_HPKE_INFO, EnrollmentAnswer, EnrollmentChallenge, EnrollmentEvidence, LaunchOutput,
    LaunchResponse, ModuleOutput, RotateResponse, STORAGE_KEY_BINDING_LABEL, challenge_aad,
    launch_context, launch_nonce,
};
use veritee_wasm::{
    Access, CompartmentSpec, DEFAULT_ENTRY, Input, SecurityContext, TaskLimits, TaskSpec,
};
use veritee_workload::{
    ComponentKind, OpenedWorkload, StorageKeyId, WorkloadError, WorkloadFile, WorkloadSeed,
    storage_key_id,
};
use zeroize::Zeroizing;

const STORAGE_KEY_RECORD: &str = "workload-storage-key";

/// A security module's challenge as a target reads it: enrollment or release.
pub(super) struct Challenge {
    request: EnrollmentChallenge,
    /// The nonce the evidence must bind.
    pub(super) nonce: Vec<u8>,
    sm_key: HpkePublicKey,
}

impl Challenge {
    pub(super) fn parse(body: &[u8]) -> Result<Self, EnclaveFailure> {
        let request: EnrollmentChallenge =
            serde_json::from_slice(body).map_err(|e| bad(format!("invalid challenge: {e}")))?;
        let nonce = B64
            .decode(&request.nonce)
            .ok()
            .filter(|n| n.len() == 32)
            .ok_or_else(|| bad("the challenge nonce is not 32 bytes of base64"))?;
        let sm_key = B64
            .decode(&request.sm_public_key)
            .ok()
            .and_then(|k| HpkePublicKey::from_bytes(&k).ok())
            .ok_or_else(|| bad("the SM's key is not an X25519 public key in base64"))?;
        Ok(Self {
            request,
            nonce,
            sm_key,
        })
    }

    /// The challenge's id.
    pub(super) fn id(&self) -> &str {
        &self.request.challenge_id
    }

    /// `inner` as CBOR, sealed to the SM under `info` and this challenge: the
    /// orchestrator carries it unread.
    pub(super) fn answer(
        &self,
        info: &[u8],
        inner: &impl serde::Serialize,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.answer_as(info, inner, false)
    }

    /// As [`Self::answer`], marked as a TPM target's when `tpm`.
    pub(super) fn answer_as(
        &self,
        info: &[u8],
        inner: &impl serde::Serialize,
        tpm: bool,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // It may hold a secret (an activated credential): wiped once sealed, and sized
        // exactly, so that no grown-out-of copy of it is left behind.
        let plaintext = Zeroizing::new(veritee_proto::cbor::to_vec_exact(inner).map_err(internal)?);
        let sealed = hpke::seal(
            &self.sm_key,
            info,
            &challenge_aad(info, &self.request.challenge_id, &self.request.nonce),
            &plaintext,
        )
        .map_err(internal)?;
        reply(&EnrollmentAnswer {
            sealed: B64.encode(sealed),
            tpm,
        })
    }
}

fn key_pair(raw: &[u8]) -> Result<HpkeKeyPair, EnclaveFailure> {
    if raw.len() != hpke::PRIVATE_KEY_LEN {
        return Err(internal(
            "the stored workload storage key has the wrong length",
        ));
    }
    let mut private = Confidential::new([0u8; hpke::PRIVATE_KEY_LEN]);
    private.expose_mut().copy_from_slice(raw);
    HpkeKeyPair::from_private_bytes(&private).map_err(internal)
}

/// The storage key's record: private key, then the measurement that made it.
fn storage_record(key: &HpkeKeyPair, measurement: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut record = Zeroizing::new(Vec::with_capacity(
        hpke::PRIVATE_KEY_LEN + measurement.len(),
    ));
    record.extend_from_slice(key.private_bytes().expose());
    record.extend_from_slice(measurement);
    record
}

impl EnclaveService {
    pub(super) fn enclave_ns(&self) -> Result<String, EnclaveFailure> {
        Ok(format!("enclave/{}", self.node_id()?))
    }

    /// The storage key, created on first use. Its record names the measurement that
    /// made it: another build (even one sealing to the same signer) makes its own key,
    /// so what an owner authorized for one build never opens in another.
    pub(super) fn storage_key(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<HpkeKeyPair, EnclaveFailure> {
        let ns = self.enclave_ns()?;
        let own = self.platform().identity().measurement.clone();
        // Two first uses at once must not make two keys.
        let _one_at_a_time = lock(&self.workload_writes);
        if let Some(record) = self.record_get(link, &ns, STORAGE_KEY_RECORD)?
            && let Some((key, measurement)) =
                record.expose().split_at_checked(hpke::PRIVATE_KEY_LEN)
            && measurement == own.as_slice()
        {
            return key_pair(key);
        }
        let fresh = HpkeKeyPair::generate();
        self.record_put(link, &ns, STORAGE_KEY_RECORD, &storage_record(&fresh, &own))?;
        Ok(fresh)
    }

    pub(super) fn answer_challenge(
        &self,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let challenge = Challenge::parse(body)?;
        if self.tpm_target.is_some() {
            return self.answer_challenge_tpm(&challenge, link);
        }
        let storage = self.storage_key(link)?;
        let public = storage.public_key();
        let evidence = self
            .platform()
            .evidence(&ReportData::binding(
                STORAGE_KEY_BINDING_LABEL,
                public.as_bytes(),
                &challenge.nonce,
            ))
            .map_err(internal)?;
        challenge.answer(
            ENROLLMENT_HPKE_INFO,
            &EnrollmentEvidence {
                storage_public_key: public.as_bytes().to_vec(),
                evidence,
            },
        )
    }

    pub(super) fn launch(
        &self,
        nonce: &str,
        workload: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let file =
            WorkloadFile::parse(workload).map_err(|e| refused(FailureKind::BadRequest, e))?;
        let now = u64::try_from(self.clock().now().unix_timestamp()).unwrap_or(0);
        // A TPM target's storage key is its TPM's: the seed is unsealed there.
        if let Some((key_id, seed)) = self.unseal_with_tpm(&file, now, link)? {
            return self.run_launch(&file, &seed, key_id, nonce, link);
        }
        let storage = self.storage_key(link)?;
        let key_id = storage_key_id(&storage.public_key());
        let slot = file
            .slot_for(&key_id)
            .map_err(|e| refused(FailureKind::Unauthorized, e))?;
        let seed = slot
            .unseal(&storage, now)
            .map_err(|e| refused(FailureKind::Unauthorized, e))?;
        self.run_launch(&file, &seed, key_id, nonce, link)
    }

    /// The launch check under `seed`, then the modules; what they wrote is sealed to
    /// the seed, under the id of the key that opened the seed.
    pub(super) fn run_launch(
        &self,
        file: &WorkloadFile<'_>,
        seed: &WorkloadSeed,
        key_id: StorageKeyId,
        nonce: &str,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let nonce_bytes =
            launch_nonce(nonce).ok_or_else(|| bad("the launch nonce is 16 to 64 bytes of hex"))?;
        let opened = file.open(seed).map_err(|e| match e {
            // Its name is inside the encryption: it stays there.
            WorkloadError::ComponentHash { kind, .. } => failure(
                FailureKind::Unauthorized,
                format!("a workload {kind} component does not match its hash"),
            ),
            e => refused(FailureKind::Unauthorized, e),
        })?;
        let output = run_modules(&opened);
        drop(opened);
        let output_json = Zeroizing::new(serde_json::to_vec(&output).map_err(internal)?);
        drop(output);
        let sealed_output = seed
            .output_box(&file.id())
            .and_then(|b| {
                b.seal_for(
                    &key_id,
                    &launch_context(&nonce_bytes, &file.digest()),
                    &output_json,
                )
            })
            .map_err(|e| refused(FailureKind::Internal, e))?;
        self.audit(
            link,
            "workload.launch",
            "orchestrator",
            &file.id().to_string(),
            "ran",
        )?;
        reply(&LaunchResponse {
            nonce: nonce.to_string(),
            workload_id: file.id().to_string(),
            storage_key_id: key_id.to_string(),
            sealed_output: B64.encode(sealed_output),
        })
    }

    pub(super) fn rotate_storage_key(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        if self.tpm_target.is_some() {
            let (previous, id) = self.rotate_tpm_storage_key(link)?;
            return self.rotated(link, previous, id);
        }
        let ns = self.enclave_ns()?;
        let previous = self
            .record_get(link, &ns, STORAGE_KEY_RECORD)?
            .and_then(|raw| {
                raw.expose()
                    .get(..hpke::PRIVATE_KEY_LEN)
                    .map(|k| key_pair(k).map(|k| storage_key_id(&k.public_key())))
            })
            .transpose()?;
        let fresh = self.replace_storage_key(link)?;
        self.rotated(link, previous, storage_key_id(&fresh.public_key()))
    }

    /// A new storage key in place of the old one, which is gone with its record.
    pub(super) fn replace_storage_key(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<HpkeKeyPair, EnclaveFailure> {
        let ns = self.enclave_ns()?;
        let _one_at_a_time = lock(&self.workload_writes);
        let fresh = HpkeKeyPair::generate();
        let own = self.platform().identity().measurement.clone();
        self.record_put(link, &ns, STORAGE_KEY_RECORD, &storage_record(&fresh, &own))?;
        Ok(fresh)
    }

    fn rotated(
        &self,
        link: &mut dyn HostLink,
        previous: Option<StorageKeyId>,
        id: StorageKeyId,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.audit(
            link,
            "workload.storage-key.rotate",
            "operator",
            &id.to_string(),
            "rotated",
        )?;
        reply(&RotateResponse {
            storage_key_id: id.to_string(),
            previous: previous.map(|p| p.to_string()),
        })
    }
}

/// Runs each module of the workload on its own, with the configuration and secrets as
/// its inputs (in the workload's order), so one module's trap does not hide another's
/// result. Returns what they produced.
fn run_modules(opened: &OpenedWorkload) -> LaunchOutput {
    let inputs: Vec<Input> = opened
        .components()
        .iter()
        .filter(|c| c.kind != ComponentKind::Module)
        .map(|c| {
            Input::from_source(
                c.name.clone(),
                Arc::new(SecretBytes::copy_from(opened.data(c))),
            )
        })
        .collect();
    let mut output = LaunchOutput {
        modules: Vec::new(),
    };
    for (component, module) in opened.of_kind(ComponentKind::Module) {
        let spec = TaskSpec {
            compartments: vec![CompartmentSpec {
                name: "workload".into(),
                module: Arc::from(module),
                inputs: inputs.clone(),
                entry: DEFAULT_ENTRY.into(),
                keys: None,
            }],
            security: SecurityContext {
                compartments: [(
                    "workload".to_string(),
                    Access {
                        may_read: Default::default(),
                        releases: true,
                    },
                )]
                .into_iter()
                .collect(),
            },
        };
        let result = veritee_wasm::run_task(&spec, &TaskLimits::default());
        output.modules.push(match result {
            Ok(mut outcome) => match outcome.compartments.pop() {
                Some(ran) => ModuleOutput {
                    name: component.name.clone(),
                    exit_code: Some(ran.exit_code),
                    error: None,
                    fuel_used: ran.fuel_used,
                    output: B64.encode(ran.output.unwrap_or_default()),
                    log: String::from_utf8_lossy(&ran.log.unwrap_or_default()).into_owned(),
                },
                None => ModuleOutput {
                    name: component.name.clone(),
                    exit_code: None,
                    error: Some("the module produced no result".into()),
                    fuel_used: 0,
                    output: String::new(),
                    log: String::new(),
                },
            },
            Err(e) => ModuleOutput {
                name: component.name.clone(),
                exit_code: None,
                error: Some(e.to_string()),
                fuel_used: 0,
                output: String::new(),
                log: String::new(),
            },
        });
    }
    output
}
