//! Imported keys shared between nodes (flow 3), the releasing side: only the node a
//! key was imported into hands it out, only while it is usable, and only if its
//! metadata allow replicas. (What the receiving side refuses of a peer's copy is
//! tested beside it, in `replication.rs`.)

mod common;

use common::import::*;
use common::*;
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::SecretBytes;
use veritee_import::keys::KeyRef;
use veritee_import::metadata::KeyRelease;

const CODE: &[u8] = b"the node enclave, version 1";

fn import(node: &mut Node, tenant: &TenantKey, key_id: &str, release: Option<KeyRelease>) {
    let at = ("p", key_id);
    import_aes_with(
        &node.service,
        &mut node.host,
        tenant,
        at,
        &[4u8; 32],
        |meta| meta.release = release,
    );
}

/// Encrypts under `key_id` on `node`: the ciphertext, or the refusal's message.
fn encrypt(
    world: &World,
    node: &mut Node,
    tenant: &TenantKey,
    key_id: &str,
) -> Result<Vec<u8>, String> {
    let mut s = open_session(world, &node.service, &mut node.host, tenant);
    match one(
        &mut s,
        &node.service,
        &mut node.host,
        CryptoOp::Encrypt {
            key: KeyRef::new("p", key_id),
            plaintext: SecretBytes::copy_from(b"shared"),
            aad: Vec::new(),
        },
    ) {
        CryptoOutcome::Ciphertext(c) => Ok(c),
        CryptoOutcome::Error { message, .. } => Err(message),
        other => panic!("{other:?}"),
    }
}

/// The outcomes of `node`'s audit entries of releases to peers.
fn releases(node: &Node) -> Vec<String> {
    audit_bodies(&node.host)
        .iter()
        .filter(|b| b["action"] == "import.release.peer")
        .map(|b| b["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn only_the_home_node_releases_an_imported_key_and_only_while_it_is_usable() {
    let world = World::new(&["m1", "m2", "m3", "m4"]);
    let mut a = Node::new(&world, "m1", CODE, "a");
    let mut b = Node::new(&world, "m2", CODE, "b");
    let mut c = Node::new(&world, "m3", CODE, "c");
    let mut d = Node::new(&world, "m4", CODE, "d");
    let alice = TenantKey::generate().expect("key");
    for n in [&mut a, &mut b, &mut c, &mut d] {
        register(&n.service, &mut n.host, &alice);
    }
    create_partition(&a.service, &mut a.host, &alice, "p");
    import(&mut a, &alice, "shared", Some(KeyRelease::SameSigner));
    import(&mut a, &alice, "alone", None);

    // B, a peer of A, gets the shared key at its first use; not the one imported for A
    // alone, and A says why.
    peer(&b.host, &a);
    encrypt(&world, &mut b, &alice, "shared").expect("B uses A's key");
    let why = encrypt(&world, &mut b, &alice, "alone").expect_err("a key for A alone");
    assert!(why.contains("allow no replicas"), "{why}");
    assert_eq!(releases(&a).len(), 2, "{:?}", releases(&a));
    // B lists its replica under its partition, though B has no such partition.
    assert_eq!(
        list_partitions(&b.service, &mut b.host, &alice),
        vec![("p".to_string(), vec!["shared".to_string()])]
    );
    assert!(releases(&a).iter().any(|r| r == "ok"));

    // C asks B, which holds a replica: a replica is never handed on (the home node
    // alone knows whether the key is still usable).
    peer(&c.host, &b);
    let why = encrypt(&world, &mut c, &alice, "shared").expect_err("from a replica holder");
    assert!(
        why.contains("holds a replica: only the node it was imported into releases it"),
        "{why}"
    );
    assert!(
        releases(&b)
            .iter()
            .any(|r| r.starts_with("refused: this node holds a replica")),
        "{:?}",
        releases(&b)
    );

    // A disables the key: D, asking A afterwards, gets nothing, and A records why.
    disable_alone(&a.service, &mut a.host, &alice, ("p", "shared")).expect("disabled");
    peer(&d.host, &a);
    let why = encrypt(&world, &mut d, &alice, "shared").expect_err("a disabled key");
    assert!(why.contains("disabled for good"), "{why}");
    assert!(
        releases(&a)
            .iter()
            .any(|r| r.starts_with("refused: key p/shared is disabled for good")),
        "{:?}",
        releases(&a)
    );
    // D holds no copy of it.
    let held = everything(&d.host);
    assert!(!contains(&held, &[4u8; 32]));
}
