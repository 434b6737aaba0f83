//! Trust anchors are bound to TEE kinds, and the simulated vendor's PKI to simulated
//! evidence only.
//!
//! A simulated node keeps its vendor's private key on the untrusted host, and clients
//! of simulated nodes must trust that vendor's root. For every hardware kind, evidence
//! is forged here the way that host could: a certificate chain issued under the
//! simulated root (read from `DIR/vendor/root.key`), and evidence signed by its leaf.
//! Each forgery must be refused when the simulated root is given without a kind (what
//! such a client passes), with no anchors at all, and even when the root is given
//! explicitly *for* that kind (`aws-nitro=vendor/root.pem`): the error names the kind
//! and says the anchor vouches for simulated evidence only. The control is the same
//! forgery built under a private root that lacks the simulated vendor's marker: given
//! for its kind it verifies, which proves the forgery is otherwise complete, so the
//! refusals are the anchor binding at work and nothing else; given for another kind,
//! or untyped, it is refused. Real evidence keeps verifying against the built-in
//! vendor roots, and the claims name the anchor used.

#[path = "../../../tests/common/forge.rs"]
mod forge;

use base64::Engine;
use forge::{CaIssuer, ForgingRoot, Issued, ca_params, empty_crl, issue, leaf_params, name};
use rcgen::{CustomExtension, DnType};
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::encoding::decode_evidence;
use veritee_attest::simulated::envelope::SimEvidence;
use veritee_attest::simulated::tcb_info::SignedTcbInfo;
use veritee_attest::simulated::{OID_SIMULATED_VENDOR, SIMULATED_VENDOR_VALUE, is_simulated_pki};
use veritee_attest::{
    AnchorSource, Claims, ParsedCertificate, ReportData, TeeKind, TrustAnchors, Verifier,
    VerifyError,
};
use veritee_crypto::digest::sha256;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_platform::sim::{EnclaveImage, SimMachine, SimVendor};
use veritee_verify::dcap::Quote;
use veritee_verify::dcap::pck::OID_SGX_EXTENSIONS;
use veritee_verify::nvidia::OID_TCG_DICE_FWID;
use veritee_verify::nvidia::report::SpdmReport;
use veritee_verify::snp::report::{REPORT_LEN, SIGNED_LEN};
use veritee_verify::{Verifiers, VerifyRequest};
use veritee_x509::X509Error;

/// When the simulated vendor was created: its root is valid for 20 years from then,
/// which covers every verification time below.
const VENDOR_NOW: OffsetDateTime = datetime!(2021-06-01 00:00 UTC);
/// When the forgeries that are not tied to a real fixture's collateral are dated.
const FORGED_AT: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);
/// The report data the forger binds (what a client's nonce binding would demand).
const FORGED_REPORT_DATA: [u8; 64] = [0xa7; 64];

fn data(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A simulated vendor, created on disk as a node creates it, and its root as the host
/// that holds the vendor directory loads it.
struct Sim {
    _dir: tempfile::TempDir,
    vendor: SimVendor,
    root: ForgingRoot,
}

fn sim() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let vendor_dir = dir.path().join("vendor");
    let vendor = SimVendor::init(&vendor_dir, VENDOR_NOW).unwrap();
    let root = ForgingRoot::simulated_vendor(&vendor_dir).expect("the vendor's root");
    // The host's copy is the one clients are given.
    assert_eq!(
        ParsedCertificate::from_pem_chain(&vendor.root_pem().unwrap()).unwrap(),
        vec![root.certificate.clone()]
    );
    Sim {
        _dir: dir,
        vendor,
        root,
    }
}

fn verify(
    evidence: &[u8],
    collateral: &[Vec<u8>],
    anchors: &TrustAnchors,
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    Verifiers::default().verify(&VerifyRequest {
        evidence,
        tee: None,
        collateral,
        trust_anchors: anchors,
        expected_report_data: None,
        at,
    })
}

/// Forged evidence of one kind, with everything needed to verify it.
struct Forgery {
    kind: TeeKind,
    evidence: Vec<u8>,
    collateral: Vec<Vec<u8>>,
    at: OffsetDateTime,
    /// The report data the claims must carry.
    report_data: Vec<u8>,
}

/// A private root without the simulated vendor's marker, valid at every verification
/// time below: the control's anchor.
fn private_root() -> ForgingRoot {
    ForgingRoot::private(VENDOR_NOW).expect("a private root")
}

