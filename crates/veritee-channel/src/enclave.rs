//! The enclave end of a client session.

use crate::client::hello_signed_bytes;
use crate::keys::TrafficKeys;
use crate::message::{self, Kind};
use crate::resume::{self, OpenedTicket, Resumable, TicketKey};
use crate::{ChannelError, NONCE_LEN, SESSION_ID_LEN, SESSION_LABEL, session_transcript};
use veritee_attest::ReportData;
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{self, HpkeKeyPair};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_platform::Platform;

/// A session offered to a client and not yet accepted.
pub struct PendingSession {
    session_id: [u8; SESSION_ID_LEN],
    tenant_id: String,
    keypair: HpkeKeyPair,
    transcript: [u8; 32],
}

impl core::fmt::Debug for PendingSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingSession")
            .field("session_id", &hex::encode(self.session_id))
            .finish()
    }
}

/// What the enclave sends back when offering a session.
#[derive(Debug, Clone)]
pub struct SessionOffer {
    /// Session id, hex.
    pub session_id: String,
    /// The session key.
    pub enclave_public_key: Vec<u8>,
    /// Evidence binding key and nonce.
    pub evidence: Vec<u8>,
}

impl PendingSession {
    /// Offers a session to `tenant_id`: a fresh key pair and evidence binding it to the
    /// client's nonce.
    pub fn offer(
        tenant_id: &str,
        nonce: &[u8],
        platform: &dyn Platform,
    ) -> Result<(Self, SessionOffer), ChannelError> {
        if nonce.len() != NONCE_LEN {
            return Err(ChannelError::Malformed(format!(
                "the client nonce must be {NONCE_LEN} bytes, got {}",
                nonce.len()
            )));
        }
        let session_id: [u8; SESSION_ID_LEN] = veritee_crypto::rand::array()?;
        let keypair = HpkeKeyPair::generate();
        let public = keypair.public_key();
        let evidence = platform.evidence(&ReportData::binding(
            SESSION_LABEL,
            public.as_bytes(),
            nonce,
        ))?;
        let transcript = session_transcript(&session_id, nonce, public.as_bytes(), &evidence);
        Ok((
            Self {
                session_id,
                tenant_id: tenant_id.to_string(),
                keypair,
                transcript,
            },
            SessionOffer {
                session_id: hex::encode(session_id),
                enclave_public_key: public.as_bytes().to_vec(),
                evidence,
            },
        ))
    }

    /// The tenant the session was offered to.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Accepts the client's first request: checks the tenant's signature with the
    /// tenant's registered key, derives the traffic keys, and opens the request. A hello
    /// that fails leaves the offer standing, so a forged one cannot take it away.
    pub fn accept(
        &self,
        hello: &[u8],
        tenant_public_key: &[u8],
    ) -> Result<(EnclaveSession, SecretBytes), ChannelError> {
        let parsed = message::parse(hello)?;
        let (enc, signature) = match (parsed.kind, parsed.hello) {
            (Kind::Hello, Some(parts)) if parsed.seq == 0 => parts,
            _ => {
                return Err(ChannelError::Protocol(
                    "a session must begin with a hello numbered 0".into(),
                ));
            }
        };
        sign::verify(
            VerificationScheme::EcdsaP256Sha256Fixed,
            tenant_public_key,
            &hello_signed_bytes(&self.transcript, enc),
            signature,
        )
        .map_err(|_| ChannelError::TenantAuthentication)?;
        let ctx = hpke::setup_receiver(&self.keypair, enc, &self.transcript)?;
        let keys = TrafficKeys::from_receiver(&ctx)?;
        let resumable = Resumable::attested(self.transcript, |label| {
            Ok(ctx.export(label, resume::SECRET_LEN)?)
        })?;
        let plaintext = message::open(&keys.forward, &self.session_id, &parsed)?;
        Ok((
            EnclaveSession {
                session_id: self.session_id,
                tenant_id: self.tenant_id.clone(),
                keys,
                resumable,
                next_request: 1,
                answering: Some(0),
            },
            plaintext,
        ))
    }
}

/// An established session inside the enclave.
pub struct EnclaveSession {
    session_id: [u8; SESSION_ID_LEN],
    tenant_id: String,
    keys: TrafficKeys,
    resumable: Resumable,
    next_request: u64,
    answering: Option<u64>,
}

impl core::fmt::Debug for EnclaveSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnclaveSession")
            .field("session_id", &hex::encode(self.session_id))
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

impl EnclaveSession {
    /// The authenticated tenant.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The session id, hex.
    pub fn session_id(&self) -> String {
        hex::encode(self.session_id)
    }

    /// Resumes a session from an opened ticket: derives the session the client derived
    /// from the same ticket and `nonce`, and opens its first request (numbered 0), which
    /// only a client holding the ticket's secret can have sealed.
    pub fn resume(
        ticket: &[u8],
        opened: OpenedTicket,
        nonce: &[u8; NONCE_LEN],
        first_request: &[u8],
    ) -> Result<(Self, SecretBytes), ChannelError> {
        let derived = resume::derive(
            ticket,
            nonce,
            &opened.transcript,
            &opened.secret,
            opened.expires_at,
        )?;
        let mut session = Self {
            session_id: derived.session_id,
            tenant_id: opened.tenant_id,
            keys: derived.keys,
            resumable: derived.resumable,
            next_request: 0,
            answering: None,
        };
        let plaintext = session.open_request(first_request)?;
        Ok((session, plaintext))
    }

    /// A ticket to resume this session by, and its expiry (Unix seconds).
    pub fn ticket(&mut self, key: &TicketKey, now: i64) -> Result<(Vec<u8>, i64), ChannelError> {
        key.issue(&self.tenant_id, &mut self.resumable, now)
    }

    /// Opens the next request; anything out of sequence is refused.
    pub fn open_request(&mut self, bytes: &[u8]) -> Result<SecretBytes, ChannelError> {
        let parsed = message::parse(bytes)?;
        if parsed.kind != Kind::Request || parsed.seq != self.next_request {
            return Err(ChannelError::Rejected(format!(
                "expected request {}, got a {:?} numbered {} (replayed or reordered)",
                self.next_request, parsed.kind, parsed.seq
            )));
        }
        let plaintext = message::open(&self.keys.forward, &self.session_id, &parsed)?;
        self.answering = Some(self.next_request);
        self.next_request += 1;
        Ok(plaintext)
    }

    /// Seals the reply to the request just opened.
    pub fn seal_reply(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let seq = self
            .answering
            .take()
            .ok_or_else(|| ChannelError::Protocol("no request to answer".into()))?;
        message::seal(
            &self.keys.backward,
            &self.session_id,
            Kind::Reply,
            seq,
            None,
            plaintext,
        )
    }
}
