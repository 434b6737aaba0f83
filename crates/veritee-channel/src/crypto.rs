//! Cryptographic operations by key id (flow 3), as asked inside a session.
//!
//! These types hold secrets (plaintexts in and out), so they implement neither
//! `Serialize` nor a revealing `Debug`: their only encoding is [`encode_batch`] /
//! [`encode_outcomes`], into [`SecretBytes`] that the session encrypts.

use crate::ChannelError;
use crate::secret_cbor::to_cbor;
use serde::{Deserialize, Serialize};
use veritee_crypto::SecretBytes;
use veritee_import::keys::{HashAlgorithm, KeyRef};
use zeroize::Zeroize;

/// Most operations in one batch.
pub const MAX_BATCH: usize = 256;
/// Largest data item of one operation (plaintext, ciphertext, message, AAD).
pub const MAX_DATA_LEN: usize = 1024 * 1024;

/// One operation.
pub enum CryptoOp {
    /// Encrypt `plaintext` under an AES key (its newest version).
    Encrypt {
        /// The key.
        key: KeyRef,
        /// What to encrypt.
        plaintext: SecretBytes,
        /// Associated data the ciphertext is bound to.
        aad: Vec<u8>,
    },
    /// Decrypt a ciphertext made by [`CryptoOp::Encrypt`].
    Decrypt {
        /// The key.
        key: KeyRef,
        /// The ciphertext envelope.
        ciphertext: Vec<u8>,
        /// Its associated data.
        aad: Vec<u8>,
    },
    /// Sign `message` (ECDSA P-256 over its SHA-256, `r || s`).
    Sign {
        /// The key.
        key: KeyRef,
        /// The message.
        message: Vec<u8>,
    },
    /// Verify a signature (ECDSA key) or a MAC (HMAC key) over `message`.
    Verify {
        /// The key.
        key: KeyRef,
        /// The key version that signed (as [`CryptoOutcome::Signature`] named it);
        /// `None`: the newest.
        version: Option<u32>,
        /// The message.
        message: Vec<u8>,
        /// The signature or tag.
        signature: Vec<u8>,
    },
    /// HMAC-SHA-256 of `data`.
    Hmac {
        /// The key.
        key: KeyRef,
        /// The data.
        data: Vec<u8>,
    },
    /// A digest (no key).
    Hash {
        /// The algorithm.
        algorithm: HashAlgorithm,
        /// The data.
        data: Vec<u8>,
    },
    /// Add a version to a key, made inside the enclave; new encryptions and signatures
    /// use it, older versions still decrypt and verify down to the minimum.
    Rotate {
        /// The key.
        key: KeyRef,
    },
    /// Refuse versions below `version` from now on (for decryption and verification).
    SetMinimumVersion {
        /// The key.
        key: KeyRef,
        /// The oldest version still accepted.
        version: u32,
    },
    /// Re-encrypt a ciphertext from one key to another; the plaintext stays inside.
    Translate {
        /// The key it is encrypted under.
        from: KeyRef,
        /// The key to encrypt it under.
        to: KeyRef,
        /// The ciphertext envelope.
        ciphertext: Vec<u8>,
        /// Its associated data (kept for the new ciphertext).
        aad: Vec<u8>,
    },
}

impl core::fmt::Debug for CryptoOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Encrypt { key, plaintext, .. } => {
                write!(f, "Encrypt({key}, {} bytes)", plaintext.len())
            }
            Self::Decrypt {
                key, ciphertext, ..
            } => {
                write!(f, "Decrypt({key}, {} bytes)", ciphertext.len())
            }
            Self::Sign { key, message } => write!(f, "Sign({key}, {} bytes)", message.len()),
            Self::Verify { key, message, .. } => {
                write!(f, "Verify({key}, {} bytes)", message.len())
            }
            Self::Hmac { key, data } => write!(f, "Hmac({key}, {} bytes)", data.len()),
            Self::Hash { algorithm, data } => {
                write!(f, "Hash({algorithm:?}, {} bytes)", data.len())
            }
            Self::Translate { from, to, .. } => write!(f, "Translate({from} -> {to})"),
            Self::Rotate { key } => write!(f, "Rotate({key})"),
            Self::SetMinimumVersion { key, version } => {
                write!(f, "SetMinimumVersion({key}, {version})")
            }
        }
    }
}