/// Checks that `err` refuses evidence of `kind` because `anchor` vouches for simulated
/// evidence only, naming that anchor.
fn assert_refused_as_simulated_only(err: &VerifyError, kind: TeeKind, anchor: &ForgingRoot) {
    assert!(
        matches!(err, VerifyError::UntrustedForKind { tee, .. } if *tee == kind),
        "{kind}: expected UntrustedForKind, got {err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(kind.as_str()), "{kind}: '{text}'");
    assert!(
        text.contains(&format!(
            "the anchor(s) '{}' given vouch for simulated evidence only",
            anchor.certificate.subject()
        )),
        "{kind}: '{text}'"
    );
}

/// The checks every forged kind must pass (see the module documentation). `forge`
/// builds the forgery under a root: the simulated vendor's, then a private one.
fn assert_refused_unless_given_for_its_kind(s: &Sim, forge: impl Fn(&ForgingRoot) -> Forgery) {
    let root = &s.root;
    let f = forge(root);
    let kind = f.kind;
    assert_eq!(
        Verifiers::default().detect(&f.evidence).unwrap(),
        kind,
        "the forgery is recognized as {kind} evidence"
    );

    // What a client of a simulated node passes: the simulated root, untyped.
    let untyped = TrustAnchors::untyped([root.certificate.clone()]);
    let err = verify(&f.evidence, &f.collateral, &untyped, f.at).expect_err(&format!(
        "forged {kind} evidence under an untyped simulated root"
    ));
    assert_refused_as_simulated_only(&err, kind, root);

    // No anchors at all: the built-in vendor roots refuse it too (the chain ends at
    // the simulated root, or needs it and does not find it among the vendor's).
    let err = verify(&f.evidence, &f.collateral, &TrustAnchors::none(), f.at)
        .expect_err(&format!("forged {kind} evidence with no anchors"));
    assert!(
        matches!(&err, VerifyError::UntrustedForKind { tee, .. } if *tee == kind)
            || matches!(&err, VerifyError::Certificate(X509Error::UnknownIssuer { issuer, .. }) if issuer.contains("Simulated Vendor Root")),
        "{kind}: {err:?}"
    );

    // The simulated root given explicitly for this kind: still simulated-only.
    let typed = TrustAnchors::for_kind(kind, [root.certificate.clone()]);
    let err = verify(&f.evidence, &f.collateral, &typed, f.at).expect_err(&format!(
        "forged {kind} evidence with the simulated root given for {kind}"
    ));
    assert_refused_as_simulated_only(&err, kind, root);

    // The control: the same forgery under a private root, given for this kind,
    // verifies; the forgery is otherwise complete.
    let private = private_root();
    let g = forge(&private);
    assert_eq!(g.kind, kind);
    let typed = TrustAnchors::for_kind(kind, [private.certificate.clone()]);
    let claims = verify(&g.evidence, &g.collateral, &typed, g.at).unwrap_or_else(|e| {
        panic!("forged {kind} evidence with a private root given for {kind}: {e}")
    });
    assert_eq!(claims.tee, kind);
    assert!(
        !claims.simulated,
        "{kind}: the forgery claims real hardware"
    );
    assert_eq!(claims.report_data.0, g.report_data, "{kind}");
    let anchor = claims.trust_anchor.expect("claims name their anchor");
    assert_eq!(anchor.kind, kind);
    assert_eq!(anchor.source, AnchorSource::Given);
    assert_eq!(anchor.sha256.0, private.sha256().to_vec(), "{kind}");
    assert_eq!(anchor.subject, private.certificate.subject());

    // The simulated-root forgery beside that private root, both given for this kind:
    // the private root is bound to the kind but is not this chain's, and the error
    // names the simulated root as the anchor refused, not "the anchors given".
    let both = TrustAnchors::for_kind(
        kind,
        [private.certificate.clone(), root.certificate.clone()],
    );
    let err = verify(&f.evidence, &f.collateral, &both, f.at).expect_err(&format!(
        "forged {kind} evidence beside a private root given for {kind}"
    ));
    assert_refused_as_simulated_only(&err, kind, root);
    assert!(
        !err.to_string().contains(private.certificate.subject()),
        "{kind}: the private root was not refused: {err}"
    );

    // The private root given for another kind does not vouch for this one.
    let other = if kind == TeeKind::Sgx {
        TeeKind::Tdx
    } else {
        TeeKind::Sgx
    };
    let err = verify(
        &g.evidence,
        &g.collateral,
        &TrustAnchors::for_kind(other, [private.certificate.clone()]),
        g.at,
    )
    .expect_err("a private root given for another kind");
    assert!(
        matches!(&err, VerifyError::UntrustedForKind { tee, .. } if *tee == kind),
        "{kind}: {err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "the anchor(s) '{}' given vouch for {other} evidence only",
            private.certificate.subject()
        )),
        "{kind}: {err}"
    );

    // Nor does it untyped: it is no vendor's root.
    let err = verify(
        &g.evidence,
        &g.collateral,
        &TrustAnchors::untyped([private.certificate.clone()]),
        g.at,
    )
    .expect_err("a private root untyped");
    assert!(
        matches!(&err, VerifyError::UntrustedForKind { tee, .. } if *tee == kind),
        "{kind}: {err:?}"
    );
}

/// Real evidence verifies with no anchors (the built-in vendor root), with its vendor
/// root given untyped, and with a client's simulated root given untyped beside nothing
/// else; the claims name the vendor root each time.
fn assert_real_evidence_verifies(
    root: &ForgingRoot,
    kind: TeeKind,
    evidence: &[u8],
    collateral: &[Vec<u8>],
    vendor_root: &ParsedCertificate,
    at: OffsetDateTime,
) {
    let vendor_sha = vendor_root.fingerprint().to_vec();
    let check = |anchors: &TrustAnchors, source: AnchorSource, what: &str| {
        let claims = verify(evidence, collateral, anchors, at)
            .unwrap_or_else(|e| panic!("real {kind} evidence, {what}: {e}"));
        assert_eq!(claims.tee, kind, "{what}");
        assert!(!claims.simulated);
        let anchor = claims.trust_anchor.expect("claims name their anchor");
        assert_eq!(anchor.kind, kind, "{what}");
        assert_eq!(anchor.source, source, "{kind}, {what}");
        assert_eq!(anchor.sha256.0, vendor_sha, "{kind}, {what}");
        assert_eq!(anchor.subject, vendor_root.subject(), "{kind}, {what}");
    };
    check(&TrustAnchors::none(), AnchorSource::BuiltIn, "no anchors");
    check(
        &TrustAnchors::untyped([root.certificate.clone()]),
        AnchorSource::BuiltIn,
        "the simulated root untyped",
    );
    // The vendor root given by the caller is a built-in root all the same.
    check(
        &TrustAnchors::untyped([vendor_root.clone()]),
        AnchorSource::BuiltIn,
        "the vendor root untyped",
    );
    check(
        &TrustAnchors::untyped([root.certificate.clone(), vendor_root.clone()]),
        AnchorSource::BuiltIn,
        "the simulated and the vendor root untyped",
    );
}

// ---------------------------------------------------------------------------------------
// AWS Nitro: a COSE_Sign1 document whose cabundle starts at the simulated root.

fn nitro_forgery(root: &ForgingRoot) -> Forgery {
    Forgery {
        kind: TeeKind::Nitro,
        evidence: forge::nitro_document(root, &FORGED_REPORT_DATA, FORGED_AT),
        collateral: Vec::new(),
        at: FORGED_AT + time::Duration::minutes(1),
        report_data: FORGED_REPORT_DATA.to_vec(),
    }
}

#[test]
fn nitro_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, nitro_forgery);
    let forgery = nitro_forgery(&s.root);
    // A client trusting both the simulated root and the AWS root, untyped: the AWS root
    // is the only one bound to aws-nitro, and the forged chain does not reach it.
    let aws = aws_nitro_root();
    let both = TrustAnchors::untyped([s.root.certificate.clone(), aws]);
    let err = verify(&forgery.evidence, &[], &both, forgery.at).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::UntrustedForKind {
                tee: TeeKind::Nitro,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Simulated Vendor Root"), "{err}");
    assert!(err.to_string().contains("simulated evidence only"), "{err}");
}

fn aws_nitro_root() -> ParsedCertificate {
    ParsedCertificate::from_pem_chain(veritee_verify::nitro::AWS_NITRO_ROOT_G1_PEM)
        .unwrap()
        .remove(0)
}

#[test]
fn nitro_real_documents_still_verify() {
    let s = sim();
    let evidence = decode_evidence(&data("nitro/valid-attestation-doc-bytes")).unwrap();
    assert_real_evidence_verifies(
        &s.root,
        TeeKind::Nitro,
        &evidence,
        &[],
        &aws_nitro_root(),
        datetime!(2022-10-13 08:58:02.136 UTC),
    );
}

