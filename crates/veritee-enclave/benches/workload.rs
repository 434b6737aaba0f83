//! Flow 2 at the security module, in process: authorizations per second for 100
//! enrolled TEE targets (simulated machines, one enclave each) and, when swtpm is
//! installed, 100 TPM targets (a software TPM each, manufactured under one local CA),
//! fresh ones and the same ones asked again, beside the raw work of one authorization
//! in the same run (the HPKE seal of a seed to an enclave's storage key,
//! `Authorization::issue`; for a TPM target the same seal to its enclave's key, then
//! RSA-OAEP to its TPM's key, `Authorization::issue_to_tpm`).
//! Enrollment (evidence verified under the vendor chain, per target; for a TPM: the EK
//! chain, certification, quote and the MakeCredential round trip through the target's
//! TPM) is timed too.
//!
//! The hosts keep their storage in memory (`MemoryHost`): what is measured is the
//! enclave's own work (sealed records under the state root, audit entries signed and
//! chained), not a disk's fsync.
//!
//! Run: `cargo bench -p veritee-enclave --bench workload`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::workload::{Node, enroll, seed_body, signer_policy, tpm_policy};
use common::{World, audience, register, sign};
use std::time::{Duration, Instant};
use veritee_channel::client::TenantKey;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_proto::workload::{AuthorizeRequest, WorkloadCall, paths};
use veritee_workload::{Authorization, ComponentKind, ComponentSpec, WorkloadId, WorkloadSeed};

/// Targets, each on its own simulated machine (a machine's monotonic counter belongs
/// to one sealing identity, as on hardware).
const TARGETS: usize = 100;
/// Rounds of fresh authorizations: each round is a new workload, so each of its 100
/// authorizations is issued, not found.
const ROUNDS: usize = 7;
const MODULE: &[u8] = br#"(module (func (export "run") (result i32) i32.const 0))"#;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// A new workload whose seed the SM holds; its id.
fn new_workload(sm: &mut Node, owner: &TenantKey, policy: &str) -> WorkloadId {
    new_workload_file(sm, owner, policy).0
}

/// A new workload whose seed the SM holds; its id and file.
fn new_workload_file(sm: &mut Node, owner: &TenantKey, policy: &str) -> (WorkloadId, Vec<u8>) {
    let seed = WorkloadSeed::generate().expect("seed");
    let id = WorkloadId::generate().expect("id");
    let file = veritee_workload::build(
        &seed,
        id,
        &[ComponentSpec {
            kind: ComponentKind::Module,
            name: "run.wat",
            data: MODULE,
        }],
    )
    .expect("build");
    let body = seed_body(sm, owner, &file, &seed, policy, 24 * 3600);
    let aud = audience(&sm.service, &mut sm.host);
    let request = sign(&aud, owner, "POST", &paths::sm_seeds(), &body);
    sm.call(WorkloadCall::PutSeed { request, body })
        .expect("seed stored");
    (id, file)
}

/// Asks for every target's authorization once; the time of the whole round.
fn authorize_all(sm: &mut Node, id: &WorkloadId, handles: &[String]) -> Duration {
    let bodies: Vec<Vec<u8>> = handles
        .iter()
        .map(|target| {
            serde_json::to_vec(&AuthorizeRequest {
                workload_id: id.to_string(),
                target: target.clone(),
            })
            .expect("json")
        })
        .collect();
    let start = Instant::now();
    for body in bodies {
        sm.call(WorkloadCall::Authorize { body })
            .expect("authorized");
    }
    start.elapsed()
}

/// The manufacturer of the TPM targets, with the TPMs it made; none without swtpm.
struct TpmFleet {
    dir: tempfile::TempDir,
    ca: veritee_tpm::swtpm::LocalCa,
}

