//! A node on a TEE without a sealing key (Nitro here; TDX goes the same way) gets its
//! sealing root from an attested releaser among its peers, keeps its state across
//! restarts under it, and gets nothing a releaser it does not trust, another image,
//! a debug guest or a tampering host would give it.
//!
//! The Nitro enclave is the real backend ([`NitroPlatform`]) over an NSM that answers
//! as the device does: COSE-signed attestation documents over the nonce asked for,
//! under a test PKI the releaser is configured to trust for Nitro evidence. Its
//! counters live in a real software TPM (swtpm), as `--counter-tpm` puts them; without
//! swtpm installed the tests say so and pass, unless VERITEE_REQUIRE_SWTPM is set.

mod common;

use ciborium::value::Value;
use common::*;
use std::sync::Arc;
use veritee_attest::{ParsedCertificate, TeeKind, TrustAnchors};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_enclave::EnclaveService;
use veritee_enclave::launch::TpmCountedPlatform;
use veritee_enclave::sealing_root::{ReleasedRoot, ReleasedRootPlatform, RootRelease};
use veritee_platform::hw::nitro::{NitroPlatform, NsmTransport};
use veritee_platform::{Platform, PlatformError, SealPolicy};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind};
use veritee_tpm::swtpm::{LocalCa, SoftwareTpm};

const RELEASER_CODE: &[u8] = b"the releasing node, version 1";
const OTHER_CODE: &[u8] = b"a node the requester does not trust";

/// A Nitro Secure Module that signs attestation documents as the real one does, under
/// a test CA.
struct SigningNsm {
    pcrs: [[u8; 48]; 3],
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    key: EcdsaSigningKey,
}

/// The CA the test NSMs' documents chain to.
struct NitroCa {
    ca_der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl NitroCa {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let now = time::OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("CA key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "test.nitro-enclaves");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let cert = params.self_signed(&key).expect("CA");
        Self {
            ca_der: cert.der().to_vec(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn anchor(&self) -> ParsedCertificate {
        ParsedCertificate::from_der(&self.ca_der).expect("CA certificate")
    }

    /// An NSM of an enclave whose image measures `pcr0`.
    fn nsm(&self, pcr0: [u8; 48]) -> Arc<SigningNsm> {
        use rcgen::{CertificateParams, DnType, KeyPair, KeyUsagePurpose};
        let now = time::OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("leaf key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "i-test-enc0");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::hours(3);
        let leaf = params.signed_by(&key, &self.issuer).expect("leaf");
        Arc::new(SigningNsm {
            pcrs: [pcr0, [0x22; 48], [0x33; 48]],
            ca_der: self.ca_der.clone(),
            leaf_der: leaf.der().to_vec(),
            key: EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, &key.serialize_der())
                .expect("leaf key"),
        })
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR");
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

impl SigningNsm {
    fn document(&self, nonce: Vec<u8>) -> Vec<u8> {
        let millis = time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000;
        let pcrs = self
            .pcrs
            .iter()
            .enumerate()
            .map(|(i, pcr)| {
                (
                    Value::Integer((i as u64).into()),
                    Value::Bytes(pcr.to_vec()),
                )
            })
            .collect();
        let payload = cbor(&Value::Map(vec![
            (text("module_id"), text("i-test-enc0")),
            (text("digest"), text("SHA384")),
            (text("timestamp"), Value::Integer(millis.into())),
            (text("pcrs"), Value::Map(pcrs)),
            (text("certificate"), Value::Bytes(self.leaf_der.clone())),
            (
                text("cabundle"),
                Value::Array(vec![Value::Bytes(self.ca_der.clone())]),
            ),
            (text("public_key"), Value::Null),
            (text("user_data"), Value::Null),
            (text("nonce"), Value::Bytes(nonce)),
        ]));
        let protected = cbor(&Value::Map(vec![(
            Value::Integer(1.into()),
            Value::Integer((-35).into()),
        )]));
        let to_sign = veritee_verify::nitro::document::CoseSign1 {
            tagged: true,
            protected: protected.clone(),
            payload: payload.clone(),
            signature: Vec::new(),
        }
        .to_be_signed();
        let signature = self.key.sign(&to_sign).expect("sign");
        cbor(&Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected),
                Value::Map(Vec::new()),
                Value::Bytes(payload),
                Value::Bytes(signature),
            ])),
        ))
    }
}

impl NsmTransport for SigningNsm {
    fn call(&self, request_cbor: &[u8]) -> Result<Vec<u8>, PlatformError> {
        let request: Value = ciborium::from_reader(request_cbor)
            .map_err(|e| PlatformError::InvalidInput(e.to_string()))?;
        let nonce = request
            .as_map()
            .and_then(|m| m.first())
            .filter(|(k, _)| k.as_text() == Some("Attestation"))
            .and_then(|(_, v)| v.as_map())
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("nonce")))
            .and_then(|(_, v)| v.as_bytes())
            .cloned()
            .ok_or_else(|| PlatformError::InvalidInput("not an attestation request".into()))?;
        let document = self.document(nonce);
        Ok(cbor(&Value::Map(vec![(
            text("Attestation"),
            Value::Map(vec![(text("document"), Value::Bytes(document))]),
        )])))
    }
}

