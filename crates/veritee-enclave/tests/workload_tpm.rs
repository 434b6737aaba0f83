//! Flow 2 with TPM 2.0 targets, against real software TPMs (swtpm): each test
//! manufactures its TPMs under a local CA of its own (the manufacturer), starts them
//! on loopback, and runs a security module and a target enclave in process.
//!
//! Without swtpm installed the tests say so and pass, unless VERITEE_REQUIRE_SWTPM is
//! set (as CI sets it): then they fail.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::workload::{Node, seed_body};
use common::{World, contains, everything, register};
use veritee_channel::client::TenantKey;
use veritee_proto::ipc::{EnclaveFailure, FailureKind};
use veritee_proto::workload::{
    ACTIVATION_HPKE_INFO, ActivatedCredential, ActivationChallenge, AuthorizeRequest,
    AuthorizeResponse, EnrollOutcome, EnrollResponse, EnrollmentAnswer, EnrollmentChallenge,
    LaunchResponse, WorkloadCall, challenge_aad,
};
use veritee_tpm::swtpm::{LocalCa, SoftwareTpm};
use veritee_workload::{
    Authorization, ComponentKind, ComponentSpec, WorkloadFile, WorkloadId, WorkloadSeed,
};

const CODE: &[u8] = b"veritee node build under test";
const MODULE: &[u8] = include_bytes!("../../../examples/workloads/unlock.wat");
const CANARY: &[u8] = b"canary-cd1-tpm-passphrase-1414213562";
const PCRS: [u32; 3] = [0, 7, 8];
/// The same selection as the target is configured with: unordered, one repeated (it is
/// the same key, launch after launch).
const PCRS_AS_GIVEN: [u32; 4] = [8, 0, 7, 0];
const ONE_DAY: u64 = 24 * 3600;

/// A manufacturer (local CA) and one TPM made by it, running.
struct Tpm {
    ca: LocalCa,
    running: SoftwareTpm,
}

impl Tpm {
    fn manufacture(dir: &std::path::Path, ca: &str, name: &str) -> Tpm {
        let ca = LocalCa::new(&dir.join(ca)).expect("local CA");
        let state = dir.join(name);
        ca.manufacture(&state).expect("swtpm_setup");
        let running = SoftwareTpm::start(&state).expect("swtpm");
        Tpm { ca, running }
    }

    fn anchors(&self) -> Vec<veritee_attest::ParsedCertificate> {
        let mut pem = self.ca.root_pem().expect("root");
        pem.extend(self.ca.intermediate_pem().expect("intermediate"));
        veritee_attest::ParsedCertificate::from_pem_chain(&pem).expect("CA certificates")
    }
}

struct Flow {
    _dir: tempfile::TempDir,
    world: World,
    sm: Node,
    target: Node,
    tpm: Tpm,
    owner: TenantKey,
    seed: WorkloadSeed,
    workload: Vec<u8>,
}

fn refusal(result: Result<Vec<u8>, EnclaveFailure>) -> EnclaveFailure {
    match result {
        Ok(json) => panic!("accepted: {}", String::from_utf8_lossy(&json)),
        Err(f) => f,
    }
}

impl Flow {
    /// A security module that trusts `anchors_of`'s manufacturer, and a target on `tpm`.
    fn new() -> Option<Flow> {
        if !veritee_tpm::swtpm::available_or_required() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let tpm = Tpm::manufacture(dir.path(), "manufacturer", "tpm-a");
        Some(Self::with(dir, tpm, None))
    }

