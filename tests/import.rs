//! Secret import (flow 3) end to end on real nodes: the CLI a customer uses, the
//! provider key pinned against a man in the middle, operations by key id, the key
//! surviving a restart sealed, and a canary key found nowhere the host touched.

#[macro_use]
mod common;

use base64::Engine;
use common::*;
use std::path::Path;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_client::import::{ImportSpec, prepare_import};
use veritee_crypto::SecretBytes;
use veritee_import::keys::{KeyRef, KeyType, Operation};
use veritee_import::metadata::KeyRelease;
use veritee_import::provider::{ProviderStatement, SignedProviderStatement};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CANARY: &[u8; 32] = b"canary-flow3-key-0123456789abcde";

both_stores!(
    an_imported_key_is_used_by_id_and_never_seen_by_the_host,
    import_and_use
);

fn provider_pin(node: &Node) -> String {
    std::fs::read_to_string(node.state.join("provider/provider.pub"))
        .expect("provider.pub")
        .trim()
        .to_string()
}

/// `veritee partition create`, which must succeed.
fn create_partition_cli(node: &str, tenant: &str, name: &str) {
    let (ok, out) = cli(&[
        "partition",
        "create",
        "--node",
        node,
        "--tenant",
        tenant,
        "--name",
        name,
    ]);
    assert!(ok, "{out}");
}

