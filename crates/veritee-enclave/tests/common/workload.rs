//! Flow 2 helpers shared by the workload tests and the authorization bench: a node
//! with its host, the owner's put-seed body, and the orchestrator's enrollment.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use veritee_crypto::hpke::HpkePublicKey;
use veritee_enclave::EnclaveService;
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply};
use veritee_proto::workload::{
    EnrollResponse, EnrollmentAnswer, EnrollmentChallenge, PutSeedRequest, SEED_HPKE_INFO,
    WorkloadCall, seed_aad,
};
use veritee_workload::{WorkloadFile, WorkloadSeed};

use super::MemoryHost;

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

/// The owner's put-seed body: `seed` sealed to `sm`'s wrapping key for `workload`.
pub fn seed_body(
    sm: &mut Node,
    workload: &[u8],
    seed: &WorkloadSeed,
    policy: &str,
    validity_seconds: u64,
) -> Vec<u8> {
    let key = match sm
        .service
        .handle(
            EnclaveCall::WrappingKey { nonce: vec![7; 32] },
            &mut sm.host,
        )
        .expect("wrapping key")
    {
        EnclaveReply::WrappingKey { public_key, .. } => {
            HpkePublicKey::from_bytes(&public_key).expect("key")
        }
        other => panic!("{other:?}"),
    };
    let file = WorkloadFile::parse(workload).expect("parse");
    let id = file.id().to_string();
    let digest = hex::encode(file.digest());
    let sealed =
        veritee_crypto::hpke::seal(&key, SEED_HPKE_INFO, &seed_aad(&id, &digest), seed.expose())
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

/// The orchestrator's enrollment of `target` at `sm`.
pub fn enroll(sm: &mut Node, target: &mut Node) -> EnrollResponse {
    let challenge: EnrollmentChallenge = sm.json(WorkloadCall::Challenge);
    let answer: EnrollmentAnswer = target.json(WorkloadCall::AnswerChallenge {
        body: serde_json::to_vec(&challenge).expect("json"),
    });
    sm.json(WorkloadCall::Enroll {
        challenge_id: challenge.challenge_id,
        body: serde_json::to_vec(&answer).expect("json"),
    })
}
