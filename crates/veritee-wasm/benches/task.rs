//! The word-frequency example through `run_task` (compartment, fuel with a yield
//! every `FUEL_YIELD_INTERVAL` for the wall-clock deadline, checked host API) against the same module on plain wasmtime (default
//! engine configuration, no fuel, no epochs, a minimal linker with the same host
//! functions and no checks), on the same data.
//!
//! ```text
//! cargo bench -p veritee-wasm --bench task               # 1 MB, 15 runs each, medians
//! cargo bench -p veritee-wasm --bench task -- --1gb      # and 1 GB, one run each
//! ```
//!
//! The 1 GB input is generated on the fly by an `InputSource` (a 1 MiB block of
//! generated text, repeated), so neither side holds it in memory: the peak RSS
//! (VmHWM, reset between measurements through /proc/self/clear_refs) is the
//! engine's own. The 1 MB input is an in-memory `Arc<[u8]>`. Plain and veritee
//! runs alternate, so load from other processes hits both alike. Two more plain
//! variants, one with fuel metering only and one with epoch interruption only,
//! show where the overhead comes from (they run in separate batches, so they are
//! noisier than the main pair); the engine used to run both, and now runs fuel only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use veritee_wasm::{
    Access, CompartmentSpec, Input, InputSource, SecurityContext, TaskLimits, TaskSpec, run_task,
};

#[path = "support/plain.rs"]
mod plain;

use plain::{Plain, WAT, generated_block, peak_rss_mib, reset_peak_rss};

/// `len` bytes: one block repeated.
struct Repeated {
    block: Vec<u8>,
    len: u64,
}

impl InputSource for Repeated {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        let want = (buf.len() as u64).min(self.len.saturating_sub(offset)) as usize;
        while done < want {
            let pos = ((offset + done as u64) % self.block.len() as u64) as usize;
            let n = (want - done).min(self.block.len() - pos);
            buf[done..done + n].copy_from_slice(&self.block[pos..pos + n]);
            done += n;
        }
        Ok(done)
    }
}

fn veritee_run(input: &Arc<dyn InputSource>) -> Vec<u8> {
    let spec = TaskSpec {
        compartments: vec![CompartmentSpec {
            name: "count".into(),
            module: WAT.as_bytes().into(),
            inputs: vec![Input::from_source("text", input.clone())],
            entry: "run".into(),
            keys: None,
        }],
        security: SecurityContext {
            compartments: [(
                "count".to_string(),
                Access {
                    may_read: Default::default(),
                    releases: true,
                },
            )]
            .into(),
        },
    };
    let limits = TaskLimits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(3600),
        ..TaskLimits::default()
    };
    let out = run_task(&spec, &limits).expect("veritee run");
    out.compartments[0].output.clone().unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compare(label: &str, input: Arc<dyn InputSource>, runs: usize) {
    let plain = Plain::new();
    // warm up: compile (veritee caches the module), check both agree
    let expected = plain.run(&input);
    assert_eq!(
        veritee_run(&input),
        expected,
        "both runs give the same counts"
    );

    let mut v_times = Vec::new();
    let mut p_times = Vec::new();
    let (mut v_rss, mut p_rss) = (0f64, 0f64);
    for _ in 0..runs {
        reset_peak_rss("self");
        let t = Instant::now();
        let out = plain.run(&input);
        p_times.push(t.elapsed());
        p_rss = p_rss.max(peak_rss_mib("self"));
        assert_eq!(out.len(), expected.len());

        reset_peak_rss("self");
        let t = Instant::now();
        let out = veritee_run(&input);
        v_times.push(t.elapsed());
        v_rss = v_rss.max(peak_rss_mib("self"));
        assert_eq!(out.len(), expected.len());
    }
    let (v, p) = (median(v_times), median(p_times));
    let attribution: Vec<(&str, Duration)> = [("fuel", true, false), ("epoch", false, true)]
        .into_iter()
        .map(|(what, fuel, epoch)| {
            let mut config = wasmtime::Config::new();
            config.consume_fuel(fuel).epoch_interruption(epoch);
            let variant = Plain::with_config(&config, fuel);
            let times = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    variant.run(&input);
                    t.elapsed()
                })
                .collect();
            (what, median(times))
        })
        .collect();
    let mb = input.len() as f64 / 1e6;
    println!(
        "{label}: {runs} run(s) each, {} distinct words\n  \
         plain wasmtime  median {:>10.3?}  {:>7.1} MB/s  peak RSS {:.1} MiB\n  \
         veritee run_task median {:>10.3?}  {:>7.1} MB/s  peak RSS {:.1} MiB\n  \
         ratio veritee/plain {:.3}\n  \
         attribution: plain + fuel only {:.3?} ({:.3}x), plain + epoch only {:.3?} ({:.3}x)",
        expected.iter().filter(|b| **b == b'\n').count(),
        p,
        mb / p.as_secs_f64(),
        p_rss,
        v,
        mb / v.as_secs_f64(),
        v_rss,
        v.as_secs_f64() / p.as_secs_f64(),
        attribution[0].1,
        attribution[0].1.as_secs_f64() / p.as_secs_f64(),
        attribution[1].1,
        attribution[1].1.as_secs_f64() / p.as_secs_f64(),
    );
}

fn main() {
    let big = std::env::args().any(|a| a == "--1gb");
    // `cargo bench` passes --bench; `cargo test --benches` runs this once quickly.
    let quick = !std::env::args().any(|a| a == "--bench") && !big;
    let block = generated_block(1 << 20);

    let one_mb: Arc<dyn InputSource> = Arc::new(Arc::<[u8]>::from(&block[..1_000_000]));
    compare(
        "word-frequency, 1 MB (in memory)",
        one_mb,
        if quick { 1 } else { 15 },
    );

    if big {
        let one_gb: Arc<dyn InputSource> = Arc::new(Repeated {
            block,
            len: 1_000_000_000,
        });
        compare("word-frequency, 1 GB (generated on the fly)", one_gb, 1);
    }
}