// ---------------------------------------------------------------------------------------
// AMD SEV-SNP: a report signed by a "VCEK" under a "SEV-Milan" ASK under the simulated
// root. The ASK travels as collateral, as AMD's does.

/// A Milan TCB (boot loader 3, TEE 0, SNP 8, microcode 115) in the pre-Turin layout.
const SNP_TCB: [u8; 8] = [3, 0, 0, 0, 0, 0, 8, 115];
const OID_SNP_SPL_ARCS: [(&[u64], u8); 4] = [
    (&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1], 3),   // blSPL
    (&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 2], 0),   // teeSPL
    (&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 3], 8),   // snpSPL
    (&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 8], 115), // ucodeSPL
];

/// A forged AMD chain: ASK (CN=SEV-Milan) and VCEK (CN=SEV-VCEK, with the SPLs of
/// [`SNP_TCB`]), both valid around `at`.
struct SnpChain {
    ask: Issued,
    vcek: Issued,
}

fn snp_chain(root: &ForgingRoot, at: OffsetDateTime) -> SnpChain {
    let amd = |cn| {
        name(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Advanced Micro Devices"),
            (DnType::CommonName, cn),
        ])
    };
    let ask = issue(
        &root.issuer,
        ca_params(
            amd("SEV-Milan"),
            at - time::Duration::days(365),
            at + time::Duration::days(365),
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );
    // The SPL extensions hold DER INTEGERs (all below 128 here: one content byte).
    let spls = OID_SNP_SPL_ARCS
        .iter()
        .map(|(oid, value)| CustomExtension::from_oid_content(oid, vec![0x02, 0x01, *value]))
        .collect();
    let vcek = issue(
        &ask.issuer(),
        leaf_params(
            amd("SEV-VCEK"),
            at - time::Duration::days(30),
            at + time::Duration::days(365),
            spls,
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );
    SnpChain { ask, vcek }
}

/// An SEV-SNP v2 report from VMPL `vmpl`, signed by `vcek`. CHIP_ID is zero (masked),
/// so the VCEK needs no hwID.
fn snp_report(report_data: &[u8; 64], vmpl: u32, vcek: &EcdsaSigningKey) -> Vec<u8> {
    snp_report_of(2, [0; 16], report_data, vmpl, vcek)
}

/// [`snp_report`] of `version`, with `after_launch_tcb` at 0x1F8 (a v5 report's
/// LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR).
fn snp_report_of(
    version: u32,
    after_launch_tcb: [u8; 16],
    report_data: &[u8; 64],
    vmpl: u32,
    vcek: &EcdsaSigningKey,
) -> Vec<u8> {
    let mut r = vec![0u8; REPORT_LEN];
    let mut put =
        |offset: usize, bytes: &[u8]| r[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(0x000, &version.to_le_bytes()); // VERSION
    put(0x1F8, &after_launch_tcb);
    put(0x004, &1u32.to_le_bytes()); // GUEST_SVN
    put(0x008, &0x0003_0000u64.to_le_bytes()); // POLICY: SMT allowed, reserved bit 17; no debug
    put(0x030, &vmpl.to_le_bytes());
    put(0x034, &1u32.to_le_bytes()); // SIGNATURE_ALGO: ECDSA P-384/SHA-384
    put(0x038, &SNP_TCB); // CURRENT_TCB
    put(0x048, &0u32.to_le_bytes()); // flags: SIGNING_KEY = VCEK
    put(0x050, report_data);
    put(0x090, &[0x4d; 48]); // MEASUREMENT
    put(0x180, &SNP_TCB); // REPORTED_TCB
    put(0x1E0, &SNP_TCB); // COMMITTED_TCB
    put(0x1F0, &SNP_TCB); // LAUNCH_TCB
    let signature = vcek.sign(&r[..SIGNED_LEN]).unwrap();
    // R and S are stored little-endian in 72-byte fields.
    for (component, offset) in [
        (&signature[..48], SIGNED_LEN),
        (&signature[48..], SIGNED_LEN + 72),
    ] {
        for (i, byte) in component.iter().rev().enumerate() {
            r[offset + i] = *byte;
        }
    }
    r
}

fn snp_forgery(root: &ForgingRoot) -> Forgery {
    let chain = snp_chain(root, FORGED_AT);
    let vcek_key = chain.vcek.signing_key(EcdsaCurve::P384);
    Forgery {
        kind: TeeKind::SevSnp,
        evidence: snp_report(&FORGED_REPORT_DATA, 0, &vcek_key),
        collateral: vec![chain.vcek.der.clone(), chain.ask.der.clone()],
        at: FORGED_AT,
        report_data: FORGED_REPORT_DATA.to_vec(),
    }
}

fn milan(cn_part: &str) -> ParsedCertificate {
    ParsedCertificate::from_pem_chain(&data("snp/milan_ask_ark_asvk.pem"))
        .unwrap()
        .into_iter()
        .find(|c| c.subject().contains(cn_part))
        .unwrap_or_else(|| panic!("no {cn_part} in the Milan chain"))
}

#[test]
fn sev_snp_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, snp_forgery);
}

/// A version 5 report (this chain is a private root's, given for SEV-SNP): it
/// verifies, its mitigation vectors are claims, and they are signed.
#[test]
fn sev_snp_version_5_reports_verify_with_their_mitigation_vectors() {
    let private = private_root();
    let chain = snp_chain(&private, FORGED_AT);
    let vcek_key = chain.vcek.signing_key(EcdsaCurve::P384);
    let mut vectors = [0u8; 16];
    vectors[..8].copy_from_slice(&0x15u64.to_le_bytes());
    vectors[8..].copy_from_slice(&0x17u64.to_le_bytes());
    let report = snp_report_of(5, vectors, &FORGED_REPORT_DATA, 0, &vcek_key);
    let collateral = vec![chain.vcek.der.clone(), chain.ask.der.clone()];
    let anchors = TrustAnchors::for_kind(TeeKind::SevSnp, [private.certificate.clone()]);
    let claims = verify(&report, &collateral, &anchors, FORGED_AT).unwrap();
    assert_eq!(claims.details["report_version"], "5");
    assert_eq!(claims.details["launch_mit_vector"], "0x0000000000000015");
    assert_eq!(claims.details["current_mit_vector"], "0x0000000000000017");
    let mut changed = report.clone();
    changed[0x200] ^= 1;
    assert!(matches!(
        verify(&changed, &collateral, &anchors, FORGED_AT),
        Err(VerifyError::Signature(_))
    ));
    // A version 4 report is laid out as 3: those bytes are reserved, and not claims.
    let v4 = snp_report_of(4, vectors, &FORGED_REPORT_DATA, 0, &vcek_key);
    let claims = verify(&v4, &collateral, &anchors, FORGED_AT).unwrap();
    assert!(!claims.details.contains_key("launch_mit_vector"));
}

