//! Peak memory of a 4 GiB stream: the plaintext is generated as it is read, encrypted
//! into a pipe by one thread, decrypted out of it by another and checked as it comes,
//! so nothing the size of the stream is ever stored. Prints the peak resident set size
//! (`VmHWM` from `/proc/self/status`).
//!
//! `cargo run --release -p veritee-stream --example peak_memory [GiB]`

use std::io::{self, Read, Write};
use std::time::Instant;

use veritee_crypto::Confidential;
use veritee_stream::{DEFAULT_CHUNK_SIZE, DecryptReader, EncryptWriter, StreamKey};

/// The 8-byte little-endian word `i / 8` at byte `i`: cheap to make and to check.
fn byte_at(i: u64) -> u8 {
    (i / 8).to_le_bytes()[(i % 8) as usize]
}

struct Generator {
    position: u64,
    remaining: u64,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.remaining) as usize;
        let buf = &mut buf[..n];
        if self.position.is_multiple_of(8) && n.is_multiple_of(8) {
            for (w, word) in buf.chunks_exact_mut(8).enumerate() {
                word.copy_from_slice(&(self.position / 8 + w as u64).to_le_bytes());
            }
        } else {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = byte_at(self.position + i as u64);
            }
        }
        self.position += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[derive(Default)]
struct Checker {
    position: u64,
}

impl Write for Checker {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let good = if self.position.is_multiple_of(8) && buf.len().is_multiple_of(8) {
            buf.chunks_exact(8)
                .enumerate()
                .all(|(w, word)| word == (self.position / 8 + w as u64).to_le_bytes())
        } else {
            buf.iter()
                .enumerate()
                .all(|(i, b)| *b == byte_at(self.position + i as u64))
        };
        if !good {
            return Err(io::Error::other(format!(
                "plaintext differs after byte {}",
                self.position
            )));
        }
        self.position += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn vm_hwm_kib() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmHWM in /proc/self/status"))
}

fn main() -> io::Result<()> {
    let gib: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| io::Error::other("the argument is a size in GiB"))?,
        None => 4,
    };
    let len = gib << 30;
    let key = StreamKey::new(&Confidential::new([0x42; 32]));
    println!(
        "streaming {gib} GiB in {} KiB chunks through a pipe (encrypt thread -> decrypt thread)",
        DEFAULT_CHUNK_SIZE / 1024
    );
    let before = vm_hwm_kib()?;

    let start = Instant::now();
    let (pipe_out, pipe_in) = io::pipe()?;
    let producer_key = key.clone();
    let producer = std::thread::spawn(move || -> io::Result<u64> {
        let mut writer =
            EncryptWriter::new(&producer_key, "peak-memory", DEFAULT_CHUNK_SIZE, pipe_in)?;
        let mut source = Generator {
            position: 0,
            remaining: len,
        };
        let copied = io::copy(&mut source, &mut writer)?;
        drop(writer.finish()?);
        Ok(copied)
    });
    let mut reader = DecryptReader::new(&key, pipe_out)?;
    let mut checker = Checker::default();
    let decrypted = io::copy(&mut reader, &mut checker)?;
    let encrypted = producer
        .join()
        .map_err(|_| io::Error::other("encrypting thread panicked"))??;
    let elapsed = start.elapsed();
    assert!(reader.is_complete());
    assert_eq!((encrypted, decrypted), (len, len));

    let peak = vm_hwm_kib()?;
    println!(
        "encrypted and decrypted {len} bytes in {:.2} s ({:.0} MiB/s end to end)",
        elapsed.as_secs_f64(),
        len as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "peak RSS (VmHWM): {:.1} MiB (before streaming: {:.1} MiB)",
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    Ok(())
}
