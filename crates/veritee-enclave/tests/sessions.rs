//! Attested sessions against a hostile host and hostile outsiders: session messages
//! cross the host unsigned, so anyone who saw a session id may send one; tickets and
//! resumption requests pass through the host, which may replay, swap or alter them.
//! Each attack is made here as the host could make it, and each refusal names its
//! reason.

mod common;

use common::*;
use std::sync::atomic::{AtomicI64, Ordering};
use veritee_channel::client::{ClientSession, Resumption, TenantKey, fresh_nonce};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_proto::api::{ResumeSessionRequest, paths};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};

const CODE: &[u8] = b"the node enclave, version 1";
/// Every way to spoil a session message in transit: each header field and the
/// ciphertext and tag flipped, truncated at each boundary, extended.
fn spoiled(message: &[u8]) -> Vec<(String, Vec<u8>)> {
    use veritee_channel::message::HEADER_LEN;
    let mut out = Vec::new();
    let last = message.len() - 1;
    for (field, at) in [
        ("version", 0),
        ("kind", 1),
        ("sequence number", 2),
        ("sequence number (low byte)", 9),
        ("first byte after the header", HEADER_LEN),
        ("tag", last),
    ] {
        let mut m = message.to_vec();
        m[at] ^= 0x01;
        out.push((format!("{field} flipped"), m));
    }
    for len in [0, 1, HEADER_LEN, HEADER_LEN + 16, last] {
        out.push((format!("truncated to {len} bytes"), message[..len].to_vec()));
    }
    let mut longer = message.to_vec();
    longer.push(0);
    out.push(("one byte appended".into(), longer));
    out
}

fn send_raw(
    service: &veritee_enclave::EnclaveService,
    host: &mut MemoryHost,
    session_id: &str,
    message: &[u8],
) -> Result<EnclaveReply, veritee_proto::ipc::EnclaveFailure> {
    service.handle(
        EnclaveCall::SessionMessage {
            session_id: session_id.to_string(),
            message: message.to_vec(),
        },
        host,
    )
}

fn audit_entries(host: &MemoryHost) -> usize {
    audit_actions(host).len()
}

/// The actions of the audit log's entries, oldest first.
fn audit_actions(host: &MemoryHost) -> Vec<String> {
    audit_bodies(host)
        .iter()
        .map(|body| body["action"].as_str().expect("action").to_string())
        .collect()
}

fn pong(session: &mut Session, reply: Result<EnclaveReply, veritee_proto::ipc::EnclaveFailure>) {
    let Ok(EnclaveReply::Message { message }) = reply else {
        panic!("the genuine message was refused: {reply:?}");
    };
    let r = Response::decode(&session.inner.open_reply(&message).expect("open")).expect("decode");
    assert!(matches!(r, Response::Pong), "{r:?}");
}

