//! The workload format, version 1, through the public API: build, parse, open;
//! authorizations and re-targeting; every refusal the format names; the documented
//! layout checked by an independent implementation (aws-lc-rs directly); and a golden
//! file that pins version 1.

use std::path::PathBuf;

use aws_lc_rs::{aead, digest, hkdf, hmac};
use veritee_crypto::Confidential;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_workload::{
    AUTHORIZATION_LEN, Authorization, ComponentKind, ComponentSpec, HEADER_LEN, HMAC_LEN,
    MAX_COMPONENTS, MAX_NAME_LEN, MAX_PAYLOAD_LEN, MAX_SLOTS, SEED_LEN, StorageKeyId,
    TPM_AUTHORIZATION_LEN, VERSION, WorkloadError, WorkloadFile, WorkloadId, WorkloadSeed, build,
    storage_key_id,
};

/// `(module (func (export "run") (result i32) i32.const 7))`, assembled by hand.
const MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type: () -> i32
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00, // export "run" = func 0
    0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x07, 0x0b, // code: i32.const 7, end
];
const CONFIG: &[u8] = b"answer = 7\nname = \"golden\"\n";
const SECRET: &[u8] = b"disk passphrase: correct horse battery staple";

/// Slot area magic and count.
const SLOT_AREA_HEADER_LEN: usize = 6;
/// A window that contains `NOW`.
const NOT_BEFORE: u64 = 1_700_000_000;
const NOT_AFTER: u64 = 1_800_000_000;
const NOW: u64 = 1_750_000_000;

fn specs() -> Vec<ComponentSpec<'static>> {
    vec![
        ComponentSpec {
            kind: ComponentKind::Module,
            name: "main.wasm",
            data: MODULE,
        },
        ComponentSpec {
            kind: ComponentKind::Configuration,
            name: "config.toml",
            data: CONFIG,
        },
        ComponentSpec {
            kind: ComponentKind::Secret,
            name: "CD1",
            data: SECRET,
        },
    ]
}

struct Built {
    seed: WorkloadSeed,
    id: WorkloadId,
    bytes: Vec<u8>,
}

impl Built {
    fn new(components: &[ComponentSpec<'_>]) -> Self {
        let seed = WorkloadSeed::generate().unwrap();
        let id = WorkloadId::generate().unwrap();
        let bytes = build(&seed, id, components).unwrap();
        Self { seed, id, bytes }
    }

    fn small() -> Self {
        Self::new(&specs())
    }

    /// The bytes the HMAC covers, with the HMAC: the workload without its slot area.
    fn workload(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SLOT_AREA_HEADER_LEN]
    }

    fn issue(&self, key: &HpkeKeyPair) -> Authorization {
        Authorization::issue(
            &self.seed,
            self.id,
            &key.public_key(),
            NOT_BEFORE,
            NOT_AFTER,
        )
        .unwrap()
    }

    fn with_slot(&self, key: &HpkeKeyPair) -> Vec<u8> {
        WorkloadFile::parse(&self.bytes)
            .unwrap()
            .with_slot(self.issue(key))
            .unwrap()
    }
}

fn key_id(key: &HpkeKeyPair) -> StorageKeyId {
    storage_key_id(&key.public_key())
}

/// What a target does at launch: find its slot, unseal the seed, open.
fn launch(
    bytes: &[u8],
    key: &HpkeKeyPair,
    now: u64,
) -> Result<veritee_workload::OpenedWorkload, WorkloadError> {
    let file = WorkloadFile::parse(bytes)?;
    let seed = file.slot_for(&key_id(key))?.unseal(key, now)?;
    file.open(&seed)
}

fn assert_small_components(opened: &veritee_workload::OpenedWorkload) {
    let expected = specs();
    assert_eq!(opened.components().len(), expected.len());
    for (component, spec) in opened.components().iter().zip(&expected) {
        assert_eq!(component.kind, spec.kind);
        assert_eq!(component.name, spec.name);
        assert_eq!(component.len, spec.data.len() as u64);
        assert_eq!(component.sha256, sha256(spec.data));
        assert_eq!(opened.data(component), spec.data);
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .unwrap()
}

// ---------------------------------------------------------------------------------
// Build, parse, open.

#[test]
fn build_parse_open_round_trip() {
    let built = Built::small();
    let file = WorkloadFile::parse(&built.bytes).unwrap();
    assert_eq!(file.id(), built.id);
    assert!(file.slots().is_empty());
    let plaintext_len: usize = 2 + specs()
        .iter()
        .map(|c| 1 + 1 + c.name.len() + 32 + 8 + c.data.len())
        .sum::<usize>();
    assert_eq!(file.payload_len(), (plaintext_len + 16) as u64);
    assert_eq!(
        built.bytes.len(),
        HEADER_LEN + plaintext_len + 16 + HMAC_LEN + SLOT_AREA_HEADER_LEN
    );

    let opened = file.open(&built.seed).unwrap();
    assert_eq!(opened.id(), built.id);
    assert_small_components(&opened);

    let modules: Vec<_> = opened.of_kind(ComponentKind::Module).collect();
    assert_eq!(modules.len(), 1);
    assert_eq!(modules[0].0.name, "main.wasm");
    assert_eq!(modules[0].1, MODULE);
    let configs: Vec<_> = opened.of_kind(ComponentKind::Configuration).collect();
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].0.name, "config.toml");
    assert_eq!(configs[0].1, CONFIG);
    let secrets: Vec<_> = opened.of_kind(ComponentKind::Secret).collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0.name, "CD1");
    assert_eq!(secrets[0].1, SECRET);

    // Debug output names components but never quotes their bytes.
    let debug = format!("{opened:?}");
    assert!(debug.contains("CD1"));
    assert!(!debug.contains("passphrase"));
}

