//! The simulated vendor's TCB information: which platform TCB SVNs are current.
//!
//! Modelled on Intel's TCB info: a JSON body signed by a TCB signing key whose
//! certificate chains to the vendor root, with an issue date and a next-update date.
//!
//! ```json
//! {
//!   "tcb_info": {"version": 1, "issue_date": "...", "next_update": "...",
//!                "tcb_levels": [{"tcb_svn": 2, "status": "UpToDate", "advisory_ids": []}, ...]},
//!   "signature": "<hex: ECDSA P-384/SHA-384 r||s over the exact bytes of the tcb_info value>",
//!   "signing_chain": "<PEM: TCB signing certificate, then the root>"
//! }
//! ```

use crate::{TcbStatus, VerifyError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use veritee_x509::ParsedCertificate;

/// Largest document accepted.
pub const MAX_TCB_INFO_LEN: usize = 64 * 1024;
/// Most TCB levels accepted.
pub const MAX_TCB_LEVELS: usize = 64;
/// The only version this code writes and reads.
pub const VERSION: u32 = 1;

const WHAT: &str = "simulated TCB info";

/// One TCB level: platforms at or above `tcb_svn` (and below the next level up) get `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbLevel {
    /// Lowest platform TCB SVN of this level.
    pub tcb_svn: u32,
    /// The grade of platforms at this level.
    pub status: TcbStatus,
    /// Advisories that apply.
    #[serde(default)]
    pub advisory_ids: Vec<String>,
}

/// The signed body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbInfo {
    /// Format version, 1.
    pub version: u32,
    /// When the vendor issued it.
    #[serde(with = "time::serde::rfc3339")]
    pub issue_date: OffsetDateTime,
    /// When the vendor promises the next one; invalid afterwards.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// The levels, in any order.
    pub tcb_levels: Vec<TcbLevel>,
}

impl TcbInfo {
    /// The status of a platform at `tcb_svn`: the highest level it reaches.
    pub fn status_for(&self, tcb_svn: u32) -> Result<&TcbLevel, VerifyError> {
        self.tcb_levels
            .iter()
            .filter(|level| tcb_svn >= level.tcb_svn)
            .max_by_key(|level| level.tcb_svn)
            .ok_or_else(|| {
                let lowest = self.tcb_levels.iter().map(|l| l.tcb_svn).min().unwrap_or(0);
                VerifyError::NoMatchingTcbLevel(format!(
                    "platform TCB SVN {tcb_svn} is below the lowest level the vendor grades ({lowest})"
                ))
            })
    }

    /// Whether the document is current at `at`.
    pub fn is_current_at(&self, at: OffsetDateTime) -> bool {
        self.issue_date <= at && at <= self.next_update
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document<'a> {
    #[serde(borrow)]
    tcb_info: &'a RawValue,
    signature: String,
    signing_chain: String,
}

/// A TCB info document as received: body, the exact signed bytes, signature and chain.
#[derive(Debug, Clone)]
pub struct SignedTcbInfo {
    /// The parsed body.
    pub tcb_info: TcbInfo,
    /// The exact bytes the signature covers.
    pub signed_bytes: Vec<u8>,
    /// ECDSA P-384 r || s.
    pub signature: Vec<u8>,
    /// The signing certificate first, then its issuers.
    pub signing_chain: Vec<ParsedCertificate>,
}

impl SignedTcbInfo {
    /// Whether `bytes` looks like a TCB info document.
    pub fn recognizes(bytes: &[u8]) -> bool {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        bytes[start..].starts_with(b"{") && bytes.windows(10).any(|w| w == b"\"tcb_info\"")
    }

