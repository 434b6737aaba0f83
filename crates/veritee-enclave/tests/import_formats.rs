//! The import formats users already have (CKM_RSA_AES_KEY_WRAP to the enclave's RSA
//! key, HPKE to its X25519 key), against a hostile host: the wrapped key swapped for
//! another the enclave could open too, a format or key id the metadata do not state,
//! revocation data where the format cannot carry them. Each refusal names its reason;
//! a key the customer's tooling wrapped gets a check value made in the enclave.

mod common;

use common::import::*;
use common::*;
use veritee_channel::client::TenantKey;
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_import::formats::{self, ImportFormat};
use veritee_import::keys::{KeyCheck, KeyType, Operation};
use veritee_import::metadata::key_id_of;
use veritee_import::tee_rsa::{TEE_RSA_KEY_LABEL, TeeRsaKeyStatement};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply, FailureKind, ImportCall, ImportReply};

const CODE: &[u8] = b"the node enclave, version 1";
const CANARY: &[u8; 32] = b"canary-wrapped-key-0123456789abc";

/// The enclave's RSA import key as a customer checks it: stated by the audit key.
fn tee_rsa_key(
    service: &veritee_enclave::EnclaveService,
    host: &mut MemoryHost,
    keys: &NodeKeys,
) -> Vec<u8> {
    let signed = match service
        .handle(EnclaveCall::Import(ImportCall::TeeRsaKey), host)
        .expect("rsa key")
    {
        EnclaveReply::Import(ImportReply::TeeRsaKey(signed)) => signed,
        other => panic!("{other:?}"),
    };
    let body = veritee_audit::open_document(&signed, &keys.audit_spki, TEE_RSA_KEY_LABEL)
        .expect("signed by the audit key");
    // Stated for this node only.
    assert!(TeeRsaKeyStatement::read(body, "0000").is_err());
    TeeRsaKeyStatement::read(body, &keys.node_id).expect("statement")
}

