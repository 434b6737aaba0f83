//! The stream format seen from outside: round trips, and every way of tampering with a
//! stream (flipped bytes, truncation, reordering, splicing, header fields, wrong key,
//! trailing data) is an error that names where it is.

mod common;

use std::io::{self, Read, Write};

use common::*;
use proptest::prelude::*;
use veritee_crypto::Confidential;
use veritee_stream::{
    ChunkOpener, ChunkSealer, DEFAULT_CHUNK_SIZE, DecryptReader, EncryptWriter, HEADER_FIXED_LEN,
    HEADER_TAG_LEN, Header, MAX_CHUNK_SIZE, MAX_CONTEXT_LEN, STREAM_ID_LEN, StreamError, StreamKey,
    TAG_LEN, Version, read_header,
};

const CHUNK_SIZES: [u32; 3] = [4096, 8192, 65536];

fn sizes(chunk: usize) -> [usize; 7] {
    [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 7]
}

/// Chunks a writer makes for `len` bytes: the final one may be full, never empty unless
/// the stream is.
fn chunk_count(len: usize, chunk: usize) -> usize {
    len.div_ceil(chunk).max(1)
}

#[test]
fn round_trips_at_every_boundary_size() {
    for chunk_size in CHUNK_SIZES {
        let chunk = chunk_size as usize;
        for len in sizes(chunk) {
            let data = pattern(len);
            let stream = encrypt(&data, chunk_size);
            let header = read_header(&mut &stream[..]).unwrap();
            assert_eq!(header.chunk_size(), chunk_size);
            assert_eq!(header.key_id(), KEY_ID);
            assert_eq!(
                stream.len(),
                header.encoded_len() + len + chunk_count(len, chunk) * TAG_LEN,
                "chunk {chunk} len {len}"
            );
            assert_eq!(decrypt(&stream).unwrap(), data, "chunk {chunk} len {len}");
        }
    }
}

#[test]
fn round_trips_whatever_the_write_and_read_sizes() {
    let chunk_size = 4096;
    let data = pattern(3 * 4096 + 7);
    for piece in [1, 7, 1000, 4095, 4096, 4097, 9000] {
        let mut writer = EncryptWriter::new(&key(), KEY_ID, chunk_size, Vec::new()).unwrap();
        for part in data.chunks(piece) {
            writer.write_all(part).unwrap();
        }
        let stream = writer.finish().unwrap();
        for read_size in [1, 13, 4095, 4096, 4097, 1 << 16] {
            let mut reader = DecryptReader::new(&key(), &stream[..]).unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_size];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert!(reader.is_complete());
            assert_eq!(out, data, "writes of {piece}, reads of {read_size}");
        }
    }
}

#[test]
fn default_chunk_size_round_trip() {
    let data = pattern(DEFAULT_CHUNK_SIZE as usize + 1);
    let stream = encrypt(&data, DEFAULT_CHUNK_SIZE);
    assert_eq!(Parts::of(&stream).chunks.len(), 2);
    assert_eq!(decrypt(&stream).unwrap(), data);
}

#[test]
fn same_data_encrypts_differently_each_time() {
    let data = pattern(100);
    let a = encrypt(&data, 4096);
    let b = encrypt(&data, 4096);
    assert_ne!(a, b);
    assert_ne!(
        read_header(&mut &a[..]).unwrap().stream_id(),
        read_header(&mut &b[..]).unwrap().stream_id()
    );
}

#[test]
fn every_single_byte_flip_is_detected() {
    let data = pattern(2 * 4096 + 100);
    let stream = encrypt(&data, 4096);
    let parts = Parts::of(&stream);
    assert_eq!(parts.chunks.len(), 3);
    let header_len = parts.header.len();
    for at in 0..stream.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = stream.clone();
            bad[at] ^= mask;
            let err = decrypt(&bad).expect_err(&format!("flip {mask:#x} at {at} undetected"));
            if at >= header_len {
                let index = ((at - header_len) / (4096 + TAG_LEN)) as u64;
                assert_eq!(err, StreamError::ChunkTampered { index }, "flip at {at}");
                assert!(err.to_string().contains(&format!("chunk {index}")));
            } else if at < 4 {
                assert_eq!(err, StreamError::BadMagic);
            } else if at == 4 {
                assert!(matches!(err, StreamError::UnsupportedVersion { .. }));
            } else if at >= HEADER_FIXED_LEN + KEY_ID.len() {
                // Stream id and tag.
                assert!(matches!(err, StreamError::HeaderTampered { .. }), "{err}");
            }
        }
    }
}

#[test]
fn truncation_anywhere_is_detected() {
    for len in [3 * 4096 + 7, 2 * 4096, 0] {
        let stream = encrypt(&pattern(len), 4096);
        let parts = Parts::of(&stream);
        let header_len = parts.header.len();
        let full = 4096 + TAG_LEN;
        for cut in 0..stream.len() {
            let err = decrypt(&stream[..cut]).expect_err(&format!("cut at {cut} undetected"));
            if cut < header_len {
                assert_eq!(err, StreamError::HeaderTruncated, "cut at {cut}");
                continue;
            }
            let index = ((cut - header_len) / full) as u64;
            let into_chunk = (cut - header_len) % full;
            let expected = match into_chunk {
                0 => StreamError::Truncated {
                    after_chunks: index,
                },
                n if n < TAG_LEN => StreamError::ChunkTooShort { index, len: n },
                _ => StreamError::ChunkTampered { index },
            };
            assert_eq!(err, expected, "stream of {len}, cut at {cut}");
        }
    }
}