fn cli(args: &[&str]) -> (bool, String) {
    let o = veritee(args);
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn import_and_use(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(store) = store_location(kind, dir.path()) else {
        return;
    };
    let state = dir.path().join("node");
    let mut node = start(&state, &store);
    let tenant_path = tenant_file(&node, dir.path());
    let tenant = load_tenant(&tenant_path);
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let (url, t, p, anchor, pin) = (
        node.url.clone(),
        s(&tenant_path),
        s(&policy),
        s(&node.anchor_path()),
        provider_pin(&node),
    );
    let conn = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--node",
            &url,
            "--tenant",
            &t,
            "--policy",
            &p,
            "--trust-anchor",
            &anchor,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>| cli(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // The customer's CLI: a partition, both keys validated, the key sent.
    create_partition_cli(&url, &t, "payments");
    let key_file = dir.path().join("card.key");
    std::fs::write(&key_file, CANARY).expect("key file");
    let send = |pin: &str, id: &str, ops: &str| {
        let mut args = vec!["import".to_string(), "send".into()];
        args.extend(conn(&[
            "--provider",
            pin,
            "--partition",
            "payments",
            "--key-id",
            id,
            "--type",
            "aes-256-gcm",
            "--operations",
            ops,
            "--key-file",
            &s(&key_file),
        ]));
        run(args)
    };
    // A man in the middle's provider key (another pin than the provider's) gets nothing.
    let (ok, out) = send(&"ab".repeat(32), "card-key", "encrypt,decrypt");
    assert!(!ok && out.contains("pinned provider key"), "{out}");
    let (ok, out) = send(&pin, "card-key", "encrypt,decrypt");
    assert!(ok, "{out}");
    assert!(
        out.contains("imported payments/card-key (aes-256-gcm, may encrypt, decrypt)"),
        "{out}"
    );
    let (ok, out) = send(&pin, "enc-only", "encrypt");
    assert!(ok, "{out}");
    let (ok, out) = cli(&["partition", "list", "--node", &url, "--tenant", &t]);
    assert!(ok && out.contains("payments\tcard-key enc-only"), "{out}");

    // Operations by key id through the CLI.
    let plain = dir.path().join("card.txt");
    std::fs::write(&plain, b"4111 1111 1111 1111").expect("plain");
    let ct = dir.path().join("card.ct");
    let mut args = vec!["crypto".to_string(), "encrypt".into()];
    args.extend(conn(&[
        "--key",
        "payments/enc-only",
        "--aad",
        "order-7",
        "--in",
        &s(&plain),
        "--out",
        &s(&ct),
    ]));
    let (ok, out) = run(args);
    assert!(ok, "{out}");
    let mut args = vec!["crypto".to_string(), "decrypt".into()];
    args.extend(conn(&[
        "--key",
        "payments/enc-only",
        "--aad",
        "order-7",
        "--in",
        &s(&ct),
    ]));
    let (ok, out) = run(args);
    assert!(!ok && out.contains("may not be used to decrypt"), "{out}");
    let moved = dir.path().join("card.moved");
    let mut args = vec!["crypto".to_string(), "translate".into()];
    args.extend(conn(&[
        "--key",
        "payments/enc-only",
        "--to",
        "payments/card-key",
        "--aad",
        "order-7",
        "--in",
        &s(&ct),
        "--out",
        &s(&moved),
    ]));
    let (ok, out) = run(args);
    assert!(!ok && out.contains("may not be used to translate"), "{out}");
    let mut args = vec!["crypto".to_string(), "encrypt".into()];
    let ct2 = dir.path().join("card.ct2");
    args.extend(conn(&[
        "--key",
        "payments/card-key",
        "--in",
        &s(&plain),
        "--out",
        &s(&ct2),
    ]));
    assert!(run(args).0);
    let mut args = vec!["crypto".to_string(), "decrypt".into()];
    args.extend(conn(&["--key", "payments/card-key", "--in", &s(&ct2)]));
    let (ok, out) = run(args);
    assert!(ok && out.contains("4111 1111 1111 1111"), "{out}");

    // A new version: what the old one encrypted still opens.
    let mut args = vec!["crypto".to_string(), "rotate".into()];
    args.extend(conn(&["--key", "payments/card-key"]));
    let (ok, out) = run(args);
    assert!(
        ok && out.contains("payments/card-key is at version 2"),
        "{out}"
    );
    let mut args = vec!["crypto".to_string(), "decrypt".into()];
    args.extend(conn(&["--key", "payments/card-key", "--in", &s(&ct2)]));
    let (ok, out) = run(args);
    assert!(ok && out.contains("4111 1111 1111 1111"), "{out}");

    // Through the library, recording the wire: the fresh keys are validated, a man in
    // the middle who swaps the provider's statement is refused, the import confirmed.
    let (client, exchanges) = node.client().recording();
    let appraisal = Appraisal::new(&node);
    let mut pinned = [0u8; 32];
    hex::decode_to_slice(&pin, &mut pinned).expect("pin");
    let fetched = client.fetch_import_keys().expect("keys");
    let now = time::OffsetDateTime::now_utc();
    let mitm_key = veritee_crypto::sign::Ed25519SigningKey::generate().expect("key");
    let mut swapped = fetched.clone();
    let forged = SignedProviderStatement::sign(
        &mitm_key,
        &ProviderStatement {
            provider: pin.clone(),
            host_key: hex::encode(
                veritee_crypto::hpke::HpkeKeyPair::generate()
                    .public_key()
                    .as_bytes(),
            ),
            node_id: fetched.keys.tee.node_id.clone(),
            nonce: fetched.nonce.clone(),
            issued: fetched.fetched_at.clone(),
        },
    )
    .expect("forge");
    swapped.keys.provider_statement = B64.encode(&forged.statement);
    swapped.keys.provider_signature = B64.encode(&forged.signature);
    let err = swapped
        .validate(&appraisal.appraiser(), &pinned, now)
        .unwrap_err();
    assert!(err.to_string().contains("pinned provider key"), "{err}");
    let mut swapped_tee = fetched.clone();
    swapped_tee.keys.tee.public_key = hex::encode([9u8; 32]);
    assert!(
        swapped_tee
            .validate(&appraisal.appraiser(), &pinned, now)
            .is_err()
    );
    let keys = fetched
        .validate(&appraisal.appraiser(), &pinned, now)
        .expect("validated");
    let material = SecretBytes::copy_from(CANARY);
    let spec = ImportSpec {
        partition: "payments".into(),
        key_id: "lib-key".into(),
        key_type: KeyType::HmacSha256,
        operations: vec![Operation::Hmac],
        rotate_after_secs: None,
        release: None,
        task_signers: vec![],
    };
    let prepared = prepare_import(&keys, &tenant, &spec, &material, None).expect("prepare");
    let imported = client
        .send_import(&tenant, &keys, &prepared)
        .expect("import");
    assert_eq!(imported.confirmation.key_id, "lib-key");
    let mut session = client
        .open_session(&tenant, &appraisal.appraiser())
        .expect("session");
    let outcomes = session
        .crypto(vec![CryptoOp::Hmac {
            key: KeyRef::new("payments", "lib-key"),
            data: b"m".to_vec(),
        }])
        .expect("hmac");
    assert!(
        matches!(&outcomes[..], [CryptoOutcome::Mac { tag: t, .. }] if t[..] == veritee_crypto::mac::hmac_sha256(CANARY, b"m"))
    );

    // The canary, raw, hex or base64: not on the wire, in the logs, the store or the
    // host's memory.
    for x in exchanges.lock().expect("lock").iter() {
        for c in &canaries() {
            assert!(
                !contains(&x.request_body, c) && !contains(&x.response_body, c),
                "on the wire: {}",
                x.request_line
            );
        }
    }
    let stored = if kind == "embedded" {
        all_files(&node.state)
    } else {
        Vec::new()
    };
    assert_canary_off_the_host(&node, &tenant.tenant_id().expect("id"), &stored);

    // Restarted, the node serves the key from its sealed store.
    node.child.kill().expect("kill");
    node.child.wait().expect("wait");
    drop(node);
    let node = start(&state, &store);
    let mut args = vec!["crypto".to_string(), "decrypt".into()];
    let mut c = conn(&["--key", "payments/card-key", "--in", &s(&ct2)]);
    c[1] = node.url.clone();
    args.extend(c);
    let (ok, out) = run(args);
    assert!(
        ok && out.contains("4111 1111 1111 1111"),
        "after a restart: {out}"
    );
    // Disabled (the tenant alone: it has no security officers), the key serves no
    // more, restart or not.
    let (ok, out) = cli(&[
        "partition",
        "disable-key",
        "--node",
        &node.url,
        "--tenant",
        &t,
        "--key",
        "payments/card-key",
    ]);
    assert!(
        ok && out.contains("disabled payments/card-key for good"),
        "{out}"
    );
    let (ok, out) = run(args_of("decrypt", &node.url, &t, &p, &anchor, &ct2));
    assert!(!ok && out.contains("disabled for good"), "{out}");
    // Deleting the partition destroys its keys.
    let (ok, out) = cli(&[
        "partition",
        "delete",
        "--node",
        &node.url,
        "--tenant",
        &t,
        "--name",
        "payments",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(args_of("decrypt", &node.url, &t, &p, &anchor, &ct2));
    assert!(!ok && out.contains("no key payments/card-key"), "{out}");
}

/// A `veritee GROUP serve --dir DIR` on a loopback port, killed when dropped, and its URL.
fn serve(group: &str, dir: &Path) -> (Server, String) {
    let _ = std::fs::remove_file(dir.join("serve.addr"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args([group, "serve", "--dir", &s(dir), "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let server = Server(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(url) = std::fs::read_to_string(dir.join("serve.addr")) {
            return (server, url);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "veritee {group} serve did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A server process, killed when dropped (a failed assertion included).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The canary key as it could leak: raw, hex, base64.
fn canaries() -> [Vec<u8>; 3] {
    [
        CANARY.to_vec(),
        hex::encode(CANARY).into_bytes(),
        B64.encode(CANARY).into_bytes(),
    ]
}

/// The canary is nowhere in the host's memory, its log, or `stored` (the store's
/// files); the memory scan must find `tenant_id`, or it scanned nothing.
fn assert_canary_off_the_host(node: &Node, tenant_id: &str, stored: &[u8]) {
    let memory = process_memory(node.child.id());
    assert!(
        contains(&memory, tenant_id.as_bytes()),
        "memory scan found nothing"
    );
    let log = std::fs::read(&node.log).expect("log");
    for c in &canaries() {
        assert!(
            !contains(&memory, c),
            "the imported key in the host's memory"
        );
        assert!(!contains(&log, c), "the imported key in the logs");
        assert!(!contains(stored, c), "the imported key in the store");
    }
}

fn args_of(op: &str, url: &str, t: &str, p: &str, anchor: &str, input: &Path) -> Vec<String> {
    [
        "crypto",
        op,
        "--node",
        url,
        "--tenant",
        t,
        "--policy",
        p,
        "--trust-anchor",
        anchor,
        "--key",
        "payments/card-key",
        "--in",
        &s(input),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The enclave asks a real `veritee revocation serve` endpoint through its host: a key
/// whose token is active is used; one whose token was revoked before its first use is
/// refused, for good.
#[test]
fn keys_are_checked_with_their_owners_revocation_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let tenant = s(&tenant_file(&node, dir.path()));
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let endpoint_dir = dir.path().join("revocation");
    let (_server, url) = serve("revocation", &endpoint_dir);
    let (pin, anchor) = (provider_pin(&node), s(&node.anchor_path()));
    create_partition_cli(&node.url, &tenant, "p");
    let key_file = dir.path().join("k.key");
    std::fs::write(&key_file, [3u8; 32]).expect("key");
    let mut ids = Vec::new();
    for name in ["kept", "withdrawn"] {
        let token_file = dir.path().join(format!("{name}.revocation.json"));
        let (ok, out) = cli(&[
            "revocation",
            "add",
            "--dir",
            &s(&endpoint_dir),
            "--endpoint",
            &url,
            "--out",
            &s(&token_file),
        ]);
        assert!(ok, "{out}");
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&token_file).expect("read")).expect("json");
        ids.push(file["token_id"].as_str().expect("id").to_string());
        let (ok, out) = cli(&[
            "import",
            "send",
            "--node",
            &node.url,
            "--tenant",
            &tenant,
            "--policy",
            &s(&policy),
            "--trust-anchor",
            &anchor,
            "--provider",
            &pin,
            "--partition",
            "p",
            "--key-id",
            name,
            "--type",
            "aes-256-gcm",
            "--operations",
            "encrypt",
            "--key-file",
            &s(&key_file),
            "--revocation",
            &s(&token_file),
            "--revocation-every",
            "5m",
        ]);
        assert!(ok, "{out}");
    }
    let (ok, out) = cli(&[
        "revocation",
        "revoke",
        "--dir",
        &s(&endpoint_dir),
        "--token-id",
        &ids[1],
    ]);
    assert!(ok, "{out}");
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"x").expect("plain");
    let encrypt = |key: &str| {
        cli(&[
            "crypto",
            "encrypt",
            "--node",
            &node.url,
            "--tenant",
            &tenant,
            "--policy",
            &s(&policy),
            "--trust-anchor",
            &anchor,
            "--key",
            key,
            "--in",
            &s(&plain),
        ])
    };
    let (ok, out) = encrypt("p/kept");
    assert!(ok, "{out}");
    let (ok, out) = encrypt("p/withdrawn");
    assert!(!ok && out.contains("was revoked by its owner"), "{out}");
    // The endpoint is gone: the kept key, checked a moment ago, is still usable.
    let (ok, out) = encrypt("p/kept");
    assert!(ok, "{out}");
}

/// Officers through the CLI: once a tenant has partition officers, a partition is
/// created only with a token the enclave issued and K officers approved, offline.
#[test]
fn partition_officers_approve_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let tenant = s(&tenant_file(&node, dir.path()));
    let who = ["--node", node.url.as_str(), "--tenant", tenant.as_str()];
    let with = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&who);
        cli(&v)
    };
    let mut officer_keys = Vec::new();
    for i in 0..2 {
        let key = veritee_crypto::sign::Ed25519SigningKey::generate().expect("key");
        let private = dir.path().join(format!("officer{i}.pem"));
        let public = dir.path().join(format!("officer{i}.pub"));
        std::fs::write(
            &private,
            veritee_x509::pem::encode("PRIVATE KEY", key.to_pkcs8().expect("pkcs8").expose()),
        )
        .expect("write");
        std::fs::write(
            &public,
            veritee_kbs::token::admin_public_key_to_pem(&key.public_key()).expect("pem"),
        )
        .expect("write");
        let (ok, out) = with(&[
            "officer",
            "register",
            "--role",
            "partition",
            "--officer-key",
            &s(&public),
            "--quorum",
            "2",
        ]);
        assert!(ok, "{out}");
        officer_keys.push(private);
    }
    let (ok, out) = with(&["partition", "create", "--name", "vault"]);
    assert!(
        !ok && out.contains("needs the approval of 2 of the 2 partition officers"),
        "{out}"
    );
    let token = dir.path().join("token.json");
    let (ok, out) = with(&[
        "officer",
        "request",
        "--action",
        "partition.create",
        "--target",
        "vault",
        "--out",
        &s(&token),
    ]);
    assert!(ok, "{out}");
    let mut approvals = Vec::new();
    for (i, key) in officer_keys.iter().enumerate() {
        let a = dir.path().join(format!("approval{i}.json"));
        let (ok, out) = cli(&[
            "officer",
            "approve",
            "--token",
            &s(&token),
            "--key",
            &s(key),
            "--out",
            &s(&a),
        ]);
        assert!(
            ok && out.contains("approved partition.create on \"vault\""),
            "{out}"
        );
        approvals.push(s(&a));
    }
    let (ok, out) = with(&[
        "partition",
        "create",
        "--name",
        "vault",
        "--token",
        &s(&token),
        "--approval",
        &approvals[0],
    ]);
    assert!(!ok && out.contains("only 1 approved"), "{out}");
    let (ok, out) = with(&[
        "partition",
        "create",
        "--name",
        "vault",
        "--token",
        &s(&token),
        "--approval",
        &approvals[0],
        "--approval",
        &approvals[1],
    ]);
    assert!(ok, "{out}");
    let (ok, out) = with(&["officer", "list"]);
    assert!(ok && out.contains("partition (quorum 2)"), "{out}");
}

/// The vendor's validator, asked before anything is encrypted: a machine not issued to
/// the pinned provider, or revoked since, gets nothing.
#[test]
fn the_vendors_validator_vouches_for_the_tees_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let vendor_dir = node.state.join("vendor");
    let (_server, url) = serve("vendor", &vendor_dir);
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let (pin, anchor, root) = (
        provider_pin(&node),
        s(&node.anchor_path()),
        s(&vendor_dir.join("root.pem")),
    );
    let mut n = 0;
    let mut keys = || {
        n += 1;
        cli(&[
            "import",
            "keys",
            "--node",
            &node.url,
            "--provider",
            &pin,
            "--policy",
            &s(&policy),
            "--trust-anchor",
            &anchor,
            "--vendor",
            &url,
            "--vendor-root",
            &root,
            "--out",
            &s(&dir.path().join(format!("keys{n}.json"))),
        ])
    };
    let (ok, out) = keys();
    assert!(!ok && out.contains("was not issued to provider"), "{out}");
    let platform = s(&node.state.join("platform"));
    let (ok, out) = cli(&[
        "vendor",
        "assign",
        "--dir",
        &s(&vendor_dir),
        "--platform",
        &platform,
        "--provider",
        &pin,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = keys();
    assert!(ok && out.contains("validated vendor: machine"), "{out}");
    let (ok, out) = cli(&[
        "vendor",
        "revoke",
        "--dir",
        &s(&vendor_dir),
        "--platform",
        &platform,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = keys();
    assert!(!ok && out.contains("is revoked"), "{out}");
}

/// A node whose enclave opens the provider's layer too: the provider states the
/// enclave's provider-layer key, the customer's CLI is unchanged, and the host, whose
/// own import key is not the one stated, could open neither layer.
#[test]
fn the_enclave_peels_both_layers_when_the_provider_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_with(
        &dir.path().join("node"),
        &s(&dir.path().join("store")),
        &["--provider-layer", "enclave"],
    );
    let tenant_path = tenant_file(&node, dir.path());
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let (t, p, anchor, pin) = (
        s(&tenant_path),
        s(&policy),
        s(&node.anchor_path()),
        provider_pin(&node),
    );
    create_partition_cli(&node.url, &t, "payments");
    // The key the provider states is not the host's own import key.
    let keys_file = dir.path().join("keys.json");
    let (ok, out) = cli(&[
        "import",
        "keys",
        "--node",
        &node.url,
        "--provider",
        &pin,
        "--policy",
        &p,
        "--trust-anchor",
        &anchor,
        "--out",
        &s(&keys_file),
    ]);
    assert!(ok, "{out}");
    let host_private = std::fs::read(node.state.join("provider/host-import.key")).expect("key");
    let mut secret = veritee_crypto::Confidential::new([0u8; 32]);
    secret.expose_mut().copy_from_slice(&host_private);
    let host_public = veritee_crypto::hpke::HpkeKeyPair::from_private_bytes(&secret)
        .expect("key")
        .public_key();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&keys_file).expect("keys")).expect("json");
    let statement: ProviderStatement = serde_json::from_slice(
        &B64.decode(
            file["keys"]["provider_statement"]
                .as_str()
                .expect("statement"),
        )
        .expect("base64"),
    )
    .expect("statement");
    assert_eq!(statement.host_key.len(), 64, "{statement:?}");
    assert_ne!(
        statement.host_key,
        hex::encode(host_public.as_bytes()),
        "the host's own key was stated"
    );

    let key_file = dir.path().join("card.key");
    std::fs::write(&key_file, CANARY).expect("key file");
    let (ok, out) = cli(&[
        "import",
        "send",
        "--node",
        &node.url,
        "--tenant",
        &t,
        "--policy",
        &p,
        "--trust-anchor",
        &anchor,
        "--provider",
        &pin,
        "--partition",
        "payments",
        "--key-id",
        "card-key",
        "--type",
        "aes-256-gcm",
        "--operations",
        "encrypt,decrypt",
        "--key-file",
        &s(&key_file),
    ]);
    assert!(ok && out.contains("imported payments/card-key"), "{out}");
    let plain = dir.path().join("card.txt");
    std::fs::write(&plain, b"4111 1111 1111 1111").expect("plain");
    let ct = dir.path().join("card.ct");
    let mut args = args_of("encrypt", &node.url, &t, &p, &anchor, &plain);
    args.extend(["--out".to_string(), s(&ct)]);
    let (ok, out) = cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{out}");
    let (ok, out) = cli(&args_of("decrypt", &node.url, &t, &p, &anchor, &ct)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(ok && out.contains("4111 1111 1111 1111"), "{out}");
    // The host passed both layers on unopened: the key is nowhere on its side.
    let tenant_id = load_tenant(&tenant_path).tenant_id().expect("id");
    assert_canary_off_the_host(&node, &tenant_id, &all_files(&node.state));
}

/// Runs openssl; `None` (the test then says why and stops) where it is not installed.
fn openssl(args: &[&str]) -> Option<Vec<u8>> {
    let o = std::process::Command::new("openssl")
        .args(args)
        .output()
        .ok()?;
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(o.stdout)
}

/// The formats users already have: a key wrapped by the customer's own tooling
/// (openssl here, as an HSM export would be) in CKM_RSA_AES_KEY_WRAP to the enclave's
/// attested RSA key, imported without its plaintext ever reaching veritee's CLI; an
/// RSA private key sent in the HPKE format and used to sign and decrypt. A wrapped
/// key changed on the way does not open; revocation data need veritee's own format.
#[test]
fn keys_wrapped_by_the_customers_own_tooling_are_imported() {
    if openssl(&["version"]).is_none() {
        eprintln!("standard-format test skipped: no openssl on this machine");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name);
    let node = start(&d("node"), &s(&d("store")));
    let tenant_path = tenant_file(&node, dir.path());
    std::fs::write(d("dev.toml"), DEV_POLICY).expect("policy");
    let (url, t, pin, anchor) = (
        node.url.clone(),
        s(&tenant_path),
        provider_pin(&node),
        s(&node.anchor_path()),
    );
    let with = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(
            [
                "--node",
                &url,
                "--policy",
                &s(&d("dev.toml")),
                "--trust-anchor",
                &anchor,
            ]
            .map(String::from),
        );
        let (ok, out) = cli(&v.iter().map(String::as_str).collect::<Vec<_>>());
        (ok, out)
    };
    create_partition_cli(&url, &t, "hsm");
    let (ok, out) = with(&[
        "import",
        "keys",
        "--provider",
        &pin,
        "--out",
        &s(&d("keys.json")),
        "--tee-rsa-key-out",
        &s(&d("tee-rsa.pem")),
    ]);
    assert!(ok && out.contains("validated tee-rsa-key"), "{out}");
    // A man in the middle's RSA key, stated by a key of its own: refused before
    // anything is wrapped to it.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d("keys.json")).expect("keys")).expect("json");
    let mitm = veritee_crypto::rsa::RsaPrivateKey::generate(3072).expect("rsa");
    let statement = veritee_import::tee_rsa::TeeRsaKeyStatement {
        node_id: forged["keys"]["tee"]["node_id"]
            .as_str()
            .expect("node id")
            .into(),
        public_key: hex::encode(mitm.public_key_spki().expect("spki")),
    };
    let signer =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
            .expect("key");
    let doc = veritee_audit::sign_document(
        &signer,
        veritee_import::tee_rsa::TEE_RSA_KEY_LABEL,
        &serde_json::to_vec(&statement).expect("json"),
    )
    .expect("sign");
    forged["keys"]["tee_rsa_key"] = B64.encode(doc).into();
    std::fs::write(d("forged.json"), serde_json::to_vec(&forged).expect("json")).expect("write");

    // The customer's tooling wraps the key: RSA-OAEP-SHA256 of a fresh AES key, then
    // AES-KWP of the key under it.
    std::fs::write(d("key.bin"), CANARY).expect("key");
    let ephemeral: [u8; 32] = veritee_crypto::rand::array().expect("random");
    std::fs::write(d("ephemeral.bin"), ephemeral).expect("ephemeral");
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &s(&d("tee-rsa.pem")),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-in",
        &s(&d("ephemeral.bin")),
        "-out",
        &s(&d("rsa.bin")),
    ]);
    openssl(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &hex::encode(ephemeral),
        "-iv",
        "A65959A6",
        "-in",
        &s(&d("key.bin")),
        "-out",
        &s(&d("kwp.bin")),
    ]);
    let mut wrapped = std::fs::read(d("rsa.bin")).expect("rsa part");
    wrapped.extend(std::fs::read(d("kwp.bin")).expect("kwp part"));
    std::fs::write(d("key.wrapped"), &wrapped).expect("wrapped");
    let mut flipped = wrapped.clone();
    *flipped.last_mut().expect("bytes") ^= 1;
    std::fs::write(d("flipped.wrapped"), &flipped).expect("flipped");

    let send = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "import",
            "send",
            "--tenant",
            &t,
            "--provider",
            &pin,
            "--keys",
        ];
        let keys = s(&d("keys.json"));
        args.push(&keys);
        args.extend(["--partition", "hsm", "--key-id", id]);
        args.extend(extra);
        with(&args)
    };
    let aes = ["--type", "aes-256-gcm", "--operations", "encrypt,decrypt"];
    let rsa_wrap = ["--format", "rsa-aes-key-wrap", "--wrapped"];
    let (ok, out) = with(&[
        "import",
        "send",
        "--tenant",
        &t,
        "--provider",
        &pin,
        "--keys",
        &s(&d("forged.json")),
        "--partition",
        "hsm",
        "--key-id",
        "to-mitm",
        "--type",
        "aes-256-gcm",
        "--operations",
        "encrypt",
        "--format",
        "rsa-aes-key-wrap",
        "--key-file",
        &s(&d("key.bin")),
    ]);
    assert!(
        !ok && out.contains("not stated by the attested audit key"),
        "{out}"
    );
    let (ok, out) = send(
        "damaged",
        &[&aes[..], &rsa_wrap, &[&s(&d("flipped.wrapped"))]].concat(),
    );
    assert!(!ok && out.contains("AES-KWP"), "{out}");
    let (ok, out) = send(
        "from-hsm",
        &[&aes[..], &rsa_wrap, &[&s(&d("key.wrapped"))]].concat(),
    );
    assert!(ok && out.contains("imported hsm/from-hsm"), "{out}");
    // Revocation data cannot ride in a standard format.
    let (ok, out) = send(
        "no-revocation",
        &[
            &aes[..],
            &[
                "--format",
                "hpke",
                "--key-file",
                &s(&d("key.bin")),
                "--revocation",
                "x",
            ],
        ]
        .concat(),
    );
    assert!(
        !ok && out.contains("--revocation needs --format veritee"),
        "{out}"
    );

    // The enclave unwrapped exactly the customer's key: what it encrypts under it opens
    // with the key outside.
    std::fs::write(d("msg"), b"ledger 12").expect("msg");
    let (ok, out) = with(&[
        "crypto",
        "encrypt",
        "--tenant",
        &t,
        "--key",
        "hsm/from-hsm",
        "--aad",
        "a",
        "--in",
        &s(&d("msg")),
        "--out",
        &s(&d("msg.ct")),
    ]);
    assert!(ok, "{out}");
    let ct = std::fs::read(d("msg.ct")).expect("ct");
    let key = veritee_crypto::aead::AeadKey::from_slice(CANARY).expect("key");
    let opened = veritee_import::ciphertext::open(&key, &KeyRef::new("hsm", "from-hsm"), b"a", &ct)
        .expect("opens outside with the customer's key");
    assert_eq!(opened.expose(), b"ledger 12");

    // An RSA key in the HPKE format: signs (RSASSA-PSS) and decrypts (RSA-OAEP).
    let rsa = veritee_crypto::rsa::RsaPrivateKey::generate(2048).expect("rsa");
    std::fs::write(
        d("rsa.pem"),
        veritee_x509::pem::encode("PRIVATE KEY", rsa.to_pkcs8().expect("pkcs8").expose()),
    )
    .expect("rsa key");
    let (ok, out) = send(
        "rsa-signer",
        &[
            "--type",
            "rsa",
            "--operations",
            "sign,verify,decrypt",
            "--format",
            "hpke",
            "--key-file",
            &s(&d("rsa.pem")),
        ],
    );
    assert!(
        ok && out.contains("(rsa, may sign, verify, decrypt)"),
        "{out}"
    );
    let (ok, out) = with(&[
        "crypto",
        "sign",
        "--tenant",
        &t,
        "--key",
        "hsm/rsa-signer",
        "--in",
        &s(&d("msg")),
        "--out",
        &s(&d("msg.sig")),
    ]);
    assert!(ok, "{out}");
    let spki = rsa.public_key_spki().expect("spki");
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::RsaPssSha256,
        &spki,
        b"ledger 12",
        &std::fs::read(d("msg.sig")).expect("sig"),
    )
    .expect("the enclave's RSA-PSS signature verifies outside");
    let sealed = veritee_crypto::rsa::encrypt_oaep_sha256(&spki, b"pin 1234").expect("oaep");
    std::fs::write(d("pin.ct"), sealed).expect("ct");
    let (ok, out) = with(&[
        "crypto",
        "decrypt",
        "--tenant",
        &t,
        "--key",
        "hsm/rsa-signer",
        "--in",
        &s(&d("pin.ct")),
        "--out",
        &s(&d("pin.txt")),
    ]);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(d("pin.txt")).expect("pin"), b"pin 1234");
    let (ok, out) = with(&[
        "crypto",
        "encrypt",
        "--tenant",
        &t,
        "--key",
        "hsm/rsa-signer",
        "--in",
        &s(&d("msg")),
        "--out",
        &s(&d("never.ct")),
    ]);
    assert!(!ok && out.contains("may not be used to encrypt"), "{out}");
    let tenant_id = load_tenant(&tenant_path).tenant_id().expect("id");
    let mut stored = all_files(&d("store"));
    stored.extend(all_files(&node.state));
    assert_canary_off_the_host(&node, &tenant_id, &stored);
}

