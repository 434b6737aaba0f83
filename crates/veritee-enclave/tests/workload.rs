//! TEE-bound workloads (flow 2) in process: a security module and two targets on
//! simulated machines, each with a host that keeps everything it is given. The owner
//! puts a seed, the orchestrator (these tests) enrolls, authorizes, inserts slots and
//! launches; each refusal names its reason, and the canary secret CD1 is found nowhere
//! a host touched.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::workload::{Node, enroll, seed_body, signer_policy};
use common::{MemoryHost, World, audience, contains, everything, register, sign};
use veritee_channel::client::TenantKey;
use veritee_crypto::hpke::HpkePublicKey;
use veritee_enclave::EnclaveService;
use veritee_platform::sim::{SimMachine, SimVendor};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind};
use veritee_proto::workload::{
    AuthorizeRequest, EnrollmentAnswer, EnrollmentChallenge, LaunchOutput, LaunchResponse,
    PendingResponse, PutSeedRequest, ReleaseRequest, ReleaseResponse, SmState, WorkloadCall, paths,
};
use veritee_workload::{
    Authorization, ComponentKind, ComponentSpec, WorkloadFile, WorkloadId, WorkloadSeed,
};

const CODE: &[u8] = b"veritee node build under test";
const MODULE: &[u8] = include_bytes!("../../../examples/workloads/unlock.wat");
const CANARY: &[u8] = b"canary-cd1-passphrase-5772156649";
const CONFIG: &[u8] = b"data-volume-1";
const ONE_DAY: u64 = 24 * 3600;

trait Launch {
    fn refusal(&mut self, call: WorkloadCall) -> EnclaveFailure;
    fn launch(&mut self, workload: &[u8]) -> Result<LaunchResponse, EnclaveFailure>;
}

impl Launch for Node {
    fn refusal(&mut self, call: WorkloadCall) -> EnclaveFailure {
        match self.call(call) {
            Ok(json) => panic!("accepted: {}", String::from_utf8_lossy(&json)),
            Err(f) => f,
        }
    }

    fn launch(&mut self, workload: &[u8]) -> Result<LaunchResponse, EnclaveFailure> {
        self.call(WorkloadCall::Launch {
            nonce: fresh_nonce(),
            workload: workload.to_vec(),
        })
        .map(|json| serde_json::from_slice(&json).expect("json"))
    }
}

struct Flow {
    world: World,
    sm: Node,
    a: Node,
    b: Node,
    owner: TenantKey,
    seed: WorkloadSeed,
    workload: Vec<u8>,
    /// The sealing policy: the world's signer.
    policy: String,
}

fn simulated_policy() -> String {
    "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n".into()
}

impl Flow {
    fn new() -> Flow {
        let world = World::new(&["sm", "target-a", "target-b"]);
        let sm = Node {
            service: world.enclave_with("sm", CODE, EnclaveService::as_security_module),
            host: MemoryHost::default(),
        };
        let a = Node {
            service: world.enclave("target-a", CODE),
            host: MemoryHost::default(),
        };
        let b = Node {
            service: world.enclave("target-b", CODE),
            host: MemoryHost::default(),
        };
        let seed = WorkloadSeed::generate().expect("seed");
        let workload = veritee_workload::build(
            &seed,
            WorkloadId::generate().expect("id"),
            &[
                ComponentSpec {
                    kind: ComponentKind::Module,
                    name: "unlock.wat",
                    data: MODULE,
                },
                ComponentSpec {
                    kind: ComponentKind::Configuration,
                    name: "volume",
                    data: CONFIG,
                },
                ComponentSpec {
                    kind: ComponentKind::Secret,
                    name: "CD1",
                    data: CANARY,
                },
            ],
        )
        .expect("build");
        let mut flow = Flow {
            world,
            sm,
            a,
            b,
            owner: TenantKey::generate().expect("tenant"),
            seed,
            workload,
            policy: String::new(),
        };
        flow.policy = signer_policy(&flow.world, &mut flow.a);
        register(&flow.sm.service, &mut flow.sm.host, &flow.owner);
        flow
    }

