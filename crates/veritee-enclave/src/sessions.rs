//! Attested client sessions: offered over a tenant-signed request, accepted on the
//! tenant's signed hello, then one request answered at a time.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::{debug, warn};
use veritee_channel::enclave::{EnclaveSession, PendingSession};
use veritee_channel::ops::{Request, Response};
use veritee_proto::api::{OpenSessionRequest, paths};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};

const MAX_PENDING_SESSIONS: usize = 1024;
const MAX_OPEN_SESSIONS: usize = 4096;
const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);

enum Slot {
    Pending(PendingSession),
    Open(EnclaveSession),
}

impl Slot {
    fn tenant(&self) -> &str {
        match self {
            Self::Pending(p) => p.tenant_id(),
            Self::Open(s) => s.tenant_id(),
        }
    }
}

/// The session table: pending offers and open sessions, by id.
#[derive(Default)]
pub(crate) struct Sessions(HashMap<String, (Slot, Instant)>);

impl Sessions {
    /// Sessions held.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn insert(&mut self, id: String, slot: Slot) {
        let now = Instant::now();
        self.0
            .retain(|_, (_, last)| now.duration_since(*last) < SESSION_IDLE);
        let is_pending = matches!(slot, Slot::Pending(_));
        let same_kind = self
            .0
            .values()
            .filter(|(s, _)| matches!(s, Slot::Pending(_)) == is_pending)
            .count();
        let full = if is_pending {
            same_kind >= MAX_PENDING_SESSIONS
        } else {
            same_kind >= MAX_OPEN_SESSIONS
        };
        if full {
            // The tenant holding the most sessions of this kind gives up its oldest: a
            // tenant opening sessions in a loop evicts its own, not everyone's.
            let mut held: HashMap<&str, usize> = HashMap::new();
            for (s, _) in self.0.values() {
                if matches!(s, Slot::Pending(_)) == is_pending {
                    *held.entry(s.tenant()).or_default() += 1;
                }
            }
            let busiest = held
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(t, _)| t.to_string());
            let oldest = self
                .0
                .iter()
                .filter(|(_, (s, _))| {
                    matches!(s, Slot::Pending(_)) == is_pending
                        && Some(s.tenant()) == busiest.as_deref()
                })
                .min_by_key(|(_, (_, last))| *last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.0.remove(&k);
            }
        }
        self.0.insert(id, (slot, now));
    }
}

fn error_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::BadRequest => "bad_request",
        FailureKind::NotFound => "not_found",
        FailureKind::Unauthorized | FailureKind::StaleSignature => "forbidden",
        FailureKind::Conflict => "conflict",
        FailureKind::Unavailable => "unavailable",
        FailureKind::Internal => "internal",
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
        let Some((slot, _)) = lock(&self.sessions).0.remove(id) else {
            return Err(failure(
                FailureKind::NotFound,
                "unknown, expired or busy session",
            ));
        };
        let (mut session, plaintext) = match slot {
            Slot::Pending(pending) => {
                let tenant = pending.tenant_id().to_string();
                let spki = self.tenant_key(link, &tenant)?;
                match pending.accept(message, &spki) {
                    Ok(accepted) => {
                        self.audit(link, "session.establish", &tenant, id, "ok")?;
                        accepted
                    }
                    Err(e) => {
                        warn!(session = id, "session establishment refused: {e}");
                        self.audit(
                            link,
                            "session.establish",
                            &tenant,
                            id,
                            &format!("refused: {e}"),
                        )?;
                        return Err(failure(
                            FailureKind::Unauthorized,
                            format!("session refused: {e}"),
                        ));
                    }
                }
            }
            Slot::Open(mut open) => match open.open_request(message) {
                Ok(plaintext) => (open, plaintext),
                Err(e) => {
                    let tenant = open.tenant_id().to_string();
                    self.audit(
                        link,
                        "session.message",
                        &tenant,
                        id,
                        &format!("refused, session closed: {e}"),
                    )?;
                    return Err(bad(format!(
                        "session message refused and session closed: {e}"
                    )));
                }
            },
        };
        let response = match Request::decode(&plaintext) {
            Ok(request) => self.serve(session.tenant_id().to_string(), request, link),
            Err(e) => Response::error("bad_request", e.to_string()),
        };
        let encoded = response.encode().map_err(internal)?;
        let reply = session.seal_reply(encoded.expose()).map_err(internal)?;
        lock(&self.sessions).insert(id.to_string(), Slot::Open(session));
        Ok(EnclaveReply::Message { message: reply })
    }

    /// Executes one tenant request. Failures become encrypted error responses.
    fn serve(&self, tenant: String, request: Request, link: &mut dyn HostLink) -> Response {
        debug!(tenant = tenant.as_str(), request = ?request, "serving");
        let result = match request {
            Request::Ping => Ok(Response::Pong),
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
        };
        result.unwrap_or_else(|f| Response::error(error_code(f.kind), f.message))
    }
}