/// The outcome of one operation.
pub enum CryptoOutcome {
    /// A ciphertext envelope.
    Ciphertext(Vec<u8>),
    /// A decrypted plaintext.
    Plaintext(SecretBytes),
    /// A signature (`r || s`), and the key version that made it.
    Signature {
        /// The signature.
        signature: Vec<u8>,
        /// The key version.
        version: u32,
    },
    /// A MAC tag, and the key version that made it.
    Mac {
        /// The tag.
        tag: Vec<u8>,
        /// The key version.
        version: u32,
    },
    /// A key's new version, and for a signing key its public key (SPKI DER).
    Rotated {
        /// The new version.
        version: u32,
        /// The new version's public key, for signing keys.
        public_key: Option<Vec<u8>>,
    },
    /// Done (nothing to return).
    Done,
    /// A digest.
    Digest(Vec<u8>),
    /// Whether a signature or MAC verified.
    Verified(bool),
    /// The operation was refused; the message names why (never a secret).
    Error {
        /// Stable code: bad_request, not_found, forbidden, unavailable, internal.
        code: String,
        /// Explanation.
        message: String,
    },
}

impl core::fmt::Debug for CryptoOutcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ciphertext(c) => write!(f, "Ciphertext({} bytes)", c.len()),
            Self::Plaintext(_) => f.write_str("Plaintext(<redacted>)"),
            Self::Signature { signature, version } => {
                write!(f, "Signature({} bytes, version {version})", signature.len())
            }
            Self::Mac { tag, version } => write!(f, "Mac({} bytes, version {version})", tag.len()),
            Self::Rotated { version, .. } => write!(f, "Rotated(version {version})"),
            Self::Done => f.write_str("Done"),
            Self::Digest(d) => write!(f, "Digest({})", hex::encode(d)),
            Self::Verified(v) => write!(f, "Verified({v})"),
            Self::Error { code, message } => write!(f, "Error({code}: {message})"),
        }
    }
}

impl CryptoOutcome {
    /// A refusal.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A plaintext in wire form: wiped when dropped, so also when decoding stops at an
/// error halfway through a batch.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct WireSecret(#[serde(with = "serde_bytes")] Vec<u8>);

impl Drop for WireSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl WireSecret {
    fn copy_of(secret: &SecretBytes) -> Self {
        Self(secret.expose().clone())
    }

