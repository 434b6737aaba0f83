//! Sealing on the simulated TEE: who can open what, at which security version; and the
//! simulated machine's monotonic counters that keep sealed state fresh.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::macros::datetime;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_platform::sealing::{self, HEADER_LEN, MAX_BLOB_LEN, MIN_BLOB_LEN};
use veritee_platform::sim::{EnclaveImage, SimEnclave, SimMachine, SimVendor};
use veritee_platform::{MonotonicCounter, Platform, PlatformError, SealPolicy};

const NOW: time::OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

struct Setup {
    _dir: tempfile::TempDir,
    machine: SimMachine,
    other_machine: SimMachine,
    signer: EcdsaSigningKey,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut vendor = SimVendor::init(&dir.path().join("vendor"), NOW).unwrap();
    let machine = SimMachine::init(&dir.path().join("m1"), &mut vendor, None, NOW).unwrap();
    let other_machine = SimMachine::init(&dir.path().join("m2"), &mut vendor, None, NOW).unwrap();
    Setup {
        _dir: dir,
        machine,
        other_machine,
        signer: EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap(),
    }
}

#[test]
fn measurement_sealing_binds_code_and_machine() {
    let s = setup();
    let image = EnclaveImage::unsigned(b"code v1", 1, 1, false);
    let enclave = s.machine.launch(&image).unwrap();
    let blob = sealing::seal(&enclave, SealPolicy::Measurement, b"aad", b"canary-secret").unwrap();
    assert!(!blob.windows(6).any(|w| w == b"canary"));
    // The same code on the same machine, even relaunched, opens it.
    let again = SimMachine::open(s.machine.dir())
        .unwrap()
        .launch(&image)
        .unwrap();
    assert_eq!(
        sealing::unseal(&again, b"aad", &blob).unwrap().expose(),
        b"canary-secret"
    );
    // Changed code does not.
    let changed = s
        .machine
        .launch(&EnclaveImage::unsigned(b"code v2", 1, 1, false))
        .unwrap();
    assert!(matches!(
        sealing::unseal(&changed, b"aad", &blob),
        Err(PlatformError::Unseal(_))
    ));
    // The same code on another machine does not.
    let elsewhere = s.other_machine.launch(&image).unwrap();
    assert!(matches!(
        sealing::unseal(&elsewhere, b"aad", &blob),
        Err(PlatformError::Unseal(_))
    ));
    // A debug build of the same code does not.
    let debug = s
        .machine
        .launch(&EnclaveImage::unsigned(b"code v1", 1, 1, true))
        .unwrap();
    assert!(sealing::unseal(&debug, b"aad", &blob).is_err());
    // Other associated data does not.
    assert!(sealing::unseal(&enclave, b"aaX", &blob).is_err());
}

#[test]
fn signer_sealing_survives_an_upgrade_but_not_another_signer() {
    let s = setup();
    let v1 = s
        .machine
        .launch(&EnclaveImage::signed(b"code v1", &s.signer, 7, 1, false).unwrap())
        .unwrap();
    let v2 = s
        .machine
        .launch(&EnclaveImage::signed(b"code v2", &s.signer, 7, 2, false).unwrap())
        .unwrap();
    let blob = sealing::seal(&v1, SealPolicy::Signer, b"", b"state").unwrap();
    assert_eq!(sealing::unseal(&v2, b"", &blob).unwrap().expose(), b"state");
    let other_product = s
        .machine
        .launch(&EnclaveImage::signed(b"code v1", &s.signer, 8, 1, false).unwrap())
        .unwrap();
    assert!(sealing::unseal(&other_product, b"", &blob).is_err());
    let stranger = EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap();
    let impostor = s
        .machine
        .launch(&EnclaveImage::signed(b"code v1", &stranger, 7, 1, false).unwrap())
        .unwrap();
    assert!(sealing::unseal(&impostor, b"", &blob).is_err());
    // Unsigned enclaves have no signer to seal to.
    let unsigned = s
        .machine
        .launch(&EnclaveImage::unsigned(b"code v1", 7, 1, false))
        .unwrap();
    assert!(matches!(
        sealing::seal(&unsigned, SealPolicy::Signer, b"", b"x"),
        Err(PlatformError::Unsupported(_))
    ));
}

