//! Encrypted data exchange end to end: `veritee data put|get` through a node under a
//! deployed key; a host that alters, truncates, reorders or splices stored chunks is
//! caught; an upload cannot be fed chunks of another file or out of order; nothing
//! already stored is lost; the plaintext never reaches the host.

#[macro_use]
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use veritee_store::Store;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A node's client side: tenant, policy, anchor, and a deployed key `k`.
struct Owner {
    dir: PathBuf,
    url: String,
}

impl Owner {
    fn new(node: &Node, dir: &Path) -> Self {
        let dir = dir.join("owner");
        std::fs::create_dir_all(&dir).expect("dir");
        let tenant = tenant_file(node, &dir);
        std::fs::rename(tenant, dir.join("tenant.key")).expect("tenant");
        std::fs::write(dir.join("dev.toml"), DEV_POLICY).expect("policy");
        let anchor = node.anchor_path();
        std::fs::copy(anchor, dir.join("anchor.pem")).expect("anchor");
        let owner = Self {
            dir,
            url: node.url.clone(),
        };
        let o = owner.run(&[
            "keys",
            "deploy",
            "--node",
            &owner.url,
            "--tenant",
            &owner.path("tenant.key"),
            "--policy",
            &owner.path("dev.toml"),
            "--trust-anchor",
            &owner.path("anchor.pem"),
            "--generate",
            "--id",
            "k",
            "--key-out",
            &owner.path("k.key"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        owner
    }

    fn path(&self, name: &str) -> String {
        s(&self.dir.join(name))
    }

    fn run(&self, args: &[&str]) -> Output {
        veritee(args)
    }

    /// `veritee data VERB` under key `k`, with `rest` after the common options.
    fn data(&self, verb: &str, rest: &[&str]) -> Output {
        let (tenant, key) = (self.path("tenant.key"), self.path("k.key"));
        let mut args = vec![
            "data",
            verb,
            "--node",
            &self.url,
            "--tenant",
            &tenant,
            "--key",
            "k",
            "--key-file",
            &key,
        ];
        args.extend(rest);
        veritee(&args)
    }

    fn put(&self, object: &str, file: &Path) -> Output {
        self.data("put", &["--as", object, &s(file)])
    }

    fn get(&self, object: &str, out: &Path) -> Output {
        self.data("get", &[object, "--out", &s(out)])
    }

    fn key(&self) -> veritee_crypto::Confidential<[u8; 32]> {
        let hex = std::fs::read_to_string(self.dir.join("k.key")).expect("key");
        let mut key = veritee_crypto::Confidential::new([0u8; 32]);
        hex::decode_to_slice(hex.trim(), key.expose_mut()).expect("hex key");
        key
    }
}

/// `len` bytes of text holding `marker` at the start of every 64 KiB.
fn sample(len: usize, marker: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0u64;
    while out.len() < len {
        if out.len() % (64 * 1024) < 80 {
            out.extend_from_slice(marker.as_bytes());
        }
        out.extend_from_slice(format!(" line {line} of the sample\n").as_bytes());
        line += 1;
    }
    out.truncate(len);
    out
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

fn open_store(location: &str) -> Arc<dyn Store> {
    block_on(veritee_store::open(location)).expect("store")
}

/// The store keys of an object's chunks, in order.
fn chunk_keys(store: &dyn Store, ns: &str, object: &str) -> Vec<String> {
    let mut keys =
        block_on(store.list(ns, &format!("chunk/{object}/"), None, 10_000)).expect("list");
    keys.sort();
    keys
}

both_stores!(
    files_round_trip_and_a_host_altering_stored_chunks_is_caught,
    round_trip_and_tampering
);

fn round_trip_and_tampering(kind: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(store) = store_location(kind, dir.path()) else {
        return;
    };
    let state = dir.path().join("node");
    let mut node = start(&state, &store);
    let mut owner = Owner::new(&node, dir.path());
    let canary = format!(
        "CANARY-{}",
        hex::encode(veritee_crypto::rand::array::<10>().expect("rand"))
    );
    // Four chunks of 1 MiB, the last one partial; and a few more objects to damage.
    let big = sample(3 * 1024 * 1024 + 12_345, &canary);
    let file = dir.path().join("big.txt");
    std::fs::write(&file, &big).expect("write");
    let objects = [
        "intact",
        "flipped",
        "truncated",
        "reordered",
        "spliced",
        "donor",
    ];
    for object in objects {
        let o = owner.put(object, &file);
        assert!(o.status.success(), "{object}: {}", text(&o));
    }
    let back = dir.path().join("back.txt");
    let o = owner.get("intact", &back);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&back).expect("back") == big, "round trip");

    // The host never saw the plaintext: its memory, its logs, its store.
    let tenant_id = veritee_channel::client::TenantKey::from_pkcs8(
        &veritee_x509::pem::blocks(&std::fs::read(owner.dir.join("tenant.key")).expect("t"))
            .expect("pem")
            .remove(0)
            .1,
    )
    .expect("tenant")
    .tenant_id()
    .expect("id");
    let memory = process_memory(node.child.id());
    assert!(contains(&memory, tenant_id.as_bytes()), "the scan works");
    assert!(
        !contains(&memory, canary.as_bytes()),
        "canary in host memory"
    );
    let log = std::fs::read(&node.log).expect("log");
    assert!(!contains(&log, canary.as_bytes()), "canary in the logs");

    // Stop the node and damage what the host stores.
    let _ = node.child.kill();
    let _ = node.child.wait();
    let db = open_store(&store);
    let ns = format!("data/{tenant_id}");
    let mut stored = Vec::new();
    for object in objects {
        for key in chunk_keys(db.as_ref(), &ns, object) {
            stored.extend(block_on(db.get(&ns, &key)).expect("get").expect("chunk"));
        }
    }
    assert!(stored.len() > 6 * big.len(), "every chunk is stored");
    assert!(!contains(&stored, canary.as_bytes()), "canary in the store");

    let get = |object: &str, key: &str| block_on(db.get(&ns, key)).expect("get").expect(object);
    let put = |key: &str, value: &[u8]| block_on(db.put(&ns, key, value)).expect("put");
    let flipped = chunk_keys(db.as_ref(), &ns, "flipped");
    let mut chunk = get("flipped", &flipped[1]);
    chunk[100] ^= 0x20;
    put(&flipped[1], &chunk);
    let truncated = chunk_keys(db.as_ref(), &ns, "truncated");
    assert_eq!(truncated.len(), 4);
    block_on(db.delete(&ns, &truncated[3])).expect("delete");
    let reordered = chunk_keys(db.as_ref(), &ns, "reordered");
    let (first, second) = (get("r", &reordered[0]), get("r", &reordered[1]));
    put(&reordered[0], &second);
    put(&reordered[1], &first);
    let spliced = chunk_keys(db.as_ref(), &ns, "spliced");
    let donor = chunk_keys(db.as_ref(), &ns, "donor");
    put(&spliced[2], &get("donor", &donor[2]));
    drop(db);
    let node = start(&state, &store);
    owner.url = node.url.clone();

    for (object, reason) in [
        ("flipped", "chunk 1"),
        ("truncated", "chunk 3 of truncated is missing"),
        ("reordered", "chunk 0"),
        ("spliced", "chunk 2"),
    ] {
        let out = dir.path().join(format!("{object}.out"));
        let o = owner.get(object, &out);
        assert!(!o.status.success(), "{object} was served");
        assert!(text(&o).contains(reason), "{object}: {}", text(&o));
        assert!(!out.exists(), "{object}: output created from a bad object");
    }
    // Nothing else was lost, and the node keeps serving.
    let again = dir.path().join("again.txt");
    let o = owner.get("intact", &again);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&again).expect("again") == big);
    assert_eq!(node.health()["status"], "ok");
}