/// The releasers' machines, the Nitro CA, and the TPM the Nitro node counts in.
struct Setup {
    world: World,
    nitro: NitroCa,
    _tpm_dir: tempfile::TempDir,
    tpm: SoftwareTpm,
    tpm_anchors: Vec<ParsedCertificate>,
}

impl Setup {
    fn new() -> Option<Self> {
        if !veritee_tpm::swtpm::available_or_required() {
            return None;
        }
        let tpm_dir = tempfile::tempdir().expect("tempdir");
        let ca = LocalCa::new(&tpm_dir.path().join("manufacturer")).expect("local CA");
        let state = tpm_dir.path().join("tpm");
        ca.manufacture(&state).expect("swtpm_setup");
        let tpm = SoftwareTpm::start(&state).expect("swtpm");
        let mut pem = ca.root_pem().expect("root");
        pem.extend(ca.intermediate_pem().expect("intermediate"));
        Some(Self {
            world: World::new(&["r1", "r2", "r3"]),
            nitro: NitroCa::new(),
            tpm_anchors: ParsedCertificate::from_pem_chain(&pem).expect("TPM CA"),
            _tpm_dir: tpm_dir,
            tpm,
        })
    }

    /// A releaser of `code` on `machine`, trusting Nitro evidence under the test CA.
    fn releaser(&self, machine: &str, code: &[u8], releasing: bool) -> Arc<EnclaveService> {
        let mut anchors = TrustAnchors::untyped(self.world.anchors.clone());
        anchors.push(Some(TeeKind::Nitro), self.nitro.anchor());
        let mut service = self.world.enclave(machine, code).with_peer_anchors(anchors);
        if releasing {
            service = service.releasing_sealing_roots();
        }
        Arc::new(service)
    }

    /// The policy naming `code`'s simulated build as the only releaser. A hardware
    /// node's launcher refuses a simulated releaser (`check_releaser_policy`); these
    /// tests hand the policy to the service directly, since no SEV-SNP releaser can
    /// run here.
    fn policy_for(&self, code: &[u8]) -> veritee_policy::AppraisalPolicy {
        let image =
            veritee_platform::sim::EnclaveImage::signed(code, &self.world.signer, 1, 1, false)
                .expect("image");
        veritee_policy::AppraisalPolicy::parse(&format!(
            "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n\
             [measurements]\nmeasurement = [\"{}\"]\n",
            hex::encode(image.measurement)
        ))
        .expect("policy")
    }

