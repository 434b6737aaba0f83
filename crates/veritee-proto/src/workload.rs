//! TEE-bound workloads (flow 2): the HTTP bodies of the security module's and the
//! target's routes, and the calls the host passes to the enclave for them.
//!
//! The security module (a node started with `--role sm`) serves `/v1/sm/...`: the
//! owner puts a workload's seed (tenant-signed, the seed sealed to the SM's attested
//! wrapping key); the orchestrator enrolls targets and asks for authorizations, and
//! sees only opaque target handles. A target node serves `/v1/workloads/...`: it
//! answers an enrollment challenge with evidence binding its storage key (sealed to
//! the SM), and launches a workload whose slot it finds.

use serde::{Deserialize, Serialize};

use crate::ipc::SignedRequest;

/// Paths of this flow's routes.
pub mod paths {
    /// `POST` (tenant-signed): put a workload's seed in the security module.
    pub fn sm_seeds() -> String {
        "/v1/sm/seeds".into()
    }

    /// `POST`: a fresh enrollment challenge from the security module.
    pub fn sm_enrollments() -> String {
        "/v1/sm/enrollments".into()
    }

    /// `POST`: a target's sealed answer to challenge `id`.
    pub fn sm_enrollment(id: &str) -> String {
        format!("/v1/sm/enrollments/{id}")
    }

    /// `POST`: a TPM target's answer to the MakeCredential challenge the SM sent for
    /// enrollment `id`.
    pub fn sm_activation(id: &str) -> String {
        format!("/v1/sm/enrollments/{id}/activation")
    }

    /// `POST`: an authorization for one workload and one enrolled target.
    pub fn sm_authorizations() -> String {
        "/v1/sm/authorizations".into()
    }

    /// `POST` (tenant-signed): forget an enrolled target and its authorizations.
    pub fn sm_forget(target: &str) -> String {
        format!("/v1/sm/targets/{target}/forget")
    }

    /// `GET` (tenant-signed): what the security module holds.
    pub fn sm_state() -> String {
        "/v1/sm/state".into()
    }

    /// `POST`: a fresh challenge for a verify-before-secrets release.
    pub fn sm_releases() -> String {
        "/v1/sm/releases".into()
    }

    /// `POST`: a target's sealed measurement for release challenge `id`; the answer is
    /// the seed sealed to the target's one-time key.
    pub fn sm_release(id: &str) -> String {
        format!("/v1/sm/releases/{id}")
    }

    /// `POST` (body: the workload file): a target measures a workload and holds its
    /// measurement until the seed is released (verify-before-secrets).
    pub fn workload_pending() -> String {
        "/v1/workloads/pending".into()
    }

    /// `POST`: the pending workload's measurement, for an SM's release challenge.
    pub fn workload_measurement(id: &str) -> String {
        format!("/v1/workloads/pending/{id}/measurement")
    }

    /// `POST` (body: the workload file, again): the seed the SM released (hex of its
    /// sealed bytes); the workload must be the one measured; the launch check, then the
    /// workload.
    pub fn workload_release(
        id: &str,
        nonce: &str,
        challenge_id: &str,
        sealed_seed: &str,
    ) -> String {
        format!(
            "/v1/workloads/pending/{id}/release?nonce={nonce}&challenge_id={challenge_id}&sealed_seed={sealed_seed}"
        )
    }

    /// `POST`: a target answers an enrollment challenge.
    pub fn workload_enrollment() -> String {
        "/v1/workloads/enrollment".into()
    }

    /// `POST` (body: [`super::ActivationChallenge`]): a TPM target activates the SM's
    /// credential with its EK.
    pub fn workload_activation() -> String {
        "/v1/workloads/activation".into()
    }

    /// `POST` (body: the workload file): run the launch check, then the workload; the
    /// answer is bound to `nonce` (hex, 16 to 64 bytes).
    pub fn workload_launch(nonce: &str) -> String {
        format!("/v1/workloads/launch?nonce={nonce}")
    }