#[test]
fn of_kind_keeps_the_owners_order_and_empty_components() {
    let specs = [
        ComponentSpec {
            kind: ComponentKind::Secret,
            name: "CD2",
            data: b"second",
        },
        ComponentSpec {
            kind: ComponentKind::Module,
            name: "b.wasm",
            data: MODULE,
        },
        ComponentSpec {
            kind: ComponentKind::Secret,
            name: "CD1",
            data: b"",
        },
        ComponentSpec {
            kind: ComponentKind::Module,
            name: "a.wasm",
            data: b"\0asm\x01\0\0\0",
        },
    ];
    let built = Built::new(&specs);
    let opened = WorkloadFile::parse(&built.bytes)
        .unwrap()
        .open(&built.seed)
        .unwrap();
    let names = |kind| {
        opened
            .of_kind(kind)
            .map(|(c, d)| (c.name.clone(), d.to_vec()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(ComponentKind::Module),
        [
            ("b.wasm".to_owned(), MODULE.to_vec()),
            ("a.wasm".to_owned(), b"\0asm\x01\0\0\0".to_vec())
        ]
    );
    assert_eq!(
        names(ComponentKind::Secret),
        [
            ("CD2".to_owned(), b"second".to_vec()),
            ("CD1".to_owned(), Vec::new())
        ]
    );
    assert!(names(ComponentKind::Configuration).is_empty());
}

#[test]
fn two_builds_of_the_same_components_differ() {
    let seed = WorkloadSeed::generate().unwrap();
    let id = WorkloadId::generate().unwrap();
    let a = build(&seed, id, &specs()).unwrap();
    let b = build(&seed, id, &specs()).unwrap();
    // A fresh nonce every build: the payloads differ though seed, id and data agree.
    assert_ne!(a, b);
    for bytes in [&a, &b] {
        let opened = WorkloadFile::parse(bytes).unwrap().open(&seed).unwrap();
        assert_small_components(&opened);
    }
}

#[test]
fn a_payload_of_a_mebibyte_and_more_is_checked_the_same() {
    // At 1 MiB the HMAC runs on a second thread.
    let big = vec![0x5au8; 1 << 20];
    let specs = [
        ComponentSpec {
            kind: ComponentKind::Module,
            name: "main.wasm",
            data: MODULE,
        },
        ComponentSpec {
            kind: ComponentKind::Configuration,
            name: "big",
            data: &big,
        },
    ];
    let built = Built::new(&specs);
    let file = WorkloadFile::parse(&built.bytes).unwrap();
    assert!(file.payload_len() >= 1 << 20);
    let opened = file.open(&built.seed).unwrap();
    assert_eq!(
        opened
            .of_kind(ComponentKind::Configuration)
            .next()
            .unwrap()
            .1,
        &big[..]
    );

    let other = WorkloadSeed::generate().unwrap();
    assert!(matches!(file.open(&other), Err(WorkloadError::Hmac)));

    // Altered anywhere in the payload or HMAC: refused by the HMAC, though the
    // decryption ran beside it.
    let covered = HEADER_LEN + file.payload_len() as usize;
    for at in [
        HEADER_LEN,
        HEADER_LEN + 100_000,
        covered - 17,
        covered - 1,
        covered,
        covered + HMAC_LEN - 1,
    ] {
        let mut bytes = built.bytes.clone();
        bytes[at] ^= 0x01;
        let file = WorkloadFile::parse(&bytes).unwrap();
        assert!(
            matches!(file.open(&built.seed), Err(WorkloadError::Hmac)),
            "byte {at}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Authorizations and slots.

#[test]
fn authorization_issue_slot_unseal_open() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let slot = built.issue(&key);
    assert_eq!(slot.workload, built.id);
    assert_eq!(slot.storage_key, key_id(&key));
    assert_eq!((slot.not_before, slot.not_after), (NOT_BEFORE, NOT_AFTER));
    // Debug never shows the sealed seed.
    assert!(!format!("{slot:?}").contains("sealed"));

    let bytes = WorkloadFile::parse(&built.bytes)
        .unwrap()
        .with_slot(slot.clone())
        .unwrap();
    assert_eq!(
        bytes.len(),
        built.bytes.len() + AUTHORIZATION_LEN,
        "one slot adds 148 bytes"
    );
    let file = WorkloadFile::parse(&bytes).unwrap();
    assert_eq!(file.slots(), std::slice::from_ref(&slot));
    let found = file.slot_for(&key_id(&key)).unwrap();
    assert_eq!(found, &slot);
    let seed = found.unseal(&key, NOW).unwrap();
    assert!(seed.same_as(&built.seed));
    assert_small_components(&file.open(&seed).unwrap());

    // The slot's bytes read back as the same slot.
    let again = Authorization::from_bytes(&slot.to_bytes()).unwrap();
    assert_eq!(again, slot);
    assert_eq!(again.to_bytes(), slot.to_bytes());
    // And they sit at the end of the file, after the slot area's magic and count.
    let area = &bytes[built.workload().len()..];
    assert_eq!(&area[..4], b"VTSL");
    assert_eq!(&area[4..6], &1u16.to_be_bytes());
    assert_eq!(&area[6..], &slot.to_bytes()[..]);
}

#[test]
fn the_slot_layout_is_as_documented() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let slot = built.issue(&key);
    let bytes = slot.to_bytes();
    assert_eq!(bytes.len(), 148);
    assert_eq!(&bytes[0..2], &1u16.to_be_bytes());
    assert_eq!(&bytes[2..4], &[0, 0]);
    assert_eq!(&bytes[4..20], built.id.as_bytes());
    assert_eq!(&bytes[20..36], slot.storage_key.as_bytes());
    assert_eq!(&bytes[36..52], &slot.id);
    assert_eq!(&bytes[52..60], &NOT_BEFORE.to_be_bytes());
    assert_eq!(&bytes[60..68], &NOT_AFTER.to_be_bytes());

    // Storage key id: SHA-256("veritee workload storage key" | public key)[..16].
    let mut input = b"veritee workload storage key".to_vec();
    input.extend_from_slice(key.public_key().as_bytes());
    assert_eq!(slot.storage_key.as_bytes(), &sha256(&input)[..16]);
    assert_eq!(
        slot.storage_key.to_string(),
        hex::encode(&sha256(&input)[..16])
    );

    // Sealed seed: HPKE base mode to the storage key, AAD = bytes 0..68.
    let seed = veritee_crypto::hpke::open(
        &key,
        b"veritee workload authorization v1",
        &bytes[..68],
        &bytes[68..],
    )
    .unwrap();
    assert_eq!(seed.expose(), built.seed.expose());

    // Two slots for one key and workload differ (fresh HPKE key, fresh id).
    let other = built.issue(&key);
    assert_ne!(other.id, slot.id);
    assert_ne!(other.to_bytes()[68..], bytes[68..]);
}

#[test]
fn one_file_carries_slots_for_many_targets() {
    let built = Built::small();
    let a = HpkeKeyPair::generate();
    let b = HpkeKeyPair::generate();
    let original = WorkloadFile::parse(&built.bytes).unwrap();
    let digest = original.digest();

    let with_a = built.with_slot(&a);
    let with_both = WorkloadFile::parse(&with_a)
        .unwrap()
        .with_slot(built.issue(&b))
        .unwrap();
    let file = WorkloadFile::parse(&with_both).unwrap();
    assert_eq!(file.slots().len(), 2);
    assert_eq!(file.slots()[0].storage_key, key_id(&a));
    assert_eq!(file.slots()[1].storage_key, key_id(&b));

    // The covered bytes and the HMAC are those of the build, whatever the slots.
    for bytes in [&with_a, &with_both] {
        assert_eq!(&bytes[..built.workload().len()], built.workload());
        assert_eq!(WorkloadFile::parse(bytes).unwrap().digest(), digest);
    }
    // The digest is SHA-256 of header, payload and HMAC.
    assert_eq!(digest, sha256(built.workload()));

    // Each target opens with its own key.
    for key in [&a, &b] {
        let opened = launch(&with_both, key, NOW).unwrap();
        assert_small_components(&opened);
    }
    // A third target has no slot.
    let c = HpkeKeyPair::generate();
    match launch(&with_both, &c, NOW) {
        Err(WorkloadError::NoSlot(id)) => assert_eq!(id, key_id(&c).to_string()),
        other => panic!("expected NoSlot, got {other:?}"),
    }
}

#[test]
fn with_slot_replaces_the_slot_for_the_same_key() {
    let built = Built::small();
    let a = HpkeKeyPair::generate();
    let b = HpkeKeyPair::generate();
    let expired = Authorization::issue(&built.seed, built.id, &a.public_key(), 10, 20).unwrap();
    let bytes = WorkloadFile::parse(&built.bytes)
        .unwrap()
        .with_slot(expired)
        .unwrap();
    let bytes = WorkloadFile::parse(&bytes)
        .unwrap()
        .with_slot(built.issue(&b))
        .unwrap();
    assert!(matches!(
        launch(&bytes, &a, NOW),
        Err(WorkloadError::OutsideWindow {
            now: NOW,
            not_before: 10,
            not_after: 20
        })
    ));

    let renewed = built.issue(&a);
    let bytes = WorkloadFile::parse(&bytes)
        .unwrap()
        .with_slot(renewed.clone())
        .unwrap();
    let file = WorkloadFile::parse(&bytes).unwrap();
    assert_eq!(file.slots().len(), 2, "replaced, not added");
    assert_eq!(file.slots()[0], renewed, "in the place of the old slot");
    assert_eq!(file.slots()[1].storage_key, key_id(&b));
    assert_small_components(&launch(&bytes, &a, NOW).unwrap());
    assert_small_components(&launch(&bytes, &b, NOW).unwrap());
}

#[test]
fn a_slot_for_another_workload_is_refused() {
    let a = Built::small();
    let b = Built::small();
    let key = HpkeKeyPair::generate();
    let file = WorkloadFile::parse(&a.bytes).unwrap();
    assert!(matches!(
        file.with_slot(b.issue(&key)),
        Err(WorkloadError::WrongWorkload { .. })
    ));

    // Spliced into the slot area by hand: refused when read.
    let mut bytes = a.workload().to_vec();
    bytes.extend_from_slice(b"VTSL");
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&b.issue(&key).to_bytes());
    match WorkloadFile::parse(&bytes) {
        Err(WorkloadError::WrongWorkload { expected, found }) => {
            assert_eq!(expected, a.id.to_string());
            assert_eq!(found, b.id.to_string());
        }
        other => panic!("expected WrongWorkload, got {other:?}"),
    }

    // Its seed does not open this workload either.
    let seed_b = b.issue(&key).unseal(&key, NOW).unwrap();
    assert!(matches!(file.open(&seed_b), Err(WorkloadError::Hmac)));
}

#[test]
fn two_slots_for_one_key_are_refused() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let mut bytes = built.workload().to_vec();
    bytes.extend_from_slice(b"VTSL");
    bytes.extend_from_slice(&2u16.to_be_bytes());
    bytes.extend_from_slice(&built.issue(&key).to_bytes());
    bytes.extend_from_slice(&built.issue(&key).to_bytes());
    assert!(matches!(
        WorkloadFile::parse(&bytes),
        Err(WorkloadError::Malformed(_))
    ));
}

#[test]
fn a_slot_swapped_between_targets_is_refused() {
    let built = Built::small();
    let a = HpkeKeyPair::generate();
    let b = HpkeKeyPair::generate();
    let slot_a = built.issue(&a);
    let slot_b = built.issue(&b);

    // Target B's key with A's slot: it is not B's.
    // (Which key id the error names is not pinned here: `slot_for` names the target's
    // key, `unseal` the slot's.)
    assert!(matches!(
        slot_a.unseal(&b, NOW),
        Err(WorkloadError::NoSlot(_))
    ));
    assert!(matches!(
        slot_b.unseal(&a, NOW),
        Err(WorkloadError::NoSlot(_))
    ));

    // A's slot relabelled as B's (storage key id rewritten): the sealed seed is bound
    // to its fields and sealed to A's key, so B cannot open it.
    let mut bytes = slot_a.to_bytes();
    bytes[20..36].copy_from_slice(key_id(&b).as_bytes());
    let relabelled = Authorization::from_bytes(&bytes).unwrap();
    assert!(matches!(
        relabelled.unseal(&b, NOW),
        Err(WorkloadError::SealedSeed)
    ));
    // A no longer finds it as its own.
    assert!(matches!(
        relabelled.unseal(&a, NOW),
        Err(WorkloadError::NoSlot(_))
    ));

    // In a file: B's slot position holding A's sealed seed under B's id.
    let file_bytes = WorkloadFile::parse(&built.bytes)
        .unwrap()
        .with_slot(relabelled)
        .unwrap();
    assert!(matches!(
        launch(&file_bytes, &b, NOW),
        Err(WorkloadError::SealedSeed)
    ));
    assert!(matches!(
        launch(&file_bytes, &a, NOW),
        Err(WorkloadError::NoSlot(_))
    ));

    // A's sealed seed moved into B's slot, the rest of B's fields kept.
    let mut bytes = slot_b.to_bytes();
    bytes[68..].copy_from_slice(&slot_a.to_bytes()[68..]);
    assert!(matches!(
        Authorization::from_bytes(&bytes).unwrap().unseal(&b, NOW),
        Err(WorkloadError::SealedSeed)
    ));
}

#[test]
fn the_window_is_inclusive_and_enforced() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let bytes = built.with_slot(&key);
    for now in [NOT_BEFORE, NOW, NOT_AFTER] {
        assert_small_components(&launch(&bytes, &key, now).unwrap());
    }
    for now in [0, NOT_BEFORE - 1, NOT_AFTER + 1, u64::MAX] {
        match launch(&bytes, &key, now) {
            Err(WorkloadError::OutsideWindow {
                now: at,
                not_before,
                not_after,
            }) => {
                assert_eq!((at, not_before, not_after), (now, NOT_BEFORE, NOT_AFTER));
            }
            other => panic!("expected OutsideWindow at {now}, got {other:?}"),
        }
    }

    // A one-second window.
    let slot = Authorization::issue(&built.seed, built.id, &key.public_key(), 5, 5).unwrap();
    assert!(slot.unseal(&key, 5).is_ok());
    assert!(matches!(
        slot.unseal(&key, 4),
        Err(WorkloadError::OutsideWindow { .. })
    ));
    assert!(matches!(
        slot.unseal(&key, 6),
        Err(WorkloadError::OutsideWindow { .. })
    ));

    // A window that ends before it starts is not issued, nor read.
    assert!(matches!(
        Authorization::issue(&built.seed, built.id, &key.public_key(), 6, 5),
        Err(WorkloadError::Invalid(_))
    ));
    let mut raw = slot.to_bytes();
    raw[52..60].copy_from_slice(&6u64.to_be_bytes());
    assert!(matches!(
        Authorization::from_bytes(&raw),
        Err(WorkloadError::Malformed(_))
    ));
}

