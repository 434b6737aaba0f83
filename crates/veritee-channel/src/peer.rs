//! Mutually attested enclave-to-enclave sessions.
//!
//! ```text
//! initiator A                                   responder B
//!   PeerHello     "VTPH" 1 | nonce_a(32)      ->
//!               <-  PeerChallenge "VTPC" 1 | session(16) | nonce_b(32) | pk_b(32) | len u32 | evidence_b
//!                    evidence_b binds (pk_b, nonce_a)
//!   A appraises B; HPKE to pk_b with info = transcript
//!   PeerFinish    "VTPF" 1 | session(16) | enc(32) | len u32 | evidence_a    ->
//!                    evidence_a binds (enc, nonce_b || transcript)
//!                                              B appraises A; keys from the HPKE exporter
//! ```
//! Each side's evidence covers the other's fresh nonce and its own share of the key
//! exchange, so neither a replayed handshake nor a host in the middle yields keys.
//! Each side appraises the other with a [`PeerRequirement`] relative to itself
//! ("same measurement", "same signer") on top of a base policy.

use crate::keys::TrafficKeys;
use crate::message::{self, Kind};
use crate::{ChannelError, NONCE_LEN, SESSION_ID_LEN};
use time::OffsetDateTime;
use veritee_attest::{Claims, ReportData, TeeKind, TrustAnchors};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_platform::{EnclaveIdentity, Platform};
use veritee_policy::AppraisalPolicy;
use veritee_verify::{Verifiers, VerifyRequest};

const RESPONDER_LABEL: &[u8] = b"veritee peer v1 responder";
const INITIATOR_LABEL: &[u8] = b"veritee peer v1 initiator";
const TRANSCRIPT_LABEL: &[u8] = b"veritee peer v1 transcript";
/// Largest evidence accepted inside a handshake message.
pub const MAX_EVIDENCE_LEN: usize = 1024 * 1024;

/// What a peer must be, relative to this enclave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequirement {
    /// The same code: equal primary measurement.
    SameMeasurement,
    /// The same signer and product: another version of the same application.
    SameSigner,
    /// Only the base policy.
    PolicyOnly,
}

/// The name of a TEE's primary code measurement in [`Claims::measurements`].
pub fn primary_measurement(tee: TeeKind) -> &'static str {
    match tee {
        TeeKind::Simulated => "measurement",
        TeeKind::Sgx => "mrenclave",
        TeeKind::Tdx | TeeKind::AzureTdxVtpm => "mrtd",
        TeeKind::SevSnp | TeeKind::AzureSnpVtpm => "launch_measurement",
        TeeKind::Nitro | TeeKind::Tpm2 => "pcr0",
        _ => "measurement",
    }
}

/// How one enclave judges another.
#[derive(Debug)]
pub struct PeerAppraiser<'a> {
    /// Verifiers.
    pub verifiers: &'a Verifiers,
    /// Trust anchors, part of the enclave's measured configuration, each bound to the
    /// TEE kind it vouches for.
    pub trust_anchors: &'a TrustAnchors,
    /// Base policy every peer must meet.
    pub policy: &'a AppraisalPolicy,
    /// The relative requirement.
    pub requirement: PeerRequirement,
    /// This enclave's own identity.
    pub own: &'a EnclaveIdentity,
    /// This enclave's TEE kind.
    pub own_tee: TeeKind,
    /// The verification time: the enclave's trusted time, never the host's clock alone.
    pub at: OffsetDateTime,
}

impl PeerAppraiser<'_> {
    fn appraise(&self, evidence: &[u8], binding: &ReportData) -> Result<Claims, ChannelError> {
        let at = self.at;
        let claims = self.verifiers.verify(&VerifyRequest {
            evidence,
            tee: None,
            collateral: &[],
            trust_anchors: self.trust_anchors,
            expected_report_data: Some(&binding.0),
            at,
        })?;
        let appraisal = self.policy.evaluate(&claims, at);
        let mut failures: Vec<String> = appraisal
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.criterion, f.reason))
            .collect();
        match self.requirement {
            PeerRequirement::SameMeasurement => {
                let name = primary_measurement(claims.tee);
                if claims.tee != self.own_tee
                    || claims.measurement(name) != Some(self.own.measurement.as_slice())
                {
                    failures.push("peer runs different code (measurement differs)".into());
                }
            }
            PeerRequirement::SameSigner => match (&claims.signer, &self.own.signer) {
                (Some(theirs), Some(ours)) if theirs.0 == *ours => {}
                (_, None) => failures
                    .push("this enclave is unsigned, so a same-signer peer cannot exist".into()),
                _ => failures.push("peer is signed by someone else".into()),
            },
            PeerRequirement::PolicyOnly => {}
        }
        if failures.is_empty() {
            Ok(claims)
        } else {
            Err(ChannelError::Policy(failures.join("; ")))
        }
    }
}