    fn into_secret(mut self) -> SecretBytes {
        SecretBytes::new(std::mem::take(&mut self.0))
    }
}

#[derive(Serialize, Deserialize)]
enum WireOp {
    Encrypt {
        key: KeyRef,
        plaintext: WireSecret,
        #[serde(with = "serde_bytes")]
        aad: Vec<u8>,
    },
    Decrypt {
        key: KeyRef,
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
        #[serde(with = "serde_bytes")]
        aad: Vec<u8>,
    },
    Sign {
        key: KeyRef,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    Verify {
        key: KeyRef,
        version: Option<u32>,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    Hmac {
        key: KeyRef,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Hash {
        algorithm: HashAlgorithm,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Translate {
        from: KeyRef,
        to: KeyRef,
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
        #[serde(with = "serde_bytes")]
        aad: Vec<u8>,
    },
    Rotate {
        key: KeyRef,
    },
    SetMinimumVersion {
        key: KeyRef,
        version: u32,
    },
}

#[derive(Serialize, Deserialize)]
enum WireOutcome {
    Ciphertext(#[serde(with = "serde_bytes")] Vec<u8>),
    Plaintext(WireSecret),
    Signature {
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
        version: u32,
    },
    Mac {
        #[serde(with = "serde_bytes")]
        tag: Vec<u8>,
        version: u32,
    },
    Rotated {
        version: u32,
        public_key: Option<serde_bytes::ByteBuf>,
    },
    Done,
    Digest(#[serde(with = "serde_bytes")] Vec<u8>),
    Verified(bool),
    Error {
        code: String,
        message: String,
    },
}

fn check_len(what: &str, len: usize) -> Result<(), ChannelError> {
    if len > MAX_DATA_LEN {
        return Err(ChannelError::Malformed(format!(
            "{what} of {len} bytes (at most {MAX_DATA_LEN})"
        )));
    }
    Ok(())
}

/// Encodes a batch for a session.
pub fn encode_batch(ops: &[CryptoOp]) -> Result<SecretBytes, ChannelError> {
    if ops.is_empty() || ops.len() > MAX_BATCH {
        return Err(ChannelError::Malformed(format!(
            "a batch holds 1 to {MAX_BATCH} operations, not {}",
            ops.len()
        )));
    }
    let wire: Vec<WireOp> = ops
        .iter()
        .map(|op| match op {
            CryptoOp::Encrypt {
                key,
                plaintext,
                aad,
            } => WireOp::Encrypt {
                key: key.clone(),
                plaintext: WireSecret::copy_of(plaintext),
                aad: aad.clone(),
            },
            CryptoOp::Decrypt {
                key,
                ciphertext,
                aad,
            } => WireOp::Decrypt {
                key: key.clone(),
                ciphertext: ciphertext.clone(),
                aad: aad.clone(),
            },
            CryptoOp::Sign { key, message } => WireOp::Sign {
                key: key.clone(),
                message: message.clone(),
            },
            CryptoOp::Verify {
                key,
                version,
                message,
                signature,
            } => WireOp::Verify {
                key: key.clone(),
                version: *version,
                message: message.clone(),
                signature: signature.clone(),
            },
            CryptoOp::Hmac { key, data } => WireOp::Hmac {
                key: key.clone(),
                data: data.clone(),
            },
            CryptoOp::Hash { algorithm, data } => WireOp::Hash {
                algorithm: *algorithm,
                data: data.clone(),
            },
            CryptoOp::Translate {
                from,
                to,
                ciphertext,
                aad,
            } => WireOp::Translate {
                from: from.clone(),
                to: to.clone(),
                ciphertext: ciphertext.clone(),
                aad: aad.clone(),
            },
            CryptoOp::Rotate { key } => WireOp::Rotate { key: key.clone() },
            CryptoOp::SetMinimumVersion { key, version } => WireOp::SetMinimumVersion {
                key: key.clone(),
                version: *version,
            },
        })
        .collect();
    to_cbor(&wire)
}

/// Decodes a batch opened from a session; refuses empty, oversized or malformed ones.
pub fn decode_batch(bytes: &SecretBytes) -> Result<Vec<CryptoOp>, ChannelError> {
    let wire: Vec<WireOp> = veritee_proto::cbor::from_slice(bytes.expose())
        .map_err(|e| ChannelError::Malformed(format!("crypto batch: {}", e.kind())))?;
    if wire.is_empty() || wire.len() > MAX_BATCH {
        return Err(ChannelError::Malformed(format!(
            "a batch holds 1 to {MAX_BATCH} operations, not {}",
            wire.len()
        )));
    }
    let mut ops = Vec::with_capacity(wire.len());
    for op in wire {
        ops.push(match op {
            WireOp::Encrypt {
                key,
                plaintext,
                aad,
            } => {
                let plaintext = plaintext.into_secret();
                check_len("plaintext", plaintext.len())?;
                check_len("aad", aad.len())?;
                CryptoOp::Encrypt {
                    key,
                    plaintext,
                    aad,
                }
            }
            WireOp::Decrypt {
                key,
                ciphertext,
                aad,
            } => {
                check_len("ciphertext", ciphertext.len())?;
                check_len("aad", aad.len())?;
                CryptoOp::Decrypt {
                    key,
                    ciphertext,
                    aad,
                }
            }
            WireOp::Sign { key, message } => {
                check_len("message", message.len())?;
                CryptoOp::Sign { key, message }
            }
            WireOp::Verify {
                key,
                version,
                message,
                signature,
            } => {
                check_len("message", message.len())?;
                check_len("signature", signature.len())?;
                CryptoOp::Verify {
                    key,
                    version,
                    message,
                    signature,
                }
            }
            WireOp::Hmac { key, data } => {
                check_len("data", data.len())?;
                CryptoOp::Hmac { key, data }
            }
            WireOp::Hash { algorithm, data } => {
                check_len("data", data.len())?;
                CryptoOp::Hash { algorithm, data }
            }
            WireOp::Translate {
                from,
                to,
                ciphertext,
                aad,
            } => {
                check_len("ciphertext", ciphertext.len())?;
                check_len("aad", aad.len())?;
                CryptoOp::Translate {
                    from,
                    to,
                    ciphertext,
                    aad,
                }
            }
            WireOp::Rotate { key } => CryptoOp::Rotate { key },
            WireOp::SetMinimumVersion { key, version } => {
                CryptoOp::SetMinimumVersion { key, version }
            }
        });
    }
    Ok(ops)
}

/// Encodes outcomes for a session.
pub fn encode_outcomes(outcomes: &[CryptoOutcome]) -> Result<SecretBytes, ChannelError> {
    let wire: Vec<WireOutcome> = outcomes
        .iter()
        .map(|o| match o {
            CryptoOutcome::Ciphertext(c) => WireOutcome::Ciphertext(c.clone()),
            CryptoOutcome::Plaintext(p) => WireOutcome::Plaintext(WireSecret::copy_of(p)),
            CryptoOutcome::Signature { signature, version } => WireOutcome::Signature {
                signature: signature.clone(),
                version: *version,
            },
            CryptoOutcome::Mac { tag, version } => WireOutcome::Mac {
                tag: tag.clone(),
                version: *version,
            },
            CryptoOutcome::Rotated {
                version,
                public_key,
            } => WireOutcome::Rotated {
                version: *version,
                public_key: public_key.clone().map(serde_bytes::ByteBuf::from),
            },
            CryptoOutcome::Done => WireOutcome::Done,
            CryptoOutcome::Digest(d) => WireOutcome::Digest(d.clone()),
            CryptoOutcome::Verified(v) => WireOutcome::Verified(*v),
            CryptoOutcome::Error { code, message } => WireOutcome::Error {
                code: code.clone(),
                message: message.clone(),
            },
        })
        .collect();
    to_cbor(&wire)
}

/// Decodes outcomes opened from a session.
pub fn decode_outcomes(bytes: &SecretBytes) -> Result<Vec<CryptoOutcome>, ChannelError> {
    let wire: Vec<WireOutcome> = veritee_proto::cbor::from_slice(bytes.expose())
        .map_err(|e| ChannelError::Malformed(format!("crypto outcomes: {}", e.kind())))?;
    // As many outcomes as a batch may hold operations, no more.
    if wire.len() > MAX_BATCH {
        return Err(ChannelError::Malformed(format!(
            "{} operation outcomes (a batch holds at most {MAX_BATCH})",
            wire.len()
        )));
    }
    Ok(wire
        .into_iter()
        .map(|o| match o {
            WireOutcome::Ciphertext(c) => CryptoOutcome::Ciphertext(c),
            WireOutcome::Plaintext(p) => CryptoOutcome::Plaintext(p.into_secret()),
            WireOutcome::Signature { signature, version } => {
                CryptoOutcome::Signature { signature, version }
            }
            WireOutcome::Mac { tag, version } => CryptoOutcome::Mac { tag, version },
            WireOutcome::Rotated {
                version,
                public_key,
            } => CryptoOutcome::Rotated {
                version,
                public_key: public_key.map(serde_bytes::ByteBuf::into_vec),
            },
            WireOutcome::Done => CryptoOutcome::Done,
            WireOutcome::Digest(d) => CryptoOutcome::Digest(d),
            WireOutcome::Verified(v) => CryptoOutcome::Verified(v),
            WireOutcome::Error { code, message } => CryptoOutcome::Error { code, message },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_redacted_and_bounded() {
        let ops = vec![
            CryptoOp::Encrypt {
                key: KeyRef::new("p", "k"),
                plaintext: SecretBytes::copy_from(b"canary-77"),
                aad: vec![],
            },
            CryptoOp::Hash {
                algorithm: HashAlgorithm::Sha256,
                data: b"x".to_vec(),
            },
        ];
        assert!(!format!("{ops:?}").contains("canary"));
        let back = decode_batch(&encode_batch(&ops).unwrap()).unwrap();
        assert!(
            matches!(&back[0], CryptoOp::Encrypt { plaintext, .. } if plaintext.expose() == b"canary-77")
        );
        assert!(matches!(&back[1], CryptoOp::Hash { .. }));
        assert!(encode_batch(&[]).is_err());
        assert!(decode_batch(&SecretBytes::copy_from(b"\x80")).is_err());
        assert!(decode_batch(&SecretBytes::copy_from(b"\xff\x00")).is_err());
        let big = vec![CryptoOp::Hash {
            algorithm: HashAlgorithm::Sha256,
            data: vec![0; MAX_DATA_LEN + 1],
        }];
        let err = decode_batch(&encode_batch(&big).unwrap()).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        let out = vec![CryptoOutcome::Plaintext(SecretBytes::copy_from(
            b"canary-77",
        ))];
        assert!(!format!("{out:?}").contains("canary"));
        let back = decode_outcomes(&encode_outcomes(&out).unwrap()).unwrap();
        assert!(matches!(&back[0], CryptoOutcome::Plaintext(p) if p.expose() == b"canary-77"));
        // More outcomes than a batch may hold operations; truncated; garbage.
        let too_many: Vec<CryptoOutcome> = (0..=MAX_BATCH).map(|_| CryptoOutcome::Done).collect();
        let encoded = encode_outcomes(&too_many).unwrap();
        assert!(decode_outcomes(&encoded).is_err());
        let one = encode_outcomes(&[CryptoOutcome::Done]).unwrap();
        let cut = SecretBytes::copy_from(&one.expose()[..one.len() - 1]);
        assert!(decode_outcomes(&cut).is_err());
        assert!(decode_outcomes(&SecretBytes::copy_from(b"\xff\x00")).is_err());
        // Bytes after a batch or its outcomes are refused, not ignored.
        let mut longer = encode_batch(&ops).unwrap().expose().clone();
        longer.push(0);
        let err = decode_batch(&SecretBytes::new(longer)).unwrap_err();
        assert!(err.to_string().contains("1 bytes follow"), "{err}");
        let mut longer = one.expose().clone();
        longer.extend_from_slice(one.expose());
        assert!(decode_outcomes(&SecretBytes::new(longer)).is_err());
    }
}
