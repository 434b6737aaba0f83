//! What a security module checks before it trusts a TPM 2.0 target: the evidence of
//! [`TpmEnrollmentEvidence`], checked by [`verify_enrollment`] against the TPM
//! manufacturers' CAs and the SM's nonce. Pure Rust: no TPM, no I/O.
//!
//! ```text
//! manufacturer CA --X.509--> EK certificate --same key--> ek_public
//!                             (RSA-2048, TCG template L-1: restricted decrypt, fixedTPM,
//!                              fixedParent, AES-128-CFB, PolicySecret(endorsement))
//! ak_public (restricted sign, fixedTPM, fixedParent, sensitiveDataOrigin)
//!   --signs--> quote_attest   (TPM-generated, extraData = nonce, SHA-256 PCRs,
//!                              pcrDigest = SHA-256(pcr_values))
//!   --signs--> certify_attest (TPM-generated, extraData = nonce,
//!                              name = Name(storage_public))
//! storage_public: RSA-2048 decrypt, not sign, not restricted, fixedTPM, fixedParent,
//!   sensitiveDataOrigin, userWithAuth clear, nameAlg SHA-256,
//!   authPolicy = PolicyPCR(quote's selection, quote's pcrDigest)
//!   (the selection naming no resettable PCR, 16 or 23)
//! quote and certification: same resetCount, restartCount, firmwareVersion
//! ```
//!
//! That the AK lives in the same TPM as the EK is not shown by this evidence: it is what
//! the MakeCredential challenge ([`crate::credential`]) to the EK, for the AK's name
//! ([`VerifiedTpmTarget::ak_name`]), proves when the target answers it.

use crate::TpmError;
use crate::cache::VerifiedEkCache;
use crate::policy::{
    DECRYPT, FIXED_PARENT, FIXED_TPM, MAX_PUBLIC_LEN, RESETTABLE_PCRS, RESTRICTED,
    SENSITIVE_DATA_ORIGIN, SIGN, USER_WITH_AUTH, attribute_names, object_name, policy_pcr_digest,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TcbStatus, TeeKind,
};
use veritee_verify::tpm::structures::{
    CertifyAttest, QuoteAttest, TPM_ALG_AES, TPM_ALG_CFB, TPM_ALG_NULL, TPM_ALG_OAEP,
    TPM_ALG_SHA256, TpmPublic, TpmPublicKey, TpmSignature, hash_name, rsa_spki_der,
};
use veritee_verify::tpm::{public_key_bits, verify_attest_signature};
use veritee_x509::{ParsedCrl, RevocationPolicy, verify_chain};

/// Longest EK certificate accepted.
pub const MAX_EK_CERTIFICATE_LEN: usize = 16 * 1024;
/// Longest TPMS_ATTEST accepted (a quote or certification is a few hundred bytes).
pub const MAX_ATTEST_LEN: usize = 2048;
/// Longest TPMT_SIGNATURE accepted (an RSA-4096 signature is 518 bytes).
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Most PCR values accepted (a PC client TPM bank has 24).
pub const MAX_PCRS: usize = 24;
/// Longest nonce (a TPM2B_DATA holds at most a SHA-512 digest and its algorithm).
pub const MAX_NONCE_LEN: usize = 64;
/// objectAttributes of the TCG default RSA-2048 EK (EK Credential Profile, template
/// L-1): fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted,
/// decrypt.
pub const EK_TEMPLATE_ATTRIBUTES: u32 = 0x0003_00B2;
/// authPolicy of the TCG default EK templates: PolicySecret(TPM_RH_ENDORSEMENT).
pub const EK_TEMPLATE_POLICY: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];
/// RSA modulus length of the EK and the storage key (RSA-2048).
pub const RSA_2048_MODULUS_LEN: usize = 256;

