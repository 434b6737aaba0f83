//! Constant memory, measured: a counting global allocator records the peak of live heap
//! bytes while 64 MiB, generated as it is read, are encrypted, piped and decrypted.
//!
//! Alone in its own test binary (one test), so no other test's allocations count.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use veritee_stream::{DEFAULT_CHUNK_SIZE, DecryptReader, EncryptWriter, TAG_LEN, sealing_threads};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(live, Ordering::SeqCst);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::SeqCst);
}

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged, and only counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes now, and resets the peak to it.
fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::SeqCst);
    PEAK.store(live, Ordering::SeqCst);
    live
}

fn peak_above(baseline: usize) -> usize {
    PEAK.load(Ordering::SeqCst).saturating_sub(baseline)
}

#[test]
fn heap_peak_is_a_few_chunks_whatever_the_length() {
    const LEN: u64 = 64 << 20;
    const SLACK: usize = 256 << 10;
    let chunk = DEFAULT_CHUNK_SIZE as usize;

    // Encrypting alone, to a sink, in `io::copy`'s small writes: one chunk.
    let baseline = reset_peak();
    let mut writer = EncryptWriter::new(&key(), KEY_ID, DEFAULT_CHUNK_SIZE, io::sink()).unwrap();
    io::copy(&mut PatternReader::new(LEN), &mut writer).unwrap();
    writer.finish().unwrap();
    let encrypt_peak = peak_above(baseline);
    assert!(
        encrypt_peak <= chunk + TAG_LEN + SLACK,
        "encrypting 64 MiB peaked at {encrypt_peak} heap bytes"
    );

    // Encrypting into a pipe while decrypting from it: the writer's chunk and the
    // reader's two.
    let baseline = reset_peak();
    let (pipe_out, pipe_in) = io::pipe().unwrap();
    let producer = std::thread::spawn(move || {
        let mut writer = EncryptWriter::new(&key(), KEY_ID, DEFAULT_CHUNK_SIZE, pipe_in).unwrap();
        io::copy(&mut PatternReader::new(LEN), &mut writer).unwrap();
        drop(writer.finish().unwrap());
    });
    let mut reader = DecryptReader::new(&key(), pipe_out).unwrap();
    let mut checker = PatternChecker::default();
    assert_eq!(io::copy(&mut reader, &mut checker).unwrap(), LEN);
    producer.join().unwrap();
    drop(reader);
    let pipeline_peak = peak_above(baseline);
    assert!(
        pipeline_peak <= 3 * (chunk + TAG_LEN + 1) + SLACK,
        "encrypting and decrypting 64 MiB peaked at {pipeline_peak} heap bytes"
    );

    // One write of the whole 64 MiB: sealed a batch at a time, two chunks per sealing
    // thread.
    let data: Vec<u8> = (0..LEN as usize).map(|i| (i % 251) as u8).collect();
    let baseline = reset_peak();
    let mut writer = EncryptWriter::new(&key(), KEY_ID, DEFAULT_CHUNK_SIZE, io::sink()).unwrap();
    writer.write_all(&data).unwrap();
    writer.finish().unwrap();
    let batch_peak = peak_above(baseline);
    assert!(
        batch_peak <= 2 * sealing_threads() * (chunk + TAG_LEN) + SLACK,
        "encrypting 64 MiB in one write peaked at {batch_peak} heap bytes"
    );
    eprintln!(
        "heap peak: encrypt {encrypt_peak} bytes, encrypt + decrypt {pipeline_peak} bytes, one write {batch_peak} bytes"
    );
}
