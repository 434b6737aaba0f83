//! Chain, CRL and signature checks against real Intel and AMD PKI material, and
//! against generated PKIs for the cases real fixtures do not show (revocation,
//! missing CA flags, path length).

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use time::macros::datetime;
use veritee_x509::{ParsedCertificate, ParsedCrl, RevocationPolicy, X509Error, verify_chain};

const ROOT: &[u8] = include_bytes!("data/intel_sgx_root_ca.pem");
const TCB_CHAIN: &[u8] = include_bytes!("data/intel_tcb_signing_chain.pem");
const PCK_CHAIN: &[u8] = include_bytes!("data/intel_pck_crl_issuer_chain.pem");
const ROOT_CRL: &[u8] = include_bytes!("data/intel_root_ca.crl");
const PCK_CRL: &[u8] = include_bytes!("data/intel_pck_processor.crl");
const AMD_MILAN: &[u8] = include_bytes!("data/milan_ask_ark_asvk.pem");

fn anchors() -> Vec<ParsedCertificate> {
    ParsedCertificate::from_pem_chain(ROOT).unwrap()
}

#[test]
fn intel_tcb_signing_chain_verifies_with_crl() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let crl = ParsedCrl::from_der(ROOT_CRL).unwrap();
    assert_eq!(crl.number(), Some(vec![1]));
    let verified = verify_chain(
        &chain[0],
        &chain[1..],
        &anchors(),
        &[crl],
        datetime!(2025-07-01 0:00 UTC),
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap();
    assert_eq!(verified.path.len(), 2);
    assert!(verified.leaf().subject().contains("Intel SGX TCB Signing"));
    assert!(verified.anchor().subject().contains("Intel SGX Root CA"));
}

#[test]
fn intel_pck_processor_ca_and_its_crl() {
    let chain = ParsedCertificate::from_pem_chain(PCK_CHAIN).unwrap();
    let at = datetime!(2025-07-01 0:00 UTC);
    verify_chain(
        &chain[0],
        &chain[1..],
        &anchors(),
        &[ParsedCrl::from_der(ROOT_CRL).unwrap()],
        at,
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap();
    let pck_crl = ParsedCrl::from_der(PCK_CRL).unwrap();
    pck_crl.verify_issued_by(&chain[0]).unwrap();
    assert!(pck_crl.is_current_at(at));
    assert!(!pck_crl.is_current_at(datetime!(2025-07-20 0:00 UTC)));
    // The root did not sign the PCK CRL.
    assert!(matches!(
        pck_crl.verify_issued_by(&anchors()[0]),
        Err(X509Error::CrlBadSignature { .. })
    ));
}

#[test]
fn expired_crl_is_named() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let err = verify_chain(
        &chain[0],
        &chain[1..],
        &anchors(),
        &[ParsedCrl::from_der(ROOT_CRL).unwrap()],
        datetime!(2026-04-04 0:00 UTC),
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, X509Error::CrlOutsideValidity { .. }), "{err}");
    assert!(
        err.to_string().contains("next update 2026-04-03T11:21:57Z"),
        "{err}"
    );
}

#[test]
fn missing_crl_is_refused_when_required() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let at = datetime!(2025-07-01 0:00 UTC);
    let err = verify_chain(
        &chain[0],
        &[],
        &anchors(),
        &[],
        at,
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, X509Error::MissingCrl { .. }), "{err}");
    verify_chain(
        &chain[0],
        &[],
        &anchors(),
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap();
}

#[test]
fn expired_certificate_is_named() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let at = chain[0].not_after() + time::Duration::days(1);
    let err = verify_chain(
        &chain[0],
        &[],
        &anchors(),
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap_err();
    match err {
        X509Error::OutsideValidity { subject, .. } => assert!(subject.contains("TCB Signing")),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn flipped_signature_byte_is_refused() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let mut der = chain[0].der().to_vec();
    let last = der.len() - 5;
    der[last] ^= 0x01;
    let tampered = ParsedCertificate::from_der(&der).unwrap();
    let err = verify_chain(
        &tampered,
        &[],
        &anchors(),
        &[],
        datetime!(2025-07-01 0:00 UTC),
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, X509Error::BadSignature { .. }), "{err}");
}

#[test]
fn wrong_trust_anchor_is_refused() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let amd = ParsedCertificate::from_pem_chain(AMD_MILAN).unwrap();
    let at = datetime!(2025-07-01 0:00 UTC);
    let err = verify_chain(
        &chain[0],
        &chain[1..],
        &amd,
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, X509Error::UntrustedRoot { .. }), "{err}");
    let err = verify_chain(
        &chain[0],
        &[],
        &amd,
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, X509Error::UnknownIssuer { .. }), "{err}");
}

