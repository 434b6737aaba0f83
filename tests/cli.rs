//! The `veritee` command line, end to end: exit codes, JSON output, bad input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn veritee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run veritee")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }
}

const NONCE: &str = "00112233445566778899aabbccddeeff";

fn setup() -> Setup {
    let s = Setup {
        dir: tempfile::tempdir().unwrap(),
    };
    let o = veritee(&["vendor", "init", "--dir", &s.s("vendor")]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(s.p("vendor/root.pem").exists());
    let o = veritee(&[
        "platform",
        "init",
        "--dir",
        &s.s("machine"),
        "--vendor",
        &s.s("vendor"),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(s.p("enclave.wat"), b"(module)").unwrap();
    s
}

fn attest(s: &Setup, out: &str, extra: &[&str]) {
    let mut args: Vec<String> = vec![
        "attest".into(),
        "--platform".into(),
        s.s("machine"),
        "--enclave".into(),
        s.s("enclave.wat"),
        "--report-data".into(),
        NONCE.into(),
        "--out".into(),
        s.s(out),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = veritee(&refs);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

fn verify(s: &Setup, evidence: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify".to_string(),
        "--evidence".into(),
        s.s(evidence),
        "--trust-anchor".into(),
        s.s("vendor/root.pem"),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    veritee(&refs)
}

#[test]
fn attest_and_verify_in_every_encoding() {
    let s = setup();
    for format in ["raw", "hex", "base64"] {
        let name = format!("evidence.{format}");
        attest(&s, &name, &["--format", format]);
        let o = verify(&s, &name, &["--report-data", NONCE]);
        assert_eq!(
            code(&o),
            0,
            "{format}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let v = json(&o);
        assert_eq!(v["verified"], true);
        assert_eq!(v["tee"], "simulated");
        assert_eq!(v["simulated"], true);
        assert_eq!(v["tcb_status"], "UpToDate");
        assert!(v["measurements"]["measurement"].as_str().unwrap().len() == 96);
        assert!(v["report_data"].as_str().unwrap().starts_with(NONCE));
        assert_eq!(v["policy"], Value::Null);
        assert_eq!(v.get("error"), None);
    }
}

#[test]
fn policies_accept_and_reject_with_reasons() {
    let s = setup();
    attest(&s, "evidence.bin", &[]);
    let o = veritee(&["policy", "init", "--out", &s.s("hw.toml")]);
    assert_eq!(code(&o), 0);
    let o = verify(&s, "evidence.bin", &["--policy", &s.s("hw.toml")]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["verified"], true);
    assert_eq!(v["policy"]["decision"], "reject");
    let criteria: Vec<&str> = v["policy"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["criterion"].as_str().unwrap())
        .collect();
    assert_eq!(criteria, ["tee", "allow_simulated"]);

    let o = veritee(&[
        "policy",
        "init",
        "--allow-simulated",
        "--out",
        &s.s("dev.toml"),
    ]);
    assert_eq!(code(&o), 0);
    let o = verify(&s, "evidence.bin", &["--policy", &s.s("dev.toml")]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(json(&o)["policy"]["decision"], "accept");

    // Debug enclaves are refused by the same policy.
    attest(&s, "debug.bin", &["--debug"]);
    let o = verify(&s, "debug.bin", &["--policy", &s.s("dev.toml")]);
    assert_eq!(code(&o), 1);
    assert_eq!(json(&o)["policy"]["failed"][0]["criterion"], "allow_debug");

    // policy init does not overwrite.
    let o = veritee(&["policy", "init", "--out", &s.s("dev.toml")]);
    assert_eq!(code(&o), 2);
}

#[test]
fn evidence_older_than_the_policy_allows_is_rejected() {
    let s = setup();
    attest(&s, "evidence.bin", &[]);
    veritee(&[
        "policy",
        "init",
        "--allow-simulated",
        "--out",
        &s.s("dev.toml"),
    ]);
    let text = std::fs::read_to_string(s.p("dev.toml"))
        .unwrap()
        .replace("# max_evidence_age = \"10m\"", "max_evidence_age = \"10m\"");
    std::fs::write(s.p("aged.toml"), text).unwrap();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let o = verify(
        &s,
        "evidence.bin",
        &["--policy", &s.s("aged.toml"), "--at", &later],
    );
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        json(&o)["policy"]["failed"][0]["criterion"],
        "max_evidence_age"
    );
}

#[test]
fn rejected_evidence_exits_1_and_unusable_input_exits_2() {
    let s = setup();
    attest(&s, "evidence.bin", &[]);
    let o = verify(&s, "evidence.bin", &["--report-data", "ff"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["verified"], false);
    assert_eq!(v["tee"], "simulated");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("report data mismatch")
    );

    let bytes = std::fs::read(s.p("evidence.bin")).unwrap();
    std::fs::write(s.p("short.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let o = verify(&s, "short.bin", &[]);
    assert_eq!(code(&o), 2);
    assert!(json(&o)["error"].as_str().unwrap().contains("truncated"));

    let o = verify(&s, "missing.bin", &[]);
    assert_eq!(code(&o), 2);
    assert!(
        json(&o)["error"]
            .as_str()
            .unwrap()
            .contains("cannot read evidence")
    );

    std::fs::write(s.p("garbage.bin"), b"\x01\x02\x03 not evidence at all").unwrap();
    let o = verify(&s, "garbage.bin", &[]);
    assert_eq!(code(&o), 2);
    assert!(
        json(&o)["error"]
            .as_str()
            .unwrap()
            .contains("not recognised")
    );

    let o = verify(&s, "evidence.bin", &["--at", "yesterday"]);
    assert_eq!(code(&o), 2);
    assert!(json(&o)["error"].as_str().unwrap().contains("RFC 3339"));

    // Six years on, the machine certificate has expired.
    let o = verify(&s, "evidence.bin", &["--at", "2033-01-01T00:00:00Z"]);
    assert_eq!(code(&o), 1);
    assert!(
        json(&o)["error"]
            .as_str()
            .unwrap()
            .contains("not valid at 2033")
    );
}

#[test]
fn revoked_machine_is_refused() {
    let s = setup();
    attest(&s, "evidence.bin", &[]);
    let o = veritee(&[
        "vendor",
        "revoke",
        "--dir",
        &s.s("vendor"),
        "--platform",
        &s.s("machine"),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let o = verify(
        &s,
        "evidence.bin",
        &["--collateral", &s.s("vendor/platform-ca.crl.pem")],
    );
    assert_eq!(code(&o), 1);
    assert!(json(&o)["error"].as_str().unwrap().contains("revoked"));
    // After refreshing its collateral the machine's own evidence carries the revocation.
    let o = veritee(&[
        "platform",
        "refresh",
        "--dir",
        &s.s("machine"),
        "--vendor",
        &s.s("vendor"),
    ]);
    assert_eq!(code(&o), 0);
    attest(&s, "evidence2.bin", &[]);
    assert_eq!(code(&verify(&s, "evidence2.bin", &[])), 1);
}

#[test]
fn tcb_recovery_makes_machines_out_of_date() {
    let s = setup();
    attest(&s, "evidence.bin", &[]);
    let o = veritee(&[
        "vendor",
        "tcb",
        "--dir",
        &s.s("vendor"),
        "--latest-svn",
        "3",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let o = verify(
        &s,
        "evidence.bin",
        &["--collateral", &s.s("vendor/tcb-info.json")],
    );
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_eq!(v["tcb_status"], "OutOfDate");
    assert_eq!(v["advisory_ids"].as_array().unwrap().len(), 1);
}

#[test]
fn signed_enclaves_carry_their_signer() {
    let s = setup();
    let key =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P384)
            .unwrap();
    let pem = veritee_x509::pem::encode("PRIVATE KEY", key.to_pkcs8().unwrap().expose());
    std::fs::write(s.p("signer.pem"), pem).unwrap();
    attest(
        &s,
        "signed.bin",
        &[
            "--signer-key",
            &s.s("signer.pem"),
            "--security-version",
            "5",
        ],
    );
    let o = verify(&s, "signed.bin", &[]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    let expected = hex::encode(veritee_crypto::digest::sha384(
        &key.public_key_spki().unwrap(),
    ));
    assert_eq!(v["signer"], expected);
    assert_eq!(v["security_version"], 5);
    std::fs::write(
        s.p("bad.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let o = veritee(&[
        "attest",
        "--platform",
        &s.s("machine"),
        "--enclave",
        &s.s("enclave.wat"),
        "--report-data",
        NONCE,
        "--out",
        &s.s("x.bin"),
        "--signer-key",
        &s.s("bad.pem"),
    ]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("signer key"));
}

#[test]
fn policy_check_explains_mistakes() {
    let s = setup();
    veritee(&["policy", "init", "--tee", "tdx", "--out", &s.s("p.toml")]);
    let o = veritee(&["policy", "check", &s.s("p.toml")]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("accepting tdx"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("warning: no `measurements`"));
    std::fs::write(
        s.p("bad.toml"),
        "version = 1\ntee = [\"tdx\"]\nallow_debugg = true\n",
    )
    .unwrap();
    let o = veritee(&["policy", "check", &s.s("bad.toml")]);
    assert_eq!(code(&o), 2);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("unknown field `allow_debugg`") && out.contains("line 3"),
        "{out}"
    );
    // verify with an invalid policy is unusable input.
    attest(&s, "evidence.bin", &[]);
    let o = verify(&s, "evidence.bin", &["--policy", &s.s("bad.toml")]);
    assert_eq!(code(&o), 2);
}

#[test]
fn private_state_is_0600() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    for f in [
        "vendor/root.key",
        "vendor/platform-ca.key",
        "vendor/tcb-signing.key",
        "machine/attestation.key",
        "machine/sealing-root.key",
    ] {
        let mode = std::fs::metadata(s.p(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let o = veritee(&["vendor", "init", "--dir", &s.s("vendor")]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to overwrite"));
}

#[test]
fn demo_runs_the_tour() {
    let dir = tempfile::tempdir().unwrap();
    let o = veritee(&["demo", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for expected in [
        "policy: ACCEPT",
        "policy: REJECT",
        "OutOfDate",
        "report data mismatch",
        "revoked",
        "What the host saw",
        "the secret, the disk key or an imported key appears on the wire: false; in the host's store: false; in the logs: false",
        "a man in the middle's provider key: refused",
        "before the vendor records whose machine it is: refused",
        "validated vendor: machine",
        "payments/card-key (aes-256-gcm, may encrypt, decrypt): confirmed by the enclave",
        "sign with invoice-signer: verifies with its public key outside the enclave",
        "sign with card-key: refused (key payments/card-key may not be used to sign",
        "payments/hsm-key, wrapped by the customer's own tooling (CKM_RSA_AES_KEY_WRAP",
        "its wrapped key swapped on the way: refused",
        "encrypt under refund-key: the endpoint answered \"active\"",
        "encrypt under legacy-key: refused (key payments/legacy-key was revoked by its owner",
        "the tenant alone disables card-key: refused",
        "with 1 approval of 2: refused",
        "with 2 approvals of 2: card-key is disabled for good",
        "the same approvals again: refused",
        "a quorum token to export card-key: refused",
        "POST /kbs/v0/attest",
        "kbs.resource.release default/key/disk (ok)",
        "secret.release",
        "archive\n      orders",
        "holds key orders",
        "every chunk checked",
        "dropped http://",
        "A remembers the note and counts on from 3 to 4; B goes to 5",
        "neither host's store holds the note",
        "stored in the security module",
        "slots     2",
        "unlock.wat: exit 0",
        "volume orders-volume unlocked with a passphrase of 35 bytes",
        "the passphrase is in no host's files, store or log",
        "existing authorization",
        "measured, seed released by the SM, ran",
        "workload HMAC does not match",
        "key was rotated",
        "signers: signer",
        "withheld by the security context",
        "aggregate.out: count 7",
        "Tour complete",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    // The TPM target's part runs where swtpm is installed (CI requires it).
    if veritee_tpm::swtpm::installed() || std::env::var_os("VERITEE_REQUIRE_SWTPM").is_some() {
        for expected in [
            "tpm2, handle",
            "unlocked with a passphrase",
            "the TPM did not unseal the authorization",
            "a policy check failed",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
    }
    assert!(Path::new(&dir.path().join("evidence.bin")).exists());
}

#[test]
fn attest_auto_says_when_there_is_no_hardware() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.bin");
    let o = veritee(&[
        "attest",
        "--platform",
        "auto",
        "--report-data",
        NONCE,
        "--out",
        out.to_str().unwrap(),
    ]);
    // This machine has no TEE: the command must say what it looked for, and fail cleanly.
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no TEE hardware found") && err.contains("configfs-tsm"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_closed_standard_output_ends_a_command_quietly() {
    let s = setup();
    attest(&s, "evidence.bin", &[]);
    // As `veritee verify ... | head -0`: the reader is gone before anything is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args([
            "verify",
            "--evidence",
            &s.s("evidence.bin"),
            "--trust-anchor",
            &s.s("vendor/root.pem"),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run veritee");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code(&out), 0, "{stderr}");
}

#[test]
fn coco_sample_evidence_is_read_but_accepted_only_by_a_policy_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("sample.json");
    std::fs::write(&evidence, r#"{"svn":"1","report_data":"AAECAw=="}"#).unwrap();
    let strict = dir.path().join("strict.toml");
    let o = veritee(&["policy", "init", "--out", strict.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let lenient = dir.path().join("sample.toml");
    std::fs::write(
        &lenient,
        "version = 1\ntee = [\"coco-sample\"]\nallow_simulated = true\ntcb_status = [\"NotReported\"]\n",
    )
    .unwrap();
    let ev = evidence.to_str().unwrap();
    let o = veritee(&[
        "verify",
        "--evidence",
        ev,
        "--report-data",
        "00010203",
        "--policy",
        strict.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("UNSIGNED sample evidence"), "{out}");
    assert!(out.contains("policy: REJECT"), "{out}");
    let o = veritee(&[
        "verify",
        "--evidence",
        ev,
        "--report-data",
        "00010203",
        "--policy",
        lenient.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let o = veritee(&[
        "verify",
        "--evidence",
        ev,
        "--report-data",
        "00010204",
        "--policy",
        lenient.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_coco_tdx_document_verifies_as_its_quote() {
    use base64::Engine;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/veritee-verify/tests/data/dcap");
    let quote = std::fs::read(data.join("tdx_quote")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("tdx.json");
    std::fs::write(
        &doc,
        serde_json::json!({
            "cc_eventlog": null,
            "quote": base64::engine::general_purpose::STANDARD.encode(quote),
        })
        .to_string(),
    )
    .unwrap();
    let collateral = data.join("tdx_quote_collateral.json");
    let o = veritee(&[
        "verify",
        "--evidence",
        doc.to_str().unwrap(),
        "--collateral",
        collateral.to_str().unwrap(),
        "--at",
        "2025-07-01T00:00:00Z",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("verified tdx evidence"), "{out}");
}

#[test]
fn coco_snp_and_nvidia_documents_verify_as_guests_send_them() {
    use base64::Engine;
    use sev::parser::ByteParser;
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/veritee-verify/tests/data");
    let dir = tempfile::tempdir().unwrap();
    // SNP: the report's fields (the sev crate's serde form) and its certificate table.
    let report = std::fs::read(data.join("snp/test-report.bin")).unwrap();
    let vcek = std::fs::read(data.join("snp/test-vcek.der")).unwrap();
    let snp = dir.path().join("snp.json");
    std::fs::write(
        &snp,
        serde_json::json!({
            "attestation_report": sev::firmware::guest::AttestationReport::from_bytes(&report).unwrap(),
            "cert_chain": [sev::firmware::host::CertTableEntry {
                cert_type: sev::firmware::host::CertType::VCEK,
                data: vcek,
            }],
        })
        .to_string(),
    )
    .unwrap();
    verifies_as(&snp, "2026-07-01T00:00:00Z", "sev-snp");
    // NVIDIA: one Hopper GPU of CoCo's device list.
    let gpu = dir.path().join("gpu.json");
    std::fs::write(
        &gpu,
        serde_json::json!({"device_evidence_list": [{
            "arch": "HOPPER",
            "evidence": std::fs::read_to_string(data.join("nvidia/hopperAttestationReport.txt")).unwrap().trim(),
            "certificate": base64::engine::general_purpose::STANDARD
                .encode(std::fs::read(data.join("nvidia/hopperCertChain.txt")).unwrap()),
        }]})
        .to_string(),
    )
    .unwrap();
    verifies_as(&gpu, "2025-01-01T00:00:00Z", "nvidia-h100");
}

/// `veritee verify --evidence FILE --at AT` succeeds and names `kind`.
fn verifies_as(evidence: &std::path::Path, at: &str, kind: &str) {
    let o = veritee(&[
        "verify",
        "--evidence",
        evidence.to_str().unwrap(),
        "--at",
        at,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("verified {kind} evidence")), "{out}");
}
