//! The Confidential Containers KBS protocol against a running node: a guest with CoCo's
//! sample TEE fetches a resource the admin stored, under the admin's policy; tampered,
//! replayed and foreign messages, tokens and cookies are refused; the host never sees
//! a released resource in the clear.

mod common;

use base64::Engine;
use common::start_with;
use std::path::Path;
use veritee_client::ClientError;
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_kbs::jwe::{Curve, TeeKeyPair};
use veritee_kbs::kbs_types::Response;

const SAMPLE_POLICY: &str = "version = 1\ntee = [\"coco-sample\"]\nallow_simulated = true\ntcb_status = [\"NotReported\"]\n";

struct Broker {
    node: common::Node,
    admin: Ed25519SigningKey,
    token: String,
}

fn admin_token(admin: &Ed25519SigningKey) -> String {
    veritee_kbs::token::mint_admin_token(
        admin,
        time::OffsetDateTime::now_utc(),
        time::Duration::minutes(10),
    )
    .unwrap()
}

fn broker(dir: &Path, plaintext: bool) -> Broker {
    broker_with(dir, plaintext, &[])
}

/// As [`broker`], with more `veritee node` arguments.
fn broker_with(dir: &Path, plaintext: bool, more: &[&str]) -> Broker {
    let admin = Ed25519SigningKey::generate().unwrap();
    let pem = veritee_kbs::token::admin_public_key_to_pem(&admin.public_key()).unwrap();
    let key_file = dir.join("admin.pub");
    std::fs::write(&key_file, pem).unwrap();
    let mut extra = vec!["--kbs-admin-key", key_file.to_str().unwrap()];
    if plaintext {
        extra.push("--kbs-plaintext-resources");
    }
    extra.extend(more);
    let node = start_with(
        &dir.join("node"),
        &dir.join("store").display().to_string(),
        &extra,
    );
    let token = admin_token(&admin);
    Broker { node, admin, token }
}

fn status(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Node {
            status, message, ..
        } => (status, message),
        other => panic!("expected a refusal by the node, got {other}"),
    }
}

#[test]
fn a_sample_guest_gets_its_resource_under_the_admins_policy() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), true);
    let client = b.node.client();
    let key = TeeKeyPair::generate_ec(Curve::P256).unwrap();

    // No policy yet: nothing is released.
    client
        .kbs_put_resource(&b.token, "default/key/one", b"canary-kbs-resource-31337")
        .unwrap();
    let session = client.kbs_attest_sample(&key).unwrap();
    let (code, why) = status(
        client
            .kbs_get_resource(&session, &key, "default/key/one")
            .unwrap_err(),
    );
    assert_eq!(code, 401, "{why}");
    assert!(why.contains("no resource policy"), "{why}");

    // The default hardware policy refuses the sample TEE.
    let hardware = veritee_policy::AppraisalPolicy::default_hardware().to_toml();
    client.kbs_set_policy(&b.token, &hardware).unwrap();
    let (code, why) = status(
        client
            .kbs_get_resource(&session, &key, "default/key/one")
            .unwrap_err(),
    );
    assert_eq!(code, 401, "{why}");
    assert!(why.contains("policy refuses"), "{why}");

    // A policy that names it lets the guest in.
    client.kbs_set_policy(&b.token, SAMPLE_POLICY).unwrap();
    let value = client
        .kbs_get_resource(&session, &key, "default/key/one")
        .unwrap();
    assert_eq!(&value[..], b"canary-kbs-resource-31337");
    // An RSA guest too.
    let rsa = TeeKeyPair::generate_rsa().unwrap();
    let rsa_session = client.kbs_attest_sample(&rsa).unwrap();
    let value = client
        .kbs_get_resource(&rsa_session, &rsa, "default/key/one")
        .unwrap();
    assert_eq!(&value[..], b"canary-kbs-resource-31337");

    let (code, _) = status(
        client
            .kbs_get_resource(&session, &key, "default/key/two")
            .unwrap_err(),
    );
    assert_eq!(code, 404);
    assert_eq!(
        client.kbs_list_resources(&b.token).unwrap(),
        ["default/key/one"]
    );
    client
        .kbs_delete_resource(&b.token, "default/key/one")
        .unwrap();
    assert!(client.kbs_list_resources(&b.token).unwrap().is_empty());
    let (code, _) = status(
        client
            .kbs_delete_resource(&b.token, "default/key/one")
            .unwrap_err(),
    );
    assert_eq!(code, 404);

    // Every release and change is in the audit log.
    let log = std::fs::read_to_string(&b.node.log).unwrap_or_default();
    assert!(
        !log.contains("canary-kbs-resource-31337"),
        "the host logged the resource"
    );
    let store = dir.path().join("store");
    assert!(
        !common::tree_contains(&store, b"canary-kbs-resource-31337"),
        "the store holds the resource in the clear"
    );
}

