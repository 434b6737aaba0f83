//! Wire formats of veritee's simulated TEE.
//!
//! The simulated TEE copies the shape of real hardware so the code above it is exercised
//! as it would be on a real platform: a vendor PKI (root CA, platform CA, TCB signing
//! key), machine certificates carrying the machine id and TCB level as extensions, a
//! fixed-layout signed [`report`], vendor-signed [`tcb_info`] and CRLs, and an
//! [`envelope`] that carries the report with the certificates and collateral a verifier
//! needs. Every report is flagged simulated.

pub mod envelope;
pub mod report;
pub mod tcb_info;

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

/// The same OIDs as integer arcs, for certificate builders.
pub fn oid_arcs(oid: &ObjectIdentifier) -> Vec<u64> {
    oid.arcs().map(u64::from).collect()
}
