//! The RCAR handshake (Request, Challenge, Attestation, Response): reading the guest's
//! messages and binding its runtime data to its evidence.
//!
//! The guest hashes the canonical JSON (RFC 8785) of
//! `{"tee-pubkey": .., "nonce": .., "additional-evidence": ..}` with SHA-384 and puts
//! the digest in its evidence's report data; [`runtime_data_digest`] computes the same
//! digest here, so that the evidence vouches for the very key the resource will be
//! sealed to, and for this broker's nonce.

use crate::KbsError;
use base64::Engine;
use kbs_types::{Attestation, Challenge, InitData, Request, Tee};
use veritee_attest::TeeKind;

/// The protocol version spoken, exactly (as Trustee's KBS requires it).
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The cookie that names a KBS session.
pub const SESSION_COOKIE: &str = "kbs-session-id";
/// Bytes of randomness in a challenge's nonce.
pub const NONCE_LEN: usize = 32;
/// Largest Request message accepted.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;
/// Largest Attestation message accepted (TDX evidence carries an event log).
pub const MAX_ATTESTATION_LEN: usize = 4 * 1024 * 1024;
/// Largest init-data document accepted.
pub const MAX_INIT_DATA_LEN: usize = 256 * 1024;

fn parse<T: serde::de::DeserializeOwned>(
    what: &'static str,
    body: &[u8],
    limit: usize,
) -> Result<T, KbsError> {
    if body.len() > limit {
        return Err(KbsError::TooLarge {
            what,
            size: body.len(),
            limit,
        });
    }
    serde_json::from_slice(body).map_err(|e| KbsError::malformed(what, e))
}

/// Reads the guest's Request (`POST /kbs/v0/auth`) and checks its version.
pub fn parse_request(body: &[u8]) -> Result<Request, KbsError> {
    let request: Request = parse("KBS Request", body, MAX_REQUEST_LEN)?;
    if request.version != PROTOCOL_VERSION {
        return Err(KbsError::Version {
            got: request.version,
        });
    }
    Ok(request)
}

/// The Challenge for a fresh nonce. `extra-params` is empty: this broker picks no
/// hash algorithm, so the guest uses SHA-384, the protocol's default.
pub fn challenge(nonce: &[u8; NONCE_LEN]) -> Challenge {
    Challenge {
        nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
        extra_params: serde_json::Value::String(String::new()),
    }
}

/// Reads the guest's Attestation (`POST /kbs/v0/attest`).
pub fn parse_attestation(body: &[u8]) -> Result<Attestation, KbsError> {
    parse("KBS Attestation", body, MAX_ATTESTATION_LEN)
}

/// Checks that the Attestation answers the session's challenge (constant time).
pub fn check_nonce(attestation: &Attestation, challenge: &Challenge) -> Result<(), KbsError> {
    if veritee_crypto::ct_eq(
        attestation.runtime_data.nonce.as_bytes(),
        challenge.nonce.as_bytes(),
    ) {
        Ok(())
    } else {
        Err(KbsError::malformed(
            "KBS Attestation",
            "runtime-data.nonce is not the nonce this session was challenged with",
        ))
    }
}

/// The SHA-384 digest the guest's evidence must carry as its report data.
pub fn runtime_data_digest(attestation: &Attestation) -> Result<[u8; 48], KbsError> {
    let runtime = serde_json::json!({
        "tee-pubkey": attestation.runtime_data.tee_pubkey,
        "nonce": attestation.runtime_data.nonce,
        "additional-evidence": attestation.tee_evidence.additional_evidence,
    });
    let canonical = serde_json_canonicalizer::to_vec(&runtime)
        .map_err(|e| KbsError::malformed("KBS runtime data", e))?;
    Ok(veritee_crypto::digest::sha384(&canonical))
}

/// The guest's primary evidence as veritee's verifiers read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryEvidence {
    /// The TEE kind, from the Request's `tee`.
    pub kind: TeeKind,
    /// The evidence bytes: a DCAP quote, an SNP report, or the JSON document the
    /// verifier reads.
    pub bytes: Vec<u8>,
    /// Collateral the evidence carries (an SNP guest's VCEK or VLEK certificate).
    pub collateral: Vec<Vec<u8>>,
}

/// How CoCo's SNP attester sends a report: the `sev` crate's serde form of the report
/// (its fields, not its bytes) and the certificate table the firmware returned.
#[derive(serde::Deserialize)]
struct SnpEvidence {
    attestation_report: sev::firmware::guest::AttestationReport,
    #[serde(default)]
    cert_chain: Option<Vec<sev::firmware::host::CertTableEntry>>,
}

