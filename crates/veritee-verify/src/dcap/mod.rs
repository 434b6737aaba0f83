//! Intel SGX and TDX DCAP quotes (ECDSA-256, quote versions 3, 4 and 5).
//!
//! Verification follows Intel's Quote Verification Library step by step, at an explicit
//! time and offline:
//!
//! 1. TCB info (v2/v3) and QE identity (v2): their signing chain to the Intel SGX Root
//!    CA (with the root CA CRL), Intel's ECDSA signature over the exact JSON bytes, and
//!    `issueDate <= at <= nextUpdate`.
//! 2. The PCK certificate chain from the quote's certification data (type 6 wrapping
//!    type 5, or type 5 directly in v3) to the root, with the root CA CRL and the PCK
//!    (Processor or Platform) CA CRL both required.
//! 3. FMSPC and PCE ID of the PCK certificate's SGX extensions against the TCB info.
//! 4. TDX: the module signer (MRSIGNERSEAM) and SEAMATTRIBUTES against `tdxModule` or
//!    the `TDX_<version>` module identity.
//! 5. The QE report's signature by the PCK key, and its report data binding the
//!    attestation key: `SHA-256(attestation key || QE auth data) == report_data[0..32]`.
//! 6. The QE report against the QE identity (MRSIGNER, ISVPRODID, masked MISCSELECT
//!    and ATTRIBUTES).
//! 7. The quote signature by the attestation key over header and body.
//! 8. TCB levels and their convergence ([`tcb`](self)), giving the claims' status.
//!
//! Collateral recurs from quote to quote, so its cost is paid once per process: a
//! collateral file's parsed form is remembered by the digest of its bytes, and the
//! signatures over collateral (certificates, CRLs, TCB info, QE identity, the QE report)
//! once they verify (`veritee_crypto::sign::verify_collateral`). Every check of time,
//! revocation and identity above still runs for every quote, at its explicit time.
//!
//! # Why not dcap-qvl
//!
//! dcap-qvl 0.7 (Phala) was read closely and its test vectors are used here, but it is
//! not a dependency: its certificate, CRL and signature checks run on webpki with ring
//! or RustCrypto, where veritee keeps all cryptography on aws-lc-rs (veritee-crypto,
//! veritee-x509); its `TcbInfo` requires `id` and `sgxtcbcomponents`, so version 2 TCB
//! info does not parse; it rejects inside `verify` what veritee reports as claims for
//! the appraisal policy to judge (debug enclaves and TDs, some TD attributes, revoked
//! levels); and its errors are strings, where veritee callers need to tell "no matching
//! TCB level" from "bad signature" from "expired collateral". What it does support
//! (explicit time, padding after the signature data) is matched here.

pub mod collateral;
pub mod pck;
pub mod qe_identity;
pub mod quote;
mod tcb;
pub mod tcb_info;
mod verify;

pub use collateral::DcapCollateral;
pub use quote::Quote;

use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use veritee_attest::{Claims, ParsedCertificate, TeeKind, Verifier, VerifyError, VerifyInput};
use veritee_crypto::memo::{Recent, digest_of};

/// Collateral files whose parsed form is remembered: one per platform model (FMSPC) and
/// kind a verifier meets, with room to spare; about 100 KiB each.
pub const REMEMBERED_COLLATERAL: usize = 64;

/// `DcapCollateral::parse(file)`, remembered by the file's digest: parsing depends on
/// the bytes alone (whether the collateral is valid at some time is decided later).
fn parsed_collateral(file: &[u8]) -> Result<Arc<DcapCollateral>, VerifyError> {
    static PARSED: OnceLock<Recent<Arc<DcapCollateral>>> = OnceLock::new();
    PARSED
        .get_or_init(|| Recent::new(REMEMBERED_COLLATERAL))
        .get_or_try_insert(digest_of("veritee DCAP collateral v1", &[file]), || {
            DcapCollateral::parse(file).map(Arc::new)
        })
}

/// The Intel SGX Root CA (DER), used when the caller supplies no trust anchor.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("roots/intel_sgx_root_ca.der");

