//! Signed checkpoints of the audit log: the number of entries and the hash-chain head,
//! signed by the enclave, so that a client who kept one detects a host that later
//! truncates the log or replaces it.
//!
//! A checkpoint is a [C2SP tlog-checkpoint] carried as a [C2SP signed note]:
//!
//! ```text
//! veritee.example/node-1/audit                    <- origin: which log
//! 1042                                            <- size: entries 0..1042 are covered
//! 8wHm0s3q1yCkV3Yf9a0w1FBx2q3rCqTzjZqg0Sx8Y8E=    <- head (base64, 32 bytes)
//!                                                 <- blank line
//! — veritee.example/node-1/audit AbCd...=         <- base64(key ID || Ed25519 signature)
//! ```
//!
//! The "root hash" line of this tlog-checkpoint is **not** an RFC 6962 Merkle tree
//! root. It is the head of the audit log's hash chain: the SHA-256 of the bytes of
//! entry `size - 1` (the value entry `size` names as `prev`), or 32 zero bytes for an
//! empty log, matching [`genesis_prev`](crate::genesis_prev). Generic tlog tooling
//! (witnesses, monitors) can parse and check the signature of these notes but cannot
//! check consistency or inclusion proofs against them: there are none.
//!
//! # What a checkpoint proves
//!
//! Whoever holds the checkpoint key (the enclave) signed that, at the time, its log
//! had `size` entries whose chain ended in `head`. Because each entry's `prev` names
//! the hash of the one before, `head` commits to the whole prefix: a client holding a
//! checkpoint and given the log later can tell, with [`check_against_checkpoint`],
//! whether the log still holds exactly those `size` entries (perhaps followed by
//! more), was cut short ([`AuditError::Truncated`]), or had any of those entries
//! changed or replaced, including by another validly signed history (a fork, e.g.
//! after the enclave was rolled back to older sealed state: [`AuditError::Rewritten`]).
//!
//! # What it does not prove
//!
//! * Freshness: a host can keep serving an old log with its old checkpoint. Only a
//!   client that already holds a newer checkpoint (its own, or one learnt from others)
//!   notices. A client that kept nothing learns nothing from a checkpoint.
//! * Anything after `size`: entries appended later, or dropped after the newest
//!   checkpoint the client has, are outside it.
//! * That the enclave logged every action, or logged it truthfully.
//! * Efficient consistency: with no Merkle tree there are no compact proofs; checking
//!   a checkpoint reads the log from entry 0.
//! * Who the origin is beyond the key: the origin line is only as trustworthy as the
//!   key that signed it. [`open_checkpoint`] takes the origin the caller meant to check
//!   and refuses a checkpoint of any other log ([`CheckpointError::WrongOrigin`]); that
//!   expectation must come from somewhere other than the note itself.
//!
//! The checkpoint key is an Ed25519 key of its own (not the ECDSA key that signs
//! entries): signed notes carry no domain-separation label, so the key must sign
//! nothing but these notes.
//!
//! [C2SP tlog-checkpoint]: https://c2sp.org/tlog-checkpoint
//! [C2SP signed note]: https://c2sp.org/signed-note

use crate::{AuditError, parse_entry, walk_chain};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use thiserror::Error;
use veritee_crypto::digest::{Sha256, sha256};
use veritee_crypto::sign::{self, Ed25519SigningKey, VerificationScheme};

/// Largest note accepted, in bytes. The signed-note spec requires accepting at least
/// 16 signatures and warns that post-quantum ones are nearly 5 kB (6.6 kB in base64):
/// 128 KiB holds 16 of those with room to spare, and bounds the work per note.
pub const MAX_NOTE_LEN: usize = 128 * 1024;

/// Most signature lines accepted in a note (the spec's minimum is 16; 100 is the
/// reference Go implementation's limit).
pub const MAX_SIGNATURES: usize = 100;

/// The signed-note signature type identifier of Ed25519.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Starts every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Length of the key ID at the start of each decoded signature.
const KEY_ID_LEN: usize = 4;
/// Longest excerpt of an offending value quoted in an error message.
const EXCERPT_LEN: usize = 40;

/// A log's size and chain head, as signed in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which log: a unique, non-empty name, by convention a schema-less URL such as
    /// `veritee.example/node-1/audit` (no spaces, no `+`).
    pub origin: String,
    /// How many entries are covered: entries `0..size`.
    pub size: u64,
    /// The chain head after `size` entries: SHA-256 of entry `size - 1`, or 32 zero
    /// bytes for `size == 0` (see [`head_after`]). Not a Merkle root.
    pub head: [u8; 32],
}

/// Why a checkpoint note was rejected, or could not be made.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A key name (given by the caller) is not allowed in a signed note.
    #[error(
        "key name {name:?} is not valid in a signed note: it must be non-empty, with no spaces, '+' or control characters"
    )]
    InvalidKeyName {
        /// The name, as given.
        name: String,
    },
    /// An origin cannot be signed.
    #[error("origin {origin:?} cannot be signed: {reason}")]
    InvalidOrigin {
        /// The origin (shortened if long).
        origin: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The note is larger than [`MAX_NOTE_LEN`].
    #[error("note is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The note contains an ASCII control character other than newline.
    #[error(
        "note contains control character 0x{byte:02x} at byte {offset}: only newline (LF) is allowed, so CRLF line endings and tabs are rejected"
    )]
    ControlCharacter {
        /// Where, in bytes from the start.
        offset: usize,
        /// Which.
        byte: u8,
    },
    /// No blank line separates the text from the signatures.
    #[error("note has no blank line separating its text from its signature lines")]
    NoBlankLine,
    /// Nothing follows the blank line.
    #[error("note has no signature lines after its blank line")]
    NoSignatures,
    /// The last line is not terminated.
    #[error("note does not end with a newline: it was cut short or its last line damaged")]
    MissingFinalNewline,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {max} signature lines")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// A signature line does not have the signed-note syntax.
    #[error("line {line}: malformed signature line: {reason}")]
    SignatureLine {
        /// Line number in the note, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The text has fewer lines than a checkpoint's three.
    #[error(
        "note text has {found} line(s); a checkpoint needs at least three: origin, size, root hash"
    )]
    TooFewLines {
        /// Lines found.
        found: usize,
    },
    /// A text line is empty.
    #[error(
        "line {line} is empty: origin, size, root hash and any extension lines must all be non-empty"
    )]
    EmptyLine {
        /// Line number in the note, from 1.
        line: usize,
    },
    /// The size line is not a canonical decimal number.
    #[error("line 2: tree size {found:?} {reason}")]
    Size {
        /// The line (shortened if long).
        found: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The root hash line is not canonical standard base64 (RFC 4648 section 4).
    #[error(
        "line 3: root hash is not canonical standard base64 (RFC 4648 section 4, with padding)"
    )]
    RootHashEncoding,
    /// The root hash does not decode to 32 bytes.
    #[error("line 3: root hash is {len} bytes, expected 32 (a SHA-256 hash)")]
    RootHashLength {
        /// Decoded length.
        len: usize,
    },
    /// A signature by the trusted key (same name and key ID) does not verify.
    #[error(
        "line {line}: the signature by {key_name} does not verify with the trusted public key: the note was altered after signing"
    )]
    BadSignature {
        /// The key name.
        key_name: String,
        /// Line number of the signature in the note, from 1.
        line: usize,
    },
    /// A validly signed checkpoint of another log than the one expected.
    #[error(
        "the checkpoint is of log {found:?}, not of the expected {expected:?}: it belongs to another log"
    )]
    WrongOrigin {
        /// The origin the caller expected.
        expected: String,
        /// The origin the note names (shortened if long).
        found: String,
    },
    /// No signature by the trusted key.
    #[error(
        "no signature by the trusted key {key_name} (key ID {key_id:08x}); signatures by other keys are ignored. Is the note from another log, or the key name or public key misconfigured?"
    )]
    NoTrustedSignature {
        /// The trusted key's name.
        key_name: String,
        /// The trusted key's ID.
        key_id: u32,
    },
}

