//! Client sessions and peer sessions over the simulated TEE, with a host in the middle
//! that replays, swaps and tampers.

use time::OffsetDateTime;
use veritee_attest::{ParsedCertificate, TeeKind, TrustAnchors};
use veritee_channel::ChannelError;
use veritee_channel::client::{Appraiser, ClientSession, Offer, TenantKey, fresh_nonce};
use veritee_channel::enclave::{PendingSession, SessionOffer};
use veritee_channel::peer::{Initiator, PeerAppraiser, PeerRequirement, Responder};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_platform::Platform;
use veritee_platform::sim::{EnclaveImage, SimEnclave, SimMachine, SimVendor};
use veritee_policy::AppraisalPolicy;
use veritee_verify::Verifiers;

struct World {
    _dir: tempfile::TempDir,
    machine: SimMachine,
    other_machine: SimMachine,
    anchors: TrustAnchors,
    signer: EcdsaSigningKey,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let mut vendor = SimVendor::init(&dir.path().join("v"), now).unwrap();
    let machine = SimMachine::init(&dir.path().join("m"), &mut vendor, None, now).unwrap();
    let other_machine = SimMachine::init(&dir.path().join("m2"), &mut vendor, None, now).unwrap();
    let anchors = ParsedCertificate::from_pem_chain(&vendor.root_pem().unwrap()).unwrap();
    World {
        _dir: dir,
        machine,
        other_machine,
        anchors: TrustAnchors::untyped(anchors),
        signer: EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap(),
    }
}

impl World {
    fn enclave(&self, code: &[u8]) -> SimEnclave {
        self.machine
            .launch(&EnclaveImage::signed(code, &self.signer, 1, 1, false).unwrap())
            .unwrap()
    }
}

fn dev_policy() -> AppraisalPolicy {
    AppraisalPolicy::parse("version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n").unwrap()
}

fn appraiser<'a>(
    verifiers: &'a Verifiers,
    policy: &'a AppraisalPolicy,
    anchors: &'a TrustAnchors,
) -> Appraiser<'a> {
    Appraiser {
        verifiers,
        policy,
        trust_anchors: anchors,
        collateral: &[],
        at: OffsetDateTime::now_utc(),
    }
}

fn offer(o: &SessionOffer) -> Offer<'_> {
    Offer {
        session_id: &o.session_id,
        enclave_public_key: &o.enclave_public_key,
        evidence: &o.evidence,
    }
}

#[test]
fn session_round_trips_and_rejects_replay_and_tampering() {
    let w = world();
    let enclave = w.enclave(b"app");
    let tenant = TenantKey::generate().unwrap();
    let verifiers = Verifiers::default();
    let policy = dev_policy();
    let nonce = fresh_nonce().unwrap();
    let (pending, o) =
        PendingSession::offer(&tenant.tenant_id().unwrap(), &nonce, &enclave).unwrap();
    let mut client = ClientSession::establish(
        &nonce,
        offer(&o),
        &appraiser(&verifiers, &policy, &w.anchors),
        &tenant,
    )
    .unwrap();
    assert!(client.claims().simulated);

    let hello = client.seal_request(b"canary-request-0").unwrap();
    assert!(!hello.windows(6).any(|x| x == b"canary"));
    let (mut server, first) = pending
        .accept(&hello, &tenant.public_key_spki().unwrap())
        .unwrap();
    assert_eq!(first.expose(), b"canary-request-0");
    assert_eq!(server.tenant_id(), tenant.tenant_id().unwrap());
    let reply = server.seal_reply(b"reply-0").unwrap();
    assert_eq!(client.open_reply(&reply).unwrap().expose(), b"reply-0");

    let request = client.seal_request(b"request-1").unwrap();
    // A host flipping any byte produces a clean rejection.
    for i in 0..request.len() {
        let mut t = request.clone();
        t[i] ^= 0x40;
        let mut probe_session_fails = true;
        if let Ok(p) = server.open_request(&t) {
            probe_session_fails = p.expose() != b"request-1";
        }
        assert!(probe_session_fails, "flip at {i} accepted");
    }
    assert_eq!(
        server.open_request(&request).unwrap().expose(),
        b"request-1"
    );
    // Replaying it is refused.
    assert!(matches!(
        server.open_request(&request),
        Err(ChannelError::Rejected(_))
    ));
    let reply = server.seal_reply(b"reply-1").unwrap();
    let mut tampered = reply.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        client.open_reply(&tampered),
        Err(ChannelError::Rejected(_))
    ));
}