#[test]
fn the_admin_api_takes_only_the_admins_unexpired_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), false);
    let client = b.node.client();
    let stranger = Ed25519SigningKey::generate().unwrap();
    let expired = veritee_kbs::token::mint_admin_token(
        &b.admin,
        time::OffsetDateTime::now_utc() - time::Duration::hours(2),
        time::Duration::hours(1),
    )
    .unwrap();
    let mut flipped = b.token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for token in [
        admin_token(&stranger),
        expired,
        flipped,
        "not-a-jwt".into(),
        String::new(),
    ] {
        let (code, why) = status(client.kbs_set_policy(&token, SAMPLE_POLICY).unwrap_err());
        assert_eq!(code, 401, "{token}: {why}");
    }
    // Rego is not our policy language; the error says so.
    let (code, why) = status(
        client
            .kbs_set_policy(&b.token, "package policy\ndefault allow = true\n")
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    assert!(why.contains("not Rego"), "{why}");
    // Without --kbs-plaintext-resources, Trustee's set-resource is refused, whoever asks.
    let (code, why) = status(
        client
            .kbs_put_resource(&b.token, "a/b/c", b"x")
            .unwrap_err(),
    );
    assert_eq!(code, 403, "{why}");
    assert!(why.contains("in the clear"), "{why}");
}