/// What a TPM 2.0 target sends to enroll. Every byte string is bounded by
/// [`verify_enrollment`]; the marshalled TPM structures carry no TPM2B size prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmEnrollmentEvidence {
    /// The EK certificate, DER (TPM NV index 0x01c00002 for an RSA EK).
    #[serde(with = "serde_bytes")]
    pub ek_certificate: Vec<u8>,
    /// The EK's TPMT_PUBLIC.
    #[serde(with = "serde_bytes")]
    pub ek_public: Vec<u8>,
    /// The AK's TPMT_PUBLIC.
    #[serde(with = "serde_bytes")]
    pub ak_public: Vec<u8>,
    /// The storage key's TPMT_PUBLIC.
    #[serde(with = "serde_bytes")]
    pub storage_public: Vec<u8>,
    /// TPMS_ATTEST of TPM2_Certify(storage key) signed by the AK, extraData = nonce.
    #[serde(with = "serde_bytes")]
    pub certify_attest: Vec<u8>,
    /// TPMT_SIGNATURE of `certify_attest`.
    #[serde(with = "serde_bytes")]
    pub certify_signature: Vec<u8>,
    /// TPMS_ATTEST of TPM2_Quote(PCR selection) by the AK, extraData = nonce.
    #[serde(with = "serde_bytes")]
    pub quote_attest: Vec<u8>,
    /// TPMT_SIGNATURE of `quote_attest`.
    #[serde(with = "serde_bytes")]
    pub quote_signature: Vec<u8>,
    /// The SHA-256 values of the quoted PCRs, in selection order (ascending index).
    #[serde(with = "byte_strings")]
    pub pcr_values: Vec<Vec<u8>>,
}

/// Serializes a list of byte strings as a sequence of byte strings (not of integers).
mod byte_strings {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(values: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(values.len()))?;
        for v in values {
            seq.serialize_element(serde_bytes::Bytes::new(v))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let values = Vec::<serde_bytes::ByteBuf>::deserialize(d)?;
        Ok(values
            .into_iter()
            .map(serde_bytes::ByteBuf::into_vec)
            .collect())
    }
}

/// A target whose enrollment evidence verified.
#[derive(Debug, Clone)]
pub struct VerifiedTpmTarget {
    /// Claims: tee `Tpm2`, measurements `pcr{i}` (the quoted SHA-256 values),
    /// platform_id = SHA-256 of the EK certificate's SubjectPublicKeyInfo, report_data =
    /// the nonce, the anchor the EK certificate chains to, and details (EK issuer and
    /// serial, AK and storage key names, storage key policy, PCR selection, TPM clock).
    pub claims: Claims,
    /// The EK's TPMT_PUBLIC: what the MakeCredential challenge is encrypted to.
    pub ek_public: Vec<u8>,
    /// The AK's name: what the MakeCredential challenge is bound to.
    pub ak_name: Vec<u8>,
    /// The storage key's TPMT_PUBLIC.
    pub storage_public: Vec<u8>,
    /// The storage key as a DER SubjectPublicKeyInfo, for RSA-OAEP encryption to it.
    pub storage_key_spki: Vec<u8>,
}

fn bound(what: &'static str, bytes: &[u8], limit: usize) -> Result<(), TpmError> {
    if bytes.len() > limit {
        return Err(TpmError::malformed(
            what,
            format!("{} bytes, more than the {limit} accepted", bytes.len()),
        ));
    }
    Ok(())
}

fn parse_public(what: &'static str, bytes: &[u8]) -> Result<TpmPublic, TpmError> {
    bound(what, bytes, MAX_PUBLIC_LEN)?;
    TpmPublic::parse(bytes).map_err(|e| TpmError::malformed(what, e))
}

fn parse_signature(what: &'static str, bytes: &[u8]) -> Result<TpmSignature, TpmError> {
    bound(what, bytes, MAX_SIGNATURE_LEN)?;
    TpmSignature::parse(bytes).map_err(|e| TpmError::malformed(what, e))
}

