//! The provider node end to end, against both stores: the embedded store always, and
//! PostgreSQL when VERITEE_TEST_POSTGRES holds a URL (`.ci/run` sets it).
//!
//! Each scenario starts a real `veritee node` (host process + enclave process) on
//! loopback and talks to it with the client library or raw HTTP.

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use veritee_channel::client::TenantKey;
use veritee_channel::ops::{Request, Response};
use veritee_client::{ClientError, NodeClient};
use veritee_crypto::SecretBytes;

both_stores!(canary_never_reaches_the_host, canary);
both_stores!(tenants_are_isolated, isolation);
both_stores!(dead_enclave_is_restarted_and_nothing_is_lost, dead_enclave);
both_stores!(
    an_enclave_killed_under_load_loses_no_acknowledged_write,
    enclave_kill_under_load
);
both_stores!(acknowledged_writes_survive_kill_9_of_the_host, host_kill);
both_stores!(bad_input_gets_clear_errors, bad_input);
both_stores!(tampering_host_causes_clean_failures, tampering);
both_stores!(audit_log_verifies_and_names_the_first_broken_entry, audit);

fn canary(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let canary = format!(
        "CANARY-{}",
        hex::encode(veritee_crypto::rand::array::<12>().expect("rand"))
    );
    let (client, exchanges) = node.client().recording();
    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    session
        .put_secret("db-password", SecretBytes::copy_from(canary.as_bytes()))
        .expect("put");
    assert_eq!(
        session.get_secret("db-password").expect("get").expose(),
        canary.as_bytes()
    );
    let tag = session.hmac("db-password", b"data").expect("hmac");
    assert_eq!(
        tag,
        veritee_crypto::mac::hmac_sha256(canary.as_bytes(), b"data").to_vec()
    );
    assert_eq!(
        session.list().expect("list"),
        vec!["db-password".to_string()]
    );
    // A request with its ticket in the same message (what a one-shot command that
    // keeps its session sends): the secret comes back with it, sealed as any answer.
    let kept = session
        .call_keeping(&Request::GetSecret {
            name: "db-password".into(),
        })
        .expect("request with a ticket");
    assert!(
        matches!(&kept.response, Ok(Response::Secret(v)) if v.expose() == canary.as_bytes()),
        "{:?}",
        kept.response
    );
    let kept = kept.resumption.expect("ticket with the answer");
    let (_, first) = client
        .resume_session(&tenant.key, &kept, &Request::Ping)
        .expect("resume by the ticket that came with an answer");
    assert!(matches!(first, Response::Pong), "{first:?}");
    // Resumed by a ticket: the secret comes back with the resumption itself.
    let resumption = session.resumption().expect("ticket");
    let (mut resumed, first) = client
        .resume_session(
            &tenant.key,
            &resumption,
            &Request::GetSecret {
                name: "db-password".into(),
            },
        )
        .expect("resume");
    assert!(
        matches!(&first, Response::Secret(v) if v.expose() == canary.as_bytes()),
        "{first:?}"
    );
    resumed.ping().expect("ping in the resumed session");

    // The wire: every byte the host received or sent.
    let exchanges = exchanges.lock().expect("lock").clone();
    // The open, the hello with the put, get, HMAC, list, the request with its ticket
    // and its resumption, a ticket, a resumption and its ping: each one scanned.
    assert!(exchanges.len() >= 10, "{}", exchanges.len());
    for x in &exchanges {
        assert!(
            !contains(&x.request_body, canary.as_bytes()),
            "canary on the wire: {}",
            x.request_line
        );
        assert!(
            !contains(&x.response_body, canary.as_bytes()),
            "canary on the wire: {}",
            x.request_line
        );
    }
    // The host process's memory. The tenant id, which the host did handle, is there:
    // the scan itself works.
    let host_memory = process_memory(node.child.id());
    assert!(
        contains(&host_memory, tenant.key.tenant_id().expect("id").as_bytes()),
        "memory scan found nothing"
    );
    assert!(
        !contains(&host_memory, canary.as_bytes()),
        "canary in the host process's memory"
    );
    // Logs of both processes (debug level).
    let log = std::fs::read(&node.log).expect("log");
    assert!(!contains(&log, canary.as_bytes()), "canary in the logs");
    // The store: the embedded store's files, or every object and log entry in PostgreSQL.
    let stored = match kind {
        "embedded" => all_files(&node.state),
        _ => dump_postgres(&node.store, &tenant.key.tenant_id().expect("id")),
    };
    assert!(!stored.is_empty());
    assert!(!contains(&stored, canary.as_bytes()), "canary in the store");
    assert!(!contains(&stored, b"CANARY-"), "canary prefix in the store");
}

