//! Sealing on the simulated TEE: who can open what.

use std::os::unix::fs::PermissionsExt;
use time::macros::datetime;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_platform::sealing::{self, HEADER_LEN};
use veritee_platform::sim::{EnclaveImage, SimMachine, SimVendor};
use veritee_platform::{Platform, PlatformError, SealPolicy};

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
