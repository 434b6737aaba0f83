//! The NV counter that keeps an enclave's rollback protection on TEEs without one, on a
//! real software TPM (swtpm): what the enclave sees, and what a host holding the owner
//! hierarchy can and cannot do to it.

use std::str::FromStr;
use tss_esapi::Context;
use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
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

/// Relays every connection on `listener` to `target`, keeping a copy of every byte
/// either way: what a host relaying the TPM's traffic sees.
fn record(
    listener: std::net::TcpListener,
    target: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let seen = std::sync::Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

#[test]
fn the_authorization_value_and_the_count_never_cross_the_host_in_the_clear() {
    let Some((_dir, tpm)) = start() else { return };
    let real_port: u16 = tpm
        .tcti()
        .rsplit("port=")
        .next()
        .and_then(|p| p.parse().ok())
        .expect("swtpm port");
    let (server, control) = free_port_pair();
    let relay_port = server.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    record(server, real_port, std::sync::Arc::clone(&seen));
    record(control, real_port + 1, std::sync::Arc::clone(&seen));
    let tcti = format!("swtpm:host=127.0.0.1,port={relay_port}");

    let canary: [u8; 32] = *b"veritee counter auth CANARY 0123";
    let count: u64 = 0x5eed_c0de_1234_5678;
    let mut counter = TpmCounter::open(&tcti, INDEX, &canary, None).unwrap();
    counter.advance_to(count).unwrap();
    drop(counter);
    let mut again = TpmCounter::open(&tcti, INDEX, &canary, None).unwrap();
    assert_eq!(again.read().unwrap(), count);
    drop(again);

    let seen = seen.lock().unwrap().clone();
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
fn a_tpm_not_certified_by_the_given_cas_is_refused() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = LocalCa::new(&dir.path().join("ca")).expect("local CA");
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
}
