//! The embedded store's logs: one append-only file per log, one record per append.
//!
//! Why not redb: a durable redb commit writes about nine scattered pages and syncs them
//! (0.29 ms under load on the machines BENCHMARKS.md names); appending one run of bytes
//! to a file and syncing it takes about 0.1 ms. The enclave's audit log is appended
//! (in group-committed batches) at every secret release, so its commits bound how many
//! releases a node serves.
//!
//! # Format, version 1
//!
//! A file starts with a header: [`MAGIC`] (8 bytes), the log's name length (u16 LE) and
//! the name. Then records, one per append, each:
//!
//! | field | bytes |
//! |---|---|
//! | body length | u64 LE |
//! | CRC-32 of the body length's 8 bytes | u32 LE |
//! | CRC-32 of the body | u32 LE |
//! | body: number of the first entry | u64 LE |
//! | body: entry count (at least 1) | u32 LE |
//! | body: object count | u32 LE |
//! | body: each entry: length (u32 LE), bytes | |
//! | body: each object: namespace (u16 LE length, bytes), key (u16 LE length, bytes), value (u32 LE length, bytes) | |
//!
//! Entries are numbered without gaps from 0: a record's first number is the one after
//! the previous record's last. The objects of a record are the ones
//! [`log_append_with_objects`](crate::Store::log_append_with_objects) wrote with its
//! entry; they are upserted into redb once the record is durable, and again on open if
//! a crash came in between (redb keeps, per log, the number of the last record whose
//! objects it holds).
//!
//! # Torn writes
//!
//! An append writes one record past the end and syncs the file before it is
//! acknowledged, so a crash can leave only the last record unfinished. On open, a
//! record that does not check (cut short, or a CRC that does not match) is dropped
//! with what follows it **only** if no whole, checking record starts anywhere after
//! it: then it is the torn last write, which was never acknowledged. A bad record with
//! a good one after it (or more than [`MAX_TORN_TAIL`] bytes after it) is corruption,
//! and the store refuses to open, naming the file and the offset, rather than drop
//! acknowledged entries. The length has a CRC of its own so that a damaged length is
//! told from a long record. (An enclave that anchored its audit head also refuses a
//! log cut below it, whatever the host does.)
//!
//! After the last record, a file holds up to [`ROOM_AHEAD`] bytes of zeros written
//! ahead of time (see there why); a scan ends at them, and the next append writes
//! over them.
//!
//! The CRCs only detect torn or damaged records: the host is untrusted, and the
//! enclave signs and chains what it stores.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{StoreError, StoredObject, limits};

/// The first bytes of every log file: the format and its version.
pub const MAGIC: [u8; 8] = *b"VTLOG\x00\x01\n";
/// Record header: body length (u64), CRC-32 of the length, CRC-32 of the body.
pub const RECORD_HEADER_LEN: usize = 16;
/// Body header: first number (u64), entry count (u32), object count (u32).
const BODY_HEADER_LEN: usize = 16;
const _: () = assert!(RECORD_HEADER_LEN == 8 + 4 + 4);
const _: () = assert!(BODY_HEADER_LEN == 8 + 4 + 4);

/// Most bytes [`LogFile::read`] reads in one go; past it, it reads entry by entry.
const MAX_READ_SPAN: u64 = 4 * 1024 * 1024;

/// The suffix of a log file's name (`00000001.vlog`).
const EXTENSION: &str = "vlog";
/// The subdirectory of the store's directory that holds the log files.
pub const LOGS_DIR: &str = "logs";

const BACKEND: &str = "embedded";

// What the operations on log files are called in errors.
const OPEN_OP: &str = "open a log file";
const CREATE_OP: &str = "create a log file";
const APPEND_OP: &str = "append to a log file";
const CUT_OP: &str = "cut a log file back";
const READ_OP: &str = "read a log file";
const DIRECTORY_OP: &str = "open the log directory";

