//! Reading the files users name, with errors that say which file.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Largest input file read whole.
pub const MAX_INPUT_FILE: u64 = 64 * 1024 * 1024;

/// Reads a file whole, refusing absurd sizes.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if meta.len() > MAX_INPUT_FILE {
        bail!(
            "{what} {} is {} bytes, more than the {MAX_INPUT_FILE} accepted",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Reads a UTF-8 text file.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    String::from_utf8(read(path, what)?)
        .with_context(|| format!("{what} {} is not UTF-8 text", path.display()))
}

/// Parses an RFC 3339 time, or returns now.
pub fn time_or_now(at: Option<&str>) -> Result<time::OffsetDateTime> {
    match at {
        None => Ok(time::OffsetDateTime::now_utc()),
        Some(text) => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .with_context(|| {
                    format!("--at {text:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z")
                })
        }
    }
}

/// Formats a time as RFC 3339.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Parses hex report data (at most 64 bytes; `0x` allowed).
pub fn report_data(hex_text: &str) -> Result<Vec<u8>> {
    let bytes = hex::decode(hex_text.trim().trim_start_matches("0x"))
        .with_context(|| format!("report data {hex_text:?} is not hex"))?;
    if bytes.len() > veritee_attest::REPORT_DATA_LEN {
        bail!(
            "report data is {} bytes; at most {} fit",
            bytes.len(),
            veritee_attest::REPORT_DATA_LEN
        );
    }
    Ok(bytes)
}

/// Reads the certificates of `--trust-anchor [KIND=]FILE` arguments (PEM, possibly
/// several, or one DER certificate), each bound to the kind it names or untyped.
pub fn trust_anchors(arguments: &[String]) -> Result<veritee_attest::TrustAnchors> {
    use veritee_attest::{ParsedCertificate, TrustAnchors};
    let mut anchors = TrustAnchors::none();
    for argument in arguments {
        let (kind, path) = TrustAnchors::split_argument(argument);
        let path = Path::new(path);
        let bytes = read(path, "trust anchor")?;
        let certificates = if veritee_x509::pem::looks_like_pem(&bytes) {
            ParsedCertificate::from_pem_chain(&bytes)
        } else {
            ParsedCertificate::from_der(&bytes).map(|c| vec![c])
        }
        .with_context(|| format!("trust anchor {}", path.display()))?;
        for certificate in certificates {
            anchors.push(kind, certificate);
        }
    }
    Ok(anchors)
}
