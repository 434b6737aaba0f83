//! Verifier for TPM 2.0 quotes by a cloud vTPM whose attestation key (AK) the cloud
//! certifies: Google Compute Engine Shielded VMs, in go-tpm-tools' `attest.Attestation`
//! protobuf ([`proto`]). The TPM structures ([`structures`]) are shared with the Azure
//! verifier.
//!
//! What is checked, at `input.at`:
//! 1. the AK certificate (in the evidence) chains to a trust anchor: the caller's, or
//!    Google's vTPM roots embedded here (`tpm_ek_root_1` with its intermediates 2 and 3,
//!    and the newer `EK/AK CA Root` with `intermediate_v3`); CRLs given as collateral
//!    are applied;
//! 2. the AK public area (TPMT_PUBLIC) holds the certificate's key;
//! 3. every quote is signed by the AK (RSASSA-PKCS1-v1_5 or ECDSA P-256), is a
//!    TPM-generated quote, carries the same extraData (the nonce, returned as report
//!    data for the registry to compare), selects exactly the PCRs given for its bank, and
//!    its PCR digest is the signature hash over those values.
//!
//! The event log is not replayed here: PCR values are what the quotes attest, and a
//! policy on PCRs (or a later event-log appraisal) judges them.

pub mod proto;
pub mod structures;

use proto::{Attestation, ProtoQuote};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use structures::{
    QuoteAttest, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512, TpmPublic, TpmPublicKey,
    TpmSignature, hash_name, rsa_public_key_der, selected_pcr_values,
};
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TcbStatus, TeeKind, Verifier,
    VerifyError, VerifyInput,
};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_x509::{ParsedCrl, RevocationPolicy, verify_chain};

/// TPM_ECC_NIST_P256.
pub const TPM_ECC_NIST_P256: u16 = 0x0003;

const ROOTS: [&[u8]; 2] = [
    include_bytes!("roots/tpm_ek_root_1.cer"),
    include_bytes!("roots/gcp_ek_ak_ca_root.crt"),
];
const INTERMEDIATES: [&[u8]; 3] = [
    include_bytes!("roots/tpm_ek_intermediate_2.crt"),
    include_bytes!("roots/tpm_ek_intermediate_3.crt"),
    include_bytes!("roots/gcp_ek_ak_ca_intermediate_v3.crt"),
];

struct GoogleRoots {
    anchors: Vec<ParsedCertificate>,
    intermediates: Vec<ParsedCertificate>,
}

fn default_roots() -> Result<&'static GoogleRoots, VerifyError> {
    static CELL: OnceLock<Result<GoogleRoots, String>> = OnceLock::new();
    let parse = |all: &[&[u8]]| {
        all.iter()
            .map(|der| ParsedCertificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("embedded Google vTPM certificate: {e}"))
    };
    CELL.get_or_init(|| {
        Ok(GoogleRoots {
            anchors: parse(&ROOTS)?,
            intermediates: parse(&INTERMEDIATES)?,
        })
    })
    .as_ref()
    .map_err(|e| VerifyError::Collateral(e.clone()))
}

/// The embedded Google vTPM roots.
pub fn default_trust_anchors() -> Result<Vec<ParsedCertificate>, VerifyError> {
    Ok(default_roots()?.anchors.clone())
}

/// Collateral: extra certificates (intermediates) and CRLs, DER or PEM.
fn gather(files: &[Vec<u8>]) -> Result<(Vec<ParsedCertificate>, Vec<ParsedCrl>), VerifyError> {
    let collateral = crate::snp::SnpCollateral::gather(files)?;
    let mut certs = collateral.cas;
    certs.extend(collateral.veks);
    Ok((certs, collateral.crls))
}

