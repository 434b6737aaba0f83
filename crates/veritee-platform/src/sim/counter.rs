//! Monotonic counters of the simulated TEE.
//!
//! A counter lives with the machine, in `<machine dir>/counters/<id>`, beside the
//! sealing root and outside any store the host software manages. Its id is derived from
//! the machine's sealing root, the sealing identity the policy names (measurement, or
//! signer), the product id, the debug attribute and the counter's name, so a file name
//! reveals none of them and one identity cannot compute the file of another. The file
//! holds the value in decimal and, on a second line, an HMAC-SHA-256 tag in hex over
//! the counter's id and value, under a key derived from the machine's sealing root:
//!
//! ```text
//! 42
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ```
//!
//! So the host cannot set a counter to a value of its choosing (`u64::MAX`, which would
//! wedge the enclave that keeps its state fresh with it), nor move one counter's file
//! onto another's: a bad or missing tag is an error naming the file, never read as 0.
//! Only a counter never advanced has no file, and reads as 0. The first value creates
//! the file atomically and durably (temporary file, fsync, rename, fsync of the
//! directory); later values overwrite it in place with one small write and a data sync
//! (see `write_in_place`); either way durably before `advance_to` returns.
//!
//! What a simulation cannot stop: the counter is only as safe as the machine directory.
//! Whoever may write there can delete a counter (back to 0), put back an older file of
//! the same counter, or restore the whole machine directory from a copy; the tag is
//! then as valid as it was. On hardware the counter lives where the host cannot reach
//! it (a TPM NV counter, a peer enclave).

use super::machine::MachineSecrets;
use crate::fsutil::{self, PRIVATE_MODE};
use crate::{MonotonicCounter, PlatformError, SealPolicy};
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use veritee_crypto::Confidential;
use veritee_crypto::hkdf::{self, HkdfHash};
use veritee_crypto::mac;

/// The directory, inside the machine directory, that holds the counters.
pub(crate) const COUNTERS_DIR: &str = "counters";
const COUNTER_SALT: &[u8] = b"veritee-sim-counter-v1";
/// Salt of the key that tags counter values (apart from the ids' derivation, so that
/// no id is ever a key, nor the other way round).
const TAG_KEY_SALT: &[u8] = b"veritee-sim-counter-tag-v1";
/// Starts the data each tag covers: id and value are meaningless without each other.
const TAG_LABEL: &[u8] = b"veritee sim counter value v1";
/// Length of a counter id (the file name is its hex).
const ID_LEN: usize = 32;
/// Length of a tag (HMAC-SHA-256), in bytes; the file holds it in hex.
const TAG_LEN: usize = 32;
/// Longest value file: the 20 digits of `u64::MAX`, a newline, the tag in hex and a
/// newline.
const MAX_FILE_LEN: usize = 20 + 1 + 2 * TAG_LEN + 1;

/// Serializes `advance_to` among the threads of this process (every machine and every
/// counter: advancing is rare and short). Other processes are kept out by a lock on the
/// counters directory.
static ADVANCE_LOCK: Mutex<()> = Mutex::new(());

/// One counter of a simulated machine.
pub(crate) struct SimCounter {
    dir: PathBuf,
    path: PathBuf,
    /// The counter's id (the file name is its hex), covered by every tag.
    id: [u8; ID_LEN],
    /// The machine's key for tagging counter values.
    tag_key: Confidential<[u8; TAG_LEN]>,
}

impl core::fmt::Debug for SimCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimCounter")
            .field("path", &self.path)
            .finish()
    }
}

impl SimCounter {
    /// The counter `name` of the identity `bound_to` (a measurement or signer, as
    /// `policy` says) and `product_id` on `machine`.
    pub(crate) fn open(
        machine: &MachineSecrets,
        policy: SealPolicy,
        bound_to: &[u8],
        product_id: u16,
        debug: bool,
        name: &str,
    ) -> Result<Self, PlatformError> {
        if name.is_empty() {
            return Err(PlatformError::InvalidInput(
                "a monotonic counter needs a non-empty name".into(),
            ));
        }
        let bound_len = u32::try_from(bound_to.len()).map_err(|_| {
            PlatformError::InvalidInput("the bound identity is implausibly long".into())
        })?;
        let name_len = u32::try_from(name.len()).map_err(|_| {
            PlatformError::InvalidInput("the counter name is implausibly long".into())
        })?;
        let mut id = [0u8; ID_LEN];
        hkdf::derive_into(
            HkdfHash::Sha384,
            COUNTER_SALT,
            machine.sealing_root.expose(),
            &[
                &[policy.code()],
                &bound_len.to_le_bytes(),
                bound_to,
                &product_id.to_le_bytes(),
                &[u8::from(debug)],
                &name_len.to_le_bytes(),
                name.as_bytes(),
            ],
            &mut id,
        )?;
        let mut tag_key = Confidential::new([0u8; TAG_LEN]);
        hkdf::derive_into(
            HkdfHash::Sha384,
            TAG_KEY_SALT,
            machine.sealing_root.expose(),
            &[b"counter value tags"],
            tag_key.expose_mut(),
        )?;
        let dir = machine.dir.join(COUNTERS_DIR);
        Ok(Self {
            path: dir.join(hex::encode(id)),
            dir,
            id,
            tag_key,
        })
    }

    /// The tag of `value` for this counter.
    fn tag(&self, value: u64) -> [u8; TAG_LEN] {
        tag_of(self.tag_key.expose(), &self.id, value)
    }

    /// Reads the value: 0 when the counter was never advanced (no file); a file that
    /// cannot be read, does not hold a value, or whose tag is not this counter's for
    /// that value, is an error naming it, never 0.
    fn read_value(&self) -> Result<u64, PlatformError> {
        read_value(&self.path, self.tag_key.expose(), &self.id)
    }

    /// Creates the counters directory if needed, durably.
    fn ensure_dir(&self) -> Result<(), PlatformError> {
        use std::os::unix::fs::DirBuilderExt;
        match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {
                let parent = self.dir.parent().unwrap_or(Path::new("."));
                fsutil::sync_dir(parent)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists && self.dir.is_dir() => Ok(()),
            Err(e) => Err(PlatformError::io("cannot create directory", &self.dir)(e)),
        }
    }
}

/// Overwrites the counter file from its start and syncs its data: one write of under
/// a hundred bytes at offset 0, inside the first sector, which a crash leaves whole
/// (old or new) on the disks this simulation runs on. Values only grow, so the new
/// text is never shorter than the old and covers it entirely. A torn write would show
/// as a bad tag, which is refused, never read as another value. This is the hot path of
/// every sealed state transition (one advance each); replacing the file by rename
/// costs three times as much.
fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), PlatformError> {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(PlatformError::io("cannot open counter", path))?;
    file.write_all_at(bytes, 0)
        .map_err(PlatformError::io("cannot write counter", path))?;
    file.sync_data()
        .map_err(PlatformError::io("cannot sync counter", path))
}

/// HMAC-SHA-256 under `key` of the label, the counter id and the value (big-endian).
fn tag_of(key: &[u8; TAG_LEN], id: &[u8; ID_LEN], value: u64) -> [u8; TAG_LEN] {
    mac::hmac_sha256(key, &tagged_data(id, value))
}

fn tagged_data(id: &[u8; ID_LEN], value: u64) -> Vec<u8> {
    [TAG_LABEL, &id[..], &value.to_be_bytes()].concat()
}

/// The file contents for `value`: decimal, newline, hex tag, newline.
fn encode_value(value: u64, tag: &[u8; TAG_LEN]) -> Vec<u8> {
    format!("{value}\n{}\n", hex::encode(tag)).into_bytes()
}

/// Reads the value at `path` and checks its tag under `key` for counter `id`: 0 when
/// the counter was never advanced (no file); anything else that is not a value tagged
/// for this counter is an error naming the file, never 0.
fn read_value(path: &Path, key: &[u8; TAG_LEN], id: &[u8; ID_LEN]) -> Result<u64, PlatformError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(PlatformError::io("cannot open counter", path)(e)),
    };
    let mut bytes = Vec::with_capacity(MAX_FILE_LEN + 1);
    file.take(MAX_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(PlatformError::io("cannot read counter", path))?;
    decode_value(&bytes, key, id).map_err(|reason| {
        PlatformError::bad_state(
            path,
            format!(
                "{reason}; the counter is damaged or was tampered with, and is not trusted as 0"
            ),
        )
    })
}

/// Parses a counter file and checks its tag.
fn decode_value(bytes: &[u8], key: &[u8; TAG_LEN], id: &[u8; ID_LEN]) -> Result<u64, &'static str> {
    let (value, tag) = parse_file(bytes)?;
    // Constant time: a host probing tags learns nothing from timing.
    if !mac::verify_hmac_sha256(key, &tagged_data(id, value), &tag) {
        return Err(
            "its tag does not match its value: the value was altered, or the file belongs to \
             another counter or machine",
        );
    }
    Ok(value)
}

/// Splits a counter file into its value and tag, strictly (one encoding per value).
fn parse_file(bytes: &[u8]) -> Result<(u64, [u8; TAG_LEN]), &'static str> {
    if bytes.len() > MAX_FILE_LEN {
        return Err("longer than any counter file");
    }
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or("not a counter file (no final newline: cut short?)")?;
    let (digits, tag_hex) = match body.iter().position(|b| *b == b'\n') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => return Err("not a counter file (no tag line: cut short, or untagged)"),
    };
    let value = parse_digits(digits)?;
    if tag_hex.len() != 2 * TAG_LEN
        || !tag_hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err("not a counter file (the tag is not 64 lowercase hex digits)");
    }
    let mut tag = [0u8; TAG_LEN];
    hex::decode_to_slice(tag_hex, &mut tag)
        .map_err(|_| "not a counter file (the tag is not 64 lowercase hex digits)")?;
    Ok((value, tag))
}

/// Decimal digits, no sign, no leading zero.
fn parse_digits(digits: &[u8]) -> Result<u64, &'static str> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err("not a counter value (not decimal digits)");
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return Err("not a counter value (leading zero)");
    }
    core::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or("not a counter value (out of range)")
}

impl MonotonicCounter for SimCounter {
    fn read(&self) -> Result<u64, PlatformError> {
        // Values are written in place in one write inside a sector (see
        // `write_in_place`): a reader sees the old or the new one whole, and anything
        // else fails its tag.
        self.read_value()
    }

    fn advance_to(&self, value: u64) -> Result<u64, PlatformError> {
        // A poisoned lock only means another thread panicked while holding it; the
        // value on disk is whole either way, or fails its tag.
        let _guard = ADVANCE_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.ensure_dir()?;
        let dir = fs::File::open(&self.dir)
            .map_err(PlatformError::io("cannot open directory", &self.dir))?;
        dir.lock()
            .map_err(PlatformError::io("cannot lock directory", &self.dir))?;
        let current = self.read_value()?;
        if value < current {
            return Err(PlatformError::InvalidInput(format!(
                "a monotonic counter never goes backwards: cannot set it to {value}, it is \
                 already at {current}"
            )));
        }
        if value > current {
            let bytes = encode_value(value, &self.tag(value));
            if current == 0 && !self.path.exists() {
                // The first value creates the file, and the directory entry must be
                // durable too.
                fsutil::replace_durable(&self.path, &bytes, PRIVATE_MODE)?;
            } else {
                write_in_place(&self.path, &bytes)?;
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Platform;
    use crate::sim::{EnclaveImage, SimMachine, SimVendor};

    const KEY: [u8; TAG_LEN] = [0x4b; TAG_LEN];
    const ID: [u8; ID_LEN] = [0x1d; ID_LEN];

    fn file(value: u64) -> Vec<u8> {
        encode_value(value, &tag_of(&KEY, &ID, value))
    }

    #[test]
    fn values_round_trip() {
        for value in [0, 1, 42, u64::MAX] {
            let bytes = file(value);
            assert!(bytes.len() <= MAX_FILE_LEN);
            assert_eq!(decode_value(&bytes, &KEY, &ID), Ok(value));
        }
        let text = String::from_utf8(file(42)).unwrap();
        let (value, tag) = text.split_once('\n').unwrap();
        assert_eq!(value, "42");
        assert_eq!(tag.len(), 2 * TAG_LEN + 1);
        assert!(tag.ends_with('\n'));
    }

    #[test]
    fn values_parse_strictly() {
        let tag = hex::encode(tag_of(&KEY, &ID, 42));
        let upper = tag.to_uppercase();
        for bad in [
            String::new(),
            "\n".into(),
            "42\n".into(),
            format!("42\n{tag}"),
            format!("042\n{tag}\n"),
            format!("+42\n{tag}\n"),
            format!(" 42\n{tag}\n"),
            format!("42\n{upper}\n"),
            format!("42\n{tag}\n\n"),
            format!("42\n\n{tag}\n"),
            format!("42\n{}\n", &tag[..62]),
            format!("42\n{tag}00\n"),
            format!("18446744073709551616\n{tag}\n"),
            format!("123456789012345678901\n{tag}\n"),
        ] {
            assert!(decode_value(bad.as_bytes(), &KEY, &ID).is_err(), "{bad:?}");
        }
        assert_eq!(
            decode_value(format!("42\n{tag}\n").as_bytes(), &KEY, &ID),
            Ok(42)
        );
    }

    #[test]
    fn tampered_values_and_tags_are_refused() {
        let good = file(42);
        // The host sets the value of its choice, keeping the tag.
        let tag_line = &good[good.iter().position(|b| *b == b'\n').unwrap()..];
        for value in ["43", "41", "0", "18446744073709551615"] {
            let forged = [value.as_bytes(), tag_line].concat();
            let err = decode_value(&forged, &KEY, &ID).unwrap_err();
            assert!(err.contains("tag does not match"), "{value}: {err}");
        }
        // Every single-bit change of the tag.
        let tag_start = good.len() - 1 - 2 * TAG_LEN;
        for i in tag_start..good.len() - 1 {
            for bit in 0..8 {
                let mut flipped = good.clone();
                flipped[i] ^= 1 << bit;
                assert!(
                    decode_value(&flipped, &KEY, &ID).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        // Another machine's key.
        assert!(decode_value(&good, &[0x4c; TAG_LEN], &ID).is_err());
    }

    #[test]
    fn truncated_files_are_refused() {
        let good = file(u64::MAX);
        for len in 0..good.len() {
            assert!(
                decode_value(&good[..len], &KEY, &ID).is_err(),
                "{:?}",
                String::from_utf8_lossy(&good[..len])
            );
        }
        // The format before tags: a bare decimal value is not trusted either.
        assert!(decode_value(b"42\n", &KEY, &ID).is_err());
    }

    #[test]
    fn a_file_of_another_counter_is_refused() {
        let mut other = ID;
        other[0] ^= 1;
        let err = decode_value(&file(42), &KEY, &other).unwrap_err();
        assert!(err.contains("another counter"), "{err}");
    }

    /// On a real simulated machine: a file copied over another counter's, a tampered
    /// and a truncated file are errors naming the file, a missing one reads 0.
    #[test]
    fn machine_counters_refuse_foreign_and_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let mut vendor = SimVendor::init(&dir.path().join("vendor"), now).unwrap();
        let machine = SimMachine::init(&dir.path().join("m"), &mut vendor, None, now).unwrap();
        let enclave = machine
            .launch(&EnclaveImage::unsigned(b"code", 1, 1, false))
            .unwrap();
        let a = enclave
            .monotonic_counter(crate::SealPolicy::Measurement, "a")
            .unwrap();
        let b = enclave
            .monotonic_counter(crate::SealPolicy::Measurement, "b")
            .unwrap();
        a.advance_to(1_000).unwrap();
        b.advance_to(3).unwrap();
        let counters = machine.dir().join(COUNTERS_DIR);
        let mut files: Vec<PathBuf> = fs::read_dir(&counters)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        let (a_file, b_file) = if fs::read(&files[0]).unwrap().starts_with(b"1000\n") {
            (files[0].clone(), files[1].clone())
        } else {
            (files[1].clone(), files[0].clone())
        };
        let named = |err: PlatformError, path: &Path| {
            assert!(matches!(err, PlatformError::BadState { .. }), "{err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        };

        // a's (higher) value copied onto b: refused, not read as 1000.
        fs::copy(&a_file, &b_file).unwrap();
        named(b.read().unwrap_err(), &b_file);
        assert!(
            b.advance_to(2_000).is_err(),
            "advancing does not paper over it"
        );

        // The value set to u64::MAX, tag kept.
        let good = fs::read(&a_file).unwrap();
        let forged = [
            b"18446744073709551615".as_slice(),
            &good[good.iter().position(|x| *x == b'\n').unwrap()..],
        ]
        .concat();
        fs::write(&a_file, &forged).unwrap();
        named(a.read().unwrap_err(), &a_file);

        // Truncated (the tag line lost), and empty.
        for cut in [&good[..5], &b""[..]] {
            fs::write(&a_file, cut).unwrap();
            named(a.read().unwrap_err(), &a_file);
        }

        // The genuine file put back reads again; a deleted one reads 0 (the limit of a
        // simulation, see the module documentation).
        fs::write(&a_file, &good).unwrap();
        assert_eq!(a.read().unwrap(), 1_000);
        fs::remove_file(&b_file).unwrap();
        assert_eq!(b.read().unwrap(), 0);
    }
}