impl TpmFleet {
    fn new() -> Option<TpmFleet> {
        if !veritee_tpm::swtpm::installed() {
            println!("(no TPM rows: swtpm is not installed)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = veritee_tpm::swtpm::LocalCa::new(&dir.path().join("ca")).expect("CA");
        Some(TpmFleet { dir, ca })
    }

    /// Makes TPM `i` (the first makes the CA's keys too).
    fn manufacture(&self, i: usize) -> std::path::PathBuf {
        let state = self.dir.path().join(format!("tpm-{i}"));
        self.ca.manufacture(&state).expect("swtpm_setup");
        state
    }

    fn anchors(&self) -> Vec<veritee_attest::ParsedCertificate> {
        let mut pem = self.ca.root_pem().expect("root");
        pem.extend(self.ca.intermediate_pem().expect("intermediate"));
        veritee_attest::ParsedCertificate::from_pem_chain(&pem).expect("CA")
    }
}

fn main() {
    let machines: Vec<String> = (0..=TARGETS)
        .map(|i| format!("m{i}"))
        .chain((0..TARGETS).map(|i| format!("tpm-m{i}")))
        .collect();
    let names: Vec<&str> = machines.iter().map(String::as_str).collect();
    let world = World::new(&names);
    let fleet = TpmFleet::new();
    let first_tpm = fleet.as_ref().map(|f| f.manufacture(0));
    let tpm_anchors = fleet.as_ref().map(TpmFleet::anchors).unwrap_or_default();
    let mut sm = Node::new(
        world.enclave_with(&machines[TARGETS], b"security module", |s| {
            s.as_security_module().with_tpm_anchors(tpm_anchors)
        }),
    );
    let owner = TenantKey::generate().expect("tenant");
    register(&sm.service, &mut sm.host, &owner);
    let mut targets: Vec<Node> = machines[..TARGETS]
        .iter()
        .map(|m| Node::new(world.enclave(m, b"target build")))
        .collect();

    let policy = signer_policy(&world, &mut targets[0]);
    let start = Instant::now();
    let handles: Vec<String> = targets
        .iter_mut()
        .map(|t| enroll(&mut sm, t).target)
        .collect();
    let enrolled = start.elapsed();
    assert_eq!(handles.len(), TARGETS);

    let mut fresh = Vec::new();
    let mut again = Vec::new();
    for _ in 0..ROUNDS {
        let id = new_workload(&mut sm, &owner, &policy);
        fresh.push(authorize_all(&mut sm, &id, &handles));
        again.push(authorize_all(&mut sm, &id, &handles));
    }

    // The raw work of one authorization: seal a seed to a storage key.
    let seed = WorkloadSeed::generate().expect("seed");
    let id = WorkloadId::generate().expect("id");
    let keys: Vec<HpkeKeyPair> = (0..handles.len())
        .map(|_| HpkeKeyPair::generate())
        .collect();
    let raw: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for key in &keys {
                std::hint::black_box(
                    Authorization::issue(&seed, id, &key.public_key(), 0, u64::MAX).expect("issue"),
                );
            }
            start.elapsed()
        })
        .collect();

    let n = handles.len();
    let tpm = fleet.map(|fleet| tpm_rounds(&world, &mut sm, &owner, &fleet, first_tpm));
    let (fresh, again, raw) = (median(fresh), median(again), median(raw));
    println!("| what ({n} TEE targets, median of {ROUNDS} rounds) | per second | ratio to raw |");
    println!("|---|---|---|");
    let row = |what: &str, d: Duration| {
        println!(
            "| {what} | {:.0} | {:.3}x |",
            per_second(n, d),
            per_second(n, d) / per_second(n, raw)
        );
    };
    row("raw: `Authorization::issue` (HPKE seal of the seed)", raw);
    row(
        "SM: first authorization (issued, sealed record, audit entry)",
        fresh,
    );
    row("SM: the same authorization asked again (returned)", again);
    println!(
        "| SM: enrollment (challenge, target's evidence, verification) | {:.0} | |",
        per_second(n, enrolled)
    );
    let Some(tpm) = tpm else { return };
    println!();
    println!(
        "| what ({n} TPM targets, swtpm, median of {ROUNDS} rounds) | per second | ratio to raw |"
    );
    println!("|---|---|---|");
    let row = |what: &str, d: Duration| {
        println!(
            "| {what} | {:.0} | {:.3}x |",
            per_second(n, d),
            per_second(n, d) / per_second(n, tpm.raw)
        );
    };
    row(
        "raw: `Authorization::issue_to_tpm` (HPKE seal, then RSA-OAEP)",
        tpm.raw,
    );
    row(
        "SM: first authorization (issued, sealed record, audit entry)",
        tpm.fresh,
    );
    row(
        "SM: the same authorization asked again (returned)",
        tpm.again,
    );
    println!(
        "| SM and target: enrollment (evidence from the TPM, checks, MakeCredential, ActivateCredential) | {:.1} | |",
        per_second(n, tpm.enrolled)
    );
    println!(
        "| target: launch (TPM2_RSA_Decrypt under the PCR policy, then the launch check and the module) | {:.1} | |",
        1.0 / tpm.launch.as_secs_f64()
    );
}