#[test]
fn truncation_messages_name_the_chunk_count() {
    let stream = encrypt(&pattern(3 * 4096 + 7), 4096);
    let parts = Parts::of(&stream);
    let err = decrypt(&stream[..parts.offset(2)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the stream ends after 2 chunks without a final chunk: it was truncated"
    );
    let err = decrypt(&parts.header).unwrap_err();
    assert_eq!(err, StreamError::Truncated { after_chunks: 0 });
}

#[test]
fn dropping_the_writer_without_finish_leaves_a_truncated_stream() {
    let mut stream = Vec::new();
    {
        let mut writer = EncryptWriter::new(&key(), KEY_ID, 4096, &mut stream).unwrap();
        writer.write_all(&pattern(2 * 4096 + 5)).unwrap();
    }
    assert_eq!(
        decrypt(&stream).unwrap_err(),
        StreamError::Truncated { after_chunks: 2 }
    );
}

#[test]
fn reordered_repeated_and_dropped_chunks_are_detected() {
    let stream = encrypt(&pattern(3 * 4096 + 7), 4096);
    let parts = Parts::of(&stream);
    assert_eq!(parts.chunks.len(), 4);

    let mut swapped = Parts::of(&stream);
    swapped.chunks.swap(0, 1);
    assert_eq!(
        decrypt(&swapped.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 0 }
    );

    let mut swapped = Parts::of(&stream);
    swapped.chunks.swap(1, 2);
    assert_eq!(
        decrypt(&swapped.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 1 }
    );

    let mut repeated = Parts::of(&stream);
    repeated.chunks.insert(1, parts.chunks[0].clone());
    assert_eq!(
        decrypt(&repeated.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 1 }
    );

    let mut dropped = Parts::of(&stream);
    dropped.chunks.remove(1);
    assert_eq!(
        decrypt(&dropped.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 1 }
    );

    // The final chunk moved forward: it does not authenticate at another index.
    let mut early_end = Parts::of(&stream);
    early_end.chunks.remove(2);
    early_end.chunks.remove(1);
    assert_eq!(
        decrypt(&early_end.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 1 }
    );
}

#[test]
fn chunks_spliced_from_another_stream_with_the_same_key_and_key_id_fail() {
    let data = pattern(3 * 4096 + 7);
    let a = Parts::of(&encrypt(&data, 4096));
    let b = Parts::of(&encrypt(&data, 4096));
    assert_eq!(
        read_header(&mut &a.header[..]).unwrap().key_id(),
        read_header(&mut &b.header[..]).unwrap().key_id()
    );

    for i in 0..a.chunks.len() {
        let mut spliced = Parts::of(&a.join());
        spliced.chunks[i] = b.chunks[i].clone();
        assert_eq!(
            decrypt(&spliced.join()).unwrap_err(),
            StreamError::ChunkTampered { index: i as u64 },
            "chunk {i} from the other stream"
        );
    }

    // B's (valid) header on A's chunks.
    let mut spliced = Parts::of(&a.join());
    spliced.header = b.header.clone();
    assert_eq!(
        decrypt(&spliced.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 0 }
    );
}

#[test]
fn each_header_field_is_authenticated() {
    let stream = encrypt(&pattern(5000), 4096);
    let header_len = read_header(&mut &stream[..]).unwrap().encoded_len();
    let key_id_at = HEADER_FIXED_LEN;
    let stream_id_at = key_id_at + KEY_ID.len();
    let tag_at = stream_id_at + STREAM_ID_LEN;
    let tampered = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bad = stream.clone();
        edit(&mut bad);
        decrypt(&bad).unwrap_err()
    };
    let header_tampered = StreamError::HeaderTampered {
        key_id: KEY_ID.into(),
    };

    assert_eq!(tampered(&|s| s[0] = b'X'), StreamError::BadMagic);
    assert_eq!(
        tampered(&|s| s[4] = 3),
        StreamError::UnsupportedVersion { version: 3 }
    );
    // Relabelled as version 2, the stream id's first byte reads as a context length.
    assert!(matches!(
        tampered(&|s| s[4] = 2),
        StreamError::HeaderTampered { .. } | StreamError::ContextEmpty
    ));
    assert_eq!(
        tampered(&|s| s[4] = 0),
        StreamError::UnsupportedVersion { version: 0 }
    );
    // Another valid chunk size: only the tag catches it.
    assert_eq!(
        tampered(&|s| s[5..9].copy_from_slice(&8192u32.to_be_bytes())),
        header_tampered
    );
    // Oversized and malformed chunk sizes are refused before anything is allocated.
    for size in [2 * MAX_CHUNK_SIZE, u32::MAX, 3000, 0, 4097] {
        assert_eq!(
            tampered(&|s| s[5..9].copy_from_slice(&size.to_be_bytes())),
            StreamError::BadChunkSize { size }
        );
    }
    // The key id, same length.
    let mut renamed = KEY_ID.to_owned();
    renamed.replace_range(0..1, "x");
    assert_eq!(
        tampered(&|s| s[key_id_at] = b'x'),
        StreamError::HeaderTampered { key_id: renamed }
    );
    assert_eq!(
        tampered(&|s| s[key_id_at] = 0xFF),
        StreamError::KeyIdNotUtf8
    );
    // The key id's length.
    assert_eq!(tampered(&|s| s[9] = 0), StreamError::KeyIdEmpty);
    assert_eq!(
        tampered(&|s| s[9] = 200),
        StreamError::KeyIdTooLong { len: 200 }
    );
    assert!(matches!(
        tampered(&|s| s[9] -= 1),
        StreamError::HeaderTampered { .. }
    ));
    // Stream id and tag.
    assert_eq!(tampered(&|s| s[stream_id_at + 5] ^= 1), header_tampered);
    assert_eq!(tampered(&|s| s[tag_at + 31] ^= 1), header_tampered);
    assert_eq!(tag_at + 32, header_len);
    // A header shortened or lengthened by a byte in the key id.
    assert!(
        tampered(&|s| {
            s.remove(key_id_at);
        })
        .to_string()
        .contains("header")
    );
    assert!(matches!(
        tampered(&|s| s.insert(key_id_at, b'a')),
        StreamError::HeaderTampered { .. }
    ));
}

