//! Flow 2 through the CLI and real nodes: the owner builds a workload and puts its seed
//! in a security module (a node started with `--role sm`); `veritee deploy` enrolls a
//! target, authorizes it, puts its slot in the workload and launches it there; only
//! the owner reads what it wrote, and no host holds the secret CD1.

mod common;

use common::*;

fn ok(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_workload_deployed_through_the_security_module_runs_and_only_its_owner_reads_it() {
    const CANARY: &[u8] = b"canary-cd1-cli-2718281828459";
    let fleet = Fleet::new(&["m-sm", "m-a"]);
    let sm_state = fleet.p("sm");
    std::fs::create_dir_all(&sm_state).expect("sm dir");
    let (platform, anchors, store) = (
        s(&fleet.p("m-sm")),
        s(&fleet.p("vendor/root.pem")),
        s(&fleet.p("sm-store")),
    );
    let sm = start_with(
        &sm_state,
        &store,
        &[
            "--platform",
            &platform,
            "--peer-trust-anchors",
            &anchors,
            "--role",
            "sm",
        ],
    );
    let a = fleet.node("a", "m-a", "signer", &s(&fleet.p("a-store")), &[]);
    let tenant = tenant_file(&sm, fleet.dir.path());

    std::fs::write(fleet.p("volume.txt"), "data-volume-1").expect("config");
    std::fs::write(fleet.p("passphrase.txt"), CANARY).expect("secret");
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workloads/unlock.wat");
    let (workload, seed) = (s(&fleet.p("app.vtwl")), s(&fleet.p("app.seed")));
    let built = ok(veritee(&[
        "workload",
        "build",
        "--module",
        module,
        "--config",
        &s(&fleet.p("volume.txt")),
        "--secret",
        &format!("CD1={}", s(&fleet.p("passphrase.txt"))),
        "--out",
        &workload,
        "--seed-out",
        &seed,
    ]));
    assert!(built.contains("3 components (1 modules)"), "{built}");

    // The sealing policy names the code that may open the workload: A's signer.
    let signer = a
        .client()
        .fetch_wrapping_key()
        .expect("wrapping key")
        .verify(&Appraisal::new(&a).appraiser())
        .expect("verify")
        .claims
        .signer
        .expect("signer");
    let targets = fleet.p("targets.toml");
    std::fs::write(&targets, format!("{DEV_POLICY}signers = [\"{signer}\"]\n")).expect("policy");
    let put = ok(veritee(&[
        "sm",
        "put-seed",
        "--node",
        &sm.url,
        "--tenant",
        &s(&tenant),
        "--policy",
        &s(&fleet.p("dev.toml")),
        "--trust-anchor",
        &fleet.anchor(),
        "--workload",
        &workload,
        "--seed",
        &seed,
        "--sealing-policy",
        &s(&targets),
    ]));
    assert!(put.contains("stored in the security module"), "{put}");

    let out_dir = s(&fleet.p("launches"));
    let deploy = [
        "deploy",
        "--workload",
        &workload,
        "--sm",
        &sm.url,
        "--node",
        &a.url,
        "--out-dir",
        &out_dir,
    ];
    let deployed = ok(veritee(&deploy));
    assert!(deployed.contains("new authorization"), "{deployed}");
    let inspected = ok(veritee(&["workload", "inspect", &workload]));
    assert!(inspected.contains("slots     1"), "{inspected}");

    let launch = s(&fleet.p("launches/launch-1.json"));
    let opened = ok(veritee(&[
        "workload",
        "output",
        "--seed",
        &seed,
        "--workload",
        &workload,
        "--launch",
        &launch,
    ]));
    assert!(opened.contains("unlock.wat: exit 0"), "{opened}");
    assert!(
        opened.contains(&format!(
            "volume data-volume-1 unlocked with a passphrase of {} bytes",
            CANARY.len()
        )),
        "{opened}"
    );

    // Deployed again: the same authorization, never a second one.
    let again = ok(veritee(&deploy));
    assert!(again.contains("existing authorization"), "{again}");
    let listed = ok(veritee(&[
        "sm",
        "list",
        "--node",
        &sm.url,
        "--tenant",
        &s(&tenant),
    ]));
    assert!(listed.contains("targets (1)"), "{listed}");
    assert!(listed.contains("authorizations (1)"), "{listed}");

    // Verify before secrets: no slot; A measures the workload in fresh evidence and the
    // SM releases the seed to it.
    let verified = ok(veritee(&[
        "deploy",
        "--workload",
        &workload,
        "--sm",
        &sm.url,
        "--node",
        &a.url,
        "--verify-first",
        "--out-dir",
        &s(&fleet.p("verified")),
    ]));
    assert!(verified.contains("seed released by the SM"), "{verified}");
    let opened = ok(veritee(&[
        "workload",
        "output",
        "--seed",
        &seed,
        "--workload",
        &workload,
        "--launch",
        &s(&fleet.p("verified/launch-1.json")),
    ]));
    assert!(opened.contains("unlock.wat: exit 0"), "{opened}");

    // Deprovisioned: the target's storage key rotates, and the slot no longer opens.
    ok(veritee(&[
        "workload",
        "rotate-storage-key",
        "--node",
        &a.url,
        "--admin-token",
        &s(&a.state.join("admin.token")),
    ]));
    let refused = veritee(&[
        "workload",
        "launch",
        "--node",
        &a.url,
        "--workload",
        &workload,
        "--out",
        &s(&fleet.p("refused.json")),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("key was rotated"), "{stderr}");

    // The secret is nowhere a host wrote: state, stores, logs, the launch answers.
    for dir in [
        &sm.state,
        &a.state,
        &fleet.p("sm-store"),
        &fleet.p("a-store"),
    ] {
        assert!(!tree_contains(dir, CANARY), "{}", dir.display());
    }
    for log in [&sm.log, &a.log] {
        assert!(!contains(&std::fs::read(log).expect("log"), CANARY));
    }
    assert!(!tree_contains(&fleet.p("launches"), CANARY));
}
