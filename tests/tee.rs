//! `veritee node --tee`: which TEE a node runs on, what it says when it found none, and
//! the refusal to start on a TEE this machine lacks; the monotonic counter kept in a
//! TPM (`--counter-tpm`), which hardware TEEs need for rollback protection; the sealing
//! root a releasing peer gives a node on a TEE without a sealing key
//! (`--sealing-root-policy`, `--release-sealing-roots`).

mod common;

use common::{Appraisal, s, start_with, veritee};
use veritee_platform::hw::{self, HardwareRoots};

/// Whether this machine has a TEE (then `auto` does not fall back).
fn machine_has_a_tee() -> bool {
    hw::probe(&HardwareRoots::system()).is_ok()
}

#[test]
fn without_a_tee_auto_falls_back_to_the_simulator_loudly_and_sim_says_nothing() {
    if machine_has_a_tee() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let auto = start_with(
        &dir.path().join("auto"),
        &s(&dir.path().join("auto/store")),
        &[],
    );
    let health = auto.health();
    assert_eq!(health["tee"], "sim", "{health}");
    let warning = health["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("SIMULATED TEE") && warning.contains("no TEE found"),
        "{health}"
    );
    let log = std::fs::read_to_string(&auto.log).unwrap();
    assert!(log.contains("!!! WARNING: no TEE found"), "{log}");
    drop(auto);

    let chosen = start_with(
        &dir.path().join("sim"),
        &s(&dir.path().join("sim/store")),
        &["--tee", "sim"],
    );
    let health = chosen.health();
    assert_eq!(health["tee"], "sim");
    assert!(health.get("warning").is_none(), "{health}");
}