    fn file(&self) -> WorkloadFile<'_> {
        WorkloadFile::parse(&self.workload).expect("parse")
    }

    fn id(&self) -> WorkloadId {
        self.file().id()
    }

    /// The owner's put-seed body, the seed sealed to the SM's wrapping key.
    fn seed_body(&mut self, seed: &WorkloadSeed, policy: &str, validity: u64) -> Vec<u8> {
        seed_body(
            &mut self.sm,
            &self.owner,
            &self.workload,
            seed,
            policy,
            validity,
        )
    }

    fn put_seed_as(
        sm: &mut Node,
        tenant: &TenantKey,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        let aud = audience(&sm.service, &mut sm.host);
        let request = sign(&aud, tenant, "POST", &paths::sm_seeds(), &body);
        sm.call(WorkloadCall::PutSeed { request, body })
    }

    fn put_seed(&mut self, policy: &str, validity: u64) {
        let seed = WorkloadSeed::from_bytes(self.seed.expose()).expect("seed");
        let body = self.seed_body(&seed, policy, validity);
        Flow::put_seed_as(&mut self.sm, &self.owner, body).expect("seed stored");
    }

    fn put_seed_as_owner(&mut self, body: Vec<u8>) -> Result<Vec<u8>, EnclaveFailure> {
        Flow::put_seed_as(&mut self.sm, &self.owner, body)
    }

    fn challenge(&mut self) -> EnrollmentChallenge {
        self.sm.json(WorkloadCall::Challenge)
    }

    fn authorize(&mut self, target: &str) -> Result<Vec<u8>, EnclaveFailure> {
        let body = serde_json::to_vec(&AuthorizeRequest {
            workload_id: self.id().to_string(),
            target: target.into(),
        })
        .expect("json");
        self.sm.call(WorkloadCall::Authorize { body })
    }

    fn authorization(&mut self, target: &str) -> (Authorization, bool) {
        let json = self.authorize(target).expect("authorized");
        let resp: veritee_proto::workload::AuthorizeResponse =
            serde_json::from_slice(&json).expect("json");
        let bytes = B64.decode(resp.authorization).expect("base64");
        (
            Authorization::from_bytes(&bytes).expect("slot"),
            resp.issued,
        )
    }

    fn with_slot(&self, slot: Authorization) -> Vec<u8> {
        self.file().with_slot(slot).expect("slot inserted")
    }

    /// Seed put, A enrolled and authorized, its slot inserted: the file A launches.
    fn authorized_for_a(&mut self) -> (String, Vec<u8>) {
        self.put_seed(&self.policy.clone(), ONE_DAY);
        let target = enroll(&mut self.sm, &mut self.a).target;
        let (slot, issued) = self.authorization(&target);
        assert!(issued);
        (target, self.with_slot(slot))
    }
}

fn fresh_nonce() -> String {
    hex::encode(veritee_crypto::rand::array::<32>().expect("nonce"))
}

fn output(flow: &Flow, launch: &LaunchResponse) -> LaunchOutput {
    veritee_client::workload::open_launch_output(&flow.seed, &flow.file(), launch).expect("opens")
}

#[test]
fn an_authorized_target_runs_the_workload_and_only_the_owner_reads_what_it_wrote() {
    let mut flow = Flow::new();
    let (_, file) = flow.authorized_for_a();
    let launch = flow.a.launch(&file).expect("launched");
    let out = output(&flow, &launch);
    assert_eq!(out.modules.len(), 1);
    assert!(out.modules[0].fuel_used > 0);
    assert_eq!(out.modules[0].exit_code, Some(0), "{:?}", out.modules[0]);
    let text = B64.decode(&out.modules[0].output).expect("base64");
    assert_eq!(
        String::from_utf8_lossy(&text),
        format!(
            "volume data-volume-1 unlocked with a passphrase of {} bytes",
            CANARY.len()
        )
    );
    // A host that relabels the answer (another target's key id, another workload,
    // another launch's nonce) or flips a byte of it gets it refused; so is an earlier
    // launch's answer handed back for a later one.
    let later = flow.a.launch(&file).expect("launched again");
    let workload = flow.workload.clone();
    let open = |seed: &WorkloadSeed, launch: &LaunchResponse| {
        let file = WorkloadFile::parse(&workload).expect("parse");
        veritee_client::workload::open_launch_output(seed, &file, launch)
    };
    let mut relabelled = launch.clone();
    relabelled.storage_key_id = "00".repeat(16);
    assert!(open(&flow.seed, &relabelled).is_err());
    let mut renonced = launch.clone();
    renonced.nonce = fresh_nonce();
    assert!(open(&flow.seed, &renonced).is_err());
    let mut flipped = launch.clone();
    let mut sealed = B64.decode(&flipped.sealed_output).expect("base64");
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    flipped.sealed_output = B64.encode(sealed);
    assert!(open(&flow.seed, &flipped).is_err());
    let mut replayed = launch.clone();
    replayed.nonce = later.nonce.clone();
    assert!(open(&flow.seed, &replayed).is_err());
    let mut moved = launch.clone();
    moved.workload_id = WorkloadId::generate().expect("id").to_string();
    assert!(open(&flow.seed, &moved).is_err());
    // Another seed does not open the output.
    let other = WorkloadSeed::generate().expect("seed");
    assert!(open(&other, &launch).is_err());
    // The canary passphrase is in nothing a host holds, nor in what crossed it.
    let reply = serde_json::to_vec(&launch).expect("json");
    for haystack in [
        everything(&flow.sm.host),
        everything(&flow.a.host),
        reply,
        file.clone(),
    ] {
        assert!(!contains(&haystack, CANARY));
    }
    let audit = common::audit_bodies(&flow.a.host);
    assert!(
        audit
            .iter()
            .any(|e| e.to_string().contains("workload.launch")),
        "{audit:?}"
    );
}