/// Signs `checkpoint` into a C2SP signed note with signature type Ed25519 (0x01).
///
/// `key_name` is the name verifiers know the key by; by convention the origin.
pub fn sign_checkpoint(
    key: &Ed25519SigningKey,
    key_name: &str,
    checkpoint: &Checkpoint,
) -> Result<String, AuditError> {
    check_origin(&checkpoint.origin)?;
    let text = format!(
        "{}\n{}\n{}\n",
        checkpoint.origin,
        checkpoint.size,
        BASE64.encode(checkpoint.head)
    );
    sign_note(key, key_name, &text)
}

/// Parses a checkpoint note, checks it carries a valid signature by the key named
/// `key_name` with Ed25519 `public_key`, and that it is a checkpoint of the log
/// `origin` (veritee names a node's log, and its key, `veritee.audit/<node id>`).
///
/// Follows c2sp.org/signed-note and c2sp.org/tlog-checkpoint strictly: at most
/// [`MAX_NOTE_LEN`] bytes and [`MAX_SIGNATURES`] signature lines, no control characters
/// but newline, text separated from the signatures by the last blank line, signature
/// lines `— <name> <base64(key ID || signature)>`, canonical base64 throughout, a
/// decimal size without leading zeros or sign, a 32-byte root hash, non-empty lines.
/// Signatures by other keys (another name or key ID) are ignored, as the spec requires,
/// so cosignatures may accompany the log's own; every signature by the trusted key must
/// verify, and there must be at least one. Extension lines after the root hash are
/// accepted (they are covered by the signature) but not returned: veritee writes none.
///
/// The syntax is checked before the signatures so that an error names the actual
/// defect; nothing from the text is returned unless a trusted signature verifies. The
/// origin is compared last, so that [`CheckpointError::WrongOrigin`] always names a
/// signed origin: the key did sign a checkpoint, of another log. `origin` must come
/// from what the caller meant to check, never from the note: compared with itself, it
/// would prove nothing.
pub fn open_checkpoint(
    note: &str,
    origin: &str,
    key_name: &str,
    public_key: &[u8; 32],
) -> Result<Checkpoint, AuditError> {
    check_key_name(key_name)?;
    let parsed = parse_note(note)?;
    let checkpoint = parse_checkpoint_text(parsed.text)?;
    verify_note(&parsed, key_name, public_key)?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: excerpt(origin),
            found: excerpt(&checkpoint.origin),
        }
        .into());
    }
    Ok(checkpoint)
}

/// The chain head after `entries`: SHA-256 of the last entry's bytes, or 32 zero bytes
/// for an empty log (what the next entry's `prev` names, as raw bytes).
pub fn head_after(entries: &[(u64, Vec<u8>)]) -> [u8; 32] {
    entries.last().map_or([0u8; 32], |(_, entry)| sha256(entry))
}

/// Checks that `entries`, a log from entry 0, holds exactly the entries `checkpoint`
/// covers, possibly followed by more.
///
/// It checks the chain itself (sequence numbers and `prev` links, not signatures) so
/// that a head match vouches for every entry before it: `Ok` means entries
/// `0..checkpoint.size` are byte for byte those the signer had, and the later ones
/// chain onto them. Entry signatures are [`verify_log`](crate::verify_log)'s job: run
/// it too before trusting any entry, in particular those after the checkpoint.
///
/// Errors: [`AuditError::Truncated`] if the log is shorter than the checkpoint,
/// [`AuditError::Rewritten`] if its first `size` entries are not the checkpointed
/// ones, or the error naming the first broken entry if the chain itself is broken.
pub fn check_against_checkpoint(
    entries: &[(u64, Vec<u8>)],
    checkpoint: &Checkpoint,
) -> Result<(), AuditError> {
    walk_chain(entries, |index, entry| {
        parse_entry(index, entry).map(|(body, _, _)| body)
    })?;
    let log_size = entries.len() as u64;
    let covered = match usize::try_from(checkpoint.size) {
        Ok(covered) if covered <= entries.len() => covered,
        _ => {
            return Err(AuditError::Truncated {
                log_size,
                checkpoint_size: checkpoint.size,
            });
        }
    };
    if head_after(&entries[..covered]) != checkpoint.head {
        return Err(AuditError::Rewritten {
            size: checkpoint.size,
        });
    }
    Ok(())
}

/// A note split into its text and syntactically valid signature lines (unverified).
struct Note<'a> {
    /// The signed text, final newline included.
    text: &'a str,
    signatures: Vec<NoteSignature<'a>>,
}

