//! What secret import (flow 3) parses of outside bytes: import metadata (as JSON, as
//! signed by a tenant, and behind a valid signature), both encryption layers (as sent,
//! and as sealed by a customer) and the payload inside the TEE layer, a provider's
//! statement (as sent, and behind the pinned key's signature), a revocation endpoint's
//! answer (as relayed by the host, and behind the endpoint's signature) and the
//! enclave's question (as the endpoint reads it), a vendor validator's answer (as
//! sent, and behind the pinned root's signature), a ciphertext envelope under an
//! imported AES key, a key check value, key material of each type, and the crypto
//! batches and outcomes that travel inside a session, keys in the standard import
//! formats (CKM_RSA_AES_KEY_WRAP, HPKE), the enclave's RSA key statement and officers'
//! approvals of a quorum token. The first byte picks the parser,
//! the rest is its input. Some cases build documents field by field (each field valid,
//! or of the input's bytes) and sign them, so every check behind a signature is reached
//! without the fuzzer having to find whole JSON documents. None may panic, whatever
//! the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_channel::crypto::{decode_batch, decode_outcomes, encode_batch, encode_outcomes};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::aead::AeadKey;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_crypto::rsa::RsaPrivateKey;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, Ed25519SigningKey};
use veritee_crypto::{Confidential, SecretBytes};
use veritee_import::confirmation::Confirmation;
use veritee_import::formats::{self, ImportFormat};
use veritee_import::keys::{KeyCheck, KeyRef, KeyType, Operation};
use veritee_import::metadata::{
    self, ImportMetadata, KeyRelease, METADATA_SIGNATURE_LABEL, SignedMetadata,
};
use veritee_import::payload::ImportPayload;
use veritee_import::provider::{
    PROVIDER_SIGNATURE_LABEL, ProviderStatement, SignedProviderStatement,
};
use veritee_import::quorum::{Approval, approve, approving_officers};
use veritee_import::revocation::{self, RevocationAnswer, RevocationData, RevocationQuery};
use veritee_import::tee_rsa::TeeRsaKeyStatement;
use veritee_import::validator::{self, ValidationQuery};
use veritee_import::{ciphertext, envelope};

struct Keys {
    /// The tenant's metadata signing key, and its SPKI as the enclave holds it.
    tenant: EcdsaSigningKey,
    tenant_spki: Vec<u8>,
    /// The provider's pinned statement key.
    provider: Ed25519SigningKey,
    /// The enclave's (TEE) and the provider's (host) import keys.
    tee: HpkeKeyPair,
    host: HpkeKeyPair,
    /// An imported AES key.
    aes: AeadKey,
    /// A revocation endpoint's answer key.
    endpoint: Ed25519SigningKey,
    /// The vendor's root key (P-384), and its SPKI as the customer pins it.
    vendor: EcdsaSigningKey,
    vendor_spki: Vec<u8>,
    /// The enclave's RSA import key (2048 bits here: the fuzzer's start stays quick).
    rsa: RsaPrivateKey,
    /// A registered officer.
    officer: Ed25519SigningKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let tenant = EcdsaSigningKey::generate(EcdsaCurve::P256).expect("tenant key");
        let tenant_spki = tenant.public_key_spki().expect("tenant SPKI");
        let vendor = EcdsaSigningKey::generate(EcdsaCurve::P384).expect("vendor key");
        Keys {
            tenant,
            tenant_spki,
            provider: Ed25519SigningKey::generate().expect("provider key"),
            tee: HpkeKeyPair::generate(),
            host: HpkeKeyPair::generate(),
            aes: AeadKey::generate().expect("AES key"),
            endpoint: Ed25519SigningKey::generate().expect("endpoint key"),
            vendor_spki: vendor.public_key_spki().expect("vendor SPKI"),
            vendor,
            rsa: RsaPrivateKey::generate(2048).expect("RSA key"),
            officer: Ed25519SigningKey::generate().expect("officer key"),
        }
    })
}

const KEY_TYPES: [KeyType; 4] = [
    KeyType::Aes256Gcm,
    KeyType::HmacSha256,
    KeyType::EcdsaP256,
    KeyType::Rsa,
];
const OPERATIONS: [Operation; 6] = [
    Operation::Encrypt,
    Operation::Decrypt,
    Operation::Sign,
    Operation::Verify,
    Operation::Hmac,
    Operation::Translate,
];
const FORMATS: [ImportFormat; 3] = [
    ImportFormat::Veritee,
    ImportFormat::RsaAesKeyWrap,
    ImportFormat::Hpke,
];
/// What the customer asks a provider statement for.
const NONCE: &[u8] = &[3; 32];
const NODE: &str = "0011223344556677";
const NOW: i64 = 1_800_000_000;
const SIGNATURE_LEN: usize = 64;
/// The token a revocation endpoint shares with the enclave, and the enclave's nonce.
const TOKEN: [u8; revocation::TOKEN_LEN] = [7; revocation::TOKEN_LEN];
const REVOCATION_NONCE: [u8; 32] = [9; 32];

