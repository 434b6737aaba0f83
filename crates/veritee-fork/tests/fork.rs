//! A parent application forked through an offer and its page frames: the child
//! continues from the exact state, and every way of damaging the transfer on the way
//! is refused by name.

use veritee_crypto::Confidential;
use veritee_crypto::digest::sha256;
use veritee_fork::{
    AppRuntime, FRAME_LEN, ForkError, ForkOffer, ForkSecret, PAGE_SIZE, Restorer, Snapshot,
};
use veritee_wasm::rewrite::{PreparedModule, prepare};
use veritee_wasm::{App, TaskEngine, TaskLimits};

const COUNTER: &str = include_str!("../../../examples/apps/counter.wat");
const CANARY: &[u8] = b"canary-forked-app-note-31415926";

fn prepared() -> PreparedModule {
    prepare("counter", COUNTER.as_bytes()).unwrap()
}

fn engine() -> &'static TaskEngine {
    TaskEngine::global().unwrap()
}

fn secret(byte: u8) -> ForkSecret {
    ForkSecret::new(Confidential::new([byte; 32]))
}

fn call(app: &mut App, export: &str, input: &[u8]) -> Vec<u8> {
    let mut result = app.call(export, input).unwrap();
    assert_eq!(result.exit_code, 0, "{export}");
    std::mem::take(&mut result.output)
}

fn count(app: &mut App) -> u64 {
    u64::from_le_bytes(call(app, "count", b"").try_into().unwrap())
}

fn calls(app: &mut App) -> u64 {
    u64::from_le_bytes(call(app, "calls", b"").try_into().unwrap())
}

/// A parent that counted to 5 and remembers the canary, and its snapshot.
fn parent() -> (App, Snapshot) {
    let mut app = App::start(engine(), "counter", &prepared(), &TaskLimits::default()).unwrap();
    for _ in 0..5 {
        count(&mut app);
    }
    call(&mut app, "remember", CANARY);
    let snapshot = Snapshot::new([7; 16], sha256(COUNTER.as_bytes()), runtime(&app)).unwrap();
    (app, snapshot)
}

fn runtime(app: &App) -> AppRuntime {
    AppRuntime {
        counters: app.counters(),
        limits: app.limits().clone(),
    }
}

fn update(app: &mut App, snapshot: &mut Snapshot) -> veritee_fork::UpdateStats {
    let globals = app.globals();
    let runtime = runtime(app);
    snapshot.update(app.memory(), globals, runtime).unwrap()
}

/// Every frame of the snapshot, one page per chunk.
fn frames(snapshot: &Snapshot) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = Some(0);
    while let Some(at) = from {
        let (chunk, next) = snapshot.frames(at, FRAME_LEN);
        if !chunk.is_empty() {
            out.push(chunk);
        }
        from = next;
    }
    out
}

/// The child's side: a fresh instance of the same module, the offer opened, the frames
/// restored into its memory.
fn child(secret: &ForkSecret, offer: &[u8], frames: &[Vec<u8>]) -> Result<App, ForkError> {
    let mut restorer = Restorer::open(secret, offer)?;
    let state = restorer.state().clone();
    assert_eq!(state.module_sha256, sha256(COUNTER.as_bytes()));
    let mut app = App::start(engine(), "counter", &prepared(), &state.runtime.limits).unwrap();
    app.restore(state.memory_len, &state.globals, state.runtime.counters)
        .unwrap();
    for chunk in frames {
        restorer.push(chunk, app.memory_mut())?;
    }
    restorer.finish(app.memory_mut())?;
    Ok(app)
}

