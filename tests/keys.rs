//! Key management end to end: attested wrapping key, online and offline deployment,
//! restart recovery, sealing boundaries, replication between nodes, and the ways each
//! must refuse.

#[macro_use]
mod common;

use base64::Engine;
use common::*;
use std::path::Path;
use veritee_attest::Claims;
use veritee_channel::client::TenantKey;
use veritee_channel::deploy::{self, KeyCheck, ReleasePolicy};
use veritee_client::keys::verify_receipt;
use veritee_client::{
    AttestedWrappingKey, ClientError, WrappedKeyFile, import_wrapped_key, wrap_for_node,
};
use veritee_crypto::Confidential;
use veritee_policy::AppraisalPolicy;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

both_stores!(
    online_deploy_survives_restart_and_never_shows_the_key,
    online_deploy
);

/// Reads a `salt:value` check value back.
fn parse_check(hex_check: &str) -> KeyCheck {
    let (salt, value) = hex_check.split_once(':').expect("salt:value");
    let mut check = KeyCheck {
        salt: [0u8; deploy::CHECK_SALT_LEN],
        value: [0u8; 32],
    };
    hex::decode_to_slice(salt, &mut check.salt).expect("salt hex");
    hex::decode_to_slice(value, &mut check.value).expect("value hex");
    check
}

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
    let file = wrap_for_node(
        &attested,
        &tenant.key,
        "orders",
        ReleasePolicy::SameSigner,
        serde_json::to_vec(&appraisal.policy).expect("policy"),
        &key,
    )
    .expect("wrap");
    assert_eq!(file.node_id, attested.node_id);
    let imported = import_wrapped_key(&client, &tenant.key, &file).expect("import");
    // The receipt names exactly what was deployed, and the checkpoint covers it.
    let check = file.key_check.clone();
    let r = &imported.receipt;
    assert_eq!(r.key, "orders");
    assert_eq!(r.tenant, tenant_id);
    assert_eq!(r.node, attested.node_id);
    assert_eq!(r.key_check, check);
    assert_eq!(
        r.wrapping_key_id,
        deploy::wrapping_key_id(attested.public_key.as_bytes())
    );
    assert!(imported.checkpoint.size >= r.audit_size);
    // The check value names this key and no other, and is not the key in disguise.
    assert!(parse_check(&check).matches(&key));
    let other_key = veritee_crypto::rand::secret_array::<32>().expect("key");
    assert!(!parse_check(&check).matches(&other_key));
    // The receipt as the node sent it checks by hand too; a tampered one is refused, and
    // so is one checked against another deployment of the same key (another salt) or
    // another audit key.
    let raw_receipt = {
        let log = exchanges.lock().expect("lock");
        let x = log
            .iter()
            .rev()
            .find(|x| x.request_line == "POST /v1/keys")
            .expect("the import exchange");
        let resp: veritee_proto::api::ImportKeyResponse =
            serde_json::from_slice(&x.response_body).expect("import response");
        B64.decode(resp.receipt).expect("receipt base64")
    };
    let again = verify_receipt(&raw_receipt, &attested.audit_public_key, &file).expect("receipt");
    assert_eq!(&again, r);
    let mut bad = raw_receipt.clone();
    let n = bad.len() - 3;
    bad[n] ^= 1;
    assert!(verify_receipt(&bad, &attested.audit_public_key, &file).is_err());
    let mut resalted = file.clone();
    resalted.key_check = KeyCheck::new(&key).expect("check").to_hex();
    assert!(verify_receipt(&raw_receipt, &attested.audit_public_key, &resalted).is_err());
    let stranger = TenantKey::generate()
        .expect("key")
        .public_key_spki()
        .expect("spki");
    assert!(verify_receipt(&raw_receipt, &stranger, &file).is_err());
    // The same file imported again (a retry after a lost answer) gets its receipt;
    // another key under the same name overwrites nothing.
    let again = import_wrapped_key(&client, &tenant.key, &file).expect("a retried import");
    assert_eq!(again.receipt.key_check, check);
    let other_key = veritee_crypto::rand::secret_array::<32>().expect("key");
    let other = wrap_for_node(
        &attested,
        &tenant.key,
        "orders",
        ReleasePolicy::SameSigner,
        serde_json::to_vec(&appraisal.policy).expect("policy"),
        &other_key,
    )
    .expect("wrap");
    assert!(matches!(
        import_wrapped_key(&client, &tenant.key, &other),
        Err(ClientError::Node { status: 409, .. })
    ));

    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    assert_eq!(
        session.list_keys().expect("list"),
        vec!["orders".to_string()]
    );
    assert_eq!(session.ensure_key("orders").expect("ensure"), check);
    // The deployed key is usable by id with the key service's operations, for what a
    // data key does: encryption, decryption, translation.
    let deployed = veritee_import::keys::KeyRef::new("deployed", "orders");
    let outcomes = session
        .crypto(vec![
            veritee_channel::crypto::CryptoOp::Encrypt {
                key: deployed.clone(),
                plaintext: veritee_crypto::SecretBytes::copy_from(b"order 7"),
                aad: vec![],
            },
            veritee_channel::crypto::CryptoOp::Sign {
                key: deployed.clone(),
                message: vec![],
            },
        ])
        .expect("crypto");
    let [
        veritee_channel::crypto::CryptoOutcome::Ciphertext(ct),
        veritee_channel::crypto::CryptoOutcome::Error { message, .. },
    ] = &outcomes[..]
    else {
        panic!("{outcomes:?}");
    };
    assert!(message.contains("may not be used to sign"), "{message}");
    // The ciphertext is AES-256-GCM under the deployed key itself, in the envelope.
    let aes = veritee_crypto::aead::AeadKey::from_slice(key.expose()).expect("aes");
    let opened = veritee_import::ciphertext::open(&aes, &deployed, &[], ct).expect("opens");
    assert_eq!(opened.expose(), b"order 7");

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
        check
    );
}

