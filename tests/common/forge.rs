//! Forging "hardware" evidence the way a dishonest host could.
//!
//! A simulated node keeps its simulated vendor's private key on the untrusted host
//! (`DIR/vendor/root.key`), and every client of that node trusts the simulated root.
//! So the host can issue any certificate it likes under that root: an "AWS Nitro"
//! signing certificate, an "AMD VCEK", an "Intel PCK"... These helpers do exactly
//! that, from the vendor directory alone ([`ForgingRoot::simulated_vendor`]), so that
//! tests can check such evidence is refused whatever kind the root is given for. The
//! same forgeries built under a private root without the simulated vendor's marker
//! ([`ForgingRoot::private`]) are the control: given for their kind, they verify, which
//! proves the forgery is otherwise complete, so that the refusal under the simulated
//! root is the anchor binding at work and nothing else.
//!
//! Shared by the workspace tests (`tests/anchors.rs`), the verifier tests
//! (`crates/veritee-verify/tests/anchors.rs`) and the demo's attack tour
//! (`src/commands/demo/attacks.rs`), which include this file by path. It uses only
//! rcgen, veritee-crypto, veritee-attest and the Nitro CBOR writer of veritee-verify,
//! never a client API, so client changes do not touch it. The constructors return
//! errors rather than panic, for the demo binary's sake.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};
use std::path::Path;
use time::OffsetDateTime;
use veritee_attest::ParsedCertificate;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_verify::nitro::cbor::{encode_bytes, encode_head, encode_text};
use veritee_verify::nitro::document::CoseSign1;

/// Something that can issue certificates and CRLs.
pub type CaIssuer = Issuer<'static, KeyPair>;

/// A root the forger holds the key of: the certificate a client may be given as a
/// trust anchor, and its private key.
pub struct ForgingRoot {
    /// The root certificate.
    pub certificate: ParsedCertificate,
    /// The root certificate, PEM.
    pub pem: String,
    /// The root as an rcgen issuer.
    pub issuer: CaIssuer,
}

