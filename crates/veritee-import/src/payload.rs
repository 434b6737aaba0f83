//! What the TEE layer of an import holds: the key material and, optionally, the
//! revocation data, in one CBOR document that only the enclave ever reads.

use crate::ImportError;
use crate::keys::MAX_MATERIAL_LEN;
use crate::revocation::{MAX_ENDPOINT_LEN, RevocationData, TOKEN_LEN};
use serde::{Deserialize, Serialize};
use veritee_crypto::{Confidential, SecretBytes};
use zeroize::Zeroize;

/// Payload format version.
pub const PAYLOAD_VERSION: u8 = 1;
/// Largest payload.
pub const MAX_PAYLOAD_LEN: usize = MAX_MATERIAL_LEN + MAX_ENDPOINT_LEN + 512;

/// The plaintext of the TEE layer.
pub struct ImportPayload {
    /// The key.
    pub material: SecretBytes,
    /// How the enclave learns the owner revoked it.
    pub revocation: Option<RevocationData>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePayload {
    version: u8,
    #[serde(with = "serde_bytes")]
    material: Vec<u8>,
    revocation: Option<WireRevocation>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRevocation {
    endpoint: String,
    #[serde(with = "serde_bytes")]
    endpoint_key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    token: Vec<u8>,
    interval_secs: u64,
}

impl Drop for WirePayload {
    fn drop(&mut self) {
        self.material.zeroize();
        if let Some(r) = &mut self.revocation {
            r.token.zeroize();
        }
    }
}

impl core::fmt::Debug for ImportPayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ImportPayload")
            .field(
                "material",
                &format_args!("<{} bytes redacted>", self.material.len()),
            )
            .field("revocation", &self.revocation)
            .finish()
    }
}

impl ImportPayload {
    /// Encodes for the TEE layer.
    pub fn encode(&self) -> Result<SecretBytes, ImportError> {
        let wire = WirePayload {
            version: PAYLOAD_VERSION,
            material: self.material.expose().clone(),
            revocation: self.revocation.as_ref().map(|r| WireRevocation {
                endpoint: r.endpoint.clone(),
                endpoint_key: r.endpoint_key.to_vec(),
                token: r.token.expose().to_vec(),
                interval_secs: r.interval_secs,
            }),
        };
        let malformed = |e: veritee_proto::cbor::CborError| {
            ImportError::Malformed(format!("import payload: {e}"))
        };
        // Measured first: an oversized payload is refused before any copy of the key
        // is written, and the one written is exactly sized (never grown out of).
        let len = veritee_proto::cbor::encoded_len(&wire).map_err(malformed)?;
        if len > MAX_PAYLOAD_LEN {
            return Err(ImportError::Malformed(format!(
                "import payload of {len} bytes (at most {MAX_PAYLOAD_LEN})"
            )));
        }
        Ok(SecretBytes::new(
            veritee_proto::cbor::to_vec_exact(&wire).map_err(malformed)?,
        ))
    }