#[test]
fn every_flipped_byte_of_an_authorization_is_refused() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let slot = built.issue(&key);
    let good = slot.to_bytes();
    assert!(slot.unseal(&key, NOW).unwrap().same_as(&built.seed));
    let file_bytes = WorkloadFile::parse(&built.bytes)
        .unwrap()
        .with_slot(slot.clone())
        .unwrap();
    let slot_at = file_bytes.len() - AUTHORIZATION_LEN;
    assert_eq!(&file_bytes[slot_at..], &good[..]);

    let refused = |result: &Result<WorkloadSeed, WorkloadError>| {
        matches!(
            result,
            Err(WorkloadError::NoSlot(_)
                | WorkloadError::OutsideWindow { .. }
                | WorkloadError::SealedSeed)
        )
    };
    for at in 0..AUTHORIZATION_LEN {
        for flip in [0x01u8, 0x80] {
            // On its own.
            let mut bytes = good.clone();
            bytes[at] ^= flip;
            match Authorization::from_bytes(&bytes) {
                Err(
                    WorkloadError::Malformed(_)
                    | WorkloadError::Truncated { .. }
                    | WorkloadError::TrailingBytes(_),
                ) => {}
                Err(other) => panic!("byte {at}: unexpected parse error {other:?}"),
                Ok(altered) => {
                    let result = altered.unseal(&key, NOW);
                    assert!(refused(&result), "byte {at} ^ {flip:#x}: {result:?}");
                }
            }

            // In a file, the way a target meets it.
            let mut bytes = file_bytes.clone();
            bytes[slot_at + at] ^= flip;
            let Ok(file) = WorkloadFile::parse(&bytes) else {
                continue;
            };
            let result = file
                .slot_for(&key_id(&key))
                .and_then(|slot| slot.unseal(&key, NOW));
            assert!(refused(&result), "file byte {at} ^ {flip:#x}: {result:?}");
            if let Ok(seed) = result {
                panic!(
                    "byte {at} unsealed a seed; opens: {}",
                    file.open(&seed).is_ok()
                );
            }
        }
    }
}

