//! TEE-bound workloads (flow 2) from the owner's and the orchestrator's side: the seed
//! put in the security module (sealed to its attested key), targets enrolled and
//! authorized through the SM, slots inserted, workloads launched, and the launch's
//! output opened with the seed.

use crate::keys::AttestedWrappingKey;
use crate::{B64, ClientError, NodeClient};
use base64::Engine;
use veritee_channel::ChannelError;
use veritee_channel::client::TenantKey;
use veritee_proto::workload::{
    ActivationChallenge, AuthorizeRequest, AuthorizeResponse, EnrollOutcome, EnrollResponse,
    EnrollmentAnswer, EnrollmentChallenge, LaunchOutput, LaunchResponse, PendingResponse,
    PutSeedRequest, PutSeedResponse, ReleaseRequest, ReleaseResponse, RotateResponse,
    SEED_HPKE_INFO, SmState, paths, seed_aad,
};
use veritee_proto::workload::{launch_context, launch_nonce};
use veritee_workload::{Authorization, StorageKeyId, WorkloadFile, WorkloadId, WorkloadSeed};

fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

fn json_body(
    value: &impl serde::Serialize,
) -> Result<Option<(&'static str, Vec<u8>)>, ClientError> {
    Ok(Some((
        "application/json",
        serde_json::to_vec(value).map_err(protocol)?,
    )))
}

impl NodeClient {
    /// Puts `workload`'s seed in the security module whose wrapping key `sm` was
    /// verified (and appraised under the owner's policy) by the caller.
    pub fn sm_put_seed(
        &self,
        tenant: &TenantKey,
        sm: &AttestedWrappingKey,
        workload: &WorkloadFile<'_>,
        seed: &WorkloadSeed,
        policy: &str,
        validity_seconds: u64,
    ) -> Result<PutSeedResponse, ClientError> {
        let workload_id = workload.id().to_string();
        let workload_digest = hex::encode(workload.digest());
        let sealed = veritee_crypto::hpke::seal(
            &sm.public_key,
            SEED_HPKE_INFO,
            &seed_aad(
                &workload_id,
                &workload_digest,
                &tenant.tenant_id()?,
                policy,
                validity_seconds,
                &sm.node_id,
            ),
            seed.expose(),
        )
        .map_err(ChannelError::from)?;
        let body = json_body(&PutSeedRequest {
            workload_id,
            workload_digest,
            policy: policy.into(),
            validity_seconds,
            sealed_seed: B64.encode(sealed),
        })?;
        Self::json(&self.send_signed(tenant, reqwest::Method::POST, &paths::sm_seeds(), body)?)
    }

    /// A fresh enrollment challenge from the security module.
    pub fn sm_challenge(&self) -> Result<EnrollmentChallenge, ClientError> {
        Self::json(&self.send(reqwest::Method::POST, &paths::sm_enrollments(), None, None)?)
    }

    /// Hands a target's sealed answer to the security module: enrolled, or (a TPM
    /// target) the credential its TPM must activate first.
    pub fn sm_enroll(
        &self,
        challenge_id: &str,
        answer: &EnrollmentAnswer,
    ) -> Result<EnrollOutcome, ClientError> {
        Self::json(&self.send(
            reqwest::Method::POST,
            &paths::sm_enrollment(challenge_id),
            json_body(answer)?,
            None,
        )?)
    }

    /// Hands a TPM target's sealed activation answer to the security module.
    pub fn sm_activation(
        &self,
        challenge_id: &str,
        answer: &EnrollmentAnswer,
    ) -> Result<EnrollResponse, ClientError> {
        Self::json(&self.send(
            reqwest::Method::POST,
            &paths::sm_activation(challenge_id),
            json_body(answer)?,
            None,
        )?)
    }