#[test]
fn a_second_authorization_request_gets_the_same_bytes_back() {
    let mut flow = Flow::new();
    flow.put_seed(&flow.policy.clone(), ONE_DAY);
    let target = enroll(&mut flow.sm, &mut flow.a).target;
    let first = flow.authorize(&target).expect("first");
    let second = flow.authorize(&target).expect("second");
    let a: serde_json::Value = serde_json::from_slice(&first).expect("json");
    let b: serde_json::Value = serde_json::from_slice(&second).expect("json");
    assert_eq!(a["authorization"], b["authorization"]);
    assert_eq!(a["issued"], true);
    assert_eq!(b["issued"], false);
    // Enrolling the same target again gives the same handle, not a second target.
    let again = enroll(&mut flow.sm, &mut flow.a);
    assert_eq!(again.target, target);
    assert!(!again.new);
}

#[test]
fn one_file_carries_slots_for_two_targets_and_is_retargeted_without_a_rebuild() {
    let mut flow = Flow::new();
    let (_, with_a) = flow.authorized_for_a();
    let digest = flow.file().digest();
    let target_b = enroll(&mut flow.sm, &mut flow.b).target;
    let (slot_b, _) = flow.authorization(&target_b);
    let both = WorkloadFile::parse(&with_a)
        .expect("parse")
        .with_slot(slot_b)
        .expect("slot");
    let parsed = WorkloadFile::parse(&both).expect("parse");
    assert_eq!(parsed.slots().len(), 2);
    assert_eq!(parsed.digest(), digest, "slots do not change the workload");
    flow.a.launch(&both).expect("A launches");
    flow.b.launch(&both).expect("B launches");
}

#[test]
fn a_target_without_a_slot_or_with_another_targets_slot_is_refused() {
    let mut flow = Flow::new();
    let (_, with_a) = flow.authorized_for_a();
    let err = flow.b.launch(&with_a).expect_err("B has no slot");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(
        err.message.contains("no authorization for this target"),
        "{err:?}"
    );
    // A's slot relabelled with B's storage key id: found, but its seed does not open.
    let b_target = enroll(&mut flow.sm, &mut flow.b).target;
    let (slot_b, _) = flow.authorization(&b_target);
    let slot_a = WorkloadFile::parse(&with_a).expect("parse").slots()[0].clone();
    let mut swapped = slot_a.to_bytes();
    swapped[20..36].copy_from_slice(slot_b.storage_key.as_bytes());
    let swapped = Authorization::from_bytes(&swapped).expect("slot");
    let file = flow.with_slot(swapped);
    let err = flow.b.launch(&file).expect_err("swapped slot");
    assert!(
        err.message
            .contains("does not open under this target's storage key"),
        "{err:?}"
    );
    // An authorization widened by the host (its window moved) does not open either.
    let mut widened = slot_a.to_bytes();
    widened[60..68].copy_from_slice(&u64::MAX.to_be_bytes());
    let file = flow.with_slot(Authorization::from_bytes(&widened).expect("slot"));
    let err = flow.a.launch(&file).expect_err("widened slot");
    assert!(
        err.message
            .contains("does not open under this target's storage key"),
        "{err:?}"
    );
}

#[test]
fn a_tampered_payload_is_refused_before_anything_runs() {
    let mut flow = Flow::new();
    let (_, good) = flow.authorized_for_a();
    let mut file = good.clone();
    file[100] ^= 1;
    let err = flow.a.launch(&file).expect_err("tampered");
    assert!(err.message.contains("HMAC does not match"), "{err:?}");
    let audit = common::audit_bodies(&flow.a.host);
    assert!(
        !audit
            .iter()
            .any(|e| e.to_string().contains("workload.launch")),
        "nothing ran"
    );
    // Truncated and oversized files name what is wrong.
    let err = flow
        .a
        .launch(&good[..good.len() - 3])
        .expect_err("truncated");
    assert!(err.message.contains("truncated"), "{err:?}");
    let mut longer = good.clone();
    longer.push(0);
    let err = flow.a.launch(&longer).expect_err("trailing");
    assert!(err.message.contains("after its slot area"), "{err:?}");
}

#[test]
fn an_expired_authorization_is_refused_by_the_targets_own_clock() {
    let mut flow = Flow::new();
    let (_, file) = flow.authorized_for_a_with_validity(60);
    // The target restarted with a host clock two minutes ahead: the enclave's time is
    // past the window.
    fn later() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + time::Duration::minutes(2)
    }
    flow.a.service = flow
        .world
        .enclave_with("target-a", CODE, |s| s.with_host_clock(later));
    let err = flow.a.launch(&file).expect_err("expired");
    assert!(err.message.contains("is not valid at"), "{err:?}");
}