#[test]
fn offline_wrap_and_import_by_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let tenant = tenant_file(&node, dir.path());
    let (wk, key, wrapped, checkpoint) = (
        dir.path().join("wk.json"),
        dir.path().join("orders.key"),
        dir.path().join("orders.wrapped"),
        dir.path().join("import.checkpoint"),
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
    // The file names the key by its salted check value, which the key opens.
    let file: WrappedKeyFile =
        serde_json::from_slice(&std::fs::read(&wrapped).expect("read")).expect("wrapped file");
    let mut raw = Confidential::new([0u8; 32]);
    hex::decode_to_slice(
        std::fs::read_to_string(&key).expect("key").trim(),
        raw.expose_mut(),
    )
    .expect("key hex");
    assert!(parse_check(&file.key_check).matches(&raw));
    let o = veritee(&[
        "keys",
        "import",
        "--node",
        &node.url,
        "--tenant",
        &s(&tenant),
        "--file",
        &s(&wrapped),
        "--checkpoint-out",
        &s(&checkpoint),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("receipt signed by the attested enclave"),
        "{stdout}"
    );
    assert!(stdout.contains(&file.key_check), "{stdout}");
    // The import's checkpoint is one the node's log still contains.
    let o = veritee(&[
        "audit",
        "verify",
        "--node",
        &node.url,
        "--admin-token",
        &s(&node.state.join("admin.token")),
        "--policy",
        &s(&policy),
        "--trust-anchor",
        &anchor,
        "--checkpoint",
        &s(&checkpoint),
    ]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
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

/// What the tenant signs in a wrapped key file (version 2): a label, the version and
/// every other field, length-prefixed, in order. Written out here from the format so
/// that an attacker's re-signed file is exactly what a real one would be.
fn file_signed_bytes(f: &WrappedKeyFile) -> Vec<u8> {
    let mut out = b"veritee wrapped key file v2".to_vec();
    out.extend_from_slice(&f.version.to_be_bytes());
    for field in [
        &f.node,
        &f.node_id,
        &f.key,
        &f.tenant,
        &f.key_check,
        &f.release,
        &f.audit_public_key,
        &f.checkpoint_public_key,
        &f.wrapped,
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// `s` with its first hex digit changed.
fn flip_hex(s: &str) -> String {
    let first = if s.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &s[1..])
}

/// Base64 `s` with one byte of what it encodes flipped.
fn flip_b64(s: &str) -> String {
    let mut bytes = B64.decode(s).expect("base64");
    let n = bytes.len() / 2;
    bytes[n] ^= 0x01;
    B64.encode(bytes)
}

#[test]
fn wrapped_key_files_are_authenticated_whole_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let tenant_path = tenant_file(&node, dir.path());
    let tenant = load_tenant(&tenant_path);
    let (wk, wrapped) = (
        dir.path().join("wk.json"),
        dir.path().join("orders.wrapped"),
    );
    let anchor = s(&node.state.join("vendor/root.pem"));
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
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
    let o = veritee(&[
        "keys",
        "wrap",
        "--wrapping-key",
        &s(&wk),
        "--tenant",
        &s(&tenant_path),
        "--policy",
        &s(&policy),
        "--trust-anchor",
        &anchor,
        "--generate",
        "--id",
        "orders",
        "--key-out",
        &s(&dir.path().join("orders.key")),
        "--out",
        &s(&wrapped),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let genuine: WrappedKeyFile =
        serde_json::from_slice(&std::fs::read(&wrapped).expect("read")).expect("wrapped file");
    // The signature covers exactly what `file_signed_bytes` writes out.
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        &tenant.public_key_spki().expect("spki"),
        &file_signed_bytes(&genuine),
        &B64.decode(&genuine.signature).expect("signature"),
    )
    .expect("the genuine file's signature, over the documented bytes");

    // The courier's (or the attacker's) keys.
    let attacker = TenantKey::generate().expect("attacker key");
    let attacker_audit = B64.encode(attacker.public_key_spki().expect("spki"));
    let other_tenant = TenantKey::generate().expect("key").tenant_id().expect("id");
    let altered = |what: &str, change: &dyn Fn(&mut WrappedKeyFile)| {
        let mut f = genuine.clone();
        change(&mut f);
        assert_ne!(f, genuine, "{what}: nothing changed");
        (what.to_string(), f)
    };
    let mut cases = vec![
        altered("node_id", &|f| f.node_id = flip_hex(&f.node_id)),
        altered("key", &|f| f.key = "invoices".into()),
        altered("tenant", &|f| f.tenant = other_tenant.clone()),
        altered("key_check", &|f| f.key_check = flip_hex(&f.key_check)),
        altered("key_check (value half)", &|f| {
            let (salt, value) = f.key_check.split_once(':').expect("salt:value");
            f.key_check = format!("{salt}:{}", flip_hex(value));
        }),
        altered("release", &|f| f.release = "never".into()),
        altered("audit_public_key", &|f| {
            f.audit_public_key = attacker_audit.clone()
        }),
        altered("checkpoint_public_key", &|f| {
            f.checkpoint_public_key = flip_hex(&f.checkpoint_public_key)
        }),
        altered("wrapped", &|f| f.wrapped = flip_b64(&f.wrapped)),
        altered("signature", &|f| f.signature = flip_b64(&f.signature)),
        altered("node", &|f| f.node = "http://127.0.0.1:1".into()),
        altered("version", &|f| f.version = 3),
    ];
    // The attacker's own audit key, and the file re-signed whole, correctly, by a tenant
    // key of the attacker's: a valid signature, but not this tenant's.
    let mut forged = genuine.clone();
    forged.audit_public_key = attacker_audit.clone();
    forged.signature = B64.encode(attacker.sign(&file_signed_bytes(&forged)).expect("sign"));
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        &attacker.public_key_spki().expect("spki"),
        &file_signed_bytes(&forged),
        &B64.decode(&forged.signature).expect("signature"),
    )
    .expect("the forgery is properly signed by the attacker");
    cases.push((
        "audit_public_key, re-signed by another tenant key".into(),
        forged,
    ));
    // Even the tenant's own signature does not make the file's receipt key differ from
    // the one the wrapped key's header binds (as if the wrapping tool were handed
    // another audit key after wrapping).
    let mut mismatched = genuine.clone();
    mismatched.audit_public_key = attacker_audit.clone();
    mismatched.signature = B64.encode(tenant.sign(&file_signed_bytes(&mismatched)).expect("sign"));
    cases.push((
        "audit_public_key, re-signed by this tenant".into(),
        mismatched,
    ));

    let before = node.audit_len();
    for (what, f) in &cases {
        let path = dir.path().join("tampered.wrapped");
        std::fs::write(&path, serde_json::to_vec_pretty(f).expect("json")).expect("write");
        let o = veritee(&[
            "keys",
            "import",
            "--node",
            &node.url,
            "--tenant",
            &s(&tenant_path),
            "--file",
            &s(&path),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what} accepted: {stderr}");
        assert!(
            stderr.contains("refused") && stderr.contains("nothing was sent"),
            "{what}: {stderr}"
        );
        if what.contains("re-signed by this tenant") {
            assert!(
                stderr.contains("the wrapped key's header disagrees with the file"),
                "{what}: {stderr}"
            );
        } else if what.contains("re-signed") || what == "signature" {
            assert!(
                stderr.contains("not signed by this tenant's key"),
                "{what}: {stderr}"
            );
        }
    }
    // Nothing reached the enclave: its audit log did not move and it holds no key.
    assert_eq!(
        node.audit_len(),
        before,
        "a tampered file reached the enclave"
    );
    let list = |node: &Node| {
        veritee(&[
            "keys",
            "list",
            "--node",
            &node.url,
            "--tenant",
            &s(&tenant_path),
            "--policy",
            &s(&policy),
            "--trust-anchor",
            &anchor,
        ])
    };
    let o = list(&node);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stdout.is_empty(),
        "keys after the tampered imports: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The genuine file still imports: the cases above failed for their own reason.
    let o = veritee(&[
        "keys",
        "import",
        "--node",
        &node.url,
        "--tenant",
        &s(&tenant_path),
        "--file",
        &s(&wrapped),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&list(&node).stdout).trim(),
        "orders"
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
    let attacker_audit = B64.encode(
        TenantKey::generate()
            .expect("key")
            .public_key_spki()
            .expect("spki"),
    );
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
        ("another node's id", {
            let mut d = doc_a.clone();
            d["node_id"] = doc_b["node_id"].clone();
            d
        }),
        ("the attacker's receipt key", {
            let mut d = doc_a.clone();
            d["audit_public_key"] = attacker_audit.clone().into();
            d
        }),
        ("another enclave's receipt and checkpoint keys", {
            let mut d = doc_a.clone();
            d["audit_public_key"] = doc_b["audit_public_key"].clone();
            d["checkpoint_public_key"] = doc_b["checkpoint_public_key"].clone();
            d
        }),
    ];
    for (what, doc) in cases {
        assert_ne!(doc, doc_a, "{what}: nothing changed");
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

/// Deploys a fresh key named `name` to `node` through the library, under `release` and
/// the appraisal policy `policy` makes of the node's attested claims; checks the
/// receipt and returns the key's check value (`salt:value`).
fn deploy_key_under(
    node: &Node,
    tenant: &TenantKey,
    name: &str,
    release: ReleasePolicy,
    policy: impl FnOnce(&Claims) -> AppraisalPolicy,
) -> String {
    let appraisal = Appraisal::new(node);
    let client = node.client();
    let attested: AttestedWrappingKey = client
        .fetch_wrapping_key()
        .expect("wk")
        .verify(&appraisal.appraiser())
        .expect("attested");
    let key: Confidential<[u8; 32]> = veritee_crypto::rand::secret_array().expect("key");
    let policy = serde_json::to_vec(&policy(&attested.claims)).expect("policy json");
    let file = wrap_for_node(&attested, tenant, name, release, policy, &key).expect("wrap");
    let imported = import_wrapped_key(&client, tenant, &file).expect("import");
    assert_eq!(imported.receipt.key_check, file.key_check);
    assert_eq!(imported.receipt.node, attested.node_id);
    file.key_check
}

/// [`deploy_key_under`] the policy the tests appraise nodes with.
fn deploy_key(node: &Node, tenant: &TenantKey, name: &str, release: ReleasePolicy) -> String {
    deploy_key_under(node, tenant, name, release, |_| Appraisal::new(node).policy)
}

fn ensure(node: &Node, tenant: &TenantKey, name: &str) -> Result<String, ClientError> {
    let appraisal = Appraisal::new(node);
    let client = node.client();
    let mut session = client.open_session(tenant, &appraisal.appraiser())?;
    session.ensure_key(name)
}

fn list_keys(node: &Node, tenant: &TenantKey) -> Vec<String> {
    let appraisal = Appraisal::new(node);
    let client = node.client();
    client
        .open_session(tenant, &appraisal.appraiser())
        .expect("session")
        .list_keys()
        .expect("list")
}

fn node_id(node: &Node) -> String {
    node.client()
        .audit_log(&node.admin_token(), 0, 1)
        .expect("audit")
        .log
        .trim_start_matches("audit/")
        .to_string()
}

/// The store key under which `node` keeps its sealed copy of key `name`:
/// `key/<name>@<node>.<blob id, 32 hex digits>`, the blob id being the index's.
async fn sealed_copy(st: &dyn veritee_store::Store, ns: &str, name: &str, node: &str) -> String {
    let found = st
        .list(ns, &format!("key/{name}@{node}."), None, 10)
        .await
        .expect("list");
    assert_eq!(found.len(), 1, "copies of {name} on {node}: {found:?}");
    let k = found.into_iter().next().expect("one copy");
    let blob = k.rsplit('.').next().expect("blob id");
    assert!(
        blob.len() == 32 && blob.chars().all(|c| c.is_ascii_hexdigit()),
        "{k}"
    );
    k
}

fn register(node: &Node, tenant_path: &Path) {
    let o = veritee(&[
        "tenant",
        "register",
        "--node",
        &node.url,
        "--admin-token",
        &s(&node.state.join("admin.token")),
        "--tenant",
        &s(tenant_path),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn stop(mut node: Node) {
    let _ = node.child.kill();
    let _ = node.child.wait();
}

#[test]
fn corrupted_moved_or_deleted_sealed_keys_do_not_open_and_nothing_else_is_lost() {
    let fleet = Fleet::new(&["m1", "m2"]);
    let store = s(&fleet.p("store"));
    let a = fleet.node("a", "m1", "signer", &store, &[]);
    let tenant_path = tenant_file(&a, fleet.dir.path());
    let tenant = load_tenant(&tenant_path);
    let _d1 = deploy_key(&a, &tenant, "k1", ReleasePolicy::SameSigner);
    let d2 = deploy_key(&a, &tenant, "k2", ReleasePolicy::SameSigner);
    let _d3 = deploy_key(&a, &tenant, "k3", ReleasePolicy::SameSigner);
    let _d4 = deploy_key(&a, &tenant, "k4", ReleasePolicy::SameSigner);
    let id_a = node_id(&a);
    stop(a);

    // The host flips one byte of k1's sealed copy, overwrites k3's with k2's (a genuine
    // blob of the same node, another record), and deletes k4's.
    let ns = format!("t/{}", tenant.tenant_id().expect("id"));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let st = veritee_store::open(&store).await.expect("store");
        let k1 = sealed_copy(&*st, &ns, "k1", &id_a).await;
        let mut blob = st.get(&ns, &k1).await.expect("get").expect("copy");
        let n = blob.len() - 5;
        blob[n] ^= 0x10;
        st.put(&ns, &k1, &blob).await.expect("put");
        let k2 = sealed_copy(&*st, &ns, "k2", &id_a).await;
        let k3 = sealed_copy(&*st, &ns, "k3", &id_a).await;
        let blob = st.get(&ns, &k2).await.expect("get").expect("copy");
        st.put(&ns, &k3, &blob).await.expect("put");
        let k4 = sealed_copy(&*st, &ns, "k4", &id_a).await;
        assert!(st.delete(&ns, &k4).await.expect("delete"));
    });
    let a = fleet.node("a", "m1", "signer", &store, &[]);
    for name in ["k1", "k3"] {
        let err = ensure(&a, &tenant, name).expect_err("altered key opened");
        assert!(
            err.to_string()
                .contains("is not the blob its current version"),
            "{name}: {err}"
        );
    }
    let err = ensure(&a, &tenant, "k4").expect_err("deleted key served");
    assert!(
        err.to_string().contains("is missing from the store"),
        "{err}"
    );
    assert_eq!(ensure(&a, &tenant, "k2").expect("k2 intact"), d2);
    stop(a);

    // The same store served from another machine: its own copy is absent, and A's copy
    // copied under B's name is not part of B's index, so B holds nothing (and, having no
    // peer, says so).
    let b = fleet.node("b", "m2", "signer", &store, &[]);
    register(&b, &tenant_path);
    let err =
        ensure(&b, &tenant, "k2").expect_err("another machine served a key it never received");
    assert!(err.to_string().contains("no key named k2"), "{err}");
    let id_b = node_id(&b);
    assert_ne!(id_a, id_b);
    stop(b);
    let planted = rt.block_on(async {
        let st = veritee_store::open(&store).await.expect("store");
        let from = sealed_copy(&*st, &ns, "k2", &id_a).await;
        let blob = st.get(&ns, &from).await.expect("get").expect("copy");
        let to = from.replace(&format!("@{id_a}."), &format!("@{id_b}."));
        st.put(&ns, &to, &blob).await.expect("put");
        to
    });
    let b = fleet.node("b", "m2", "signer", &store, &[]);
    let err = ensure(&b, &tenant, "k2").expect_err("moved blob opened");
    assert!(err.to_string().contains("no key named k2"), "{err}");
    // B gets a k2 of its own; the host puts A's k2 in its place (B's name, B's current
    // version): it does not open there either, and B's own copy put back serves again.
    let b2 = deploy_key(&b, &tenant, "k2", ReleasePolicy::SameSigner);
    assert_ne!(b2, d2);
    stop(b);
    let own = rt.block_on(async {
        let st = veritee_store::open(&store).await.expect("store");
        let from = sealed_copy(&*st, &ns, "k2", &id_a).await;
        let blob = st.get(&ns, &from).await.expect("get").expect("copy");
        let ours = st
            .list(&ns, &format!("key/k2@{id_b}."), None, 10)
            .await
            .expect("list");
        // B's genuine copy is the one that is not the planted blob.
        let target = ours
            .iter()
            .find(|k| **k != planted)
            .unwrap_or(&planted)
            .clone();
        let own = st.get(&ns, &target).await.expect("get").expect("copy");
        st.put(&ns, &target, &blob).await.expect("put");
        (target, own)
    });
    let b = fleet.node("b", "m2", "signer", &store, &[]);
    let err = ensure(&b, &tenant, "k2").expect_err("A's blob opened on B");
    assert!(
        err.to_string()
            .contains("is not the blob its current version"),
        "{err}"
    );
    stop(b);
    rt.block_on(async {
        let st = veritee_store::open(&store).await.expect("store");
        st.put(&ns, &own.0, &own.1).await.expect("put");
    });
    let b = fleet.node("b", "m2", "signer", &store, &[]);
    assert_eq!(ensure(&b, &tenant, "k2").expect("B's own copy"), b2);
}

#[test]
fn replication_between_nodes_follows_the_release_policy() {
    let fleet = Fleet::new(&["m1", "m2", "m3", "m4"]);
    let a = fleet.node("a", "m1", "signer", &s(&fleet.p("a-store")), &[]);
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
        &[],
    );
    let tenant_path = tenant_file(&a, fleet.dir.path());
    for n in [&b, &c, &d] {
        register(n, &tenant_path);
    }
    let tenant = load_tenant(&tenant_path);
    let digest = deploy_key(&a, &tenant, "orders", ReleasePolicy::SameSigner);
    let pinned = deploy_key(&a, &tenant, "pinned", ReleasePolicy::Never);
    let exact = deploy_key(&a, &tenant, "exact", ReleasePolicy::SameMeasurement);

    // Same signer, another machine: replicated.
    assert_eq!(ensure(&b, &tenant, "orders").expect("replicated"), digest);
    // Another signer: neither side accepts the other, and C holds nothing.
    let err = ensure(&c, &tenant, "orders").expect_err("released to another signer");
    assert!(err.to_string().contains("signed by someone else"), "{err}");
    assert!(list_keys(&c, &tenant).is_empty());
    // A key that may never leave its node.
    let err = ensure(&b, &tenant, "pinned").expect_err("released a never-release key");
    assert!(err.to_string().contains("forbids replication"), "{err}");
    let _ = pinned;
    // A same-measurement key goes to B (same code) but not to D (same signer, other code).
    assert_eq!(ensure(&b, &tenant, "exact").expect("same code"), exact);
    let err = ensure(&d, &tenant, "exact").expect_err("released to other code");
    assert!(
        err.to_string()
            .contains("the requesting enclave runs other code (release: same measurement)"),
        "{err}"
    );
    assert_eq!(ensure(&d, &tenant, "orders").expect("same signer"), digest);

    // The deployment policy binds replicas too, not only the release relation: a
    // same-signer key deployed under a policy that pins A's measurement does not go to D
    // (same signer and product, so the relation alone would release it), and does go to
    // B (same measurement).
    let measured = deploy_key_under(
        &a,
        &tenant,
        "measured",
        ReleasePolicy::SameSigner,
        |claims| {
            let name = veritee_channel::peer::primary_measurement(claims.tee);
            let value = claims.measurement(name).expect("A's measurement").to_vec();
            let mut policy = Appraisal::new(&a).policy;
            policy
                .measurements
                .insert(name.to_string(), vec![veritee_attest::HexBytes(value)]);
            policy
        },
    );
    let err = ensure(&d, &tenant, "measured")
        .expect_err("released to an enclave the deployment policy does not accept");
    let text = err.to_string();
    assert!(
        text.contains("the key's deployment policy: measurements.measurement"),
        "{text}"
    );
    assert!(
        !text.contains("another signer") && !text.contains("another product"),
        "the release relation holds for D, only the policy refuses: {text}"
    );
    assert_eq!(
        ensure(&b, &tenant, "measured").expect("same measurement"),
        measured
    );
    let held = list_keys(&d, &tenant);
    assert!(
        !held.contains(&"measured".to_string()) && !held.contains(&"exact".to_string()),
        "D holds {held:?}"
    );

    // With A gone, B keeps serving what it replicated.
    stop(a);
    assert_eq!(
        ensure(&b, &tenant, "orders").expect("served without A"),
        digest
    );
    assert_eq!(
        ensure(&b, &tenant, "measured").expect("served without A"),
        measured
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
    let a = fleet.node("a", "m1", "signer", &url, &[]);
    let b = fleet.node("b", "m2", "signer", &url, &[&a.url]);
    let tenant = load_tenant(&tenant_file(&a, fleet.dir.path()));
    let digest = deploy_key(&a, &tenant, "shared", ReleasePolicy::SameSigner);
    // The tenant registered at A is known to B through the shared store.
    assert_eq!(
        ensure(&b, &tenant, "shared").expect("B serves the key"),
        digest
    );
    stop(a);
    assert_eq!(
        ensure(&b, &tenant, "shared").expect("B serves with A down"),
        digest
    );
}