    /// Parses and checks the structure (not the signature: that needs trust anchors).
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_TCB_INFO_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_TCB_INFO_LEN,
            });
        }
        let doc: Document<'_> =
            serde_json::from_slice(bytes).map_err(|e| VerifyError::malformed(WHAT, e))?;
        let tcb_info: TcbInfo = serde_json::from_str(doc.tcb_info.get())
            .map_err(|e| VerifyError::malformed(WHAT, e))?;
        if tcb_info.version != VERSION {
            return Err(VerifyError::UnsupportedVersion {
                what: WHAT.into(),
                version: tcb_info.version,
            });
        }
        if tcb_info.tcb_levels.is_empty() || tcb_info.tcb_levels.len() > MAX_TCB_LEVELS {
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "{} TCB levels; between 1 and {MAX_TCB_LEVELS} expected",
                    tcb_info.tcb_levels.len()
                ),
            ));
        }
        let signature = hex::decode(&doc.signature)
            .map_err(|e| VerifyError::malformed(WHAT, format!("signature: {e}")))?;
        let signing_chain = ParsedCertificate::from_pem_chain(doc.signing_chain.as_bytes())?;
        Ok(Self {
            tcb_info,
            signed_bytes: doc.tcb_info.get().as_bytes().to_vec(),
            signature,
            signing_chain,
        })
    }

    /// Serializes a body for signing: the returned bytes are exactly what is signed.
    pub fn body_bytes(tcb_info: &TcbInfo) -> Result<Vec<u8>, VerifyError> {
        serde_json::to_vec(tcb_info).map_err(|e| VerifyError::InvalidInput(e.to_string()))
    }

    /// Assembles a document from signed body bytes, signature and PEM chain.
    pub fn assemble(
        body: &[u8],
        signature: &[u8],
        signing_chain_pem: &str,
    ) -> Result<Vec<u8>, VerifyError> {
        let body =
            core::str::from_utf8(body).map_err(|e| VerifyError::InvalidInput(e.to_string()))?;
        let raw = RawValue::from_string(body.to_string())
            .map_err(|e| VerifyError::InvalidInput(e.to_string()))?;
        let doc = Document {
            tcb_info: &raw,
            signature: hex::encode(signature),
            signing_chain: signing_chain_pem.to_string(),
        };
        serde_json::to_vec_pretty(&doc).map_err(|e| VerifyError::InvalidInput(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TcbInfo {
        TcbInfo {
            version: 1,
            issue_date: OffsetDateTime::UNIX_EPOCH,
            next_update: OffsetDateTime::UNIX_EPOCH + time::Duration::days(30),
            tcb_levels: vec![
                TcbLevel {
                    tcb_svn: 1,
                    status: TcbStatus::OutOfDate,
                    advisory_ids: vec!["VSIM-SA-1".into()],
                },
                TcbLevel {
                    tcb_svn: 3,
                    status: TcbStatus::UpToDate,
                    advisory_ids: vec![],
                },
            ],
        }
    }

    #[test]
    fn level_matching() {
        let i = info();
        assert_eq!(i.status_for(3).unwrap().status, TcbStatus::UpToDate);
        assert_eq!(i.status_for(9).unwrap().status, TcbStatus::UpToDate);
        assert_eq!(i.status_for(2).unwrap().status, TcbStatus::OutOfDate);
        assert_eq!(
            i.status_for(1).unwrap().advisory_ids,
            vec!["VSIM-SA-1".to_string()]
        );
        assert!(matches!(
            i.status_for(0),
            Err(VerifyError::NoMatchingTcbLevel(_))
        ));
    }

    #[test]
    fn parse_rejects_bad_documents() {
        assert!(SignedTcbInfo::parse(b"{").is_err());
        assert!(
            SignedTcbInfo::parse(br#"{"tcb_info": {}, "signature": "", "signing_chain": ""}"#)
                .is_err()
        );
        let body = String::from_utf8(SignedTcbInfo::body_bytes(&info()).unwrap()).unwrap();
        let doc = format!(r#"{{"tcb_info": {body}, "signature": "zz", "signing_chain": ""}}"#);
        assert!(
            SignedTcbInfo::parse(doc.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        let doc = format!(
            r#"{{"tcb_info": {body}, "signature": "00", "signing_chain": "", "extra": 1}}"#
        );
        assert!(
            SignedTcbInfo::parse(doc.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        assert!(SignedTcbInfo::parse(&vec![b' '; MAX_TCB_INFO_LEN + 1]).is_err());
        let v2 = body.replace("\"version\":1", "\"version\":2");
        let doc = format!(r#"{{"tcb_info": {v2}, "signature": "00", "signing_chain": ""}}"#);
        assert!(matches!(
            SignedTcbInfo::parse(doc.as_bytes()),
            Err(VerifyError::UnsupportedVersion { .. })
        ));
    }
}