#[test]
fn authorization_from_bytes_refuses_other_lengths_and_versions() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let good = built.issue(&key).to_bytes();
    for len in 0..AUTHORIZATION_LEN {
        assert!(
            matches!(
                Authorization::from_bytes(&good[..len]),
                Err(WorkloadError::Truncated { .. } | WorkloadError::Malformed(_))
            ),
            "{len} bytes"
        );
    }
    let mut long = good.to_vec();
    long.push(0);
    assert!(matches!(
        Authorization::from_bytes(&long),
        Err(WorkloadError::TrailingBytes(1))
    ));
    let mut v3 = good.clone();
    v3[0..2].copy_from_slice(&3u16.to_be_bytes());
    assert!(matches!(
        Authorization::from_bytes(&v3),
        Err(WorkloadError::Malformed(_))
    ));
    // Relabelled as a TPM slot, it is too short for one.
    let mut v2 = good.clone();
    v2[0..2].copy_from_slice(&2u16.to_be_bytes());
    assert!(matches!(
        Authorization::from_bytes(&v2),
        Err(WorkloadError::Truncated { .. })
    ));
    let mut reserved = good.clone();
    reserved[3] = 1;
    assert!(matches!(
        Authorization::from_bytes(&reserved),
        Err(WorkloadError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------
// What a target refuses in a file.

#[test]
fn a_wrong_seed_fails_the_hmac() {
    let built = Built::small();
    let file = WorkloadFile::parse(&built.bytes).unwrap();
    let other = WorkloadSeed::generate().unwrap();
    assert!(matches!(file.open(&other), Err(WorkloadError::Hmac)));
    let mut near = *built.seed.expose();
    near[SEED_LEN - 1] ^= 1;
    let near = WorkloadSeed::from_bytes(&near).unwrap();
    assert!(!near.same_as(&built.seed));
    assert!(matches!(file.open(&near), Err(WorkloadError::Hmac)));
    // The right seed, read back from its bytes, opens.
    let again = WorkloadSeed::from_bytes(built.seed.expose()).unwrap();
    assert!(again.same_as(&built.seed));
    assert!(file.open(&again).is_ok());
    assert_eq!(format!("{again:?}"), "WorkloadSeed(<redacted>)");
}

#[test]
fn seeds_are_32_bytes() {
    for len in [0, 31, 33, 64] {
        assert!(matches!(
            WorkloadSeed::from_bytes(&vec![7u8; len]),
            Err(WorkloadError::Invalid(_))
        ));
    }
}

#[test]
fn every_flipped_byte_of_the_workload_is_refused() {
    let built = Built::small();
    let covered = built.workload().len();
    assert!(covered < 400, "a small workload");
    for at in 0..covered {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = built.bytes.clone();
            bytes[at] ^= flip;
            match WorkloadFile::parse(&bytes) {
                Err(_) => assert!(
                    at < HEADER_LEN,
                    "byte {at}: only the header is read before the HMAC"
                ),
                Ok(file) => match file.open(&built.seed) {
                    Err(WorkloadError::Hmac) => {}
                    other => panic!("byte {at} ^ {flip:#x}: expected Hmac, got {other:?}"),
                },
            }
        }
    }
    // The header's fields each have their own refusal.
    let with = |at: usize, value: u8| {
        let mut bytes = built.bytes.clone();
        bytes[at] = value;
        WorkloadFile::parse(&bytes).map(|_| ())
    };
    assert!(matches!(with(0, b'X'), Err(WorkloadError::Magic(m)) if &m == b"XTWL"));
    assert!(matches!(with(5, 2), Err(WorkloadError::Version(2))));
    assert!(matches!(with(4, 1), Err(WorkloadError::Version(0x0101))));
    assert!(matches!(with(7, 1), Err(WorkloadError::Malformed(_))));
    assert_eq!(VERSION, 1);
}

#[test]
fn the_slot_area_is_checked() {
    let built = Built::small();
    let mut bytes = built.bytes.clone();
    let area = built.workload().len();
    bytes[area] = b'X';
    assert!(matches!(
        WorkloadFile::parse(&bytes),
        Err(WorkloadError::Malformed(_))
    ));
    // Flipping the slot area never reaches the HMAC: it is not covered, but a file
    // whose area does not read is refused whole.
    for at in area..bytes.len() {
        let mut bytes = built.bytes.clone();
        bytes[at] ^= 0x01;
        assert!(WorkloadFile::parse(&bytes).is_err(), "byte {at}");
    }
}

#[test]
fn every_truncation_is_refused() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    let bytes = built.with_slot(&key);
    for len in 0..bytes.len() {
        match WorkloadFile::parse(&bytes[..len]) {
            Err(WorkloadError::Truncated { needed, .. }) => assert!(needed > 0),
            other => panic!("{len} bytes: expected Truncated, got {other:?}"),
        }
    }
    assert!(WorkloadFile::parse(&bytes).is_ok());
}

#[test]
fn trailing_bytes_are_refused() {
    let built = Built::small();
    let key = HpkeKeyPair::generate();
    for base in [built.bytes.clone(), built.with_slot(&key)] {
        for extra in [1usize, 2, 147, 148, 149] {
            let mut bytes = base.clone();
            bytes.extend(std::iter::repeat_n(0u8, extra));
            match WorkloadFile::parse(&bytes) {
                Err(WorkloadError::TrailingBytes(n)) => assert_eq!(n, extra),
                other => panic!("{extra} extra bytes: expected TrailingBytes, got {other:?}"),
            }
        }
    }
}

#[test]
fn an_oversized_payload_length_is_refused_before_reading() {
    let built = Built::small();
    for len in [MAX_PAYLOAD_LEN + 1, 1 << 40, u64::MAX / 2, u64::MAX] {
        let mut bytes = built.bytes.clone();
        bytes[36..44].copy_from_slice(&len.to_be_bytes());
        match WorkloadFile::parse(&bytes) {
            Err(WorkloadError::TooLarge {
                actual, maximum, ..
            }) => {
                assert_eq!((actual, maximum), (len, MAX_PAYLOAD_LEN));
            }
            other => panic!("payload length {len}: expected TooLarge, got {other:?}"),
        }
        // Just the header is enough to be refused.
        assert!(matches!(
            WorkloadFile::parse(&bytes[..HEADER_LEN]),
            Err(WorkloadError::TooLarge { .. })
        ));
    }
    // The largest allowed length is read as a length: the file is then short.
    let mut bytes = built.bytes.clone();
    bytes[36..44].copy_from_slice(&MAX_PAYLOAD_LEN.to_be_bytes());
    assert!(matches!(
        WorkloadFile::parse(&bytes),
        Err(WorkloadError::Truncated { .. })
    ));
    // Too short to hold a tag and a table.
    for len in [0u64, 1, 16, 17] {
        let mut bytes = built.bytes.clone();
        bytes[36..44].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            WorkloadFile::parse(&bytes),
            Err(WorkloadError::Malformed(_))
        ));
    }
}

