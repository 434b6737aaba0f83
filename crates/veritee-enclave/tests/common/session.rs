//! The tenant's side of an attested session, in process.

use super::*;
use veritee_channel::client::{Appraiser, ClientSession, Offer, TenantKey, fresh_nonce};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_proto::api::{OpenSessionRequest, paths};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

/// An attested session, in process: the tenant's side of it.
pub struct Session {
    pub inner: ClientSession,
}

pub fn open_session(
    world: &World,
    service: &veritee_enclave::EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
) -> Session {
    let aud = audience(service, host);
    let nonce = fresh_nonce().expect("nonce");
    let body = serde_json::to_vec(&OpenSessionRequest {
        nonce: hex::encode(nonce),
    })
    .expect("json");
    let request = sign(&aud, tenant, "POST", &paths::sessions(), &body);
    let EnclaveReply::SessionOpened {
        session_id,
        enclave_public_key,
        evidence,
    } = service
        .handle(EnclaveCall::OpenSession { request, body }, host)
        .expect("open")
    else {
        panic!("not a session offer");
    };
    let verifiers = veritee_verify::Verifiers::default();
    let policy = veritee_policy::AppraisalPolicy::parse(&world.policy()).expect("policy");
    let anchors = veritee_attest::TrustAnchors::untyped(world.anchors.clone());
    let inner = ClientSession::establish(
        &nonce,
        Offer {
            session_id: &session_id,
            enclave_public_key: &enclave_public_key,
            evidence: &evidence,
        },
        &Appraiser {
            verifiers: &verifiers,
            policy: &policy,
            trust_anchors: &anchors,
            collateral: &[],
            at: time::OffsetDateTime::now_utc(),
        },
        tenant,
    )
    .expect("establish");
    Session { inner }
}

impl Session {
    pub fn call(
        &mut self,
        service: &veritee_enclave::EnclaveService,
        host: &mut MemoryHost,
        request: &Request,
    ) -> Response {
        let message = self
            .inner
            .seal_request(request.encode().expect("encode").expose())
            .expect("seal");
        let EnclaveReply::Message { message } = service
            .handle(
                EnclaveCall::SessionMessage {
                    session_id: self.inner.session_id(),
                    message,
                },
                host,
            )
            .expect("message")
        else {
            panic!("not a message");
        };
        Response::decode(&self.inner.open_reply(&message).expect("open")).expect("decode")
    }

    pub fn put(
        &mut self,
        s: &veritee_enclave::EnclaveService,
        h: &mut MemoryHost,
        name: &str,
        v: &[u8],
    ) {
        let r = self.try_put(s, h, name, v);
        assert!(matches!(r, Response::Stored), "{r:?}");
    }

    pub fn try_put(
        &mut self,
        s: &veritee_enclave::EnclaveService,
        h: &mut MemoryHost,
        name: &str,
        v: &[u8],
    ) -> Response {
        self.call(
            s,
            h,
            &Request::PutSecret {
                name: name.into(),
                value: SecretBytes::copy_from(v),
            },
        )
    }

    pub fn get(
        &mut self,
        s: &veritee_enclave::EnclaveService,
        h: &mut MemoryHost,
        name: &str,
    ) -> Response {
        self.call(s, h, &Request::GetSecret { name: name.into() })
    }
}

pub fn s_ping(s: &mut Session, service: &veritee_enclave::EnclaveService, host: &mut MemoryHost) {
    let r = s.call(service, host, &Request::Ping);
    assert!(matches!(r, Response::Pong), "{r:?}");
}
