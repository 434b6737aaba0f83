//! The byte layouts of the manifest and the page frames, written once (see the crate
//! documentation for the picture), and the reader that refuses what does not fit them.

use std::time::Duration;

use veritee_crypto::Confidential;
use veritee_crypto::aead::{AeadKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use veritee_wasm::rewrite::MAX_APP_GLOBALS;
use veritee_wasm::{AppCounters, GlobalValue, TaskLimits, WASM_PAGE};

use crate::error::ForkError;
use crate::snapshot::AppRuntime;

/// The unit of change tracking and encryption.
pub const PAGE_SIZE: usize = 4096;
/// A page sealed: ciphertext and tag.
pub const SEALED_PAGE_LEN: usize = PAGE_SIZE + TAG_LEN;
/// A frame on the wire: page index, then the sealed page.
pub const FRAME_LEN: usize = 4 + SEALED_PAGE_LEN;
/// The largest memory a snapshot carries (all a 32-bit WebAssembly memory can address).
pub const MAX_MEMORY_BYTES: u64 = 1 << 32;
/// Most epoch keys a manifest carries; a parent re-encrypts its oldest pages rather
/// than keep more.
pub const MAX_KEYS: usize = 64;

pub(crate) const MAGIC: &[u8; 4] = b"VTFM";
pub(crate) const VERSION: u16 = 1;
/// The epoch of a page that is all zeros and not sent.
pub(crate) const ZERO_PAGE: u32 = u32::MAX;
pub(crate) const DIGEST_LABEL: &[u8] = b"veritee fork manifest v1";
pub(crate) const PAGE_AAD_LABEL: &[u8; 4] = b"VTFP";

/// magic, version, app id, module digest, generation, calls, fuel used, six limits,
/// memory length.
const HEADER_LEN: usize = 4 + 2 + 16 + 32 + 8 + 8 + 8 + 6 * 8 + 8;
const GLOBAL_LEN: usize = 4 + 1 + 16;
const PAGE_ENTRY_LEN: usize = 4 + 8;
const KEY_ENTRY_LEN: usize = 4 + KEY_LEN;
const _: () = assert!(HEADER_LEN == 134);
const _: () = assert!(FRAME_LEN == 4116);
const _: () = assert!(PAGE_SIZE * 16 == WASM_PAGE);

/// The largest manifest a child reads.
pub const fn max_manifest_len() -> usize {
    HEADER_LEN
        + 4
        + MAX_APP_GLOBALS * GLOBAL_LEN
        + 4
        + (MAX_MEMORY_BYTES as usize / PAGE_SIZE) * PAGE_ENTRY_LEN
        + 4
        + MAX_KEYS * KEY_ENTRY_LEN
}

/// Which sealing of a page a ciphertext is: the epoch key and the nonce counter under
/// it. A page sealed again gets another id, so a stored copy named by its id is never
/// overwritten by a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId {
    /// The page's number in the linear memory.
    pub index: u32,
    /// The epoch key's number.
    pub epoch: u32,
    /// The nonce counter under that key.
    pub counter: u64,
}

/// Where a page's current ciphertext was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSeal {
    /// The epoch key's number, or [`ZERO_PAGE`].
    pub(crate) epoch: u32,
    /// The nonce counter under that key.
    pub(crate) counter: u64,
}

impl PageSeal {
    pub(crate) const ZERO: PageSeal = PageSeal {
        epoch: ZERO_PAGE,
        counter: 0,
    };

    pub(crate) fn is_zero(&self) -> bool {
        self.epoch == ZERO_PAGE
    }

    /// The id of page `index` sealed here; `None` for a zero page (nothing sealed).
    pub(crate) fn id(&self, index: usize) -> Option<PageId> {
        (!self.is_zero()).then_some(PageId {
            index: index as u32,
            epoch: self.epoch,
            counter: self.counter,
        })
    }
}

