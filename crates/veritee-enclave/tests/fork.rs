//! Secure fork between two enclaves through their hosts: the child runs on from the
//! parent's exact state, the hosts carry only ciphertext, a child of other code gets
//! nothing, a damaged or replayed transfer fails cleanly and leaves the parent as it
//! was, and parent and child diverge afterwards.

mod common;

use std::sync::Arc;

use common::*;
use veritee_channel::apps::{AppAnswer, AppInfo, AppRequest};
use veritee_channel::client::TenantKey;
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_enclave::EnclaveService;

const CODE: &[u8] = b"the node enclave, version 1";
const OTHER_CODE: &[u8] = b"the node enclave, patched differently";
const COUNTER: &str = include_str!("../../../examples/apps/counter.wat");
const CANARY: &[u8] = b"canary-forked-note-27182818";

struct Node {
    url: String,
    service: Arc<EnclaveService>,
    host: MemoryHost,
    session: Option<Session>,
}

impl Node {
    fn new(world: &World, machine: &str, code: &[u8], url: &str, tenant: &TenantKey) -> Node {
        Self::with(world, machine, code, url, tenant, |s| s)
    }

    /// [`Node::new`], its enclave configured by `configure`.
    fn with(
        world: &World,
        machine: &str,
        code: &[u8],
        url: &str,
        tenant: &TenantKey,
        configure: impl FnOnce(EnclaveService) -> EnclaveService,
    ) -> Node {
        let mut node = Node {
            url: url.into(),
            service: Arc::new(world.enclave_with(machine, code, configure)),
            host: MemoryHost::default(),
            session: None,
        };
        register(&node.service, &mut node.host, tenant);
        node.session = Some(open_session(world, &node.service, &mut node.host, tenant));
        node
    }

    fn app(&mut self, request: AppRequest) -> Result<AppAnswer, String> {
        let session = self.session.as_mut().expect("session");
        match session.call(&self.service, &mut self.host, &Request::App(request)) {
            Response::App(answer) => Ok(answer),
            Response::Error { code, message } => Err(format!("{code}: {message}")),
            other => panic!("{other:?}"),
        }
    }

    fn call(&mut self, app: &str, export: &str, input: &[u8]) -> Vec<u8> {
        match self.app(AppRequest::Call {
            name: app.into(),
            export: export.into(),
            input: SecretBytes::copy_from(input),
        }) {
            Ok(AppAnswer::Called {
                exit_code: 0,
                output,
                ..
            }) => output.expose().clone(),
            other => panic!("{other:?}"),
        }
    }

    fn count(&mut self, app: &str) -> u64 {
        u64::from_le_bytes(self.call(app, "count", b"").try_into().expect("8 bytes"))
    }

    fn list(&mut self) -> Vec<AppInfo> {
        match self.app(AppRequest::List) {
            Ok(AppAnswer::Apps(apps)) => apps,
            other => panic!("{other:?}"),
        }
    }

    fn fork(&mut self, app: &str, to: &Node, child: &str) -> Result<AppAnswer, String> {
        self.app(AppRequest::Fork {
            name: app.into(),
            peer: to.url.clone(),
            child: child.into(),
        })
    }
}

/// Lets `from` reach `to` as a peer.
fn peer(from: &Node, to: &Node) {
    from.host
        .peers
        .lock()
        .expect("peers")
        .insert(to.url.clone(), (Arc::clone(&to.service), to.host.clone()));
}

/// A tenant, a parent node running the counter (at 3, with the canary as its note)
/// and a child node of the same code.
fn setup() -> (World, TenantKey, Node, Node) {
    let world = World::new(&["m1", "m2"]);
    let tenant = TenantKey::generate().expect("tenant");
    let mut parent = Node::new(&world, "m1", CODE, "https://parent", &tenant);
    let child = Node::new(&world, "m2", CODE, "https://child", &tenant);
    peer(&parent, &child);
    parent.run("counter", false);
    for _ in 0..3 {
        parent.count("counter");
    }
    parent.call("counter", "remember", CANARY);
    (world, tenant, parent, child)
}

