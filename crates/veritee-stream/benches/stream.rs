//! Throughput of the stream format against raw AES-256-GCM, 64 MiB in 1 MiB chunks.
//!
//! Raw: aws-lc-rs `LessSafeKey` over the same 64 chunks with STREAM nonces, in place
//! (`seal_in_place_separate_tag`) and out of place into one chunk buffer
//! (`open_separate_gather`): the AEAD work alone, no framing, no copies, no I/O.
//!
//! Stream: `EncryptWriter` into `io::sink()` (fed in one `write_all`, and in 64 KiB
//! writes as `io::copy`-style callers do), on the pool's threads (one per core, the
//! default) and on one thread (`_one_thread`); chunks laid out 8 to a piece as the
//! client uploads a task's files, sealed together on the pool
//! (`ChunkSealer::seal_laid_out`) or one by one where they lie (`seal_at_end`, what the
//! client did before); and `DecryptReader` over the ciphertext in
//! memory (read in 1 MiB and in 64 KiB pieces, and through `new_buffered`, which opens
//! each chunk where it lies in a buffering source). Each iteration includes the header
//! and its key derivation.

use std::hint::black_box;
use std::io::{self, Read, Write};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use veritee_crypto::Confidential;
use veritee_stream::{
    ChunkSealer, DecryptReader, EncryptWriter, StreamKey, TAG_LEN, sealing_threads,
};

const LEN: usize = 64 << 20;
const CHUNK: usize = 1 << 20;
const PIECE: usize = 64 << 10;
/// Chunks per upload piece, as the client sends a task's files.
const PIECES_OF: usize = 8;

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
    // The ceiling for sealing on the pool: the same raw work split over its threads,
    // each sealing every n-th chunk in place.
    let threads = sealing_threads();
    g.bench_function(format!("raw_aws_lc_seal_in_place_{threads}_threads"), |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                let mut shares: Vec<Vec<(usize, &mut [u8])>> =
                    (0..threads).map(|_| Vec::new()).collect();
                for (i, chunk) in buffer.chunks_mut(CHUNK).enumerate() {
                    shares[i % threads].push((i, chunk));
                }
                for share in shares {
                    let raw = &raw;
                    scope.spawn(move || {
                        for (i, chunk) in share {
                            let tag = raw
                                .seal_in_place_separate_tag(
                                    nonce(i, i + 1 == chunks),
                                    Aad::empty(),
                                    chunk,
                                )
                                .unwrap();
                            black_box(tag.as_ref()[0]);
                        }
                    });
                }
            })
        })
    });
    // The writer on the pool's threads (the default), then on the writing thread alone.
    for (suffix, threads) in [("", sealing_threads()), ("_one_thread", 1)] {
        g.bench_function(format!("stream_write_all{suffix}"), |b| {
            b.iter(|| {
                let mut w = EncryptWriter::new(&key, "bench", CHUNK as u32, io::sink())
                    .unwrap()
                    .on_threads(threads);
                w.write_all(black_box(&data)).unwrap();
                w.finish().unwrap();
            })
        });
        g.bench_function(format!("stream_64KiB_writes{suffix}"), |b| {
            b.iter(|| {
                let mut w = EncryptWriter::new(&key, "bench", CHUNK as u32, io::sink())
                    .unwrap()
                    .on_threads(threads);
                for piece in black_box(&data).chunks(PIECE) {
                    w.write_all(piece).unwrap();
                }
                w.finish().unwrap();
            })
        });
    }
    // As the client seals a task's upload: 8 chunks laid out in one piece at a time,
    // sealed together (on the pool) or one by one where they lie (`seal_at_end`).
    let stride = CHUNK + TAG_LEN;
    let mut piece = vec![0u8; PIECES_OF * stride];
    g.bench_function("laid_out_8_chunk_pieces", |b| {
        b.iter(|| {
            let mut sealer = ChunkSealer::new(&key, "bench", CHUNK as u32).unwrap();
            let pieces = data.chunks(PIECES_OF * CHUNK).count();
            for (p, plaintext) in data.chunks(PIECES_OF * CHUNK).enumerate() {
                for (c, chunk) in plaintext.chunks(CHUNK).enumerate() {
                    piece[c * stride..c * stride + CHUNK].copy_from_slice(chunk);
                }
                sealer.seal_laid_out(&mut piece, p + 1 == pieces).unwrap();
                black_box(piece[0]);
            }
        })
    });
    let mut gathered = Vec::with_capacity(PIECES_OF * stride);
    g.bench_function("laid_out_8_chunk_pieces_one_by_one", |b| {
        b.iter(|| {
            let mut sealer = ChunkSealer::new(&key, "bench", CHUNK as u32).unwrap();
            let pieces = data.chunks(PIECES_OF * CHUNK).count();
            for (p, plaintext) in data.chunks(PIECES_OF * CHUNK).enumerate() {
                gathered.clear();
                let chunks = plaintext.chunks(CHUNK).count();
                for (c, chunk) in plaintext.chunks(CHUNK).enumerate() {
                    let start = gathered.len();
                    gathered.extend_from_slice(chunk);
                    let last = p + 1 == pieces && c + 1 == chunks;
                    sealer.seal_at_end(&mut gathered, start, last).unwrap();
                }
                black_box(gathered[0]);
            }
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