/// The embedded Intel SGX Root CA, parsed once.
pub fn intel_sgx_root_ca() -> Result<&'static ParsedCertificate, VerifyError> {
    static ROOT: OnceLock<Result<ParsedCertificate, VerifyError>> = OnceLock::new();
    ROOT.get_or_init(|| {
        ParsedCertificate::from_der(INTEL_SGX_ROOT_CA_DER).map_err(VerifyError::from)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Parses an RFC 3339 date of a collateral document.
pub(crate) fn parse_date(
    value: &str,
    field: &str,
    doc: &str,
) -> Result<OffsetDateTime, VerifyError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| {
        VerifyError::Collateral(format!(
            "{doc}: {field} '{value}' is not an RFC 3339 date: {e}"
        ))
    })
}

/// Formats a time for messages.
pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The DCAP verifier for one TEE kind: [`TeeKind::Sgx`] or [`TeeKind::Tdx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DcapVerifier {
    tdx: bool,
}

impl DcapVerifier {
    /// The verifier of SGX quotes.
    pub const fn sgx() -> Self {
        Self { tdx: false }
    }

    /// The verifier of TDX quotes.
    pub const fn tdx() -> Self {
        Self { tdx: true }
    }

    /// Verifies `evidence` with collateral parsed beforehand (and possibly cached).
    ///
    /// `trust_anchors` empty means the embedded Intel SGX Root CA.
    pub fn verify_with_collateral(
        &self,
        evidence: &[u8],
        collateral: &DcapCollateral,
        trust_anchors: &[ParsedCertificate],
        at: OffsetDateTime,
    ) -> Result<Claims, VerifyError> {
        let quote = Quote::parse(evidence)?;
        if quote.is_tdx() != self.tdx {
            return Err(VerifyError::UnknownFormat(format!(
                "this is a{} quote, not a{} one",
                if quote.is_tdx() { " TDX" } else { "n SGX" },
                if self.tdx { " TDX" } else { "n SGX" }
            )));
        }
        let root;
        let anchors = if trust_anchors.is_empty() {
            root = [intel_sgx_root_ca()?.clone()];
            &root[..]
        } else {
            trust_anchors
        };
        verify::verify_quote(&quote, collateral, anchors, at)
    }

    /// Parses the caller's collateral files, each of which must be DCAP collateral JSON.
    fn collateral_from(files: &[Vec<u8>]) -> Result<Vec<Arc<DcapCollateral>>, VerifyError> {
        let mut out = Vec::new();
        for (index, file) in files.iter().enumerate() {
            if !DcapCollateral::recognizes(file) {
                return Err(VerifyError::Collateral(format!(
                    "collateral file #{} is not DCAP collateral JSON (an object with tcb_info, qe_identity, CRLs and issuer chains)",
                    index + 1
                )));
            }
            out.push(parsed_collateral(file)?);
        }
        if out.is_empty() {
            return Err(VerifyError::MissingCollateral(
                "DCAP quotes need collateral: a JSON file with tcb_info, qe_identity, root_ca_crl, pck_crl and their issuer chains"
                    .into(),
            ));
        }
        Ok(out)
    }
}

impl Verifier for DcapVerifier {
    fn tee(&self) -> TeeKind {
        if self.tdx { TeeKind::Tdx } else { TeeKind::Sgx }
    }

    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        Ok(vec![intel_sgx_root_ca()?.clone()])
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        quote::sniff(evidence) == Some(self.tdx)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        // The evidence first: unreadable evidence is named as such, collateral or not.
        let quote = Quote::parse(input.evidence)?;
        let candidates = Self::collateral_from(input.collateral)?;
        // Several files: take the one for this platform, else let the first one fail
        // with a message naming both FMSPCs.
        let fmspc = match candidates.len() {
            1 => None,
            _ => verify::pck_extensions(&quote).ok().map(|p| p.fmspc),
        };
        let collateral = candidates
            .iter()
            .find(|c| fmspc.is_some() && Some(c.tcb_info().fmspc) == fmspc)
            .or_else(|| candidates.first())
            .ok_or_else(|| VerifyError::MissingCollateral("no DCAP collateral".into()))?;
        self.verify_with_collateral(input.evidence, collateral, input.trust_anchors, input.at)
    }
}
