//! What keeping the enclave's monotonic counter in a TPM costs (`--counter-tpm`), on
//! swtpm: one `advance_to` (one NV write through the counter's salted, encrypted HMAC
//! session) and one `read` (one NV read), against a durable 8-byte file write
//! (write + fsync, the class of cost of the simulated machine's counter) in the same
//! run. The state journal advances the counter twice per transition.
//!
//! `unset RUST_BACKTRACE; cargo bench -p veritee-tpm --bench counter`

use std::io::Write;
use std::time::{Duration, Instant};

use veritee_tpm::counter::TpmCounter;
use veritee_tpm::swtpm::SoftwareTpm;

const ROUNDS: usize = 201;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    if !veritee_tpm::swtpm::installed() {
        println!("(no rows: swtpm is not installed)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("tpm");
    std::fs::create_dir(&state).expect("state dir");
    let tpm = SoftwareTpm::start(&state).expect("swtpm");
    let mut counter = TpmCounter::open(&tpm.tcti(), 0x0100_0042, &[9; 32], None).expect("counter");
    let file_path = dir.path().join("counter");

    let (mut advance, mut read, mut file) = (vec![], vec![], vec![]);
    for round in 1..=ROUNDS as u64 {
        let start = Instant::now();
        counter.advance_to(round).expect("advance");
        advance.push(start.elapsed());

        let start = Instant::now();
        assert_eq!(counter.read().expect("read"), round);
        read.push(start.elapsed());

        let start = Instant::now();
        let mut f = std::fs::File::create(&file_path).expect("file");
        f.write_all(&round.to_be_bytes()).expect("write");
        f.sync_all().expect("fsync");
        file.push(start.elapsed());
    }
    let base = median(file);
    println!("| operation (median of {ROUNDS} interleaved rounds) | time | / durable file write |");
    println!("|---|---:|---:|");
    for (name, samples) in [
        (
            "TPM counter advance_to (one NV write, salted HMAC session, parameter encryption)",
            advance,
        ),
        (
            "TPM counter read (one NV read, salted HMAC session, parameter encryption)",
            read,
        ),
    ] {
        let m = median(samples);
        println!(
            "| {name} | {:.2} ms | {:.1}x |",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    println!(
        "| durable 8-byte file write (write + fsync; baseline) | {:.2} ms | 1.0x |",
        base.as_secs_f64() * 1e3
    );
}