struct NoteSignature<'a> {
    /// Line number in the note, from 1.
    line: usize,
    name: &'a str,
    key_id: u32,
    signature: Vec<u8>,
}

/// Splits a note into text and signature lines, checking the signed-note syntax.
fn parse_note(note: &str) -> Result<Note<'_>, CheckpointError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(CheckpointError::TooLarge {
            len: note.len(),
            max: MAX_NOTE_LEN,
        });
    }
    // Bytes below 0x20 only ever encode ASCII in UTF-8, so a byte scan is exact.
    if let Some((offset, &byte)) = note
        .as_bytes()
        .iter()
        .enumerate()
        .find(|&(_, &b)| b < 0x20 && b != b'\n')
    {
        return Err(CheckpointError::ControlCharacter { offset, byte });
    }
    // The text ends at the last blank line: it may contain blank lines itself (not a
    // checkpoint's, which the text parser rejects), the signature block may not.
    let split = note.rfind("\n\n").ok_or(CheckpointError::NoBlankLine)?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(CheckpointError::NoSignatures);
    }
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or(CheckpointError::MissingFinalNewline)?;
    // Text lines, then the blank line, then the first signature line.
    let first_line = text.matches('\n').count() + 2;
    let mut parsed = Vec::new();
    for (i, line) in signatures.split('\n').enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        parsed.push(parse_signature_line(first_line + i, line)?);
    }
    Ok(Note {
        text,
        signatures: parsed,
    })
}

/// Parses `— <key name> <base64(key ID || signature)>`.
fn parse_signature_line(line: usize, text: &str) -> Result<NoteSignature<'_>, CheckpointError> {
    let bad = |reason| CheckpointError::SignatureLine { line, reason };
    let rest = text.strip_prefix(SIGNATURE_PREFIX).ok_or(bad(
        "it does not start with an em dash (U+2014) and a space",
    ))?;
    // Key names contain no spaces, so the first one ends the name.
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or(bad("no space between the key name and the signature"))?;
    if !is_valid_key_name(name) {
        return Err(bad(
            "the key name is empty or contains spaces, '+' or control characters",
        ));
    }
    if encoded.is_empty() {
        return Err(bad("the signature is empty"));
    }
    // The base64 engine rejects non-canonical padding and trailing bits: one signature
    // has exactly one encoding, so no altered byte can leave it valid.
    let decoded = BASE64.decode(encoded).map_err(|_| {
        bad("the signature is not canonical standard base64 (RFC 4648 section 4, with padding)")
    })?;
    if decoded.len() <= KEY_ID_LEN {
        return Err(bad(
            "the signature is too short: a 4-byte key ID and at least one byte of signature are needed",
        ));
    }
    let (id, signature) = decoded.split_at(KEY_ID_LEN);
    Ok(NoteSignature {
        line,
        name,
        key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
        signature: signature.to_vec(),
    })
}

/// Parses the tlog-checkpoint text: origin, size, root hash, extension lines.
fn parse_checkpoint_text(text: &str) -> Result<Checkpoint, CheckpointError> {
    // `parse_note` cut the text just after a newline; if it did not, the note has no
    // lines to speak of.
    let body = text
        .strip_suffix('\n')
        .ok_or(CheckpointError::TooFewLines { found: 0 })?;
    let lines: Vec<&str> = body.split('\n').collect();
    if lines.len() < 3 {
        return Err(CheckpointError::TooFewLines { found: lines.len() });
    }
    if let Some(i) = lines.iter().position(|line| line.is_empty()) {
        return Err(CheckpointError::EmptyLine { line: i + 1 });
    }
    Ok(Checkpoint {
        origin: lines[0].to_string(),
        size: parse_size(lines[1])?,
        head: parse_head(lines[2])?,
    })
}

/// ASCII decimal, no sign, no leading zeros (`0` alone for an empty log).
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let bad = |reason| CheckpointError::Size {
        found: excerpt(line),
        reason,
    };
    // Checked before `parse`, which would accept a leading '+'.
    if !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("contains a character other than the digits 0-9"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(bad("has a leading zero"));
    }
    line.parse::<u64>()
        .map_err(|_| bad("is larger than 2^64 - 1"))
}

fn parse_head(line: &str) -> Result<[u8; 32], CheckpointError> {
    let decoded = BASE64
        .decode(line)
        .map_err(|_| CheckpointError::RootHashEncoding)?;
    <[u8; 32]>::try_from(decoded.as_slice())
        .map_err(|_| CheckpointError::RootHashLength { len: decoded.len() })
}

/// Checks the signatures by the trusted key: each must verify, and there must be one.
fn verify_note(
    note: &Note<'_>,
    key_name: &str,
    public_key: &[u8; 32],
) -> Result<(), CheckpointError> {
    let trusted_id = key_id(key_name, public_key);
    let mut verified = 0usize;
    for sig in &note.signatures {
        // Another key, even if it shares the name or the ID (not both): ignored, as
        // the spec requires, so that cosignatures and rotated keys do no harm.
        if sig.name != key_name || sig.key_id != trusted_id {
            continue;
        }
        sign::verify(
            VerificationScheme::Ed25519,
            public_key,
            note.text.as_bytes(),
            &sig.signature,
        )
        .map_err(|_| CheckpointError::BadSignature {
            key_name: key_name.to_string(),
            line: sig.line,
        })?;
        verified += 1;
    }
    if verified == 0 {
        return Err(CheckpointError::NoTrustedSignature {
            key_name: key_name.to_string(),
            key_id: trusted_id,
        });
    }
    Ok(())
}

/// Signs `text` (which must end in a newline) into a note with one Ed25519 signature.
fn sign_note(key: &Ed25519SigningKey, key_name: &str, text: &str) -> Result<String, AuditError> {
    check_key_name(key_name)?;
    let signature = key
        .sign(text.as_bytes())
        .map_err(|e| AuditError::Signing(e.to_string()))?;
    let mut blob = key_id(key_name, &key.public_key()).to_be_bytes().to_vec();
    blob.extend_from_slice(&signature);
    let note = format!(
        "{text}\n{SIGNATURE_PREFIX}{key_name} {}\n",
        BASE64.encode(blob)
    );
    // Never hand out a note that verifiers (this crate's included) would reject.
    parse_note(&note)?;
    Ok(note)
}