#[test]
fn an_upload_refuses_chunks_of_another_file_or_out_of_order_and_keeps_the_old_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("node/store")));
    let owner = Owner::new(&node, dir.path());
    let v1 = sample(10_000, "version one");
    let file = dir.path().join("v1.txt");
    std::fs::write(&file, &v1).expect("write");
    let o = owner.put("report", &file);
    assert!(o.status.success(), "{}", text(&o));

    let tenant = load_tenant(&owner.dir.join("tenant.key"));
    let key = owner.key();
    let stream_key = veritee_stream::StreamKey::new(&key);
    let size = veritee_client::DATA_CHUNK_SIZE;
    let http = reqwest::blocking::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Vec<u8>| -> (u16, String) {
        let auth = signed_header(&node.url, &tenant, method.as_str(), path, &body);
        let resp = http
            .request(method, format!("{}{path}", node.url))
            .header("content-type", "application/octet-stream")
            .header("authorization", auth)
            .body(body)
            .send()
            .expect("send");
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    };
    let plain = vec![7u8; size as usize];
    // Begins an upload of `report` under a fresh stream; returns the sealer and the path
    // of chunk `i` (claimed final or not).
    // Version 1 is stored; an upload names version 2 of `report` in its context.
    let context = veritee_channel::data::object_context("report", 2);
    let begin = || {
        let sealer = veritee_stream::ChunkSealer::with_context(&stream_key, "k", &context, size)
            .expect("sealer");
        let (status, body) = send(
            reqwest::Method::POST,
            "/v1/data/report/uploads",
            sealer.header().to_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let upload = serde_json::from_str::<serde_json::Value>(&body).expect("json")["upload_id"]
            .as_str()
            .expect("upload id")
            .to_string();
        let path = move |i: u64, last: bool| {
            format!("/v1/data/report/uploads/{upload}/chunks/{i}?last={last}")
        };
        (sealer, path)
    };
    let refused = |(status, body): (u16, String), what: &str| {
        assert_eq!(status, 400, "{what}: {body}");
        let message =
            serde_json::from_str::<serde_json::Value>(&body).expect("json")["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        assert!(!message.is_empty(), "{what}: no reason given");
        message
    };

    // A chunk of another file (same key, another stream): refused, and the upload with it.
    let (_, path) = begin();
    let mut other = veritee_stream::ChunkSealer::with_context(&stream_key, "k", &context, size)
        .expect("sealer");
    let foreign = other.seal(&plain, false).expect("seal");
    refused(
        send(reqwest::Method::PUT, &path(0, false), foreign),
        "foreign chunk",
    );
    let (status, body) = send(reqwest::Method::PUT, &path(0, false), vec![0u8; 16]);
    assert_eq!(status, 404, "a refused upload is dropped: {body}");

    // The second chunk offered first: refused.
    let (mut sealer, path) = begin();
    let _first = sealer.seal(&plain, false).expect("seal");
    let second = sealer.seal(&plain, false).expect("seal");
    refused(
        send(reqwest::Method::PUT, &path(0, false), second),
        "out of order",
    );

    // A non-final chunk claimed final (truncating the file): refused.
    let (mut sealer, path) = begin();
    let first = sealer.seal(&plain, false).expect("seal");
    let (status, body) = send(reqwest::Method::PUT, &path(0, false), first);
    assert_eq!(status, 200, "{body}");
    let second = sealer.seal(&plain, false).expect("seal");
    refused(
        send(reqwest::Method::PUT, &path(1, true), second),
        "claimed final",
    );

    // A stream bound to another object, or to a version not newer than the stored
    // one: refused before any chunk.
    for (context, status, reason) in [
        (
            veritee_channel::data::object_context("other", 9),
            400,
            "not bound to object report",
        ),
        (
            veritee_channel::data::object_context("report", 1),
            409,
            "must be newer",
        ),
        (Vec::new(), 400, "not bound to object report"),
    ] {
        let sealer = veritee_stream::ChunkSealer::with_context(&stream_key, "k", &context, size)
            .expect("sealer");
        let (got, body) = send(
            reqwest::Method::POST,
            "/v1/data/report/uploads",
            sealer.header().to_bytes(),
        );
        assert_eq!(got, status, "{body}");
        assert!(body.contains(reason), "{body}");
    }

    // Garbage, an empty body and an oversized chunk: refused with a reason.
    for (what, body) in [
        ("garbage", vec![1u8; 10]),
        ("empty", Vec::new()),
        ("oversized", vec![0u8; size as usize + 1024]),
    ] {
        let (_, path) = begin();
        let (status, answer) = send(reqwest::Method::PUT, &path(0, false), body);
        assert!(status == 400 || status == 413, "{what}: {status} {answer}");
    }

    // The abandoned upload never replaced the stored version.
    let out = dir.path().join("report.out");
    let o = owner.get("report", &out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&out).expect("out") == v1);
    assert_eq!(node.health()["status"], "ok");
}

