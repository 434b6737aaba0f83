//! The node over HTTPS: its self-signed certificate pinned by fingerprint, a
//! certificate it is given, and credentials never sent in clear off loopback.
//!
//! Pinned certificates are process-wide in the client library, so every check that
//! depends on which pins exist runs in one test, in order.

#[macro_use]
mod common;

use common::*;
use std::process::Command;
use veritee_client::{ClientError, NodeClient};
use veritee_crypto::SecretBytes;

fn veritee(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args(args)
        .env_remove("VERITEE_NODE_FINGERPRINT")
        .output()
        .expect("run veritee")
}

#[test]
fn a_node_serves_https_under_a_pinned_certificate_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let node = start_with(
        &dir.path().join("node"),
        &store,
        &["--tls-self-signed", "--kbs-auth-per-second", "1"],
    );
    assert!(node.url.starts_with("https://127.0.0.1:"), "{}", node.url);
    let fingerprint =
        std::fs::read_to_string(node.state.join("tls/fingerprint")).expect("fingerprint file");
    let fingerprint = fingerprint.trim();
    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
    assert!(log.contains("self-signed TLS certificate"), "{log}");

    // Plain HTTP to the HTTPS port gets nowhere.
    let plain = node.url.replacen("https://", "http://", 1);
    assert!(NodeClient::new(&plain).expect("client").health().is_err());

    // Before anything is pinned, the system's roots do not vouch for it.
    let unpinned = NodeClient::new(&node.url).expect("client");
    match unpinned.health() {
        Err(ClientError::Transport(message)) => {
            assert!(message.contains("UnknownIssuer"), "{message}")
        }
        other => panic!("a self-signed certificate passed the system's roots: {other:?}"),
    }
    // A wrong pin: refused, naming the certificate it saw.
    veritee_client::transport::pin_certificate([0x5a; 32]);
    match NodeClient::new(&node.url).expect("client").health() {
        Err(ClientError::Transport(message)) => {
            assert!(message.contains("is not pinned"), "{message}")
        }
        other => panic!("an unpinned certificate was accepted: {other:?}"),
    }

    // The CLI, pinned, registers a tenant over HTTPS.
    let tenant_file = dir.path().join("tenant.pem");
    let out = veritee(&[
        "tenant",
        "create",
        "--node",
        &node.url,
        "--node-fingerprint",
        fingerprint,
        "--admin-token",
        node.state.join("admin.token").to_str().expect("utf-8"),
        "--out",
        tenant_file.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Secrets over HTTPS: the first command attests and keeps its session, the next
    // one resumes it (the kept file is left as it was; a new attestation replaces it).
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let value = dir.path().join("value.txt");
    std::fs::write(&value, "over tls, by the cli").expect("value");
    let cache = dir.path().join("sessions");
    let anchor = node.state.join("vendor/root.pem");
    let secret = |verb: &str, extra: &[&str]| {
        let mut args = vec![
            "secret",
            verb,
            "--node",
            &node.url,
            "--node-fingerprint",
            fingerprint,
            "--tenant",
            tenant_file.to_str().expect("utf-8"),
            "--policy",
            policy.to_str().expect("utf-8"),
            "--trust-anchor",
            anchor.to_str().expect("utf-8"),
            "--session-cache",
            cache.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let out = veritee(&args);
        assert!(
            out.status.success(),
            "secret {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    secret(
        "put",
        &["--name", "db", "--file", value.to_str().expect("utf-8")],
    );
    let kept: Vec<_> = std::fs::read_dir(&cache)
        .expect("session cache")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let before = std::fs::read(&kept[0]).expect("kept session");
    assert_eq!(secret("get", &["--name", "db"]), "over tls, by the cli");
    assert_eq!(std::fs::read(&kept[0]).expect("kept session"), before);

    // And refuses a malformed pin before doing anything.
    let out = veritee(&[
        "tenant",
        "create",
        "--node",
        &node.url,
        "--node-fingerprint",
        "abc",
        "--admin-token",
        node.state.join("admin.token").to_str().expect("utf-8"),
        "--out",
        dir.path().join("other.pem").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));

    // The library, pinned: a session end to end.
    veritee_client::transport::pin_certificate(
        veritee_client::transport::parse_fingerprint(fingerprint).expect("fingerprint"),
    );
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session over HTTPS");
    session
        .put_secret("db", SecretBytes::copy_from(b"over tls"))
        .expect("put");
    assert_eq!(session.get_secret("db").expect("get").expose(), b"over tls");

    // Over HTTPS too, the node knows each client's address: KBS handshakes past the
    // address's rate are slowed down.
    let http = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let limited = (0..8).any(|_| {
        http.post(format!("{}/kbs/v0/auth", node.url))
            .header("content-type", "application/json")
            .body(r#"{"version":"0.4.0","tee":"sample","extra-params":""}"#)
            .send()
            .expect("auth")
            .status()
            == 429
    });
    assert!(limited, "no handshake over HTTPS was ever slowed");

    // A certificate the operator gives, pinned as well.
    let given = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let (cert, key) = (dir.path().join("given.pem"), dir.path().join("given.key"));
    std::fs::write(&cert, given.cert.pem()).expect("cert");
    std::fs::write(&key, given.signing_key.serialize_pem()).expect("key");
    let store2 = dir.path().join("store2").display().to_string();
    let second = start_with(
        &dir.path().join("second"),
        &store2,
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert!(second.url.starts_with("https://"), "{}", second.url);
    assert!(second.client().health().is_err(), "not pinned yet");
    veritee_client::transport::pin_certificate(veritee_crypto::digest::sha256(given.cert.der()));
    second.tenant();

    // A certificate and key that do not belong together stop the node at start.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).expect("key");
    let out = veritee(&[
        "node",
        "--dir",
        dir.path().join("third").to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        other_key.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS certificate and key"), "{stderr}");
}

#[test]
fn credentials_are_not_sent_in_clear_off_loopback() {
    // Nothing listens there and nothing is sent: the refusal comes first.
    let client = NodeClient::new("http://192.0.2.1:8440").expect("client");
    let key = veritee_channel::client::TenantKey::generate().expect("key");
    match client.register_tenant("token", &key) {
        Err(ClientError::Insecure(message)) => assert!(message.contains("plain HTTP"), "{message}"),
        other => panic!("a credential went out in clear: {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "token").expect("token");
    let out = veritee(&[
        "tenant",
        "create",
        "--node",
        "http://192.0.2.1:8440",
        "--admin-token",
        token.to_str().expect("utf-8"),
        "--out",
        dir.path().join("tenant.pem").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("over plain HTTP"), "{stderr}");
}