/// `count` slots for distinct (made-up) storage keys, without HPKE.
fn fake_slots(id: WorkloadId, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * AUTHORIZATION_LEN);
    for i in 0..count {
        let mut slot = [0u8; AUTHORIZATION_LEN];
        slot[0..2].copy_from_slice(&1u16.to_be_bytes());
        slot[4..20].copy_from_slice(id.as_bytes());
        slot[20..28].copy_from_slice(&(i as u64).to_be_bytes());
        slot[60..68].copy_from_slice(&u64::MAX.to_be_bytes());
        out.extend_from_slice(&slot);
    }
    out
}

#[test]
fn too_many_slots_are_refused() {
    let built = Built::small();
    for count in [MAX_SLOTS + 1, 4096, u16::MAX as usize] {
        let mut bytes = built.workload().to_vec();
        bytes.extend_from_slice(b"VTSL");
        bytes.extend_from_slice(&(count as u16).to_be_bytes());
        match WorkloadFile::parse(&bytes) {
            Err(WorkloadError::TooLarge {
                actual, maximum, ..
            }) => assert_eq!((actual, maximum), (count as u64, MAX_SLOTS as u64)),
            other => panic!("{count} slots: expected TooLarge, got {other:?}"),
        }
        // Even with every slot present.
        bytes.extend_from_slice(&fake_slots(built.id, count));
        assert!(matches!(
            WorkloadFile::parse(&bytes),
            Err(WorkloadError::TooLarge { .. })
        ));
    }

    // Exactly MAX_SLOTS read; one more is not added, a replacement is.
    let mut bytes = built.workload().to_vec();
    bytes.extend_from_slice(b"VTSL");
    bytes.extend_from_slice(&(MAX_SLOTS as u16).to_be_bytes());
    bytes.extend_from_slice(&fake_slots(built.id, MAX_SLOTS));
    let file = WorkloadFile::parse(&bytes).unwrap();
    assert_eq!(file.slots().len(), MAX_SLOTS);
    let key = HpkeKeyPair::generate();
    assert!(matches!(
        file.with_slot(built.issue(&key)),
        Err(WorkloadError::TooLarge { .. })
    ));
    let replacement = file.slots()[7].clone();
    let again = file.with_slot(replacement).unwrap();
    assert_eq!(again, bytes);
    // Slots of junk do not stop the workload opening under its seed.
    assert_small_components(&file.open(&built.seed).unwrap());
}

// ---------------------------------------------------------------------------------
// The documented layout, checked by an independent implementation (aws-lc-rs).

fn independent_key(seed: &[u8; 32], id: &[u8; 16], purpose: &[u8]) -> [u8; 32] {
    let mut salt = b"veritee workload v1".to_vec();
    salt.extend_from_slice(id);
    let mut out = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, &salt)
        .extract(seed)
        .expand(&[purpose], hkdf::HKDF_SHA256)
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

struct Entry<'a> {
    kind: u8,
    name: &'a str,
    sha256: [u8; 32],
    len: u64,
    data: &'a [u8],
}

impl<'a> Entry<'a> {
    fn of(kind: u8, name: &'a str, data: &'a [u8]) -> Self {
        Self {
            kind,
            name,
            sha256: sha256(data),
            len: data.len() as u64,
            data,
        }
    }
}

fn independent_plaintext(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = (entries.len() as u16).to_be_bytes().to_vec();
    for e in entries {
        out.push(e.kind);
        out.push(e.name.len() as u8);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.sha256);
        out.extend_from_slice(&e.len.to_be_bytes());
    }
    for e in entries {
        out.extend_from_slice(e.data);
    }
    out
}

/// A workload file assembled per the picture in the crate documentation.
fn independent_file(
    seed: &[u8; 32],
    id: &[u8; 16],
    nonce: [u8; 12],
    plaintext: &[u8],
    tamper_ciphertext: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"VTWL");
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&((plaintext.len() + 16) as u64).to_be_bytes());
    assert_eq!(out.len(), 44);
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(
            &aead::AES_256_GCM,
            &independent_key(seed, id, b"encryption"),
        )
        .unwrap(),
    );
    let mut payload = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(&out[..]),
        &mut payload,
    )
    .unwrap();
    if tamper_ciphertext {
        payload[0] ^= 1;
    }
    out.extend_from_slice(&payload);
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &independent_key(seed, id, b"hmac"));
    let tag = hmac::sign(&hmac_key, &out);
    out.extend_from_slice(tag.as_ref());
    out.extend_from_slice(b"VTSL");
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

fn independent_entries() -> Vec<Entry<'static>> {
    vec![
        Entry::of(1, "main.wasm", MODULE),
        Entry::of(2, "config.toml", CONFIG),
        Entry::of(3, "CD1", SECRET),
    ]
}

const SEED_BYTES: [u8; 32] = [0x5e; 32];
const ID_BYTES: [u8; 16] = [0x1d; 16];
const NONCE_BYTES: [u8; 12] = [0x0c; 12];

fn open_independent(bytes: &[u8]) -> Result<veritee_workload::OpenedWorkload, WorkloadError> {
    let seed = WorkloadSeed::from_bytes(&SEED_BYTES).unwrap();
    WorkloadFile::parse(bytes)?.open(&seed)
}

#[test]
fn a_file_made_independently_per_the_documented_layout_opens() {
    let plaintext = independent_plaintext(&independent_entries());
    let bytes = independent_file(&SEED_BYTES, &ID_BYTES, NONCE_BYTES, &plaintext, false);
    let opened = open_independent(&bytes).unwrap();
    assert_eq!(opened.id().as_bytes(), &ID_BYTES);
    assert_small_components(&opened);
}

#[test]
fn a_file_the_crate_builds_reads_independently_per_the_documented_layout() {
    let built = Built::small();
    let b = &built.bytes;
    assert_eq!(&b[0..4], b"VTWL");
    assert_eq!(&b[4..6], &1u16.to_be_bytes());
    assert_eq!(&b[6..8], &[0, 0]);
    assert_eq!(&b[8..24], built.id.as_bytes());
    let nonce: [u8; 12] = b[24..36].try_into().unwrap();
    let p = u64::from_be_bytes(b[36..44].try_into().unwrap()) as usize;
    assert_eq!(b.len(), 44 + p + 32 + 6);

    let seed = built.seed.expose();
    let hmac_key = hmac::Key::new(
        hmac::HMAC_SHA256,
        &independent_key(seed, built.id.as_bytes(), b"hmac"),
    );
    hmac::verify(&hmac_key, &b[..44 + p], &b[44 + p..76 + p]).unwrap();
    assert_eq!(&b[76 + p..80 + p], b"VTSL");
    assert_eq!(&b[80 + p..82 + p], &0u16.to_be_bytes());

    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(
            &aead::AES_256_GCM,
            &independent_key(seed, built.id.as_bytes(), b"encryption"),
        )
        .unwrap(),
    );
    let mut payload = b[44..44 + p].to_vec();
    let plaintext = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&b[..44]),
            &mut payload,
        )
        .unwrap();
    assert_eq!(plaintext, independent_plaintext(&independent_entries()));

    // The output key is the third derived key: a box sealed by the crate opens with
    // HKDF(..., info "output") and the documented AAD.
    let target = StorageKeyId::from_bytes([0x33; 16]);
    let sealed = built
        .seed
        .output_box(&built.id)
        .unwrap()
        .seal(&target, b"42")
        .unwrap();
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(
            &aead::AES_256_GCM,
            &independent_key(seed, built.id.as_bytes(), b"output"),
        )
        .unwrap(),
    );
    let mut aad = b"VTWO".to_vec();
    aad.extend_from_slice(built.id.as_bytes());
    aad.extend_from_slice(target.as_bytes());
    let mut body = sealed[12..].to_vec();
    let opened = key
        .open_in_place(
            aead::Nonce::try_assume_unique_for_key(&sealed[..12]).unwrap(),
            aead::Aad::from(&aad[..]),
            &mut body,
        )
        .unwrap();
    assert_eq!(opened, b"42");
}