/// Medians of the TPM targets' rounds.
struct TpmFigures {
    raw: Duration,
    fresh: Duration,
    again: Duration,
    enrolled: Duration,
    launch: Duration,
}

/// Enrolls 100 TPM targets (each TPM runs only while it enrolls: the SM needs nothing
/// of it afterwards), then times authorizations as for the TEE targets, and one
/// target's launch.
fn tpm_rounds(
    world: &World,
    sm: &mut Node,
    owner: &TenantKey,
    fleet: &TpmFleet,
    first: Option<std::path::PathBuf>,
) -> TpmFigures {
    const PCRS: [u32; 2] = [0, 7];
    let states: Vec<std::path::PathBuf> = first
        .into_iter()
        .chain((1..TARGETS).map(|i| fleet.manufacture(i)))
        .collect();
    let mut enrolled = Duration::ZERO;
    let mut handles = Vec::new();
    let mut launcher = None;
    for (i, state) in states.iter().enumerate() {
        let running = veritee_tpm::swtpm::SoftwareTpm::start(state).expect("swtpm");
        let tcti = running.tcti();
        let mut target = Node::new(world.enclave_with(
            &format!("tpm-m{i}"),
            b"target build",
            |s| s.with_tpm_target(tcti, PCRS.to_vec()),
        ));
        let start = Instant::now();
        handles.push(enroll(sm, &mut target).target);
        enrolled += start.elapsed();
        if i == 0 {
            launcher = Some((running, target));
        }
    }
    let (running, mut target) = launcher.expect("a first target");
    let policy = tpm_policy(world, &mut target, &running.tcti(), &PCRS);
    let mut fresh = Vec::new();
    let mut again = Vec::new();
    let mut last = None;
    for _ in 0..ROUNDS {
        let (id, file) = new_workload_file(sm, owner, &policy);
        fresh.push(authorize_all(sm, &id, &handles));
        again.push(authorize_all(sm, &id, &handles));
        last = Some((id, file));
    }
    // One launch on the first target, timed (its TPM decrypts the seed).
    let (id, file) = last.expect("a round");
    let slot: veritee_proto::workload::AuthorizeResponse = sm.json(WorkloadCall::Authorize {
        body: serde_json::to_vec(&AuthorizeRequest {
            workload_id: id.to_string(),
            target: handles[0].clone(),
        })
        .expect("json"),
    });
    let slot = Authorization::from_bytes(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &slot.authorization,
        )
        .expect("base64"),
    )
    .expect("slot");
    let file = veritee_workload::WorkloadFile::parse(&file)
        .expect("parse")
        .with_slot(slot)
        .expect("slot");
    let launches: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            target
                .call(WorkloadCall::Launch {
                    nonce: hex::encode([3u8; 16]),
                    workload: file.clone(),
                })
                .expect("launched");
            start.elapsed()
        })
        .collect();
    drop(running);

    let seed = WorkloadSeed::generate().expect("seed");
    let enclave = HpkeKeyPair::generate();
    let spki = veritee_crypto::rsa::RsaPrivateKey::generate(2048)
        .and_then(|k| k.public_key_spki())
        .expect("RSA key");
    let raw: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..handles.len() {
                std::hint::black_box(
                    Authorization::issue_to_tpm(
                        &seed,
                        id,
                        &enclave.public_key(),
                        &spki,
                        b"public area",
                        0,
                        u64::MAX,
                    )
                    .expect("issue"),
                );
            }
            start.elapsed()
        })
        .collect();
    TpmFigures {
        raw: median(raw),
        fresh: median(fresh),
        again: median(again),
        enrolled,
        launch: median(launches),
    }
}