    fn with(
        dir: tempfile::TempDir,
        tpm: Tpm,
        sm_anchors: Option<Vec<veritee_attest::ParsedCertificate>>,
    ) -> Flow {
        let world = World::new(&["sm", "target", "target-b"]);
        let anchors = sm_anchors.unwrap_or_else(|| tpm.anchors());
        let sm = Node::new(world.enclave_with("sm", CODE, |s| {
            s.as_security_module().with_tpm_anchors(anchors)
        }));
        let tcti = tpm.running.tcti();
        let target = Node::new(world.enclave_with("target", CODE, |s| {
            s.with_tpm_target(tcti, PCRS_AS_GIVEN.to_vec())
        }));
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
                    data: b"tpm-volume",
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
            _dir: dir,
            world,
            sm,
            target,
            tpm,
            owner: TenantKey::generate().expect("tenant"),
            seed,
            workload,
        };
        register(&flow.sm.service, &mut flow.sm.host, &flow.owner);
        flow
    }

    /// Step one: the SM's challenge, the target's TPM evidence.
    fn first_step(&mut self) -> (EnrollmentChallenge, Result<Vec<u8>, EnclaveFailure>) {
        let challenge: EnrollmentChallenge = self.sm.json(WorkloadCall::Challenge);
        let answer: EnrollmentAnswer = self.target.json(WorkloadCall::AnswerChallenge {
            body: serde_json::to_vec(&challenge).expect("json"),
        });
        assert!(answer.tpm, "a TPM target marks its answer");
        let outcome = self.sm.call(WorkloadCall::Enroll {
            challenge_id: challenge.challenge_id.clone(),
            body: serde_json::to_vec(&answer).expect("json"),
        });
        (challenge, outcome)
    }

    /// The first step, accepted: the SM's MakeCredential challenge for this TPM.
    fn activation_step(&mut self) -> (EnrollmentChallenge, ActivationChallenge) {
        let (challenge, outcome) = self.first_step();
        let Ok(EnrollOutcome::Activate { activation }) =
            serde_json::from_slice(&outcome.expect("evidence accepted"))
        else {
            panic!("no activation");
        };
        (challenge, activation)
    }

    fn enroll(&mut self) -> EnrollResponse {
        common::workload::enroll(&mut self.sm, &mut self.target)
    }

    /// The owner's seed, under a policy naming the TPM's PCRs as enrolled.
    fn put_seed(&mut self, enrolled: &EnrollResponse) {
        assert_eq!(enrolled.tee, "tpm2");
        let policy = self.pcr_policy();
        let body = seed_body(
            &mut self.sm,
            &self.owner,
            &self.workload,
            &self.seed,
            &policy,
            ONE_DAY,
        );
        let aud = common::audience(&self.sm.service, &mut self.sm.host);
        let request = common::sign(
            &aud,
            &self.owner,
            "POST",
            &veritee_proto::workload::paths::sm_seeds(),
            &body,
        );
        self.sm
            .call(WorkloadCall::PutSeed { request, body })
            .expect("seed stored");
    }

    /// A sealing policy for this TPM's current PCR values and the target's signer.
    fn pcr_policy(&mut self) -> String {
        let tcti = self.tpm.running.tcti();
        common::workload::tpm_policy(&self.world, &mut self.target, &tcti, &PCRS)
    }

    fn authorize(&mut self, target: &str) -> Result<AuthorizeResponse, EnclaveFailure> {
        let id = WorkloadFile::parse(&self.workload).expect("parse").id();
        self.sm
            .call(WorkloadCall::Authorize {
                body: serde_json::to_vec(&AuthorizeRequest {
                    workload_id: id.to_string(),
                    target: target.into(),
                })
                .expect("json"),
            })
            .map(|json| serde_json::from_slice(&json).expect("json"))
    }

    fn with_slot(&self, authorization: &AuthorizeResponse) -> Vec<u8> {
        let slot =
            Authorization::from_bytes(&B64.decode(&authorization.authorization).expect("base64"))
                .expect("slot");
        WorkloadFile::parse(&self.workload)
            .expect("parse")
            .with_slot(slot)
            .expect("slot inserted")
    }

    fn launch(&mut self, workload: &[u8]) -> Result<LaunchResponse, EnclaveFailure> {
        self.target
            .call(WorkloadCall::Launch {
                nonce: hex::encode([5u8; 16]),
                workload: workload.to_vec(),
            })
            .map(|json| serde_json::from_slice(&json).expect("json"))
    }
}

