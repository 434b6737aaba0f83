//! go-tpm-tools' `attest.Attestation` protobuf, read by hand.
//!
//! Only the fields the verifier needs are decoded (field numbers from go-tpm-tools
//! `proto/attest.proto` and `proto/tpm.proto`); everything else is skipped, bounded by
//! its own length. A protobuf crate would need generated code for a handful of fields;
//! a forty-line bounded reader is easier to audit.
//!
//! ```text
//! message Attestation {                 message Quote {
//!   bytes ak_pub = 1;        // TPMT_PUBLIC  bytes quote = 1;    // TPMS_ATTEST
//!   repeated Quote quotes = 2;            bytes raw_sig = 2;  // TPMT_SIGNATURE
//!   bytes event_log = 3;                  PCRs pcrs = 3;
//!   GCEInstanceInfo instance_info = 4;  }
//!   bytes canonical_event_log = 5;      message PCRs {
//!   bytes ak_cert = 6;       // DER         HashAlgo hash = 1;  // TPM_ALG_ID
//!   repeated bytes intermediate_certs = 7;  map<uint32, bytes> pcrs = 2;
//!   oneof tee_attestation { 8, 9 }      }  // map entry: key = 1, value = 2
//! }
//! ```

use std::collections::BTreeMap;
use veritee_attest::VerifyError;

/// Largest attestation accepted (the GCE ones, with their event logs, are ~30 KB).
pub const MAX_ATTESTATION_LEN: usize = 1024 * 1024;
/// Most quotes accepted (one per PCR bank).
pub const MAX_QUOTES: usize = 8;
/// Most PCRs in one bank.
pub const MAX_PCRS: usize = 32;
/// Most intermediate certificates accepted.
pub const MAX_INTERMEDIATES: usize = 8;

const WHAT: &str = "TPM attestation protobuf";