#[test]
fn a_wrong_key_is_refused_at_the_header() {
    let stream = encrypt(&pattern(100), 4096);
    let err = decrypt_with(&other_key(), &stream).unwrap_err();
    assert_eq!(
        err,
        StreamError::HeaderTampered {
            key_id: KEY_ID.into()
        }
    );
    assert_eq!(
        err.to_string(),
        "the stream header failed authentication: it was altered, or the key given is not the key named \"user-data-key-1\""
    );
}

#[test]
fn key_lookup_by_the_header_key_id() {
    let stream = encrypt(&pattern(100), 4096);
    let mut asked = None;
    let mut reader = DecryptReader::with_key_lookup(&stream[..], |id| {
        asked = Some(id.to_owned());
        Some(key())
    })
    .unwrap();
    assert_eq!(asked.as_deref(), Some(KEY_ID));
    assert_eq!(reader.header().key_id(), KEY_ID);
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, pattern(100));

    let err = DecryptReader::with_key_lookup(&stream[..], |_| None).unwrap_err();
    assert_eq!(
        stream_error(err),
        StreamError::UnknownKey {
            key_id: KEY_ID.into()
        }
    );

    // Reading the header alone, then decrypting the rest with the key found.
    let mut input = &stream[..];
    let header = read_header(&mut input).unwrap();
    assert_eq!(header.key_id(), KEY_ID);
    let mut reader = DecryptReader::with_header(&key(), header, input).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, pattern(100));
}

#[test]
fn data_after_the_final_chunk_is_refused() {
    // A short final chunk: the garbage joins it, and it no longer authenticates.
    let short = encrypt(&pattern(4096 + 10), 4096);
    for garbage in [&b"x"[..], &[0u8; 100], &[0u8; 5000]] {
        let mut bad = short.clone();
        bad.extend_from_slice(garbage);
        assert_eq!(
            decrypt(&bad).unwrap_err(),
            StreamError::ChunkTampered { index: 1 }
        );
    }
    // A full final chunk: it authenticates as final, and what follows is named.
    let full = encrypt(&pattern(2 * 4096), 4096);
    for garbage in [&b"x"[..], &[0u8; 100], &[0u8; 5000]] {
        let mut bad = full.clone();
        bad.extend_from_slice(garbage);
        let err = decrypt(&bad).unwrap_err();
        assert_eq!(err, StreamError::TrailingData { last_index: 1 });
        assert_eq!(
            err.to_string(),
            "data follows the final chunk (chunk 1): the stream was extended"
        );
    }
    // A whole second stream appended.
    let mut two = full.clone();
    two.extend_from_slice(&encrypt(&pattern(10), 4096));
    assert_eq!(
        decrypt(&two).unwrap_err(),
        StreamError::TrailingData { last_index: 1 }
    );
}

#[test]
fn errors_stick_and_carry_the_stream_error() {
    let stream = encrypt(&pattern(3 * 4096), 4096);
    let mut bad = stream.clone();
    let at = Parts::of(&stream).offset(1) + 3;
    bad[at] ^= 1;
    let mut reader = DecryptReader::new(&key(), &bad[..]).unwrap();
    let mut buf = vec![0u8; 4096];
    assert_eq!(reader.read(&mut buf).unwrap(), 4096, "chunk 0 is fine");
    for _ in 0..3 {
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            StreamError::from_io(&err),
            Some(&StreamError::ChunkTampered { index: 1 })
        );
        assert!(err.to_string().starts_with("chunk 1 failed authentication"));
    }
    assert!(!reader.is_complete());
}

/// Hands out its input a few bytes at a time, with an `Interrupted` now and then.
struct Stuttering<'a> {
    input: &'a [u8],
    calls: usize,
}

impl Read for Stuttering<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.input.len()).min(self.calls % 500 + 1);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_and_interruptions_from_the_input() {
    let data = pattern(3 * 4096 + 7);
    let stream = encrypt(&data, 4096);
    let input = Stuttering {
        input: &stream,
        calls: 1,
    };
    let mut reader = DecryptReader::new(&key(), input).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
}

/// An input that fails once, midway, with a retryable error.
struct FailsOnce<'a> {
    input: &'a [u8],
    fail_at: usize,
    read: usize,
    failed: bool,
}

impl Read for FailsOnce<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.failed && self.read >= self.fail_at {
            self.failed = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len()).min(1000);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        self.read += n;
        Ok(n)
    }
}

