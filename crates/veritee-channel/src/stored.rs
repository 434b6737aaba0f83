//! A session kept on disk between processes ([`StoredSession`]), so that a one-shot
//! command (a fresh `veritee secret get`) resumes the session an earlier one attested
//! instead of verifying the node's evidence again.
//!
//! The bytes hold the resumption secret: whoever reads them can read every session
//! resumed from it until it expires (see [`crate::resume`]). Keep them as the tenant
//! key is kept (a 0600 file in a 0700 directory). They are checked here for shape
//! only: what vouches for them is that only this client could have written them.
//!
//! ```text
//! offset  size  field
//! 0          8  magic "VTSESSN" and format version 1
//! 8         16  node id, 16 lowercase hex digits      } the audience the tenant's
//! 24        32  enclave epoch, 32 lowercase hex digits } signatures name
//! 56         8  expires at, Unix seconds, big-endian (signed)
//! 64        32  transcript hash of the attested session
//! 96        32  resumption secret
//! 128        2  ticket length n, big-endian, 1..=MAX_TICKET_LEN
//! 130        n  ticket
//! 130+n      4  claims length m, big-endian, 1..=MAX_STORED_CLAIMS_LEN
//! 134+n      m  the appraised claims, CBOR
//! ```
//!
//! Nothing may follow the claims.

use crate::ChannelError;
use crate::client::Resumption;
use crate::resume::{MAX_TICKET_LEN, SECRET_LEN};
use veritee_attest::Claims;
use veritee_crypto::{Confidential, SecretBytes};
use veritee_proto::api::auth::Audience;

/// Magic and format version of a stored session.
pub const MAGIC: &[u8; 8] = b"VTSESSN\x01";
/// Longest claims (CBOR) a stored session carries.
pub const MAX_STORED_CLAIMS_LEN: usize = 64 * 1024;
const NODE_ID_LEN: usize = 16;
const EPOCH_LEN: usize = 32;
/// Bytes before the ticket.
const HEADER_LEN: usize = MAGIC.len() + NODE_ID_LEN + EPOCH_LEN + 8 + 32 + SECRET_LEN + 2;
/// Longest stored session.
pub const MAX_STORED_LEN: usize = HEADER_LEN + MAX_TICKET_LEN + 4 + MAX_STORED_CLAIMS_LEN;

const _: () = assert!(HEADER_LEN == 130);
const _: () = assert!(MAX_TICKET_LEN <= u16::MAX as usize);

fn bad(what: impl Into<String>) -> ChannelError {
    ChannelError::StoredResumption(what.into())
}