    /// `POST` (operator): rotate the target's storage key (deprovisioning).
    pub fn workload_storage_key_rotate() -> String {
        "/v1/workloads/storage-key/rotate".into()
    }
}

/// What names one launch in its sealed output's AAD: the caller's nonce (decoded from
/// hex) and the workload's digest.
pub fn launch_context(nonce: &[u8], workload_digest: &[u8; 32]) -> Vec<u8> {
    let mut context = Vec::with_capacity(8 + nonce.len() + 32);
    context.extend_from_slice(&(nonce.len() as u64).to_be_bytes());
    context.extend_from_slice(nonce);
    context.extend_from_slice(workload_digest);
    context
}

/// A launch nonce's bytes: 16 to 64, given as hex.
pub fn launch_nonce(hex_text: &str) -> Option<Vec<u8>> {
    hex::decode(hex_text)
        .ok()
        .filter(|n| (16..=64).contains(&n.len()))
}

/// `POST /v1/sm/seeds` (tenant-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSeedRequest {
    /// The workload id, 32 hex digits.
    pub workload_id: String,
    /// SHA-256 of the workload's covered bytes and HMAC, hex (`workload inspect`).
    pub workload_digest: String,
    /// The sealing policy: which targets may be authorized (an appraisal policy, TOML).
    pub policy: String,
    /// How long each authorization is valid, in seconds.
    pub validity_seconds: u64,
    /// The seed, HPKE-sealed to the SM's attested wrapping key, base64 (see
    /// [`seed_aad`]).
    pub sealed_seed: String,
}

/// Label of the seed's HPKE info.
pub const SEED_HPKE_INFO: &[u8] = b"veritee sm seed v1";

/// The AAD the seed is sealed under: everything the SM will do with it. It names the
/// workload and its build, the owner (the tenant that must sign the put), the sealing
/// policy (by SHA-256), the validity and the security module (its node id), so that a
/// host that relays the sealed seed cannot put it under another tenant, a laxer policy,
/// a longer validity or at another security module.
pub fn seed_aad(
    workload_id: &str,
    workload_digest: &str,
    owner: &str,
    policy: &str,
    validity_seconds: u64,
    sm_node_id: &str,
) -> Vec<u8> {
    let policy_digest = sha256_hex(policy.as_bytes());
    let validity = validity_seconds.to_string();
    let mut aad = SEED_HPKE_INFO.to_vec();
    for part in [
        workload_id,
        workload_digest,
        owner,
        &policy_digest,
        &validity,
        sm_node_id,
    ] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(veritee_crypto::digest::sha256(bytes))
}

/// Answer to [`PutSeedRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSeedResponse {
    /// The workload id.
    pub workload_id: String,
    /// False when the same seed was already held for it (the request is idempotent).
    pub created: bool,
}

/// `POST /v1/sm/enrollments` and `POST /v1/sm/releases`: a challenge from the SM,
/// which the orchestrator carries to the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentChallenge {
    /// The challenge's id at the SM, 32 hex digits.
    pub challenge_id: String,
    /// The nonce the target's evidence must bind, base64 (32 bytes).
    pub nonce: String,
    /// The SM's X25519 key the target seals its answer to, base64.
    pub sm_public_key: String,
}

/// HPKE info of an enrollment answer.
pub const ENROLLMENT_HPKE_INFO: &[u8] = b"veritee workload enrollment v1";

/// HPKE info of a TPM target's enrollment answer (CBOR of
/// `veritee_tpm::enrollment::TpmEnrollmentEvidence`).
pub const TPM_ENROLLMENT_HPKE_INFO: &[u8] = b"veritee workload TPM enrollment v1";

/// The report-data label of a TPM target's enclave evidence: it binds the enclave's
/// own storage key and the names of its TPM's AK and storage key to the SM's nonce.
pub const TPM_TARGET_BINDING_LABEL: &[u8] = b"veritee workload TPM target v1";