#[test]
fn the_child_runs_on_from_the_parents_state_and_both_diverge() {
    let (_world, _tenant, mut parent, mut child) = setup();
    let forked = parent
        .fork("counter", &child, "counter-child")
        .expect("fork");
    let AppAnswer::Forked {
        digest,
        pages,
        resealed,
    } = forked
    else {
        panic!("{forked:?}");
    };
    assert_eq!((pages, resealed), (2, 2));

    let listed = child.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "counter-child");
    assert_eq!(listed[0].forked_from.as_deref(), Some(digest.as_str()));
    assert_eq!(listed[0].calls, 4);
    assert_eq!(child.call("counter-child", "recall", b""), CANARY);
    assert_eq!(
        u64::from_le_bytes(
            child
                .call("counter-child", "calls", b"")
                .try_into()
                .unwrap()
        ),
        3,
        "the internal global came along"
    );
    // Each side learnt its role through `forked`.
    assert_eq!(child.call("counter-child", "role", b""), 2i32.to_le_bytes());
    assert_eq!(parent.call("counter", "role", b""), 1i32.to_le_bytes());
    assert_eq!(child.count("counter-child"), 4);
    assert_eq!(parent.count("counter"), 4);
    assert_eq!(child.count("counter-child"), 5);
    parent.call("counter", "remember", b"the parent's later note");
    assert_eq!(child.call("counter-child", "recall", b""), CANARY);
    assert_eq!(parent.list()[0].forks, 1);

    // The hosts carried only ciphertext; neither stored anything of it.
    let mut seen = parent.host.wire.lock().unwrap().concat();
    seen.extend(everything(&parent.host));
    seen.extend(everything(&child.host));
    for needle in [CANARY.to_vec(), hex::encode(CANARY).into_bytes()] {
        assert!(!contains(&seen, &needle), "the canary crossed a host");
    }
    let audit = audit_bodies(&parent.host);
    assert!(
        audit.iter().any(|e| e["action"] == "app.fork"),
        "the fork is audited"
    );
    assert!(
        audit_bodies(&child.host)
            .iter()
            .any(|e| e["action"] == "app.fork.child")
    );

    // A second fork from the parent after it went on: the child sees the new state.
    let second = parent
        .fork("counter", &child, "second")
        .expect("fork again");
    // The counter's page and the note's changed since the first fork.
    assert!(matches!(second, AppAnswer::Forked { resealed: 2, .. }));
    assert_eq!(
        child.call("second", "recall", b""),
        b"the parent's later note"
    );
    assert_eq!(child.count("second"), 5);
}

