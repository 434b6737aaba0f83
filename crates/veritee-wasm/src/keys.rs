//! Stored keys a compartment uses by index through `veritee.key_op`, never holding
//! their material: the engine passes each request to a [`KeyService`] the node gives
//! the compartment, and copies back only the answer.
//!
//! A request is one operation byte, then its fields:
//!
//! ```text
//! 1 encrypt  | aad_len: u32 BE | aad | plaintext         -> the key's ciphertext envelope
//! 2 decrypt  | aad_len: u32 BE | aad | ciphertext        -> the plaintext
//! 3 sign     | message                                   -> version: u32 BE | signature (r || s)
//! 4 verify   | version: u32 BE (0: newest) | sig_len: u32 BE | signature | message
//!                                                        -> one byte, 1 valid, 0 not
//! 5 hmac     | data                                      -> version: u32 BE | tag
//! 6 translate| to_key: u32 BE | aad_len: u32 BE | aad | ciphertext
//!                                                        -> the envelope under key to_key
//! ```
//!
//! A translation opens a ciphertext of this key and seals its plaintext under another
//! key granted to the same compartment (`to_key` is its index), bound to the same
//! associated data: the plaintext never enters the compartment.

use veritee_crypto::SecretBytes;

/// Operation byte of an encryption.
pub const OP_ENCRYPT: u8 = 1;
/// Operation byte of a decryption.
pub const OP_DECRYPT: u8 = 2;
/// Operation byte of a signature.
pub const OP_SIGN: u8 = 3;
/// Operation byte of a verification.
pub const OP_VERIFY: u8 = 4;
/// Operation byte of an HMAC.
pub const OP_HMAC: u8 = 5;
/// Operation byte of a translation to another key.
pub const OP_TRANSLATE: u8 = 6;

/// One `key_op` request, read from the guest's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRequest<'a> {
    /// Encrypt `plaintext` bound to `aad`.
    Encrypt {
        /// Associated data (may be empty).
        aad: &'a [u8],
        /// What to encrypt.
        plaintext: &'a [u8],
    },
    /// Decrypt a ciphertext envelope bound to `aad`.
    Decrypt {
        /// Associated data it was made with.
        aad: &'a [u8],
        /// The envelope.
        ciphertext: &'a [u8],
    },
    /// Sign `message` with the newest version.
    Sign {
        /// What to sign.
        message: &'a [u8],
    },
    /// Check `signature` (or HMAC tag) over `message`.
    Verify {
        /// The key version it was made with; `None`: the newest.
        version: Option<u32>,
        /// The signature or tag.
        signature: &'a [u8],
        /// What it is over.
        message: &'a [u8],
    },
    /// HMAC of `data` with the newest version.
    Hmac {
        /// What to authenticate.
        data: &'a [u8],
    },
    /// Open `ciphertext` (bound to `aad`) and seal its plaintext under key `to`.
    Translate {
        /// The index of the key to seal it under, in the compartment's list.
        to: u32,
        /// Associated data, the same on both sides.
        aad: &'a [u8],
        /// The envelope under this key.
        ciphertext: &'a [u8],
    },
}

/// Splits `bytes` into a big-endian `u32` and the rest.
fn u32_of<'a>(bytes: &'a [u8], what: &str) -> Result<(u32, &'a [u8]), KeyOpError> {
    match bytes.split_first_chunk::<4>() {
        Some((n, rest)) => Ok((u32::from_be_bytes(*n), rest)),
        None => Err(KeyOpError::Malformed(format!(
            "the request ends before its {what} (4 bytes, big-endian)"
        ))),
    }
}

/// Splits a length-prefixed field off `bytes`.
fn field<'a>(bytes: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), KeyOpError> {
    let (len, rest) = u32_of(bytes, &format!("{what} length"))?;
    let len = len as usize;
    if len > rest.len() {
        return Err(KeyOpError::Malformed(format!(
            "its {what} length {len} passes the end of the request ({} bytes left)",
            rest.len()
        )));
    }
    Ok(rest.split_at(len))
}