impl Flow {
    fn authorized_for_a_with_validity(&mut self, validity: u64) -> (String, Vec<u8>) {
        self.put_seed(&self.policy.clone(), validity);
        let target = enroll(&mut self.sm, &mut self.a).target;
        let (slot, _) = self.authorization(&target);
        (target, self.with_slot(slot))
    }
}

#[test]
fn a_deprovisioned_target_can_neither_be_authorized_nor_open_what_it_had() {
    let mut flow = Flow::new();
    let (target, file) = flow.authorized_for_a();
    let aud = audience(&flow.sm.service, &mut flow.sm.host);
    let body = b"{}".to_vec();
    let request = sign(&aud, &flow.owner, "POST", &paths::sm_forget(&target), &body);
    let forgot: serde_json::Value = flow.sm.json(WorkloadCall::Forget {
        request,
        target: target.clone(),
        body,
    });
    assert_eq!(forgot["authorizations_removed"], 1);
    let err = flow.authorize(&target).expect_err("forgotten");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("was forgotten"), "{err:?}");
    // The target rotates its storage key: the slot it had no longer opens.
    let rotated: serde_json::Value = flow.a.json(WorkloadCall::RotateStorageKey);
    assert!(rotated["previous"].is_string());
    let err = flow.a.launch(&file).expect_err("rotated");
    assert!(err.message.contains("key was rotated"), "{err:?}");
    // Enrolled again with its new key, it is the same target (same machine, same
    // code), still forgotten: no second authorization.
    let again = enroll(&mut flow.sm, &mut flow.a);
    assert!(!again.new);
    assert_eq!(again.target, target);
    let err = flow.authorize(&target).expect_err("still forgotten");
    assert!(err.message.contains("was forgotten"), "{err:?}");
}

#[test]
fn a_target_whose_machine_was_revoked_is_refused_when_it_enrolls_again() {
    let mut flow = Flow::new();
    let first = enroll(&mut flow.sm, &mut flow.a);
    // Enrolled again, the same target: its chain's signatures were verified once and
    // are remembered (veritee_crypto::sign::verify_collateral); validity and
    // revocation are decided afresh at every enrollment, as the rest of this shows.
    let again = enroll(&mut flow.sm, &mut flow.a);
    assert_eq!(again.target, first.target);
    assert!(!again.new);

    let world = flow.world.dir.path();
    let mut vendor = SimVendor::open(&world.join("vendor")).expect("vendor");
    let mut machine = SimMachine::open(&world.join("target-a")).expect("machine");
    let revoked = vendor
        .revoke_machine(&machine.machine_id(), time::OffsetDateTime::now_utc())
        .expect("revoked");
    assert_eq!(revoked, 1);
    // The machine fetches the vendor's new CRL, as it must to keep attesting; its
    // enclave, restarted on its own store, carries it in its evidence.
    machine.refresh_collateral(&vendor).expect("collateral");
    flow.a.service = flow.world.enclave("target-a", CODE);
    let challenge = flow.challenge();
    let answer: EnrollmentAnswer = flow.a.json(WorkloadCall::AnswerChallenge {
        body: serde_json::to_vec(&challenge).expect("json"),
    });
    let err = flow
        .sm
        .call(WorkloadCall::Enroll {
            challenge_id: challenge.challenge_id,
            body: serde_json::to_vec(&answer).expect("json"),
        })
        .expect_err("revoked");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("revoked"), "{err:?}");
}

#[test]
fn a_host_that_rotates_a_targets_key_gets_no_second_authorization() {
    let mut flow = Flow::new();
    let (target, _) = flow.authorized_for_a();
    let (first, _) = flow.authorization(&target);
    // The host rotates A's key (no operator needed: it can always drop the record) and
    // enrolls it again: same handle, and the authorization is the first one, to the
    // old key, which no longer opens there.
    let _: serde_json::Value = flow.a.json(WorkloadCall::RotateStorageKey);
    let again = enroll(&mut flow.sm, &mut flow.a);
    assert_eq!(again.target, target);
    let (second, issued) = flow.authorization(&target);
    assert!(!issued);
    assert_eq!(first, second);
    let file = flow.with_slot(second);
    let err = flow.a.launch(&file).expect_err("old key");
    assert!(
        err.message.contains("no authorization for this target"),
        "{err:?}"
    );
}

#[test]
fn another_tenant_cannot_forget_an_owners_authorizations() {
    let mut flow = Flow::new();
    let (target, file) = flow.authorized_for_a();
    let mallory = TenantKey::generate().expect("tenant");
    register(&flow.sm.service, &mut flow.sm.host, &mallory);
    let aud = audience(&flow.sm.service, &mut flow.sm.host);
    let body = b"{}".to_vec();
    let request = sign(&aud, &mallory, "POST", &paths::sm_forget(&target), &body);
    let forgot: serde_json::Value = flow.sm.json(WorkloadCall::Forget {
        request,
        target: target.clone(),
        body,
    });
    assert_eq!(forgot["authorizations_removed"], 0);
    let (_, issued) = flow.authorization(&target);
    assert!(!issued, "the owner's authorization is still there");
    flow.a.launch(&file).expect("still launches");
}

