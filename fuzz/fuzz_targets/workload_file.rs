//! TEE-bound workloads (flow 2): what a target reads from the orchestrator. The first
//! byte picks the part:
//! 0. a workload file, read as it is; when it parses, it is opened under a fixed seed
//!    (refused by the HMAC, almost always), given a slot and read back the same;
//! 1. one authorization, read, written back byte for byte, and unsealed with a fixed
//!    storage key (refused: no slot, outside the window, or the sealed seed);
//! 2. an integrity table, read as it is;
//! 3. the flow's messages (JSON bodies, CBOR answers), read, written and read back;
//! 4. arbitrary plaintext encrypted and authenticated under the fixed seed exactly as
//!    the format says (so the table and the component hashes behind the HMAC and the
//!    tag are reached), then read and opened; an opened workload's components must
//!    fill the plaintext exactly and hash to their table entries.
//!
//! None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;
use veritee_crypto::hkdf::{HkdfHash, derive_into};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_workload::{
    AUTHORIZATION_LEN, Authorization, HEADER_LEN, MAX_SLOTS, WorkloadFile, WorkloadId,
    WorkloadSeed, fuzzing, storage_key_id,
};

const SEED: [u8; 32] = [0x42; 32];
const ID: [u8; 16] = [0x17; 16];
const NONCE: [u8; 12] = [0x0b; 12];

fn seed() -> WorkloadSeed {
    WorkloadSeed::from_bytes(&SEED).expect("32 bytes are a seed")
}

fn storage_key() -> HpkeKeyPair {
    HpkeKeyPair::derive(b"veritee fuzz workload storage key")
}

/// A slot for `workload` and the fixed storage key, from its bytes (no HPKE: the sealed
/// seed is junk, which only `unseal` would notice).
fn slot_for(workload: WorkloadId) -> Authorization {
    let mut bytes = [0u8; AUTHORIZATION_LEN];
    bytes[0..2].copy_from_slice(&1u16.to_be_bytes());
    bytes[4..20].copy_from_slice(workload.as_bytes());
    bytes[20..36].copy_from_slice(storage_key_id(&storage_key().public_key()).as_bytes());
    bytes[60..68].copy_from_slice(&u64::MAX.to_be_bytes());
    Authorization::from_bytes(&bytes).expect("a well-formed slot reads")
}

fn key(purpose: &[u8]) -> [u8; 32] {
    let mut salt = b"veritee workload v1".to_vec();
    salt.extend_from_slice(&ID);
    let mut out = [0u8; 32];
    derive_into(HkdfHash::Sha256, &salt, &SEED, &[purpose], &mut out).expect("HKDF");
    out
}

/// A workload file whose payload is `plaintext`, sealed as `build` would seal it.
fn seal(plaintext: &[u8]) -> Vec<u8> {
    let payload_len = plaintext.len() + 16;
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len + 32 + 6);
    out.extend_from_slice(b"VTWL");
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&ID);
    out.extend_from_slice(&NONCE);
    out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    out.resize(HEADER_LEN + payload_len, 0);
    let (header, payload) = out.split_at_mut(HEADER_LEN);
    AeadKey::from_array(Confidential::new(key(b"encryption")))
        .seal_to(&NONCE, header, plaintext, payload)
        .expect("AES-GCM seals");
    let tag = veritee_crypto::mac::hmac_sha256(&key(b"hmac"), &out);
    out.extend_from_slice(&tag);
    out.extend_from_slice(b"VTSL");
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// Opens `file` under the fixed seed; what opens must be consistent with its table.
fn open_and_check(file: &WorkloadFile<'_>, plaintext_len: Option<usize>) {
    let Ok(opened) = file.open(&seed()) else {
        return;
    };
    let mut total = 0usize;
    for component in opened.components() {
        let data = opened.data(component);
        assert_eq!(data.len() as u64, component.len);
        assert_eq!(veritee_crypto::digest::sha256(data), component.sha256);
        total += data.len();
    }
    assert!(
        opened
            .components()
            .iter()
            .any(|c| c.kind == veritee_workload::ComponentKind::Module)
    );
    if let Some(len) = plaintext_len {
        let table: usize = opened
            .components()
            .iter()
            .map(|c| 1 + 1 + c.name.len() + 32 + 8)
            .sum();
        assert_eq!(2 + table + total, len);
    }
}