impl<'a> KeyRequest<'a> {
    /// Reads a request (see the module's table).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, KeyOpError> {
        let Some((&op, rest)) = bytes.split_first() else {
            return Err(KeyOpError::Malformed(
                "the request is empty (its first byte is the operation)".into(),
            ));
        };
        Ok(match op {
            OP_ENCRYPT => {
                let (aad, plaintext) = field(rest, "aad")?;
                Self::Encrypt { aad, plaintext }
            }
            OP_DECRYPT => {
                let (aad, ciphertext) = field(rest, "aad")?;
                Self::Decrypt { aad, ciphertext }
            }
            OP_SIGN => Self::Sign { message: rest },
            OP_VERIFY => {
                let (version, rest) = u32_of(rest, "key version")?;
                let (signature, message) = field(rest, "signature")?;
                Self::Verify {
                    version: (version != 0).then_some(version),
                    signature,
                    message,
                }
            }
            OP_HMAC => Self::Hmac { data: rest },
            OP_TRANSLATE => {
                let (to, rest) = u32_of(rest, "target key index")?;
                let (aad, ciphertext) = field(rest, "aad")?;
                Self::Translate {
                    to,
                    aad,
                    ciphertext,
                }
            }
            other => {
                return Err(KeyOpError::Malformed(format!(
                    "operation {other} is none of 1 encrypt, 2 decrypt, 3 sign, 4 verify, 5 hmac, 6 translate"
                )));
            }
        })
    }

    /// The operation's name, for refusals.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Encrypt { .. } => "encrypt",
            Self::Decrypt { .. } => "decrypt",
            Self::Sign { .. } => "sign",
            Self::Verify { .. } => "verify",
            Self::Hmac { .. } => "hmac",
            Self::Translate { .. } => "translate",
        }
    }
}

/// Why a `key_op` was refused; the guest gets [`KeyOpError::code`], its log the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyOpError {
    /// The compartment has no key at that index.
    #[error("{0}")]
    NoSuchKey(String),
    /// The request does not follow the format.
    #[error("malformed key request: {0}")]
    Malformed(String),
    /// The key's metadata do not allow the operation.
    #[error("{0}")]
    Forbidden(String),
    /// The operation failed on these inputs (wrong key type, a ciphertext that does
    /// not open, an unknown key version).
    #[error("{0}")]
    Failed(String),
}

impl KeyOpError {
    /// The negative value `key_op` returns for it.
    pub fn code(&self) -> i32 {
        match self {
            Self::NoSuchKey(_) => -1,
            Self::Malformed(_) => -2,
            Self::Forbidden(_) => -3,
            Self::Failed(_) => -4,
        }
    }
}

/// The node's side of a compartment's stored keys: holds them (in enclave memory) and
/// answers requests by the key's index in the compartment's list. An implementation
/// must never answer with key material, only with what the operation makes.
pub trait KeyService: Send + Sync {
    /// How many keys the compartment was granted.
    fn count(&self) -> usize;
    /// Performs `request` with key `key_index`.
    fn call(&self, key_index: usize, request: KeyRequest<'_>) -> Result<SecretBytes, KeyOpError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_field(op: u8, first: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut out = vec![op];
        out.extend_from_slice(&(first.len() as u32).to_be_bytes());
        out.extend_from_slice(first);
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn requests_read_back_and_bad_ones_say_why() {
        assert_eq!(
            KeyRequest::parse(&with_field(OP_ENCRYPT, b"aad", b"plain")).unwrap(),
            KeyRequest::Encrypt {
                aad: b"aad",
                plaintext: b"plain"
            }
        );
        assert_eq!(
            KeyRequest::parse(&with_field(OP_DECRYPT, b"", b"ct")).unwrap(),
            KeyRequest::Decrypt {
                aad: b"",
                ciphertext: b"ct"
            }
        );
        assert_eq!(
            KeyRequest::parse(b"\x03msg").unwrap(),
            KeyRequest::Sign { message: b"msg" }
        );
        let mut verify = vec![OP_VERIFY, 0, 0, 0, 2];
        verify.extend_from_slice(&with_field(0, b"sig", b"msg")[1..]);
        assert_eq!(
            KeyRequest::parse(&verify).unwrap(),
            KeyRequest::Verify {
                version: Some(2),
                signature: b"sig",
                message: b"msg"
            }
        );
        let mut translate = vec![OP_TRANSLATE, 0, 0, 0, 1];
        translate.extend_from_slice(&with_field(0, b"aad", b"ct")[1..]);
        assert_eq!(
            KeyRequest::parse(&translate).unwrap(),
            KeyRequest::Translate {
                to: 1,
                aad: b"aad",
                ciphertext: b"ct"
            }
        );
        for (bytes, word) in [
            (&b""[..], "empty"),
            (b"\x06\x00\x00", "target key index"),
            (b"\x06\x00\x00\x00\x01\x00\x00\x00\x05ab", "passes the end"),
            (b"\x09", "operation 9"),
            (b"\x01\x00\x00", "ends before its aad length"),
            (b"\x01\x00\x00\x00\x09ab", "passes the end"),
            (b"\x04\x00\x00\x00\x00", "signature length"),
        ] {
            let e = KeyRequest::parse(bytes).unwrap_err();
            assert_eq!(e.code(), -2);
            assert!(e.to_string().contains(word), "{word}: {e}");
        }
    }
}