/// The exit code and output of a call.
fn called(node: &mut Node, app: &str, export: &str, input: &[u8]) -> (i32, Vec<u8>) {
    match node.app(AppRequest::Call {
        name: app.into(),
        export: export.into(),
        input: SecretBytes::copy_from(input),
    }) {
        Ok(AppAnswer::Called {
            exit_code, output, ..
        }) => (exit_code, output.expose().clone()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parent_and_child_talk_through_their_link_and_nobody_else_can() {
    let (_world, _tenant, mut parent, mut child) = setup();
    // No fork yet: no link.
    assert_eq!(called(&mut parent, "counter", "seal", b"early").0, -1);
    parent
        .fork("counter", &child, "counter-child")
        .expect("fork");
    parent
        .fork("counter", &child, "second")
        .expect("fork again");

    let note = b"canary-link-message-16180339";
    let to_child = parent.call("counter", "seal", note);
    assert!(!contains(&to_child, note));
    assert_eq!(child.call("counter-child", "open", &to_child), note);
    let to_parent = child.call("counter-child", "seal", b"and back");
    assert_eq!(parent.call("counter", "open", &to_parent), b"and back");

    // Link 0 of the second child is its own: the first child's messages do not open
    // there, nor does a message open on the side that sealed it, nor altered.
    assert_eq!(called(&mut child, "second", "open", &to_child).0, -4);
    assert_eq!(called(&mut parent, "counter", "open", &to_child).0, -4);
    assert_eq!(
        called(&mut child, "counter-child", "open", &to_parent).0,
        -4
    );
    for at in [0, 12, to_child.len() - 1] {
        let mut altered = to_child.clone();
        altered[at] ^= 1;
        assert_eq!(called(&mut child, "counter-child", "open", &altered).0, -4);
    }
    assert_eq!(
        called(&mut child, "counter-child", "open", &to_child[..20]).0,
        -4
    );
    // An application never forked has no link.
    parent.run("alone", false);
    assert_eq!(called(&mut parent, "alone", "open", &to_child).0, -1);
    // The hosts carried only the sealed messages.
    let mut seen = parent.host.wire.lock().unwrap().concat();
    seen.extend(everything(&parent.host));
    seen.extend(everything(&child.host));
    assert!(!contains(&seen, note));
}

#[test]
fn a_child_running_other_code_gets_nothing() {
    let world = World::new(&["m1", "m2"]);
    let tenant = TenantKey::generate().expect("tenant");
    let mut parent = Node::new(&world, "m1", CODE, "https://parent", &tenant);
    let mut other = Node::new(&world, "m2", OTHER_CODE, "https://other", &tenant);
    peer(&parent, &other);
    parent
        .app(AppRequest::Run {
            name: "counter".into(),
            module: SecretBytes::copy_from(COUNTER.as_bytes()),
            memory_mib: None,
            fork_peer: None,
            durable: false,
            keys: Vec::new(),
        })
        .expect("run");
    parent.call("counter", "remember", CANARY);
    let refused = parent.fork("counter", &other, "stolen").unwrap_err();
    assert!(refused.contains("measurement differs"), "{refused}");
    assert!(
        audit_bodies(&parent.host)
            .iter()
            .any(|e| e["action"] == "app.fork"
                && e["outcome"]
                    .as_str()
                    .is_some_and(|o| o.contains("not done"))),
        "the refused fork is audited"
    );
    assert!(other.list().is_empty());
    assert!(!contains(
        &parent.host.wire.lock().unwrap().concat(),
        CANARY
    ));
    // Not a peer at all.
    let err = parent
        .app(AppRequest::Fork {
            name: "counter".into(),
            peer: "https://nowhere".into(),
            child: "x".into(),
        })
        .unwrap_err();
    assert!(err.contains("not one of this node's peers"), "{err}");
}

/// What a test's host does to the n-th peer message of a fork.
type Tamper = Box<dyn FnMut(usize, Vec<u8>) -> Option<Vec<u8>> + Send>;

/// Sets what the parent's host does to each peer message, counting from 0.
fn tap(node: &Node, mut f: impl FnMut(usize, Vec<u8>) -> Option<Vec<u8>> + Send + 'static) {
    let mut n = 0;
    *node.host.peer_tap.lock().unwrap() = Some(Box::new(move |_, m| {
        let out = f(n, m);
        n += 1;
        out
    }));
}

fn untap(node: &Node) {
    *node.host.peer_tap.lock().unwrap() = None;
}

#[test]
fn a_damaged_replayed_or_cut_transfer_fails_and_the_parent_runs_on() {
    let (_world, _tenant, mut parent, mut child) = setup();
    // Messages: 0 hello, 1 finish, 2 pages, 3 done.
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "a flipped byte in the pages",
            Box::new(|n, mut m| {
                if n == 2 {
                    let at = m.len() - 100;
                    m[at] ^= 1;
                }
                Some(m)
            }),
        ),
        (
            "the pages cut short",
            Box::new(|n, mut m| {
                if n == 2 {
                    m.truncate(m.len() - 5000);
                }
                Some(m)
            }),
        ),
        (
            "the pages lost",
            Box::new(|n, m| if n == 2 { None } else { Some(m) }),
        ),
        (
            "a flipped byte in the finish",
            Box::new(|n, mut m| {
                if n == 1 {
                    let at = m.len() - 10;
                    m[at] ^= 1;
                }
                Some(m)
            }),
        ),
    ];
    for (expected, (what, f)) in (4..).zip(cases) {
        tap(&parent, f);
        let refused = parent.fork("counter", &child, "child");
        untap(&parent);
        assert!(refused.is_err(), "{what}: {refused:?}");
        assert!(child.list().is_empty(), "{what}: the child holds nothing");
        assert_eq!(
            parent.count("counter"),
            expected,
            "{what}: the parent runs on"
        );
    }

    // A replay: the pages of an earlier fork sent in a later one, under the later
    // fork's id. They were sealed in the earlier fork's peer session.
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = Arc::clone(&recorded);
    tap(&parent, move |_, m| {
        keep.lock().unwrap().push(m.clone());
        Some(m)
    });
    parent.fork("counter", &child, "first").expect("fork");
    let earlier_pages = recorded.lock().unwrap()[2].clone();
    parent.count("counter");
    tap(&parent, move |n, m| {
        if n == 2 {
            Some(with_fork_id_of(&earlier_pages, &m))
        } else {
            Some(m)
        }
    });
    let refused = parent.fork("counter", &child, "second").unwrap_err();
    assert!(refused.contains("a step does not open"), "{refused}");

    // A step the host makes up (an abort, say) is refused the same way.
    tap(&parent, |n, m| {
        if n == 2 {
            Some(with_sealed(&m, vec![2; 64]))
        } else {
            Some(m)
        }
    });
    let refused = parent.fork("counter", &child, "second").unwrap_err();
    assert!(refused.contains("a step does not open"), "{refused}");
    untap(&parent);
    let names: Vec<String> = child.list().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["first"]);
    // And the same fork made properly afterwards goes through.
    parent.fork("counter", &child, "second").expect("fork");

    // The end mark lost on the way: the parent cannot tell a lost mark from a lost
    // confirmation, and says the child may be running.
    tap(&parent, |n, m| if n == 3 { None } else { Some(m) });
    let unknown = parent.fork("counter", &child, "third").unwrap_err();
    untap(&parent);
    assert!(
        unknown.contains("third may be running on https://child"),
        "{unknown}"
    );
}

