//! The NV counter that keeps an enclave's rollback protection on TEEs without one, on a
//! real software TPM (swtpm): what the enclave sees, and what a host holding the owner
//! hierarchy can and cannot do to it.

use std::str::FromStr;
use tss_esapi::Context;
use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::structures::CapabilityData;
use tss_esapi::structures::{Auth, MaxNvBuffer, NvPublicBuilder};
use tss_esapi::tcti_ldr::TctiNameConf;
use veritee_attest::ParsedCertificate;
use veritee_tpm::counter::{GenuineTpm, TpmCounter};
use veritee_tpm::swtpm::{LocalCa, SoftwareTpm};

const INDEX: u32 = 0x0100_7e11;
const AUTH: [u8; 32] = [0x5a; 32];

fn host_context(tpm: &SoftwareTpm) -> Context {
    Context::new(TctiNameConf::from_str(&tpm.tcti()).expect("TCTI")).expect("connect")
}

fn host_handle(context: &mut Context, index: u32) -> NvIndexHandle {
    let tpm_index = NvIndexTpmHandle::new(index).expect("index");
    context
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(tpm_index)))
        .expect("index defined")
        .into()
}

/// The host, holding the owner hierarchy, deletes the index.
fn host_undefines(tpm: &SoftwareTpm, index: u32) {
    let mut context = host_context(tpm);
    let handle = host_handle(&mut context, index);
    context
        .execute_with_nullauth_session(|ctx| ctx.nv_undefine_space(Provision::Owner, handle))
        .expect("undefine");
}

/// The host flushes every loaded HMAC session.
fn host_flushes_sessions(tpm: &SoftwareTpm) {
    let mut context = host_context(tpm);
    let (data, _) = context
        .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, 0x0200_0000, 64))
        .expect("loaded sessions");
    let CapabilityData::Handles(list) = data else {
        panic!("a handle list was asked for")
    };
    for handle in list.iter() {
        let object = context
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(*handle))
            .expect("session handle");
        context.flush_context(object).expect("flush");
    }
}

fn start() -> Option<(tempfile::TempDir, SoftwareTpm)> {
    if !veritee_tpm::swtpm::available_or_required() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tpm = SoftwareTpm::start(dir.path()).expect("swtpm");
    Some((dir, tpm))
}

#[test]
fn the_counter_keeps_its_value_and_never_goes_back() {
    let Some((_dir, tpm)) = start() else { return };
    let mut counter = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, None).unwrap();
    assert_eq!(counter.read().unwrap(), 0);
    assert_eq!(counter.advance_to(3).unwrap(), 3);
    assert_eq!(counter.advance_to(3).unwrap(), 3);
    assert_eq!(counter.advance_to(1_000_001).unwrap(), 1_000_001);
    let err = counter.advance_to(7).unwrap_err().to_string();
    assert!(
        err.contains("at 1000001") && err.contains("back to 7"),
        "{err}"
    );
    drop(counter);

    // Opened again (a restart of the enclave): the same value.
    let mut again = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, None).unwrap();
    assert_eq!(again.read().unwrap(), 1_000_001);

    // Another authorization (another enclave, or the host guessing) reads nothing.
    let err = TpmCounter::open(&tpm.tcti(), INDEX, &[0x11; 32], None)
        .and_then(|mut c| c.read())
        .unwrap_err()
        .to_string();
    assert!(err.contains("authorization failure means"), "{err}");

    // The host deletes the index: it is defined again at 0, never at an older value,
    // so a store with state is "ahead" and the node refuses it.
    drop(again);
    host_undefines(&tpm, INDEX);
    let mut fresh = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, None).unwrap();
    assert_eq!(fresh.read().unwrap(), 0);
}