/// The public key of a TPMT_PUBLIC in the form aws-lc-rs verifies with (and an X.509
/// certificate's subjectPublicKey holds): PKCS#1 `RSAPublicKey` for RSA, an uncompressed
/// point for NIST P-256.
pub fn public_key_bits(key: &TpmPublic) -> Result<Vec<u8>, VerifyError> {
    Ok(match &key.key {
        TpmPublicKey::Rsa { n, e, .. } => {
            let e = e.to_be_bytes();
            let start = e.iter().position(|b| *b != 0).unwrap_or(3);
            rsa_public_key_der(n, &e[start..])?
        }
        TpmPublicKey::Ecc { curve, x, y } => {
            if *curve != TPM_ECC_NIST_P256 || x.len() > 32 || y.len() > 32 {
                return Err(VerifyError::malformed(
                    "TPMT_PUBLIC",
                    format!("ECC curve {curve:#06x} is not NIST P-256"),
                ));
            }
            let mut point = vec![0x04];
            point.extend(core::iter::repeat_n(0, 32 - x.len()));
            point.extend_from_slice(x);
            point.extend(core::iter::repeat_n(0, 32 - y.len()));
            point.extend_from_slice(y);
            point
        }
    })
}

/// The AK as aws-lc-rs takes it, checked against the AK certificate's key.
fn ak_key(ak: &TpmPublic, cert: &ParsedCertificate) -> Result<Vec<u8>, VerifyError> {
    let key = public_key_bits(ak)?;
    if key != cert.public_key_bits() {
        return Err(VerifyError::Inconsistent(format!(
            "the attestation key (ak_pub) is not the key of its certificate (serial {})",
            hex::encode(cert.serial())
        )));
    }
    Ok(key)
}

fn pad_to(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    (trimmed.len() <= len).then(|| {
        let mut out = vec![0u8; len - trimmed.len()];
        out.extend_from_slice(trimmed);
        out
    })
}

/// A digest function: the hash a quote's PCR digest is computed with.
pub type DigestFn = fn(&[u8]) -> Vec<u8>;

/// Verifies that `signature` is the attestation key `ak`'s signature over `attest` (the
/// bytes of a TPMS_ATTEST: a quote, a certification...). RSASSA-PKCS1-v1_5 with
/// SHA-256/384/512 for an RSA key, ECDSA P-256 with SHA-256 for an ECC key; `what`
/// names the structure in errors. Returns the digest function of the signature's hash
/// (a quote's PCR digest is computed with it).
pub fn verify_attest_signature(
    ak: &TpmPublic,
    attest: &[u8],
    signature: &TpmSignature,
    what: &str,
) -> Result<DigestFn, VerifyError> {
    let key = public_key_bits(ak)?;
    let (scheme, digest): (VerificationScheme, DigestFn) =
        match (&ak.key, signature, signature.hash()) {
            (TpmPublicKey::Rsa { .. }, TpmSignature::Rsassa { .. }, TPM_ALG_SHA256) => {
                (VerificationScheme::RsaPkcs1Sha256, |m| {
                    veritee_crypto::digest::sha256(m).to_vec()
                })
            }
            (TpmPublicKey::Rsa { .. }, TpmSignature::Rsassa { .. }, TPM_ALG_SHA384) => {
                (VerificationScheme::RsaPkcs1Sha384, |m| {
                    veritee_crypto::digest::sha384(m).to_vec()
                })
            }
            (TpmPublicKey::Rsa { .. }, TpmSignature::Rsassa { .. }, TPM_ALG_SHA512) => {
                (VerificationScheme::RsaPkcs1Sha512, |m| {
                    veritee_crypto::digest::sha512(m).to_vec()
                })
            }
            (TpmPublicKey::Ecc { .. }, TpmSignature::Ecdsa { .. }, TPM_ALG_SHA256) => {
                (VerificationScheme::EcdsaP256Sha256Fixed, |m| {
                    veritee_crypto::digest::sha256(m).to_vec()
                })
            }
            (_, _, hash) => {
                return Err(VerifyError::malformed(
                    "TPMT_SIGNATURE",
                    format!(
                        "{what}: signature scheme with {} does not fit the attestation key",
                        hash_name(hash)
                    ),
                ));
            }
        };
    let sig_bytes = match signature {
        TpmSignature::Rsassa { sig, .. } | TpmSignature::Rsapss { sig, .. } => sig.clone(),
        TpmSignature::Ecdsa { r, s, .. } => {
            let (Some(mut r), Some(s)) = (pad_to(r, 32), pad_to(s, 32)) else {
                return Err(VerifyError::Signature(format!(
                    "{what}: ECDSA signature components longer than 32 bytes"
                )));
            };
            r.extend_from_slice(&s);
            r
        }
    };
    sign::verify(scheme, &key, attest, &sig_bytes).map_err(|_| {
        VerifyError::Signature(format!(
            "the signature of {what} does not verify with the attestation key"
        ))
    })?;
    Ok(digest)
}

