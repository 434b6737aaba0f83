//! Data objects: what binds a stored stream to its object and version, and the
//! enclave's word on which version is current.
//!
//! A data object is a veritee-stream under a deployed data key. Its header's
//! authenticated context names the object and its version ([`object_context`]), so a
//! host cannot serve one object's stream for another's. Which version is current only
//! the enclave knows (its metadata is sealed state the host cannot roll back), so when
//! a client opens an object it sends a fresh nonce, and the enclave answers with the
//! version and chunk count under a MAC keyed from the data key ([`vouch`]): a host that
//! replays an older answer, or serves an older version, is caught by the client.

use veritee_crypto::Confidential;
use veritee_crypto::hkdf::{self, HkdfHash};

const CONTEXT_PREFIX: &str = "veritee data v1\0";
const VOUCH_KEY_INFO: &[u8] = b"veritee data vouch v1";
const VOUCH_LABEL: &[u8] = b"veritee data open v1";

/// The stream context of version `version` of `object`.
pub fn object_context(object: &str, version: u64) -> Vec<u8> {
    format!("{CONTEXT_PREFIX}{object}\0{version}").into_bytes()
}

/// The object and version a stream context names, if it is a data object's context.
pub fn parse_object_context(context: &[u8]) -> Option<(&str, u64)> {
    let text = core::str::from_utf8(context).ok()?;
    let rest = text.strip_prefix(CONTEXT_PREFIX)?;
    let (object, version) = rest.split_once('\0')?;
    // Canonical decimal only: one context, one meaning.
    if version.is_empty() || (version.len() > 1 && version.starts_with('0')) {
        return None;
    }
    if !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((object, version.parse().ok()?))
}

/// What the enclave vouches for when a client opens an object.
#[derive(Debug, Clone, Copy)]
pub struct ObjectState<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The object.
    pub object: &'a str,
    /// Its current version.
    pub version: u64,
    /// Its chunk count.
    pub chunks: u64,
    /// Its stream header.
    pub header: &'a [u8],
}

/// The enclave's MAC over an object's current state and the client's nonce, keyed
/// from the data key (which only the client and the enclave hold).
pub fn vouch(
    data_key: &Confidential<[u8; 32]>,
    state: &ObjectState<'_>,
    nonce: &[u8],
) -> Result<[u8; 32], veritee_crypto::CryptoError> {
    let mut key = Confidential::new([0u8; 32]);
    hkdf::derive_into(
        HkdfHash::Sha256,
        &[],
        data_key.expose(),
        &[VOUCH_KEY_INFO],
        key.expose_mut(),
    )?;
    let mut msg = VOUCH_LABEL.to_vec();
    for part in [state.tenant.as_bytes(), state.object.as_bytes(), nonce] {
        msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
        msg.extend_from_slice(part);
    }
    msg.extend_from_slice(&state.version.to_be_bytes());
    msg.extend_from_slice(&state.chunks.to_be_bytes());
    msg.extend_from_slice(&veritee_crypto::digest::sha256(state.header));
    Ok(veritee_crypto::mac::hmac_sha256(key.expose(), &msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_name_object_and_version_and_nothing_else() {
        let c = object_context("orders.csv", 17);
        assert_eq!(parse_object_context(&c), Some(("orders.csv", 17)));
        assert_eq!(parse_object_context(b"veritee data v1\0a\0"), None);
        assert_eq!(parse_object_context(b"veritee data v1\0a\x0007"), None);
        assert_eq!(parse_object_context(b"veritee data v1\0a\0+7"), None);
        assert_eq!(parse_object_context(b"veritee task v1\0a\x007"), None);
        assert_ne!(object_context("a", 1), object_context("a", 2));
        assert_ne!(object_context("a", 1), object_context("b", 1));
    }

    #[test]
    fn the_vouch_covers_every_field() {
        let key = Confidential::new([1u8; 32]);
        let state = ObjectState {
            tenant: "t",
            object: "o",
            version: 3,
            chunks: 2,
            header: b"h",
        };
        let base = vouch(&key, &state, b"n").unwrap();
        let variants = [
            ObjectState {
                tenant: "u",
                ..state
            },
            ObjectState {
                object: "p",
                ..state
            },
            ObjectState {
                version: 2,
                ..state
            },
            ObjectState { chunks: 1, ..state },
            ObjectState {
                header: b"g",
                ..state
            },
        ];
        for v in variants {
            assert_ne!(vouch(&key, &v, b"n").unwrap(), base);
        }
        assert_ne!(vouch(&key, &state, b"m").unwrap(), base);
        assert_ne!(
            vouch(&Confidential::new([2u8; 32]), &state, b"n").unwrap(),
            base
        );
    }
}