/// A protobuf field value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Reads protobuf fields from a byte slice, every length bounded by what is left.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, VerifyError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| VerifyError::malformed(WHAT, "truncated varint"))?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(VerifyError::malformed(WHAT, "varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(VerifyError::malformed(WHAT, "varint longer than 10 bytes"))
    }

    fn skip(&mut self, len: usize, field: u64) -> Result<&'a [u8], VerifyError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                VerifyError::malformed(
                    WHAT,
                    format!(
                        "truncated: field {field} needs {len} bytes, {} left",
                        self.bytes.len() - self.pos
                    ),
                )
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next field number and value, or `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>, VerifyError> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(VerifyError::malformed(WHAT, "field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.skip(8, field)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                Value::Bytes(self.skip(len, field)?)
            }
            5 => {
                self.skip(4, field)?;
                Value::Fixed
            }
            other => {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("field {field} has unsupported wire type {other}"),
                ));
            }
        };
        Ok(Some((field, value)))
    }
}

fn bytes_of<'a>(value: Value<'a>, name: &str) -> Result<&'a [u8], VerifyError> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(VerifyError::malformed(
            WHAT,
            format!("{name} is not length-delimited"),
        )),
    }
}

/// One quote over one PCR bank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoQuote<'a> {
    /// TPMS_ATTEST bytes.
    pub quote: &'a [u8],
    /// TPMT_SIGNATURE bytes.
    pub raw_sig: &'a [u8],
    /// The bank's hash algorithm (TPM_ALG_ID).
    pub pcr_hash: u16,
    /// PCR values by index.
    pub pcrs: BTreeMap<u32, &'a [u8]>,
}

/// The fields of an `attest.Attestation` the verifier uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attestation<'a> {
    /// TPMT_PUBLIC of the attestation key.
    pub ak_pub: &'a [u8],
    /// Quotes, one per bank.
    pub quotes: Vec<ProtoQuote<'a>>,
    /// Length of the event log (not replayed).
    pub event_log_len: usize,
    /// AK certificate, DER.
    pub ak_cert: Option<&'a [u8]>,
    /// Intermediate certificates, DER.
    pub intermediate_certs: Vec<&'a [u8]>,
}

fn parse_pcrs<'a>(bytes: &'a [u8], quote: &mut ProtoQuote<'a>) -> Result<(), VerifyError> {
    let mut f = Fields::new(bytes);
    while let Some((field, value)) = f.next()? {
        match (field, value) {
            (1, Value::Varint(hash)) => {
                quote.pcr_hash = u16::try_from(hash).map_err(|_| {
                    VerifyError::malformed(WHAT, format!("PCR hash algorithm {hash} out of range"))
                })?;
            }
            (2, value) => {
                let entry = bytes_of(value, "PCR map entry")?;
                let (mut key, mut val) = (0u32, &[][..]);
                let mut e = Fields::new(entry);
                while let Some((field, value)) = e.next()? {
                    match (field, value) {
                        (1, Value::Varint(k)) => {
                            key = u32::try_from(k).map_err(|_| {
                                VerifyError::malformed(WHAT, format!("PCR index {k} out of range"))
                            })?
                        }
                        (2, v) => val = bytes_of(v, "PCR value")?,
                        _ => {}
                    }
                }
                if quote.pcrs.insert(key, val).is_some() {
                    return Err(VerifyError::malformed(
                        WHAT,
                        format!("PCR {key} given twice"),
                    ));
                }
                if quote.pcrs.len() > MAX_PCRS {
                    return Err(VerifyError::malformed(
                        WHAT,
                        format!("more than {MAX_PCRS} PCRs in one bank"),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_quote(bytes: &[u8]) -> Result<ProtoQuote<'_>, VerifyError> {
    let mut quote = ProtoQuote::default();
    let mut f = Fields::new(bytes);
    while let Some((field, value)) = f.next()? {
        match field {
            1 => quote.quote = bytes_of(value, "Quote.quote")?,
            2 => quote.raw_sig = bytes_of(value, "Quote.raw_sig")?,
            3 => parse_pcrs(bytes_of(value, "Quote.pcrs")?, &mut quote)?,
            _ => {}
        }
    }
    Ok(quote)
}

impl<'a> Attestation<'a> {
    /// Parses an `attest.Attestation`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_ATTESTATION_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_ATTESTATION_LEN,
            });
        }
        let mut out = Self::default();
        let mut f = Fields::new(bytes);
        while let Some((field, value)) = f.next()? {
            match field {
                1 => out.ak_pub = bytes_of(value, "ak_pub")?,
                2 => {
                    if out.quotes.len() == MAX_QUOTES {
                        return Err(VerifyError::malformed(
                            WHAT,
                            format!("more than {MAX_QUOTES} quotes"),
                        ));
                    }
                    out.quotes.push(parse_quote(bytes_of(value, "quotes")?)?);
                }
                3 => out.event_log_len = bytes_of(value, "event_log")?.len(),
                6 => out.ak_cert = Some(bytes_of(value, "ak_cert")?),
                7 => {
                    if out.intermediate_certs.len() == MAX_INTERMEDIATES {
                        return Err(VerifyError::malformed(
                            WHAT,
                            format!("more than {MAX_INTERMEDIATES} intermediate certificates"),
                        ));
                    }
                    out.intermediate_certs
                        .push(bytes_of(value, "intermediate_certs")?);
                }
                _ => {}
            }
        }
        if out.ak_pub.is_empty() {
            return Err(VerifyError::malformed(WHAT, "no ak_pub (field 1)"));
        }
        if out.quotes.is_empty() {
            return Err(VerifyError::malformed(WHAT, "no quotes (field 2)"));
        }
        Ok(out)
    }

    /// Whether `bytes` starts like an attestation: field 1 holding a TPMT_PUBLIC of an
    /// RSA or ECC key.
    pub fn recognizes(bytes: &[u8]) -> bool {
        let mut f = Fields::new(bytes);
        if bytes.first() != Some(&0x0a) {
            return false;
        }
        match f.next() {
            Ok(Some((1, Value::Bytes(ak)))) => matches!(ak.get(..2), Some([0, 0x01] | [0, 0x23])),
            _ => false,
        }
    }
}