/// Session messages cross the host unsigned (the session authenticates them inside
/// the enclave), so anyone who saw a session id may send one. Such a message is
/// refused, and neither closes the session, nor moves its sequence, nor costs an audit
/// append.
#[test]
fn a_message_that_does_not_authenticate_changes_nothing_in_its_session() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    let mut session = open_session(&world, &service, &mut host, &alice);
    let mut other = open_session(&world, &service, &mut host, &alice);
    let id = session.inner.session_id();
    let ping = || Request::Ping.encode().expect("encode");

    // The hello: spoiled copies, and another session's hello, leave the offer standing.
    let hello = session.inner.seal_request(ping().expose()).expect("seal");
    let other_hello = other.inner.seal_request(ping().expose()).expect("seal");
    let before = audit_entries(&host);
    let mut attacks = spoiled(&hello);
    attacks.push(("another session's hello".into(), other_hello.clone()));
    for (what, forged) in &attacks {
        let f = refused(send_raw(&service, &mut host, &id, forged));
        assert_eq!(f.kind, FailureKind::Unauthorized, "{what}: {}", f.message);
        assert!(f.message.contains("stays offered"), "{what}: {}", f.message);
    }
    assert_eq!(audit_entries(&host), before, "refused hellos were audited");
    pong(&mut session, send_raw(&service, &mut host, &id, &hello));

    // An open session: spoiled copies, a replayed hello, another session's message.
    let other_id = other.inner.session_id();
    pong(
        &mut other,
        send_raw(&service, &mut host, &other_id, &other_hello),
    );
    let next = session.inner.seal_request(ping().expose()).expect("seal");
    let other_next = other.inner.seal_request(ping().expose()).expect("seal");
    let before = audit_entries(&host);
    let mut attacks = spoiled(&next);
    attacks.push(("the hello replayed".into(), hello.clone()));
    attacks.push(("another session's request".into(), other_next));
    for (what, forged) in &attacks {
        let f = refused(send_raw(&service, &mut host, &id, forged));
        assert_eq!(f.kind, FailureKind::Unauthorized, "{what}: {}", f.message);
        assert!(f.message.contains("unchanged"), "{what}: {}", f.message);
    }
    assert_eq!(
        audit_entries(&host),
        before,
        "refused messages were audited"
    );
    pong(&mut session, send_raw(&service, &mut host, &id, &next));
    // The request just answered, replayed, is refused; the session goes on.
    let f = refused(send_raw(&service, &mut host, &id, &next));
    assert!(f.message.contains("replayed or reordered"), "{}", f.message);
    s_ping(&mut session, &service, &mut host);
}

fn ticket_of(
    session: &mut Session,
    service: &veritee_enclave::EnclaveService,
    host: &mut MemoryHost,
) -> Resumption {
    match session.call(service, host, &Request::Ticket) {
        Response::Ticket { ticket, expires_at } => session.inner.resumption(ticket, expires_at),
        other => panic!("no ticket: {other:?}"),
    }
}

/// A resumption as the client prepares it: the resumed session's client end, and the
/// body it sends (ticket, nonce, first request sealed).
struct Attempt {
    inner: ClientSession,
    ticket: Vec<u8>,
    nonce: [u8; 32],
    message: Vec<u8>,
}

impl Attempt {
    fn new(resumption: &Resumption, first: &Request) -> Self {
        let nonce = fresh_nonce().expect("nonce");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut inner = resumption.resume(&nonce, now).expect("resume");
        let message = inner
            .seal_request(first.encode().expect("encode").expose())
            .expect("seal");
        Self {
            inner,
            ticket: resumption.ticket().to_vec(),
            nonce,
            message,
        }
    }

    fn body(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::to_vec(&ResumeSessionRequest {
            ticket: b64.encode(&self.ticket),
            nonce: hex::encode(self.nonce),
            message: b64.encode(&self.message),
        })
        .expect("json")
    }

    fn signed(
        &self,
        service: &veritee_enclave::EnclaveService,
        host: &mut MemoryHost,
        tenant: &TenantKey,
    ) -> (SignedRequest, Vec<u8>) {
        let body = self.body();
        let aud = audience(service, host);
        (
            sign(&aud, tenant, "POST", &paths::session_resume(), &body),
            body,
        )
    }

    fn send(
        &self,
        service: &veritee_enclave::EnclaveService,
        host: &mut MemoryHost,
        tenant: &TenantKey,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let (request, body) = self.signed(service, host, tenant);
        service.handle(EnclaveCall::ResumeSession { request, body }, host)
    }

    /// The resumed session, after checking the reply to the first request.
    fn accepted(mut self, reply: Result<EnclaveReply, EnclaveFailure>) -> (Session, Response) {
        let Ok(EnclaveReply::SessionResumed {
            session_id,
            message,
        }) = reply
        else {
            panic!("resumption refused: {reply:?}");
        };
        assert_eq!(session_id, self.inner.session_id());
        let response =
            Response::decode(&self.inner.open_reply(&message).expect("open")).expect("decode");
        (Session { inner: self.inner }, response)
    }
}