#[test]
fn amd_rsa_pss_chain_verifies() {
    let certs = ParsedCertificate::from_pem_chain(AMD_MILAN).unwrap();
    let (ask, ark, asvk) = (&certs[0], &certs[1], &certs[2]);
    let anchors = vec![ark.clone()];
    let at = datetime!(2025-06-01 0:00 UTC);
    verify_chain(
        ask,
        &[],
        &anchors,
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap();
    verify_chain(
        asvk,
        &[],
        &anchors,
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap();
    // The ASK did not issue the ASVK.
    assert!(asvk.verify_issued_by(ask).is_err());
}

#[test]
fn truncated_and_oversized_input_is_malformed() {
    let chain = ParsedCertificate::from_pem_chain(TCB_CHAIN).unwrap();
    let der = chain[0].der();
    for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(
            matches!(
                ParsedCertificate::from_der(&der[..cut]),
                Err(X509Error::Malformed { .. })
            ),
            "cut {cut}"
        );
    }
    let mut trailing = der.to_vec();
    trailing.push(0);
    assert!(ParsedCertificate::from_der(&trailing).is_err());
    assert!(ParsedCertificate::from_der(&vec![0x30; 70 * 1024]).is_err());
    assert!(ParsedCrl::from_der(&ROOT_CRL[..ROOT_CRL.len() - 3]).is_err());
    assert!(ParsedCertificate::from_pem_chain(b"-----BEGIN CERTIFICATE-----\nAAAA").is_err());
    assert!(ParsedCertificate::from_pem_chain(b"no pem here").is_err());
}

struct Pki {
    root: ParsedCertificate,
    root_issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str, ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = ca;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = datetime!(2025-01-01 0:00 UTC);
    params.not_after = datetime!(2030-01-01 0:00 UTC);
    params
}

fn new_pki() -> Pki {
    let params = ca_params("Test Root", IsCa::Ca(BasicConstraints::Unconstrained));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pki {
        root: ParsedCertificate::from_der(cert.der()).unwrap(),
        root_issuer: Issuer::new(params, key),
    }
}

fn issue(
    params: &CertificateParams,
    serial: u8,
    issuer: &Issuer<'_, KeyPair>,
) -> (ParsedCertificate, KeyPair) {
    let mut params = params.clone();
    params.serial_number = Some(SerialNumber::from_slice(&[serial]));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (ParsedCertificate::from_der(cert.der()).unwrap(), key)
}

fn crl(issuer: &Issuer<'_, KeyPair>, number: u8, revoked: &[u8]) -> ParsedCrl {
    let params = CertificateRevocationListParams {
        this_update: datetime!(2026-01-01 0:00 UTC),
        next_update: datetime!(2026-02-01 0:00 UTC),
        crl_number: SerialNumber::from_slice(&[number]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[*s]),
                revocation_time: datetime!(2026-01-01 0:00 UTC),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    ParsedCrl::from_der(params.signed_by(issuer).unwrap().der()).unwrap()
}

#[test]
fn revoked_leaf_is_refused_by_the_newest_crl() {
    let pki = new_pki();
    let (leaf, _) = issue(&ca_params("Machine 7", IsCa::NoCa), 7, &pki.root_issuer);
    let at = datetime!(2026-01-15 0:00 UTC);
    let anchors = [pki.root.clone()];
    let old = crl(&pki.root_issuer, 1, &[]);
    let new = crl(&pki.root_issuer, 2, &[7]);
    verify_chain(
        &leaf,
        &[],
        &anchors,
        std::slice::from_ref(&old),
        at,
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap();
    // Offering the old CRL beside the new one does not hide the revocation.
    let err = verify_chain(
        &leaf,
        &[],
        &anchors,
        &[old, new],
        at,
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(err, X509Error::Revoked { ref serial, .. } if serial == "07"),
        "{err}"
    );
    // A CRL signed by somebody else does not count.
    let other = new_pki();
    let forged = crl(&other.root_issuer, 3, &[]);
    let err = verify_chain(
        &leaf,
        &[],
        &anchors,
        &[forged],
        at,
        RevocationPolicy::RequireForEveryIssuer,
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            X509Error::MissingCrl { .. } | X509Error::CrlBadSignature { .. }
        ),
        "{err}"
    );
}

#[test]
fn issuer_without_ca_flag_is_refused() {
    let pki = new_pki();
    let (not_ca, not_ca_key) = issue(
        &ca_params("Not A CA", IsCa::ExplicitNoCa),
        2,
        &pki.root_issuer,
    );
    let not_ca_issuer = Issuer::new(ca_params("Not A CA", IsCa::ExplicitNoCa), not_ca_key);
    let (leaf, _) = issue(&ca_params("Leaf", IsCa::NoCa), 3, &not_ca_issuer);
    let err = verify_chain(
        &leaf,
        &[not_ca],
        std::slice::from_ref(&pki.root),
        &[],
        datetime!(2026-01-15 0:00 UTC),
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, X509Error::NotACa { .. }), "{err}");
}

#[test]
fn path_length_constraint_is_enforced() {
    let pki = new_pki();
    let (mid, mid_key) = issue(
        &ca_params("Mid", IsCa::Ca(BasicConstraints::Constrained(0))),
        2,
        &pki.root_issuer,
    );
    let mid_issuer = Issuer::new(
        ca_params("Mid", IsCa::Ca(BasicConstraints::Constrained(0))),
        mid_key,
    );
    let (low, low_key) = issue(
        &ca_params("Low", IsCa::Ca(BasicConstraints::Unconstrained)),
        3,
        &mid_issuer,
    );
    let low_issuer = Issuer::new(
        ca_params("Low", IsCa::Ca(BasicConstraints::Unconstrained)),
        low_key,
    );
    let (leaf, _) = issue(&ca_params("Leaf", IsCa::NoCa), 4, &low_issuer);
    let at = datetime!(2026-01-15 0:00 UTC);
    let err = verify_chain(
        &leaf,
        &[low, mid.clone()],
        std::slice::from_ref(&pki.root),
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(err, X509Error::PathLength { allowed: 0, .. }),
        "{err}"
    );
    let (direct, _) = issue(&ca_params("Leaf2", IsCa::NoCa), 5, &mid_issuer);
    verify_chain(
        &direct,
        &[mid],
        &[pki.root],
        &[],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap();
}

#[test]
fn an_outer_signature_algorithm_unlike_the_signed_one_is_refused() {
    let root = &anchors()[0];
    let der = root.der().to_vec();
    // ecdsa-with-SHA256; its last occurrence is the outer copy, after the signed part.
    let oid = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
    let at = der
        .windows(oid.len())
        .rposition(|w| w == oid)
        .expect("the OID");
    assert!(at > 300, "the outer copy follows the signed part");
    let mut relabelled = der.clone();
    relabelled[at + oid.len() - 1] = 0x03; // ecdsa-with-SHA384
    assert!(matches!(
        ParsedCertificate::from_der(&relabelled),
        Err(X509Error::Malformed { .. })
    ));
    assert!(ParsedCertificate::from_der(&der).is_ok());
}

#[test]
fn a_certificate_any_current_crl_lists_is_revoked_whatever_another_says() {
    let pki = new_pki();
    let (leaf, _) = issue(&ca_params("Machine 9", IsCa::NoCa), 9, &pki.root_issuer);
    let at = datetime!(2026-01-15 0:00 UTC);
    // CRL number 256 lists it, 255 does not. Compared as bytes, 256 ([0x01, 0x00])
    // would rank below 255 ([0xff]) and the older list would hide the revocation: a
    // listing in any current CRL decides.
    let mut listing = {
        let params = CertificateRevocationListParams {
            this_update: datetime!(2026-01-02 0:00 UTC),
            next_update: datetime!(2026-02-01 0:00 UTC),
            crl_number: SerialNumber::from_slice(&[1, 0]),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[9]),
                revocation_time: datetime!(2026-01-02 0:00 UTC),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        ParsedCrl::from_der(params.signed_by(&pki.root_issuer).unwrap().der()).unwrap()
    };
    let other = crl(&pki.root_issuer, 255, &[]);
    for crls in [
        vec![listing.clone(), other.clone()],
        vec![other, listing.clone()],
    ] {
        let err = verify_chain(
            &leaf,
            &[],
            std::slice::from_ref(&pki.root),
            &crls,
            at,
            RevocationPolicy::CheckIfPresent,
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, X509Error::Revoked { .. }), "{err}");
    }
    listing = crl(&pki.root_issuer, 1, &[]);
    verify_chain(
        &leaf,
        &[],
        std::slice::from_ref(&pki.root),
        &[listing],
        at,
        RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap();
}

#[test]
fn a_crl_of_one_partition_is_refused_not_read_as_complete() {
    let pki = new_pki();
    let params = CertificateRevocationListParams {
        this_update: datetime!(2026-01-01 0:00 UTC),
        next_update: datetime!(2026-02-01 0:00 UTC),
        crl_number: SerialNumber::from_slice(&[1]),
        // The issuing distribution point extension is critical: this CRL covers user
        // certificates only, so it says nothing of the CAs it leaves out.
        issuing_distribution_point: Some(rcgen::CrlIssuingDistributionPoint {
            distribution_point: rcgen::CrlDistributionPoint {
                uris: vec!["http://crl.example/part1.crl".into()],
            },
            scope: Some(rcgen::CrlScope::UserCertsOnly),
        }),
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let der = params.signed_by(&pki.root_issuer).unwrap().der().to_vec();
    let err = ParsedCrl::from_der(&der).unwrap_err().to_string();
    assert!(err.contains("critical extension"), "{err}");
}
