//! The Intel SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1).
//!
//! ```text
//! SGXExtensions ::= SEQUENCE OF SEQUENCE { id OBJECT IDENTIFIER, value ANY }
//!   .1  PPID              OCTET STRING (16)
//!   .2  TCB               SEQUENCE OF SEQUENCE { id, value }:
//!         .2.1 ... .2.16  SGX TCB component SVNs, INTEGER (0..255)
//!         .2.17           PCESVN, INTEGER
//!         .2.18           CPUSVN, OCTET STRING (16)
//!   .3  PCE-ID            OCTET STRING (2)
//!   .4  FMSPC             OCTET STRING (6)
//!   .5  SGX type          ENUMERATED (0 Standard, 1 Scalable, 2 Scalable with integrity)
//!   .6  PlatformInstanceID OCTET STRING (16), Platform CA certificates only
//!   .7  Configuration     SEQUENCE (Platform CA certificates only), not used here
//! ```

use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString};
use der::{Decode, Sequence, Tagged};
use veritee_attest::{ParsedCertificate, VerifyError};

/// The SGX extensions OID.
pub const OID_SGX_EXTENSIONS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
const OID_PPID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.1");
const OID_TCB: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.2");
const OID_PCE_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.3");
const OID_FMSPC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.4");
const OID_SGX_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.5");
/// Arcs of the TCB components below `.2`: 1..=16 components, 17 PCESVN, 18 CPUSVN.
const TCB_PCESVN_ARC: u32 = 17;
const TCB_CPUSVN_ARC: u32 = 18;

const WHAT: &str = "PCK certificate SGX extension";

#[derive(Sequence)]
struct Entry {
    id: ObjectIdentifier,
    value: Any,
}

/// What the PCK certificate says about the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckExtensions {
    /// Platform Provisioning ID.
    pub ppid: Vec<u8>,
    /// SGX TCB component SVNs 1..16 (index 0 is component 1).
    pub sgx_components: [u8; 16],
    /// PCE SVN.
    pub pce_svn: u16,
    /// The raw CPUSVN.
    pub cpu_svn: Option<[u8; 16]>,
    /// PCE ID.
    pub pce_id: [u8; 2],
    /// FMSPC: family-model-stepping-platform-customSKU.
    pub fmspc: [u8; 6],
    /// SGX type, when present.
    pub sgx_type: Option<u8>,
}

fn entries(der: &[u8], what: &str) -> Result<Vec<Entry>, VerifyError> {
    Vec::<Entry>::from_der(der).map_err(|e| VerifyError::malformed(WHAT, format!("{what}: {e}")))
}

fn octets<const N: usize>(value: &Any, what: &str) -> Result<[u8; N], VerifyError> {
    let os: OctetString = value
        .decode_as()
        .map_err(|e| VerifyError::malformed(WHAT, format!("{what}: {e}")))?;
    os.as_bytes().try_into().map_err(|_| {
        VerifyError::malformed(
            WHAT,
            format!("{what} has {} bytes, expected {N}", os.as_bytes().len()),
        )
    })
}

fn last_arc(oid: &ObjectIdentifier) -> Option<u32> {
    oid.arcs().last()
}

impl PckExtensions {
    /// Reads the SGX extensions of `cert`.
    pub fn from_certificate(cert: &ParsedCertificate) -> Result<Self, VerifyError> {
        let (_, value) = cert.extension(&OID_SGX_EXTENSIONS).ok_or_else(|| {
            VerifyError::Inconsistent(format!(
                "the PCK certificate '{}' has no SGX extensions ({OID_SGX_EXTENSIONS})",
                cert.subject()
            ))
        })?;
        Self::parse(value)
    }

    /// Parses the DER value of the SGX extensions.
    pub fn parse(der: &[u8]) -> Result<Self, VerifyError> {
        let mut ppid = None;
        let mut tcb = None;
        let mut pce_id = None;
        let mut fmspc = None;
        let mut sgx_type = None;
        for entry in entries(der, "extension value")? {
            match entry.id {
                OID_PPID => {
                    let os: OctetString = entry
                        .value
                        .decode_as()
                        .map_err(|e| VerifyError::malformed(WHAT, format!("PPID: {e}")))?;
                    ppid = Some(os.into_bytes());
                }
                OID_TCB => tcb = Some(entry.value),
                OID_PCE_ID => pce_id = Some(octets::<2>(&entry.value, "PCE-ID")?),
                OID_FMSPC => fmspc = Some(octets::<6>(&entry.value, "FMSPC")?),
                OID_SGX_TYPE => {
                    let value = &entry.value;
                    if value.tag() != der::Tag::Enumerated || value.value().len() != 1 {
                        return Err(VerifyError::malformed(
                            WHAT,
                            "SGX type is not a one-byte ENUMERATED",
                        ));
                    }
                    sgx_type = value.value().first().copied();
                }
                _ => {}
            }
        }
        let missing = |name: &str| VerifyError::malformed(WHAT, format!("no {name} entry"));
        let tcb = tcb.ok_or_else(|| missing("TCB"))?;
        let tcb_entries: Vec<Entry> = tcb
            .decode_as()
            .map_err(|e| VerifyError::malformed(WHAT, format!("TCB: {e}")))?;
        let mut sgx_components = [None::<u8>; 16];
        let mut pce_svn = None;
        let mut cpu_svn = None;
        for entry in tcb_entries {
            let below_tcb = entry.id.arcs().count() == OID_TCB.arcs().count() + 1
                && entry.id.arcs().zip(OID_TCB.arcs()).all(|(a, b)| a == b);
            if !below_tcb {
                continue;
            }
            match last_arc(&entry.id) {
                Some(arc @ 1..=16) => {
                    let svn: u8 = entry.value.decode_as().map_err(|e| {
                        VerifyError::malformed(WHAT, format!("TCB component {arc}: {e}"))
                    })?;
                    if let Some(slot) = usize::try_from(arc - 1)
                        .ok()
                        .and_then(|i| sgx_components.get_mut(i))
                    {
                        *slot = Some(svn);
                    }
                }
                Some(TCB_PCESVN_ARC) => {
                    pce_svn = Some(
                        entry
                            .value
                            .decode_as::<u16>()
                            .map_err(|e| VerifyError::malformed(WHAT, format!("PCESVN: {e}")))?,
                    );
                }
                Some(TCB_CPUSVN_ARC) => cpu_svn = Some(octets::<16>(&entry.value, "CPUSVN")?),
                _ => {}
            }
        }
        let mut components = [0u8; 16];
        for (i, (out, found)) in components.iter_mut().zip(sgx_components).enumerate() {
            *out = found.ok_or_else(|| missing(&format!("SGX TCB component {}", i + 1)))?;
        }
        Ok(Self {
            ppid: ppid.ok_or_else(|| missing("PPID"))?,
            sgx_components: components,
            pce_svn: pce_svn.ok_or_else(|| missing("PCESVN"))?,
            cpu_svn,
            pce_id: pce_id.ok_or_else(|| missing("PCE-ID"))?,
            fmspc: fmspc.ok_or_else(|| missing("FMSPC"))?,
            sgx_type,
        })
    }
}
