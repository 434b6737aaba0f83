//! Replication between enclaves: a key goes only where the policy it was deployed
//! under allows, the receiving enclave keeps the tenant's proof of deployment, and a
//! host that sets an enclave's clock back cannot make expired collateral pass.

mod common;

use common::*;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_channel::deploy::ReleasePolicy;
use veritee_channel::ops::Request;
use veritee_client::{WrappingKeyFile, wrap_for_node};
use veritee_proto::api::{ImportKeyRequest, paths};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

const CODE: &[u8] = b"the node enclave, version 1";
const OTHER_CODE: &[u8] = b"the node enclave, patched differently";

/// A node: an enclave service and its host, reachable by peers at `url`.
fn appraiser_parts(world: &World) -> (veritee_verify::Verifiers, veritee_attest::TrustAnchors) {
    (
        veritee_verify::Verifiers::default(),
        veritee_attest::TrustAnchors::untyped(world.anchors.clone()),
    )
}

/// Deploys a fresh key named `name` to `node` under `policy`; returns its check value.
fn deploy(
    world: &World,
    node: &mut Node,
    tenant: &TenantKey,
    name: &str,
    policy: &veritee_policy::AppraisalPolicy,
) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let nonce = [3u8; 32];
    let EnclaveReply::WrappingKey {
        public_key,
        audit_public_key,
        checkpoint_public_key,
        node_id,
        evidence,
    } = node
        .service
        .handle(
            EnclaveCall::WrappingKey {
                nonce: nonce.to_vec(),
            },
            &mut node.host,
        )
        .expect("wrapping key")
    else {
        panic!("not a wrapping key");
    };
    let file = WrappingKeyFile {
        node: node.url.clone(),
        node_id,
        public_key: hex::encode(public_key),
        audit_public_key: b64.encode(audit_public_key),
        checkpoint_public_key: hex::encode(checkpoint_public_key),
        nonce: hex::encode(nonce),
        evidence: b64.encode(evidence),
        fetched_at: String::new(),
    };
    let (verifiers, anchors) = appraiser_parts(world);
    let dev = veritee_policy::AppraisalPolicy::parse(&world.policy()).expect("policy");
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
        serde_json::to_vec(policy).expect("policy json"),
        &key,
    )
    .expect("wrap");
    let body = serde_json::to_vec(&ImportKeyRequest {
        wrapped: wrapped.wrapped.clone(),
    })
    .expect("json");
    let aud = audience(&node.service, &mut node.host);
    node.service
        .handle(
            EnclaveCall::ImportKey {
                request: sign(&aud, tenant, "POST", &paths::keys(), &body),
                body,
            },
            &mut node.host,
        )
        .expect("imported");
    wrapped.key_check
}

/// Asks `node` (over an attested session) to hold key `name`: its check value, or the
/// enclave's refusal.
fn ensure(
    world: &World,
    node: &mut Node,
    tenant: &TenantKey,
    name: &str,
) -> Result<String, String> {
    use veritee_channel::client::{ClientSession, Offer, fresh_nonce};
    let aud = audience(&node.service, &mut node.host);
    let nonce = fresh_nonce().expect("nonce");
    let body = format!("{{\"nonce\":\"{}\"}}", hex::encode(nonce)).into_bytes();
    let EnclaveReply::SessionOpened {
        session_id,
        enclave_public_key,
        evidence,
    } = node
        .service
        .handle(
            EnclaveCall::OpenSession {
                request: sign(&aud, tenant, "POST", &paths::sessions(), &body),
                body,
            },
            &mut node.host,
        )
        .expect("session")
    else {
        panic!("no session");
    };
    let (verifiers, anchors) = appraiser_parts(world);
    let dev = veritee_policy::AppraisalPolicy::parse(&world.policy()).expect("policy");
    let mut session = ClientSession::establish(
        &nonce,
        Offer {
            session_id: &session_id,
            enclave_public_key: &enclave_public_key,
            evidence: &evidence,
        },
        &Appraiser {
            verifiers: &verifiers,
            policy: &dev,
            trust_anchors: &anchors,
            collateral: &[],
            at: time::OffsetDateTime::now_utc(),
        },
        tenant,
    )
    .expect("established");
    let message = session
        .seal_request(
            Request::EnsureKey { name: name.into() }
                .encode()
                .expect("encode")
                .expose(),
        )
        .expect("seal");
    let EnclaveReply::Message { message } = node
        .service
        .handle(
            EnclaveCall::SessionMessage {
                session_id,
                message,
            },
            &mut node.host,
        )
        .expect("message")
    else {
        panic!("no reply");
    };
    match veritee_channel::ops::Response::decode(&session.open_reply(&message).expect("open"))
        .expect("decode")
    {
        veritee_channel::ops::Response::KeyReady(check) => Ok(check),
        veritee_channel::ops::Response::Error { message, .. } => Err(message),
        other => panic!("{other:?}"),
    }
}