/// The report's bytes (which its signature covers) and its endorsement key
/// certificates, from CoCo's SNP document.
fn snp_evidence(evidence: &serde_json::Value) -> Result<(Vec<u8>, Vec<Vec<u8>>), KbsError> {
    use sev::parser::ByteParser;
    let read: SnpEvidence = serde_json::from_value(evidence.clone())
        .map_err(|e| KbsError::malformed("SNP evidence", e))?;
    let bytes = read.attestation_report.to_bytes().map_err(|e| {
        KbsError::malformed("SNP evidence", format!("the report does not encode: {e}"))
    })?;
    // The ARK and ASK are AMD's, built into the verifier; only the report's own
    // endorsement key is taken from the guest (its chain to AMD is checked).
    let endorsement = read
        .cert_chain
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            matches!(
                e.cert_type,
                sev::firmware::host::CertType::VCEK | sev::firmware::host::CertType::VLEK
            )
        })
        .map(|e| e.data)
        .collect();
    Ok((bytes.as_ref().to_vec(), endorsement))
}

/// The primary evidence, read as the CoCo attester of `tee` (the kind the guest named
/// in its Request) writes it: `sample` (its JSON document), `tdx` and `sgx` (a base64
/// DCAP quote in `{"quote": ..}`), `snp` (the report's fields and the certificate
/// table), `az-snp-vtpm` (the HCL report and TPM quote document, which veritee's Azure
/// verifier reads as it is). Other kinds, and additional (device) evidence, are refused
/// by name.
pub fn primary_evidence(tee: Tee, attestation: &Attestation) -> Result<PrimaryEvidence, KbsError> {
    let evidence = &attestation.tee_evidence.primary_evidence;
    let document =
        || serde_json::to_vec(evidence).map_err(|e| KbsError::malformed("primary evidence", e));
    // The same reading as `veritee verify`'s.
    let quote = |what: &'static str| match veritee_attest::encoding::coco_quote(evidence) {
        Some(read) => read.map_err(|e| KbsError::malformed(what, e)),
        None => Err(KbsError::malformed(
            what,
            "not a {\"quote\": base64, \"cc_eventlog\"?, \"aa_eventlog\"?} document",
        )),
    };
    let mut collateral = Vec::new();
    let (kind, bytes) = match tee {
        Tee::Sample => (TeeKind::CocoSample, document()?),
        Tee::Tdx => (TeeKind::Tdx, quote("TDX evidence")?),
        Tee::Sgx => (TeeKind::Sgx, quote("SGX evidence")?),
        Tee::Snp => {
            let (report, certificates) = snp_evidence(evidence)?;
            collateral = certificates;
            (TeeKind::SevSnp, report)
        }
        Tee::AzSnpVtpm => (TeeKind::AzureSnpVtpm, document()?),
        Tee::AzTdxVtpm => (TeeKind::AzureTdxVtpm, document()?),
        other => {
            return Err(KbsError::Unsupported(format!(
                "evidence of the CoCo TEE kind {:?} is not verified by this broker yet; it verifies \"tdx\", \"sgx\", \"snp\", \"az-snp-vtpm\", \"az-tdx-vtpm\" and \"sample\" (when a policy allows it)",
                other.as_ref()
            )));
        }
    };
    Ok(PrimaryEvidence {
        kind,
        bytes,
        collateral,
    })
}

/// One device's evidence from the guest's additional evidence, ready for veritee's
/// verifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvidence {
    /// The device kind.
    pub kind: TeeKind,
    /// What the device's verifier reads.
    pub bytes: Vec<u8>,
    /// The report data the device must carry: the digest of the guest's runtime data
    /// without the additional evidence (which holds this very report), cut to what
    /// the device reports.
    pub expected_report_data: Vec<u8>,
}

/// Bytes of the nonce an NVIDIA device report carries.
pub const NVIDIA_NONCE_LEN: usize = 32;
/// Devices accepted in one guest's additional evidence.
pub const MAX_DEVICES: usize = 16;

/// How CoCo's NVIDIA attester lists a guest's GPUs and switches.
#[derive(serde::Deserialize)]
struct NvidiaEvidence {
    device_evidence_list: Vec<NvidiaDevice>,
}

#[derive(serde::Deserialize)]
struct NvidiaDevice {
    arch: String,
    /// The SPDM report, hex (older attesters) or base64.
    evidence: String,
    /// The device's certificate chain, PEM, base64-encoded.
    certificate: String,
}