fn transcript(
    session: &[u8],
    nonce_a: &[u8],
    nonce_b: &[u8],
    pk_b: &[u8],
    evidence_b: &[u8],
) -> [u8; 32] {
    let mut h = veritee_crypto::digest::Sha256::default();
    for part in [
        TRANSCRIPT_LABEL,
        session,
        nonce_a,
        nonce_b,
        pk_b,
        &veritee_crypto::digest::sha256(evidence_b),
    ] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finish()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChannelError> {
        if self.bytes.len() < n {
            return Err(ChannelError::Malformed(format!(
                "{} is truncated",
                self.what
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn evidence(&mut self) -> Result<&'a [u8], ChannelError> {
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_EVIDENCE_LEN {
            return Err(ChannelError::Malformed(format!(
                "{}: evidence of {len} bytes is too large",
                self.what
            )));
        }
        self.take(len)
    }

    fn header(&mut self, magic: &[u8; 4]) -> Result<(), ChannelError> {
        if self.take(4)? != magic {
            return Err(ChannelError::Malformed(format!(
                "not a {} (bad magic)",
                self.what
            )));
        }
        if self.take(1)? != [1] {
            return Err(ChannelError::Malformed(format!(
                "unsupported {} version",
                self.what
            )));
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), ChannelError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(ChannelError::Malformed(format!(
                "{} has trailing bytes",
                self.what
            )))
        }
    }
}

/// The initiator after sending its hello.
pub struct Initiator {
    nonce_a: [u8; NONCE_LEN],
}

impl core::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Initiator")
    }
}

impl Initiator {
    /// Starts a handshake; returns the PeerHello to send.
    pub fn start() -> Result<(Self, Vec<u8>), ChannelError> {
        let nonce_a: [u8; NONCE_LEN] = veritee_crypto::rand::array()?;
        let mut hello = b"VTPH\x01".to_vec();
        hello.extend_from_slice(&nonce_a);
        Ok((Self { nonce_a }, hello))
    }

    /// Appraises the responder's challenge; on success returns the session and the
    /// PeerFinish to send.
    pub fn on_challenge(
        self,
        challenge: &[u8],
        platform: &dyn Platform,
        appraiser: &PeerAppraiser<'_>,
    ) -> Result<(PeerSession, Claims, Vec<u8>), ChannelError> {
        let mut c = Cursor {
            bytes: challenge,
            what: "peer challenge",
        };
        c.header(b"VTPC")?;
        let session = c.take(SESSION_ID_LEN)?;
        let nonce_b = c.take(NONCE_LEN)?;
        let pk_b = c.take(32)?;
        let evidence_b = c.evidence()?;
        c.finish()?;
        let claims = appraiser.appraise(
            evidence_b,
            &ReportData::binding(RESPONDER_LABEL, pk_b, &self.nonce_a),
        )?;
        let th = transcript(session, &self.nonce_a, nonce_b, pk_b, evidence_b);
        let (enc, ctx) = hpke::setup_sender(&HpkePublicKey::from_bytes(pk_b)?, &th)?;
        let mut bound = nonce_b.to_vec();
        bound.extend_from_slice(&th);
        let evidence_a = platform.evidence(&ReportData::binding(INITIATOR_LABEL, &enc, &bound))?;
        let mut finish = b"VTPF\x01".to_vec();
        finish.extend_from_slice(session);
        finish.extend_from_slice(&enc);
        finish.extend_from_slice(&(evidence_a.len() as u32).to_be_bytes());
        finish.extend_from_slice(&evidence_a);
        let session = PeerSession::new(session, TrafficKeys::from_sender(&ctx)?, true);
        Ok((session, claims, finish))
    }
}

/// The responder after sending its challenge.
pub struct Responder {
    session: [u8; SESSION_ID_LEN],
    nonce_b: [u8; NONCE_LEN],
    keypair: HpkeKeyPair,
    transcript: [u8; 32],
}

impl core::fmt::Debug for Responder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Responder")
            .field("session", &hex::encode(self.session))
            .finish()
    }
}