/// Whether an error's `operation` is one on a log file (not on the redb database,
/// which is reopened after an I/O error; a log file cuts itself back instead).
pub(crate) fn is_log_file_operation(operation: &str) -> bool {
    [OPEN_OP, CREATE_OP, APPEND_OP, CUT_OP, READ_OP, DIRECTORY_OP].contains(&operation)
}

/// What went wrong reading a log file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogFileError {
    /// The file does not start with [`MAGIC`].
    #[error("not a veritee log file of format version 1 (its first 8 bytes are not the magic)")]
    BadMagic,
    /// The header's name is cut short or is not a valid log name.
    #[error("the header's log name is cut short or invalid")]
    BadName,
    /// A record that does not check, with more after it than a torn write leaves.
    #[error("the record at offset {offset} is damaged ({reason}) and is not the last in the file")]
    Corrupt {
        /// Where the record starts.
        offset: u64,
        /// What did not check.
        reason: String,
    },
    /// Reading failed.
    #[error("reading failed: {0}")]
    Io(String),
}

/// Where one entry lies in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryAt {
    /// Offset of its first byte.
    pub offset: u64,
    /// Its length.
    pub len: u32,
}

/// Objects written with the record whose first entry has number `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordObjects {
    /// The record's (only) entry number.
    pub seq: u64,
    /// The objects.
    pub objects: Vec<StoredObject>,
}

/// What a scan of a log file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// The log's name, from the header.
    pub name: String,
    /// Every entry, by number.
    pub entries: Vec<EntryAt>,
    /// Every record's objects, in order (records without objects are left out).
    pub objects: Vec<RecordObjects>,
    /// Where the last good record ends: the file is cut here if it is longer.
    pub end: u64,
    /// Whether a torn last record was found after `end` (zeros after `end` are room
    /// written ahead, not a torn record).
    pub torn: bool,
}