    /// A Nitro node whose image measures `pcr0`, as `veritee node --tee nitro` builds it.
    fn nitro_node(
        &self,
        pcr0: [u8; 48],
        releaser_policy: veritee_policy::AppraisalPolicy,
    ) -> EnclaveService {
        let nitro = NitroPlatform::new(self.nitro.nsm(pcr0)).expect("NSM");
        let root = Arc::new(ReleasedRoot::default());
        let platform = ReleasedRootPlatform::new(Box::new(nitro), Arc::clone(&root));
        let counted = TpmCountedPlatform::new(
            Box::new(platform),
            &self.tpm.tcti(),
            self.tpm_anchors.clone(),
        )
        .counting_by_identity();
        EnclaveService::new(Box::new(counted), SealPolicy::Measurement)
            .with_peer_anchors(TrustAnchors::untyped(self.world.anchors.clone()))
            .with_released_root(RootRelease {
                root,
                releaser_policy,
            })
    }
}

const IMAGE: [u8; 48] = [0x11; 48];

/// Makes `url` (served by `service` and its own host) a peer of `host`.
fn peer(host: &MemoryHost, url: &str, service: &Arc<EnclaveService>, its_host: &MemoryHost) {
    host.peers
        .lock()
        .expect("peers")
        .insert(url.into(), (Arc::clone(service), its_host.clone()));
}

fn status(
    service: &EnclaveService,
    host: &mut MemoryHost,
) -> Result<(String, Vec<u8>), EnclaveFailure> {
    match service.handle(EnclaveCall::Status, host)? {
        EnclaveReply::Status(s) => {
            assert_eq!(s.tee, "aws-nitro");
            Ok((s.node_id, s.audit_public_key))
        }
        other => panic!("{other:?}"),
    }
}

fn refused(result: Result<(String, Vec<u8>), EnclaveFailure>) -> EnclaveFailure {
    match result {
        Ok(status) => panic!("served: {status:?}"),
        Err(failure) => failure,
    }
}

