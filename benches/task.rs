//! A trusted task end to end (the client encrypts the input under its compartment's
//! DEK, uploads it through the host, the enclave decrypts it chunk by chunk while the
//! module runs, the result comes back authenticated and is decrypted) against the same
//! module on plain wasmtime reading the same plaintext file, in the same run; with the
//! peak memory of the client (this process) and of the node's host and enclave
//! processes.
//!
//! ```text
//! cargo bench --bench task                 # 1 MB, 9 runs each, medians
//! cargo bench --bench task -- --runs 31    # 1 MB, 31 runs each (fixed costs)
//! cargo bench --bench task -- --1gb        # and 1 GB, 5 runs each
//! ```
//!
//! Plain and veritee runs alternate; besides the medians, the median of the pairwise
//! ratios (each veritee run over the plain run just before it) is printed, which is
//! steadier than a ratio of medians when the machine's speed drifts, and the median
//! time of each step of the task (initiation, key delivery, uploads, the rest).

#[path = "../crates/veritee-wasm/benches/support/plain.rs"]
mod plain;
mod support;

use support::DEV_POLICY;

use plain::{Plain, WAT, generated_block, peak_rss_mib, reset_peak_rss};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veritee_attest::ParsedCertificate;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_client::NodeClient;
use veritee_client::task::{Selection, TaskEvent, TaskRequest, run_task};
use veritee_policy::AppraisalPolicy;
use veritee_task::keys::TaskKey;
use veritee_verify::Verifiers;
use veritee_wasm::{InputSource, TaskManifest};

/// The plaintext file, read with pread by the plain-wasmtime baseline.
struct FileSource(std::fs::File, u64);

impl InputSource for FileSource {
    fn len(&self) -> u64 {
        self.1
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (buf.len() as u64).min(self.1.saturating_sub(offset)) as usize;
        self.0.read_at(&mut buf[..want], offset)
    }
}

/// The step an event ends, for the breakdown ("" for events that end none).
fn phase(event: &TaskEvent) -> &'static str {
    match event {
        TaskEvent::Chosen { .. } => "initiation and attestation",
        TaskEvent::KeysDelivered => "key delivery",
        TaskEvent::Running => "module encryption and upload",
        TaskEvent::Uploaded { what, .. } if what.ends_with("input-0") => {
            "input encryption and upload (execution running meanwhile)"
        }
        _ => "",
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Writes `len` bytes of generated text to `path`, one 1 MiB block repeated.
fn write_input(path: &Path, len: u64) {
    let block = generated_block(1 << 20);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("input"));
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("write input");
        left -= n as u64;
    }
    file.flush().expect("flush");
}

