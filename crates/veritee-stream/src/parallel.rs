//! Chunks sealed side by side when the machine has more than one core.
//!
//! A stream's chunks are independent AES-GCM messages (each under its own nonce), so a
//! run of them can be sealed on several threads and still come out byte for byte as
//! one thread would seal them. The writing thread seals one chunk of each run itself
//! (it has just written it, so it is in this core's cache) and a pool of one thread
//! fewer than the cores seals the others: one thread per core, none spinning on a core
//! another needs. The pool's threads are persistent, so a stream pays no thread start
//! per run; a thread spawned per run was tried first and lost on a 2-vCPU VM, where a
//! new thread was not moved to the idle core in time for a few hundred microseconds of
//! work (BENCHMARKS.md, issue 18, "Not kept").

use std::sync::OnceLock;

/// The pool beside the writing thread: `None` on a single core.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores - 1)
            .thread_name(|i| format!("veritee-seal-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Threads a stream's chunks are sealed on: the writing thread and the pool beside
/// it, one per core. An [`EncryptWriter`](crate::EncryptWriter) holds this many
/// chunks (one per thread), so that each thread has one to seal.
pub fn sealing_threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads() + 1)
}

/// Calls `seal(i, region_i)` for each `stride`-byte piece of `region` (the last may
/// be shorter), the pieces dealt round-robin between this thread (the first of them
/// among its share) and the pool's threads; or all in turn on this thread when there
/// is one piece or one core. An error is returned (this thread's first); other
/// pieces may or may not have been processed.
pub(crate) fn try_for_each_piece<E, F>(region: &mut [u8], stride: usize, seal: F) -> Result<(), E>
where
    E: Send,
    F: Fn(usize, &mut [u8]) -> Result<(), E> + Sync,
{
    let pool = match pool() {
        Some(pool) if region.len() > stride => pool,
        _ => {
            return region
                .chunks_mut(stride)
                .enumerate()
                .try_for_each(|(i, piece)| seal(i, piece));
        }
    };
    // Dealt round-robin (chunks are the same size but the last): share 0 to this
    // thread, one share to each pool thread.
    let threads = pool.current_num_threads() + 1;
    let mut shares: Vec<Vec<(usize, &mut [u8])>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, piece) in region.chunks_mut(stride).enumerate() {
        shares[i % threads].push((i, piece));
    }
    let mut shares = shares.into_iter();
    let own = shares.next().unwrap_or_default();
    let seal = &seal;
    let run = move |share: Vec<(usize, &mut [u8])>| {
        share.into_iter().try_for_each(|(i, piece)| seal(i, piece))
    };
    let run = &run;
    let (sender, receiver) = std::sync::mpsc::channel();
    let own_result = pool.in_place_scope(|scope| {
        for share in shares.filter(|share| !share.is_empty()) {
            let sender = sender.clone();
            // The receiver outlives the scope, so the send cannot fail.
            scope.spawn(move |_| drop(sender.send(run(share))));
        }
        run(own)
    });
    drop(sender);
    receiver.into_iter().fold(own_result, Result::and)
}

/// As [`try_for_each_piece`] over `out`, each piece paired with its
/// `plaintext_stride`-byte piece of `plaintext` (empty past its end: a stream's final
/// chunk may be empty).
pub(crate) fn try_for_each_pair<E, F>(
    plaintext: &[u8],
    plaintext_stride: usize,
    out: &mut [u8],
    out_stride: usize,
    seal: F,
) -> Result<(), E>
where
    E: Send,
    F: Fn(usize, &[u8], &mut [u8]) -> Result<(), E> + Sync,
{
    let plaintext_of = |i: usize| {
        let start = (i * plaintext_stride).min(plaintext.len());
        &plaintext[start..(start + plaintext_stride).min(plaintext.len())]
    };
    try_for_each_piece(out, out_stride, |i, piece| seal(i, plaintext_of(i), piece))
}