/// A host in front of `upstream` that relays every request, and answers
/// `GET /v1/data/{object}?nonce=...` with a response it recorded earlier when told to:
/// `substitute[object] = recorded body`. Every such response it relays is recorded in
/// `recorded[object]` (the latest one). While `swallow_last` is set, it answers an
/// upload's final chunk `{"complete":true}` itself, without relaying it.
struct SubstitutingHost {
    url: String,
    recorded: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    substitute: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    swallow_last: Arc<std::sync::atomic::AtomicBool>,
}

fn substituting_host(upstream: &str) -> SubstitutingHost {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, Uri};
    use std::sync::atomic::{AtomicBool, Ordering};
    type Shared = (
        String,
        Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
        Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
        Arc<AtomicBool>,
        reqwest::Client,
    );
    async fn relay(
        State((upstream, recorded, substitute, swallow_last, http)): State<Shared>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (axum::http::StatusCode, Vec<u8>) {
        let path = uri
            .path_and_query()
            .map_or(uri.path(), |p| p.as_str())
            .to_string();
        let object = (method == Method::GET)
            .then(|| uri.path().strip_prefix("/v1/data/"))
            .flatten()
            .filter(|o| !o.contains('/') && uri.query().is_some_and(|q| q.starts_with("nonce=")))
            .map(str::to_string);
        if let Some(object) = &object
            && let Some(body) = substitute.lock().expect("lock").get(object).cloned()
        {
            return (axum::http::StatusCode::OK, body);
        }
        if method == Method::PUT
            && uri.path().contains("/uploads/")
            && uri.query() == Some("last=true")
            && swallow_last.load(Ordering::SeqCst)
        {
            return (axum::http::StatusCode::OK, br#"{"complete":true}"#.to_vec());
        }
        let mut req = http
            .request(method, format!("{upstream}{path}"))
            .body(body.to_vec());
        for name in ["authorization", "content-type"] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v.as_bytes());
            }
        }
        let resp = req.send().await.expect("upstream");
        let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).expect("status");
        let bytes = resp.bytes().await.expect("body").to_vec();
        if let Some(object) = object {
            recorded.lock().expect("lock").insert(object, bytes.clone());
        }
        (status, bytes)
    }
    let recorded = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let substitute = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let swallow_last = Arc::new(AtomicBool::new(false));
    let state: Shared = (
        upstream.to_string(),
        Arc::clone(&recorded),
        Arc::clone(&substitute),
        Arc::clone(&swallow_last),
        reqwest::Client::new(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().fallback(relay).with_state(state);
            let _ = axum::serve(listener, app).await;
        });
    });
    SubstitutingHost {
        url,
        recorded,
        substitute,
        swallow_last,
    }
}