#[test]
fn sev_snp_real_reports_still_verify() {
    let s = sim();
    assert_real_evidence_verifies(
        &s.root,
        TeeKind::SevSnp,
        &data("snp/test-report.bin"),
        &[data("snp/test-vcek.der")],
        &milan("CN=ARK-Milan"),
        datetime!(2026-07-01 00:00 UTC),
    );
}

// ---------------------------------------------------------------------------------------
// Azure SEV-SNP vTPM: the same forged AMD chain signs an SNP report (VMPL 0) binding HCL
// variable data that names the forger's RSA attestation key, which signs a TPM quote.

fn azure_forgery(root: &ForgingRoot) -> Forgery {
    use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let chain = snp_chain(root, FORGED_AT);
    let vcek_key = chain.vcek.signing_key(EcdsaCurve::P384);

    // The vTPM attestation key, published in the HCL variable data as a JWK.
    let ak = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let public: PublicKeyComponents<Vec<u8>> = ak.public_key().into();
    let var_data = serde_json::to_vec(&serde_json::json!({
        "keys": [{ "kid": "HCLAkPub", "kty": "RSA", "n": b64url(&public.n), "e": b64url(&public.e) }],
        "vm-configuration": { "secure-boot": true, "tpm-enabled": true },
    }))
    .unwrap();
    let mut report_data = [0u8; 64];
    report_data[..32].copy_from_slice(&sha256(&var_data));
    let snp = snp_report(&report_data, 0, &vcek_key);

    // HCL report: header, SNP report, IGVM request data (SNP, SHA-256), variable data.
    // Header: version 1, report size (to the end of the variable data), request type 2
    // (key release), status 0, reserved.
    let var_len = u32::try_from(var_data.len()).unwrap();
    let report_size = 32 + u32::try_from(snp.len()).unwrap() + 20 + var_len;
    let mut hcl = b"HCLA".to_vec();
    for word in [1, report_size, 2, 0, 0, 0, 0] {
        hcl.extend_from_slice(&word.to_le_bytes());
    }
    hcl.extend_from_slice(&snp);
    for word in [20 + var_len, 1, 2, 1, var_len] {
        hcl.extend_from_slice(&word.to_le_bytes());
    }
    hcl.extend_from_slice(&var_data);

    // The TPM quote over SHA-256 PCRs 0..=23, with the forger's nonce in extraData.
    let pcrs: Vec<[u8; 32]> = (0u8..24).map(|i| [i; 32]).collect();
    let message = tpms_attest(
        b"\x00\x0bforged-qualified-signer-name-000",
        &FORGED_REPORT_DATA,
        TPM_ALG_SHA256,
        [0xff, 0xff, 0xff],
        &pcrs.concat(),
    );
    let mut signature = vec![0u8; ak.public_modulus_len()];
    ak.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        &message,
        &mut signature,
    )
    .unwrap();

    let evidence = serde_json::to_vec(&serde_json::json!({
        "version": 1,
        "tpm_quote": {
            "signature": hex::encode(&signature),
            "message": hex::encode(&message),
            "pcrs": pcrs.iter().map(hex::encode).collect::<Vec<_>>(),
        },
        "hcl_report": b64url(&hcl),
        "vcek": b64url(&chain.vcek.der),
    }))
    .unwrap();
    Forgery {
        kind: TeeKind::AzureSnpVtpm,
        evidence,
        collateral: vec![chain.ask.der.clone()],
        at: FORGED_AT,
        report_data: FORGED_REPORT_DATA.to_vec(),
    }
}

#[test]
fn azure_snp_vtpm_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, azure_forgery);
}

#[test]
fn azure_snp_vtpm_real_evidence_still_verifies() {
    let s = sim();
    assert_real_evidence_verifies(
        &s.root,
        TeeKind::AzureSnpVtpm,
        &data("azure/evidence-v1.json"),
        &[],
        &milan("CN=ARK-Milan"),
        datetime!(2026-07-01 00:00 UTC),
    );
}

// ---------------------------------------------------------------------------------------
// TPM 2.0 (GCE vTPM): a go-tpm-tools Attestation whose ECC attestation key is certified
// by an "EK/AK CA Intermediate" under the simulated root.

const TPM_ALG_SHA256: u16 = 0x000B;

/// A TPMS_ATTEST quote by `signer` (its qualified name) over one bank (`bitmap` selects
/// PCRs 0..24), `values` being the selected PCR values concatenated in order.
fn tpms_attest(signer: &[u8], nonce: &[u8], bank: u16, bitmap: [u8; 3], values: &[u8]) -> Vec<u8> {
    let tpm2b = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&u16::try_from(b.len()).unwrap().to_be_bytes());
        out.extend_from_slice(b);
    };
    let mut q = Vec::new();
    q.extend_from_slice(&0xFF54_4347u32.to_be_bytes()); // TPM_GENERATED_VALUE
    q.extend_from_slice(&0x8018u16.to_be_bytes()); // TPM_ST_ATTEST_QUOTE
    tpm2b(&mut q, signer);
    tpm2b(&mut q, nonce);
    q.extend_from_slice(&123_456u64.to_be_bytes()); // clock
    q.extend_from_slice(&1u32.to_be_bytes()); // resetCount
    q.extend_from_slice(&0u32.to_be_bytes()); // restartCount
    q.push(1); // safe
    q.extend_from_slice(&0x2020_0101u64.to_be_bytes()); // firmwareVersion
    q.extend_from_slice(&1u32.to_be_bytes()); // one bank
    q.extend_from_slice(&bank.to_be_bytes());
    q.push(3);
    q.extend_from_slice(&bitmap);
    tpm2b(&mut q, &sha256(values));
    q
}