/// The signed-note key ID: the first 4 bytes, big-endian, of
/// SHA-256(key name || 0x0A || signature type || public key).
fn key_id(key_name: &str, public_key: &[u8; 32]) -> u32 {
    let mut hash = Sha256::default();
    hash.update(key_name.as_bytes());
    hash.update(b"\n");
    hash.update(&[SIGNATURE_TYPE_ED25519]);
    hash.update(public_key);
    let digest = hash.finish();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Non-empty, no Unicode white space, no '+' (signed-note), no characters below
/// U+0020 (which a note may not contain anywhere).
fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(is_forbidden_in_name)
}

/// What neither a key name nor (as veritee signs them) an origin may contain.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_whitespace() || c == '+' || c < '\u{20}'
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(CheckpointError::InvalidKeyName {
            name: excerpt(name),
        })
    }
}

/// What a signer accepts as origin: a line of its own, and (as tlog-checkpoint
/// recommends) no spaces or '+', so that it can double as the key name.
fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let bad = |reason| CheckpointError::InvalidOrigin {
        origin: excerpt(origin),
        reason,
    };
    if origin.is_empty() {
        return Err(bad("it is empty"));
    }
    if origin.chars().any(is_forbidden_in_name) {
        return Err(bad("it contains spaces, '+' or control characters"));
    }
    Ok(())
}