fn revocation_data() -> RevocationData {
    RevocationData {
        endpoint: "https://revocation.example/check".into(),
        endpoint_key: keys().endpoint.public_key(),
        token: Confidential::new(TOKEN),
        interval_secs: 300,
    }
}

/// Splits at the first byte's value (bounded by the length).
fn split_by_first(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(n).min(rest.len()))
}

fn signed(label: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut out = label.to_vec();
    out.extend_from_slice(bytes);
    out
}

fn metadata_checks(m: &ImportMetadata) {
    let _ = m.check();
    for op in OPERATIONS {
        let _ = m.allows(op);
    }
    // What was read writes back to what reads the same.
    let json = serde_json::to_vec(m).expect("metadata serialize");
    let back: ImportMetadata = serde_json::from_slice(&json).expect("metadata read back");
    assert_eq!(&back, m);
}

fn open_metadata(bytes: &[u8], signature: &[u8]) {
    let signed = SignedMetadata {
        bytes: bytes.to_vec(),
        signature: signature.to_vec(),
    };
    let _ = signed.digest();
    if let Ok((m, check)) = signed.open(&keys().tenant_spki) {
        metadata_checks(&m);
        // The check value stated, or none (only a standard format may leave it out).
        match check {
            Some(check) => assert_eq!(KeyCheck::from_hex(&m.key_check).ok(), Some(check)),
            None => assert!(m.key_check.is_empty() && !m.format.is_veritee()),
        }
    }
}

fn validate_statement(statement: &[u8], signature: &[u8]) {
    let signed = SignedProviderStatement {
        statement: statement.to_vec(),
        signature: signature.to_vec(),
    };
    let now = time::OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    let _ = signed.validate(
        &keys().provider.public_key(),
        NONCE,
        NODE,
        now,
        time::Duration::minutes(5),
    );
}

/// The input's fields, separated by `\n`, after a byte whose bits say which of them
/// replace a valid default.
struct Fields<'a> {
    mask: u16,
    parts: std::collections::VecDeque<&'a [u8]>,
    next: u32,
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8]) -> Self {
        let (mask, rest) = data.split_at(2.min(data.len()));
        let mut m = [0u8; 2];
        m[..mask.len()].copy_from_slice(mask);
        Self {
            mask: u16::from_le_bytes(m),
            parts: rest.split(|&b| b == b'\n').collect(),
            next: 0,
        }
    }

    /// The next field's bytes, if the input replaces it.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let i = self.next;
        self.next += 1;
        if self.mask.checked_shr(i).is_none_or(|m| m & 1 == 0) {
            return None;
        }
        Some(self.parts.pop_front().unwrap_or_default())
    }

    fn text(&mut self, default: &str) -> String {
        self.bytes().map_or_else(
            || default.to_string(),
            |b| String::from_utf8_lossy(b).into_owned(),
        )
    }
}