#[test]
fn replayed_hello_from_an_old_session_is_refused() {
    let w = world();
    let enclave = w.enclave(b"app");
    let tenant = TenantKey::generate().unwrap();
    let verifiers = Verifiers::default();
    let policy = dev_policy();
    let spki = tenant.public_key_spki().unwrap();
    let nonce = fresh_nonce().unwrap();
    let (_old_pending, o) = PendingSession::offer("t", &nonce, &enclave).unwrap();
    let mut old = ClientSession::establish(
        &nonce,
        offer(&o),
        &appraiser(&verifiers, &policy, &w.anchors),
        &tenant,
    )
    .unwrap();
    let old_hello = old.seal_request(b"transfer").unwrap();
    let (new_pending, _) = PendingSession::offer("t", &fresh_nonce().unwrap(), &enclave).unwrap();
    assert!(new_pending.accept(&old_hello, &spki).is_err());
}

#[test]
fn another_tenant_cannot_take_over_a_session() {
    let w = world();
    let enclave = w.enclave(b"app");
    let alice = TenantKey::generate().unwrap();
    let mallory = TenantKey::generate().unwrap();
    let verifiers = Verifiers::default();
    let policy = dev_policy();
    let nonce = fresh_nonce().unwrap();
    let (pending, o) =
        PendingSession::offer(&alice.tenant_id().unwrap(), &nonce, &enclave).unwrap();
    let mut c = ClientSession::establish(
        &nonce,
        offer(&o),
        &appraiser(&verifiers, &policy, &w.anchors),
        &mallory,
    )
    .unwrap();
    let hello = c.seal_request(b"x").unwrap();
    assert!(matches!(
        pending.accept(&hello, &alice.public_key_spki().unwrap()),
        Err(ChannelError::TenantAuthentication)
    ));
}

#[test]
fn policy_mismatch_swapped_key_swapped_evidence_and_stale_nonce_are_refused() {
    let w = world();
    let enclave = w.enclave(b"app");
    let tenant = TenantKey::generate().unwrap();
    let verifiers = Verifiers::default();
    let nonce = fresh_nonce().unwrap();
    let (_p, o) = PendingSession::offer("t", &nonce, &enclave).unwrap();

    let hardware_only = AppraisalPolicy::default_hardware();
    let err = ClientSession::establish(
        &nonce,
        offer(&o),
        &appraiser(&verifiers, &hardware_only, &w.anchors),
        &tenant,
    )
    .unwrap_err();
    assert!(
        matches!(err, ChannelError::Policy(ref r) if r.contains("allow_simulated")),
        "{err}"
    );

    let policy = dev_policy();
    let a = appraiser(&verifiers, &policy, &w.anchors);
    // The host substitutes its own key.
    let mut swapped_key = o.clone();
    swapped_key.enclave_public_key = veritee_crypto::hpke::HpkeKeyPair::generate()
        .public_key()
        .as_bytes()
        .to_vec();
    let err = ClientSession::establish(&nonce, offer(&swapped_key), &a, &tenant).unwrap_err();
    assert!(err.to_string().contains("report data mismatch"), "{err}");
    // The host substitutes evidence from another session (another key, another nonce).
    let (_p2, o2) = PendingSession::offer("t", &fresh_nonce().unwrap(), &enclave).unwrap();
    let mut swapped_evidence = o.clone();
    swapped_evidence.evidence = o2.evidence.clone();
    assert!(ClientSession::establish(&nonce, offer(&swapped_evidence), &a, &tenant).is_err());
    // The client's nonce is not the one the evidence covers.
    assert!(ClientSession::establish(&fresh_nonce().unwrap(), offer(&o), &a, &tenant).is_err());
    // Pinning another measurement refuses this enclave.
    let pinned = AppraisalPolicy::parse(&format!(
        "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n[measurements]\nmeasurement = [\"{}\"]\n",
        "00".repeat(48)
    ))
    .unwrap();
    let err = ClientSession::establish(
        &nonce,
        offer(&o),
        &appraiser(&verifiers, &pinned, &w.anchors),
        &tenant,
    )
    .unwrap_err();
    assert!(matches!(err, ChannelError::Policy(_)), "{err}");
}

