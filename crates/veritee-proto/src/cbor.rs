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

/// CBOR's encoding of an empty byte string: major type 2, length 0.
pub(crate) const EMPTY_BYTE_STRING: u8 = 0x40;

/// Byte strings at least this long, ending an item, are handed over in place by
/// [`decode_with_tail`] instead of being copied out of its bytes.
pub const MIN_TRAILING_BYTES: usize = 64 * 1024;

/// Messages whose last item may be a large byte string (a relayed message, a fork's
/// sealed pages), for [`decode_with_tail`].
pub trait TrailingBytes {
    /// The field the message's last item fills, if it is a byte string: `None` for
    /// messages that do not end in one.
    fn trailing_bytes(&mut self) -> Option<&mut Vec<u8>>;
}

/// Where the header and the contents of the last item begin in an item of `total`
/// bytes whose first bytes are `prefix`, if that item's last item is a byte string of
/// definite length that ends it. Only item headers are read, and they must lie in
/// `prefix`; strings are stepped over, not read, and the last one may run past
/// `prefix` (a relayed message still on its way). Indefinite lengths (which our
/// encoder never writes) and anything malformed give `None`.
pub fn trailing_byte_string(prefix: &[u8], total: usize) -> Option<(usize, usize)> {
    use ciborium_ll::Header;
    if prefix.len() > total {
        return None;
    }
    let mut at = 0usize;
    let mut items_left: usize = 1;
    let mut last = None;
    while items_left > 0 {
        // Every item takes at least one byte: a count past what is left is malformed.
        if items_left > total.checked_sub(at)? {
            return None;
        }
        items_left -= 1;
        let mut decoder = ciborium_ll::Decoder::from(prefix.get(at..)?);
        let header = decoder.pull().ok()?;
        let (start, contents) = (at, at.checked_add(decoder.offset())?);
        at = contents;
        last = None;
        match header {
            Header::Bytes(Some(len)) | Header::Text(Some(len)) => {
                at = at.checked_add(len).filter(|end| *end <= total)?;
                if matches!(header, Header::Bytes(_)) {
                    last = Some((start, contents));
                }
            }
            Header::Array(Some(n)) => items_left = items_left.checked_add(n)?,
            Header::Map(Some(n)) => items_left = items_left.checked_add(n.checked_mul(2)?)?,
            Header::Tag(_) => items_left += 1,
            Header::Positive(_) | Header::Negative(_) | Header::Float(_) | Header::Simple(_) => {}
            _ => return None,
        }
    }
    last.filter(|_| at == total)
}

/// The head of an item whose last byte string's header begins at `header`, with that
/// string made empty: what decodes to the message without its trailing bytes.
pub fn head_with_empty_tail(prefix: &[u8], header: usize) -> Vec<u8> {
    let head = &prefix[..header.min(prefix.len())];
    let mut out = Vec::with_capacity(head.len() + 1);
    out.extend_from_slice(head);
    out.push(EMPTY_BYTE_STRING);
    out
}