/// A state of several page messages: the next is sealed while the one before is on
/// its way (fork_transfer). One of them lost or damaged in the middle stops the fork
/// with nothing left in the child; sent whole, the child confirms the snapshot.
#[test]
fn a_transfer_of_several_messages_fails_cleanly_in_the_middle_and_goes_through_whole() {
    const WORKLOAD: &str = include_str!("../../veritee-fork/benches/workload.wat");
    let (world, tenant) = (
        World::new(&["m1", "m2"]),
        TenantKey::generate().expect("tenant"),
    );
    let mut parent = Node::new(&world, "m1", CODE, "https://parent", &tenant);
    let mut child = Node::new(&world, "m2", CODE, "https://child", &tenant);
    peer(&parent, &child);
    let mib: u32 = 20;
    parent
        .app(AppRequest::Run {
            name: "w".into(),
            module: SecretBytes::copy_from(WORKLOAD.as_bytes()),
            memory_mib: Some(mib + 1),
            fork_peer: None,
            durable: false,
            keys: Vec::new(),
        })
        .expect("run");
    parent.call("w", "fill", &(mib * 16).to_le_bytes());
    // Messages: 0 hello, 1 finish, 2.. pages, then done.
    let lost: Tamper = Box::new(|n, m| if n == 3 { None } else { Some(m) });
    let damaged: Tamper = Box::new(|n, mut m| {
        if n == 3 {
            m[1000] ^= 0x40;
        }
        Some(m)
    });
    for (what, f) in [("the second page message lost", lost), ("damaged", damaged)] {
        tap(&parent, f);
        let refused = parent.fork("w", &child, "child");
        untap(&parent);
        assert!(refused.is_err(), "{what}: {refused:?}");
        assert!(child.list().is_empty(), "{what}: the child holds nothing");
    }
    let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&sizes);
    tap(&parent, move |_, m| {
        seen.lock().unwrap().push(m.len());
        Some(m)
    });
    let forked = parent.fork("w", &child, "child").expect("fork");
    untap(&parent);
    let AppAnswer::Forked { pages, .. } = forked else {
        panic!("{forked:?}")
    };
    assert!(pages >= u64::from(mib) << 8, "{pages} pages");
    let large = sizes
        .lock()
        .unwrap()
        .iter()
        .filter(|n| **n > 1 << 20)
        .count();
    assert!(large >= 3, "{large} page messages");
    assert_eq!(child.list().len(), 1);
    parent.call("w", "touch", b"");
}

/// `message` (a fork step's envelope) with the fork id of `other`.
fn with_fork_id_of(message: &[u8], other: &[u8]) -> Vec<u8> {
    let id = step_field(other, "fork");
    set_step_field(message, "fork", id)
}

/// `message` (a fork step's envelope) with `sealed` in place of its sealed step.
fn with_sealed(message: &[u8], sealed: Vec<u8>) -> Vec<u8> {
    set_step_field(message, "sealed", ciborium::Value::Bytes(sealed))
}

/// The envelope's outer shape: `{"Fork": {"fork": text, "sealed": bytes}}`.
fn step_map(message: &[u8]) -> Vec<(ciborium::Value, ciborium::Value)> {
    let value: ciborium::Value = ciborium::from_reader(message).expect("cbor");
    let ciborium::Value::Map(outer) = value else {
        panic!("not a map")
    };
    let (_, inner) = outer.into_iter().next().expect("Fork");
    let ciborium::Value::Map(inner) = inner else {
        panic!("not a fork step")
    };
    inner
}

fn step_field(message: &[u8], field: &str) -> ciborium::Value {
    step_map(message)
        .into_iter()
        .find(|(k, _)| k.as_text() == Some(field))
        .map(|(_, v)| v)
        .expect("field")
}