#[test]
fn a_security_module_serves_nothing_but_workloads() {
    let mut flow = Flow::new();
    let err = flow
        .sm
        .service
        .handle(
            EnclaveCall::TaskRun {
                request: veritee_proto::ipc::SignedRequest {
                    authorization: String::new(),
                    method: "POST".into(),
                    path: "/v1/tasks/x/run".into(),
                },
                task_id: "x".into(),
            },
            &mut flow.sm.host,
        )
        .expect_err("refused");
    assert!(err.message.contains("security module"), "{err:?}");
}

#[test]
fn a_target_outside_the_sealing_policy_gets_no_authorization() {
    let mut flow = Flow::new();
    let policy = format!(
        "{}[measurements]\nmeasurement = [\"{}\"]\n",
        simulated_policy(),
        "00".repeat(48)
    );
    flow.put_seed(&policy, ONE_DAY);
    let target = enroll(&mut flow.sm, &mut flow.a).target;
    let err = flow.authorize(&target).expect_err("outside the policy");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("sealing policy"), "{err:?}");
    assert!(err.message.contains("measurement"), "{err:?}");
}

#[test]
fn enrollment_answers_are_bound_to_their_challenge_and_their_key() {
    let mut flow = Flow::new();
    // A challenge is good once.
    let challenge = flow.challenge();
    let answer: EnrollmentAnswer = flow.a.json(WorkloadCall::AnswerChallenge {
        body: serde_json::to_vec(&challenge).expect("json"),
    });
    let body = serde_json::to_vec(&answer).expect("json");
    flow.sm
        .call(WorkloadCall::Enroll {
            challenge_id: challenge.challenge_id.clone(),
            body: body.clone(),
        })
        .expect("enrolled");
    let err = flow.sm.refusal(WorkloadCall::Enroll {
        challenge_id: challenge.challenge_id,
        body,
    });
    assert_eq!(err.kind, FailureKind::NotFound);
    // An answer to one challenge handed in for another does not open.
    let first = flow.challenge();
    let second = flow.challenge();
    let mut mixed = second.clone();
    mixed.nonce = first.nonce.clone();
    let answer: EnrollmentAnswer = flow.b.json(WorkloadCall::AnswerChallenge {
        body: serde_json::to_vec(&mixed).expect("json"),
    });
    let err = flow.sm.refusal(WorkloadCall::Enroll {
        challenge_id: second.challenge_id,
        body: serde_json::to_vec(&answer).expect("json"),
    });
    assert!(err.message.contains("does not open"), "{err:?}");
    // A key the orchestrator chose, with genuine evidence that binds something else,
    // is refused: the evidence must bind the storage key and the SM's nonce.
    let challenge = flow.challenge();
    let nonce = B64.decode(&challenge.nonce).expect("nonce");
    let evidence = match flow
        .b
        .service
        .handle(EnclaveCall::Attest { nonce }, &mut flow.b.host)
        .expect("attest")
    {
        EnclaveReply::Attestation { evidence, .. } => evidence,
        other => panic!("{other:?}"),
    };
    let mine = veritee_crypto::hpke::HpkeKeyPair::generate();
    let mut inner = Vec::new();
    ciborium::into_writer(
        &veritee_proto::workload::EnrollmentEvidence {
            storage_public_key: mine.public_key().as_bytes().to_vec(),
            evidence,
        },
        &mut inner,
    )
    .expect("cbor");
    let sm_key = HpkePublicKey::from_bytes(&B64.decode(&challenge.sm_public_key).expect("b64"))
        .expect("key");
    let sealed = veritee_crypto::hpke::seal(
        &sm_key,
        veritee_proto::workload::ENROLLMENT_HPKE_INFO,
        &veritee_proto::workload::challenge_aad(
            veritee_proto::workload::ENROLLMENT_HPKE_INFO,
            &challenge.challenge_id,
            &challenge.nonce,
        ),
        &inner,
    )
    .expect("seal");
    let err = flow.sm.refusal(WorkloadCall::Enroll {
        challenge_id: challenge.challenge_id,
        body: serde_json::to_vec(&EnrollmentAnswer {
            tpm: false,
            sealed: B64.encode(sealed),
        })
        .expect("json"),
    });
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("evidence does not verify"), "{err:?}");
}

