//! The enclave holds on its own against a hostile host: forged and replayed tenant
//! requests, a store rolled back, records put back, deleted or moved, a truncated
//! audit log, a clock set back, another tenant's task ids, swapped task inputs.
//! Each attack is made here exactly as a host could make it, and each refusal names
//! its reason.

mod common;

use common::*;
use veritee_channel::client::{TenantKey, fresh_nonce};
use veritee_channel::ops::{Request, Response};
use veritee_enclave::memory_host::AppendFault;
use veritee_proto::api::{ImportKeyRequest, OpenSessionRequest, paths};
use veritee_proto::ipc::{EnclaveCall, FailureKind};

const CODE: &[u8] = b"the node enclave, version 1";

fn secret_of(r: Response) -> Vec<u8> {
    match r {
        Response::Secret(v) => v.expose().clone(),
        other => panic!("no secret: {other:?}"),
    }
}

fn error_of(r: Response) -> String {
    match r {
        Response::Error { message, .. } => message,
        other => panic!("not an error: {other:?}"),
    }
}

/// Keys of the host's store under `ns` whose key starts with `prefix`.
fn stored_keys(host: &MemoryHost, ns: &str, prefix: &str) -> Vec<String> {
    host.storage
        .lock()
        .expect("storage")
        .objects
        .keys()
        .filter(|(n, k)| n == ns && k.starts_with(prefix))
        .map(|(_, k)| k.clone())
        .collect()
}

#[test]
fn requests_in_a_tenants_name_are_checked_inside_the_enclave() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let host_key = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    let aud = audience(&service, &mut host);

    // The host wraps a key of its own choosing under Alice's name (anyone can wrap to
    // the public wrapping key) and signs the import with its own key, claiming Alice.
    let body = serde_json::to_vec(&ImportKeyRequest {
        wrapped: "AAAA".into(),
    })
    .expect("json");
    let forged = sign_as(&aud, &alice, &host_key, "POST", &paths::keys(), &body);
    let f = refused(service.handle(
        EnclaveCall::ImportKey {
            request: forged,
            body: body.clone(),
        },
        &mut host,
    ));
    assert_eq!(f.kind, FailureKind::Unauthorized, "{}", f.message);
    assert!(f.message.contains("registered key"), "{}", f.message);

    // A genuine request of Alice's, for one object, replayed by the host or with a
    // field changed (the object name in the path) is refused.
    let header = b"not even a stream header".to_vec();
    let genuine = sign(&aud, &alice, "POST", &paths::data_uploads("a"), &header);
    let first = service.handle(
        EnclaveCall::DataBegin {
            request: genuine.clone(),
            object: "a".into(),
            header: header.clone(),
        },
        &mut host,
    );
    assert_eq!(
        refused(first).kind,
        FailureKind::BadRequest,
        "the genuine request is heard"
    );
    let replay = refused(service.handle(
        EnclaveCall::DataBegin {
            request: genuine.clone(),
            object: "a".into(),
            header: header.clone(),
        },
        &mut host,
    ));
    assert!(replay.message.contains("seen before"), "{}", replay.message);
    let fresh = sign(&aud, &alice, "POST", &paths::data_uploads("a"), &header);
    let moved = refused(service.handle(
        EnclaveCall::DataBegin {
            request: fresh,
            object: "b".into(),
            header: header.clone(),
        },
        &mut host,
    ));
    assert!(
        moved.message.contains("not the one asked of the enclave"),
        "{}",
        moved.message
    );
    let fresh = sign(&aud, &alice, "POST", &paths::data_uploads("a"), &header);
    let altered = refused(service.handle(
        EnclaveCall::DataBegin {
            request: fresh,
            object: "a".into(),
            header: b"another body".to_vec(),
        },
        &mut host,
    ));
    assert!(
        altered.message.contains("does not verify"),
        "{}",
        altered.message
    );

    // Signed for another node, or for the enclave before it restarted: stale.
    let mut elsewhere = aud.clone();
    elsewhere.node = "00".repeat(8);
    let f = refused(service.handle(
        EnclaveCall::DataBegin {
            request: sign(
                &elsewhere,
                &alice,
                "POST",
                &paths::data_uploads("a"),
                &header,
            ),
            object: "a".into(),
            header: header.clone(),
        },
        &mut host,
    ));
    assert_eq!(f.kind, FailureKind::StaleSignature);
    assert!(f.message.contains("for node"), "{}", f.message);
    let restarted = world.enclave("m1", CODE);
    let f = refused(restarted.handle(
        EnclaveCall::DataBegin {
            request: sign(&aud, &alice, "POST", &paths::data_uploads("a"), &header),
            object: "a".into(),
            header,
        },
        &mut host,
    ));
    assert_eq!(f.kind, FailureKind::StaleSignature);
    assert!(f.message.contains("restarted"), "{}", f.message);

    // Nothing was recorded in Alice's name for what she never asked.
    let log = host
        .storage
        .lock()
        .expect("storage")
        .logs
        .values()
        .flatten()
        .cloned()
        .collect::<Vec<_>>();
    assert!(
        !log.iter().any(|e| contains(e, b"key.import")),
        "a forged import was audited"
    );
}