/// Protobuf: a length-delimited field.
fn pb_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    pb_varint_raw(out, field << 3 | 2);
    pb_varint_raw(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Protobuf: a varint field.
fn pb_varint(out: &mut Vec<u8>, field: u64, value: u64) {
    pb_varint_raw(out, field << 3);
    pb_varint_raw(out, value);
}

fn pb_varint_raw(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tpm_forgery(root: &ForgingRoot) -> Forgery {
    let at = FORGED_AT;
    let google = |cn| {
        name(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Google LLC"),
            (DnType::CommonName, cn),
        ])
    };
    let ca = issue(
        &root.issuer,
        ca_params(
            google("EK/AK CA Intermediate"),
            at - time::Duration::days(365),
            at + time::Duration::days(365),
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );
    let ak = issue(
        &ca.issuer(),
        leaf_params(
            google("projects/forged/zones/us-central1-a/instances/forged"),
            at - time::Duration::days(1),
            at + time::Duration::days(365),
            Vec::new(),
        ),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    );
    let ak_key = ak.signing_key(EcdsaCurve::P256);
    let point = ak_key.public_key_point();
    assert_eq!(point.len(), 65);

    // TPMT_PUBLIC of a restricted ECDSA P-256 signing key.
    let mut ak_pub = Vec::new();
    ak_pub.extend_from_slice(&0x0023u16.to_be_bytes()); // TPM_ALG_ECC
    ak_pub.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes()); // nameAlg
    ak_pub.extend_from_slice(&0x0005_0072u32.to_be_bytes()); // objectAttributes
    ak_pub.extend_from_slice(&0u16.to_be_bytes()); // authPolicy: empty
    ak_pub.extend_from_slice(&0x0010u16.to_be_bytes()); // symmetric: NULL
    ak_pub.extend_from_slice(&0x0018u16.to_be_bytes()); // scheme: ECDSA
    ak_pub.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    ak_pub.extend_from_slice(&0x0003u16.to_be_bytes()); // TPM_ECC_NIST_P256
    ak_pub.extend_from_slice(&0x0010u16.to_be_bytes()); // kdf: NULL
    for coordinate in [&point[1..33], &point[33..65]] {
        ak_pub.extend_from_slice(&32u16.to_be_bytes());
        ak_pub.extend_from_slice(coordinate);
    }

    // One quote over SHA-256 PCRs 0..=7 with the forger's nonce.
    let nonce = &FORGED_REPORT_DATA[..32];
    let pcrs: Vec<[u8; 32]> = (0u8..8).map(|i| [0x30 + i; 32]).collect();
    // The AK as a primary key of the endorsement hierarchy, as GCE's is: the quote names
    // it by its qualified name.
    let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(&sha256(&ak_pub));
    let mut qualified = TPM_ALG_SHA256.to_be_bytes().to_vec();
    qualified.extend_from_slice(&sha256(
        &[&0x4000_000Bu32.to_be_bytes()[..], &name].concat(),
    ));
    let quote = tpms_attest(
        &qualified,
        nonce,
        TPM_ALG_SHA256,
        [0xff, 0, 0],
        &pcrs.concat(),
    );
    let signature = ak_key.sign(&quote).unwrap();
    let mut raw_sig = Vec::new();
    raw_sig.extend_from_slice(&0x0018u16.to_be_bytes()); // TPM_ALG_ECDSA
    raw_sig.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    for component in [&signature[..32], &signature[32..]] {
        raw_sig.extend_from_slice(&32u16.to_be_bytes());
        raw_sig.extend_from_slice(component);
    }

    let mut pcr_map = Vec::new();
    pb_varint(&mut pcr_map, 1, u64::from(TPM_ALG_SHA256));
    for (index, value) in pcrs.iter().enumerate() {
        let mut entry = Vec::new();
        pb_varint(&mut entry, 1, index as u64);
        pb_bytes(&mut entry, 2, value);
        pb_bytes(&mut pcr_map, 2, &entry);
    }
    let mut quote_message = Vec::new();
    pb_bytes(&mut quote_message, 1, &quote);
    pb_bytes(&mut quote_message, 2, &raw_sig);
    pb_bytes(&mut quote_message, 3, &pcr_map);

    let mut attestation = Vec::new();
    pb_bytes(&mut attestation, 1, &ak_pub);
    pb_bytes(&mut attestation, 2, &quote_message);
    pb_bytes(&mut attestation, 6, &ak.der);
    pb_bytes(&mut attestation, 7, &ca.der);
    Forgery {
        kind: TeeKind::Tpm2,
        evidence: attestation,
        collateral: Vec::new(),
        at,
        report_data: nonce.to_vec(),
    }
}

#[test]
fn tpm2_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, tpm_forgery);
}

#[test]
fn tpm2_real_attestations_still_verify() {
    let s = sim();
    assert_real_evidence_verifies(
        &s.root,
        TeeKind::Tpm2,
        &data("tpm/gce-cos-85-nonce9009.pb"),
        &[],
        &ParsedCertificate::from_der(&data("tpm/tpm_ek_root_1.cer")).unwrap(),
        datetime!(2022-01-01 00:00 UTC),
    );
}

// ---------------------------------------------------------------------------------------
// NVIDIA H100: the real SPDM report with the forger's nonce, re-signed by a "GSP FMC LF"
// certificate (carrying the real firmware's FWID) under the simulated root.

fn nvidia_forgery(root: &ForgingRoot) -> Forgery {
    let at = FORGED_AT;
    let real_report = decode_evidence(&data("nvidia/hopperAttestationReport.txt")).unwrap();
    let real_chain =
        ParsedCertificate::from_pem_chain(&data("nvidia/hopperCertChain.txt")).unwrap();
    // The FWID extension is copied from the real device certificate, so that the report's
    // FWID is the one "certified".
    let (critical, fwid) = real_chain[0]
        .extension(&OID_TCG_DICE_FWID)
        .expect("the real leaf has an FWID");
    let mut fwid = CustomExtension::from_oid_content(&[2, 23, 133, 5, 4, 1], fwid.to_vec());
    fwid.set_criticality(critical);
    let nvidia = |cn| {
        name(&[
            (DnType::OrganizationName, "NVIDIA Corporation"),
            (DnType::CommonName, cn),
        ])
    };
    let identity = issue(
        &root.issuer,
        ca_params(
            nvidia("NVIDIA GH100 Identity"),
            at - time::Duration::days(365),
            at + time::Duration::days(3650),
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );
    let leaf = issue(
        &identity.issuer(),
        leaf_params(
            nvidia("GH100 A01 GSP FMC LF"),
            at - time::Duration::days(1),
            at + time::Duration::days(3650),
            vec![fwid],
        ),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    );
    let nonce = &FORGED_REPORT_DATA[..32];
    let mut signed = SpdmReport::parse(&real_report).unwrap().signed_bytes;
    signed[4..36].copy_from_slice(nonce); // the request's nonce
    let signature = leaf.signing_key(EcdsaCurve::P384).sign(&signed).unwrap();
    signed.extend_from_slice(&signature);
    Forgery {
        kind: TeeKind::NvidiaH100,
        evidence: signed,
        collateral: vec![format!("{}{}{}", leaf.pem, identity.pem, root.pem).into_bytes()],
        at,
        report_data: nonce.to_vec(),
    }
}

fn nvidia_root() -> ParsedCertificate {
    ParsedCertificate::from_pem_chain(veritee_verify::nvidia::NVIDIA_DEVICE_IDENTITY_CA_PEM)
        .unwrap()
        .remove(0)
}

#[test]
fn nvidia_h100_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, nvidia_forgery);
}