    /// A TPM target activates the SM's credential; its answer is sealed to the SM.
    pub fn activate_credential(
        &self,
        activation: &ActivationChallenge,
    ) -> Result<EnrollmentAnswer, ClientError> {
        Self::json(&self.send(
            reqwest::Method::POST,
            &paths::workload_activation(),
            json_body(activation)?,
            None,
        )?)
    }

    /// An authorization for `workload` on the enrolled `target` (the one issued before,
    /// if any).
    pub fn sm_authorize(
        &self,
        workload: &WorkloadId,
        target: &str,
    ) -> Result<(Authorization, bool), ClientError> {
        let resp: AuthorizeResponse = Self::json(&self.send(
            reqwest::Method::POST,
            &paths::sm_authorizations(),
            json_body(&AuthorizeRequest {
                workload_id: workload.to_string(),
                target: target.into(),
            })?,
            None,
        )?)?;
        let bytes = B64.decode(&resp.authorization).map_err(protocol)?;
        let slot = Authorization::from_bytes(&bytes).map_err(protocol)?;
        if slot.workload != *workload {
            return Err(ClientError::Protocol(format!(
                "the security module answered with an authorization for workload {}",
                slot.workload
            )));
        }
        Ok((slot, resp.issued))
    }

    /// Forgets an enrolled target and the authorizations issued to it (the owner's).
    pub fn sm_forget(
        &self,
        tenant: &TenantKey,
        target: &str,
    ) -> Result<serde_json::Value, ClientError> {
        Self::json(&self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::sm_forget(target),
            Some(("application/json", b"{}".to_vec())),
        )?)
    }

    /// What the security module holds for this tenant.
    pub fn sm_state(&self, tenant: &TenantKey) -> Result<SmState, ClientError> {
        Self::json(&self.send_signed(tenant, reqwest::Method::GET, &paths::sm_state(), None)?)
    }

    /// A target's answer to an SM challenge, sealed to the SM.
    pub fn answer_enrollment(
        &self,
        challenge: &EnrollmentChallenge,
    ) -> Result<EnrollmentAnswer, ClientError> {
        Self::json(&self.send(
            reqwest::Method::POST,
            &paths::workload_enrollment(),
            json_body(challenge)?,
            None,
        )?)
    }

    /// Launches a workload file on this target, under a fresh nonce the answer must
    /// carry (and its sealed output is bound to).
    pub fn launch_workload(&self, workload: &[u8]) -> Result<LaunchResponse, ClientError> {
        let nonce = fresh_launch_nonce()?;
        let launch: LaunchResponse = Self::json(&self.send(
            reqwest::Method::POST,
            &paths::workload_launch(&nonce),
            Some(("application/octet-stream", workload.to_vec())),
            None,
        )?)?;
        check_nonce(&launch, &nonce)?;
        Ok(launch)
    }

    /// Rotates this target's storage key (operator): what was authorized for the old
    /// key no longer opens.
    pub fn rotate_storage_key(&self, admin_token: &str) -> Result<RotateResponse, ClientError> {
        Self::json(&self.send(
            reqwest::Method::POST,
            &paths::workload_storage_key_rotate(),
            None,
            Some(format!("Bearer {}", admin_token.trim())),
        )?)
    }
}

