//! Officers and quorums (flow 3): once a role has officers, its actions need K of
//! their approvals on a token the enclave issued for exactly that action, target and
//! tenant, single-use and expiring; the domain officers guard the officer list itself;
//! security officers disable keys for good; and no quorum can approve exporting a key
//! or changing a partition's access list.

mod common;

use common::import::*;
use common::*;
use std::sync::atomic::{AtomicI64, Ordering};
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::SecretBytes;
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_enclave::EnclaveService;
use veritee_import::keys::KeyRef;
use veritee_import::quorum::{QuorumProof, approve};
use veritee_proto::api::{
    DeletePartitionRequest, DisableKeyRequest, QuorumTokenRequest, RegisterOfficerRequest, paths,
};
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind, ImportCall, ImportReply,
};

const CODE: &[u8] = b"the node enclave, version 1";

static AHEAD_SECS: AtomicI64 = AtomicI64::new(0);
fn moved_clock() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(AHEAD_SECS.load(Ordering::SeqCst))
}

fn token(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    action: &str,
    target: &str,
) -> Result<Vec<u8>, EnclaveFailure> {
    let aud = audience(service, host);
    let body = serde_json::to_vec(&QuorumTokenRequest {
        action: action.into(),
        target: target.into(),
    })
    .expect("json");
    let request = sign(&aud, tenant, "POST", &paths::quorum_tokens(), &body);
    match service.handle(
        EnclaveCall::Import(ImportCall::QuorumToken { request, body }),
        host,
    )? {
        EnclaveReply::Import(ImportReply::QuorumToken(t)) => Ok(t),
        other => panic!("{other:?}"),
    }
}

fn register_officer(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    role: &str,
    officer: &Ed25519SigningKey,
    quorum: u32,
    approvals: Option<QuorumProof>,
) -> Result<EnclaveReply, EnclaveFailure> {
    let aud = audience(service, host);
    let body = serde_json::to_vec(&RegisterOfficerRequest {
        role: role.into(),
        public_key: hex::encode(officer.public_key()),
        quorum,
        approvals,
    })
    .expect("json");
    let request = sign(&aud, tenant, "POST", &paths::officers(), &body);
    service.handle(
        EnclaveCall::Import(ImportCall::RegisterOfficer { request, body }),
        host,
    )
}

fn proof(token: &[u8], officers: &[&Ed25519SigningKey]) -> QuorumProof {
    QuorumProof {
        token: hex::encode(token),
        approvals: officers
            .iter()
            .map(|o| approve(o, token).expect("approve"))
            .collect(),
    }
}

fn expect(what: &str, result: Result<EnclaveReply, EnclaveFailure>, reason: &str) {
    let f = refused(result);
    assert_eq!(f.kind, FailureKind::Unauthorized, "{what}: {}", f.message);
    assert!(f.message.contains(reason), "{what}: {}", f.message);
}