fn set_step_field(message: &[u8], field: &str, value: ciborium::Value) -> Vec<u8> {
    let inner = step_map(message)
        .into_iter()
        .map(|(k, v)| {
            if k.as_text() == Some(field) {
                (k, value.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let outer = ciborium::Value::Map(vec![(
        ciborium::Value::Text("Fork".into()),
        ciborium::Value::Map(inner),
    )]);
    let mut out = Vec::new();
    ciborium::into_writer(&outer, &mut out).expect("cbor");
    out
}

#[test]
fn an_application_forks_itself_at_the_end_of_a_call() {
    let (_world, _tenant, mut parent, mut child) = setup();
    let run = |node: &mut Node, name: &str, fork_peer: Option<String>| {
        node.app(AppRequest::Run {
            name: name.into(),
            module: SecretBytes::copy_from(COUNTER.as_bytes()),
            memory_mib: Some(16),
            fork_peer,
            durable: false,
            keys: Vec::new(),
        })
    };
    let split = |node: &mut Node, name: &str| match node.app(AppRequest::Call {
        name: name.into(),
        export: "split".into(),
        input: SecretBytes::new(Vec::new()),
    }) {
        Ok(AppAnswer::Called { output, fork, .. }) => (
            i32::from_le_bytes(output.expose()[..].try_into().unwrap()),
            fork,
        ),
        other => panic!("{other:?}"),
    };

    // Started without a fork target, it may not.
    assert_eq!(split(&mut parent, "counter"), (-1, None));
    assert!(child.list().is_empty());

    let err = run(&mut parent, "wanderer", Some("https://nowhere".into())).unwrap_err();
    assert!(err.contains("not one of this node's peers"), "{err}");

    run(&mut parent, "splitter", Some(child.url.clone())).expect("run");
    parent.count("splitter");
    parent.count("splitter");
    let (noted, fork) = split(&mut parent, "splitter");
    assert_eq!(noted, 0);
    assert_eq!(
        fork.as_deref(),
        Some("forked to https://child as splitter-1")
    );
    // The child holds the state as the call left it.
    assert_eq!(child.count("splitter-1"), 3);
    assert_eq!(child.call("splitter-1", "role", b""), 2i32.to_le_bytes());
    // A child starts without a fork target of its own.
    assert_eq!(split(&mut child, "splitter-1"), (-1, None));
    // The next request names the next child.
    let (_, fork) = split(&mut parent, "splitter");
    assert_eq!(
        fork.as_deref(),
        Some("forked to https://child as splitter-2")
    );
    assert_eq!(parent.count("splitter"), 3);
}

#[test]
fn a_tenants_applications_share_one_memory_budget_and_a_count() {
    let (_world, _tenant, mut parent, _child) = setup();
    let run = |node: &mut Node, name: &str, mib: u32| {
        node.app(AppRequest::Run {
            name: name.into(),
            module: SecretBytes::copy_from(COUNTER.as_bytes()),
            memory_mib: Some(mib),
            fork_peer: None,
            durable: false,
            keys: Vec::new(),
        })
    };
    // `counter` holds 16 MiB already.
    run(&mut parent, "big", 4096 - 16 - 1).expect("within the budget");
    let err = run(&mut parent, "one-more", 2).unwrap_err();
    assert!(
        err.contains("may hold 4096 MiB of memory in all: 4095 MiB are held, this one asks 2 MiB"),
        "{err}"
    );
    run(&mut parent, "small", 1).expect("the last MiB");
    parent
        .app(AppRequest::Stop { name: "big".into() })
        .expect("stop");
    // counter, small and six more: eight.
    for i in 0..6 {
        run(&mut parent, &format!("app-{i}"), 1).expect("run");
    }
    let err = run(&mut parent, "ninth", 1).unwrap_err();
    assert!(err.contains("8 applications run already"), "{err}");
    let err = run(&mut parent, "zero", 0).unwrap_err();
    assert!(err.contains("choose 1 to 4096"), "{err}");
}

impl Node {
    /// The enclave restarted on `machine` (a new process: no session, no application
    /// in memory), over the same host and store.
    fn restart(&mut self, world: &World, machine: &str, tenant: &TenantKey) {
        self.service = Arc::new(world.enclave(machine, CODE));
        self.session = Some(open_session(world, &self.service, &mut self.host, tenant));
    }

    fn run(&mut self, name: &str, durable: bool) {
        self.app(AppRequest::Run {
            name: name.into(),
            module: SecretBytes::copy_from(COUNTER.as_bytes()),
            memory_mib: Some(16),
            fork_peer: None,
            durable,
            keys: Vec::new(),
        })
        .expect("run");
    }

    /// The host's stored pages of this node's applications: (key, bytes).
    fn pages(&self) -> Vec<(String, Vec<u8>)> {
        self.host
            .storage
            .lock()
            .unwrap()
            .objects
            .iter()
            .filter(|((ns, _), _)| ns == "app-pages")
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }
}

#[test]
fn a_durable_application_survives_an_enclave_restart_and_nothing_else_does() {
    let world = World::new(&["m1", "m2"]);
    let tenant = TenantKey::generate().expect("tenant");
    let mut node = Node::new(&world, "m1", CODE, "https://node", &tenant);
    node.run("kept", true);
    node.run("volatile", false);
    for _ in 0..3 {
        node.count("kept");
        node.count("volatile");
    }
    node.call("kept", "remember", CANARY);
    assert!(node.list().iter().any(|a| a.name == "kept" && a.durable));

    node.restart(&world, "m1", &tenant);
    let listed = node.list();
    assert_eq!(
        listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["kept"],
        "only the durable application comes back"
    );
    assert_eq!(node.call("kept", "recall", b""), CANARY);
    assert_eq!(node.count("kept"), 4, "the counter in memory came along");
    assert_eq!(
        u64::from_le_bytes(node.call("kept", "calls", b"").try_into().unwrap()),
        4,
        "and the internal global"
    );
    // And again: the state written since the restart is the one that comes back.
    let earlier = node.pages();
    node.call("kept", "remember", b"a later note");
    node.restart(&world, "m1", &tenant);
    assert_eq!(node.call("kept", "recall", b""), b"a later note");
    assert_eq!(node.count("kept"), 5);

    // A page rolled back alone (its earlier copy put back under its name) does not
    // open where the manifest expects the newer one: the application stays down.
    let current = node.pages();
    let (key, old) = earlier
        .iter()
        .find(|(key, old)| current.iter().any(|(k, v)| k == key && v != old))
        .expect("a page that changed");
    let now = current.iter().find(|(k, _)| k == key).unwrap().1.clone();
    let put = |node: &Node, bytes: &Vec<u8>| {
        node.host
            .storage
            .lock()
            .unwrap()
            .objects
            .insert(("app-pages".into(), key.clone()), bytes.clone());
    };
    put(&node, old);
    node.restart(&world, "m1", &tenant);
    assert!(node.list().is_empty(), "a page rolled back was restored");
    put(&node, &now);
    node.restart(&world, "m1", &tenant);
    assert_eq!(node.count("kept"), 6);

    // The host held only ciphertext; the pages of earlier states are gone.
    let stored = everything(&node.host);
    assert!(!contains(&stored, CANARY) && !contains(&stored, b"a later note"));
    let pages = node.pages();
    assert!(!pages.is_empty());
    let audit = audit_bodies(&node.host);
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "app.restore" && e["outcome"] == "ok"),
        "{audit:?}"
    );

    // A page put back from elsewhere (another page's bytes under its name) or deleted:
    // the application does not come back, and the audit log says why.
    let (first, other) = (&pages[0], &pages[pages.len() - 1]);
    if pages.len() > 1 {
        node.host
            .storage
            .lock()
            .unwrap()
            .objects
            .insert(("app-pages".into(), first.0.clone()), other.1.clone());
        node.restart(&world, "m1", &tenant);
        assert!(node.list().is_empty(), "a swapped page was restored");
        node.host
            .storage
            .lock()
            .unwrap()
            .objects
            .insert(("app-pages".into(), first.0.clone()), first.1.clone());
    }
    node.host
        .storage
        .lock()
        .unwrap()
        .objects
        .remove(&("app-pages".into(), first.0.clone()));
    node.restart(&world, "m1", &tenant);
    assert!(
        node.list().is_empty(),
        "an application with a page missing was restored"
    );
    let refused = audit_bodies(&node.host)
        .into_iter()
        .rfind(|e| e["action"] == "app.restore" && e["object"] == "kept")
        .expect("audited");
    assert!(
        refused["outcome"]
            .as_str()
            .unwrap()
            .contains("is not in the store"),
        "{refused}"
    );
    // Put back, it restores; stopped, it is forgotten with its pages.
    node.host
        .storage
        .lock()
        .unwrap()
        .objects
        .insert(("app-pages".into(), first.0.clone()), first.1.clone());
    node.restart(&world, "m1", &tenant);
    assert_eq!(node.call("kept", "recall", b""), b"a later note");
    node.app(AppRequest::Stop {
        name: "kept".into(),
    })
    .expect("stop");
    assert!(
        node.pages().is_empty(),
        "a stopped application's pages stay"
    );
    node.restart(&world, "m1", &tenant);
    assert!(node.list().is_empty());
}

#[test]
fn a_durable_parent_keeps_its_link_to_its_child_across_a_restart() {
    let world = World::new(&["m1", "m2"]);
    let tenant = TenantKey::generate().expect("tenant");
    let mut parent = Node::new(&world, "m1", CODE, "https://parent", &tenant);
    let mut child = Node::new(&world, "m2", CODE, "https://child", &tenant);
    peer(&parent, &child);
    parent.run("counter", true);
    parent.count("counter");
    parent.fork("counter", &child, "child").expect("fork");
    parent.restart(&world, "m1", &tenant);
    peer(&parent, &child);
    let sealed = parent.call("counter", "seal", b"after the restart");
    assert_eq!(child.call("child", "open", &sealed), b"after the restart");
    assert_eq!(parent.list()[0].forks, 1);
}

/// Past the bytes one transaction carries (a first fill of a large memory), every
/// page goes to a new series before the record names it, and the old series is
/// deleted; smaller changes go with the record. Both restore.
#[test]
fn a_large_durable_state_is_stored_in_a_series_of_its_own_and_restores() {
    const WORKLOAD: &str = include_str!("../../veritee-fork/benches/workload.wat");
    let world = World::new(&["m1"]);
    let tenant = TenantKey::generate().expect("tenant");
    let mut node = Node::new(&world, "m1", CODE, "https://node", &tenant);
    node.app(AppRequest::Run {
        name: "w".into(),
        module: SecretBytes::copy_from(WORKLOAD.as_bytes()),
        memory_mib: Some(17),
        fork_peer: None,
        durable: true,
        keys: Vec::new(),
    })
    .expect("run");
    let mib: u32 = 12;
    assert!((mib as usize) << 20 > veritee_enclave::DURABLE_IN_TRANSACTION_BYTES);
    let series = |node: &Node| {
        node.pages()
            .iter()
            .map(|(key, _)| key.rsplit('/').nth(1).unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let before = series(&node);
    node.call("w", "fill", &(mib * 16).to_le_bytes());
    let after = series(&node);
    assert_eq!(after.len(), 1, "the old series was deleted: {after:?}");
    assert!(before.is_disjoint(&after));
    assert_eq!(
        node.pages().len(),
        (mib as usize) << 8,
        "every page of the memory"
    );
    let memory = |node: &mut Node| {
        let listed = node.list();
        (listed[0].memory_bytes, listed[0].calls)
    };
    // 1% of the pages change: they go with the record, in the same series.
    node.call("w", "touch", b"");
    assert_eq!(series(&node), after);
    let touched = memory(&mut node);
    node.restart(&world, "m1", &tenant);
    assert_eq!(memory(&mut node), touched);
    // After a restart the snapshot's keys are new: the first call stores every page
    // again (here in a new series), and that state restores too.
    node.call("w", "touch", b"");
    assert_eq!(series(&node).len(), 1);
    node.restart(&world, "m1", &tenant);
    assert_eq!(memory(&mut node).1, touched.1 + 1);
    node.call("w", "touch", b"");
}

fn run(node: &mut Node, name: &str, memory_mib: u32, durable: bool) -> Result<AppAnswer, String> {
    node.app(AppRequest::Run {
        name: name.into(),
        module: SecretBytes::copy_from(COUNTER.as_bytes()),
        memory_mib: Some(memory_mib),
        fork_peer: None,
        durable,
        keys: Vec::new(),
    })
}

/// The enclave's memory budget holds across tenants and workloads: applications
/// reserve their limit, and as much again once snapshotted (a durable one at once, a
/// forked one at its first fork); a fork arriving reserves in the child's budget. Past
/// the budget each is refused naming the numbers; what stops gives its room back.
#[test]
fn applications_and_forks_stay_within_the_enclave_memory_budget() {
    let world = World::new(&["m1", "m2"]);
    let alice = TenantKey::generate().expect("tenant");
    let bob = TenantKey::generate().expect("tenant");
    let budget = |s: EnclaveService| s.with_memory_budget(160 << 20);
    let mut parent = Node::with(&world, "m1", CODE, "https://parent", &alice, budget);
    let mut child = Node::with(&world, "m2", CODE, "https://child", &alice, budget);
    peer(&parent, &child);
    let mut bobs = Node {
        url: parent.url.clone(),
        service: Arc::clone(&parent.service),
        host: parent.host.clone(),
        session: None,
    };
    register(&bobs.service, &mut bobs.host, &bob);
    bobs.session = Some(open_session(&world, &bobs.service, &mut bobs.host, &bob));

    run(&mut parent, "a", 64, false).expect("64 of 160 MiB");
    run(&mut bobs, "b", 64, false).expect("another tenant's, 128 of 160 MiB");
    let refused = run(&mut parent, "c", 64, false).unwrap_err();
    assert!(
        refused.contains(
            "memory budget is full: application c asks 64 MiB, 128 MiB of 160 MiB are reserved"
        ),
        "{refused}"
    );
    // A durable application reserves its snapshot's shadow at once: 16 + 16.
    run(&mut parent, "d", 16, true).expect("160 of 160 MiB");
    assert_eq!(parent.service.memory_budget().held(), 160 << 20);
    // Forking "a" needs room for its snapshot's shadow: none is left.
    let refused = parent.fork("a", &child, "a2").unwrap_err();
    assert!(
        refused.contains("the snapshot of application a asks 64 MiB"),
        "{refused}"
    );
    // Bob stops his: the room comes back, and the fork goes.
    bobs.app(AppRequest::Stop { name: "b".into() })
        .expect("stop");
    assert_eq!(parent.service.memory_budget().held(), 96 << 20);
    parent.fork("a", &child, "a2").expect("forked");
    assert_eq!(parent.service.memory_budget().held(), 160 << 20);
    // In the child, the arriving fork reserved its limit in the child's budget.
    assert_eq!(child.service.memory_budget().held(), 64 << 20);
    run(&mut child, "e", 96, false).expect("160 of 160 MiB in the child");
    let refused = parent.fork("d", &child, "d2").unwrap_err();
    assert!(
        refused.contains("memory budget is full: application d2 asks 16 MiB"),
        "{refused}"
    );
    assert_eq!(child.service.memory_budget().held(), 160 << 20);
}

/// `KEY_OP`'s input: a key index and a `key_op` request to encrypt `plaintext`.
fn encrypt_input(index: u32, plaintext: &[u8]) -> Vec<u8> {
    let mut input = index.to_le_bytes().to_vec();
    input.push(1);
    input.extend_from_slice(&0u32.to_be_bytes());
    input.extend_from_slice(plaintext);
    input
}

/// An application uses the stored keys it names through `key_op`, before its links,
/// never holding their material. They are granted at its start (a key whose metadata
/// do not name the tenant refuses the run) and again at every call, so a key disabled
/// since is withheld; every use is counted in the audit log. A fork carries the names,
/// not the keys: the child's node grants them on its own, a replica only where the
/// key's metadata allow one.
#[test]
fn an_application_uses_stored_keys_granted_at_every_call() {
    use common::import::{create_partition, disable_alone, import_aes_with};
    use veritee_import::metadata::KeyRelease;
    let world = World::new(&["m1", "m2"]);
    let alice = TenantKey::generate().expect("tenant");
    let id = alice.tenant_id().expect("id");
    let mut parent = Node::new(&world, "m1", CODE, "https://parent", &alice);
    let mut child = Node::new(&world, "m2", CODE, "https://child", &alice);
    peer(&parent, &child);
    peer(&child, &parent);
    create_partition(&parent.service, &mut parent.host, &alice, "p");
    let at = |key_id| ("p", key_id);
    for (key_id, signers, release) in [
        ("shared", vec![id.clone()], Some(KeyRelease::SameSigner)),
        ("local", vec![id.clone()], None),
        ("no-apps", vec![], None),
    ] {
        import_aes_with(
            &parent.service,
            &mut parent.host,
            &alice,
            at(key_id),
            &[6u8; 32],
            |m| {
                m.task_signers = signers;
                m.release = release;
            },
        );
    }
    let run = |node: &mut Node, keys: &[&str]| {
        node.app(AppRequest::Run {
            name: "vault".into(),
            module: SecretBytes::copy_from(KEY_OP.as_bytes()),
            memory_mib: Some(16),
            fork_peer: None,
            durable: false,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        })
    };
    let refused = run(&mut parent, &["p/shared", "p/no-apps"]).unwrap_err();
    assert!(
        refused.contains("application vault is refused: it names key p/no-apps")
            && refused.contains("task_signers"),
        "{refused}"
    );
    let refused = run(&mut parent, &["p/shared", "p/shared"]).unwrap_err();
    assert!(refused.contains("named twice"), "{refused}");
    run(&mut parent, &["p/shared", "p/local"]).expect("run");
    assert_eq!(parent.list()[0].keys, ["p/shared", "p/local"]);

    let called = |node: &mut Node, input: &[u8]| match node.app(AppRequest::Call {
        name: "vault".into(),
        export: "run".into(),
        input: SecretBytes::copy_from(input),
    }) {
        Ok(AppAnswer::Called {
            exit_code,
            output,
            log,
            ..
        }) => (
            exit_code,
            output.expose().clone(),
            String::from_utf8_lossy(log.expose()).into_owned(),
        ),
        other => panic!("{other:?}"),
    };
    // Key 1 encrypts; the tenant opens it in its session with the key's name.
    let (exit, sealed, log) = called(&mut parent, &encrypt_input(1, b"kept by the app"));
    assert_eq!(exit as usize, sealed.len(), "{log}");
    let session = parent.session.as_mut().expect("session");
    match common::import::one(
        session,
        &parent.service,
        &mut parent.host,
        veritee_channel::crypto::CryptoOp::Decrypt {
            key: veritee_import::keys::KeyRef::new("p", "local"),
            ciphertext: sealed,
            aad: Vec::new(),
        },
    ) {
        veritee_channel::crypto::CryptoOutcome::Plaintext(p) => {
            assert_eq!(p.expose(), b"kept by the app")
        }
        other => panic!("{other:?}"),
    }
    // Past the stored keys there is nothing yet (no fork, no link).
    assert_eq!(called(&mut parent, &encrypt_input(2, b"x")).0, -1);

    // Forked: the child's node grants the shared key (a replica fetched from the
    // parent's node) but not the local one; the child's link comes after both.
    parent.fork("vault", &child, "vault").expect("forked");
    let (exit, _, log) = called(&mut child, &encrypt_input(0, b"in the child"));
    assert!(exit > 0, "{log}");
    let (exit, _, log) = called(&mut child, &encrypt_input(1, b"in the child"));
    assert_eq!(exit, -3, "{log}");
    assert!(
        log.contains("not usable now") && log.contains("no peer released it"),
        "{log}"
    );
    let (exit, _, log) = called(&mut child, &encrypt_input(2, b"to the parent"));
    assert!(exit > 0, "the link after the stored keys: {log}");

    // Disabled: withheld from the next call on.
    disable_alone(&parent.service, &mut parent.host, &alice, ("p", "local")).expect("disabled");
    let (exit, _, log) = called(&mut parent, &encrypt_input(1, b"x"));
    assert_eq!(exit, -3, "{log}");
    assert!(log.contains("disabled for good"), "{log}");

    // Audited: the grants at its start, and its uses, counted.
    audience(&parent.service, &mut parent.host);
    let bodies = audit_bodies(&parent.host);
    assert!(bodies.iter().any(|b| {
        b["action"] == "app.key"
            && b["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("ok: granted to application vault"))
    }));
    assert!(bodies.iter().any(|b| {
        b["action"] == "app.key"
            && b["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("refused: application vault"))
    }));
    let object = format!("{id}/p/local by application vault of tenant {id}");
    assert!(
        bodies.iter().any(|b| b["action"] == "key_op.encrypt"
            && b["object"] == object.as_str()
            && b["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("ok: 1 since"))),
        "{bodies:?}"
    );
    assert!(!contains(&everything(&parent.host), &[6u8; 32]));
    assert!(!contains(&everything(&child.host), &[6u8; 32]));
}