/// Verify-before-secrets, the orchestrator's side: `target` loads the workload and
/// reports its measurement in fresh evidence sealed to `sm`; the SM releases the seed
/// to the target's one-time key if the evidence and the measurement are right; the
/// target launches.
pub fn launch_verified_first(
    sm: &NodeClient,
    target: &NodeClient,
    workload: &[u8],
) -> Result<LaunchResponse, ClientError> {
    let pending: PendingResponse = NodeClient::json(&target.send(
        reqwest::Method::POST,
        &paths::workload_pending(),
        Some(("application/octet-stream", workload.to_vec())),
        None,
    )?)?;
    let challenge: EnrollmentChallenge =
        NodeClient::json(&sm.send(reqwest::Method::POST, &paths::sm_releases(), None, None)?)?;
    let measured: EnrollmentAnswer = NodeClient::json(&target.send(
        reqwest::Method::POST,
        &paths::workload_measurement(&pending.pending_id),
        json_body(&challenge)?,
        None,
    )?)?;
    let released: ReleaseResponse = NodeClient::json(&sm.send(
        reqwest::Method::POST,
        &paths::sm_release(&challenge.challenge_id),
        json_body(&ReleaseRequest {
            workload_id: pending.workload_id,
            sealed: measured.sealed,
        })?,
        None,
    )?)?;
    let nonce = fresh_launch_nonce()?;
    let sealed_seed = B64.decode(&released.sealed_seed).map_err(protocol)?;
    if released.challenge_id != challenge.challenge_id {
        return Err(ClientError::Protocol(
            "the security module released the seed for another challenge".into(),
        ));
    }
    let launch: LaunchResponse = NodeClient::json(&target.send(
        reqwest::Method::POST,
        &paths::workload_release(
            &pending.pending_id,
            &nonce,
            &released.challenge_id,
            &hex::encode(sealed_seed),
        ),
        Some(("application/octet-stream", workload.to_vec())),
        None,
    )?)?;
    check_nonce(&launch, &nonce)?;
    Ok(launch)
}

fn fresh_launch_nonce() -> Result<String, ClientError> {
    Ok(hex::encode(
        veritee_crypto::rand::array::<32>().map_err(ChannelError::from)?,
    ))
}

/// A launch answer must carry the nonce it was asked under (its sealed output is bound
/// to it, so an earlier launch's answer passed off as this one's does not open).
fn check_nonce(launch: &LaunchResponse, nonce: &str) -> Result<(), ClientError> {
    if launch.nonce != nonce {
        return Err(ClientError::Protocol(
            "the launch answer is for another launch (its nonce is not the one sent)".into(),
        ));
    }
    Ok(())
}

/// The orchestrator's enrollment of `target` at `sm`: a challenge from the SM, the
/// target's sealed answer, carried back; for a TPM target, then the SM's credential,
/// activated by the target's TPM and carried back. Returns the target's opaque handle.
pub fn enroll_target(sm: &NodeClient, target: &NodeClient) -> Result<EnrollResponse, ClientError> {
    let challenge = sm.sm_challenge()?;
    let answer = target.answer_enrollment(&challenge)?;
    match sm.sm_enroll(&challenge.challenge_id, &answer)? {
        EnrollOutcome::Enrolled(enrolled) => Ok(enrolled),
        EnrollOutcome::Activate { activation } => {
            let activated = target.activate_credential(&activation)?;
            sm.sm_activation(&challenge.challenge_id, &activated)
        }
    }
}

/// Opens what a launch produced, with the workload's seed; checks it came from this
/// build of the workload, the target key and the launch (nonce) the answer names.
pub fn open_launch_output(
    seed: &WorkloadSeed,
    workload: &WorkloadFile<'_>,
    launch: &LaunchResponse,
) -> Result<LaunchOutput, ClientError> {
    if launch.workload_id != workload.id().to_string() {
        return Err(ClientError::Protocol(format!(
            "the launch is of workload {}, not {}",
            launch.workload_id,
            workload.id()
        )));
    }
    let mut key_id = [0u8; 16];
    hex::decode_to_slice(&launch.storage_key_id, &mut key_id)
        .map_err(|_| protocol("the launch's storage key id is not 32 hex digits"))?;
    let nonce = launch_nonce(&launch.nonce)
        .ok_or_else(|| protocol("the launch's nonce is not 16 to 64 bytes of hex"))?;
    let sealed = B64.decode(&launch.sealed_output).map_err(protocol)?;
    let opened = seed
        .output_box(&workload.id())
        .and_then(|b| {
            b.open_for(
                &StorageKeyId::from_bytes(key_id),
                &launch_context(&nonce, &workload.digest()),
                &sealed,
            )
        })
        .map_err(protocol)?;
    serde_json::from_slice(opened.expose()).map_err(protocol)
}