/// What a TPM target's enclave binds into its evidence: its X25519 storage key, then
/// the TPM names of its AK and storage key, each length-prefixed (u16, big-endian).
pub fn tpm_target_binding(enclave_key: &[u8], ak_name: &[u8], storage_name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [enclave_key, ak_name, storage_name] {
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// HPKE info of a TPM target's activated credential (CBOR [`ActivatedCredential`]).
pub const ACTIVATION_HPKE_INFO: &[u8] = b"veritee workload TPM activation v1";

/// The AAD of an answer to a challenge: what it is (`info`: [`ENROLLMENT_HPKE_INFO`] or
/// [`MEASUREMENT_HPKE_INFO`]) and the challenge it answers.
pub fn challenge_aad(info: &[u8], challenge_id: &str, nonce: &str) -> Vec<u8> {
    let mut aad = info.to_vec();
    aad.push(0);
    aad.extend_from_slice(challenge_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(nonce.as_bytes());
    aad
}

/// The target's answer, sealed to the SM: the orchestrator carries it unread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentAnswer {
    /// HPKE(SM key, [`ENROLLMENT_HPKE_INFO`], [`challenge_aad`], CBOR
    /// [`EnrollmentEvidence`]), base64; for a TPM target, under
    /// [`TPM_ENROLLMENT_HPKE_INFO`] (or [`ACTIVATION_HPKE_INFO`] for its activation).
    pub sealed: String,
    /// Whether the answer is a TPM target's. Not secret, and not trusted: it only says
    /// which HPKE info to open under, and the info is bound into the sealing.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub tpm: bool,
}

/// The SM's second step for a TPM target: a credential only the TPM that holds the
/// enrolled EK, with the enrolled AK, can activate (TPM2_MakeCredential's output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationChallenge {
    /// The enrollment challenge it continues.
    pub challenge_id: String,
    /// That challenge's nonce, base64 (the answer's AAD names it).
    pub nonce: String,
    /// The SM's X25519 key, base64.
    pub sm_public_key: String,
    /// TPM2B_ID_OBJECT contents, base64.
    pub credential_blob: String,
    /// TPM2B_ENCRYPTED_SECRET contents, base64.
    pub encrypted_secret: String,
}

/// What a TPM target returns inside its sealed activation answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivatedCredential {
    /// The secret TPM2_ActivateCredential gave back.
    #[serde(with = "serde_bytes")]
    pub secret: Vec<u8>,
}

impl core::fmt::Debug for ActivatedCredential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ActivatedCredential(..)")
    }
}

impl Drop for ActivatedCredential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// What the SM answers an enrollment answer with: done, or (a TPM target) the
/// credential to activate first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnrollOutcome {
    /// Enrolled.
    Enrolled(EnrollResponse),
    /// A TPM target: activate this credential and answer
    /// `POST /v1/sm/enrollments/{id}/activation`.
    Activate {
        /// The credential.
        activation: ActivationChallenge,
    },
}

/// What the target tells the SM, inside the sealed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentEvidence {
    /// The target's storage public key (X25519).
    #[serde(with = "serde_bytes")]
    pub storage_public_key: Vec<u8>,
    /// Its evidence: report data = binding([`STORAGE_KEY_BINDING_LABEL`], key, nonce).
    #[serde(with = "serde_bytes")]
    pub evidence: Vec<u8>,
}

/// The report-data label of a target's storage key.
pub const STORAGE_KEY_BINDING_LABEL: &[u8] = b"veritee workload storage key v1";

/// Answer to an enrollment: the opaque handle the orchestrator uses from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    /// The target's handle at the SM, 32 hex digits.
    pub target: String,
    /// Its TEE kind (what the orchestrator picks targets by).
    pub tee: String,
    /// False when this target (this storage key) was enrolled before.
    pub new: bool,
}

/// `POST /v1/sm/authorizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The workload id.
    pub workload_id: String,
    /// The target's handle.
    pub target: String,
}

/// Answer to [`AuthorizeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeResponse {
    /// The authorization (148 bytes), base64: the slot to insert.
    pub authorization: String,
    /// False when it is the one issued before (never a second one).
    pub issued: bool,
}