fn measurement_of(world: &World, code: &[u8]) -> String {
    let image = veritee_platform::sim::EnclaveImage::signed(code, &world.signer, 1, 1, false)
        .expect("image");
    hex::encode(image.measurement)
}

#[test]
fn a_replica_goes_only_where_the_deployment_policy_allows() {
    let world = World::new(&["m1", "m2", "m3", "m4"]);
    let mut a = Node::new(&world, "m1", CODE, "a");
    let mut b = Node::new(&world, "m2", CODE, "b");
    let mut c = Node::new(&world, "m3", OTHER_CODE, "c");
    peer(&b.host, &a);
    peer(&c.host, &a);
    let tenant = TenantKey::generate().expect("key");
    for n in [&mut a, &mut b, &mut c] {
        register(&n.service, &mut n.host, &tenant);
    }
    // Deployed under a policy naming the measurement of CODE.
    let mut pinned = veritee_policy::AppraisalPolicy::parse(&world.policy()).expect("policy");
    pinned.measurements.insert(
        "measurement".into(),
        vec![veritee_attest::HexBytes(
            hex::decode(measurement_of(&world, CODE)).expect("hex"),
        )],
    );
    let check = deploy(&world, &mut a, &tenant, "orders", &pinned);
    // B runs that code (same signer, another machine): it gets the key.
    assert_eq!(
        ensure(&world, &mut b, &tenant, "orders").expect("replicated"),
        check
    );
    // C has the same signer but other code: the policy the tenant deployed under says
    // no, though the release relation (same signer) alone would say yes.
    let refused = ensure(&world, &mut c, &tenant, "orders").expect_err("released to other code");
    assert!(refused.contains("deployment policy"), "{refused}");
    assert!(refused.contains("measurement"), "{refused}");
    // B keeps the tenant's proof of deployment with its copy: it can hand it on.
    let mut d = Node::new(&world, "m4", CODE, "d");
    peer(&d.host, &b);
    register(&d.service, &mut d.host, &tenant);
    assert_eq!(
        ensure(&world, &mut d, &tenant, "orders").expect("second hop"),
        check
    );
}

#[test]
fn a_clock_set_back_does_not_make_expired_collateral_pass() {
    // The vendor published this collateral 40 days ago; it expired 10 days ago.
    let dir = tempfile::tempdir().expect("tempdir");
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(40);
    let mut vendor =
        veritee_platform::sim::SimVendor::init(&dir.path().join("vendor"), then).expect("vendor");
    veritee_platform::sim::SimMachine::init(&dir.path().join("m1"), &mut vendor, None, then)
        .expect("m1");
    veritee_platform::sim::SimMachine::init(&dir.path().join("m2"), &mut vendor, None, then)
        .expect("m2");
    let world = World {
        anchors: veritee_attest::ParsedCertificate::from_pem_chain(
            &vendor.root_pem().expect("root"),
        )
        .expect("anchor"),
        signer: veritee_crypto::sign::EcdsaSigningKey::generate(
            veritee_crypto::sign::EcdsaCurve::P384,
        )
        .expect("signer"),
        dir,
    };
    fn set_back() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() - time::Duration::days(35)
    }
    let a = Node::new(&world, "m1", CODE, "a");
    // B first runs with the host's true clock, long enough to write state (another
    // tenant registers): the time it saw is sealed with that state.
    let b_host = MemoryHost::default();
    let seen_before = time::OffsetDateTime::now_utc();
    {
        let first_run = world.enclave("m2", CODE);
        register(
            &first_run,
            &mut b_host.clone(),
            &TenantKey::generate().expect("key"),
        );
    }
    let seen_after = time::OffsetDateTime::now_utc();
    // Restarted, B's host sets the clock back 35 days, to when A's collateral was
    // still valid.
    let mut b = Node {
        url: "b".into(),
        service: std::sync::Arc::new(
            world.enclave_with("m2", CODE, |s| s.with_host_clock(set_back)),
        ),
        host: b_host,
    };
    peer(&b.host, &a);
    let tenant = TenantKey::generate().expect("key");
    let mut a_host = a.host.clone();
    register(&a.service, &mut a_host, &tenant);
    // B does not know the tenant and asks A. B's time is never earlier than the time
    // it sealed before the restart: A's collateral is expired at B's time.
    let aud = audience(&b.service, &mut b.host);
    let f = refused(b.service.handle(
        EnclaveCall::OpenSession {
            request: sign(&aud, &tenant, "POST", &paths::sessions(), b"{}"),
            body: b"{}".to_vec(),
        },
        &mut b.host,
    ));
    assert!(f.message.contains("not valid at"), "{}", f.message);
    let day = |t: time::OffsetDateTime| veritee_enclave::clock::rfc3339(t)[..10].to_string();
    assert!(
        f.message.contains(&day(seen_before)) || f.message.contains(&day(seen_after)),
        "not appraised at the time B had seen: {}",
        f.message
    );
    assert!(
        !f.message.contains(&day(set_back())),
        "appraised at the host's clock: {}",
        f.message
    );
}

