//! Fork latency through two real nodes: `veritee app fork` as a tenant sees it, from the
//! request in its session to the child's confirmation, for applications holding 1, 16
//! and 64 MiB of state, full (first fork) and incremental (1% of the pages changed
//! since the last), beside the bound of one `memcpy` plus a raw aws-lc-rs AES-256-GCM
//! encryption and decryption of the same bytes, measured in the same run.
//!
//! Node A forks into node B: the peer handshake (evidence both ways), the module and
//! offer in the peer session, the pages through A's host, HTTP and B's host, the
//! child's restore. The in-process figures of `veritee-fork`'s bench leave out
//! everything but the encryption and the copies; the difference is the node's.
//!
//! A second table: what `--durable` costs a call that changes 1% of the pages (the
//! state stored in the node's store after every call), beside the same call on a
//! volatile application, in the same run.
//!
//! `cargo bench --bench fork`; `VERITEE_FORK_BENCH_SIZES=1,16` picks sizes in MiB,
//! `VERITEE_FORK_BENCH_RUNS=5` the runs per figure (medians are shown).

mod support;

/// The bound and the medians, shared with `veritee-fork`'s in-process bench.
#[path = "../crates/veritee-fork/benches/support/bound.rs"]
mod bound;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bound::{bound, median, ms};
use support::Ctx;
use veritee_channel::apps::{AppAnswer, AppRequest};
use veritee_channel::client::TenantKey;
use veritee_client::NodeClient;
use veritee_crypto::SecretBytes;

const WORKLOAD: &str = include_str!("../crates/veritee-fork/benches/workload.wat");

fn veritee(dir: &Path, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_veritee"))
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("veritee");
    assert!(status.success(), "veritee {args:?}");
}