#[test]
fn the_child_continues_from_the_exact_state_and_then_both_go_their_way() {
    let (mut parent, mut snapshot) = parent();
    let stats = update(&mut parent, &mut snapshot);
    assert_eq!(stats.pages, 16);
    assert_eq!(stats.sealed, 2, "the counter's page and the note's page");
    let offer = snapshot.offer(&secret(1)).unwrap();
    let mut child = child(&secret(1), offer.as_bytes(), &frames(&snapshot)).unwrap();

    assert_eq!(child.memory(), parent.memory(), "memory checksum");
    assert_eq!(child.globals(), parent.globals());
    assert_eq!(child.counters(), parent.counters());
    assert_eq!(call(&mut child, "recall", b""), CANARY);
    assert_eq!(calls(&mut child), 5, "the internal global came along");
    assert_eq!(count(&mut child), 6);
    assert_eq!(count(&mut parent), 6);
    // Independent from here on.
    assert_eq!(count(&mut child), 7);
    call(&mut parent, "remember", b"the parent's own later note");
    assert_eq!(call(&mut child, "recall", b""), CANARY);
    assert_eq!(count(&mut parent), 7);
    assert_eq!(count(&mut parent), 8);
    assert_eq!(calls(&mut child), 7);
}

#[test]
fn the_host_sees_only_ciphertext() {
    let (mut parent, mut snapshot) = parent();
    update(&mut parent, &mut snapshot);
    let offer = snapshot.offer(&secret(1)).unwrap();
    let mut carried = offer.as_bytes().to_vec();
    for chunk in frames(&snapshot) {
        carried.extend_from_slice(&chunk);
    }
    assert!(parent.memory().windows(CANARY.len()).any(|w| w == CANARY));
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
    // base64 of the canary's middle, whatever its alignment in a longer string
    let base64_inner = base64.as_bytes()[4..base64.len() - 4].to_vec();
    for needle in [CANARY.to_vec(), hex_of(CANARY).into_bytes(), base64_inner] {
        assert!(
            !carried
                .windows(needle.len())
                .any(|w| w == needle.as_slice()),
            "the canary crossed the host"
        );
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn only_the_child_of_this_exchange_opens_the_offer() {
    let (mut parent, mut snapshot) = parent();
    update(&mut parent, &mut snapshot);
    let offer = snapshot.offer(&secret(1)).unwrap();
    let all = frames(&snapshot);
    // Another enclave (another measurement's exchange gives another secret) gets nothing.
    assert!(matches!(
        child(&secret(2), offer.as_bytes(), &all),
        Err(ForkError::OfferDoesNotOpen)
    ));
    // An offer replayed into a later exchange does not open either.
    let later = secret(3);
    assert!(matches!(
        Restorer::open(&later, offer.as_bytes()),
        Err(ForkError::OfferDoesNotOpen)
    ));
}

#[test]
fn a_damaged_offer_is_refused() {
    let (mut parent, mut snapshot) = parent();
    update(&mut parent, &mut snapshot);
    let offer = snapshot.offer(&secret(1)).unwrap();
    let bytes = offer.as_bytes();
    for at in [0, 31, 32, 40, 44, bytes.len() / 2, bytes.len() - 1] {
        let mut flipped = bytes.to_vec();
        flipped[at] ^= 1;
        assert!(
            matches!(
                Restorer::open(&secret(1), &flipped),
                Err(ForkError::OfferDoesNotOpen)
            ),
            "byte {at}"
        );
    }
    for cut in [0, 10, 32, 43, bytes.len() - 1] {
        assert!(
            Restorer::open(&secret(1), &bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut long = bytes.to_vec();
    long.resize(veritee_fork::max_manifest_len() + 100, 0);
    assert!(matches!(
        Restorer::open(&secret(1), &long),
        Err(ForkError::Malformed(_))
    ));
}

#[test]
fn truncated_reordered_replayed_and_mixed_transfers_fail_cleanly() {
    let (mut parent, mut snapshot) = parent();
    update(&mut parent, &mut snapshot);
    let old_frames = frames(&snapshot);
    call(&mut parent, "remember", b"a second note, in the same page");
    count(&mut parent);
    update(&mut parent, &mut snapshot);
    let offer = snapshot.offer(&secret(1)).unwrap();
    let good = frames(&snapshot);
    assert_eq!(good.len(), 2);

    // Truncated: a frame missing, or cut mid-way.
    let r = child(&secret(1), offer.as_bytes(), &good[..1]);
    assert!(
        matches!(
            r,
            Err(ForkError::Incomplete {
                received: 1,
                expected: 2
            })
        ),
        "{r:?}"
    );
    let mut cut = good.clone();
    cut[1].truncate(FRAME_LEN - 1);
    assert!(matches!(
        child(&secret(1), offer.as_bytes(), &cut),
        Err(ForkError::Incomplete { .. })
    ));
    // Reordered, and a frame sent twice.
    let reordered = vec![good[1].clone(), good[0].clone()];
    assert!(matches!(
        child(&secret(1), offer.as_bytes(), &reordered),
        Err(ForkError::PageOrder { .. })
    ));
    let twice = vec![good[0].clone(), good[0].clone(), good[1].clone()];
    assert!(matches!(
        child(&secret(1), offer.as_bytes(), &twice),
        Err(ForkError::PageOrder { .. })
    ));
    // Mixed: pages of the earlier snapshot under the later manifest.
    let mixed = vec![old_frames[0].clone(), good[1].clone()];
    assert!(matches!(
        child(&secret(1), offer.as_bytes(), &mixed),
        Err(ForkError::PageDoesNotOpen(0))
    ));
    // A page moved to another index, or with a flipped byte.
    let mut moved = good.clone();
    moved[0][..4].copy_from_slice(&5u32.to_be_bytes());
    assert!(child(&secret(1), offer.as_bytes(), &moved).is_err());
    for at in [4, 100, FRAME_LEN - 1] {
        let mut flipped = good.clone();
        flipped[1][at] ^= 0x80;
        assert!(
            matches!(
                child(&secret(1), offer.as_bytes(), &flipped),
                Err(ForkError::PageDoesNotOpen(1))
            ),
            "byte {at}"
        );
    }
    // A page the manifest lists as zero, and one past the end.
    let mut zero = good.clone();
    zero[1][..4].copy_from_slice(&3u32.to_be_bytes());
    assert!(matches!(
        child(&secret(1), offer.as_bytes(), &zero),
        Err(ForkError::PageOrder { .. })
    ));
    let mut past = good.clone();
    past[1][..4].copy_from_slice(&1000u32.to_be_bytes());
    assert!(matches!(
        child(&secret(1), offer.as_bytes(), &past),
        Err(ForkError::PageOrder { .. })
    ));
    // Frames split anywhere still restore.
    let joined: Vec<u8> = good.concat();
    let split: Vec<Vec<u8>> = joined.chunks(1000).map(<[u8]>::to_vec).collect();
    let mut restored = child(&secret(1), offer.as_bytes(), &split).unwrap();
    assert_eq!(restored.memory(), parent.memory());
    assert_eq!(count(&mut restored), 7);
}

#[test]
fn updates_encrypt_only_the_pages_that_changed() {
    let (mut parent, mut snapshot) = parent();
    assert_eq!(update(&mut parent, &mut snapshot).sealed, 2);
    assert_eq!(update(&mut parent, &mut snapshot).sealed, 0);
    count(&mut parent);
    assert_eq!(update(&mut parent, &mut snapshot).sealed, 1);
    call(&mut parent, "remember", b"");
    let stats = update(&mut parent, &mut snapshot);
    assert_eq!(
        stats.sealed, 1,
        "the length word's page; the note is left as it was"
    );
    assert_eq!(snapshot.sealed_pages(), 2);
}

#[test]
fn after_the_fork_neither_side_reads_the_others_later_state() {
    let (mut parent, mut snapshot) = parent();
    update(&mut parent, &mut snapshot);
    let first = secret(1);
    let offer = snapshot.offer(&first).unwrap();
    let original = frames(&snapshot);
    let mut child_app = child(&first, offer.as_bytes(), &original).unwrap();
    snapshot.rekey().unwrap();

    // The parent goes on, and its later pages are under a key the child never had.
    call(
        &mut parent,
        "remember",
        b"the parent's secret after the fork",
    );
    update(&mut parent, &mut snapshot);
    let later = frames(&snapshot);
    assert_eq!(
        later.len(),
        2,
        "both pages changed (the note and its length)"
    );
    for (index, changed) in later.iter().enumerate() {
        // What the child holds opens it up to this page; the page as the parent
        // sealed it after the fork does not.
        let mut old_view = Restorer::open(&first, offer.as_bytes()).unwrap();
        let mut memory = vec![0u8; old_view.state().memory_len];
        for before in &original[..index] {
            old_view.push(before, &mut memory).unwrap();
        }
        let refused = old_view.push(changed, &mut memory);
        assert!(
            matches!(refused, Err(ForkError::PageDoesNotOpen(i)) if i == index as u64),
            "page {index}: {refused:?}"
        );
        assert!(!memory.windows(10).any(|w| w == b"the parent"));
    }
    // The parent's next offer is for another exchange: the child's secret opens nothing.
    let next = snapshot.offer(&secret(9)).unwrap();
    assert!(matches!(
        Restorer::open(&first, next.as_bytes()),
        Err(ForkError::OfferDoesNotOpen)
    ));

    // The child's own snapshot starts with its own fresh key.
    let mut child_snapshot =
        Snapshot::new([7; 16], sha256(COUNTER.as_bytes()), runtime(&child_app)).unwrap();
    call(
        &mut child_app,
        "remember",
        b"the child's secret after the fork",
    );
    update(&mut child_app, &mut child_snapshot);
    // Whatever the parent holds, the child's pages are under the child's own key.
    let child_frames = frames(&child_snapshot);
    let mut parent_view = Restorer::open(&secret(9), next.as_bytes()).unwrap();
    let mut memory = vec![0u8; parent_view.state().memory_len];
    let refused = parent_view.push(&child_frames[0], &mut memory);
    assert!(
        matches!(refused, Err(ForkError::PageDoesNotOpen(0))),
        "{refused:?}"
    );
    assert!(!memory.windows(9).any(|w| w == b"the child"));
}

#[test]
fn a_second_fork_after_rekeying_carries_pages_of_both_epochs() {
    let (mut parent, mut snapshot) = parent();
    update(&mut parent, &mut snapshot);
    let _first = snapshot.offer(&secret(1)).unwrap();
    snapshot.rekey().unwrap();
    count(&mut parent);
    update(&mut parent, &mut snapshot);
    let offer: ForkOffer = snapshot.offer(&secret(2)).unwrap();
    let mut second = child(&secret(2), offer.as_bytes(), &frames(&snapshot)).unwrap();
    assert_eq!(second.memory(), parent.memory());
    assert_eq!(call(&mut second, "recall", b""), CANARY);
    assert_eq!(count(&mut second), 7);
}

#[test]
fn a_grown_memory_forks_and_untouched_pages_are_not_sent() {
    let wat = r#"(module
        (memory (export "memory") 1)
        (func (export "grow") (result i32)
            (drop (memory.grow (i32.const 3)))
            (i32.store (i32.const 200000) (i32.const 42))
            (i32.const 0)))"#;
    let prepared = prepare("grower", wat.as_bytes()).unwrap();
    let mut app = App::start(engine(), "grower", &prepared, &TaskLimits::default()).unwrap();
    let mut snapshot = Snapshot::new([1; 16], [0; 32], runtime(&app)).unwrap();
    update(&mut app, &mut snapshot);
    app.call("grow", b"").unwrap();
    let stats = update(&mut app, &mut snapshot);
    assert_eq!((stats.pages, stats.sealed), (64, 1));
    let offer = snapshot.offer(&secret(1)).unwrap();
    let mut restorer = Restorer::open(&secret(1), offer.as_bytes()).unwrap();
    let state = restorer.state().clone();
    assert_eq!(state.memory_len, 4 * 65536);
    let mut child = App::start(engine(), "grower", &prepared, &state.runtime.limits).unwrap();
    child
        .restore(state.memory_len, &state.globals, state.runtime.counters)
        .unwrap();
    for chunk in frames(&snapshot) {
        restorer.push(&chunk, child.memory_mut()).unwrap();
    }
    restorer.finish(child.memory_mut()).unwrap();
    assert_eq!(child.memory(), app.memory());
    // The restorer refuses a buffer of another size.
    let restorer = Restorer::open(&secret(1), offer.as_bytes()).unwrap();
    assert!(matches!(
        restorer.finish(&mut vec![0; PAGE_SIZE]),
        Err(ForkError::MemorySize { .. })
    ));
}