#[test]
fn registering_a_tenant_needs_its_own_signature() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let host_key = TenantKey::generate().expect("key");
    let aud = audience(&service, &mut host);
    use base64::Engine;
    let body = serde_json::to_vec(&veritee_proto::api::RegisterTenantRequest {
        public_key: base64::engine::general_purpose::STANDARD
            .encode(alice.public_key_spki().expect("spki")),
    })
    .expect("json");
    // The host registers Alice's key with a proof it made itself.
    let f = refused(service.handle(
        EnclaveCall::RegisterTenant {
            request: sign_as(&aud, &alice, &host_key, "POST", "/v1/tenants", &body),
            body: body.clone(),
        },
        &mut host,
    ));
    assert_eq!(f.kind, FailureKind::Unauthorized, "{}", f.message);
    // With Alice's own proof it is registered.
    service
        .handle(
            EnclaveCall::RegisterTenant {
                request: sign(&aud, &alice, "POST", "/v1/tenants", &body),
                body,
            },
            &mut host,
        )
        .expect("registered");
}

#[test]
fn a_store_put_back_to_an_older_copy_is_refused_after_a_restart() {
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    {
        let service = world.enclave("m1", CODE);
        register(&service, &mut host, &alice);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"old password");
    }
    // The host copies the store away; the tenant then replaces the secret.
    let copy = host.storage.lock().expect("storage").clone();
    {
        let service = world.enclave("m1", CODE);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"new password");
        assert_eq!(secret_of(s.get(&service, &mut host, "db")), b"new password");
    }
    // The host puts the old copy back and restarts the node: it refuses to serve,
    // naming the rollback.
    *host.storage.lock().expect("storage") = copy.clone();
    let service = world.enclave("m1", CODE);
    let f = refused(service.handle(EnclaveCall::Status, &mut host));
    assert_eq!(f.kind, FailureKind::Unavailable);
    assert!(f.message.contains("rolled back"), "{}", f.message);
    assert!(
        f.message.contains("--accept-store-rollback"),
        "{}",
        f.message
    );
    // Still refused on the next call: fail closed, not once.
    assert!(
        refused(service.handle(EnclaveCall::Status, &mut host))
            .message
            .contains("rolled back")
    );

    // The operator may accept it, explicitly; the acceptance is audited.
    let accepting = world.enclave_with("m1", CODE, |s| s.accepting_store_rollback());
    accepting
        .handle(EnclaveCall::Status, &mut host)
        .expect("accepted");
    let mut s = open_session(&world, &accepting, &mut host, &alice);
    assert_eq!(
        secret_of(s.get(&accepting, &mut host, "db")),
        b"old password"
    );
    let log: Vec<Vec<u8>> = host
        .storage
        .lock()
        .expect("storage")
        .logs
        .values()
        .flatten()
        .cloned()
        .collect();
    assert!(
        log.iter().any(|e| contains(e, b"state.rollback-accepted")),
        "the accepted rollback is not in the audit log"
    );
    // From then on, the node runs normally across restarts.
    drop(accepting);
    let again = world.enclave("m1", CODE);
    again
        .handle(EnclaveCall::Status, &mut host)
        .expect("normal start");
}