fn main() {
    let sizes: Vec<u32> = std::env::var("VERITEE_FORK_BENCH_SIZES")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = std::env::var("VERITEE_FORK_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);

    // One vendor, two machines, one enclave signer: the two nodes run the same code.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    veritee(d, &["vendor", "init", "--dir", "vendor"]);
    for m in ["m1", "m2"] {
        veritee(d, &["platform", "init", "--dir", m, "--vendor", "vendor"]);
    }
    let signer =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P384)
            .expect("signer");
    let pem = veritee_x509::pem::encode("PRIVATE KEY", signer.to_pkcs8().expect("pkcs8").expose());
    std::fs::write(d.join("signer.pem"), pem).expect("signer");
    let (root, signer_path) = (d.join("vendor/root.pem"), d.join("signer.pem"));
    let node_args = |machine: &Path| {
        vec![
            "--platform".to_string(),
            machine.display().to_string(),
            "--enclave-signer-key".into(),
            signer_path.display().to_string(),
            "--peer-trust-anchors".into(),
            root.display().to_string(),
        ]
    };
    let b_args = node_args(&d.join("m2"));
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let (_b, b_url) = support::start_node(&d.join("b"), None, &b_args);
    let mut a_args = node_args(&d.join("m1"));
    a_args.extend(["--peer".into(), b_url.clone()]);
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let (_a, a_url) = support::start_node(&d.join("a"), None, &a_args);
    let token =
        |node: &str, file: &str| std::fs::read_to_string(d.join(node).join(file)).expect("token");
    let b_client = NodeClient::new(&b_url).expect("client");
    b_client
        .register_peer(&token("b", "admin.token"), "a", &token("a", "peer.token"))
        .expect("peer");

    let tenant = TenantKey::generate().expect("tenant");
    let der = tenant.to_pkcs8().expect("pkcs8").expose().clone();
    let root_pem = std::fs::read(&root).expect("root");
    for (url, node) in [(&a_url, "a"), (&b_url, "b")] {
        NodeClient::new(url)
            .expect("client")
            .register_tenant(&token(node, "admin.token"), &tenant)
            .expect("register");
    }
    let mut a = support::session(Ctx::new(&a_url, &der, &root_pem));
    let mut b = support::session(Ctx::new(&b_url, &der, &root_pem));

    println!(
        "| state | bound: memcpy + AES-GCM enc + dec | full fork through the nodes | full / bound | incremental fork (1% dirty) | incremental / bound |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut n = 0;
    let mut durable_rows = Vec::new();
    for mib in sizes {
        let (mut full, mut incremental, mut bounds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            n += 1;
            let name = format!("app{n}");
            let answer = a
                .app(AppRequest::Run {
                    name: name.clone(),
                    module: SecretBytes::copy_from(WORKLOAD.as_bytes()),
                    memory_mib: Some(mib + 1),
                    fork_peer: None,
                    durable: false,
                    keys: Vec::new(),
                })
                .expect("run");
            assert!(matches!(answer, AppAnswer::Started { .. }));
            let call = |s: &mut veritee_client::Session<'_>, export: &str, input: Vec<u8>| {
                s.app(AppRequest::Call {
                    name: name.clone(),
                    export: export.into(),
                    input: SecretBytes::new(input),
                })
                .expect("call")
            };
            call(&mut a, "fill", (mib * 16).to_le_bytes().to_vec());
            let mut bytes = vec![0u8; (mib as usize) << 20];
            veritee_crypto::rand::fill(&mut bytes).expect("rand");
            bounds.push(bound(&bytes));
            for (times, child) in [(&mut full, "full"), (&mut incremental, "incremental")] {
                if child == "incremental" {
                    call(&mut a, "touch", Vec::new());
                }
                let child = format!("{name}-{child}");
                // B takes at most 20 peer messages a second from A (a fork is several):
                // start each fork with that budget full, outside the timed part.
                std::thread::sleep(std::time::Duration::from_secs(1));
                let start = Instant::now();
                let answer = a
                    .app(AppRequest::Fork {
                        name: name.clone(),
                        peer: b_url.clone(),
                        child: child.clone(),
                    })
                    .expect("fork");
                times.push(start.elapsed());
                assert!(matches!(answer, AppAnswer::Forked { .. }), "{answer:?}");
                b.app(AppRequest::Stop { name: child }).expect("stop child");
            }
            a.app(AppRequest::Stop { name }).expect("stop");
        }
        let (bd, f, i) = (median(bounds), median(full), median(incremental));
        println!(
            "| {mib} MiB | {} ms | {} ms | {:.1}x | {} ms | {:.1}x |",
            ms(bd),
            ms(f),
            f.as_secs_f64() / bd.as_secs_f64(),
            ms(i),
            i.as_secs_f64() / bd.as_secs_f64(),
        );
        durable_rows.push((mib, durable_call_cost(&mut a, mib, runs)));
    }
    println!();
    println!(
        "| state | call changing 1% of the pages, volatile | the same, durable (`--durable`) | durable / volatile |"
    );
    println!("|---:|---:|---:|---:|");
    for (mib, (volatile, durable)) in durable_rows {
        println!(
            "| {mib} MiB | {} ms | {} ms | {:.1}x |",
            ms(volatile),
            ms(durable),
            durable.as_secs_f64() / volatile.as_secs_f64()
        );
    }
}

/// The median time of a call that changes 1% of the pages (`touch`) of an application
/// holding `mib` MiB, volatile and durable (its state stored after each call), through
/// the node from the tenant's session.
fn durable_call_cost(
    a: &mut veritee_client::Session<'_>,
    mib: u32,
    runs: usize,
) -> (std::time::Duration, std::time::Duration) {
    let mut medians = Vec::new();
    for durable in [false, true] {
        let name = format!("calls-{mib}-{durable}");
        a.app(AppRequest::Run {
            name: name.clone(),
            module: SecretBytes::copy_from(WORKLOAD.as_bytes()),
            memory_mib: Some(mib + 1),
            fork_peer: None,
            durable,
            keys: Vec::new(),
        })
        .expect("run");
        let mut call = |export: &str, input: Vec<u8>| {
            let start = Instant::now();
            a.app(AppRequest::Call {
                name: name.clone(),
                export: export.into(),
                input: SecretBytes::new(input),
            })
            .expect("call");
            start.elapsed()
        };
        call("fill", (mib * 16).to_le_bytes().to_vec());
        let times: Vec<_> = (0..runs.max(5) * 2)
            .map(|_| call("touch", Vec::new()))
            .collect();
        medians.push(median(times));
        a.app(AppRequest::Stop { name }).expect("stop");
    }
    (medians[0], medians[1])
}
