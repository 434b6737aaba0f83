//! The client end of a session: verify the enclave, then talk to it.

use crate::keys::TrafficKeys;
use crate::message::{self, Kind};
use crate::resume::{self, Resumable};
use crate::{ChannelError, NONCE_LEN, SESSION_ID_LEN, SESSION_LABEL, session_transcript};
use time::OffsetDateTime;
use veritee_attest::{Claims, ReportData, TrustAnchors};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{self, HpkePublicKey};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_policy::AppraisalPolicy;
use veritee_verify::{Verifiers, VerifyRequest};

/// Prefix of what a tenant signs to authenticate a session.
pub const HELLO_SIGNATURE_LABEL: &[u8] = b"veritee session hello v1";

/// The tenant's identity key (ECDSA P-256). The private half never leaves the client.
#[derive(Debug)]
pub struct TenantKey(EcdsaSigningKey);

pub use veritee_proto::names::tenant_id;

impl TenantKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, ChannelError> {
        Ok(Self(EcdsaSigningKey::generate(EcdsaCurve::P256)?))
    }

    /// Loads a PKCS#8 DER key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, ChannelError> {
        Ok(Self(EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, der)?))
    }

    /// The private key, PKCS#8 DER, for a 0600 file.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, ChannelError> {
        Ok(self.0.to_pkcs8()?)
    }

    /// The public key, SPKI DER.
    pub fn public_key_spki(&self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.public_key_spki()?)
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> Result<String, ChannelError> {
        Ok(tenant_id(&self.public_key_spki()?))
    }

    /// Signs `message` (r || s).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.sign(message)?)
    }
}

/// How the client judges the enclave's evidence.
#[derive(Debug, Clone, Copy)]
pub struct Appraiser<'a> {
    /// The verifiers.
    pub verifiers: &'a Verifiers,
    /// The policy the enclave must meet.
    pub policy: &'a AppraisalPolicy,
    /// Trust anchors, each bound to the TEE kind it vouches for (for simulated
    /// evidence: the simulated vendor's root).
    pub trust_anchors: &'a TrustAnchors,
    /// Collateral.
    pub collateral: &'a [Vec<u8>],
    /// Verification time.
    pub at: OffsetDateTime,
}

impl Appraiser<'_> {
    /// A digest of what decides this appraiser's verdicts, the time aside: the
    /// policy, each trust anchor with the kind it is given for, and the collateral.
    /// A session attested under one fingerprint is resumed only under the same.
    pub fn fingerprint(&self) -> Result<[u8; 32], ChannelError> {
        let mut policy = Vec::new();
        ciborium::into_writer(self.policy, &mut policy)
            .map_err(|e| ChannelError::Protocol(format!("the policy does not encode: {e}")))?;
        let mut parts: Vec<&[u8]> = vec![&policy];
        for (kind, certificate) in self.trust_anchors.iter() {
            parts.push(kind.map_or("any", |k| k.as_str()).as_bytes());
            parts.push(certificate.der());
        }
        parts.push(b"collateral");
        parts.extend(self.collateral.iter().map(Vec::as_slice));
        Ok(veritee_crypto::memo::digest_of(
            "veritee appraiser v1",
            &parts,
        ))
    }

    /// Verifies evidence expecting `report_data`, then applies the policy.
    pub fn appraise(
        &self,
        evidence: &[u8],
        report_data: &ReportData,
    ) -> Result<Claims, ChannelError> {
        let claims = self.verifiers.verify(&VerifyRequest {
            evidence,
            tee: None,
            collateral: self.collateral,
            trust_anchors: self.trust_anchors,
            expected_report_data: Some(&report_data.0),
            at: self.at,
        })?;
        let appraisal = self.policy.evaluate(&claims, self.at);
        if !appraisal.accepted() {
            let reasons: Vec<String> = appraisal
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.criterion, f.reason))
                .collect();
            return Err(ChannelError::Policy(reasons.join("; ")));
        }
        Ok(claims)
    }
}

/// What the enclave offered in answer to the client's nonce.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    /// Session id, hex.
    pub session_id: &'a str,
    /// The enclave's session public key.
    pub enclave_public_key: &'a [u8],
    /// The evidence.
    pub evidence: &'a [u8],
}

/// An established client session. The first request it seals carries the key
/// exchange; requests and replies then alternate.
pub struct ClientSession {
    session_id: Vec<u8>,
    keys: TrafficKeys,
    next_seq: u64,
    awaiting: Option<u64>,
    hello: Option<([u8; 32], Vec<u8>)>,
    claims: Claims,
    resumable: Resumable,
    /// Unix seconds until which the appraisal holds: the evidence's time (or the
    /// appraisal's) plus the policy's `max_evidence_age`; `None` if the policy sets none.
    trusted_until: Option<i64>,
}

impl core::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSession")
            .field("session_id", &hex::encode(&self.session_id))
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

/// A fresh client nonce.
pub fn fresh_nonce() -> Result<[u8; NONCE_LEN], ChannelError> {
    Ok(veritee_crypto::rand::array()?)
}

