//! Verifier for AMD SEV-SNP attestation reports (versions 2 to 5).
//!
//! What is checked, in order, at `input.at`:
//! 1. the report layout ([`report`]): 1184 bytes, version 2 to 5, ECDSA P-384 signature;
//! 2. the versioned endorsement key (VEK) certificate, given as collateral (DER or PEM):
//!    a VCEK (per chip and TCB, issued by the ASK) or a VLEK (per cloud provider,
//!    issued by the ASVK), as the report's SIGNING_KEY field says. Its issuer names the
//!    product (`SEV-Milan`, `SEV-VLEK-Genoa`, ...), which also decides the TCB layout;
//! 3. the chain VEK -> ASK/ASVK -> ARK (RSA-PSS SHA-384) to a trust anchor: the caller's,
//!    or the AMD roots of Milan, Genoa and Turin embedded here. AMD KDS CRLs given as
//!    collateral are applied; none are required (AMD's CRLs are fetched online, and the
//!    evidence corpus has none), and the claims say whether revocation was checked;
//! 4. the report signature by the VEK over bytes 0x000..0x2A0;
//! 5. REPORTED_TCB equals the TCB the VEK certificate was issued for (blSPL, teeSPL,
//!    snpSPL, ucodeSPL, and fmcSPL on Turin), and for a VCEK the certificate's hwID
//!    equals CHIP_ID (unless the chip id is masked to zero);
//! 6. for v3 reports, the CPUID family/model names the same product as the VEK issuer.
//!
//! The `sev` crate (virtee) parses reports and checks chains, but its chain check uses
//! the wall clock via OpenSSL or has no explicit time and no CRLs; so the layout is
//! written here once and the chain goes through veritee-x509 at `input.at`.

pub mod report;

use crate::snp::report::{REPORT_LEN, SIGNED_LEN, SigningKey, SnpReport, Tcb};
use const_oid::ObjectIdentifier;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TcbStatus, TeeKind, Verifier,
    VerifyError, VerifyInput,
};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_x509::{ParsedCrl, RevocationPolicy, verify_chain};

/// VCEK/VLEK extension: boot loader SPL.
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// VCEK/VLEK extension: TEE SPL.
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// VCEK/VLEK extension: SNP SPL.
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// VCEK/VLEK extension: microcode SPL.
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// VCEK/VLEK extension: FMC SPL (Turin onwards).
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
/// VCEK extension: hardware id (the chip id).
pub const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// Largest number of collateral files looked at.
pub const MAX_COLLATERAL_FILES: usize = 64;

/// An AMD EPYC product line with SEV-SNP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// 3rd generation EPYC (Zen 3).
    Milan,
    /// 4th generation EPYC (Zen 4).
    Genoa,
    /// 5th generation EPYC (Zen 5).
    Turin,
}

impl Product {
    const ALL: [Product; 3] = [Self::Milan, Self::Genoa, Self::Turin];

    /// The name AMD uses in certificate names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// Whether TCB_VERSION uses the Turin layout (with an FMC byte).
    pub fn turin_layout(self) -> bool {
        self == Self::Turin
    }

    /// Length of the VCEK hwID (the meaningful part of CHIP_ID).
    pub fn hw_id_len(self) -> usize {
        if self == Self::Turin { 8 } else { 64 }
    }

    /// The product of a CPUID family and model, as AMD assigns them.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The common name in an RFC 4514 name string.
fn common_name(rfc4514: &str) -> Option<&str> {
    let mut start = 0;
    let bytes = rfc4514.as_bytes();
    let mut parts = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b',' && (i == 0 || bytes[i - 1] != b'\\') {
            parts.push(&rfc4514[start..i]);
            start = i + 1;
        }
    }
    parts.push(&rfc4514[start..]);
    parts.into_iter().find_map(|p| p.trim().strip_prefix("CN="))
}

