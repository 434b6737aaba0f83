//! Revocation of imported keys (flow 3): the enclave asks the owner's endpoint, through
//! a host that may forge, replay or withhold answers. A forged or replayed answer
//! counts as silence; silence is tolerated for at most a day after the last good
//! answer, then use is suspended until the endpoint answers; "revoked" is for good.

mod common;

use common::import::*;
use common::*;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_crypto::{Confidential, SecretBytes};
use veritee_import::keys::{KeyRef, KeyType, Operation};
use veritee_import::payload::ImportPayload;
use veritee_import::revocation::{self, RevocationData, RevocationQuery, TOKEN_LEN};
use veritee_proto::ipc::FailureKind;

const CODE: &[u8] = b"the node enclave, version 1";
const TOKEN: [u8; TOKEN_LEN] = [0x5a; TOKEN_LEN];

static AHEAD_SECS: AtomicI64 = AtomicI64::new(0);
fn moved_clock() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(AHEAD_SECS.load(Ordering::SeqCst))
}
fn advance(secs: i64) {
    AHEAD_SECS.fetch_add(secs, Ordering::SeqCst);
}

/// What the host does with a question.
#[derive(Clone, Copy, PartialEq)]
enum Relay {
    /// Carries it to the endpoint and its answer back.
    Honest,
    /// Answers nothing.
    Silent,
    /// Answers "active" signed by a key of its own.
    Forged,
    /// Answers with the first "active" it ever carried.
    Replayed,
}

struct Endpoint {
    key: Ed25519SigningKey,
    revoked: Mutex<bool>,
    relay: Mutex<Relay>,
    first_answer: Mutex<Option<Vec<u8>>>,
    questions: AtomicUsize,
}

fn data(endpoint: &Endpoint, interval_secs: u64) -> RevocationData {
    RevocationData {
        endpoint: "http://revocation.example/revocation".into(),
        endpoint_key: endpoint.key.public_key(),
        token: Confidential::new(TOKEN),
        interval_secs,
    }
}

fn relay(endpoint: Arc<Endpoint>) -> veritee_enclave::memory_host::RevocationRelay {
    Box::new(move |_url, question| {
        endpoint.questions.fetch_add(1, Ordering::SeqCst);
        let q: RevocationQuery = serde_json::from_slice(question).map_err(|e| e.to_string())?;
        let mode = *endpoint.relay.lock().expect("relay");
        let answer = |key: &Ed25519SigningKey, revoked| {
            revocation::answer(key, &q, Some(&TOKEN), revoked)
                .map(|a| serde_json::to_vec(&a).expect("json"))
                .map_err(|e| e.to_string())
        };
        match mode {
            Relay::Silent => Err("timed out".into()),
            Relay::Forged => answer(&Ed25519SigningKey::generate().expect("key"), false),
            Relay::Replayed => endpoint
                .first_answer
                .lock()
                .expect("first")
                .clone()
                .ok_or_else(|| "nothing to replay".to_string()),
            Relay::Honest => {
                let a = answer(&endpoint.key, *endpoint.revoked.lock().expect("revoked"))?;
                endpoint
                    .first_answer
                    .lock()
                    .expect("first")
                    .get_or_insert(a.clone());
                Ok(a)
            }
        }
    })
}

