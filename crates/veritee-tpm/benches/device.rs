//! What the persistent EK and SRK buy a target's TPM operations, on swtpm, in one run.
//!
//! One software TPM, one set of keys. Each round times every operation twice,
//! interleaved: with the keys' recorded primary names (the EK and SRK used from their
//! persistent handles) and with the names cleared (each primary derived from its
//! template for the operation, as before they persisted). The rows are the medians of
//! `ROUNDS` rounds and their ratio.
//!
//! `unset RUST_BACKTRACE; cargo bench -p veritee-tpm --bench device`

use std::time::{Duration, Instant};

use veritee_tpm::device::{TargetTpm, TpmKeys};
use veritee_tpm::swtpm::{LocalCa, SoftwareTpm};
use veritee_verify::tpm::structures::{TpmPublic, TpmPublicKey, rsa_spki_der};

const ROUNDS: usize = 21;
const PCRS: [u32; 3] = [0, 7, 8];
const LABEL: &[u8] = b"veritee device bench\0";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn main() {
    if !veritee_tpm::swtpm::installed() {
        println!("(no rows: swtpm is not installed)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = LocalCa::new(&dir.path().join("ca")).expect("local CA");
    let state = dir.path().join("tpm");
    ca.manufacture(&state).expect("swtpm_setup");
    let tpm = SoftwareTpm::start(&state).expect("swtpm");
    let tcti = tpm.tcti();

    let persistent = TargetTpm::open(&tcti)
        .expect("open")
        .create_keys(&PCRS)
        .expect("keys");
    assert!(
        persistent.ek_name.is_some() && persistent.srk_name.is_some(),
        "the primaries persisted"
    );
    let derived = TpmKeys {
        ek_name: None,
        srk_name: None,
        ..persistent.clone()
    };
    let public = TpmPublic::parse(&persistent.storage_public).expect("storage public area");
    let TpmPublicKey::Rsa { n, e, .. } = &public.key else {
        panic!("the storage key is RSA");
    };
    let spki = rsa_spki_der(n, *e).expect("SPKI");
    let sealed = veritee_crypto::rsa::encrypt_oaep_sha256_with_label(&spki, &[7u8; 32], LABEL)
        .expect("seal");

    // (operation, persistent samples, derived samples)
    let mut rows: Vec<(&str, Vec<Duration>, Vec<Duration>)> = vec![
        (
            "decrypt (a launch's TPM step: storage key loaded, PCR policy session, RSA-OAEP)",
            vec![],
            vec![],
        ),
        (
            "enrollment evidence (EK read, AK and storage key loaded, certify, quote, PCR read)",
            vec![],
            vec![],
        ),
    ];
    for _ in 0..ROUNDS {
        for (keys, persistent_side) in [(&persistent, true), (&derived, false)] {
            let decrypt = timed(|| {
                let mut tpm = TargetTpm::open(&tcti).expect("open");
                let seed = tpm.decrypt(keys, &sealed, LABEL).expect("decrypt");
                assert_eq!(seed.as_slice(), &[7u8; 32]);
            });
            let evidence = timed(|| {
                let mut tpm = TargetTpm::open(&tcti).expect("open");
                tpm.enrollment_evidence(keys, &[1u8; 32]).expect("evidence");
            });
            for (row, sample) in rows.iter_mut().zip([decrypt, evidence]) {
                if persistent_side {
                    row.1.push(sample);
                } else {
                    row.2.push(sample);
                }
            }
        }
    }
    println!(
        "| operation (swtpm, median of {ROUNDS} interleaved rounds, connection included) | primaries persistent | primaries derived each time | derived / persistent |"
    );
    println!("|---|---:|---:|---:|");
    for (name, persistent, derived) in rows {
        let (p, d) = (median(persistent), median(derived));
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.2}x |",
            p.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / p.as_secs_f64()
        );
    }
}