fn audit_mentions(host: &MemoryHost, needle: &str) -> bool {
    let storage = host.storage.lock().expect("storage");
    storage.logs.iter().any(|(name, entries)| {
        name.starts_with("audit/")
            && entries
                .iter()
                .any(|e| e.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn a_nitro_node_takes_its_root_from_the_releaser_and_keeps_its_state() {
    let Some(setup) = Setup::new() else { return };
    let releaser = setup.releaser("r1", RELEASER_CODE, true);
    let releaser_host = MemoryHost::default();
    let mut host = MemoryHost::default();
    peer(&host, "r1", &releaser, &releaser_host);

    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    let first = status(&node, &mut host).expect("status");
    assert!(audit_mentions(&releaser_host, "sealing-root.release"));
    // What the node sealed is there, and its root's check value.
    let stored = host.storage.lock().expect("storage").clone();
    assert!(
        stored
            .objects
            .keys()
            .any(|(ns, _)| ns == "sealing-root-check")
    );
    assert!(!stored.logs.is_empty());

    // A restart (a new process: the root is in memory only) gets the same root back:
    // the same node id, the same audit key, the state as it was.
    drop(node);
    let restarted = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    assert_eq!(status(&restarted, &mut host).expect("status"), first);

    // So does a restart of the releaser: the root is kept sealed in its state.
    let releaser_again = setup.releaser("r1", RELEASER_CODE, true);
    peer(&host, "r1", &releaser_again, &releaser_host);
    let again = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    assert_eq!(status(&again, &mut host).expect("status"), first);

    // Another image (another PCR0) gets another root: it starts a node of its own and
    // reads nothing of the first one's.
    let mut other_host = host.clone();
    let other = setup.nitro_node([0x12; 48], setup.policy_for(RELEASER_CODE));
    let (other_id, other_key) = status(&other, &mut other_host).expect("status");
    assert_ne!(other_id, first.0);
    assert_ne!(other_key, first.1);
}

#[test]
fn no_root_without_a_releaser_the_node_trusts() {
    let Some(setup) = Setup::new() else { return };
    let releaser_host = MemoryHost::default();

    // No peer at all.
    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    let failure = refused(status(&node, &mut MemoryHost::default()));
    assert_eq!(failure.kind, FailureKind::Unavailable);
    assert!(
        failure.message.contains("no peer is configured"),
        "{}",
        failure.message
    );

    // A releaser of other code than the policy names: never asked for the root.
    let untrusted = setup.releaser("r2", OTHER_CODE, true);
    let mut host = MemoryHost::default();
    peer(&host, "r2", &untrusted, &releaser_host);
    let failure = refused(status(&node, &mut host));
    assert!(
        failure.message.contains("no peer released") && failure.message.contains("measurement"),
        "{}",
        failure.message
    );
    assert!(!audit_mentions(&releaser_host, "sealing-root.release"));
    assert!(host.storage.lock().expect("storage").objects.is_empty());

    // The right code, not started to release roots: it admits no enclave of another
    // kind to a handshake at all.
    let not_releasing = setup.releaser("r3", RELEASER_CODE, false);
    let mut host = MemoryHost::default();
    peer(&host, "r3", &not_releasing, &MemoryHost::default());
    let failure = refused(status(&node, &mut host));
    assert!(
        failure.message.contains("peer refused") && failure.message.contains("aws-nitro"),
        "{}",
        failure.message
    );
}

#[test]
fn a_debug_enclave_gets_no_root() {
    let Some(setup) = Setup::new() else { return };
    let releaser = setup.releaser("r1", RELEASER_CODE, true);
    let releaser_host = MemoryHost::default();
    let mut host = MemoryHost::default();
    peer(&host, "r1", &releaser, &releaser_host);
    // A Nitro enclave in debug mode reports PCRs of zeros; its host can read its memory.
    let node = setup.nitro_node([0; 48], setup.policy_for(RELEASER_CODE));
    let failure = refused(status(&node, &mut host));
    assert!(failure.message.contains("debug"), "{}", failure.message);
}

#[test]
fn the_check_value_picks_the_releaser_that_holds_the_root() {
    let Some(setup) = Setup::new() else { return };
    // The same releasing code on two machines: both meet the policy, each keeps roots
    // of its own.
    let (r1, r1_host) = (
        setup.releaser("r1", RELEASER_CODE, true),
        MemoryHost::default(),
    );
    let (r2, r2_host) = (
        setup.releaser("r2", RELEASER_CODE, true),
        MemoryHost::default(),
    );
    let mut host = MemoryHost::default();
    peer(&host, "r1", &r1, &r1_host);
    let first = status(
        &setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE)),
        &mut host,
    )
    .expect("status");

    // Later the host lists r2 first: r2's root is not the one the state is sealed
    // under, so the node goes on to r1.
    host.peers.lock().expect("peers").clear();
    peer(&host, "a-r2", &r2, &r2_host);
    peer(&host, "b-r1", &r1, &r1_host);
    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    assert_eq!(status(&node, &mut host).expect("status"), first);

    // With r2 alone the node refuses to start on the wrong root.
    host.peers.lock().expect("peers").clear();
    peer(&host, "r2", &r2, &r2_host);
    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    let failure = refused(status(&node, &mut host));
    assert!(
        failure.message.contains("released another root"),
        "{}",
        failure.message
    );

    // A host that deletes the check value makes the node take r2's root. The node's
    // monotonic counter is where its identity names it, under the first root's
    // authorization: with r2's root the node cannot use it, and does not start.
    host.storage
        .lock()
        .expect("storage")
        .objects
        .retain(|(ns, _), _| ns != "sealing-root-check");
    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    let failure = refused(status(&node, &mut host));
    assert!(
        failure.message.contains("monotonic counter"),
        "{}",
        failure.message
    );
    // Given r1 again, it is the node it was.
    host.peers.lock().expect("peers").clear();
    peer(&host, "r1", &r1, &r1_host);
    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    assert_eq!(status(&node, &mut host).expect("status"), first);
}

#[test]
fn a_host_that_tampers_with_the_release_gets_nothing_and_breaks_nothing() {
    let Some(setup) = Setup::new() else { return };
    let releaser = setup.releaser("r1", RELEASER_CODE, true);
    let releaser_host = MemoryHost::default();
    let mut host = MemoryHost::default();
    peer(&host, "r1", &releaser, &releaser_host);
    let first = status(
        &setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE)),
        &mut host,
    )
    .expect("status");
    let exchanged: Vec<Vec<u8>> = host.wire.lock().expect("wire").clone();
    // A hello, a challenge, a finish with the request, the sealed answer.
    assert_eq!(exchanged.len(), 4, "one handshake and one request");

    // Flip bytes of each message in turn (the first byte, one in the middle, the
    // last), in either direction: every start fails cleanly, and an honest start
    // afterwards still gets the same root.
    for replies in [false, true] {
        for message in 0..2usize {
            for at in [Position::First, Position::Middle, Position::Last] {
                let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let tap: veritee_enclave::memory_host::PeerTap =
                    Box::new(move |_peer, mut bytes: Vec<u8>| {
                        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == message {
                            let i = at.index(bytes.len());
                            bytes[i] ^= 0x01;
                        }
                        Some(bytes)
                    });
                let slot = Arc::clone(if replies {
                    &host.peer_reply_tap
                } else {
                    &host.peer_tap
                });
                *slot.lock().expect("tap") = Some(tap);
                let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
                let failure = refused(status(&node, &mut host));
                assert_eq!(
                    failure.kind,
                    FailureKind::Unavailable,
                    "{}",
                    failure.message
                );
                *slot.lock().expect("tap") = None;
            }
        }
    }
    // Truncated, lost.
    for cut in [Some(1usize), Some(33), None] {
        *host.peer_tap.lock().expect("tap") = Some(Box::new(move |_peer, bytes| {
            cut.map(|n| bytes[..bytes.len() - n].to_vec())
        }));
        let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
        refused(status(&node, &mut host));
        *host.peer_tap.lock().expect("tap") = None;
    }
    // A recorded finish replayed to the releaser: its handshake is spent.
    let replay = releaser.handle(
        EnclaveCall::PeerMessage {
            message: exchanged[2].clone(),
        },
        &mut releaser_host.clone(),
    );
    let failure = replay.expect_err("a replayed finish was answered");
    assert!(
        failure.message.contains("unknown or expired"),
        "{}",
        failure.message
    );

    let node = setup.nitro_node(IMAGE, setup.policy_for(RELEASER_CODE));
    assert_eq!(status(&node, &mut host).expect("status"), first);
}