/// Imported keys shared between nodes on one PostgreSQL store: a key whose metadata
/// allow replicas is fetched enclave to enclave at its first use on another node (not
/// by an enclave of another signer, nor a key imported for its node alone); both
/// nodes then use the same key; disabled on one node, or its partition deleted there,
/// it is refused on the other at its next request, with no restart.
#[test]
fn imported_keys_are_shared_between_nodes_and_disabled_on_all() {
    let Some(url) = store_location("postgres", Path::new("/nonexistent")) else {
        return;
    };
    let fleet = Fleet::new(&["m1", "m2", "m3"]);
    let a = fleet.node("a", "m1", "signer", &url, &[]);
    let b = fleet.node("b", "m2", "signer", &url, &[&a.url]);
    let c = fleet.node("c", "m3", "other-signer", &url, &[&a.url]);
    let tenant = load_tenant(&tenant_file(&a, fleet.dir.path()));
    let client = a.client();
    for partition in ["shared", "doomed"] {
        client
            .create_partition(&tenant, partition, None)
            .expect("partition");
    }
    let appraisal = Appraisal::new(&a);
    let mut pin = [0u8; 32];
    hex::decode_to_slice(provider_pin(&a), &mut pin).expect("pin");
    let keys = client
        .fetch_import_keys()
        .expect("keys")
        .validate(
            &appraisal.appraiser(),
            &pin,
            time::OffsetDateTime::now_utc(),
        )
        .expect("validated");
    for (partition, key_id, release) in [
        ("shared", "fleet-key", Some(KeyRelease::SameSigner)),
        ("shared", "node-key", None),
        ("doomed", "fleet-key", Some(KeyRelease::SameMeasurement)),
    ] {
        let spec = ImportSpec {
            partition: partition.into(),
            key_id: key_id.into(),
            key_type: KeyType::Aes256Gcm,
            operations: vec![Operation::Encrypt, Operation::Decrypt],
            rotate_after_secs: None,
            release,
            task_signers: vec![],
        };
        let prepared = prepare_import(&keys, &tenant, &spec, &SecretBytes::copy_from(CANARY), None)
            .expect("prepare");
        client
            .send_import(&tenant, &keys, &prepared)
            .expect("import");
    }
    let fleet_key = KeyRef::new("shared", "fleet-key");
    let encrypt = |node: &Node, key: &KeyRef| {
        let (client, appraisal) = (node.client(), Appraisal::new(node));
        let mut session = client
            .open_session(&tenant, &appraisal.appraiser())
            .expect("session");
        let out = session
            .crypto(vec![CryptoOp::Encrypt {
                key: key.clone(),
                plaintext: SecretBytes::copy_from(b"ledger 12"),
                aad: vec![],
            }])
            .expect("crypto");
        match out.into_iter().next() {
            Some(CryptoOutcome::Ciphertext(ct)) => Ok(ct),
            Some(CryptoOutcome::Error { message, .. }) => Err(message),
            other => panic!("{other:?}"),
        }
    };

    // B fetches the replica from A at first use; what B encrypts, A decrypts.
    let ct = encrypt(&b, &fleet_key).expect("B uses the key A imported");
    let mut at_a = client
        .open_session(&tenant, &appraisal.appraiser())
        .expect("session");
    let back = at_a
        .crypto(vec![CryptoOp::Decrypt {
            key: fleet_key.clone(),
            ciphertext: ct,
            aad: vec![],
        }])
        .expect("crypto");
    assert!(matches!(&back[..], [CryptoOutcome::Plaintext(p)] if p.expose() == b"ledger 12"));
    // Not a key imported for A alone; not to an enclave of another signer.
    let err = encrypt(&b, &KeyRef::new("shared", "node-key")).expect_err("node-only key");
    assert!(err.contains("allow no replicas"), "{err}");
    // An enclave of another signer is no peer at all: it learns neither the tenant
    // nor the key.
    let err = c
        .client()
        .open_session(&tenant, &Appraisal::new(&c).appraiser())
        .map(drop)
        .expect_err("another signer");
    assert!(err.to_string().contains("signed by someone else"), "{err}");

    // The host's own "disabled" note (it cannot make the enclaves' tag): ignored.
    let note = format!(
        "{}/shared/fleet-key",
        tenant.tenant_id().expect("tenant id")
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = veritee_store::open(&url).await.expect("postgres");
        let mut forged = 1_800_000_000i64.to_be_bytes().to_vec();
        forged.extend_from_slice(&[0u8; 32]);
        store.put("kms-status", &note, &forged).await.expect("put");
    });
    encrypt(&b, &fleet_key).expect("a forged note changes nothing");
    rt.block_on(async {
        let store = veritee_store::open(&url).await.expect("postgres");
        store
            .put("kms-status", &note, &[1u8; 39])
            .await
            .expect("put");
    });
    encrypt(&b, &fleet_key).expect("a note of the wrong size changes nothing");

    // Disabled at A: B refuses it at its next request, and keeps refusing it.
    client
        .disable_key(&tenant, &fleet_key, None)
        .expect("disable");
    for _ in 0..2 {
        let err = encrypt(&b, &fleet_key).expect_err("disabled on A");
        assert!(err.contains("disabled"), "{err}");
    }
    let err = encrypt(&a, &fleet_key).expect_err("disabled");
    assert!(err.contains("disabled"), "{err}");
    // B recorded it in its own sealed state: withholding the note now changes nothing.
    rt.block_on(async {
        let store = veritee_store::open(&url).await.expect("postgres");
        assert!(store.delete("kms-status", &note).await.expect("delete"));
    });
    let err = encrypt(&b, &fleet_key).expect_err("still disabled");
    assert!(err.contains("disabled"), "{err}");

    // A partition deleted at A takes its shared keys with it on B too.
    let doomed = KeyRef::new("doomed", "fleet-key");
    encrypt(&b, &doomed).expect("B holds a replica");
    client
        .delete_partition(&tenant, "doomed", None)
        .expect("delete");
    let err = encrypt(&b, &doomed).expect_err("deleted at A");
    assert!(err.contains("disabled"), "{err}");

    // The key went from A to B and back as ciphertext only: nowhere in either host's
    // memory or logs, nor in the store (the tenant's records and the notes).
    let tenant_id = tenant.tenant_id().expect("tenant id");
    let stored = dump_postgres(&url, &tenant_id);
    assert!(!stored.is_empty());
    for node in [&a, &b] {
        assert_canary_off_the_host(node, &tenant_id, &stored);
    }
    drop((a, b, c));
}
