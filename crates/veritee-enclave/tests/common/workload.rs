//! Flow 2 helpers shared by the workload tests and the authorization bench: a node
//! with its host, the owner's put-seed body, and the orchestrator's enrollment.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use veritee_crypto::hpke::HpkePublicKey;
use veritee_enclave::EnclaveService;
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply};
use veritee_proto::workload::{
    EnrollOutcome, EnrollResponse, EnrollmentAnswer, EnrollmentChallenge, PutSeedRequest,
    SEED_HPKE_INFO, WorkloadCall, seed_aad,
};
use veritee_workload::{WorkloadFile, WorkloadSeed};

use super::{MemoryHost, World};
use veritee_channel::client::TenantKey;

/// An enclave and the host that serves it.
pub struct Node {
    pub service: EnclaveService,
    pub host: MemoryHost,
}

impl Node {
    pub fn new(service: EnclaveService) -> Node {
        Node {
            service,
            host: MemoryHost::default(),
        }
    }

    /// A flow 2 call; the JSON body of the answer.
    pub fn call(&mut self, call: WorkloadCall) -> Result<Vec<u8>, EnclaveFailure> {
        match self
            .service
            .handle(EnclaveCall::Workload(call), &mut self.host)?
        {
            EnclaveReply::Workload(reply) => Ok(reply.json),
            other => panic!("{other:?}"),
        }
    }

    /// An accepted call's answer.
    pub fn json<T: serde::de::DeserializeOwned>(&mut self, call: WorkloadCall) -> T {
        serde_json::from_slice(&self.call(call).expect("accepted")).expect("json")
    }
}

/// The put-seed body `owner` signs: `seed` sealed to `sm`'s wrapping key for
/// `workload`, `policy` and `validity_seconds`.
pub fn seed_body(
    sm: &mut Node,
    owner: &TenantKey,
    workload: &[u8],
    seed: &WorkloadSeed,
    policy: &str,
    validity_seconds: u64,
) -> Vec<u8> {
    let (key, node_id) = match sm
        .service
        .handle(
            EnclaveCall::WrappingKey { nonce: vec![7; 32] },
            &mut sm.host,
        )
        .expect("wrapping key")
    {
        EnclaveReply::WrappingKey {
            public_key,
            node_id,
            ..
        } => (
            HpkePublicKey::from_bytes(&public_key).expect("key"),
            node_id,
        ),
        other => panic!("{other:?}"),
    };
    let file = WorkloadFile::parse(workload).expect("parse");
    let id = file.id().to_string();
    let digest = hex::encode(file.digest());
    let sealed = veritee_crypto::hpke::seal(
        &key,
        SEED_HPKE_INFO,
        &seed_aad(
            &id,
            &digest,
            &owner.tenant_id().expect("tenant id"),
            policy,
            validity_seconds,
            &node_id,
        ),
        seed.expose(),
    )
    .expect("seal");
    serde_json::to_vec(&PutSeedRequest {
        workload_id: id,
        workload_digest: digest,
        policy: policy.into(),
        validity_seconds,
        sealed_seed: B64.encode(sealed),
    })
    .expect("json")
}

/// The orchestrator's enrollment of `target` at `sm` (for a TPM target, with the
/// credential activated by its TPM).
pub fn enroll(sm: &mut Node, target: &mut Node) -> EnrollResponse {
    let challenge: EnrollmentChallenge = sm.json(WorkloadCall::Challenge);
    let answer: EnrollmentAnswer = target.json(WorkloadCall::AnswerChallenge {
        body: serde_json::to_vec(&challenge).expect("json"),
    });
    let outcome: EnrollOutcome = sm.json(WorkloadCall::Enroll {
        challenge_id: challenge.challenge_id.clone(),
        body: serde_json::to_vec(&answer).expect("json"),
    });
    match outcome {
        EnrollOutcome::Enrolled(enrolled) => enrolled,
        EnrollOutcome::Activate { activation } => {
            let activated: EnrollmentAnswer = target.json(WorkloadCall::ActivateCredential {
                body: serde_json::to_vec(&activation).expect("json"),
            });
            sm.json(WorkloadCall::Activation {
                challenge_id: challenge.challenge_id,
                body: serde_json::to_vec(&activated).expect("json"),
            })
        }
    }
}

/// An appraisal policy for simulated evidence that names no code.
pub const SIMULATED_POLICY: &str = "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n";

/// The sealing policy of these tests: simulated targets signed by the world's signer
/// (a sealing policy must name code).
pub fn signer_policy(world: &World, target: &mut Node) -> String {
    let nonce = vec![9u8; 32];
    let evidence = match target
        .service
        .handle(
            EnclaveCall::Attest {
                nonce: nonce.clone(),
            },
            &mut target.host,
        )
        .expect("attest")
    {
        EnclaveReply::Attestation { evidence, .. } => evidence,
        other => panic!("{other:?}"),
    };
    let anchors = veritee_attest::TrustAnchors::untyped(world.anchors.clone());
    let claims = veritee_verify::Verifiers::default()
        .verify(&veritee_verify::VerifyRequest {
            evidence: &evidence,
            tee: None,
            collateral: &[],
            trust_anchors: &anchors,
            expected_report_data: None,
            at: time::OffsetDateTime::now_utc(),
        })
        .expect("verified");
    let signer = claims.signer.expect("signed");
    format!("{SIMULATED_POLICY}signers = [\"{signer}\"]\n")
}

/// The sealing policy of the TPM tests and bench: a TPM target whose PCRs `pcrs` hold
/// the values the TPM at `tcti` holds now, running an enclave signed by the world's
/// signer (simulated).
pub fn tpm_policy(world: &World, target: &mut Node, tcti: &str, pcrs: &[u32]) -> String {
    let values = veritee_tpm::device::TargetTpm::open(tcti)
        .expect("tpm")
        .read_pcrs(pcrs)
        .expect("PCRs");
    let signers = signer_policy(world, target)
        .lines()
        .find(|l| l.starts_with("signers"))
        .expect("signers")
        .to_string();
    let mut policy = format!(
        "version = 1\ntee = [\"tpm2\"]\ntcb_status = [\"NotReported\"]\nallow_simulated = true\n{signers}\n[measurements]\n"
    );
    for (pcr, value) in &values {
        policy.push_str(&format!("pcr{pcr} = [\"{}\"]\n", hex::encode(value)));
    }
    policy
}
