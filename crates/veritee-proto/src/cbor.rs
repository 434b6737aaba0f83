//! CBOR decoding for veritee's own formats: exactly one item with nothing after it,
//! and the decoder's scratch space wiped after use.
//!
//! `ciborium::from_reader` stops after the first item, so bytes appended to a message
//! would pass unseen, and it copies byte strings through a stack buffer it never
//! clears, which for a sealed record or an opened payload holds key material.

use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// Size of the scratch space the decoder copies byte and text strings through.
const SCRATCH_LEN: usize = 4096;

/// Why bytes do not decode as the one CBOR item expected.
#[derive(Debug, thiserror::Error)]
pub enum CborError {
    /// Not CBOR, or not of the expected shape (the decoder's words: they may quote
    /// the input, so callers decoding secrets report [`CborError::kind`] instead).
    #[error("{0}")]
    Syntax(String),
    /// Bytes after the item.
    #[error("{0} bytes follow the CBOR item")]
    Trailing(usize),
}

impl CborError {
    /// What is wrong, without quoting the input.
    pub fn kind(&self) -> String {
        match self {
            Self::Syntax(_) => "not CBOR of the expected shape".into(),
            Self::Trailing(n) => format!("{n} bytes follow the CBOR item"),
        }
    }
}

/// Decodes `bytes` as exactly one CBOR item of type `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    let mut rest = bytes;
    let mut scratch = Zeroizing::new(vec![0u8; SCRATCH_LEN]);
    let value = ciborium::de::from_reader_with_buffer(&mut rest, &mut scratch[..])
        .map_err(|e| CborError::Syntax(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CborError::Trailing(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &(u8, String, serde_bytes::ByteBuf)) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    #[test]
    fn one_item_exactly() {
        let value = (
            7u8,
            "name".to_string(),
            serde_bytes::ByteBuf::from(vec![1u8; 40]),
        );
        let bytes = encode(&value);
        let back: (u8, String, serde_bytes::ByteBuf) = from_slice(&bytes).unwrap();
        assert_eq!(back, value);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0, 0]);
        let err = from_slice::<(u8, String, serde_bytes::ByteBuf)>(&longer).unwrap_err();
        assert!(matches!(err, CborError::Trailing(3)), "{err}");
        // A second whole item after the first is trailing bytes too.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert!(matches!(
            from_slice::<(u8, String, serde_bytes::ByteBuf)>(&two),
            Err(CborError::Trailing(n)) if n == bytes.len()
        ));
        for cut in 0..bytes.len() {
            assert!(from_slice::<(u8, String, serde_bytes::ByteBuf)>(&bytes[..cut]).is_err());
        }
        let err = from_slice::<(u8, String, serde_bytes::ByteBuf)>(b"\xff\xff").unwrap_err();
        assert_eq!(err.kind(), "not CBOR of the expected shape");
    }
}