#[test]
fn old_deleted_and_moved_records_are_refused_while_running() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    let mut s = open_session(&world, &service, &mut host, &alice);
    let ns = format!("t/{}", alice.tenant_id().expect("id"));

    s.put(&service, &mut host, "db", b"first");
    let v1_key = stored_keys(&host, &ns, "secret/db@").pop().expect("stored");
    let v1 = host.storage.lock().expect("storage").objects[&(ns.clone(), v1_key.clone())].clone();
    s.put(&service, &mut host, "db", b"second");
    let v2_key = stored_keys(&host, &ns, "secret/db@").pop().expect("stored");
    assert_ne!(v1_key, v2_key, "each version has a key of its own");

    // The host serves the replaced version in place of the current one.
    host.storage
        .lock()
        .expect("storage")
        .objects
        .insert((ns.clone(), v2_key.clone()), v1.clone());
    let e = error_of(s.get(&service, &mut host, "db"));
    assert!(e.contains("not the blob its current version"), "{e}");

    // The host deletes the current version: refused, not "not found".
    host.storage
        .lock()
        .expect("storage")
        .objects
        .remove(&(ns.clone(), v2_key.clone()));
    let e = error_of(s.get(&service, &mut host, "db"));
    assert!(e.contains("missing from the store"), "{e}");

    // A deleted secret stays deleted though the host puts its blob back.
    s.put(&service, &mut host, "gone", b"deleted value");
    let gone_key = stored_keys(&host, &ns, "secret/gone@")
        .pop()
        .expect("stored");
    let gone =
        host.storage.lock().expect("storage").objects[&(ns.clone(), gone_key.clone())].clone();
    let r = s.call(
        &service,
        &mut host,
        &Request::DeleteSecret {
            name: "gone".into(),
        },
    );
    assert!(matches!(r, Response::Deleted(true)), "{r:?}");
    host.storage
        .lock()
        .expect("storage")
        .objects
        .insert((ns.clone(), gone_key), gone);
    let e = error_of(s.get(&service, &mut host, "gone"));
    assert!(e.contains("no secret named gone"), "{e}");
    // Nor does it reappear in a listing, whatever the host lists.
    let r = s.call(&service, &mut host, &Request::ListSecrets);
    let Response::Names(names) = r else {
        panic!("{r:?}")
    };
    assert!(!names.contains(&"gone".to_string()), "{names:?}");
}

