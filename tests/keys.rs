//! Key management end to end: attested wrapping key, online and offline deployment,
//! restart recovery, sealing boundaries, replication between nodes, and the ways each
//! must refuse.

#[macro_use]
mod common;

use common::*;
use std::path::Path;
use veritee_channel::deploy::{self, ReleasePolicy, WrappedKeyHeader};
use veritee_client::{ClientError, verify_receipt};
use veritee_crypto::Confidential;

both_stores!(
    online_deploy_survives_restart_and_never_shows_the_key,
    online_deploy
);

fn online_deploy(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(store) = store_location(kind, dir.path()) else {
        return;
    };
    let state = dir.path().join("node");
    let mut node = start(&state, &store);
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let (client, exchanges) = node.client().recording();

    // The user data key is the canary: 32 random bytes, searched for as raw bytes and hex.
    let key = veritee_crypto::rand::secret_array::<32>().expect("key");
    let wk = client.fetch_wrapping_key().expect("wrapping key");
    let attested = wk.verify(&appraisal.appraiser()).expect("attested");
    let tenant_id = tenant.key.tenant_id().expect("id");
    let header = WrappedKeyHeader {
        release: ReleasePolicy::SameSigner,
        wrapping_key_id: deploy::wrapping_key_id(attested.public_key.as_bytes()),
        tenant_id: tenant_id.clone(),
        name: "orders".into(),
    };
    let wrapped = deploy::wrap_key(&attested.public_key, &header, &key).expect("wrap");
    let receipt = client
        .import_wrapped_key(&tenant.key, &wrapped)
        .expect("import");
    let digest = deploy::key_digest(&key);
    let r = verify_receipt(
        &receipt,
        &attested.audit_public_key,
        "orders",
        &tenant_id,
        &digest,
    )
    .expect("receipt");
    assert_eq!(r.key_digest, digest);
    // A tampered receipt is refused.
    let mut bad = receipt.clone();
    let n = bad.len() - 3;
    bad[n] ^= 1;
    assert!(
        verify_receipt(
            &bad,
            &attested.audit_public_key,
            "orders",
            &tenant_id,
            &digest
        )
        .is_err()
    );
    // Importing the same name again overwrites nothing.
    assert!(matches!(
        client.import_wrapped_key(&tenant.key, &wrapped),
        Err(ClientError::Node { status: 409, .. })
    ));

    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    assert_eq!(
        session.list_keys().expect("list"),
        vec!["orders".to_string()]
    );
    assert_eq!(session.ensure_key("orders").expect("ensure"), digest);

    let canaries = [
        key.expose().to_vec(),
        hex::encode(key.expose()).into_bytes(),
    ];
    for x in exchanges.lock().expect("lock").iter() {
        for c in &canaries {
            assert!(
                !contains(&x.request_body, c) && !contains(&x.response_body, c),
                "key on the wire: {}",
                x.request_line
            );
        }
    }
    let memory = process_memory(node.child.id());
    assert!(
        contains(&memory, tenant_id.as_bytes()),
        "memory scan found nothing"
    );
    let log = std::fs::read(&node.log).expect("log");
    let stored = if kind == "embedded" {
        all_files(&node.state)
    } else {
        Vec::new()
    };
    for c in &canaries {
        assert!(!contains(&memory, c), "user data key in the host's memory");
        assert!(!contains(&log, c), "user data key in the logs");
        assert!(!contains(&stored, c), "user data key in the store");
    }

    // Restart: the keys come back without the client.
    node.child.kill().expect("kill");
    node.child.wait().expect("wait");
    drop(node);
    let node = start(&state, &store);
    let client = node.client();
    let mut session = client
        .open_session(&tenant.key, &Appraisal::new(&node).appraiser())
        .expect("session after restart");
    assert_eq!(
        session.ensure_key("orders").expect("ensure after restart"),
        digest
    );
}

