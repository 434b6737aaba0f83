//! Trusted tasks against a hostile host and another tenant: task ids per tenant and
//! never reused, inputs bound to their slot, a task in another tenant's name, results
//! that show the host nothing, and a provider that declines a policy it cannot meet.

mod common;

use common::*;
use std::io::Write;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_crypto::hpke::HpkePublicKey;
use veritee_enclave::EnclaveService;
use veritee_proto::api::paths;
use veritee_proto::ipc::{EnclaveCall, EnclaveReply, FailureKind};
use veritee_task::keys::{TaskKey, seal_delivery};
use veritee_task::messages::{
    AccessContext, AttestationSignal, CompartmentContext, INITIATION_VERSION, TaskInitiation,
    initiation_digest, slot_context,
};
use veritee_task::results::open_envelope;

const CODE: &[u8] = b"the node enclave, version 1";

/// Copies input 0, then input 1, of its own compartment to its output.
const CONCAT: &str = include_str!("data/concat.wat");

struct Client<'w> {
    world: &'w World,
    tenant: TenantKey,
    task_key: TaskKey,
}

/// A task as its client holds it.
struct Task {
    id: String,
    ttis: Vec<u8>,
    skek: HpkePublicKey,
}

impl<'w> Client<'w> {
    fn new(world: &'w World, service: &EnclaveService, host: &mut MemoryHost) -> Self {
        let tenant = TenantKey::generate().expect("key");
        register(service, host, &tenant);
        Self {
            world,
            tenant,
            task_key: TaskKey::generate().expect("task key"),
        }
    }

    fn initiation(&self, id: &str, policy: &str, inputs: &[&[u8]]) -> Vec<u8> {
        let id_bytes = hex::decode(id).expect("id");
        serde_json::to_vec(&TaskInitiation {
            version: INITIATION_VERSION,
            task_id: id.into(),
            nonce: hex::encode([5u8; 32]),
            client_kx: hex::encode(self.task_key.ckek_public(&id_bytes).expect("ckek")),
            policy: policy.into(),
            security_context: [(
                "c".to_string(),
                AccessContext {
                    may_read: Vec::new(),
                    releases: true,
                },
            )]
            .into(),
            compartments: vec![CompartmentContext {
                name: "c".into(),
                entry: "run".into(),
                inputs: (0..inputs.len()).map(|i| format!("in{i}")).collect(),
                input_lengths: inputs.iter().map(|i| i.len() as u64).collect(),
                keys: Vec::new(),
            }],
            limits: Default::default(),
        })
        .expect("json")
    }

    /// A new task under the world's policy, with two inputs, initiated.
    fn initiate_new(&self, service: &EnclaveService, host: &mut MemoryHost) -> Task {
        let policy = self.world.policy();
        self.initiate(service, host, &fresh_id(), &policy, &[b"a", b"b"])
            .expect("initiated")
    }

    fn initiate(
        &self,
        service: &EnclaveService,
        host: &mut MemoryHost,
        id: &str,
        policy: &str,
        inputs: &[&[u8]],
    ) -> Result<Task, veritee_proto::ipc::EnclaveFailure> {
        let ttis = self.initiation(id, policy, inputs);
        let aud = audience(service, host);
        let reply = service.handle(
            EnclaveCall::TaskInitiate {
                request: sign(&aud, &self.tenant, "POST", &paths::tasks(), &ttis),
                initiation: ttis.clone(),
            },
            host,
        )?;
        let EnclaveReply::TaskSignal {
            skek,
            evidence,
            load,
        } = reply
        else {
            panic!("not a signal: {reply:?}");
        };
        // The client appraises the signal, its load included in what the evidence binds.
        use base64::Engine;
        let signal = AttestationSignal {
            task_id: id.into(),
            skek: hex::encode(&skek),
            evidence: base64::engine::general_purpose::STANDARD.encode(&evidence),
            load,
        };
        let parsed = TaskInitiation::parse(&ttis).expect("parse");
        let verifiers = veritee_verify::Verifiers::default();
        let policy = veritee_policy::AppraisalPolicy::parse(&self.world.policy()).expect("policy");
        let anchors = veritee_attest::TrustAnchors::untyped(self.world.anchors.clone());
        let appraiser = Appraiser {
            verifiers: &verifiers,
            policy: &policy,
            trust_anchors: &anchors,
            collateral: &[],
            at: time::OffsetDateTime::now_utc(),
        };
        let (skek, _) = signal
            .appraise(&parsed, &ttis, &appraiser)
            .expect("appraised");
        // A host that reports another load is caught: the load is in the signed data.
        let lying = AttestationSignal {
            load: load + 5,
            ..signal
        };
        assert!(
            lying.appraise(&parsed, &ttis, &appraiser).is_err(),
            "a forged load passed"
        );
        Ok(Task {
            id: id.into(),
            ttis,
            skek,
        })
    }