#[test]
fn a_component_that_does_not_match_its_hash_is_named() {
    for (tampered, kind, name) in [
        (0usize, "module", "main.wasm"),
        (1, "configuration", "config.toml"),
        (2, "secret", "CD1"),
    ] {
        // The table's hash is wrong.
        let mut entries = independent_entries();
        entries[tampered].sha256[7] ^= 0x20;
        let bytes = independent_file(
            &SEED_BYTES,
            &ID_BYTES,
            NONCE_BYTES,
            &independent_plaintext(&entries),
            false,
        );
        match open_independent(&bytes) {
            Err(WorkloadError::ComponentHash { kind: k, name: n }) => {
                assert_eq!((k, n.as_str()), (kind, name));
            }
            other => panic!("expected ComponentHash for {name}, got {other:?}"),
        }

        // The bytes are wrong (same length), the table as built.
        let mut entries = independent_entries();
        let mut data = entries[tampered].data.to_vec();
        data[0] ^= 0x01;
        entries[tampered].data = Box::leak(data.into_boxed_slice());
        let bytes = independent_file(
            &SEED_BYTES,
            &ID_BYTES,
            NONCE_BYTES,
            &independent_plaintext(&entries),
            false,
        );
        let error = open_independent(&bytes).unwrap_err();
        assert!(
            matches!(&error, WorkloadError::ComponentHash { kind: k, name: n } if *k == kind && n == name),
            "{error:?}"
        );
        // The message names the component, not its bytes.
        let message = error.to_string();
        assert!(message.contains(name), "{message}");
        assert!(!message.contains("passphrase"), "{message}");
    }
}

#[test]
fn the_payload_tag_is_checked_even_when_the_hmac_holds() {
    let plaintext = independent_plaintext(&independent_entries());
    let bytes = independent_file(&SEED_BYTES, &ID_BYTES, NONCE_BYTES, &plaintext, true);
    assert!(matches!(
        open_independent(&bytes),
        Err(WorkloadError::Decrypt)
    ));
}

#[test]
fn a_malformed_table_behind_the_hmac_is_refused() {
    let malformed = |plaintext: Vec<u8>| {
        let bytes = independent_file(&SEED_BYTES, &ID_BYTES, NONCE_BYTES, &plaintext, false);
        open_independent(&bytes).map(|_| ()).unwrap_err()
    };
    let good = independent_plaintext(&independent_entries());

    // Lengths that do not fill the payload exactly.
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(malformed(long), WorkloadError::Malformed(_)));
    let mut short = good.clone();
    short.pop();
    assert!(matches!(malformed(short), WorkloadError::Malformed(_)));
    let mut entries = independent_entries();
    entries[1].len = u64::MAX;
    assert!(matches!(
        malformed(independent_plaintext(&entries)),
        WorkloadError::TooLarge { .. }
    ));
    // No module.
    let entries = vec![
        Entry::of(2, "config.toml", CONFIG),
        Entry::of(3, "CD1", SECRET),
    ];
    assert!(matches!(
        malformed(independent_plaintext(&entries)),
        WorkloadError::Malformed(_)
    ));
    // An unknown kind.
    let mut entries = independent_entries();
    entries[2].kind = 4;
    assert!(matches!(
        malformed(independent_plaintext(&entries)),
        WorkloadError::Malformed(_)
    ));
    // A name listed twice, a name the format does not allow, no components.
    let entries = vec![Entry::of(1, "a", MODULE), Entry::of(2, "a", CONFIG)];
    assert!(matches!(
        malformed(independent_plaintext(&entries)),
        WorkloadError::Malformed(_)
    ));
    let entries = vec![Entry::of(1, "a/b", MODULE)];
    assert!(matches!(
        malformed(independent_plaintext(&entries)),
        WorkloadError::Malformed(_)
    ));
    assert!(matches!(
        malformed(vec![0, 0, 1, 2, 3]),
        WorkloadError::Malformed(_)
    ));
    let mut too_many = good;
    too_many[0..2].copy_from_slice(&((MAX_COMPONENTS + 1) as u16).to_be_bytes());
    assert!(matches!(malformed(too_many), WorkloadError::Malformed(_)));
}

// ---------------------------------------------------------------------------------
// Output boxes.

#[test]
fn output_box_round_trip_and_refusals() {
    let built = Built::small();
    let a = key_id(&HpkeKeyPair::generate());
    let b = key_id(&HpkeKeyPair::generate());
    let out = built.seed.output_box(&built.id).unwrap();
    for output in [&b""[..], b"7", &[0xa5; 10_000]] {
        let sealed = out.seal(&a, output).unwrap();
        assert_eq!(sealed.len(), 12 + output.len() + 16);
        assert_eq!(out.open(&a, &sealed).unwrap().expose(), output);
        // The owner, holding the seed, opens it with a box of its own.
        let owner = WorkloadSeed::from_bytes(built.seed.expose())
            .unwrap()
            .output_box(&built.id)
            .unwrap();
        assert_eq!(owner.open(&a, &sealed).unwrap().expose(), output);

        // Passed off as another target's.
        assert!(matches!(out.open(&b, &sealed), Err(WorkloadError::Decrypt)));
        // Another workload's box, another seed's box.
        let other_id = WorkloadId::generate().unwrap();
        let other = built.seed.output_box(&other_id).unwrap();
        assert!(matches!(
            other.open(&a, &sealed),
            Err(WorkloadError::Decrypt)
        ));
        let other = WorkloadSeed::generate()
            .unwrap()
            .output_box(&built.id)
            .unwrap();
        assert!(matches!(
            other.open(&a, &sealed),
            Err(WorkloadError::Decrypt)
        ));
        // Altered.
        for at in [0, 11, 12, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[at] ^= 1;
            assert!(matches!(
                out.open(&a, &altered),
                Err(WorkloadError::Decrypt)
            ));
        }
        // Cut short.
        for len in 0..28.min(sealed.len()) {
            assert!(out.open(&a, &sealed[..len]).is_err(), "{len} bytes");
        }
    }
    // Two seals of one output differ (fresh nonce).
    assert_ne!(out.seal(&a, b"x").unwrap(), out.seal(&a, b"x").unwrap());
    assert!(!format!("{out:?}").contains("key:"));
}

// ---------------------------------------------------------------------------------
// Ids, names, build refusals.