impl Responder {
    /// Answers a PeerHello with a challenge carrying this enclave's evidence.
    pub fn on_hello(
        hello: &[u8],
        platform: &dyn Platform,
    ) -> Result<(Self, Vec<u8>), ChannelError> {
        let mut c = Cursor {
            bytes: hello,
            what: "peer hello",
        };
        c.header(b"VTPH")?;
        let nonce_a = c.take(NONCE_LEN)?;
        c.finish()?;
        let session: [u8; SESSION_ID_LEN] = veritee_crypto::rand::array()?;
        let nonce_b: [u8; NONCE_LEN] = veritee_crypto::rand::array()?;
        let keypair = HpkeKeyPair::generate();
        let pk_b = keypair.public_key();
        let evidence_b = platform.evidence(&ReportData::binding(
            RESPONDER_LABEL,
            pk_b.as_bytes(),
            nonce_a,
        ))?;
        let th = transcript(&session, nonce_a, &nonce_b, pk_b.as_bytes(), &evidence_b);
        let mut challenge = b"VTPC\x01".to_vec();
        challenge.extend_from_slice(&session);
        challenge.extend_from_slice(&nonce_b);
        challenge.extend_from_slice(pk_b.as_bytes());
        challenge.extend_from_slice(&(evidence_b.len() as u32).to_be_bytes());
        challenge.extend_from_slice(&evidence_b);
        Ok((
            Self {
                session,
                nonce_b,
                keypair,
                transcript: th,
            },
            challenge,
        ))
    }

    /// The session id this responder is waiting on, hex.
    pub fn session_id(&self) -> String {
        hex::encode(self.session)
    }

    /// Appraises the initiator's finish; on success returns the session.
    pub fn on_finish(
        self,
        finish: &[u8],
        appraiser: &PeerAppraiser<'_>,
    ) -> Result<(PeerSession, Claims), ChannelError> {
        let mut c = Cursor {
            bytes: finish,
            what: "peer finish",
        };
        c.header(b"VTPF")?;
        if c.take(SESSION_ID_LEN)? != self.session {
            return Err(ChannelError::Protocol(
                "peer finish is for another session".into(),
            ));
        }
        let enc = c.take(32)?;
        let evidence_a = c.evidence()?;
        c.finish()?;
        let mut bound = self.nonce_b.to_vec();
        bound.extend_from_slice(&self.transcript);
        let claims = appraiser.appraise(
            evidence_a,
            &ReportData::binding(INITIATOR_LABEL, enc, &bound),
        )?;
        let ctx = hpke::setup_receiver(&self.keypair, enc, &self.transcript)?;
        Ok((
            PeerSession::new(&self.session, TrafficKeys::from_receiver(&ctx)?, false),
            claims,
        ))
    }
}

/// An established enclave-to-enclave session: each direction has its own key and
/// strictly increasing sequence numbers.
pub struct PeerSession {
    session: Vec<u8>,
    keys: TrafficKeys,
    initiator: bool,
    send_seq: u64,
    recv_seq: u64,
}

impl core::fmt::Debug for PeerSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerSession")
            .field("session", &hex::encode(&self.session))
            .finish()
    }
}

impl PeerSession {
    fn new(session: &[u8], keys: TrafficKeys, initiator: bool) -> Self {
        Self {
            session: session.to_vec(),
            keys,
            initiator,
            send_seq: 0,
            recv_seq: 0,
        }
    }

    /// The session id, hex.
    pub fn session_id(&self) -> String {
        hex::encode(&self.session)
    }

    /// Seals a message to the other enclave.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let (key, kind) = if self.initiator {
            (&self.keys.forward, Kind::Request)
        } else {
            (&self.keys.backward, Kind::Reply)
        };
        let out = message::seal(key, &self.session, kind, self.send_seq, None, plaintext)?;
        self.send_seq += 1;
        Ok(out)
    }

    /// Opens the next message from the other enclave.
    pub fn open(&mut self, bytes: &[u8]) -> Result<SecretBytes, ChannelError> {
        let parsed = message::parse(bytes)?;
        let (key, kind) = if self.initiator {
            (&self.keys.backward, Kind::Reply)
        } else {
            (&self.keys.forward, Kind::Request)
        };
        if parsed.kind != kind || parsed.seq != self.recv_seq {
            return Err(ChannelError::Rejected(format!(
                "expected message {} from the peer, got a {:?} numbered {}",
                self.recv_seq, parsed.kind, parsed.seq
            )));
        }
        let plaintext = message::open(key, &self.session, &parsed)?;
        self.recv_seq += 1;
        Ok(plaintext)
    }
}
