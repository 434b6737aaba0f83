//! Framing on the host-enclave socket.
//!
//! ```text
//! offset  size  field
//! 0          4  magic "VTIP"
//! 4          2  protocol version, big-endian (1)
//! 6          2  reserved, zero
//! 8          4  payload length L, big-endian, at most MAX_FRAME_PAYLOAD
//! 12         L  payload: one CBOR-encoded message of crate::ipc
//! ```

use std::io::{Read, Write};
use thiserror::Error;

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTIP";
/// Protocol version.
pub const VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 12;
/// Largest payload accepted (a sealed blob plus envelope).
pub const MAX_FRAME_PAYLOAD: usize = 80 * 1024 * 1024;
/// Bytes each side of the enclave link reads ahead: a typical frame whole (header and
/// body are written at once), so that it takes one `read` instead of two. Larger frames
/// are read past it, straight into their own buffer.
pub const LINK_READ_BUFFER: usize = 16 * 1024;
/// The send buffer each side asks for on its end of the enclave link (capped by the
/// kernel's `net.core.wmem_max`). The default (about 200 KiB) moves a large frame (a
/// fork's 8 MiB of pages) in dozens of wake-ups of the reader; at 4 MiB, in a few.
pub const LINK_SEND_BUFFER: usize = 4 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The connection failed, or closed in the middle of a frame.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The header is not a veritee frame header.
    #[error("bad frame header: {0}")]
    BadHeader(String),
    /// A version this side does not speak.
    #[error("unsupported frame version {0}; this side speaks {VERSION}")]
    Version(u16),
    /// A payload larger than any legitimate message.
    #[error("frame payload of {0} bytes exceeds the {MAX_FRAME_PAYLOAD} allowed")]
    TooLarge(usize),
    /// The payload is not a valid message.
    #[error("malformed frame payload: {0}")]
    Payload(String),
}

/// Parses a header; returns the payload length.
pub fn parse_header(header: &[u8; HEADER_LEN]) -> Result<usize, FrameError> {
    if header[0..4] != MAGIC {
        return Err(FrameError::BadHeader(format!(
            "magic {:02x?}",
            &header[0..4]
        )));
    }
    let version = u16::from_be_bytes([header[4], header[5]]);
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    if header[6..8] != [0, 0] {
        return Err(FrameError::BadHeader("reserved bytes are not zero".into()));
    }
    let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if len > MAX_FRAME_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Builds a header for a payload of `len` bytes.
pub fn header(len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    if len > MAX_FRAME_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_be_bytes());
    h[8..12].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(h)
}

/// Encodes a message as a complete frame.
pub fn encode<T: serde::Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    // The payload goes after room for the header, which is filled in once its length
    // is known: a frame of a large message (a fork's pages, 8 MiB) is not copied again.
    let mut out = vec![0u8; HEADER_LEN];
    ciborium::into_writer(message, &mut out).map_err(|e| FrameError::Payload(e.to_string()))?;
    let header = header(out.len() - HEADER_LEN)?;
    out[..HEADER_LEN].copy_from_slice(&header);
    Ok(out)
}

/// Decodes a payload.
pub fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    ciborium::from_reader(payload).map_err(|e| FrameError::Payload(e.to_string()))
}

/// Writes one message (blocking).
pub fn write<T: serde::Serialize>(w: &mut impl Write, message: &T) -> Result<(), FrameError> {
    w.write_all(&encode(message)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one message (blocking). A clean close before a header is [`FrameError::Closed`].
pub fn read<T: serde::de::DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..])? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => {
                return Err(FrameError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("truncated frame header ({got} of {HEADER_LEN} bytes)"),
                )));
            }
            n => got += n,
        }
    }
    let len = parse_header(&header)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| {
        FrameError::Io(std::io::Error::new(
            e.kind(),
            format!("truncated frame payload (expected {len} bytes): {e}"),
        ))
    })?;
    decode(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::{EnclaveCall, HostToEnclave};

    #[test]
    fn round_trip() {
        let msg = HostToEnclave::Request {
            id: 7,
            call: EnclaveCall::Status,
        };
        let bytes = encode(&msg).unwrap();
        let back: HostToEnclave = read(&mut &bytes[..]).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn truncated_oversized_and_tampered_frames_are_errors() {
        let msg = HostToEnclave::Request {
            id: 7,
            call: EnclaveCall::Attest { nonce: vec![1; 32] },
        };
        let bytes = encode(&msg).unwrap();
        assert!(matches!(
            read::<HostToEnclave>(&mut &bytes[..0]),
            Err(FrameError::Closed)
        ));
        for cut in 1..bytes.len() {
            assert!(
                read::<HostToEnclave>(&mut &bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut big = bytes.clone();
        big[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read::<HostToEnclave>(&mut &big[..]),
            Err(FrameError::TooLarge(_))
        ));
        let mut v2 = bytes.clone();
        v2[5] = 2;
        assert!(matches!(
            read::<HostToEnclave>(&mut &v2[..]),
            Err(FrameError::Version(2))
        ));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(matches!(
            read::<HostToEnclave>(&mut &magic[..]),
            Err(FrameError::BadHeader(_))
        ));
        let mut garbage = header(4).unwrap().to_vec();
        garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            read::<HostToEnclave>(&mut &garbage[..]),
            Err(FrameError::Payload(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode::<HostToEnclave>(&payload);
            let _ = decode::<crate::ipc::EnclaveToHost>(&payload);
        }
    }
}
