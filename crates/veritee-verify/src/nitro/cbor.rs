//! A small, bounded CBOR (RFC 8949) decoder, and the one encoder COSE needs.
//!
//! Why not `coset`/`ciborium`: `coset` 0.4 decodes through `ciborium::Value`, which
//! does accept indefinite-length items (so the format question is not the reason) and
//! bounds nesting with a recursion limit, but sets no bound on the number of items in
//! a document, and `coset` only covers the COSE envelope: the attestation payload is a
//! second CBOR document to decode anyway, and the envelope itself is four fields.
//! Attestation documents arrive from untrusted hosts, so this decoder (about 250
//! lines, fuzzed by `fuzz/fuzz_targets/nitro_document.rs`) makes every bound explicit:
//!
//! - nesting deeper than [`MAX_DEPTH`] is refused;
//! - more than [`MAX_ITEMS`] data items in one document are refused;
//! - a definite length larger than the bytes left is refused *before* anything is
//!   reserved, and byte/text strings borrow from the input, so nothing allocates more
//!   than the input's own size;
//! - indefinite-length byte and text strings (chunks of the same major type,
//!   concatenated), arrays and maps are accepted, as RFC 8949 section 3.2 allows and
//!   as COSE does not forbid on decoding;
//! - reserved additional-information values (28..30), a "break" outside an
//!   indefinite-length item, nested indefinite chunks and invalid UTF-8 are errors.
//!
//! Non-shortest ("non-preferred") heads are accepted: COSE signatures cover the bytes
//! of the protected header and payload as transported, not a re-encoding.

use std::borrow::Cow;
use veritee_attest::VerifyError;

/// Deepest nesting of arrays, maps and tags accepted.
pub const MAX_DEPTH: usize = 16;
/// Most data items accepted in one document (a Nitro document has about a hundred).
pub const MAX_ITEMS: usize = 4096;

const BREAK: u8 = 0xff;
const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;
/// Additional information meaning "indefinite length" (or "break" in major type 7).
const INDEFINITE: u8 = 31;

/// One decoded CBOR data item. Strings borrow from the input when they were encoded
/// with a definite length.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    /// Major type 2.
    Bytes(Cow<'a, [u8]>),
    /// Major type 3.
    Text(Cow<'a, str>),
    /// Major type 4.
    Array(Vec<Value<'a>>),
    /// Major type 5, pairs in encoded order.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// Major type 6.
    Tag(u64, Box<Value<'a>>),
    /// `false` / `true`.
    Bool(bool),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Another simple value.
    Simple(u8),
    /// A half, single or double precision float.
    Float(f64),
}

impl Value<'_> {
    /// A short name of the item's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unsigned(_) => "unsigned integer",
            Self::Negative(_) => "negative integer",
            Self::Bytes(_) => "byte string",
            Self::Text(_) => "text string",
            Self::Array(_) => "array",
            Self::Map(_) => "map",
            Self::Tag(..) => "tagged item",
            Self::Bool(_) => "boolean",
            Self::Null => "null",
            Self::Undefined => "undefined",
            Self::Simple(_) => "simple value",
            Self::Float(_) => "float",
        }
    }

    /// The integer value, if this is a (positive or negative) integer that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::Unsigned(n) => i64::try_from(n).ok(),
            Self::Negative(n) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }
}

/// Decodes exactly one data item that must fill `input` (no trailing bytes).
/// `what` names the document in error messages.
pub fn decode_exact<'a>(what: &'static str, input: &'a [u8]) -> Result<Value<'a>, VerifyError> {
    let (value, consumed) = decode_prefix(what, input)?;
    if consumed != input.len() {
        return Err(VerifyError::malformed(
            what,
            format!(
                "{} trailing bytes after the CBOR item at offset {consumed:#x}",
                input.len() - consumed
            ),
        ));
    }
    Ok(value)
}