#[test]
fn an_index_held_by_something_else_is_neither_used_nor_replaced() {
    let Some((_dir, tpm)) = start() else { return };
    // The host (or another application) defines the index with owner access.
    let mut context = host_context(&tpm);
    let public = NvPublicBuilder::new()
        .with_nv_index(NvIndexTpmHandle::new(INDEX).unwrap())
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(
            NvIndexAttributesBuilder::new()
                .with_owner_read(true)
                .with_owner_write(true)
                .with_auth_read(true)
                .with_auth_write(true)
                .with_no_da(true)
                .build()
                .unwrap(),
        )
        .with_data_area_size(8)
        .build()
        .unwrap();
    let handle = context
        .execute_with_nullauth_session(|ctx| {
            ctx.nv_define_space(
                Provision::Owner,
                Some(Auth::try_from(AUTH.to_vec()).unwrap()),
                public,
            )
        })
        .unwrap();
    let planted = MaxNvBuffer::try_from(5u64.to_be_bytes().to_vec()).unwrap();
    context
        .execute_with_nullauth_session(|ctx| ctx.nv_write(NvAuth::Owner, handle, planted, 0))
        .unwrap();
    drop(context);

    let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a veritee counter"), "{err}");
    // Still there, untouched.
    let mut context = host_context(&tpm);
    let handle = host_handle(&mut context, INDEX);
    let value = context
        .execute_with_nullauth_session(|ctx| ctx.nv_read(NvAuth::Owner, handle, 8, 0))
        .unwrap();
    assert_eq!(value.value(), 5u64.to_be_bytes());

    // Outside the owner's range: refused before the TPM is asked.
    let err = TpmCounter::open(&tpm.tcti(), 0x0150_0000, &AUTH, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the owner's range"), "{err}");
}

/// Two consecutive free loopback ports (the swtpm TCTI's server and control ports).
fn free_port_pair() -> (std::net::TcpListener, std::net::TcpListener) {
    for _ in 0..64 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = first.local_addr().expect("addr").port();
        if port < u16::MAX
            && let Ok(second) = std::net::TcpListener::bind(("127.0.0.1", port + 1))
        {
            return (first, second);
        }
    }
    panic!("no two consecutive free loopback ports");
}

/// What a relay does to the TPM's answers while armed.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Answers every TPM2_NV_Read with TPM_RC_NV_UNINITIALIZED (an error answer has no
    /// HMAC); with `public`, also answers TPM2_NV_ReadPublic with the index's public
    /// area as it was before its first write (TPMA_NV_WRITTEN clear, Name to match).
    NeverWritten { public: bool },
    /// Flips the byte at this offset of the next TPM2_NV_Read answer, once.
    FlipRead(usize),
}

const TPM_CC_NV_READ: u32 = 0x14E;
const TPM_CC_NV_READ_PUBLIC: u32 = 0x169;

/// What a relay sees and does: every byte either way, the last command's code, the
/// length of the last TPM2_NV_Read answer, and the tampering armed.
#[derive(Default)]
struct Relay {
    seen: std::sync::Mutex<Vec<u8>>,
    last_command: std::sync::atomic::AtomicU32,
    read_answer_len: std::sync::atomic::AtomicUsize,
    tamper: std::sync::Mutex<Option<Tamper>>,
}

impl Relay {
    fn arm(&self, tamper: Option<Tamper>) {
        *self.tamper.lock().unwrap() = tamper;
    }