/// A page's nonce: its counter under the epoch key.
pub(crate) fn page_nonce(counter: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// A page's associated data: it cannot move to another application or index.
pub(crate) fn page_aad(app_id: &[u8; 16], index: u32) -> [u8; 24] {
    let mut aad = [0u8; 24];
    aad[..4].copy_from_slice(PAGE_AAD_LABEL);
    aad[4..20].copy_from_slice(app_id);
    aad[20..].copy_from_slice(&index.to_be_bytes());
    aad
}

/// Everything a manifest says.
pub(crate) struct Manifest {
    pub(crate) app_id: [u8; 16],
    pub(crate) module_sha256: [u8; 32],
    pub(crate) generation: u64,
    pub(crate) runtime: AppRuntime,
    pub(crate) memory_len: u64,
    pub(crate) globals: Vec<(u32, GlobalValue)>,
    pub(crate) pages: Vec<PageSeal>,
    pub(crate) keys: Vec<(u32, AeadKey)>,
}

impl Manifest {
    /// The encoded manifest, and the length of its part the digest covers.
    pub(crate) fn encode(&self) -> (Confidential<Vec<u8>>, usize) {
        let mut out = Vec::with_capacity(
            HEADER_LEN
                + 12
                + self.globals.len() * GLOBAL_LEN
                + self.pages.len() * PAGE_ENTRY_LEN
                + self.keys.len() * KEY_ENTRY_LEN,
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.app_id);
        out.extend_from_slice(&self.module_sha256);
        let limits = &self.runtime.limits;
        for value in [
            self.generation,
            self.runtime.counters.calls,
            self.runtime.counters.fuel_used,
            limits.fuel,
            limits.memory_bytes,
            limits.table_elements,
            limits.output_bytes as u64,
            limits.log_bytes as u64,
            u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
            self.memory_len,
        ] {
            out.extend_from_slice(&value.to_be_bytes());
        }
        out.extend_from_slice(&(self.globals.len() as u32).to_be_bytes());
        for (index, value) in &self.globals {
            out.extend_from_slice(&index.to_be_bytes());
            let (kind, bits) = global_bits(*value);
            out.push(kind);
            out.extend_from_slice(&bits.to_be_bytes());
        }
        out.extend_from_slice(&(self.pages.len() as u32).to_be_bytes());
        for page in &self.pages {
            out.extend_from_slice(&page.epoch.to_be_bytes());
            out.extend_from_slice(&page.counter.to_be_bytes());
        }
        let covered = out.len();
        out.extend_from_slice(&(self.keys.len() as u32).to_be_bytes());
        for (epoch, key) in &self.keys {
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(key.expose().expose());
        }
        (Confidential::new(out), covered)
    }

    /// Reads a manifest, refusing anything out of range, inconsistent or left over;
    /// also returns the length of the part the digest covers.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Manifest, usize), ForkError> {
        if bytes.len() > max_manifest_len() {
            return Err(ForkError::Malformed(format!(
                "{} bytes, more than the largest manifest ({})",
                bytes.len(),
                max_manifest_len()
            )));
        }
        let mut r = Reader { bytes, at: 0 };
        if r.take::<4>("magic")? != *MAGIC {
            return Err(ForkError::Malformed("it does not start with VTFM".into()));
        }
        let version = u16::from_be_bytes(r.take("version")?);
        if version != VERSION {
            return Err(ForkError::Version(version));
        }
        let app_id = r.take::<16>("app id")?;
        let module_sha256 = r.take::<32>("module digest")?;
        let mut next = |what| r.u64(what);
        let generation = next("generation")?;
        let calls = next("call count")?;
        let fuel_used = next("fuel used")?;
        let fuel = next("fuel limit")?;
        let memory_bytes = next("memory limit")?;
        let table_elements = next("table limit")?;
        let output_bytes = next("output limit")?;
        let log_bytes = next("log limit")?;
        let timeout_ms = next("timeout")?;
        let memory_len = next("memory length")?;
        let too_big = |what: &str, v: u64| {
            ForkError::Malformed(format!("{what} of {v} is more than a 32-bit memory holds"))
        };
        if memory_bytes > MAX_MEMORY_BYTES {
            return Err(too_big("memory limit", memory_bytes));
        }
        if memory_len > MAX_MEMORY_BYTES {
            return Err(too_big("memory length", memory_len));
        }
        if !memory_len.is_multiple_of(WASM_PAGE as u64) {
            return Err(ForkError::Malformed(format!(
                "memory length {memory_len} is not whole 64 KiB pages"
            )));
        }
        if memory_len > memory_bytes {
            return Err(ForkError::Malformed(format!(
                "memory length {memory_len} exceeds the application's limit {memory_bytes}"
            )));
        }
        let to_usize = |what: &str, v: u64| {
            usize::try_from(v).map_err(|_| ForkError::Malformed(format!("{what} {v} too large")))
        };
        let runtime = AppRuntime {
            counters: AppCounters { calls, fuel_used },
            limits: TaskLimits {
                fuel,
                memory_bytes,
                table_elements,
                output_bytes: to_usize("output limit", output_bytes)?,
                log_bytes: to_usize("log limit", log_bytes)?,
                timeout: Duration::from_millis(timeout_ms),
            },
        };

        let global_count = r.count("global count", MAX_APP_GLOBALS)?;
        let mut globals = Vec::with_capacity(global_count);
        for _ in 0..global_count {
            let index = u32::from_be_bytes(r.take("global index")?);
            if globals.last().is_some_and(|(last, _)| *last >= index) {
                return Err(ForkError::Malformed(format!(
                    "global {index} is out of ascending order"
                )));
            }
            let kind = r.take::<1>("global kind")?[0];
            let bits = u128::from_be_bytes(r.take("global value")?);
            globals.push((index, global_value(index, kind, bits)?));
        }

        let page_count = r.count("page count", (MAX_MEMORY_BYTES as usize) / PAGE_SIZE)?;
        if page_count as u64 * PAGE_SIZE as u64 != memory_len {
            return Err(ForkError::Malformed(format!(
                "{page_count} pages for a memory of {memory_len} bytes"
            )));
        }
        let mut pages = Vec::with_capacity(page_count);
        for index in 0..page_count {
            let epoch = u32::from_be_bytes(r.take("page epoch")?);
            let counter = r.u64("page counter")?;
            if epoch == ZERO_PAGE && counter != 0 {
                return Err(ForkError::Malformed(format!(
                    "zero page {index} has a counter"
                )));
            }
            pages.push(PageSeal { epoch, counter });
        }
        let covered = r.at;

        let key_count = r.count("key count", MAX_KEYS)?;
        let mut keys: Vec<(u32, AeadKey)> = Vec::with_capacity(key_count);
        for _ in 0..key_count {
            let epoch = u32::from_be_bytes(r.take("key epoch")?);
            if epoch == ZERO_PAGE || keys.last().is_some_and(|(last, _)| *last >= epoch) {
                return Err(ForkError::Malformed(format!(
                    "key epoch {epoch} is reserved or out of ascending order"
                )));
            }
            let key = Confidential::new(r.take::<KEY_LEN>("key")?);
            keys.push((epoch, AeadKey::from_array(key)));
        }
        if let Some((index, page)) = pages.iter().enumerate().find(|(_, p)| {
            !p.is_zero() && keys.binary_search_by_key(&p.epoch, |(e, _)| *e).is_err()
        }) {
            return Err(ForkError::Malformed(format!(
                "page {index} is sealed under epoch {} whose key is not given",
                page.epoch
            )));
        }
        if r.at != bytes.len() {
            return Err(ForkError::TrailingBytes(bytes.len() - r.at));
        }
        Ok((
            Manifest {
                app_id,
                module_sha256,
                generation,
                runtime,
                memory_len,
                globals,
                pages,
                keys,
            },
            covered,
        ))
    }
}