#[test]
fn a_seed_is_kept_once_and_never_replaced() {
    let mut flow = Flow::new();
    flow.put_seed(&flow.policy.clone(), ONE_DAY);
    let seed = WorkloadSeed::from_bytes(flow.seed.expose()).expect("seed");
    let body = flow.seed_body(&seed, &flow.policy.clone(), ONE_DAY);
    let again: serde_json::Value = serde_json::from_slice(
        &Flow::put_seed_as(&mut flow.sm, &flow.owner, body).expect("same again"),
    )
    .expect("json");
    assert_eq!(again["created"], false);
    // Another seed for the same workload id: refused, the first one kept.
    let other = WorkloadSeed::generate().expect("seed");
    let body = flow.seed_body(&other, &flow.policy.clone(), ONE_DAY);
    let err = Flow::put_seed_as(&mut flow.sm, &flow.owner, body).expect_err("another seed");
    assert_eq!(err.kind, FailureKind::Conflict);
    // Another tenant cannot take it over either: the seed is sealed for its owner.
    let mallory = TenantKey::generate().expect("tenant");
    register(&flow.sm.service, &mut flow.sm.host, &mallory);
    let body = flow.seed_body(&seed, &flow.policy.clone(), ONE_DAY);
    let err = Flow::put_seed_as(&mut flow.sm, &mallory, body).expect_err("other tenant");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    // A seed sealed for another workload's digest does not open.
    let mut body: PutSeedRequest =
        serde_json::from_slice(&flow.seed_body(&seed, &flow.policy.clone(), ONE_DAY))
            .expect("json");
    body.workload_digest = "11".repeat(32);
    let err = flow
        .put_seed_as_owner(serde_json::to_vec(&body).expect("json"))
        .expect_err("digest swapped");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    // A host that changes the signed body is refused by the signature.
    let aud = audience(&flow.sm.service, &mut flow.sm.host);
    let body = flow.seed_body(&seed, &flow.policy.clone(), ONE_DAY);
    let request = sign(&aud, &flow.owner, "POST", &paths::sm_seeds(), &body);
    let mut altered = body.clone();
    let at = altered.len() - 3;
    altered[at] ^= 1;
    let err = flow.sm.refusal(WorkloadCall::PutSeed {
        request,
        body: altered,
    });
    assert_eq!(err.kind, FailureKind::Unauthorized);
    // The seed is in nothing the SM's host holds.
    assert!(!contains(&everything(&flow.sm.host), flow.seed.expose()));
}

#[test]
fn a_restarted_security_module_keeps_its_database() {
    let mut flow = Flow::new();
    let (target, _) = flow.authorized_for_a();
    let (before, _) = flow.authorization(&target);
    flow.sm.service = flow
        .world
        .enclave_with("sm", CODE, EnclaveService::as_security_module);
    let (after, issued) = flow.authorization(&target);
    assert!(!issued);
    assert_eq!(before, after);
    let aud = audience(&flow.sm.service, &mut flow.sm.host);
    let request = sign(&aud, &flow.owner, "GET", &paths::sm_state(), &[]);
    let state: SmState = flow.sm.json(WorkloadCall::State { request });
    assert_eq!(state.workloads.len(), 1);
    assert_eq!(state.targets.len(), 1);
    assert_eq!(state.authorizations.len(), 1);
    assert_eq!(state.targets[0].target, target);
}

#[test]
fn each_role_refuses_the_other_roles_calls() {
    let mut flow = Flow::new();
    let err = flow.a.refusal(WorkloadCall::Challenge);
    assert!(err.message.contains("not a security module"), "{err:?}");
    let err = flow.sm.refusal(WorkloadCall::Launch {
        nonce: fresh_nonce(),
        workload: flow.workload.clone(),
    });
    assert!(err.message.contains("does not run workloads"), "{err:?}");
}

/// Launches what `target` measured as `pending_id` with the SM's release (its JSON
/// answer) and `workload` sent again.
fn launch_released(
    target: &mut Node,
    pending_id: &str,
    released: &[u8],
    workload: &[u8],
) -> Result<Vec<u8>, EnclaveFailure> {
    let released: ReleaseResponse = serde_json::from_slice(released).expect("json");
    target.call(WorkloadCall::LaunchReleased {
        pending_id: pending_id.into(),
        nonce: fresh_nonce(),
        challenge_id: released.challenge_id,
        sealed_seed: hex::encode(B64.decode(released.sealed_seed).expect("b64")),
        workload: workload.to_vec(),
    })
}

/// Verify-before-secrets: `target` loads `workload`, answers a fresh release
/// challenge, the SM releases (or refuses), and the target launches with what it got.
fn release_to(
    sm: &mut Node,
    target: &mut Node,
    workload: &[u8],
) -> Result<LaunchResponse, EnclaveFailure> {
    let pending: PendingResponse = serde_json::from_slice(&target.call(WorkloadCall::Pending {
        workload: workload.to_vec(),
    })?)
    .expect("json");
    let challenge: EnrollmentChallenge = sm.json(WorkloadCall::ReleaseChallenge);
    let measured: EnrollmentAnswer = target.json(WorkloadCall::Measure {
        pending_id: pending.pending_id.clone(),
        body: serde_json::to_vec(&challenge).expect("json"),
    });
    let released = sm.call(WorkloadCall::Release {
        challenge_id: challenge.challenge_id,
        body: serde_json::to_vec(&ReleaseRequest {
            workload_id: pending.workload_id,
            sealed: measured.sealed,
        })
        .expect("json"),
    })?;
    launch_released(target, &pending.pending_id, &released, workload)
        .map(|json| serde_json::from_slice(&json).expect("json"))
}