/// Adds a slot to a parsed file and reads the result back: same workload, same digest.
fn retarget(file: &WorkloadFile<'_>) {
    let slot = slot_for(file.id());
    let Ok(bytes) = file.with_slot(slot.clone()) else {
        assert_eq!(file.slots().len(), MAX_SLOTS);
        return;
    };
    let again = WorkloadFile::parse(&bytes).expect("a file with a slot added reads back");
    assert_eq!(again.id(), file.id());
    assert_eq!(again.digest(), file.digest());
    assert_eq!(again.payload_len(), file.payload_len());
    let key = storage_key_id(&storage_key().public_key());
    assert_eq!(again.slot_for(&key).expect("the added slot"), &slot);
    let replaced = file.slots().iter().any(|s| s.storage_key == key);
    assert_eq!(
        again.slots().len(),
        file.slots().len() + usize::from(!replaced)
    );
}

/// The messages of flow 2 as the security module and the target read them: the JSON
/// bodies, and the CBOR inside a sealed enrollment or measurement answer; what reads
/// must write back and read again the same.
fn messages(data: &[u8]) {
    use veritee_proto::workload::{
        AuthorizeRequest, EnrollmentAnswer, EnrollmentChallenge, EnrollmentEvidence,
        MeasurementEvidence, PutSeedRequest, ReleaseRequest, ReleaseResponse,
    };
    fn json<T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + core::fmt::Debug>(
        data: &[u8],
    ) {
        if let Ok(value) = serde_json::from_slice::<T>(data) {
            let again: T = serde_json::from_slice(&serde_json::to_vec(&value).expect("writes"))
                .expect("reads back");
            assert_eq!(again, value);
        }
    }
    fn cbor<T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + core::fmt::Debug>(
        data: &[u8],
    ) {
        if let Ok(value) = veritee_proto::cbor::from_slice::<T>(data) {
            let mut out = Vec::new();
            ciborium::into_writer(&value, &mut out).expect("writes");
            let again: T = veritee_proto::cbor::from_slice(&out).expect("reads back");
            assert_eq!(again, value);
        }
    }
    json::<PutSeedRequest>(data);
    json::<EnrollmentChallenge>(data);
    json::<EnrollmentAnswer>(data);
    json::<AuthorizeRequest>(data);
    json::<ReleaseRequest>(data);
    json::<ReleaseResponse>(data);
    cbor::<EnrollmentEvidence>(data);
    cbor::<MeasurementEvidence>(data);
    let _ = veritee_proto::workload::launch_nonce(&String::from_utf8_lossy(data));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Ok(file) = WorkloadFile::parse(rest) {
                open_and_check(&file, None);
                retarget(&file);
            }
        }
        1 => {
            if let Ok(slot) = Authorization::from_bytes(rest) {
                assert_eq!(&slot.to_bytes()[..], rest);
                let _ = slot.unseal(&storage_key(), 1_700_000_000);
            }
        }
        2 => {
            let _ = fuzzing::parse_table(rest);
        }
        3 => messages(rest),
        _ => {
            let bytes = seal(rest);
            let Ok(file) = WorkloadFile::parse(&bytes) else {
                // Only a payload too short for a one-entry table (count, kind, name
                // length, a one-byte name, SHA-256, length: 45 bytes) is refused before
                // the HMAC.
                assert!(rest.len() < 45);
                return;
            };
            open_and_check(&file, Some(rest.len()));
            retarget(&file);
        }
    }
});
