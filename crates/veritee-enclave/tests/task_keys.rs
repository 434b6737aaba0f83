//! One key store: keys imported by the secret-import flow are used by trusted tasks,
//! by index, through `veritee.key_op`; the compartment never holds their material.
//! Attacks first: a key whose metadata do not allow the initiating tenant, another
//! tenant's key, a disabled key, an operation the metadata forbid, an index past the
//! granted keys, an initiation whose keys were changed after signing. Then what works:
//! a signature that verifies outside, a ciphertext the owner decrypts through the
//! session API. Throughout, the key material appears in no output, log or host byte.

mod common;

use common::import::*;
use common::*;
use std::io::Write;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{HpkeKeyPair, HpkePublicKey};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, VerificationScheme};
use veritee_enclave::EnclaveService;
use veritee_import::keys::{KeyRef, KeyType, Operation};
use veritee_proto::api::paths;
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind};
use veritee_task::keys::{TaskKey, seal_delivery};
use veritee_task::messages::{
    AccessContext, AttestationSignal, CompartmentContext, INITIATION_VERSION, TaskInitiation,
    initiation_digest, slot_context,
};
use veritee_task::results::open_envelope;

const CODE: &[u8] = b"the node enclave, version 1";
const AES_CANARY: &[u8; 32] = b"canary-task-aes-key-0123456789ab";
const HMAC_CANARY: &[u8; 32] = b"canary-task-hmac-key-0123456789a";

/// What a task returned: its exit code, output and log.
struct Ran {
    exit: i32,
    output: Vec<u8>,
    log: String,
}

struct Tenant {
    key: TenantKey,
    id: String,
    task_key: TaskKey,
}

impl Tenant {
    fn new(service: &EnclaveService, host: &mut MemoryHost) -> Self {
        let key = TenantKey::generate().expect("key");
        register(service, host, &key);
        let id = key.tenant_id().expect("id");
        Self {
            key,
            id,
            task_key: TaskKey::generate().expect("task key"),
        }
    }
}

struct Setup {
    world: World,
    service: std::sync::Arc<EnclaveService>,
    host: MemoryHost,
    provider: HpkeKeyPair,
    keys: NodeKeys,
    /// The module tasks run (`KEY_OP` unless a test says otherwise).
    module: &'static str,
}

impl Setup {
    fn new() -> Self {
        Self::configured(|s| s)
    }

    /// [`Setup::new`], the enclave configured by `configure`.
    fn configured(configure: impl FnOnce(EnclaveService) -> EnclaveService) -> Self {
        let world = World::new(&["m1"]);
        let service = world.enclave_with("m1", CODE, configure);
        let mut host = MemoryHost::default();
        let keys = node_keys(&service, &mut host);
        Self {
            world,
            service: std::sync::Arc::new(service),
            host,
            provider: HpkeKeyPair::generate(),
            keys,
            module: KEY_OP,
        }
    }

    /// Imports `material` as `partition/key_id` of `owner`, for `operations`, usable by
    /// the tasks of `task_signers`.
    fn import(
        &mut self,
        owner: &Tenant,
        (partition, key_id): (&str, &str),
        key_type: KeyType,
        operations: &[Operation],
        task_signers: &[&str],
        material: &SecretBytes,
    ) {
        let mut meta = metadata_for(
            &self.keys,
            &self.provider,
            &owner.key,
            (partition, key_id),
            key_type,
            operations,
            material,
        );
        meta.task_signers = task_signers.iter().map(|s| s.to_string()).collect();
        let import = seal_import(&self.keys, &self.provider, &owner.key, meta, material);
        send_import(&self.service, &mut self.host, &owner.key, &import).expect("imported");
    }