#[test]
fn workload_ids_read_from_hex() {
    let id = WorkloadId::generate().unwrap();
    let text = id.to_string();
    assert_eq!(text.len(), 32);
    assert_eq!(text, hex::encode(id.as_bytes()));
    assert_eq!(WorkloadId::from_hex(&text).unwrap(), id);
    assert_eq!(WorkloadId::from_hex(&text.to_uppercase()).unwrap(), id);
    assert_eq!(format!("{id:?}"), format!("WorkloadId({text})"));
    assert_eq!(
        WorkloadId::from_hex("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .as_bytes(),
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    );
    assert_eq!(WorkloadId::from_bytes(*id.as_bytes()), id);

    let bad = [
        String::new(),
        text[..31].to_owned(),
        format!("{text}0"),
        format!("{}g", &text[..31]),
        format!("{} ", &text[..31]),
        format!("+{}", &text[..31]),
        format!("0x{}", &text[..30]),
        "é".repeat(16), // 32 bytes, no hex digit
        format!("{}é", &text[..30]),
        format!("{}\u{0660}", &text[..30]), // a non-ASCII digit, 2 bytes
    ];
    for text in &bad {
        assert!(
            matches!(WorkloadId::from_hex(text), Err(WorkloadError::Invalid(_))),
            "{text:?}"
        );
    }
}

#[test]
fn build_refuses_what_a_target_would_refuse() {
    let seed = WorkloadSeed::generate().unwrap();
    let id = WorkloadId::generate().unwrap();
    let module = |name| ComponentSpec {
        kind: ComponentKind::Module,
        name,
        data: MODULE,
    };
    let secret = |name| ComponentSpec {
        kind: ComponentKind::Secret,
        name,
        data: SECRET,
    };
    let refused = |specs: &[ComponentSpec<'_>]| {
        matches!(build(&seed, id, specs), Err(WorkloadError::Invalid(_)))
    };

    // Duplicate names, also across kinds.
    assert!(refused(&[module("a"), module("a")]));
    assert!(refused(&[module("a"), secret("a")]));
    assert!(refused(&[module("a"), secret("b"), secret("b")]));
    // No module; nothing at all; too many components.
    assert!(refused(&[secret("CD1")]));
    assert!(refused(&[
        ComponentSpec {
            kind: ComponentKind::Configuration,
            name: "c",
            data: CONFIG,
        },
        secret("CD1"),
    ]));
    assert!(refused(&[]));
    let names: Vec<String> = (0..=MAX_COMPONENTS).map(|i| format!("m{i}")).collect();
    let many: Vec<_> = names.iter().map(|n| module(n)).collect();
    assert!(refused(&many));
    assert!(build(&seed, id, &many[..MAX_COMPONENTS]).is_ok());
}

#[test]
fn component_name_rules() {
    let seed = WorkloadSeed::generate().unwrap();
    let id = WorkloadId::generate().unwrap();
    let with_name = |name: &str| {
        build(
            &seed,
            id,
            &[ComponentSpec {
                kind: ComponentKind::Module,
                name,
                data: MODULE,
            }],
        )
        .map(|_| ())
    };
    let longest = "x".repeat(MAX_NAME_LEN);
    for good in [
        "a",
        "A",
        "0",
        "main.wasm",
        "CD1",
        "a-b_c.D9",
        ".",
        "..",
        "-",
        longest.as_str(),
    ] {
        assert!(with_name(good).is_ok(), "{good:?}");
    }
    let too_long = "x".repeat(MAX_NAME_LEN + 1);
    for bad in [
        "",
        too_long.as_str(),
        "a b",
        "a/b",
        "a\\b",
        "a:b",
        "a\0",
        "a\n",
        "é",
        "ａ", // fullwidth
        "CD\u{0661}",
    ] {
        assert!(
            matches!(with_name(bad), Err(WorkloadError::Invalid(_))),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The golden file: version 1 of the format, pinned.

const GOLDEN_ID: &str = "e3552537889a682f1819317811340f62";
const GOLDEN_DIGEST: &str = "a115f6e15d28b887f243c032205100e016c5e227b6e258445189c68cc4c7bd41";

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Regenerates the golden files (then update `GOLDEN_ID` and `GOLDEN_DIGEST`):
/// `cargo test -p veritee-workload --test format -- --ignored write_golden_files`.
#[test]
#[ignore = "writes the golden files; run by hand to regenerate them"]
fn write_golden_files() {
    let seed = WorkloadSeed::generate().unwrap();
    let id = WorkloadId::generate().unwrap();
    let storage_key = HpkeKeyPair::generate();
    let bytes = build(&seed, id, &specs()).unwrap();
    let slot = Authorization::issue(&seed, id, &storage_key.public_key(), 0, u64::MAX).unwrap();
    let bytes = WorkloadFile::parse(&bytes)
        .unwrap()
        .with_slot(slot)
        .unwrap();
    let file = WorkloadFile::parse(&bytes).unwrap();
    std::fs::create_dir_all(golden_path("")).unwrap();
    std::fs::write(golden_path("golden-v1.vtwl"), &bytes).unwrap();
    std::fs::write(golden_path("golden-v1.seed"), seed.expose()).unwrap();
    std::fs::write(
        golden_path("golden-v1.storage-key"),
        storage_key.private_bytes().expose(),
    )
    .unwrap();
    println!("GOLDEN_ID = {id}");
    println!("GOLDEN_DIGEST = {}", hex::encode(file.digest()));
}

#[test]
fn golden_v1_file_opens() {
    let bytes = std::fs::read(golden_path("golden-v1.vtwl")).unwrap();
    let seed_bytes = std::fs::read(golden_path("golden-v1.seed")).unwrap();
    let key_bytes: [u8; 32] = std::fs::read(golden_path("golden-v1.storage-key"))
        .unwrap()
        .try_into()
        .unwrap();
    let seed = WorkloadSeed::from_bytes(&seed_bytes).unwrap();
    let key = HpkeKeyPair::from_private_bytes(&Confidential::new(key_bytes)).unwrap();

    let file = WorkloadFile::parse(&bytes).unwrap();
    assert_eq!(file.id(), WorkloadId::from_hex(GOLDEN_ID).unwrap());
    assert_eq!(hex::encode(file.digest()), GOLDEN_DIGEST);
    assert_eq!(file.slots().len(), 1);
    let p = file.payload_len() as usize;
    assert_eq!(bytes.len(), 44 + p + 32 + 6 + 148);
    assert_eq!(sha256(&bytes[..76 + p]), file.digest());

    let slot = file.slot_for(&key_id(&key)).unwrap();
    assert_eq!((slot.not_before, slot.not_after), (0, u64::MAX));
    for now in [0, NOW, u64::MAX] {
        assert!(slot.unseal(&key, now).unwrap().same_as(&seed));
    }
    let unsealed = slot.unseal(&key, NOW).unwrap();
    let opened = file.open(&unsealed).unwrap();
    assert_eq!(opened.id(), file.id());
    assert_small_components(&opened);
    let module: Vec<_> = opened.of_kind(ComponentKind::Module).collect();
    assert_eq!(
        (module[0].0.name.as_str(), module[0].1),
        ("main.wasm", MODULE)
    );

    // The stored seed opens the file directly, and an independent reading agrees.
    assert_small_components(&file.open(&seed).unwrap());
    let nonce: [u8; 12] = bytes[24..36].try_into().unwrap();
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(
            &aead::AES_256_GCM,
            &independent_key(seed.expose(), file.id().as_bytes(), b"encryption"),
        )
        .unwrap(),
    );
    let mut payload = bytes[44..44 + p].to_vec();
    let plaintext = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&bytes[..44]),
            &mut payload,
        )
        .unwrap();
    assert_eq!(plaintext, independent_plaintext(&independent_entries()));
}

// ---------------------------------------------------------------------------------
// Version 2 slots: the seed sealed to a TPM's RSA-2048 storage key. A software RSA key
// stands in for the TPM here (the enclave tests use swtpm): it decrypts with
// RSA-OAEP-SHA256 under the label TPM2_RSA_Decrypt is given.

struct SoftTpmKey {
    private: aws_lc_rs::rsa::PrivateDecryptingKey,
    spki: Vec<u8>,
    /// Stands in for the key's TPMT_PUBLIC, which names it in slots.
    public_area: Vec<u8>,
    /// The target enclave's own key, inside the TPM's layer.
    enclave: HpkeKeyPair,
}

impl SoftTpmKey {
    fn generate() -> Self {
        use aws_lc_rs::encoding::AsDer;
        let private =
            aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .unwrap();
        let spki = private.public_key().as_der().unwrap().as_ref().to_vec();
        let public_area = [b"TPMT_PUBLIC of ".as_slice(), &spki].concat();
        Self {
            private,
            spki,
            public_area,
            enclave: HpkeKeyPair::generate(),
        }
    }

    fn id(&self) -> StorageKeyId {
        veritee_workload::tpm_storage_key_id(&self.enclave.public_key(), &self.public_area)
    }

    fn issue(&self, built: &Built) -> Authorization {
        Authorization::issue_to_tpm(
            &built.seed,
            built.id,
            &self.enclave.public_key(),
            &self.spki,
            &self.public_area,
            NOT_BEFORE,
            NOT_AFTER,
        )
        .unwrap()
    }

    /// What the TPM does: OAEP-SHA256 decryption under `label`.
    fn decrypt(
        &self,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, &'static str> {
        let oaep = aws_lc_rs::rsa::OaepPrivateDecryptingKey::new(self.private.clone()).unwrap();
        let mut out = zeroize::Zeroizing::new(vec![0u8; oaep.min_output_size()]);
        let len = oaep
            .decrypt(
                &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
                ciphertext,
                &mut out,
                Some(label),
            )
            .map_err(|_| "TPM_RC_VALUE")?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

#[test]
fn a_tpm_slot_round_trips_and_unseals_under_its_label() {
    let built = Built::small();
    let tpm = SoftTpmKey::generate();
    let slot = tpm.issue(&built);
    assert!(slot.is_tpm());
    assert_eq!(slot.storage_key, tpm.id());
    let bytes = slot.to_bytes();
    assert_eq!(bytes.len(), TPM_AUTHORIZATION_LEN);
    assert_eq!(&bytes[0..2], &2u16.to_be_bytes(), "slot version 2");
    assert_eq!(&bytes[20..36], tpm.id().as_bytes());
    assert_eq!(Authorization::from_bytes(&bytes).unwrap(), slot);
    // The label is SHA-256 of the 68-byte header, then a zero byte; what the TPM gives
    // back is the seed sealed to the enclave, not the seed.
    let mut label = sha256(&bytes[..68]).to_vec();
    label.push(0);
    let by_hand = tpm.decrypt(&bytes[68..], &label).unwrap();
    assert_eq!(by_hand.len(), 80);
    assert!(!contains(&by_hand, built.seed.expose()));
    let seed = slot
        .unseal_with_tpm(tpm.id(), NOW, &tpm.enclave, |c, l| tpm.decrypt(c, l))
        .unwrap();
    assert!(seed.same_as(&built.seed));
    // The TPM without the enclave's key (the host, in the measured state) gets nothing.
    assert!(matches!(
        slot.unseal_with_tpm(tpm.id(), NOW, &HpkeKeyPair::generate(), |c, l| tpm
            .decrypt(c, l)),
        Err(WorkloadError::SealedSeed)
    ));
    // An enclave's key does not open it, nor a TPM slot an enclave's.
    assert!(matches!(
        slot.unseal(&HpkeKeyPair::generate(), NOW),
        Err(WorkloadError::NoSlot(_))
    ));
    let enclave = HpkeKeyPair::generate();
    assert!(matches!(
        built
            .issue(&enclave)
            .unseal_with_tpm(key_id(&enclave), NOW, &enclave, |c, l| tpm.decrypt(c, l)),
        Err(WorkloadError::SealedSeed)
    ));
}

#[test]
fn every_flipped_byte_of_a_tpm_slot_is_refused() {
    let built = Built::small();
    let tpm = SoftTpmKey::generate();
    let good = tpm.issue(&built).to_bytes();
    for at in 0..TPM_AUTHORIZATION_LEN {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        let Ok(slot) = Authorization::from_bytes(&bytes) else {
            continue; // version, reserved field or window refused as malformed
        };
        let opened = slot.unseal_with_tpm(tpm.id(), NOW, &tpm.enclave, |c, l| tpm.decrypt(c, l));
        assert!(
            opened.is_err(),
            "byte {at} flipped and the seed still opened"
        );
    }
}

#[test]
fn tpm_and_enclave_slots_share_one_slot_area() {
    let built = Built::small();
    let tpm = SoftTpmKey::generate();
    let enclave = HpkeKeyPair::generate();
    let file = WorkloadFile::parse(&built.bytes).unwrap();
    let one = file.with_slot(tpm.issue(&built)).unwrap();
    let both = WorkloadFile::parse(&one)
        .unwrap()
        .with_slot(built.issue(&enclave))
        .unwrap();
    assert_eq!(
        both.len(),
        built.bytes.len() + TPM_AUTHORIZATION_LEN + AUTHORIZATION_LEN
    );
    let file = WorkloadFile::parse(&both).unwrap();
    assert_eq!(file.slots().len(), 2);
    let seed = file
        .slot_for(&tpm.id())
        .unwrap()
        .unseal_with_tpm(tpm.id(), NOW, &tpm.enclave, |c, l| tpm.decrypt(c, l))
        .unwrap();
    assert_small_components(&file.open(&seed).unwrap());
    let seed = file
        .slot_for(&key_id(&enclave))
        .unwrap()
        .unseal(&enclave, NOW)
        .unwrap();
    assert_small_components(&file.open(&seed).unwrap());
    // Every truncation of the two-slot area is refused.
    for cut in built.workload().len()..both.len() {
        assert!(WorkloadFile::parse(&both[..cut]).is_err(), "cut at {cut}");
    }
    // A TPM slot outside its window, or for another key, does not reach the TPM.
    let slot = tpm.issue(&built);
    let never = |_: &[u8], _: &[u8]| -> Result<zeroize::Zeroizing<Vec<u8>>, &str> {
        panic!("the TPM was asked")
    };
    assert!(matches!(
        slot.unseal_with_tpm(tpm.id(), NOT_AFTER + 1, &tpm.enclave, never),
        Err(WorkloadError::OutsideWindow { .. })
    ));
    assert!(matches!(
        slot.unseal_with_tpm(SoftTpmKey::generate().id(), NOW, &tpm.enclave, never),
        Err(WorkloadError::NoSlot(_))
    ));
    // A TPM refusal is named.
    assert!(matches!(
        slot.unseal_with_tpm(tpm.id(), NOW, &tpm.enclave, |_, _| Err("TPM_RC_POLICY_FAIL")),
        Err(WorkloadError::Tpm(reason)) if reason == "TPM_RC_POLICY_FAIL"
    ));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
