//! The security module's side: it holds seeds, enrolls targets and issues
//! authorizations, and never reveals a seed.
//!
//! Records, in the namespace `sm/{node id}` (sealed, under the state root):
//! - `seed/{workload}`: seed (32 bytes), then the JSON [`SeedMeta`];
//! - `target/{handle}`: the JSON [`TargetRecord`] (storage key, claims verified at
//!   enrollment);
//! - `target-id/{identity}`: the handle, so a target (its platform and code) enrolls
//!   once, whatever storage key it presents;
//! - `forgotten/{owner}/{handle}`: a target its owner forgot, never authorized again
//!   for that owner's workloads;
//! - `auth/{workload}/{handle}`: the authorization issued (148 bytes), returned again
//!   to anyone who asks for the same pair: there is never a second.
//!
//! The orchestrator (untrusted) asks for challenges, enrollments and authorizations
//! without a tenant signature: what it gets is decided by the owner's sealing policy,
//! which it cannot change. Putting a seed and forgetting a target are the owner's,
//! signed.

use super::{refused, reply};
use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use veritee_attest::{Claims, ReportData, TeeKind};
use veritee_crypto::hpke::{self, HpkePublicKey};
use veritee_policy::AppraisalPolicy;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};
use veritee_proto::workload::{
    AuthorizeRequest, AuthorizeResponse, ENROLLMENT_HPKE_INFO, EnrollResponse, EnrollmentAnswer,
    EnrollmentChallenge, EnrollmentEvidence, ForgetRequest, PutSeedRequest, PutSeedResponse,
    SEED_HPKE_INFO, STORAGE_KEY_BINDING_LABEL, SmAuthorization, SmState, SmTarget, SmWorkload,
    TPM_ENROLLMENT_HPKE_INFO, challenge_aad, paths, seed_aad,
};
use veritee_proto::workload::{
    MEASUREMENT_BINDING_LABEL, MEASUREMENT_HPKE_INFO, MeasurementEvidence, RELEASE_HPKE_INFO,
    ReleaseRequest, ReleaseResponse, release_aad,
};
use veritee_workload::{
    Authorization, SEED_LEN, WorkloadId, WorkloadSeed, storage_key_id, tpm_storage_key_id,
};
use zeroize::Zeroizing;

/// How long a challenge may wait for its answer, by the enclave's trusted time.
const CHALLENGE_LIFETIME: time::Duration = time::Duration::minutes(10);
/// Most challenges waiting at once.
const MAX_PENDING_CHALLENGES: usize = 256;
/// Shortest and longest validity an owner may give authorizations.
const VALIDITY_SECONDS: core::ops::RangeInclusive<u64> = 60..=366 * 24 * 3600;

/// Challenges issued and not yet answered: each is good once.
#[derive(Default)]
pub(crate) struct PendingChallenges {
    by_id: HashMap<String, (String, time::OffsetDateTime)>,
}

impl PendingChallenges {
    fn insert(
        &mut self,
        id: String,
        nonce: String,
        now: time::OffsetDateTime,
    ) -> Result<(), EnclaveFailure> {
        self.by_id
            .retain(|_, (_, at)| now - *at < CHALLENGE_LIFETIME);
        if self.by_id.len() >= MAX_PENDING_CHALLENGES {
            return Err(failure(
                FailureKind::TooMany,
                format!(
                    "{MAX_PENDING_CHALLENGES} enrollment challenges are waiting for answers; try again later"
                ),
            ));
        }
        self.by_id.insert(id, (nonce, now));
        Ok(())
    }

    fn take(&mut self, id: &str, now: time::OffsetDateTime) -> Option<String> {
        let (nonce, at) = self.by_id.remove(id)?;
        (now - at < CHALLENGE_LIFETIME).then_some(nonce)
    }
}

/// What the SM keeps beside a seed.
#[derive(Serialize, Deserialize)]
struct SeedMeta {
    owner: String,
    workload_digest: String,
    policy: String,
    validity_seconds: u64,
}

/// An enrolled target.
#[derive(Serialize, Deserialize)]
struct TargetRecord {
    /// The target enclave's X25519 storage key, hex.
    storage_public_key: String,
    storage_key_id: String,
    claims: Claims,
    enrolled_at: i64,
    /// A TPM target's TPM storage key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tpm: Option<TpmKeyRecord>,
}