/// Metadata of valid fields, or of the input's where it says so.
fn fuzzed_metadata(data: &[u8]) -> ImportMetadata {
    let mut f = Fields::new(data);
    let version = f.bytes().map_or(metadata::METADATA_VERSION, |b| {
        let mut v = [0u8; 4];
        v[..b.len().min(4)].copy_from_slice(&b[..b.len().min(4)]);
        u32::from_le_bytes(v)
    });
    let tenant = f.text(&"00".repeat(16));
    let node_id = f.text(NODE);
    let partition = f.text("payments");
    let key_id = f.text("k1");
    let key_type = f.bytes().map_or(KeyType::Aes256Gcm, |b| {
        KEY_TYPES[usize::from(b.first().copied().unwrap_or(0)) % KEY_TYPES.len()]
    });
    let operations = f.bytes().map_or(vec![Operation::Encrypt], |b| {
        b.iter()
            .map(|&o| OPERATIONS[usize::from(o) % OPERATIONS.len()])
            .collect()
    });
    let key_check =
        f.text(&KeyCheck::with_salt(&SecretBytes::copy_from(&[7; 32]), [1; 16]).to_hex());
    let tee_key_id = f.text(&"11".repeat(16));
    let provider_key_id = f.text(&"22".repeat(16));
    let validations = f.bytes().map_or_else(Vec::new, |b| {
        b.split(|&c| c == b',')
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    });
    let created = f.text("2027-01-15T08:00:00Z");
    let mut secs = || {
        f.bytes().map(|b| {
            let mut v = [0u8; 8];
            v[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
            u64::from_le_bytes(v)
        })
    };
    let rotate_after_secs = secs();
    let revocation_interval_secs = secs();
    let format = f.bytes().map_or(ImportFormat::Veritee, |b| {
        FORMATS[usize::from(b.first().copied().unwrap_or(0)) % FORMATS.len()]
    });
    let wrapped_sha256 = f.bytes().map(|b| String::from_utf8_lossy(b).into_owned());
    let release = f.bytes().and_then(|b| match b.first().copied().unwrap_or(0) % 3 {
        0 => None,
        1 => Some(KeyRelease::SameSigner),
        _ => Some(KeyRelease::SameMeasurement),
    });
    ImportMetadata {
        version,
        tenant,
        node_id,
        partition,
        key_id,
        key_type,
        operations,
        key_check,
        tee_key_id,
        provider_key_id,
        validations,
        created,
        rotate_after_secs,
        revocation_interval_secs,
        format,
        wrapped_sha256,
        release,
        task_signers: Vec::new(),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A statement of valid fields, or of the input's where it says so.
fn fuzzed_statement(data: &[u8]) -> ProviderStatement {
    let mut f = Fields::new(data);
    let now = time::OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    ProviderStatement {
        provider: f.text(&to_hex(&keys().provider.public_key())),
        host_key: f.text(&"ab".repeat(32)),
        node_id: f.text(NODE),
        nonce: f.text(&to_hex(NONCE)),
        issued: f.text(
            &now.format(&time::format_description::well_known::Rfc3339)
                .expect("format"),
        ),
    }
}

fn check_material(material: &[u8]) {
    let material = SecretBytes::copy_from(material);
    for t in KEY_TYPES {
        let _ = t.check_material(&material);
    }
}

/// What the enclave does with an opened TEE layer: reads the payload, checks its key.
fn read_payload(opened: &SecretBytes) {
    if let Ok(payload) = ImportPayload::decode(opened) {
        let _ = format!("{payload:?}");
        check_material(payload.material.expose());
        if let Some(r) = &payload.revocation {
            let _ = r.query(&REVOCATION_NONCE);
        }
        // What was read encodes, and reads back the same.
        let again = payload.encode().expect("re-encode payload");
        let back = ImportPayload::decode(&again).expect("payload read back");
        assert_eq!(back.material.expose(), payload.material.expose());
        assert_eq!(back.revocation.is_some(), payload.revocation.is_some());
    }
}

/// A revocation answer: the statement's bytes, signed by the endpoint's key.
fn signed_answer(statement: &[u8]) -> Vec<u8> {
    let signature = keys()
        .endpoint
        .sign(&signed(revocation::ANSWER_LABEL, statement))
        .expect("sign answer");
    serde_json::to_vec(&RevocationAnswer {
        statement: to_hex(statement),
        signature: to_hex(&signature),
    })
    .expect("answer serialize")
}

/// The question a customer asks the vendor's validator.
fn validation_query() -> ValidationQuery {
    ValidationQuery {
        machine_id: "00".repeat(16),
        provider: "ab".repeat(32),
        nonce: to_hex(NONCE),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&case, data)) = data.split_first() else {
        return;
    };
    let k = keys();
    match case % 29 {
        // Metadata and the enclave's confirmation, as JSON.
        0 => {
            if let Ok(m) = serde_json::from_slice::<ImportMetadata>(data) {
                metadata_checks(&m);
            }
            let _ = serde_json::from_slice::<Confirmation>(data);
        }
        // Signed metadata as sent: a signature (64 bytes) and the metadata.
        1 => {
            let (signature, bytes) = data.split_at(SIGNATURE_LEN.min(data.len()));
            open_metadata(bytes, signature);
        }
        // Metadata signed by the tenant's key: the JSON and its checks behind it.
        2 => {
            let signature = k
                .tenant
                .sign(&signed(METADATA_SIGNATURE_LABEL, data))
                .expect("sign metadata");
            open_metadata(data, &signature);
        }
        // Signed metadata against a tenant key of any bytes.
        3 => {
            let (spki, rest) = split_by_first(data);
            let (signature, bytes) = rest.split_at(SIGNATURE_LEN.min(rest.len()));
            let _ = SignedMetadata {
                bytes: bytes.to_vec(),
                signature: signature.to_vec(),
            }
            .open(spki);
        }
        // Either layer as sent, for metadata of the first bytes.
        4 => {
            let (metadata_bytes, layer) = split_by_first(data);
            let digest = metadata::digest(metadata_bytes);
            if let Ok(inner) = envelope::peel_provider_layer(&k.host, &digest, layer) {
                let _ = envelope::open_tee_layer(&k.tee, &digest, &inner);
            }
            if let Ok(opened) = envelope::open_tee_layer(&k.tee, &digest, layer) {
                read_payload(&opened);
            }
        }
        // A payload as a customer seals it: both layers open to it, and the enclave
        // reads it.
        5 => {
            let (metadata_bytes, payload) = split_by_first(data);
            let digest = metadata::digest(metadata_bytes);
            let payload = SecretBytes::copy_from(payload);
            if let Ok(outer) =
                envelope::seal(&k.tee.public_key(), &k.host.public_key(), &digest, &payload)
            {
                let inner = envelope::peel_provider_layer(&k.host, &digest, &outer).expect("peel");
                let opened = envelope::open_tee_layer(&k.tee, &digest, &inner).expect("open");
                assert_eq!(opened.expose(), payload.expose());
                read_payload(&opened);
                let check = KeyCheck::with_salt(&opened, [1; 16]);
                assert!(check.matches(&payload));
            }
        }
        // A provider statement as sent: a signature (64 bytes) and the statement.
        6 => {
            let (signature, statement) = data.split_at(SIGNATURE_LEN.min(data.len()));
            validate_statement(statement, signature);
        }
        // A statement signed by the pinned provider key: the JSON and checks behind it.
        7 => {
            let signature = k
                .provider
                .sign(&signed(PROVIDER_SIGNATURE_LABEL, data))
                .expect("sign statement");
            validate_statement(data, &signature);
            let _ = serde_json::from_slice::<ProviderStatement>(data);
        }
        // A ciphertext under an imported AES key, with AAD of the first bytes.
        8 => {
            let (aad, ct) = split_by_first(data);
            let _ = ciphertext::key_version(ct);
            let _ = ciphertext::open(&k.aes, &KeyRef::new("p", "k"), aad, ct);
        }
        // A plaintext sealed by the enclave opens back, under the version it names.
        9 => {
            let (aad, rest) = split_by_first(data);
            let (version, plaintext) = rest.split_at(4.min(rest.len()));
            let mut v = [0u8; 4];
            v[..version.len()].copy_from_slice(version);
            let version = u32::from_be_bytes(v);
            let key_ref = KeyRef::new("p", "k");
            let ct = ciphertext::seal(&k.aes, &key_ref, version, aad, plaintext).expect("seal");
            assert_eq!(ciphertext::key_version(&ct).expect("version"), version);
            let opened = ciphertext::open(&k.aes, &key_ref, aad, &ct).expect("open");
            assert_eq!(opened.expose(), plaintext);
        }
        // A key check value.
        10 => {
            let text = String::from_utf8_lossy(data);
            if let Ok(check) = KeyCheck::from_hex(&text) {
                assert_eq!(KeyCheck::from_hex(&check.to_hex()).ok(), Some(check));
            }
        }
        // Key material of each type.
        11 => check_material(data),
        // A crypto batch, as the enclave opens it from a session.
        12 => {
            if let Ok(ops) = decode_batch(&SecretBytes::copy_from(data)) {
                let _ = format!("{ops:?}");
                let again = encode_batch(&ops).expect("re-encode batch");
                assert_eq!(decode_batch(&again).expect("read back").len(), ops.len());
            }
        }
        // Crypto outcomes, as a client opens them from a session.
        13 => {
            if let Ok(outcomes) = decode_outcomes(&SecretBytes::copy_from(data)) {
                let _ = format!("{outcomes:?}");
                let again = encode_outcomes(&outcomes).expect("re-encode outcomes");
                assert_eq!(
                    decode_outcomes(&again).expect("read back").len(),
                    outcomes.len()
                );
            }
        }
        // A session request (with its Crypto batch), as the enclave opens it.
        14 => {
            if let Ok(request) = Request::decode(&SecretBytes::copy_from(data)) {
                let _ = format!("{request:?}");
                let again = request.encode().expect("re-encode request");
                assert!(Request::decode(&again).is_ok());
            }
        }
        // Metadata of fuzzed fields, signed by the tenant: every check behind the
        // signature, as the enclave makes them.
        16 => {
            let m = fuzzed_metadata(data);
            let bytes = serde_json::to_vec(&m).expect("metadata serialize");
            let signature = k
                .tenant
                .sign(&signed(METADATA_SIGNATURE_LABEL, &bytes))
                .expect("sign metadata");
            open_metadata(&bytes, &signature);
            let by_sign =
                SignedMetadata::sign(&m, |b| Ok(k.tenant.sign(b).expect("sign metadata")));
            // What the customer's side signs (it refuses what would be too large to
            // open), the enclave's side opens.
            if let Ok(by_sign) = by_sign {
                assert!(by_sign.bytes.len() <= metadata::MAX_METADATA_LEN);
                assert!(by_sign.open(&k.tenant_spki).is_ok());
            }
        }
        // A statement of fuzzed fields, signed by the pinned provider key.
        17 => {
            let s = fuzzed_statement(data);
            if let Ok(signed) = SignedProviderStatement::sign(&k.provider, &s) {
                validate_statement(&signed.statement, &signed.signature);
            }
        }
        // The TEE layer's plaintext, as the enclave reads it.
        18 => read_payload(&SecretBytes::copy_from(data)),
        // A revocation answer, as the host relays it.
        19 => {
            let _ = revocation_data().read_answer(&REVOCATION_NONCE, data);
        }
        // A revocation statement signed by the endpoint's key: the JSON behind it.
        20 => {
            let _ = revocation_data().read_answer(&REVOCATION_NONCE, &signed_answer(data));
        }
        // A revocation statement of fuzzed fields, signed by the endpoint's key: every
        // check behind the signature.
        21 => {
            let mut f = Fields::new(data);
            let statement = serde_json::json!({
                "token_id": f.text(&revocation::token_id(&TOKEN)),
                "nonce": f.text(&to_hex(&REVOCATION_NONCE)),
                "status": f.text("active"),
            });
            let statement = serde_json::to_vec(&statement).expect("statement serialize");
            let _ = revocation_data().read_answer(&REVOCATION_NONCE, &signed_answer(&statement));
        }
        // A revocation question, as the endpoint reads it.
        22 => {
            if let Ok(query) = serde_json::from_slice::<RevocationQuery>(data) {
                let _ = revocation::answer(&k.endpoint, &query, Some(&TOKEN), false);
                let _ = revocation::answer(&k.endpoint, &query, None, false);
            }
        }
        // A vendor validator's answer, as the customer reads it.
        23 => {
            let _ = validator::check_answer(&k.vendor_spki, &validation_query(), data);
        }
        // A vendor statement signed by the pinned root: the JSON behind the signature.
        24 => {
            let signature = k
                .vendor
                .sign(&signed(validator::VALIDATION_LABEL, data))
                .expect("sign validation");
            let answer = serde_json::to_vec(&serde_json::json!({
                "statement": to_hex(data),
                "signature": to_hex(&signature),
            }))
            .expect("answer serialize");
            let _ = validator::check_answer(&k.vendor_spki, &validation_query(), &answer);
        }
        // A key wrapped in CKM_RSA_AES_KEY_WRAP to the enclave's RSA key, as relayed.
        25 => {
            if let Ok(material) = formats::rsa_aes_key_unwrap(&k.rsa, data) {
                check_material(material.expose());
            }
        }
        // A key sealed in the HPKE format to the enclave's X25519 key; and as the
        // customer seals it (it opens to what was sealed).
        26 => {
            if let Ok(material) = formats::hpke_open(&k.tee, data) {
                check_material(material.expose());
            }
            if let Ok(sealed) =
                formats::hpke_seal(&k.tee.public_key(), &SecretBytes::copy_from(data))
            {
                let opened = formats::hpke_open(&k.tee, &sealed).expect("open what was sealed");
                assert_eq!(opened.expose(), data);
            }
        }
        // The enclave's statement of its RSA import key, as the customer reads it.
        27 => {
            let _ = TeeRsaKeyStatement::read(data, NODE);
        }
        // A quorum token's approvals, as the enclave counts them: the approvals as sent
        // (JSON), over a token of the input's bytes; and one genuine approval of it.
        28 => {
            let (token, approvals) = split_by_first(data);
            let registered = [k.officer.public_key()];
            if let Ok(approvals) = serde_json::from_slice::<Vec<Approval>>(approvals) {
                let _ = approving_officers(token, &approvals, &registered);
            }
            let genuine = approve(&k.officer, token).expect("approve");
            let counted = approving_officers(token, &[genuine], &registered).expect("approved");
            assert_eq!(counted.len(), 1);
        }
        // A session response (with its Crypto outcomes), as a client opens it.
        _ => {
            if let Ok(response) = Response::decode(&SecretBytes::copy_from(data)) {
                let _ = format!("{response:?}");
                let again = response.encode().expect("re-encode response");
                assert!(Response::decode(&again).is_ok());
            }
        }
    }
});