/// Decodes `bytes` with `decode`, but a large byte string ending them (a relayed
/// message of several MiB) becomes the message's field where it lies: the rest is
/// decoded with that string empty, and the buffer of `bytes`, its head removed, is
/// the field. Saves a copy and a fresh buffer of the string's size. Bytes not of that
/// shape, or whose message takes no trailing field, are decoded whole, so the outcome
/// is `decode`'s.
pub(crate) fn decode_with_tail<T, E>(
    mut bytes: Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<T, E>
where
    T: TrailingBytes,
{
    // Most messages are small: they are not walked at all.
    if bytes.len() >= MIN_TRAILING_BYTES
        && let Some((header, contents)) = trailing_byte_string(&bytes, bytes.len())
        && bytes.len() - contents >= MIN_TRAILING_BYTES
    {
        let mut message = decode(&head_with_empty_tail(&bytes, header))?;
        if let Some(field) = message.trailing_bytes()
            && field.is_empty()
        {
            bytes.drain(..contents);
            *field = bytes;
            return Ok(message);
        }
    }
    decode(&bytes)
}

/// [`from_slice`] of bytes whose last item may be a large byte string, which becomes
/// the message's field where it lies ([`TrailingBytes`]): exactly one item, as
/// [`from_slice`] wants, with one copy of the string fewer.
pub fn from_vec_with_tail<T>(bytes: Vec<u8>) -> Result<T, CborError>
where
    T: DeserializeOwned + TrailingBytes,
{
    decode_with_tail(bytes, from_slice)
}

/// Counts what an encoding writes.
struct Measure(usize);

impl std::io::Write for Measure {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `value`'s CBOR encoding, by encoding it into a counter.
pub fn encoded_len<T: serde::Serialize>(value: &T) -> Result<usize, CborError> {
    let mut measure = Measure(0);
    ciborium::into_writer(value, &mut measure).map_err(|e| CborError::Syntax(e.to_string()))?;
    Ok(measure.0)
}

/// `value`'s CBOR encoding, in a buffer allocated once at its final size
/// ([`encoded_len`]), for values that hold secrets: a buffer that grew while the encoder
/// wrote would move to larger allocations and free the old ones unwiped, copies of the
/// secret included. The caller wraps the result in a wiping type at once; if the
/// encoding fails, what was written is wiped here.
pub fn to_vec_exact<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CborError> {
    let mut out = Zeroizing::new(Vec::with_capacity(encoded_len(value)?));
    ciborium::into_writer(value, &mut *out).map_err(|e| CborError::Syntax(e.to_string()))?;
    Ok(std::mem::take(&mut *out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &(u8, String, serde_bytes::ByteBuf)) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    /// A message whose last item, a byte string, is handed over in place.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Relayed {
        to: String,
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    }

    impl TrailingBytes for Relayed {
        fn trailing_bytes(&mut self) -> Option<&mut Vec<u8>> {
            Some(&mut self.body)
        }
    }

    #[test]
    fn a_trailing_byte_string_is_handed_over_in_place_and_one_item_is_still_all() {
        let relayed = Relayed {
            to: "child".into(),
            body: vec![0x61; MIN_TRAILING_BYTES + 1],
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&relayed, &mut bytes).unwrap();
        let back: Relayed = from_vec_with_tail(bytes.clone()).unwrap();
        assert_eq!(back, relayed);
        let moved = bytes.clone();
        let moved_at = moved.as_ptr() as usize;
        let back: Relayed = from_vec_with_tail(moved).unwrap();
        assert_eq!(
            back.body.as_ptr() as usize,
            moved_at,
            "the bytes' own buffer"
        );
        // As from_slice: nothing may follow the item, and a cut item is an error.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            from_vec_with_tail::<Relayed>(longer),
            Err(CborError::Trailing(1))
        ));
        for cut in [1, 10, bytes.len() - 1] {
            assert!(from_vec_with_tail::<Relayed>(bytes[..cut].to_vec()).is_err());
        }
    }

    #[test]
    fn a_trailing_byte_string_is_found_from_the_first_bytes_alone() {
        let relayed = Relayed {
            to: "a peer".into(),
            body: vec![0x62; 3 * MIN_TRAILING_BYTES],
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&relayed, &mut bytes).unwrap();
        let whole = trailing_byte_string(&bytes, bytes.len()).unwrap();
        assert_eq!(bytes.len() - whole.1, relayed.body.len());
        // The headers are all in the first bytes; the string runs on past them.
        assert_eq!(trailing_byte_string(&bytes[..64], bytes.len()), Some(whole));
        let head: Relayed = from_slice(&head_with_empty_tail(&bytes, whole.0)).unwrap();
        assert_eq!(head.to, relayed.to);
        assert!(head.body.is_empty());
        // A header cut by the prefix, a total that is not the item's, a prefix longer
        // than the total: none is split.
        assert_eq!(
            trailing_byte_string(&bytes[..whole.0 + 1], bytes.len()),
            None
        );
        assert_eq!(trailing_byte_string(&bytes, bytes.len() - 1), None);
        assert_eq!(trailing_byte_string(&bytes[..64], bytes.len() + 1), None);
        assert_eq!(trailing_byte_string(&bytes[..64], 10), None);
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

    /// The buffer is allocated once at the encoding's size: it never grew, so no
    /// smaller copy of it was freed along the way; and it holds what `into_writer` does.
    #[test]
    fn an_exact_encoding_never_grows_its_buffer() {
        for len in [0, 1, 23, 24, 255, 256, 65_535, 65_536, 1 << 20] {
            let value = (
                7u8,
                "db".to_string(),
                serde_bytes::ByteBuf::from(vec![0x5a; len]),
            );
            let out = to_vec_exact(&value).unwrap();
            assert_eq!(out.capacity(), out.len(), "{len}");
            assert_eq!(encoded_len(&value).unwrap(), out.len(), "{len}");
            assert_eq!(out, encode(&value), "{len}");
        }
    }
}