/// What kind of VEK `cert` is, and for which product, from its issuer's name.
fn classify_vek(cert: &ParsedCertificate) -> Result<(Product, SigningKey), VerifyError> {
    let issuer = cert.issuer();
    let cn = common_name(&issuer).unwrap_or_default();
    let (kind, product) = if let Some(p) = cn.strip_prefix("SEV-VLEK-") {
        (SigningKey::Vlek, p)
    } else if let Some(p) = cn.strip_prefix("SEV-") {
        (SigningKey::Vcek, p)
    } else {
        return Err(VerifyError::Collateral(format!(
            "the endorsement key certificate '{}' is issued by '{issuer}', which is no AMD ASK or ASVK",
            cert.subject()
        )));
    };
    // Names carry a stepping suffix on some parts ("Milan-B0"); only the family matters.
    let family = product.split('-').next().unwrap_or_default();
    let product = Product::from_name(family).ok_or_else(|| {
        VerifyError::Collateral(format!(
            "the endorsement key certificate's issuer '{cn}' names no supported product (Milan, Genoa, Turin)"
        ))
    })?;
    Ok((product, kind))
}

fn is_vek(cert: &ParsedCertificate) -> bool {
    matches!(common_name(cert.subject()), Some("SEV-VCEK" | "SEV-VLEK"))
}

/// The AMD roots (ARKs) and intermediates (ASKs, ASVKs) embedded as defaults.
struct AmdRoots {
    arks: Vec<ParsedCertificate>,
    intermediates: Vec<ParsedCertificate>,
}

const EMBEDDED: [(&str, &[u8]); 9] = [
    ("milan ARK", include_bytes!("roots/milan_ark.pem")),
    ("milan ASK", include_bytes!("roots/milan_ask.pem")),
    ("milan ASVK", include_bytes!("roots/milan_asvk.pem")),
    ("genoa ARK", include_bytes!("roots/genoa_ark.pem")),
    ("genoa ASK", include_bytes!("roots/genoa_ask.pem")),
    ("genoa ASVK", include_bytes!("roots/genoa_asvk.pem")),
    ("turin ARK", include_bytes!("roots/turin_ark.pem")),
    ("turin ASK", include_bytes!("roots/turin_ask.pem")),
    ("turin ASVK", include_bytes!("roots/turin_asvk.pem")),
];

fn load_roots() -> Result<AmdRoots, String> {
    let mut roots = AmdRoots {
        arks: Vec::new(),
        intermediates: Vec::new(),
    };
    for (name, pem) in EMBEDDED {
        let cert = ParsedCertificate::from_der_or_pem(pem)
            .map_err(|e| format!("embedded AMD {name}: {e}"))?;
        if name.ends_with("ARK") {
            roots.arks.push(cert);
        } else {
            roots.intermediates.push(cert);
        }
    }
    Ok(roots)
}

fn default_roots() -> Result<&'static AmdRoots, VerifyError> {
    static ROOTS: OnceLock<Result<AmdRoots, String>> = OnceLock::new();
    ROOTS
        .get_or_init(load_roots)
        .as_ref()
        .map_err(|e| VerifyError::Collateral(e.clone()))
}

/// The embedded AMD root keys (ARK) of Milan, Genoa and Turin.
pub fn default_trust_anchors() -> Result<Vec<ParsedCertificate>, VerifyError> {
    Ok(default_roots()?.arks.clone())
}

/// Collateral files sorted by kind.
#[derive(Debug, Default, Clone)]
pub struct SnpCollateral {
    /// VCEK/VLEK certificates.
    pub veks: Vec<ParsedCertificate>,
    /// Other certificates (ASK, ASVK, ARK copies).
    pub cas: Vec<ParsedCertificate>,
    /// CRLs (AMD KDS CRLs are signed by the ARK).
    pub crls: Vec<ParsedCrl>,
}

impl SnpCollateral {
    /// Sorts collateral files: certificates (DER or PEM, one or many) and CRLs (DER or
    /// PEM). Anything else is refused with the file named.
    pub fn gather(files: &[Vec<u8>]) -> Result<Self, VerifyError> {
        if files.len() > MAX_COLLATERAL_FILES {
            return Err(VerifyError::TooLarge {
                what: "SEV-SNP collateral (number of files)".into(),
                size: files.len(),
                limit: MAX_COLLATERAL_FILES,
            });
        }
        let mut out = Self::default();
        for (index, file) in files.iter().enumerate() {
            let name = || format!("collateral file #{}", index + 1);
            if veritee_x509::pem::looks_like_pem(file) {
                let blocks = veritee_x509::pem::blocks(file)
                    .map_err(|e| VerifyError::Collateral(format!("{}: {e}", name())))?;
                for (label, der) in blocks {
                    match label.as_str() {
                        "CERTIFICATE" => out.add_cert(ParsedCertificate::from_der(&der)?),
                        "X509 CRL" => out.crls.push(ParsedCrl::from_der(&der)?),
                        other => {
                            return Err(VerifyError::Collateral(format!(
                                "{}: a PEM '{other}' block is neither a certificate nor a CRL",
                                name()
                            )));
                        }
                    }
                }
            } else if let Ok(cert) = ParsedCertificate::from_der(file) {
                out.add_cert(cert);
            } else if let Ok(crl) = ParsedCrl::from_der(file) {
                out.crls.push(crl);
            } else {
                return Err(VerifyError::Collateral(format!(
                    "{} is neither an X.509 certificate nor a CRL, in DER or PEM",
                    name()
                )));
            }
        }
        Ok(out)
    }