/// Verifies one quote; returns its parsed attestation.
/// The hierarchies whose primary keys go-tpm-tools makes attestation keys of:
/// endorsement (GCE's) and owner.
const AK_HIERARCHIES: [u32; 2] = [0x4000_000B, 0x4000_0001];

/// The qualified names the AK has as a primary key of one of [`AK_HIERARCHIES`]:
/// nameAlg || H(hierarchy handle || Name), Name = nameAlg || H(TPMT_PUBLIC) (TPM 2.0
/// Part 1, 16). A quote names its signer so: checking it binds every byte of ak_pub
/// (attributes, scheme, policy), not only the key the certificate vouches for.
fn ak_qualified_names(ak_pub: &[u8], ak: &TpmPublic) -> Result<Vec<Vec<u8>>, VerifyError> {
    if ak.name_alg != TPM_ALG_SHA256 {
        return Err(VerifyError::UnsupportedVersion {
            what: "attestation key name algorithm (only SHA-256 is supported)".into(),
            version: ak.name_alg.into(),
        });
    }
    let alg = TPM_ALG_SHA256.to_be_bytes();
    let mut name = alg.to_vec();
    name.extend_from_slice(&veritee_crypto::digest::sha256(ak_pub));
    Ok(AK_HIERARCHIES
        .iter()
        .map(|hierarchy| {
            let mut input = hierarchy.to_be_bytes().to_vec();
            input.extend_from_slice(&name);
            let mut qualified = alg.to_vec();
            qualified.extend_from_slice(&veritee_crypto::digest::sha256(&input));
            qualified
        })
        .collect())
}

fn check_quote(
    index: usize,
    q: &ProtoQuote<'_>,
    ak: &TpmPublic,
    ak_names: &[Vec<u8>],
) -> Result<QuoteAttest, VerifyError> {
    let bank = hash_name(q.pcr_hash);
    let sig = TpmSignature::parse(q.raw_sig)?;
    let digest = verify_attest_signature(
        ak,
        q.quote,
        &sig,
        &format!("quote #{} ({bank} bank)", index + 1),
    )?;
    let attest = QuoteAttest::parse(q.quote)?;
    if !ak_names.contains(&attest.qualified_signer) {
        return Err(VerifyError::Inconsistent(format!(
            "quote #{} names its signer {}, which is not the attestation key given (ak_pub) as a primary key of the endorsement or owner hierarchy",
            index + 1,
            hex::encode(&attest.qualified_signer)
        )));
    }
    let [selection] = attest.selections.as_slice() else {
        return Err(VerifyError::Inconsistent(format!(
            "quote #{} selects {} PCR banks, expected exactly the {bank} bank",
            index + 1,
            attest.selections.len()
        )));
    };
    let selected: BTreeSet<u32> = selection.pcrs.iter().copied().collect();
    let given: BTreeSet<u32> = q.pcrs.keys().copied().collect();
    if selection.hash != q.pcr_hash || selected != given {
        return Err(VerifyError::Inconsistent(format!(
            "quote #{} selects {} PCRs {:?}, the evidence gives {bank} PCRs {:?}",
            index + 1,
            hash_name(selection.hash),
            selected,
            given
        )));
    }
    let values = selected_pcr_values(&attest.selections, |_, i| q.pcrs.get(&i).copied())?;
    if digest(&values) != attest.pcr_digest {
        return Err(VerifyError::Inconsistent(format!(
            "the {bank} PCR values do not match the PCR digest of quote #{}",
            index + 1
        )));
    }
    Ok(attest)
}

/// The TPM 2.0 (GCE vTPM) verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tpm2Verifier;