#[test]
fn verify_before_secrets_releases_the_seed_to_a_measured_target_only() {
    let mut flow = Flow::new();
    flow.put_seed(&flow.policy.clone(), ONE_DAY);
    // No slot, no enrollment: the measurement in fresh evidence is what the SM checks.
    let workload = flow.workload.clone();
    let launch = release_to(&mut flow.sm, &mut flow.a, &workload).expect("released");
    let out = output(&flow, &launch);
    assert_eq!(out.modules[0].exit_code, Some(0), "{:?}", out.modules[0]);
    let audit = common::audit_bodies(&flow.sm.host);
    assert!(
        audit.iter().any(|e| e.to_string().contains("sm.release")),
        "{audit:?}"
    );
    // Another build under the same id and seed measures differently: refused.
    let other = veritee_workload::build(
        &flow.seed,
        flow.id(),
        &[ComponentSpec {
            kind: ComponentKind::Module,
            name: "unlock.wat",
            data: b"(module (func (export \"run\") (result i32) i32.const 9))",
        }],
    )
    .expect("build");
    let err = release_to(&mut flow.sm, &mut flow.a, &other).expect_err("other build");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("measured build"), "{err:?}");
    // A seed released for one loaded workload does not launch another.
    let p1: PendingResponse = flow.a.json(WorkloadCall::Pending {
        workload: workload.clone(),
    });
    let p2: PendingResponse = flow.a.json(WorkloadCall::Pending {
        workload: workload.clone(),
    });
    let c1: EnrollmentChallenge = flow.sm.json(WorkloadCall::ReleaseChallenge);
    let m1: EnrollmentAnswer = flow.a.json(WorkloadCall::Measure {
        pending_id: p1.pending_id.clone(),
        body: serde_json::to_vec(&c1).expect("json"),
    });
    let released = flow
        .sm
        .call(WorkloadCall::Release {
            challenge_id: c1.challenge_id.clone(),
            body: serde_json::to_vec(&ReleaseRequest {
                workload_id: p1.workload_id.clone(),
                sealed: m1.sealed,
            })
            .expect("json"),
        })
        .expect("released");
    let err = launch_released(&mut flow.a, &p2.pending_id, &released, &workload)
        .expect_err("another pending workload");
    assert!(err.message.contains("did not answer"), "{err:?}");
    // Even when the second one answered a challenge of the same id (a host replaying
    // it), the seed is sealed to the first one's one-time key.
    let _: EnrollmentAnswer = flow.a.json(WorkloadCall::Measure {
        pending_id: p2.pending_id.clone(),
        body: serde_json::to_vec(&c1).expect("json"),
    });
    let err = launch_released(&mut flow.a, &p2.pending_id, &released, &workload)
        .expect_err("another one-time key");
    assert!(err.message.contains("does not open"), "{err:?}");
    // The workload sent with the seed must be the one measured.
    let err = launch_released(&mut flow.a, &p1.pending_id, &released, &other)
        .expect_err("another build sent at release");
    assert!(
        err.message.contains("not the one this target measured"),
        "{err:?}"
    );
    launch_released(&mut flow.a, &p1.pending_id, &released, &workload)
        .expect("the first one launches");
    // Launched, it is gone: the same release does not launch it twice.
    let err =
        launch_released(&mut flow.a, &p1.pending_id, &released, &workload).expect_err("twice");
    assert_eq!(err.kind, FailureKind::NotFound);
}

#[test]
fn verify_before_secrets_applies_the_sealing_policy_to_fresh_evidence() {
    let mut flow = Flow::new();
    let policy = format!(
        "{}[measurements]\nmeasurement = [\"{}\"]\n",
        simulated_policy(),
        "00".repeat(48)
    );
    flow.put_seed(&policy, ONE_DAY);
    let workload = flow.workload.clone();
    let err = release_to(&mut flow.sm, &mut flow.a, &workload).expect_err("policy");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("sealing policy"), "{err:?}");
}