#[test]
fn another_object_or_an_older_version_served_in_place_of_the_current_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("node/store")));
    let mut owner = Owner::new(&node, dir.path());
    let host = substituting_host(&node.url);
    owner.url = host.url.clone();
    let write = |name: &str, marker: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, sample(5000, marker)).expect("write");
        path
    };
    let (a1, a2, b) = (
        write("a1", "A ONE"),
        write("a2", "A TWO"),
        write("b", "BEE"),
    );
    for (object, file) in [("a", &a1), ("b", &b)] {
        let o = owner.put(object, file);
        assert!(o.status.success(), "{}", text(&o));
    }
    // The host records how the node answers opening a (version 1) and b.
    let out = dir.path().join("out");
    for object in ["a", "b"] {
        let _ = std::fs::remove_file(&out);
        let o = owner.get(object, &out);
        assert!(o.status.success(), "{}", text(&o));
    }
    // Before a2 is stored: its upload ends by opening a again, at version 2.
    let recorded = host.recorded.lock().expect("lock").clone();
    let o = owner.put("a", &a2);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version 2"), "{}", text(&o));

    // Asked for a, the host answers with b's state; then with a's old version 1.
    for (what, answer) in [
        ("another object", &recorded["b"]),
        ("an older version", &recorded["a"]),
    ] {
        host.substitute
            .lock()
            .expect("lock")
            .insert("a".into(), answer.clone());
        let _ = std::fs::remove_file(&out);
        let o = owner.get("a", &out);
        assert!(!o.status.success(), "{what} was accepted");
        assert!(text(&o).contains("does not check"), "{what}: {}", text(&o));
        assert!(!out.exists(), "{what}: an output was written");
    }
    // Relayed honestly, the current version comes back.
    host.substitute.lock().expect("lock").clear();
    let _ = std::fs::remove_file(&out);
    let o = owner.get("a", &out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version 2"), "{}", text(&o));
    assert_eq!(std::fs::read(&out).expect("out"), sample(5000, "A TWO"));
}