#[test]
fn a_tpm_target_enrolls_once_is_authorized_and_launches() {
    let Some(mut flow) = Flow::new() else { return };
    let enrolled = flow.enroll();
    assert!(enrolled.new);
    // Enrolled again (same TPM, same PCRs): the same handle.
    let again = flow.enroll();
    assert_eq!(again.target, enrolled.target);
    assert!(!again.new);
    flow.put_seed(&enrolled);
    let issued = flow.authorize(&enrolled.target).expect("authorized");
    assert!(issued.issued);
    let repeat = flow.authorize(&enrolled.target).expect("same again");
    assert!(!repeat.issued);
    assert_eq!(repeat.authorization, issued.authorization);
    let workload = flow.with_slot(&issued);
    let file = WorkloadFile::parse(&workload).expect("parse");
    assert!(file.slots()[0].is_tpm());
    let launch = flow.launch(&workload).expect("launched");
    let output =
        veritee_client::workload::open_launch_output(&flow.seed, &file, &launch).expect("output");
    assert_eq!(output.modules.len(), 1);
    assert_eq!(output.modules[0].exit_code, Some(0), "{output:?}");
    // The canary passphrase is in nothing either host holds, nor in what crossed them.
    for haystack in [
        everything(&flow.sm.host),
        everything(&flow.target.host),
        serde_json::to_vec(&launch).expect("json"),
        workload.clone(),
    ] {
        assert!(!contains(&haystack, CANARY));
        assert!(!contains(&haystack, flow.seed.expose()));
    }
}

#[test]
fn a_tpm_whose_ek_chain_does_not_reach_the_ca_is_refused() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tpm = Tpm::manufacture(dir.path(), "manufacturer", "tpm-a");
    let other = LocalCa::new(&dir.path().join("another-manufacturer")).expect("CA");
    // The other CA's keys appear when it makes its first TPM.
    other
        .manufacture(&dir.path().join("tpm-other"))
        .expect("swtpm_setup");
    let mut pem = other.root_pem().expect("root");
    pem.extend(other.intermediate_pem().expect("intermediate"));
    let anchors = veritee_attest::ParsedCertificate::from_pem_chain(&pem).expect("anchors");
    let mut flow = Flow::with(dir, tpm, Some(anchors));
    let (_, outcome) = flow.first_step();
    let refused = refusal(outcome);
    assert_eq!(refused.kind, FailureKind::Unauthorized);
    assert!(
        refused.message.contains("TPM target refused") && refused.message.contains("EK"),
        "{}",
        refused.message
    );
}

#[test]
fn a_tpm_whose_endorsement_key_the_manufacturer_revoked_is_refused() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = LocalCa::issuing_crls(&dir.path().join("manufacturer")).expect("CA");
    let state = dir.path().join("tpm-a");
    ca.manufacture(&state).expect("swtpm_setup");
    let running = SoftwareTpm::start(&state).expect("swtpm");
    let ek = veritee_tpm::device::TargetTpm::open(&running.tcti())
        .and_then(|mut tpm| tpm.ek_certificate())
        .expect("EK certificate");
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let crl = |revoked: &[Vec<u8>]| {
        veritee_x509::ParsedCrl::from_der_or_pem(&ca.crl(revoked, now - day, now + day).unwrap())
            .unwrap()
    };
    let (revoking, clean) = (crl(&[ek]), crl(&[]));
    let mut flow = Flow::with(dir, Tpm { ca, running }, None);
    // The SM restarted with a CRL that revokes this TPM's EK (CRLs are given at start),
    // then with one that does not; it keeps its store.
    let restart_with = |flow: &mut Flow, crl: veritee_x509::ParsedCrl| {
        let anchors = flow.tpm.anchors();
        flow.sm.service = flow.world.enclave_with("sm", CODE, |s| {
            s.as_security_module()
                .with_tpm_anchors(anchors)
                .with_tpm_crls(vec![crl])
        });
    };
    restart_with(&mut flow, revoking);
    let (_, outcome) = flow.first_step();
    let refused = refusal(outcome);
    assert_eq!(refused.kind, FailureKind::Unauthorized);
    assert!(
        refused.message.contains("TPM target refused")
            && refused.message.contains("is revoked since"),
        "{}",
        refused.message
    );
    restart_with(&mut flow, clean);
    flow.activation_step();
}