#[test]
fn a_revoked_key_is_disabled_for_good_and_a_silent_endpoint_suspends_use_past_the_bound() {
    let world = World::new(&["m1"]);
    let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(moved_clock));
    let mut host = MemoryHost::default();
    let endpoint = Arc::new(Endpoint {
        key: Ed25519SigningKey::generate().expect("key"),
        revoked: Mutex::new(false),
        relay: Mutex::new(Relay::Honest),
        first_answer: Mutex::new(None),
        questions: AtomicUsize::new(0),
    });
    *host.revocation.lock().expect("relay") = Some(relay(Arc::clone(&endpoint)));
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    create_partition(&service, &mut host, &alice, "p");
    let keys = node_keys(&service, &mut host);
    let provider = HpkeKeyPair::generate();
    let material = SecretBytes::copy_from(&[7u8; 32]);
    let import = |host: &mut MemoryHost, id: &str, interval: Option<u64>, carried: Option<u64>| {
        let mut meta = metadata_for(
            &keys,
            &provider,
            &alice,
            ("p", id),
            KeyType::Aes256Gcm,
            &[Operation::Encrypt, Operation::Decrypt],
            &material,
        );
        meta.revocation_interval_secs = interval;
        let payload = ImportPayload {
            material: SecretBytes::copy_from(material.expose()),
            revocation: carried.map(|secs| data(&endpoint, secs)),
        };
        let import = seal_payload(
            &keys,
            &provider,
            &alice,
            meta,
            &payload.encode().expect("payload"),
        );
        send_import(&service, host, &alice, &import)
    };

    // Metadata and layer must agree on the revocation they state.
    let f = refused(import(&mut host, "mismatch", Some(60), None));
    assert!(
        f.message
            .contains("revocation checks every Some(60) s, its TEE layer carries None"),
        "{}",
        f.message
    );
    let f = refused(import(&mut host, "mismatch", Some(60), Some(120)));
    assert_eq!(f.kind, FailureKind::BadRequest, "{}", f.message);
    import(&mut host, "k", Some(60), Some(60)).expect("import");

    let mut s = open_session(&world, &service, &mut host, &alice);
    let k = KeyRef::new("p", "k");
    let use_key = |s: &mut Session, host: &mut MemoryHost| {
        one(
            s,
            &service,
            host,
            CryptoOp::Encrypt {
                key: k.clone(),
                plaintext: SecretBytes::copy_from(b"x"),
                aad: vec![],
            },
        )
    };
    let asked = || endpoint.questions.load(Ordering::SeqCst);
    let set_relay = |mode| *endpoint.relay.lock().expect("relay") = mode;

    // Asked before the first use; then not again within the interval.
    assert!(matches!(
        use_key(&mut s, &mut host),
        CryptoOutcome::Ciphertext(_)
    ));
    assert_eq!(asked(), 1);
    assert!(matches!(
        use_key(&mut s, &mut host),
        CryptoOutcome::Ciphertext(_)
    ));
    assert_eq!(asked(), 1);

    // Past the interval, a forged answer, a replayed one and none at all count as
    // silence: tolerated within a day of the last good answer, asked again at most
    // once a minute.
    for mode in [Relay::Forged, Relay::Replayed, Relay::Silent] {
        set_relay(mode);
        advance(61);
        let before = asked();
        assert!(
            matches!(use_key(&mut s, &mut host), CryptoOutcome::Ciphertext(_)),
            "{}",
            before
        );
        assert!(matches!(
            use_key(&mut s, &mut host),
            CryptoOutcome::Ciphertext(_)
        ));
        assert_eq!(
            asked(),
            before + 1,
            "a silent endpoint is asked once a minute at most"
        );
    }
    // A day after the last good answer: suspended, until it answers again.
    advance(86_400);
    let (code, message) = refusal(use_key(&mut s, &mut host));
    assert_eq!(code, "unavailable", "{message}");
    assert!(
        message.contains("is suspended: its revocation endpoint has not answered since"),
        "{message}"
    );
    set_relay(Relay::Honest);
    advance(61);
    assert!(matches!(
        use_key(&mut s, &mut host),
        CryptoOutcome::Ciphertext(_)
    ));

    // Revoked: refused for good, without asking again, even if the endpoint changes
    // its mind or the host stops carrying answers; not rotated either.
    *endpoint.revoked.lock().expect("revoked") = true;
    advance(61);
    let (code, message) = refusal(use_key(&mut s, &mut host));
    assert_eq!(code, "forbidden", "{message}");
    assert!(message.contains("was revoked by its owner"), "{message}");
    *endpoint.revoked.lock().expect("revoked") = false;
    let before = asked();
    advance(3600);
    let (_, message) = refusal(use_key(&mut s, &mut host));
    assert!(message.contains("disabled for good"), "{message}");
    assert_eq!(asked(), before, "a revoked key asks nothing more");
    let (_, message) = refusal(one(
        &mut s,
        &service,
        &mut host,
        CryptoOp::Rotate { key: k.clone() },
    ));
    assert!(message.contains("revoked"), "{message}");
    assert!(
        audit_bodies(&host)
            .iter()
            .any(|b| b["action"] == "import.revoked")
    );

    // A key whose endpoint never answered is not used at all.
    set_relay(Relay::Silent);
    // Signed at the enclave's (moved) time.
    with_tenant_clock(
        time::Duration::seconds(AHEAD_SECS.load(Ordering::SeqCst)),
        || {
            import(&mut host, "fresh", Some(300), Some(300)).expect("import");
        },
    );
    let (code, message) = refusal(one(
        &mut s,
        &service,
        &mut host,
        CryptoOp::Encrypt {
            key: KeyRef::new("p", "fresh"),
            plaintext: SecretBytes::copy_from(b"x"),
            aad: vec![],
        },
    ));
    assert_eq!(code, "unavailable", "{message}");
    assert!(message.contains("has not answered once"), "{message}");
    // Nor rotated, nor its minimum moved, while its endpoint has never answered.
    for op in [
        CryptoOp::Rotate {
            key: KeyRef::new("p", "fresh"),
        },
        CryptoOp::SetMinimumVersion {
            key: KeyRef::new("p", "fresh"),
            version: 1,
        },
    ] {
        let (code, message) = refusal(one(&mut s, &service, &mut host, op));
        assert_eq!(code, "unavailable", "{message}");
    }
    // The token never reached the host: only its id and proofs did.
    assert!(!contains(&everything(&host), &TOKEN));
}