#[test]
fn an_input_error_is_passed_through_and_reading_resumes() {
    let data = pattern(3 * 4096 + 7);
    let stream = encrypt(&data, 4096);
    let input = FailsOnce {
        input: &stream,
        fail_at: 6000,
        read: 0,
        failed: false,
    };
    let mut reader = DecryptReader::new(&key(), input).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 777];
    let mut saw_error = false;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                assert!(StreamError::from_io(&e).is_none());
                saw_error = true;
            }
        }
    }
    assert!(saw_error);
    assert_eq!(out, data);
}

/// A writer that fails after `limit` bytes.
struct Full {
    written: usize,
    limit: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() > self.limit {
            return Err(io::Error::other("disk full"));
        }
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_output_error_leaves_the_writer_unusable() {
    let sink = Full {
        written: 0,
        limit: 5000,
    };
    let mut writer = EncryptWriter::new(&key(), KEY_ID, 4096, sink).unwrap();
    let err = writer.write_all(&pattern(3 * 4096)).unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    let err = writer.write(b"more").unwrap_err();
    assert_eq!(
        StreamError::from_io(&err),
        Some(&StreamError::Poisoned("disk full".into()))
    );
    assert!(writer.finish().is_err());
}

#[test]
fn bad_writer_arguments_are_refused() {
    let err = EncryptWriter::new(&key(), KEY_ID, 1000, Vec::new()).unwrap_err();
    assert_eq!(stream_error(err), StreamError::BadChunkSize { size: 1000 });
    let err = EncryptWriter::new(&key(), &"k".repeat(129), 4096, Vec::new()).unwrap_err();
    assert_eq!(stream_error(err), StreamError::KeyIdTooLong { len: 129 });
    let err = EncryptWriter::new(&key(), "", 4096, Vec::new()).unwrap_err();
    assert_eq!(stream_error(err), StreamError::KeyIdEmpty);
}

#[test]
fn a_transport_reencrypts_chunk_by_chunk() {
    // The client's stream, under the key the client and the enclave share.
    let data = pattern(3 * 4096 + 7);
    let client = Parts::of(&encrypt(&data, 4096));
    let header = read_header(&mut &client.header[..]).unwrap();
    let mut opener = ChunkOpener::new(&key(), &header).unwrap();

    // A node opens each chunk as it arrives (one request each) and seals it into a new
    // stream under another key.
    let mut sealer = ChunkSealer::new(&other_key(), "node-key", 4096).unwrap();
    let mut out = sealer.header().to_bytes();
    let count = client.chunks.len();
    for (i, chunk) in client.chunks.iter().enumerate() {
        let last = i + 1 == count;
        let plaintext = opener.open(i as u64, chunk, last).unwrap();
        out.extend_from_slice(&sealer.seal(plaintext.expose(), last).unwrap());
    }
    assert!(opener.is_complete());
    assert!(sealer.is_finished());
    assert_eq!(decrypt_with(&other_key(), &out).unwrap(), data);
    assert_eq!(read_header(&mut &out[..]).unwrap().key_id(), "node-key");
}

#[test]
fn an_empty_final_chunk_after_full_ones_is_accepted() {
    let mut sealer = ChunkSealer::new(&key(), KEY_ID, 4096).unwrap();
    let mut stream = sealer.header().to_bytes();
    stream.extend_from_slice(&sealer.seal(&pattern(4096), false).unwrap());
    stream.extend_from_slice(&sealer.seal(&[], true).unwrap());
    assert_eq!(decrypt(&stream).unwrap(), pattern(4096));
}

#[test]
fn memory_stays_at_two_chunks_over_64_mib() {
    const LEN: u64 = 64 << 20;
    let chunk = DEFAULT_CHUNK_SIZE as usize;
    let (pipe_out, pipe_in) = io::pipe().unwrap();
    let writer = std::thread::spawn(move || {
        let mut writer = EncryptWriter::new(&key(), KEY_ID, DEFAULT_CHUNK_SIZE, pipe_in).unwrap();
        let copied = io::copy(&mut PatternReader::new(LEN), &mut writer).unwrap();
        assert_eq!(copied, LEN);
        assert!(writer.buffer_capacity() <= chunk + TAG_LEN);
        drop(writer.finish().unwrap());
    });
    let mut reader = DecryptReader::new(&key(), pipe_out).unwrap();
    let mut checker = PatternChecker::default();
    let copied = io::copy(&mut reader, &mut checker).unwrap();
    writer.join().unwrap();
    assert_eq!(copied, LEN);
    assert_eq!(checker.position, LEN);
    assert!(reader.is_complete());
    let held = reader.buffer_capacity();
    assert!(
        held <= 2 * (chunk + TAG_LEN + 1),
        "reader holds {held} bytes"
    );
}

fn round_trip_in_pieces(data: &[u8], chunk_size: u32, write_piece: usize, read_piece: usize) {
    let mut writer = EncryptWriter::new(&key(), KEY_ID, chunk_size, Vec::new()).unwrap();
    for part in data.chunks(write_piece) {
        writer.write_all(part).unwrap();
    }
    let stream = writer.finish().unwrap();
    let mut reader = DecryptReader::new(&key(), &stream[..]).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_piece];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_round_trip(
        len in 0usize..50_000,
        chunk_shift in 12u32..15,
        write_piece in 1usize..20_000,
        read_piece in 1usize..20_000,
    ) {
        let data = pattern(len);
        round_trip_in_pieces(&data, 1 << chunk_shift, write_piece, read_piece);
    }