#[derive(Clone, Copy)]
enum Position {
    First,
    Middle,
    Last,
}

impl Position {
    fn index(self, len: usize) -> usize {
        match self {
            Self::First => 0,
            Self::Middle => len / 2,
            Self::Last => len - 1,
        }
    }
}

/// One request, as a CBOR value, from a Nitro enclave to `releaser` (whose host is
/// `host`) over a mutually attested peer session driven by hand: what the releaser
/// answers. Every message both ways is added to `wire`.
fn ask_as_nitro(
    setup: &Setup,
    releaser: &EnclaveService,
    host: &mut MemoryHost,
    wire: &mut Vec<u8>,
    request: Value,
) -> Result<Vec<u8>, EnclaveFailure> {
    use veritee_channel::peer::{Initiator, PeerAppraiser, PeerRequirement};
    let nitro = NitroPlatform::new(setup.nitro.nsm(IMAGE)).expect("NSM");
    let mut exchange = |message: Vec<u8>| {
        wire.extend_from_slice(&message);
        let answer = releaser.handle(EnclaveCall::PeerMessage { message }, host)?;
        if let EnclaveReply::Message { message } = &answer {
            wire.extend_from_slice(message);
        }
        Ok::<_, EnclaveFailure>(answer)
    };
    let envelope = |variant: &str, body: Value| cbor(&Value::Map(vec![(text(variant), body)]));
    let reply = |answer: EnclaveReply| match answer {
        EnclaveReply::Message { message } => {
            let Value::Map(fields) =
                ciborium::from_reader::<Value, _>(&message[..]).expect("reply")
            else {
                panic!("a reply is a map")
            };
            fields.into_iter().next().expect("one variant")
        }
        other => panic!("{other:?}"),
    };
    let (initiator, hello) = Initiator::start().expect("hello");
    let (_, challenge) = reply(exchange(envelope("Hello", Value::Bytes(hello)))?);
    let policy = setup.policy_for(RELEASER_CODE);
    let verifiers = veritee_verify::Verifiers::default();
    let anchors = TrustAnchors::untyped(setup.world.anchors.clone());
    let appraiser = PeerAppraiser {
        verifiers: &verifiers,
        trust_anchors: &anchors,
        policy: &policy,
        requirement: PeerRequirement::PolicyOnly,
        own: nitro.identity(),
        own_tee: TeeKind::Nitro,
        at: time::OffsetDateTime::now_utc(),
    };
    let (mut session, _, finish) = initiator
        .on_challenge(challenge.as_bytes().expect("challenge"), &nitro, &appraiser)
        .expect("the releaser is the one the policy names");
    let sealed = session.seal(&cbor(&request)).expect("seal");
    let (_, answer) = reply(exchange(envelope(
        "Finish",
        Value::Map(vec![
            (text("finish"), Value::Bytes(finish)),
            (text("request"), Value::Bytes(sealed)),
        ]),
    ))?);
    let plain = session
        .open(answer.as_bytes().expect("sealed answer"))
        .expect("open");
    Ok(plain.expose().to_vec())
}