/// Reads `bytes` front to back, naming what is missing.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ChannelError> {
        if self.rest.len() < n {
            return Err(bad(format!(
                "cut short in the {what}: {n} bytes needed, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ChannelError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

/// A session as a client keeps it for a later process. Its `Debug` shows no secret:
/// [`Resumption`]'s prints the ticket's length and the expiry only.
#[derive(Debug)]
pub struct StoredSession {
    /// The enclave it was attested with, as tenant signatures name it.
    pub audience: Audience,
    /// What resuming it needs.
    pub resumption: Resumption,
}

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

impl StoredSession {
    /// The bytes to keep (format in [`crate::stored`]); they hold the resumption
    /// secret.
    pub fn to_bytes(&self) -> Result<SecretBytes, ChannelError> {
        let (node, epoch) = (
            self.audience.node.as_bytes(),
            self.audience.epoch.as_bytes(),
        );
        if node.len() != NODE_ID_LEN
            || epoch.len() != EPOCH_LEN
            || !is_lower_hex(node)
            || !is_lower_hex(epoch)
        {
            return Err(bad(
                "the audience is not a 16-digit node id and a 32-digit epoch",
            ));
        }
        let r = &self.resumption;
        let mut claims = Vec::new();
        ciborium::into_writer(&r.claims, &mut claims)
            .map_err(|e| bad(format!("claims do not encode: {e}")))?;
        if claims.is_empty() || claims.len() > MAX_STORED_CLAIMS_LEN {
            return Err(bad(format!(
                "claims of {} bytes (at most {MAX_STORED_CLAIMS_LEN})",
                claims.len()
            )));
        }
        if r.ticket.is_empty() || r.ticket.len() > MAX_TICKET_LEN {
            return Err(bad(format!(
                "a ticket of {} bytes (1 to {MAX_TICKET_LEN})",
                r.ticket.len()
            )));
        }
        let mut out = SecretBytes::new(Vec::with_capacity(
            HEADER_LEN + r.ticket.len() + 4 + claims.len(),
        ));
        let bytes = out.expose_mut();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(node);
        bytes.extend_from_slice(epoch);
        bytes.extend_from_slice(&r.expires_at.to_be_bytes());
        bytes.extend_from_slice(&r.transcript);
        bytes.extend_from_slice(r.secret.expose());
        bytes.extend_from_slice(&(r.ticket.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&r.ticket);
        bytes.extend_from_slice(&(claims.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&claims);
        Ok(out)
    }

    /// Reads what [`StoredSession::to_bytes`] wrote; anything else is refused with
    /// what is wrong named. Whether the session may still be resumed is for
    /// [`Resumption::resume`] and the enclave to say.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChannelError> {
        if bytes.len() > MAX_STORED_LEN {
            return Err(bad(format!(
                "{} bytes, more than the {MAX_STORED_LEN} a stored session takes",
                bytes.len()
            )));
        }
        let mut r = Reader { rest: bytes };
        if r.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(bad("not a stored session of format version 1"));
        }
        let node = r.take(NODE_ID_LEN, "node id")?;
        let epoch = r.take(EPOCH_LEN, "epoch")?;
        if !is_lower_hex(node) || !is_lower_hex(epoch) {
            return Err(bad("the node id and epoch must be lowercase hex digits"));
        }
        let audience = Audience {
            node: String::from_utf8_lossy(node).into_owned(),
            epoch: String::from_utf8_lossy(epoch).into_owned(),
        };
        let expires_at = i64::from_be_bytes(r.array("expiry")?);
        let transcript = r.array::<32>("transcript hash")?;
        // Copied straight into its zeroizing home, not through a stack array.
        let mut secret = Confidential::new([0u8; SECRET_LEN]);
        secret
            .expose_mut()
            .copy_from_slice(r.take(SECRET_LEN, "secret")?);
        let ticket_len = u16::from_be_bytes(r.array("ticket length")?) as usize;
        if ticket_len == 0 || ticket_len > MAX_TICKET_LEN {
            return Err(bad(format!(
                "a ticket of {ticket_len} bytes (1 to {MAX_TICKET_LEN})"
            )));
        }
        let ticket = r.take(ticket_len, "ticket")?.to_vec();
        let claims_len = u32::from_be_bytes(r.array("claims length")?) as usize;
        if claims_len == 0 || claims_len > MAX_STORED_CLAIMS_LEN {
            return Err(bad(format!(
                "claims of {claims_len} bytes (1 to {MAX_STORED_CLAIMS_LEN})"
            )));
        }
        let claims: Claims = veritee_proto::cbor::from_slice(r.take(claims_len, "claims")?)
            .map_err(|e| bad(format!("claims: {}", e.kind())))?;
        if !r.rest.is_empty() {
            return Err(bad(format!("{} bytes follow the claims", r.rest.len())));
        }
        Ok(Self {
            audience,
            resumption: Resumption {
                ticket,
                transcript,
                secret,
                expires_at,
                claims,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_attest::{HexBytes, TcbStatus, TeeKind};

    fn claims() -> Claims {
        Claims {
            tee: TeeKind::Simulated,
            simulated: true,
            measurements: [("measurement".to_string(), HexBytes(vec![7u8; 48]))].into(),
            signer: Some(HexBytes(vec![8u8; 32])),
            security_version: Some(3),
            tcb_status: TcbStatus::UpToDate,
            advisory_ids: vec!["SA-0001".into()],
            debug: false,
            report_data: HexBytes(vec![9u8; 64]),
            platform_id: None,
            evidence_time: Some(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()),
            details: [("fmspc".to_string(), "00906ed50000".to_string())].into(),
            trust_anchor: None,
        }
    }

    fn sample() -> StoredSession {
        StoredSession {
            audience: Audience {
                node: "0123456789abcdef".into(),
                epoch: "00112233445566778899aabbccddeeff".into(),
            },
            resumption: Resumption {
                ticket: vec![0x5a; 93],
                transcript: [1u8; 32],
                secret: Confidential::new([2u8; SECRET_LEN]),
                expires_at: 1_900_000_000,
                claims: claims(),
            },
        }
    }

    fn message(e: ChannelError) -> String {
        assert!(matches!(e, ChannelError::StoredResumption(_)), "{e}");
        e.to_string()
    }

    #[test]
    fn round_trip() {
        let stored = sample();
        let bytes = stored.to_bytes().unwrap();
        let back = StoredSession::from_bytes(bytes.expose()).unwrap();
        assert_eq!(back.audience, stored.audience);
        let (back, r) = (back.resumption, stored.resumption);
        assert_eq!(back.ticket, r.ticket);
        assert_eq!(back.transcript, r.transcript);
        assert_eq!(back.secret.expose(), r.secret.expose());
        assert_eq!(back.expires_at, r.expires_at);
        assert_eq!(back.claims, r.claims);
        assert_eq!(bytes.expose()[..8], *MAGIC);
    }

    #[test]
    fn a_file_the_cli_kept_reads_back_and_writes_the_same_bytes() {
        // Kept by `veritee secret get --session-cache` from a throwaway local node.
        let bytes = include_bytes!("../tests/data/stored-session.bin");
        let stored = StoredSession::from_bytes(bytes).unwrap();
        assert!(stored.resumption.claims().simulated);
        assert_eq!(stored.audience.epoch.len(), 32);
        assert_eq!(stored.to_bytes().unwrap().expose()[..], bytes[..]);
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", sample());
        assert!(shown.contains("ticket_len"), "{shown}");
        assert!(
            !shown.contains("2, 2"),
            "the resumption secret is shown: {shown}"
        );
        assert!(!shown.contains("90, 90"), "the ticket is shown: {shown}");
    }

    #[test]
    fn every_cut_is_refused_by_name() {
        let bytes = sample().to_bytes().unwrap();
        let bytes = bytes.expose();
        for cut in 0..bytes.len() {
            let e = message(StoredSession::from_bytes(&bytes[..cut]).err().unwrap());
            assert!(
                e.contains("cut short") || e.contains("claims:"),
                "cut at {cut}: {e}"
            );
        }
    }

    #[test]
    fn trailing_oversized_and_foreign_bytes_are_refused() {
        let bytes = sample().to_bytes().unwrap();
        let mut longer = bytes.expose().clone();
        longer.push(0);
        assert!(
            message(StoredSession::from_bytes(&longer).err().unwrap()).contains("1 bytes follow")
        );
        let huge = vec![0u8; MAX_STORED_LEN + 1];
        assert!(message(StoredSession::from_bytes(&huge).err().unwrap()).contains("more than"));
        let mut other = bytes.expose().clone();
        other[7] = 2;
        assert!(message(StoredSession::from_bytes(&other).err().unwrap()).contains("version 1"));
    }

    #[test]
    fn bad_lengths_are_refused_by_name() {
        let bytes = sample().to_bytes().unwrap();
        let mut zero_ticket = bytes.expose().clone();
        zero_ticket[HEADER_LEN - 2..HEADER_LEN].copy_from_slice(&0u16.to_be_bytes());
        assert!(
            message(StoredSession::from_bytes(&zero_ticket).err().unwrap()).contains("ticket of 0")
        );
        let mut long_ticket = bytes.expose().clone();
        long_ticket[HEADER_LEN - 2..HEADER_LEN]
            .copy_from_slice(&((MAX_TICKET_LEN + 1) as u16).to_be_bytes());
        assert!(
            message(StoredSession::from_bytes(&long_ticket).err().unwrap()).contains("ticket of")
        );
        let at = HEADER_LEN + 93;
        let mut long_claims = bytes.expose().clone();
        long_claims[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            message(StoredSession::from_bytes(&long_claims).err().unwrap()).contains("claims of")
        );
    }

    #[test]
    fn an_audience_that_is_not_lowercase_hex_is_refused() {
        let bytes = sample().to_bytes().unwrap();
        for at in [MAGIC.len(), MAGIC.len() + NODE_ID_LEN] {
            let mut upper = bytes.expose().clone();
            upper[at] = b'A';
            assert!(
                message(StoredSession::from_bytes(&upper).err().unwrap()).contains("lowercase hex")
            );
        }
        let mut wrong = sample();
        wrong.audience.epoch = "short".into();
        assert!(message(wrong.to_bytes().err().unwrap()).contains("32-digit epoch"));
    }

    #[test]
    fn every_flip_is_read_without_a_panic_and_a_flipped_magic_is_refused() {
        // No checksum: the file's integrity is its permissions (see the module's
        // docs). A flip must still never panic nor read past the end.
        let bytes = sample().to_bytes().unwrap();
        for i in 0..bytes.expose().len() {
            for bit in 0..8 {
                let mut flipped = bytes.expose().clone();
                flipped[i] ^= 1 << bit;
                let read = StoredSession::from_bytes(&flipped);
                if i < MAGIC.len() {
                    assert!(read.is_err(), "a flip in the magic at {i} was read");
                }
            }
        }
    }
}