    #[test]
    fn prop_any_flip_is_detected(
        len in 0usize..20_000,
        chunk_shift in 12u32..14,
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let stream = encrypt(&pattern(len), 1 << chunk_shift);
        let mut bad = stream.clone();
        let at = at.index(bad.len());
        bad[at] ^= mask;
        prop_assert!(decrypt(&bad).is_err());
    }

    #[test]
    fn prop_any_truncation_is_detected(
        len in 0usize..20_000,
        chunk_shift in 12u32..14,
        cut in any::<prop::sample::Index>(),
    ) {
        let stream = encrypt(&pattern(len), 1 << chunk_shift);
        let cut = cut.index(stream.len());
        prop_assert!(decrypt(&stream[..cut]).is_err());
    }
}

/// Checks a golden stream (key 0..32, plaintext of 4106 bytes `i % 251`) as the crate
/// documentation states the construction, with aws-lc-rs alone: the header tag over
/// `golden[..tag start]`, the payload key from its hash, both chunk nonces.
fn recompute_with_aws_lc(golden: &[u8], header_len: usize, stream_id: &[u8], tag: &[u8]) {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::{digest, hkdf, hmac};

    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    fn hkdf32(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> [u8; 32] {
        let mut out = [0u8; 32];
        hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
            .extract(ikm)
            .expand(info, Len32)
            .unwrap()
            .fill(&mut out)
            .unwrap();
        out
    }

    let data_key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let plaintext: Vec<u8> = (0..4096 + 10).map(|i| (i % 251) as u8).collect();
    let authenticated = &golden[..header_len - tag.len()];

    let header_key = hkdf32(&data_key, stream_id, &[b"veritee stream v1 header"]);
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, &header_key),
        authenticated,
        tag,
    )
    .expect("header tag");

    let header_hash = digest::digest(&digest::SHA256, authenticated);
    let payload_key = hkdf32(
        &data_key,
        stream_id,
        &[b"veritee stream v1", header_hash.as_ref()],
    );
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &payload_key).unwrap());
    let mut chunks = golden[header_len..].to_vec();
    assert_eq!(chunks.len(), 4096 + 16 + 10 + 16);
    let (first, second) = chunks.split_at_mut(4096 + 16);
    let mut nonce = [0u8; 12];
    let opened = aead
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), first)
        .expect("chunk 0");
    assert_eq!(opened, &plaintext[..4096]);
    nonce[10] = 1; // counter 1
    nonce[11] = 1; // final
    let opened = aead
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), second)
        .expect("chunk 1");
    assert_eq!(opened, &plaintext[4096..]);
}

/// The construction as the crate documentation states it, recomputed with aws-lc-rs
/// alone over the golden stream: header tag, payload key, both chunk nonces.
#[test]
fn the_documented_construction_matches_the_golden_stream() {
    let golden = include_bytes!("data/v1-golden.bin");

    let key_id = b"golden-key";
    let header_len = 10 + key_id.len() + 32 + 32;
    assert_eq!(&golden[..10], b"VTDX\x01\x00\x00\x10\x00\x0a");
    assert_eq!(&golden[10..20], key_id);
    let stream_id = &golden[20..52];
    let tag = &golden[52..header_len];
    recompute_with_aws_lc(&golden[..], header_len, stream_id, tag);
}

// Version 2: the context.

/// A context of `len` bytes, none of them zero, all of them different from the
/// neighbouring ones.
fn context_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 250) as u8 + 1).collect()
}

/// Where a version-2 header's fields start, for `KEY_ID` and a context of `m` bytes.
struct V2Offsets {
    context_len: usize,
    context: usize,
    stream_id: usize,
    tag: usize,
    end: usize,
}

fn v2_offsets(m: usize) -> V2Offsets {
    let context_len = HEADER_FIXED_LEN + KEY_ID.len();
    let context = context_len + 1;
    let stream_id = context + m;
    let tag = stream_id + STREAM_ID_LEN;
    V2Offsets {
        context_len,
        context,
        stream_id,
        tag,
        end: tag + HEADER_TAG_LEN,
    }
}

#[test]
fn v2_round_trips_with_contexts_of_1_and_255_bytes() {
    for m in [1, MAX_CONTEXT_LEN] {
        let context = context_of(m);
        for chunk_size in CHUNK_SIZES {
            let chunk = chunk_size as usize;
            for len in sizes(chunk) {
                let data = pattern(len);
                let stream = encrypt_with_context(&data, &context, chunk_size);
                let header = read_header(&mut &stream[..]).unwrap();
                assert_eq!(header.version(), Version::V2);
                assert_eq!(stream[4], 2);
                assert_eq!(header.key_id(), KEY_ID);
                assert_eq!(header.context(), &context[..]);
                assert_eq!(header.encoded_len(), v2_offsets(m).end);
                assert_eq!(
                    stream.len(),
                    header.encoded_len() + len + chunk_count(len, chunk) * TAG_LEN,
                    "context {m} chunk {chunk} len {len}"
                );
                assert_eq!(
                    decrypt(&stream).unwrap(),
                    data,
                    "context {m} chunk {chunk} len {len}"
                );
                let reader = DecryptReader::new(&key(), &stream[..]).unwrap();
                assert_eq!(reader.header().context(), &context[..]);
            }
        }
    }
}