#[test]
fn concurrent_audited_requests_share_appends_and_each_waits_for_its_own() {
    const THREADS: usize = 8;
    const EACH: usize = 4;
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let service = world.enclave("m1", CODE);
    register(&service, &mut host, &alice);
    let mut s = open_session(&world, &service, &mut host, &alice);
    s.put(&service, &mut host, "db", b"x");
    let sessions: Vec<Session> = (0..THREADS)
        .map(|_| open_session(&world, &service, &mut host, &alice))
        .collect();
    let audit_len = |host: &MemoryHost| {
        let st = host.storage.lock().expect("storage");
        st.logs
            .iter()
            .filter(|(name, _)| name.starts_with("audit/"))
            .map(|(_, entries)| entries.len())
            .sum::<usize>()
    };
    let audit_appends = |host: &MemoryHost| {
        host.append_calls
            .lock()
            .expect("calls")
            .get("audit")
            .copied()
            .unwrap_or(0)
    };
    let (len_before, appends_before) = (audit_len(&host), audit_appends(&host));

    // A slow disk: appends queue up behind the one in flight.
    *host.append_delay.lock().expect("delay") = Some(std::time::Duration::from_millis(20));
    std::thread::scope(|scope| {
        for mut session in sessions {
            let (mut host, service) = (host.clone(), &service);
            scope.spawn(move || {
                for _ in 0..EACH {
                    // Each release returns only once its own entry is in the log.
                    let before = audit_len(&host);
                    assert_eq!(secret_of(session.get(service, &mut host, "db")), b"x");
                    assert!(audit_len(&host) > before);
                }
            });
        }
    });
    *host.append_delay.lock().expect("delay") = None;

    let entries = audit_len(&host) - len_before;
    let appends = audit_appends(&host) - appends_before;
    // A release is one entry; a session's first use may add its own.
    assert!(entries >= THREADS * EACH, "{entries} entries");
    assert!(
        appends <= entries as u64 / 2,
        "{entries} entries took {appends} appends"
    );
    // Durable and chained: a restarted enclave reads the whole log back and continues,
    // but not once the host has swapped the last two entries of the batches.
    drop(service);
    let swap_last_two = |host: &MemoryHost| {
        let mut st = host.storage.lock().expect("storage");
        let log = st
            .logs
            .iter_mut()
            .find(|(name, _)| name.starts_with("audit/"))
            .map(|(_, entries)| entries)
            .expect("audit log");
        let n = log.len();
        log.swap(n - 1, n - 2);
    };
    swap_last_two(&host);
    let f = refused(
        world
            .enclave("m1", CODE)
            .handle(EnclaveCall::Status, &mut host),
    );
    assert!(f.message.contains("audit log"), "{}", f.message);
    swap_last_two(&host);
    let service = world.enclave("m1", CODE);
    let mut s = open_session(&world, &service, &mut host, &alice);
    assert_eq!(secret_of(s.get(&service, &mut host, "db")), b"x");
}

#[test]
fn a_truncated_or_rewritten_audit_log_is_not_continued() {
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let log_name;
    {
        let service = world.enclave("m1", CODE);
        register(&service, &mut host, &alice);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"x");
        // Past one anchoring period of entries.
        for _ in 0..(veritee_enclave::AUDIT_ANCHOR_EVERY_ENTRIES + 3) {
            let _ = s.get(&service, &mut host, "db");
        }
        log_name = host
            .storage
            .lock()
            .expect("storage")
            .logs
            .keys()
            .next()
            .cloned()
            .expect("log");
    }
    let len = host.storage.lock().expect("storage").logs[&log_name].len();
    assert!(len as u64 > veritee_enclave::AUDIT_ANCHOR_EVERY_ENTRIES);

    // Truncated below the anchor: the enclave refuses to continue the log. (Only the
    // audit log is put back between the attempts: each start spends a state number,
    // so the whole store put back would be a rollback of its own.)
    let copy = host.storage.lock().expect("storage").logs[&log_name].clone();
    let put_back = |host: &MemoryHost, log: Vec<_>| {
        host.storage
            .lock()
            .expect("storage")
            .logs
            .insert(log_name.clone(), log);
    };
    host.storage
        .lock()
        .expect("storage")
        .logs
        .get_mut(&log_name)
        .expect("log")
        .truncate(2);
    let service = world.enclave("m1", CODE);
    let f = refused(service.handle(EnclaveCall::Status, &mut host));
    assert!(f.message.contains("truncated"), "{}", f.message);

    // Rewritten at the anchor (an entry replaced by another genuine one).
    put_back(&host, copy.clone());
    {
        // Every entry after the first replaced by a genuine entry of the enclave's own:
        // whichever entry the enclave anchored, it is not there any more.
        let mut st = host.storage.lock().expect("storage");
        let entries = st.logs.get_mut(&log_name).expect("log");
        let first = entries[0].clone();
        for e in entries.iter_mut().skip(1) {
            *e = first.clone();
        }
    }
    let service = world.enclave("m1", CODE);
    let f = refused(service.handle(EnclaveCall::Status, &mut host));
    assert!(f.message.contains("rewrote"), "{}", f.message);

    // The intact log continues.
    put_back(&host, copy);
    let service = world.enclave("m1", CODE);
    service
        .handle(EnclaveCall::Status, &mut host)
        .expect("intact log");
}

