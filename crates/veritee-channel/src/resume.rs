//! Resumed sessions: a returning client skips attestation.
//!
//! An established session (or a resumed one) can ask the enclave for a *ticket*. The
//! ticket is sealed under a key that lives only in this enclave process
//! ([`TicketKey`], random per start), and carries what resumption needs: the tenant,
//! the expiry, the transcript hash of the session that was attested (which covers its
//! evidence, so a resumed session stays bound to that evidence), and a resumption
//! secret both ends derived from that session's key exchange. Only the enclave can
//! open a ticket; only the client that established the session knows the secret.
//!
//! To resume, the client sends the ticket, a fresh nonce and its first request, sealed
//! under keys derived from the secret and the nonce (one round trip, no evidence to
//! verify, no key exchange). The enclave opens the ticket, derives the same keys, and
//! the first request opens only if the client really holds the secret. Replays of the
//! resumption request are refused by the tenant's signature on it (a nonce good once,
//! checked inside the enclave).
//!
//! What a resumed session does not have: forward secrecy towards the resumption secret
//! (whoever learns it can read every session resumed from it, as with TLS 1.3's
//! `psk_ke`), and life after the enclave restarts (the ticket key is gone; the client
//! opens a new session, which is what the restarted enclave's new evidence needs).
//!
//! ```text
//! ticket    = nonce (12) || AES-256-GCM(ticket key, plaintext, AAD = TICKET_LABEL)
//! plaintext:
//! offset  size  field
//! 0          1  version = 1
//! 1          8  expires at, Unix seconds, big-endian
//! 9         32  transcript hash of the attested session
//! 41        32  resumption secret
//! 73         *  tenant id, UTF-8, at most MAX_TENANT_ID_LEN bytes
//! ```

use crate::ChannelError;
use crate::keys::TrafficKeys;
use crate::{NONCE_LEN, SESSION_ID_LEN};
use veritee_crypto::Confidential;
use veritee_crypto::aead::{AeadKey, TAG_LEN};
use veritee_crypto::hkdf::{self, HkdfHash};

/// Label of tickets and of the keys of resumed sessions.
pub const TICKET_LABEL: &[u8] = b"veritee ticket v1";
/// Ticket format version.
pub const TICKET_VERSION: u8 = 1;
/// How long a ticket is good for, counted from the attested session it stems from;
/// tickets issued by resumed sessions keep the first one's expiry.
pub const TICKET_LIFETIME_SECS: i64 = 60 * 60;
/// Longest tenant id a ticket carries.
pub const MAX_TENANT_ID_LEN: usize = 64;
/// Length of a resumption secret.
pub const SECRET_LEN: usize = 32;
const FIXED_LEN: usize = 1 + 8 + 32 + SECRET_LEN;
/// Longest ticket accepted.
pub const MAX_TICKET_LEN: usize =
    veritee_crypto::aead::NONCE_LEN + FIXED_LEN + MAX_TENANT_ID_LEN + TAG_LEN;

const RESUMPTION: &[u8] = b"veritee resumption";
const RESUMED_ID: &[u8] = b"veritee resumed id";
const RESUMED_FORWARD: &[u8] = b"veritee resumed forward";
const RESUMED_BACKWARD: &[u8] = b"veritee resumed backward";
const RESUMED_RESUMPTION: &[u8] = b"veritee resumed resumption";

/// What a session leaves for its resumption: the attested transcript, the secret,
/// and the expiry it inherited.
pub(crate) struct Resumable {
    pub(crate) transcript: [u8; 32],
    pub(crate) secret: Confidential<[u8; SECRET_LEN]>,
    /// Unix seconds; `None` until a ticket fixes it (an attested session's tickets
    /// expire [`TICKET_LIFETIME_SECS`] after the first is issued).
    pub(crate) expires_at: Option<i64>,
}

impl Resumable {
    /// The secret of an attested session, from its key exchange's exporter.
    pub(crate) fn attested(
        transcript: [u8; 32],
        export: impl FnOnce(&[u8]) -> Result<veritee_crypto::SecretBytes, ChannelError>,
    ) -> Result<Self, ChannelError> {
        Ok(Self {
            transcript,
            secret: to_array(export(RESUMPTION)?.expose())?,
            expires_at: None,
        })
    }
}