    /// Decodes what the TEE layer opened to; checks every field.
    pub fn decode(bytes: &SecretBytes) -> Result<Self, ImportError> {
        let bad = |what: String| ImportError::Malformed(format!("import payload: {what}"));
        if bytes.len() > MAX_PAYLOAD_LEN {
            return Err(bad(format!(
                "{} bytes (at most {MAX_PAYLOAD_LEN})",
                bytes.len()
            )));
        }
        let wire: WirePayload = veritee_proto::cbor::from_slice(bytes.expose())
            // The decoder's own words may quote the payload: never repeat them.
            .map_err(|e| bad(e.kind()))?;
        if wire.version != PAYLOAD_VERSION {
            return Err(bad(format!(
                "version {} (this build reads {PAYLOAD_VERSION})",
                wire.version
            )));
        }
        if wire.material.len() > MAX_MATERIAL_LEN {
            return Err(bad(format!("a key of more than {MAX_MATERIAL_LEN} bytes")));
        }
        let revocation = match &wire.revocation {
            None => None,
            Some(r) => {
                let endpoint_key: [u8; 32] = r
                    .endpoint_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("the endpoint key is not 32 bytes".into()))?;
                let mut token = Confidential::new([0u8; TOKEN_LEN]);
                if r.token.len() != TOKEN_LEN {
                    return Err(bad(format!(
                        "the revocation token is not {TOKEN_LEN} bytes"
                    )));
                }
                token.expose_mut().copy_from_slice(&r.token);
                let data = RevocationData {
                    endpoint: r.endpoint.clone(),
                    endpoint_key,
                    token,
                    interval_secs: r.interval_secs,
                };
                data.check()?;
                Some(data)
            }
        };
        Ok(Self {
            material: SecretBytes::copy_from(&wire.material),
            revocation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_refuse_what_is_malformed() {
        let p = ImportPayload {
            material: SecretBytes::copy_from(&[5u8; 32]),
            revocation: Some(RevocationData {
                endpoint: "https://revocation.example/check".into(),
                endpoint_key: [9u8; 32],
                token: Confidential::new([3u8; TOKEN_LEN]),
                interval_secs: 300,
            }),
        };
        let bytes = p.encode().unwrap();
        let back = ImportPayload::decode(&bytes).unwrap();
        assert_eq!(back.material.expose(), &[5u8; 32]);
        let r = back.revocation.unwrap();
        assert_eq!((r.interval_secs, r.endpoint_key), (300, [9u8; 32]));
        assert_eq!(r.token.expose(), &[3u8; TOKEN_LEN]);
        for len in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                ImportPayload::decode(&SecretBytes::copy_from(&bytes.expose()[..len])).is_err(),
                "truncated to {len}"
            );
        }
        let too_often = ImportPayload {
            material: SecretBytes::copy_from(&[5u8; 32]),
            revocation: Some(RevocationData {
                endpoint: "https://revocation.example/check".into(),
                endpoint_key: [9u8; 32],
                token: Confidential::new([3u8; TOKEN_LEN]),
                interval_secs: 5,
            }),
        };
        let err = ImportPayload::decode(&too_often.encode().unwrap()).unwrap_err();
        assert!(err.to_string().contains("60 to 86400"), "{err}");
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        assert!(ImportPayload::decode(&SecretBytes::copy_from(&big)).is_err());
        // Too large to encode: refused by its measured size, before it is written.
        let oversized = ImportPayload {
            material: SecretBytes::copy_from(&big),
            revocation: None,
        };
        let err = oversized.encode().unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        // What is encoded sits in a buffer of exactly its size.
        assert_eq!(bytes.expose().capacity(), bytes.len());
        // Bytes after the document: refused, not ignored.
        let mut longer = bytes.expose().clone();
        longer.push(0);
        let err = ImportPayload::decode(&SecretBytes::new(longer)).unwrap_err();
        assert!(err.to_string().contains("1 bytes follow"), "{err}");
    }

    /// One change to a good payload.
    type Change = fn(&mut WirePayload);

    fn wire(change: impl FnOnce(&mut WirePayload)) -> SecretBytes {
        let mut w = WirePayload {
            version: PAYLOAD_VERSION,
            material: vec![5u8; 32],
            revocation: Some(WireRevocation {
                endpoint: "https://revocation.example/check".into(),
                endpoint_key: vec![9u8; 32],
                token: vec![3u8; TOKEN_LEN],
                interval_secs: 300,
            }),
        };
        change(&mut w);
        let mut out = SecretBytes::new(Vec::new());
        ciborium::into_writer(&w, out.expose_mut()).unwrap();
        out
    }

    #[test]
    fn each_field_of_a_payload_is_checked_and_named() {
        assert!(ImportPayload::decode(&wire(|_| {})).is_ok());
        let cases: [(&str, Change); 6] = [
            ("version 2", (|w| w.version = 2)),
            (
                "more than 4096 bytes",
                (|w| w.material = vec![1; MAX_MATERIAL_LEN + 1]),
            ),
            (
                "endpoint key is not 32 bytes",
                (|w| {
                    w.revocation.as_mut().unwrap().endpoint_key.pop();
                }),
            ),
            (
                "token is not 32 bytes",
                (|w| w.revocation.as_mut().unwrap().token.push(0)),
            ),
            (
                "60 to 86400",
                (|w| w.revocation.as_mut().unwrap().interval_secs = 86_401),
            ),
            (
                "endpoint",
                (|w| w.revocation.as_mut().unwrap().endpoint = "ftp://x".into()),
            ),
        ];
        for (expected, change) in cases {
            let err = ImportPayload::decode(&wire(change)).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
            // The refusal never quotes the key material or the token.
            assert!(!err.to_string().contains("0505"), "{err}");
        }
    }
}