#[test]
fn the_enclaves_time_does_not_go_back_when_the_hosts_clock_does() {
    // In this test the real time is 400 days from the machine's: the tenant's clock is
    // right, and so is the host's at first.
    const REAL: time::Duration = time::Duration::days(400);
    fn right() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + REAL
    }
    fn set_back() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() - time::Duration::days(30)
    }
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    with_tenant_clock(REAL, || {
        let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(right));
        register(&service, &mut host, &alice);
    });
    // Restarted, the host's clock set back by 430 days: the enclave's time is still
    // the latest it saw (kept in its sealed state), so the tenant's correctly dated
    // requests pass and its audit entries are dated after everything it saw...
    let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(set_back));
    with_tenant_clock(REAL, || {
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"x");
    });
    let body = audit_bodies(&host).pop().expect("entry");
    let when = time::OffsetDateTime::parse(
        body["time"].as_str().expect("time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    assert!(
        when >= right() - time::Duration::minutes(5),
        "the enclave's time went back to {when}"
    );
    // ...while a request dated by the host's clock is out of the enclave's window.
    let aud = audience(&service, &mut host);
    let f = with_tenant_clock(-time::Duration::days(30), || {
        refused(service.handle(
            EnclaveCall::OpenSession {
                request: sign(&aud, &alice, "POST", &paths::sessions(), b"{}"),
                body: b"{}".to_vec(),
            },
            &mut host,
        ))
    });
    assert!(
        f.message.contains("away from the enclave's time"),
        "{}",
        f.message
    );
}

/// Has the host report the next append to a log starting with `log_prefix` failed,
/// after storing the entry all the same or not.
fn fail_next_append(host: &MemoryHost, log_prefix: &str, store_anyway: bool) {
    *host.append_fault.lock().expect("fault") = Some(AppendFault {
        log_prefix: log_prefix.into(),
        store_anyway,
    });
}

/// The state journal's log in the host's storage (there is one per node).
fn journal_log(host: &MemoryHost) -> String {
    host.storage
        .lock()
        .expect("storage")
        .logs
        .keys()
        .find(|l| l.starts_with("state/"))
        .cloned()
        .expect("a state journal")
}

#[test]
fn an_entry_the_host_kept_while_reporting_it_lost_never_replaces_a_later_one() {
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let service = world.enclave("m1", CODE);
    register(&service, &mut host, &alice);
    let mut s = open_session(&world, &service, &mut host, &alice);
    s.put(&service, &mut host, "a", b"1");
    s.put(&service, &mut host, "b", b"secret b");

    // The host stores the next journal entry but reports the append failed: the write
    // is refused to the tenant, and the host keeps the entry aside.
    fail_next_append(&host, "state/", true);
    let r = s.try_put(&service, &mut host, "a", b"2");
    assert!(matches!(r, Response::Error { .. }), "{r:?}");
    let log = journal_log(&host);
    let spare = host
        .storage
        .lock()
        .expect("storage")
        .logs
        .get_mut(&log)
        .and_then(Vec::pop)
        .expect("the entry the host kept");

    // The tenant deletes b, and the enclave acknowledges it.
    let r = s.call(
        &service,
        &mut host,
        &Request::DeleteSecret { name: "b".into() },
    );
    assert!(matches!(r, Response::Deleted(true)), "{r:?}");
    assert!(matches!(
        s.get(&service, &mut host, "b"),
        Response::Error { .. }
    ));
    drop(service);

    // The host swaps its spare entry in where the acknowledged ones are, and restarts
    // the node: no entry sealed before can stand for an acknowledged one.
    {
        let mut storage = host.storage.lock().expect("storage");
        let entries = storage.logs.get_mut(&log).expect("journal");
        let len = entries.len();
        entries.truncate(len - 2);
        entries.push(spare);
    }
    let service = world.enclave("m1", CODE);
    let f = refused(service.handle(EnclaveCall::Status, &mut host));
    assert!(f.message.contains("rolled back"), "{}", f.message);
}