/// A TPM target's TPM storage key, as its enrollment established it.
#[derive(Serialize, Deserialize)]
struct TpmKeyRecord {
    /// DER SubjectPublicKeyInfo, hex.
    spki: String,
    /// TPMT_PUBLIC, hex.
    public_area: String,
}

/// The storage key a target enrolled with, as its checks established it.
pub(super) enum EnrolledKey {
    /// An enclave's X25519 key, bound into its evidence.
    Enclave(HpkePublicKey),
    /// A TPM target's keys: its enclave's X25519 key, bound into the enclave's
    /// evidence, and its TPM's RSA storage key, certified by its AK.
    Tpm {
        /// The enclave's key.
        enclave: HpkePublicKey,
        /// The TPM key's DER SubjectPublicKeyInfo.
        spki: Vec<u8>,
        /// The TPM key's TPMT_PUBLIC.
        public_area: Vec<u8>,
    },
}

fn seed_record(workload: &WorkloadId) -> String {
    format!("seed/{workload}")
}

fn target_record(handle: &str) -> String {
    format!("target/{handle}")
}

fn forgotten_record(owner: &str, handle: &str) -> String {
    format!("forgotten/{owner}/{handle}")
}

fn target_identity_record(identity: &str) -> String {
    format!("target-id/{identity}")
}

/// What makes a target the same target whatever its storage key: its platform (the
/// chip, machine or PPID its evidence names) and the code it runs, so that a host that
/// rotates a target's key and enrolls it again gets the same handle, and never a
/// second authorization. Evidence that names no platform falls back to the key.
fn target_identity(claims: &Claims, storage_key_id: &str) -> String {
    let mut h = veritee_crypto::digest::Sha256::default();
    h.update(b"veritee sm target identity v1");
    match &claims.platform_id {
        Some(platform) => {
            h.update(b"platform");
            h.update(&(platform.0.len() as u64).to_be_bytes());
            h.update(&platform.0);
            // A TPM target is its TPM (the EK) and its enclave's code, whatever PCRs
            // it chose to quote.
            let name = match claims.tee {
                TeeKind::Tpm2 => super::tpm::ENCLAVE_MEASUREMENT,
                tee => veritee_channel::peer::primary_measurement(tee),
            };
            let measurement = claims.measurement(name).unwrap_or_default();
            h.update(&(measurement.len() as u64).to_be_bytes());
            h.update(measurement);
            h.update(claims.tee.to_string().as_bytes());
        }
        None => {
            h.update(b"key");
            h.update(storage_key_id.as_bytes());
        }
    }
    hex::encode(h.finish())
}

fn auth_record(workload: &WorkloadId, handle: &str) -> String {
    format!("auth/{workload}/{handle}")
}

fn workload_id(text: &str) -> Result<WorkloadId, EnclaveFailure> {
    WorkloadId::from_hex(text).map_err(|e| bad(e.to_string()))
}

fn check_handle(text: &str) -> Result<(), EnclaveFailure> {
    if text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(bad(format!(
            "a target handle is 32 lowercase hex digits, not {text:?}"
        )))
    }
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, EnclaveFailure> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid {what}: {e}")))
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, EnclaveFailure> {
    B64.decode(text)
        .map_err(|e| bad(format!("{what} is not base64: {e}")))
}