#[test]
fn partition_actions_need_k_of_n_officers_on_a_fresh_single_use_token() {
    let world = World::new(&["m1"]);
    let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(moved_clock));
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let bob = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &bob);
    let officers: Vec<Ed25519SigningKey> = (0..3)
        .map(|_| Ed25519SigningKey::generate().expect("key"))
        .collect();
    let (o1, o2, o3) = (&officers[0], &officers[1], &officers[2]);

    // Without partition officers the tenant acts alone, and no token is issued.
    create_partition(&service, &mut host, &alice, "before");
    let f = refused(
        token(&service, &mut host, &alice, "partition.create", "x")
            .map(|_| EnclaveReply::Import(ImportReply::Done)),
    );
    assert!(
        f.message.contains("no partition officers are registered"),
        "{}",
        f.message
    );

    // Two partition officers, a quorum of two (registered by the tenant: the domain
    // role has no officers yet).
    // Bob has the same officers: a token of Alice's is still no good for him.
    for o in [o1, o2] {
        register_officer(&service, &mut host, &alice, "partition", o, 2, None).expect("register");
        register_officer(&service, &mut host, &bob, "partition", o, 2, None).expect("register");
    }
    expect(
        "no approvals",
        try_create_partition(&service, &mut host, &alice, "p", None),
        "needs the approval of 2 of the 2 partition officers",
    );
    let t = token(&service, &mut host, &alice, "partition.create", "p").expect("token");
    expect(
        "a quorum of K-1",
        try_create_partition(&service, &mut host, &alice, "p", Some(proof(&t, &[o1]))),
        "only 1 approved",
    );
    expect(
        "one officer twice",
        try_create_partition(&service, &mut host, &alice, "p", Some(proof(&t, &[o1, o1]))),
        "only 1 approved",
    );
    expect(
        "a stranger's approval",
        try_create_partition(&service, &mut host, &alice, "p", Some(proof(&t, &[o1, o3]))),
        "not a registered officer",
    );
    expect(
        "the token used for another target",
        try_create_partition(&service, &mut host, &alice, "q", Some(proof(&t, &[o1, o2]))),
        "not partition.create on \"q\"",
    );
    expect(
        "the token used by another tenant",
        try_create_partition(&service, &mut host, &bob, "p", Some(proof(&t, &[o1, o2]))),
        "by tenant",
    );
    let mut forged = t.clone();
    let n = forged.len() - 2;
    forged[n] ^= 1;
    expect(
        "a token the enclave did not issue",
        try_create_partition(
            &service,
            &mut host,
            &alice,
            "p",
            Some(proof(&forged, &[o1, o2])),
        ),
        "not issued by this enclave",
    );
    try_create_partition(&service, &mut host, &alice, "p", Some(proof(&t, &[o1, o2])))
        .expect("K of N approved");
    // A refused creation (the partition exists) spends no approvals: checked first.
    let spare = token(&service, &mut host, &alice, "partition.create", "p").expect("token");
    let f = refused(try_create_partition(
        &service,
        &mut host,
        &alice,
        "p",
        Some(proof(&spare, &[o1, o2])),
    ));
    assert_eq!(f.kind, FailureKind::Conflict, "{}", f.message);
    // Gone again (with its own quorum), "p" could be made anew: not with a used token.
    let d = token(&service, &mut host, &alice, "partition.delete", "p").expect("token");
    let aud = audience(&service, &mut host);
    let body = serde_json::to_vec(&DeletePartitionRequest {
        quorum: Some(proof(&d, &[o1, o2])),
    })
    .expect("json");
    let request = sign(&aud, &alice, "DELETE", &paths::partition("p"), &body);
    service
        .handle(
            EnclaveCall::Import(ImportCall::DeletePartition {
                request,
                name: "p".into(),
                body,
            }),
            &mut host,
        )
        .expect("deleted by the quorum");
    expect(
        "the token reused",
        try_create_partition(&service, &mut host, &alice, "p", Some(proof(&t, &[o1, o2]))),
        "used already",
    );

    // No quorum can export a key or change an access list: no token for it exists.
    for action in ["key.export", "partition.access-list"] {
        let f = refused(
            token(&service, &mut host, &alice, action, "p")
                .map(|_| EnclaveReply::Import(ImportReply::Done)),
        );
        assert_eq!(f.kind, FailureKind::Unauthorized, "{}", f.message);
        assert!(f.message.contains("no quorum can approve"), "{}", f.message);
    }

    // A domain officer: from now on officers are registered only with its approval.
    let d1 = Ed25519SigningKey::generate().expect("key");
    register_officer(&service, &mut host, &alice, "domain", &d1, 1, None)
        .expect("bootstrap domain");
    expect(
        "the tenant alone",
        register_officer(&service, &mut host, &alice, "partition", o3, 2, None),
        "officer.register needs the approval of 1 of the 1 domain officers",
    );
    let target = format!("partition:{}:2", hex::encode(o3.public_key()));
    let t = token(&service, &mut host, &alice, "officer.register", &target).expect("token");
    expect(
        "a partition officer's approval",
        register_officer(
            &service,
            &mut host,
            &alice,
            "partition",
            o3,
            2,
            Some(proof(&t, &[o1])),
        ),
        "not a registered officer",
    );
    register_officer(
        &service,
        &mut host,
        &alice,
        "partition",
        o3,
        2,
        Some(proof(&t, &[&d1])),
    )
    .expect("with the domain quorum");
    let aud = audience(&service, &mut host);
    let request = sign(&aud, &alice, "GET", &paths::officers(), &[]);
    let EnclaveReply::Import(ImportReply::Officers(roles)) = service
        .handle(
            EnclaveCall::Import(ImportCall::ListOfficers { request }),
            &mut host,
        )
        .expect("list")
    else {
        panic!("no list");
    };
    let counts: Vec<(String, u32, usize)> = roles
        .iter()
        .map(|(r, k, o)| (r.clone(), *k, o.len()))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("domain".to_string(), 1, 1),
            ("partition".to_string(), 2, 3)
        ]
    );
    // The quorum is part of what was approved: the domain officer's approval for
    // o3 at quorum 2 does not lower the partition quorum to 1, and a domain quorum
    // its officers cannot reach (which would hand registrations back to the tenant
    // alone) is refused before any approval is spent.
    let t = token(&service, &mut host, &alice, "officer.register", &target).expect("token");
    expect(
        "a quorum other than the approved one",
        register_officer(
            &service,
            &mut host,
            &alice,
            "partition",
            o3,
            1,
            Some(proof(&t, &[&d1])),
        ),
        "the quorum token is for officer.register on",
    );
    let d1_target = format!("domain:{}:2", hex::encode(d1.public_key()));
    let t2 = token(&service, &mut host, &alice, "officer.register", &d1_target).expect("token");
    let f = refused(register_officer(
        &service,
        &mut host,
        &alice,
        "domain",
        &d1,
        2,
        Some(proof(&t2, &[&d1])),
    ));
    assert_eq!(f.kind, FailureKind::BadRequest, "{}", f.message);
    assert!(f.message.contains("could never act"), "{}", f.message);
    expect(
        "the tenant alone, after a refused domain change",
        register_officer(&service, &mut host, &alice, "partition", o3, 1, None),
        "officer.register needs the approval of 1 of the 1 domain officers",
    );
    let outcomes: Vec<String> = audit_bodies(&host)
        .iter()
        .filter(|b| b["action"] == "partition.create")
        .map(|b| b["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "ok: by the tenant (no officers in this role)".to_string(),
            "ok: approved by 2 of 2 partition officers".to_string()
        ]
    );

    // Tokens expire.
    let t = token(&service, &mut host, &alice, "partition.create", "late").expect("token");
    AHEAD_SECS.store(16 * 60, Ordering::SeqCst);
    let late = with_tenant_clock(time::Duration::seconds(16 * 60), || {
        try_create_partition(
            &service,
            &mut host,
            &alice,
            "late",
            Some(proof(&t, &[o1, o2])),
        )
    });
    expect("an expired token", late, "expired");
}