/// One enclave, tenant alice registered, and an attested session of hers in which
/// `value` is stored as secret `db`. The world is returned to outlive the test.
fn alice_with_a_secret(
    value: &[u8],
) -> (
    World,
    veritee_enclave::EnclaveService,
    MemoryHost,
    TenantKey,
    Session,
) {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    let mut attested = open_session(&world, &service, &mut host, &alice);
    attested.put(&service, &mut host, "db", value);
    (world, service, host, alice, attested)
}

#[test]
fn a_session_resumes_by_its_ticket_without_a_new_attestation() {
    let (_world, service, mut host, alice, mut attested) = alice_with_a_secret(b"canary-resumed");
    let resumption = ticket_of(&mut attested, &service, &mut host);
    let lifetime = resumption.expires_at() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (0..=veritee_channel::resume::TICKET_LIFETIME_SECS).contains(&lifetime),
        "{lifetime}"
    );

    // One call: the ticket, and the first request answered.
    let attempt = Attempt::new(&resumption, &Request::GetSecret { name: "db".into() });
    let audited = audit_entries(&host);
    let reply = attempt.send(&service, &mut host, &alice);
    let (mut resumed, first) = attempt.accepted(reply);
    assert!(
        matches!(&first, Response::Secret(v) if v.expose() == b"canary-resumed"),
        "{first:?}"
    );
    assert_eq!(
        audit_actions(&host)[audited..],
        ["secret.release"],
        "the release is audited (the resumption continues an audited establishment)"
    );
    // The resumed session goes on like any other, and the attested one too.
    resumed.put(&service, &mut host, "db", b"changed");
    s_ping(&mut attested, &service, &mut host);
    // A resumed session's own ticket keeps the attested session's expiry.
    let again = ticket_of(&mut resumed, &service, &mut host);
    assert_eq!(again.expires_at(), resumption.expires_at());
    let attempt = Attempt::new(&again, &Request::GetSecret { name: "db".into() });
    let reply = attempt.send(&service, &mut host, &alice);
    let (_, first) = attempt.accepted(reply);
    assert!(
        matches!(&first, Response::Secret(v) if v.expose() == b"changed"),
        "{first:?}"
    );
}

/// A clock for the enclave that the test moves forward.
static AHEAD_SECS: AtomicI64 = AtomicI64::new(0);
/// A request with a ticket is answered, then ticketed, in one message: the ticket
/// resumes the session; a refused request still gets one (the session stands).
#[test]
fn a_first_request_with_a_ticket_is_answered_and_ticketed_in_one_message() {
    let (_world, service, mut host, alice, mut attested) =
        alice_with_a_secret(b"canary-with-ticket");

    let ask = Request::WithTicket(Box::new(Request::GetSecret { name: "db".into() }));
    let Response::WithTicket { response, ticket } = attested.call(&service, &mut host, &ask) else {
        panic!("not an answer with a ticket");
    };
    assert!(
        matches!(&*response, Response::Secret(v) if v.expose() == b"canary-with-ticket"),
        "{response:?}"
    );
    let Response::Ticket { ticket, expires_at } = *ticket else {
        panic!("no ticket: {ticket:?}");
    };
    let resumption = attested.inner.resumption(ticket, expires_at);
    let attempt = Attempt::new(&resumption, &Request::GetSecret { name: "db".into() });
    let reply = attempt.send(&service, &mut host, &alice);
    let (_, first) = attempt.accepted(reply);
    assert!(
        matches!(&first, Response::Secret(v) if v.expose() == b"canary-with-ticket"),
        "{first:?}"
    );

    // A request the enclave refuses: its refusal, and a ticket all the same.
    let ask = Request::WithTicket(Box::new(Request::GetSecret {
        name: "absent".into(),
    }));
    let Response::WithTicket { response, ticket } = attested.call(&service, &mut host, &ask) else {
        panic!("not an answer with a ticket");
    };
    assert!(
        matches!(&*response, Response::Error { code, .. } if code == "not_found"),
        "{response:?}"
    );
    assert!(matches!(*ticket, Response::Ticket { .. }), "{ticket:?}");
    s_ping(&mut attested, &service, &mut host);
}

