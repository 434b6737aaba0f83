//! The launch check against what it cannot beat: decrypting and hashing the payload
//! once, on one thread.
//!
//! For a workload of one tiny module and one large configuration component, with one
//! authorization, it measures the median over `ITERATIONS` runs of
//! (a) the launch check: `parse` + `slot_for` + `unseal` + `open` (HMAC on a second
//!     thread, decryption and component hashes on this one);
//! (b) the baseline, in the same run, interleaved with (a): aws-lc-rs AES-256-GCM
//!     `open_in_place` of a payload of the same size, then SHA-256 of the plaintext.
//!
//! Dropping what was opened (which wipes it) is outside both timings; so is copying the
//! baseline's ciphertext before it is decrypted in place.
//!
//! `cargo bench -p veritee-workload --bench launch`

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::{aead, digest};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_workload::{
    Authorization, ComponentKind, ComponentSpec, WorkloadFile, WorkloadId, WorkloadSeed, build,
    storage_key_id,
};

const ITERATIONS: usize = 11;
const MIB: usize = 1 << 20;
const NOW: u64 = 1_750_000_000;
/// The module: `(module)`.
const MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// Random-looking bytes (xorshift64*), so nothing in the path can shortcut on them.
fn filler(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run(config_len: usize) {
    let config = filler(config_len);
    let seed = WorkloadSeed::generate().expect("a seed");
    let id = WorkloadId::generate().expect("an id");
    let storage_key = HpkeKeyPair::generate();
    let components = [
        ComponentSpec {
            kind: ComponentKind::Module,
            name: "main.wasm",
            data: MODULE,
        },
        ComponentSpec {
            kind: ComponentKind::Configuration,
            name: "config.bin",
            data: &config,
        },
    ];
    let built = build(&seed, id, &components).expect("build");
    let slot = Authorization::issue(&seed, id, &storage_key.public_key(), 0, u64::MAX)
        .expect("an authorization");
    let bytes = WorkloadFile::parse(&built)
        .expect("parse")
        .with_slot(slot)
        .expect("a slot");
    drop(built);
    let key_id = storage_key_id(&storage_key.public_key());
    let payload_len = WorkloadFile::parse(&bytes).expect("parse").payload_len() as usize;

    // The baseline's ciphertext: the same payload size under a key of its own.
    let baseline_key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, &[0x42; 32]).expect("a key"),
    );
    let nonce = [0x07u8; 12];
    let header = &bytes[..44];
    let mut ciphertext = filler(payload_len - aead::AES_256_GCM.tag_len());
    baseline_key
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(header),
            &mut ciphertext,
        )
        .expect("seal");
    assert_eq!(ciphertext.len(), payload_len);
    let mut buffer = ciphertext.clone();

    let mut launch = Vec::with_capacity(ITERATIONS);
    let mut baseline = Vec::with_capacity(ITERATIONS);
    // One untimed round of each first, to fault the allocator's pages in.
    for round in 0..=ITERATIONS {
        let start = Instant::now();
        let file = WorkloadFile::parse(black_box(&bytes)).expect("parse");
        let seed = file
            .slot_for(black_box(&key_id))
            .expect("a slot")
            .unseal(&storage_key, black_box(NOW))
            .expect("unseal");
        let opened = file.open(&seed).expect("the launch check");
        let elapsed = start.elapsed();
        black_box(&opened);
        assert_eq!(opened.components().len(), 2);
        drop(opened);
        if round > 0 {
            launch.push(elapsed);
        }

        buffer.copy_from_slice(&ciphertext);
        let start = Instant::now();
        let plaintext = baseline_key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(black_box(nonce)),
                aead::Aad::from(black_box(header)),
                black_box(&mut buffer[..]),
            )
            .expect("open");
        let hash = digest::digest(&digest::SHA256, plaintext);
        let elapsed = start.elapsed();
        black_box(hash);
        if round > 0 {
            baseline.push(elapsed);
        }
    }

    let (launch, baseline) = (median(launch), median(baseline));
    println!(
        "{} MiB configuration (payload {payload_len} bytes), median of {ITERATIONS}:",
        config_len / MIB
    );
    println!(
        "  launch check (parse + slot_for + unseal + open):  {:8.2} ms",
        ms(launch)
    );
    println!(
        "  baseline (AES-256-GCM open + SHA-256, 1 thread):  {:8.2} ms",
        ms(baseline)
    );
    println!(
        "  ratio:                                            {:8.2}x (goal: at most 1.3x)",
        launch.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then a small
    // size is enough to show the bench still runs.
    if std::env::args().any(|a| a == "--bench") {
        run(100 * MIB);
        run(16 * MIB);
    } else {
        run(MIB);
    }
}