#[test]
fn a_wrong_activate_credential_answer_is_refused() {
    let Some(mut flow) = Flow::new() else { return };
    // The host answers the credential itself: it can seal to the SM's public key, but
    // it cannot know the secret only the TPM could activate.
    let (challenge, activation) = flow.activation_step();
    let sm_key = veritee_crypto::hpke::HpkePublicKey::from_bytes(
        &B64.decode(&activation.sm_public_key).expect("base64"),
    )
    .expect("key");
    let mut forged = Vec::new();
    ciborium::into_writer(
        &ActivatedCredential {
            secret: vec![0x42; 32],
        },
        &mut forged,
    )
    .expect("cbor");
    let sealed = veritee_crypto::hpke::seal(
        &sm_key,
        ACTIVATION_HPKE_INFO,
        &challenge_aad(
            ACTIVATION_HPKE_INFO,
            &activation.challenge_id,
            &activation.nonce,
        ),
        &forged,
    )
    .expect("seal");
    let refused = refusal(
        flow.sm.call(WorkloadCall::Activation {
            challenge_id: challenge.challenge_id.clone(),
            body: serde_json::to_vec(&EnrollmentAnswer {
                sealed: B64.encode(sealed),
                tpm: true,
            })
            .expect("json"),
        }),
    );
    assert_eq!(refused.kind, FailureKind::Unauthorized);
    assert!(
        refused
            .message
            .contains("answer to the credential is wrong"),
        "{}",
        refused.message
    );
    // The credential was good once: the real answer now finds nothing waiting.
    let real: EnrollmentAnswer = flow.target.json(WorkloadCall::ActivateCredential {
        body: serde_json::to_vec(&activation).expect("json"),
    });
    let late = refusal(flow.sm.call(WorkloadCall::Activation {
        challenge_id: challenge.challenge_id,
        body: serde_json::to_vec(&real).expect("json"),
    }));
    assert_eq!(late.kind, FailureKind::NotFound, "{}", late.message);
}

#[test]
fn another_tpm_cannot_activate_the_credential() {
    let Some(mut flow) = Flow::new() else { return };
    let (challenge, activation) = flow.activation_step();
    // A second TPM from the same manufacturer, behind another target enclave.
    let state = flow._dir.path().join("tpm-b");
    flow.tpm.ca.manufacture(&state).expect("swtpm_setup");
    let tpm_b = SoftwareTpm::start(&state).expect("swtpm");
    let tcti = tpm_b.tcti();
    let mut target_b = Node::new(
        flow.world
            .enclave_with("target-b", CODE, |s| s.with_tpm_target(tcti, PCRS.to_vec())),
    );
    let refused = refusal(target_b.call(WorkloadCall::ActivateCredential {
        body: serde_json::to_vec(&activation).expect("json"),
    }));
    assert!(
        refused.message.contains("activating the credential"),
        "{}",
        refused.message
    );
    // The SM still waits for the right TPM's answer.
    let real: EnrollmentAnswer = flow.target.json(WorkloadCall::ActivateCredential {
        body: serde_json::to_vec(&activation).expect("json"),
    });
    flow.sm
        .call(WorkloadCall::Activation {
            challenge_id: challenge.challenge_id,
            body: serde_json::to_vec(&real).expect("json"),
        })
        .expect("enrolled");
}

#[test]
fn a_tpm_target_whose_pcrs_moved_cannot_unseal_and_a_rotated_key_orphans_old_slots() {
    let Some(mut flow) = Flow::new() else { return };
    let enrolled = flow.enroll();
    flow.put_seed(&enrolled);
    let issued = flow.authorize(&enrolled.target).expect("authorized");
    let workload = flow.with_slot(&issued);
    // The platform leaves the measured state the storage key is bound to.
    veritee_tpm::device::TargetTpm::open(&flow.tpm.running.tcti())
        .expect("tpm")
        .extend_pcr(8, [0xAB; 32])
        .expect("extend");
    let refused = flow.launch(&workload).expect_err("PCRs moved");
    assert_eq!(refused.kind, FailureKind::Unauthorized);
    assert!(
        refused.message.contains("TPM did not unseal"),
        "{}",
        refused.message
    );
    // Deprovisioning: a new storage key; the old slot names a key the target no longer
    // has.
    flow.target
        .call(WorkloadCall::RotateStorageKey)
        .expect("rotated");
    let refused = flow.launch(&workload).expect_err("rotated");
    assert_eq!(refused.kind, FailureKind::Unauthorized);
    assert!(
        refused.message.contains("no authorization for this target"),
        "{}",
        refused.message
    );
}

/// What a TPM target's answer holds (the enclave's private type, spelled out).
#[derive(serde::Serialize)]
struct ForgedAnswer {
    tpm: veritee_tpm::enrollment::TpmEnrollmentEvidence,
    #[serde(with = "serde_bytes")]
    enclave_key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    enclave_evidence: Vec<u8>,
}