/// A little-endian reader over a record body; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("{what} runs past the body"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
    fn text(&mut self, what: &str) -> Result<String, String> {
        let len = usize::from(self.u16(what)?);
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

/// A parsed record body: its first number, where its entries lie (relative to the
/// body), its objects.
struct Body {
    first: u64,
    entries: Vec<(usize, u32)>,
    objects: Vec<StoredObject>,
}

fn parse_body(body: &[u8]) -> Result<Body, String> {
    let mut c = Cursor { bytes: body, at: 0 };
    let first = c.u64("the first number")?;
    let count = c.u32("the entry count")?;
    let object_count = c.u32("the object count")?;
    if count == 0 {
        return Err("a record without entries".into());
    }
    if count as usize > limits::MAX_BATCH_ENTRIES {
        return Err(format!(
            "{count} entries, over {}",
            limits::MAX_BATCH_ENTRIES
        ));
    }
    if object_count > 0 && count != 1 {
        return Err("objects in a record of several entries".into());
    }
    // Each entry takes at least 4 bytes: a count the body cannot hold is refused
    // before anything is reserved for it.
    if count as usize * 4 > body.len() {
        return Err(format!("{count} entries cannot fit in the body"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = c.u32("an entry's length")?;
        if len as usize > limits::MAX_VALUE_LEN {
            return Err(format!("an entry of {len} bytes"));
        }
        let at = c.at;
        c.take(len as usize, "an entry")?;
        entries.push((at, len));
    }
    let mut objects = Vec::new();
    for _ in 0..object_count {
        let ns = c.text("an object's namespace")?;
        let key = c.text("an object's key")?;
        let len = c.u32("an object's value length")?;
        if len as usize > limits::MAX_VALUE_LEN {
            return Err(format!("an object value of {len} bytes"));
        }
        let value = c.take(len as usize, "an object's value")?.to_vec();
        limits::check_ns(&ns).map_err(|e| e.to_string())?;
        limits::check_key(&key).map_err(|e| e.to_string())?;
        objects.push(StoredObject { ns, key, value });
    }
    if c.at != body.len() {
        return Err(format!("{} bytes after the last field", body.len() - c.at));
    }
    if first
        .checked_add(u64::from(count) - 1)
        .is_none_or(|last| last > limits::MAX_SEQ)
    {
        return Err("entry numbers past the largest".into());
    }
    Ok(Body {
        first,
        entries,
        objects,
    })
}

/// The bytes of one record: header and body.
pub fn encode_record(first: u64, entries: &[&[u8]], objects: &[StoredObject]) -> Vec<u8> {
    let body_len = BODY_HEADER_LEN
        + entries.iter().map(|e| 4 + e.len()).sum::<usize>()
        + objects
            .iter()
            .map(|o| 2 + o.ns.len() + 2 + o.key.len() + 4 + o.value.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + body_len);
    let len = (body_len as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the body's CRC, once the body is written
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(objects.len() as u32).to_le_bytes());
    // Lengths fit their fields: the limits were checked before (entries and values at
    // most 64 MiB, namespaces and keys at most 1024 bytes).
    for entry in entries {
        out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        out.extend_from_slice(entry);
    }
    for o in objects {
        out.extend_from_slice(&(o.ns.len() as u16).to_le_bytes());
        out.extend_from_slice(o.ns.as_bytes());
        out.extend_from_slice(&(o.key.len() as u16).to_le_bytes());
        out.extend_from_slice(o.key.as_bytes());
        out.extend_from_slice(&(o.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&o.value);
    }
    let crc = crc32fast::hash(&out[RECORD_HEADER_LEN..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The bytes of a file's header for log `name`.
pub fn encode_header(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + name.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, LogFileError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LogFileError::Io(e.to_string())),
        }
    }
    Ok(filled)
}

/// Most bytes after a bad record that are searched for a good one. A torn write
/// leaves part of one record; more than this after a bad record is corruption.
pub const MAX_TORN_TAIL: usize = 256 * 1024 * 1024;

/// The record at the start of `bytes`, if it is whole and both its CRCs match: its
/// body and the record's length. What the body says is not checked here.
fn checked_record(bytes: &[u8]) -> Result<(&[u8], usize), String> {
    let header = bytes
        .get(..RECORD_HEADER_LEN)
        .ok_or("the record header is cut short")?;
    let mut c = Cursor {
        bytes: header,
        at: 0,
    };
    let body_len = c.u64("the body length")?;
    let header_crc = c.u32("the header CRC")?;
    let body_crc = c.u32("the body CRC")?;
    if crc32fast::hash(&header[..8]) != header_crc {
        return Err("its header CRC does not match".into());
    }
    let body = usize::try_from(body_len)
        .ok()
        .and_then(|len| bytes.get(RECORD_HEADER_LEN..)?.get(..len))
        .ok_or_else(|| format!("its body of {body_len} bytes is cut short"))?;
    if crc32fast::hash(body) != body_crc {
        return Err("its body CRC does not match".into());
    }
    Ok((body, RECORD_HEADER_LEN + body.len()))
}

/// Whether a whole, checking record starts anywhere in `tail` after its first byte.
fn a_record_follows(tail: &[u8]) -> bool {
    (1..tail.len().saturating_sub(RECORD_HEADER_LEN - 1))
        .any(|at| checked_record(&tail[at..]).is_ok_and(|(body, _)| parse_body(body).is_ok()))
}

/// Reads a whole log file: checks its header and every record, and says where each
/// entry lies. A bad record with no good record after it is the torn last write: it
/// is reported (`torn`, `end`), not an error. A bad record with a good one after it
/// (or more than [`MAX_TORN_TAIL`] bytes after it) is [`LogFileError::Corrupt`].
pub fn scan(input: impl Read) -> Result<Scanned, LogFileError> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut magic = [0u8; 8];
    if read_up_to(&mut input, &mut magic)? != magic.len() || magic != MAGIC {
        return Err(LogFileError::BadMagic);
    }
    let mut len = [0u8; 2];
    if read_up_to(&mut input, &mut len)? != 2 {
        return Err(LogFileError::BadName);
    }
    let name_len = usize::from(u16::from_le_bytes(len));
    if name_len > limits::MAX_LOG_NAME_LEN {
        return Err(LogFileError::BadName);
    }
    let mut name = vec![0u8; name_len];
    if read_up_to(&mut input, &mut name)? != name_len {
        return Err(LogFileError::BadName);
    }
    let name = String::from_utf8(name).map_err(|_| LogFileError::BadName)?;
    limits::check_log_name(&name).map_err(|_| LogFileError::BadName)?;

    let mut scanned = Scanned {
        name,
        end: (MAGIC.len() + 2 + name_len) as u64,
        ..Scanned::default()
    };
    // One record at a time: its header, then its body.
    let mut record = Vec::new();
    loop {
        let offset = scanned.end;
        record.resize(RECORD_HEADER_LEN, 0);
        let got = read_up_to(&mut input, &mut record)?;
        if got == 0 {
            return Ok(scanned);
        }
        record.truncate(got);
        let header_checks = got == RECORD_HEADER_LEN
            && crc32fast::hash(&record[..8])
                == u32::from_le_bytes([record[8], record[9], record[10], record[11]]);
        if header_checks {
            // What the body length says, or as much as the file holds.
            let body_len = u64::from_le_bytes(record[..8].try_into().unwrap_or_default());
            (&mut input)
                .take(body_len)
                .read_to_end(&mut record)
                .map_err(|e| LogFileError::Io(e.to_string()))?;
        }
        let reason = match checked_record(&record) {
            Ok((body, len)) => {
                // Both CRCs match: what it says is what was written, so a body that
                // does not parse or misnumbers is corruption, never a torn write.
                let corrupt = |reason| LogFileError::Corrupt { offset, reason };
                let body = parse_body(body).map_err(corrupt)?;
                let expected = scanned.entries.len() as u64;
                if body.first != expected {
                    return Err(corrupt(format!(
                        "its first entry is number {}, not {expected}",
                        body.first
                    )));
                }
                let body_at = offset + RECORD_HEADER_LEN as u64;
                scanned
                    .entries
                    .extend(body.entries.iter().map(|(at, len)| EntryAt {
                        offset: body_at + *at as u64,
                        len: *len,
                    }));
                if !body.objects.is_empty() {
                    scanned.objects.push(RecordObjects {
                        seq: body.first,
                        objects: body.objects,
                    });
                }
                scanned.end = offset + len as u64;
                continue;
            }
            Err(reason) => reason,
        };
        // A bad record: the torn last write, unless a good record follows it.
        (&mut input)
            .take((MAX_TORN_TAIL + 1).saturating_sub(record.len()) as u64)
            .read_to_end(&mut record)
            .map_err(|e| LogFileError::Io(e.to_string()))?;
        // Zeros are room written ahead of the records, not a record.
        let zeros = record.iter().all(|b| *b == 0);
        if record.len() > MAX_TORN_TAIL || (!zeros && a_record_follows(&record)) {
            return Err(LogFileError::Corrupt { offset, reason });
        }
        scanned.torn = !zeros;
        return Ok(scanned);
    }
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::Io {
        backend: BACKEND,
        operation,
        error,
    }
}

fn backend(operation: &'static str, message: String) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        operation,
        message,
    }
}

/// How far past its last record a log file is filled with zeros ahead of time. Syncing
/// a write into blocks already written skips the file system's journal (the file's
/// size and blocks do not change): 84-89 µs against 118 µs for an append that grows
/// the file, measured on the machine BENCHMARKS.md names.
pub const ROOM_AHEAD: u64 = 1024 * 1024;

/// One log's file, scanned.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    entries: Vec<EntryAt>,
    /// Where the last record ends.
    end: u64,
    /// The file's length: zeros from `end` to here.
    allocated: u64,
    /// Where the record appended last starts, and the entries before it.
    last_record: Option<(u64, usize)>,
    /// A failed write could not be undone: the file must be opened again from disk.
    broken: bool,
}

impl LogFile {
    /// Opens and scans the file at `path`, cutting a torn last record off. Its
    /// records' objects are returned for the caller to apply.
    pub fn open(path: &Path) -> Result<(Self, Scanned), StoreError> {
        let op = OPEN_OP;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(op))?;
        let len = file.metadata().map_err(io(op))?.len();
        let mut scanned =
            scan(&file).map_err(|e| backend(op, format!("{}: {e}", path.display())))?;
        let mut allocated = len;
        if scanned.torn {
            tracing::warn!(
                path = %path.display(),
                at = scanned.end,
                "a log file ends in a record cut short by a crash; it was never acknowledged and is dropped"
            );
            file.set_len(scanned.end).map_err(io(op))?;
            file.sync_all().map_err(io(op))?;
            allocated = scanned.end;
        }
        let log = Self {
            file,
            path: path.to_owned(),
            entries: std::mem::take(&mut scanned.entries),
            end: scanned.end,
            allocated,
            last_record: None,
            broken: false,
        };
        Ok((log, scanned))
    }

    /// Creates the file for log `name` at `path` (written whole under a temporary
    /// name, then renamed, so that a crash leaves either nothing or a valid file).
    pub fn create(path: &Path, name: &str) -> Result<Self, StoreError> {
        let op = CREATE_OP;
        let temporary = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(io(op))?;
        let header = encode_header(name);
        file.write_all(&header).map_err(io(op))?;
        file.sync_all().map_err(io(op))?;
        std::fs::rename(&temporary, path).map_err(io(op))?;
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io(op))?;
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            entries: Vec::new(),
            end: header.len() as u64,
            allocated: header.len() as u64,
            last_record: None,
            broken: false,
        })
    }

    /// The number the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Appends `entries`, numbered from [`next_seq`](Self::next_seq), and `objects`
    /// as one record, durable when this returns Ok. On an error nothing is appended:
    /// the file is cut back, and if even that fails the handle is
    /// [`broken`](Self::broken). The lengths are the caller's to check against the
    /// [`limits`].
    pub fn append(
        &mut self,
        entries: &[&[u8]],
        objects: &[StoredObject],
    ) -> Result<(), StoreError> {
        let record = encode_record(self.next_seq(), entries, objects);
        let record_end = self.end + record.len() as u64;
        let mut written = self.file.write_all_at(&record, self.end);
        let mut allocated = self.allocated.max(record_end);
        if written.is_ok() && record_end > self.allocated {
            let zeros = vec![0u8; ROOM_AHEAD as usize];
            allocated = match self.file.write_all_at(&zeros, record_end) {
                Ok(()) => record_end + ROOM_AHEAD,
                // No room ahead on a nearly full disk: the record alone will do.
                Err(_) => {
                    written = self.file.set_len(record_end);
                    record_end
                }
            };
        }
        if let Err(e) = written.and_then(|()| self.file.sync_data()) {
            // Cut back to the last record: the zeros ahead go too, and come back with
            // the next append.
            self.broken = self
                .file
                .set_len(self.end)
                .and_then(|()| self.file.sync_data())
                .is_err();
            self.allocated = self.end;
            return Err(io(APPEND_OP)(e));
        }
        self.allocated = allocated;
        self.last_record = Some((self.end, self.entries.len()));
        let mut at = self.end + (RECORD_HEADER_LEN + BODY_HEADER_LEN) as u64;
        for entry in entries {
            at += 4;
            self.entries.push(EntryAt {
                offset: at,
                len: entry.len() as u32,
            });
            at += entry.len() as u64;
        }
        self.end = record_end;
        Ok(())
    }

    /// Cuts the record [`append`](Self::append) wrote last off again (its objects
    /// could not be applied).
    pub fn undo_last(&mut self) -> Result<(), StoreError> {
        let Some((end, entries)) = self.last_record.take() else {
            return Ok(());
        };
        let cut = self.file.set_len(end).and_then(|()| self.file.sync_data());
        if let Err(e) = cut {
            self.broken = true;
            return Err(io(CUT_OP)(e));
        }
        self.end = end;
        self.allocated = end;
        self.entries.truncate(entries);
        Ok(())
    }

    /// Whether a failed write could not be undone: the handle must not be used again,
    /// and the file must be opened again from disk.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The file's length (where the next record goes).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Entries numbered `from` on, at most `limit`: read in one go, since they lie
    /// one after another (only their length fields and record headers between them).
    pub fn read(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        let wanted = &self.entries[start..start + limit.min(self.entries.len() - start)];
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(Vec::new());
        };
        let span_len = last.offset + u64::from(last.len) - first.offset;
        if span_len > MAX_READ_SPAN {
            // Large entries: one read each, rather than all of them held twice.
            return wanted
                .iter()
                .zip(from..)
                .map(|(at, seq)| Ok((seq, self.read_at(at.offset, u64::from(at.len))?)))
                .collect();
        }
        let span = self.read_at(first.offset, span_len)?;
        Ok(wanted
            .iter()
            .zip(from..)
            .map(|(at, seq)| {
                let begin = (at.offset - first.offset) as usize;
                (seq, span[begin..begin + at.len as usize].to_vec())
            })
            .collect())
    }

    /// The last entry.
    pub fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self.entries.last() {
            None => Ok(None),
            Some(at) => Ok(Some((
                self.next_seq() - 1,
                self.read_at(at.offset, u64::from(at.len))?,
            ))),
        }
    }

    fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let mut out = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut out, offset)
            .map_err(|e| StoreError::Io {
                backend: BACKEND,
                operation: READ_OP,
                error: std::io::Error::new(e.kind(), format!("{}: {e}", self.path.display())),
            })?;
        Ok(out)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The log files of one store directory: where they are, and the next file's number.