fn to_array(bytes: &[u8]) -> Result<Confidential<[u8; SECRET_LEN]>, ChannelError> {
    let mut out = Confidential::new([0u8; SECRET_LEN]);
    if bytes.len() != SECRET_LEN {
        return Err(ChannelError::Protocol(
            "resumption secret of the wrong length".into(),
        ));
    }
    out.expose_mut().copy_from_slice(bytes);
    Ok(out)
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = veritee_crypto::digest::Sha256::default();
    for part in parts {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finish()
}

/// A resumed session's id, keys and own resumption state, as both ends derive them.
pub(crate) struct Resumed {
    pub(crate) session_id: [u8; SESSION_ID_LEN],
    pub(crate) keys: TrafficKeys,
    pub(crate) resumable: Resumable,
}

/// Derives a resumed session from the ticket, the client's nonce, and what the ticket
/// stands for. Everything is bound: a different ticket, nonce, transcript or secret
/// gives other keys and another id.
pub(crate) fn derive(
    ticket: &[u8],
    nonce: &[u8; NONCE_LEN],
    transcript: &[u8; 32],
    secret: &Confidential<[u8; SECRET_LEN]>,
    expires_at: i64,
) -> Result<Resumed, ChannelError> {
    let ticket_digest = veritee_crypto::digest::sha256(ticket);
    let id_hash = hash(&[RESUMED_ID, transcript, &ticket_digest, nonce]);
    let mut session_id = [0u8; SESSION_ID_LEN];
    session_id.copy_from_slice(&id_hash[..SESSION_ID_LEN]);
    let salt = hash(&[TICKET_LABEL, transcript, &ticket_digest, nonce, &session_id]);
    let expand = |label: &[u8]| {
        hkdf::derive(HkdfHash::Sha256, &salt, secret.expose(), &[label], 32)
            .map_err(ChannelError::from)
    };
    let keys = TrafficKeys {
        forward: AeadKey::from_slice(expand(RESUMED_FORWARD)?.expose())?,
        backward: AeadKey::from_slice(expand(RESUMED_BACKWARD)?.expose())?,
    };
    Ok(Resumed {
        session_id,
        keys,
        resumable: Resumable {
            transcript: *transcript,
            secret: to_array(expand(RESUMED_RESUMPTION)?.expose())?,
            expires_at: Some(expires_at),
        },
    })
}

/// The enclave's ticket key: random per enclave process, never stored, so its tickets
/// die with it.
pub struct TicketKey(AeadKey);

impl core::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TicketKey(<redacted>)")
    }
}

/// What an opened ticket says.
pub struct OpenedTicket {
    /// The tenant the attested session belonged to.
    pub tenant_id: String,
    /// Unix seconds after which the ticket is refused.
    pub expires_at: i64,
    pub(crate) transcript: [u8; 32],
    pub(crate) secret: Confidential<[u8; SECRET_LEN]>,
}

