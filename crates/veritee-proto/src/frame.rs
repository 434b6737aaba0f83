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

/// The head of a frame whose message ends in a large byte string of `tail_len` bytes:
/// the frame header and the message's encoding up to the string's contents. Writing
/// the head and then the string as it lies (or as it arrives) gives the bytes
/// [`encode`] gives for the whole message, without copying the string into a frame (a
/// fork's 8 MiB page messages, relayed by the host). `message` is the whole message
/// with its last item an empty byte string, which stands for the string (maps and
/// arrays here have definite lengths, so the last item's encoding is the frame's last
/// bytes); any other message is refused.
pub fn encode_head<T: serde::Serialize>(
    message: &T,
    tail_len: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut head = vec![0u8; HEADER_LEN];
    ciborium::into_writer(message, &mut head).map_err(|e| FrameError::Payload(e.to_string()))?;
    if head.len() == HEADER_LEN || head.pop() != Some(crate::cbor::EMPTY_BYTE_STRING) {
        return Err(FrameError::Payload(
            "a split frame's message must end in an empty byte string".into(),
        ));
    }
    ciborium_ll::Encoder::from(&mut head)
        .push(ciborium_ll::Header::Bytes(Some(tail_len)))
        .map_err(|e| FrameError::Payload(format!("{e:?}")))?;
    let header = header((head.len() - HEADER_LEN).saturating_add(tail_len))?;
    head[..HEADER_LEN].copy_from_slice(&header);
    Ok(head)
}

pub use crate::cbor::{MIN_TRAILING_BYTES, TrailingBytes};

/// Decodes a payload as [`decode`] does, but a large byte string ending it (a relayed
/// message of several MiB) becomes the message's field where it lies
/// ([`crate::cbor::decode_with_tail`]). Any payload not of that shape is decoded
/// whole, so the outcome is [`decode`]'s.
pub fn decode_with_tail<T>(payload: Vec<u8>) -> Result<T, FrameError>
where
    T: serde::de::DeserializeOwned + TrailingBytes,
{
    crate::cbor::decode_with_tail(payload, decode)
}

/// Reads one message as [`read`] does, handing a large trailing byte string over as
/// [`decode_with_tail`] does.
pub fn read_with_tail<T>(r: &mut impl Read) -> Result<T, FrameError>
where
    T: serde::de::DeserializeOwned + TrailingBytes,
{
    decode_with_tail(read_payload(r)?)
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

/// Writes one message (blocking) as [`write`] does, but a large byte string ending it
/// (a relayed message, see [`TrailingBytes`]) is written as it lies after the rest of
/// the frame instead of being copied into it. The bytes written are [`write`]'s.
pub fn write_with_tail<T>(w: &mut impl Write, mut message: T) -> Result<(), FrameError>
where
    T: serde::Serialize + TrailingBytes,
{
    let tail = match message.trailing_bytes() {
        Some(field) if field.len() >= MIN_TRAILING_BYTES => std::mem::take(field),
        _ => return write(w, &message),
    };
    w.write_all(&encode_head(&message, tail.len())?)?;
    w.write_all(&tail)?;
    w.flush()?;
    Ok(())
}

/// Reads one message (blocking). A clean close before a header is [`FrameError::Closed`].
pub fn read<T: serde::de::DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    decode(&read_payload(r)?)
}

