//! Wire formats of veritee's simulated TEE.
//!
//! The simulated TEE copies the shape of real hardware so the code above it is exercised
//! as it would be on a real platform: a vendor PKI (root CA, platform CA, TCB signing
//! key), machine certificates carrying the machine id and TCB level as extensions, a
//! fixed-layout signed [`report`], vendor-signed [`tcb_info`] and CRLs, and an
//! [`envelope`] that carries the report with the certificates and collateral a verifier
//! needs. Every report is flagged simulated, and every certificate of the simulated
//! vendor carries [`OID_SIMULATED_VENDOR`], so that a verifier can tell the simulated
//! PKI from a hardware vendor's whatever a caller claims it is ([`is_simulated_pki`]).

pub mod envelope;
pub mod report;
pub mod tcb_info;

use crate::ParsedCertificate;
use const_oid::ObjectIdentifier;

/// Arc used by the simulated vendor's certificate extensions.
///
/// veritee has no registered Private Enterprise Number yet; this arc is a placeholder
/// that only simulated certificates carry, and those never chain to a real vendor root.
/// Replace it with a registered arc before anything but the simulator uses it.
pub const OID_ARC: &str = "1.3.6.1.4.1.59999.1";

/// Machine certificate extension: the 16-byte machine id (OCTET STRING).
pub const OID_MACHINE_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.59999.1.1");

/// Machine certificate extension: the platform TCB SVN certified (INTEGER).
pub const OID_TCB_SVN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.59999.1.2");

/// Extension on every certificate the simulated vendor issues (root, platform CA, TCB
/// signing, machines): marks the simulated PKI, which must never vouch for hardware
/// evidence. Non-critical, so that any X.509 verifier still accepts the certificates;
/// its value is [`SIMULATED_VENDOR_VALUE`].
pub const OID_SIMULATED_VENDOR: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.59999.1.3");

/// The DER value of [`OID_SIMULATED_VENDOR`]: the UTF8String "not real hardware", for
/// whoever reads the certificate with a generic tool. Only the extension's presence
/// counts, never its value.
pub const SIMULATED_VENDOR_VALUE: &[u8] = b"\x0c\x11not real hardware";

/// Whether `cert` belongs to the simulated vendor's PKI: it carries the simulated-vendor
/// marker, or one of the machine-certificate extensions only the simulated vendor
/// issues. Such a certificate vouches for simulated evidence only, whatever kind a
/// caller gives it for.
pub fn is_simulated_pki(cert: &ParsedCertificate) -> bool {
    [OID_SIMULATED_VENDOR, OID_MACHINE_ID, OID_TCB_SVN]
        .iter()
        .any(|oid| cert.extension(oid).is_some())
}

/// The same OIDs as integer arcs, for certificate builders.
pub fn oid_arcs(oid: &ObjectIdentifier) -> Vec<u64> {
    oid.arcs().map(u64::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_value_is_a_der_utf8_string() {
        let (tag, rest) = SIMULATED_VENDOR_VALUE.split_at(1);
        assert_eq!(tag, [0x0c]);
        assert_eq!(usize::from(rest[0]), rest.len() - 1);
        assert_eq!(&rest[1..], b"not real hardware");
        assert_eq!(
            oid_arcs(&OID_SIMULATED_VENDOR),
            [1, 3, 6, 1, 4, 1, 59999, 1, 3]
        );
        assert!(OID_SIMULATED_VENDOR.to_string().starts_with(OID_ARC));
    }
}
