//! The limits every [`Store`](crate::Store) checks before any I/O, and the checks.
//!
//! Namespaces, keys, prefixes, cursors and log names are printable ASCII: bytes
//! `0x20..=0x7E` (space included, control characters and non-ASCII excluded).

use crate::StoreError;

/// Longest namespace, in bytes (namespaces are 1..=128 bytes).
pub const MAX_NS_LEN: usize = 128;
/// Longest key, in bytes (keys are 1..=1024 bytes); also bounds list prefixes.
pub const MAX_KEY_LEN: usize = 1024;
/// Largest value or log entry, in bytes: 64 MiB.
pub const MAX_VALUE_LEN: usize = 64 * 1024 * 1024;
/// Longest log name, in bytes (log names are 1..=128 bytes).
pub const MAX_LOG_NAME_LEN: usize = 128;
/// Largest `limit` of [`list`](crate::Store::list) and [`log_read`](crate::Store::log_read).
pub const MAX_LIMIT: usize = 10_000;
/// Largest log sequence number (PostgreSQL stores it as a signed 64-bit integer).
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// Most entries one [`log_append_entries`](crate::Store::log_append_entries) appends.
pub const MAX_BATCH_ENTRIES: usize = 4096;

fn invalid(message: String) -> StoreError {
    StoreError::InvalidInput(message)
}

/// Checks a name-like argument; messages say what and where, never the content.
fn check_text(
    what: &str,
    limit_name: &str,
    text: &str,
    min: usize,
    max: usize,
) -> Result<(), StoreError> {
    if text.len() < min {
        return Err(invalid(format!(
            "{what} is empty; {limit_name} allows {min}..={max} bytes"
        )));
    }
    if text.len() > max {
        return Err(invalid(format!(
            "{what} is {} bytes, over {limit_name} = {max} bytes",
            text.len()
        )));
    }
    if let Some(at) = text.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(invalid(format!(
            "{what} has a byte outside printable ASCII (0x20..=0x7E) at offset {at}"
        )));
    }
    Ok(())
}

/// Checks a namespace: 1..=[`MAX_NS_LEN`] bytes of printable ASCII.
pub fn check_ns(ns: &str) -> Result<(), StoreError> {
    check_text("namespace", "MAX_NS_LEN", ns, 1, MAX_NS_LEN)
}

/// Checks a key: 1..=[`MAX_KEY_LEN`] bytes of printable ASCII.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    check_text("key", "MAX_KEY_LEN", key, 1, MAX_KEY_LEN)
}

/// Checks a list prefix: 0..=[`MAX_KEY_LEN`] bytes of printable ASCII.
pub fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    check_text("prefix", "MAX_KEY_LEN", prefix, 0, MAX_KEY_LEN)
}

/// Checks a list cursor, which has the form of a key.
pub fn check_after(after: Option<&str>) -> Result<(), StoreError> {
    match after {
        Some(after) => check_text("after (list cursor)", "MAX_KEY_LEN", after, 1, MAX_KEY_LEN),
        None => Ok(()),
    }
}

/// Checks a value or log entry length: at most [`MAX_VALUE_LEN`] bytes.
pub fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(invalid(format!(
            "value is {} bytes, over MAX_VALUE_LEN = {MAX_VALUE_LEN} bytes (64 MiB)",
            value.len()
        )));
    }
    Ok(())
}

/// Checks a log name: 1..=[`MAX_LOG_NAME_LEN`] bytes of printable ASCII.
pub fn check_log_name(log: &str) -> Result<(), StoreError> {
    check_text("log name", "MAX_LOG_NAME_LEN", log, 1, MAX_LOG_NAME_LEN)
}

/// Checks a result limit: at most [`MAX_LIMIT`].
pub fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit > MAX_LIMIT {
        return Err(invalid(format!(
            "limit is {limit}, over MAX_LIMIT = {MAX_LIMIT}"
        )));
    }
    Ok(())
}

/// Checks a sequence number to append: at most [`MAX_SEQ`].
pub fn check_seq(seq: u64) -> Result<(), StoreError> {
    if seq > MAX_SEQ {
        return Err(invalid(format!("seq is {seq}, over MAX_SEQ = {MAX_SEQ}")));
    }
    Ok(())
}

/// Checks a batch of log entries starting at `seq`: its count, every entry's size,
/// and that its last number is still a valid seq.
pub fn check_entries(seq: u64, entries: &[Vec<u8>]) -> Result<(), StoreError> {
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(invalid(format!(
            "{} log entries in one append, over MAX_BATCH_ENTRIES = {MAX_BATCH_ENTRIES}",
            entries.len()
        )));
    }
    check_seq(seq)?;
    check_seq(seq.saturating_add(entries.len().saturating_sub(1) as u64))?;
    entries.iter().try_for_each(|entry| check_value(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert!(check_ns(&"n".repeat(MAX_NS_LEN)).is_ok());
        assert!(check_ns(&"n".repeat(MAX_NS_LEN + 1)).is_err());
        assert!(check_ns("").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(check_key(" ~").is_ok());
        for bad in ["a\nb", "\t", "a\u{7f}", "é", "\0"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix("").is_ok());
        assert!(check_after(Some("")).is_err());
        assert!(check_after(None).is_ok());
        assert!(check_limit(MAX_LIMIT).is_ok());
        assert!(check_limit(MAX_LIMIT + 1).is_err());
        assert!(check_seq(MAX_SEQ).is_ok());
        assert!(check_seq(MAX_SEQ + 1).is_err());
        assert!(check_log_name(&"l".repeat(MAX_LOG_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn messages_name_the_limit_not_the_content() {
        let err = check_key("CANARY\n").unwrap_err().to_string();
        assert!(
            err.contains("printable ASCII") && err.contains("offset 6"),
            "{err}"
        );
        assert!(!err.contains("CANARY"), "{err}");
        let err = check_key(&"CANARY".repeat(200)).unwrap_err().to_string();
        assert!(
            err.contains("MAX_KEY_LEN") && !err.contains("CANARY"),
            "{err}"
        );
    }
}