#[test]
fn tampered_replayed_and_foreign_handshakes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), true);
    let client = b.node.client();
    client.kbs_set_policy(&b.token, SAMPLE_POLICY).unwrap();
    client
        .kbs_put_resource(&b.token, "r/t/g", b"secret")
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}/kbs/v0/{p}", b.node.url);
    let auth = || {
        let resp = http
            .post(url("auth"))
            .header("content-type", "application/json")
            .body(r#"{"version":"0.4.0","tee":"sample","extra-params":""}"#)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let challenge: serde_json::Value = resp.json().unwrap();
        (cookie, challenge["nonce"].as_str().unwrap().to_string())
    };
    let key = TeeKeyPair::generate_ec(Curve::P256).unwrap();
    let attestation = |nonce: &str, report_nonce: &str| {
        let runtime = serde_json::json!({
            "nonce": report_nonce,
            "tee-pubkey": key.public_jwk().unwrap(),
        });
        let bound: veritee_kbs::kbs_types::Attestation =
            serde_json::from_value(serde_json::json!({
                "init-data": null,
                "runtime-data": runtime,
                "tee-evidence": {"primary_evidence": {}, "additional_evidence": ""},
            }))
            .unwrap();
        let digest = veritee_kbs::protocol::runtime_data_digest(&bound).unwrap();
        serde_json::json!({
            "init-data": null,
            "runtime-data": {"nonce": nonce, "tee-pubkey": key.public_jwk().unwrap()},
            "tee-evidence": {
                "primary_evidence": {"svn": "1", "report_data": base64::engine::general_purpose::STANDARD.encode(digest)},
                "additional_evidence": "",
            },
        })
    };
    let attest = |cookie: &str, body: &serde_json::Value| {
        http.post(url("attest"))
            .header("cookie", cookie)
            .json(body)
            .send()
            .unwrap()
    };

    // Wrong version, unknown TEE, junk.
    for body in [
        r#"{"version":"0.3.0","tee":"sample","extra-params":""}"#,
        r#"{"version":"0.4.0","tee":"quantum","extra-params":""}"#,
        r#"{"version":"0.4.0""#,
    ] {
        let resp = http.post(url("auth")).body(body).send().unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let problem: serde_json::Value = resp.json().unwrap();
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .starts_with("https://github.com/confidential-containers/kbs/errors/")
        );
    }

    // Evidence bound to another nonce (a replay of an earlier handshake's evidence).
    let (cookie, nonce) = auth();
    let (_, earlier) = auth();
    let resp = attest(&cookie, &attestation(&earlier, &earlier));
    assert_eq!(resp.status(), 400, "{}", resp.text().unwrap());
    // Evidence whose report data binds another key than the one sent.
    let mut swapped = attestation(&nonce, &nonce);
    swapped["runtime-data"]["tee-pubkey"] = serde_json::to_value(
        TeeKeyPair::generate_ec(Curve::P256)
            .unwrap()
            .public_jwk()
            .unwrap(),
    )
    .unwrap();
    let resp = attest(&cookie, &swapped);
    assert_eq!(resp.status(), 401, "{}", resp.text().unwrap());
    // Report data flipped, sample evidence with an unknown field, a truncated body.
    let mut flipped = attestation(&nonce, &nonce);
    flipped["tee-evidence"]["primary_evidence"]["report_data"] = "AAAA".into();
    assert_eq!(attest(&cookie, &flipped).status(), 401);
    let mut extra = attestation(&nonce, &nonce);
    extra["tee-evidence"]["primary_evidence"]["debug"] = true.into();
    assert_eq!(attest(&cookie, &extra).status(), 401);
    let good = attestation(&nonce, &nonce).to_string();
    let resp = http
        .post(url("attest"))
        .header("cookie", &cookie)
        .body(good[..good.len() / 2].to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    // No cookie, an unknown cookie.
    assert_eq!(attest("", &attestation(&nonce, &nonce)).status(), 401);
    assert_eq!(
        attest("kbs-session-id=00ff", &attestation(&nonce, &nonce)).status(),
        401
    );
    // The session's own evidence, at last; then the resource for its cookie only.
    let resp = attest(&cookie, &attestation(&nonce, &nonce));
    assert_eq!(resp.status(), 200);
    let token = resp.json::<serde_json::Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |headers: &[(&str, &str)]| {
        let mut req = http.get(url("resource/r/t/g"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().unwrap()
    };
    let sealed: Response = get(&[("cookie", &cookie)]).json().unwrap();
    assert_eq!(&key.open(&sealed).unwrap()[..], b"secret");
    assert!(!serde_json::to_string(&sealed).unwrap().contains("secret"));
    // The token works as a bearer too; a token with a flipped byte does not.
    let sealed: Response = get(&[("authorization", &format!("Bearer {token}"))])
        .json()
        .unwrap();
    assert_eq!(&key.open(&sealed).unwrap()[..], b"secret");
    let mut bad = token.into_bytes();
    let mid = bad.len() / 2;
    bad[mid] = if bad[mid] == b'x' { b'y' } else { b'x' };
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(
        get(&[("authorization", &format!("Bearer {bad}"))]).status(),
        401
    );
    // A session that only passed /auth gets nothing; nor does no session at all.
    let (fresh, _) = auth();
    assert_eq!(get(&[("cookie", &fresh)]).status(), 401);
    assert_eq!(get(&[]).status(), 401);
    // Malformed paths.
    assert_eq!(
        http.get(url("resource/r/t/g%2F.."))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .status(),
        400
    );
    assert_eq!(http.get(url("nothing/here")).send().unwrap().status(), 404);
}

#[test]
fn a_sealed_resource_reaches_the_enclave_without_the_host_reading_it() {
    const CANARY: &[u8] = b"canary-sealed-kbs-resource-8675309";
    let dir = tempfile::tempdir().unwrap();
    // No --kbs-plaintext-resources: the sealed form needs none.
    let b = broker(dir.path(), false);
    let client = b.node.client();
    client.kbs_set_policy(&b.token, SAMPLE_POLICY).unwrap();
    let appraisal = common::Appraisal::new(&b.node);
    let wrapping = client
        .fetch_wrapping_key()
        .unwrap()
        .verify(&appraisal.appraiser())
        .unwrap();
    client
        .kbs_put_sealed_resource(&b.token, "default/key/sealed", CANARY, &wrapping)
        .unwrap();
    let key = TeeKeyPair::generate_ec(Curve::P256).unwrap();
    let session = client.kbs_attest_sample(&key).unwrap();
    let value = client
        .kbs_get_resource(&session, &key, "default/key/sealed")
        .unwrap();
    assert_eq!(&value[..], CANARY);

    // The host process, its log and its store never held the resource in the clear.
    let host_memory = common::process_memory(b.node.child.id());
    assert!(
        !common::contains(&host_memory, CANARY),
        "the host's memory holds the resource"
    );
    let log = std::fs::read(&b.node.log).unwrap_or_default();
    assert!(!common::contains(&log, CANARY));
    assert!(!common::tree_contains(&dir.path().join("store"), CANARY));

    // A sealed resource moved to another path, damaged, or cut short is refused; the
    // resource stored stays as it was.
    let sealed = veritee_crypto::hpke::seal(
        &wrapping.public_key,
        veritee_kbs::resource::SEALED_RESOURCE_INFO,
        b"default/key/sealed",
        b"replacement",
    )
    .unwrap();
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        http.post(format!("{}/kbs/v0/resource/{path}", b.node.url))
            .header(
                "content-type",
                veritee_kbs::resource::SEALED_RESOURCE_CONTENT_TYPE,
            )
            .header("authorization", format!("Bearer {}", b.token))
            .body(body)
            .send()
            .unwrap()
    };
    let resp = post("default/key/other", sealed.clone());
    assert_eq!(resp.status(), 400);
    assert!(resp.text().unwrap().contains("does not open"));
    let mut flipped = sealed.clone();
    flipped[40] ^= 1;
    assert_eq!(post("default/key/sealed", flipped).status(), 400);
    assert_eq!(
        post("default/key/sealed", sealed[..sealed.len() - 1].to_vec()).status(),
        400
    );
    assert_eq!(post("default/key/sealed", Vec::new()).status(), 400);
    let value = client
        .kbs_get_resource(&session, &key, "default/key/sealed")
        .unwrap();
    assert_eq!(&value[..], CANARY);
    // Without the admin's token, even a well-sealed resource is refused.
    let resp = http
        .post(format!("{}/kbs/v0/resource/default/key/sealed", b.node.url))
        .header(
            "content-type",
            veritee_kbs::resource::SEALED_RESOURCE_CONTENT_TYPE,
        )
        .body(sealed)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[test]
fn a_gpu_report_made_for_another_handshake_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), true);
    let client = b.node.client();
    client.kbs_set_policy(&b.token, SAMPLE_POLICY).unwrap();
    let http = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}/kbs/v0/{p}", b.node.url);
    let resp = http
        .post(url("auth"))
        .body(r#"{"version":"0.4.0","tee":"sample","extra-params":""}"#)
        .send()
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let nonce = resp.json::<serde_json::Value>().unwrap()["nonce"]
        .as_str()
        .unwrap()
        .to_string();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/veritee-verify/tests/data/nvidia");
    let report = std::fs::read_to_string(data.join("hopperAttestationReport.txt")).unwrap();
    let chain = std::fs::read(data.join("hopperCertChain.txt")).unwrap();
    let key = TeeKeyPair::generate_ec(Curve::P256).unwrap();
    let attest = |devices: String| {
        let mut attestation: veritee_kbs::kbs_types::Attestation =
            serde_json::from_value(serde_json::json!({
                "init-data": null,
                "runtime-data": {"nonce": nonce, "tee-pubkey": key.public_jwk().unwrap()},
                "tee-evidence": {"primary_evidence": {}, "additional_evidence": devices},
            }))
            .unwrap();
        let digest = veritee_kbs::protocol::runtime_data_digest(&attestation).unwrap();
        attestation.tee_evidence.primary_evidence = serde_json::json!({
            "svn": "1",
            "report_data": base64::engine::general_purpose::STANDARD.encode(digest),
        });
        http.post(url("attest"))
            .header("cookie", &cookie)
            .json(&attestation)
            .send()
            .unwrap()
    };
    // A genuine H100 report, but answering nvtrust's nonce, not this handshake's.
    let gpu = serde_json::json!({"nvidia": {"device_evidence_list": [{
        "arch": "HOPPER",
        "evidence": report.trim(),
        "certificate": base64::engine::general_purpose::STANDARD.encode(&chain),
    }]}});
    let resp = attest(gpu.to_string());
    assert_eq!(resp.status(), 401);
    let why = resp.text().unwrap();
    assert!(
        why.contains("nvidia-h100") && why.contains("report data"),
        "{why}"
    );
    // A device kind this broker does not verify is refused, not ignored.
    let resp = attest(r#"{"tpm": {}}"#.into());
    assert_eq!(resp.status(), 400);
    let why = resp.text().unwrap();
    assert!(why.contains("tpm") && why.contains("not verified"), "{why}");
    // The same session, without devices, goes through.
    assert_eq!(attest(String::new()).status(), 200);
}

#[test]
fn a_resource_or_repository_policy_overrides_the_one_for_everything() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), true);
    let client = b.node.client();
    for path in ["open/key/a", "locked/key/b", "open/key/locked"] {
        client
            .kbs_put_resource(&b.token, path, path.as_bytes())
            .unwrap();
    }
    let hardware = veritee_policy::AppraisalPolicy::default_hardware().to_toml();
    // Everything takes the sample TEE, but the repository "locked" and the resource
    // "open/key/locked" take hardware only.
    client.kbs_set_policy(&b.token, SAMPLE_POLICY).unwrap();
    client
        .kbs_set_scoped_policy(&b.token, Some("locked"), &hardware)
        .unwrap();
    client
        .kbs_set_scoped_policy(&b.token, Some("open/key/locked"), &hardware)
        .unwrap();
    let key = TeeKeyPair::generate_ec(Curve::P256).unwrap();
    let session = client.kbs_attest_sample(&key).unwrap();
    assert_eq!(
        &client
            .kbs_get_resource(&session, &key, "open/key/a")
            .unwrap()[..],
        b"open/key/a"
    );
    for refused in ["locked/key/b", "open/key/locked"] {
        let (code, why) = status(
            client
                .kbs_get_resource(&session, &key, refused)
                .unwrap_err(),
        );
        assert_eq!(code, 401, "{refused}: {why}");
        assert!(why.contains("resource policy of"), "{why}");
    }
    // A more specific policy can also open what the general one closes.
    client.kbs_set_policy(&b.token, &hardware).unwrap();
    client
        .kbs_set_scoped_policy(&b.token, Some("locked/key/b"), SAMPLE_POLICY)
        .unwrap();
    assert_eq!(
        &client
            .kbs_get_resource(&session, &key, "locked/key/b")
            .unwrap()[..],
        b"locked/key/b"
    );
    assert_eq!(
        status(
            client
                .kbs_get_resource(&session, &key, "open/key/a")
                .unwrap_err()
        )
        .0,
        401
    );
    // Without its own policy, the resource falls back to the one for everything.
    client
        .kbs_delete_policy(&b.token, Some("locked/key/b"))
        .unwrap();
    assert_eq!(
        status(
            client
                .kbs_get_resource(&session, &key, "locked/key/b")
                .unwrap_err()
        )
        .0,
        401
    );
    assert_eq!(
        status(
            client
                .kbs_delete_policy(&b.token, Some("locked/key/b"))
                .unwrap_err()
        )
        .0,
        404
    );
    // Scopes that name nothing are refused.
    for bad in ["..", "a/b", "a/b/c/d"] {
        let (code, _) = status(
            client
                .kbs_set_scoped_policy(&b.token, Some(bad), SAMPLE_POLICY)
                .unwrap_err(),
        );
        assert_eq!(code, 400, "{bad}");
    }
}

/// `/kbs/v0/auth` takes no credential: one address flooding it is slowed down with 429
/// and Retry-After (the problem shape CoCo clients read), and may start again once the
/// wait is over.
#[test]
fn a_client_flooding_the_handshake_is_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), false, &["--kbs-auth-per-second", "2"]);
    let http = reqwest::blocking::Client::new();
    let auth = || {
        http.post(format!("{}/kbs/v0/auth", b.node.url))
            .header("content-type", "application/json")
            .body(r#"{"version":"0.4.0","tee":"sample","extra-params":""}"#)
            .send()
            .unwrap()
    };
    // Two seconds' worth (4) pass at once; the flood past them does not.
    let statuses: Vec<u16> = (0..12).map(|_| auth().status().as_u16()).collect();
    assert!(statuses[..4].iter().all(|&s| s == 200), "{statuses:?}");
    let limited = (0..20)
        .map(|_| auth())
        .find(|r| r.status() == 429)
        .expect("a flood of handshakes was never slowed");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let problem: serde_json::Value = limited.json().unwrap();
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/TooManyRequests"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("rate of KBS handshakes"),
        "{problem}"
    );
    std::thread::sleep(std::time::Duration::from_secs(retry_after));
    assert_eq!(auth().status(), 200);
}