#[test]
fn asking_for_a_tee_this_machine_lacks_names_the_missing_device() {
    let dir = tempfile::tempdir().unwrap();
    let roots = HardwareRoots::system();
    for (tee, device) in [
        ("snp", roots.tsm_report.clone()),
        ("tdx", roots.tsm_report.clone()),
        ("sgx", roots.gramine.clone()),
        ("nitro", roots.nsm.clone()),
    ] {
        if device.exists() {
            continue;
        }
        let state = dir.path().join(tee);
        let out = veritee(&[
            "node",
            "--dir",
            &s(&state),
            "--tee",
            tee,
            "--listen",
            "127.0.0.1:0",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--tee {tee} started: {stderr}");
        assert!(
            stderr.contains(&format!("--tee {tee} needs")) && stderr.contains(&s(&device)),
            "--tee {tee}: {stderr}"
        );
        // Nothing was created for a node that never started.
        assert!(!state.exists(), "--tee {tee} left {}", state.display());
    }
    let out = veritee(&[
        "node",
        "--dir",
        &s(&dir.path().join("x")),
        "--tee",
        "quantum",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("quantum"));
}

#[test]
fn a_counter_kept_in_a_tpm_catches_a_node_put_back_to_an_older_copy() {
    if !veritee_tpm::swtpm::available_or_required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A TPM as a manufacturer ships it, and its manufacturer's CAs for the node.
    let ca = veritee_tpm::swtpm::LocalCa::issuing_crls(&dir.path().join("ca")).unwrap();
    ca.manufacture(&dir.path().join("tpm")).unwrap();
    let ca_pem = dir.path().join("tpm-ca.pem");
    std::fs::write(
        &ca_pem,
        [ca.root_pem().unwrap(), ca.intermediate_pem().unwrap()].concat(),
    )
    .unwrap();
    let tpm = veritee_tpm::swtpm::SoftwareTpm::start(&dir.path().join("tpm")).unwrap();
    let tcti = tpm.tcti();
    let state = dir.path().join("node");
    let store = state.join("store");
    let older = dir.path().join("older");
    let ca_arg = s(&ca_pem);
    let args = [
        "--tee",
        "sim",
        "--counter-tpm",
        tcti.as_str(),
        "--counter-tpm-ca",
        &ca_arg,
    ];

    let node = start_with(&state, &s(&store), &args);
    node.tenant();
    drop(node);
    // Everything the host holds: the store, and the simulated machine, whose own
    // counter a host can put back with it. Only the TPM's is out of its reach.
    copy_dir(&state, &older);

    let node = start_with(&state, &s(&store), &args);
    node.tenant();
    drop(node);

    std::fs::remove_dir_all(&state).unwrap();
    copy_dir(&older, &state);
    let mut command = vec![
        "node",
        "--dir",
        state.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let store_arg = s(&store);
    command.extend(["--store", store_arg.as_str()]);
    command.extend(args);
    let out = veritee(&command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a rolled-back node served: {stderr}");
    assert!(
        stderr.contains("the store was rolled back")
            && stderr.contains("kept by the TPM at swtpm:"),
        "{stderr}"
    );

    // The manufacturer revokes this TPM's endorsement key: given its CRL, the node
    // does not start on that TPM.
    let ek = veritee_tpm::device::TargetTpm::open(&tcti)
        .and_then(|mut tpm| tpm.ek_certificate())
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let crl = dir.path().join("revoking.crl");
    std::fs::write(
        &crl,
        ca.crl(
            &[ek],
            now - time::Duration::days(1),
            now + time::Duration::days(1),
        )
        .unwrap(),
    )
    .unwrap();
    let crl_arg = s(&crl);
    let revoked_state = s(&dir.path().join("revoked"));
    let mut command = vec![
        "node",
        "--dir",
        &revoked_state,
        "--listen",
        "127.0.0.1:0",
        "--counter-tpm-crl",
        &crl_arg,
    ];
    command.extend(args);
    let out = veritee(&command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a node ran on a revoked TPM: {stderr}"
    );
    assert!(stderr.contains("is revoked since"), "{stderr}");

    // A TPM its manufacturer's CAs do not vouch for (here: the CAs of another) is
    // refused, so a host cannot put a TPM of its own in its place.
    let other = veritee_tpm::swtpm::LocalCa::new(&dir.path().join("other-ca")).unwrap();
    other.manufacture(&dir.path().join("other-tpm")).unwrap();
    let other_pem = dir.path().join("other-ca.pem");
    std::fs::write(&other_pem, other.root_pem().unwrap()).unwrap();
    let state = dir.path().join("wrong-ca");
    let (state_arg, store_arg, other_arg) = (s(&state), s(&state.join("store")), s(&other_pem));
    let out = veritee(&[
        "node",
        "--dir",
        &state_arg,
        "--listen",
        "127.0.0.1:0",
        "--store",
        &store_arg,
        "--tee",
        "sim",
        "--counter-tpm",
        &tcti,
        "--counter-tpm-ca",
        &other_arg,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a node served on an unvouched TPM: {stderr}"
    );
    assert!(stderr.contains("is not vouched for"), "{stderr}");

    // The contrast: with the simulated machine's own counter, which lives in files the
    // host holds, the same copy put back is served.
    let state = dir.path().join("sim-counter");
    let store = state.join("store");
    let older = dir.path().join("sim-older");
    let node = start_with(&state, &s(&store), &["--tee", "sim"]);
    node.tenant();
    drop(node);
    copy_dir(&state, &older);
    let node = start_with(&state, &s(&store), &["--tee", "sim"]);
    node.tenant();
    drop(node);
    std::fs::remove_dir_all(&state).unwrap();
    copy_dir(&older, &state);
    let node = start_with(&state, &s(&store), &["--tee", "sim"]);
    node.tenant();
}

/// TDX and Nitro cannot run here; the simulator takes a released root in place of its
/// machine's sealing key the same way, so the whole path runs between two processes.
#[test]
fn a_node_seals_under_a_root_its_releasing_peer_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let releaser_state = dir.path().join("releaser");
    let releaser = start_with(
        &releaser_state,
        &s(&releaser_state.join("store")),
        &["--tee", "sim", "--release-sealing-roots"],
    );
    let log = std::fs::read_to_string(&releaser.log).unwrap();
    assert!(log.contains("releasing sealing roots"), "{log}");
    // What the releaser runs, as a client attests it: the policy names it.
    let appraisal = Appraisal::new(&releaser);
    let tenant = releaser.tenant();
    let client = releaser.client();
    let session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .unwrap();
    let measurement = hex::encode(session.claims().measurement("measurement").unwrap());
    drop(session);
    drop(client);
    let policy = dir.path().join("releaser.toml");
    std::fs::write(
        &policy,
        format!(
            "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n\
             [measurements]\nmeasurement = [\"{measurement}\"]\n"
        ),
    )
    .unwrap();

    // The requesting node runs on another machine of the same vendor, and the
    // releaser lets it in as a peer before it starts (it asks at start).
    let vendor = releaser_state.join("vendor");
    let machine = dir.path().join("machine-2");
    assert!(
        veritee(&[
            "platform",
            "init",
            "--dir",
            &s(&machine),
            "--vendor",
            &s(&vendor)
        ])
        .status
        .success()
    );
    let state = dir.path().join("requester");
    std::fs::create_dir_all(&state).unwrap();
    let token = hex::encode(veritee_crypto::rand::array::<32>().unwrap());
    std::fs::write(state.join("peer.token"), format!("{token}\n")).unwrap();
    std::fs::copy(vendor.join("root.pem"), state.join("trust-anchor.pem")).unwrap();
    releaser
        .client()
        .register_peer(&releaser.admin_token(), "requester", &token)
        .unwrap();
    let (machine_arg, anchor, policy_arg) = (s(&machine), s(&vendor.join("root.pem")), s(&policy));
    let releaser_url = releaser.url.clone();
    let args = [
        "--tee",
        "sim",
        "--platform",
        &machine_arg,
        "--peer-trust-anchors",
        &anchor,
        "--sealing-root-policy",
        &policy_arg,
        "--peer",
        &releaser_url,
    ];
    let store = s(&state.join("store"));
    let node = start_with(&state, &store, &args);
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("sealing root released"), "{log}");
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .unwrap();
    let secret = b"canary-released-root-4ac1e2";
    session
        .put_secret("kept", veritee_crypto::SecretBytes::copy_from(secret))
        .unwrap();
    drop(session);
    drop(client);
    let id = common::audience(&node.url).node;
    drop(node);

    // Restarted, it gets the same root from the releaser: same node, same secret.
    let node = start_with(&state, &store, &args);
    assert_eq!(common::audience(&node.url).node, id);
    let client = node.client();
    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .unwrap();
    assert_eq!(session.get_secret("kept").unwrap().expose(), secret);
    drop(session);
    drop(client);
    drop(node);
    assert!(!common::tree_contains(&state, secret));

    // Without its releaser it does not start, and says why.
    drop(releaser);
    let state_arg = s(&state);
    let mut command = vec![
        "node",
        "--dir",
        &state_arg,
        "--listen",
        "127.0.0.1:0",
        "--store",
        &store,
    ];
    command.extend(args);
    let out = veritee(&command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("sealing root"), "{stderr}");
}

#[test]
fn a_sealing_root_policy_must_name_its_releaser_and_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open.toml");
    std::fs::write(&open, "version = 1\ntee = [\"sev-snp\"]\n").unwrap();
    let pinned = dir.path().join("pinned.toml");
    std::fs::write(
        &pinned,
        format!(
            "version = 1\ntee = [\"sev-snp\"]\ntcb_status = [\"NotReported\"]\n\
             [measurements]\nlaunch_measurement = [\"{}\"]\n",
            "ab".repeat(48)
        ),
    )
    .unwrap();
    let state = s(&dir.path().join("node"));
    let (open, pinned) = (s(&open), s(&pinned));
    for (extra, expected) in [
        (
            vec![
                "--sealing-root-policy",
                &open,
                "--peer",
                "http://127.0.0.1:9",
            ],
            "pin the releaser's code",
        ),
        (vec!["--sealing-root-policy", &pinned], "--peer URL"),
    ] {
        let mut args = vec![
            "node",
            "--dir",
            &state,
            "--listen",
            "127.0.0.1:0",
            "--tee",
            "sim",
        ];
        args.extend(extra);
        let out = veritee(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