    fn deliver(&self, service: &EnclaveService, host: &mut MemoryHost, task: &Task) {
        let id = hex::decode(&task.id).expect("id");
        let delivery = seal_delivery(
            &task.skek,
            &initiation_digest(&task.ttis),
            &self.task_key,
            &id,
            &["c"],
        )
        .expect("delivery");
        let aud = audience(service, host);
        service
            .handle(
                EnclaveCall::TaskKeys {
                    request: sign(
                        &aud,
                        &self.tenant,
                        "POST",
                        &paths::task_keys(&task.id),
                        &delivery,
                    ),
                    task_id: task.id.clone(),
                    delivery,
                },
                host,
            )
            .expect("keys accepted");
    }

    fn spool(&self, task: &Task) -> std::path::PathBuf {
        self.world
            .spool()
            .join(self.tenant.tenant_id().expect("id"))
            .join(&task.id)
            .join("c")
    }

    /// The client's sealed upload of one slot of `task`.
    fn sealed(&self, task: &Task, slot: &str, plain: &[u8]) -> Vec<u8> {
        let id = hex::decode(&task.id).expect("id");
        let dek = self.task_key.dek(&id, "c").expect("dek");
        let mut w = veritee_stream::EncryptWriter::with_context(
            &veritee_stream::StreamKey::new(&dek),
            &format!("c/{slot}"),
            &slot_context(&task.id, "c", slot),
            4096,
            Vec::new(),
        )
        .expect("writer");
        w.write_all(plain).expect("write");
        w.finish().expect("finish")
    }

    fn upload(&self, task: &Task, slot: &str, bytes: &[u8]) {
        let dir = self.spool(task);
        std::fs::create_dir_all(&dir).expect("spool");
        std::fs::write(dir.join(slot), bytes).expect("spool file");
    }

    fn run(
        &self,
        service: &EnclaveService,
        host: &mut MemoryHost,
        task: &Task,
    ) -> Result<Vec<u8>, veritee_proto::ipc::EnclaveFailure> {
        let aud = audience(service, host);
        match service.handle(
            EnclaveCall::TaskRun {
                request: sign(&aud, &self.tenant, "POST", &paths::task_run(&task.id), b""),
                task_id: task.id.clone(),
            },
            host,
        )? {
            EnclaveReply::TaskResult { envelope } => Ok(envelope),
            other => panic!("not a result: {other:?}"),
        }
    }

    /// Initiates, delivers keys, uploads the module and `inputs`, runs.
    fn full_run(
        &self,
        service: &EnclaveService,
        host: &mut MemoryHost,
        inputs: &[&[u8]],
    ) -> (Task, Result<Vec<u8>, veritee_proto::ipc::EnclaveFailure>) {
        let task = self
            .initiate(service, host, &fresh_id(), &self.world.policy(), inputs)
            .expect("initiated");
        self.deliver(service, host, &task);
        self.upload(
            &task,
            "module",
            &self.sealed(&task, "module", CONCAT.as_bytes()),
        );
        for (i, input) in inputs.iter().enumerate() {
            let slot = format!("input-{i}");
            self.upload(&task, &slot, &self.sealed(&task, &slot, input));
        }
        let result = self.run(service, host, &task);
        (task, result)
    }
}

fn fresh_id() -> String {
    hex::encode(veritee_crypto::rand::array::<16>().expect("rand"))
}

