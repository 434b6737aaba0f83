//! Throughput of the stream format against raw AES-256-GCM, 64 MiB in 1 MiB chunks.
//!
//! Raw: aws-lc-rs `LessSafeKey` over the same 64 chunks with STREAM nonces, in place
//! (`seal_in_place_separate_tag`) and out of place into one chunk buffer
//! (`open_separate_gather`): the AEAD work alone, no framing, no copies, no I/O.
//!
//! Stream: `EncryptWriter` into `io::sink()` (fed in one `write_all`, and in 64 KiB
//! writes as `io::copy`-style callers do), and `DecryptReader` over the ciphertext in
//! memory (read in 1 MiB and in 64 KiB pieces, and through `new_buffered`, which opens
//! each chunk where it lies in a buffering source). Each iteration includes the header
//! and its key derivation.

use std::hint::black_box;
use std::io::{self, Read, Write};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use veritee_crypto::Confidential;
use veritee_stream::{DecryptReader, EncryptWriter, StreamKey, TAG_LEN};

const LEN: usize = 64 << 20;
const CHUNK: usize = 1 << 20;
const PIECE: usize = 64 << 10;

fn nonce(index: usize, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&(index as u64).to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

fn data() -> Vec<u8> {
    (0..LEN)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

fn encrypt(c: &mut Criterion) {
    let data = data();
    let key = StreamKey::new(&Confidential::new([7u8; 32]));
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let chunks = LEN / CHUNK;

    let mut g = c.benchmark_group("encrypt_64MiB_1MiB_chunks");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);

    let mut buffer = data.clone();
    g.bench_function("raw_aws_lc_seal_in_place", |b| {
        b.iter(|| {
            for (i, chunk) in buffer.chunks_mut(CHUNK).enumerate() {
                let tag = raw
                    .seal_in_place_separate_tag(nonce(i, i + 1 == chunks), Aad::empty(), chunk)
                    .unwrap();
                black_box(tag.as_ref()[0]);
            }
        })
    });
    g.bench_function("stream_write_all", |b| {
        b.iter(|| {
            let mut w = EncryptWriter::new(&key, "bench", CHUNK as u32, io::sink()).unwrap();
            w.write_all(black_box(&data)).unwrap();
            w.finish().unwrap();
        })
    });
    g.bench_function("stream_64KiB_writes", |b| {
        b.iter(|| {
            let mut w = EncryptWriter::new(&key, "bench", CHUNK as u32, io::sink()).unwrap();
            for piece in black_box(&data).chunks(PIECE) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
        })
    });
    g.finish();
}

fn decrypt(c: &mut Criterion) {
    let data = data();
    let key = StreamKey::new(&Confidential::new([7u8; 32]));
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let chunks = LEN / CHUNK;

    let mut sealed = Vec::with_capacity(LEN + chunks * TAG_LEN);
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        let mut buf = chunk.to_vec();
        let tag = raw
            .seal_in_place_separate_tag(nonce(i, i + 1 == chunks), Aad::empty(), &mut buf)
            .unwrap();
        sealed.extend_from_slice(&buf);
        sealed.extend_from_slice(tag.as_ref());
    }
    let mut stream = EncryptWriter::new(&key, "bench", CHUNK as u32, Vec::new()).unwrap();
    stream.write_all(&data).unwrap();
    let stream = stream.finish().unwrap();

    let mut g = c.benchmark_group("decrypt_64MiB_1MiB_chunks");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);

    let mut out = vec![0u8; CHUNK];
    g.bench_function("raw_aws_lc_open", |b| {
        b.iter(|| {
            for (i, chunk) in sealed.chunks(CHUNK + TAG_LEN).enumerate() {
                let (ciphertext, tag) = chunk.split_at(CHUNK);
                raw.open_separate_gather(
                    nonce(i, i + 1 == chunks),
                    Aad::empty(),
                    ciphertext,
                    tag,
                    &mut out,
                )
                .unwrap();
                black_box(&out);
            }
        })
    });
    for (name, piece) in [("stream_1MiB_reads", CHUNK), ("stream_64KiB_reads", PIECE)] {
        let mut out = vec![0u8; piece];
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut r = DecryptReader::new(&key, black_box(&stream[..])).unwrap();
                let mut total = 0;
                loop {
                    let n = r.read(&mut out).unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n;
                    black_box(&out);
                }
                assert_eq!(total, LEN);
            })
        });
    }
    // The same over a source that buffers (`BufRead`): each chunk is opened where it
    // lies in the source, as a `BufReader` with room for a chunk allows.
    let mut out = vec![0u8; CHUNK];
    g.bench_function("stream_1MiB_reads_buffered_source", |b| {
        b.iter(|| {
            let mut r = DecryptReader::new_buffered(&key, black_box(&stream[..])).unwrap();
            let mut total = 0;
            loop {
                let n = r.read(&mut out).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
                black_box(&out);
            }
            assert_eq!(total, LEN);
        })
    });
    g.finish();
}

criterion_group!(benches, encrypt, decrypt);
criterion_main!(benches);