    /// Notes a chunk the client sent (commands arrive whole: the TCTI writes each once).
    fn command(&self, chunk: &[u8]) {
        if chunk.len() >= 10 {
            let code = u32::from_be_bytes(chunk[6..10].try_into().unwrap());
            self.last_command
                .store(code, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Tampers with an answer of the TPM's as armed.
    fn answer(&self, chunk: &mut Vec<u8>) {
        let code = self.last_command.load(std::sync::atomic::Ordering::SeqCst);
        if code == TPM_CC_NV_READ {
            self.read_answer_len
                .store(chunk.len(), std::sync::atomic::Ordering::SeqCst);
        }
        let mut tamper = self.tamper.lock().unwrap();
        match (*tamper, code) {
            (Some(Tamper::NeverWritten { .. }), TPM_CC_NV_READ) => {
                // TPM_ST_NO_SESSIONS, 10 bytes, TPM_RC_NV_UNINITIALIZED.
                *chunk = [
                    &0x8001u16.to_be_bytes()[..],
                    &10u32.to_be_bytes(),
                    &0x14Au32.to_be_bytes(),
                ]
                .concat();
            }
            (Some(Tamper::NeverWritten { public: true }), TPM_CC_NV_READ_PUBLIC)
                if chunk.len() == 62 && chunk[12..16] == INDEX.to_be_bytes() =>
            {
                // TPM2B_NV_PUBLIC at 10 (attributes at 18), then the TPM2B_NAME at 26.
                chunk[18] &= !0x20; // TPMA_NV_WRITTEN, bit 29
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &chunk[12..26]);
                chunk[30..62].copy_from_slice(digest.as_ref());
            }
            (Some(Tamper::FlipRead(offset)), TPM_CC_NV_READ) if offset < chunk.len() => {
                chunk[offset] ^= 0x01;
                *tamper = None;
            }
            _ => {}
        }
    }
}

/// Relays every connection on `listener` to `target` through `relay`: what a host
/// relaying the TPM's traffic sees and can do. `commands` is the TPM's command port
/// (not its control port).
fn relay(
    listener: std::net::TcpListener,
    target: u16,
    relay: std::sync::Arc<Relay>,
    commands: bool,
) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            for (mut from, mut to, to_tpm) in [
                (
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                ),
                (server, client, false),
            ] {
                let relay = std::sync::Arc::clone(&relay);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let mut chunk = buf[..n].to_vec();
                        relay.seen.lock().unwrap().extend_from_slice(&chunk);
                        if commands && to_tpm {
                            relay.command(&chunk);
                        } else if commands {
                            relay.answer(&mut chunk);
                        }
                        if to.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

/// A relay in front of `tpm`, and the TCTI that goes through it.
fn relayed(tpm: &SoftwareTpm) -> (std::sync::Arc<Relay>, String) {
    let real_port: u16 = tpm
        .tcti()
        .rsplit("port=")
        .next()
        .and_then(|p| p.parse().ok())
        .expect("swtpm port");
    let (server, control) = free_port_pair();
    let relay_port = server.local_addr().unwrap().port();
    let state = std::sync::Arc::new(Relay::default());
    relay(server, real_port, std::sync::Arc::clone(&state), true);
    relay(control, real_port + 1, std::sync::Arc::clone(&state), false);
    (state, format!("swtpm:host=127.0.0.1,port={relay_port}"))
}

#[test]
fn the_authorization_value_and_the_count_never_cross_the_host_in_the_clear() {
    let Some((_dir, tpm)) = start() else { return };
    let (relay, tcti) = relayed(&tpm);

    let canary: [u8; 32] = *b"veritee counter auth CANARY 0123";
    let count: u64 = 0x5eed_c0de_1234_5678;
    let mut counter = TpmCounter::open(&tcti, INDEX, &canary, None).unwrap();
    counter.advance_to(count).unwrap();
    drop(counter);
    let mut again = TpmCounter::open(&tcti, INDEX, &canary, None).unwrap();
    assert_eq!(again.read().unwrap(), count);
    drop(again);

    let seen = relay.seen.lock().unwrap().clone();
    // The relay saw the traffic: the index's handle is there, in the clear.
    assert!(
        seen.windows(4).any(|w| w == INDEX.to_be_bytes()),
        "nothing recorded"
    );
    for (what, secret) in [
        ("the authorization value", &canary[..]),
        ("half the authorization value", &canary[..16]),
        ("the count", &count.to_be_bytes()[..]),
    ] {
        assert!(
            !seen.windows(secret.len()).any(|w| w == secret),
            "{what} crossed the relay in the clear"
        );
    }
}

#[test]
fn a_forged_never_written_answer_does_not_set_the_counter_back() {
    let Some((_dir, tpm)) = start() else { return };
    let (relay, tcti) = relayed(&tpm);
    let count = 41_u64;
    TpmCounter::open(&tcti, INDEX, &AUTH, None)
        .unwrap()
        .advance_to(count)
        .unwrap();

    // The error alone: it contradicts the public area the TPM gave at open.
    let mut counter = TpmCounter::open(&tcti, INDEX, &AUTH, None).unwrap();
    relay.arm(Some(Tamper::NeverWritten { public: false }));
    let err = counter.read().unwrap_err().to_string();
    assert!(
        err.contains("was never written") && err.contains("forged"),
        "{err}"
    );
    let err = counter.advance_to(count + 1).unwrap_err().to_string();
    assert!(err.contains("forged"), "{err}");
    relay.arm(None);
    drop(counter);

    // With a public area to match, from the open on: the write that confirms a
    // never-written index is refused by the TPM, whose Name for it says written.
    relay.arm(Some(Tamper::NeverWritten { public: true }));
    let mut counter = TpmCounter::open(&tcti, INDEX, &AUTH, None).unwrap();
    let err = counter.read().unwrap_err().to_string();
    assert!(err.contains("forged"), "{err}");
    relay.arm(None);
    drop(counter);

    let mut honest = TpmCounter::open(&tcti, INDEX, &AUTH, None).unwrap();
    assert_eq!(honest.read().unwrap(), count, "the counter was set back");
}

#[test]
fn a_counter_never_written_reads_0_and_is_written_on_first_read() {
    let Some((_dir, tpm)) = start() else { return };
    // The index defined, and the process gone before its first write.
    let attributes = NvIndexAttributesBuilder::new()
        .with_auth_read(true)
        .with_auth_write(true)
        .with_no_da(true)
        .build()
        .unwrap();
    let public = NvPublicBuilder::new()
        .with_nv_index(NvIndexTpmHandle::new(INDEX).unwrap())
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(attributes)
        .with_data_area_size(8)
        .build()
        .unwrap();
    let mut context = host_context(&tpm);
    context
        .execute_with_nullauth_session(|ctx| {
            ctx.nv_define_space(
                Provision::Owner,
                Some(Auth::try_from(AUTH.to_vec())?),
                public,
            )
        })
        .expect("define");
    drop(context);

    let mut counter = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, None).unwrap();
    assert_eq!(counter.read().unwrap(), 0);
    drop(counter);
    // Written by that first read: the next one reads a value.
    let mut counter = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, None).unwrap();
    assert_eq!(counter.read().unwrap(), 0);
    assert_eq!(counter.advance_to(5).unwrap(), 5);
}

#[test]
fn no_byte_of_a_read_answer_changes_the_value_read() {
    let Some((_dir, tpm)) = start() else { return };
    let (relay, tcti) = relayed(&tpm);
    let count = 0x0123_4567_89ab_cdef_u64;
    let mut counter = TpmCounter::open(&tcti, INDEX, &AUTH, None).unwrap();
    counter.advance_to(count).unwrap();
    drop(counter);
    let mut counter = TpmCounter::open(&tcti, INDEX, &AUTH, None).unwrap();
    assert_eq!(counter.read().unwrap(), count);
    drop(counter);
    let len = relay
        .read_answer_len
        .load(std::sync::atomic::Ordering::SeqCst);
    // Header, parameter size, the encrypted 8 bytes, nonce, attributes, HMAC.
    assert!(len > 60, "a read answer of {len} bytes");
    // Not the header's size field: a longer size leaves the TCTI waiting for bytes
    // that never come, a shorter one leaves them for the next command; both are a
    // stalled counter, which the host can cause anyway by not relaying.
    for offset in (0..len).filter(|o| !(2..6).contains(o)) {
        // A session whose answer was damaged may not flush: the host clears them, as
        // it can (the TPM holds three).
        host_flushes_sessions(&tpm);
        let mut counter = TpmCounter::open(&tcti, INDEX, &AUTH, None)
            .unwrap_or_else(|e| panic!("open before flipping byte {offset}: {e}"));
        relay.arm(Some(Tamper::FlipRead(offset)));
        match counter.read() {
            Err(_) => {}
            Ok(value) => panic!("byte {offset} of {len} flipped, and the read gave {value:#x}"),
        }
        relay.arm(None);
    }
    let mut counter = TpmCounter::open(&tcti, INDEX, &AUTH, None).unwrap();
    assert_eq!(counter.read().unwrap(), count);
}

#[test]
fn a_tpm_not_certified_by_the_given_cas_is_refused() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A manufacturer that publishes CRLs, and swtpm's own kind of CA.
    let ca = LocalCa::issuing_crls(&dir.path().join("ca")).expect("local CA");
    ca.manufacture(&dir.path().join("tpm"))
        .expect("swtpm_setup");
    let other = LocalCa::new(&dir.path().join("other-ca")).expect("another CA");
    // Its keys appear with the first TPM made under it.
    other
        .manufacture(&dir.path().join("other-tpm"))
        .expect("swtpm_setup");
    let tpm = SoftwareTpm::start(&dir.path().join("tpm")).expect("swtpm");
    let genuine = |ca: &LocalCa| GenuineTpm {
        anchors: [ca.root_pem().unwrap(), ca.intermediate_pem().unwrap()]
            .iter()
            .flat_map(|pem| ParsedCertificate::from_pem_chain(pem).unwrap())
            .collect(),
        crls: Vec::new(),
        at: time::OffsetDateTime::now_utc(),
    };

