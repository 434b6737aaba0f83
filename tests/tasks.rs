//! Trusted task offload end to end: `veritee task run` against real nodes, the example
//! tasks, what the host sees, the security context, provider selection under a policy,
//! and runaway guests.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tasks")
}

/// `veritee task run` with a policy file, a tenant and a task key in `dir`.
fn task_run(dir: &Path, nodes: &[&str], policy: &Path, task: &Path, out: &str) -> Output {
    let mut args = vec![
        "task".to_string(),
        "run".into(),
        "--nodes".into(),
        nodes.join(","),
        "--tenant".into(),
        s(&dir.join("tenant.key")),
        "--policy".into(),
        s(policy),
        "--task".into(),
        s(task),
        "--out".into(),
        s(&dir.join(out)),
        "--task-key".into(),
        s(&dir.join("keys/task.key")),
        "--explain".into(),
    ];
    if let Ok(anchor) = std::fs::canonicalize(dir.join("anchor.pem")) {
        args.extend(["--trust-anchor".into(), s(&anchor)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    veritee(&args)
}

/// A node with an embedded store under `root/node`.
fn node_in(root: &Path) -> Node {
    start(&root.join("node"), &s(&root.join("node/store")))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A client directory for `node`: tenant key registered, trust anchor, dev policy.
fn client_dir(node: &Node, root: &Path) -> PathBuf {
    let dir = root.join("client");
    std::fs::create_dir_all(&dir).expect("client dir");
    let tenant = tenant_file(node, &dir);
    std::fs::rename(tenant, dir.join("tenant.key")).expect("tenant");
    let anchor = node.anchor_path();
    std::fs::copy(anchor, dir.join("anchor.pem")).expect("anchor");
    std::fs::write(dir.join("dev.toml"), DEV_POLICY).expect("policy");
    dir
}

/// A TCP relay in front of `upstream` that records every byte in both directions.
fn recording_relay(upstream: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(256) {
            let Ok(client) = conn else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (addr, seen)
}

/// Copies an example into `dir` so that a test may change it.
fn copy_example(name: &str, dir: &Path) -> PathBuf {
    let from = examples().join(name);
    let to = dir.join(name);
    copy_tree(&from, &to);
    to
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

fn released(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .expect("out dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "out"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_examples_run_end_to_end_through_a_node() {
    let root = tempfile::tempdir().expect("tempdir");
    let node = node_in(root.path());
    let client = client_dir(&node, root.path());
    let policy = client.join("dev.toml");
    for (example, compartment) in [
        ("word-frequency", "count"),
        ("two-owner-statistic", "aggregate"),
        ("private-set-intersection", "intersect"),
    ] {
        let o = task_run(
            &client,
            &[&node.url],
            &policy,
            &examples().join(example).join("task.toml"),
            example,
        );
        assert!(o.status.success(), "{example}: {}", text(&o));
        let expected = std::fs::read(examples().join(example).join("expected.txt")).expect("x");
        assert_eq!(
            released(&client.join(example)),
            vec![(format!("{compartment}.out"), expected)],
            "{example}: only the releasing compartment's output, exactly as expected"
        );
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(client.join(example).join("result.json")).expect("result.json"),
        )
        .expect("json");
        assert_eq!(summary["provider"], node.url.as_str());
        let explained = text(&o);
        for step in [
            "TTIS",
            "attestation signal",
            "key exchange",
            "execution",
            "results",
        ] {
            assert!(
                explained.contains(step),
                "--explain lacks {step}: {explained}"
            );
        }
    }
    // The key file was created once, 0600, and reused.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(client.join("keys/task.key"))
        .expect("task key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Writing over earlier results is refused.
    let again = task_run(
        &client,
        &[&node.url],
        &policy,
        &examples().join("word-frequency/task.toml"),
        "word-frequency",
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("exists"), "{}", text(&again));
}

#[test]
fn the_c_example_builds_and_runs_through_a_node() {
    let available = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !available("clang") || !available("wasm-ld") {
        eprintln!(
            "skipped: clang and wasm-ld are needed to build the C example (.ci/run installs them)"
        );
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let task = copy_example("grep-count-c", root.path());
    let built = std::process::Command::new("clang")
        .current_dir(&task)
        .args([
            "--target=wasm32",
            "-O2",
            "-nostdlib",
            "-Wl,--no-entry",
            "-Wl,--export=run",
            "-o",
            "grepcount.wasm",
            "grepcount.c",
        ])
        .output()
        .expect("clang");
    assert!(built.status.success(), "{}", text(&built));
    let node = node_in(root.path());
    let client = client_dir(&node, root.path());
    let o = task_run(
        &client,
        &[&node.url],
        &client.join("dev.toml"),
        &task.join("task.toml"),
        "out",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        released(&client.join("out")),
        vec![(
            "grep.out".to_string(),
            std::fs::read(task.join("expected.txt")).expect("expected")
        )]
    );
}

#[test]
fn the_host_sees_no_plaintext_code_data_key_or_result() {
    let root = tempfile::tempdir().expect("tempdir");
    let node = node_in(root.path());
    let client = client_dir(&node, root.path());
    let task = copy_example("word-frequency", root.path());
    // The data canary is a word: it is in the input and, counted, in the result.
    let canary = format!(
        "canary{}",
        hex::encode(veritee_crypto::rand::array::<10>().expect("rand"))
    );
    std::fs::write(
        task.join("input.txt"),
        format!("{canary} {canary} {canary} plain words around the canary\n"),
    )
    .expect("input");
    // The code canary: a distinctive stretch of the module's source.
    let module = std::fs::read_to_string(task.join("wordfreq.wat")).expect("module");
    let code_canary = module
        .lines()
        .filter(|l| l.trim().len() > 40 && !l.trim_start().starts_with(";;"))
        .nth(3)
        .expect("a code line")
        .trim()
        .to_string();
    let (relay, wire) = recording_relay(&node.url);
    let o = task_run(
        &client,
        &[&relay],
        &client.join("dev.toml"),
        &task.join("task.toml"),
        "out",
    );
    assert!(o.status.success(), "{}", text(&o));
    let result = std::fs::read_to_string(client.join("out/count.out")).expect("result");
    let result_line = format!("{canary} 3");
    assert!(result.contains(&result_line), "{result}");
    let task_key = std::fs::read_to_string(client.join("keys/task.key")).expect("task key");

    let wire = wire.lock().expect("lock").clone();
    assert!(
        contains(&wire, b"PUT /v1/tasks/"),
        "the relay saw the uploads"
    );
    let host_memory = process_memory(node.child.id());
    assert!(
        contains(&host_memory, b"/v1/tasks/"),
        "the host memory scan found nothing"
    );
    let log = std::fs::read(&node.log).expect("log");
    let stored = all_files(&node.state);
    for (place, bytes) in [
        ("wire", &wire),
        ("host memory", &host_memory),
        ("logs", &log),
        ("node state", &stored),
    ] {
        assert!(
            !contains(bytes, canary.as_bytes()),
            "data canary in the {place}"
        );
        assert!(
            !contains(bytes, code_canary.as_bytes()),
            "module code in the {place}"
        );
        assert!(
            !contains(bytes, result_line.as_bytes()),
            "the result in the {place}"
        );
        assert!(
            !contains(bytes, task_key.trim().as_bytes()),
            "the task key in the {place}"
        );
    }
}

#[test]
fn a_compartment_reading_what_the_security_context_denies_is_stopped() {
    let root = tempfile::tempdir().expect("tempdir");
    let node = node_in(root.path());
    let client = client_dir(&node, root.path());
    let task = copy_example("two-owner-statistic", root.path());
    let manifest = std::fs::read_to_string(task.join("task.toml")).expect("manifest");
    let denied = manifest.replace(
        "may_read = [\"owner_a\", \"owner_b\"]",
        "may_read = [\"owner_a\"]",
    );
    assert_ne!(manifest, denied);
    std::fs::write(task.join("task.toml"), denied).expect("manifest");
    let o = task_run(
        &client,
        &[&node.url],
        &client.join("dev.toml"),
        &task.join("task.toml"),
        "out",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("compartment aggregate may not read compartment owner_b's data"),
        "{}",
        text(&o)
    );
    assert!(!client.join("out").exists(), "no result was written");
    assert_eq!(node.health()["status"], "ok");
}

#[test]
fn a_provider_failing_the_policy_never_receives_a_ciphertext() {
    let fleet = Fleet::new(&["m1", "m2"]);
    let good = fleet.node("good", "m1", "signer", &s(&fleet.p("good/store")), &[]);
    let other = fleet.node(
        "other",
        "m2",
        "other-signer",
        &s(&fleet.p("other/store")),
        &[],
    );
    let client = client_dir(&good, fleet.dir.path());
    let tenant = client.join("tenant.key");
    let o = veritee(&[
        "tenant",
        "register",
        "--node",
        &other.url,
        "--admin-token",
        &s(&other.state.join("admin.token")),
        "--tenant",
        &s(&tenant),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Pin the good node's signer.
    let appraisal = Appraisal::new(&good);
    let signer = good
        .client()
        .fetch_wrapping_key()
        .expect("wrapping key")
        .verify(&appraisal.appraiser())
        .expect("verify")
        .claims
        .signer
        .expect("signer");
    let pinned = client.join("pinned.toml");
    std::fs::write(&pinned, format!("{DEV_POLICY}signers = [\"{signer}\"]\n")).expect("policy");

    // The failing node is listed first: it is dropped, with the reason, and the task
    // runs on the next one.
    let (relay, wire) = recording_relay(&other.url);
    let o = task_run(
        &client,
        &[&relay, &good.url],
        &pinned,
        &examples().join("private-set-intersection/task.toml"),
        "out",
    );
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains(&format!("dropped {relay}")), "{said}");
    assert!(
        said.contains("signer"),
        "the reason names the signer: {said}"
    );
    assert_eq!(
        released(&client.join("out")),
        vec![(
            "intersect.out".to_string(),
            std::fs::read(examples().join("private-set-intersection/expected.txt")).expect("x")
        )]
    );
    let wire = wire.lock().expect("lock").clone();
    assert!(
        contains(&wire, b"POST /v1/tasks "),
        "the initiation went out"
    );
    for path in ["/keys ", "/files/", "/run "] {
        assert!(
            !contains(&wire, path.as_bytes()),
            "the failing provider received {path}"
        );
    }

    // When no provider passes, nothing secret is sent and the command says so.
    let o = task_run(
        &client,
        &[&relay],
        &pinned,
        &examples().join("private-set-intersection/task.toml"),
        "out-none",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing secret was sent"), "{}", text(&o));
    assert!(!client.join("out-none").exists());
}

#[test]
fn runaway_guests_are_stopped_and_the_node_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let node = node_in(root.path());
    let client = client_dir(&node, root.path());
    let guest = |name: &str, limits: &str, module: &str| -> PathBuf {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("guest.wat"), module).expect("module");
        std::fs::write(
            dir.join("task.toml"),
            format!(
                "name = \"{name}\"\n[limits]\n{limits}\n[[compartment]]\nname = \"main\"\n\
                 module = \"guest.wat\"\n[security.main]\nreleases = true\n"
            ),
        )
        .expect("manifest");
        dir.join("task.toml")
    };
    let spin = guest(
        "spin",
        "fuel = 1_000_000_000_000_000\ntimeout_ms = 3000",
        r#"(module (memory (export "memory") 1)
             (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#,
    );
    let bomb = guest(
        "bomb",
        "memory_bytes = 4194304",
        r#"(module (memory (export "memory") 1)
             (func (export "run") (result i32)
               (loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i32.const 0)))"#,
    );
    let policy = client.join("dev.toml");

    // While the loop spins, the node answers.
    let spinning = {
        let (client, policy, spin) = (client.clone(), policy.clone(), spin.clone());
        let url = node.url.clone();
        std::thread::spawn(move || task_run(&client, &[&url], &policy, &spin, "spin-out"))
    };
    std::thread::sleep(Duration::from_millis(1500));
    let asked = Instant::now();
    assert_eq!(node.health()["status"], "ok");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    let o = spinning.join().expect("thread");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("wall-clock timeout"), "{}", text(&o));

    let o = task_run(&client, &[&node.url], &policy, &bomb, "bomb-out");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("memory limit of 4194304 bytes exceeded"),
        "{}",
        text(&o)
    );

    // Logs come back with a released output, and stay in with a withheld one.
    let chatty = |text: &str| {
        format!(
            r#"(module (import "veritee" "log" (func $log (param i32 i32)))
                 (import "veritee" "output_write" (func $out (param i32 i32) (result i32)))
                 (memory (export "memory") 1)
                 (data (i32.const 0) "{text}")
                 (func (export "run") (result i32)
                   (call $log (i32.const 0) (i32.const {len}))
                   (drop (call $out (i32.const 0) (i32.const 2)))
                   (i32.const 0)))"#,
            len = text.len()
        )
    };
    let dir = root.path().join("chatty");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("open.wat"), chatty("ok: logged in the open")).expect("module");
    std::fs::write(dir.join("kept.wat"), chatty("no: kept inside")).expect("module");
    std::fs::write(
        dir.join("task.toml"),
        "name = \"chatty\"\n[[compartment]]\nname = \"open\"\nmodule = \"open.wat\"\n\
         [[compartment]]\nname = \"kept\"\nmodule = \"kept.wat\"\n\
         [security.open]\nreleases = true\n[security.kept]\nreleases = false\n",
    )
    .expect("manifest");
    let o = task_run(
        &client,
        &[&node.url],
        &policy,
        &dir.join("task.toml"),
        "chatty-out",
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = client.join("chatty-out");
    assert_eq!(
        std::fs::read_to_string(out.join("open.log")).expect("log"),
        "ok: logged in the open\n"
    );
    assert_eq!(std::fs::read(out.join("open.out")).expect("out"), b"ok");
    assert!(!out.join("kept.log").exists() && !out.join("kept.out").exists());

    // A node-wide ceiling caps what a manifest asks for, and good tasks still run.
    let o = task_run(
        &client,
        &[&node.url],
        &policy,
        &examples().join("word-frequency/task.toml"),
        "after",
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_task_input_gets_clear_errors() {
    let root = tempfile::tempdir().expect("tempdir");
    let node = node_in(root.path());
    let client = client_dir(&node, root.path());
    let policy = client.join("dev.toml");
    // A manifest with a typo in a security key.
    let task = copy_example("word-frequency", root.path());
    let manifest = std::fs::read_to_string(task.join("task.toml")).expect("manifest");
    std::fs::write(
        task.join("task.toml"),
        manifest.replace("releases = true", "release = true"),
    )
    .expect("manifest");
    let o = task_run(&client, &[&node.url], &policy, &task.join("task.toml"), "a");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("release"), "{}", text(&o));
    // A module that is not WebAssembly.
    std::fs::write(task.join("task.toml"), &manifest).expect("manifest");
    std::fs::write(task.join("wordfreq.wat"), "this is not a module").expect("module");
    let o = task_run(&client, &[&node.url], &policy, &task.join("task.toml"), "b");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("count"),
        "names the compartment: {}",
        text(&o)
    );
    // A node that is not there.
    let o = task_run(
        &client,
        &["http://127.0.0.1:9"],
        &policy,
        &examples().join("word-frequency/task.toml"),
        "c",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("127.0.0.1:9"), "{}", text(&o));
    assert_eq!(node.health()["status"], "ok");
}

#[test]
fn least_loaded_selection_picks_the_idler_provider() {
    let root = tempfile::tempdir().expect("tempdir");
    let busy = start(
        &root.path().join("busy"),
        &s(&root.path().join("busy/store")),
    );
    let idle = start(
        &root.path().join("idle"),
        &s(&root.path().join("idle/store")),
    );
    let client = client_dir(&busy, root.path());
    let o = veritee(&[
        "tenant",
        "register",
        "--node",
        &idle.url,
        "--admin-token",
        &s(&idle.state.join("admin.token")),
        "--tenant",
        &s(&client.join("tenant.key")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Both nodes are certified by their own simulated vendors: trust both.
    let anchors = client.join("anchors.pem");
    let mut both = std::fs::read(busy.state.join("vendor/root.pem")).expect("root");
    both.extend(std::fs::read(idle.state.join("vendor/root.pem")).expect("root"));
    std::fs::write(&anchors, both).expect("anchors");

    // A task initiated on `busy` and never run gives it a load of 1.
    let tenant = load_tenant(&client.join("tenant.key"));
    let ttis = veritee_task::messages::TaskInitiation {
        version: veritee_task::messages::INITIATION_VERSION,
        task_id: hex::encode(veritee_crypto::rand::array::<16>().expect("rand")),
        nonce: hex::encode(veritee_crypto::rand::array::<32>().expect("rand")),
        client_kx: hex::encode([9u8; 32]),
        policy: DEV_POLICY.into(),
        security_context: [(
            "main".to_string(),
            veritee_task::messages::AccessContext {
                may_read: Vec::new(),
                releases: true,
            },
        )]
        .into(),
        compartments: vec![veritee_task::messages::CompartmentContext {
            name: "main".into(),
            entry: "run".into(),
            inputs: Vec::new(),
            input_lengths: Vec::new(),
            keys: Vec::new(),
        }],
        limits: Default::default(),
    };
    let body = serde_json::to_vec(&ttis).expect("json");
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/tasks", busy.url))
        .header("content-type", "application/json")
        .header(
            "authorization",
            signed_header(&busy.url, &tenant, "POST", "/v1/tasks", &body),
        )
        .body(body)
        .send()
        .expect("initiate");
    assert_eq!(resp.status().as_u16(), 200);

    let mut args = vec![
        "task".to_string(),
        "run".into(),
        "--nodes".into(),
        format!("{},{}", busy.url, idle.url),
        "--tenant".into(),
        s(&client.join("tenant.key")),
        "--policy".into(),
        s(&client.join("dev.toml")),
        "--trust-anchor".into(),
        s(&anchors),
        "--task".into(),
        s(&examples().join("word-frequency/task.toml")),
        "--out".into(),
        s(&client.join("least")),
        "--task-key".into(),
        s(&client.join("keys/task.key")),
        "--select".into(),
        "least-loaded".into(),
    ];
    let o = veritee(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(client.join("least/result.json")).expect("result.json"),
    )
    .expect("json");
    assert_eq!(summary["provider"], idle.url.as_str(), "least-loaded");
    // The default, first, takes the first acceptable one regardless of load.
    args.truncate(args.len() - 2);
    let out = args.iter().position(|a| a == "--out").expect("--out") + 1;
    args[out] = s(&client.join("first"));
    let o = veritee(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(client.join("first/result.json")).expect("result.json"),
    )
    .expect("json");
    assert_eq!(summary["provider"], busy.url.as_str(), "first");
}

/// Sends only a request's head and returns the start of the node's answer: for
/// requests refused before their body is read (an HTTP client sending a body would
/// race the node closing the connection).
fn answer_to_head(url: &str, head: &str) -> String {
    let mut raw = TcpStream::connect(url.trim_start_matches("http://")).expect("connect");
    raw.write_all(head.as_bytes()).expect("head");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reply = [0u8; 64];
    let n = raw.read(&mut reply).expect("an answer without the body");
    String::from_utf8_lossy(&reply[..n]).into_owned()
}

/// A PUT signature over `payload` in place of the body's digest.
fn piece_header(
    url: &str,
    key: &veritee_channel::client::TenantKey,
    path: &str,
    payload: &str,
) -> String {
    header_over(url, key, key, "PUT", path, payload)
}

/// Initiates a task of one compartment reading one 10-byte input, with raw HTTP (as
/// only the initiation step, without running it); returns the node's answer.
fn initiate_raw(
    node: &Node,
    key: &veritee_channel::client::TenantKey,
    task_id: &str,
) -> reqwest::blocking::Response {
    let initiation = serde_json::json!({
        "version": veritee_task::messages::INITIATION_VERSION,
        "task_id": task_id,
        "nonce": hex::encode([7u8; 32]),
        "client_kx": hex::encode([9u8; 32]),
        "policy": DEV_POLICY,
        "security_context": { "c": { "may_read": [], "releases": true } },
        "compartments": [{ "name": "c", "entry": "run", "inputs": ["x"],
                           "input_lengths": [10] }],
    })
    .to_string();
    reqwest::blocking::Client::new()
        .post(format!("{}/v1/tasks", node.url))
        .header("content-type", "application/json")
        .header(
            "authorization",
            signed_header(&node.url, key, "POST", "/v1/tasks", initiation.as_bytes()),
        )
        .body(initiation)
        .send()
        .expect("initiate")
}

#[test]
fn task_file_pieces_are_signed_over_their_length_and_refused_otherwise() {
    use veritee_proto::api::auth::stream_piece_payload;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_in(dir.path());
    let owner = node.tenant().key;
    let task_id = hex::encode([0x5Au8; 16]);
    let http = reqwest::blocking::Client::new();
    let started = initiate_raw(&node, &owner, &task_id);
    assert_eq!(
        started.status(),
        200,
        "{}",
        started.text().unwrap_or_default()
    );

    let file = node.state.join(format!(
        "run/spool/{}/{task_id}/c/input-0",
        owner.tenant_id().expect("id")
    ));
    let at = |offset: u64| format!("/v1/tasks/{task_id}/files/c/input-0?offset={offset}");
    let put = |path: &str, auth: String, body: Vec<u8>| {
        let r = http
            .put(format!("{}{path}", node.url))
            .header("content-type", "application/octet-stream")
            .header("authorization", auth)
            .body(body)
            .send()
            .expect("put");
        let status = r.status().as_u16();
        (status, r.text().unwrap_or_default())
    };
    let piece = vec![0xC3u8; 1000];
    let (status, body) = put(
        &at(0),
        piece_header(&node.url, &owner, &at(0), &stream_piece_payload(1000)),
        piece.clone(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::metadata(&file).expect("spooled").len(), 1000);

    // Signed over the body's digest, over another length, or by another tenant: refused,
    // and the file keeps its 1000 bytes.
    let digest = hex::encode(veritee_crypto::digest::sha256(&piece));
    let other = node.tenant().key;
    for (auth, want) in [
        (piece_header(&node.url, &owner, &at(1000), &digest), 401),
        (
            piece_header(&node.url, &owner, &at(1000), &stream_piece_payload(999)),
            401,
        ),
        (
            piece_header(&node.url, &owner, &at(999), &stream_piece_payload(1000)),
            401,
        ),
        // Another tenant reaches only its own tasks: this id is unknown to it.
        (
            piece_header(&node.url, &other, &at(1000), &stream_piece_payload(1000)),
            404,
        ),
    ] {
        let (status, body) = put(&at(1000), auth, piece.clone());
        assert_eq!(status, want, "{body}");
        assert_eq!(std::fs::metadata(&file).expect("kept").len(), 1000);
    }
    // A piece that does not start where the file ends.
    let (status, body) = put(
        &at(500),
        piece_header(&node.url, &owner, &at(500), &stream_piece_payload(1000)),
        piece.clone(),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("has 1000 bytes"), "{body}");

    // A body cut short of its signed Content-Length (the connection closes early): the
    // partial piece is removed, and the next piece still appends at 1000.
    let mut raw = TcpStream::connect(node.url.trim_start_matches("http://")).expect("connect");
    let head = format!(
        "PUT {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n\
         authorization: {}\r\ncontent-length: 1000\r\n\r\n",
        at(1000),
        piece_header(&node.url, &owner, &at(1000), &stream_piece_payload(1000))
    );
    raw.write_all(head.as_bytes()).expect("head");
    raw.write_all(&piece[..400]).expect("part");
    raw.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut reply = Vec::new();
    let _ = raw.read_to_end(&mut reply);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&file).expect("file").len() != 1000 {
        assert!(
            Instant::now() < deadline,
            "the cut piece stayed in the spool"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A piece that would take the file past 4 GiB: refused before its body is read.
    let huge = 5u64 << 30;
    let reply = answer_to_head(
        &node.url,
        &format!(
            "PUT {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n\
             authorization: {}\r\ncontent-length: {huge}\r\n\r\n",
            at(1000),
            piece_header(&node.url, &owner, &at(1000), &stream_piece_payload(huge))
        ),
    );
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(std::fs::metadata(&file).expect("kept").len(), 1000);
    // No Content-Length at all (chunked): 411 before the body, nothing written.
    let reply = answer_to_head(
        &node.url,
        &format!(
            "PUT {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n\
             authorization: {}\r\ntransfer-encoding: chunked\r\n\r\n",
            at(1000),
            piece_header(&node.url, &owner, &at(1000), &stream_piece_payload(1000))
        ),
    );
    assert!(reply.starts_with("HTTP/1.1 411"), "{reply}");
    assert_eq!(std::fs::metadata(&file).expect("kept").len(), 1000);
    let (status, body) = put(
        &at(1000),
        piece_header(&node.url, &owner, &at(1000), &stream_piece_payload(1000)),
        piece,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::metadata(&file).expect("spooled").len(), 2000);

    // Withdrawing it: only its owner may (to anyone else it does not exist); then it
    // and its uploads are gone.
    let cancel_path = format!("/v1/tasks/{task_id}/cancel");
    let cancel = |key: &veritee_channel::client::TenantKey| {
        let r = http
            .post(format!("{}{cancel_path}", node.url))
            .header("content-type", "application/octet-stream")
            .header(
                "authorization",
                signed_header(&node.url, key, "POST", &cancel_path, b""),
            )
            .send()
            .expect("cancel");
        let status = r.status().as_u16();
        (status, r.text().unwrap_or_default())
    };
    assert_eq!(cancel(&other).0, 404);
    assert!(file.exists(), "another tenant's cancel touched the uploads");
    let (status, body) = cancel(&owner);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"was_running\":false"), "{body}");
    assert!(!file.exists(), "the withdrawn task's uploads stayed");
    let (status, body) = put(
        &at(2000),
        piece_header(&node.url, &owner, &at(2000), &stream_piece_payload(1000)),
        vec![0u8; 1000],
    );
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_failed_upload_withdraws_the_task_instead_of_waiting_out_its_deadline() {
    use veritee_client::ClientError;
    use veritee_client::task::{Selection, TaskEvent, TaskRequest, run_task};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_in(dir.path());
    let tenant = node.tenant().key;
    let task_dir = copy_example("word-frequency", dir.path());
    let toml = std::fs::read_to_string(task_dir.join("task.toml")).expect("manifest");
    // A deadline far longer than this test may take.
    std::fs::write(
        task_dir.join("task.toml"),
        toml.replace("timeout_ms = 30000", "timeout_ms = 300000"),
    )
    .expect("manifest");
    let manifest = veritee_wasm::TaskManifest::load(&task_dir.join("task.toml")).expect("load");
    let appraisal = Appraisal::new(&node);
    let task_key = veritee_task::keys::TaskKey::generate().expect("task key");
    let nodes = vec![node.url.clone()];
    let request = TaskRequest {
        nodes: &nodes,
        tenant: &tenant,
        task_key: &task_key,
        appraiser: appraisal.appraiser(),
        policy_text: DEV_POLICY,
        selection: Selection::First,
        result_window: time::Duration::minutes(5),
    };
    let input = task_dir.join("input.txt");
    let started = Instant::now();
    let e = run_task(&manifest, &request, &mut |event| {
        // After the initiation declared its length, the input shrinks.
        if matches!(event, TaskEvent::KeysDelivered) {
            let text = std::fs::read(&input).expect("input");
            std::fs::write(&input, &text[..text.len() / 2]).expect("shrink");
        }
    })
    .expect_err("the input changed");
    assert!(matches!(e, ClientError::TaskFile { .. }), "{e:?}");
    assert!(e.to_string().contains("changed while being sent"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited {:?}",
        started.elapsed()
    );
    // The node forgot it: its spool is empty, and it keeps serving.
    let spool = node.state.join("run/spool");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&spool).map_or(0, |d| d.count()) > 0 {
        assert!(
            Instant::now() < deadline,
            "the withdrawn task's spool stayed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(node.health()["status"], "ok");
}

#[test]
fn tasks_are_listed_and_cancelled_by_their_owner_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_in(dir.path());
    let key_file = tenant_file(&node, dir.path());
    let owner = load_tenant(&key_file);
    let key_file = s(&key_file);
    let task_id = hex::encode([0x6Bu8; 16]);
    let started = initiate_raw(&node, &owner, &task_id);
    assert_eq!(
        started.status(),
        200,
        "{}",
        started.text().unwrap_or_default()
    );

    let list = veritee(&["task", "list", "--node", &node.url, "--tenant", &key_file]);
    assert!(list.status.success(), "{}", text(&list));
    assert!(
        String::from_utf8_lossy(&list.stdout).starts_with(&task_id),
        "{}",
        text(&list)
    );
    // To anyone else the task does not exist.
    let other = node.tenant().key;
    let client = node.client();
    assert!(client.list_tasks(&other).expect("list").is_empty());
    assert!(matches!(
        client.cancel_task(&other, &task_id),
        Err(veritee_client::ClientError::Node { status: 404, .. })
    ));
    assert_eq!(client.list_tasks(&owner).expect("list").len(), 1);

    let cancel = veritee(&[
        "task", "cancel", "--node", &node.url, "--tenant", &key_file, &task_id,
    ]);
    assert!(cancel.status.success(), "{}", text(&cancel));
    assert!(text(&cancel).contains("had not run"), "{}", text(&cancel));
    assert!(client.list_tasks(&owner).expect("list").is_empty());
    // Cancelled once: a second cancel finds nothing, and says so.
    let again = veritee(&[
        "task", "cancel", "--node", &node.url, "--tenant", &key_file, &task_id,
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("404"), "{}", text(&again));
}

/// One tenant initiating tasks in a loop holds at most its share of a provider's
/// waiting tasks (429 past it, with Retry-After), and another tenant still gets in.
#[test]
fn a_tenant_holds_at_most_its_share_of_waiting_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_in(dir.path());
    let (busy, other) = (node.tenant().key, node.tenant().key);
    let initiate = |key: &veritee_channel::client::TenantKey, n: u8| {
        initiate_raw(&node, key, &hex::encode([n; 16]))
    };
    let share = veritee_enclave::MAX_WAITING_TASKS_PER_TENANT;
    for n in 0..share {
        let r = initiate(&busy, n as u8 + 1);
        assert_eq!(
            r.status(),
            200,
            "task {n}: {}",
            r.text().unwrap_or_default()
        );
    }
    let over = initiate(&busy, 200);
    assert_eq!(over.status(), 429);
    assert_eq!(
        over.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body = over.text().unwrap_or_default();
    assert!(
        body.contains("too_many") && body.contains("run or cancel"),
        "{body}"
    );
    let r = initiate(&other, 1);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    // Cancelling one of its own makes room again.
    node.client()
        .cancel_task(&busy, &hex::encode([1u8; 16]))
        .expect("cancel");
    let r = initiate(&busy, 201);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

/// Passes its input 0 (a whole `key_op` request) to stored key 0 and writes the
/// answer to its output; exits with what `key_op` returned.
const KEY_OP_TASK: &str = r#"(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "key_op" (func $key_op (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "run") (result i32)
    (local $n i32) (local $r i32)
    (local.set $n (call $input_read (call $self_id) (i32.const 0) (i64.const 0)
                                    (i32.const 0) (i32.const 65536)))
    (local.set $r (call $key_op (i32.const 0) (i32.const 0) (local.get $n)
                                (i32.const 65536) (i32.const 65536)))
    (if (i32.ge_s (local.get $r) (i32.const 0))
      (then (drop (call $output_write (i32.const 65536) (local.get $r)))))
    (local.get $r)))"#;

/// One key store, from the command line: a key imported with `--task-signer` is named
/// in a task manifest, the task encrypts with it, and `veritee crypto decrypt` opens
/// what the task returned; a key imported without it refuses the task, named.
#[test]
fn a_task_encrypts_under_an_imported_key_that_the_cli_then_decrypts() {
    const CANARY: &[u8; 32] = b"canary-cli-task-key-0123456789ab";
    let root = tempfile::tempdir().expect("tempdir");
    let node = node_in(root.path());
    let dir = client_dir(&node, root.path());
    let tenant = s(&dir.join("tenant.key"));
    let tenant_id = load_tenant(&dir.join("tenant.key"))
        .tenant_id()
        .expect("tenant id");
    let pin = std::fs::read_to_string(node.state.join("provider/provider.pub"))
        .expect("provider.pub")
        .trim()
        .to_string();
    let (policy, anchor) = (s(&dir.join("dev.toml")), s(&dir.join("anchor.pem")));
    let conn = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--node",
            &node.url,
            "--tenant",
            &tenant,
            "--policy",
            &policy,
            "--trust-anchor",
            &anchor,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |head: &[&str], extra: &[&str]| {
        let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        args.extend(conn(extra));
        let o = veritee(&args.iter().map(String::as_str).collect::<Vec<_>>());
        (o.status.success(), text(&o))
    };
    let o = veritee(&[
        "partition",
        "create",
        "--node",
        &node.url,
        "--tenant",
        &tenant,
        "--name",
        "payments",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let key_file = dir.join("card.key");
    std::fs::write(&key_file, CANARY).expect("key file");
    let send = |id: &str, signer: &[&str]| {
        let mut extra = vec![
            "--provider",
            &pin,
            "--partition",
            "payments",
            "--key-id",
            id,
            "--type",
            "aes-256-gcm",
            "--operations",
            "encrypt,decrypt",
        ];
        let key_file = s(&key_file);
        extra.extend(["--key-file", key_file.as_str()]);
        extra.extend(signer);
        let (ok, out) = run(&["import", "send"], &extra);
        assert!(ok, "{out}");
    };
    send("card-key", &["--task-signer", &tenant_id]);
    send("no-tasks", &[]);

    let task_dir = dir.join("task");
    std::fs::create_dir_all(&task_dir).expect("task dir");
    std::fs::write(task_dir.join("seal.wat"), KEY_OP_TASK).expect("module");
    let mut request = vec![1u8, 0, 0, 0, 0];
    request.extend_from_slice(b"4111 1111 1111 1111");
    std::fs::write(task_dir.join("request.bin"), &request).expect("input");
    let manifest = |key: &str| {
        format!(
            "name = \"seal\"\n[[compartment]]\nname = \"c\"\nmodule = \"seal.wat\"\n\
             inputs = [{{ name = \"request\", file = \"request.bin\" }}]\nkeys = [\"{key}\"]\n\
             [security.c]\nreleases = true\n"
        )
    };
    std::fs::write(task_dir.join("task.toml"), manifest("payments/card-key")).expect("toml");
    let dev = dir.join("dev.toml");
    let o = task_run(&dir, &[&node.url], &dev, &task_dir.join("task.toml"), "out");
    assert!(o.status.success(), "{}", text(&o));
    let outputs = released(&dir.join("out"));
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let ct = dir.join("out").join(&outputs[0].0);
    let (ok, out) = run(
        &["crypto", "decrypt"],
        &["--key", "payments/card-key", "--in", &s(&ct)],
    );
    assert!(ok && out.contains("4111 1111 1111 1111"), "{out}");
    assert!(!contains(&outputs[0].1, CANARY));
    assert!(!tree_contains(&dir.join("out"), CANARY));

    // The key its owner did not open to tasks: the task is refused, naming it.
    std::fs::write(task_dir.join("task.toml"), manifest("payments/no-tasks")).expect("toml");
    let o = task_run(
        &dir,
        &[&node.url],
        &dev,
        &task_dir.join("task.toml"),
        "out2",
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("payments/no-tasks") && out.contains("task_signers"),
        "{out}"
    );
}

/// A tenant's task uploads are bounded on a node: pieces at once (a third upload while
/// two are held open is refused) and bytes in the spool (a piece that would pass them
/// is refused and leaves the file as it was); 429 with Retry-After, named, and another
/// tenant's uploads go on. A cancelled task's spool makes room again.
#[test]
fn a_tenants_uploads_are_bounded_in_number_and_spool_bytes_and_the_others_are_not() {
    use veritee_proto::api::auth::stream_piece_payload;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node");
    let node = start_with(
        &root,
        &s(&root.join("store")),
        &["--tenant-spool-bytes", "4000", "--tenant-uploads", "2"],
    );
    let (busy, other) = (node.tenant().key, node.tenant().key);
    let http = reqwest::blocking::Client::new();
    let put = |key: &veritee_channel::client::TenantKey,
               task_id: &str,
               slot: &str,
               offset: u64,
               body: Vec<u8>| {
        let path = format!("/v1/tasks/{task_id}/files/c/{slot}?offset={offset}");
        let r = http
            .put(format!("{}{path}", node.url))
            .header("content-type", "application/octet-stream")
            .header(
                "authorization",
                piece_header(
                    &node.url,
                    key,
                    &path,
                    &stream_piece_payload(body.len() as u64),
                ),
            )
            .body(body)
            .send()
            .expect("put");
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (r.status().as_u16(), retry, r.text().unwrap_or_default())
    };
    let busy_task = hex::encode([0x11u8; 16]);
    let other_task = hex::encode([0x22u8; 16]);
    for (key, task) in [(&busy, &busy_task), (&other, &other_task)] {
        let r = initiate_raw(&node, key, task);
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    }

    // Bytes: 3000 fit, 1500 more would not (4000), and the file keeps its 3000.
    let (status, _, body) = put(&busy, &busy_task, "input-0", 0, vec![1u8; 3000]);
    assert_eq!(status, 200, "{body}");
    let (status, retry, body) = put(&busy, &busy_task, "input-0", 3000, vec![2u8; 1500]);
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert!(
        body.contains("spool_full") && body.contains("4000-byte limit"),
        "{body}"
    );
    let file = node.state.join(format!(
        "run/spool/{}/{busy_task}/c/input-0",
        busy.tenant_id().expect("id")
    ));
    assert_eq!(std::fs::metadata(&file).expect("kept").len(), 3000);
    // Another tenant's spool is its own.
    let (status, _, body) = put(&other, &other_task, "input-0", 0, vec![3u8; 3500]);
    assert_eq!(status, 200, "{body}");
    // What fits still goes in.
    let (status, _, body) = put(&busy, &busy_task, "input-0", 3000, vec![2u8; 1000]);
    assert_eq!(status, 200, "{body}");

    // Uploads at once: two pieces held open (head and part of the body sent), then a
    // third is refused until one of them ends.
    let holder = |slot: &str| {
        let path = format!("/v1/tasks/{other_task}/files/c/{slot}?offset=0");
        let auth = piece_header(&node.url, &other, &path, &stream_piece_payload(100));
        let mut raw = TcpStream::connect(node.url.trim_start_matches("http://")).expect("connect");
        write!(
            raw,
            "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\nauthorization: {auth}\r\ncontent-length: 100\r\n\r\n"
        )
        .expect("head");
        raw.write_all(&[4u8; 10]).expect("part of the body");
        raw
    };
    let first = holder("input-1");
    let _second = holder("input-2");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let (status, retry, body) = put(&other, &other_task, "input-3", 0, vec![5u8; 10]);
        if status == 429 {
            break (retry, body);
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "the two held uploads were never counted"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused.0.as_deref(), Some("1"));
    assert!(
        refused.1.contains("too_many_uploads") && refused.1.contains("2 uploads in progress"),
        "{}",
        refused.1
    );
    // The busy tenant is not held up by the other's uploads (its spool is full, not
    // its uploads: a piece of nothing passes both).
    let (status, _, body) = put(&busy, &busy_task, "input-1", 0, Vec::new());
    assert_eq!(status, 200, "{body}");
    // One held upload ends (the connection drops): room for one more.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = put(&other, &other_task, "input-3", 0, vec![5u8; 10]);
        if status == 200 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(
            Instant::now() < deadline,
            "the dropped upload kept its place"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Cancelling its task clears the busy tenant's spool: room again.
    node.client()
        .cancel_task(&busy, &busy_task)
        .expect("cancel");
    let next = hex::encode([0x33u8; 16]);
    let r = initiate_raw(&node, &busy, &next);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let (status, _, body) = put(&busy, &next, "input-0", 0, vec![6u8; 3900]);
    assert_eq!(status, 200, "{body}");
}

/// SIGTERM: the node takes no new connection, lets a request in progress finish (an
/// upload whose body is still arriving when the signal comes), answers it, and exits
/// cleanly; what it acknowledged is on disk.
#[test]
fn sigterm_lets_a_request_in_progress_finish_before_the_node_exits() {
    use veritee_proto::api::auth::stream_piece_payload;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = node_in(dir.path());
    let owner = node.tenant().key;
    let task_id = hex::encode([0x44u8; 16]);
    let r = initiate_raw(&node, &owner, &task_id);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let addr = node.url.trim_start_matches("http://").to_string();
    let path = format!("/v1/tasks/{task_id}/files/c/input-0?offset=0");
    let auth = piece_header(&node.url, &owner, &path, &stream_piece_payload(100));
    let mut raw = TcpStream::connect(&addr).expect("connect");
    write!(
        raw,
        "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\nauthorization: {auth}\r\ncontent-length: 100\r\n\r\n"
    )
    .expect("head");
    raw.write_all(&[4u8; 10]).expect("part of the body");
    // The handler has taken the request once its spool file exists (made before the
    // body is read).
    let file = node.state.join(format!(
        "run/spool/{}/{task_id}/c/input-0",
        owner.tenant_id().expect("id")
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }

    let sent = std::process::Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    // No new connection is taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still taking connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The request in progress finishes and is answered.
    raw.write_all(&[4u8; 90]).expect("the rest of the body");
    raw.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"bytes\":100"), "{answer}");
    // Then the node exits by itself, cleanly.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = node.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the node did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(std::fs::metadata(&file).expect("kept").len(), 100);
}