fn disable(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    (partition, key_id): (&str, &str),
    quorum: Option<QuorumProof>,
) -> Result<EnclaveReply, EnclaveFailure> {
    let aud = audience(service, host);
    let body = match quorum {
        Some(q) => serde_json::to_vec(&DisableKeyRequest { quorum: Some(q) }).expect("json"),
        None => Vec::new(),
    };
    let request = sign(
        &aud,
        tenant,
        "POST",
        &paths::disable_key(partition, key_id),
        &body,
    );
    service.handle(
        EnclaveCall::Import(ImportCall::DisableKey {
            request,
            partition: partition.into(),
            key_id: key_id.into(),
            body,
        }),
        host,
    )
}

fn import_aes(service: &EnclaveService, host: &mut MemoryHost, tenant: &TenantKey, id: &str) {
    import_aes_with(service, host, tenant, ("vault", id), &[7u8; 32], |_| {});
}

#[test]
fn security_officers_disable_keys_for_good_and_only_with_their_quorum() {
    let world = World::new(&["m1"]);
    // The real clock: the other test moves the shared one.
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let bob = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &bob);
    create_partition(&service, &mut host, &alice, "vault");
    create_partition(&service, &mut host, &bob, "vault");
    for id in ["solo", "guarded", "other"] {
        import_aes(&service, &mut host, &alice, id);
    }
    import_aes(&service, &mut host, &bob, "guarded");
    let mut s = open_session(&world, &service, &mut host, &alice);
    let encrypt = |id: &str| CryptoOp::Encrypt {
        key: KeyRef::new("vault", id),
        plaintext: SecretBytes::copy_from(b"payload"),
        aad: vec![],
    };
    let usable = |s: &mut Session, host: &mut MemoryHost, id: &str| {
        matches!(
            one(s, &service, host, encrypt(id)),
            CryptoOutcome::Ciphertext(_)
        )
    };

    // The host cannot redirect a signed request: another key id or partition in the
    // call, or another body, is not what the tenant signed.
    let aud = audience(&service, &mut host);
    let request = sign(
        &aud,
        &alice,
        "POST",
        &paths::disable_key("vault", "solo"),
        &[],
    );
    let not_signed = "is not the one asked of the enclave";
    for (what, partition, key_id, body, reason) in [
        ("key id", "vault", "other", Vec::new(), not_signed),
        ("partition", "elsewhere", "solo", Vec::new(), not_signed),
        (
            "body",
            "vault",
            "solo",
            b"{}".to_vec(),
            "the request was altered or not made by the tenant",
        ),
    ] {
        expect(
            &format!("{what} swapped by the host"),
            service.handle(
                EnclaveCall::Import(ImportCall::DisableKey {
                    request: request.clone(),
                    partition: partition.into(),
                    key_id: key_id.into(),
                    body,
                }),
                &mut host,
            ),
            reason,
        );
    }
    // Without security officers the tenant disables alone; a missing key is named and
    // another tenant's key of the same name is not touched.
    let f = refused(disable(
        &service,
        &mut host,
        &alice,
        ("vault", "absent"),
        None,
    ));
    assert_eq!(f.kind, FailureKind::NotFound, "{}", f.message);
    disable(&service, &mut host, &alice, ("vault", "solo"), None).expect("disable");
    let (_, why) = refusal(one(&mut s, &service, &mut host, encrypt("solo")));
    assert!(why.contains("disabled for good"), "{why}");
    // Nothing brings it back: not a rotation, not a new minimum, not a second disable.
    let (_, why) = refusal(one(
        &mut s,
        &service,
        &mut host,
        CryptoOp::Rotate {
            key: KeyRef::new("vault", "solo"),
        },
    ));
    assert!(why.contains("disabled for good"), "{why}");
    expect(
        "disabled twice",
        disable(&service, &mut host, &alice, ("vault", "solo"), None),
        "disabled for good",
    );

    // Two of three security officers from now on.
    let officers: Vec<Ed25519SigningKey> = (0..3)
        .map(|_| Ed25519SigningKey::generate().expect("key"))
        .collect();
    let (o1, o2, o3) = (&officers[0], &officers[1], &officers[2]);
    // Bob has the same officers: a token of Alice's is still no good for him.
    for o in [o1, o2, o3] {
        for tenant in [&alice, &bob] {
            register_officer(&service, &mut host, tenant, "security", o, 2, None)
                .expect("register");
        }
    }
    expect(
        "the tenant alone",
        disable(&service, &mut host, &alice, ("vault", "guarded"), None),
        "key.disable needs the approval of 2 of the 3 security officers",
    );
    // A quorum of K-1; a token for another key; a token of another action.
    let t = token(&service, &mut host, &alice, "key.disable", "vault/guarded").expect("token");
    expect(
        "K-1 approvals",
        disable(
            &service,
            &mut host,
            &alice,
            ("vault", "guarded"),
            Some(proof(&t, &[o1])),
        ),
        "only 1 approved",
    );
    let for_other =
        token(&service, &mut host, &alice, "key.disable", "vault/other").expect("token");
    expect(
        "a token for another key",
        disable(
            &service,
            &mut host,
            &alice,
            ("vault", "guarded"),
            Some(proof(&for_other, &[o1, o2])),
        ),
        "the quorum token is for key.disable on \"vault/other\"",
    );
    let for_partition = token(&service, &mut host, &alice, "partition.delete", "vault").map(|_| ());
    assert!(
        for_partition.is_err(),
        "no partition officers: no partition token"
    );
    // Bob's key of the same name is out of reach of Alice's token and approvals.
    expect(
        "another tenant's key",
        disable(
            &service,
            &mut host,
            &bob,
            ("vault", "guarded"),
            Some(proof(&t, &[o1, o2])),
        ),
        "by tenant",
    );
    assert!(usable(&mut s, &mut host, "guarded"), "still in use");
    disable(
        &service,
        &mut host,
        &alice,
        ("vault", "guarded"),
        Some(proof(&t, &[o2, o3])),
    )
    .expect("disabled by two officers");
    assert!(!usable(&mut s, &mut host, "guarded"));
    assert!(
        usable(&mut s, &mut host, "other"),
        "the other key is untouched"
    );
    // The token is used up.
    expect(
        "a reused token",
        disable(
            &service,
            &mut host,
            &alice,
            ("vault", "other"),
            Some(proof(&t, &[o2, o3])),
        ),
        "was not issued by this enclave, or was used already",
    );
    // Bob's own key of that name works for Bob.
    let mut bs = open_session(&world, &service, &mut host, &bob);
    assert!(usable(&mut bs, &mut host, "guarded"));
    // A restart keeps it disabled: the mark is sealed with the key.
    drop((s, bs));
    drop(service);
    let restarted = world.enclave("m1", CODE);
    let mut s = open_session(&world, &restarted, &mut host, &alice);
    let (_, why) = refusal(one(&mut s, &restarted, &mut host, encrypt("guarded")));
    assert!(why.contains("disabled for good"), "{why}");
}