#[test]
fn standard_formats_are_bound_to_the_signed_metadata_and_refused_when_bent() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    create_partition(&service, &mut host, &alice, "hsm");
    let keys = node_keys(&service, &mut host);
    let rsa = tee_rsa_key(&service, &mut host, &keys);
    // The same key every time it is asked (sealed, not made again).
    assert_eq!(tee_rsa_key(&service, &mut host, &keys), rsa);
    let provider = HpkeKeyPair::generate();
    let material = SecretBytes::copy_from(CANARY);
    let other = SecretBytes::copy_from(&[9u8; 32]);
    let stated = |id: &str, format: ImportFormat, wrapped: &[u8], m: &SecretBytes| {
        let mut metadata = metadata_for(
            &keys,
            &provider,
            &alice,
            ("hsm", id),
            KeyType::Aes256Gcm,
            &[Operation::Encrypt, Operation::Decrypt],
            m,
        );
        metadata.format = format;
        metadata.wrapped_sha256 = Some(formats::wrapped_digest(wrapped));
        if format == ImportFormat::RsaAesKeyWrap {
            metadata.tee_key_id = key_id_of(&rsa);
        }
        metadata
    };
    let refused_with =
        |host: &mut MemoryHost, what: &str, import: &Import, kind: FailureKind, reason: &str| {
            let f = refused(send_import(&service, host, &alice, import));
            assert_eq!(f.kind, kind, "{what}: {}", f.message);
            assert!(f.message.contains(reason), "{what}: {}", f.message);
        };

    let wrapped = formats::rsa_aes_key_wrap(&rsa, &material).expect("wrap");
    let genuine = seal_wrapped(
        &provider,
        &alice,
        stated("k1", ImportFormat::RsaAesKeyWrap, &wrapped, &material),
        &wrapped,
    );

    // The host swaps the wrapped key for another that opens just as well.
    let swapped_in = formats::rsa_aes_key_wrap(&rsa, &other).expect("wrap");
    let mut swapped = genuine.clone();
    swapped.inner = swapped_in.clone();
    refused_with(
        &mut host,
        "swapped wrapped key",
        &swapped,
        FailureKind::BadRequest,
        "its SHA-256 differs",
    );
    // The same key wrapped again (another ephemeral key): still not the bytes signed.
    let mut rewrapped = genuine.clone();
    rewrapped.inner = formats::rsa_aes_key_wrap(&rsa, &material).expect("wrap");
    refused_with(
        &mut host,
        "rewrapped",
        &rewrapped,
        FailureKind::BadRequest,
        "its SHA-256 differs",
    );
    // Truncated, or one byte flipped, by the host.
    for (what, inner) in [
        ("truncated", wrapped[..wrapped.len() - 8].to_vec()),
        ("flipped", {
            let mut w = wrapped.clone();
            w[3] ^= 1;
            w
        }),
    ] {
        let mut bent = genuine.clone();
        bent.inner = inner;
        refused_with(
            &mut host,
            what,
            &bent,
            FailureKind::BadRequest,
            "its SHA-256 differs",
        );
    }
    // Metadata that name the X25519 key for the RSA format, or the RSA blob as HPKE.
    let mut wrong_key = stated("k2", ImportFormat::RsaAesKeyWrap, &wrapped, &material);
    wrong_key.tee_key_id = key_id_of(keys.tee.as_bytes());
    refused_with(
        &mut host,
        "X25519 key id for the RSA format",
        &seal_wrapped(&provider, &alice, wrong_key, &wrapped),
        FailureKind::BadRequest,
        "it is encrypted to TEE key",
    );
    refused_with(
        &mut host,
        "an RSA wrap stated as HPKE",
        &seal_wrapped(
            &provider,
            &alice,
            stated("k3", ImportFormat::Hpke, &wrapped, &material),
            &wrapped,
        ),
        FailureKind::BadRequest,
        "does not open",
    );
    // Revocation data cannot ride in a standard format; a wrapped digest in veritee's.
    let mut with_revocation = stated("k4", ImportFormat::RsaAesKeyWrap, &wrapped, &material);
    with_revocation.revocation_interval_secs = Some(600);
    refused_with(
        &mut host,
        "revocation in a standard format",
        &seal_wrapped(&provider, &alice, with_revocation, &wrapped),
        FailureKind::BadRequest,
        "revocation data need veritee's own format",
    );
    let mut own = stated("k5", ImportFormat::RsaAesKeyWrap, &wrapped, &material);
    own.format = ImportFormat::Veritee;
    refused_with(
        &mut host,
        "wrapped digest in veritee's format",
        &seal_wrapped(&provider, &alice, own, &wrapped),
        FailureKind::BadRequest,
        "wrapped_sha256 is for the standard formats",
    );
    // A key of the wrong size for its type, wrapped correctly.
    let short = SecretBytes::copy_from(&[1u8; 31]);
    let short_wrapped = formats::hpke_seal(&keys.tee, &short).expect("seal");
    let mut short_meta = stated("k6", ImportFormat::Hpke, &short_wrapped, &material);
    short_meta.key_check = String::new();
    refused_with(
        &mut host,
        "31-byte AES key",
        &seal_wrapped(&provider, &alice, short_meta, &short_wrapped),
        FailureKind::BadRequest,
        "32 bytes expected, got 31",
    );
    // A check value that names another key.
    refused_with(
        &mut host,
        "check value of another key",
        &seal_wrapped(
            &provider,
            &alice,
            stated("k7", ImportFormat::RsaAesKeyWrap, &wrapped, &other),
            &wrapped,
        ),
        FailureKind::BadRequest,
        "check value differs",
    );

    // The genuine import lands, and so does one the customer's tooling wrapped with
    // no check value stated: the enclave names one over what it unwrapped.
    let c = confirmation(
        send_import(&service, &mut host, &alice, &genuine).expect("import"),
        &keys.audit_spki,
    );
    assert_eq!(c.key_check, genuine.metadata.key_check);
    let hpke = formats::hpke_seal(&keys.tee, &material).expect("seal");
    let mut unstated = stated("from-tooling", ImportFormat::Hpke, &hpke, &material);
    unstated.key_check = String::new();
    let c = confirmation(
        send_import(
            &service,
            &mut host,
            &alice,
            &seal_wrapped(&provider, &alice, unstated, &hpke),
        )
        .expect("import"),
        &keys.audit_spki,
    );
    let check = KeyCheck::from_hex(&c.key_check).expect("a check value");
    assert!(check.matches(&material) && !check.matches(&other));
    // Nothing the host holds carries the key, nor anything that crossed it.
    let held = everything(&host);
    for canary in [CANARY.to_vec(), hex::encode(CANARY).into_bytes()] {
        assert!(!contains(&held, &canary), "the key reached the host");
        assert!(!contains(&genuine.body, &canary) && !contains(&wrapped, &canary));
    }
}