#[test]
fn offline_wrap_and_import_by_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let tenant = tenant_file(&node, dir.path());
    let (wk, key, wrapped) = (
        dir.path().join("wk.json"),
        dir.path().join("orders.key"),
        dir.path().join("orders.wrapped"),
    );
    assert!(
        veritee(&[
            "keys",
            "wrapping-key",
            "--node",
            &node.url,
            "--out",
            &s(&wk)
        ])
        .status
        .success()
    );
    let anchor = s(&node.state.join("vendor/root.pem"));
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    // On the "offline" side: no --node anywhere.
    let o = veritee(&[
        "keys",
        "wrap",
        "--wrapping-key",
        &s(&wk),
        "--tenant",
        &s(&tenant),
        "--policy",
        &s(&policy),
        "--trust-anchor",
        &anchor,
        "--generate",
        "--id",
        "orders",
        "--key-out",
        &s(&key),
        "--out",
        &s(&wrapped),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let o = veritee(&[
        "keys",
        "import",
        "--node",
        &node.url,
        "--tenant",
        &s(&tenant),
        "--file",
        &s(&wrapped),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("receipt signed by the attested enclave"));
    let o = veritee(&[
        "keys",
        "list",
        "--node",
        &node.url,
        "--tenant",
        &s(&tenant),
        "--policy",
        &s(&policy),
        "--trust-anchor",
        &anchor,
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "orders");
    // A key of the wrong length is refused before anything is sent.
    std::fs::write(dir.path().join("short.key"), "00112233").expect("write");
    let o = veritee(&[
        "keys",
        "deploy",
        "--node",
        &node.url,
        "--tenant",
        &s(&tenant),
        "--policy",
        &s(&policy),
        "--trust-anchor",
        &anchor,
        "--key-file",
        &s(&dir.path().join("short.key")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("256-bit key"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn swapped_wrapping_keys_are_caught_before_anything_is_encrypted() {
    let fleet = Fleet::new(&["m1", "m2"]);
    let a = fleet.node("a", "m1", "signer", &s(&fleet.p("a-store")), &[]);
    let b = fleet.node("b", "m2", "signer", &s(&fleet.p("b-store")), &[]);
    let tenant = tenant_file(&a, fleet.dir.path());
    let (wk_a, wk_b) = (fleet.p("wk-a.json"), fleet.p("wk-b.json"));
    assert!(
        veritee(&["keys", "wrapping-key", "--node", &a.url, "--out", &s(&wk_a)])
            .status
            .success()
    );
    assert!(
        veritee(&["keys", "wrapping-key", "--node", &b.url, "--out", &s(&wk_b)])
            .status
            .success()
    );
    let doc_a: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&wk_a).expect("read")).expect("json");
    let doc_b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&wk_b).expect("read")).expect("json");
    let attacker = veritee_crypto::hpke::HpkeKeyPair::generate();
    // `veritee keys wrap` of a fresh key for `wrapping_key`, saved to `key_out`, into `out`.
    let wrap = |wrapping_key: &Path, key_out: &Path, out: &Path| {
        veritee(&[
            "keys",
            "wrap",
            "--wrapping-key",
            &s(wrapping_key),
            "--tenant",
            &s(&tenant),
            "--policy",
            &s(&fleet.p("dev.toml")),
            "--trust-anchor",
            &fleet.anchor(),
            "--generate",
            "--id",
            "k",
            "--key-out",
            &s(key_out),
            "--out",
            &s(out),
        ])
    };

    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("the attacker's own key", {
            let mut d = doc_a.clone();
            d["public_key"] = hex::encode(attacker.public_key().as_bytes()).into();
            d
        }),
        ("evidence from another enclave", {
            let mut d = doc_a.clone();
            d["evidence"] = doc_b["evidence"].clone();
            d["nonce"] = doc_b["nonce"].clone();
            d
        }),
        ("no evidence", {
            let mut d = doc_a.clone();
            d["evidence"] = "".into();
            d
        }),
    ];
    for (what, doc) in cases {
        let file = fleet.p("swapped.json");
        std::fs::write(&file, serde_json::to_vec(&doc).expect("json")).expect("write");
        let out = fleet.p("swapped.wrapped");
        let key_out = fleet.p("never.key");
        let o = wrap(&file, &key_out, &out);
        assert_eq!(o.status.code(), Some(2), "{what} accepted");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("nothing was encrypted"),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !out.exists() && !key_out.exists(),
            "{what}: something was produced"
        );
    }
    // The genuine file still works, to be sure the cases above failed for their reason.
    let o = wrap(&wk_a, &fleet.p("k.key"), &fleet.p("k.wrapped"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Wrapped for node A, offered to node B: a stale wrapping key, refused, nothing stored.
    let o = veritee(&[
        "tenant",
        "register",
        "--node",
        &b.url,
        "--admin-token",
        &s(&b.state.join("admin.token")),
        "--tenant",
        &s(&tenant),
    ]);
    assert!(o.status.success());
    let o = veritee(&[
        "keys",
        "import",
        "--node",
        &b.url,
        "--tenant",
        &s(&tenant),
        "--file",
        &s(&fleet.p("k.wrapped")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fetch the current wrapping key"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = veritee(&[
        "keys",
        "list",
        "--node",
        &b.url,
        "--tenant",
        &s(&tenant),
        "--policy",
        &s(&fleet.p("dev.toml")),
        "--trust-anchor",
        &fleet.anchor(),
    ]);
    assert!(o.status.success() && o.stdout.is_empty());
}

/// Deploys a fresh key named `name` to `node` through the library; returns its digest.
fn deploy_key(
    node: &Node,
    tenant: &veritee_channel::client::TenantKey,
    name: &str,
    release: ReleasePolicy,
) -> String {
    let appraisal = Appraisal::new(node);
    let client = node.client();
    let attested = client
        .fetch_wrapping_key()
        .expect("wk")
        .verify(&appraisal.appraiser())
        .expect("attested");
    let key: Confidential<[u8; 32]> = veritee_crypto::rand::secret_array().expect("key");
    let header = WrappedKeyHeader {
        release,
        wrapping_key_id: deploy::wrapping_key_id(attested.public_key.as_bytes()),
        tenant_id: tenant.tenant_id().expect("id"),
        name: name.into(),
    };
    client
        .import_wrapped_key(
            tenant,
            &deploy::wrap_key(&attested.public_key, &header, &key).expect("wrap"),
        )
        .expect("import");
    deploy::key_digest(&key)
}

fn ensure(
    node: &Node,
    tenant: &veritee_channel::client::TenantKey,
    name: &str,
) -> Result<String, ClientError> {
    let appraisal = Appraisal::new(node);
    let client = node.client();
    let mut session = client.open_session(tenant, &appraisal.appraiser())?;
    session.ensure_key(name)
}

fn node_id(node: &Node) -> String {
    node.client()
        .audit_log(&node.admin_token(), 0, 1)
        .expect("audit")
        .log
        .trim_start_matches("audit/")
        .to_string()
}

#[test]
fn corrupted_or_moved_sealed_keys_do_not_open_and_nothing_else_is_lost() {
    let fleet = Fleet::new(&["m1", "m2"]);
    let store = s(&fleet.p("store"));
    let mut a = fleet.node("a", "m1", "signer", &store, &[]);
    let tenant_path = tenant_file(&a, fleet.dir.path());
    let tenant = load_tenant(&tenant_path);
    let d1 = deploy_key(&a, &tenant, "k1", ReleasePolicy::SameSigner);
    let d2 = deploy_key(&a, &tenant, "k2", ReleasePolicy::SameSigner);
    let id_a = node_id(&a);
    let _ = a.child.kill();
    let _ = a.child.wait();
    drop(a);

    // The host flips one byte of k1's sealed copy.
    let ns = format!("t/{}", tenant.tenant_id().expect("id"));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let st = veritee_store::open(&store).await.expect("store");
        let k = format!("key/k1/{id_a}");
        let mut blob = st.get(&ns, &k).await.expect("get").expect("copy");
        let n = blob.len() - 5;
        blob[n] ^= 0x10;
        st.put(&ns, &k, &blob).await.expect("put");
    });
    let a = fleet.node("a", "m1", "signer", &store, &[]);
    let err = ensure(&a, &tenant, "k1").expect_err("corrupted key opened");
    assert!(err.to_string().contains("does not unseal"), "{err}");
    assert_eq!(ensure(&a, &tenant, "k2").expect("k2 intact"), d2);
    let _ = d1;
    drop(a);

    // The same store served from another machine: its own copy is absent, and A's copy
    // moved under B's name does not open there.
    let b = fleet.node("b", "m2", "signer", &store, &[]);
    let o = veritee(&[
        "tenant",
        "register",
        "--node",
        &b.url,
        "--admin-token",
        &s(&b.state.join("admin.token")),
        "--tenant",
        &s(&tenant_path),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err =
        ensure(&b, &tenant, "k2").expect_err("another machine served a key it never received");
    assert!(
        err.to_string().contains("no peer node is configured"),
        "{err}"
    );
    let id_b = node_id(&b);
    drop(b);
    rt.block_on(async {
        let st = veritee_store::open(&store).await.expect("store");
        let blob = st
            .get(&ns, &format!("key/k2/{id_a}"))
            .await
            .expect("get")
            .expect("copy");
        st.put(&ns, &format!("key/k2/{id_b}"), &blob)
            .await
            .expect("put");
    });
    let b = fleet.node("b", "m2", "signer", &store, &[]);
    let err = ensure(&b, &tenant, "k2").expect_err("moved blob opened");
    assert!(err.to_string().contains("does not unseal"), "{err}");
}

#[test]
fn replication_between_nodes_follows_the_release_policy() {
    let fleet = Fleet::new(&["m1", "m2", "m3", "m4"]);
    let mut a = fleet.node("a", "m1", "signer", &s(&fleet.p("a-store")), &[]);
    let b = fleet.node("b", "m2", "signer", &s(&fleet.p("b-store")), &[&a.url]);
    let c = fleet.node(
        "c",
        "m3",
        "other-signer",
        &s(&fleet.p("c-store")),
        &[&a.url],
    );
    // D: same signer, but another measured configuration, so other "code".
    let root = std::fs::read(fleet.p("vendor/root.pem")).expect("root");
    std::fs::write(fleet.p("anchors-twice.pem"), [root.clone(), root].concat()).expect("anchors");
    let d = fleet.node_with_anchors(
        "d",
        "m4",
        "signer",
        &s(&fleet.p("d-store")),
        &[&a.url],
        &fleet.p("anchors-twice.pem"),
    );
    let tenant_path = tenant_file(&a, fleet.dir.path());
    for n in [&b, &c, &d] {
        let o = veritee(&[
            "tenant",
            "register",
            "--node",
            &n.url,
            "--admin-token",
            &s(&n.state.join("admin.token")),
            "--tenant",
            &s(&tenant_path),
        ]);
        assert!(o.status.success());
    }
    let tenant = load_tenant(&tenant_path);
    let digest = deploy_key(&a, &tenant, "orders", ReleasePolicy::SameSigner);
    let pinned = deploy_key(&a, &tenant, "pinned", ReleasePolicy::Never);
    let exact = deploy_key(&a, &tenant, "exact", ReleasePolicy::SameMeasurement);

    // Same signer, another machine: replicated.
    assert_eq!(ensure(&b, &tenant, "orders").expect("replicated"), digest);
    // Another signer: refused, and C holds nothing.
    // Another signer: neither side accepts the other, and C holds nothing.
    let err = ensure(&c, &tenant, "orders").expect_err("released to another signer");
    assert!(err.to_string().contains("signed by someone else"), "{err}");
    let appraisal = Appraisal::new(&c);
    let client = c.client();
    assert!(
        client
            .open_session(&tenant, &appraisal.appraiser())
            .expect("session")
            .list_keys()
            .expect("list")
            .is_empty()
    );
    // A key that may never leave its node.
    let err = ensure(&b, &tenant, "pinned").expect_err("released a never-release key");
    assert!(err.to_string().contains("forbids replication"), "{err}");
    let _ = pinned;
    // A same-measurement key goes to B (same code) but not to D (same signer, other code).
    assert_eq!(ensure(&b, &tenant, "exact").expect("same code"), exact);
    let err = ensure(&d, &tenant, "exact").expect_err("released to other code");
    assert!(err.to_string().contains("runs other code"), "{err}");
    assert_eq!(ensure(&d, &tenant, "orders").expect("same signer"), digest);

    // With A gone, B keeps serving what it replicated.
    let _ = a.child.kill();
    let _ = a.child.wait();
    assert_eq!(
        ensure(&b, &tenant, "orders").expect("served without A"),
        digest
    );
}

#[test]
fn nodes_sharing_postgres_serve_the_same_keys() {
    let Some(url) = postgres_url() else {
        eprintln!(
            "PostgreSQL shared-store test skipped: VERITEE_TEST_POSTGRES is not set (.ci/run sets it)"
        );
        return;
    };
    let fleet = Fleet::new(&["m1", "m2"]);
    let mut a = fleet.node("a", "m1", "signer", &url, &[]);
    let b = fleet.node("b", "m2", "signer", &url, &[&a.url]);
    let tenant = load_tenant(&tenant_file(&a, fleet.dir.path()));
    let digest = deploy_key(&a, &tenant, "shared", ReleasePolicy::SameSigner);
    // The tenant registered at A is known to B through the shared store.
    assert_eq!(
        ensure(&b, &tenant, "shared").expect("B serves the key"),
        digest
    );
    let _ = a.child.kill();
    let _ = a.child.wait();
    assert_eq!(
        ensure(&b, &tenant, "shared").expect("B serves with A down"),
        digest
    );
}