impl core::fmt::Debug for OpenedTicket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedTicket")
            .field("tenant_id", &self.tenant_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl TicketKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, ChannelError> {
        Ok(Self(AeadKey::generate()?))
    }

    /// Seals a ticket for `tenant_id` over a session's resumption state; the expiry is
    /// the one it inherited, or `now` plus [`TICKET_LIFETIME_SECS`] for an attested
    /// session's first ticket (which fixes it for the tickets after it).
    pub(crate) fn issue(
        &self,
        tenant_id: &str,
        resumable: &mut Resumable,
        now: i64,
    ) -> Result<(Vec<u8>, i64), ChannelError> {
        if tenant_id.len() > MAX_TENANT_ID_LEN {
            return Err(ChannelError::Malformed(format!(
                "a tenant id of {} bytes is longer than a ticket carries",
                tenant_id.len()
            )));
        }
        let expires_at = *resumable
            .expires_at
            .get_or_insert(now.saturating_add(TICKET_LIFETIME_SECS));
        let mut plaintext = Confidential::new(Vec::with_capacity(FIXED_LEN + tenant_id.len()));
        let p = plaintext.expose_mut();
        p.push(TICKET_VERSION);
        p.extend_from_slice(&expires_at.to_be_bytes());
        p.extend_from_slice(&resumable.transcript);
        p.extend_from_slice(resumable.secret.expose());
        p.extend_from_slice(tenant_id.as_bytes());
        let ticket = self
            .0
            .seal_with_random_nonce(TICKET_LABEL, plaintext.expose())?;
        Ok((ticket, expires_at))
    }

    /// Seals any bytes as a ticket's contents (feature `fuzzing`), so that the parser
    /// behind the ticket's authentication can be fuzzed.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn seal_contents_for_fuzzing(&self, contents: &[u8]) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.seal_with_random_nonce(TICKET_LABEL, contents)?)
    }

    /// Opens a ticket and checks its expiry against `now` (the enclave's trusted time).
    pub fn open(&self, ticket: &[u8], now: i64) -> Result<OpenedTicket, ChannelError> {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(ChannelError::Malformed(format!(
                "a ticket of {} bytes is longer than any this enclave issues ({MAX_TICKET_LEN})",
                ticket.len()
            )));
        }
        let plaintext = self
            .0
            .open_with_nonce_prefix(TICKET_LABEL, ticket)
            .map_err(|_| {
                ChannelError::Rejected(
                    "the ticket does not open: it was altered, or issued by another enclave \
                     process (tickets do not survive a restart); open a new session"
                        .into(),
                )
            })?;
        let p = plaintext.expose();
        if p.len() < FIXED_LEN || p[0] != TICKET_VERSION {
            return Err(ChannelError::Malformed(
                "the ticket's contents have an unknown layout".into(),
            ));
        }
        let mut expires = [0u8; 8];
        expires.copy_from_slice(&p[1..9]);
        let expires_at = i64::from_be_bytes(expires);
        if now > expires_at {
            return Err(ChannelError::Rejected(format!(
                "the ticket expired {} s ago; open a new session",
                now.saturating_sub(expires_at)
            )));
        }
        let mut transcript = [0u8; 32];
        transcript.copy_from_slice(&p[9..41]);
        let tenant_id = core::str::from_utf8(&p[FIXED_LEN..])
            .map_err(|_| ChannelError::Malformed("the ticket's tenant id is not UTF-8".into()))?
            .to_string();
        Ok(OpenedTicket {
            tenant_id,
            expires_at,
            transcript,
            secret: to_array(&p[41..FIXED_LEN])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn resumable() -> Resumable {
        Resumable {
            transcript: [7; 32],
            secret: Confidential::new([9; SECRET_LEN]),
            expires_at: None,
        }
    }

    #[test]
    fn a_ticket_opens_to_what_was_sealed_and_fixes_its_expiry() {
        let key = TicketKey::generate().expect("key");
        let mut r = resumable();
        let (ticket, expires_at) = key.issue("alice", &mut r, NOW).expect("issue");
        assert_eq!(expires_at, NOW + TICKET_LIFETIME_SECS);
        // Later tickets of the same session keep the first expiry.
        let (_, again) = key.issue("alice", &mut r, NOW + 100).expect("issue");
        assert_eq!(again, expires_at);
        let opened = key.open(&ticket, NOW).expect("open");
        assert_eq!(opened.tenant_id, "alice");
        assert_eq!(opened.expires_at, expires_at);
        assert_eq!(opened.transcript, [7; 32]);
        assert_eq!(opened.secret.expose(), &[9; SECRET_LEN]);
        assert!(
            key.open(&ticket, expires_at).is_ok(),
            "good until its last second"
        );
        let late = key.open(&ticket, expires_at + 1).expect_err("expired");
        assert!(late.to_string().contains("expired"), "{late}");
        assert!(
            !format!("{opened:?}").contains("9, 9"),
            "the secret in Debug"
        );
        assert!(!format!("{key:?}").contains('['), "the key in Debug");
    }

    #[test]
    fn a_ticket_altered_truncated_oversized_or_from_another_key_is_refused() {
        let key = TicketKey::generate().expect("key");
        let (ticket, _) = key.issue("alice", &mut resumable(), NOW).expect("issue");
        for at in 0..ticket.len() {
            let mut t = ticket.clone();
            t[at] ^= 0x80;
            assert!(key.open(&t, NOW).is_err(), "byte {at} flipped");
        }
        for len in [0, 1, 12, 28, ticket.len() - 1] {
            assert!(key.open(&ticket[..len], NOW).is_err(), "truncated to {len}");
        }
        let mut long = ticket.clone();
        long.resize(MAX_TICKET_LEN + 1, 0);
        let e = key.open(&long, NOW).expect_err("oversized");
        assert!(e.to_string().contains("longer"), "{e}");
        let other = TicketKey::generate().expect("key");
        let e = other.open(&ticket, NOW).expect_err("another key");
        assert!(e.to_string().contains("does not open"), "{e}");
        let e = key
            .issue(&"x".repeat(MAX_TENANT_ID_LEN + 1), &mut resumable(), NOW)
            .expect_err("a tenant id too long");
        assert!(e.to_string().contains("longer"), "{e}");
    }

    #[test]
    fn a_resumed_session_is_bound_to_ticket_nonce_transcript_and_secret() {
        let base = derive(
            b"ticket",
            &[1; NONCE_LEN],
            &[2; 32],
            &Confidential::new([3; 32]),
            NOW,
        )
        .expect("derive");
        let variants = [
            derive(
                b"ticket!",
                &[1; NONCE_LEN],
                &[2; 32],
                &Confidential::new([3; 32]),
                NOW,
            ),
            derive(
                b"ticket",
                &[4; NONCE_LEN],
                &[2; 32],
                &Confidential::new([3; 32]),
                NOW,
            ),
            derive(
                b"ticket",
                &[1; NONCE_LEN],
                &[5; 32],
                &Confidential::new([3; 32]),
                NOW,
            ),
            derive(
                b"ticket",
                &[1; NONCE_LEN],
                &[2; 32],
                &Confidential::new([6; 32]),
                NOW,
            ),
        ];
        let sealed = base.keys.forward.seal(&[0; 12], b"", b"m").expect("seal");
        for (i, v) in variants.into_iter().enumerate() {
            let v = v.expect("derive");
            assert!(
                v.keys.forward.open(&[0; 12], b"", &sealed).is_err(),
                "variant {i} shares the forward key"
            );
            assert_ne!(
                v.resumable.secret.expose(),
                base.resumable.secret.expose(),
                "variant {i} shares the next resumption secret"
            );
            // The id depends on what is public (ticket, nonce, transcript), never on the
            // secret alone.
            if i < 3 {
                assert_ne!(v.session_id, base.session_id, "variant {i} shares the id");
            }
        }
        assert_ne!(base.resumable.secret.expose(), &[3; 32]);
    }
}
