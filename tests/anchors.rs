//! Every client path refuses "AWS Nitro" evidence that a simulated node's host forged.
//!
//! The host of a simulated node holds the simulated vendor's private key
//! (`DIR/vendor/root.key`), and the node's clients trust that vendor's root, untyped,
//! as they must to verify simulated evidence. Here the host mints a Nitro attestation
//! document under that root, with the report data each exchange demands computed
//! correctly (the host sees every public input), and the client's policy accepts
//! aws-nitro with Nitro's `NotReported` TCB status: only the binding of anchors to TEE
//! kinds stands between the forgery and acceptance as real hardware. Each path must
//! refuse it with an error naming aws-nitro, both with the root given untyped and with
//! it given *for* aws-nitro (`aws-nitro=vendor/root.pem`): the simulated vendor's root
//! vouches for simulated evidence only, whatever it is given for. The control is the
//! very same forgery under a private root without the simulated vendor's marker, given
//! for aws-nitro: each path accepts it, which proves the forgery and its binding are
//! right, so the refusal is not an accident of a wrong nonce.

#[path = "common/forge.rs"]
mod forge;

use base64::Engine;
use forge::ForgingRoot;
use std::path::PathBuf;
use std::process::Command;
use time::OffsetDateTime;
use veritee_attest::{
    AnchorSource, Claims, ParsedCertificate, ReportData, TeeKind, TrustAnchors, VerifyError,
};
use veritee_channel::ChannelError;
use veritee_channel::client::{Appraiser, ClientSession, Offer, TenantKey, fresh_nonce};
use veritee_channel::peer::{Initiator, PeerAppraiser, PeerRequirement};
use veritee_client::{ClientError, WrappingKeyFile};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, Ed25519SigningKey};
use veritee_platform::Platform;
use veritee_platform::sim::{EnclaveImage, SimEnclave, SimMachine, SimVendor};
use veritee_policy::AppraisalPolicy;
use veritee_task::TaskError;
use veritee_task::messages::{
    AccessContext, AttestationSignal, CompartmentContext, INITIATION_VERSION, LimitsContext,
    TaskInitiation, initiation_digest, signal_binding,
};
use veritee_verify::Verifiers;

/// A production-looking policy for Nitro: aws-nitro only, with the TCB status every
/// Nitro document reports.
const NITRO_POLICY: &str = "version = 1\ntee = [\"aws-nitro\"]\ntcb_status = [\"NotReported\"]\n";

/// The report-data label of a responder's peer challenge (`veritee_channel::peer`,
/// private there; the host knows it, as it knows the protocol).
const PEER_RESPONDER_LABEL: &[u8] = b"veritee peer v1 responder";

/// A simulated node (vendor, machine, enclave) and its clients' trust.
struct World {
    dir: tempfile::TempDir,
    /// The node's vendor directory: `root.pem` beside `root.key`.
    vendor_dir: PathBuf,
    /// The simulated vendor's root as the host loads it, private key included.
    root: ForgingRoot,
    /// A private root without the simulated vendor's marker: the control's.
    private: ForgingRoot,
    /// What a simulated node's clients pass: the vendor's root.pem, untyped.
    client_anchors: TrustAnchors,
    /// The vendor's root.pem given for aws-nitro: refused all the same.
    sim_as_nitro: TrustAnchors,
    /// The private root given for aws-nitro: the control under which forgeries pass.
    nitro_anchors: TrustAnchors,
    /// An enclave of the node (the initiating side of a peer handshake).
    enclave: SimEnclave,
    policy: AppraisalPolicy,
    verifiers: Verifiers,
    now: OffsetDateTime,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let vendor_dir = dir.path().join("vendor");
    let mut vendor = SimVendor::init(&vendor_dir, now).unwrap();
    let machine = SimMachine::init(&dir.path().join("machine"), &mut vendor, None, now).unwrap();
    let enclave = machine
        .launch(&EnclaveImage::unsigned(b"replica", 1, 1, false))
        .unwrap();
    let client_root = ParsedCertificate::from_pem_chain(&vendor.root_pem().unwrap()).unwrap();
    let private = ForgingRoot::private(now - time::Duration::days(1)).expect("a private root");
    World {
        root: ForgingRoot::simulated_vendor(&vendor_dir).expect("the vendor's root"),
        client_anchors: TrustAnchors::untyped(client_root.clone()),
        sim_as_nitro: TrustAnchors::for_kind(TeeKind::Nitro, client_root),
        nitro_anchors: TrustAnchors::for_kind(TeeKind::Nitro, [private.certificate.clone()]),
        private,
        vendor_dir,
        dir,
        enclave,
        policy: AppraisalPolicy::parse(NITRO_POLICY).unwrap(),
        verifiers: Verifiers::default(),
        now,
    }
}

