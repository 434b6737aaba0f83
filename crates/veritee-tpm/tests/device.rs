//! The target's TPM through `tss-esapi`, against a real software TPM (swtpm): the EK
//! and SRK made persistent once and used from their handles after, and what happens
//! when a handle holds another key or loses its key. What each test observes of the
//! TPM's handles it reads through its own connection, not through the code under test.
//!
//! Without swtpm installed the tests say so and pass, unless VERITEE_REQUIRE_SWTPM is
//! set (as CI sets it): then they fail.

use std::str::FromStr;
use tss_esapi::Context;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::structures::{
    CapabilityData, Public, PublicKeyRsa, RsaExponent, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use veritee_tpm::device::{EK_HANDLE, SRK_HANDLE, TargetTpm, TpmKeys};
use veritee_tpm::swtpm::{LocalCa, SoftwareTpm};
use veritee_verify::tpm::structures::{TpmPublic, TpmPublicKey, rsa_spki_der};

const PCRS: [u32; 2] = [0, 7];
const LABEL: &[u8] = b"veritee device test\0";

/// A TPM manufactured under a local CA, its state kept in `dir` across restarts.
struct Machine {
    dir: tempfile::TempDir,
    running: Option<SoftwareTpm>,
}

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = LocalCa::new(&dir.path().join("ca")).expect("local CA");
        ca.manufacture(&dir.path().join("tpm"))
            .expect("swtpm_setup");
        let mut machine = Machine { dir, running: None };
        machine.boot();
        machine
    }

    /// (Re)starts the TPM from its saved state, PCRs cleared as at boot.
    fn boot(&mut self) {
        self.running = None;
        self.running = Some(SoftwareTpm::start(&self.dir.path().join("tpm")).expect("swtpm"));
    }

    fn tcti(&self) -> String {
        self.running.as_ref().expect("running").tcti()
    }

    /// A connection of the test's own, to look at handles.
    fn context(&self) -> Context {
        Context::new(TctiNameConf::from_str(&self.tcti()).expect("TCTI")).expect("connect")
    }

    /// The name of the object persisted at `handle`, if any.
    fn persisted_name(&self, handle: u32) -> Option<Vec<u8>> {
        let mut context = self.context();
        let persistent = TpmHandle::Persistent(PersistentTpmHandle::new(handle).expect("handle"));
        let (listed, _) = context
            .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, handle, 1))
            .expect("handles");
        let CapabilityData::Handles(list) = listed else {
            panic!("handles asked for");
        };
        if list.first() != Some(&persistent) {
            return None;
        }
        let object = context
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(persistent))
            .expect("persisted object");
        Some(context.tr_get_name(object).expect("name").value().to_vec())
    }

    fn evict(&self, handle: u32) {
        let mut context = self.context();
        let persistent = PersistentTpmHandle::new(handle).expect("handle");
        let object = context
            .execute_without_session(|ctx| {
                ctx.tr_from_tpm_public(TpmHandle::Persistent(persistent))
            })
            .expect("persisted");
        context
            .execute_with_nullauth_session(|ctx| {
                ctx.evict_control(Provision::Owner, object, Persistent::Persistent(persistent))
            })
            .expect("evict");
    }

    /// Persists at `handle` a key that is not the SRK (another owner's storage key:
    /// the same kind, a different unique), and returns its name.
    fn occupy(&self, handle: u32) -> Vec<u8> {
        let mut context = self.context();
        let template = tss_esapi::utils::create_restricted_decryption_rsa_public(
            SymmetricDefinitionObject::AES_128_CFB,
            RsaKeyBits::Rsa2048,
            RsaExponent::default(),
        )
        .expect("template");
        // Same template with a unique of its own: another key from the same seed.
        let Public::Rsa {
            object_attributes,
            name_hashing_algorithm,
            auth_policy,
            parameters,
            ..
        } = template
        else {
            panic!("an RSA template");
        };
        let template = Public::Rsa {
            object_attributes,
            name_hashing_algorithm,
            auth_policy,
            parameters,
            unique: PublicKeyRsa::try_from(vec![7u8; 32]).expect("unique"),
        };
        let key = context
            .execute_with_nullauth_session(|ctx| {
                ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .expect("primary")
            .key_handle;
        let persistent = Persistent::Persistent(PersistentTpmHandle::new(handle).expect("handle"));
        let object = context
            .execute_with_nullauth_session(|ctx| {
                ctx.evict_control(Provision::Owner, key.into(), persistent)
            })
            .expect("persist");
        let name = context.tr_get_name(object).expect("name").value().to_vec();
        context
            .flush_context(ObjectHandle::from(key))
            .expect("flush");
        name
    }
}

/// Seals `secret` to the storage key as a security module does (RSA-OAEP-SHA256).
fn seal(keys: &TpmKeys, secret: &[u8]) -> Vec<u8> {
    let public = TpmPublic::parse(&keys.storage_public).expect("storage public area");
    let TpmPublicKey::Rsa { n, e, .. } = &public.key else {
        panic!("the storage key is RSA");
    };
    let spki = rsa_spki_der(n, *e).expect("SPKI");
    veritee_crypto::rsa::encrypt_oaep_sha256_with_label(&spki, secret, LABEL).expect("encrypt")
}

fn decrypt(tcti: &str, keys: &TpmKeys, sealed: &[u8]) -> Vec<u8> {
    let mut tpm = TargetTpm::open(tcti).expect("open");
    tpm.decrypt(keys, sealed, LABEL).expect("decrypt").to_vec()
}

#[test]
fn the_primaries_persist_once_and_serve_every_operation_after_a_restart() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let mut machine = Machine::new();
    // swtpm_setup leaves the EK persisted, as many device TPMs ship; no SRK yet.
    let shipped_ek = machine.persisted_name(EK_HANDLE);
    assert_eq!(machine.persisted_name(SRK_HANDLE), None, "a new TPM");
    let keys = TargetTpm::open(&machine.tcti())
        .expect("open")
        .create_keys(&PCRS)
        .expect("keys");
    let ek_name = keys.ek_name.clone().expect("the EK was persisted");
    if let Some(shipped) = shipped_ek {
        assert_eq!(shipped, ek_name, "the EK as shipped is adopted");
    }
    let srk_name = keys.srk_name.clone().expect("the SRK was persisted");
    assert_eq!(machine.persisted_name(EK_HANDLE), Some(ek_name.clone()));
    assert_eq!(machine.persisted_name(SRK_HANDLE), Some(srk_name.clone()));

    // The keys outlive a reboot (persistent objects are in NV), and serve operations.
    machine.boot();
    assert_eq!(machine.persisted_name(SRK_HANDLE), Some(srk_name.clone()));
    let sealed = seal(&keys, b"seed under test");
    assert_eq!(decrypt(&machine.tcti(), &keys, &sealed), b"seed under test");
    let evidence = TargetTpm::open(&machine.tcti())
        .expect("open")
        .enrollment_evidence(&keys, &[9u8; 32])
        .expect("evidence");
    // The EK the evidence names is the persisted one, and the certified one.
    let ek = TpmPublic::parse(&evidence.ek_public).expect("EK public area");
    assert_eq!(
        veritee_tpm::policy::object_name(&evidence.ek_public).expect("name"),
        ek_name
    );
    assert!(matches!(ek.key, TpmPublicKey::Rsa { .. }));

    // Keys made again, on a TPM whose primaries are persisted already, adopt them.
    let again = TargetTpm::open(&machine.tcti())
        .expect("open")
        .create_keys(&PCRS)
        .expect("keys");
    assert_eq!(again.ek_name, Some(ek_name));
    assert_eq!(again.srk_name, Some(srk_name.clone()));
    // A rotated storage key keeps using the persisted SRK.
    let rotated = TargetTpm::open(&machine.tcti())
        .expect("open")
        .rotate_storage_key(&keys)
        .expect("rotate");
    assert_eq!(rotated.srk_name, Some(srk_name));
    assert_ne!(rotated.storage_public, keys.storage_public);
    let sealed = seal(&rotated, b"after rotation");
    assert_eq!(
        decrypt(&machine.tcti(), &rotated, &sealed),
        b"after rotation"
    );
}