    fn add_cert(&mut self, cert: ParsedCertificate) {
        if is_vek(&cert) {
            self.veks.push(cert);
        } else {
            self.cas.push(cert);
        }
    }
}

/// A report whose signature, chain and TCB binding were verified.
#[derive(Debug, Clone)]
pub struct VerifiedReport {
    /// The report.
    pub report: SnpReport,
    /// The product, from the VEK's issuer.
    pub product: Product,
    /// The VEK certificate that signed the report.
    pub vek: ParsedCertificate,
    /// Normalized claims.
    pub claims: Claims,
}

fn spl(vek: &ParsedCertificate, oid: &ObjectIdentifier, name: &str) -> Result<u8, VerifyError> {
    let (_, value) = vek.extension(oid).ok_or_else(|| {
        VerifyError::Inconsistent(format!(
            "the endorsement key certificate has no {name} extension ({oid})"
        ))
    })?;
    der::Decode::from_der(value).map_err(|e| {
        VerifyError::malformed(format!("endorsement key certificate {name} extension"), e)
    })
}

/// The VCEK hwID: a DER OCTET STRING, or (in certificates from before 2023) the raw bytes.
fn hw_id(vek: &ParsedCertificate, len: usize) -> Result<Vec<u8>, VerifyError> {
    let (_, value) = vek.extension(&OID_HW_ID).ok_or_else(|| {
        VerifyError::Inconsistent("the VCEK certificate has no hwID extension".into())
    })?;
    if value.len() == len {
        return Ok(value.to_vec());
    }
    let os: der::asn1::OctetString = der::Decode::from_der(value)
        .map_err(|e| VerifyError::malformed("VCEK hwID extension", e))?;
    Ok(os.into_bytes())
}

fn check_tcb(
    report: &SnpReport,
    product: Product,
    vek: &ParsedCertificate,
) -> Result<(), VerifyError> {
    let reported = Tcb::decode(report.reported_tcb, product.turin_layout());
    let mut fields = vec![
        (OID_BL_SPL, "blSPL (boot loader)", reported.bootloader),
        (OID_TEE_SPL, "teeSPL", reported.tee),
        (OID_SNP_SPL, "snpSPL", reported.snp),
        (OID_UCODE_SPL, "ucodeSPL (microcode)", reported.microcode),
    ];
    if let Some(fmc) = reported.fmc {
        fields.push((OID_FMC_SPL, "fmcSPL", fmc));
    }
    for (oid, name, value) in fields {
        let certified = spl(vek, &oid, name)?;
        if certified != value {
            return Err(VerifyError::Inconsistent(format!(
                "the report's REPORTED_TCB has {name} {value}, but its {} certificate was issued for {certified}",
                report.signing_key.as_str().to_uppercase()
            )));
        }
    }
    if report.signing_key == SigningKey::Vcek && report.chip_id.iter().any(|b| *b != 0) {
        let len = product.hw_id_len();
        let certified = hw_id(vek, len)?;
        let reported = report.chip_id.get(..len).unwrap_or_default();
        if certified != reported {
            return Err(VerifyError::Inconsistent(format!(
                "the report's CHIP_ID {} is not the VCEK certificate's hwID {}",
                hex::encode(reported),
                hex::encode(&certified)
            )));
        }
    }
    if let Some(cpuid) = report.cpuid
        && let Some(cpu_product) = Product::from_cpuid(cpuid.family, cpuid.model)
        && cpu_product != product
    {
        return Err(VerifyError::Inconsistent(format!(
            "the report's CPUID (family {:#x}, model {:#x}) is a {} part, but its endorsement key is a {} one",
            cpuid.family,
            cpuid.model,
            cpu_product.name(),
            product.name()
        )));
    }
    Ok(())
}

