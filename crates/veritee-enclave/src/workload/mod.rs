//! TEE-bound workloads (flow 2): the security module's side in [`sm`], the target's
//! in [`target`], and the verify-before-secrets launch in [`release`]. The workload format itself is `veritee-workload`'s.
//!
//! A node started with `--role sm` (measured: it changes the enclave's measurement,
//! so an owner's policy can name the security module) holds seeds, enrolls targets
//! and issues authorizations; any other node is a target. Each refuses the other's
//! calls with the reason named.

mod release;
mod sm;
mod target;
mod tpm;

use crate::host::{HostLink, failure};
use crate::service::EnclaveService;
use serde::Serialize;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_proto::workload::{WorkloadCall, WorkloadReply};

pub(crate) use release::PendingWorkloads;
pub(crate) use sm::PendingChallenges;
pub(crate) use tpm::{PendingActivations, TpmTargetConfig};

/// Answers with `value` as the JSON body the host returns.
fn reply(value: &impl Serialize) -> Result<EnclaveReply, EnclaveFailure> {
    let json = serde_json::to_vec(value).map_err(crate::service::internal)?;
    Ok(EnclaveReply::Workload(WorkloadReply { json }))
}

/// A refusal of the launch check or an authorization, with the reason the format named.
fn refused(kind: FailureKind, e: veritee_workload::WorkloadError) -> EnclaveFailure {
    failure(kind, e.to_string())
}

impl EnclaveService {
    /// Hands a call of this flow to the side that serves it.
    pub(crate) fn workload(
        &self,
        call: WorkloadCall,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let sm_call = matches!(
            call,
            WorkloadCall::PutSeed { .. }
                | WorkloadCall::Challenge
                | WorkloadCall::Enroll { .. }
                | WorkloadCall::Activation { .. }
                | WorkloadCall::Authorize { .. }
                | WorkloadCall::Forget { .. }
                | WorkloadCall::State { .. }
                | WorkloadCall::ReleaseChallenge
                | WorkloadCall::Release { .. }
        );
        if sm_call != self.is_security_module() {
            return Err(failure(
                FailureKind::NotFound,
                if sm_call {
                    "this node is not a security module (start one with `veritee node --role sm`)"
                } else {
                    "this node is a security module: it enrolls and authorizes targets, it does not run workloads"
                },
            ));
        }
        match call {
            WorkloadCall::PutSeed { request, body } => self.put_seed(&request, &body, link),
            WorkloadCall::Challenge | WorkloadCall::ReleaseChallenge => self.challenge(link),
            WorkloadCall::Enroll { challenge_id, body } => self.enroll(&challenge_id, &body, link),
            WorkloadCall::Activation { challenge_id, body } => {
                self.finish_tpm_enrollment(&challenge_id, &body, link)
            }
            WorkloadCall::Authorize { body } => self.authorize_target(&body, link),
            WorkloadCall::Forget {
                request,
                target,
                body,
            } => self.forget_target(&request, &target, &body, link),
            WorkloadCall::State { request } => self.sm_state(&request, link),
            WorkloadCall::AnswerChallenge { body } => self.answer_challenge(&body, link),
            WorkloadCall::ActivateCredential { body } => self.activate_credential(&body, link),
            WorkloadCall::Launch { nonce, workload } => self.launch(&nonce, &workload, link),
            WorkloadCall::RotateStorageKey => self.rotate_storage_key(link),
            WorkloadCall::Release { challenge_id, body } => {
                self.release(&challenge_id, &body, link)
            }
            WorkloadCall::Pending { workload } => self.load_pending(&workload),
            WorkloadCall::Measure { pending_id, body } => self.measure(&pending_id, &body),
            WorkloadCall::LaunchReleased {
                pending_id,
                nonce,
                challenge_id,
                sealed_seed,
                workload,
            } => self.launch_released(
                &pending_id,
                &nonce,
                &challenge_id,
                &sealed_seed,
                &workload,
                link,
            ),
        }
    }
}
