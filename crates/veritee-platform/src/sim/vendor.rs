//! The simulated vendor: root CA, platform CA, TCB signing key, and what they publish.

use super::{COLLATERAL_VALIDITY, load_json, load_private_key, pem_private_key, to_json};
use crate::PlatformError;
use crate::fsutil::{self, PRIVATE_MODE, PUBLIC_MODE};
use der::Encode;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use veritee_attest::TcbStatus;
use veritee_attest::simulated::tcb_info::{SignedTcbInfo, TcbInfo, TcbLevel};
use veritee_attest::simulated::{
    OID_MACHINE_ID, OID_SIMULATED_VENDOR, OID_TCB_SVN, SIMULATED_VENDOR_VALUE, oid_arcs,
};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};

const ROOT_NAME: &str = "veritee Simulated Vendor Root CA";
const PLATFORM_CA_NAME: &str = "veritee Simulated Platform CA";
const TCB_SIGNING_NAME: &str = "veritee Simulated TCB Signing";
const ORGANIZATION: &str = "veritee simulated vendor - NOT REAL HARDWARE";
/// Highest TCB SVN the vendor grades; keeps TCB info small.
pub const MAX_TCB_SVN: u32 = 64;

/// File names inside a vendor directory.
mod files {
    pub const ROOT_CERT: &str = "root.pem";
    pub const ROOT_KEY: &str = "root.key";
    pub const PLATFORM_CA_CERT: &str = "platform-ca.pem";
    pub const PLATFORM_CA_KEY: &str = "platform-ca.key";
    pub const TCB_SIGNING_CERT: &str = "tcb-signing.pem";
    pub const TCB_SIGNING_KEY: &str = "tcb-signing.key";
    pub const STATE: &str = "vendor.json";
    pub const ROOT_CRL: &str = "root.crl.pem";
    pub const PLATFORM_CA_CRL: &str = "platform-ca.crl.pem";
    pub const TCB_INFO: &str = "tcb-info.json";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advisory {
    id: String,
    /// Platforms below this SVN are affected.
    fixed_in_svn: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revocation {
    serial: String,
    machine_id: String,
    #[serde(with = "time::serde::rfc3339")]
    revoked_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuedMachine {
    serial: String,
    machine_id: String,
    tcb_svn: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorState {
    version: u32,
    next_serial: u64,
    crl_number: u64,
    latest_tcb_svn: u32,
    advisories: Vec<Advisory>,
    issued: Vec<IssuedMachine>,
    revoked: Vec<Revocation>,
    /// Which provider (its public key, hex) each machine was issued to, by machine id.
    #[serde(default)]
    providers: std::collections::BTreeMap<String, String>,
}

/// What a verifier needs from the vendor beside the trust anchor, as files publish it.
#[derive(Debug, Clone)]
pub struct Collateral {
    /// Platform CA certificate (DER).
    pub platform_ca: Vec<u8>,
    /// Root CA CRL (DER).
    pub root_crl: Vec<u8>,
    /// Platform CA CRL (DER).
    pub platform_ca_crl: Vec<u8>,
    /// Signed TCB info (JSON).
    pub tcb_info: Vec<u8>,
}

/// What the vendor knows of one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineStanding {
    /// Certified by this vendor.
    pub certified: bool,
    /// Revoked by it.
    pub revoked: bool,
    /// Issued to the provider asked about.
    pub issued_to_provider: bool,
}

/// A simulated hardware vendor, backed by a directory.
pub struct SimVendor {
    dir: PathBuf,
    state: VendorState,
}

impl core::fmt::Debug for SimVendor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimVendor").field("dir", &self.dir).finish()
    }
}

fn name(params: &mut CertificateParams, cn: &str) {
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
}

/// The simulated-vendor marker every certificate of this vendor carries: verifiers bind
/// a certificate carrying it to simulated evidence only, so that the root, whose key
/// lies on the host beside a node, never vouches for hardware evidence. Non-critical
/// (rcgen's default), so generic X.509 tooling still accepts the certificates.
fn simulated_marker() -> CustomExtension {
    CustomExtension::from_oid_content(
        &oid_arcs(&OID_SIMULATED_VENDOR),
        SIMULATED_VENDOR_VALUE.to_vec(),
    )
}

fn ca_params(
    cn: &str,
    now: OffsetDateTime,
    years: i64,
    constraint: BasicConstraints,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    name(&mut params, cn);
    params.is_ca = IsCa::Ca(constraint);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(365 * years);
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions = vec![simulated_marker()];
    params
}

fn rcgen_key(key: &EcdsaSigningKey) -> Result<KeyPair, PlatformError> {
    let pem = pem_private_key(key)?;
    let text = core::str::from_utf8(pem.expose())
        .map_err(|e| PlatformError::InvalidInput(e.to_string()))?;
    Ok(KeyPair::from_pem_and_sign_algo(
        text,
        &rcgen::PKCS_ECDSA_P384_SHA384,
    )?)
}

fn serial_bytes(n: u64) -> Vec<u8> {
    // Positive and non-zero: a leading 0x01 keeps DER from reading it as negative.
    let mut out = vec![0x01];
    out.extend_from_slice(&n.to_be_bytes());
    out
}

impl SimVendor {
    /// Creates a new vendor in `dir` (created if needed; must not hold a vendor already).
    pub fn init(dir: &Path, now: OffsetDateTime) -> Result<Self, PlatformError> {
        fsutil::create_private_dir(dir)?;
        if dir.join(files::ROOT_CERT).exists() || dir.join(files::STATE).exists() {
            return Err(PlatformError::AlreadyExists(format!(
                "a vendor in {}",
                dir.display()
            )));
        }
        let root_key = EcdsaSigningKey::generate(EcdsaCurve::P384)?;
        let root_params = ca_params(ROOT_NAME, now, 20, BasicConstraints::Unconstrained);
        let root_cert = root_params.self_signed(&rcgen_key(&root_key)?)?;
        let root_issuer = Issuer::new(root_params, rcgen_key(&root_key)?);

        let platform_key = EcdsaSigningKey::generate(EcdsaCurve::P384)?;
        let mut platform_params =
            ca_params(PLATFORM_CA_NAME, now, 10, BasicConstraints::Constrained(0));
        platform_params.serial_number = Some(SerialNumber::from_slice(&serial_bytes(1)));
        let platform_cert = platform_params.signed_by(&rcgen_key(&platform_key)?, &root_issuer)?;

        let tcb_key = EcdsaSigningKey::generate(EcdsaCurve::P384)?;
        let mut tcb_params = CertificateParams::default();
        name(&mut tcb_params, TCB_SIGNING_NAME);
        tcb_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        tcb_params.not_before = now - time::Duration::minutes(5);
        tcb_params.not_after = now + time::Duration::days(365 * 10);
        tcb_params.serial_number = Some(SerialNumber::from_slice(&serial_bytes(2)));
        tcb_params.use_authority_key_identifier_extension = true;
        tcb_params.custom_extensions = vec![simulated_marker()];
        let tcb_cert = tcb_params.signed_by(&rcgen_key(&tcb_key)?, &root_issuer)?;

        // Keys first: a crash leaves no certificate without its key.
        fsutil::write_new(
            &dir.join(files::ROOT_KEY),
            pem_private_key(&root_key)?.expose(),
            PRIVATE_MODE,
        )?;
        fsutil::write_new(
            &dir.join(files::PLATFORM_CA_KEY),
            pem_private_key(&platform_key)?.expose(),
            PRIVATE_MODE,
        )?;
        fsutil::write_new(
            &dir.join(files::TCB_SIGNING_KEY),
            pem_private_key(&tcb_key)?.expose(),
            PRIVATE_MODE,
        )?;
        fsutil::write_new(
            &dir.join(files::PLATFORM_CA_CERT),
            platform_cert.pem().as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::write_new(
            &dir.join(files::TCB_SIGNING_CERT),
            tcb_cert.pem().as_bytes(),
            PUBLIC_MODE,
        )?;
        let mut vendor = Self {
            dir: dir.to_path_buf(),
            state: VendorState {
                version: 1,
                next_serial: 3,
                crl_number: 0,
                latest_tcb_svn: 2,
                advisories: vec![Advisory {
                    id: format!("VSIM-SA-{}-0001", now.year()),
                    fixed_in_svn: 2,
                }],
                issued: Vec::new(),
                revoked: Vec::new(),
                providers: Default::default(),
            },
        };
        vendor.publish(now)?;
        // The root certificate last: its presence marks a complete vendor.
        fsutil::write_new(
            &dir.join(files::ROOT_CERT),
            root_cert.pem().as_bytes(),
            PUBLIC_MODE,
        )?;
        Self::open(dir)
    }

    /// Opens an existing vendor directory.
    pub fn open(dir: &Path) -> Result<Self, PlatformError> {
        let root = dir.join(files::ROOT_CERT);
        if !root.exists() {
            return Err(PlatformError::bad_state(
                &root,
                "missing: this directory holds no simulated vendor (run `veritee vendor init --dir DIR`)",
            ));
        }
        let state: VendorState = load_json(&dir.join(files::STATE))?;
        if state.version != 1 {
            return Err(PlatformError::bad_state(
                &dir.join(files::STATE),
                format!("unknown version {}", state.version),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            state,
        })
    }

    /// The vendor directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the root certificate (the trust anchor users pass to `veritee verify`).
    pub fn root_path(&self) -> PathBuf {
        self.dir.join(files::ROOT_CERT)
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> Result<Vec<u8>, PlatformError> {
        fsutil::read(&self.root_path())
    }

    /// The TCB SVN the vendor currently grades UpToDate.
    pub fn latest_tcb_svn(&self) -> u32 {
        self.state.latest_tcb_svn
    }

    fn save_state(&self) -> Result<(), PlatformError> {
        fsutil::replace(
            &self.dir.join(files::STATE),
            &to_json(&self.state)?,
            PRIVATE_MODE,
        )
    }

    fn issuer(&self, cert: &str, key: &str) -> Result<Issuer<'static, KeyPair>, PlatformError> {
        let cert_path = self.dir.join(cert);
        let pem = String::from_utf8(fsutil::read(&cert_path)?)
            .map_err(|e| PlatformError::bad_state(&cert_path, e))?;
        let key = rcgen_key(&load_private_key(&self.dir.join(key))?)?;
        Ok(Issuer::from_ca_cert_pem(&pem, key)?)
    }

    /// Certifies a machine's attestation key (a DER SubjectPublicKeyInfo) for `machine_id`
    /// at `tcb_svn`; returns the certificate, DER.
    pub fn certify_machine(
        &mut self,
        attestation_spki: &[u8],
        machine_id: &[u8; 16],
        tcb_svn: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, PlatformError> {
        if tcb_svn == 0 || tcb_svn > MAX_TCB_SVN {
            return Err(PlatformError::InvalidInput(format!(
                "TCB SVN must be between 1 and {MAX_TCB_SVN}, got {tcb_svn}"
            )));
        }
        let issuer = self.issuer(files::PLATFORM_CA_CERT, files::PLATFORM_CA_KEY)?;
        let serial = self.state.next_serial;
        let mut params = CertificateParams::default();
        name(
            &mut params,
            &format!("veritee Simulated Machine {}", hex::encode(machine_id)),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(365 * 5);
        params.serial_number = Some(SerialNumber::from_slice(&serial_bytes(serial)));
        params.use_authority_key_identifier_extension = true;
        let id_value = der::asn1::OctetString::new(machine_id.to_vec())
            .and_then(|o| o.to_der())
            .map_err(|e| PlatformError::Certificate(e.to_string()))?;
        let svn_value = tcb_svn
            .to_der()
            .map_err(|e| PlatformError::Certificate(e.to_string()))?;
        params.custom_extensions = vec![
            simulated_marker(),
            CustomExtension::from_oid_content(&oid_arcs(&OID_MACHINE_ID), id_value),
            CustomExtension::from_oid_content(&oid_arcs(&OID_TCB_SVN), svn_value),
        ];
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(attestation_spki)?;
        let cert = params.signed_by(&public_key, &issuer)?;
        self.state.next_serial += 1;
        self.state.issued.push(IssuedMachine {
            serial: hex::encode(serial_bytes(serial)),
            machine_id: hex::encode(machine_id),
            tcb_svn,
        });
        self.save_state()?;
        Ok(cert.der().to_vec())
    }

    /// Records that `machine_id` was issued to `provider` (the provider's public key,
    /// hex), which the vendor's validator then answers.
    pub fn assign_provider(
        &mut self,
        machine_id: &[u8; 16],
        provider: &str,
    ) -> Result<(), PlatformError> {
        let id = hex::encode(machine_id);
        if !self.state.issued.iter().any(|m| m.machine_id == id) {
            return Err(PlatformError::InvalidInput(format!(
                "this vendor never certified machine {id}"
            )));
        }
        if provider.is_empty() || provider.len() > 128 || hex::decode(provider).is_err() {
            return Err(PlatformError::InvalidInput(
                "a provider is named by its public key, in hex".into(),
            ));
        }
        self.state.providers.insert(id, provider.to_string());
        self.save_state()
    }

    /// A machine's standing, as the validator answers it: whether this vendor certified
    /// it, revoked it, and issued it to `provider`.
    pub fn standing(&self, machine_id: &str, provider: &str) -> MachineStanding {
        MachineStanding {
            certified: self.state.issued.iter().any(|m| m.machine_id == machine_id),
            revoked: self
                .state
                .revoked
                .iter()
                .any(|r| r.machine_id == machine_id),
            issued_to_provider: self
                .state
                .providers
                .get(machine_id)
                .is_some_and(|p| p == provider),
        }
    }

    /// The root key, for the validator's signed answers (customers pin the root).
    pub fn root_signing_key(&self) -> Result<EcdsaSigningKey, PlatformError> {
        load_private_key(&self.dir.join(files::ROOT_KEY))
    }

    /// Revokes every certificate issued to `machine_id` and publishes a new CRL.
    /// Returns how many certificates were revoked.
    pub fn revoke_machine(
        &mut self,
        machine_id: &[u8; 16],
        now: OffsetDateTime,
    ) -> Result<usize, PlatformError> {
        let id = hex::encode(machine_id);
        let newly: Vec<String> = self
            .state
            .issued
            .iter()
            .filter(|m| {
                m.machine_id == id && !self.state.revoked.iter().any(|r| r.serial == m.serial)
            })
            .map(|m| m.serial.clone())
            .collect();
        let known = self.state.issued.iter().any(|m| m.machine_id == id);
        if !known {
            return Err(PlatformError::InvalidInput(format!(
                "this vendor never certified machine {id}"
            )));
        }
        for serial in &newly {
            self.state.revoked.push(Revocation {
                serial: serial.clone(),
                machine_id: id.clone(),
                revoked_at: now,
            });
        }
        self.publish(now)?;
        Ok(newly.len())
    }

    /// Declares `svn` the new up-to-date TCB level (a TCB recovery): every lower level
    /// becomes OutOfDate under a new advisory. Publishes new TCB info.
    pub fn set_latest_tcb_svn(
        &mut self,
        svn: u32,
        now: OffsetDateTime,
    ) -> Result<String, PlatformError> {
        if svn <= self.state.latest_tcb_svn || svn > MAX_TCB_SVN {
            return Err(PlatformError::InvalidInput(format!(
                "the new TCB SVN must be above the current {} and at most {MAX_TCB_SVN}",
                self.state.latest_tcb_svn
            )));
        }
        let id = format!(
            "VSIM-SA-{}-{:04}",
            now.year(),
            self.state.advisories.len() + 1
        );
        self.state.advisories.push(Advisory {
            id: id.clone(),
            fixed_in_svn: svn,
        });
        self.state.latest_tcb_svn = svn;
        self.publish(now)?;
        Ok(id)
    }

    fn tcb_levels(&self) -> Vec<TcbLevel> {
        (1..=self.state.latest_tcb_svn)
            .rev()
            .map(|svn| TcbLevel {
                tcb_svn: svn,
                status: if svn == self.state.latest_tcb_svn {
                    TcbStatus::UpToDate
                } else {
                    TcbStatus::OutOfDate
                },
                advisory_ids: self
                    .state
                    .advisories
                    .iter()
                    .filter(|a| svn < a.fixed_in_svn)
                    .map(|a| a.id.clone())
                    .collect(),
            })
            .collect()
    }

    fn crl(
        &self,
        issuer: &Issuer<'_, KeyPair>,
        number: u64,
        revoked: &[&Revocation],
        now: OffsetDateTime,
    ) -> Result<String, PlatformError> {
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(5),
            next_update: now + COLLATERAL_VALIDITY,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| {
                    Ok(RevokedCertParams {
                        serial_number: SerialNumber::from_slice(&hex::decode(&r.serial).map_err(
                            |e| PlatformError::bad_state(&self.dir.join(files::STATE), e),
                        )?),
                        revocation_time: r.revoked_at,
                        reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    })
                })
                .collect::<Result<_, PlatformError>>()?,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(issuer)?.pem()?)
    }

    /// Re-issues the CRLs and TCB info with fresh dates (vendors do this periodically;
    /// collateral expires after 30 days).
    pub fn publish(&mut self, now: OffsetDateTime) -> Result<(), PlatformError> {
        self.state.crl_number += 1;
        let number = self.state.crl_number;
        let root_issuer = self.issuer_for_root()?;
        let platform_issuer = self.issuer(files::PLATFORM_CA_CERT, files::PLATFORM_CA_KEY)?;
        let revoked: Vec<&Revocation> = self.state.revoked.iter().collect();
        let root_crl = self.crl(&root_issuer, number, &[], now)?;
        let platform_crl = self.crl(&platform_issuer, number, &revoked, now)?;

        let info = TcbInfo {
            version: 1,
            issue_date: now - time::Duration::minutes(5),
            next_update: now + COLLATERAL_VALIDITY,
            tcb_levels: self.tcb_levels(),
        };
        let body = SignedTcbInfo::body_bytes(&info)?;
        let signature = load_private_key(&self.dir.join(files::TCB_SIGNING_KEY))?.sign(&body)?;
        let mut chain = String::from_utf8(fsutil::read(&self.dir.join(files::TCB_SIGNING_CERT))?)
            .map_err(|e| {
            PlatformError::bad_state(&self.dir.join(files::TCB_SIGNING_CERT), e)
        })?;
        chain.push_str(&self.root_cert_pem_for_chain()?);
        let tcb_doc = SignedTcbInfo::assemble(&body, &signature, &chain)?;

        fsutil::replace(
            &self.dir.join(files::ROOT_CRL),
            root_crl.as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::replace(
            &self.dir.join(files::PLATFORM_CA_CRL),
            platform_crl.as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::replace(&self.dir.join(files::TCB_INFO), &tcb_doc, PUBLIC_MODE)?;
        self.save_state()
    }

    /// During `init` the root certificate is written last, so rebuild its issuer from
    /// the key and the fixed parameters rather than from the file.
    fn issuer_for_root(&self) -> Result<Issuer<'static, KeyPair>, PlatformError> {
        let key = rcgen_key(&load_private_key(&self.dir.join(files::ROOT_KEY))?)?;
        let params = ca_params(
            ROOT_NAME,
            OffsetDateTime::now_utc(),
            20,
            BasicConstraints::Unconstrained,
        );
        Ok(Issuer::new(params, key))
    }

    fn root_cert_pem_for_chain(&self) -> Result<String, PlatformError> {
        let path = self.root_path();
        if path.exists() {
            String::from_utf8(fsutil::read(&path)?).map_err(|e| PlatformError::bad_state(&path, e))
        } else {
            // During init: verifiers find the root among their trust anchors anyway.
            Ok(String::new())
        }
    }

    /// The published collateral, as a verifier would download it.
    pub fn collateral(&self) -> Result<Collateral, PlatformError> {
        let der_of = |file: &str, label: &str| -> Result<Vec<u8>, PlatformError> {
            let path = self.dir.join(file);
            veritee_x509::pem::blocks(&fsutil::read(&path)?)
                .map_err(|e| PlatformError::bad_state(&path, e))?
                .into_iter()
                .find(|(l, _)| l == label)
                .map(|(_, der)| der)
                .ok_or_else(|| PlatformError::bad_state(&path, format!("no {label} block")))
        };
        Ok(Collateral {
            platform_ca: der_of(files::PLATFORM_CA_CERT, "CERTIFICATE")?,
            root_crl: der_of(files::ROOT_CRL, "X509 CRL")?,
            platform_ca_crl: der_of(files::PLATFORM_CA_CRL, "X509 CRL")?,
            tcb_info: fsutil::read(&self.dir.join(files::TCB_INFO))?,
        })
    }

    /// Paths of the published collateral files, for `veritee verify --collateral`.
    pub fn collateral_paths(&self) -> Vec<PathBuf> {
        [files::ROOT_CRL, files::PLATFORM_CA_CRL, files::TCB_INFO]
            .iter()
            .map(|f| self.dir.join(f))
            .collect()
    }
}