impl Verifier for Tpm2Verifier {
    fn tee(&self) -> TeeKind {
        TeeKind::Tpm2
    }

    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        default_trust_anchors()
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        Attestation::recognizes(evidence)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        let attestation = Attestation::parse(input.evidence)?;
        let ak = TpmPublic::parse(attestation.ak_pub)?;
        let ak_cert_der = attestation.ak_cert.ok_or_else(|| {
            VerifyError::MissingCollateral(
                "the attestation carries no AK certificate, so its attestation key cannot be trusted".into(),
            )
        })?;
        let ak_cert = ParsedCertificate::from_der(ak_cert_der)?;
        let (mut intermediates, crls) = gather(input.collateral)?;
        for der in &attestation.intermediate_certs {
            intermediates.push(ParsedCertificate::from_der(der)?);
        }
        let roots = default_roots()?;
        intermediates.extend(roots.intermediates.iter().cloned());
        let anchors: &[ParsedCertificate] = if input.trust_anchors.is_empty() {
            &roots.anchors
        } else {
            input.trust_anchors
        };
        let chain = verify_chain(
            &ak_cert,
            &intermediates,
            anchors,
            &crls,
            input.at,
            RevocationPolicy::CheckIfPresent,
            &[],
        )?;
        ak_key(&ak, &ak_cert)?;
        let ak_names = ak_qualified_names(attestation.ak_pub, &ak)?;

        let mut nonce: Option<Vec<u8>> = None;
        let mut measurements = BTreeMap::new();
        let mut banks = Vec::new();
        let mut last = None;
        for (index, q) in attestation.quotes.iter().enumerate() {
            let attest = check_quote(index, q, &ak, &ak_names)?;
            match &nonce {
                None => nonce = Some(attest.extra_data.clone()),
                Some(n) if *n != attest.extra_data => {
                    return Err(VerifyError::Inconsistent(format!(
                        "quote #{} carries extraData {}, quote #1 {}",
                        index + 1,
                        hex::encode(&attest.extra_data),
                        hex::encode(n)
                    )));
                }
                Some(_) => {}
            }
            if banks.contains(&q.pcr_hash) {
                return Err(VerifyError::Inconsistent(format!(
                    "two quotes over the {} bank",
                    hash_name(q.pcr_hash)
                )));
            }
            banks.push(q.pcr_hash);
            if q.pcr_hash == TPM_ALG_SHA256 {
                for (i, v) in &q.pcrs {
                    measurements.insert(format!("pcr{i}"), HexBytes(v.to_vec()));
                }
            }
            last = Some(attest);
        }
        let nonce = nonce.unwrap_or_default();

        let mut details = BTreeMap::new();
        details.insert(
            "quoted_banks".to_string(),
            banks
                .iter()
                .map(|b| hash_name(*b))
                .collect::<Vec<_>>()
                .join(","),
        );
        details.insert("ak_certificate_issuer".into(), ak_cert.issuer());
        details.insert(
            "ak_certificate_serial".into(),
            hex::encode(ak_cert.serial()),
        );
        details.insert("ak_root".into(), chain.anchor().subject().to_string());
        details.insert(
            "revocation".into(),
            if crls.is_empty() {
                "not checked: no CRL given".into()
            } else {
                format!("checked against {} CRL(s) given", crls.len())
            },
        );
        details.insert(
            "event_log".into(),
            format!("not replayed ({} bytes)", attestation.event_log_len),
        );
        if let Some(a) = &last {
            details.insert("tpm_clock".into(), a.clock.to_string());
            details.insert("tpm_reset_count".into(), a.reset_count.to_string());
            details.insert("tpm_restart_count".into(), a.restart_count.to_string());
            details.insert(
                "tpm_firmware_version".into(),
                format!("{:#018x}", a.firmware_version),
            );
        }
        // The AK's TPM Name (nameAlg || H(TPMT_PUBLIC)) identifies this vTPM's key.
        let platform_id = (ak.name_alg == TPM_ALG_SHA256).then(|| {
            let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
            name.extend_from_slice(&veritee_crypto::digest::sha256(attestation.ak_pub));
            HexBytes(name)
        });
        Ok(Claims {
            tee: TeeKind::Tpm2,
            simulated: false,
            measurements,
            signer: None,
            security_version: None,
            // A vTPM quote carries no vendor-graded TCB level.
            tcb_status: TcbStatus::NotReported,
            advisory_ids: Vec::new(),
            debug: false,
            report_data: HexBytes(nonce),
            platform_id,
            evidence_time: None,
            details,
            trust_anchor: Some(AnchorInfo::of(
                TeeKind::Tpm2,
                AnchorSource::BuiltIn,
                chain.anchor(),
            )),
        })
    }
}