    let mut counter = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&genuine(&ca))).unwrap();
    counter.advance_to(9).unwrap();
    assert_eq!(counter.read().unwrap(), 9);
    drop(counter);

    let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&genuine(&other)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not vouched for"), "{err}");
    // Judged at a time before its certificate was issued (EK certificates often never
    // expire: swtpm's run to 9999).
    let early = GenuineTpm {
        at: time::OffsetDateTime::now_utc() - time::Duration::days(3650),
        ..genuine(&ca)
    };
    let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&early))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not vouched for"), "{err}");

    // The manufacturer's CRLs: one that revokes this TPM's EK certificate stops it; one
    // that revokes another, or one from another CA, does not; a CRL past its next
    // update, or not yet issued, is an error: it cannot say whether the EK is revoked.
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let ek = ek_certificate(&tpm);
    let with_crl = |crl: Vec<u8>| GenuineTpm {
        crls: vec![veritee_x509::ParsedCrl::from_der_or_pem(&crl).unwrap()],
        ..genuine(&ca)
    };
    let revoking = with_crl(
        ca.crl(std::slice::from_ref(&ek), now - day, now + day)
            .unwrap(),
    );
    let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&revoking))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not vouched for") && err.contains("is revoked since"),
        "{err}"
    );
    // The root revokes the EK CA itself (the intermediate given beside it in the CA
    // file): every EK it issued is refused.
    let intermediate = ParsedCertificate::from_pem_chain(&ca.intermediate_pem().unwrap())
        .unwrap()
        .remove(0);
    let root_revoking = with_crl(
        ca.root_crl(&[intermediate.der().to_vec()], now - day, now + day)
            .unwrap(),
    );
    let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&root_revoking))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is revoked since"), "{err}");
    // Of an old CRL that lists the EK and a newer one that does not, the listing wins.
    let both = GenuineTpm {
        crls: vec![
            veritee_x509::ParsedCrl::from_der_or_pem(
                &ca.crl(std::slice::from_ref(&ek), now - 2 * day, now + day)
                    .unwrap(),
            )
            .unwrap(),
            veritee_x509::ParsedCrl::from_der_or_pem(&ca.crl(&[], now - day, now + day).unwrap())
                .unwrap(),
        ],
        ..genuine(&ca)
    };
    let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&both))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is revoked since"), "{err}");
    let clean = with_crl(ca.crl(&[], now - day, now + day).unwrap());
    assert_eq!(
        TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&clean))
            .unwrap()
            .read()
            .unwrap(),
        9
    );
    for (from, to) in [(now - 3 * day, now - day), (now + day, now + 3 * day)] {
        let stale = with_crl(ca.crl(&[], from, to).unwrap());
        let err = TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&stale))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not vouched for") && err.contains("CRL"),
            "{err}"
        );
        assert!(!err.contains("revoked"), "{err}");
    }
    // Another CA's CRL names another issuer: it neither revokes nor vouches.
    let foreign = GenuineTpm {
        crls: vec![
            veritee_x509::ParsedCrl::from_der_or_pem(
                &other.crl(&[ek], now - day, now + day).unwrap(),
            )
            .unwrap(),
        ],
        ..genuine(&ca)
    };
    assert_eq!(
        TpmCounter::open(&tpm.tcti(), INDEX, &AUTH, Some(&foreign))
            .unwrap()
            .read()
            .unwrap(),
        9
    );
}

/// The TPM's RSA EK certificate, as the host reads it from NV.
fn ek_certificate(tpm: &SoftwareTpm) -> Vec<u8> {
    let mut context = host_context(tpm);
    tss_esapi::abstraction::ek::retrieve_ek_pubcert(
        &mut context,
        tss_esapi::abstraction::AsymmetricAlgorithmSelection::Rsa(
            tss_esapi::interface_types::key_bits::RsaKeyBits::Rsa2048,
        ),
    )
    .expect("EK certificate")
}