/// Reads one frame's payload (blocking).
fn read_payload(r: &mut impl Read) -> Result<Vec<u8>, FrameError> {
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
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::{EnclaveCall, EnclaveReply, EnclaveToHost, HostCall, HostToEnclave};

    #[test]
    fn a_split_frame_is_the_frame_encode_gives() {
        // Every length class of a CBOR byte string's header, and a fork's page message.
        for len in [0usize, 1, 23, 24, 255, 256, 65535, 65536, 8 << 20] {
            let tail: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let whole = HostToEnclave::Request {
                id: 7,
                call: EnclaveCall::PeerMessage {
                    message: tail.clone(),
                },
            };
            let split = HostToEnclave::Request {
                id: 7,
                call: EnclaveCall::PeerMessage {
                    message: Vec::new(),
                },
            };
            let mut head = encode_head(&split, tail.len()).unwrap();
            head.extend_from_slice(&tail);
            assert_eq!(head, encode(&whole).unwrap(), "{len} bytes");
        }
    }

    #[test]
    fn a_frame_written_with_its_tail_apart_is_the_frame_write_gives() {
        for len in [
            0usize,
            100,
            MIN_TRAILING_BYTES - 1,
            MIN_TRAILING_BYTES,
            1 << 20,
        ] {
            let message = EnclaveToHost::HostCall {
                id: 5,
                call: HostCall::PeerExchange {
                    peer: "http://127.0.0.1:1".into(),
                    message: vec![0x33; len],
                },
            };
            let (mut whole, mut split) = (Vec::new(), Vec::new());
            write(&mut whole, &message).unwrap();
            write_with_tail(&mut split, message.clone()).unwrap();
            assert_eq!(whole, split, "{len} bytes");
            assert_eq!(
                read_with_tail::<EnclaveToHost>(&mut &split[..]).unwrap(),
                message
            );
        }
    }

    #[test]
    fn a_message_that_does_not_end_in_an_empty_byte_string_is_not_split() {
        let ends_in_bytes = EnclaveCall::PeerMessage {
            message: vec![1, 2, 3],
        };
        let ends_in_text = EnclaveCall::TenantKey {
            tenant: String::new(),
        };
        for message in [ends_in_bytes, ends_in_text] {
            assert!(matches!(
                encode_head(&message, 4),
                Err(FrameError::Payload(_))
            ));
        }
    }

    fn payload_of<T: serde::Serialize>(message: &T) -> Vec<u8> {
        encode(message).unwrap()[HEADER_LEN..].to_vec()
    }

    fn same_outcome<T>(payload: &[u8])
    where
        T: serde::de::DeserializeOwned + TrailingBytes + PartialEq + core::fmt::Debug,
    {
        match (
            decode::<T>(payload),
            decode_with_tail::<T>(payload.to_vec()),
        ) {
            (Ok(whole), Ok(split)) => assert_eq!(whole, split),
            (Err(_), Err(_)) => {}
            (whole, split) => panic!("decode gave {whole:?}, decode_with_tail {split:?}"),
        }
    }

    #[test]
    fn a_trailing_message_is_handed_over_in_its_buffer() {
        let message: Vec<u8> = (0..MIN_TRAILING_BYTES + 5).map(|i| i as u8).collect();
        let requests = [
            HostToEnclave::Request {
                id: 1,
                call: EnclaveCall::PeerMessage {
                    message: message.clone(),
                },
            },
            HostToEnclave::Request {
                id: 2,
                call: EnclaveCall::SessionMessage {
                    session_id: "00".repeat(16),
                    message: message.clone(),
                },
            },
        ];
        for request in requests {
            let payload = payload_of(&request);
            let buffer = payload.as_ptr() as usize;
            let mut got: HostToEnclave = decode_with_tail(payload).unwrap();
            assert_eq!(got, request);
            // The payload's own buffer, not a copy of it.
            let field = got.trailing_bytes().unwrap();
            assert_eq!(field.as_ptr() as usize, buffer);
        }
        let calls = [
            EnclaveToHost::HostCall {
                id: 3,
                call: HostCall::PeerExchange {
                    peer: "http://127.0.0.1:1".into(),
                    message: message.clone(),
                },
            },
            EnclaveToHost::Reply {
                id: 4,
                result: Ok(EnclaveReply::Message {
                    message: message.clone(),
                }),
            },
        ];
        for call in calls {
            assert_eq!(
                decode_with_tail::<EnclaveToHost>(payload_of(&call)).unwrap(),
                call
            );
        }
    }

    #[test]
    fn tampered_truncated_and_reordered_payloads_decode_as_decode_does() {
        let message: Vec<u8> = vec![0x5a; MIN_TRAILING_BYTES];
        let request = HostToEnclave::Request {
            id: 9,
            call: EnclaveCall::SessionMessage {
                session_id: "ab".repeat(16),
                message: message.clone(),
            },
        };
        let payload = payload_of(&request);
        let head_len = payload.len() - message.len();
        // Every byte of the head flipped; cuts in the head and in the message; bytes
        // appended; the message's length grown past the payload.
        for i in 0..head_len {
            for flip in [0x01u8, 0x20, 0x80, 0xff] {
                let mut tampered = payload.clone();
                tampered[i] ^= flip;
                same_outcome::<HostToEnclave>(&tampered);
            }
        }
        for cut in (0..head_len).chain([head_len + 1, payload.len() - 1]) {
            same_outcome::<HostToEnclave>(&payload[..cut]);
        }
        let mut longer = payload.clone();
        longer.extend_from_slice(&[0u8; 7]);
        same_outcome::<HostToEnclave>(&longer);
        // The map's keys in the other order: the message is not last, so it is
        // decoded whole, to the same request.
        #[derive(serde::Serialize)]
        struct Reordered<'a> {
            #[serde(with = "serde_bytes")]
            message: &'a [u8],
            session_id: String,
        }
        #[derive(serde::Serialize)]
        enum Call<'a> {
            SessionMessage(Reordered<'a>),
        }
        #[derive(serde::Serialize)]
        enum Outer<'a> {
            Request { id: u64, call: Call<'a> },
        }
        let reordered = payload_of(&Outer::Request {
            id: 9,
            call: Call::SessionMessage(Reordered {
                message: &message,
                session_id: "ab".repeat(16),
            }),
        });
        assert_eq!(
            decode_with_tail::<HostToEnclave>(reordered).unwrap(),
            request
        );
        // A message that ends in a byte string no field takes is decoded whole.
        let status = payload_of(&HostToEnclave::Request {
            id: 1,
            call: EnclaveCall::Attest {
                nonce: message.clone(),
            },
        });
        same_outcome::<HostToEnclave>(&status);
    }

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
