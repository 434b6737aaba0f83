//! Flow 5 through the CLI and two real nodes: an application runs on node A, is forked
//! into node B's enclave, and both run on from the same state; neither host holds any
//! of it in the clear.

mod common;

use common::*;

/// `veritee app SUBCOMMAND` for `tenant` at `node`: success, stdout, stderr.
fn app(
    fleet: &Fleet,
    node: &str,
    tenant: &std::path::Path,
    args: &[&str],
) -> (bool, Vec<u8>, String) {
    let mut all = vec!["app", args[0]];
    let (url, tenant, policy, anchor) = (
        node.to_string(),
        s(tenant),
        s(&fleet.p("dev.toml")),
        fleet.anchor(),
    );
    all.extend([
        "--node",
        &url,
        "--tenant",
        &tenant,
        "--policy",
        &policy,
        "--trust-anchor",
        &anchor,
    ]);
    all.extend(&args[1..]);
    let o = veritee(&all);
    (
        o.status.success(),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(result: (bool, Vec<u8>, String)) -> Vec<u8> {
    assert!(result.0, "{}", result.2);
    result.1
}

fn count(fleet: &Fleet, node: &str, tenant: &std::path::Path, name: &str) -> u64 {
    let out = ok(app(
        fleet,
        node,
        tenant,
        &["call", "--name", name, "--export", "count"],
    ));
    u64::from_le_bytes(out.try_into().expect("8 bytes"))
}

/// Starts the counter example as `counter` (16 MiB) at `node` and counts to two; the
/// run's output.
fn run_counter_to_two(fleet: &Fleet, node: &str, tenant: &std::path::Path) -> Vec<u8> {
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/apps/counter.wat");
    let out = ok(app(
        fleet,
        node,
        tenant,
        &[
            "run",
            "--name",
            "counter",
            "--module",
            module,
            "--memory-mib",
            "16",
        ],
    ));
    assert_eq!(count(fleet, node, tenant, "counter"), 1);
    assert_eq!(count(fleet, node, tenant, "counter"), 2);
    out
}

#[test]
fn an_application_forked_to_another_node_runs_on_from_the_same_state() {
    const CANARY: &[u8] = b"canary-app-note-16180339";
    let fleet = Fleet::new(&["m1", "m2"]);
    let b = fleet.node("b", "m2", "signer", &s(&fleet.p("b-store")), &[]);
    let a = fleet.node("a", "m1", "signer", &s(&fleet.p("a-store")), &[&b.url]);
    let tenant = tenant_file(&a, fleet.dir.path());
    let registered = veritee(&[
        "tenant",
        "register",
        "--node",
        &b.url,
        "--admin-token",
        &s(&b.state.join("admin.token")),
        "--tenant",
        &s(&tenant),
    ]);
    assert!(registered.status.success());
    let out = run_counter_to_two(&fleet, &a.url, &tenant);
    assert!(String::from_utf8_lossy(&out).contains("application counter runs"));
    let note = fleet.p("note");
    std::fs::write(&note, CANARY).expect("note");
    ok(app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "call",
            "--name",
            "counter",
            "--export",
            "remember",
            "--in",
            &s(&note),
        ],
    ));

    let fork_to_b = || {
        app(
            &fleet,
            &a.url,
            &tenant,
            &[
                "fork",
                "--name",
                "counter",
                "--peer",
                &b.url,
                "--child",
                "counter-b",
            ],
        )
    };
    let out = ok(fork_to_b());
    let said = String::from_utf8_lossy(&out);
    assert!(
        said.contains("forked counter to") && said.contains("2 pages sent"),
        "{said}"
    );

    let listed = String::from_utf8_lossy(&ok(app(&fleet, &b.url, &tenant, &["list"]))).into_owned();
    assert!(
        listed.contains("counter-b") && listed.contains("forked from snapshot"),
        "{listed}"
    );
    let recalled = ok(app(
        &fleet,
        &b.url,
        &tenant,
        &["call", "--name", "counter-b", "--export", "recall"],
    ));
    assert_eq!(recalled, CANARY);
    assert_eq!(count(&fleet, &b.url, &tenant, "counter-b"), 3);
    assert_eq!(count(&fleet, &a.url, &tenant, "counter"), 3);
    assert_eq!(count(&fleet, &b.url, &tenant, "counter-b"), 4);

    // A message from the parent to the child under their link key, carried in a file.
    let message = fleet.p("message.sealed");
    let input = fleet.p("message.txt");
    std::fs::write(&input, b"from A to B").unwrap();
    ok(app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "call",
            "--name",
            "counter",
            "--export",
            "seal",
            "--in",
            &s(&input),
            "--out",
            &s(&message),
        ],
    ));
    let opened = ok(app(
        &fleet,
        &b.url,
        &tenant,
        &[
            "call",
            "--name",
            "counter-b",
            "--export",
            "open",
            "--in",
            &s(&message),
        ],
    ));
    assert_eq!(opened, b"from A to B");

    // 10 MiB of state: its page messages (8 MiB and 2 MiB) are relayed by each host as
    // they arrive (enclave_link.rs), and the child confirms the snapshot's digest.
    let workload = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/veritee-fork/benches/workload.wat"
    );
    ok(app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "run",
            "--name",
            "w",
            "--module",
            workload,
            "--memory-mib",
            "11",
        ],
    ));
    let wasm_pages = fleet.p("wasm-pages");
    std::fs::write(&wasm_pages, 160u32.to_le_bytes()).unwrap();
    ok(app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "call",
            "--name",
            "w",
            "--export",
            "fill",
            "--in",
            &s(&wasm_pages),
        ],
    ));
    let out = ok(app(
        &fleet,
        &a.url,
        &tenant,
        &["fork", "--name", "w", "--peer", &b.url, "--child", "w-b"],
    ));
    let said = String::from_utf8_lossy(&out);
    assert!(said.contains("2560 pages sent"), "{said}");
    ok(app(
        &fleet,
        &b.url,
        &tenant,
        &["call", "--name", "w-b", "--export", "touch"],
    ));

    // The same fork again is refused by name; an unknown application too.
    let (done, _, err) = fork_to_b();
    assert!(!done && err.contains("already runs"), "{err}");
    let (done, _, err) = app(
        &fleet,
        &a.url,
        &tenant,
        &["call", "--name", "nothing", "--export", "count"],
    );
    assert!(!done && err.contains("no application nothing"), "{err}");

    ok(app(&fleet, &a.url, &tenant, &["stop", "--name", "counter"]));
    ok(app(&fleet, &a.url, &tenant, &["stop", "--name", "w"]));
    let listed = String::from_utf8_lossy(&ok(app(&fleet, &a.url, &tenant, &["list"]))).into_owned();
    assert!(listed.contains("no applications"), "{listed}");

    // Neither host holds the note: not in their stores, logs or memory.
    for node in [&a, &b] {
        let mut seen = all_files(&node.state);
        seen.extend(all_files(std::path::Path::new(&node.store)));
        seen.extend(std::fs::read(&node.log).unwrap_or_default());
        seen.extend(process_memory(node.child.id()));
        for needle in [CANARY.to_vec(), hex::encode(CANARY).into_bytes()] {
            assert!(!contains(&seen, &needle), "the note reached a host");
        }
    }
}