fn moved_clock() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(AHEAD_SECS.load(Ordering::SeqCst))
}

fn refusal(result: Result<EnclaveReply, EnclaveFailure>, expected: &str, what: &str) {
    let f = refused(result);
    assert!(
        f.message.contains(expected),
        "{what}: expected {expected:?}, got {:?}: {}",
        f.kind,
        f.message
    );
}

#[test]
fn a_resumption_replayed_swapped_altered_or_stale_is_refused() {
    let world = World::new(&["m1"]);
    let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(moved_clock));
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let bob = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &bob);
    let mut attested = open_session(&world, &service, &mut host, &alice);
    let resumption = ticket_of(&mut attested, &service, &mut host);
    let put = Request::PutSecret {
        name: "db".into(),
        value: SecretBytes::copy_from(b"put once"),
    };

    // Replayed whole: the signed request's nonce works once.
    let attempt = Attempt::new(&resumption, &put);
    let (request, body) = attempt.signed(&service, &mut host, &alice);
    let replay = (request.clone(), body.clone());
    let reply = service.handle(EnclaveCall::ResumeSession { request, body }, &mut host);
    let (mut resumed, stored) = attempt.accepted(reply);
    assert!(matches!(stored, Response::Stored), "{stored:?}");
    refusal(
        service.handle(
            EnclaveCall::ResumeSession {
                request: replay.0,
                body: replay.1,
            },
            &mut host,
        ),
        "replayed",
        "the whole resumption replayed",
    );

    // Someone else's ticket, under their own valid signature.
    refusal(
        Attempt::new(&resumption, &Request::Ping).send(&service, &mut host, &bob),
        "issued to another tenant",
        "Alice's ticket sent by Bob",
    );

    // Each field altered or swapped, each signed anew (as the tenant would sign
    // whatever the host handed it: the enclave must not rely on the signature alone).
    let other = Attempt::new(&resumption, &Request::Ping);
    let mut attacks: Vec<(String, Attempt, &str)> = Vec::new();
    for at in [0, 12, resumption.ticket().len() - 1] {
        let mut a = Attempt::new(&resumption, &Request::Ping);
        a.ticket[at] ^= 1;
        attacks.push((format!("ticket byte {at} flipped"), a, "does not open"));
    }
    let mut a = Attempt::new(&resumption, &Request::Ping);
    a.ticket.truncate(20);
    attacks.push(("ticket truncated".into(), a, "does not open"));
    let mut a = Attempt::new(&resumption, &Request::Ping);
    a.ticket
        .resize(veritee_channel::resume::MAX_TICKET_LEN + 1, 0);
    attacks.push(("ticket oversized".into(), a, "longer than any"));
    let mut a = Attempt::new(&resumption, &Request::Ping);
    a.nonce = other.nonce;
    attacks.push(("another attempt's nonce".into(), a, "resumption refused"));
    let mut a = Attempt::new(&resumption, &Request::Ping);
    a.message = other.message.clone();
    attacks.push((
        "another attempt's first request".into(),
        a,
        "resumption refused",
    ));
    let mut a = Attempt::new(&resumption, &Request::Ping);
    let last = a.message.len() - 1;
    a.message[last] ^= 1;
    attacks.push((
        "first request's tag flipped".into(),
        a,
        "resumption refused",
    ));
    let mut a = Attempt::new(&resumption, &Request::Ping);
    a.message[2] ^= 1;
    attacks.push((
        "first request's sequence number flipped".into(),
        a,
        "resumption refused",
    ));
    for (what, attempt, expected) in attacks {
        let audited = audit_entries(&host);
        refusal(attempt.send(&service, &mut host, &alice), expected, &what);
        assert_eq!(audit_entries(&host), audited, "{what}: audited");
    }
    // None of it disturbed the sessions that exist, nor spent the ticket.
    resumed.put(&service, &mut host, "db", b"still mine");
    let attempt = Attempt::new(&resumption, &Request::Ping);
    let reply = attempt.send(&service, &mut host, &alice);
    let (_, pong) = attempt.accepted(reply);
    assert!(matches!(pong, Response::Pong), "{pong:?}");

    // Past its expiry, by the enclave's clock, the ticket is refused.
    AHEAD_SECS.store(
        veritee_channel::resume::TICKET_LIFETIME_SECS + 60,
        Ordering::SeqCst,
    );
    let late = Attempt::new(&resumption, &Request::Ping);
    let result = with_tenant_clock(
        time::Duration::seconds(veritee_channel::resume::TICKET_LIFETIME_SECS + 60),
        || late.send(&service, &mut host, &alice),
    );
    AHEAD_SECS.store(0, Ordering::SeqCst);
    refusal(result, "expired", "a ticket past its expiry");

    // And another enclave process (a restart) cannot open it at all.
    let restarted = world.enclave("m1", CODE);
    refusal(
        Attempt::new(&resumption, &Request::Ping).send(&restarted, &mut host, &alice),
        "does not open",
        "a ticket after a restart",
    );
}