    fn initiation(&self, by: &Tenant, id: &str, input_len: usize, keys: &[String]) -> Vec<u8> {
        let id_bytes = hex::decode(id).expect("id");
        serde_json::to_vec(&TaskInitiation {
            version: INITIATION_VERSION,
            task_id: id.into(),
            nonce: hex::encode([5u8; 32]),
            client_kx: hex::encode(by.task_key.ckek_public(&id_bytes).expect("ckek")),
            policy: self.world.policy(),
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
                inputs: vec!["request".into()],
                input_lengths: vec![input_len as u64],
                keys: keys.to_vec(),
            }],
            limits: Default::default(),
        })
        .expect("json")
    }

    /// Initiates with `ttis` (signed by `by` as `signed`), appraises the signal and
    /// returns the attested SKEK.
    fn initiate(
        &mut self,
        by: &Tenant,
        id: &str,
        signed: &[u8],
        ttis: &[u8],
    ) -> Result<HpkePublicKey, EnclaveFailure> {
        let aud = audience(&self.service, &mut self.host);
        let reply = self.service.handle(
            EnclaveCall::TaskInitiate {
                request: sign(&aud, &by.key, "POST", &paths::tasks(), signed),
                initiation: ttis.to_vec(),
            },
            &mut self.host,
        )?;
        let EnclaveReply::TaskSignal {
            skek,
            evidence,
            load,
        } = reply
        else {
            panic!("not a signal: {reply:?}");
        };
        use base64::Engine;
        let signal = AttestationSignal {
            task_id: id.into(),
            skek: hex::encode(&skek),
            evidence: base64::engine::general_purpose::STANDARD.encode(&evidence),
            load,
        };
        let parsed = TaskInitiation::parse(ttis).expect("parse");
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
        Ok(signal
            .appraise(&parsed, ttis, &appraiser)
            .expect("appraised")
            .0)
    }

    fn upload(&self, by: &Tenant, id: &str, slot: &str, plain: &[u8]) {
        let id_bytes = hex::decode(id).expect("id");
        let dek = by.task_key.dek(&id_bytes, "c").expect("dek");
        let mut w = veritee_stream::EncryptWriter::with_context(
            &veritee_stream::StreamKey::new(&dek),
            &format!("c/{slot}"),
            &slot_context(id, "c", slot),
            4096,
            Vec::new(),
        )
        .expect("writer");
        w.write_all(plain).expect("write");
        let dir = self.world.spool().join(&by.id).join(id).join("c");
        std::fs::create_dir_all(&dir).expect("spool");
        std::fs::write(dir.join(slot), w.finish().expect("finish")).expect("spool file");
    }

    /// Runs the `KEY_OP` module as `by`, its compartment naming `keys`, with `request`
    /// for key `index`.
    fn run(
        &mut self,
        by: &Tenant,
        keys: &[String],
        index: u32,
        request: &[u8],
    ) -> Result<Ran, EnclaveFailure> {
        self.run_with(by, keys, index, request, |_| {})
    }

    /// [`Setup::run`], doing `between` after the task was initiated and before it runs.
    fn run_with(
        &mut self,
        by: &Tenant,
        keys: &[String],
        index: u32,
        request: &[u8],
        between: impl FnOnce(&mut Self),
    ) -> Result<Ran, EnclaveFailure> {
        let id = hex::encode(veritee_crypto::rand::array::<16>().expect("rand"));
        let mut input = index.to_le_bytes().to_vec();
        input.extend_from_slice(request);
        let ttis = self.initiation(by, &id, input.len(), keys);
        let skek = self.initiate(by, &id, &ttis, &ttis)?;
        let id_bytes = hex::decode(&id).expect("id");
        let digest = initiation_digest(&ttis);
        let delivery =
            seal_delivery(&skek, &digest, &by.task_key, &id_bytes, &["c"]).expect("delivery");
        let aud = audience(&self.service, &mut self.host);
        self.service.handle(
            EnclaveCall::TaskKeys {
                request: sign(&aud, &by.key, "POST", &paths::task_keys(&id), &delivery),
                task_id: id.clone(),
                delivery,
            },
            &mut self.host,
        )?;
        between(self);
        self.upload(by, &id, "module", self.module.as_bytes());
        self.upload(by, &id, "input-0", &input);
        let aud = audience(&self.service, &mut self.host);
        let reply = self.service.handle(
            EnclaveCall::TaskRun {
                request: sign(&aud, &by.key, "POST", &paths::task_run(&id), b""),
                task_id: id.clone(),
            },
            &mut self.host,
        )?;
        let EnclaveReply::TaskResult { envelope } = reply else {
            panic!("not a result: {reply:?}");
        };
        let mac = by
            .task_key
            .result_key(&id_bytes, &skek, &digest)
            .expect("result key");
        let opened = open_envelope(
            &envelope,
            &mac,
            &id_bytes.clone().try_into().expect("16 bytes"),
            time::Duration::minutes(5),
            time::OffsetDateTime::now_utc(),
            |name| by.task_key.dek(&id_bytes, name).ok(),
        )
        .expect("opened");
        Ok(Ran {
            exit: opened.results[0].status.exit_code,
            output: opened.outputs[0].output.expose().to_vec(),
            log: String::from_utf8_lossy(opened.outputs[0].log.expose()).into_owned(),
        })
    }

    fn disable(&mut self, owner: &Tenant, partition: &str, key_id: &str) {
        disable_alone(
            &self.service,
            &mut self.host,
            &owner.key,
            (partition, key_id),
        )
        .expect("disabled");
    }
}

