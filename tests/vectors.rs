//! Every case of shared/evidence vectors.json (copied to tests/data/vectors.json),
//! through the `veritee verify` command: the result, the TCB status and advisories, and
//! the values a verifier must extract. A case in vectors.json that this table does not
//! map fails the test, so new evidence cannot be skipped silently.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn data(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/veritee-verify/tests/data")
        .join(rel)
        .display()
        .to_string()
}

/// One `veritee verify` invocation of a case.
struct Run {
    evidence: &'static str,
    collateral: &'static [&'static str],
    anchors: &'static [&'static str],
    at: &'static str,
    report_data: Option<&'static str>,
    /// Extracted values that must appear: (JSON pointer, expected string).
    values: &'static [(&'static str, &'static str)],
}

const fn run(evidence: &'static str, at: &'static str) -> Run {
    Run {
        evidence,
        collateral: &[],
        anchors: &[],
        at,
        report_data: None,
        values: &[],
    }
}

fn cases() -> BTreeMap<&'static str, Vec<Run>> {
    let mut m = BTreeMap::new();
    m.insert(
        "sgx-dcapqvl",
        vec![Run {
            collateral: &["dcap/sgx_quote_collateral.json"],
            report_data: Some("48656c6c6f2c20776f726c6421"),
            values: &[
                (
                    "/measurements/mrenclave",
                    "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
                ),
                (
                    "/signer",
                    "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
                ),
                ("/details/fmspc", "00a067110000"),
            ],
            ..run("dcap/sgx_quote", "2025-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "tdx-dcapqvl",
        vec![Run {
            collateral: &["dcap/tdx_quote_collateral.json"],
            report_data: Some(
                "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20",
            ),
            values: &[
                (
                    "/measurements/mrtd",
                    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
                ),
                ("/details/fmspc", "b0c06f000000"),
            ],
            ..run("dcap/tdx_quote", "2025-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "tdx-dcapqvl-tdx-quote.hex",
        vec![Run {
            collateral: &["dcap/tdx_quote_collateral.json"],
            ..run("dcap/tdx-quote.hex", "2025-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "tdx-dcapqvl-quote-from-tappd.hex",
        vec![Run {
            collateral: &["dcap/tdx_quote_collateral.json"],
            ..run("dcap/quote-from-tappd.hex", "2025-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "tdx-dcapqvl-outdated",
        vec![Run {
            collateral: &["dcap/tdx_quote_outdated_collateral.json"],
            ..run("dcap/tdx_quote_outdated", "2026-03-01T00:00:00Z")
        }],
    );
    m.insert(
        "tdx-00806f050000-quote_tdx_00806f050000.dat",
        vec![Run {
            collateral: &["dcap/tdx_00806f050000_2025-02_from_dcap-rs.json"],
            ..run("dcap/quote_tdx_00806f050000.dat", "2025-02-13T04:00:32Z")
        }],
    );
    m.insert(
        "snp-trustee-milan-vcek",
        vec![Run {
            collateral: &["snp/test-vcek.der", "snp/milan_ask_ark_asvk.pem"],
            ..run("snp/test-report.bin", "2026-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "snp-trustee-milan-vlek",
        vec![Run {
            collateral: &["snp/test-vlek.der", "snp/milan_ask_ark_asvk.pem"],
            ..run("snp/test-vlek-report.bin", "2025-06-01T00:00:00Z")
        }],
    );
    m.insert(
        "snp-virtee-milan",
        vec![Run {
            collateral: &["snp/vcek_milan.der", "snp/cert_chain_milan"],
            ..run("snp/report_milan.hex", "2026-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "az-snp-evidence-v1.json",
        vec![Run {
            report_data: Some("6368616c6c656e6765"),
            values: &[(
                "/measurements/pcr0",
                "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
            )],
            ..run("azure/evidence-v1.json", "2026-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "az-snp-evidence-v2.json",
        vec![Run {
            report_data: Some(
                "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef",
            ),
            values: &[("/measurements/pcr0", "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7")],
            ..run("azure/evidence-v2.json", "2026-07-01T00:00:00Z")
        }],
    );
    m.insert(
        "nitro-valid-attestation-doc-base64",
        vec![Run {
            values: &[("/debug", "true")],
            ..run(
                "nitro/valid-attestation-doc-base64",
                "2023-09-18T15:03:30.860Z",
            )
        }],
    );
    m.insert(
        "nitro-valid-attestation-doc-bytes",
        vec![run(
            "nitro/valid-attestation-doc-bytes",
            "2022-10-13T08:58:02.136Z",
        )],
    );
    m.insert(
        "nitro-debug-mode-attestation-doc-bytes",
        vec![Run {
            report_data: Some("68656c6c6f2c20776f726c6421"),
            values: &[("/debug", "true")],
            ..run(
                "nitro/debug-mode-attestation-doc-bytes",
                "2022-10-12T13:50:06.081Z",
            )
        }],
    );
    m.insert(
        "nvidia-nvtrust-sample",
        vec![Run {
            collateral: &["nvidia/hopperCertChain.txt"],
            report_data: Some("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"),
            values: &[("/details/driver_version", "550.90.07")],
            ..run("nvidia/hopperAttestationReport.txt", "2025-01-01T00:00:00Z")
        }],
    );
    m.insert(
        "nitro-evervault-cert-embedded",
        vec![
            Run {
                values: &[(
                    "/measurements/pcr0",
                    "d265a83faa7b4fa0d73b82b6d06253e894445922937d0ee5a74fe4891da9817611a71e71b98e5329232902de3cf419af",
                )],
                ..run("nitro/non-debug-cert-containing-attestation-document-18-1-23.pem", "2023-01-18T13:07:19Z")
            },
            run("nitro/non-debug-cert-containing-attestation-document-18-1-23-der.crt", "2023-01-18T13:07:19Z"),
            Run {
                values: &[("/debug", "true")],
                ..run("nitro/debug-mode-cert-containing-attestation-doc-18-1-23.pem", "2023-01-18T15:10:32Z")
            },
        ],
    );
    m.insert(
        "tpm-go-tpm-tools-gce",
        vec![
            run("tpm/gce-cos-85-no-nonce.pb", "2022-01-01T00:00:00Z"),
            Run {
                report_data: Some("9009"),
                ..run("tpm/gce-cos-85-nonce9009.pb", "2022-01-01T00:00:00Z")
            },
        ],
    );
    m
}

fn pointer_string(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "<absent>".into(),
    }
}

#[test]
fn every_vectors_case_gives_the_expected_result() {
    let vectors: Vec<Value> =
        serde_json::from_str(include_str!("data/vectors.json")).expect("vectors.json parses");
    let table = cases();
    let mut checked = 0;
    for case in &vectors {
        let id = case["id"].as_str().expect("id");
        let runs = table
            .get(id)
            .unwrap_or_else(|| panic!("vectors.json case {id} is not mapped in tests/vectors.rs"));
        let expect = &case["expect"];
        for r in runs {
            let mut args = vec![
                "verify".to_string(),
                "--json".into(),
                "--evidence".into(),
                data(r.evidence),
                "--at".into(),
                r.at.into(),
            ];
            for c in r.collateral {
                args.extend(["--collateral".into(), data(c)]);
            }
            for a in r.anchors {
                args.extend(["--trust-anchor".into(), data(a)]);
            }
            if let Some(rd) = r.report_data {
                args.extend(["--report-data".into(), rd.into()]);
            }
            let out = Command::new(env!("CARGO_BIN_EXE_veritee"))
                .args(&args)
                .output()
                .expect("run veritee");
            let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{id}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            match expect["result"].as_str() {
                Some("ok") => {
                    assert_eq!(json["verified"], true, "{id} ({}): {json}", r.evidence);
                    assert_eq!(out.status.code(), Some(0), "{id}");
                    if let Some(status) = expect.get("tcb_status") {
                        assert_eq!(&json["tcb_status"], status, "{id}");
                    }
                    if let Some(advisories) = expect.get("advisory_ids") {
                        assert_eq!(&json["advisory_ids"], advisories, "{id}");
                    }
                    for (ptr, expected) in r.values {
                        assert_eq!(pointer_string(&json, ptr), *expected, "{id}: {ptr}");
                    }
                }
                Some("error") => {
                    assert_eq!(json["verified"], false, "{id}: {json}");
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "{id}: a rejection, not unusable input"
                    );
                    let error = json["error"].as_str().unwrap_or_default();
                    let reason = expect["reason"].as_str().unwrap_or_default();
                    if reason.starts_with("No matching TCB level") {
                        assert!(error.contains("no matching TCB level"), "{id}: {error}");
                    }
                }
                other => panic!("{id}: unknown expected result {other:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table.values().map(Vec::len).sum::<usize>());
    assert!(checked >= vectors.len());
}

fn verify_with_policy(evidence: &str, collateral: &[&str], at: &str, policy: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).expect("write policy");
    let mut args = vec![
        "verify".to_string(),
        "--json".into(),
        "--evidence".into(),
        data(evidence),
        "--at".into(),
        at.into(),
    ];
    for c in collateral {
        args.extend(["--collateral".into(), data(c)]);
    }
    args.extend(["--policy".into(), policy_path.display().to_string()]);
    let out = Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args(&args)
        .output()
        .expect("run veritee");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).expect("JSON"),
    )
}

fn failed_criteria(v: &Value) -> Vec<String> {
    v["policy"]["failed"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["criterion"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

const TDX_POLICY: &str = r#"
version = 1
tee = ["tdx"]
tcb_status = ["UpToDate", "SWHardeningNeeded"]
allow_debug = false
[measurements]
mrtd = ["91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"]
"#;

#[test]
fn policies_over_real_claims() {
    // The genuine TDX quote meets a policy pinning its MRTD.
    let (code, v) = verify_with_policy(
        "dcap/tdx_quote",
        &["dcap/tdx_quote_collateral.json"],
        "2025-07-01T00:00:00Z",
        TDX_POLICY,
    );
    assert_eq!(
        (code, v["policy"]["decision"].as_str()),
        (0, Some("accept")),
        "{v}"
    );

    // Another TD (OutOfDate platform, other MRTD) fails both criteria, each named.
    let (code, v) = verify_with_policy(
        "dcap/quote_tdx_00806f050000.dat",
        &["dcap/tdx_00806f050000_2025-02_from_dcap-rs.json"],
        "2025-02-13T04:00:32Z",
        TDX_POLICY,
    );
    assert_eq!(code, 1);
    assert_eq!(
        failed_criteria(&v),
        ["tcb_status", "measurements.mrtd"],
        "{v}"
    );

    // An SGX enclave is not a TDX trust domain, and its TCB needs configuration.
    let (code, v) = verify_with_policy(
        "dcap/sgx_quote",
        &["dcap/sgx_quote_collateral.json"],
        "2025-07-01T00:00:00Z",
        TDX_POLICY,
    );
    assert_eq!(code, 1);
    assert_eq!(
        failed_criteria(&v),
        ["tee", "tcb_status", "measurements.mrtd"],
        "{v}"
    );

    // A debug Nitro enclave is refused by a Nitro policy that forbids debug.
    let nitro = "version = 1\ntee = [\"aws-nitro\"]\ntcb_status = [\"NotReported\"]\n";
    let (code, v) = verify_with_policy(
        "nitro/debug-mode-attestation-doc-bytes",
        &[],
        "2022-10-12T13:50:06.081Z",
        nitro,
    );
    assert_eq!(code, 1);
    assert_eq!(failed_criteria(&v), ["allow_debug"], "{v}");
    let (code, _) = verify_with_policy(
        "nitro/valid-attestation-doc-bytes",
        &[],
        "2022-10-13T08:58:02.136Z",
        nitro,
    );
    assert_eq!(code, 0);

    // The default starter policy (UpToDate only) rejects SEV-SNP, whose TCB AMD does not grade.
    let (code, v) = verify_with_policy(
        "snp/test-report.bin",
        &["snp/test-vcek.der", "snp/milan_ask_ark_asvk.pem"],
        "2026-07-01T00:00:00Z",
        "version = 1\ntee = [\"sev-snp\"]\n",
    );
    assert_eq!(code, 1);
    assert_eq!(failed_criteria(&v), ["tcb_status"], "{v}");
}

/// Trustee's az-tdx-vtpm document (not in vectors.json) through `veritee verify`, as an
/// operator checks what a CoCo guest sent: detected, verified with the collateral of
/// its platform, and judged by a policy on the vTPM's PCRs and the TD's MRTD.
#[test]
fn an_azure_tdx_document_verifies_through_the_cli() {
    let policy = r#"
version = 1
tee = ["azure-tdx-vtpm"]
tcb_status = ["OutOfDate"]
allow_debug = false
[measurements]
mrtd = ["024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b"]
pcr0 = ["782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273"]
"#;
    let collateral = ["dcap/tdx_00806f050000_2025-02_from_dcap-rs.json"];
    let (code, json) = verify_with_policy(
        "azure/tdx-evidence-v1.json",
        &collateral,
        "2025-02-13T04:00:32Z",
        policy,
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["tee"], "azure-tdx-vtpm", "{json}");
    assert_eq!(json["policy"]["decision"], "accept", "{json}");
    let other_pcr = policy.replace("782b20b1", "00000000");
    let (code, json) = verify_with_policy(
        "azure/tdx-evidence-v1.json",
        &collateral,
        "2025-02-13T04:00:32Z",
        &other_pcr,
    );
    assert_ne!(code, 0, "{json}");
    assert_eq!(failed_criteria(&json), ["measurements.pcr0"], "{json}");
}