/// `POST /v1/sm/targets/{target}/forget` body (tenant-signed, may be `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetRequest {}

/// `GET /v1/sm/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmState {
    /// Workloads whose seed is held.
    pub workloads: Vec<SmWorkload>,
    /// Enrolled targets.
    pub targets: Vec<SmTarget>,
    /// Authorizations issued.
    pub authorizations: Vec<SmAuthorization>,
}

/// A workload at the SM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmWorkload {
    /// Its id.
    pub workload_id: String,
    /// Its build's digest.
    pub workload_digest: String,
    /// The tenant that put its seed.
    pub owner: String,
    /// Validity of its authorizations, seconds.
    pub validity_seconds: u64,
}

/// A target at the SM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmTarget {
    /// Its handle.
    pub target: String,
    /// Its TEE kind.
    pub tee: String,
    /// Its storage key id (what its slots name).
    pub storage_key_id: String,
    /// Enrollment time, Unix seconds (the enclave's).
    pub enrolled_at: i64,
}

/// An authorization at the SM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmAuthorization {
    /// The workload.
    pub workload_id: String,
    /// The target.
    pub target: String,
    /// Its id.
    pub authorization_id: String,
    /// Valid from, Unix seconds.
    pub not_before: u64,
    /// Valid to, Unix seconds.
    pub not_after: u64,
}

/// A workload a target measured, whose measurement and one-time key it holds until
/// the seed is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingResponse {
    /// Its id at the target, 32 hex digits.
    pub pending_id: String,
    /// The workload's id.
    pub workload_id: String,
    /// Its launch measurement: the workload digest the target computed, hex.
    pub measurement: String,
}

/// HPKE info of a measurement answer.
pub const MEASUREMENT_HPKE_INFO: &[u8] = b"veritee workload measurement v1";

/// The report-data label binding a target's one-time release key and the measurement.
pub const MEASUREMENT_BINDING_LABEL: &[u8] = b"veritee workload measurement v1";

/// What the target tells the SM inside a sealed measurement answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasurementEvidence {
    /// The one-time X25519 key the seed is to be sealed to.
    #[serde(with = "serde_bytes")]
    pub release_public_key: Vec<u8>,
    /// The launch measurement: the workload digest (32 bytes).
    #[serde(with = "serde_bytes")]
    pub measurement: Vec<u8>,
    /// Evidence: report data = binding([`MEASUREMENT_BINDING_LABEL`], key | measurement,
    /// nonce).
    #[serde(with = "serde_bytes")]
    pub evidence: Vec<u8>,
}

/// `POST /v1/sm/releases/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The workload whose seed is asked for.
    pub workload_id: String,
    /// The target's sealed measurement answer, base64 (HPKE to the SM's key,
    /// [`MEASUREMENT_HPKE_INFO`], AAD [`challenge_aad`], CBOR [`MeasurementEvidence`]).
    pub sealed: String,
}

/// HPKE info of a released seed.
pub const RELEASE_HPKE_INFO: &[u8] = b"veritee workload release v1";

/// The AAD of a released seed: which workload, which build, which challenge.
pub fn release_aad(workload_id: &str, measurement: &str, challenge_id: &str) -> Vec<u8> {
    let mut aad = RELEASE_HPKE_INFO.to_vec();
    for part in [workload_id, measurement, challenge_id] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// The released seed: sealed to the target's one-time key; the target then launches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseResponse {
    /// The challenge it answers.
    pub challenge_id: String,
    /// HPKE(release key, [`RELEASE_HPKE_INFO`], [`release_aad`], seed), base64.
    pub sealed_seed: String,
}

/// Answer to a launch. Every field is authenticated: the two ids are the associated
/// data of the sealed output, and what the modules did is inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchResponse {
    /// The launch's nonce, as the caller chose it (hex).
    pub nonce: String,
    /// The workload launched.
    pub workload_id: String,
    /// The target's storage key id (which slot opened).
    pub storage_key_id: String,
    /// What the modules did (JSON [`LaunchOutput`]), sealed so that only holders of
    /// the seed read it, base64.
    pub sealed_output: String,
}