fn isolation(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let (alice, bob) = (node.tenant(), node.tenant());
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut a = client
        .open_session(&alice.key, &appraisal.appraiser())
        .expect("alice");
    a.put_secret("shared-name", SecretBytes::copy_from(b"alice's"))
        .expect("put");
    let mut b = client
        .open_session(&bob.key, &appraisal.appraiser())
        .expect("bob");
    // Bob cannot read, use or list Alice's object.
    assert!(
        matches!(b.get_secret("shared-name"), Err(ClientError::Enclave { ref code, .. }) if code == "not_found")
    );
    assert!(
        matches!(b.hmac("shared-name", b"x"), Err(ClientError::Enclave { ref code, .. }) if code == "not_found")
    );
    assert!(b.list().expect("list").is_empty());
    assert!(!b.delete("shared-name").expect("delete"));
    // Bob's own object of the same name is his alone.
    b.put_secret("shared-name", SecretBytes::copy_from(b"bob's"))
        .expect("put");
    assert_eq!(
        a.get_secret("shared-name").expect("get").expose(),
        b"alice's"
    );

    // Bob posting into Alice's session, signed or not, is refused by the enclave (the
    // session authenticates its messages) and Alice's session goes on as before.
    let path = format!("/v1/sessions/{}/messages", a.id());
    let status = signed_post(
        &node.url,
        &bob.key,
        &path,
        "application/octet-stream",
        b"\x01\x02",
    );
    assert_eq!(status, 401);
    let (status, body) = raw_post(&node.url, &path, "application/octet-stream", &[1; 64], None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("session is unchanged"), "{body}");
    assert_eq!(
        a.get_secret("shared-name").expect("get").expose(),
        b"alice's"
    );
    // A session the node never opened is refused by the host; a malformed id too.
    let unknown = format!("/v1/sessions/{}/messages", "ab".repeat(16));
    let (status, _) = raw_post(
        &node.url,
        &unknown,
        "application/octet-stream",
        &[1; 64],
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = raw_post(
        &node.url,
        "/v1/sessions/xyz/messages",
        "application/octet-stream",
        &[1; 64],
        None,
    );
    assert_eq!(status, 400);
    // Bob claiming to be Alice (signing with his own key) is not authenticated.
    let body = br#"{"nonce":"00"}"#;
    let resp = raw_post(
        &node.url,
        "/v1/sessions",
        "application/json",
        body,
        Some(&header_claiming(
            &node.url,
            &alice.key,
            &bob.key,
            "POST",
            "/v1/sessions",
            body,
        )),
    );
    assert_eq!(resp.0, 401, "{}", resp.1);
    // An unregistered key gets nothing either.
    let stranger = TenantKey::generate().expect("key");
    assert!(matches!(
        client.open_session(&stranger, &appraisal.appraiser()),
        Err(ClientError::Node { status: 401, .. })
    ));
}

fn raw_post(
    url: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    auth: Option<&str>,
) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", content_type)
        .body(body.to_vec());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

fn signed_post(url: &str, key: &TenantKey, path: &str, content_type: &str, body: &[u8]) -> u16 {
    raw_post(
        url,
        path,
        content_type,
        body,
        Some(&signed_header(url, key, "POST", path, body)),
    )
    .0
}

/// Kills the enclave (-9) and waits until the node has restarted it; the killed pid.
fn kill_enclave_and_wait_for_its_restart(node: &Node) -> u32 {
    let pid = node.enclave_pid();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    wait_for("the enclave restart", || {
        let h = node.health();
        h["enclave_restarts"].as_u64().unwrap_or(0) >= 1 && h["enclave"] == "running"
    });
    pid
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dead_enclave(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    session
        .put_secret("k", SecretBytes::copy_from(b"survives"))
        .expect("put");
    let resumption = session.resumption().expect("ticket");
    let pid = kill_enclave_and_wait_for_its_restart(&node);
    assert_ne!(node.enclave_pid(), pid);
    // The host, and the enclave restarted as it was started, run with glibc's mmap
    // threshold fixed (supervisor.rs). glibc rewrites the variable in place as it reads
    // it, and what /proc shows of it may end after the first setting: the mmap
    // threshold, which comes first.
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        let fixed = veritee_host::supervisor::FIXED_MMAP_THRESHOLD;
        for (what, pid) in [("host", node.child.id()), ("enclave", node.enclave_pid())] {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environment");
            let tunables = environ
                .split(|&b| b == 0)
                .find_map(|v| v.strip_prefix(b"GLIBC_TUNABLES="))
                .unwrap_or_else(|| panic!("the {what} runs without GLIBC_TUNABLES"));
            assert!(
                tunables.starts_with(b"glibc.malloc.mmap_threshold=131072")
                    && fixed.as_bytes().starts_with(tunables),
                "the {what} runs with GLIBC_TUNABLES={}, not {fixed}",
                String::from_utf8_lossy(tunables)
            );
        }
    }
    // Old sessions are gone, and so are their tickets: the new process has new
    // evidence, which a client must appraise.
    match client.resume_session(&tenant.key, &resumption, &Request::Ping) {
        Err(ClientError::Node {
            status: 401,
            message,
            ..
        }) => {
            assert!(message.contains("does not open"), "{message}");
        }
        other => panic!("a ticket outlived its enclave: {:?}", other.map(|(_, r)| r)),
    }
    // Sealed state comes back with the new process.
    let mut s = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("new session");
    assert_eq!(s.get_secret("k").expect("get").expose(), b"survives");
    let metrics = reqwest::blocking::get(format!("{}/metrics", node.url))
        .and_then(|r| r.text())
        .expect("metrics");
    assert!(
        metrics.contains("veritee_enclave_restarts_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("veritee_enclave_up 1"));
}

/// kill -9 of the enclave while three writers store secrets and a reader lists its
/// tasks: the host restarts the enclave; a request cut by the kill gets a clear,
/// retryable refusal (503 with Retry-After, saying the enclave is being restarted); the
/// reader's GETs, which the client retries, all succeed; every acknowledged write is
/// there after the restart.
fn enclave_kill_under_load(kind: &str) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let tenant = node.tenant();
    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::<String>::new());
    let refusals = Mutex::new(Vec::<String>::new());
    let count = || acknowledged.lock().expect("lock").len();
    let wait_for_writes = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while count() < n {
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged",
                count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let pid = node.enclave_pid();
    let reader = std::thread::scope(|scope| {
        for writer in 0..3 {
            let (node, tenant, stop, acknowledged, refusals) =
                (&node, &tenant, &stop, &acknowledged, &refusals);
            scope.spawn(move || {
                let appraisal = Appraisal::new(node);
                let client = node.client();
                let mut session = None;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let s = match &mut session {
                        Some(s) => s,
                        None => match client.open_session(&tenant.key, &appraisal.appraiser()) {
                            Ok(s) => session.insert(s),
                            Err(e) => {
                                refusals.lock().expect("lock").push(e.to_string());
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                        },
                    };
                    let key = format!("w{writer}-{i}");
                    i += 1;
                    match s.put_secret(&key, SecretBytes::copy_from(key.as_bytes())) {
                        Ok(()) => acknowledged.lock().expect("lock").push(key),
                        Err(e) => {
                            refusals.lock().expect("lock").push(e.to_string());
                            session = None;
                        }
                    }
                }
            });
        }
        let reader = {
            let (node, tenant, stop) = (&node, &tenant, &stop);
            scope.spawn(move || {
                let client = node.client();
                let (mut ok, mut failed) = (0usize, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match client.list_tasks(&tenant.key) {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(e.to_string()),
                    }
                    // Well within the tenant's request rate.
                    std::thread::sleep(Duration::from_millis(10));
                }
                (ok, failed)
            })
        };
        wait_for_writes(30);
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        let at_kill = count();
        wait_for("the enclave restart", || {
            let h = node.health();
            h["enclave_restarts"].as_u64().unwrap_or(0) >= 1 && h["enclave"] == "running"
        });
        // Writing goes on after the restart.
        wait_for_writes(at_kill + 30);
        stop.store(true, Ordering::Relaxed);
        reader.join().expect("reader")
    });
    assert_ne!(node.enclave_pid(), pid);
    let (listed, failed) = reader;
    assert!(listed > 0);
    assert!(
        failed.is_empty(),
        "{} GETs the client retries failed, the first: {:?}",
        failed.len(),
        failed.first()
    );
    let refusals = refusals.into_inner().expect("lock");
    for refusal in &refusals {
        assert!(
            refusal.contains("being restarted")
                || refusal.contains("session")
                || refusal.contains("does not open"),
            "an unclear refusal: {refusal} (all: {refusals:?})"
        );
    }
    // Every acknowledged write is there.
    let acknowledged = acknowledged.into_inner().expect("lock");
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut s = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    for key in &acknowledged {
        assert_eq!(s.get_secret(key).expect(key).expose(), key.as_bytes());
    }
    eprintln!(
        "{} writes acknowledged, {} GETs answered; refusals: {refusals:?}",
        acknowledged.len(),
        listed
    );
}

/// kill -9 of the host while three writers store secrets: every write acknowledged
/// before the kill is there once the node is started again on the same store (the
/// enclave, orphaned, exits by itself).
fn host_kill(kind: &str) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(store) = store_location(kind, dir.path()) else {
        return;
    };
    let state = dir.path().join("node");
    let node = start(&state, &store);
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let killed = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::<String>::new());
    let count = || acknowledged.lock().expect("lock").len();
    let host_pid = node.child.id();
    let enclave_pid = node.enclave_pid();
    std::thread::scope(|scope| {
        for writer in 0..3 {
            let (node, tenant, killed, acknowledged, appraisal) =
                (&node, &tenant, &killed, &acknowledged, &appraisal);
            scope.spawn(move || {
                let client = node.client();
                let Ok(mut session) = client.open_session(&tenant.key, &appraisal.appraiser())
                else {
                    return;
                };
                for i in 0.. {
                    let key = format!("w{writer}-{i}");
                    match session.put_secret(&key, SecretBytes::copy_from(key.as_bytes())) {
                        Ok(()) => acknowledged.lock().expect("lock").push(key),
                        // The host is gone: whatever was cut was never acknowledged.
                        Err(_) if killed.load(Ordering::Relaxed) => return,
                        Err(e) => panic!("a write failed before the kill: {e}"),
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while count() < 60 {
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged",
                count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        killed.store(true, Ordering::Relaxed);
        Command::new("kill")
            .args(["-9", &host_pid.to_string()])
            .status()
            .expect("kill");
    });
    let at_kill = count();
    drop(node);
    // The orphaned enclave notices its host is gone and exits.
    wait_for("the orphaned enclave to exit", || {
        !std::path::Path::new(&format!("/proc/{enclave_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{enclave_pid}/stat"))
                .is_ok_and(|stat| stat.contains(") Z "))
    });
    let node = start(&state, &store);
    let client = node.client();
    let mut s = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session after restart");
    let acknowledged = acknowledged.into_inner().expect("lock");
    assert!(acknowledged.len() >= at_kill && at_kill >= 60);
    for key in &acknowledged {
        assert_eq!(s.get_secret(key).expect(key).expose(), key.as_bytes());
    }
    eprintln!(
        "{} writes acknowledged before the host was killed",
        acknowledged.len()
    );
}

fn bad_input(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let tenant = node.tenant();
    let url = &node.url;
    let key = &tenant.key;
    let code = |r: &(u16, String)| -> String {
        serde_json::from_str::<serde_json::Value>(&r.1)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(String::from))
            .unwrap_or_default()
    };
    // Malformed JSON, unknown fields, a bad nonce.
    for body in [
        &b"{not json"[..],
        br#"{"nonce": "00", "extra": 1}"#,
        br#"{"nonce": "zz"}"#,
    ] {
        let r = raw_post(
            url,
            "/v1/sessions",
            "application/json",
            body,
            Some(&signed_header(url, key, "POST", "/v1/sessions", body)),
        );
        assert_eq!((r.0, code(&r).as_str()), (400, "bad_request"), "{}", r.1);
    }
    // Wrong content type.
    let body = br#"{"nonce":"00"}"#;
    let r = raw_post(
        url,
        "/v1/sessions",
        "text/plain",
        body,
        Some(&signed_header(url, key, "POST", "/v1/sessions", body)),
    );
    assert_eq!((r.0, code(&r).as_str()), (415, "unsupported_media_type"));
    // Oversized body.
    let big = vec![b' '; 200 * 1024];
    let r = raw_post(
        url,
        "/v1/sessions",
        "application/json",
        &big,
        Some(&signed_header(url, key, "POST", "/v1/sessions", &big)),
    );
    assert_eq!(r.0, 413);
    // Unknown version and route.
    let r = raw_post(url, "/v2/sessions", "application/json", body, None);
    assert_eq!((r.0, code(&r).as_str()), (404, "not_found"));
    // No signature, a stale signature, no admin token.
    assert_eq!(
        raw_post(url, "/v1/sessions", "application/json", body, None).0,
        401
    );
    let stale = signed_header(url, key, "POST", "/v1/sessions", body).replace("ts=", "ts=1");
    assert_eq!(
        raw_post(url, "/v1/sessions", "application/json", body, Some(&stale)).0,
        401
    );
    assert_eq!(
        raw_post(
            url,
            "/v1/tenants",
            "application/json",
            br#"{"public_key":"AA=="}"#,
            None
        )
        .0,
        401
    );
    // A session message for no session, and garbage for a real one.
    let path = "/v1/sessions/00112233445566778899aabbccddeeff/messages";
    assert_eq!(
        signed_post(url, key, path, "application/octet-stream", b"\x01\x02\x00"),
        404
    );
    // Truncated and garbage frames straight onto the enclave socket.
    for bytes in [
        &b"VTIP\x00\x01\x00\x00\x00\x00\x01\x00"[..],
        b"VTIP",
        b"garbage garbage garbage",
        b"VTIP\x00\x09\x00\x00\x00\x00\x00\x01x",
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(node.state.join("run/enclave.sock"))
            .expect("socket");
        let _ = s.write_all(bytes);
        drop(s);
    }
    // The node still serves, and the enclave was never restarted.
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut s = client
        .open_session(key, &appraisal.appraiser())
        .expect("session");
    s.ping().expect("ping");
    assert_eq!(node.health()["enclave_restarts"], 0);
    let spec: serde_json::Value = reqwest::blocking::get(format!("{url}/openapi.json"))
        .expect("openapi")
        .json()
        .expect("json");
    for route in [
        "/v1/node",
        "/v1/tenants",
        "/v1/peers",
        "/v1/peer",
        "/v1/audit/checkpoint",
        "/v1/keys/wrapping-key",
        "/v1/sessions",
        "/v1/sessions/{id}/messages",
        "/v1/attestation",
        "/v1/audit",
        "/v1/keys",
        "/v1/data/{object}",
        "/v1/tasks",
        "/v1/tasks/{id}/files/{compartment}/{slot}",
        "/v1/import",
        "/v1/partitions",
        "/v1/partitions/{name}",
        "/v1/partitions/{name}/keys/{key_id}/disable",
        "/v1/officers",
        "/v1/quorum-tokens",
        "/v1/sm/seeds",
        "/v1/sm/enrollments",
        "/v1/sm/enrollments/{id}",
        "/v1/sm/enrollments/{id}/activation",
        "/v1/sm/authorizations",
        "/v1/sm/targets/{target}/forget",
        "/v1/sm/state",
        "/v1/workloads/enrollment",
        "/v1/workloads/activation",
        "/v1/workloads/launch",
        "/v1/workloads/storage-key/rotate",
        "/v1/sm/releases",
        "/v1/sm/releases/{id}",
        "/v1/workloads/pending",
        "/v1/workloads/pending/{id}/measurement",
        "/v1/workloads/pending/{id}/release",
        "/kbs/v0/auth",
        "/kbs/v0/attest",
        "/kbs/v0/resource/{repository}/{type}/{tag}",
        "/kbs/v0/resource-policy",
        "/healthz",
        "/metrics",
    ] {
        assert!(
            spec["paths"].get(route).is_some(),
            "{route} missing from the OpenAPI document"
        );
    }
}

/// A loopback proxy that flips one byte of every session-message request or response body.
fn tampering_proxy(upstream: &str, flip_request: bool) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let handle = std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(mut client) = conn else { continue };
            let Some((head, mut body)) = read_http(&mut client) else {
                continue;
            };
            let is_message = head.contains("/messages");
            if is_message && flip_request && !body.is_empty() {
                let i = body.len() - 1;
                body[i] ^= 0x01;
            }
            let head = head.replace("Connection: keep-alive", "Connection: close");
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let _ = server.write_all(head.as_bytes());
            let _ = server.write_all(&body);
            let Some((rhead, mut rbody)) = read_http(&mut server) else {
                continue;
            };
            if is_message && !flip_request && rhead.contains(" 200 ") && !rbody.is_empty() {
                let i = rbody.len() - 1;
                rbody[i] ^= 0x01;
            }
            // One exchange per connection: tell the client, or it may reuse the
            // connection this proxy is about to close.
            let rhead = if rhead.to_ascii_lowercase().contains("\r\nconnection:") {
                rhead
            } else {
                rhead.replacen("\r\n\r\n", "\r\nconnection: close\r\n\r\n", 1)
            };
            let _ = client.write_all(rhead.as_bytes());
            let _ = client.write_all(&rbody);
        }
    });
    (addr, handle)
}

/// Reads one HTTP/1.1 message with a Content-Length body.
fn read_http(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().ok())
        })
        .flatten()
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn tampering(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    {
        let direct = node.client();
        let mut s = direct
            .open_session(&tenant.key, &appraisal.appraiser())
            .expect("session");
        s.put_secret("k", SecretBytes::copy_from(b"right value"))
            .expect("put");
    }
    for flip_request in [true, false] {
        let (proxy, _h) = tampering_proxy(&node.url, flip_request);
        let client = NodeClient::new(&proxy).expect("client");
        let mut s = client
            .open_session(&tenant.key, &appraisal.appraiser())
            .expect("session through the proxy");
        match s.get_secret("k") {
            Err(ClientError::Node { .. }) if flip_request => {}
            Err(ClientError::Channel(_)) if !flip_request => {}
            Ok(v) => panic!("tampered exchange gave a result ({} bytes)", v.len()),
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }
    // The secret is intact and the node serves untampered clients.
    let client = node.client();
    let mut s = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    assert_eq!(s.get_secret("k").expect("get").expose(), b"right value");
}

fn audit(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut s = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    s.put_secret("a", SecretBytes::copy_from(b"1"))
        .expect("put");
    s.get_secret("a").expect("get");
    s.hmac("a", b"x").expect("use");
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let export = dir.path().join("audit.json");
    let anchor = node.state.join("vendor/root.pem");
    let token = node.state.join("admin.token");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_veritee"))
            .args(args)
            .output()
            .expect("run")
    };
    let o = run(&[
        "audit",
        "export",
        "--node",
        &node.url,
        "--admin-token",
        token.to_str().unwrap_or(""),
        "--policy",
        policy.to_str().unwrap_or(""),
        "--trust-anchor",
        anchor.to_str().unwrap_or(""),
        "--out",
        export.to_str().unwrap_or(""),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["audit", "verify", "--file", export.to_str().unwrap_or("")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let out = String::from_utf8_lossy(&o.stdout);
    for action in ["secret.put", "secret.release", "secret.use"] {
        assert!(out.contains(action), "{action} not audited: {out}");
    }
    // Online, against the node itself.
    let o = run(&[
        "audit",
        "verify",
        "--node",
        &node.url,
        "--admin-token",
        token.to_str().unwrap_or(""),
        "--policy",
        policy.to_str().unwrap_or(""),
        "--trust-anchor",
        anchor.to_str().unwrap_or(""),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // A host that edits entry 2 of the log is caught at entry 2.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("read")).expect("json");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let entry = doc["entries"][2]["entry"]
        .as_str()
        .expect("entry")
        .to_string();
    let mut bytes = b64.decode(entry).expect("b64");
    let text = String::from_utf8_lossy(&bytes).to_string();
    let edited = text.replacen("\"ok\"", "\"no\"", 1);
    assert_ne!(text, edited);
    bytes = edited.into_bytes();
    doc["entries"][2]["entry"] = serde_json::Value::String(b64.encode(&bytes));
    std::fs::write(&export, serde_json::to_vec(&doc).expect("json")).expect("write");
    let o = run(&["audit", "verify", "--file", export.to_str().unwrap_or("")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("BROKEN at entry 2"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

both_stores!(
    only_registered_peers_reach_the_enclave_and_a_flood_is_slowed,
    peer_gate
);

/// `/v1/peer` is the one route another node's enclave uses: the host admits only peers
/// the admin registered (by their token's SHA-256) and rate-limits each of them, so no
/// one can fill the enclave's table of handshakes in progress.
fn peer_gate(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on(kind, dir.path()) else {
        return;
    };
    let http = reqwest::blocking::Client::new();
    let relay = |auth: Option<&str>| {
        let mut req = http
            .post(format!("{}/v1/peer", node.url))
            .header("content-type", "application/octet-stream")
            .body(b"not a handshake".to_vec());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send().expect("send")
    };

    // Strangers: no token, another scheme, a token nobody registered.
    let token = hex::encode(veritee_crypto::rand::array::<32>().expect("rand"));
    for auth in [
        None,
        Some(format!("Bearer {token}")),
        Some(format!("VeriteePeer {token}")),
    ] {
        let resp = relay(auth.as_deref());
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
    }

    // Registering is the admin's: a tenant-less caller or a bad body is refused.
    let digest = hex::encode(veritee_crypto::digest::sha256(token.as_bytes()));
    let register = serde_json::json!({ "name": "node-b", "token_sha256": digest }).to_string();
    let (status, _) = raw_post(
        &node.url,
        "/v1/peers",
        "application/json",
        register.as_bytes(),
        None,
    );
    assert_eq!(status, 401);
    let admin = format!("Bearer {}", node.admin_token().trim());
    for (bad, names) in [
        (
            serde_json::json!({ "name": "", "token_sha256": digest }),
            "peer name",
        ),
        (
            serde_json::json!({ "name": "b", "token_sha256": "abc" }),
            "token_sha256",
        ),
        (
            serde_json::json!({ "name": "b", "token_sha256": digest, "extra": 1 }),
            "extra",
        ),
    ] {
        let (status, body) = raw_post(
            &node.url,
            "/v1/peers",
            "application/json",
            bad.to_string().as_bytes(),
            Some(&admin),
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(names), "{body}");
    }
    let (status, body) = raw_post(
        &node.url,
        "/v1/peers",
        "application/json",
        register.as_bytes(),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");

    // The registered peer reaches the enclave, which judges the message itself (this
    // one is no handshake), until it sends faster than its rate.
    let auth = format!("VeriteePeer {token}");
    let first = relay(Some(&auth));
    let status = first.status().as_u16();
    assert!(status != 401 && status != 429, "{status}");

    // A message goes to the enclave as it arrives, behind a frame head that needs its
    // length: none, or one past the limit, is refused before any of it is read; one
    // cut short reaches the enclave as nothing, and the node serves on.
    let head = |fields: &str| {
        format!(
            "POST /v1/peer HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\n\
             content-type: application/octet-stream\r\n{fields}\r\n"
        )
    };
    let too_large = veritee_proto::ipc::MAX_PEER_MESSAGE + 1;
    let (status, body) = raw_http(
        &node.url,
        &head(&format!("content-length: {too_large}\r\n")),
        b"",
    );
    assert_eq!(status, 413, "{body}");
    let (status, body) = raw_http(
        &node.url,
        &head("transfer-encoding: chunked\r\n"),
        b"5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(status, 411, "{body}");
    let (status, body) = raw_http(
        &node.url,
        &head("content-length: 300000\r\n"),
        &[7u8; 100_000],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("body"), "{body}");
    let after = relay(Some(&auth)).status().as_u16();
    assert!(after != 401 && after != 503, "{after}");
    assert_eq!(node.health()["enclave_restarts"], 0);
    let mut limited = None;
    for _ in 0..200 {
        let resp = relay(Some(&auth));
        if resp.status().as_u16() == 429 {
            limited = Some(resp);
            break;
        }
    }
    let limited = limited.expect("a registered peer flooding the route was never slowed");
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!(retry_after >= 1);
    // The limit is that peer's alone: the tenant API is unaffected.
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    node.client()
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("tenants are not limited by a peer's flood");
}

/// Sends `head` and `body` on a new connection to the node at `url`, closes the
/// sending side, and returns the answer's status and text (status 0: no answer).
fn raw_http(url: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut conn = TcpStream::connect(url.trim_start_matches("http://")).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    conn.write_all(head.as_bytes()).expect("head");
    // A node that answers from the head alone (411, 413) may close the connection
    // before the body is written or the sending side is shut (EPIPE, ENOTCONN): what it
    // answered is read all the same.
    let _ = conn.write_all(body);
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A loopback proxy that relays every exchange, replacing the tenant id in the answer
/// to `POST /v1/tenants` with another of the same length.
fn tenant_id_rewriting_proxy(upstream: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut client) = conn else { continue };
            let Some((head, body)) = read_http(&mut client) else {
                continue;
            };
            let registers = head.starts_with("POST /v1/tenants ");
            let head = head.replace("Connection: keep-alive", "Connection: close");
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let _ = server.write_all(head.as_bytes());
            let _ = server.write_all(&body);
            let Some((rhead, mut rbody)) = read_http(&mut server) else {
                continue;
            };
            if registers
                && let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&rbody)
                && let Some(id) = answer["tenant_id"].as_str()
            {
                answer["tenant_id"] = "0".repeat(id.len()).into();
                rbody = serde_json::to_vec(&answer).expect("json");
            }
            let rhead = if rhead.to_ascii_lowercase().contains("\r\nconnection:") {
                rhead
            } else {
                rhead.replacen("\r\n\r\n", "\r\nconnection: close\r\n\r\n", 1)
            };
            let _ = client.write_all(rhead.as_bytes());
            let _ = client.write_all(&rbody);
        }
    });
    addr
}

#[test]
fn registering_a_tenant_survives_an_enclave_restart_and_checks_the_id_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(node) = node_on("embedded", dir.path()) else {
        return;
    };
    let client = node.client();
    let first = TenantKey::generate().expect("key");
    let id = client
        .register_tenant(&node.admin_token(), &first)
        .expect("register");
    assert_eq!(id, first.tenant_id().expect("id"));

    // The client signed for the enclave's first run; its proof for the next tenant is
    // stale once the enclave restarted, and made again.
    kill_enclave_and_wait_for_its_restart(&node);
    // A client made after the restart starts from the audience this process fetched
    // before it (clients of one node share it): its first proof is refused as stale,
    // and it fetches the node's audience again and signs again.
    let (fresh, exchanges) = node.client().recording();
    let second = TenantKey::generate().expect("key");
    let id = fresh
        .register_tenant(&node.admin_token(), &second)
        .expect("register after a restart");
    assert_eq!(id, second.tenant_id().expect("id"));
    let lines: Vec<String> = exchanges
        .lock()
        .expect("exchanges")
        .iter()
        .map(|e| e.request_line.clone())
        .collect();
    assert_eq!(
        lines,
        ["POST /v1/tenants", "GET /v1/node", "POST /v1/tenants"],
        "a stale shared audience is refreshed after one refusal"
    );

    // A host that answers with another tenant id is refused.
    let proxy = NodeClient::new(&tenant_id_rewriting_proxy(&node.url)).expect("client");
    let third = TenantKey::generate().expect("key");
    match proxy.register_tenant(&node.admin_token(), &third) {
        Err(ClientError::Protocol(m)) => assert!(m.contains("registered tenant"), "{m}"),
        other => panic!("another tenant id was accepted: {other:?}"),
    }
}

/// One tenant flooding the node is refused with 429 and Retry-After past its rate;
/// another tenant's requests meanwhile all succeed. The rate is low (5 per second) so
/// that the flood exceeds it on a machine as slow as a loaded CI runner.
#[test]
fn a_tenant_over_its_rate_is_refused_and_the_others_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_with(
        &dir.path().join("node"),
        &dir.path().join("store").display().to_string(),
        &["--tenant-requests-per-second", "5"],
    );
    let (flood, quiet) = (node.tenant(), node.tenant());
    let appraisal = Appraisal::new(&node);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let (url, key) = (node.url.clone(), flood.key.to_pkcs8().expect("pkcs8"));
            let anchors = node.anchors();
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                let key = TenantKey::from_pkcs8(key.expose()).expect("key");
                let client = NodeClient::new(&url).expect("client");
                let verifiers = veritee_verify::Verifiers::default();
                let policy = veritee_policy::AppraisalPolicy::parse(DEV_POLICY).expect("policy");
                let anchors = veritee_attest::TrustAnchors::untyped(anchors);
                let appraiser = veritee_channel::client::Appraiser {
                    verifiers: &verifiers,
                    policy: &policy,
                    trust_anchors: &anchors,
                    collateral: &[],
                    at: time::OffsetDateTime::now_utc(),
                };
                let mut session = loop {
                    match client.open_session(&key, &appraiser) {
                        Ok(s) => break s,
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Err(ClientError::Node { status: 429, .. }) = session.ping() {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // The quiet tenant, within its rate (5 per second, 10 at once), is never refused,
    // however slow the machine.
    std::thread::sleep(Duration::from_millis(500));
    let client = node.client();
    let mut session = client
        .open_session(&quiet.key, &appraisal.appraiser())
        .expect("the quiet tenant's session");
    for _ in 0..8 {
        session.ping().expect("the quiet tenant's request");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The flooding tenant, on a signed route: 429, with when to come back.
    let path = "/v1/sessions";
    let body = br#"{"nonce":"00"}"#;
    let mut limited = None;
    for _ in 0..100 {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}{path}", node.url))
            .header("content-type", "application/json")
            .header(
                "authorization",
                signed_header(&node.url, &flood.key, "POST", path, body),
            )
            .body(body.to_vec())
            .send()
            .expect("send");
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flooder");
    }
    let limited = limited.expect("the flooding tenant was never refused");
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert_eq!(
        retry_after, 1,
        "at 5 per second the next token is under a second away"
    );
    assert!(limited.text().unwrap_or_default().contains("rate_limited"));
    assert!(refused.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// The node's disk fills up: the write that does not fit is refused with a clear
/// error naming the cause, the node keeps serving, and once room is made everything
/// acknowledged before is there, also after a restart.
#[test]
fn a_full_disk_gives_a_clear_error_and_loses_nothing_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = veritee_store::conformance::SmallDisk::mount(dir.path(), "24m") else {
        return;
    };
    let root = disk.path();
    // Room the test gives back once the disk is full.
    let filler = root.join("filler");
    std::fs::write(&filler, vec![0u8; 4 << 20]).expect("filler");
    let store = root.join("store").display().to_string();
    let state = root.join("node");
    let node = start(&state, &store);
    let tenant = node.tenant();
    let appraisal = Appraisal::new(&node);
    let client = node.client();
    let mut session = client
        .open_session(&tenant.key, &appraisal.appraiser())
        .expect("session");
    let value = |i: usize| {
        let mut v = vec![(i % 251) as u8; 256 * 1024];
        v[..8].copy_from_slice(&(i as u64).to_le_bytes());
        v
    };
    let mut acknowledged = 0;
    let refusal = loop {
        assert!(acknowledged < 200, "24 MiB never filled up");
        match session.put_secret(
            &format!("k{acknowledged}"),
            SecretBytes::copy_from(&value(acknowledged)),
        ) {
            Ok(()) => acknowledged += 1,
            Err(e) => break e,
        }
    };
    assert!(acknowledged > 0);
    let text = refusal.to_string();
    assert!(
        text.contains("No space left on device") || text.contains("disk is full"),
        "an unclear refusal: {text}"
    );
    // Room again: the node serves, and every acknowledged write is there.
    std::fs::remove_file(&filler).expect("room");
    let check = |node: &Node| {
        let appraisal = Appraisal::new(node);
        let client = node.client();
        let mut s = client
            .open_session(&tenant.key, &appraisal.appraiser())
            .expect("session with room again");
        for i in 0..acknowledged {
            assert_eq!(
                s.get_secret(&format!("k{i}"))
                    .expect("acknowledged")
                    .expose(),
                &value(i)[..]
            );
        }
        s.put_secret("after", SecretBytes::copy_from(b"room again"))
            .expect("writes again");
    };
    check(&node);
    drop(session);
    drop(node);
    let node = start(&state, &store);
    check(&node);
    drop(node);
}

#[test]
fn one_shot_commands_resume_the_cached_session_and_attest_afresh_when_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("store")));
    let tenant = tenant_file(&node, dir.path());
    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, DEV_POLICY).expect("policy");
    let canary = format!(
        "CANARY-{}",
        hex::encode(veritee_crypto::rand::array::<12>().expect("rand"))
    );
    let value = dir.path().join("value.txt");
    std::fs::write(&value, &canary).expect("value");
    let cache = dir.path().join("cache").join("sessions");
    // `veritee secret VERB` under `policy`, keeping sessions in `cache`.
    let run = |verb: &str, policy: &std::path::Path, cache: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "secret".to_string(),
            verb.to_string(),
            "--node".into(),
            node.url.clone(),
            "--tenant".into(),
            s(&tenant),
            "--policy".into(),
            s(policy),
            "--trust-anchor".into(),
            s(&node.anchor_path()),
            "--session-cache".into(),
            s(cache),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        veritee(&argv)
    };
    let secret = |verb: &str, extra: &[&str]| {
        let o = run(verb, &policy, &cache, extra);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "secret {verb}: {stderr}");
        (String::from_utf8_lossy(&o.stdout).into_owned(), stderr)
    };
    let cached = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default()
    };

    // Session messages the node has answered so far (its request counter).
    let messages = || -> u64 {
        let text = reqwest::blocking::get(format!("{}/metrics", node.url))
            .and_then(|r| r.text())
            .expect("metrics");
        text.lines()
            .filter(|l| {
                l.starts_with("veritee_http_requests_total{route=\"/v1/sessions/{id}/messages\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };

    // The first command attests and keeps the session, as the tenant key is kept: its
    // request and the ticket go in one session message.
    let sent = messages();
    secret("put", &["--name", "pw", "--file", &s(&value)]);
    assert_eq!(messages() - sent, 1, "the ticket took a message of its own");
    let files = cached();
    assert_eq!(files.len(), 1, "{files:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode();
        assert_eq!(mode(&cache) & 0o777, 0o700);
        assert_eq!(mode(&files[0]) & 0o777, 0o600);
    }
    let kept = std::fs::read(&files[0]).expect("cache file");
    assert!(
        !kept.windows(canary.len()).any(|w| w == canary.as_bytes()),
        "the secret's value is in the session cache"
    );

    // A fresh attestation is audited (session.establish) beside the release; a
    // resumed session adds only the release.
    let before = node.audit_len();
    let (fresh, _) = secret("get", &["--name", "pw", "--no-session-cache"]);
    let fresh_entries = node.audit_len() - before;
    let before = node.audit_len();
    let (resumed, _) = secret("get", &["--name", "pw"]);
    let resumed_entries = node.audit_len() - before;
    assert_eq!(
        (fresh.as_str(), resumed.as_str()),
        (canary.as_str(), canary.as_str())
    );
    assert_eq!(
        resumed_entries + 1,
        fresh_entries,
        "a cached session was not resumed"
    );
    assert_eq!(std::fs::read(&files[0]).expect("cache file"), kept);

    // Another policy is another appraisal: its session is attested and kept apart.
    let stricter = dir.path().join("stricter.toml");
    std::fs::write(
        &stricter,
        format!("{DEV_POLICY}max_evidence_age = \"10m\"\n"),
    )
    .expect("policy");
    let o = run("list", &stricter, &cache, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pw\n");
    assert_eq!(cached().len(), 2);

    // A damaged file is removed, and the command attests afresh.
    std::fs::write(&files[0], b"VTSCACH\x01 not a session").expect("damage");
    let (got, stderr) = secret("get", &["--name", "pw"]);
    assert_eq!(got, canary);
    assert!(stderr.contains("cached session removed"), "{stderr}");
    let replaced = std::fs::read(&files[0]).expect("cache file");
    assert_ne!(replaced, kept);

    // A restarted enclave no longer honours the ticket: attested afresh, kept anew.
    kill_enclave_and_wait_for_its_restart(&node);
    let (got, _) = secret("get", &["--name", "pw"]);
    assert_eq!(got, canary);
    assert_ne!(std::fs::read(&files[0]).expect("cache file"), replaced);

    // A directory others may read is not used; the command still runs.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let before = node.audit_len();
    let (got, stderr) = secret("get", &["--name", "pw"]);
    assert_eq!(got, canary);
    assert_eq!(node.audit_len() - before, fresh_entries, "{stderr}");
    assert!(
        stderr.contains("may be read or written by others"),
        "{stderr}"
    );

    // A request the enclave refuses leaves the session kept all the same.
    let elsewhere = dir.path().join("elsewhere");
    let o = run("get", &policy, &elsewhere, &["--name", "no-such-secret"]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read_dir(&elsewhere).expect("kept").count(), 1);
}