#[test]
fn an_enclave_of_another_kind_gets_a_root_from_a_releaser_and_nothing_else() {
    let Some(setup) = Setup::new() else { return };
    let releaser = setup.releaser("r1", RELEASER_CODE, true);
    let mut host = MemoryHost::default();
    let mut wire = Vec::new();
    // What a node's own kind may ask of a peer: a replica of a key, an imported key, a
    // tenant's public key.
    for request in [
        Value::Map(vec![(
            text("Key"),
            Value::Map(vec![(text("tenant"), text("t")), (text("name"), text("k"))]),
        )]),
        Value::Map(vec![(
            text("ImportedKey"),
            Value::Map(vec![
                (text("tenant"), text("t")),
                (text("partition"), text("p")),
                (text("key_id"), text("k")),
            ]),
        )]),
        Value::Map(vec![(
            text("Tenant"),
            Value::Map(vec![(text("tenant"), text("t"))]),
        )]),
    ] {
        let failure =
            ask_as_nitro(&setup, &releaser, &mut host, &mut wire, request).expect_err("answered");
        assert_eq!(
            failure.kind,
            FailureKind::Unauthorized,
            "{}",
            failure.message
        );
        assert!(
            failure
                .message
                .contains("only a sealing root is released to it"),
            "{}",
            failure.message
        );
    }
    // The root itself it gets.
    let answer =
        ask_as_nitro(&setup, &releaser, &mut host, &mut wire, text("SealingRoot")).expect("root");
    let answer: Value = ciborium::from_reader(&answer[..]).expect("answer");
    let root = answer
        .as_map()
        .and_then(|m| m.first())
        .filter(|(k, _)| k.as_text() == Some("SealingRoot"))
        .and_then(|(_, v)| v.as_bytes())
        .expect("a root");
    assert_eq!(root.len(), 32);
    // The root crossed the host sealed only, and the releaser stored it sealed: it is
    // nowhere in the messages or in anything the releaser's host holds.
    assert!(!contains(&wire, root));
    assert!(!contains(&everything(&host), root));
}
