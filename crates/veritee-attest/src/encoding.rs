//! Evidence as it arrives from users: raw bytes, hex, or base64.

use crate::VerifyError;
use base64::Engine;

/// Largest evidence file accepted, before decoding.
pub const MAX_EVIDENCE_INPUT: usize = 16 * 1024 * 1024;

/// Decodes evidence given as raw bytes, hex (optionally `0x`-prefixed) or base64
/// (standard or URL-safe, padded or not). Text that is none of these (JSON, PEM) is
/// returned unchanged for the verifiers to recognise.
pub fn decode_evidence(input: &[u8]) -> Result<Vec<u8>, VerifyError> {
    if input.len() > MAX_EVIDENCE_INPUT {
        return Err(VerifyError::TooLarge {
            what: "evidence file".into(),
            size: input.len(),
            limit: MAX_EVIDENCE_INPUT,
        });
    }
    let Ok(text) = core::str::from_utf8(input) else {
        return Ok(input.to_vec());
    };
    // PEM (a certificate carrying evidence) is made of base64 characters only, once
    // whitespace is dropped: it must reach the verifiers as text.
    if text.trim_start().starts_with("-----BEGIN ") {
        return Ok(input.to_vec());
    }
    if text.trim_start().starts_with('{')
        && let Ok(document) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(quote) = coco_quote(&document)
    {
        return quote;
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(VerifyError::malformed("evidence", "the file is empty"));
    }
    let hex_body = compact.strip_prefix("0x").unwrap_or(&compact);
    if hex_body.len().is_multiple_of(2) && hex_body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(hex_body).map_err(|e| VerifyError::malformed("hex evidence", e));
    }
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=');
    if compact.bytes().all(is_b64) && compact.len() >= 16 {
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for engine in engines {
            if let Ok(bytes) = engine.decode(&compact) {
                return Ok(bytes);
            }
        }
        return Err(VerifyError::malformed(
            "base64 evidence",
            "the text looks like base64 but does not decode",
        ));
    }
    Ok(input.to_vec())
}

/// The DCAP quote of a document of CoCo's TDX or SGX attester
/// (`{"quote": base64, "cc_eventlog": .., "aa_eventlog": ..}`), as a guest sends it to a
/// key broker; `None` for a document of another shape.
pub fn coco_quote(document: &serde_json::Value) -> Option<Result<Vec<u8>, VerifyError>> {
    let fields = document.as_object()?;
    let Some(serde_json::Value::String(quote)) = fields.get("quote") else {
        return None;
    };
    let known = |k: &str| matches!(k, "quote" | "cc_eventlog" | "aa_eventlog");
    if !fields.keys().all(|k| known(k)) {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(quote.trim())
            .map_err(|e| VerifyError::malformed("CoCo quote document", e)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_encoding() {
        let raw = vec![
            0u8, 0xff, 0x10, 0x80, 0x7f, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
        ];
        assert_eq!(decode_evidence(&raw).unwrap(), raw);
        assert_eq!(decode_evidence(hex::encode(&raw).as_bytes()).unwrap(), raw);
        assert_eq!(
            decode_evidence(format!("0x{}\n", hex::encode(&raw)).as_bytes()).unwrap(),
            raw
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert_eq!(decode_evidence(b64.as_bytes()).unwrap(), raw);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(decode_evidence(url.as_bytes()).unwrap(), raw);
        let json = br#"{"a": 1}"#;
        assert_eq!(decode_evidence(json).unwrap(), json);
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
        assert_eq!(decode_evidence(pem).unwrap(), pem);
    }

    #[test]
    fn reads_the_quote_of_a_coco_tdx_or_sgx_document() {
        let doc = br#"{"cc_eventlog": null, "quote": "AAECAw=="}"#;
        assert_eq!(decode_evidence(doc).unwrap(), [0, 1, 2, 3]);
        let bad = br#"{"quote": "not base64!"}"#;
        assert!(decode_evidence(bad).is_err());
        // Another document with a quote field is left for the verifiers.
        let other = br#"{"quote": "AAECAw==", "hcl_report": "x"}"#;
        assert_eq!(decode_evidence(other).unwrap(), other);
    }

    #[test]
    fn rejects_empty_and_oversized() {
        assert!(decode_evidence(b"  \n").is_err());
        assert!(matches!(
            decode_evidence(&vec![0u8; MAX_EVIDENCE_INPUT + 1]),
            Err(VerifyError::TooLarge { .. })
        ));
        assert!(decode_evidence(b"QUJD====ZZZZZZZZZZZZ").is_err());
    }
}