#[test]
fn a_write_the_host_reported_failed_but_kept_is_adopted_whole_or_not_at_all() {
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let service = world.enclave("m1", CODE);
    register(&service, &mut host, &alice);
    let mut s = open_session(&world, &service, &mut host, &alice);
    s.put(&service, &mut host, "a", b"1");
    fail_next_append(&host, "state/", true);
    let r = s.try_put(&service, &mut host, "a", b"2");
    assert!(matches!(r, Response::Error { .. }), "{r:?}");
    // The outcome of a write whose append failed is unknown to the enclave; the next
    // call reconciles: the entry is in the journal, so the write took effect, once.
    assert_eq!(secret_of(s.get(&service, &mut host, "a")), b"2");
    s.put(&service, &mut host, "a", b"3");
    drop(service);
    let service = world.enclave("m1", CODE);
    service
        .handle(EnclaveCall::Status, &mut host)
        .expect("a consistent store starts");
    let mut s = open_session(&world, &service, &mut host, &alice);
    assert_eq!(secret_of(s.get(&service, &mut host, "a")), b"3");
}

#[test]
fn an_accepted_rollback_is_audited_even_if_the_host_stops_the_enclave_first() {
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    {
        let service = world.enclave("m1", CODE);
        register(&service, &mut host, &alice);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"old password");
    }
    let copy = host.storage.lock().expect("storage").clone();
    {
        let service = world.enclave("m1", CODE);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"new password");
    }
    *host.storage.lock().expect("storage") = copy;
    // The operator accepts the rollback; the host fails the audit entry's append and
    // stops the enclave before it could write it.
    fail_next_append(&host, "audit/", false);
    let accepting = world.enclave_with("m1", CODE, |s| s.accepting_store_rollback());
    refused(accepting.handle(EnclaveCall::Status, &mut host));
    drop(accepting);
    let audit_entries = |host: &MemoryHost| -> Vec<Vec<u8>> {
        host.storage
            .lock()
            .expect("storage")
            .logs
            .iter()
            .filter(|(name, _)| name.starts_with("audit/"))
            .flat_map(|(_, entries)| entries.clone())
            .collect()
    };
    assert!(
        !audit_entries(&host)
            .iter()
            .any(|e| contains(e, b"state.rollback-accepted")),
        "the fault did not stop the entry"
    );
    // Restarted without the operator's flag: the acceptance is in the sealed state, so
    // the enclave audits it before anything else.
    let service = world.enclave("m1", CODE);
    service
        .handle(EnclaveCall::Status, &mut host)
        .expect("the accepted state starts");
    assert!(
        audit_entries(&host)
            .iter()
            .any(|e| contains(e, b"state.rollback-accepted")),
        "the accepted rollback never reached the audit log"
    );
    // The flag is spent with the load it was given for: a store rolled back again
    // later is refused by a process started with it, once its first load is done.
    let accepting = world.enclave_with("m1", CODE, |s| s.accepting_store_rollback());
    accepting
        .handle(EnclaveCall::Status, &mut host)
        .expect("nothing to accept");
    let mut s = open_session(&world, &accepting, &mut host, &alice);
    let before = host.storage.lock().expect("storage").clone();
    s.put(&accepting, &mut host, "db", b"newest password");
    // The host rolls back and fails a journal append, so the enclave reloads.
    *host.storage.lock().expect("storage") = before;
    fail_next_append(&host, "state/", false);
    let r = s.try_put(&accepting, &mut host, "other", b"x");
    assert!(matches!(r, Response::Error { .. }), "{r:?}");
    let f = refused(accepting.handle(EnclaveCall::Status, &mut host));
    assert!(f.message.contains("rolled back"), "{}", f.message);
}