/// Every criterion an appraisal failed, with its reason.
fn failed_criteria(appraisal: &veritee_policy::Appraisal) -> String {
    appraisal
        .failed
        .iter()
        .map(|f| format!("{}: {}", f.criterion, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn unix(at: time::OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp()).unwrap_or(0)
}

impl EnclaveService {
    fn sm_ns(&self) -> Result<String, EnclaveFailure> {
        Ok(format!("sm/{}", self.node_id()?))
    }

    /// What every target must meet to be enrolled at all: genuine, not debug, up to
    /// date; simulated only when this SM is simulated itself. Each workload's own
    /// sealing policy is applied on top when it is authorized.
    fn enrollment_policy(&self) -> AppraisalPolicy {
        let mut policy = AppraisalPolicy::default_hardware();
        if self.platform().tee() == TeeKind::Simulated {
            policy.tee.push(TeeKind::Simulated);
            policy.allow_simulated = true;
        }
        policy
    }

    pub(super) fn put_seed(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::sm_seeds(), body, link)?;
        let put: PutSeedRequest = json(body, "seed request")?;
        let id = workload_id(&put.workload_id)?;
        if put.workload_digest.len() != 64
            || !put.workload_digest.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad(
                "the workload digest is 64 hex digits (`veritee workload inspect`)",
            ));
        }
        let sealing = AppraisalPolicy::parse(&put.policy)
            .map_err(|e| bad(format!("the sealing policy: {e}")))?;
        // A policy that names no code would let any genuine TEE running anyone's code
        // (the host's own, say) be authorized.
        if sealing.measurements.is_empty() && sealing.signers.is_empty() {
            return Err(bad(
                "the sealing policy names no `measurements` or `signers`: it would let any code in an acceptable TEE open the workload",
            ));
        }
        if !VALIDITY_SECONDS.contains(&put.validity_seconds) {
            return Err(bad(format!(
                "authorizations are valid {} to {} seconds, not {}",
                VALIDITY_SECONDS.start(),
                VALIDITY_SECONDS.end(),
                put.validity_seconds
            )));
        }
        let sealed = b64(&put.sealed_seed, "the sealed seed")?;
        let node = self.node(link)?;
        let seed = hpke::open(
            &node.wrapping,
            SEED_HPKE_INFO,
            &seed_aad(
                &put.workload_id,
                &put.workload_digest,
                &tenant,
                &put.policy,
                put.validity_seconds,
                &self.node_id()?,
            ),
            &sealed,
        )
        .map_err(|_| {
            failure(
                FailureKind::Unauthorized,
                "the sealed seed does not open: it was not sealed to this security module's attested key for this workload, digest, owner, policy and validity (a seed put by another tenant than its owner is refused)",
            )
        })?;
        let seed = WorkloadSeed::from_bytes(seed.expose()).map_err(|e| bad(e.to_string()))?;
        let meta = SeedMeta {
            owner: tenant.clone(),
            workload_digest: put.workload_digest.to_ascii_lowercase(),
            policy: put.policy,
            validity_seconds: put.validity_seconds,
        };
        let ns = self.sm_ns()?;
        let _one_at_a_time = lock(&self.workload_writes);
        if let Some((held, held_meta)) = self.load_seed(link, &ns, &id)? {
            if held_meta.owner == tenant
                && held.same_as(&seed)
                && held_meta.workload_digest == meta.workload_digest
                && held_meta.policy == meta.policy
                && held_meta.validity_seconds == meta.validity_seconds
            {
                return reply(&PutSeedResponse {
                    workload_id: id.to_string(),
                    created: false,
                });
            }
            return Err(failure(
                FailureKind::Conflict,
                format!(
                    "workload {id} has a seed here already, with other contents or another owner: a seed is never replaced (build the workload again for a new one)"
                ),
            ));
        }
        let meta_json = serde_json::to_vec(&meta).map_err(internal)?;
        let mut record = Zeroizing::new(Vec::with_capacity(SEED_LEN + meta_json.len()));
        record.extend_from_slice(seed.expose());
        record.extend_from_slice(&meta_json);
        self.record_put(link, &ns, &seed_record(&id), &record)?;
        self.audit(link, "sm.seed.put", &tenant, &id.to_string(), "stored")?;
        reply(&PutSeedResponse {
            workload_id: id.to_string(),
            created: true,
        })
    }

    fn load_seed(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        id: &WorkloadId,
    ) -> Result<Option<(WorkloadSeed, SeedMeta)>, EnclaveFailure> {
        let Some(record) = self.record_get(link, ns, &seed_record(id))? else {
            return Ok(None);
        };
        let bytes = record.expose();
        if bytes.len() < SEED_LEN {
            return Err(internal(format!("the seed record of {id} is too short")));
        }
        let (seed, meta) = bytes.split_at(SEED_LEN);
        let seed = WorkloadSeed::from_bytes(seed).map_err(internal)?;
        let meta: SeedMeta = serde_json::from_slice(meta).map_err(internal)?;
        Ok(Some((seed, meta)))
    }

    pub(super) fn challenge(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let node = self.node(link)?;
        let id = hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?);
        let nonce = B64.encode(veritee_crypto::rand::array::<32>().map_err(internal)?);
        let now = self.clock().now();
        lock(&self.workload_challenges).insert(id.clone(), nonce.clone(), now)?;
        reply(&EnrollmentChallenge {
            challenge_id: id,
            nonce,
            sm_public_key: B64.encode(node.wrapping.public_key().as_bytes()),
        })
    }

    /// A target's answer to challenge `challenge_id` (taken: a challenge is good
    /// once), opened with this SM's key under `info`; with the challenge's nonce.
    fn open_answer<T: serde::de::DeserializeOwned>(
        &self,
        info: &[u8],
        what: &str,
        challenge_id: &str,
        sealed: &str,
        link: &mut dyn HostLink,
    ) -> Result<(T, Vec<u8>), EnclaveFailure> {
        let nonce = self.take_challenge(challenge_id)?;
        let inner = self.open_sealed_answer(info, what, challenge_id, &nonce, sealed, link)?;
        Ok((inner, b64(&nonce, "the challenge nonce")?))
    }

    /// An answer sealed to this SM under `info`, for challenge `challenge_id` with
    /// `nonce` (base64).
    pub(super) fn open_sealed_answer<T: serde::de::DeserializeOwned>(
        &self,
        info: &[u8],
        what: &str,
        challenge_id: &str,
        nonce: &str,
        sealed: &str,
        link: &mut dyn HostLink,
    ) -> Result<T, EnclaveFailure> {
        let sealed = b64(sealed, &format!("the sealed {what}"))?;
        let node = self.node(link)?;
        let opened = hpke::open(
            &node.wrapping,
            info,
            &challenge_aad(info, challenge_id, nonce),
            &sealed,
        )
        .map_err(|_| {
            failure(
                FailureKind::Unauthorized,
                format!(
                    "the {what} does not open: it was not sealed to this security module for this challenge"
                ),
            )
        })?;
        veritee_proto::cbor::from_slice(opened.expose())
            .map_err(|e| bad(format!("the {what} is malformed: {e}")))
    }

    fn take_challenge(&self, challenge_id: &str) -> Result<String, EnclaveFailure> {
        lock(&self.workload_challenges)
            .take(challenge_id, self.clock().now())
            .ok_or_else(|| {
                failure(
                    FailureKind::NotFound,
                    format!(
                        "challenge {challenge_id:?} is unknown, used or expired (a challenge is good once, for {} minutes)",
                        CHALLENGE_LIFETIME.whole_minutes()
                    ),
                )
            })
    }

    pub(super) fn enroll(
        &self,
        challenge_id: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let answer: EnrollmentAnswer = json(body, "enrollment answer")?;
        if answer.tpm {
            let (tpm_answer, nonce_bytes) = self.open_answer(
                TPM_ENROLLMENT_HPKE_INFO,
                "TPM enrollment answer",
                challenge_id,
                &answer.sealed,
                link,
            )?;
            return self.enroll_tpm(challenge_id, tpm_answer, &nonce_bytes, link);
        }
        let (evidence, nonce_bytes): (EnrollmentEvidence, _) = self.open_answer(
            ENROLLMENT_HPKE_INFO,
            "enrollment answer",
            challenge_id,
            &answer.sealed,
            link,
        )?;
        let storage_key = HpkePublicKey::from_bytes(&evidence.storage_public_key)
            .map_err(|e| bad(format!("the target's storage key: {e}")))?;
        let binding = ReportData::binding(
            STORAGE_KEY_BINDING_LABEL,
            storage_key.as_bytes(),
            &nonce_bytes,
        );
        let claims = self.appraise_target(&evidence.evidence, &binding)?;
        self.record_enrollment(claims, EnrolledKey::Enclave(storage_key), link)
    }

    /// Records a target whose checks passed: a new handle, or the one its identity
    /// (platform and code) had already.
    pub(super) fn record_enrollment(
        &self,
        claims: Claims,
        key: EnrolledKey,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let (storage_public_key, key_id, tpm) = match &key {
            EnrolledKey::Enclave(k) => (
                hex::encode(k.as_bytes()),
                storage_key_id(k).to_string(),
                None,
            ),
            EnrolledKey::Tpm {
                enclave,
                spki,
                public_area,
            } => (
                hex::encode(enclave.as_bytes()),
                tpm_storage_key_id(enclave, public_area).to_string(),
                Some(TpmKeyRecord {
                    spki: hex::encode(spki),
                    public_area: hex::encode(public_area),
                }),
            ),
        };
        let identity = target_identity(&claims, &key_id);
        let ns = self.sm_ns()?;
        let _one_at_a_time = lock(&self.workload_writes);
        let known = self.record_get(link, &ns, &target_identity_record(&identity))?;
        let (handle, new) = match known {
            Some(handle) => (
                String::from_utf8(handle.expose().clone()).map_err(internal)?,
                false,
            ),
            None => (
                hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?),
                true,
            ),
        };
        // Enrolled again (fresher evidence, or a rotated storage key): the record takes
        // the new claims and key, under the same handle, so the authorizations issued
        // before stay the only ones (to the old key, if it changed).
        let record = TargetRecord {
            storage_public_key,
            storage_key_id: key_id,
            claims,
            enrolled_at: self.clock().now().unix_timestamp(),
            tpm,
        };
        let tee = record.claims.tee.to_string();
        self.record_put(
            link,
            &ns,
            &target_record(&handle),
            &serde_json::to_vec(&record).map_err(internal)?,
        )?;
        if new {
            self.record_put(
                link,
                &ns,
                &target_identity_record(&identity),
                handle.as_bytes(),
            )?;
        }
        self.audit(
            link,
            "sm.target.enroll",
            "orchestrator",
            &handle,
            if new { "new" } else { "again" },
        )?;
        reply(&EnrollResponse {
            target: handle,
            tee,
            new,
        })
    }

    /// Verifies a target's evidence at the enclave's time under the configured trust
    /// anchors (each bound to its TEE kind) and the enrollment policy.
    pub(super) fn appraise_target(
        &self,
        evidence: &[u8],
        binding: &ReportData,
    ) -> Result<Claims, EnclaveFailure> {
        if self.peer_anchors.is_empty() {
            return Err(failure(
                FailureKind::Unavailable,
                "this security module has no trust anchors configured (--peer-trust-anchors), so it cannot check a target's platform chain",
            ));
        }
        let at = self.clock().now();
        let claims = veritee_verify::Verifiers::default()
            .verify(&veritee_verify::VerifyRequest {
                evidence,
                tee: None,
                collateral: &[],
                trust_anchors: &self.peer_anchors,
                expected_report_data: Some(&binding.0),
                at,
            })
            .map_err(|e| {
                failure(
                    FailureKind::Unauthorized,
                    format!("target refused: its evidence does not verify: {e}"),
                )
            })?;
        let appraisal = self.enrollment_policy().evaluate(&claims, at);
        if !appraisal.accepted() {
            return Err(failure(
                FailureKind::Unauthorized,
                format!("target refused: {}", failed_criteria(&appraisal)),
            ));
        }
        self.check_peer_collateral(&claims)?;
        Ok(claims)
    }

    /// Verify-before-secrets: the seed, sealed to the one-time key a target's fresh
    /// evidence binds together with its measurement of the workload, once both the
    /// evidence and the measurement are what the owner's seed record says.
    pub(super) fn release(
        &self,
        challenge_id: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let ask: ReleaseRequest = json(body, "release request")?;
        let id = workload_id(&ask.workload_id)?;
        let (answer, nonce_bytes): (MeasurementEvidence, _) = self.open_answer(
            MEASUREMENT_HPKE_INFO,
            "measurement",
            challenge_id,
            &ask.sealed,
            link,
        )?;
        let release_key = HpkePublicKey::from_bytes(&answer.release_public_key)
            .map_err(|e| bad(format!("the target's release key: {e}")))?;
        if answer.measurement.len() != 32 {
            return Err(bad("a launch measurement is 32 bytes"));
        }
        let mut bound = release_key.as_bytes().to_vec();
        bound.extend_from_slice(&answer.measurement);
        let binding = ReportData::binding(MEASUREMENT_BINDING_LABEL, &bound, &nonce_bytes);
        let claims = self.appraise_target(&answer.evidence, &binding)?;
        let ns = self.sm_ns()?;
        let (seed, meta) = self.load_seed(link, &ns, &id)?.ok_or_else(|| {
            failure(
                FailureKind::NotFound,
                format!("this security module holds no seed for workload {id}"),
            )
        })?;
        let measured = hex::encode(&answer.measurement);
        if measured != meta.workload_digest {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "the target measured build {measured} of workload {id}, not the build {} whose seed this security module holds",
                    meta.workload_digest
                ),
            ));
        }
        let policy = AppraisalPolicy::parse(&meta.policy).map_err(internal)?;
        let appraisal = policy.evaluate(&claims, self.clock().now());
        if !appraisal.accepted() {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "the target does not meet workload {id}'s sealing policy: {}",
                    failed_criteria(&appraisal)
                ),
            ));
        }
        let sealed_seed = hpke::seal(
            &release_key,
            RELEASE_HPKE_INFO,
            &release_aad(&id.to_string(), &measured, challenge_id),
            seed.expose(),
        )
        .map_err(internal)?;
        self.audit(
            link,
            "sm.release",
            &meta.owner,
            &id.to_string(),
            &claims.tee.to_string(),
        )?;
        reply(&ReleaseResponse {
            challenge_id: challenge_id.to_string(),
            sealed_seed: B64.encode(sealed_seed),
        })
    }

    pub(super) fn authorize_target(
        &self,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let ask: AuthorizeRequest = json(body, "authorization request")?;
        let id = workload_id(&ask.workload_id)?;
        check_handle(&ask.target)?;
        let ns = self.sm_ns()?;
        // Two orchestrators asking at once get the same authorization.
        let _one_at_a_time = lock(&self.workload_writes);
        if let Some(existing) = self.record_get(link, &ns, &auth_record(&id, &ask.target))? {
            return reply(&AuthorizeResponse {
                authorization: B64.encode(existing.expose()),
                issued: false,
            });
        }
        let (seed, meta) = self.load_seed(link, &ns, &id)?.ok_or_else(|| {
            failure(
                FailureKind::NotFound,
                format!("this security module holds no seed for workload {id}"),
            )
        })?;
        if self
            .record_get(link, &ns, &forgotten_record(&meta.owner, &ask.target))?
            .is_some()
        {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "target {} was forgotten by workload {id}'s owner: it is never authorized for its workloads again",
                    ask.target
                ),
            ));
        }
        let target = self.load_target(link, &ns, &ask.target)?;
        let policy = AppraisalPolicy::parse(&meta.policy).map_err(internal)?;
        // Judged now, on the claims of its last enrollment: a policy's maximum evidence
        // age asks for a fresh enrollment once they are too old.
        let appraisal = policy.evaluate(&target.claims, self.clock().now());
        if !appraisal.accepted() {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "target {} does not meet workload {id}'s sealing policy: {}",
                    ask.target,
                    failed_criteria(&appraisal)
                ),
            ));
        }
        let storage_key = hex::decode(&target.storage_public_key)
            .map_err(internal)
            .and_then(|k| HpkePublicKey::from_bytes(&k).map_err(internal))?;
        let now = unix(self.clock().now());
        let not_after = now.saturating_add(meta.validity_seconds);
        let authorization = match &target.tpm {
            Some(tpm) => Authorization::issue_to_tpm(
                &seed,
                id,
                &storage_key,
                &hex::decode(&tpm.spki).map_err(internal)?,
                &hex::decode(&tpm.public_area).map_err(internal)?,
                now,
                not_after,
            ),
            None => Authorization::issue(&seed, id, &storage_key, now, not_after),
        }
        .map_err(|e| refused(FailureKind::Internal, e))?;
        let bytes = authorization.to_bytes();
        self.record_put(link, &ns, &auth_record(&id, &ask.target), &bytes)?;
        self.audit(
            link,
            "sm.authorize",
            &meta.owner,
            &format!("{id}/{}", ask.target),
            "issued",
        )?;
        reply(&AuthorizeResponse {
            authorization: B64.encode(bytes),
            issued: true,
        })
    }

    fn load_target(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        handle: &str,
    ) -> Result<TargetRecord, EnclaveFailure> {
        let record = self
            .record_get(link, ns, &target_record(handle))?
            .ok_or_else(|| {
                failure(
                    FailureKind::NotFound,
                    format!("target {handle} is not enrolled here (never, or forgotten)"),
                )
            })?;
        serde_json::from_slice(record.expose()).map_err(internal)
    }

    pub(super) fn forget_target(
        &self,
        request: &SignedRequest,
        handle: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        check_handle(handle)?;
        let tenant = self.authenticate(request, "POST", &paths::sm_forget(handle), body, link)?;
        if !body.is_empty() {
            let _: ForgetRequest = json(body, "forget request")?;
        }
        let ns = self.sm_ns()?;
        let _one_at_a_time = lock(&self.workload_writes);
        self.load_target(link, &ns, handle)?;
        // Only this tenant's workloads: another owner's authorizations are not its to
        // drop. The target itself stays enrolled (its handle keeps naming it), and this
        // owner's workloads never get an authorization for it again.
        let mut removed = 0u64;
        for record in self.record_keys(link, &ns, "auth/")? {
            let Some((workload, target)) = record
                .strip_prefix("auth/")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            if target != handle {
                continue;
            }
            let owned = match WorkloadId::from_hex(workload) {
                Ok(id) => self
                    .load_seed(link, &ns, &id)?
                    .is_some_and(|(_, meta)| meta.owner == tenant),
                Err(_) => false,
            };
            if owned && self.record_delete(link, &ns, &record)? {
                removed += 1;
            }
        }
        self.record_put(link, &ns, &forgotten_record(&tenant, handle), b"forgotten")?;
        self.audit(
            link,
            "sm.target.forget",
            &tenant,
            handle,
            &format!("{removed} authorizations removed"),
        )?;
        reply(&serde_json::json!({
            "target": handle,
            "authorizations_removed": removed,
        }))
    }

    pub(super) fn sm_state(
        &self,
        request: &SignedRequest,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "GET", &paths::sm_state(), &[], link)?;
        let ns = self.sm_ns()?;
        let mut state = SmState {
            workloads: Vec::new(),
            targets: Vec::new(),
            authorizations: Vec::new(),
        };
        for record in self.record_keys(link, &ns, "seed/")? {
            let Some(id) = record.strip_prefix("seed/") else {
                continue;
            };
            let id = workload_id(id).map_err(|e| internal(e.message))?;
            if let Some((_, meta)) = self.load_seed(link, &ns, &id)?
                && meta.owner == tenant
            {
                state.workloads.push(SmWorkload {
                    workload_id: id.to_string(),
                    workload_digest: meta.workload_digest,
                    owner: meta.owner,
                    validity_seconds: meta.validity_seconds,
                });
            }
        }
        for record in self.record_keys(link, &ns, "target/")? {
            let Some(handle) = record.strip_prefix("target/") else {
                continue;
            };
            let target = self.load_target(link, &ns, handle)?;
            state.targets.push(SmTarget {
                target: handle.to_string(),
                tee: target.claims.tee.to_string(),
                storage_key_id: target.storage_key_id,
                enrolled_at: target.enrolled_at,
            });
        }
        for record in self.record_keys(link, &ns, "auth/")? {
            let Some((workload, handle)) = record
                .strip_prefix("auth/")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            if !state.workloads.iter().any(|w| w.workload_id == workload) {
                continue;
            }
            let Some(bytes) = self.record_get(link, &ns, &record)? else {
                continue;
            };
            let slot = Authorization::from_bytes(bytes.expose()).map_err(internal)?;
            state.authorizations.push(SmAuthorization {
                workload_id: workload.to_string(),
                target: handle.to_string(),
                authorization_id: hex::encode(slot.id),
                not_before: slot.not_before,
                not_after: slot.not_after,
            });
        }
        reply(&state)
    }
}
