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
        let auth = signed_header(&tenant, method.as_str(), path, &body);
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
    let begin = || {
        let sealer = veritee_stream::ChunkSealer::new(&stream_key, "k", size).expect("sealer");
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
    let mut other = veritee_stream::ChunkSealer::new(&stream_key, "k", size).expect("sealer");
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