fn nonzero_hex(bytes: &[u8]) -> Option<String> {
    bytes.iter().any(|b| *b != 0).then(|| hex::encode(bytes))
}

fn build_claims(
    report: &SnpReport,
    product: Product,
    vek: &ParsedCertificate,
    path: &[ParsedCertificate],
    crls: &[ParsedCrl],
) -> Claims {
    let turin = product.turin_layout();
    let mut details = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        details.insert(k.to_string(), v);
    };
    put("report_version", report.version.to_string());
    put("product", product.name().to_lowercase());
    put("signing_key", report.signing_key.as_str().into());
    put("vek_serial", hex::encode(vek.serial()));
    put("vmpl", report.vmpl.to_string());
    put("policy", format!("{:#018x}", report.policy));
    put("platform_info", format!("{:#018x}", report.platform_info));
    put("family_id", hex::encode(report.family_id));
    put("image_id", hex::encode(report.image_id));
    put("host_data", hex::encode(report.host_data));
    put("report_id", hex::encode(report.report_id));
    put("guest_svn", report.guest_svn.to_string());
    put("author_key_en", report.author_key_en.to_string());
    put("mask_chip_key", report.mask_chip_key.to_string());
    put(
        "reported_tcb",
        Tcb::decode(report.reported_tcb, turin).to_string(),
    );
    put(
        "committed_tcb",
        Tcb::decode(report.committed_tcb, turin).to_string(),
    );
    put(
        "current_tcb",
        Tcb::decode(report.current_tcb, turin).to_string(),
    );
    put(
        "launch_tcb",
        Tcb::decode(report.launch_tcb, turin).to_string(),
    );
    put("reported_tcb_raw", hex::encode(report.reported_tcb));
    put("current_firmware", report.current_version.to_string());
    put("committed_firmware", report.committed_version.to_string());
    if let Some(v) = report.mitigation_vectors {
        put("launch_mit_vector", format!("{:#018x}", v.launch));
        put("current_mit_vector", format!("{:#018x}", v.current));
    }
    if let Some(c) = report.cpuid {
        put(
            "cpuid",
            format!(
                "family={:#04x} model={:#04x} stepping={:#04x}",
                c.family, c.model, c.stepping
            ),
        );
    }
    if let Some(d) = nonzero_hex(&report.id_key_digest) {
        put("id_key_digest", d);
    }
    if let Some(d) = nonzero_hex(&report.author_key_digest) {
        put("author_key_digest", d);
    }
    if let Some(d) = nonzero_hex(&report.report_id_ma) {
        put("report_id_ma", d);
    }
    let applied: Vec<String> = crls
        .iter()
        .filter(|crl| {
            path.iter()
                .skip(1)
                .any(|issuer| issuer.subject() == crl.issuer())
        })
        .map(|crl| format!("CRL of '{}' issued {}", crl.issuer(), crl.this_update()))
        .collect();
    put(
        "revocation",
        if applied.is_empty() {
            "not checked: no AMD CRL given".to_string()
        } else {
            format!("checked: {}", applied.join("; "))
        },
    );
    put(
        "tcb_status_note",
        "AMD publishes no TCB grading; compare the TCB values with your minimums".into(),
    );
    let chip_id_given = report.chip_id.iter().any(|b| *b != 0);
    Claims {
        tee: TeeKind::SevSnp,
        simulated: false,
        measurements: [(
            "launch_measurement".to_string(),
            HexBytes(report.measurement.to_vec()),
        )]
        .into(),
        signer: None,
        security_version: Some(report.guest_svn.into()),
        // SEV-SNP has no vendor grading of a TCB (no equivalent of Intel's TCB info): the
        // VEK certificate only proves that REPORTED_TCB is what the firmware reports, not
        // that it is current. `reported == committed == current` shows no rollback window
        // is open, but says nothing about whether newer AMD firmware exists, so calling it
        // UpToDate would claim more than the evidence holds. The honest status is
        // NotReported, with every TCB (reported, committed, current, launch) in `details`
        // for a policy to compare against its own minimums.
        tcb_status: TcbStatus::NotReported,
        advisory_ids: Vec::new(),
        debug: report.debug(),
        report_data: HexBytes(report.report_data.to_vec()),
        platform_id: chip_id_given.then(|| HexBytes(report.chip_id.to_vec())),
        evidence_time: None,
        details,
        trust_anchor: path
            .last()
            .map(|anchor| AnchorInfo::of(TeeKind::SevSnp, AnchorSource::BuiltIn, anchor)),
    }
}