/// At most [`EXCERPT_LEN`] characters of `s`, for error messages.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_LEN) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditBody, entry_hash, genesis_prev, sign_entry, verify_log};
    use proptest::prelude::*;
    use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};

    const NAME: &str = "veritee.example/node-1/audit";

    /// An Ed25519 key from a 32-byte seed, through PKCS#8 v1 (RFC 8410).
    fn key_from_seed(seed: &[u8]) -> Ed25519SigningKey {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend_from_slice(seed);
        Ed25519SigningKey::from_pkcs8(&der).unwrap()
    }

    fn key() -> Ed25519SigningKey {
        key_from_seed(&[7u8; 32])
    }

    fn other_key() -> Ed25519SigningKey {
        key_from_seed(&[8u8; 32])
    }

    fn checkpoint(size: u64) -> Checkpoint {
        let mut head = [0u8; 32];
        for (i, b) in head.iter_mut().enumerate() {
            *b = i as u8 ^ 0xa5;
        }
        Checkpoint {
            origin: NAME.to_string(),
            size,
            head,
        }
    }

    fn note(size: u64) -> String {
        sign_checkpoint(&key(), NAME, &checkpoint(size)).unwrap()
    }

    fn open(note: &str) -> Result<Checkpoint, AuditError> {
        open_checkpoint(note, NAME, NAME, &key().public_key())
    }

    fn rejected(note: &str) -> CheckpointError {
        match open(note) {
            Err(AuditError::Checkpoint(e)) => e,
            other => panic!("expected a checkpoint error, got {other:?} for {note:?}"),
        }
    }

    /// A signature line by `key` under `name` over `text`.
    fn signature_line(key: &Ed25519SigningKey, name: &str, text: &str) -> String {
        let note = sign_note(key, name, text).unwrap();
        note[text.len() + 1..].to_string()
    }

    /// A syntactically valid signature line by an unknown key, `len` bytes decoded.
    fn unknown_line(name: &str, len: usize) -> String {
        format!(
            "{SIGNATURE_PREFIX}{name} {}\n",
            BASE64.encode(vec![0x5a; len])
        )
    }

    fn text_of(note: &str) -> &str {
        &note[..note.rfind("\n\n").unwrap() + 1]
    }

    #[test]
    fn round_trip() {
        for size in [0, 1, 9, 10, 1042, u64::MAX] {
            let note = note(size);
            assert_eq!(open(&note).unwrap(), checkpoint(size));
        }
        let note = note(1042);
        let head = BASE64.encode(checkpoint(1042).head);
        let expected_text = format!("{NAME}\n1042\n{head}\n");
        assert!(note.starts_with(&format!("{expected_text}\n\u{2014} {NAME} ")));
        assert!(note.ends_with('\n'));
        assert_eq!(note.lines().count(), 5);
        // 4-byte key ID and 64-byte signature.
        let blob = note.lines().last().unwrap().rsplit(' ').next().unwrap();
        assert_eq!(BASE64.decode(blob).unwrap().len(), 68);
        // Deterministic: the same key and checkpoint give the same note.
        assert_eq!(
            sign_checkpoint(&key(), NAME, &checkpoint(1042)).unwrap(),
            note
        );
    }

    #[test]
    fn go_reference_note_interop() {
        // golang.org/x/mod/sumdb/note note_test.go: the PeterNeumann key and note.
        let vkey = BASE64
            .decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
        let skey = BASE64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        assert_eq!(
            (vkey[0], skey[0]),
            (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_ED25519)
        );
        let public: [u8; 32] = vkey[1..].try_into().unwrap();
        let signer = key_from_seed(&skey[1..]);
        assert_eq!(signer.public_key(), public);
        assert_eq!(key_id("PeterNeumann", &public), 0xc74f20a3);

        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let peter = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let enoch = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
        let want = format!("{text}\n{peter}");
        assert_eq!(sign_note(&signer, "PeterNeumann", text).unwrap(), want);

        let parsed = parse_note(&want).unwrap();
        assert_eq!(parsed.text, text);
        verify_note(&parsed, "PeterNeumann", &public).unwrap();
        // Enoch's cosignature is by a key we do not know: ignored.
        let cosigned = format!("{text}\n{peter}{enoch}");
        verify_note(&parse_note(&cosigned).unwrap(), "PeterNeumann", &public).unwrap();
        let enoch_only = format!("{text}\n{enoch}");
        assert!(matches!(
            verify_note(&parse_note(&enoch_only).unwrap(), "PeterNeumann", &public),
            Err(CheckpointError::NoTrustedSignature {
                key_id: 0xc74f20a3,
                ..
            })
        ));
        let altered = want.replace("cryptography", "cryptographY");
        assert!(matches!(
            verify_note(&parse_note(&altered).unwrap(), "PeterNeumann", &public),
            Err(CheckpointError::BadSignature { line: 4, .. })
        ));
        // Not a checkpoint, though: its text has two lines.
        assert!(matches!(
            open_checkpoint(&want, "PeterNeumann", "PeterNeumann", &public),
            Err(AuditError::Checkpoint(CheckpointError::TooFewLines {
                found: 2
            }))
        ));
    }

    #[test]
    fn other_key_or_key_name_is_rejected() {
        let note = note(5);
        // Another public key: its key ID differs, so our signature is not "its".
        let err = open_checkpoint(&note, NAME, NAME, &other_key().public_key()).unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::Checkpoint(CheckpointError::NoTrustedSignature { .. })
            ),
            "{err}"
        );
        // Signed by another key under our name.
        let forged = sign_checkpoint(&other_key(), NAME, &checkpoint(5)).unwrap();
        assert!(matches!(
            rejected(&forged),
            CheckpointError::NoTrustedSignature { .. }
        ));
        // Signed by our key under another name.
        let renamed = sign_checkpoint(&key(), "veritee.example/other", &checkpoint(5)).unwrap();
        assert!(matches!(
            rejected(&renamed),
            CheckpointError::NoTrustedSignature { .. }
        ));
        let err = open_checkpoint(&note, NAME, "veritee.example/other", &key().public_key());
        assert!(matches!(
            err,
            Err(AuditError::Checkpoint(
                CheckpointError::NoTrustedSignature { .. }
            ))
        ));
    }

    #[test]
    fn bad_signature_with_trusted_name_and_id_rejects_the_note() {
        let note = note(5);
        let text = text_of(&note);
        let mut blob = key_id(NAME, &key().public_key()).to_be_bytes().to_vec();
        blob.extend_from_slice(&[0x11; 64]);
        let bad = format!("{SIGNATURE_PREFIX}{NAME} {}\n", BASE64.encode(&blob));
        // Alone, or next to a good one: a failing trusted signature rejects the note.
        let good_line = &note[text.len() + 1..];
        for sigs in [
            bad.clone(),
            format!("{good_line}{bad}"),
            format!("{bad}{good_line}"),
        ] {
            let err = rejected(&format!("{text}\n{sigs}"));
            assert!(matches!(err, CheckpointError::BadSignature { .. }), "{err}");
        }
        // A trusted ID with a signature of the wrong length fails the same way.
        blob.truncate(10);
        let short = format!("{SIGNATURE_PREFIX}{NAME} {}\n", BASE64.encode(&blob));
        assert!(matches!(
            rejected(&format!("{text}\n{short}")),
            CheckpointError::BadSignature { line: 5, .. }
        ));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let note = note(1042);
        let bytes = note.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut altered = bytes.to_vec();
                altered[i] ^= 1 << bit;
                // Invalid UTF-8 cannot even be passed in: rejected by the type.
                if let Ok(altered) = std::str::from_utf8(&altered) {
                    assert!(open(altered).is_err(), "byte {i} bit {bit}: {altered:?}");
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let note = note(1042);
        for len in 0..note.len() {
            if note.is_char_boundary(len) {
                assert!(open(&note[..len]).is_err(), "length {len}");
            }
        }
    }

    #[test]
    fn size_limits() {
        let note = note(5);
        // Exactly MAX_NOTE_LEN bytes, padded with one big unknown signature line:
        // accepted. One byte more: rejected before anything else.
        let room = MAX_NOTE_LEN - note.len() - SIGNATURE_PREFIX.len() - 2;
        let encoded_len = (room - 1) / 4 * 4;
        let name = "n".repeat(room - encoded_len);
        let pad = format!(
            "{SIGNATURE_PREFIX}{name} {}\n",
            BASE64.encode(vec![1u8; encoded_len / 4 * 3])
        );
        let at_limit = format!("{note}{pad}");
        assert_eq!(at_limit.len(), MAX_NOTE_LEN);
        assert_eq!(open(&at_limit).unwrap(), checkpoint(5));
        let over = format!("{at_limit} ");
        assert_eq!(
            rejected(&over),
            CheckpointError::TooLarge {
                len: MAX_NOTE_LEN + 1,
                max: MAX_NOTE_LEN
            }
        );
        // 16 signatures, some post-quantum sized, as the spec requires: accepted.
        let mut many = note.clone();
        for i in 0..15 {
            many.push_str(&unknown_line(&format!("witness{i}.example"), 4 + 4627));
        }
        assert_eq!(open(&many).unwrap(), checkpoint(5));
        // MAX_SIGNATURES accepted, one more rejected.
        let mut at_max = note.clone();
        for i in 1..MAX_SIGNATURES {
            at_max.push_str(&unknown_line(&format!("w{i}"), 68));
        }
        assert_eq!(open(&at_max).unwrap(), checkpoint(5));
        at_max.push_str(&unknown_line("one-too-many", 68));
        assert_eq!(
            rejected(&at_max),
            CheckpointError::TooManySignatures {
                max: MAX_SIGNATURES
            }
        );
        // Signing refuses to make a note it would not open.
        let huge = Checkpoint {
            origin: "o".repeat(MAX_NOTE_LEN),
            ..checkpoint(5)
        };
        assert!(matches!(
            sign_checkpoint(&key(), NAME, &huge),
            Err(AuditError::Checkpoint(CheckpointError::TooLarge { .. }))
        ));
    }

    #[test]
    fn unknown_signatures_are_ignored() {
        let note = note(5);
        let text = text_of(&note);
        let ours = &note[text.len() + 1..];
        // A witness cosignature, our name with another key (ID differs), another name
        // with our key's ID, a post-quantum-sized signature.
        let cosig = signature_line(&other_key(), "witness.example/w1", text);
        let same_name = signature_line(&other_key(), NAME, text);
        let mut blob = key_id(NAME, &key().public_key()).to_be_bytes().to_vec();
        blob.extend_from_slice(&[0x22; 64]);
        let same_id = format!(
            "{SIGNATURE_PREFIX}witness.example/w2 {}\n",
            BASE64.encode(&blob)
        );
        let big = unknown_line("pq.example", 4 + 2420);
        let others = [cosig, same_name, same_id, big];
        for i in 0..=others.len() {
            let mut lines: Vec<&str> = others.iter().map(String::as_str).collect();
            lines.insert(i, ours);
            let note = format!("{text}\n{}", lines.concat());
            assert_eq!(open(&note).unwrap(), checkpoint(5), "ours at {i}");
        }
        // Without ours, nothing verifies.
        let note = format!("{text}\n{}", others.concat());
        assert!(matches!(
            rejected(&note),
            CheckpointError::NoTrustedSignature { .. }
        ));
        // Our signature twice: both verify.
        assert_eq!(
            open(&format!("{text}\n{ours}{ours}")).unwrap(),
            checkpoint(5)
        );
    }

    #[test]
    fn reordered_lines_are_rejected() {
        let note = note(5);
        let text = text_of(&note);
        let sigs = &note[text.len() + 1..];
        let lines: Vec<&str> = text.lines().collect();
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let mut swapped = lines.clone();
            swapped.swap(a, b);
            let reordered = format!("{}\n\n{sigs}", swapped.join("\n"));
            assert!(open(&reordered).is_err(), "{a} <-> {b}");
        }
        // Extension lines are signed: reordering them breaks the signature even though
        // the result still parses.
        let extended = format!("{text}ext-a\next-b\n");
        let signed = sign_note(&key(), NAME, &extended).unwrap();
        assert_eq!(open(&signed).unwrap(), checkpoint(5));
        let swapped = signed.replacen("ext-a\next-b\n", "ext-b\next-a\n", 1);
        assert!(matches!(
            rejected(&swapped),
            CheckpointError::BadSignature { .. }
        ));
        // A signature line moved into the text: no longer a checkpoint.
        let moved = format!("{sigs}{text}\n{sigs}");
        assert!(open(&moved).is_err());
    }

    #[test]
    fn note_syntax_errors_are_named() {
        let note = note(5);
        let text = text_of(&note);
        let sig = &note[text.len() + 1..];
        let blob = sig.trim_end().rsplit(' ').next().unwrap();
        use CheckpointError as E;
        let line = |line, reason| E::SignatureLine { line, reason };
        let cases: Vec<(String, CheckpointError)> = vec![
            (text.to_string(), E::NoBlankLine),
            (format!("{text}\n"), E::NoSignatures),
            (note.trim_end().to_string(), E::MissingFinalNewline),
            (
                note.replace('\n', "\r\n"),
                E::ControlCharacter {
                    offset: NAME.len(),
                    byte: b'\r',
                },
            ),
            (
                format!("\t{note}"),
                E::ControlCharacter {
                    offset: 0,
                    byte: b'\t',
                },
            ),
            (
                format!("{note}\u{0}"),
                E::ControlCharacter {
                    offset: note.len(),
                    byte: 0,
                },
            ),
            (
                format!("{text}\n{}", sig.replacen('\u{2014}', "-", 1)),
                line(5, "it does not start with an em dash (U+2014) and a space"),
            ),
            (
                format!("{text}\n{}", sig.replacen(&format!("{NAME} "), NAME, 1)),
                line(5, "no space between the key name and the signature"),
            ),
            (
                format!("{text}\n{}", sig.replacen(NAME, "a+b", 1)),
                line(
                    5,
                    "the key name is empty or contains spaces, '+' or control characters",
                ),
            ),
            (
                format!("{text}\n\u{2014}  {blob}\n"),
                line(
                    5,
                    "the key name is empty or contains spaces, '+' or control characters",
                ),
            ),
            (
                format!("{text}\n\u{2014} {NAME} \n"),
                line(5, "the signature is empty"),
            ),
            (
                format!("{text}\n{sig}\u{2014} x {blob} \n"),
                line(
                    6,
                    "the signature is not canonical standard base64 (RFC 4648 section 4, with padding)",
                ),
            ),
            (
                format!("{text}\n\u{2014} x {}\n", &blob[..blob.len() - 1]),
                line(
                    5,
                    "the signature is not canonical standard base64 (RFC 4648 section 4, with padding)",
                ),
            ),
            (
                // Non-zero trailing bits: decodes leniently to the same bytes.
                format!("{text}\n\u{2014} x AB==\n"),
                line(
                    5,
                    "the signature is not canonical standard base64 (RFC 4648 section 4, with padding)",
                ),
            ),
            (
                format!("{text}\n\u{2014} x AAAAAA==\n"),
                line(
                    5,
                    "the signature is too short: a 4-byte key ID and at least one byte of signature are needed",
                ),
            ),
            (
                format!("{text}\n{sig}trailing line\n"),
                line(6, "it does not start with an em dash (U+2014) and a space"),
            ),
        ];
        for (note, expected) in cases {
            assert_eq!(rejected(&note), expected, "{note:?}");
        }
    }

    #[test]
    fn checkpoint_text_errors_are_named() {
        let head = BASE64.encode([3u8; 32]);
        let size_error = |found: &str, reason| CheckpointError::Size {
            found: found.to_string(),
            reason,
        };
        let not_digits = "contains a character other than the digits 0-9";
        let cases: Vec<(String, CheckpointError)> = vec![
            (
                format!("{NAME}\n5\n"),
                CheckpointError::TooFewLines { found: 2 },
            ),
            (
                format!("{NAME}\n"),
                CheckpointError::TooFewLines { found: 1 },
            ),
            (
                format!("\n5\n{head}\n"),
                CheckpointError::EmptyLine { line: 1 },
            ),
            (
                format!("{NAME}\n\n{head}\n"),
                CheckpointError::EmptyLine { line: 2 },
            ),
            (
                format!("{NAME}\n5\n{head}\n\next\n"),
                CheckpointError::EmptyLine { line: 4 },
            ),
            (
                format!("{NAME}\n007\n{head}\n"),
                size_error("007", "has a leading zero"),
            ),
            (
                format!("{NAME}\n00\n{head}\n"),
                size_error("00", "has a leading zero"),
            ),
            (
                format!("{NAME}\n+7\n{head}\n"),
                size_error("+7", not_digits),
            ),
            (
                format!("{NAME}\n-1\n{head}\n"),
                size_error("-1", not_digits),
            ),
            (
                format!("{NAME}\n 7\n{head}\n"),
                size_error(" 7", not_digits),
            ),
            (
                format!("{NAME}\n1e3\n{head}\n"),
                size_error("1e3", not_digits),
            ),
            (
                format!("{NAME}\n\u{0663}\n{head}\n"),
                size_error("\u{0663}", not_digits),
            ),
            (
                format!("{NAME}\n18446744073709551616\n{head}\n"),
                size_error("18446744073709551616", "is larger than 2^64 - 1"),
            ),
            (
                format!("{NAME}\n{}\n{head}\n", "9".repeat(100)),
                size_error(&format!("{}...", "9".repeat(40)), "is larger than 2^64 - 1"),
            ),
            (
                format!("{NAME}\n5\nnot base64!\n"),
                CheckpointError::RootHashEncoding,
            ),
            (
                format!("{NAME}\n5\n{}\n", head.trim_end_matches('=')),
                CheckpointError::RootHashEncoding,
            ),
            (
                // Last data character with non-zero trailing bits.
                format!("{NAME}\n5\n{}B=\n", &head[..head.len() - 2]),
                CheckpointError::RootHashEncoding,
            ),
            (
                format!("{NAME}\n5\n{}\n", BASE64.encode([3u8; 31])),
                CheckpointError::RootHashLength { len: 31 },
            ),
            (
                format!("{NAME}\n5\n{}\n", BASE64.encode([3u8; 33])),
                CheckpointError::RootHashLength { len: 33 },
            ),
            (
                format!("{NAME}\n5\n{}\n", BASE64.encode(sha256(b"x").repeat(2))),
                CheckpointError::RootHashLength { len: 64 },
            ),
        ];
        for (text, expected) in cases {
            // Properly signed, so the text is what is wrong.
            let note = sign_note(&key(), NAME, &text).unwrap();
            assert_eq!(rejected(&note), expected, "{text:?}");
        }
        // The largest size, and extension lines, are fine.
        let text = format!("{NAME}\n18446744073709551615\n{head}\nextension one\n2\n");
        let note = sign_note(&key(), NAME, &text).unwrap();
        let opened = open(&note).unwrap();
        assert_eq!((opened.size, opened.head), (u64::MAX, [3u8; 32]));
        // An origin with spaces or '+' is accepted when opening (the spec says not to
        // assume its form), though veritee does not sign one.
        let text = format!("a+b c\n0\n{head}\n");
        let note = sign_note(&key(), NAME, &text).unwrap();
        assert_eq!(
            open_checkpoint(&note, "a+b c", NAME, &key().public_key())
                .unwrap()
                .origin,
            "a+b c"
        );
    }

    #[test]
    fn checkpoint_of_another_log_is_rejected() {
        // Signed by the trusted key under the trusted name, but for another log: the
        // key did sign it, so only the origin tells.
        let other = Checkpoint {
            origin: "veritee.example/node-2/audit".to_string(),
            ..checkpoint(5)
        };
        let note = sign_checkpoint(&key(), NAME, &other).unwrap();
        let expected = CheckpointError::WrongOrigin {
            expected: NAME.to_string(),
            found: other.origin.clone(),
        };
        assert_eq!(rejected(&note), expected);
        let text = AuditError::Checkpoint(expected).to_string();
        assert!(
            text.contains(NAME) && text.contains("veritee.example/node-2/audit"),
            "{text}"
        );
        // The same note opens as what it is.
        assert_eq!(
            open_checkpoint(&note, &other.origin, NAME, &key().public_key()).unwrap(),
            other
        );
        // Origins are compared exactly: no prefix, case or trailing-slash leniency.
        for origin in [
            "veritee.example/node-1",
            "veritee.example/node-1/audit/",
            "VERITEE.example/node-1/audit",
            "veritee.example/node-1/audit2",
        ] {
            let cp = Checkpoint {
                origin: origin.to_string(),
                ..checkpoint(5)
            };
            let note = sign_checkpoint(&key(), NAME, &cp).unwrap();
            assert!(
                matches!(rejected(&note), CheckpointError::WrongOrigin { .. }),
                "{origin}"
            );
        }
        // A note whose signature fails is refused for that, not for its origin: the
        // wrong-origin error only ever names a signed origin.
        let forged = sign_checkpoint(&other_key(), NAME, &other).unwrap();
        assert!(matches!(
            rejected(&forged),
            CheckpointError::NoTrustedSignature { .. }
        ));
        // A long origin is shortened in the error.
        let long = Checkpoint {
            origin: "x".repeat(200),
            ..checkpoint(5)
        };
        let note = sign_checkpoint(&key(), NAME, &long).unwrap();
        match rejected(&note) {
            CheckpointError::WrongOrigin { found, .. } => {
                assert_eq!(found, format!("{}...", "x".repeat(40)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_names_and_origins() {
        let pk = key().public_key();
        for name in ["", "a b", "a+b", "a\tb", "a\u{a0}b", "a\u{2003}b", "a\nb"] {
            let expected = AuditError::Checkpoint(CheckpointError::InvalidKeyName {
                name: name.to_string(),
            });
            assert_eq!(
                sign_checkpoint(&key(), name, &checkpoint(1)).unwrap_err(),
                expected
            );
            assert_eq!(
                open_checkpoint(&note(1), NAME, name, &pk).unwrap_err(),
                expected
            );
        }
        for origin in ["", "a b", "a+b", "a\nb", "a\rb", "a\u{85}b"] {
            let cp = Checkpoint {
                origin: origin.to_string(),
                ..checkpoint(1)
            };
            let err = sign_checkpoint(&key(), NAME, &cp).unwrap_err();
            assert!(
                matches!(
                    err,
                    AuditError::Checkpoint(CheckpointError::InvalidOrigin { .. })
                ),
                "{origin:?}: {err}"
            );
        }
        // Non-ASCII names and origins are fine.
        let cp = Checkpoint {
            origin: "journal.exemple/\u{e9}t\u{e9}".to_string(),
            ..checkpoint(1)
        };
        let note = sign_checkpoint(&key(), "cl\u{e9}", &cp).unwrap();
        assert_eq!(
            open_checkpoint(&note, &cp.origin, "cl\u{e9}", &pk).unwrap(),
            cp
        );
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let err = open(&note(5).replace('\n', "\r\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("checkpoint rejected: "), "{err}");
        assert!(err.contains("0x0d") && err.contains("CRLF"), "{err}");
        let err = open_checkpoint(&note(5), NAME, NAME, &other_key().public_key())
            .unwrap_err()
            .to_string();
        assert!(err.contains(NAME) && err.contains("key ID"), "{err}");
        let truncated = AuditError::Truncated {
            log_size: 3,
            checkpoint_size: 5,
        };
        assert!(truncated.to_string().contains("entries 3..5 were removed"));
        assert_eq!(truncated.position(), 3);
        assert_eq!(AuditError::Rewritten { size: 5 }.position(), 4);
    }

    // --- the log against a checkpoint ---------------------------------------------

    /// Appends `n` entries signed by `key` to `log`, chained to its last entry.
    fn append(key: &EcdsaSigningKey, log: &mut Vec<(u64, Vec<u8>)>, n: u64, tag: &str) {
        for _ in 0..n {
            let seq = log.len() as u64;
            let prev = log
                .last()
                .map_or_else(genesis_prev, |(_, entry)| entry_hash(entry));
            let body = AuditBody {
                seq,
                prev,
                time: time::OffsetDateTime::UNIX_EPOCH,
                action: "secret.put".into(),
                tenant: "t".into(),
                object: format!("{tag}{seq}"),
                outcome: "ok".into(),
            };
            log.push((seq, sign_entry(key, &body).unwrap()));
        }
    }

    fn checkpoint_of(log: &[(u64, Vec<u8>)]) -> Checkpoint {
        Checkpoint {
            origin: NAME.to_string(),
            size: log.len() as u64,
            head: head_after(log),
        }
    }

    #[test]
    fn head_matches_the_chain() {
        let audit = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let mut log = Vec::new();
        assert_eq!(hex::encode(head_after(&log)), genesis_prev());
        append(&audit, &mut log, 3, "o");
        assert_eq!(hex::encode(head_after(&log)), entry_hash(&log[2].1));
        // What the next entry names as prev.
        append(&audit, &mut log, 1, "o");
        let body = parse_entry(3, &log[3].1).unwrap().0;
        assert_eq!(body.prev, hex::encode(head_after(&log[..3])));
    }

    #[test]
    fn extension_is_accepted() {
        let audit = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let mut log = Vec::new();
        let mut checkpoints = vec![checkpoint_of(&log)];
        for _ in 0..5 {
            append(&audit, &mut log, 1, "o");
            checkpoints.push(checkpoint_of(&log));
        }
        verify_log(&log, &audit.public_key_spki().unwrap()).unwrap();
        for cp in &checkpoints {
            check_against_checkpoint(&log, cp).unwrap();
        }
        // End to end: through a signed note.
        let note = sign_checkpoint(&key(), NAME, &checkpoints[3]).unwrap();
        check_against_checkpoint(&log, &open(&note).unwrap()).unwrap();
    }

    #[test]
    fn truncation_is_detected() {
        let audit = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let mut log = Vec::new();
        append(&audit, &mut log, 5, "o");
        let cp = checkpoint_of(&log);
        for len in 0..5 {
            // Every prefix is a valid log on its own: only the checkpoint tells.
            verify_log(&log[..len], &audit.public_key_spki().unwrap()).unwrap();
            assert_eq!(
                check_against_checkpoint(&log[..len], &cp),
                Err(AuditError::Truncated {
                    log_size: len as u64,
                    checkpoint_size: 5
                })
            );
        }
        let huge = Checkpoint {
            size: u64::MAX,
            ..cp
        };
        assert!(matches!(
            check_against_checkpoint(&log, &huge),
            Err(AuditError::Truncated { .. })
        ));
    }

    #[test]
    fn rewrite_is_detected() {
        let audit = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let spki = audit.public_key_spki().unwrap();
        let mut log = Vec::new();
        append(&audit, &mut log, 2, "o");
        let common = checkpoint_of(&log);
        append(&audit, &mut log, 3, "o");
        let cp = checkpoint_of(&log);

        // A fork: same first two entries, then another history, validly signed by the
        // same key (the enclave rolled back to older state) and longer than before.
        let mut fork = log[..2].to_vec();
        append(&audit, &mut fork, 4, "fork");
        verify_log(&fork, &spki).unwrap();
        assert_eq!(
            check_against_checkpoint(&fork, &cp),
            Err(AuditError::Rewritten { size: 5 })
        );
        check_against_checkpoint(&fork, &common).unwrap();

        // Truncated, then extended past the checkpoint.
        let mut regrown = log[..3].to_vec();
        append(&audit, &mut regrown, 4, "new");
        assert_eq!(
            check_against_checkpoint(&regrown, &cp),
            Err(AuditError::Rewritten { size: 5 })
        );

        // Rewritten by the host, which cannot sign but can relink the chain: signatures
        // fail (verify_log) and the head does not match (the checkpoint).
        let host = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let mut forged = Vec::new();
        append(&host, &mut forged, 5, "o");
        assert!(verify_log(&forged, &spki).is_err());
        assert_eq!(
            check_against_checkpoint(&forged, &cp),
            Err(AuditError::Rewritten { size: 5 })
        );

        // Entries edited without relinking the chain: the first broken link is named.
        let mut edited = log.clone();
        edited[1] = forged[1].clone();
        assert_eq!(
            check_against_checkpoint(&edited, &cp),
            Err(AuditError::BrokenChain { seq: 1 })
        );
        // An entry swapped for another that chains to its predecessor: the link of the
        // one after it breaks.
        let mut swapped = log.clone();
        swapped[2] = fork[2].clone();
        assert_eq!(
            check_against_checkpoint(&swapped, &cp),
            Err(AuditError::BrokenChain { seq: 3 })
        );

        // An empty checkpoint's head is all zeros.
        let empty = Checkpoint {
            size: 0,
            ..cp.clone()
        };
        assert_eq!(
            check_against_checkpoint(&log, &empty),
            Err(AuditError::Rewritten { size: 0 })
        );
        let empty = checkpoint_of(&[]);
        check_against_checkpoint(&log, &empty).unwrap();
        check_against_checkpoint(&[], &empty).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = open(&s);
        }

        #[test]
        fn note_like_strings_never_panic(
            s in "([a-z0-9./+=]{0,12}|\u{2014} |\n|\n\n| |\r|[\u{0}-\u{7f}])*"
        ) {
            let _ = open(&s);
        }

        #[test]
        fn altered_notes_never_open_to_another_checkpoint(
            at in 0usize..200,
            cut in 0usize..8,
            insert in "(.|\n|\u{2014} ){0,16}",
        ) {
            let note = note(1042);
            let mut at = at.min(note.len());
            while !note.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + cut).min(note.len());
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            let altered = format!("{}{insert}{}", &note[..at], &note[end..]);
            if let Ok(cp) = open(&altered) {
                // Only harmless edits survive (an appended unknown signature line,
                // say): never a different checkpoint.
                prop_assert_eq!(cp, checkpoint(1042));
            }
        }
    }
}
