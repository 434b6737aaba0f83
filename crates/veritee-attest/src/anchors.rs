//! Trust anchors, each bound to the one TEE kind it may vouch for.
//!
//! A root certificate given by a caller never stands in for a hardware vendor's root:
//! a node keeps the simulated vendor's private key beside it, so a host holding that
//! key could otherwise mint "aws-nitro" or "sev-snp" evidence under the simulated root.
//! The rule, applied by `veritee_verify::Verifiers`:
//!
//! - a certificate of the simulated vendor's PKI (one that carries
//!   [`OID_SIMULATED_VENDOR`](crate::simulated::OID_SIMULATED_VENDOR) or a simulated
//!   machine extension: [`is_simulated_pki`](crate::simulated::is_simulated_pki))
//!   vouches for simulated evidence only, whatever kind it is given for: even
//!   `aws-nitro=vendor/root.pem` does not make it a Nitro anchor, since the host beside
//!   a simulated node holds its key;
//! - any other anchor given *for a kind* (`aws-nitro=FILE` on the command line, say a
//!   private root of the caller's own) vouches for that kind only, and replaces the
//!   vendor roots built in for it;
//! - any other anchor given *without a kind* vouches for the hardware kinds whose
//!   built-in vendor root it is, or is issued by (so `--trust-anchor intel-root.pem`
//!   keeps working for SGX and TDX), and otherwise for simulated evidence only;
//! - a hardware kind with no anchor bound to it uses its built-in vendor roots.
//!
//! Evidence refused because the anchor it chains to is bound to other kinds names
//! that anchor and the kinds it vouches for.
//!
//! The claims of verified evidence name the anchor that vouched for it
//! ([`AnchorInfo`]).

use crate::{HexBytes, TeeKind};
use serde::{Deserialize, Serialize};
use veritee_x509::ParsedCertificate;

/// Anchors as a caller gave them: each with the kind it was given for, if any.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<(Option<TeeKind>, ParsedCertificate)>,
}

impl TrustAnchors {
    /// No anchors: hardware evidence is checked against the built-in vendor roots, and
    /// simulated evidence cannot be verified.
    pub fn none() -> Self {
        Self::default()
    }

    /// Anchors given without a kind (see the module documentation for what they vouch for).
    pub fn untyped(certificates: impl IntoIterator<Item = ParsedCertificate>) -> Self {
        let mut out = Self::default();
        for c in certificates {
            out.push(None, c);
        }
        out
    }

    /// Anchors given for one kind (a simulated vendor's certificate stays bound to
    /// simulated evidence: see the module documentation).
    pub fn for_kind(
        kind: TeeKind,
        certificates: impl IntoIterator<Item = ParsedCertificate>,
    ) -> Self {
        let mut out = Self::default();
        for c in certificates {
            out.push(Some(kind), c);
        }
        out
    }

    /// Adds an anchor, for `kind` or (None) untyped.
    pub fn push(&mut self, kind: Option<TeeKind>, certificate: ParsedCertificate) {
        self.anchors.push((kind, certificate));
    }

    /// Adds every anchor of `other`.
    pub fn extend(&mut self, other: TrustAnchors) {
        self.anchors.extend(other.anchors);
    }

    /// The anchors with the kind each was given for.
    pub fn iter(&self) -> impl Iterator<Item = (Option<TeeKind>, &ParsedCertificate)> {
        self.anchors.iter().map(|(k, c)| (*k, c))
    }

    /// Whether no anchor was given.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Splits a command-line anchor argument `[KIND=]PATH` into its kind and path. A
    /// prefix before `=` that names no TEE kind is part of the path.
    pub fn split_argument(argument: &str) -> (Option<TeeKind>, &str) {
        match argument.split_once('=') {
            Some((kind, path)) => match kind.parse::<TeeKind>() {
                Ok(kind) => (Some(kind), path),
                Err(_) => (None, argument),
            },
            None => (None, argument),
        }
    }
}

/// Where the anchor that vouched for evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnchorSource {
    /// A vendor root built into veritee.
    BuiltIn,
    /// An anchor the caller gave.
    Given,
}

/// The anchor a verified piece of evidence chains to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorInfo {
    /// The TEE kind the anchor vouched for.
    pub kind: TeeKind,
    /// Built in or given by the caller.
    pub source: AnchorSource,
    /// The anchor certificate's subject.
    pub subject: String,
    /// SHA-256 of the anchor certificate's DER.
    pub sha256: HexBytes,
}

impl AnchorInfo {
    /// The description of `anchor` as the one that vouched for evidence of `kind`.
    pub fn of(kind: TeeKind, source: AnchorSource, anchor: &ParsedCertificate) -> Self {
        Self {
            kind,
            source,
            subject: anchor.subject().to_string(),
            sha256: HexBytes(anchor.fingerprint().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_only_on_a_known_kind() {
        assert_eq!(
            TrustAnchors::split_argument("aws-nitro=root.pem"),
            (Some(TeeKind::Nitro), "root.pem")
        );
        assert_eq!(
            TrustAnchors::split_argument("sev-snp=/a=b/ark.pem"),
            (Some(TeeKind::SevSnp), "/a=b/ark.pem")
        );
        assert_eq!(
            TrustAnchors::split_argument("vendor/root.pem"),
            (None, "vendor/root.pem")
        );
        assert_eq!(
            TrustAnchors::split_argument("dir=x/root.pem"),
            (None, "dir=x/root.pem")
        );
    }
}