#[test]
fn a_host_relaying_the_owners_seed_can_neither_put_it_first_nor_loosen_it() {
    let mut flow = Flow::new();
    let seed = WorkloadSeed::from_bytes(flow.seed.expose()).expect("seed");
    let policy = flow.policy.clone();
    let body = flow.seed_body(&seed, &policy, ONE_DAY);
    // The host's own tenant hands in the owner's sealed seed before the owner does.
    let mallory = TenantKey::generate().expect("tenant");
    register(&flow.sm.service, &mut flow.sm.host, &mallory);
    let err = Flow::put_seed_as(&mut flow.sm, &mallory, body.clone()).expect_err("front-run");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.message.contains("does not open"), "{err:?}");
    // ...or with a laxer policy and a longer validity.
    let mut loose: PutSeedRequest = serde_json::from_slice(&body).expect("json");
    loose.policy = format!(
        "{}signers = [\"{}\"]\n",
        simulated_policy(),
        "ab".repeat(32)
    );
    loose.validity_seconds = 366 * ONE_DAY;
    let err = Flow::put_seed_as(
        &mut flow.sm,
        &mallory,
        serde_json::to_vec(&loose).expect("json"),
    )
    .expect_err("loosened");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    // The owner's own put is still the first to land.
    let stored: serde_json::Value =
        serde_json::from_slice(&flow.put_seed_as_owner(body).expect("owner")).expect("json");
    assert_eq!(stored["created"], true);
}

#[test]
fn a_sealing_policy_must_name_the_code_it_lets_open_the_workload() {
    let mut flow = Flow::new();
    let seed = WorkloadSeed::from_bytes(flow.seed.expose()).expect("seed");
    let body = flow.seed_body(&seed, &simulated_policy(), ONE_DAY);
    let err = flow.put_seed_as_owner(body).expect_err("no code named");
    assert_eq!(err.kind, FailureKind::BadRequest);
    assert!(
        err.message.contains("names no `measurements` or `signers`"),
        "{err:?}"
    );
}

#[test]
fn malformed_truncated_and_oversized_messages_are_refused_by_name() {
    let mut flow = Flow::new();
    flow.put_seed(&flow.policy.clone(), ONE_DAY);
    let challenge: EnrollmentChallenge = flow.sm.json(WorkloadCall::Challenge);
    let good_challenge = serde_json::to_vec(&challenge).expect("json");
    let answer = flow
        .a
        .call(WorkloadCall::AnswerChallenge {
            body: good_challenge.clone(),
        })
        .expect("answer");
    let pending = flow
        .a
        .call(WorkloadCall::Pending {
            workload: flow.workload.clone(),
        })
        .expect("pending");
    let pending: PendingResponse = serde_json::from_slice(&pending).expect("json");
    let big = vec![b'{'; 1 << 20];
    for body in [
        Vec::new(),
        b"not json".to_vec(),
        good_challenge[..good_challenge.len() / 2].to_vec(),
        answer[..answer.len() - 5].to_vec(),
        big.clone(),
    ] {
        for call in [
            WorkloadCall::Enroll {
                challenge_id: challenge.challenge_id.clone(),
                body: body.clone(),
            },
            WorkloadCall::Authorize { body: body.clone() },
            WorkloadCall::Release {
                challenge_id: challenge.challenge_id.clone(),
                body: body.clone(),
            },
        ] {
            let err = flow.sm.refusal(call);
            assert_eq!(err.kind, FailureKind::BadRequest, "{err:?}");
            assert!(err.message.starts_with("invalid"), "{err:?}");
        }
        for call in [
            WorkloadCall::AnswerChallenge { body: body.clone() },
            WorkloadCall::Measure {
                pending_id: pending.pending_id.clone(),
                body: body.clone(),
            },
            WorkloadCall::LaunchReleased {
                pending_id: pending.pending_id.clone(),
                nonce: fresh_nonce(),
                challenge_id: challenge.challenge_id.clone(),
                sealed_seed: "00".into(),
                workload: body.clone(),
            },
        ] {
            let err = flow.a.refusal(call);
            assert_eq!(err.kind, FailureKind::BadRequest, "{err:?}");
        }
    }
    // A sealed answer cut short, or with a byte flipped, does not open; the challenge
    // it named is spent, as any answer spends it.
    let answer: EnrollmentAnswer = serde_json::from_slice(&answer).expect("json");
    let mut sealed = B64.decode(&answer.sealed).expect("b64");
    sealed.truncate(sealed.len() - 1);
    let err = flow.sm.refusal(WorkloadCall::Enroll {
        challenge_id: challenge.challenge_id.clone(),
        body: serde_json::to_vec(&EnrollmentAnswer {
            tpm: false,
            sealed: B64.encode(&sealed),
        })
        .expect("json"),
    });
    assert_eq!(err.kind, FailureKind::Unauthorized, "{err:?}");
    // A launch nonce that is not 16 to 64 bytes of hex is refused before anything runs.
    let (_, file) = flow.authorized_for_a_enrolled();
    for nonce in ["", "zz", "00"] {
        let err = flow.a.refusal(WorkloadCall::Launch {
            nonce: nonce.into(),
            workload: file.clone(),
        });
        assert!(err.message.contains("launch nonce"), "{err:?}");
    }
}

impl Flow {
    /// A enrolled and authorized for the workload whose seed is already put.
    fn authorized_for_a_enrolled(&mut self) -> (String, Vec<u8>) {
        let target = enroll(&mut self.sm, &mut self.a).target;
        let (slot, _) = self.authorization(&target);
        (target, self.with_slot(slot))
    }
}
