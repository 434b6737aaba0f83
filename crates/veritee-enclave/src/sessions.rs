//! Attested client sessions: offered over a tenant-signed request, accepted on the
//! tenant's signed hello, then one request answered at a time; resumed later by a
//! ticket ([`veritee_channel::resume`]) without a new attestation.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use crate::session_table::Slot;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::time::Instant;
use tracing::{debug, warn};
use veritee_channel::ChannelError;
use veritee_channel::NONCE_LEN;
use veritee_channel::enclave::{EnclaveSession, PendingSession};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_proto::api::{OpenSessionRequest, ResumeSessionRequest, paths};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};

fn error_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::BadRequest => "bad_request",
        FailureKind::NotFound => "not_found",
        FailureKind::Unauthorized | FailureKind::StaleSignature => "forbidden",
        FailureKind::Conflict => "conflict",
        FailureKind::Unavailable => "unavailable",
        FailureKind::Internal => "internal",
        FailureKind::TooMany => "too_many",
    }
}

impl EnclaveService {
    pub(crate) fn open_session(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::sessions(), body, link)?;
        let parsed: OpenSessionRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid session request: {e}")))?;
        let nonce = hex::decode(&parsed.nonce).map_err(|_| bad("nonce must be hex"))?;
        let (pending, offer) = PendingSession::offer(&tenant, &nonce, self.platform())
            .map_err(|e| bad(e.to_string()))?;
        lock(&self.sessions).insert(offer.session_id.clone(), Slot::Pending(pending));
        Ok(EnclaveReply::SessionOpened {
            session_id: offer.session_id,
            enclave_public_key: offer.enclave_public_key,
            evidence: offer.evidence,
        })
    }

    pub(crate) fn session_message(
        &self,
        id: &str,
        message: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // The session leaves the map while it is in use: a concurrent message for it is
        // refused rather than interleaved.
        let Some((slot, last_used)) = lock(&self.sessions).take(id) else {
            return Err(failure(
                FailureKind::NotFound,
                "unknown, expired or busy session",
            ));
        };
        // A message that does not authenticate leaves the session exactly as it was
        // (idle time included) and is not audited: session messages reach the enclave
        // without a tenant signature, so anyone who saw the session id can send one, and
        // neither closing the session nor a durable audit append may be theirs to cause.
        let (mut session, plaintext) = match slot {
            Slot::Pending(pending) => {
                let spki = match self.tenant_key(link, pending.tenant_id()) {
                    Ok(spki) => spki,
                    Err(f) => {
                        self.put_back(id, Slot::Pending(pending), last_used);
                        return Err(f);
                    }
                };
                match pending.accept(message, &spki) {
                    Ok(accepted) => {
                        self.audit(link, "session.establish", accepted.0.tenant_id(), id, "ok")?;
                        accepted
                    }
                    Err(e) => {
                        return Err(self.refuse(id, Slot::Pending(pending), last_used, &e));
                    }
                }
            }
            Slot::Open(mut open) => match open.open_request(message) {
                Ok(plaintext) => (open, plaintext),
                Err(e) => return Err(self.refuse(id, Slot::Open(open), last_used, &e)),
            },
        };
        let reply = self.answer(&mut session, &plaintext, link)?;
        lock(&self.sessions).insert(id.to_string(), Slot::Open(session));
        Ok(EnclaveReply::Message { message: reply })
    }

    /// Answers an opened request of `session`, sealed.
    fn answer(
        &self,
        session: &mut EnclaveSession,
        plaintext: &SecretBytes,
        link: &mut dyn HostLink,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        let response = match Request::decode(plaintext) {
            Ok(request) => self.serve(session, request, link),
            Err(e) => Response::error("bad_request", e.to_string()),
        };
        let encoded = response.encode().map_err(internal)?;
        session.seal_reply(encoded.expose()).map_err(internal)
    }

    fn ticket(&self, session: &mut EnclaveSession) -> Response {
        let Some(key) = &self.ticket_key else {
            return Response::error(
                "unavailable",
                "this enclave has no ticket key (its randomness failed at start)",
            );
        };
        match session.ticket(key, self.clock().now().unix_timestamp()) {
            Ok((ticket, expires_at)) => Response::Ticket { ticket, expires_at },
            Err(e) => Response::error("internal", e.to_string()),
        }
    }

    /// Resumes a session by its ticket: the tenant's signed request carries the ticket,
    /// a fresh nonce and the first request, which is answered at once.
    pub(crate) fn resume_session(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // The signature's nonce works once: a replayed resumption (and its first
        // request) is refused here.
        let tenant = self.authenticate(request, "POST", &paths::session_resume(), body, link)?;
        let parsed: ResumeSessionRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid resumption request: {e}")))?;
        let b64 = |field: &str, value: &str| {
            B64.decode(value)
                .map_err(|_| bad(format!("{field} must be base64")))
        };
        let ticket = b64("ticket", &parsed.ticket)?;
        let first = b64("message", &parsed.message)?;
        let nonce: [u8; NONCE_LEN] = hex::decode(&parsed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad(format!("nonce must be {NONCE_LEN} bytes of hex")))?;
        let key = self.ticket_key.as_ref().ok_or_else(|| {
            failure(
                FailureKind::Unavailable,
                "this enclave has no ticket key (its randomness failed at start)",
            )
        })?;
        let refused = |e: ChannelError| {
            failure(
                FailureKind::Unauthorized,
                format!("resumption refused: {e}"),
            )
        };
        let opened = key
            .open(&ticket, self.clock().now().unix_timestamp())
            .map_err(refused)?;
        if opened.tenant_id != tenant {
            return Err(failure(
                FailureKind::Unauthorized,
                "resumption refused: the ticket was issued to another tenant",
            ));
        }
        let (mut session, plaintext) =
            EnclaveSession::resume(&ticket, opened, &nonce, &first).map_err(refused)?;
        let id = session.session_id();
        if lock(&self.sessions).contains(&id) {
            return Err(failure(
                FailureKind::Conflict,
                "resumption refused: a session with this ticket and nonce exists already",
            ));
        }
        // Not audited: a resumption continues a session whose establishment was, and
        // every operation in it that touches a secret is audited on its own. Auditing
        // it would cost every returning client a durable append.
        debug!(
            session = id.as_str(),
            tenant = tenant.as_str(),
            "session resumed"
        );
        let reply = self.answer(&mut session, &plaintext, link)?;
        lock(&self.sessions).insert(id.clone(), Slot::Open(session));
        Ok(EnclaveReply::SessionResumed {
            session_id: id,
            message: reply,
        })
    }

    fn put_back(&self, id: &str, slot: Slot, last_used: Instant) {
        lock(&self.sessions).put_back(id.to_string(), slot, last_used);
    }

    /// Puts the session back as it was and names why a message for it was refused.
    fn refuse(
        &self,
        id: &str,
        slot: Slot,
        last_used: Instant,
        error: &ChannelError,
    ) -> EnclaveFailure {
        let what = match slot {
            Slot::Pending(_) => "session hello refused, the session stays offered",
            Slot::Open(_) => "session message refused, the session is unchanged",
        };
        warn!(session = id, tenant = slot.tenant(), "{what}: {error}");
        self.put_back(id, slot, last_used);
        failure(FailureKind::Unauthorized, format!("{what}: {error}"))
    }

    /// Executes one tenant request. Failures become encrypted error responses.
    fn serve(
        &self,
        session: &mut EnclaveSession,
        request: Request,
        link: &mut dyn HostLink,
    ) -> Response {
        let tenant = session.tenant_id().to_string();
        debug!(tenant = tenant.as_str(), request = ?request, "serving");
        let result = match request {
            Request::Ping => Ok(Response::Pong),
            Request::Ticket => Ok(self.ticket(session)),
            Request::PutSecret { name, value } => self.put_secret(&tenant, &name, &value, link),
            Request::GetSecret { name } => self.release_secret(&tenant, &name, link),
            Request::HmacSha256 { name, data } => {
                self.hmac_with_secret(&tenant, &name, &data, link)
            }
            Request::ListSecrets => self.list_secrets(&tenant, link),
            Request::DeleteSecret { name } => self.delete_secret(&tenant, &name, link),
            Request::ListKeys => self.key_names(&tenant, link).map(Response::Names),
            Request::EnsureKey { name } => self
                .user_key(&tenant, &name, link)
                .map(|k| Response::KeyReady(k.check_value())),
            Request::Crypto(ops) => self.crypto_batch(&tenant, ops, link).map(Response::Crypto),
            Request::App(request) => self.app_request(&tenant, request, link).map(Response::App),
            // The ticket comes after the answer, whatever the answer: a refused request
            // leaves the session as good as a served one.
            Request::WithTicket(request) => Ok(Response::WithTicket {
                response: Box::new(self.serve(session, *request, link)),
                ticket: Box::new(self.ticket(session)),
            }),
        };
        result.unwrap_or_else(|f| Response::error(error_code(f.kind), f.message))
    }
}