impl ClientSession {
    /// Checks the enclave's offer against the client's `nonce` and policy; only if it
    /// passes derives keys. Nothing secret is produced before the evidence is accepted.
    pub fn establish(
        nonce: &[u8; NONCE_LEN],
        offer: Offer<'_>,
        appraiser: &Appraiser<'_>,
        tenant: &TenantKey,
    ) -> Result<Self, ChannelError> {
        let session_id = hex::decode(offer.session_id)
            .ok()
            .filter(|s| s.len() == SESSION_ID_LEN)
            .ok_or_else(|| ChannelError::Malformed("session id must be 32 hex digits".into()))?;
        let enclave_key = HpkePublicKey::from_bytes(offer.enclave_public_key)?;
        let binding = ReportData::binding(SESSION_LABEL, enclave_key.as_bytes(), nonce);
        let claims = appraiser.appraise(offer.evidence, &binding)?;
        let transcript =
            session_transcript(&session_id, nonce, enclave_key.as_bytes(), offer.evidence);
        let (enc, ctx) = hpke::setup_sender(&enclave_key, &transcript)?;
        let keys = TrafficKeys::from_sender(&ctx)?;
        let resumable = Resumable::attested(transcript, |label| {
            Ok(ctx.export(label, resume::SECRET_LEN)?)
        })?;
        let signature = tenant.sign(&hello_signed_bytes(&transcript, &enc))?;
        let trusted_until = appraiser.policy.max_evidence_age.map(|age| {
            (claims.evidence_time.unwrap_or(appraiser.at) + age.as_duration()).unix_timestamp()
        });
        Ok(Self {
            session_id,
            keys,
            next_seq: 0,
            awaiting: None,
            hello: Some((enc, signature)),
            claims,
            resumable,
            trusted_until,
        })
    }

    /// What resuming this session later needs, given the ticket the enclave issued for
    /// it and the expiry it gave. The resumption ends at the earlier of that expiry and
    /// the end of the appraisal's window.
    pub fn resumption(&self, ticket: Vec<u8>, expires_at: i64) -> Resumption {
        let expires_at = self
            .trusted_until
            .map_or(expires_at, |until| until.min(expires_at));
        Resumption {
            ticket,
            transcript: self.resumable.transcript,
            secret: veritee_crypto::Confidential::new(*self.resumable.secret.expose()),
            expires_at,
            claims: self.claims.clone(),
        }
    }

    /// The claims of the enclave this session is bound to.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The session id, hex.
    pub fn session_id(&self) -> String {
        hex::encode(&self.session_id)
    }

    /// Seals the next request.
    pub fn seal_request(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if self.awaiting.is_some() {
            return Err(ChannelError::Protocol(
                "the previous request has not been answered".into(),
            ));
        }
        let seq = self.next_seq;
        let hello = self.hello.take();
        let (kind, hello_parts) = match &hello {
            Some((enc, sig)) => (Kind::Hello, Some((&enc[..], &sig[..]))),
            None => (Kind::Request, None),
        };
        let out = message::seal(
            &self.keys.forward,
            &self.session_id,
            kind,
            seq,
            hello_parts,
            plaintext,
        )?;
        self.next_seq += 1;
        self.awaiting = Some(seq);
        Ok(out)
    }

    /// Opens the reply to the last request.
    pub fn open_reply(&mut self, reply: &[u8]) -> Result<SecretBytes, ChannelError> {
        let expected = self
            .awaiting
            .take()
            .ok_or_else(|| ChannelError::Protocol("no request is awaiting a reply".into()))?;
        let parsed = message::parse(reply)?;
        if parsed.kind != Kind::Reply || parsed.seq != expected {
            return Err(ChannelError::Rejected(format!(
                "expected the reply to request {expected}, got a {:?} numbered {}",
                parsed.kind, parsed.seq
            )));
        }
        message::open(&self.keys.backward, &self.session_id, &parsed)
    }
}

/// A ticket and the secret that goes with it: enough to resume a session without a
/// new attestation until [`Resumption::expires_at`]. It holds a secret: keep it as
/// the tenant key is kept.
pub struct Resumption {
    pub(crate) ticket: Vec<u8>,
    pub(crate) transcript: [u8; 32],
    pub(crate) secret: veritee_crypto::Confidential<[u8; resume::SECRET_LEN]>,
    pub(crate) expires_at: i64,
    pub(crate) claims: Claims,
}

impl core::fmt::Debug for Resumption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Resumption")
            .field("ticket_len", &self.ticket.len())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Resumption {
    /// The opaque ticket, as sent back to the enclave.
    pub fn ticket(&self) -> &[u8] {
        &self.ticket
    }

    /// Unix seconds after which the client no longer resumes by it.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The claims of the enclave appraised when the resumed session was attested.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// A resumed session under `nonce` (fresh per resumption), if the ticket is still
    /// good at `now` (Unix seconds). Its first request goes with the ticket.
    pub fn resume(&self, nonce: &[u8; NONCE_LEN], now: i64) -> Result<ClientSession, ChannelError> {
        if now > self.expires_at {
            return Err(ChannelError::Protocol(format!(
                "the resumption expired {} s ago; open a new session",
                now.saturating_sub(self.expires_at)
            )));
        }
        let derived = resume::derive(
            &self.ticket,
            nonce,
            &self.transcript,
            &self.secret,
            self.expires_at,
        )?;
        Ok(ClientSession {
            session_id: derived.session_id.to_vec(),
            keys: derived.keys,
            next_seq: 0,
            awaiting: None,
            hello: None,
            claims: self.claims.clone(),
            resumable: derived.resumable,
            trusted_until: Some(self.expires_at),
        })
    }
}

/// What the tenant signs: label || transcript || encapsulated key.
pub(crate) fn hello_signed_bytes(transcript: &[u8; 32], enc: &[u8]) -> Vec<u8> {
    let mut m = HELLO_SIGNATURE_LABEL.to_vec();
    m.extend_from_slice(transcript);
    m.extend_from_slice(enc);
    m
}