fn global_bits(value: GlobalValue) -> (u8, u128) {
    match value {
        GlobalValue::I32(x) => (0, u128::from(x as u32)),
        GlobalValue::I64(x) => (1, u128::from(x as u64)),
        GlobalValue::F32(x) => (2, u128::from(x)),
        GlobalValue::F64(x) => (3, u128::from(x)),
        GlobalValue::V128(x) => (4, x),
    }
}

fn global_value(index: u32, kind: u8, bits: u128) -> Result<GlobalValue, ForkError> {
    let narrow = |max: u128| {
        if bits > max {
            Err(ForkError::Malformed(format!(
                "global {index}'s value does not fit its type"
            )))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        0 => {
            narrow(u32::MAX.into())?;
            GlobalValue::I32(bits as u32 as i32)
        }
        1 => {
            narrow(u64::MAX.into())?;
            GlobalValue::I64(bits as u64 as i64)
        }
        2 => {
            narrow(u32::MAX.into())?;
            GlobalValue::F32(bits as u32)
        }
        3 => {
            narrow(u64::MAX.into())?;
            GlobalValue::F64(bits as u64)
        }
        4 => GlobalValue::V128(bits),
        other => {
            return Err(ForkError::Malformed(format!(
                "global {index} has unknown kind {other}"
            )));
        }
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ForkError> {
        let end = self.at + N;
        let Some(slice) = self.bytes.get(self.at..end) else {
            return Err(ForkError::Truncated {
                what,
                needed: end - self.bytes.len(),
            });
        };
        self.at = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ForkError> {
        Ok(u64::from_be_bytes(self.take(what)?))
    }

    fn count(&mut self, what: &'static str, max: usize) -> Result<usize, ForkError> {
        let n = u32::from_be_bytes(self.take(what)?) as usize;
        if n > max {
            return Err(ForkError::Malformed(format!("{what} {n} is above {max}")));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            app_id: [3; 16],
            module_sha256: [4; 32],
            generation: 9,
            runtime: AppRuntime {
                counters: AppCounters {
                    calls: 5,
                    fuel_used: 1234,
                },
                limits: TaskLimits::default(),
            },
            memory_len: WASM_PAGE as u64,
            globals: vec![
                (0, GlobalValue::I32(-1)),
                (2, GlobalValue::I64(i64::MIN)),
                (3, GlobalValue::F32(0x7fc0_0001)),
                (4, GlobalValue::F64(1)),
                (7, GlobalValue::V128(u128::MAX)),
            ],
            pages: (0..16u64)
                .map(|i| match i % 3 {
                    0 => PageSeal::ZERO,
                    1 => PageSeal {
                        epoch: 1,
                        counter: i,
                    },
                    _ => PageSeal {
                        epoch: 4,
                        counter: i,
                    },
                })
                .collect(),
            keys: vec![
                (1, AeadKey::from_array(Confidential::new([1; 32]))),
                (4, AeadKey::from_array(Confidential::new([4; 32]))),
            ],
        }
    }

    fn encoded() -> (Vec<u8>, usize) {
        let (bytes, covered) = manifest().encode();
        (bytes.expose().clone(), covered)
    }

    /// Offsets of fields in the encoding of [`manifest`].
    const GLOBALS_AT: usize = HEADER_LEN;
    const PAGES_AT: usize = GLOBALS_AT + 4 + 5 * GLOBAL_LEN;
    const KEYS_AT: usize = PAGES_AT + 4 + 16 * PAGE_ENTRY_LEN;

    fn refused(bytes: &[u8]) -> String {
        match Manifest::decode(bytes) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let (bytes, covered) = encoded();
        assert_eq!(covered, KEYS_AT);
        assert_eq!(bytes.len(), KEYS_AT + 4 + 2 * KEY_ENTRY_LEN);
        let (decoded, covered_again) = Manifest::decode(&bytes).unwrap();
        assert_eq!(covered_again, covered);
        let (again, _) = decoded.encode();
        assert_eq!(again.expose(), &bytes);
        assert_eq!(decoded.globals, manifest().globals);
        assert_eq!(decoded.runtime.limits, TaskLimits::default());
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_refused() {
        let (bytes, _) = encoded();
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(refused(&long).contains("1 bytes after its end"));
        let huge = vec![0u8; max_manifest_len() + 1];
        assert!(refused(&huge).contains("more than the largest manifest"));
    }

    #[test]
    fn fields_out_of_range_or_inconsistent_are_refused_with_the_reason() {
        let (bytes, _) = encoded();
        let set = |at: usize, value: &[u8]| {
            let mut b = bytes.clone();
            b[at..at + value.len()].copy_from_slice(value);
            b
        };
        let u64_at = |field: usize| 4 + 2 + 16 + 32 + field * 8;
        for (bytes, reason) in [
            (set(0, b"XTFM"), "does not start with VTFM"),
            (set(4, &2u16.to_be_bytes()), "version 2"),
            // memory limit (field 4), memory length (field 9)
            (set(u64_at(4), &(1u64 << 33).to_be_bytes()), "memory limit"),
            (set(u64_at(9), &(1u64 << 33).to_be_bytes()), "memory length"),
            (
                set(u64_at(9), &4096u64.to_be_bytes()),
                "not whole 64 KiB pages",
            ),
            (
                set(u64_at(4), &1u64.to_be_bytes()),
                "exceeds the application's limit",
            ),
            (set(GLOBALS_AT, &9999u32.to_be_bytes()), "global count"),
            // the second global's index below the first's
            (
                set(GLOBALS_AT + 4 + GLOBAL_LEN, &0u32.to_be_bytes()),
                "ascending order",
            ),
            (set(GLOBALS_AT + 4 + 4, &[9]), "unknown kind 9"),
            // the i32 global with a value wider than 32 bits
            (set(GLOBALS_AT + 4 + 5, &[1]), "does not fit its type"),
            (set(PAGES_AT, &17u32.to_be_bytes()), "17 pages for a memory"),
            (set(PAGES_AT + 4, &[0, 0, 0, 9]), "whose key is not given"),
            // zero page 0 with a counter
            (set(PAGES_AT + 4 + 4, &1u64.to_be_bytes()), "has a counter"),
            (set(KEYS_AT, &65u32.to_be_bytes()), "key count 65"),
            (
                set(KEYS_AT + 4 + KEY_ENTRY_LEN, &1u32.to_be_bytes()),
                "ascending order",
            ),
            (set(KEYS_AT + 4, &u32::MAX.to_be_bytes()), "reserved"),
        ] {
            let why = refused(&bytes);
            assert!(why.contains(reason), "{reason}: {why}");
        }
    }
}