#[test]
fn a_context_longer_than_255_bytes_is_refused() {
    let long = context_of(MAX_CONTEXT_LEN + 1);
    let err = EncryptWriter::with_context(&key(), KEY_ID, &long, 4096, Vec::new()).unwrap_err();
    assert_eq!(
        stream_error(err),
        StreamError::ContextTooLong {
            len: MAX_CONTEXT_LEN + 1
        }
    );
    assert_eq!(
        ChunkSealer::with_context(&key(), KEY_ID, &long, 4096).unwrap_err(),
        StreamError::ContextTooLong {
            len: MAX_CONTEXT_LEN + 1
        }
    );
    // The other arguments are checked as `new` checks them.
    let err = EncryptWriter::with_context(&key(), "", b"c", 4096, Vec::new()).unwrap_err();
    assert_eq!(stream_error(err), StreamError::KeyIdEmpty);
    let err = EncryptWriter::with_context(&key(), KEY_ID, b"c", 1000, Vec::new()).unwrap_err();
    assert_eq!(stream_error(err), StreamError::BadChunkSize { size: 1000 });
}

#[test]
fn an_empty_context_writes_the_version_1_format() {
    let data = pattern(5000);
    let stream = encrypt_with_context(&data, b"", 4096);
    assert_eq!(stream[4], 1);
    let header = read_header(&mut &stream[..]).unwrap();
    assert_eq!(header.version(), Version::V1);
    assert_eq!(header.context(), b"");
    assert_eq!(
        header.encoded_len(),
        encrypt(&data, 4096).len() - data.len() - 2 * TAG_LEN
    );
    assert_eq!(decrypt(&stream).unwrap(), data);
    let sealer = ChunkSealer::with_context(&key(), KEY_ID, b"", 4096).unwrap();
    assert_eq!(sealer.header().version(), Version::V1);
}

#[test]
fn a_version_1_stream_reads_with_an_empty_context() {
    let stream = encrypt(&pattern(100), 4096);
    let reader = DecryptReader::new(&key(), &stream[..]).unwrap();
    assert_eq!(reader.header().version(), Version::V1);
    assert_eq!(reader.header().context(), b"");

    // The frozen version-1 stream, written before version 2 existed.
    let golden = include_bytes!("data/v1-golden.bin");
    let golden_key = StreamKey::new(&Confidential::new(core::array::from_fn(|i| i as u8)));
    let mut reader = DecryptReader::new(&golden_key, &golden[..]).unwrap();
    assert_eq!(reader.header().version(), Version::V1);
    assert_eq!(reader.header().context(), b"");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 4096 + 10);
    let (header, len) = Header::parse(golden).unwrap();
    assert_eq!(header.context(), b"");
    assert_eq!(len, 10 + "golden-key".len() + 64);
}

#[test]
fn streams_differing_only_in_context_do_not_open_each_others_chunks() {
    // Two inputs of one task, under one compartment key and key id, for two slots.
    let mut a = ChunkSealer::with_context(&key(), KEY_ID, b"task 9 input 0", 4096).unwrap();
    let mut b = ChunkSealer::with_context(&key(), KEY_ID, b"task 9 input 1", 4096).unwrap();
    let mut plain = ChunkSealer::new(&key(), KEY_ID, 4096).unwrap();
    let mut opener_a = ChunkOpener::new(&key(), a.header()).unwrap();
    let mut opener_b = ChunkOpener::new(&key(), b.header()).unwrap();
    let a_chunks = [
        a.seal(&pattern(4096), false).unwrap(),
        a.seal(b"end", true).unwrap(),
    ];
    let b_chunks = [
        b.seal(&pattern(4096), false).unwrap(),
        b.seal(b"end", true).unwrap(),
    ];
    let plain_chunk = plain.seal(&pattern(4096), false).unwrap();
    for (i, (a_chunk, b_chunk)) in a_chunks.iter().zip(&b_chunks).enumerate() {
        let last = i == 1;
        let index = i as u64;
        assert_eq!(
            opener_a.open(index, b_chunk, last).unwrap_err(),
            StreamError::ChunkTampered { index }
        );
        assert_eq!(
            opener_b.open(index, a_chunk, last).unwrap_err(),
            StreamError::ChunkTampered { index }
        );
    }
    assert_eq!(
        opener_a.open(0, &plain_chunk, false).unwrap_err(),
        StreamError::ChunkTampered { index: 0 }
    );
    // Each opens its own.
    assert_eq!(
        opener_a.open(0, &a_chunks[0], false).unwrap().expose(),
        &pattern(4096)
    );
    assert_eq!(
        opener_b.open(1, &b_chunks[1], true).unwrap().expose(),
        b"end"
    );

    // Whole streams: one's (genuine) header on the other's chunks, and the swap the
    // reader can see only through the context.
    let data = pattern(2 * 4096 + 7);
    let a = Parts::of(&encrypt_with_context(&data, b"object x v1", 4096));
    let b = Parts::of(&encrypt_with_context(&data, b"object x v2", 4096));
    let mut spliced = Parts::of(&a.join());
    spliced.header = b.header.clone();
    assert_eq!(
        decrypt(&spliced.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 0 }
    );
    let swapped = b.join();
    let reader = DecryptReader::new(&key(), &swapped[..]).unwrap();
    assert_ne!(reader.header().context(), b"object x v1");
}