#[test]
fn a_task_runs_and_its_results_show_the_host_nothing() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = Client::new(&world, &service, &mut host);
    let (task, envelope) = alice.full_run(&service, &mut host, &[b"left-", b"right"]);
    let envelope = envelope.expect("ran");
    let id = hex::decode(&task.id).expect("id");
    // The client needs nothing but its task key and the attested SKEK to read it.
    let key = alice
        .task_key
        .result_key(&id, &task.skek, &initiation_digest(&task.ttis))
        .expect("result key");
    let opened = open_envelope(
        &envelope,
        &key,
        &id.try_into().expect("16 bytes"),
        time::Duration::minutes(5),
        time::OffsetDateTime::now_utc(),
        |name| {
            alice
                .task_key
                .dek(&hex::decode(&task.id).expect("id"), name)
                .ok()
        },
    )
    .expect("opened");
    assert_eq!(opened.outputs[0].output.expose(), b"left-right");
    assert_eq!(opened.results[0].status.exit_code, 7);
    // What the host relays says nothing of how the compartment ended.
    let text = String::from_utf8_lossy(&envelope);
    assert!(
        !text.contains("exit_code") && !text.contains("fuel_used"),
        "{text}"
    );
}

#[test]
fn inputs_swapped_duplicated_or_taken_from_another_task_are_refused() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = Client::new(&world, &service, &mut host);
    // A first task runs; the host keeps a copy of its first input.
    let (first, result) = alice.full_run(&service, &mut host, &[b"AAAA", b"BBBB"]);
    result.expect("first task");
    let old_input = alice.sealed(&first, "input-0", b"AAAA");

    let attempt = |tamper: &dyn Fn(&Task, &Client)| {
        let task = alice
            .initiate(
                &service,
                &mut host.clone(),
                &fresh_id(),
                &world.policy(),
                &[b"CCCC", b"DDDD"],
            )
            .expect("initiated");
        alice.deliver(&service, &mut host.clone(), &task);
        alice.upload(
            &task,
            "module",
            &alice.sealed(&task, "module", CONCAT.as_bytes()),
        );
        alice.upload(&task, "input-0", &alice.sealed(&task, "input-0", b"CCCC"));
        alice.upload(&task, "input-1", &alice.sealed(&task, "input-1", b"DDDD"));
        tamper(&task, &alice);
        refused(
            alice
                .run(&service, &mut host.clone(), &task)
                .map(|e| EnclaveReply::TaskResult { envelope: e }),
        )
    };
    // Swapped: each input is in the other's slot (same length, same key).
    let f = attempt(&|task, c| {
        let dir = c.spool(task);
        let zero = std::fs::read(dir.join("input-0")).expect("read");
        let one = std::fs::read(dir.join("input-1")).expect("read");
        std::fs::write(dir.join("input-0"), one).expect("write");
        std::fs::write(dir.join("input-1"), zero).expect("write");
    });
    assert!(f.message.contains("not this slot's file"), "{}", f.message);
    // Duplicated: input 0 in both slots.
    let f = attempt(&|task, c| {
        let dir = c.spool(task);
        std::fs::copy(dir.join("input-0"), dir.join("input-1")).expect("copy");
    });
    assert!(f.message.contains("not this slot's file"), "{}", f.message);
    // Replayed from the earlier task (its data keys are that task's own).
    let f = attempt(&|task, c| {
        std::fs::write(c.spool(task).join("input-0"), &old_input).expect("write");
    });
    assert!(
        f.message.contains("not under this compartment's key"),
        "{}",
        f.message
    );
    // The module put where an input goes.
    let f = attempt(&|task, c| {
        let dir = c.spool(task);
        std::fs::copy(dir.join("module"), dir.join("input-0")).expect("copy");
    });
    assert!(f.message.contains("not this slot's file"), "{}", f.message);
}