fn main() {
    let big = std::env::args().any(|a| a == "--1gb");
    let quick = !std::env::args().any(|a| a == "--bench") && !big;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("node");
    let (node, url) = support::start_node(&state, None, &[]);
    let host_pid = node.0.id().to_string();
    let enclave_pid = std::fs::read_to_string(state.join("run/enclave.pid"))
        .expect("enclave pid")
        .trim()
        .to_string();
    let token = std::fs::read_to_string(state.join("admin.token")).expect("token");
    let tenant = TenantKey::generate().expect("tenant");
    NodeClient::new(&url)
        .expect("client")
        .register_tenant(&token, &tenant)
        .expect("register");
    let anchors = veritee_attest::TrustAnchors::untyped(
        ParsedCertificate::from_pem_chain(
            &std::fs::read(state.join("vendor/root.pem")).expect("root"),
        )
        .expect("anchor"),
    );
    let verifiers = Verifiers::default();
    let policy = AppraisalPolicy::parse(DEV_POLICY).expect("policy");
    let task_key = TaskKey::generate().expect("task key");
    let task_dir = dir.path().join("task");
    std::fs::create_dir_all(&task_dir).expect("task dir");
    std::fs::write(task_dir.join("wordfreq.wat"), WAT).expect("module");
    std::fs::write(
        task_dir.join("task.toml"),
        "name = \"word-frequency\"\n[limits]\nfuel = 2_000_000_000_000\n\
         memory_bytes = 67108864\ntimeout_ms = 600000\n[[compartment]]\nname = \"count\"\n\
         module = \"wordfreq.wat\"\ninputs = [{ name = \"text\", file = \"input.txt\" }]\n\
         [security.count]\nreleases = true\n",
    )
    .expect("manifest");
    let manifest = TaskManifest::load(&task_dir.join("task.toml")).expect("manifest");
    let nodes = vec![url.clone()];

    // `--runs N` overrides the number of 1 MB runs (fixed costs want many).
    let runs_1mb = match std::env::args().skip_while(|a| a != "--runs").nth(1) {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("--runs takes a number of runs above 0, not {n:?}")),
        None if quick => 1,
        None => 9,
    };
    let mut sizes = vec![(1_000_000u64, runs_1mb)];
    if big {
        sizes.push((1_000_000_000, 5));
    }
    println!(
        "| input | plain wasmtime (median) | veritee task end to end (median) | ratio of medians | median of pairwise ratios | peak RSS client / host / enclave |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (len, runs) in sizes {
        let input_path = task_dir.join("input.txt");
        write_input(&input_path, len);
        let source: Arc<dyn InputSource> = Arc::new(FileSource(
            std::fs::File::open(&input_path).expect("input"),
            len,
        ));
        let baseline = Plain::new();
        let expected = baseline.run(&source);
        let (mut plain_times, mut task_times) = (Vec::new(), Vec::new());
        let (mut client_rss, mut host_rss, mut enclave_rss) = (0f64, 0f64, 0f64);
        let mut breakdowns = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let out = baseline.run(&source);
            plain_times.push(t.elapsed());
            assert_eq!(out, expected);

            for pid in ["self", &host_pid, &enclave_pid] {
                reset_peak_rss(pid);
            }
            let request = TaskRequest {
                nodes: &nodes,
                tenant: &tenant,
                task_key: &task_key,
                appraiser: Appraiser {
                    verifiers: &verifiers,
                    policy: &policy,
                    trust_anchors: &anchors,
                    collateral: &[],
                    at: time::OffsetDateTime::now_utc(),
                },
                policy_text: DEV_POLICY,
                selection: Selection::First,
                result_window: time::Duration::minutes(10),
            };
            let t = Instant::now();
            let mut marks = Vec::new();
            let report = run_task(&manifest, &request, &mut |event| {
                marks.push((phase(&event), t.elapsed()));
            })
            .expect("task");
            task_times.push(t.elapsed());
            marks.push(("rest of execution, result", t.elapsed()));
            breakdowns.push(marks);
            client_rss = client_rss.max(peak_rss_mib("self"));
            host_rss = host_rss.max(peak_rss_mib(&host_pid));
            enclave_rss = enclave_rss.max(peak_rss_mib(&enclave_pid));
            assert_eq!(report.outputs[0].output.expose(), &expected[..]);
        }
        let mut pairwise: Vec<f64> = plain_times
            .iter()
            .zip(&task_times)
            .map(|(p, v)| v.as_secs_f64() / p.as_secs_f64())
            .collect();
        pairwise.sort_by(f64::total_cmp);
        let each = |times: &[Duration]| {
            times
                .iter()
                .map(|t| format!("{t:.2?}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let runs_line = format!(
            "|   each run: plain {} / veritee {} | | | | | |",
            each(&plain_times),
            each(&task_times)
        );
        let (p, v) = (median(plain_times), median(task_times));
        println!(
            "| {} MB, {runs} run(s) each | {p:.3?} | {v:.3?} | {:.3} | {:.3} | {client_rss:.1} / {host_rss:.1} / {enclave_rss:.1} MiB |",
            len / 1_000_000,
            v.as_secs_f64() / p.as_secs_f64(),
            pairwise[pairwise.len() / 2],
        );
        println!("{runs_line}");
        // Where the time went, step by step: each step ends at its mark; the median
        // of each step over the runs.
        let mut per_step: Vec<(&str, Vec<Duration>)> = Vec::new();
        for marks in &breakdowns {
            let mut since = Duration::ZERO;
            for (i, (name, at)) in marks.iter().filter(|(n, _)| !n.is_empty()).enumerate() {
                if per_step.len() <= i {
                    per_step.push((name, Vec::new()));
                }
                per_step[i].1.push(at.saturating_sub(since));
                since = *at;
            }
        }
        let steps: Vec<String> = per_step
            .into_iter()
            .map(|(name, times)| format!("{name} {:.2?}", median(times)))
            .collect();
        println!(
            "|   step by step, median of the runs | {} | | | | |",
            steps.join(", ")
        );
    }
}