#[test]
fn nvidia_h100_real_report_still_verifies() {
    let s = sim();
    assert_real_evidence_verifies(
        &s.root,
        TeeKind::NvidiaH100,
        &decode_evidence(&data("nvidia/hopperAttestationReport.txt")).unwrap(),
        &[data("nvidia/hopperCertChain.txt")],
        &nvidia_root(),
        datetime!(2025-01-01 0:00 UTC),
    );
}

// ---------------------------------------------------------------------------------------
// Intel SGX and TDX (DCAP): a complete forgery. The collateral keeps Intel's own TCB info
// and QE identity texts but re-signs them with a "TCB Signing" certificate issued by the
// simulated root, with CRLs from the forged CAs; the quote carries the forger's report
// data, a fresh attestation key, and a QE report binding it, signed by a "PCK" certificate
// (with the real platform's SGX extensions copied) under a "PCK Platform CA" under the
// simulated root.

const SGX_FIXTURE: (&str, &str, OffsetDateTime) = (
    "dcap/sgx_quote",
    "dcap/sgx_quote_collateral.json",
    datetime!(2025-07-01 00:00 UTC),
);
const TDX_FIXTURE: (&str, &str, OffsetDateTime) = (
    "dcap/tdx_quote",
    "dcap/tdx_quote_collateral.json",
    datetime!(2025-07-01 00:00 UTC),
);
/// Offset of REPORTDATA in an SGX report body (the ISV report and the QE report).
const SGX_REPORT_DATA: usize = 0x140;
/// Offset of REPORTDATA in a TD report body.
const TD_REPORT_DATA: usize = 0x208;

fn dcap_forgery(root: &ForgingRoot, fixture: (&str, &str, OffsetDateTime)) -> Forgery {
    use veritee_verify::dcap::quote::{
        BODY_DESCRIPTOR_LEN, CERT_TYPE_PCK_CHAIN, CERT_TYPE_QE_REPORT, HEADER_LEN,
    };
    let (quote_file, collateral_file, at) = fixture;
    let real_quote = decode_evidence(&data(quote_file)).unwrap();
    let quote = Quote::parse(&real_quote).unwrap();
    let intel = |cn| {
        name(&[
            (DnType::CommonName, cn),
            (DnType::OrganizationName, "Intel Corporation"),
            (DnType::LocalityName, "Santa Clara"),
            (DnType::StateOrProvinceName, "CA"),
            (DnType::CountryName, "US"),
        ])
    };
    let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
    let tcb_signing = issue(
        &root.issuer,
        leaf_params(
            intel("Intel SGX TCB Signing"),
            at - time::Duration::days(365),
            at + time::Duration::days(365),
            Vec::new(),
        ),
        p256,
    );
    let pck_ca = issue(
        &root.issuer,
        ca_params(
            intel("Intel SGX PCK Platform CA"),
            at - time::Duration::days(365),
            at + time::Duration::days(365),
        ),
        p256,
    );
    let real_pck = ParsedCertificate::from_pem_chain(quote.pck_chain_pem)
        .unwrap()
        .remove(0);
    let (critical, sgx) = real_pck
        .extension(&OID_SGX_EXTENSIONS)
        .expect("the real PCK certificate has SGX extensions");
    let mut sgx = CustomExtension::from_oid_content(&[1, 2, 840, 113741, 1, 13, 1], sgx.to_vec());
    sgx.set_criticality(critical);
    let pck_ca_issuer: CaIssuer = pck_ca.issuer();
    let pck = issue(
        &pck_ca_issuer,
        leaf_params(
            intel("Intel SGX PCK Certificate"),
            at - time::Duration::days(365),
            at + time::Duration::days(365),
            vec![sgx],
        ),
        p256,
    );

    // Collateral: Intel's documents, re-signed; the forged chains and CRLs.
    let mut collateral: serde_json::Value = serde_json::from_slice(&data(collateral_file)).unwrap();
    let tcb_key = tcb_signing.signing_key(EcdsaCurve::P256);
    for (document, signature) in [
        ("tcb_info", "tcb_info_signature"),
        ("qe_identity", "qe_identity_signature"),
    ] {
        let text = collateral[document]
            .as_str()
            .expect("signed text")
            .to_owned();
        collateral[signature] = hex::encode(tcb_key.sign(text.as_bytes()).unwrap()).into();
    }
    let tcb_chain = format!("{}{}", tcb_signing.pem, root.pem);
    collateral["tcb_info_issuer_chain"] = tcb_chain.clone().into();
    collateral["qe_identity_issuer_chain"] = tcb_chain.into();
    let crl_time = at - time::Duration::days(1);
    collateral["root_ca_crl"] = hex::encode(empty_crl(&root.issuer, crl_time)).into();
    collateral["pck_crl"] = hex::encode(empty_crl(&pck_ca_issuer, crl_time)).into();
    collateral["pck_crl_issuer_chain"] = format!("{}{}", pck_ca.pem, root.pem).into();

    // The quote: header and body with the forger's report data, signed by a fresh
    // attestation key that the QE report binds: SHA-256(key || QE auth data).
    let mut signed = quote.signed.to_vec();
    let body = HEADER_LEN
        + if quote.header.version == 5 {
            BODY_DESCRIPTOR_LEN
        } else {
            0
        };
    let report_data_at = body
        + if quote.is_tdx() {
            TD_REPORT_DATA
        } else {
            SGX_REPORT_DATA
        };
    signed[report_data_at..report_data_at + 64].copy_from_slice(&FORGED_REPORT_DATA);
    let attestation_key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
    let ak_xy = attestation_key.public_key_point()[1..].to_vec();
    let mut qe_report = quote.qe_report_bytes.to_vec();
    let bound = [&ak_xy[..], quote.qe_auth_data].concat();
    qe_report[SGX_REPORT_DATA..SGX_REPORT_DATA + 32].copy_from_slice(&sha256(&bound));
    let qe_signature = pck.signing_key(EcdsaCurve::P256).sign(&qe_report).unwrap();
    let pck_chain = format!("{}{}{}", pck.pem, pck_ca.pem, root.pem).into_bytes();

    let mut qe_data = qe_report;
    qe_data.extend_from_slice(&qe_signature);
    qe_data.extend_from_slice(
        &u16::try_from(quote.qe_auth_data.len())
            .unwrap()
            .to_le_bytes(),
    );
    qe_data.extend_from_slice(quote.qe_auth_data);
    qe_data.extend_from_slice(&CERT_TYPE_PCK_CHAIN.to_le_bytes());
    qe_data.extend_from_slice(&u32::try_from(pck_chain.len()).unwrap().to_le_bytes());
    qe_data.extend_from_slice(&pck_chain);
    let mut signature_data = attestation_key.sign(&signed).unwrap();
    signature_data.extend_from_slice(&ak_xy);
    if quote.header.version == 3 {
        signature_data.extend_from_slice(&qe_data);
    } else {
        signature_data.extend_from_slice(&CERT_TYPE_QE_REPORT.to_le_bytes());
        signature_data.extend_from_slice(&u32::try_from(qe_data.len()).unwrap().to_le_bytes());
        signature_data.extend_from_slice(&qe_data);
    }
    let mut evidence = signed;
    evidence.extend_from_slice(&u32::try_from(signature_data.len()).unwrap().to_le_bytes());
    evidence.extend_from_slice(&signature_data);
    Forgery {
        kind: if quote.is_tdx() {
            TeeKind::Tdx
        } else {
            TeeKind::Sgx
        },
        evidence,
        collateral: vec![serde_json::to_vec(&collateral).unwrap()],
        at,
        report_data: FORGED_REPORT_DATA.to_vec(),
    }
}

