//! Every operation by key id is in the audit log, counted: by tenant, key, operation
//! and outcome, over a window of at most a second. The counts become entries before
//! any later entry (the log stays in time order), before a status or checkpoint is
//! served, and once the window has passed; a batch whose counts the log cannot take
//! is refused whole.

mod common;

use common::import::*;
use common::*;
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_enclave::EnclaveService;
use veritee_enclave::memory_host::AppendFault;
use veritee_import::keys::{HashAlgorithm, KeyRef};

const CODE: &[u8] = b"the node enclave, version 1";

fn import_aes(service: &EnclaveService, host: &mut MemoryHost, tenant: &TenantKey, id: &str) {
    import_aes_with(service, host, tenant, ("p", id), &[9u8; 32], |_| {});
}

fn encrypt(key: &KeyRef) -> CryptoOp {
    CryptoOp::Encrypt {
        key: key.clone(),
        plaintext: SecretBytes::copy_from(b"payload"),
        aad: Vec::new(),
    }
}

/// The (action, object, outcome) of each entry whose action starts with `prefix`.
fn entries(host: &MemoryHost, prefix: &str) -> Vec<(String, String, String)> {
    audit_bodies(host)
        .iter()
        .filter_map(|b| {
            let action = b["action"].as_str()?.to_string();
            action.starts_with(prefix).then(|| {
                (
                    action,
                    b["object"].as_str().unwrap_or_default().to_string(),
                    b["outcome"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

fn position(host: &MemoryHost, action: &str, outcome_start: &str) -> usize {
    audit_bodies(host)
        .iter()
        .position(|b| {
            b["action"] == action
                && b["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with(outcome_start))
        })
        .unwrap_or_else(|| panic!("no {action} entry {outcome_start}"))
}

#[test]
fn every_operation_is_counted_by_key_operation_and_outcome() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    create_partition(&service, &mut host, &alice, "p");
    import_aes(&service, &mut host, &alice, "k");
    let k = KeyRef::new("p", "k");
    let mut s = open_session(&world, &service, &mut host, &alice);

    // One batch of five encryptions, a hash, a signature the key's metadata forbid and
    // one by a key that does not exist; then a lone encryption.
    let mut batch: Vec<CryptoOp> = (0..5).map(|_| encrypt(&k)).collect();
    batch.push(CryptoOp::Hash {
        algorithm: HashAlgorithm::Sha256,
        data: b"data".to_vec(),
    });
    batch.push(CryptoOp::Sign {
        key: k.clone(),
        message: b"m".to_vec(),
    });
    batch.push(encrypt(&KeyRef::new("p", "missing")));
    let Response::Crypto(outcomes) = s.call(&service, &mut host, &Request::Crypto(batch)) else {
        panic!("no outcomes");
    };
    assert_eq!(outcomes.len(), 8);
    assert!(matches!(
        one(&mut s, &service, &mut host, encrypt(&k)),
        CryptoOutcome::Ciphertext(_)
    ));
    // Counted, not yet entries: the window has not passed.
    assert!(entries(&host, "crypto.").is_empty());

    // A status (what `veritee audit` asks before reading the log) turns them into entries.
    audience(&service, &mut host);
    let counted = entries(&host, "crypto.");
    let find = |action: &str, object: &str| {
        counted
            .iter()
            .find(|(a, o, _)| a == action && o == object)
            .map(|(_, _, outcome)| outcome.clone())
            .unwrap_or_else(|| panic!("no {action} of {object}: {counted:?}"))
    };
    assert!(find("crypto.encrypt", "p/k").starts_with("ok: 6 since 20"));
    assert!(find("crypto.hash", "sha256").starts_with("ok: 1 since"));
    let sign = find("crypto.sign", "p/k");
    assert!(
        sign.starts_with("refused (forbidden): key p/k may not be used to sign")
            && sign.contains(": 1 since"),
        "{sign}"
    );
    assert!(find("crypto.encrypt", "p/missing").starts_with("refused (not_found)"));
    assert_eq!(counted.len(), 4, "{counted:?}");
    // Each entry is the tenant's.
    let tenant = alice.tenant_id().expect("id");
    assert!(
        audit_bodies(&host)
            .iter()
            .filter(|b| b["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("crypto.")))
            .all(|b| b["tenant"] == tenant.as_str())
    );

    // Uses before a disable are logged before it, and refusals after it, after it.
    one(&mut s, &service, &mut host, encrypt(&k));
    disable_alone(&service, &mut host, &alice, ("p", "k")).expect("disabled");
    let (code, _) = refusal(one(&mut s, &service, &mut host, encrypt(&k)));
    assert_eq!(code, "forbidden");
    audience(&service, &mut host);
    let used = position(&host, "crypto.encrypt", "ok: 1 since");
    let disabled = position(&host, "import.disable", "ok");
    let refused = position(&host, "crypto.encrypt", "refused (forbidden)");
    assert!(
        used < disabled && disabled < refused,
        "{used} {disabled} {refused}"
    );

    // Past the window, the request that finds it passed writes the counts itself.
    import_aes(&service, &mut host, &alice, "k2");
    let k2 = KeyRef::new("p", "k2");
    one(&mut s, &service, &mut host, encrypt(&k2));
    std::thread::sleep(veritee_enclave::audit::USAGE_WINDOW);
    let before = entries(&host, "crypto.").len();
    one(&mut s, &service, &mut host, encrypt(&k2));
    let after = entries(&host, "crypto.");
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert!(
        after.iter().any(|(a, o, out)| a == "crypto.encrypt"
            && o == "p/k2"
            && out.starts_with("ok: 2 since"))
    );

    // A log that cannot take the counts when they are due refuses the batch whole: its
    // results do not leave without their counts.
    one(&mut s, &service, &mut host, encrypt(&k2));
    std::thread::sleep(veritee_enclave::audit::USAGE_WINDOW);
    *host.append_fault.lock().expect("fault") = Some(AppendFault {
        log_prefix: "audit/".into(),
        store_anyway: false,
    });
    match s.call(&service, &mut host, &Request::Crypto(vec![encrypt(&k2)])) {
        Response::Error { message, .. } => assert!(
            message.contains("audit") || message.contains("append"),
            "{message}"
        ),
        other => panic!("answered without its audit entry: {other:?}"),
    }
    // The log continues afterwards.
    assert!(matches!(
        one(&mut s, &service, &mut host, encrypt(&k2)),
        CryptoOutcome::Ciphertext(_)
    ));
}

#[test]
fn a_flood_of_distinct_refusals_is_written_out_at_the_bound() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    let mut s = open_session(&world, &service, &mut host, &alice);
    // Each a distinct (key, outcome) row: the tally turns into entries at the bound,
    // whatever the window says.
    let rows = veritee_enclave::audit::MAX_USAGE_ROWS;
    let batch: Vec<CryptoOp> = (0..rows)
        .map(|i| encrypt(&KeyRef::new("p", &format!("k{i}"))))
        .collect();
    s.call(&service, &mut host, &Request::Crypto(batch));
    assert_eq!(entries(&host, "crypto.").len(), rows);
}