/// Verifies an SNP report (raw bytes) with the VEK certificates in `extra_veks` or in
/// the collateral; shared by the SEV-SNP and Azure verifiers.
pub fn verify_report(
    bytes: &[u8],
    extra_veks: &[ParsedCertificate],
    input: &VerifyInput<'_>,
) -> Result<VerifiedReport, VerifyError> {
    let report = SnpReport::parse(bytes)?;
    let collateral = SnpCollateral::gather(input.collateral)?;
    let roots = default_roots()?;
    let anchors: &[ParsedCertificate] = if input.trust_anchors.is_empty() {
        &roots.arks
    } else {
        input.trust_anchors
    };
    let mut intermediates = collateral.cas.clone();
    intermediates.extend(roots.intermediates.iter().cloned());

    let veks: Vec<&ParsedCertificate> = extra_veks.iter().chain(&collateral.veks).collect();
    if veks.is_empty() {
        return Err(VerifyError::MissingCollateral(format!(
            "no {} certificate: pass the VEK certificate (DER or PEM) as collateral",
            report.signing_key.as_str().to_uppercase()
        )));
    }
    let mut first_error = None;
    for vek in veks {
        let attempt: Result<VerifiedReport, VerifyError> = (|| {
            let (product, kind) = classify_vek(vek)?;
            if kind != report.signing_key {
                return Err(VerifyError::Collateral(format!(
                    "the report is signed by a {}, but the certificate given is a {} ('{}')",
                    report.signing_key.as_str().to_uppercase(),
                    kind.as_str().to_uppercase(),
                    vek.issuer()
                )));
            }
            let chain = verify_chain(
                vek,
                &intermediates,
                anchors,
                &collateral.crls,
                input.at,
                RevocationPolicy::CheckIfPresent,
                &[],
            )?;
            let signed = bytes
                .get(..SIGNED_LEN)
                .ok_or_else(|| VerifyError::malformed("SEV-SNP report", "too short"))?;
            sign::verify(
                VerificationScheme::EcdsaP384Sha384Fixed,
                vek.public_key_bits(),
                signed,
                &report.signature,
            )
            .map_err(|_| {
                VerifyError::Signature(format!(
                    "the report signature does not verify with the {} certificate's key (serial {})",
                    kind.as_str().to_uppercase(),
                    hex::encode(vek.serial())
                ))
            })?;
            check_tcb(&report, product, vek)?;
            let claims = build_claims(&report, product, vek, &chain.path, &collateral.crls);
            Ok(VerifiedReport {
                report: report.clone(),
                product,
                vek: vek.clone(),
                claims,
            })
        })();
        match attempt {
            Ok(verified) => return Ok(verified),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| VerifyError::MissingCollateral("no endorsement key certificate".into())))
}

/// The SEV-SNP verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct SnpVerifier;

impl Verifier for SnpVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        default_trust_anchors()
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        SnpReport::recognizes(evidence)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        if input.evidence.len() > REPORT_LEN {
            return Err(VerifyError::TooLarge {
                what: "SEV-SNP evidence".into(),
                size: input.evidence.len(),
                limit: REPORT_LEN,
            });
        }
        Ok(verify_report(input.evidence, &[], input)?.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_roots_parse() {
        let roots = default_roots().unwrap();
        assert_eq!(roots.arks.len(), 3);
        assert_eq!(roots.intermediates.len(), 6);
    }

    #[test]
    fn common_names() {
        assert_eq!(
            common_name("CN=SEV-Milan,O=Advanced Micro Devices,C=US"),
            Some("SEV-Milan")
        );
        assert_eq!(common_name("OU=a\\,b,CN=x"), Some("x"));
        assert_eq!(common_name("O=x"), None);
    }

    #[test]
    fn cpuid_products() {
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x17, 0x31), None);
    }
}