#[test]
fn an_object_read_with_the_wrong_key_is_reported_as_such_not_as_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("node/store")));
    let owner = Owner::new(&node, dir.path());
    let file = dir.path().join("report.txt");
    std::fs::write(&file, sample(5000, "REPORT")).expect("write");
    let o = owner.put("report", &file);
    assert!(o.status.success(), "{}", text(&o));

    // The right key name, the wrong key bytes (a mistyped --key-file).
    let wrong = owner.path("wrong.key");
    std::fs::write(&wrong, hex::encode([0x5au8; 32])).expect("write");
    let out = dir.path().join("out");
    let o = veritee(&[
        "data",
        "get",
        "--node",
        &owner.url,
        "--tenant",
        &owner.path("tenant.key"),
        "--key",
        "k",
        "--key-file",
        &wrong,
        "report",
        "--out",
        &s(&out),
    ]);
    assert!(!o.status.success(), "read under the wrong key");
    let said = text(&o);
    assert!(said.contains("not stored under this key"), "{said}");
    assert!(said.contains("\"k\""), "the key the object names: {said}");
    assert!(
        !said.contains("altered"),
        "a wrong key is no attack: {said}"
    );
    assert!(!out.exists(), "an output was written");

    // Under the right key it still reads back.
    let o = owner.get("report", &out);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&out).expect("out"), sample(5000, "REPORT"));
}

#[test]
fn a_put_stops_when_the_answer_about_the_current_version_does_not_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("node/store")));
    let mut owner = Owner::new(&node, dir.path());
    let host = substituting_host(&node.url);
    owner.url = host.url.clone();
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    std::fs::write(&v1, sample(5000, "ONE")).expect("write");
    std::fs::write(&v2, sample(5000, "TWO")).expect("write");
    let o = owner.put("a", &v1);
    assert!(o.status.success(), "{}", text(&o));

    // The host alters the enclave's vouch in its answer about a's current version.
    let recorded = host.recorded.lock().expect("lock")["a"].clone();
    let mut answer: serde_json::Value = serde_json::from_slice(&recorded).expect("json");
    let vouch = answer["vouch"].as_str().expect("vouch").to_string();
    let flipped = if vouch.starts_with('0') { "1" } else { "0" };
    answer["vouch"] = format!("{flipped}{}", &vouch[1..]).into();
    host.substitute
        .lock()
        .expect("lock")
        .insert("a".into(), serde_json::to_vec(&answer).expect("json"));
    let o = owner.put("a", &v2);
    assert!(!o.status.success(), "the upload went on: {}", text(&o));
    assert!(text(&o).contains("does not check"), "{}", text(&o));

    // Nothing was replaced.
    host.substitute.lock().expect("lock").clear();
    let out = dir.path().join("out");
    let o = owner.get("a", &out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version 1"), "{}", text(&o));
    assert_eq!(std::fs::read(&out).expect("out"), sample(5000, "ONE"));
}

#[test]
fn a_put_whose_final_chunk_the_host_swallowed_is_not_reported_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir.path().join("node"), &s(&dir.path().join("node/store")));
    let mut owner = Owner::new(&node, dir.path());
    let host = substituting_host(&node.url);
    owner.url = host.url.clone();
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    std::fs::write(&v1, sample(5000, "ONE")).expect("write");
    std::fs::write(&v2, sample(5000, "TWO")).expect("write");

    // A new object, and a new version of a stored one: the host answers the final
    // chunk itself, so the enclave never stores either.
    host.swallow_last
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let o = owner.put("a", &v1);
    assert!(!o.status.success(), "a new object: {}", text(&o));
    assert!(text(&o).contains("did not confirm"), "{}", text(&o));
    host.swallow_last
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let o = owner.put("a", &v1);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version 1"), "{}", text(&o));
    host.swallow_last
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let o = owner.put("a", &v2);
    assert!(!o.status.success(), "a new version: {}", text(&o));
    assert!(text(&o).contains("did not confirm"), "{}", text(&o));
    host.swallow_last
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // The stored version is still the first one.
    let out = dir.path().join("out");
    let o = owner.get("a", &out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version 1"), "{}", text(&o));
    assert_eq!(std::fs::read(&out).expect("out"), sample(5000, "ONE"));
}