fn intel_root() -> ParsedCertificate {
    ParsedCertificate::from_der(veritee_verify::dcap::INTEL_SGX_ROOT_CA_DER).unwrap()
}

#[test]
fn sgx_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, |root| dcap_forgery(root, SGX_FIXTURE));
}

#[test]
fn tdx_forged_under_the_simulated_root_is_refused() {
    let s = sim();
    assert_refused_unless_given_for_its_kind(&s, |root| dcap_forgery(root, TDX_FIXTURE));
}

#[test]
fn dcap_real_quotes_still_verify() {
    let s = sim();
    for (kind, (quote, collateral, at)) in
        [(TeeKind::Sgx, SGX_FIXTURE), (TeeKind::Tdx, TDX_FIXTURE)]
    {
        assert_real_evidence_verifies(
            &s.root,
            kind,
            &decode_evidence(&data(quote)).unwrap(),
            &[data(collateral)],
            &intel_root(),
            at,
        );
    }
}

// ---------------------------------------------------------------------------------------
// What untyped anchors vouch for, and simulated evidence under hardware anchors.

#[test]
fn untyped_anchors_vouch_for_their_vendors_kinds_only() {
    let s = sim();
    let verifiers = Verifiers::default();
    let kinds = |anchor: &ParsedCertificate| verifiers.kinds_of_untyped(anchor);
    assert_eq!(
        kinds(&intel_root()),
        vec![TeeKind::Sgx, TeeKind::Tdx, TeeKind::AzureTdxVtpm]
    );
    let amd = vec![TeeKind::SevSnp, TeeKind::AzureSnpVtpm];
    let ark = milan("CN=ARK-Milan");
    let ask = milan("CN=SEV-Milan");
    assert!(
        ask.verify_issued_by(&ark).is_ok(),
        "the ASK is issued by the ARK"
    );
    assert_eq!(kinds(&ark), amd, "the Milan ARK");
    assert_eq!(kinds(&ask), amd, "the Milan ASK");
    assert_eq!(kinds(&milan("CN=SEV-VLEK-Milan")), amd, "the Milan ASVK");
    assert_eq!(kinds(&aws_nitro_root()), vec![TeeKind::Nitro]);
    assert_eq!(kinds(&nvidia_root()), vec![TeeKind::NvidiaH100]);
    assert_eq!(
        kinds(&ParsedCertificate::from_der(&data("tpm/tpm_ek_root_1.cer")).unwrap()),
        vec![TeeKind::Tpm2]
    );
    // The simulated root, and anything the forger issues under it, even with an AMD name.
    assert_eq!(kinds(&s.root.certificate), vec![TeeKind::Simulated]);
    let forged_ask = snp_chain(&s.root, FORGED_AT).ask.parsed();
    assert!(forged_ask.subject().contains("SEV-Milan"));
    assert_eq!(kinds(&forged_ask), vec![TeeKind::Simulated]);
    // A self-signed certificate that copies the AMD ARK's name is not the ARK.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let impostor = ca_params(
        name(&[
            (DnType::CommonName, "ARK-Milan"),
            (DnType::OrganizationName, "Advanced Micro Devices"),
        ]),
        FORGED_AT,
        FORGED_AT + time::Duration::days(1),
    )
    .self_signed(&key)
    .unwrap();
    let impostor = ParsedCertificate::from_der(impostor.der()).unwrap();
    assert_eq!(kinds(&impostor), vec![TeeKind::Simulated]);
}