/// Checks that `attributes` has every bit of `required` set and none of `forbidden`.
fn check_attributes(
    key: &'static str,
    attributes: u32,
    required: u32,
    forbidden: u32,
) -> Result<(), TpmError> {
    let missing = required & !attributes;
    let extra = forbidden & attributes;
    if missing != 0 || extra != 0 {
        let mut reasons = Vec::new();
        if missing != 0 {
            reasons.push(format!("lacks {}", attribute_names(missing)));
        }
        if extra != 0 {
            reasons.push(format!("has {}", attribute_names(extra)));
        }
        return Err(TpmError::KeyAttributes {
            key,
            reason: format!(
                "{} (attributes {attributes:#010x}: {})",
                reasons.join(" and "),
                attribute_names(attributes)
            ),
        });
    }
    Ok(())
}

fn rsa_2048(key: &'static str, public: &TpmPublic) -> Result<(), TpmError> {
    match &public.key {
        TpmPublicKey::Rsa { n, bits: 2048, .. } if n.len() == RSA_2048_MODULUS_LEN => Ok(()),
        TpmPublicKey::Rsa { n, bits, .. } => Err(TpmError::KeyAttributes {
            key,
            reason: format!("RSA-{bits} with a {}-byte modulus, not RSA-2048", n.len()),
        }),
        TpmPublicKey::Ecc { .. } => Err(TpmError::KeyAttributes {
            key,
            reason: "an ECC key, not RSA-2048".into(),
        }),
    }
}

/// Verifies `signature` over `attest` by the AK, which must be RSASSA or ECDSA with
/// SHA-256.
fn check_signed(
    what: &'static str,
    ak: &TpmPublic,
    attest: &[u8],
    signature: &[u8],
) -> Result<(), TpmError> {
    let signature = parse_signature(what_signature(what), signature)?;
    if signature.hash() != TPM_ALG_SHA256 {
        return Err(TpmError::Signature {
            what,
            reason: format!("made with {}, not SHA-256", hash_name(signature.hash())),
        });
    }
    verify_attest_signature(ak, attest, &signature, what).map_err(|e| TpmError::Signature {
        what,
        reason: e.to_string(),
    })?;
    Ok(())
}