#[test]
fn a_host_with_tpm_keys_of_its_own_is_refused() {
    let Some(mut flow) = Flow::new() else { return };
    // The host drives the TPM itself: genuine EK, AK and a storage key it made, so its
    // TPM evidence is all true. What it lacks is the enclave vouching for those keys:
    // it can only offer evidence the enclave made for something else.
    let challenge: EnrollmentChallenge = flow.sm.json(WorkloadCall::Challenge);
    let nonce = B64.decode(&challenge.nonce).expect("nonce");
    let mut tpm = veritee_tpm::device::TargetTpm::open(&flow.tpm.running.tcti()).expect("tpm");
    let keys = tpm.create_keys(&PCRS).expect("keys");
    let evidence = tpm.enrollment_evidence(&keys, &nonce).expect("evidence");
    drop(tpm);
    let unrelated = match flow
        .target
        .service
        .handle(
            veritee_proto::ipc::EnclaveCall::Attest {
                nonce: nonce.clone(),
            },
            &mut flow.target.host,
        )
        .expect("attest")
    {
        veritee_proto::ipc::EnclaveReply::Attestation { evidence, .. } => evidence,
        other => panic!("{other:?}"),
    };
    let host_key = veritee_crypto::hpke::HpkeKeyPair::generate();
    let mut plaintext = Vec::new();
    ciborium::into_writer(
        &ForgedAnswer {
            tpm: evidence,
            enclave_key: host_key.public_key().as_bytes().to_vec(),
            enclave_evidence: unrelated,
        },
        &mut plaintext,
    )
    .expect("cbor");
    let sm_key = veritee_crypto::hpke::HpkePublicKey::from_bytes(
        &B64.decode(&challenge.sm_public_key).expect("base64"),
    )
    .expect("key");
    let info = veritee_proto::workload::TPM_ENROLLMENT_HPKE_INFO;
    let sealed = veritee_crypto::hpke::seal(
        &sm_key,
        info,
        &challenge_aad(info, &challenge.challenge_id, &challenge.nonce),
        &plaintext,
    )
    .expect("seal");
    let refused = refusal(
        flow.sm.call(WorkloadCall::Enroll {
            challenge_id: challenge.challenge_id,
            body: serde_json::to_vec(&EnrollmentAnswer {
                sealed: B64.encode(sealed),
                tpm: true,
            })
            .expect("json"),
        }),
    );
    assert_eq!(refused.kind, FailureKind::Unauthorized);
    assert!(
        refused.message.contains("target refused"),
        "{}",
        refused.message
    );
}

#[test]
fn malformed_or_misdirected_activations_are_refused_by_name() {
    let Some(mut flow) = Flow::new() else { return };
    let (challenge, activation) = flow.activation_step();
    // The target: not JSON, truncated, bad base64, an oversized blob.
    let good = serde_json::to_vec(&activation).expect("json");
    for (body, reason) in [
        (b"not json".to_vec(), "invalid activation challenge"),
        (
            good[..good.len() / 2].to_vec(),
            "invalid activation challenge",
        ),
        (
            serde_json::to_vec(&ActivationChallenge {
                credential_blob: "%%%".into(),
                ..activation.clone()
            })
            .expect("json"),
            "credential blob is not base64",
        ),
        (
            serde_json::to_vec(&ActivationChallenge {
                credential_blob: B64.encode(vec![0u8; 4096]),
                ..activation.clone()
            })
            .expect("json"),
            "credential blob",
        ),
    ] {
        let refused = refusal(flow.target.call(WorkloadCall::ActivateCredential { body }));
        assert!(refused.message.contains(reason), "{}", refused.message);
    }
    // The SM: garbage, and a genuine answer posted under another enrollment's id.
    let refused = refusal(flow.sm.call(WorkloadCall::Activation {
        challenge_id: challenge.challenge_id.clone(),
        body: b"{\"sealed\": 7}".to_vec(),
    }));
    assert_eq!(refused.kind, FailureKind::BadRequest, "{}", refused.message);
    let real: EnrollmentAnswer = flow
        .target
        .json(WorkloadCall::ActivateCredential { body: good.clone() });
    let (other, outcome) = flow.first_step();
    outcome.expect("second evidence accepted");
    let refused = refusal(flow.sm.call(WorkloadCall::Activation {
        challenge_id: other.challenge_id,
        body: serde_json::to_vec(&real).expect("json"),
    }));
    assert_eq!(
        refused.kind,
        FailureKind::Unauthorized,
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains("does not open"),
        "{}",
        refused.message
    );
}