/// Resumptions add an open session each time: a tenant resuming in a loop fills the
/// table with its own sessions, and gives up its own least recently used ones, never
/// another tenant's.
#[test]
fn a_tenant_resuming_in_a_loop_evicts_only_its_own_sessions() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let busy = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &busy);
    let mut alice_session = open_session(&world, &service, &mut host, &alice);
    s_ping(&mut alice_session, &service, &mut host);
    let mut busy_session = open_session(&world, &service, &mut host, &busy);
    let resumption = ticket_of(&mut busy_session, &service, &mut host);
    let attempt = Attempt::new(&resumption, &Request::Ping);
    let reply = attempt.send(&service, &mut host, &busy);
    let (mut first_resumed, _) = attempt.accepted(reply);
    for _ in 0..veritee_enclave::MAX_OPEN_SESSIONS {
        let attempt = Attempt::new(&resumption, &Request::Ping);
        let reply = attempt.send(&service, &mut host, &busy);
        attempt.accepted(reply);
    }
    // Alice's session, older than all of them, is still there.
    s_ping(&mut alice_session, &service, &mut host);
    // The busy tenant's least recently used sessions are gone.
    assert_gone(&mut first_resumed, &service, &mut host);
}

/// `session` is no longer in the enclave's table.
fn assert_gone(
    session: &mut Session,
    service: &veritee_enclave::EnclaveService,
    host: &mut MemoryHost,
) {
    let message = session
        .inner
        .seal_request(Request::Ping.encode().expect("encode").expose())
        .expect("seal");
    let f = refused(service.handle(
        EnclaveCall::SessionMessage {
            session_id: session.inner.session_id(),
            message,
        },
        host,
    ));
    assert_eq!(f.kind, FailureKind::NotFound, "{}", f.message);
}

/// A tenant holds at most the sessions the node allows it: past its limit its own least
/// recently used one gives way, whichever it is, and another tenant's are untouched.
#[test]
fn a_tenant_holds_at_most_its_limit_of_sessions() {
    let world = World::new(&["m1"]);
    let service = world.enclave_with("m1", CODE, |s| s.with_tenant_session_limit(Some(3)));
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let busy = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &busy);
    let mut alice_session = open_session(&world, &service, &mut host, &alice);
    let mut sessions: Vec<_> = (0..3)
        .map(|_| open_session(&world, &service, &mut host, &busy))
        .collect();
    for session in &mut sessions {
        s_ping(session, &service, &mut host);
    }
    // The first one used again, so the second is now the least recently used.
    s_ping(&mut sessions[0], &service, &mut host);
    let mut fourth = open_session(&world, &service, &mut host, &busy);
    s_ping(&mut fourth, &service, &mut host);
    assert_gone(&mut sessions[1], &service, &mut host);
    s_ping(&mut sessions[0], &service, &mut host);
    s_ping(&mut sessions[2], &service, &mut host);
    s_ping(&mut alice_session, &service, &mut host);
}