impl ForgingRoot {
    /// The simulated vendor's root as the host sees it: `root.pem` (what clients are
    /// given) and `root.key` (PKCS#8 PEM) lying beside it in `vendor_dir`.
    pub fn simulated_vendor(vendor_dir: &Path) -> Result<Self, String> {
        let read = |file: &str| {
            let path = vendor_dir.join(file);
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let pem = read("root.pem")?;
        let key = KeyPair::from_pem(&read("root.key")?)
            .map_err(|e| format!("root.key is not a PKCS#8 PEM key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(&pem, key)
            .map_err(|e| format!("root.pem is not a CA certificate: {e}"))?;
        let mut certificates = ParsedCertificate::from_pem_chain(pem.as_bytes())
            .map_err(|e| format!("root.pem does not parse: {e}"))?;
        if certificates.len() != 1 {
            return Err(format!(
                "root.pem holds {} certificates, not one",
                certificates.len()
            ));
        }
        Ok(Self {
            certificate: certificates.remove(0),
            pem,
            issuer,
        })
    }

    /// A fresh private root CA (P-384), valid for 30 years from `not_before`, without
    /// the simulated vendor's marker: what a caller who runs their own PKI may rightly
    /// give for a hardware kind.
    pub fn private(not_before: OffsetDateTime) -> Result<Self, String> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .map_err(|e| format!("cannot generate the private root's key: {e}"))?;
        let params = ca_params(
            name(&[
                (DnType::OrganizationName, "veritee tests"),
                (DnType::CommonName, "veritee Test Private Root CA"),
            ]),
            not_before,
            not_before + time::Duration::days(365 * 30),
        );
        let certificate = params
            .self_signed(&key)
            .map_err(|e| format!("cannot sign the private root: {e}"))?;
        let parsed = ParsedCertificate::from_der(certificate.der())
            .map_err(|e| format!("the private root does not parse: {e}"))?;
        Ok(Self {
            certificate: parsed,
            pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// SHA-256 of the root certificate's DER, as `AnchorInfo::sha256` names it.
    pub fn sha256(&self) -> [u8; 32] {
        self.certificate.fingerprint()
    }
}

/// A certificate the forger issued, with its private key.
pub struct Issued {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// The subject's key pair.
    pub key: KeyPair,
    params: CertificateParams,
}

impl Issued {
    /// This certificate as an issuer of further certificates.
    pub fn issuer(&self) -> CaIssuer {
        let key = KeyPair::from_pem_and_sign_algo(&self.key.serialize_pem(), self.key.algorithm())
            .expect("key round-trips through PEM");
        Issuer::new(self.params.clone(), key)
    }

    /// The subject key as a veritee ECDSA signing key (fixed `r || s` signatures).
    pub fn signing_key(&self, curve: EcdsaCurve) -> EcdsaSigningKey {
        EcdsaSigningKey::from_pkcs8(curve, &self.key.serialize_der()).expect("ECDSA key")
    }

    /// The certificate, parsed.
    pub fn parsed(&self) -> ParsedCertificate {
        ParsedCertificate::from_der(&self.der).expect("issued certificate parses")
    }
}

/// A distinguished name from `(type, value)` pairs.
pub fn name(parts: &[(DnType, &str)]) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    dn
}

/// Parameters of a CA certificate valid from `not_before` to `not_after`.
pub fn ca_params(
    subject: rcgen::DistinguishedName,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before;
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;
    params
}

/// Parameters of an end-entity (signing) certificate.
pub fn leaf_params(
    subject: rcgen::DistinguishedName,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    extensions: Vec<CustomExtension>,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = not_before;
    params.not_after = not_after;
    params.custom_extensions = extensions;
    params.use_authority_key_identifier_extension = true;
    params
}

/// Issues a certificate with `params` for a fresh key of `alg`, signed by `issuer`.
pub fn issue(
    issuer: &CaIssuer,
    params: CertificateParams,
    alg: &'static rcgen::SignatureAlgorithm,
) -> Issued {
    let key = KeyPair::generate_for(alg).expect("key generation");
    let cert = params.signed_by(&key, issuer).expect("certificate issued");
    Issued {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// An empty CRL from `issuer`, current from `this_update` for 30 days (DER).
pub fn empty_crl(issuer: &CaIssuer, this_update: OffsetDateTime) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update,
        next_update: this_update + time::Duration::days(30),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .expect("CRL signed")
    .der()
    .to_vec()
}

// ---- AWS Nitro ----

/// A Nitro attestation document, as `/dev/nsm` would return it, but signed by a
/// certificate chain under `root`:
/// root -> "us-east-1.aws.nitro-enclaves" -> "i-0f0rged...enc0" (the signer).
///
/// `nonce` is the report data the document carries (what a client's binding expects),
/// `at` the document's timestamp. PCRs are non-zero so that it is not a debug enclave:
/// the forgery is meant to pass a production policy.
pub fn nitro_document(root: &ForgingRoot, nonce: &[u8], at: OffsetDateTime) -> Vec<u8> {
    // Like AWS's PKI: a regional CA, and a short-lived (3 h) signing certificate.
    let regional = issue(
        &root.issuer,
        ca_params(
            name(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Amazon"),
                (DnType::OrganizationalUnitName, "AWS"),
                (DnType::CommonName, "us-east-1.aws.nitro-enclaves"),
            ]),
            at - time::Duration::days(7),
            at + time::Duration::days(7),
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );
    let signer = issue(
        &regional.issuer(),
        leaf_params(
            name(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Amazon"),
                (DnType::OrganizationalUnitName, "AWS"),
                (
                    DnType::CommonName,
                    "i-0f0rged00000000-enc0f0rged0000000.us-east-1.aws",
                ),
            ]),
            at - time::Duration::minutes(30),
            at + time::Duration::hours(3),
            Vec::new(),
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );

    // The payload: a definite-length CBOR map of the nine fields AWS documents.
    let mut payload = Vec::new();
    encode_head(&mut payload, 5, 9);
    encode_text(&mut payload, "module_id");
    encode_text(&mut payload, "i-0f0rged00000000-enc0f0rged0000000");
    encode_text(&mut payload, "digest");
    encode_text(&mut payload, "SHA384");
    encode_text(&mut payload, "timestamp");
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("after 1970");
    encode_head(&mut payload, 0, millis);
    encode_text(&mut payload, "pcrs");
    let pcrs: [(u64, u8); 4] = [(0, 0x10), (1, 0x11), (2, 0x12), (8, 0x18)];
    encode_head(&mut payload, 5, pcrs.len() as u64);
    for (index, fill) in pcrs {
        encode_head(&mut payload, 0, index);
        encode_bytes(&mut payload, &[fill; 48]);
    }
    encode_text(&mut payload, "certificate");
    encode_bytes(&mut payload, &signer.der);
    encode_text(&mut payload, "cabundle");
    encode_head(&mut payload, 4, 2);
    encode_bytes(&mut payload, root.certificate.der());
    encode_bytes(&mut payload, &regional.der);
    encode_text(&mut payload, "public_key");
    payload.push(0xf6); // null
    encode_text(&mut payload, "user_data");
    payload.push(0xf6); // null
    encode_text(&mut payload, "nonce");
    encode_bytes(&mut payload, nonce);

    // COSE_Sign1, tagged, protected header { 1 (alg): -35 (ES384) }.
    let protected = vec![0xa1, 0x01, 0x38, 0x22];
    let to_sign = CoseSign1 {
        tagged: true,
        protected: protected.clone(),
        payload: payload.clone(),
        signature: Vec::new(),
    }
    .to_be_signed();
    let signature = signer
        .signing_key(EcdsaCurve::P384)
        .sign(&to_sign)
        .expect("ES384 signature");
    let mut document = vec![0xd2]; // tag 18
    encode_head(&mut document, 4, 4);
    encode_bytes(&mut document, &protected);
    document.push(0xa0); // unprotected: {}
    encode_bytes(&mut document, &payload);
    encode_bytes(&mut document, &signature);
    document
}