/// A `key_op` request: the operation byte, a length-prefixed first field, the rest.
fn request(op: u8, first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = vec![op];
    out.extend_from_slice(&(first.len() as u32).to_be_bytes());
    out.extend_from_slice(first);
    out.extend_from_slice(rest);
    out
}

fn sign_request(message: &[u8]) -> Vec<u8> {
    let mut out = vec![3u8];
    out.extend_from_slice(message);
    out
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn refused_naming(result: Result<Ran, EnclaveFailure>, key: &str, reason: &str) {
    let f = match result {
        Ok(ran) => panic!("ran, exit {}: {}", ran.exit, ran.log),
        Err(f) => f,
    };
    assert_eq!(f.kind, FailureKind::Unauthorized, "{}", f.message);
    assert!(f.message.contains("the task is refused"), "{}", f.message);
    assert!(f.message.contains(key), "{key}: {}", f.message);
    assert!(f.message.contains(reason), "{reason}: {}", f.message);
}

/// Refusals of the grant: each names the key, and the task runs no code.
/// What a task encrypted (its whole output, the envelope's length its exit code),
/// opened by the key's tenant in `session` under `key` and `aad`: the plaintext.
fn open_in_session(
    s: &mut Setup,
    session: &mut Session,
    key: KeyRef,
    encrypted: &Ran,
    aad: &[u8],
) -> Vec<u8> {
    assert_eq!(
        encrypted.exit as usize,
        encrypted.output.len(),
        "{}",
        encrypted.log
    );
    match one(
        session,
        &s.service,
        &mut s.host,
        CryptoOp::Decrypt {
            key,
            ciphertext: encrypted.output.clone(),
            aad: aad.to_vec(),
        },
    ) {
        CryptoOutcome::Plaintext(p) => p.expose().clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_task_naming_a_key_its_signer_may_not_use_is_refused_naming_the_key() {
    let mut s = Setup::new();
    let alice = Tenant::new(&s.service, &mut s.host);
    let bob = Tenant::new(&s.service, &mut s.host);
    for t in [&alice, &bob] {
        create_partition(&s.service, &mut s.host, &t.key, "p");
    }
    let aes = SecretBytes::copy_from(AES_CANARY);
    let both = [Operation::Encrypt, Operation::Decrypt];
    // Alice's own key, its metadata naming no task signer (as every key imported
    // before tasks could use keys), and one naming only bob.
    s.import(
        &alice,
        ("p", "no-tasks"),
        KeyType::Aes256Gcm,
        &both,
        &[],
        &aes,
    );
    s.import(
        &alice,
        ("p", "bobs-tasks"),
        KeyType::Aes256Gcm,
        &both,
        &[&bob.id],
        &aes,
    );
    // Bob's key, allowing bob's tasks but not alice's.
    s.import(
        &bob,
        ("p", "bob-key"),
        KeyType::Aes256Gcm,
        &both,
        &[&bob.id],
        &aes,
    );
    // Alice's key allowing her tasks, disabled by her.
    s.import(
        &alice,
        ("p", "gone"),
        KeyType::Aes256Gcm,
        &both,
        &[&alice.id],
        &aes,
    );
    s.disable(&alice, "p", "gone");

    let op = request(1, b"", b"secret");
    refused_naming(
        s.run(&alice, &keys(&["p/no-tasks"]), 0, &op),
        "p/no-tasks",
        "do not name tenant",
    );
    refused_naming(
        s.run(&alice, &keys(&["p/bobs-tasks"]), 0, &op),
        "p/bobs-tasks",
        "do not name tenant",
    );
    // Another tenant's key: the same refusal whether it exists or not, so a task
    // learns nothing of what another tenant holds.
    let bobs = format!("{}/p/bob-key", bob.id);
    refused_naming(
        s.run(&alice, &keys(&[&bobs]), 0, &op),
        &bobs,
        "no such key, or its metadata do not name that tenant",
    );
    let none = format!("{}/p/no-such-key", bob.id);
    refused_naming(
        s.run(&alice, &keys(&[&none]), 0, &op),
        &none,
        "no such key, or its metadata do not name that tenant",
    );
    // Bob's deployed keys are bob's tasks' alone.
    let deployed = format!("{}/deployed/data", bob.id);
    refused_naming(
        s.run(&alice, &keys(&[&deployed]), 0, &op),
        &deployed,
        "no such key, or its metadata do not name that tenant",
    );
    refused_naming(
        s.run(&alice, &keys(&["p/gone"]), 0, &op),
        "p/gone",
        "disabled",
    );
    // A key disabled after the task was initiated is refused when it runs.
    s.import(
        &alice,
        ("p", "later"),
        KeyType::Aes256Gcm,
        &both,
        &[&alice.id],
        &aes,
    );
    refused_naming(
        s.run_with(&alice, &keys(&["p/later"]), 0, &op, |s| {
            s.disable(&alice, "p", "later")
        }),
        "p/later",
        "disabled",
    );
    let text = serde_json::to_string(&audit_bodies(&s.host)).expect("json");
    assert!(text.contains("refused at run: task"), "{text}");
    // One refused key refuses the task even when the others are fine.
    s.import(
        &alice,
        ("p", "fine"),
        KeyType::Aes256Gcm,
        &both,
        &[&alice.id],
        &aes,
    );
    refused_naming(
        s.run(&alice, &keys(&["p/fine", "p/no-tasks"]), 0, &op),
        "p/no-tasks",
        "do not name tenant",
    );
    // Each refusal is in the audit log, under the key's full name.
    let audit = audit_bodies(&s.host);
    let text = serde_json::to_string(&audit).expect("json");
    assert!(text.contains("task.key"), "{text}");
    assert!(text.contains(&format!("{}/p/no-tasks", alice.id)), "{text}");
    assert!(text.contains("refused at initiation: task"), "{text}");
    assert!(!contains(&everything(&s.host), AES_CANARY));
}

#[test]
fn a_forbidden_operation_or_a_key_index_past_the_grant_is_a_code_and_a_logged_reason() {
    let mut s = Setup::new();
    let alice = Tenant::new(&s.service, &mut s.host);
    create_partition(&s.service, &mut s.host, &alice.key, "p");
    let aes = SecretBytes::copy_from(AES_CANARY);
    s.import(
        &alice,
        ("p", "enc-only"),
        KeyType::Aes256Gcm,
        &[Operation::Encrypt],
        &[&alice.id],
        &aes,
    );
    let named = keys(&["p/enc-only"]);

    let decrypt = s
        .run(&alice, &named, 0, &request(2, b"", &[1u8; 40]))
        .expect("ran");
    assert_eq!(decrypt.exit, -3, "{}", decrypt.log);
    assert!(
        decrypt
            .log
            .contains("key p/enc-only may not be used to decrypt"),
        "{}",
        decrypt.log
    );
    assert!(decrypt.output.is_empty());

    let past = s
        .run(&alice, &named, 1, &request(1, b"", b"x"))
        .expect("ran");
    assert_eq!(past.exit, -1, "{}", past.log);
    assert!(
        past.log
            .contains("there is no key 1: the compartment was granted 1"),
        "{}",
        past.log
    );
    // Signing is not among its operations either (nor could an AES key sign).
    let wrong = s.run(&alice, &named, 0, &sign_request(b"m")).expect("ran");
    assert_eq!(wrong.exit, -3, "{}", wrong.log);
    for ran in [&decrypt, &past, &wrong] {
        assert!(!contains(&ran.output, AES_CANARY) && !contains(ran.log.as_bytes(), AES_CANARY));
    }
}

#[test]
fn an_initiation_whose_keys_were_changed_after_signing_is_refused() {
    let mut s = Setup::new();
    let alice = Tenant::new(&s.service, &mut s.host);
    create_partition(&s.service, &mut s.host, &alice.key, "p");
    let aes = SecretBytes::copy_from(AES_CANARY);
    s.import(
        &alice,
        ("p", "k"),
        KeyType::Aes256Gcm,
        &[Operation::Encrypt],
        &[&alice.id],
        &aes,
    );
    s.import(
        &alice,
        ("p", "other"),
        KeyType::Aes256Gcm,
        &[Operation::Encrypt],
        &[&alice.id],
        &aes,
    );
    let id = hex::encode([9u8; 16]);
    let signed = s.initiation(&alice, &id, 10, &keys(&["p/k"]));
    // The host swaps the key, adds one, or drops the list, keeping alice's signature.
    for changed in [keys(&["p/other"]), keys(&["p/k", "p/other"]), Vec::new()] {
        let ttis = s.initiation(&alice, &id, 10, &changed);
        let f = s
            .initiate(&alice, &id, &signed, &ttis)
            .expect_err("a changed initiation");
        assert!(
            matches!(
                f.kind,
                FailureKind::Unauthorized | FailureKind::StaleSignature
            ),
            "{:?}: {}",
            f.kind,
            f.message
        );
    }
    // As signed, it is accepted.
    s.initiate(&alice, &id, &signed, &signed)
        .expect("as signed");
}

#[test]
fn a_compartment_signs_and_encrypts_with_stored_keys_it_never_sees() {
    let mut s = Setup::new();
    let alice = Tenant::new(&s.service, &mut s.host);
    let bob = Tenant::new(&s.service, &mut s.host);
    create_partition(&s.service, &mut s.host, &alice.key, "p");
    create_partition(&s.service, &mut s.host, &bob.key, "shared");
    let ecdsa = EcdsaSigningKey::generate(EcdsaCurve::P256).expect("ecdsa");
    let pkcs8 = ecdsa.to_pkcs8().expect("pkcs8");
    let point = ecdsa.public_key_point().to_vec();
    let aes = SecretBytes::copy_from(AES_CANARY);
    let hmac = SecretBytes::copy_from(HMAC_CANARY);
    s.import(
        &alice,
        ("p", "signing"),
        KeyType::EcdsaP256,
        &[Operation::Sign, Operation::Verify],
        &[&alice.id],
        &pkcs8,
    );
    s.import(
        &alice,
        ("p", "data"),
        KeyType::Aes256Gcm,
        &[Operation::Encrypt, Operation::Decrypt],
        &[&alice.id],
        &aes,
    );
    // Bob lends alice's tasks an HMAC key of his.
    s.import(
        &bob,
        ("shared", "mac"),
        KeyType::HmacSha256,
        &[Operation::Hmac],
        &[&alice.id],
        &hmac,
    );
    let bobs = format!("{}/shared/mac", bob.id);
    let named = keys(&["p/signing", "p/data", &bobs]);

    // Sign: the answer is the version and r || s, which verifies outside.
    let message = b"pay 100 to carol";
    let signed = s
        .run(&alice, &named, 0, &sign_request(message))
        .expect("ran");
    assert_eq!(signed.exit as usize, signed.output.len(), "{}", signed.log);
    assert_eq!(&signed.output[..4], &1u32.to_be_bytes());
    veritee_crypto::sign::verify(
        VerificationScheme::EcdsaP256Sha256Fixed,
        &point,
        message,
        &signed.output[4..],
    )
    .expect("the task's signature verifies with the key's public key");

    // Verify inside, against the signature just made.
    let mut verify = vec![4u8, 0, 0, 0, 1];
    verify.extend_from_slice(&request(0, &signed.output[4..], message)[1..]);
    let verified = s.run(&alice, &named, 0, &verify).expect("ran");
    assert_eq!(verified.output, [1]);

    // Encrypt: the session API's envelope, which alice decrypts there.
    let encrypted = s
        .run(
            &alice,
            &named,
            1,
            &request(1, b"invoice-7", b"the plaintext"),
        )
        .expect("ran");
    let mut session = open_session(&s.world, &s.service, &mut s.host, &alice.key);
    let opened = open_in_session(
        &mut s,
        &mut session,
        KeyRef::new("p", "data"),
        &encrypted,
        b"invoice-7",
    );
    assert_eq!(opened, b"the plaintext");
    // And the other way: what the session API encrypts, the task decrypts.
    let sealed = match one(
        &mut session,
        &s.service,
        &mut s.host,
        CryptoOp::Encrypt {
            key: KeyRef::new("p", "data"),
            plaintext: SecretBytes::copy_from(b"for the task"),
            aad: Vec::new(),
        },
    ) {
        CryptoOutcome::Ciphertext(c) => c,
        other => panic!("{other:?}"),
    };
    let decrypted = s
        .run(&alice, &named, 1, &request(2, b"", &sealed))
        .expect("ran");
    assert_eq!(decrypted.output, b"for the task");

    // Bob's HMAC key, lent to alice's tasks: the tag is the key's.
    let tagged = s
        .run(&alice, &named, 2, &[&[5u8][..], b"data"].concat())
        .expect("ran");
    assert_eq!(
        &tagged.output[4..],
        veritee_crypto::mac::hmac_sha256(HMAC_CANARY, b"data").as_slice()
    );

    // Every grant is audited, under the key's full name.
    let text = serde_json::to_string(&audit_bodies(&s.host)).expect("json");
    for key in [format!("{}/p/signing", alice.id), bobs.clone()] {
        assert!(text.contains(&key), "{key}: {text}");
    }
    assert!(text.contains("ok: granted to task"), "{text}");

    // Canary: no key's material in any output, log, or anything the host holds.
    let host_bytes = everything(&s.host);
    for ran in [&signed, &verified, &encrypted, &decrypted, &tagged] {
        for secret in [&AES_CANARY[..], &HMAC_CANARY[..], pkcs8.expose()] {
            assert!(!contains(&ran.output, secret), "material in an output");
            assert!(!contains(ran.log.as_bytes(), secret), "material in a log");
            assert!(!contains(&host_bytes, secret), "material on the host");
        }
    }
}

/// Deploys (key management, flow 4) a fresh data key `name` of `tenant` to the node;
/// returns its material, for the canary search.
fn deploy(s: &mut Setup, tenant: &TenantKey, name: &str) -> Vec<u8> {
    use base64::Engine;
    use veritee_channel::deploy::ReleasePolicy;
    use veritee_client::{WrappingKeyFile, wrap_for_node};
    use veritee_proto::api::ImportKeyRequest;
    let b64 = base64::engine::general_purpose::STANDARD;
    let nonce = [3u8; 32];
    let EnclaveReply::WrappingKey {
        public_key,
        audit_public_key,
        checkpoint_public_key,
        node_id,
        evidence,
    } = s
        .service
        .handle(
            EnclaveCall::WrappingKey {
                nonce: nonce.to_vec(),
            },
            &mut s.host,
        )
        .expect("wrapping key")
    else {
        panic!("not a wrapping key");
    };
    let file = WrappingKeyFile {
        node: "http://node".into(),
        node_id,
        public_key: hex::encode(public_key),
        audit_public_key: b64.encode(audit_public_key),
        checkpoint_public_key: hex::encode(checkpoint_public_key),
        nonce: hex::encode(nonce),
        evidence: b64.encode(evidence),
        fetched_at: String::new(),
    };
    let verifiers = veritee_verify::Verifiers::default();
    let anchors = veritee_attest::TrustAnchors::untyped(s.world.anchors.clone());
    let dev = veritee_policy::AppraisalPolicy::parse(&s.world.policy()).expect("policy");
    let attested = file
        .verify(&Appraiser {
            verifiers: &verifiers,
            policy: &dev,
            trust_anchors: &anchors,
            collateral: &[],
            at: time::OffsetDateTime::now_utc(),
        })
        .expect("attested");
    let key = veritee_crypto::rand::secret_array::<32>().expect("key");
    let wrapped = wrap_for_node(
        &attested,
        tenant,
        name,
        ReleasePolicy::SameSigner,
        serde_json::to_vec(&dev).expect("policy json"),
        &key,
    )
    .expect("wrap");
    let body = serde_json::to_vec(&ImportKeyRequest {
        wrapped: wrapped.wrapped.clone(),
    })
    .expect("json");
    let aud = audience(&s.service, &mut s.host);
    s.service
        .handle(
            EnclaveCall::ImportKey {
                request: sign(&aud, tenant, "POST", &paths::keys(), &body),
                body,
            },
            &mut s.host,
        )
        .expect("deployed");
    key.expose().to_vec()
}

/// A data key deployed by key management serves its own tenant's tasks as
/// `deployed/NAME`, with no metadata to name signers; another tenant's tasks never.
#[test]
fn a_deployed_key_serves_its_own_tenants_tasks_only() {
    let mut s = Setup::new();
    let alice = Tenant::new(&s.service, &mut s.host);
    let bob = Tenant::new(&s.service, &mut s.host);
    let material = deploy(&mut s, &alice.key, "data");
    let named = keys(&["deployed/data"]);
    let encrypted = s
        .run(
            &alice,
            &named,
            0,
            &request(1, b"aad", b"deployed plaintext"),
        )
        .expect("ran");
    let mut session = open_session(&s.world, &s.service, &mut s.host, &alice.key);
    let opened = open_in_session(
        &mut s,
        &mut session,
        KeyRef::new("deployed", "data"),
        &encrypted,
        b"aad",
    );
    assert_eq!(opened, b"deployed plaintext");
    // Signing is not among what a deployed key does.
    let sign = s.run(&alice, &named, 0, &sign_request(b"m")).expect("ran");
    assert_eq!(sign.exit, -3, "{}", sign.log);
    let alices = format!("{}/deployed/data", alice.id);
    refused_naming(
        s.run(&bob, &keys(&[&alices]), 0, &request(1, b"", b"x")),
        &alices,
        "no such key, or its metadata do not name that tenant",
    );
    for ran in [&encrypted, &sign] {
        assert!(!contains(&ran.output, &material) && !contains(ran.log.as_bytes(), &material));
    }
    assert!(!contains(&everything(&s.host), &material));
}

/// As `KEY_OP`, in a loop: the same request until `key_op` refuses it; the output is
/// the number of answers before the refusal, the exit code the refusal's.
const KEY_OP_UNTIL_REFUSED: &str = r#"(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "key_op" (func $key_op (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "run") (result i32)
    (local $n i32) (local $r i32) (local $answers i32)
    (local.set $n (call $input_read (call $self_id) (i32.const 0) (i64.const 0)
                                    (i32.const 0) (i32.const 65536)))
    (block $refused
      (loop $again
        (local.set $r (call $key_op (i32.load (i32.const 0)) (i32.const 4)
                                    (i32.sub (local.get $n) (i32.const 4))
                                    (i32.const 65536) (i32.const 65536)))
        (br_if $refused (i32.lt_s (local.get $r) (i32.const 0)))
        (local.set $answers (i32.add (local.get $answers) (i32.const 1)))
        (br $again)))
    (i32.store (i32.const 65536) (local.get $answers))
    (drop (call $output_write (i32.const 65536) (i32.const 4)))
    (local.get $r)))"#;

/// Translation: a ciphertext of one granted key becomes one of another, the plaintext
/// never in the compartment; the source key must allow translation and the target
/// encryption. A disable takes effect at a running task's next `key_op`. Every use is
/// counted in the audit log under the key, the task and the outcome.
#[test]
fn a_task_translates_between_keys_and_a_disable_stops_it_mid_run() {
    let mut s = Setup::new();
    let alice = Tenant::new(&s.service, &mut s.host);
    create_partition(&s.service, &mut s.host, &alice.key, "p");
    let aes = SecretBytes::copy_from(AES_CANARY);
    s.import(
        &alice,
        ("p", "old"),
        KeyType::Aes256Gcm,
        &[Operation::Encrypt, Operation::Decrypt, Operation::Translate],
        &[&alice.id],
        &aes,
    );
    s.import(
        &alice,
        ("p", "new"),
        KeyType::Aes256Gcm,
        &[Operation::Encrypt, Operation::Decrypt],
        &[&alice.id],
        &SecretBytes::copy_from(&[3u8; 32]),
    );
    let named = keys(&["p/old", "p/new"]);
    let mut session = open_session(&s.world, &s.service, &mut s.host, &alice.key);
    let sealed = match one(
        &mut session,
        &s.service,
        &mut s.host,
        CryptoOp::Encrypt {
            key: KeyRef::new("p", "old"),
            plaintext: SecretBytes::copy_from(b"moved without being seen"),
            aad: b"ctx".to_vec(),
        },
    ) {
        CryptoOutcome::Ciphertext(c) => c,
        other => panic!("{other:?}"),
    };
    let translate = |to: u32, aad: &[u8], ct: &[u8]| {
        let mut r = vec![6u8];
        r.extend_from_slice(&to.to_be_bytes());
        r.extend_from_slice(&request(0, aad, ct)[1..]);
        r
    };
    let moved = s
        .run(&alice, &named, 0, &translate(1, b"ctx", &sealed))
        .expect("ran");
    assert!(!contains(&moved.output, b"moved without being seen"));
    let opened = open_in_session(
        &mut s,
        &mut session,
        KeyRef::new("p", "new"),
        &moved,
        b"ctx",
    );
    assert_eq!(opened, b"moved without being seen");
    // Back again is refused: "new" does not allow translation. So is another AAD, and
    // a target past the grant.
    let back = s
        .run(&alice, &named, 1, &translate(0, b"ctx", &moved.output))
        .expect("ran");
    assert_eq!(back.exit, -3, "{}", back.log);
    assert!(
        back.log.contains("may not be used to translate"),
        "{}",
        back.log
    );
    let other_aad = s
        .run(&alice, &named, 0, &translate(1, b"other", &sealed))
        .expect("ran");
    assert_eq!(other_aad.exit, -4, "{}", other_aad.log);
    let past = s
        .run(&alice, &named, 0, &translate(7, b"ctx", &sealed))
        .expect("ran");
    assert_eq!(past.exit, -1, "{}", past.log);

    // A task encrypting in a loop; the owner disables the key while it runs.
    s.module = KEY_OP_UNTIL_REFUSED;
    let service = std::sync::Arc::clone(&s.service);
    let mut owners_host = s.host.clone();
    let grants = |host: &MemoryHost| {
        audit_bodies(host)
            .iter()
            .filter(|b| {
                b["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("ok: granted"))
                    && b["object"].as_str().is_some_and(|o| o.ends_with("/p/new"))
            })
            .count()
    };
    // The translations above were granted the key too: wait for one grant more.
    let earlier = grants(&s.host);
    let ran = std::thread::scope(|scope| {
        let owner = &alice.key;
        let disabler = scope.spawn(move || {
            let waited = std::time::Instant::now();
            while grants(&owners_host) == earlier {
                assert!(
                    waited.elapsed() < std::time::Duration::from_secs(30),
                    "the task never started"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // Let it answer a few first.
            std::thread::sleep(std::time::Duration::from_millis(100));
            disable_alone(&service, &mut owners_host, owner, ("p", "new")).expect("disabled");
        });
        let ran = s
            .run(&alice, &keys(&["p/new"]), 0, &request(1, b"", b"loop"))
            .expect("ran");
        disabler.join().expect("disabler");
        ran
    });
    assert_eq!(ran.exit, -3, "{}", ran.log);
    assert!(
        ran.log.contains("disabled for good while task "),
        "{}",
        ran.log
    );
    let answers = u32::from_le_bytes(ran.output[..4].try_into().expect("count"));
    assert!(answers > 0, "the key was disabled before the task used it");

    // The audit log counts each use, under the key and the task that made it.
    let bodies = audit_bodies(&s.host);
    let counted = |action: &str, start: &str| {
        bodies.iter().any(|b| {
            b["action"] == action && b["outcome"].as_str().is_some_and(|o| o.starts_with(start))
        })
    };
    assert!(counted("key_op.translate", "ok: 1 since"));
    assert!(counted("key_op.translate", "refused (-3)"));
    assert!(counted("key_op.encrypt", &format!("ok: {answers} since")));
    assert!(counted("key_op.encrypt", "refused (-3): key"));
    let translated = bodies
        .iter()
        .find(|b| b["action"] == "key_op.translate")
        .expect("entry");
    let object = translated["object"].as_str().expect("object");
    assert!(
        object.contains("/p/old -> ") && object.contains("/p/new by task "),
        "{object}"
    );
    assert!(!contains(&everything(&s.host), AES_CANARY));
}

/// A task reserves its compartments' memory limits in the enclave's budget while it
/// runs, and gives them back when it ends.
#[test]
fn a_task_runs_only_within_the_enclave_memory_budget() {
    // The default limit is 256 MiB a compartment.
    let mut s = Setup::configured(|s| s.with_memory_budget(200 << 20));
    let alice = Tenant::new(&s.service, &mut s.host);
    let refused = s.run(&alice, &[], 0, b"").err().expect("refused");
    assert_eq!(refused.kind, FailureKind::TooMany, "{}", refused.message);
    assert!(
        refused.message.contains("memory budget is full: task"),
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains("asks 256 MiB, 0 MiB of 200 MiB"),
        "{}",
        refused.message
    );
    let mut s = Setup::configured(|s| s.with_memory_budget(256 << 20));
    let alice = Tenant::new(&s.service, &mut s.host);
    let ran = s.run(&alice, &[], 0, b"").expect("ran");
    assert_eq!(ran.exit, -1, "{}", ran.log);
    assert_eq!(s.service.memory_budget().held(), 0);
}