#[test]
fn damaged_blobs_are_refused_with_a_reason() {
    let s = setup();
    let enclave = s
        .machine
        .launch(&EnclaveImage::unsigned(b"code", 1, 1, false))
        .unwrap();
    let blob = sealing::seal(&enclave, SealPolicy::Measurement, b"", b"0123456789").unwrap();
    for cut in [0, 4, HEADER_LEN, blob.len() - 1] {
        assert!(
            sealing::unseal(&enclave, b"", &blob[..cut]).is_err(),
            "cut {cut}"
        );
    }
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x20;
        let err = sealing::unseal(&enclave, b"", &bad).unwrap_err();
        assert!(matches!(err, PlatformError::Unseal(_)), "byte {i}: {err}");
    }
    let mut bad = blob.clone();
    bad[4] = 9;
    assert!(
        sealing::unseal(&enclave, b"", &bad)
            .unwrap_err()
            .to_string()
            .contains("version 9")
    );
}

#[test]
fn state_files_holding_secrets_are_private() {
    let s = setup();
    for name in ["attestation.key", "sealing-root.key"] {
        let mode = std::fs::metadata(s.machine.dir().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let vendor_dir = s.machine.dir().parent().unwrap().join("vendor");
    for name in ["root.key", "platform-ca.key", "tcb-signing.key"] {
        let mode = std::fs::metadata(vendor_dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    // Re-initialising refuses to overwrite.
    let mut vendor = SimVendor::open(&vendor_dir).unwrap();
    assert!(matches!(
        SimVendor::init(&vendor_dir, NOW),
        Err(PlatformError::AlreadyExists(_))
    ));
    assert!(matches!(
        SimMachine::init(s.machine.dir(), &mut vendor, None, NOW),
        Err(PlatformError::AlreadyExists(_))
    ));
}

#[test]
fn identity_and_kind() {
    let s = setup();
    let image = EnclaveImage::signed(b"code", &s.signer, 3, 4, true).unwrap();
    let enclave = s.machine.launch(&image).unwrap();
    assert_eq!(enclave.tee(), veritee_attest::TeeKind::Simulated);
    let id = enclave.identity();
    assert_eq!(id.measurement, EnclaveImage::measure(b"code").to_vec());
    assert_eq!(id.signer.as_deref(), Some(&image.signer().unwrap()[..]));
    assert_eq!((id.product_id, id.security_version, id.debug), (3, 4, true));
}

#[test]
fn opening_missing_state_explains_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = SimVendor::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("veritee vendor init"), "{err}");
    let err = SimMachine::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("veritee platform init"), "{err}");
}

// ---------------------------------------------------------------------------------
// Security versions.

/// Offset of the sealer's security version in a version 2 blob header.
const SVN_OFFSET: usize = 0x08;

fn signed(s: &Setup, code: &[u8], svn: u16) -> SimEnclave {
    s.machine
        .launch(&EnclaveImage::signed(code, &s.signer, 7, svn, false).unwrap())
        .unwrap()
}

fn key_bytes(platform: &dyn Platform, policy: SealPolicy, svn: u16, label: &[u8]) -> [u8; 32] {
    *platform
        .sealing_key_at(policy, svn, label)
        .unwrap()
        .expose()
        .expose()
}

#[test]
fn an_older_build_cannot_unseal_what_a_newer_build_sealed() {
    let s = setup();
    let v2 = signed(&s, b"code v2", 2);
    let blob = sealing::seal(&v2, SealPolicy::Signer, b"aad", b"canary-secret").unwrap();
    assert_eq!(
        u16::from_le_bytes([blob[SVN_OFFSET], blob[SVN_OFFSET + 1]]),
        2
    );

    // The vulnerable build, same signer and product, is refused before decryption and
    // told why.
    let v1 = signed(&s, b"code v1", 1);
    let err = sealing::unseal(&v1, b"aad", &blob).unwrap_err();
    assert!(matches!(err, PlatformError::Unseal(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("sealed by a newer build (security version 2)")
            && message.contains("this build is version 1"),
        "{message}"
    );
    // Nor can it derive the key by asking for it.
    let err = v1
        .sealing_key_at(SealPolicy::Signer, 2, b"label")
        .unwrap_err();
    assert!(matches!(err, PlatformError::InvalidInput(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("security version 2")
            && message.contains("security version 1")
            && message.contains("newer build"),
        "{message}"
    );

    // The patched build reads it, and what the build before it sealed; the same build
    // reads it after a restart.
    let v3 = signed(&s, b"code v3", 3);
    assert_eq!(
        sealing::unseal(&v3, b"aad", &blob).unwrap().expose(),
        b"canary-secret"
    );
    let old_blob = sealing::seal(&v1, SealPolicy::Signer, b"", b"old").unwrap();
    assert_eq!(
        sealing::unseal(&v3, b"", &old_blob).unwrap().expose(),
        b"old"
    );
    let v2_again = SimMachine::open(s.machine.dir())
        .unwrap()
        .launch(&EnclaveImage::signed(b"code v2", &s.signer, 7, 2, false).unwrap())
        .unwrap();
    assert_eq!(
        sealing::unseal(&v2_again, b"aad", &blob).unwrap().expose(),
        b"canary-secret"
    );
    // What v3 seals, v2 cannot open.
    let new_blob = sealing::seal(&v3, SealPolicy::Signer, b"", b"new").unwrap();
    assert!(
        sealing::unseal(&v2, b"", &new_blob)
            .unwrap_err()
            .to_string()
            .contains("security version 3")
    );
}

#[test]
fn each_security_version_has_its_own_key() {
    let s = setup();
    let v3 = signed(&s, b"code v3", 3);
    let keys: Vec<[u8; 32]> = (0..=3)
        .map(|svn| key_bytes(&v3, SealPolicy::Signer, svn, b"label"))
        .collect();
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // The provided sealing_key is the key of the enclave's own version.
    assert_eq!(
        *v3.sealing_key(SealPolicy::Signer, b"label")
            .unwrap()
            .expose()
            .expose(),
        keys[3]
    );
    // Another build of the same signer derives the same key at the same version.
    let v2 = signed(&s, b"code v2", 2);
    assert_eq!(key_bytes(&v2, SealPolicy::Signer, 1, b"label"), keys[1]);
    assert_eq!(key_bytes(&v2, SealPolicy::Signer, 2, b"label"), keys[2]);
    assert!(v2.sealing_key_at(SealPolicy::Signer, 3, b"label").is_err());
}

#[test]
fn measurement_sealing_binds_code_and_security_version() {
    let s = setup();
    let image = |code: &[u8], svn| EnclaveImage::unsigned(code, 1, svn, false);
    let sealer = s.machine.launch(&image(b"code", 2)).unwrap();
    let blob = sealing::seal(&sealer, SealPolicy::Measurement, b"", b"state").unwrap();
    // The same code at a newer version opens it; at an older one it does not.
    let newer = s.machine.launch(&image(b"code", 3)).unwrap();
    assert_eq!(
        sealing::unseal(&newer, b"", &blob).unwrap().expose(),
        b"state"
    );
    let older = s.machine.launch(&image(b"code", 1)).unwrap();
    assert!(
        sealing::unseal(&older, b"", &blob)
            .unwrap_err()
            .to_string()
            .contains("security version 2")
    );
    // Other code does not, whatever its version.
    let other = s.machine.launch(&image(b"other code", 3)).unwrap();
    assert!(matches!(
        sealing::unseal(&other, b"", &blob),
        Err(PlatformError::Unseal(m)) if m.contains("authentication failed")
    ));
}

#[test]
fn tampering_with_the_security_version_fails_authentication() {
    let s = setup();
    let v2 = signed(&s, b"code v2", 2);
    let v3 = signed(&s, b"code v3", 3);
    let blob = sealing::seal(&v3, SealPolicy::Signer, b"", b"state").unwrap();
    // Claiming an older sealer derives another key: the tag does not verify.
    for svn in [0u16, 1, 2] {
        let mut bad = blob.clone();
        bad[SVN_OFFSET..SVN_OFFSET + 2].copy_from_slice(&svn.to_le_bytes());
        let err = sealing::unseal(&v3, b"", &bad).unwrap_err();
        assert!(
            matches!(&err, PlatformError::Unseal(m) if m.contains("authentication failed")),
            "{svn}: {err}"
        );
    }
    // Lowering the version does not let an older build in either.
    let mut lowered = blob.clone();
    lowered[SVN_OFFSET..SVN_OFFSET + 2].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(
        sealing::unseal(&v2, b"", &lowered),
        Err(PlatformError::Unseal(m)) if m.contains("authentication failed")
    ));
    // Raising it (still within the reader's reach) fails the same way.
    let old = sealing::seal(&v2, SealPolicy::Signer, b"", b"state").unwrap();
    let mut raised = old.clone();
    raised[SVN_OFFSET..SVN_OFFSET + 2].copy_from_slice(&3u16.to_le_bytes());
    assert!(matches!(
        sealing::unseal(&v3, b"", &raised),
        Err(PlatformError::Unseal(m)) if m.contains("authentication failed")
    ));
    assert_eq!(sealing::unseal(&v3, b"", &old).unwrap().expose(), b"state");
}

/// A small deterministic generator for garbage.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn truncated_oversized_and_garbage_blobs_are_errors() {
    let s = setup();
    let enclave = signed(&s, b"code", 2);
    let blob = sealing::seal(&enclave, SealPolicy::Signer, b"", b"0123456789").unwrap();
    assert_eq!(blob.len(), MIN_BLOB_LEN + 10);
    for cut in 0..blob.len() {
        let err = sealing::unseal(&enclave, b"", &blob[..cut]).unwrap_err();
        assert!(matches!(err, PlatformError::Unseal(_)), "cut {cut}: {err}");
    }
    // Longer than any blob seal writes: refused before any work.
    let mut huge = blob.clone();
    huge.resize(MAX_BLOB_LEN + 1, 0);
    let err = sealing::unseal(&enclave, b"", &huge).unwrap_err();
    assert!(err.to_string().contains("longer"), "{err}");
    // Trailing bytes break the tag.
    let mut longer = blob.clone();
    longer.push(0);
    assert!(sealing::unseal(&enclave, b"", &longer).is_err());
    // Garbage, raw or behind a valid magic and version, is an error.
    for seed in 0..200u64 {
        let len = (seed as usize * 7) % 200;
        let raw = garbage(seed, len);
        assert!(sealing::unseal(&enclave, b"", &raw).is_err(), "seed {seed}");
        let mut framed = blob[..HEADER_LEN.min(8)].to_vec();
        framed.extend_from_slice(&raw);
        assert!(
            sealing::unseal(&enclave, b"", &framed).is_err(),
            "seed {seed}"
        );
    }
    // Version 1 blobs are refused by name.
    let mut v1 = blob.clone();
    v1[4..6].copy_from_slice(&1u16.to_le_bytes());
    let err = sealing::unseal(&enclave, b"", &v1).unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported sealed blob version 1"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Monotonic counters.

fn counters_dir(machine: &SimMachine) -> PathBuf {
    machine.dir().join("counters")
}

fn counter_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_counter_starts_at_zero_and_survives_restarts_and_upgrades() {
    let s = setup();
    let v1 = signed(&s, b"code v1", 1);
    let counter = v1
        .monotonic_counter(SealPolicy::Signer, "state root")
        .unwrap();
    assert_eq!(counter.read().unwrap(), 0);
    assert_eq!(counter.advance_to(0).unwrap(), 0);
    assert_eq!(counter.advance_to(5).unwrap(), 5);
    assert_eq!(counter.advance_to(5).unwrap(), 5, "equal is a no-op");
    assert_eq!(counter.read().unwrap(), 5);

    // Reopening the machine and relaunching the image finds the value.
    let machine = SimMachine::open(s.machine.dir()).unwrap();
    let again = machine
        .launch(&EnclaveImage::signed(b"code v1", &s.signer, 7, 1, false).unwrap())
        .unwrap();
    let reopened = again
        .monotonic_counter(SealPolicy::Signer, "state root")
        .unwrap();
    assert_eq!(reopened.read().unwrap(), 5);
    // A signer counter belongs to the signer and product: an upgrade keeps it.
    let v2 = machine
        .launch(&EnclaveImage::signed(b"code v2", &s.signer, 7, 2, false).unwrap())
        .unwrap();
    let upgraded = v2
        .monotonic_counter(SealPolicy::Signer, "state root")
        .unwrap();
    assert_eq!(upgraded.read().unwrap(), 5);
    assert_eq!(upgraded.advance_to(6).unwrap(), 6);
    assert_eq!(counter.read().unwrap(), 6);

    // The counter is kept with the machine, under a name that reveals nothing, 0600.
    let files = counter_files(&counters_dir(&s.machine));
    assert_eq!(files.len(), 1, "{files:?}");
    let file_name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(file_name.len(), 64);
    assert!(file_name.bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(counters_dir(&s.machine))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
}

#[test]
fn a_counter_never_goes_backwards() {
    let s = setup();
    let enclave = signed(&s, b"code", 1);
    let counter = enclave
        .monotonic_counter(SealPolicy::Measurement, "c")
        .unwrap();
    counter.advance_to(10).unwrap();
    let err = counter.advance_to(3).unwrap_err();
    assert!(matches!(err, PlatformError::InvalidInput(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(" 3") && message.contains("10"),
        "{message}"
    );
    assert_eq!(counter.read().unwrap(), 10);
    assert_eq!(counter.advance_to(u64::MAX).unwrap(), u64::MAX);
    assert_eq!(counter.read().unwrap(), u64::MAX);
}

#[test]
fn counters_of_other_identities_and_names_are_independent() {
    let s = setup();
    let code_a = s
        .machine
        .launch(&EnclaveImage::signed(b"code a", &s.signer, 7, 1, false).unwrap())
        .unwrap();
    let a = code_a
        .monotonic_counter(SealPolicy::Measurement, "x")
        .unwrap();
    a.advance_to(7).unwrap();
    let others: Vec<(&str, Box<dyn MonotonicCounter>)> = vec![
        (
            "another name",
            code_a
                .monotonic_counter(SealPolicy::Measurement, "y")
                .unwrap(),
        ),
        (
            "the signer identity",
            code_a.monotonic_counter(SealPolicy::Signer, "x").unwrap(),
        ),
        (
            "other code",
            s.machine
                .launch(&EnclaveImage::signed(b"code b", &s.signer, 7, 1, false).unwrap())
                .unwrap()
                .monotonic_counter(SealPolicy::Measurement, "x")
                .unwrap(),
        ),
        (
            "another product",
            s.machine
                .launch(&EnclaveImage::signed(b"code a", &s.signer, 8, 1, false).unwrap())
                .unwrap()
                .monotonic_counter(SealPolicy::Signer, "x")
                .unwrap(),
        ),
        (
            "a debug build",
            s.machine
                .launch(&EnclaveImage::signed(b"code a", &s.signer, 7, 1, true).unwrap())
                .unwrap()
                .monotonic_counter(SealPolicy::Measurement, "x")
                .unwrap(),
        ),
        (
            "another machine",
            s.other_machine
                .launch(&EnclaveImage::signed(b"code a", &s.signer, 7, 1, false).unwrap())
                .unwrap()
                .monotonic_counter(SealPolicy::Measurement, "x")
                .unwrap(),
        ),
    ];
    for (what, counter) in &others {
        assert_eq!(counter.read().unwrap(), 0, "{what}");
    }
    let signer_x = &others[1].1;
    signer_x.advance_to(2).unwrap();
    assert_eq!(a.read().unwrap(), 7);
    assert_eq!(others[0].1.read().unwrap(), 0);
    assert_eq!(counter_files(&counters_dir(&s.machine)).len(), 2);

    // Unsigned enclaves have no signer identity to keep a counter for.
    let unsigned = s
        .machine
        .launch(&EnclaveImage::unsigned(b"code a", 7, 1, false))
        .unwrap();
    assert!(matches!(
        unsigned.monotonic_counter(SealPolicy::Signer, "x").err(),
        Some(PlatformError::Unsupported(_))
    ));
    assert!(matches!(
        unsigned
            .monotonic_counter(SealPolicy::Measurement, "")
            .err(),
        Some(PlatformError::InvalidInput(_))
    ));
}

#[test]
fn concurrent_advances_end_at_the_maximum() {
    let s = setup();
    let enclave = Arc::new(signed(&s, b"code", 1));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let enclave = Arc::clone(&enclave);
            std::thread::spawn(move || {
                // Each thread opens its own handle to the same counter.
                let counter = enclave.monotonic_counter(SealPolicy::Signer, "c").unwrap();
                let mut last = 0;
                for k in 0..25u64 {
                    let value = k * 4 + t;
                    match counter.advance_to(value) {
                        Ok(v) => assert_eq!(v, value),
                        // Another thread got further first: refused, never lowered.
                        Err(PlatformError::InvalidInput(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                    let now = counter.read().unwrap();
                    assert!(now >= value.max(last), "went backwards: {now} < {last}");
                    last = now;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let counter = enclave.monotonic_counter(SealPolicy::Signer, "c").unwrap();
    assert_eq!(counter.read().unwrap(), 24 * 4 + 3);
    // No temporary files are left behind.
    assert_eq!(counter_files(&counters_dir(&s.machine)).len(), 1);
}

#[test]
fn a_damaged_counter_is_an_error_not_zero() {
    let s = setup();
    let enclave = signed(&s, b"code", 1);
    let counter = enclave.monotonic_counter(SealPolicy::Signer, "c").unwrap();
    counter.advance_to(3).unwrap();
    let files = counter_files(&counters_dir(&s.machine));
    let path = &files[0];
    for damage in [
        &b"garbage"[..],
        b"",
        b"3",
        b"-1\n",
        b"99999999999999999999999\n",
    ] {
        std::fs::write(path, damage).unwrap();
        let err = counter.read().unwrap_err();
        assert!(matches!(err, PlatformError::BadState { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        // Advancing does not paper over it either.
        assert!(counter.advance_to(10).is_err());
        assert_eq!(std::fs::read(path).unwrap(), damage);
    }
    // An unreadable value (here a directory in its place) is an error naming it.
    std::fs::remove_file(path).unwrap();
    std::fs::create_dir(path).unwrap();
    let err = counter.read().unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(counter.advance_to(10).is_err());
}