/// Inside [`LaunchResponse::sealed_output`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchOutput {
    /// One entry per module, in the workload's order.
    pub modules: Vec<ModuleOutput>,
}

/// One module's result.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleOutput {
    /// The component's name.
    pub name: String,
    /// Its exit code, or `None` when it trapped.
    pub exit_code: Option<i32>,
    /// Why it stopped, when it trapped.
    pub error: Option<String>,
    /// Fuel it used.
    pub fuel_used: u64,
    /// Its output, base64.
    pub output: String,
    /// Its log, as text.
    pub log: String,
}

impl core::fmt::Debug for ModuleOutput {
    // Sizes, not what the module wrote: it may be the owner's secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModuleOutput")
            .field("name", &self.name)
            .field("exit_code", &self.exit_code)
            .field("error", &self.error)
            .field("fuel_used", &self.fuel_used)
            .field("output_len", &self.output.len())
            .field("log_len", &self.log.len())
            .finish()
    }
}

/// Answer to a storage key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateResponse {
    /// The new storage key id.
    pub storage_key_id: String,
    /// The id of the key it replaced, when there was one.
    pub previous: Option<String>,
}

/// What the host asks of the enclave for this flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadCall {
    /// `POST /v1/sm/seeds`.
    PutSeed {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body ([`PutSeedRequest`]).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/sm/enrollments`.
    Challenge,
    /// `POST /v1/sm/enrollments/{id}` (body: [`EnrollmentAnswer`]).
    Enroll {
        /// The challenge id from the path.
        challenge_id: String,
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/sm/enrollments/{id}/activation` (body: [`EnrollmentAnswer`]).
    Activation {
        /// The challenge id from the path.
        challenge_id: String,
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/sm/authorizations` (body: [`AuthorizeRequest`]).
    Authorize {
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/sm/targets/{target}/forget`.
    Forget {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The target from the path.
        target: String,
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `GET /v1/sm/state`.
    State {
        /// The tenant's signed request.
        request: SignedRequest,
    },
    /// `POST /v1/workloads/enrollment` (body: [`EnrollmentChallenge`]).
    AnswerChallenge {
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/workloads/activation` (body: [`ActivationChallenge`]).
    ActivateCredential {
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/workloads/launch?nonce=HEX`.
    Launch {
        /// The caller's nonce, hex: bound into the sealed output's AAD.
        nonce: String,
        /// The workload file.
        #[serde(with = "serde_bytes")]
        workload: Vec<u8>,
    },
    /// `POST /v1/workloads/storage-key/rotate` (operator-authenticated at the host).
    RotateStorageKey,
    /// `POST /v1/sm/releases`.
    ReleaseChallenge,
    /// `POST /v1/sm/releases/{id}` (body: [`ReleaseRequest`]).
    Release {
        /// The challenge id from the path.
        challenge_id: String,
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/workloads/pending`.
    Pending {
        /// The workload file.
        #[serde(with = "serde_bytes")]
        workload: Vec<u8>,
    },
    /// `POST /v1/workloads/pending/{id}/measurement` (body: [`EnrollmentChallenge`]).
    Measure {
        /// The pending workload's id from the path.
        pending_id: String,
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/workloads/pending/{id}/release?nonce=HEX&challenge_id=ID&sealed_seed=HEX`
    /// (body: the workload file, again).
    LaunchReleased {
        /// The pending workload's id from the path.
        pending_id: String,
        /// The caller's nonce, hex.
        nonce: String,
        /// The release challenge the seed was released for.
        challenge_id: String,
        /// The released seed as the SM sealed it, hex.
        sealed_seed: String,
        /// The workload file again: the target holds only its measurement.
        #[serde(with = "serde_bytes")]
        workload: Vec<u8>,
    },
}

/// The enclave's answer: the JSON body the host returns as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadReply {
    /// The response body (JSON).
    #[serde(with = "serde_bytes")]
    pub json: Vec<u8>,
}