#[derive(Debug)]
pub struct LogDirectory {
    dir: PathBuf,
    next_number: u64,
}

impl LogDirectory {
    /// Opens (creating it, mode 0700) `dir`; removes temporary files left by a crash
    /// in the middle of a create. Returns the directory and every log file in it,
    /// scanned.
    pub fn open(dir: &Path) -> Result<(Self, Vec<(LogFile, Scanned)>), StoreError> {
        let op = DIRECTORY_OP;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io(op))?;
        let mut files = Vec::new();
        let mut next_number = 1;
        for item in std::fs::read_dir(dir).map_err(io(op))? {
            let path = item.map_err(io(op))?.path();
            let number = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            match (path.extension().and_then(|e| e.to_str()), number) {
                (Some("tmp"), _) => std::fs::remove_file(&path).map_err(io(op))?,
                (Some(EXTENSION), Some(n)) => {
                    next_number = next_number.max(n + 1);
                    files.push(LogFile::open(&path)?);
                }
                _ => {
                    return Err(backend(
                        op,
                        format!("{} is not a log file of this store", path.display()),
                    ));
                }
            }
        }
        let mut paths = HashMap::new();
        for (file, scanned) in &files {
            if let Some(other) = paths.insert(&scanned.name, file.path()) {
                return Err(backend(
                    op,
                    format!(
                        "{} and {} both hold the same log",
                        other.display(),
                        file.path().display()
                    ),
                ));
            }
        }
        Ok((
            Self {
                dir: dir.to_owned(),
                next_number,
            },
            files,
        ))
    }

    /// Creates the file of a new log.
    pub fn create(&mut self, name: &str) -> Result<LogFile, StoreError> {
        let path = self
            .dir
            .join(format!("{:08}.{EXTENSION}", self.next_number));
        self.next_number += 1;
        LogFile::create(&path, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, value: &[u8]) -> StoredObject {
        StoredObject {
            ns: "ns".into(),
            key: key.into(),
            value: value.to_vec(),
        }
    }

    /// A file of three records: two entries, one entry with two objects, one entry.
    fn sample() -> (Vec<u8>, Vec<usize>) {
        let mut file = encode_header("audit");
        let mut ends = vec![file.len()];
        file.extend(encode_record(0, &[b"zero", b"one"], &[]));
        ends.push(file.len());
        file.extend(encode_record(
            2,
            &[b"two"],
            &[object("a", b"1"), object("b", b"")],
        ));
        ends.push(file.len());
        file.extend(encode_record(3, &[b"three"], &[]));
        ends.push(file.len());
        (file, ends)
    }

    fn scan_bytes(bytes: &[u8]) -> Result<Scanned, LogFileError> {
        scan(bytes)
    }

    fn entry<'a>(bytes: &'a [u8], at: &EntryAt) -> &'a [u8] {
        &bytes[at.offset as usize..][..at.len as usize]
    }

    #[test]
    fn a_file_reads_back() {
        let (bytes, ends) = sample();
        let s = scan_bytes(&bytes).unwrap();
        assert_eq!(s.name, "audit");
        assert!(!s.torn);
        assert_eq!(s.end, *ends.last().unwrap() as u64);
        let read: Vec<&[u8]> = s.entries.iter().map(|at| entry(&bytes, at)).collect();
        assert_eq!(read, [&b"zero"[..], b"one", b"two", b"three"]);
        assert_eq!(
            s.objects,
            [RecordObjects {
                seq: 2,
                objects: vec![object("a", b"1"), object("b", b"")]
            }]
        );
    }

    #[test]
    fn an_empty_log_is_its_header() {
        let s = scan_bytes(&encode_header("x")).unwrap();
        assert_eq!((s.name.as_str(), s.entries.len(), s.torn), ("x", 0, false));
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_write_that_keeps_the_others() {
        let (bytes, ends) = sample();
        let before_last = ends[ends.len() - 2];
        for cut in before_last + 1..bytes.len() {
            let s = scan_bytes(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert!(s.torn, "cut at {cut}");
            assert_eq!(s.end, before_last as u64, "cut at {cut}");
            assert_eq!(s.entries.len(), 3, "cut at {cut}");
        }
    }

    #[test]
    fn zeros_ahead_end_the_records_and_a_record_begun_over_them_is_torn() {
        let (bytes, ends) = sample();
        let before_last = ends[ends.len() - 2];
        let mut zeros = bytes[..before_last].to_vec();
        zeros.extend([0u8; 100]);
        let s = scan_bytes(&zeros).unwrap();
        assert!(!s.torn);
        assert_eq!((s.entries.len(), s.end), (3, before_last as u64));
        let mut begun = bytes[..before_last + 20].to_vec();
        begun.extend([0u8; 100]);
        let s = scan_bytes(&begun).unwrap();
        assert!(s.torn);
        assert_eq!((s.entries.len(), s.end), (3, before_last as u64));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let s = scan_bytes(&flipped).unwrap();
        assert!(s.torn);
        assert_eq!(s.end, before_last as u64);
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_corruption_named_by_offset() {
        let (bytes, ends) = sample();
        // Every byte of the first and second records flipped in turn.
        for i in ends[0]..ends[2] {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            match scan_bytes(&damaged) {
                Err(LogFileError::Corrupt { offset, .. }) => {
                    assert!(
                        offset == ends[0] as u64 || offset == ends[1] as u64,
                        "byte {i}"
                    )
                }
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_headers_are_refused() {
        let (bytes, _) = sample();
        assert_eq!(scan_bytes(&bytes[..5]), Err(LogFileError::BadMagic));
        let mut magic = bytes.clone();
        magic[7] = b'x';
        assert_eq!(scan_bytes(&magic), Err(LogFileError::BadMagic));
        assert_eq!(scan_bytes(&bytes[..12]), Err(LogFileError::BadName));
        let mut long = MAGIC.to_vec();
        long.extend(u16::MAX.to_le_bytes());
        assert_eq!(scan_bytes(&long), Err(LogFileError::BadName));
        let mut control = encode_header("a\nb");
        control.extend(encode_record(0, &[b"e"], &[]));
        assert_eq!(scan_bytes(&control), Err(LogFileError::BadName));
    }

    #[test]
    fn numbering_gaps_and_oversized_counts_are_corruption() {
        let mut gap = encode_header("l");
        gap.extend(encode_record(0, &[b"a"], &[]));
        gap.extend(encode_record(2, &[b"b"], &[]));
        gap.extend(encode_record(3, &[b"c"], &[]));
        assert!(matches!(
            scan_bytes(&gap),
            Err(LogFileError::Corrupt { .. })
        ));
        // A record claiming more entries than its body holds, with a valid CRC.
        let mut record = encode_record(0, &[b"a"], &[]);
        record[RECORD_HEADER_LEN + 8..RECORD_HEADER_LEN + 12]
            .copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&record[RECORD_HEADER_LEN..]);
        record[12..16].copy_from_slice(&crc.to_le_bytes());
        let mut file = encode_header("l");
        file.extend(&record);
        file.extend(encode_record(1, &[b"b"], &[]));
        assert!(matches!(
            scan_bytes(&file),
            Err(LogFileError::Corrupt { .. })
        ));
        // A damaged length with nothing good after it: the torn last record.
        let mut huge = encode_header("l");
        huge.extend(u64::MAX.to_le_bytes());
        huge.extend([1u8; 100]);
        assert!(scan_bytes(&huge).unwrap().torn);
    }

    #[test]
    fn files_append_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut logs, files) = LogDirectory::open(&dir.path().join(LOGS_DIR)).unwrap();
        assert!(files.is_empty());
        let mut file = logs.create("audit").unwrap();
        file.append(&[b"a", b"bc"], &[]).unwrap();
        // Zeros written ahead of the records.
        let len = std::fs::metadata(file.path()).unwrap().len();
        assert_eq!(len, file.end() + ROOM_AHEAD);
        file.append(&[b"def"], &[object("k", b"v")]).unwrap();
        assert_eq!(file.last().unwrap(), Some((2, b"def".to_vec())));
        assert_eq!(
            file.read(0, 10).unwrap(),
            [
                (0, b"a".to_vec()),
                (1, b"bc".to_vec()),
                (2, b"def".to_vec())
            ]
        );
        file.undo_last().unwrap();
        // Only the last record can be cut off, once.
        file.undo_last().unwrap();
        assert_eq!(file.last().unwrap(), Some((1, b"bc".to_vec())));
        assert_eq!(file.read(1, 10).unwrap(), [(1, b"bc".to_vec())]);
        assert!(file.read(7, 10).unwrap().is_empty());
        let (path, end) = (file.path().to_owned(), file.end());
        drop(file);
        // A torn append, then a reopen: the two entries, the tail cut off.
        let raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        raw.write_all_at(&encode_record(2, &[b"torn"], &[])[..9], end)
            .unwrap();
        drop(raw);
        std::fs::write(
            dir.path().join(LOGS_DIR).join("00000009.tmp"),
            b"left by a crash",
        )
        .unwrap();
        let (_, files) = LogDirectory::open(&dir.path().join(LOGS_DIR)).unwrap();
        let [(file, scanned)] = &files[..] else {
            panic!("one file")
        };
        assert_eq!(file.path(), path);
        assert!(scanned.torn);
        assert_eq!(
            file.read(0, 10).unwrap(),
            [(0, b"a".to_vec()), (1, b"bc".to_vec())]
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file.end());
        assert!(!dir.path().join(LOGS_DIR).join("00000009.tmp").exists());
        drop(logs);
    }

    #[test]
    fn entries_past_the_read_span_are_read_one_by_one_alike() {
        let dir = tempfile::tempdir().unwrap();
        let (mut logs, _) = LogDirectory::open(dir.path()).unwrap();
        let mut file = logs.create("large").unwrap();
        let big = |b: u8| vec![b; (MAX_READ_SPAN / 2 + 1) as usize];
        file.append(&[&big(1), b"small"], &[]).unwrap();
        file.append(&[&big(2)], &[]).unwrap();
        let expected = [(0, big(1)), (1, b"small".to_vec()), (2, big(2))];
        assert_eq!(file.read(0, 10).unwrap(), expected);
        assert_eq!(file.read(1, 1).unwrap(), expected[1..2]);
    }

    #[test]
    fn a_stray_file_in_the_log_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let err = LogDirectory::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