impl World {
    /// A Nitro document carrying `report_data`, dated a minute ago, forged under `root`.
    fn forge_under(&self, root: &ForgingRoot, report_data: &ReportData) -> Vec<u8> {
        forge::nitro_document(root, &report_data.0, self.now - time::Duration::minutes(1))
    }

    /// The host's forgery: under the simulated vendor's root.
    fn forge(&self, report_data: &ReportData) -> Vec<u8> {
        self.forge_under(&self.root, report_data)
    }

    /// The control: the same forgery under the private root.
    fn forge_private(&self, report_data: &ReportData) -> Vec<u8> {
        self.forge_under(&self.private, report_data)
    }

    /// The anchors each forgery under the simulated root must be refused with.
    fn refusing_anchors(&self) -> [(&'static str, &TrustAnchors); 2] {
        [
            ("untyped", &self.client_anchors),
            ("given for aws-nitro", &self.sim_as_nitro),
        ]
    }

    fn appraiser<'a>(&'a self, anchors: &'a TrustAnchors) -> Appraiser<'a> {
        Appraiser {
            verifiers: &self.verifiers,
            policy: &self.policy,
            trust_anchors: anchors,
            collateral: &[],
            at: self.now,
        }
    }

    /// The claims of a forgery under the private root, accepted with that root given
    /// for aws-nitro.
    fn assert_accepted_as_nitro(&self, claims: &Claims) {
        assert_eq!(claims.tee, TeeKind::Nitro);
        assert!(!claims.simulated);
        let anchor = claims
            .trust_anchor
            .as_ref()
            .expect("claims name their anchor");
        assert_eq!(anchor.kind, TeeKind::Nitro);
        assert_eq!(anchor.source, AnchorSource::Given);
        assert_eq!(anchor.sha256.0, self.private.sha256().to_vec());
    }
}

/// The verifier's refusal: the forged chain is not vouched for by an aws-nitro anchor,
/// and the simulated root vouches for simulated evidence only (whatever it was given
/// for).
fn assert_untrusted_nitro(err: &VerifyError) {
    assert!(
        matches!(
            err,
            VerifyError::UntrustedForKind {
                tee: TeeKind::Nitro,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("aws-nitro"), "{text}");
    assert!(text.contains("vouch for simulated evidence only"), "{text}");
    assert!(text.contains("Simulated Vendor Root"), "{text}");
}

/// The refusal as a channel error carries the verifier's.
fn assert_channel_refusal(err: &ChannelError) {
    match err {
        ChannelError::Evidence(e) => assert_untrusted_nitro(e),
        other => panic!("expected an evidence refusal, got {other:?}"),
    }
    assert!(err.to_string().contains("aws-nitro"), "{err}");
}

#[test]
fn sessions_refuse_forged_nitro_evidence() {
    let w = world();
    let tenant = TenantKey::generate().unwrap();
    let nonce = fresh_nonce().unwrap();
    let enclave_key = HpkeKeyPair::generate().public_key();
    // The binding the client checks, computed by the host from public values.
    let binding = ReportData::binding(
        veritee_channel::SESSION_LABEL,
        enclave_key.as_bytes(),
        &nonce,
    );
    let session_id = hex::encode([0x5e; veritee_channel::SESSION_ID_LEN]);
    let offer = |evidence| Offer {
        session_id: &session_id,
        enclave_public_key: enclave_key.as_bytes(),
        evidence,
    };

    let evidence = w.forge(&binding);
    for (how, anchors) in w.refusing_anchors() {
        let err =
            ClientSession::establish(&nonce, offer(&evidence), &w.appraiser(anchors), &tenant)
                .expect_err(how);
        assert_channel_refusal(&err);
    }

    let control = w.forge_private(&binding);
    let session = ClientSession::establish(
        &nonce,
        offer(&control),
        &w.appraiser(&w.nitro_anchors),
        &tenant,
    )
    .expect("the forgery passes under a private root given for aws-nitro");
    w.assert_accepted_as_nitro(session.claims());
}

#[test]
fn key_deployment_refuses_a_forged_wrapping_key() {
    let w = world();
    let wrapping_key = HpkeKeyPair::generate().public_key();
    let audit_key = EcdsaSigningKey::generate(EcdsaCurve::P256)
        .unwrap()
        .public_key_spki()
        .unwrap();
    let checkpoint_key = Ed25519SigningKey::generate().unwrap().public_key();
    let node_id = "node-forged";
    let nonce = [0x4e; 32];
    // The binding the client checks, computed with the protocol's public functions.
    let bound = veritee_channel::deploy::wrapping_key_binding(
        wrapping_key.as_bytes(),
        &veritee_channel::node_bound_keys(&audit_key, &checkpoint_key),
        node_id,
    );
    let binding = ReportData::binding(veritee_channel::deploy::WRAPPING_KEY_LABEL, &bound, &nonce);
    let b64 = base64::engine::general_purpose::STANDARD;
    let file = |evidence: Vec<u8>| WrappingKeyFile {
        node: "https://node.invalid".into(),
        node_id: node_id.into(),
        public_key: hex::encode(wrapping_key.as_bytes()),
        audit_public_key: b64.encode(&audit_key),
        checkpoint_public_key: hex::encode(checkpoint_key),
        nonce: hex::encode(nonce),
        evidence: b64.encode(evidence),
        fetched_at: "2026-01-01T00:00:00Z".into(),
    };

    let forged = file(w.forge(&binding));
    for (how, anchors) in w.refusing_anchors() {
        let err = forged.verify(&w.appraiser(anchors)).expect_err(how);
        match &err {
            ClientError::Channel(e) => assert_channel_refusal(e),
            other => panic!("{how}: expected a channel refusal, got {other:?}"),
        }
        assert!(err.to_string().contains("aws-nitro"), "{err}");
    }

    let attested = file(w.forge_private(&binding))
        .verify(&w.appraiser(&w.nitro_anchors))
        .expect("the forgery passes under a private root given for aws-nitro");
    w.assert_accepted_as_nitro(&attested.claims);
}

#[test]
fn tasks_refuse_a_forged_attestation_signal() {
    let w = world();
    let initiation = TaskInitiation {
        version: INITIATION_VERSION,
        task_id: "ab".repeat(16),
        nonce: "cd".repeat(32),
        client_kx: hex::encode(HpkeKeyPair::generate().public_key().as_bytes()),
        policy: NITRO_POLICY.into(),
        security_context: [(
            "main".to_string(),
            AccessContext {
                may_read: Vec::new(),
                releases: true,
            },
        )]
        .into(),
        compartments: vec![CompartmentContext {
            name: "main".into(),
            entry: "run".into(),
            inputs: Vec::new(),
            input_lengths: Vec::new(),
            keys: Vec::new(),
        }],
        limits: LimitsContext::default(),
    };
    let ttis = serde_json::to_vec(&initiation).unwrap();
    let skek = HpkeKeyPair::generate().public_key();
    let nonce = hex::decode(&initiation.nonce).unwrap();
    let load = 0;
    let binding = signal_binding(skek.as_bytes(), &nonce, &initiation_digest(&ttis), load);
    let signal = |evidence: Vec<u8>| AttestationSignal {
        task_id: initiation.task_id.clone(),
        skek: hex::encode(skek.as_bytes()),
        evidence: base64::engine::general_purpose::STANDARD.encode(evidence),
        load,
    };

    let forged = signal(w.forge(&binding));
    for (how, anchors) in w.refusing_anchors() {
        let err = forged
            .appraise(&initiation, &ttis, &w.appraiser(anchors))
            .expect_err(how);
        match &err {
            TaskError::Channel(e) => assert_channel_refusal(e),
            other => panic!("{how}: expected a channel refusal, got {other:?}"),
        }
        assert!(err.to_string().contains("aws-nitro"), "{err}");
    }

    let (_, claims) = signal(w.forge_private(&binding))
        .appraise(&initiation, &ttis, &w.appraiser(&w.nitro_anchors))
        .expect("the forgery passes under a private root given for aws-nitro");
    w.assert_accepted_as_nitro(&claims);
}

/// The challenge a responder would send to `hello`, built by the host with a Nitro
/// document forged under `root`:
/// "VTPC" 1 | session(16) | nonce_b(32) | pk_b(32) | len u32 | evidence.
fn forged_peer_challenge(w: &World, root: &ForgingRoot, hello: &[u8]) -> Vec<u8> {
    assert_eq!(&hello[..5], b"VTPH\x01");
    let nonce_a = &hello[5..37];
    let pk_b = HpkeKeyPair::generate().public_key();
    let evidence = w.forge_under(
        root,
        &ReportData::binding(PEER_RESPONDER_LABEL, pk_b.as_bytes(), nonce_a),
    );
    let mut challenge = b"VTPC\x01".to_vec();
    challenge.extend_from_slice(&[0x11; veritee_channel::SESSION_ID_LEN]);
    challenge.extend_from_slice(&[0x22; veritee_channel::NONCE_LEN]);
    challenge.extend_from_slice(pk_b.as_bytes());
    challenge.extend_from_slice(&u32::try_from(evidence.len()).unwrap().to_be_bytes());
    challenge.extend_from_slice(&evidence);
    challenge
}

/// How the node's enclave judges a peer: its anchors, a policy allowing aws-nitro.
fn peer_appraiser<'a>(w: &'a World, anchors: &'a TrustAnchors) -> PeerAppraiser<'a> {
    PeerAppraiser {
        verifiers: &w.verifiers,
        trust_anchors: anchors,
        policy: &w.policy,
        requirement: PeerRequirement::PolicyOnly,
        own: w.enclave.identity(),
        own_tee: TeeKind::Simulated,
        at: w.now,
    }
}

#[test]
fn replication_refuses_a_forged_peer() {
    let w = world();
    for (how, anchors) in w.refusing_anchors() {
        let (initiator, hello) = Initiator::start().unwrap();
        let challenge = forged_peer_challenge(&w, &w.root, &hello);
        let err = initiator
            .on_challenge(&challenge, &w.enclave, &peer_appraiser(&w, anchors))
            .expect_err(how);
        assert_channel_refusal(&err);
    }

    let (initiator, hello) = Initiator::start().unwrap();
    let challenge = forged_peer_challenge(&w, &w.private, &hello);
    let (_, claims, _) = initiator
        .on_challenge(
            &challenge,
            &w.enclave,
            &peer_appraiser(&w, &w.nitro_anchors),
        )
        .expect("the forgery passes under a private root given for aws-nitro");
    w.assert_accepted_as_nitro(&claims);
}

/// Runs `veritee verify --evidence F --trust-anchor ANCHOR --json`.
fn cli_verify(evidence: &std::path::Path, anchor: &str) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_veritee"))
        .arg("verify")
        .arg("--evidence")
        .arg(evidence)
        .args(["--trust-anchor", anchor, "--json"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

#[test]
fn cli_refuses_forged_nitro_evidence_under_the_simulated_root() {
    let w = world();
    let evidence = w.dir.path().join("forged-nitro.cose");
    std::fs::write(&evidence, w.forge(&ReportData([0x33; 64]))).unwrap();
    let root_pem = w.vendor_dir.join("root.pem");
    let root_pem = root_pem.to_str().unwrap();

    // Untyped, and given for aws-nitro: refused alike.
    for anchor in [root_pem.to_string(), format!("aws-nitro={root_pem}")] {
        let (status, json) = cli_verify(&evidence, &anchor);
        assert_eq!(status, Some(1), "{anchor}: {json}");
        assert_eq!(json["verified"], false, "{json}");
        assert_eq!(json["tee"], "aws-nitro", "{json}");
        let error = json["error"].as_str().expect("an error message");
        assert!(error.contains("aws-nitro"), "{error}");
        assert!(
            error.contains("vouch for simulated evidence only"),
            "{anchor}: {error}"
        );
    }

    // The control: the same forgery under a private root given for aws-nitro.
    let control = w.dir.path().join("private-nitro.cose");
    std::fs::write(&control, w.forge_private(&ReportData([0x33; 64]))).unwrap();
    let private_pem = w.dir.path().join("private-root.pem");
    std::fs::write(&private_pem, &w.private.pem).unwrap();
    let (status, json) = cli_verify(
        &control,
        &format!("aws-nitro={}", private_pem.to_str().unwrap()),
    );
    assert_eq!(status, Some(0), "{json}");
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(json["tee"], "aws-nitro", "{json}");
    assert_eq!(json["simulated"], false, "{json}");
    assert_eq!(json["trust_anchor"]["source"], "given", "{json}");
    assert_eq!(json["trust_anchor"]["kind"], "aws-nitro", "{json}");
    assert_eq!(
        json["trust_anchor"]["sha256"],
        hex::encode(w.private.sha256()),
        "{json}"
    );
}
