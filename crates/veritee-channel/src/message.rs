//! Session messages on the wire.
//!
//! ```text
//! offset  size  field
//! 0          1  version = 1
//! 1          1  kind: 1 hello (first request), 2 request, 3 reply
//! 2          8  sequence number, big-endian; a reply repeats its request's
//! 10        32  (hello only) HPKE encapsulated key
//! 42        64  (hello only) tenant signature, ECDSA P-256/SHA-256 r||s
//! ..         *  AES-256-GCM ciphertext || tag
//!               nonce = 00000000 || sequence number; AAD = session id || all header bytes
//! ```

use crate::ChannelError;
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};

/// Format version.
pub const VERSION: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 10;
/// Extra hello bytes.
pub const HELLO_LEN: usize = 32 + 64;
/// Largest message accepted.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The first request: carries the key exchange and the tenant's signature.
    Hello = 1,
    /// A request.
    Request = 2,
    /// A reply.
    Reply = 3,
}

/// A parsed message (ciphertext still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Kind.
    pub kind: Kind,
    /// Sequence number.
    pub seq: u64,
    /// (hello) encapsulated key and signature.
    pub hello: Option<(&'a [u8], &'a [u8])>,
    /// Header bytes (authenticated as AAD).
    pub header: &'a [u8],
    /// Ciphertext with tag.
    pub ciphertext: &'a [u8],
}

/// Parses a message; checks sizes only.
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, ChannelError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(ChannelError::Malformed(format!(
            "{} bytes exceed the {MAX_MESSAGE_LEN} allowed",
            bytes.len()
        )));
    }
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(ChannelError::Malformed(format!(
            "{} bytes is shorter than any message",
            bytes.len()
        )));
    }
    if bytes[0] != VERSION {
        return Err(ChannelError::Malformed(format!(
            "unsupported session message version {}",
            bytes[0]
        )));
    }
    let kind = match bytes[1] {
        1 => Kind::Hello,
        2 => Kind::Request,
        3 => Kind::Reply,
        k => return Err(ChannelError::Malformed(format!("unknown message kind {k}"))),
    };
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[2..10]);
    let header_len = if kind == Kind::Hello {
        HEADER_LEN + HELLO_LEN
    } else {
        HEADER_LEN
    };
    if bytes.len() < header_len + TAG_LEN {
        return Err(ChannelError::Malformed("hello message is truncated".into()));
    }
    let hello = (kind == Kind::Hello).then(|| (&bytes[10..42], &bytes[42..106]));
    Ok(Parsed {
        kind,
        seq: u64::from_be_bytes(seq),
        hello,
        header: &bytes[..header_len],
        ciphertext: &bytes[header_len..],
    })
}

fn nonce(seq: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

fn aad(session_id: &[u8], header: &[u8]) -> Vec<u8> {
    let mut a = session_id.to_vec();
    a.extend_from_slice(header);
    a
}

/// Builds and seals a message.
pub(crate) fn seal(
    key: &AeadKey,
    session_id: &[u8],
    kind: Kind,
    seq: u64,
    hello: Option<(&[u8], &[u8])>,
    plaintext: &[u8],
) -> Result<Vec<u8>, ChannelError> {
    let mut header = vec![VERSION, kind as u8];
    header.extend_from_slice(&seq.to_be_bytes());
    if let Some((enc, sig)) = hello {
        header.extend_from_slice(enc);
        header.extend_from_slice(sig);
    }
    let ciphertext = key.seal(&nonce(seq), &aad(session_id, &header), plaintext)?;
    header.extend_from_slice(&ciphertext);
    Ok(header)
}

/// Opens a parsed message's ciphertext.
pub(crate) fn open(
    key: &AeadKey,
    session_id: &[u8],
    parsed: &Parsed<'_>,
) -> Result<SecretBytes, ChannelError> {
    key.open(
        &nonce(parsed.seq),
        &aad(session_id, parsed.header),
        parsed.ciphertext,
    )
    .map_err(|_| {
        ChannelError::Rejected(
            "authentication failed: the message was altered, replayed or is for another session"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_messages() {
        let key = AeadKey::generate().unwrap();
        let m = seal(&key, b"sid", Kind::Request, 5, None, b"hi").unwrap();
        let p = parse(&m).unwrap();
        assert_eq!((p.kind, p.seq), (Kind::Request, 5));
        assert_eq!(open(&key, b"sid", &p).unwrap().expose(), b"hi");
        assert!(open(&key, b"other", &p).is_err());
        for cut in 0..HEADER_LEN + TAG_LEN {
            assert!(parse(&m[..cut]).is_err());
        }
        let mut v = m.clone();
        v[0] = 2;
        assert!(parse(&v).unwrap_err().to_string().contains("version 2"));
        let mut k = m.clone();
        k[1] = 9;
        assert!(parse(&k).unwrap_err().to_string().contains("kind 9"));
        let mut h = m.clone();
        h[1] = Kind::Hello as u8;
        assert!(parse(&h).is_err());
        for i in 0..m.len() {
            let mut t = m.clone();
            t[i] ^= 1;
            let ok = parse(&t)
                .ok()
                .map(|p| open(&key, b"sid", &p).is_ok())
                .unwrap_or(false);
            assert!(!ok, "flip at {i} accepted");
        }
    }
}