/// Decodes the first data item of `input`, returning it and the number of bytes it
/// took; what follows is left alone.
pub fn decode_prefix<'a>(
    what: &'static str,
    input: &'a [u8],
) -> Result<(Value<'a>, usize), VerifyError> {
    let mut decoder = Decoder {
        what,
        input,
        pos: 0,
        items: 0,
    };
    let value = decoder.item(0)?;
    Ok((value, decoder.pos))
}

struct Decoder<'a> {
    what: &'static str,
    input: &'a [u8],
    pos: usize,
    items: usize,
}

/// The first byte(s) of an item: major type, additional information and argument
/// (`None` for an indefinite length).
struct Head {
    major: u8,
    info: u8,
    arg: Option<u64>,
}

impl<'a> Decoder<'a> {
    fn error(&self, reason: impl core::fmt::Display) -> VerifyError {
        VerifyError::malformed(
            self.what,
            format!("CBOR at offset {:#x}: {reason}", self.pos),
        )
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], VerifyError> {
        if len > self.remaining() {
            return Err(self.error(format!(
                "truncated: {len} bytes needed, {} left",
                self.remaining()
            )));
        }
        let out = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn head(&mut self) -> Result<Head, VerifyError> {
        let initial = self.take(1)?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(u64::from(self.take(1)?[0])),
            25 => {
                let b = self.take(2)?;
                Some(u64::from(u16::from_be_bytes([b[0], b[1]])))
            }
            26 => {
                let b = self.take(4)?;
                Some(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            27 => {
                let b = self.take(8)?;
                Some(u64::from_be_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            }
            28..=30 => return Err(self.error(format!("reserved additional information {info}"))),
            _ => None,
        };
        Ok(Head { major, info, arg })
    }

    /// A definite length that cannot exceed the bytes left (each element of an array
    /// or map takes at least `min_bytes_each`).
    fn length(&self, len: u64, min_bytes_each: usize) -> Result<usize, VerifyError> {
        usize::try_from(len)
            .ok()
            .filter(|n| {
                n.checked_mul(min_bytes_each)
                    .is_some_and(|need| need <= self.remaining())
            })
            .ok_or_else(|| {
                self.error(format!(
                    "length {len} exceeds the {} bytes left",
                    self.remaining()
                ))
            })
    }

    fn count_item(&mut self) -> Result<(), VerifyError> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(VerifyError::TooLarge {
                what: format!("{} (CBOR data items)", self.what),
                size: self.items,
                limit: MAX_ITEMS,
            });
        }
        Ok(())
    }

    fn at_break(&mut self) -> Result<bool, VerifyError> {
        match self.peek() {
            Some(BREAK) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.error("truncated: indefinite-length item without a break")),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value<'a>, VerifyError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.count_item()?;
        let head = self.head()?;
        match (head.major, head.arg) {
            (MAJOR_UNSIGNED, Some(n)) => Ok(Value::Unsigned(n)),
            (MAJOR_NEGATIVE, Some(n)) => Ok(Value::Negative(n)),
            (MAJOR_UNSIGNED | MAJOR_NEGATIVE | MAJOR_TAG, None) => Err(self.error(format!(
                "indefinite length is not allowed for major type {}",
                head.major
            ))),
            (MAJOR_BYTES, Some(len)) => {
                let len = self.length(len, 1)?;
                Ok(Value::Bytes(Cow::Borrowed(self.take(len)?)))
            }
            (MAJOR_BYTES, None) => Ok(Value::Bytes(Cow::Owned(self.chunks(MAJOR_BYTES)?))),
            (MAJOR_TEXT, Some(len)) => {
                let len = self.length(len, 1)?;
                let bytes = self.take(len)?;
                let text = core::str::from_utf8(bytes)
                    .map_err(|_| self.error("text string is not UTF-8"))?;
                Ok(Value::Text(Cow::Borrowed(text)))
            }
            (MAJOR_TEXT, None) => {
                let bytes = self.chunks(MAJOR_TEXT)?;
                let text =
                    String::from_utf8(bytes).map_err(|_| self.error("text string is not UTF-8"))?;
                Ok(Value::Text(Cow::Owned(text)))
            }
            (MAJOR_ARRAY, len) => {
                let mut items = Vec::new();
                match len {
                    Some(len) => {
                        for _ in 0..self.length(len, 1)? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            (MAJOR_MAP, len) => {
                let mut pairs = Vec::new();
                match len {
                    Some(len) => {
                        for _ in 0..self.length(len, 2)? {
                            let key = self.item(depth + 1)?;
                            pairs.push((key, self.item(depth + 1)?));
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            let key = self.item(depth + 1)?;
                            pairs.push((key, self.item(depth + 1)?));
                        }
                    }
                }
                Ok(Value::Map(pairs))
            }
            (MAJOR_TAG, Some(tag)) => Ok(Value::Tag(tag, Box::new(self.item(depth + 1)?))),
            (MAJOR_SIMPLE, arg) => self.simple(head.info, arg),
            _ => Err(self.error(format!("major type {} is not valid here", head.major))),
        }
    }

    /// The chunks of an indefinite-length byte or text string, concatenated. Each chunk
    /// is a definite-length string of the same major type (RFC 8949 section 3.2.3).
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, VerifyError> {
        let mut out = Vec::new();
        while !self.at_break()? {
            self.count_item()?;
            let chunk = self.head()?;
            let (true, Some(len)) = (chunk.major == major, chunk.arg) else {
                return Err(self.error("an indefinite-length string chunk must be a definite-length string of the same type"));
            };
            let len = self.length(len, 1)?;
            out.extend_from_slice(self.take(len)?);
        }
        Ok(out)
    }

    fn simple(&mut self, info: u8, arg: Option<u64>) -> Result<Value<'a>, VerifyError> {
        Ok(match (info, arg) {
            (20, _) => Value::Bool(false),
            (21, _) => Value::Bool(true),
            (22, _) => Value::Null,
            (23, _) => Value::Undefined,
            (0..=19, Some(n)) => Value::Simple(n as u8),
            (24, Some(n)) if n >= 32 => Value::Simple(n as u8),
            (24, Some(n)) => {
                return Err(self.error(format!("simple value {n} must use the one-byte form")));
            }
            (25, Some(bits)) => Value::Float(half_to_f64(bits as u16)),
            (26, Some(bits)) => Value::Float(f64::from(f32::from_bits(bits as u32))),
            (27, Some(bits)) => Value::Float(f64::from_bits(bits)),
            (INDEFINITE, _) => {
                return Err(self.error("\"break\" outside an indefinite-length item"));
            }
            _ => return Err(self.error(format!("invalid simple value encoding {info}"))),
        })
    }
}

/// IEEE 754 half precision to f64 (RFC 8949 appendix D).
fn half_to_f64(half: u16) -> f64 {
    let exponent = i32::from((half >> 10) & 0x1f);
    let mantissa = f64::from(half & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (mantissa + 1024.0) * 2f64.powi(exponent - 25),
    };
    if half & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Appends the head of a definite-length item in its shortest form.
pub fn encode_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Appends a definite-length byte string.
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_head(out, MAJOR_BYTES, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a definite-length text string.
pub fn encode_text(out: &mut Vec<u8>, text: &str) {
    encode_head(out, MAJOR_TEXT, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Appends the head of a definite-length array.
pub fn encode_array_head(out: &mut Vec<u8>, len: usize) {
    encode_head(out, MAJOR_ARRAY, len as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(hex_text: &str) -> Result<Value<'static>, VerifyError> {
        let bytes: &'static [u8] = Vec::leak(hex::decode(hex_text).unwrap());
        decode_exact("test", bytes)
    }

    #[test]
    fn rfc8949_examples() {
        assert_eq!(decode("1864").unwrap(), Value::Unsigned(100));
        assert_eq!(decode("3903e7").unwrap().as_i64(), Some(-1000));
        assert_eq!(
            decode("1bffffffffffffffff").unwrap(),
            Value::Unsigned(u64::MAX)
        );
        assert_eq!(
            decode("4401020304").unwrap(),
            Value::Bytes(Cow::Borrowed(&[1, 2, 3, 4]))
        );
        assert_eq!(decode("62c3bc").unwrap(), Value::Text(Cow::Borrowed("ü")));
        assert_eq!(decode("f93c00").unwrap(), Value::Float(1.0));
        assert_eq!(
            decode("f90001").unwrap(),
            Value::Float(5.960464477539063e-8)
        );
        assert_eq!(decode("fa47c35000").unwrap(), Value::Float(100000.0));
        assert_eq!(decode("f6").unwrap(), Value::Null);
        assert_eq!(decode("f0").unwrap(), Value::Simple(16));
        assert_eq!(
            decode("c11a514b67b0").unwrap(),
            Value::Tag(1, Box::new(Value::Unsigned(1363896240)))
        );
    }

    #[test]
    fn indefinite_lengths() {
        // (_ h'0102', h'030405')
        assert_eq!(
            decode("5f42010243030405ff").unwrap(),
            Value::Bytes(Cow::Owned(vec![1, 2, 3, 4, 5]))
        );
        // (_ "strea", "ming")
        assert_eq!(
            decode("7f657374726561646d696e67ff").unwrap(),
            Value::Text(Cow::Owned("streaming".into()))
        );
        // [_ 1, [2, 3], [_ 4, 5]]
        let v = decode("9f018202039f0405ffff").unwrap();
        let Value::Array(items) = v else { panic!() };
        assert_eq!(items.len(), 3);
        // {_ "a": 1, "b": [_ 2, 3]}
        let Value::Map(pairs) = decode("bf61610161629f0203ffff").unwrap() else {
            panic!()
        };
        assert_eq!(pairs.len(), 2);
        // Empty indefinite string.
        assert_eq!(decode("5fff").unwrap(), Value::Bytes(Cow::Owned(vec![])));
    }

    #[test]
    fn malformed_inputs_are_refused() {
        for bad in [
            "",                   // nothing
            "18",                 // truncated argument
            "1c",                 // reserved info
            "ff",                 // break at top level
            "5f4101",             // indefinite without break
            "5f6161ff",           // text chunk inside byte string
            "5f5f4101ffff",       // nested indefinite chunk
            "62c3",               // truncated text
            "62c328",             // invalid UTF-8
            "9f01",               // unterminated array
            "1f",                 // indefinite unsigned
            "df01",               // indefinite tag
            "f818",               // simple value < 32 in two-byte form
            "0101",               // trailing byte
            "5bffffffffffffffff", // absurd length
            "9bffffffffffffffff", // absurd array length
            "bb0000000100000000", // absurd map length
        ] {
            let err = decode(bad).unwrap_err();
            assert!(err.is_unusable_input(), "{bad}: {err}");
        }
    }

    #[test]
    fn depth_and_item_count_are_bounded() {
        let deep = "81".repeat(MAX_DEPTH + 1) + "00";
        assert!(
            decode(&deep)
                .unwrap_err()
                .to_string()
                .contains("nesting deeper")
        );
        let ok = "81".repeat(MAX_DEPTH) + "00";
        decode(&ok).unwrap();
        let many = format!("9f{}ff", "00".repeat(MAX_ITEMS));
        assert!(matches!(decode(&many), Err(VerifyError::TooLarge { .. })));
    }

    #[test]
    fn encoder_writes_shortest_heads() {
        let mut out = Vec::new();
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            out.clear();
            encode_head(&mut out, MAJOR_UNSIGNED, n);
            assert_eq!(decode_exact("test", &out).unwrap(), Value::Unsigned(n));
        }
        out.clear();
        encode_text(&mut out, "Signature1");
        assert_eq!(hex::encode(&out), "6a5369676e617475726531");
    }
}