/// What veritee's NVIDIA verifier reads for one device of CoCo's list: the report (hex)
/// and the certificate chain (PEM).
fn nvidia_device(device: &NvidiaDevice) -> Result<Vec<u8>, KbsError> {
    if !device.arch.eq_ignore_ascii_case("hopper") {
        return Err(KbsError::Unsupported(format!(
            "NVIDIA {} devices are not verified by this broker; it verifies Hopper GPUs",
            device.arch
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let report = hex::decode(device.evidence.trim())
        .or_else(|_| b64.decode(device.evidence.trim()))
        .map_err(|_| {
            KbsError::malformed("NVIDIA evidence", "the report is neither hex nor base64")
        })?;
    let chain = b64
        .decode(device.certificate.trim())
        .ok()
        .and_then(|pem| String::from_utf8(pem).ok())
        .ok_or_else(|| {
            KbsError::malformed(
                "NVIDIA evidence",
                "the certificate is not base64 of PEM text",
            )
        })?;
    serde_json::to_vec(&serde_json::json!({
        "report": hex::encode(report),
        "certificate_chain": chain,
    }))
    .map_err(|e| KbsError::malformed("NVIDIA evidence", e))
}

/// A document a CoCo attester writes whose bytes are not what veritee's verifiers read
/// (an SNP report's fields and certificate table, or one NVIDIA device's list), made
/// into what they read; `None` for anything else. `veritee verify` uses it, so that an
/// operator can check the evidence a guest sent.
pub fn coco_document(bytes: &[u8]) -> Option<Result<PrimaryEvidence, KbsError>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let fields = value.as_object()?;
    if fields.contains_key("attestation_report") {
        return Some(
            snp_evidence(&value).map(|(bytes, collateral)| PrimaryEvidence {
                kind: TeeKind::SevSnp,
                bytes,
                collateral,
            }),
        );
    }
    if fields.contains_key("device_evidence_list") {
        let read = serde_json::from_value::<NvidiaEvidence>(value)
            .map_err(|e| KbsError::malformed("NVIDIA evidence", e))
            .and_then(|list| match &list.device_evidence_list[..] {
                [device] => nvidia_device(device),
                devices => Err(KbsError::malformed(
                    "NVIDIA evidence",
                    format!("{} devices listed; give one at a time", devices.len()),
                )),
            });
        return Some(read.map(|bytes| PrimaryEvidence {
            kind: TeeKind::NvidiaH100,
            bytes,
            collateral: Vec::new(),
        }));
    }
    None
}

/// The guest's additional (device) evidence, as CoCo's attesters send it: a JSON
/// object, in a string, from CoCo TEE kind to evidence. NVIDIA Hopper GPUs are read;
/// other devices are refused by name (never ignored: their evidence is bound into the
/// primary evidence's report data).
pub fn additional_evidence(attestation: &Attestation) -> Result<Vec<DeviceEvidence>, KbsError> {
    let text = &attestation.tee_evidence.additional_evidence;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let devices: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| KbsError::malformed("additional evidence", e))?;
    let runtime = serde_json::json!({
        "tee-pubkey": attestation.runtime_data.tee_pubkey,
        "nonce": attestation.runtime_data.nonce,
    });
    let canonical = serde_json_canonicalizer::to_vec(&runtime)
        .map_err(|e| KbsError::malformed("KBS runtime data", e))?;
    let digest = veritee_crypto::digest::sha384(&canonical);
    let mut out = Vec::new();
    for (tee, evidence) in devices {
        if tee != "nvidia" {
            return Err(KbsError::Unsupported(format!(
                "additional evidence of the kind {tee:?} is not verified by this broker; it verifies \"nvidia\" (Hopper GPUs)"
            )));
        }
        let list: NvidiaEvidence = serde_json::from_value(evidence)
            .map_err(|e| KbsError::malformed("NVIDIA evidence", e))?;
        for device in list.device_evidence_list {
            if out.len() == MAX_DEVICES {
                return Err(KbsError::TooLarge {
                    what: "additional evidence (devices)",
                    size: MAX_DEVICES + 1,
                    limit: MAX_DEVICES,
                });
            }
            let bytes = nvidia_device(&device)?;
            out.push(DeviceEvidence {
                kind: TeeKind::NvidiaH100,
                bytes,
                expected_report_data: digest[..NVIDIA_NONCE_LEN].to_vec(),
            });
        }
    }
    Ok(out)
}

/// How evidence of a kind binds the guest's init-data, as CoCo's guests boot with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitDataBinding {
    /// The digest, zero-padded to the field's length, is this claim (a measurement,
    /// or a detail in hex): TDX's MRCONFIGID, SNP's HOST_DATA, SGX's CONFIGID.
    Field(&'static str),
    /// The SHA-256 digest was extended once into this TPM PCR (SHA-256 bank) from
    /// zero: the PCR is `SHA-256(32 zero bytes || digest)`. Azure's vTPM guests, PCR 8.
    TpmPcr(u8),
}

/// How evidence of `kind` binds init-data; `None` where this broker knows no binding.
pub fn init_data_binding(kind: TeeKind) -> Option<InitDataBinding> {
    match kind {
        TeeKind::Tdx => Some(InitDataBinding::Field("mrconfigid")),
        TeeKind::SevSnp => Some(InitDataBinding::Field("host_data")),
        TeeKind::Sgx => Some(InitDataBinding::Field("config_id")),
        TeeKind::AzureSnpVtpm | TeeKind::AzureTdxVtpm => Some(InitDataBinding::TpmPcr(8)),
        _ => None,
    }
}

/// The digest of an init-data document by the algorithm it names (`algorithm` in its
/// TOML), as the TEE's configuration field (MRCONFIGID, HOSTDATA) would hold it.
pub fn init_data_digest(init_data: &InitData) -> Result<Vec<u8>, KbsError> {
    #[derive(serde::Deserialize)]
    struct Header {
        algorithm: String,
    }
    if init_data.format != "toml" {
        return Err(KbsError::malformed(
            "init-data",
            format!("format {:?} is not \"toml\"", init_data.format),
        ));
    }
    if init_data.body.len() > MAX_INIT_DATA_LEN {
        return Err(KbsError::TooLarge {
            what: "init-data",
            size: init_data.body.len(),
            limit: MAX_INIT_DATA_LEN,
        });
    }
    let header: Header =
        toml::from_str(&init_data.body).map_err(|e| KbsError::malformed("init-data", e))?;
    let body = init_data.body.as_bytes();
    Ok(match header.algorithm.to_ascii_lowercase().as_str() {
        "sha256" => veritee_crypto::digest::sha256(body).to_vec(),
        "sha384" => veritee_crypto::digest::sha384(body).to_vec(),
        "sha512" => veritee_crypto::digest::sha512(body).to_vec(),
        other => {
            return Err(KbsError::malformed(
                "init-data",
                format!("algorithm {other:?} is not sha256, sha384 or sha512"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwe::{Curve, TeeKeyPair};

    /// A guest's Attestation as kbs_protocol builds it, with the sample attester.
    fn guest_attestation(challenge: &Challenge) -> Attestation {
        let key = TeeKeyPair::generate_ec(Curve::P256).unwrap();
        let runtime_data = kbs_types::RuntimeData {
            nonce: challenge.nonce.clone(),
            tee_pubkey: key.public_jwk().unwrap(),
        };
        let mut attestation = Attestation {
            init_data: None,
            runtime_data,
            tee_evidence: kbs_types::CompositeEvidence {
                primary_evidence: serde_json::Value::Null,
                additional_evidence: String::new(),
            },
        };
        let digest = runtime_data_digest(&attestation).unwrap();
        attestation.tee_evidence.primary_evidence = serde_json::json!({
            "svn": "1",
            "report_data": base64::engine::general_purpose::STANDARD.encode(digest),
        });
        attestation
    }

    #[test]
    fn the_request_must_speak_this_version() {
        let ok = br#"{"version":"0.4.0","tee":"sample","extra-params":""}"#;
        assert_eq!(parse_request(ok).unwrap().tee, Tee::Sample);
        for (body, expect) in [
            (
                &br#"{"version":"0.3.0","tee":"sample","extra-params":""}"#[..],
                "0.3.0",
            ),
            (
                br#"{"version":"0.4.0","tee":"quantum","extra-params":""}"#,
                "malformed",
            ),
            (br#"{"version":"0.4.0","tee":"sample""#, "malformed"),
            (b"", "malformed"),
        ] {
            let err = parse_request(body).unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
        }
        let huge = vec![b' '; MAX_REQUEST_LEN + 1];
        assert!(matches!(
            parse_request(&huge),
            Err(KbsError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_binding_covers_key_nonce_and_additional_evidence() {
        let challenge = challenge(&[7; NONCE_LEN]);
        let attestation = guest_attestation(&challenge);
        check_nonce(&attestation, &challenge).unwrap();
        let digest = runtime_data_digest(&attestation).unwrap();
        let evidence = primary_evidence(Tee::Sample, &attestation).unwrap();
        assert_eq!(evidence.kind, TeeKind::CocoSample);
        assert!(
            String::from_utf8(evidence.bytes)
                .unwrap()
                .contains(&base64::engine::general_purpose::STANDARD.encode(digest))
        );

        let mut other_key = attestation.clone();
        other_key.runtime_data.tee_pubkey = TeeKeyPair::generate_ec(Curve::P256)
            .unwrap()
            .public_jwk()
            .unwrap();
        assert_ne!(runtime_data_digest(&other_key).unwrap(), digest);
        let mut other_nonce = attestation.clone();
        other_nonce.runtime_data.nonce = challenge_nonce_other();
        assert_ne!(runtime_data_digest(&other_nonce).unwrap(), digest);
        assert!(check_nonce(&other_nonce, &challenge).is_err());
        let mut with_device = attestation.clone();
        with_device.tee_evidence.additional_evidence = "{}".into();
        assert_ne!(runtime_data_digest(&with_device).unwrap(), digest);
        assert!(additional_evidence(&with_device).unwrap().is_empty());
        for (devices, expect) in [
            (r#"{"tpm": {}}"#, "\"tpm\""),
            (
                r#"{"nvidia": {"device_evidence_list": [{"arch": "LS10", "evidence": "00", "certificate": ""}]}}"#,
                "LS10",
            ),
            (
                r#"{"nvidia": {"device_evidence_list": [{"arch": "HOPPER", "evidence": "!", "certificate": ""}]}}"#,
                "neither hex nor base64",
            ),
            (
                r#"{"nvidia": {"device_evidence_list": [{"arch": "HOPPER", "evidence": "00", "certificate": "!"}]}}"#,
                "base64 of PEM",
            ),
            (r#"{"nvidia": []"#, "malformed"),
        ] {
            with_device.tee_evidence.additional_evidence = devices.into();
            let err = additional_evidence(&with_device).unwrap_err().to_string();
            assert!(err.contains(expect), "{devices}: {err}");
        }
    }

    fn challenge_nonce_other() -> String {
        challenge(&[8; NONCE_LEN]).nonce
    }

    #[test]
    fn the_digest_is_the_canonical_json_one_the_guest_computes() {
        // Canonical JSON sorts keys and drops whitespace: the digest of the fixed
        // document below is what guest-components' `serialize_json_canonically` and
        // SHA-384 give for it.
        let attestation: Attestation = serde_json::from_str(
            r#"{"init-data":null,"runtime-data":{"nonce":"bm9uY2U=","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"eA","y":"eQ"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}"#,
        )
        .unwrap();
        let expected = veritee_crypto::digest::sha384(
            br#"{"additional-evidence":"","nonce":"bm9uY2U=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"eA","y":"eQ"}}"#,
        );
        assert_eq!(runtime_data_digest(&attestation).unwrap(), expected);
    }

    #[test]
    fn kinds_not_yet_verified_are_named_and_quotes_are_read() {
        let challenge = challenge(&[1; NONCE_LEN]);
        let mut attestation = guest_attestation(&challenge);
        let err = primary_evidence(Tee::Cca, &attestation).unwrap_err();
        assert!(err.to_string().contains("\"cca\""), "{err}");
        assert!(primary_evidence(Tee::Snp, &attestation).is_err());
        // A TDX or SGX document without a quote, or with one that is not base64.
        assert!(primary_evidence(Tee::Tdx, &attestation).is_err());
        attestation.tee_evidence.primary_evidence = serde_json::json!({"quote": "!!"});
        assert!(primary_evidence(Tee::Sgx, &attestation).is_err());
        attestation.tee_evidence.primary_evidence =
            serde_json::json!({"quote": "AAEC", "cc_eventlog": null});
        let read = primary_evidence(Tee::Tdx, &attestation).unwrap();
        assert_eq!((read.kind, read.bytes), (TeeKind::Tdx, vec![0, 1, 2]));
        assert!(read.collateral.is_empty());
    }

    #[test]
    fn init_data_is_hashed_by_the_algorithm_it_names() {
        let body = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nx = \"y\"\n";
        let init = InitData {
            format: "toml".into(),
            body: body.into(),
        };
        assert_eq!(
            init_data_digest(&init).unwrap(),
            veritee_crypto::digest::sha256(body.as_bytes())
        );
        for (format, body) in [
            ("json", body),
            ("toml", "algorithm = \"md5\""),
            ("toml", "[data]\nalgorithm = \"sha256\""),
        ] {
            let init = InitData {
                format: format.into(),
                body: body.into(),
            };
            assert!(init_data_digest(&init).is_err(), "{format} {body}");
        }
    }
}
