//! Flow 2 at the security module, in process: authorizations per second for 100
//! enrolled TEE targets (simulated machines, one enclave each), fresh ones and the same
//! ones asked again, beside the raw work of one authorization in the same run (the
//! HPKE seal of a seed to a storage key, `Authorization::issue`). Enrollment (evidence
//! verified under the vendor chain, per target) is timed too.
//!
//! The hosts keep their storage in memory (`MemoryHost`): what is measured is the
//! enclave's own work (sealed records under the state root, audit entries signed and
//! chained), not a disk's fsync.
//!
//! Run: `cargo bench -p veritee-enclave --bench workload`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::workload::{Node, enroll, seed_body, signer_policy};
use common::{World, audience, register, sign};
use std::time::{Duration, Instant};
use veritee_channel::client::TenantKey;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_enclave::EnclaveService;
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
    id
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

fn main() {
    let machines: Vec<String> = (0..=TARGETS).map(|i| format!("m{i}")).collect();
    let names: Vec<&str> = machines.iter().map(String::as_str).collect();
    let world = World::new(&names);
    let mut sm = Node::new(world.enclave_with(
        &machines[TARGETS],
        b"security module",
        EnclaveService::as_security_module,
    ));
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
}