#[test]
fn a_newer_build_never_releases_a_key_to_an_older_one() {
    let world = World::new(&["m1", "m2", "m3"]);
    let versioned =
        |machine: &str, svn: u16, url: &str| Node::of(world.enclave_at(machine, CODE, svn), url);
    let mut newer = versioned("m1", 2, "newer");
    let mut older = versioned("m2", 1, "older");
    let mut upgraded = versioned("m3", 2, "upgraded");
    peer(&older.host, &newer);
    peer(&upgraded.host, &older);
    let tenant = TenantKey::generate().expect("key");
    for n in [&mut newer, &mut older, &mut upgraded] {
        register(&n.service, &mut n.host, &tenant);
    }
    let policy = veritee_policy::AppraisalPolicy::parse(&world.policy()).expect("policy");
    let check = deploy(&world, &mut newer, &tenant, "orders", &policy);
    // Same signer and product, but security version 1 asking version 2: refused, as
    // sealing would refuse it.
    let refused =
        ensure(&world, &mut older, &tenant, "orders").expect_err("released to an older build");
    assert!(refused.contains("security version 1, older"), "{refused}");
    // The other way round is an upgrade: a newer build gets what an older one holds.
    let check_old = deploy(&world, &mut older, &tenant, "invoices", &policy);
    assert_eq!(
        ensure(&world, &mut upgraded, &tenant, "invoices").expect("upgrade"),
        check_old
    );
    assert_ne!(check, check_old);
}

/// A host asks its enclave for a tenant it does not know (one registered at a peer):
/// the enclave answers with the key its attested peer holds, whose digest is the id;
/// a malformed id reaches no peer, and a tenant no one knows is refused.
#[test]
fn a_tenant_registered_at_a_peer_is_learned_by_its_id_only() {
    use veritee_proto::ipc::FailureKind;
    let world = World::new(&["m1", "m2"]);
    let mut a = Node::new(&world, "m1", CODE, "a");
    let mut b = Node::new(&world, "m2", CODE, "b");
    peer(&b.host, &a);
    let tenant = TenantKey::generate().expect("key");
    register(&a.service, &mut a.host, &tenant);
    let id = tenant.tenant_id().expect("id");
    let asked = |node: &mut Node, tenant: &str| {
        node.service.handle(
            EnclaveCall::TenantKey {
                tenant: tenant.into(),
            },
            &mut node.host,
        )
    };
    match asked(&mut b, &id) {
        Ok(EnclaveReply::TenantKey { public_key }) => {
            assert_eq!(public_key, tenant.public_key_spki().expect("spki"));
        }
        other => panic!("{other:?}"),
    }
    for bad in ["../x", "", &id.to_uppercase(), &format!("{id}00")] {
        let f = asked(&mut b, bad).expect_err("a malformed id");
        assert_eq!(f.kind, FailureKind::BadRequest, "{bad}: {}", f.message);
        assert!(f.message.contains("not a tenant id"), "{}", f.message);
    }
    let unknown = "0".repeat(32);
    let f = asked(&mut b, &unknown).expect_err("no one knows it");
    assert!(f.message.contains("unknown tenant"), "{}", f.message);
    // A node without peers asks no one.
    let f = asked(&mut a, &unknown).expect_err("no peers");
    assert_eq!(f.kind, FailureKind::NotFound, "{}", f.message);
}