#[test]
fn simulated_evidence_needs_the_simulated_root() {
    let mut s = sim();
    let dir = tempfile::tempdir().unwrap();
    let machine = SimMachine::init(&dir.path().join("m"), &mut s.vendor, None, VENDOR_NOW).unwrap();
    let enclave = machine
        .launch(&EnclaveImage::unsigned(b"code", 1, 1, false))
        .unwrap();
    let report_data = ReportData([0x5a; 64]);
    let evidence = enclave.evidence_at(&report_data, VENDOR_NOW).unwrap();
    let at = VENDOR_NOW + time::Duration::minutes(1);
    let amd_ark = milan("CN=ARK-Milan");

    // Only hardware vendor roots given: refused, naming the kinds they vouch for.
    for (anchors, vouched) in [
        (
            TrustAnchors::untyped([aws_nitro_root()]),
            "aws-nitro evidence only",
        ),
        (
            TrustAnchors::untyped([intel_root(), amd_ark.clone()]),
            "sgx, tdx, sev-snp, azure-snp-vtpm, azure-tdx-vtpm evidence only",
        ),
        // A private root given for a hardware kind vouches for that kind only.
        (
            TrustAnchors::for_kind(TeeKind::Nitro, [private_root().certificate.clone()]),
            "aws-nitro evidence only",
        ),
    ] {
        let err = verify(&evidence, &[], &anchors, at).unwrap_err();
        assert!(matches!(err, VerifyError::MissingCollateral(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("simulated vendor's root"), "{text}");
        assert!(text.contains(vouched), "'{text}' lacks '{vouched}'");
    }

    // The simulated root, untyped (beside a hardware root), or given for any kind (it
    // vouches for simulated evidence whatever it is given for): verified, and named.
    for anchors in [
        TrustAnchors::untyped([s.root.certificate.clone()]),
        TrustAnchors::untyped([aws_nitro_root(), s.root.certificate.clone()]),
        TrustAnchors::for_kind(TeeKind::Simulated, [s.root.certificate.clone()]),
        TrustAnchors::for_kind(TeeKind::Nitro, [s.root.certificate.clone()]),
    ] {
        let claims = verify(&evidence, &[], &anchors, at).unwrap();
        assert!(claims.simulated);
        assert_eq!(claims.report_data.0, report_data.0.to_vec());
        let anchor = claims.trust_anchor.expect("claims name their anchor");
        assert_eq!(anchor.kind, TeeKind::Simulated);
        assert_eq!(anchor.source, AnchorSource::Given);
        assert_eq!(anchor.sha256.0, s.root.sha256().to_vec());
    }
}

#[test]
fn the_simulated_pki_is_marked_and_real_vendor_roots_are_not() {
    let mut s = sim();
    let dir = tempfile::tempdir().unwrap();
    let machine = SimMachine::init(&dir.path().join("m"), &mut s.vendor, None, VENDOR_NOW).unwrap();
    let collateral = s.vendor.collateral().unwrap();
    let platform_ca = ParsedCertificate::from_der(&collateral.platform_ca).unwrap();
    let enclave = machine
        .launch(&EnclaveImage::unsigned(b"code", 1, 1, false))
        .unwrap();
    let evidence = enclave
        .evidence_at(&ReportData([0; 64]), VENDOR_NOW)
        .unwrap();
    let envelope = SimEvidence::parse(&evidence).unwrap();
    let machine_cert = ParsedCertificate::from_der(&envelope.machine_certificate).unwrap();
    let tcb_signing = SignedTcbInfo::parse(&collateral.tcb_info)
        .unwrap()
        .signing_chain
        .remove(0);
    assert!(tcb_signing.subject().contains("TCB Signing"));
    for (what, cert) in [
        ("root", &s.root.certificate),
        ("platform CA", &platform_ca),
        ("TCB signing", &tcb_signing),
        ("machine", &machine_cert),
    ] {
        assert!(is_simulated_pki(cert), "the simulated vendor's {what}");
        // The marker itself, non-critical, on every certificate.
        let (critical, value) = cert
            .extension(&OID_SIMULATED_VENDOR)
            .unwrap_or_else(|| panic!("the {what} carries the marker"));
        assert!(!critical, "{what}");
        assert_eq!(value, SIMULATED_VENDOR_VALUE, "{what}");
    }
    for (what, cert) in [
        ("AWS Nitro", aws_nitro_root()),
        ("Intel SGX", intel_root()),
        ("AMD ARK-Milan", milan("CN=ARK-Milan")),
        ("NVIDIA", nvidia_root()),
        ("a private root", private_root().certificate),
    ] {
        assert!(!is_simulated_pki(&cert), "{what}");
    }
    // Forgers issue unmarked certificates under the simulated root: it is the anchor
    // that carries the marker, and the anchor that is bound.
    let forged_ask = snp_chain(&s.root, FORGED_AT).ask.parsed();
    assert!(!is_simulated_pki(&forged_ask));
    let verifiers = Verifiers::default();
    for given_for in [
        None,
        Some(TeeKind::Nitro),
        Some(TeeKind::Sgx),
        Some(TeeKind::Simulated),
    ] {
        assert_eq!(
            verifiers.kinds_of(given_for, &s.root.certificate),
            vec![TeeKind::Simulated],
            "{given_for:?}"
        );
        assert_eq!(
            verifiers.kinds_of(given_for, &platform_ca),
            vec![TeeKind::Simulated],
            "{given_for:?}"
        );
    }
    assert_eq!(
        verifiers.kinds_of(Some(TeeKind::Nitro), &private_root().certificate),
        vec![TeeKind::Nitro]
    );
}

#[test]
fn collateral_issued_names_only_the_collateral_used() {
    let mut s = sim();
    let dir = tempfile::tempdir().unwrap();
    let machine = SimMachine::init(&dir.path().join("m"), &mut s.vendor, None, VENDOR_NOW).unwrap();
    let enclave = machine
        .launch(&EnclaveImage::unsigned(b"code", 1, 1, false))
        .unwrap();
    // The evidence carries the collateral of VENDOR_NOW; the vendor publishes fresher.
    let later = VENDOR_NOW + time::Duration::days(10);
    let evidence = enclave.evidence_at(&ReportData([0; 64]), later).unwrap();
    s.vendor.publish(later).unwrap();
    let mut collateral: Vec<Vec<u8>> = s
        .vendor
        .collateral_paths()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let anchors = TrustAnchors::untyped([s.root.certificate.clone()]);
    let at = later + time::Duration::minutes(1);
    let issued = |collateral: &[Vec<u8>]| {
        verify(&evidence, collateral, &anchors, at).unwrap().details["collateral_issued"].clone()
    };
    let fresh = (later - time::Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // The fresh CRLs and TCB info decide; the older, still current ones inside the
    // evidence decide nothing and do not count.
    assert_eq!(issued(&collateral), fresh);
    // Nor does a current but old CRL of an unrelated issuer.
    let private = private_root();
    collateral.push(empty_crl(
        &private.issuer,
        VENDOR_NOW - time::Duration::days(1),
    ));
    assert_eq!(issued(&collateral), fresh);
    // Without the fresh collateral, the evidence's own is what the verdict rests on.
    assert_eq!(
        issued(&[]),
        (VENDOR_NOW - time::Duration::minutes(5))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
}

#[test]
fn every_hardware_verifier_has_built_in_roots() {
    // The rule "no anchor given for a kind: its built-in roots" is only safe if every
    // hardware verifier has some; an empty list would mean "any anchor" to a verifier
    // that falls back on the caller's.
    let verifiers = Verifiers::default();
    for kind in TeeKind::ALL {
        let verifier: &dyn Verifier = verifiers.get(kind).expect("a verifier per kind");
        let roots = verifier.builtin_anchors().unwrap();
        if !kind.is_hardware() {
            // The simulated TEE takes the caller's anchor; the CoCo sample TEE signs
            // nothing, so it has none to take.
            assert!(roots.is_empty());
        } else {
            assert!(!roots.is_empty(), "{kind} has no built-in root");
        }
    }
}