#[test]
fn a_signed_time_at_the_ends_of_its_range_is_refused_and_cannot_be_replayed() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    let aud = audience(&service, &mut host);
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let request = sign_at(&aud, &alice, &alice, "POST", &paths::sessions(), b"{}", ts);
        for _ in 0..2 {
            let f = refused(service.handle(
                EnclaveCall::OpenSession {
                    request: request.clone(),
                    body: b"{}".to_vec(),
                },
                &mut host,
            ));
            assert_eq!(f.kind, FailureKind::Unauthorized, "{}", f.message);
            assert!(
                f.message.contains("s away from the enclave's time"),
                "{}",
                f.message
            );
        }
    }
}

#[test]
fn a_tenant_opening_sessions_in_a_loop_evicts_only_its_own() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let busy = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &busy);
    let mut alice_session = open_session(&world, &service, &mut host, &alice);
    // More offers than the enclave keeps pending, and never accepted.
    let aud = audience(&service, &mut host);
    for _ in 0..1100 {
        let body = serde_json::to_vec(&OpenSessionRequest {
            nonce: hex::encode(fresh_nonce().expect("nonce")),
        })
        .expect("json");
        let request = sign(&aud, &busy, "POST", &paths::sessions(), &body);
        service
            .handle(EnclaveCall::OpenSession { request, body }, &mut host)
            .expect("offer");
    }
    s_ping(&mut alice_session, &service, &mut host);
    // Alice can still open a session and use it.
    let mut again = open_session(&world, &service, &mut host, &alice);
    s_ping(&mut again, &service, &mut host);
}

#[test]
fn an_acceptance_the_host_reported_lost_but_kept_is_adopted_on_the_next_call() {
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    {
        let service = world.enclave("m1", CODE);
        register(&service, &mut host, &alice);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"old password");
    }
    let copy = host.storage.lock().expect("storage").clone();
    {
        let service = world.enclave("m1", CODE);
        let mut s = open_session(&world, &service, &mut host, &alice);
        s.put(&service, &mut host, "db", b"new password");
    }
    *host.storage.lock().expect("storage") = copy;
    let accepting = world.enclave_with("m1", CODE, |s| s.accepting_store_rollback());
    fail_next_append(&host, "state/", true);
    refused(accepting.handle(EnclaveCall::Status, &mut host));
    // The acceptance reached the journal: the next call counts it, though the
    // operator's flag is spent, and audits it.
    accepting
        .handle(EnclaveCall::Status, &mut host)
        .expect("the acceptance adopted");
    let mut s = open_session(&world, &accepting, &mut host, &alice);
    assert_eq!(
        secret_of(s.get(&accepting, &mut host, "db")),
        b"old password"
    );
}

#[test]
fn a_restart_from_the_state_snapshot_keeps_every_record() {
    // Below 8192 records a state snapshot is written every 1024 transitions; each put
    // is one.
    const PUTS: usize = 1100;
    let world = World::new(&["m1"]);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    {
        let service = world.enclave("m1", CODE);
        register(&service, &mut host, &alice);
        let mut s = open_session(&world, &service, &mut host, &alice);
        for i in 0..PUTS {
            s.put(
                &service,
                &mut host,
                &format!("s{i}"),
                format!("value {i}").as_bytes(),
            );
        }
    }
    assert!(
        host.storage
            .lock()
            .expect("storage")
            .objects
            .keys()
            .any(|(_, key)| key == "state-snapshot"),
        "no state snapshot was written"
    );
    // Loaded from the snapshot and the journal after it: the records from before the
    // snapshot come from it alone.
    let service = world.enclave("m1", CODE);
    let mut s = open_session(&world, &service, &mut host, &alice);
    for i in [0, 1, 500, 1000, PUTS - 1] {
        assert_eq!(
            secret_of(s.get(&service, &mut host, &format!("s{i}"))),
            format!("value {i}").as_bytes(),
            "secret s{i} after the restart"
        );
    }
}