fn peer_appraiser<'a>(
    verifiers: &'a Verifiers,
    anchors: &'a TrustAnchors,
    policy: &'a AppraisalPolicy,
    requirement: PeerRequirement,
    own: &'a SimEnclave,
) -> PeerAppraiser<'a> {
    PeerAppraiser {
        verifiers,
        trust_anchors: anchors,
        policy,
        requirement,
        own: own.identity(),
        own_tee: TeeKind::Simulated,
        at: OffsetDateTime::now_utc(),
    }
}

fn handshake(
    w: &World,
    a: &SimEnclave,
    b: &SimEnclave,
    requirement: PeerRequirement,
) -> Result<
    (
        veritee_channel::peer::PeerSession,
        veritee_channel::peer::PeerSession,
    ),
    ChannelError,
> {
    let verifiers = Verifiers::default();
    let policy = dev_policy();
    let (initiator, hello) = Initiator::start()?;
    let (responder, challenge) = Responder::on_hello(&hello, b)?;
    let (sa, _claims_b, finish) = initiator.on_challenge(
        &challenge,
        a,
        &peer_appraiser(&verifiers, &w.anchors, &policy, requirement.clone(), a),
    )?;
    let (sb, _claims_a) = responder.on_finish(
        &finish,
        &peer_appraiser(&verifiers, &w.anchors, &policy, requirement, b),
    )?;
    Ok((sa, sb))
}

#[test]
fn peers_with_the_same_signer_on_different_machines_connect() {
    let w = world();
    let a = w.enclave(b"app v1");
    let b = w
        .other_machine
        .launch(&EnclaveImage::signed(b"app v2", &w.signer, 1, 2, false).unwrap())
        .unwrap();
    let (mut sa, mut sb) = handshake(&w, &a, &b, PeerRequirement::SameSigner).unwrap();
    let m = sa.seal(b"key material").unwrap();
    assert_eq!(sb.open(&m).unwrap().expose(), b"key material");
    assert!(sb.open(&m).is_err(), "replay accepted");
    let r = sb.seal(b"ack").unwrap();
    assert_eq!(sa.open(&r).unwrap().expose(), b"ack");
    // Same code required: v1 and v2 differ.
    let err = handshake(&w, &a, &b, PeerRequirement::SameMeasurement).unwrap_err();
    assert!(matches!(err, ChannelError::Policy(_)), "{err}");
}

#[test]
fn peers_with_another_signer_are_refused_on_both_sides() {
    let w = world();
    let a = w.enclave(b"app");
    let stranger = EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap();
    let b = w
        .machine
        .launch(&EnclaveImage::signed(b"app", &stranger, 1, 1, false).unwrap())
        .unwrap();
    assert!(matches!(
        handshake(&w, &a, &b, PeerRequirement::SameSigner),
        Err(ChannelError::Policy(_))
    ));
    assert!(matches!(
        handshake(&w, &b, &a, PeerRequirement::SameSigner),
        Err(ChannelError::Policy(_))
    ));
}

#[test]
fn tampered_or_truncated_handshakes_are_refused() {
    let w = world();
    let a = w.enclave(b"app");
    let b = w.enclave(b"app");
    let verifiers = Verifiers::default();
    let policy = dev_policy();
    let (initiator, hello) = Initiator::start().unwrap();
    let (_responder, challenge) = Responder::on_hello(&hello, &b).unwrap();
    for cut in [0, 4, 5, 20, challenge.len() - 1] {
        let (i, _) = Initiator::start().unwrap();
        assert!(
            i.on_challenge(
                &challenge[..cut],
                &a,
                &peer_appraiser(
                    &verifiers,
                    &w.anchors,
                    &policy,
                    PeerRequirement::SameMeasurement,
                    &a
                )
            )
            .is_err()
        );
    }
    let mut tampered = challenge.clone();
    tampered[30] ^= 1; // inside nonce_b: the transcript changes, evidence still verifies, but keys diverge
    let mut tampered_pk = challenge.clone();
    tampered_pk[60] ^= 1; // inside pk_b: report data no longer matches
    let err = initiator
        .on_challenge(
            &tampered_pk,
            &a,
            &peer_appraiser(
                &verifiers,
                &w.anchors,
                &policy,
                PeerRequirement::SameMeasurement,
                &a,
            ),
        )
        .unwrap_err();
    assert!(err.to_string().contains("report data mismatch"), "{err}");
    assert!(Responder::on_hello(b"VTPH\x02", &b).is_err());
}