fn what_signature(what: &'static str) -> &'static str {
    match what {
        "quote" => "quote signature (TPMT_SIGNATURE)",
        _ => "certification signature (TPMT_SIGNATURE)",
    }
}

/// Splits a TPM manufacturer's CA certificates as given (roots and their intermediate
/// EK CAs in one file) into trust anchors, the self-issued roots, and intermediates to
/// build paths with. Were an intermediate an anchor, the path would end at it and the
/// root's CRL, which may revoke it, would never apply. A file with no root at all
/// keeps its certificates as anchors.
pub fn split_manufacturer_cas(
    cas: &[ParsedCertificate],
) -> (Vec<ParsedCertificate>, Vec<ParsedCertificate>) {
    let (roots, intermediates): (Vec<_>, Vec<_>) = cas
        .iter()
        .cloned()
        .partition(ParsedCertificate::is_self_issued);
    if roots.is_empty() {
        (intermediates, Vec::new())
    } else {
        (roots, intermediates)
    }
}

/// Verifies a TPM's endorsement key: its certificate (DER) chains through
/// `intermediates` to one of `anchors` (the TPM manufacturers' CAs) at `at`, revoked by
/// none of `crls` (the manufacturers' CRLs: each one given for an issuer on the path
/// must be signed by it, current at `at`, and not list the certificate), and
/// `ek_public` (TPMT_PUBLIC) is the certified key, made by the TCG's RSA-2048 template
/// L-1. Returns the certificate and the anchor it chains to. Without CRLs, a certificate
/// in `cache` still valid at `at` under one of `anchors` is not chained again; with
/// them every certificate is, so a CRL's window is judged at every use.
pub fn verify_ek(
    ek_certificate: &[u8],
    ek_public: &[u8],
    anchors: &[ParsedCertificate],
    intermediates: &[ParsedCertificate],
    crls: &[ParsedCrl],
    at: OffsetDateTime,
    cache: &mut VerifiedEkCache,
) -> Result<(ParsedCertificate, ParsedCertificate), TpmError> {
    bound("EK certificate", ek_certificate, MAX_EK_CERTIFICATE_LEN)?;
    // 1. The EK certificate chains to a manufacturer CA. TCG EK certificates make the
    //    subjectAltName (the TPM manufacturer, model and version), basicConstraints and
    //    keyUsage critical; veritee-x509 understands all three, and nothing else
    //    critical is accepted.
    let ek_cert = ParsedCertificate::from_der(ek_certificate)
        .map_err(|err| TpmError::malformed("EK certificate", err))?;
    let cached = if crls.is_empty() {
        cache.get(ek_certificate, anchors, at)
    } else {
        None
    };
    let anchor = match cached {
        Some(anchor) => anchor,
        None => {
            let chain = verify_chain(
                &ek_cert,
                intermediates,
                anchors,
                crls,
                at,
                RevocationPolicy::CheckIfPresent,
                &[],
            )
            .map_err(|err| TpmError::EkCertificate(err.to_string()))?;
            cache.insert(ek_certificate, &chain.path);
            chain.anchor().clone()
        }
    };

    // 2. The EK is the certified key, and a TPM-resident restricted decryption key.
    let ek = parse_public("EK public area (TPMT_PUBLIC)", ek_public)?;
    let ek_key = public_key_bits(&ek).map_err(|err| TpmError::KeyAttributes {
        key: "EK",
        reason: err.to_string(),
    })?;
    if ek_key != ek_cert.public_key_bits() {
        return Err(TpmError::EkNotCertified);
    }
    rsa_2048("EK", &ek)?;
    check_attributes(
        "EK",
        ek.attributes,
        FIXED_TPM | FIXED_PARENT | RESTRICTED | DECRYPT,
        SIGN,
    )?;
    // The rest of the public area is not covered by the certificate: it must be the
    // TCG default template, so that every byte of it is determined.
    if ek.attributes != EK_TEMPLATE_ATTRIBUTES {
        return Err(TpmError::KeyAttributes {
            key: "EK",
            reason: format!(
                "attributes {:#010x} ({}) are not those of the TCG EK template L-1 ({EK_TEMPLATE_ATTRIBUTES:#010x})",
                ek.attributes,
                attribute_names(ek.attributes)
            ),
        });
    }
    if ek.auth_policy != EK_TEMPLATE_POLICY || ek.scheme.alg != TPM_ALG_NULL {
        return Err(TpmError::KeyAttributes {
            key: "EK",
            reason: format!(
                "authPolicy {} or scheme {:#06x} is not that of the TCG EK template L-1 (PolicySecret(TPM_RH_ENDORSEMENT), NULL)",
                hex::encode(&ek.auth_policy),
                ek.scheme.alg
            ),
        });
    }
    match ek.symmetric {
        Some(s) if s.alg == TPM_ALG_AES && s.key_bits == 128 && s.mode == TPM_ALG_CFB => {}
        other => {
            return Err(TpmError::KeyAttributes {
                key: "EK",
                reason: format!("symmetric definition {other:?} is not AES-128-CFB"),
            });
        }
    }
    if ek.name_alg != TPM_ALG_SHA256 {
        return Err(TpmError::KeyAttributes {
            key: "EK",
            reason: format!("nameAlg {} is not SHA-256", hash_name(ek.name_alg)),
        });
    }
    Ok((ek_cert, anchor))
}

/// Verifies a TPM 2.0 target's enrollment evidence (see the module documentation for
/// every check) over `nonce`, the SM's fresh challenge, with the EK certificate chained
/// through `intermediates` to one of `anchors` (the TPM manufacturers' CAs) at `at`.
/// Each refusal names what was wrong.
pub fn verify_enrollment(
    evidence: &TpmEnrollmentEvidence,
    nonce: &[u8],
    anchors: &[ParsedCertificate],
    intermediates: &[ParsedCertificate],
    at: OffsetDateTime,
) -> Result<VerifiedTpmTarget, TpmError> {
    verify_enrollment_cached(
        evidence,
        nonce,
        anchors,
        intermediates,
        &[],
        at,
        &mut VerifiedEkCache::default(),
    )
}

/// As [`verify_enrollment`], with the manufacturers' CRLs `crls` applied to the EK
/// certificate's path ([`verify_ek`]), and the EK certificates verified before
/// remembered in `cache`: without CRLs, an EK certificate found there, still valid at
/// `at` and under one of `anchors`, is not chained again; one no longer so is purged
/// and chained afresh. Everything else is checked every time.
pub fn verify_enrollment_cached(
    evidence: &TpmEnrollmentEvidence,
    nonce: &[u8],
    anchors: &[ParsedCertificate],
    intermediates: &[ParsedCertificate],
    crls: &[ParsedCrl],
    at: OffsetDateTime,
    cache: &mut VerifiedEkCache,
) -> Result<VerifiedTpmTarget, TpmError> {
    let e = evidence;
    // Bounds first: nothing below reads more than these.
    bound("nonce", nonce, MAX_NONCE_LEN)?;
    if nonce.is_empty() {
        return Err(TpmError::InvalidInput(
            "the enrollment nonce is empty: a replayed enrollment could not be told apart".into(),
        ));
    }
    bound("EK certificate", &e.ek_certificate, MAX_EK_CERTIFICATE_LEN)?;
    bound(
        "certification (TPMS_ATTEST)",
        &e.certify_attest,
        MAX_ATTEST_LEN,
    )?;
    bound("quote (TPMS_ATTEST)", &e.quote_attest, MAX_ATTEST_LEN)?;
    if e.pcr_values.len() > MAX_PCRS {
        return Err(TpmError::malformed(
            "PCR values",
            format!("{} values, at most {MAX_PCRS}", e.pcr_values.len()),
        ));
    }

    let (ek_cert, anchor) = verify_ek(
        &e.ek_certificate,
        &e.ek_public,
        anchors,
        intermediates,
        crls,
        at,
        cache,
    )?;

    // 3. The AK signs only what the TPM itself produced, and cannot leave it.
    let ak = parse_public("AK public area (TPMT_PUBLIC)", &e.ak_public)?;
    check_attributes(
        "AK",
        ak.attributes,
        FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | RESTRICTED | SIGN,
        DECRYPT,
    )?;
    if ak.name_alg != TPM_ALG_SHA256 {
        return Err(TpmError::KeyAttributes {
            key: "AK",
            reason: format!("nameAlg {} is not SHA-256", hash_name(ak.name_alg)),
        });
    }
    let ak_name = object_name(&e.ak_public)?;

    // 4. The quote: by the AK, over the nonce, of SHA-256 PCRs whose values are given.
    check_signed("quote", &ak, &e.quote_attest, &e.quote_signature)?;
    let quote = QuoteAttest::parse(&e.quote_attest)
        .map_err(|err| TpmError::malformed("quote (TPMS_ATTEST)", err))?;
    if quote.extra_data != nonce {
        return Err(TpmError::WrongNonce {
            what: "quote",
            found: hex::encode(&quote.extra_data),
        });
    }
    let [selection] = quote.selections.as_slice() else {
        return Err(TpmError::PcrSelection(format!(
            "{} banks selected, expected the SHA-256 bank only",
            quote.selections.len()
        )));
    };
    if selection.hash != TPM_ALG_SHA256 {
        return Err(TpmError::PcrSelection(format!(
            "the {} bank is selected, expected SHA-256",
            hash_name(selection.hash)
        )));
    }
    if selection.pcrs.is_empty() {
        return Err(TpmError::PcrSelection("no PCR is selected".into()));
    }
    if let Some(pcr) = selection
        .pcrs
        .iter()
        .find(|pcr| RESETTABLE_PCRS.contains(pcr))
    {
        return Err(TpmError::PcrSelection(format!(
            "PCR {pcr} is selected, which any software may reset: it measures nothing"
        )));
    }
    if selection.pcrs.len() != e.pcr_values.len() {
        return Err(TpmError::PcrValues(format!(
            "the quote selects {} PCRs, {} values are given",
            selection.pcrs.len(),
            e.pcr_values.len()
        )));
    }
    let mut concatenated = Vec::with_capacity(32 * e.pcr_values.len());
    for (index, value) in selection.pcrs.iter().zip(&e.pcr_values) {
        if value.len() != 32 {
            return Err(TpmError::PcrValues(format!(
                "the value of PCR {index} is {} bytes, not a SHA-256 digest",
                value.len()
            )));
        }
        concatenated.extend_from_slice(value);
    }
    if veritee_crypto::digest::sha256(&concatenated).as_slice() != quote.pcr_digest.as_slice() {
        return Err(TpmError::PcrValues(format!(
            "their SHA-256 is {}, the quote's pcrDigest {}",
            hex::encode(veritee_crypto::digest::sha256(&concatenated)),
            hex::encode(&quote.pcr_digest)
        )));
    }

    // 5. The certification: by the AK, over the nonce, of the storage key given.
    check_signed(
        "certification",
        &ak,
        &e.certify_attest,
        &e.certify_signature,
    )?;
    let certify = CertifyAttest::parse(&e.certify_attest)
        .map_err(|err| TpmError::malformed("certification (TPMS_ATTEST)", err))?;
    if certify.extra_data != nonce {
        return Err(TpmError::WrongNonce {
            what: "certification",
            found: hex::encode(&certify.extra_data),
        });
    }
    let storage = parse_public("storage key public area (TPMT_PUBLIC)", &e.storage_public)?;
    let storage_name = object_name(&e.storage_public)?;
    if certify.name != storage_name {
        return Err(TpmError::CertifiedOtherKey {
            certified: hex::encode(&certify.name),
            expected: hex::encode(&storage_name),
        });
    }

    // 6. The storage key: a TPM-generated, non-exportable RSA-2048 decryption key usable
    //    only under the PCR policy the quote shows.
    rsa_2048("storage key", &storage)?;
    if storage.attributes & (FIXED_TPM | FIXED_PARENT) != FIXED_TPM | FIXED_PARENT {
        return Err(TpmError::KeyAttributes {
            key: "storage key",
            reason: format!(
                "it is exportable: fixedTPM and fixedParent must both be set (attributes {})",
                attribute_names(storage.attributes)
            ),
        });
    }
    if storage.attributes & USER_WITH_AUTH != 0 {
        return Err(TpmError::KeyAttributes {
            key: "storage key",
            reason:
                "userWithAuth is set: its authValue alone would let it decrypt, whatever the PCRs"
                    .into(),
        });
    }
    check_attributes(
        "storage key",
        storage.attributes,
        SENSITIVE_DATA_ORIGIN | DECRYPT,
        SIGN | RESTRICTED,
    )?;
    if storage.name_alg != TPM_ALG_SHA256 {
        return Err(TpmError::KeyAttributes {
            key: "storage key",
            reason: format!("nameAlg {} is not SHA-256", hash_name(storage.name_alg)),
        });
    }
    let scheme_ok = matches!(
        (storage.scheme.alg, storage.scheme.hash),
        (TPM_ALG_NULL, _) | (TPM_ALG_OAEP, Some(TPM_ALG_SHA256))
    );
    if !scheme_ok {
        return Err(TpmError::KeyAttributes {
            key: "storage key",
            reason: format!(
                "scheme {:#06x} is neither NULL nor RSA-OAEP with SHA-256",
                storage.scheme.alg
            ),
        });
    }
    let expected_policy = policy_pcr_digest(&quote.pcr_selection_raw, &quote.pcr_digest);
    if storage.auth_policy != expected_policy {
        return Err(TpmError::PolicyMismatch {
            found: hex::encode(&storage.auth_policy),
            expected: hex::encode(expected_policy),
        });
    }

    // 7. Both attestations come from the same TPM boot and firmware.
    if (
        quote.reset_count,
        quote.restart_count,
        quote.firmware_version,
    ) != (
        certify.reset_count,
        certify.restart_count,
        certify.firmware_version,
    ) {
        return Err(TpmError::BootMismatch(format!(
            "quote: resetCount {}, restartCount {}, firmwareVersion {:#x}; certification: {}, {}, {:#x}",
            quote.reset_count,
            quote.restart_count,
            quote.firmware_version,
            certify.reset_count,
            certify.restart_count,
            certify.firmware_version
        )));
    }

    let TpmPublicKey::Rsa { n, e: exponent, .. } = &storage.key else {
        return Err(TpmError::KeyAttributes {
            key: "storage key",
            reason: "not an RSA key".into(),
        });
    };
    let storage_key_spki = rsa_spki_der(n, *exponent)
        .map_err(|err| TpmError::malformed("storage key public area (TPMT_PUBLIC)", err))?;
    let ek_spki = ek_cert
        .spki_der()
        .map_err(|err| TpmError::malformed("EK certificate", err))?;

    let measurements = selection
        .pcrs
        .iter()
        .zip(&e.pcr_values)
        .map(|(i, v)| (format!("pcr{i}"), HexBytes(v.clone())))
        .collect();
    let mut details = BTreeMap::new();
    details.insert("ek_certificate_issuer".to_string(), ek_cert.issuer());
    details.insert(
        "ek_certificate_serial".into(),
        hex::encode(ek_cert.serial()),
    );
    details.insert("ek_root".into(), anchor.subject().to_string());
    details.insert(
        "revocation".into(),
        "not checked: no CRL given for the EK certificate".into(),
    );
    details.insert("ak_name".into(), hex::encode(&ak_name));
    details.insert("storage_key_name".into(), hex::encode(&storage_name));
    details.insert(
        "storage_key_policy".into(),
        hex::encode(&storage.auth_policy),
    );
    details.insert(
        "storage_key_attributes".into(),
        attribute_names(storage.attributes),
    );
    details.insert(
        "pcr_selection".into(),
        format!(
            "sha256:{}",
            selection
                .pcrs
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    details.insert("tpm_clock".into(), quote.clock.to_string());
    details.insert("tpm_reset_count".into(), quote.reset_count.to_string());
    details.insert("tpm_restart_count".into(), quote.restart_count.to_string());
    details.insert(
        "tpm_firmware_version".into(),
        format!("{:#018x}", quote.firmware_version),
    );
    let claims = Claims {
        tee: TeeKind::Tpm2,
        simulated: false,
        measurements,
        signer: None,
        security_version: None,
        tcb_status: TcbStatus::NotReported,
        advisory_ids: Vec::new(),
        debug: false,
        report_data: HexBytes(nonce.to_vec()),
        platform_id: Some(HexBytes(veritee_crypto::digest::sha256(&ek_spki).to_vec())),
        // The quote and certification are over the SM's fresh nonce: they were made
        // after it was issued, which is as fresh as the verification time says.
        evidence_time: Some(at),
        details,
        trust_anchor: Some(AnchorInfo::of(TeeKind::Tpm2, AnchorSource::Given, &anchor)),
    };
    Ok(VerifiedTpmTarget {
        claims,
        ek_public: e.ek_public.clone(),
        ak_name,
        storage_public: e.storage_public.clone(),
        storage_key_spki,
    })
}