#[test]
fn every_byte_flip_of_a_v2_header_is_refused() {
    for m in [1, MAX_CONTEXT_LEN] {
        let stream = encrypt_with_context(&pattern(100), &context_of(m), 4096);
        let at = v2_offsets(m);
        let header_tampered = StreamError::HeaderTampered {
            key_id: KEY_ID.into(),
        };
        for i in 0..at.end {
            for mask in [0x01u8, 0x02, 0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF] {
                let mut bad = stream.clone();
                bad[i] ^= mask;
                let err = decrypt(&bad).expect_err(&format!("flip {mask:#x} at {i} undetected"));
                let what = format!("context {m}, flip {mask:#x} at {i}: {err}");
                match i {
                    0..4 => assert_eq!(err, StreamError::BadMagic, "{what}"),
                    // Version 0 or 3 and up; or 1 (mask 0x03), which reads the context as stream id.
                    4 => assert!(
                        matches!(
                            err,
                            StreamError::UnsupportedVersion { .. }
                                | StreamError::HeaderTampered { .. }
                        ),
                        "{what}"
                    ),
                    5..9 => assert!(
                        matches!(err, StreamError::BadChunkSize { .. }) || err == header_tampered,
                        "{what}"
                    ),
                    // The key id's length and the key id: the fields after it shift.
                    i if i < at.context_len => assert!(
                        matches!(
                            err,
                            StreamError::KeyIdEmpty
                                | StreamError::KeyIdTooLong { .. }
                                | StreamError::KeyIdNotUtf8
                                | StreamError::ContextEmpty
                                | StreamError::HeaderTruncated
                                | StreamError::HeaderTampered { .. }
                        ),
                        "{what}"
                    ),
                    // The context's length: the stream id and tag shift.
                    i if i == at.context_len => assert!(
                        matches!(
                            err,
                            StreamError::ContextEmpty
                                | StreamError::HeaderTruncated
                                | StreamError::HeaderTampered { .. }
                        ),
                        "{what}"
                    ),
                    // Context, stream id, tag: only the tag catches these.
                    _ => assert_eq!(err, header_tampered, "{what}"),
                }
            }
        }
    }
}

#[test]
fn each_v2_header_field_is_authenticated() {
    let m = 20;
    let context = context_of(m);
    let stream = encrypt_with_context(&pattern(5000), &context, 4096);
    let at = v2_offsets(m);
    let tampered = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bad = stream.clone();
        edit(&mut bad);
        decrypt(&bad).unwrap_err()
    };
    let header_tampered = StreamError::HeaderTampered {
        key_id: KEY_ID.into(),
    };
    // Another context of the same length.
    assert_eq!(tampered(&|s| s[at.context + 3] = b'?'), header_tampered);
    // A context shortened, lengthened or dropped.
    assert_eq!(
        tampered(&|s| {
            s[at.context_len] -= 1;
            s.remove(at.context);
        }),
        header_tampered
    );
    assert_eq!(
        tampered(&|s| {
            s[at.context_len] += 1;
            s.insert(at.context, b'x');
        }),
        header_tampered
    );
    assert_eq!(
        tampered(&|s| {
            s[4] = 1;
            s.drain(at.context_len..at.stream_id);
        }),
        header_tampered
    );
    // A version-2 header never has an empty context.
    let err = tampered(&|s| s[at.context_len] = 0);
    assert_eq!(err, StreamError::ContextEmpty);
    assert!(err.to_string().contains("empty context"), "{err}");
    // Stream id and tag.
    assert_eq!(tampered(&|s| s[at.stream_id] ^= 1), header_tampered);
    assert_eq!(tampered(&|s| s[at.tag + 31] ^= 1), header_tampered);
    // A version-1 header cannot gain a context either.
    let v1 = encrypt(&pattern(5000), 4096);
    let mut bad = v1.clone();
    bad[4] = 2;
    bad.splice(at.context_len..at.context_len, [1, b'x']);
    assert_eq!(decrypt(&bad).unwrap_err(), header_tampered);
}

#[test]
fn every_truncation_of_a_v2_stream_is_detected() {
    for m in [1, MAX_CONTEXT_LEN] {
        let stream = encrypt_with_context(&pattern(2 * 4096 + 7), &context_of(m), 4096);
        let header_len = v2_offsets(m).end;
        let full = 4096 + TAG_LEN;
        for cut in 0..stream.len() {
            let err = decrypt(&stream[..cut]).expect_err(&format!("cut at {cut} undetected"));
            let expected = if cut < header_len {
                // A prefix of the magic is still the magic's prefix: truncated too.
                StreamError::HeaderTruncated
            } else {
                let index = ((cut - header_len) / full) as u64;
                match (cut - header_len) % full {
                    0 => StreamError::Truncated {
                        after_chunks: index,
                    },
                    n if n < TAG_LEN => StreamError::ChunkTooShort { index, len: n },
                    _ => StreamError::ChunkTampered { index },
                }
            };
            assert_eq!(err, expected, "context {m}, cut at {cut}");
        }
    }
}

#[test]
fn v2_chunks_are_checked_as_v1_chunks_are() {
    let data = pattern(2 * 4096 + 100);
    let stream = encrypt_with_context(&data, b"ctx", 4096);
    let parts = Parts::of(&stream);
    assert_eq!(parts.chunks.len(), 3);
    let header_len = parts.header.len();
    for at in header_len..stream.len() {
        let mut bad = stream.clone();
        bad[at] ^= 0x01;
        let index = ((at - header_len) / (4096 + TAG_LEN)) as u64;
        assert_eq!(
            decrypt(&bad).unwrap_err(),
            StreamError::ChunkTampered { index },
            "flip at {at}"
        );
    }
    let mut extended = stream.clone();
    extended.extend_from_slice(b"more");
    assert_eq!(
        decrypt(&extended).unwrap_err(),
        StreamError::ChunkTampered { index: 2 }
    );
    let mut swapped = Parts::of(&stream);
    swapped.chunks.swap(0, 1);
    assert_eq!(
        decrypt(&swapped.join()).unwrap_err(),
        StreamError::ChunkTampered { index: 0 }
    );
}

