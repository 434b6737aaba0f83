//! PEM text: one or many blocks.

use crate::X509Error;

/// Largest PEM text accepted.
pub const MAX_PEM_LEN: usize = 8 * 1024 * 1024;

/// Whether `bytes` starts (after whitespace) with a PEM boundary.
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN ")
}

/// Every PEM block in `text` as (label, DER), in order. Text between blocks is ignored,
/// as OpenSSL does; a damaged block is an error.
pub fn blocks(text: &[u8]) -> Result<Vec<(String, Vec<u8>)>, X509Error> {
    if text.len() > MAX_PEM_LEN {
        return Err(X509Error::malformed(
            "PEM",
            format!("{} bytes, more than the {MAX_PEM_LEN} accepted", text.len()),
        ));
    }
    let text =
        core::str::from_utf8(text).map_err(|_| X509Error::malformed("PEM", "not UTF-8 text"))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let block = &rest[begin..];
        let label_end = block[11..]
            .find("-----")
            .ok_or_else(|| X509Error::malformed("PEM", "unterminated BEGIN line"))?;
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| X509Error::malformed("PEM", format!("no END line for '{label}'")))?;
        let whole = &block[..end + end_marker.len()];
        let (decoded_label, der) =
            der::pem::decode_vec(whole.as_bytes()).map_err(|e| X509Error::malformed("PEM", e))?;
        out.push((decoded_label.to_string(), der));
        rest = &block[end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err(X509Error::malformed("PEM", "no PEM block found"));
    }
    Ok(out)
}

/// Encodes DER as one PEM block.
pub fn encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}