#[test]
fn task_ids_belong_to_their_tenant_and_are_never_reused() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = Client::new(&world, &service, &mut host);
    let bob = Client::new(&world, &service, &mut host);
    let id = fresh_id();
    let task = alice
        .initiate(&service, &mut host, &id, &world.policy(), &[b"xy", b"z"])
        .expect("alice's task");
    // Bob uses the same id: it is his own task, not Alice's.
    let bobs = bob
        .initiate(&service, &mut host, &id, &world.policy(), &[b"q", b"r"])
        .expect("bob's task of the same id");
    let aud = audience(&service, &mut host);
    service
        .handle(
            EnclaveCall::TaskCancel {
                request: sign(
                    &aud,
                    &bob.tenant,
                    "POST",
                    &paths::task_cancel(&bobs.id),
                    b"",
                ),
                task_id: bobs.id.clone(),
            },
            &mut host,
        )
        .expect("bob withdraws his");
    // Alice's task is untouched: keys go in, it runs.
    alice.deliver(&service, &mut host, &task);
    alice.upload(
        &task,
        "module",
        &alice.sealed(&task, "module", CONCAT.as_bytes()),
    );
    alice.upload(&task, "input-0", &alice.sealed(&task, "input-0", b"xy"));
    alice.upload(&task, "input-1", &alice.sealed(&task, "input-1", b"z"));
    alice
        .run(&service, &mut host, &task)
        .expect("alice's task ran");
    // Neither id can be used again by its tenant.
    for (client, what) in [(&alice, "ran"), (&bob, "withdrawn")] {
        let f = refused(
            client
                .initiate(&service, &mut host, &id, &world.policy(), &[b"a", b"b"])
                .map(|_| EnclaveReply::TaskKeysAccepted),
        );
        assert_eq!(f.kind, FailureKind::Conflict, "{what}: {}", f.message);
        assert!(f.message.contains("never reused"), "{}", f.message);
    }
}

#[test]
fn keys_delivered_in_a_tenants_name_by_anyone_else_are_refused() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = Client::new(&world, &service, &mut host);
    let task = alice.initiate_new(&service, &mut host);
    // The host (it knows the SKEK: it is public) delivers keys of its own; it even gets
    // Alice's signature on the request (say, replaying the shape of her traffic): the
    // enclave unwraps with the key of Alice's CKEK, which the host's keys do not match.
    let host_task_key = TaskKey::generate().expect("key");
    let id = hex::decode(&task.id).expect("id");
    let forged = seal_delivery(
        &task.skek,
        &initiation_digest(&task.ttis),
        &host_task_key,
        &id,
        &["c"],
    )
    .expect("delivery");
    let aud = audience(&service, &mut host);
    let f = refused(service.handle(
        EnclaveCall::TaskKeys {
            request: sign(
                &aud,
                &alice.tenant,
                "POST",
                &paths::task_keys(&task.id),
                &forged,
            ),
            task_id: task.id.clone(),
            delivery: forged,
        },
        &mut host,
    ));
    assert!(f.message.contains("key-exchange key"), "{}", f.message);
}

#[test]
fn a_provider_declines_a_policy_its_own_evidence_does_not_meet() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = Client::new(&world, &service, &mut host);
    let f = refused(
        alice
            .initiate(
                &service,
                &mut host,
                &fresh_id(),
                "version = 1\ntee = [\"sgx\"]\n",
                &[b"a", b"b"],
            )
            .map(|_| EnclaveReply::TaskKeysAccepted),
    );
    assert!(f.message.contains("declines the task"), "{}", f.message);
    assert!(f.message.contains("tee"), "{}", f.message);
}

#[test]
fn a_malformed_module_is_reported_without_its_text() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = Client::new(&world, &service, &mut host);
    let task = alice.initiate_new(&service, &mut host);
    alice.deliver(&service, &mut host, &task);
    let secret_code = "(module (func $confidential_algorithm_canary (result i32) i32.add))";
    alice.upload(
        &task,
        "module",
        &alice.sealed(&task, "module", secret_code.as_bytes()),
    );
    alice.upload(&task, "input-0", &alice.sealed(&task, "input-0", b"a"));
    alice.upload(&task, "input-1", &alice.sealed(&task, "input-1", b"b"));
    let f = refused(
        alice
            .run(&service, &mut host, &task)
            .map(|e| EnclaveReply::TaskResult { envelope: e }),
    );
    assert!(f.message.contains("malformed module"), "{}", f.message);
    assert!(
        !f.message.contains("canary") && !f.message.contains("i32.add"),
        "{}",
        f.message
    );
}