#[test]
fn a_transport_reads_the_context_before_reencrypting() {
    let data = pattern(4096 + 7);
    let client = Parts::of(&encrypt_with_context(&data, b"slot 0", 4096));
    let (header, len) = Header::parse(&client.header).unwrap();
    assert_eq!(len, client.header.len());
    let mut opener = ChunkOpener::new(&key(), &header).unwrap();
    // Authenticated now.
    assert_eq!(header.context(), b"slot 0");
    let mut sealer =
        ChunkSealer::with_context(&other_key(), "node-key", header.context(), 4096).unwrap();
    let mut out = sealer.header().to_bytes();
    for (i, chunk) in client.chunks.iter().enumerate() {
        let last = i + 1 == client.chunks.len();
        let plaintext = opener.open(i as u64, chunk, last).unwrap();
        out.extend_from_slice(&sealer.seal(plaintext.expose(), last).unwrap());
    }
    assert_eq!(decrypt_with(&other_key(), &out).unwrap(), data);
    assert_eq!(read_header(&mut &out[..]).unwrap().context(), b"slot 0");
}

fn round_trip_in_pieces_with_context(
    data: &[u8],
    context: &[u8],
    chunk_size: u32,
    write_piece: usize,
    read_piece: usize,
) {
    let mut writer =
        EncryptWriter::with_context(&key(), KEY_ID, context, chunk_size, Vec::new()).unwrap();
    for part in data.chunks(write_piece) {
        writer.write_all(part).unwrap();
    }
    let stream = writer.finish().unwrap();
    let mut reader = DecryptReader::new(&key(), &stream[..]).unwrap();
    assert_eq!(reader.header().context(), context);
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_piece];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, data);
    // And the same through both readers at once.
    assert_eq!(decrypt(&stream).unwrap(), data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_v2_round_trip(
        len in 0usize..50_000,
        context in prop::collection::vec(any::<u8>(), 0..=MAX_CONTEXT_LEN),
        chunk_shift in 12u32..15,
        write_piece in 1usize..20_000,
        read_piece in 1usize..20_000,
    ) {
        let data = pattern(len);
        round_trip_in_pieces_with_context(&data, &context, 1 << chunk_shift, write_piece, read_piece);
    }

    #[test]
    fn prop_v2_any_flip_is_detected(
        len in 0usize..20_000,
        context in prop::collection::vec(any::<u8>(), 1..=MAX_CONTEXT_LEN),
        chunk_shift in 12u32..14,
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let stream = encrypt_with_context(&pattern(len), &context, 1 << chunk_shift);
        let mut bad = stream.clone();
        let at = at.index(bad.len());
        bad[at] ^= mask;
        prop_assert!(decrypt(&bad).is_err());
    }

    #[test]
    fn prop_v2_any_truncation_is_detected(
        len in 0usize..20_000,
        context in prop::collection::vec(any::<u8>(), 1..=MAX_CONTEXT_LEN),
        chunk_shift in 12u32..14,
        cut in any::<prop::sample::Index>(),
    ) {
        let stream = encrypt_with_context(&pattern(len), &context, 1 << chunk_shift);
        let cut = cut.index(stream.len());
        prop_assert!(decrypt(&stream[..cut]).is_err());
    }

    /// Any bytes parse as a header or fail with a header error, never panic; what does
    /// parse re-encodes to the same bytes.
    #[test]
    fn prop_header_parse_is_total_and_canonical(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        version in 1u8..=2,
    ) {
        let mut bytes = bytes;
        if bytes.len() >= 10 {
            // Mostly well-formed prefixes, so that parsing gets past the fixed part.
            bytes[..4].copy_from_slice(b"VTDX");
            bytes[4] = version;
            bytes[5..9].copy_from_slice(&4096u32.to_be_bytes());
            bytes[9] = bytes[9] % 128 + 1;
        }
        if let Ok((header, len)) = Header::parse(&bytes) {
            prop_assert_eq!(&header.to_bytes()[..], &bytes[..len]);
            prop_assert_eq!(header.version() == Version::V2, !header.context().is_empty());
        }
    }
}

/// The version-2 construction as the crate documentation states it, recomputed with
/// aws-lc-rs alone over the v2 golden stream: the context inside the tagged bytes and
/// the payload key's header hash.
#[test]
fn the_documented_construction_matches_the_v2_golden_stream() {
    let golden = include_bytes!("data/v2-golden.bin");

    let key_id = b"golden-key";
    let context = b"golden object v7";
    let (l, m) = (key_id.len(), context.len());
    let header_len = 11 + l + m + 32 + 32;
    assert_eq!(&golden[..10], b"VTDX\x02\x00\x00\x10\x00\x0a");
    assert_eq!(&golden[10..10 + l], key_id);
    assert_eq!(usize::from(golden[10 + l]), m);
    assert_eq!(&golden[11 + l..11 + l + m], context);
    let stream_id = &golden[11 + l + m..43 + l + m];
    let expected_id: [u8; 32] = core::array::from_fn(|i| 0xB0 ^ i as u8);
    assert_eq!(stream_id, expected_id);
    let tag = &golden[43 + l + m..header_len];
    recompute_with_aws_lc(&golden[..], header_len, stream_id, tag);
}