#[test]
fn another_key_at_the_handle_is_left_alone_and_the_srk_made_for_each_operation() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let machine = Machine::new();
    let theirs = machine.occupy(SRK_HANDLE);
    let keys = TargetTpm::open(&machine.tcti())
        .expect("open")
        .create_keys(&PCRS)
        .expect("keys");
    assert_eq!(keys.srk_name, None, "the SRK's handle holds another key");
    assert!(keys.ek_name.is_some(), "the EK's handle was free");
    assert_eq!(
        machine.persisted_name(SRK_HANDLE),
        Some(theirs),
        "the other key stays"
    );
    let sealed = seal(&keys, b"made each time");
    assert_eq!(decrypt(&machine.tcti(), &keys, &sealed), b"made each time");
}

#[test]
fn a_primary_gone_from_its_handle_or_replaced_is_made_again_never_another_key_used() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let machine = Machine::new();
    let keys = TargetTpm::open(&machine.tcti())
        .expect("open")
        .create_keys(&PCRS)
        .expect("keys");
    assert!(keys.srk_name.is_some() && keys.ek_name.is_some());
    let sealed = seal(&keys, b"still opens");

    // The operator cleared the SRK's handle: the key is made from its template.
    machine.evict(SRK_HANDLE);
    assert_eq!(decrypt(&machine.tcti(), &keys, &sealed), b"still opens");

    // Another key now sits there: not used (the storage key would not load under it,
    // and a salted session to it would be to the wrong key), the SRK made instead.
    let theirs = machine.occupy(SRK_HANDLE);
    assert_eq!(decrypt(&machine.tcti(), &keys, &sealed), b"still opens");
    assert_eq!(machine.persisted_name(SRK_HANDLE), Some(theirs));

    // Likewise for the EK: gone, the enrollment evidence still names the certified EK.
    machine.evict(EK_HANDLE);
    let evidence = TargetTpm::open(&machine.tcti())
        .expect("open")
        .enrollment_evidence(&keys, &[3u8; 32])
        .expect("evidence");
    assert_eq!(
        veritee_tpm::policy::object_name(&evidence.ek_public).expect("name"),
        keys.ek_name.clone().expect("EK name")
    );
}