/// `app run --durable`: the enclave killed with -9 is restarted by its host, and the
/// application is there again with its state; one started without it is not.
#[test]
fn a_durable_application_outlives_its_enclave() {
    let fleet = Fleet::new(&["m1"]);
    // 16 MiB and its shadow for each durable application, 16 for a volatile one.
    let a = fleet.node_with_anchors(
        "a",
        "m1",
        "signer",
        &s(&fleet.p("a-store")),
        &[],
        &fleet.p("vendor/root.pem"),
        &["--memory-budget-mib", "48"],
    );
    let tenant = tenant_file(&a, fleet.dir.path());
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/apps/counter.wat");
    for (name, durable) in [("kept", true), ("volatile", false)] {
        let mut args = vec![
            "run",
            "--name",
            name,
            "--module",
            module,
            "--memory-mib",
            "16",
        ];
        if durable {
            args.push("--durable");
        }
        ok(app(&fleet, &a.url, &tenant, &args));
        assert_eq!(count(&fleet, &a.url, &tenant, name), 1);
        assert_eq!(count(&fleet, &a.url, &tenant, name), 2);
    }
    let listed = String::from_utf8_lossy(&ok(app(&fleet, &a.url, &tenant, &["list"]))).into_owned();
    assert!(listed.contains("durable"), "{listed}");
    // A stored key the tenant does not hold refuses the run, named.
    let (done, _, err) = app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "run",
            "--name",
            "keyed",
            "--module",
            module,
            "--key",
            "vault/none",
        ],
    );
    assert!(
        !done && err.contains("application keyed is refused: it names key vault/none"),
        "{err}"
    );
    // The node's memory budget is full.
    let (done, _, err) = app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "run",
            "--name",
            "more",
            "--module",
            module,
            "--memory-mib",
            "1",
        ],
    );
    assert!(
        !done
            && err.contains(
                "memory budget is full: application more asks 1 MiB, 48 MiB of 48 MiB are reserved"
            ),
        "{err}"
    );

    let pid = a.enclave_pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while a.health()["enclave"] != "running" || a.enclave_pid() == pid {
        assert!(
            std::time::Instant::now() < deadline,
            "the enclave did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(count(&fleet, &a.url, &tenant, "kept"), 3);
    let (done, _, err) = app(
        &fleet,
        &a.url,
        &tenant,
        &["call", "--name", "volatile", "--export", "count"],
    );
    assert!(!done && err.contains("no application volatile"), "{err}");
}

/// `--local-children`: the host starts the fork's child enclave itself, as a new node
/// process on this machine (`--peer local:NAME`); the child attests as any peer would,
/// runs on from the parent's state, is listed with its URL, and stops with its parent.
#[test]
fn an_application_forks_into_a_child_node_its_host_starts() {
    let fleet = Fleet::new(&["m1"]);
    let mut a = fleet.node_with_anchors(
        "a",
        "m1",
        "signer",
        &s(&fleet.p("a-store")),
        &[],
        &fleet.p("vendor/root.pem"),
        &["--local-children", "1"],
    );
    let tenant = tenant_file(&a, fleet.dir.path());
    run_counter_to_two(&fleet, &a.url, &tenant);
    let out = ok(app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "fork",
            "--name",
            "counter",
            "--peer",
            "local:kid",
            "--child",
            "counter",
        ],
    ));
    assert!(!out.is_empty());

    // The child's URL, from the parent's admin API.
    let listed: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/children", a.url))
        .bearer_auth(a.admin_token().trim())
        .send()
        .expect("children")
        .json()
        .expect("json");
    let children = listed["children"].as_array().expect("children");
    // Only the admin sees them.
    let anonymous = reqwest::blocking::get(format!("{}/v1/children", a.url)).expect("children");
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(children.len(), 1, "{listed}");
    assert_eq!(children[0]["name"], "kid");
    let child_url = children[0]["url"].as_str().expect("url").to_string();

    // Both run on from the same state, apart (the tenant reaches the child directly;
    // the child learned the tenant from its parent, its peer).
    assert_eq!(count(&fleet, &child_url, &tenant, "counter"), 3);
    assert_eq!(count(&fleet, &child_url, &tenant, "counter"), 4);
    assert_eq!(count(&fleet, &a.url, &tenant, "counter"), 3);
    // One child at most: a second is refused, naming the bound.
    let (done, _, err) = app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "fork",
            "--name",
            "counter",
            "--peer",
            "local:other",
            "--child",
            "counter",
        ],
    );
    assert!(!done && err.contains("at most 1 local children"), "{err}");
    // A name that is no name never starts anything.
    let (done, _, err) = app(
        &fleet,
        &a.url,
        &tenant,
        &[
            "fork",
            "--name",
            "counter",
            "--peer",
            "local:../x",
            "--child",
            "counter",
        ],
    );
    assert!(!done && err.contains("a child's name"), "{err}");

    // Tenants unknown to the child are looked up at its peer: a few a second, however
    // many ids a stranger makes up (each lookup costs attested handshakes).
    let statuses: Vec<u16> = (0..20u8)
        .map(|i| {
            let header = format!(
                "Veritee tenant={}, node={}, epoch={}, ts={}, nonce={}, sig=AAAA",
                hex::encode([i; 16]),
                "00".repeat(8),
                "00".repeat(16),
                time::OffsetDateTime::now_utc().unix_timestamp(),
                "00".repeat(veritee_proto::api::auth::NONCE_LEN),
            );
            reqwest::blocking::Client::new()
                .post(format!("{child_url}/v1/sessions"))
                .header("authorization", header)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .expect("request")
                .status()
                .as_u16()
        })
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");

    // The parent stops (killed): its child follows.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while reqwest::blocking::get(format!("{child_url}/healthz")).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the child node outlived its parent"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
